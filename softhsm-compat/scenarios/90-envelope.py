"""The digital envelope with real clients on both sides (issue 9): OpenSSL (and Python's
cryptography for AES-GCM, which `openssl enc` lacks) is the sender, the token unwraps the
fresh symmetric key into a sensitive key that never leaves it and decrypts the data with it;
and the reverse, the token wrapping its key for another party's RSA key, OpenSSL unwrapping.
Java SunPKCS11's envelope is in 30-java-sunpkcs11 (envelope-rsa-unwrap-aes-gcm)."""

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
    Skip,
    check,
    ec_point_bytes,
    expect,
    expect_rv,
    open_token,
    pem,
    raw_attribute_rv,
    record,
    rsa_spki,
    run,
    sm2_spki,
)

try:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError:  # the GCM checks say so instead of failing the scenario
    AESGCM = None

CKM_SM2_KEY_PAIR_GEN = 0x80008001
CKM_SM2_CIPHER_DER = 0x80008201
CKK_SM4 = 0x80000106
CKM_SM4_CBC_PAD = 0x8000010A
RSA_ID = bytes.fromhex("9001")
OTHER_ID = bytes.fromhex("9002")
SENDER_KEY_ID = bytes.fromhex("9003")
state = {}


def path(name):
    return os.path.join(WORK, name)


def write(name, data):
    with open(path(name), "wb") as out:
        out.write(data)
    return path(name)


def pkcs11_tool(*args):
    return run(["pkcs11-tool", "--module", MODULE, "--token-label", TOKEN_LABEL, "--login",
                "--pin", USER_PIN, *args])


def unwrap_template(key_type, label):
    """What a recipient asks for: a token key that decrypts and can never be read."""
    return [
        (PyKCS11.CKA_CLASS, PyKCS11.CKO_SECRET_KEY),
        (PyKCS11.CKA_KEY_TYPE, key_type),
        (PyKCS11.CKA_TOKEN, True),
        (PyKCS11.CKA_PRIVATE, True),
        (PyKCS11.CKA_SENSITIVE, True),
        (PyKCS11.CKA_EXTRACTABLE, False),
        (PyKCS11.CKA_DECRYPT, True),
        (PyKCS11.CKA_LABEL, label),
    ]


def expect_locked_in(session, key):
    """The unwrapped key is sensitive and unextractable: its value cannot be read."""
    sensitive, extractable = session.getAttributeValue(
        key, [PyKCS11.CKA_SENSITIVE, PyKCS11.CKA_EXTRACTABLE])
    expect(sensitive and not extractable, "unwrapped key is readable or extractable")
    rv = raw_attribute_rv(session, key, PyKCS11.CKA_VALUE)
    expect(rv == PyKCS11.CKR_ATTRIBUTE_SENSITIVE,
           f"reading CKA_VALUE gave {PyKCS11.CKR[rv]}, want CKR_ATTRIBUTE_SENSITIVE")


def rsa_keygen():
    _, _, session = open_token()
    state["session"] = session
    public, private = session.generateKeyPair(
        [
            (PyKCS11.CKA_CLASS, PyKCS11.CKO_PUBLIC_KEY),
            (PyKCS11.CKA_TOKEN, True),
            (PyKCS11.CKA_MODULUS_BITS, 2048),
            (PyKCS11.CKA_PUBLIC_EXPONENT, (1, 0, 1)),
            (PyKCS11.CKA_ENCRYPT, True),
            (PyKCS11.CKA_WRAP, True),
            (PyKCS11.CKA_ID, RSA_ID),
            (PyKCS11.CKA_LABEL, "envelope-rsa"),
        ],
        [
            (PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY),
            (PyKCS11.CKA_TOKEN, True),
            (PyKCS11.CKA_PRIVATE, True),
            (PyKCS11.CKA_SENSITIVE, True),
            (PyKCS11.CKA_DECRYPT, True),
            (PyKCS11.CKA_UNWRAP, True),
            (PyKCS11.CKA_ID, RSA_ID),
            (PyKCS11.CKA_LABEL, "envelope-rsa"),
        ],
        Mechanism(PyKCS11.CKM_RSA_PKCS_KEY_PAIR_GEN, None),
    )
    modulus, exponent = session.getAttributeValue(
        public, [PyKCS11.CKA_MODULUS, PyKCS11.CKA_PUBLIC_EXPONENT])
    with open(path("rsa-pub.pem"), "w", encoding="ascii") as out:
        out.write(pem(rsa_spki(modulus, exponent)))
    state.update(rsa_private=private)


def need(*names):
    missing = [n for n in names if n not in state]
    if missing:
        raise CheckFailed(f"an earlier check failed (no {', '.join(missing)})")


def sender_wraps_rsa(key, *pkeyopts):
    """`openssl pkeyutl -encrypt` of `key` under the token's RSA public key."""
    options = [arg for opt in pkeyopts for arg in ("-pkeyopt", opt)]
    return run(["openssl", "pkeyutl", "-encrypt", "-pubin", "-inkey", path("rsa-pub.pem"),
                *options], stdin=key)


