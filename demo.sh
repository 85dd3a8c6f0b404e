#!/usr/bin/env bash
# Builds ferrohsm and runs the demo: a token in a fresh directory, an RSA-2048 (and SM2)
# key pair generated in it, a message encrypted with the public key outside the token and
# decrypted through the PKCS#11 module, and an envelope (an AES key wrapped for the token).
# Optional argument: the directory to use.
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release --quiet
cargo run --release --quiet --example demo -- "$@"
