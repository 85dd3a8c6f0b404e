#!/usr/bin/env bash
# Runs every check of ferrohsm: formatting, lints, the Rust tests (default aws-lc backend
# and the pure-Rust backend), and the client matrix against the built module.
# Needs the Debian packages that .ci/run installs (OpenSC, SoftHSMv2, libp11, ...).
set -euo pipefail
cd "$(dirname "$0")"

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --all-targets -- -D warnings

step "cargo test (aws-lc backend)"
cargo test --all-targets

step "cargo test --no-default-features (pure-Rust RSA backend)"
cargo test --no-default-features --lib

step "release build"
cargo build --release

if [ -x softhsm-compat/run ]; then
    step "client matrix (softhsm-compat)"
    # SoftHSMv2 runs the same scenarios for comparison; only ferrohsm failures fail the run.
    modules=()
    [ -f /usr/lib/softhsm/libsofthsm2.so ] && modules+=(/usr/lib/softhsm/libsofthsm2.so)
    softhsm-compat/run "${modules[@]}" target/release/libferrohsm.so
fi
