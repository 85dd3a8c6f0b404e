#!/usr/bin/env bash
# Runs ferrohsm's fuzz targets, each for a bounded time:
#
#     fuzz/run.sh [SECONDS_PER_TARGET [TARGET...]]     (default: 60 s, every target)
#
# Needs the nightly toolchain (cargo-fuzz is not needed: the build below is what `cargo fuzz
# build` runs). Builds every target once (release, AddressSanitizer, debug assertions), then
# runs each binary with
# libFuzzer's -max_total_time, one after another. Corpora grow in fuzz/corpus/<target>
# (kept between runs), crashing inputs land in fuzz/artifacts/<target>/. Prints each target's
# executions, coverage (libFuzzer's edge count `cov`) and corpus size; exits non-zero when a
# target crashed (the input's path is printed: reproduce with
# `fuzz/target/<host>/release/<target> <input>`).
# FUZZ_SANITIZER=none builds without AddressSanitizer (CI's smoke: a third of the build
# time; crashes and the targets' own checks still fail the run, memory errors may not).
# FUZZ_NICE sets the nice level (default 10: the machines are shared); FUZZ_JOBS > 1 runs
# that many targets at once.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-60}
shift || true
mapfile -t all < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^ferrohsm-fuzz$')
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")

host=$(rustc -vV | sed -n 's/^host: //p')
# What `cargo fuzz build` (0.13) runs, without needing cargo-fuzz installed: libFuzzer's
# coverage instrumentation, `--cfg fuzzing`, debug assertions, and AddressSanitizer unless
# FUZZ_SANITIZER=none. `--target` keeps the flags off build scripts.
flags=(-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table
    -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing
    -Cllvm-args=-simplifycfg-branch-fold-threshold=0 -Cllvm-args=-sanitizer-coverage-stack-depth
    -Cdebug-assertions -Ccodegen-units=1)
case ${FUZZ_SANITIZER:-address} in
    none) ;;
    address) flags+=(-Zsanitizer=address) ;;
    *) echo "FUZZ_SANITIZER must be address or none" >&2; exit 2 ;;
esac
RUSTFLAGS="${flags[*]}" cargo +nightly build --manifest-path fuzz/Cargo.toml --target "$host" \
    --release --config 'profile.release.debug="line-tables-only"' --bins
bin=fuzz/target/$host/release
logs=fuzz/target/logs
mkdir -p "$logs"

run_one() {
    local t=$1
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    local seeds=()
    [ -d "fuzz/seeds/$t" ] && seeds=("fuzz/seeds/$t")
    # -rss_limit_mb: the token's Argon2 and SQLite caches live in the same process.
    nice -n "${FUZZ_NICE:-10}" "$bin/$t" -max_total_time="$secs" -rss_limit_mb=4096 \
        -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$t/" \
        "fuzz/corpus/$t" "${seeds[@]}" >"$logs/$t.log" 2>&1
}

failed=()
pids=()
for t in "${targets[@]}"; do
    run_one "$t" &
    pids+=("$!:$t")
    if [ ${#pids[@]} -ge "${FUZZ_JOBS:-1}" ]; then
        entry=${pids[0]}
        pids=("${pids[@]:1}")
        wait "${entry%%:*}" || failed+=("${entry#*:}")
    fi
done
for entry in "${pids[@]}"; do
    wait "${entry%%:*}" || failed+=("${entry#*:}")
done

printf '\n%-18s %12s %8s %8s %s\n' target executions cov corpus result
for t in "${targets[@]}"; do
    log=$logs/$t.log
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    last=$(grep -aE '^#[0-9]+' "$log" | tail -1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
    result=ok
    if printf '%s\n' "${failed[@]}" | grep -qx "$t"; then
        result="CRASH: $(grep -ao "fuzz/artifacts/$t/[^ ]*" "$log" | tail -1) (log: $log)"
    fi
    printf '%-18s %12s %8s %8s %s\n' "$t" "${execs:-?}" "${cov:-?}" "${corp:-?}" "$result"
done
[ ${#failed[@]} -eq 0 ]
