"""Python PyKCS11 (Debian python3-pykcs11): attributes, error codes, sessions and threads."""

import os
import sys
import threading

sys.path.insert(0, os.path.join(os.environ["COMPAT_DIR"], "lib"))

import PyKCS11  # noqa: E402
from PyKCS11 import Mechanism, RSAOAEPMechanism  # noqa: E402

from compat import (  # noqa: E402
    USER_PIN,
    WORK,
    CheckFailed,
    check,
    expect,
    expect_rv,
    open_token,
    pem,
    raw_attribute_rv,
    rsa_spki,
    rv_name,
    run,
)

C = "pykcs11"
LABEL = "py-rsa"
KEY_ID = bytes.fromhex("4101")
state = {}


def keygen():
    lib, slot, session = open_token()
    state.update(lib=lib, slot=slot, session=session)
    public_template = [
        (PyKCS11.CKA_CLASS, PyKCS11.CKO_PUBLIC_KEY),
        (PyKCS11.CKA_TOKEN, True),
        (PyKCS11.CKA_PRIVATE, False),
        (PyKCS11.CKA_MODULUS_BITS, 2048),
        (PyKCS11.CKA_PUBLIC_EXPONENT, (0x01, 0x00, 0x01)),
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
        (PyKCS11.CKA_EXTRACTABLE, False),
        (PyKCS11.CKA_DECRYPT, True),
        (PyKCS11.CKA_SIGN, True),
        (PyKCS11.CKA_LABEL, LABEL),
        (PyKCS11.CKA_ID, KEY_ID),
    ]
    public, private = session.generateKeyPair(
        public_template, private_template, PyKCS11.MechanismRSAGENERATEKEYPAIR
    )
    state.update(public=public, private=private)


def find_one(session, object_class):
    found = session.findObjects(
        [(PyKCS11.CKA_CLASS, object_class), (PyKCS11.CKA_LABEL, LABEL), (PyKCS11.CKA_ID, KEY_ID)]
    )
    expect(len(found) == 1, f"find by label and id gave {len(found)} objects of class {object_class}")
    return found[0]


def attributes():
    session = state["session"]
    private = find_one(session, PyKCS11.CKO_PRIVATE_KEY)
    public = find_one(session, PyKCS11.CKO_PUBLIC_KEY)
    names = [
        PyKCS11.CKA_CLASS, PyKCS11.CKA_KEY_TYPE, PyKCS11.CKA_TOKEN, PyKCS11.CKA_PRIVATE,
        PyKCS11.CKA_SENSITIVE, PyKCS11.CKA_EXTRACTABLE, PyKCS11.CKA_ALWAYS_SENSITIVE,
        PyKCS11.CKA_NEVER_EXTRACTABLE, PyKCS11.CKA_LOCAL, PyKCS11.CKA_KEY_GEN_MECHANISM,
        PyKCS11.CKA_DECRYPT, PyKCS11.CKA_SIGN, PyKCS11.CKA_MODULUS, PyKCS11.CKA_PUBLIC_EXPONENT,
        PyKCS11.CKA_LABEL, PyKCS11.CKA_ID,
    ]
    got = dict(zip(names, session.getAttributeValue(private, names)))
    want = {
        PyKCS11.CKA_CLASS: PyKCS11.CKO_PRIVATE_KEY,
        PyKCS11.CKA_KEY_TYPE: PyKCS11.CKK_RSA,
        PyKCS11.CKA_TOKEN: True,
        PyKCS11.CKA_PRIVATE: True,
        PyKCS11.CKA_SENSITIVE: True,
        PyKCS11.CKA_EXTRACTABLE: False,
        PyKCS11.CKA_ALWAYS_SENSITIVE: True,
        PyKCS11.CKA_NEVER_EXTRACTABLE: True,
        PyKCS11.CKA_LOCAL: True,
        PyKCS11.CKA_KEY_GEN_MECHANISM: PyKCS11.CKM_RSA_PKCS_KEY_PAIR_GEN,
        PyKCS11.CKA_DECRYPT: True,
        PyKCS11.CKA_SIGN: True,
        PyKCS11.CKA_LABEL: LABEL,
    }
    for attribute, value in want.items():
        expect(got[attribute] == value,
               f"private {PyKCS11.CKA[attribute]} = {got[attribute]!r}, want {value!r}")
    expect(bytes(got[PyKCS11.CKA_ID]) == KEY_ID, "private CKA_ID differs")
    expect(len(bytes(got[PyKCS11.CKA_MODULUS])) == 256, "modulus is not 256 bytes")
    expect(bytes(got[PyKCS11.CKA_PUBLIC_EXPONENT]).lstrip(b"\0") == b"\x01\x00\x01",
           "public exponent is not 65537")
    pub_names = [PyKCS11.CKA_CLASS, PyKCS11.CKA_MODULUS, PyKCS11.CKA_MODULUS_BITS,
                 PyKCS11.CKA_PUBLIC_EXPONENT, PyKCS11.CKA_ENCRYPT, PyKCS11.CKA_PRIVATE]
    pub = dict(zip(pub_names, session.getAttributeValue(public, pub_names)))
    expect(pub[PyKCS11.CKA_CLASS] == PyKCS11.CKO_PUBLIC_KEY, "public key class")
    expect(bytes(pub[PyKCS11.CKA_MODULUS]) == bytes(got[PyKCS11.CKA_MODULUS]),
           "public and private modulus differ")
    expect(pub[PyKCS11.CKA_MODULUS_BITS] == 2048, f"CKA_MODULUS_BITS = {pub[PyKCS11.CKA_MODULUS_BITS]}")
    expect(pub[PyKCS11.CKA_ENCRYPT] is True, "public CKA_ENCRYPT is not true")
    state["spki"] = rsa_spki(pub[PyKCS11.CKA_MODULUS], pub[PyKCS11.CKA_PUBLIC_EXPONENT])
    with open(os.path.join(WORK, "py-pub.pem"), "w", encoding="ascii") as out:
        out.write(pem(state["spki"]))


