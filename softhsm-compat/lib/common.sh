# shellcheck shell=bash
# Helpers sourced by every bash scenario. The runner exports:
#   MODULE MODULE_KIND (softhsm|ferrohsm) MODULE_TAG TOKEN_LABEL USER_PIN SO_PIN
#   SCENARIO_WORK (scratch dir of this scenario) COMPAT_DIR COMPAT_RESULTS COMPAT_LOGS
# A scenario reports each check with `check CLIENT NAME FUNCTION [ARGS...]`; FUNCTION returns
# 0 for PASS, 77 for SKIP, anything else for FAIL, and may set REASON to say why.

set -uo pipefail

: "${CMD_TIMEOUT:=60}"
PYTHON=${COMPAT_PYTHON:-/usr/bin/python3}
P11_KIT_CLIENT=${P11_KIT_CLIENT:-/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so}
REASON=""
CHECK_LOG=/dev/null

# One results line: STATUS<TAB>CLIENT<TAB>CHECK<TAB>REASON. The runner prints and tabulates it.
record() {
    local status=$1 client=$2 name=$3 reason=${4:-}
    reason=${reason//$'\t'/ }
    reason=${reason//$'\n'/ }
    printf '%s\t%s\t%s\t%s\n' "$status" "$client" "$name" "$reason" >>"$COMPAT_RESULTS"
}

# check CLIENT NAME FUNCTION [ARGS...]: runs FUNCTION with its output in the check's log.
check() {
    local client=$1 name=$2 rc
    shift 2
    REASON=""
    CHECK_LOG="$COMPAT_LOGS/$client.$name.log"
    : >"$CHECK_LOG"
    "$@" >>"$CHECK_LOG" 2>&1
    rc=$?
    if [ "$rc" -eq 0 ]; then
        record PASS "$client" "$name" "$REASON"
    elif [ "$rc" -eq 77 ]; then
        record SKIP "$client" "$name" "$REASON"
    else
        [ -n "$REASON" ] || REASON="exit $rc"
        record FAIL "$client" "$name" "$REASON"
    fi
    return 0
}

# Records a SKIP with its reason for a check that cannot run here (SM2 on SoftHSMv2, or a
# client that cannot express the operation), so the table still has its row.
not_applicable() {
    record SKIP "$1" "$2" "$3"
}

# t [SECONDS] CMD...: runs CMD bounded in time; prints the command for the log. When CMD fails,
# REASON names the failure: timeout, the signal that killed it, the CKR_ code it printed, or
# its last line of stderr.
t() {
    local secs=$CMD_TIMEOUT rc errf what
    if [[ $1 =~ ^[0-9]+$ ]]; then
        secs=$1
        shift
    fi
    echo "+ $*"
    errf=$(mktemp)
    timeout -k 5 "$secs" "$@" 2>"$errf"
    rc=$?
    cat "$errf" >&2
    what=$(basename "$1")
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        REASON="$what: timeout after ${secs}s"
    elif [ "$rc" -ge 128 ]; then
        REASON="$what: killed by $(kill -l $((rc - 128)) 2>/dev/null || echo "signal $((rc - 128))")"
    elif [ "$rc" -ne 0 ] && [ -z "$REASON" ]; then
        REASON="$what: exit $rc: $(err_summary "$errf")"
    fi
    rm -f "$errf"
    return "$rc"
}

# The most telling line of a client's stderr: the client's own "C_xxx failed: rv = CKR_..."
# report first, then any CKR_ code, then its last line; a panic location is appended.
err_summary() {
    local line panic
    line=$(grep -Eo 'C_[A-Za-z]+( failed)?: rv = CKR_[A-Z_]+' "$1" | head -n1)
    # CKR_OK and CKR_CRYPTOKI_ALREADY_INITIALIZED are routine lines (pkcs11-tool's thread
    # tests log every call), never the reason a client failed.
    [ -n "$line" ] || line=$(grep -Eo 'rv = CKR_[A-Z_]+|CKR_[A-Z_]+' "$1" |
        grep -Ev 'CKR_OK$|CKR_CRYPTOKI_ALREADY_INITIALIZED$' | head -n1)
    # A client's own "error: ..." report (pkcs11-tool's util_fatal) before its last line,
    # which may be a cleanup message printed after it.
    [ -n "$line" ] || line=$(grep -Ei '^(error|fatal)[: ]' "$1" | head -n1)
    [ -n "$line" ] || line=$(grep -v '^Aborting' "$1" | grep -v '^[[:space:]]*$' | tail -n1)
    [ -n "$line" ] || line="failed"
    panic=$(grep -Eo 'panicked at [^ ]+' "$1" | head -n1)
    [ -z "$panic" ] || line="$line (${panic%:})"
    echo "${line:0:200}"
}

# fail MESSAGE: sets REASON and returns failure (use as `cond || fail "why"`).
fail() {
    REASON=$1
    echo "FAIL: $1"
    return 1
}

# p11 ARGS...: pkcs11-tool on the test token, logged in with the user PIN.
p11() {
    t pkcs11-tool --module "$MODULE" --token-label "$TOKEN_LABEL" "$@"
}

p11_login() {
    p11 --login --pin "$USER_PIN" "$@"
}

# rsa_keygen LABEL ID: an RSA-2048 key pair for sign and decrypt, through pkcs11-tool.
rsa_keygen() {
    p11_login --keypairgen --key-type rsa:2048 --label "$1" --id "$2" \
        --usage-sign --usage-decrypt
}

# export_pubkey LABEL ID OUT.pem: the public key as PEM, read with pkcs11-tool. pkcs11-tool 0.23
# selects keys for --sign/--decrypt by --id only (a --label alone takes the first key), so every
# scenario key has its own id.
export_pubkey() {
    local der="$SCENARIO_WORK/$1.pub.der"
    p11 --read-object --type pubkey --label "$1" --id "$2" --output-file "$der" &&
        t openssl pkey -pubin -inform DER -in "$der" -out "$3"
}

# same_file A B: byte equality with a readable reason.
same_file() {
    cmp -s "$1" "$2" || fail "$(basename "$2") differs from $(basename "$1")"
}

# A message the size of a typical wrapped key.
make_message() {
    head -c 32 /dev/urandom >"$1"
}
