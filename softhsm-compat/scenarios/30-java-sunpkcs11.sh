#!/usr/bin/env bash
# Java 17 SunPKCS11: provider from a config file, keys generated to the token from Java, used
# again by a second JVM through the PKCS11 KeyStore.
source "$COMPAT_DIR/lib/common.sh"
cd "$SCENARIO_WORK" || exit 1

JAVA=${JAVA:-java}
LABEL=java-rsa
ID=3101
SOURCE="$COMPAT_DIR/java/Compat.java"

# SunPKCS11 reads slot ids as Java ints; pkcs11-tool -L names the slot that holds our token.
slot_of_token() {
    timeout 30 pkcs11-tool --module "$MODULE" --list-slots 2>/dev/null | awk -v l="$TOKEN_LABEL" '
        /^Slot [0-9]+ \(0x[0-9a-fA-F]+\)/ { id = $3; gsub(/[():]/, "", id); next }
        $0 ~ "token label +: +" l "$" { print id; exit }'
}

hex() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }

write_config() {
    local slot
    slot=$(slot_of_token)
    [ -n "$slot" ] || return 1
    cat >java.cfg <<CFG
name = compat
library = $MODULE
slot = $((slot))
attributes(generate,*,*) = {
  CKA_TOKEN = true
}
attributes(generate,CKO_PRIVATE_KEY,CKK_RSA) = {
  CKA_PRIVATE = true
  CKA_SENSITIVE = true
  CKA_ID = 0h$ID
  CKA_LABEL = 0h$(hex "$LABEL")
}
attributes(generate,CKO_PUBLIC_KEY,CKK_RSA) = {
  CKA_ID = 0h$ID
  CKA_LABEL = 0h$(hex "$LABEL")
}
CFG
    cat java.cfg
}

# run_jvm MODE CHECK...: records the RESULT lines of one JVM; checks it never reached fail.
run_jvm() {
    local mode=$1 rc name status reason
    shift
    echo "+ $JAVA Compat.java $mode" >"$COMPAT_LOGS/java.$mode.log"
    timeout -k 5 180 "$JAVA" "$SOURCE" "$mode" java.cfg "$USER_PIN" "$SCENARIO_WORK" \
        >"java-$mode.out" 2>>"$COMPAT_LOGS/java.$mode.log"
    rc=$?
    cat "java-$mode.out" >>"$COMPAT_LOGS/java.$mode.log"
    for name in "$@"; do
        cp "$COMPAT_LOGS/java.$mode.log" "$COMPAT_LOGS/java.$name.log"
        IFS=$'\t' read -r _ status _ reason < <(awk -F'\t' -v n="$name" '$1 == "RESULT" && $3 == n' "java-$mode.out")
        if [ -n "${status-}" ]; then
            record "$status" java "$name" "${reason-}"
        elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
            record FAIL java "$name" "JVM timed out before this check"
        else
            record FAIL java "$name" "not reached: JVM exited with $rc"
        fi
        status=""
    done
}

# KeyStore aliases appear only for a private key with a certificate of the same CKA_ID: a
# throwaway CA certifies the token's public key (-force_pubkey) and pkcs11-tool stores it.
store_certificate() {
    [ -s java-pub.der ] || fail "no public key from the first JVM" || return 1
    t openssl pkey -pubin -inform DER -in java-pub.der -out java-pub.pem || return 1
    t openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -subj /CN=compat-ca -days 2 \
        -out ca.pem || return 1
    t openssl req -new -key ca.key -subj "/CN=$LABEL" -out java.csr || return 1
    t openssl x509 -req -in java.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
        -force_pubkey java-pub.pem -days 2 -outform DER -out java-cert.der || return 1
    p11_login --write-object java-cert.der --type cert --id "$ID" --label "$LABEL"
}

# A key ferrohsm-util made for one usage, certified (for a KeyStore alias), then disabled.
disabled_key_setup() {
    local util id
    util=$(dirname "$MODULE")/ferrohsm-util
    [ -x "$util" ] || fail "no $util" || return 1
    export FERROHSM_PIN=$USER_PIN
    echo "+ $util create-key --token $TOKEN_LABEL --alias java-disabled ..."
    id=$("$util" create-key --token "$TOKEN_LABEL" --alias java-disabled \
        --usage ASYMMETRIC_DECRYPT_RSA_2048) || fail "create-key failed" || return 1
    "$util" get-public-key --token "$TOKEN_LABEL" java-disabled --der >kms-pub.der &&
        "$util" get-public-key --token "$TOKEN_LABEL" java-disabled >kms-pub.pem ||
        fail "get-public-key failed" || return 1
    t openssl req -new -key ca.key -subj /CN=java-disabled -out kms.csr || return 1
    t openssl x509 -req -in kms.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
        -force_pubkey kms-pub.pem -days 2 -outform DER -out kms-cert.der || return 1
    p11_login --write-object kms-cert.der --type cert --id "${id//-/}" --label java-disabled ||
        return 1
    t "$util" disable-key --token "$TOKEN_LABEL" java-disabled
}

check java write-config write_config
run_jvm gen provider-config keystore-login keygen-rsa2048-token cipher-rsa-pkcs1-decrypt \
    signature-sha256withrsa signature-rsassa-pss envelope-rsa-unwrap-aes-gcm
check java cert-for-generated-key store_certificate
run_jvm reopen provider-config-2nd-jvm keystore-login-2nd-jvm keystore-alias-with-cert \
    key-survives-jvm
if [ "$MODULE_KIND" = ferrohsm ]; then
    check java disabled-key-setup disabled_key_setup
    run_jvm disabled provider-config-3rd-jvm keystore-login-3rd-jvm disabled-key-refused
else
    not_applicable java disabled-key-refused "key states (ferrohsm-util disable-key) are ferrohsm's"
fi
exit 0
