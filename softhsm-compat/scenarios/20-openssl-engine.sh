#!/usr/bin/env bash
# OpenSSL 3 with the libp11 engine: token keys addressed by pkcs11: URIs from openssl commands.
source "$COMPAT_DIR/lib/common.sh"
cd "$SCENARIO_WORK" || exit 1

LABEL=engine-rsa
ID=2101
ENGINE_SO=${ENGINE_SO:-/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so}
URI="pkcs11:token=$TOKEN_LABEL;object=$LABEL;type=private"
KEY_URI="$URI?pin-value=$USER_PIN"
make_message msg.bin

# The engine is configured only through this file, so no system setting takes part.
cat >openssl.cnf <<CNF
openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
dynamic_path = $ENGINE_SO
MODULE_PATH = $MODULE
init = 0
[req]
distinguished_name = req_dn
prompt = no
[req_dn]
CN = engine-rsa
CNF
export OPENSSL_CONF=$SCENARIO_WORK/openssl.cnf
export PKCS11_MODULE_PATH=$MODULE

setup() {
    rsa_keygen "$LABEL" "$ID" && export_pubkey "$LABEL" "$ID" pub.pem
}

engine_load() {
    t openssl engine -t -c pkcs11 || return 1
}

# engine_decrypt PKEYOPT...: software encryption, decryption through the engine.
engine_decrypt() {
    local -a opts=()
    for o in "$@"; do opts+=(-pkeyopt "$o"); done
    rm -f ct.bin pt.bin
    t openssl pkeyutl -encrypt -pubin -inkey pub.pem "${opts[@]}" -in msg.bin -out ct.bin || return 1
    t openssl pkeyutl -engine pkcs11 -keyform engine -inkey "$KEY_URI" -decrypt "${opts[@]}" \
        -in ct.bin -out pt.bin || return 1
    same_file msg.bin pt.bin
}

dgst_sign() {
    rm -f sig.bin
    t openssl dgst -engine pkcs11 -keyform engine -sign "$KEY_URI" -sha256 -out sig.bin msg.bin ||
        return 1
    t openssl dgst -sha256 -verify pub.pem -signature sig.bin msg.bin || fail "signature does not verify"
}

req_x509() {
    rm -f cert.pem
    t openssl req -new -x509 -engine pkcs11 -keyform engine -key "$KEY_URI" -sha256 -days 2 \
        -out cert.pem || return 1
    t openssl x509 -in cert.pem -noout -pubkey >cert-pub.pem || return 1
    cmp -s <(openssl pkey -pubin -in pub.pem) <(openssl pkey -pubin -in cert-pub.pem) ||
        fail "certificate holds another public key" || return 1
    t openssl verify -CAfile cert.pem cert.pem || fail "self-signed certificate does not verify"
}

# A wrong PIN must end in a clean error exit, not a crash or a hang.
wrong_pin() {
    t 30 openssl pkeyutl -engine pkcs11 -keyform engine -inkey "$URI?pin-value=99999999" -decrypt \
        -in ct.bin -out wrong.bin
    local rc=$?
    if [ "$rc" -eq 0 ]; then
        fail "decryption succeeded with a wrong PIN"
    elif [ "$rc" -ge 124 ]; then
        return 1 # REASON says timeout or signal
    fi
    REASON=""
    return 0
}

check openssl-engine keygen-and-export setup
check openssl-engine engine-load engine_load
check openssl-engine pkeyutl-decrypt-pkcs1 engine_decrypt rsa_padding_mode:pkcs1
check openssl-engine pkeyutl-decrypt-oaep-sha256 engine_decrypt rsa_padding_mode:oaep \
    rsa_oaep_md:sha256 rsa_mgf1_md:sha256
check openssl-engine dgst-sign-sha256 dgst_sign
check openssl-engine req-x509 req_x509
check openssl-engine wrong-pin-clean-error wrong_pin
exit 0
