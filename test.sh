#!/usr/bin/env bash
# Runs every check of ferrohsm: formatting, lints, the Rust tests (default aws-lc backend
# and the pure-Rust backend), the client matrix against the built module, and python-pkcs11's
# own test suite against it.
# Needs the Debian packages that .ci/run installs (OpenSC, SoftHSMv2, libp11, ...) and PyPI.
set -euo pipefail
cd "$(dirname "$0")"

# Each step prints the seconds since the start, so a slow step shows in the CI log.
started=$SECONDS
step() { printf '\n==> [%ds] %s\n' "$((SECONDS - started))" "$*"; }
trap 'step "finished, exit status $?"' EXIT

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --all-targets -- -D warnings

step "cargo test (aws-lc backend)"
cargo test --all-targets

step "cargo test --no-default-features (pure-Rust RSA backend)"
cargo test --no-default-features --lib

# The clients below load the debug build: every dependency is optimised in it (Cargo.toml),
# and it is already built by the tests, where a release build would take minutes of CI.
step "module build (debug profile, for the clients)"
cargo build
module=target/debug/libferrohsm.so

# A short smoke of every fuzz target (fuzz/run.sh: one release build without ASan, to keep
# CI within its time, then 10 s each) when the nightly toolchain is there. Long runs:
# fuzz/run.sh 3600 (README, "Fuzzing and stress").
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    step "fuzz smoke (fuzz/run.sh ${FERROHSM_FUZZ_SMOKE_SECS:-10})"
    FUZZ_SANITIZER=${FUZZ_SANITIZER:-none} fuzz/run.sh "${FERROHSM_FUZZ_SMOKE_SECS:-10}"
else
    step "fuzz smoke SKIPPED: needs the nightly toolchain"
fi

if [ -x softhsm-compat/run ]; then
    step "client matrix (softhsm-compat)"
    # SoftHSMv2 runs the same scenarios for comparison; only ferrohsm failures fail the run.
    modules=()
    [ -f /usr/lib/softhsm/libsofthsm2.so ] && modules+=(/usr/lib/softhsm/libsofthsm2.so)
    softhsm-compat/run "${modules[@]}" "$module"
fi

if [ -x softhsm-compat/python-pkcs11/run ]; then
    step "python-pkcs11 test suite (softhsm-compat/python-pkcs11)"
    # Fails only on a failure that softhsm-compat/python-pkcs11/expected-failures.txt does not list.
    softhsm-compat/python-pkcs11/run "$module"
fi