def sensitive_attribute():
    session = state["session"]
    private = find_one(session, PyKCS11.CKO_PRIVATE_KEY)
    for attribute in (PyKCS11.CKA_PRIVATE_EXPONENT, PyKCS11.CKA_PRIME_1):
        rv = raw_attribute_rv(session, private, attribute)
        expect(rv == PyKCS11.CKR_ATTRIBUTE_SENSITIVE,
               f"{PyKCS11.CKA[attribute]}: got {rv_name(rv)}, want CKR_ATTRIBUTE_SENSITIVE")


def openssl_encrypt(message, *pkeyopts):
    argv = ["openssl", "pkeyutl", "-encrypt", "-pubin", "-inkey", os.path.join(WORK, "py-pub.pem")]
    for opt in pkeyopts:
        argv += ["-pkeyopt", opt]
    return run(argv, stdin=message)


def oaep_label():
    session = state["session"]
    label = b"compat label"
    message = os.urandom(32)
    ciphertext = openssl_encrypt(message, "rsa_padding_mode:oaep", "rsa_oaep_md:sha256",
                                 "rsa_mgf1_md:sha256", "rsa_oaep_label:" + label.hex())
    mechanism = RSAOAEPMechanism(PyKCS11.CKM_SHA256, PyKCS11.CKG_MGF1_SHA256, label)
    plain = bytes(session.decrypt(state["private"], ciphertext, mechanism))
    expect(plain == message, "OAEP-SHA256 with label: decrypted text differs")


def bad_ciphertext():
    session = state["session"]
    private = state["private"]
    allowed = ("CKR_ENCRYPTED_DATA_INVALID", "CKR_ENCRYPTED_DATA_LEN_RANGE")
    pkcs1 = Mechanism(PyKCS11.CKM_RSA_PKCS)
    garbage = b"\x00" + os.urandom(255)
    cases = [
        ("random block", garbage, pkcs1),
        ("short", os.urandom(16), pkcs1),
        ("above the modulus", b"\xff" * 256, pkcs1),
        ("too long", os.urandom(300), pkcs1),
        ("OAEP random block", garbage,
         RSAOAEPMechanism(PyKCS11.CKM_SHA_1, PyKCS11.CKG_MGF1_SHA1)),
    ]
    wrong = []
    for what, data, mechanism in cases:
        try:
            session.decrypt(private, data, mechanism)
            wrong.append(f"{what}: accepted")
        except PyKCS11.PyKCS11Error as error:
            if rv_name(error.value) not in allowed:
                wrong.append(f"{what}: {rv_name(error.value)}")
    expect(not wrong, "want ENCRYPTED_DATA_INVALID or _LEN_RANGE; " + ", ".join(wrong))
    # The failed operations ended: a valid decryption works right after.
    message = os.urandom(32)
    ciphertext = openssl_encrypt(message, "rsa_padding_mode:pkcs1")
    expect(bytes(session.decrypt(private, ciphertext, pkcs1)) == message,
           "valid decryption after the bad ones failed")


