"""SM2 and SM3 through generic clients: PyKCS11 with the vendor mechanisms, pkcs11-tool with
numeric mechanisms, OpenSSL 3 as the peer. SoftHSMv2 has no SM2, so its column says n/a."""

import os
import sys

sys.path.insert(0, os.path.join(os.environ["COMPAT_DIR"], "lib"))

import PyKCS11  # noqa: E402
from PyKCS11 import Mechanism  # noqa: E402

from compat import (  # noqa: E402
    MODULE,
    MODULE_KIND,
    SM2_CURVE,
    TOKEN_LABEL,
    USER_PIN,
    WORK,
    CheckFailed,
    check,
    der,
    der_uint,
    ec_point_bytes,
    expect,
    open_token,
    pem,
    record,
    run,
    sm2_spki,
)

CKM_SM2_KEY_PAIR_GEN = 0x80008001
CKM_SM2_CIPHER_DER = 0x80008201
CKM_SM3_SM2 = 0x80008100
CKM_SM3 = 0x80009001
DEFAULT_ID = "1234567812345678"
LABEL = "sm2-key"
KEY_ID = bytes.fromhex("8101")
PUB_PEM = os.path.join(WORK, "sm2-pub.pem")
MESSAGE = os.path.join(WORK, "msg.bin")

CHECKS = [
    ("pykcs11", "sm2-keygen"),
    ("pykcs11", "sm2-export-spki-for-openssl"),
    ("pykcs11", "sm2-decrypt-openssl-ciphertext"),
    ("pykcs11", "sm2-sign-openssl-verify"),
    ("pkcs11-tool", "sm2-list-key"),
    ("pkcs11-tool", "sm2-sign-0x80008100"),
    ("pkcs11-tool", "sm3-hash-0x80009001"),
]
state = {}


def keygen():
    _, _, session = open_token()
    state["session"] = session
    public_template = [
        (PyKCS11.CKA_CLASS, PyKCS11.CKO_PUBLIC_KEY),
        (PyKCS11.CKA_TOKEN, True),
        (PyKCS11.CKA_EC_PARAMS, SM2_CURVE),
        (PyKCS11.CKA_ENCRYPT, True),
        (PyKCS11.CKA_VERIFY, True),
        (PyKCS11.CKA_LABEL, LABEL),
        (PyKCS11.CKA_ID, KEY_ID),
    ]
    private_template = [
        (PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY),
        (PyKCS11.CKA_TOKEN, True),
        (PyKCS11.CKA_PRIVATE, True),
        (PyKCS11.CKA_SENSITIVE, True),
        (PyKCS11.CKA_DECRYPT, True),
        (PyKCS11.CKA_SIGN, True),
        (PyKCS11.CKA_LABEL, LABEL),
        (PyKCS11.CKA_ID, KEY_ID),
    ]
    public, private = session.generateKeyPair(
        public_template, private_template, Mechanism(CKM_SM2_KEY_PAIR_GEN, None)
    )
    state.update(public=public, private=private)
    names = [PyKCS11.CKA_KEY_TYPE, PyKCS11.CKA_EC_PARAMS, PyKCS11.CKA_EC_POINT]
    key_type, params, point = session.getAttributeValue(public, names)
    expect(key_type == PyKCS11.CKK_EC, f"CKA_KEY_TYPE = {key_type:#x}, want CKK_EC")
    expect(bytes(params) == SM2_CURVE, "CKA_EC_PARAMS is not the SM2 curve OID")
    state["point"] = ec_point_bytes(point)
    with open(MESSAGE, "wb") as out:
        out.write(os.urandom(48))


def export_spki():
    expect("point" in state, "no SM2 key")
    with open(PUB_PEM, "w", encoding="ascii") as out:
        out.write(pem(sm2_spki(state["point"])))
    text = run(["openssl", "pkey", "-pubin", "-in", PUB_PEM, "-noout", "-text"]).decode()
    expect("SM2" in text, "openssl does not read the key as SM2")


def decrypt_openssl_ciphertext():
    expect(os.path.exists(PUB_PEM), "no exported SM2 public key")
    message = open(MESSAGE, "rb").read()
    ciphertext = run(["openssl", "pkeyutl", "-encrypt", "-pubin", "-inkey", PUB_PEM], stdin=message)
    plain = state["session"].decrypt(state["private"], ciphertext, Mechanism(CKM_SM2_CIPHER_DER, None))
    expect(bytes(plain) == message, "decrypted text differs")


def raw_to_der(signature):
    expect(len(signature) == 64, f"signature is {len(signature)} bytes, want raw r||s (64)")
    return der(0x30, der_uint(signature[:32]) + der_uint(signature[32:]))


def openssl_verify(signature, what):
    sig_path = os.path.join(WORK, "sig.der")
    with open(sig_path, "wb") as out:
        out.write(raw_to_der(signature))
    try:
        run(["openssl", "dgst", "-sm3", "-verify", PUB_PEM, "-sigopt", f"distid:{DEFAULT_ID}",
             "-signature", sig_path, MESSAGE])
    except Exception as error:
        raise CheckFailed(f"openssl rejects the {what} signature") from error


def sign_openssl_verify():
    expect(os.path.exists(PUB_PEM), "no exported SM2 public key")
    message = open(MESSAGE, "rb").read()
    signature = bytes(state["session"].sign(state["private"], message, Mechanism(CKM_SM3_SM2, None)))
    openssl_verify(signature, "PyKCS11")


def pkcs11_tool(*args):
    return run(["pkcs11-tool", "--module", MODULE, "--token-label", TOKEN_LABEL, *args])


def list_key():
    listing = pkcs11_tool("--login", "--pin", USER_PIN, "--list-objects", "--type", "privkey").decode()
    expect(f"label:      {LABEL}" in listing or f"label: {LABEL}" in listing.replace("  ", " "),
           "SM2 private key not listed")


def tool_sign():
    expect(os.path.exists(PUB_PEM), "no exported SM2 public key")
    sig_path = os.path.join(WORK, "tool-sig.bin")
    pkcs11_tool("--login", "--pin", USER_PIN, "--sign", "-m", hex(CKM_SM3_SM2), "--id", KEY_ID.hex(),
                "--input-file", MESSAGE, "--output-file", sig_path)
    openssl_verify(open(sig_path, "rb").read(), "pkcs11-tool")


def tool_hash():
    data = os.urandom(1000)
    data_path = os.path.join(WORK, "hash-input.bin")
    hash_path = os.path.join(WORK, "hash.bin")
    with open(data_path, "wb") as out:
        out.write(data)
    pkcs11_tool("--hash", "-m", hex(CKM_SM3), "--input-file", data_path, "--output-file", hash_path)
    want = run(["openssl", "dgst", "-sm3", "-binary", data_path])
    expect(open(hash_path, "rb").read() == want, "SM3 digest differs from openssl dgst -sm3")


if MODULE_KIND == "softhsm" and not os.environ.get("COMPAT_SM2"):
    for client, name in CHECKS:
        record("SKIP", client, name, "n/a: no SM2")
else:
    check("pykcs11", "sm2-keygen", keygen)
    check("pykcs11", "sm2-export-spki-for-openssl", export_spki)
    check("pykcs11", "sm2-decrypt-openssl-ciphertext", decrypt_openssl_ciphertext)
    check("pykcs11", "sm2-sign-openssl-verify", sign_openssl_verify)
    check("pkcs11-tool", "sm2-list-key", list_key)
    check("pkcs11-tool", "sm2-sign-0x80008100", tool_sign)
    check("pkcs11-tool", "sm3-hash-0x80009001", tool_hash)
