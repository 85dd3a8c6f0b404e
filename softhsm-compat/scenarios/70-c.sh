#!/usr/bin/env bash
# C: the module used from a C program, loaded with dlopen and linked directly, under valgrind
# memcheck (any memcheck error fails). SM2 round trips run where the module has SM2 (COMPAT_SM2=1 forces them).
source "$COMPAT_DIR/lib/common.sh"
cd "$SCENARIO_WORK" || exit 1

LABEL=c-rsa
ID=7101
CC=${CC:-gcc}
SOURCE="$COMPAT_DIR/c/compat.c"
# DWARF 4 keeps valgrind 3.19 able to read the debug info.
CFLAGS=(-std=c99 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -O1 -gdwarf-4 -I/usr/include/p11-kit-1)
VALGRIND=(valgrind -q --error-exitcode=99 --leak-check=no --track-origins=yes)

build_dlopen() {
    t "$CC" "${CFLAGS[@]}" -o compat "$SOURCE" -ldl
}

# Linked with -l like a C application of the module; ferrohsm users also include its header
# for the vendor constants (SoftHSMv2 has none).
build_linked() {
    local -a extra=()
    if [ "$MODULE_KIND" = ferrohsm ]; then
        [ -f "$REPO_DIR/include/ferrohsm.h" ] || fail "include/ferrohsm.h missing" || return 1
        extra=(-DCOMPAT_WITH_FERROHSM_H -I"$REPO_DIR/include")
    fi
    t "$CC" "${CFLAGS[@]}" "${extra[@]}" -DCOMPAT_LINKED -o compat-linked "$SOURCE" \
        -L"$(dirname "$MODULE")" -l:"$(basename "$MODULE")" -Wl,-rpath,"$(dirname "$MODULE")"
}

# run_c NAME PROGRAM ARGS...: the program under valgrind; RESULT lines to NAME.out, valgrind's
# report to NAME.vg. Sets VG_RC.
run_c() {
    local name=$1
    shift
    echo "+ ${VALGRIND[*]} $*" >"$COMPAT_LOGS/c.$name.log"
    timeout -k 5 240 "${VALGRIND[@]}" --log-file="$name.vg" "$@" >"$name.out" 2>>"$COMPAT_LOGS/c.$name.log"
    VG_RC=$?
    cat "$name.out" "$name.vg" >>"$COMPAT_LOGS/c.$name.log" 2>/dev/null
}

# record_c NAME CHECK...: one table line per expected check from the program's RESULT lines.
record_c() {
    local name=$1 check status reason
    shift
    for check in "$@"; do
        cp "$COMPAT_LOGS/c.$name.log" "$COMPAT_LOGS/c.$check.log"
        status=""
        IFS=$'\t' read -r _ status _ reason < <(awk -F'\t' -v n="$check" '$1 == "RESULT" && $3 == n' "$name.out")
        if [ -n "$status" ]; then
            record "$status" c "$check" "${reason-}"
        else
            record FAIL c "$check" "not reached (program: $(exit_reason))"
        fi
    done
}

exit_reason() {
    case "$VG_RC" in
    124 | 137) echo "timeout" ;;
    99) echo "valgrind found errors" ;;
    *) if [ "$VG_RC" -ge 128 ]; then echo "killed by $(kill -l $((VG_RC - 128)))"; else echo "exit $VG_RC"; fi ;;
    esac
}

# memcheck errors fail the run; the program's own check failures are reported separately.
memcheck_clean() {
    local name=$1
    cat "$name.vg"
    if [ "$VG_RC" -eq 99 ] || grep -q '^==[0-9]*== [A-Z]' "$name.vg"; then
        fail "memcheck: $(grep -m1 -E '^==[0-9]+== [A-Z]' "$name.vg" | sed 's/^==[0-9]*== //')"
        return 1
    fi
    if [ "$VG_RC" -ne 0 ] && [ "$VG_RC" -ne 2 ]; then
        fail "$(exit_reason)"
        return 1
    fi
}

RSA_CHECKS=(initialize open-session-login find-key-pair-by-label rsa-pkcs1-roundtrip
    rsa-oaep-sha1-roundtrip rsa-oaep-sha256-roundtrip finalize)
SM2_CHECKS=(sm3-digest-known-answer sm2-keygen sm2-cipher-der-roundtrip sm2-sign-verify)

check c keygen-rsa2048-pkcs11-tool rsa_keygen "$LABEL" "$ID"
check c build-dlopen build_dlopen
if [ -x compat ]; then
    run_c dlopen-rsa ./compat "$MODULE" "$TOKEN_LABEL" "$USER_PIN" rsa "$LABEL"
    record_c dlopen-rsa "${RSA_CHECKS[@]}"
    check c valgrind-memcheck-rsa memcheck_clean dlopen-rsa
else
    for name in "${RSA_CHECKS[@]}" valgrind-memcheck-rsa; do record FAIL c "$name" "not built"; done
fi

linked_run() {
    [ -x compat-linked ] || fail "not built" || return 1
    run_c linked-rsa ./compat-linked "$MODULE" "$TOKEN_LABEL" "$USER_PIN" rsa "$LABEL"
    memcheck_clean linked-rsa || return 1
    if grep -q $'^RESULT\tFAIL' linked-rsa.out; then
        fail "$(grep -m1 $'^RESULT\tFAIL' linked-rsa.out | cut -f3,4 | tr '\t' ' ')"
        return 1
    fi
    grep -q $'^RESULT\tPASS\tfinalize' linked-rsa.out || fail "$(exit_reason)"
}
check c build-linked build_linked
check c linked-direct-calls-rsa-valgrind linked_run

if [ "$MODULE_KIND" = softhsm ] && [ -z "${COMPAT_SM2-}" ]; then
    for name in "${SM2_CHECKS[@]}" valgrind-memcheck-sm2; do not_applicable c "$name" "n/a: no SM2"; done
elif [ -x compat ]; then
    run_c dlopen-sm2 ./compat "$MODULE" "$TOKEN_LABEL" "$USER_PIN" sm2
    record_c dlopen-sm2 "${SM2_CHECKS[@]}"
    check c valgrind-memcheck-sm2 memcheck_clean dlopen-sm2
else
    for name in "${SM2_CHECKS[@]}" valgrind-memcheck-sm2; do record FAIL c "$name" "not built"; done
fi
exit 0