def read_only_session():
    lib, slot = state["lib"], state["slot"]
    session = lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION)
    try:
        data = [
            (PyKCS11.CKA_CLASS, PyKCS11.CKO_DATA),
            (PyKCS11.CKA_LABEL, "py-ro"),
            (PyKCS11.CKA_VALUE, b"read-only"),
        ]
        expect_rv(lambda: session.createObject(data + [(PyKCS11.CKA_TOKEN, True)]),
                  ("CKR_SESSION_READ_ONLY",), "token object in an RO session")
        # A session object is allowed in an RO session.
        handle = session.createObject(data + [(PyKCS11.CKA_TOKEN, False)])
        session.destroyObject(handle)
    finally:
        session.closeSession()


def login_state_shared():
    """Login is per token: a second session sees it and a second login is refused."""
    lib, slot = state["lib"], state["slot"]
    session = lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION)
    try:
        session_state = session.getSessionInfo().state
        expect(session_state in (PyKCS11.CKS_RO_USER_FUNCTIONS, "CKS_RO_USER_FUNCTIONS"),
               f"second session state {session_state}, want CKS_RO_USER_FUNCTIONS")
        expect_rv(lambda: session.login(USER_PIN), ("CKR_USER_ALREADY_LOGGED_IN",),
                  "second login while logged in")
    finally:
        session.closeSession()


def threads():
    lib, slot = state["lib"], state["slot"]
    pkcs1 = Mechanism(PyKCS11.CKM_RSA_PKCS)
    jobs = []
    for _ in range(4):
        message = os.urandom(32)
        jobs.append((message, openssl_encrypt(message, "rsa_padding_mode:pkcs1")))
    errors = []
    start = threading.Barrier(4)

    def worker(message, ciphertext):
        try:
            session = lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION)
            start.wait(timeout=30)
            for _ in range(25):
                plain = bytes(session.decrypt(state["private"], ciphertext, pkcs1))
                if plain != message:
                    raise CheckFailed("a thread decrypted the wrong text")
            session.closeSession()
        except Exception as error:  # reported after join
            errors.append(error)

    workers = [threading.Thread(target=worker, args=job) for job in jobs]
    for worker_thread in workers:
        worker_thread.start()
    for worker_thread in workers:
        worker_thread.join(timeout=120)
    expect(not any(w.is_alive() for w in workers), "a thread is still running after 120 s")
    if errors:
        error = errors[0]
        if isinstance(error, PyKCS11.PyKCS11Error):
            raise CheckFailed(f"{len(errors)} of 4 threads failed: {rv_name(error.value)}")
        raise CheckFailed(f"{len(errors)} of 4 threads failed: {error}")


if check(C, "keygen-rsa2048", keygen):
    check(C, "attribute-queries", attributes)
    check(C, "sensitive-attribute", sensitive_attribute)
    check(C, "decrypt-oaep-sha256-label", oaep_label)
    check(C, "bad-ciphertext-error-codes", bad_ciphertext)
    check(C, "ro-session-no-token-objects", read_only_session)
    check(C, "login-state-shared", login_state_shared)
    check(C, "threads-4-decrypt", threads)
else:
    from compat import record

    for name in ("attribute-queries", "sensitive-attribute", "decrypt-oaep-sha256-label",
                 "bad-ciphertext-error-codes", "ro-session-no-token-objects",
                 "login-state-shared", "threads-4-decrypt"):
        record("FAIL", C, name, "no key: keygen failed")