def oaep_unwrap_aes_gcm():
    """1 (OAEP-SHA256): the sender seals the data with AES-256-GCM and wraps the key with
    RSA-OAEP; PyKCS11 unwraps it and decrypts on the token; a tampered tag is refused."""
    need("rsa_private")
    if AESGCM is None:
        raise Skip("python3-cryptography not installed (the AES-GCM sender)")
    session = state["session"]
    key, iv, aad = os.urandom(32), os.urandom(12), b"envelope header"
    data = os.urandom(100_000)
    sealed = AESGCM(key).encrypt(iv, data, aad)
    wrapped = sender_wraps_rsa(key, "rsa_padding_mode:oaep", "rsa_oaep_md:sha256",
                               "rsa_mgf1_md:sha256")
    oaep = PyKCS11.RSAOAEPMechanism(PyKCS11.CKM_SHA256, PyKCS11.CKG_MGF1_SHA256)
    token_key = session.unwrapKey(state["rsa_private"], wrapped,
                                  unwrap_template(PyKCS11.CKK_AES, "envelope-gcm"), oaep)
    expect_locked_in(session, token_key)
    gcm = PyKCS11.AES_GCM_Mechanism(iv, aad, 128)
    expect(bytes(session.decrypt(token_key, sealed, gcm)) == data, "decrypted data differs")
    tampered = bytearray(sealed)
    tampered[-1] ^= 1
    expect_rv(lambda: session.decrypt(token_key, bytes(tampered), gcm),
              ["CKR_ENCRYPTED_DATA_INVALID"], "tampered GCM tag")


def pkcs1_unwrap_aes_cbc():
    """1 (PKCS#1 v1.5), with OpenSSL only on the sender's side and pkcs11-tool on the
    token's: `openssl enc -aes-256-cbc`, `pkcs11-tool --unwrap` then `--decrypt`."""
    need("rsa_private")
    key, iv = os.urandom(32), os.urandom(16)
    data = write("cbc-data.txt", b"The envelope's data, padded by openssl enc. " * 300)
    run(["openssl", "enc", "-aes-256-cbc", "-K", key.hex(), "-iv", iv.hex(), "-in", data,
         "-out", path("cbc-data.enc")])
    write("cbc-key.wrapped", sender_wraps_rsa(key))
    pkcs11_tool("--unwrap", "-m", "RSA-PKCS", "--id", RSA_ID.hex(), "--input-file",
                path("cbc-key.wrapped"), "--key-type", "AES:", "--application-id", "9004",
                "--application-label", "envelope-cbc", "--sensitive")
    pkcs11_tool("--decrypt", "-m", "AES-CBC-PAD", "--id", "9004", "--iv", iv.hex(),
                "--input-file", path("cbc-data.enc"), "--output-file", path("cbc-data.out"))
    expect(open(path("cbc-data.out"), "rb").read() == open(data, "rb").read(),
           "decrypted data differs")
    session = state["session"]
    unwrapped = session.findObjects([(PyKCS11.CKA_LABEL, "envelope-cbc")])
    expect(len(unwrapped) == 1, "pkcs11-tool's unwrapped key not found")
    rv = raw_attribute_rv(session, unwrapped[0], PyKCS11.CKA_VALUE)
    expect(rv == PyKCS11.CKR_ATTRIBUTE_SENSITIVE, "the unwrapped key's value is readable")


def sm2_unwrap_sm4_cbc():
    """2: `openssl pkeyutl -encrypt` with the token's SM2 key over a fresh SM4 key,
    `openssl enc -sm4-cbc` over the data; the token unwraps and decrypts (SM4-CBC-PAD)."""
    need("session")
    session = state["session"]
    public, private = session.generateKeyPair(
        [(PyKCS11.CKA_CLASS, PyKCS11.CKO_PUBLIC_KEY), (PyKCS11.CKA_TOKEN, True),
         (PyKCS11.CKA_EC_PARAMS, SM2_CURVE), (PyKCS11.CKA_ENCRYPT, True)],
        [(PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY), (PyKCS11.CKA_TOKEN, True),
         (PyKCS11.CKA_SENSITIVE, True), (PyKCS11.CKA_UNWRAP, True)],
        Mechanism(CKM_SM2_KEY_PAIR_GEN, None),
    )
    (point,) = session.getAttributeValue(public, [PyKCS11.CKA_EC_POINT])
    with open(path("sm2-pub.pem"), "w", encoding="ascii") as out:
        out.write(pem(sm2_spki(ec_point_bytes(point))))
    key, iv = os.urandom(16), os.urandom(16)
    data = write("sm4-data.txt", b"SM2 envelope, data under openssl enc -sm4-cbc. " * 200)
    run(["openssl", "enc", "-sm4-cbc", "-K", key.hex(), "-iv", iv.hex(), "-in", data,
         "-out", path("sm4-data.enc")])
    wrapped = run(["openssl", "pkeyutl", "-encrypt", "-pubin", "-inkey", path("sm2-pub.pem")],
                  stdin=key)
    token_key = session.unwrapKey(private, wrapped, unwrap_template(CKK_SM4, "envelope-sm4"),
                                  Mechanism(CKM_SM2_CIPHER_DER, None))
    expect_locked_in(session, token_key)
    plain = session.decrypt(token_key, open(path("sm4-data.enc"), "rb").read(),
                            Mechanism(CKM_SM4_CBC_PAD, iv))
    expect(bytes(plain) == open(data, "rb").read(), "decrypted data differs")


