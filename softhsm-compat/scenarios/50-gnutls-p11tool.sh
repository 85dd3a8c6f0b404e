#!/usr/bin/env bash
# GnuTLS p11tool: tokens and objects addressed by pkcs11: URIs, a key generated and exported.
source "$COMPAT_DIR/lib/common.sh"
cd "$SCENARIO_WORK" || exit 1

LABEL=gnutls-rsa
TOKEN_URI="pkcs11:token=$TOKEN_LABEL"
export GNUTLS_PIN=$USER_PIN

p11tool_() {
    t p11tool --provider "$MODULE" "$@"
}

list_tokens() {
    p11tool_ --list-tokens >tokens.txt || return 1
    cat tokens.txt
    grep -Eq "^[[:space:]]*URL: pkcs11:.*token=$TOKEN_LABEL(;|$)" tokens.txt ||
        fail "no token URL with token=$TOKEN_LABEL" || return 1
    grep -q "Requires login" tokens.txt || fail "token does not say it requires login"
}

keygen() {
    p11tool_ --login --generate-privkey=rsa --bits=2048 --label="$LABEL" \
        --outfile=generated-pub.pem "$TOKEN_URI" || return 1
    t openssl pkey -pubin -in generated-pub.pem -noout
}

list_all() {
    p11tool_ --login --list-all "$TOKEN_URI" >objects.txt || return 1
    cat objects.txt
    grep -Eq "URL: pkcs11:.*object=$LABEL;type=private" objects.txt ||
        fail "private key not listed by URI" || return 1
    grep -Eq "URL: pkcs11:.*object=$LABEL;type=public" objects.txt ||
        fail "public key not listed by URI" || return 1
    grep -q "Private key (RSA-2048)" objects.txt || fail "key type or size not shown"
}

# Both export paths must give the key that keygen printed.
export_pubkey() {
    p11tool_ --login --export-pubkey --outfile=exported-pub.pem \
        "$TOKEN_URI;object=$LABEL;type=public" || return 1
    cmp -s <(openssl pkey -pubin -in generated-pub.pem) <(openssl pkey -pubin -in exported-pub.pem) ||
        fail "exported public key differs from the generated one"
}

export_object() {
    p11tool_ --export --outfile=object-pub.pem "$TOKEN_URI;object=$LABEL;type=public" || return 1
    cmp -s <(openssl pkey -pubin -in generated-pub.pem) <(openssl pkey -pubin -in object-pub.pem) ||
        fail "exported public key object differs from the generated one"
}

check p11tool list-tokens list_tokens
check p11tool keygen-rsa2048 keygen
check p11tool list-all-by-uri list_all
check p11tool export-pubkey export_pubkey
check p11tool export-public-object export_object
exit 0
