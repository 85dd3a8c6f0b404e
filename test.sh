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
# Stops the test server .ci/start-postgres made in directory $1.
pg_ctl_stop() {
    local bindir
    bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$bindir/pg_ctl" -D "$1/data" -m fast stop >/dev/null || true
    else
        "$bindir/pg_ctl" -D "$1/data" -m fast stop >/dev/null || true
    fi
    rm -rf "$1"
}

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --all-targets -- -D warnings

step "cargo test (aws-lc backend)"
# The tokens in token directories here; the PostgreSQL run is the next step.
env -u FERROHSM_TEST_STORE_URL cargo test --all-targets

# The store's tests again with the tokens in PostgreSQL (store = "postgresql://..."), plus
# the several-hosts tests of tests/postgres.rs: on the server FERROHSM_PG_URL names
# (.ci/run starts one), else on one started here when PostgreSQL is installed.
pg_suites=(--test postgres --test store_faults --test c_abi --test persistence --test pins --test tokens --test objects
           --test kms --test kms_cli --test audit --test sessions --test wrap --test stress
           --test rotate_token_key)
if [ -z "${FERROHSM_PG_URL:-}" ] && FERROHSM_PG_URL=$(.ci/start-postgres 2>/tmp/ferrohsm-pg-start.log); then
    pg_dir=$(sed -n 's/^start-postgres: server in \([^,]*\),.*/\1/p' /tmp/ferrohsm-pg-start.log)
    trap 'status=$?; step "finished, exit status $status"; pg_ctl_stop "$pg_dir"' EXIT
fi
if [ -n "${FERROHSM_PG_URL:-}" ]; then
    step "cargo test on the PostgreSQL store (${FERROHSM_PG_URL})"
    # Fewer kill rounds than the SQLite run (each a process start and key generation): the
    # same code paths, and CI's time.
    FERROHSM_TEST_STORE_URL=$FERROHSM_PG_URL FERROHSM_KILL_ROUNDS=${FERROHSM_KILL_ROUNDS:-30} \
        cargo test "${pg_suites[@]}"
else
    step "PostgreSQL store tests SKIPPED: no server (Debian package postgresql)"
fi

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
