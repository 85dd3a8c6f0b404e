"""Helpers for Python scenarios: the runner's environment, result lines, PyKCS11 setup, DER.

A scenario calls `check(client, name, function)`; the function returns None for PASS, raises
Skip(reason) for SKIP, and raises anything else for FAIL (its message becomes the reason).
"""

import os
import subprocess
import sys
import traceback

import PyKCS11
from PyKCS11 import LowLevel

MODULE = os.environ["MODULE"]
MODULE_KIND = os.environ["MODULE_KIND"]
TOKEN_LABEL = os.environ["TOKEN_LABEL"]
USER_PIN = os.environ["USER_PIN"]
WORK = os.environ["SCENARIO_WORK"]
RESULTS = os.environ["COMPAT_RESULTS"]
LOGS = os.environ["COMPAT_LOGS"]


class Skip(Exception):
    """A check that cannot run here, with the reason."""


class CheckFailed(Exception):
    """A check whose expectation did not hold."""


def record(status, client, name, reason=""):
    reason = " ".join(str(reason).split())[:300]
    with open(RESULTS, "a", encoding="utf-8") as out:
        out.write(f"{status}\t{client}\t{name}\t{reason}\n")


def check(client, name, function, *args):
    """Runs one check with the process's stderr (the module's own messages included) in the
    check's log, then its traceback if it failed. Returns True on PASS."""
    log_path = os.path.join(LOGS, f"{client}.{name}.log")
    sys.stderr.flush()
    saved_stderr = os.dup(2)
    log = open(log_path, "w", encoding="utf-8")
    os.dup2(log.fileno(), 2)
    try:
        function(*args)
        status, reason = "PASS", ""
    except Skip as skip:
        status, reason = "SKIP", str(skip)
    except Exception as error:  # every failure is data for the table
        log.write(traceback.format_exc())
        status, reason = "FAIL", describe(error)
    finally:
        sys.stderr.flush()
        log.flush()
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)
        log.close()
    if status == "FAIL":
        panic = module_panic(log_path)
        if panic:
            reason += f" ({panic})"
    record(status, client, name, reason)
    return status == "PASS"


def module_panic(log_path):
    """Where a Rust module panicked during the check, from its message on stderr."""
    try:
        with open(log_path, encoding="utf-8", errors="replace") as log:
            for line in log:
                if "panicked at" in line:
                    return "panicked at " + line.split("panicked at", 1)[1].strip().rstrip(":")
    except OSError:
        pass
    return ""


def describe(error):
    if isinstance(error, PyKCS11.PyKCS11Error):
        return f"{rv_name(error.value)}"
    if isinstance(error, subprocess.CalledProcessError):
        lines = (error.stderr or b"").decode(errors="replace").strip().splitlines()
        coded = [line for line in lines if "CKR_" in line]
        useful = [line for line in lines if line.strip() and line.strip() != "Aborting."]
        why = (coded or useful or [""])[-1].strip()
        panics = [line for line in lines if "panicked at" in line]
        if panics:
            why += " (" + panics[0].strip() + ")"
        return f"{os.path.basename(str(error.cmd[0]))} exit {error.returncode}: {why}"
    if isinstance(error, subprocess.TimeoutExpired):
        return f"timeout: {error.cmd[0]}"
    return str(error) or type(error).__name__


def rv_name(rv):
    name = PyKCS11.CKR.get(rv)
    return name if isinstance(name, str) else f"CK_RV 0x{rv:x}"


def expect(condition, message):
    if not condition:
        raise CheckFailed(message)


def expect_rv(function, allowed, what):
    """Calls function; it must fail with one of the allowed CKR_* names."""
    try:
        function()
    except PyKCS11.PyKCS11Error as error:
        name = rv_name(error.value)
        expect(name in allowed, f"{what}: got {name}, want {' or '.join(allowed)}")
        return name
    raise CheckFailed(f"{what}: succeeded, want {' or '.join(allowed)}")


def run(argv, stdin=None, timeout=60):
    return subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout, check=True).stdout


def open_token(rw=True, login=True):
    """The library, the slot holding the test token, and a (logged-in) session."""
    lib = PyKCS11.PyKCS11Lib()
    lib.load(MODULE)
    slot = find_slot(lib)
    flags = PyKCS11.CKF_SERIAL_SESSION | (PyKCS11.CKF_RW_SESSION if rw else 0)
    session = lib.openSession(slot, flags)
    if login:
        session.login(USER_PIN)
    return lib, slot, session


def find_slot(lib):
    for slot in lib.getSlotList(tokenPresent=True):
        if lib.getTokenInfo(slot).label.strip() == TOKEN_LABEL:
            return slot
    raise CheckFailed(f"no slot holds token {TOKEN_LABEL}")


def raw_attribute_rv(session, handle, attribute):
    """C_GetAttributeValue for one attribute, returning the CK_RV instead of PyKCS11's None."""
    template = LowLevel.ckattrlist(1)
    template[0].SetType(attribute)
    return session.lib.C_GetAttributeValue(session.session, handle, template)


# Minimal DER, enough to build SubjectPublicKeyInfo for openssl.
def der(tag, body):
    n = len(body)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + body


def der_uint(value):
    raw = bytes(value).lstrip(b"\0") or b"\0"
    if raw[0] & 0x80:
        raw = b"\0" + raw
    return der(0x02, raw)


RSA_ENCRYPTION = bytes.fromhex("06092a864886f70d0101010500")  # OID + NULL
EC_PUBLIC_KEY = bytes.fromhex("06072a8648ce3d0201")
SM2_CURVE = bytes.fromhex("06082a811ccf5501822d")


def rsa_spki(modulus, exponent):
    key = der(0x30, der_uint(modulus) + der_uint(exponent))
    return der(0x30, der(0x30, RSA_ENCRYPTION) + der(0x03, b"\0" + key))


def ec_point_bytes(ec_point):
    """The uncompressed point from CKA_EC_POINT (DER OCTET STRING, or raw as some tokens do)."""
    ec_point = bytes(ec_point)
    if ec_point[:1] == b"\x04" and len(ec_point) == 65:
        return ec_point
    if ec_point[:2] == b"\x04\x41" and len(ec_point) == 67:
        return ec_point[2:]
    raise CheckFailed(f"unexpected CKA_EC_POINT of {len(ec_point)} bytes")


def sm2_spki(ec_point):
    algorithm = der(0x30, EC_PUBLIC_KEY + SM2_CURVE)
    return der(0x30, algorithm + der(0x03, b"\0" + ec_point_bytes(ec_point)))


def pem(der_bytes, label="PUBLIC KEY"):
    import base64

    body = base64.encodebytes(der_bytes).decode().replace("\n", "")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"