def import_other_party():
    """The other party's RSA key pair made by OpenSSL; its public half imported into the
    token with pkcs11-tool as a wrapping key."""
    run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
         "-out", path("other.pem")])
    run(["openssl", "pkey", "-in", path("other.pem"), "-pubout", "-out", path("other.pub.pem")])
    pkcs11_tool("--write-object", path("other.pub.pem"), "--type", "pubkey", "--id",
                OTHER_ID.hex(), "--label", "other-party", "--usage-wrap")


def token_wraps_for_openssl():
    """4: the token makes an AES key, wraps it for the other party (OAEP-SHA256), OpenSSL
    unwraps it, and data the token encrypts with its key decrypts with the recovered one."""
    need("session")
    if AESGCM is None:
        raise Skip("python3-cryptography not installed (the AES-GCM receiver)")
    session = state["session"]
    import_other_party()
    (other,) = session.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_PUBLIC_KEY),
                                    (PyKCS11.CKA_ID, OTHER_ID)])
    token_key = session.generateKey([
        (PyKCS11.CKA_CLASS, PyKCS11.CKO_SECRET_KEY), (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_AES),
        (PyKCS11.CKA_VALUE_LEN, 32), (PyKCS11.CKA_TOKEN, True), (PyKCS11.CKA_SENSITIVE, True),
        (PyKCS11.CKA_EXTRACTABLE, True), (PyKCS11.CKA_ENCRYPT, True),
        (PyKCS11.CKA_ID, SENDER_KEY_ID),
    ], Mechanism(PyKCS11.CKM_AES_KEY_GEN, None))
    oaep = PyKCS11.RSAOAEPMechanism(PyKCS11.CKM_SHA256, PyKCS11.CKG_MGF1_SHA256)
    wrapped = bytes(session.wrapKey(other, token_key, oaep))
    key = run(["openssl", "pkeyutl", "-decrypt", "-inkey", path("other.pem"),
               "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256",
               "-pkeyopt", "rsa_mgf1_md:sha256"], stdin=wrapped)
    expect(len(key) == 32, f"OpenSSL unwrapped {len(key)} bytes, want 32")
    iv, data = os.urandom(12), os.urandom(5000)
    sealed = bytes(session.encrypt(token_key, data, PyKCS11.AES_GCM_Mechanism(iv, b"", 128)))
    expect(AESGCM(key).decrypt(iv, sealed, b"") == data, "OpenSSL's key does not open the data")


def token_wraps_with_pkcs11_tool():
    """4 with pkcs11-tool: `--wrap -m RSA-PKCS` of the token's AES key for the other
    party, `openssl pkeyutl -decrypt` recovers the same key bytes as the OAEP wrap did."""
    need("session")
    if not os.path.exists(path("other.pem")):
        raise CheckFailed("the other party's key was not made (token-wraps-for-openssl)")
    pkcs11_tool("--wrap", "-m", "RSA-PKCS", "--id", OTHER_ID.hex(), "--application-id",
                SENDER_KEY_ID.hex(), "--output-file", path("tool-wrapped.bin"))
    key = run(["openssl", "pkeyutl", "-decrypt", "-inkey", path("other.pem"),
               "-in", path("tool-wrapped.bin")])
    expect(len(key) == 32, f"OpenSSL unwrapped {len(key)} bytes, want 32")
    iv = os.urandom(16)
    data = write("tool-plain.bin", os.urandom(3000))
    pkcs11_tool("--encrypt", "-m", "AES-CBC-PAD", "--id", SENDER_KEY_ID.hex(), "--iv", iv.hex(),
                "--input-file", data, "--output-file", path("tool-plain.enc"))
    plain = run(["openssl", "enc", "-d", "-aes-256-cbc", "-K", key.hex(), "-iv", iv.hex(),
                 "-in", path("tool-plain.enc")])
    expect(plain == open(data, "rb").read(), "OpenSSL's key does not open the token's data")


check("pykcs11", "envelope-rsa-keygen", rsa_keygen)
check("pykcs11", "envelope-openssl-oaep-unwrap-aes-gcm", oaep_unwrap_aes_gcm)
check("pkcs11-tool", "envelope-openssl-pkcs1-unwrap-aes-cbc", pkcs1_unwrap_aes_cbc)
if MODULE_KIND == "softhsm":
    record("SKIP", "pykcs11", "envelope-openssl-sm2-unwrap-sm4-cbc", "n/a: no SM2")
else:
    check("pykcs11", "envelope-openssl-sm2-unwrap-sm4-cbc", sm2_unwrap_sm4_cbc)
check("pykcs11", "envelope-token-wraps-oaep-for-openssl", token_wraps_for_openssl)
check("pkcs11-tool", "envelope-token-wraps-pkcs1-for-openssl", token_wraps_with_pkcs11_tool)
