#!/usr/bin/env bash
# p11-kit server: the module exported on a unix socket and used through p11-kit-client.so, the
# way containers and other hosts reach a token.
source "$COMPAT_DIR/lib/common.sh"
cd "$SCENARIO_WORK" || exit 1

LABEL=remote-rsa
ID=6101
SOCKET="$SCENARIO_WORK/p11-kit.sock"
SERVER_PID=""
make_message msg.bin

stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null
        # Bounded: a server that ignores SIGTERM gets SIGKILL after 5 s.
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
        SERVER_PID=""
    fi
}
trap stop_server EXIT
trap 'stop_server; exit 143' TERM INT

setup() {
    rsa_keygen "$LABEL" "$ID" && export_pubkey "$LABEL" "$ID" pub.pem
}

start_server() {
    echo "+ p11-kit server --provider $MODULE -f -n $SOCKET pkcs11:token=$TOKEN_LABEL"
    timeout -k 5 240 p11-kit server --provider "$MODULE" -f -n "$SOCKET" \
        "pkcs11:token=$TOKEN_LABEL" >server.out 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do
        [ -S "$SOCKET" ] && break
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat server.out
    [ -S "$SOCKET" ] || fail "server socket did not appear: $(tail -n1 server.out)"
}

# client ARGS...: pkcs11-tool through p11-kit-client.so and the socket.
client() {
    P11_KIT_SERVER_ADDRESS="unix:path=$SOCKET" t pkcs11-tool --module "$P11_KIT_CLIENT" \
        --token-label "$TOKEN_LABEL" "$@"
}

list_via_client() {
    client --login --pin "$USER_PIN" --list-objects >objects.txt || return 1
    cat objects.txt
    grep -q "label: *$LABEL" objects.txt || fail "key not listed through the socket"
}

decrypt_via_client() {
    rm -f ct.bin pt.bin
    t openssl pkeyutl -encrypt -pubin -inkey pub.pem -pkeyopt rsa_padding_mode:pkcs1 -in msg.bin \
        -out ct.bin || return 1
    client --login --pin "$USER_PIN" --decrypt -m RSA-PKCS --id "$ID" --input-file ct.bin \
        --output-file pt.bin || return 1
    same_file msg.bin pt.bin
}

sign_via_client() {
    rm -f sig.bin
    client --login --pin "$USER_PIN" --sign -m SHA256-RSA-PKCS --id "$ID" \
        --input-file msg.bin --output-file sig.bin || return 1
    t openssl dgst -sha256 -verify pub.pem -signature sig.bin msg.bin || fail "signature does not verify"
}

check p11-kit-server keygen-and-export setup
check p11-kit-server serve-token-on-socket start_server
check p11-kit-server list-objects-via-client list_via_client
check p11-kit-server decrypt-pkcs1-via-client decrypt_via_client
check p11-kit-server sign-via-client sign_via_client
stop_server
exit 0
