//! Encryption, decryption, signing, verification and digesting.

use crate::audit::KeyUse;
use crate::config::AuditLevel;
use crate::error::{fail, rv_of, Error, Result};
use crate::mechanism::{self, CipherOperation, LoadedKey, Mechanism, MechanismParam};
use crate::object::policy;
use crate::session::{
    deliver, deliver_direct, Active, Calls, Input, Operations, Output, Session, Written,
};
use crate::state::Library;
use crate::token::Token;
use cryptoki_sys::*;
use zeroize::Zeroizing;

/// The key behind `handle` for `usage` (CKA_ENCRYPT, CKA_SIGN, ...) with `mechanism`, and
/// whether it needs the PIN again (CKA_ALWAYS_AUTHENTICATE). A handle that names no key is
/// CKR_KEY_HANDLE_INVALID, as clients and suites expect; an RSA key below the configured
/// minimum is CKR_KEY_SIZE_RANGE (see `api::key_size`).
/// `inspect` sees the key's clear attributes too, for what a caller's function also needs
/// of them (C_WrapKey: CKA_TRUSTED, the wrap template).
pub(crate) fn usable_key(
    lib: &Library,
    s: &Session,
    handle: CK_OBJECT_HANDLE,
    usage: CK_ATTRIBUTE_TYPE,
    mechanism: CK_MECHANISM_TYPE,
    inspect: impl FnOnce(&crate::object::Attributes) -> Result<()>,
) -> Result<(LoadedKey, bool)> {
    let mut always_authenticate = false;
    let key = s.token.key_for_use(handle, |attrs| {
        policy::check_usage(attrs, usage, mechanism)?;
        super::key_size::check_key(&lib.config, attrs, CKR_KEY_SIZE_RANGE)?;
        always_authenticate = attrs.flag(CKA_ALWAYS_AUTHENTICATE, false);
        inspect(attrs)
    })?;
    Ok((key, always_authenticate))
}

/// The key of a one-call function (C_WrapKey, C_UnwrapKey, C_DeriveKey), checked as
/// C_EncryptInit checks its key (usage flag, allowed mechanisms, rsa_min_bits). A key with
/// CKA_ALWAYS_AUTHENTICATE is refused: these are single calls, with no operation that a
/// CKU_CONTEXT_SPECIFIC login could come before.
pub(crate) fn single_call_key(
    lib: &Library,
    s: &Session,
    handle: CK_OBJECT_HANDLE,
    usage: CK_ATTRIBUTE_TYPE,
    ty: CK_MECHANISM_TYPE,
    inspect: impl FnOnce(&crate::object::Attributes) -> Result<()>,
) -> Result<LoadedKey> {
    let (key, always_authenticate) = usable_key(lib, s, handle, usage, ty, inspect)?;
    if always_authenticate {
        return Err(Error::with(
            CKR_KEY_FUNCTION_NOT_PERMITTED,
            "a CKA_ALWAYS_AUTHENTICATE key serves operations only",
        ));
    }
    Ok(key)
}

/// One kind of operation: the function flag its mechanism must offer, the key attribute
/// that must allow it (None for digests, which take no key), and the session's slot for it.
struct Kind<T: ?Sized> {
    function: CK_FLAGS,
    /// The audit log's name for it.
    event: &'static str,
    usage: Option<CK_ATTRIBUTE_TYPE>,
    slot: fn(&mut Operations) -> &mut Option<Active<T>>,
}

const ENCRYPT: Kind<dyn CipherOperation> = Kind {
    function: CKF_ENCRYPT,
    event: "encrypt",
    usage: Some(CKA_ENCRYPT),
    slot: |o| &mut o.encrypt,
};
const DECRYPT: Kind<dyn CipherOperation> = Kind {
    function: CKF_DECRYPT,
    event: "decrypt",
    usage: Some(CKA_DECRYPT),
    slot: |o| &mut o.decrypt,
};
const SIGN: Kind<dyn mechanism::SignOperation> = Kind {
    function: CKF_SIGN,
    event: "sign",
    usage: Some(CKA_SIGN),
    slot: |o| &mut o.sign,
};
const VERIFY: Kind<dyn mechanism::VerifyOperation> = Kind {
    function: CKF_VERIFY,
    event: "verify",
    usage: Some(CKA_VERIFY),
    slot: |o| &mut o.verify,
};
const DIGEST: Kind<dyn mechanism::DigestOperation> = Kind {
    function: CKF_DIGEST,
    event: "digest",
    usage: None,
    slot: |o| &mut o.digest,
};

/// Starts an operation of one kind with the key `key` (ignored for keyless kinds).
fn start<T: ?Sized>(
    lib: &Library,
    session: CK_SESSION_HANDLE,
    (ty, param): (CK_MECHANISM_TYPE, MechanismParam),
    key: CK_OBJECT_HANDLE,
    kind: &Kind<T>,
    make: impl FnOnce(&dyn Mechanism, &MechanismParam, Option<&LoadedKey>) -> Result<Box<T>>,
) -> Result<()> {
    let s = lib.session(session)?;
    let mut s = s.lock();
    if (kind.slot)(&mut s.ops).is_some() {
        return fail(CKR_OPERATION_ACTIVE);
    }
    let m = lib.mechanism_for(ty, kind.function)?;
    let mut audit = None;
    let (key, needs_login) = match kind.usage {
        Some(usage) => {
            let (key, always_authenticate) = usable_key(lib, &s, key, usage, ty, |attrs| {
                audit = audited(lib, attrs, kind.event, ty);
                Ok(())
            })?;
            (Some(key), always_authenticate)
        }
        None => (None, false),
    };
    let op = make(m, &param, key.as_ref())?;
    let mut active = Active::new(op);
    active.needs_login = needs_login;
    active.audit = audit;
    *(kind.slot)(&mut s.ops) = Some(active);
    Ok(())
}

/// What the audit log notes of an operation `event` with the key `attrs`: only with
/// `audit = "operations"`, and only for private and secret keys.
pub(crate) fn audited(
    lib: &Library,
    attrs: &crate::object::Attributes,
    event: &'static str,
    mechanism: CK_MECHANISM_TYPE,
) -> Option<std::sync::Arc<KeyUse>> {
    let private = matches!(
        attrs.get_ulong(CKA_CLASS),
        Ok(Some(CKO_PRIVATE_KEY | CKO_SECRET_KEY))
    );
    (lib.config.audit == AuditLevel::Operations && private).then(|| {
        std::sync::Arc::new(KeyUse {
            key_id: attrs.get(CKA_ID).unwrap_or_default().to_vec(),
            event,
            mechanism,
        })
    })
}

fn key(k: Option<&LoadedKey>) -> Result<&LoadedKey> {
    k.ok_or(Error::new(CKR_KEY_HANDLE_INVALID))
}

/// Input and output of a call, as the C boundary converted them.
pub type InOut<'a> = Result<(Input<'a>, Output<'a>)>;

/// Runs `f` on the session's operation of one kind with the call's arguments `args` as the
/// C boundary converted them. Every call on an active operation comes through here, so the
/// rule that a failed call ends the operation (all but CKR_BUFFER_TOO_SMALL and a length
/// query, which `deliver` keeps) covers arguments refused at the boundary too: a NULL
/// length pointer, a NULL buffer with a non-zero length (CKR_ARGUMENTS_BAD).
fn with_op<T: ?Sized, A, R>(
    lib: &Library,
    session: CK_SESSION_HANDLE,
    slot: fn(&mut Operations) -> &mut Option<Active<T>>,
    args: Result<A>,
    f: impl FnOnce(&mut Option<Active<T>>, A) -> Result<R>,
) -> Result<R> {
    let s = lib.session(session)?;
    let mut s = s.lock();
    let s = &mut *s;
    let slot = slot(&mut s.ops);
    let audit = slot.as_ref().and_then(|a| a.audit.clone());
    let result = (|| {
        let args = match args {
            Ok(args) => args,
            Err(e) => {
                *slot = None;
                return Err(e);
            }
        };
        if slot.as_ref().is_some_and(|a| a.needs_login) {
            // A key with CKA_ALWAYS_AUTHENTICATE is used only after CKU_CONTEXT_SPECIFIC login.
            *slot = None;
            return fail(CKR_USER_NOT_LOGGED_IN);
        }
        f(slot, args)
    })();
    // An audited operation is noted once, when it ends, with how it ended.
    if let (Some(key_use), None) = (audit, slot.as_ref()) {
        s.token.audit_operation(key_use, rv_of(&result));
    }
    result
}

/// Notes a call of kind `calls` (single-part, or an update or final call) on the operation.
/// A call of the other kind than the ones before is refused with CKR_OPERATION_ACTIVE and
/// ends the operation. PKCS#11 3.0 §5.12-5.15: C_Encrypt, C_Sign, C_Digest, ... "cannot be
/// used to terminate a multi-part operation, and MUST be called after C_*Init without
/// intervening C_*Update calls"; the other way round, a C_Digest length query starts the
/// single-part call, which C_DigestUpdate or C_DigestFinal cannot continue (they would
/// digest other data than the query measured, or hand out an output kept for C_Digest).
/// The refused call fails, and a failed call ends the operation: "A call to
/// C_DigestUpdate which results in an error terminates the current digest operation", and
/// C_DigestFinal, C_Digest "always terminate the active operation" unless they return
/// CKR_BUFFER_TOO_SMALL or answer a length query (the same words for every kind).
fn enter<T: ?Sized>(slot: &mut Option<Active<T>>, calls: Calls) -> Result<()> {
    let active = slot
        .as_mut()
        .ok_or(Error::new(CKR_OPERATION_NOT_INITIALIZED))?;
    if active.calls == Calls::None {
        active.calls = calls;
    } else if active.calls != calls {
        *slot = None;
        return fail(CKR_OPERATION_ACTIVE);
    }
    Ok(())
}

/// Enters an update call, ending single-part-only operations with the spec's refusal.
fn begin_update<T: ?Sized>(
    slot: &mut Option<Active<T>>,
    allowed: impl Fn(&T) -> bool,
) -> Result<&mut Active<T>> {
    let active = slot
        .as_mut()
        .ok_or(Error::new(CKR_OPERATION_NOT_INITIALIZED))?;
    if !allowed(&active.op) {
        *slot = None;
        return fail(CKR_FUNCTION_NOT_SUPPORTED);
    }
    enter(slot, Calls::MultiPart)?;
    Ok(slot.as_mut().expect("checked above"))
}

// ---- encrypt / decrypt -------------------------------------------------------------

type Mech = (CK_MECHANISM_TYPE, MechanismParam);

pub fn encrypt_init(
    lib: &Library,
    s: CK_SESSION_HANDLE,
    m: Mech,
    k: CK_OBJECT_HANDLE,
) -> Result<()> {
    start(lib, s, m, k, &ENCRYPT, |m, p, k| m.encrypt(p, key(k)?))
}

pub fn decrypt_init(
    lib: &Library,
    s: CK_SESSION_HANDLE,
    m: Mech,
    k: CK_OBJECT_HANDLE,
) -> Result<()> {
    start(lib, s, m, k, &DECRYPT, |m, p, k| m.decrypt(p, key(k)?))
}

fn cipher_single(
    slot: &mut Option<Active<dyn CipherOperation>>,
    input: &[u8],
    out: Option<&mut [u8]>,
) -> Result<Written> {
    enter(slot, Calls::SinglePart)?;
    deliver_direct(
        slot,
        out,
        true,
        |op| op.output_len_for(input),
        |op, buf| op.run_into(input, buf),
        |op| op.run(input),
    )
}

fn cipher_update(
    slot: &mut Option<Active<dyn CipherOperation>>,
    input: &[u8],
    out: Option<&mut [u8]>,
) -> Result<Written> {
    begin_update(slot, |op| op.multi_part())?;
    deliver(
        slot,
        out,
        false,
        |op| op.output_len(input.len()),
        |op| op.update(input),
    )
}

fn cipher_final(
    slot: &mut Option<Active<dyn CipherOperation>>,
    out: Option<&mut [u8]>,
) -> Result<Written> {
    enter(slot, Calls::MultiPart)?;
    deliver(slot, out, true, |op| op.finish_len(), |op| op.finish())
}

pub fn encrypt(lib: &Library, s: CK_SESSION_HANDLE, args: InOut<'_>) -> Result<()> {
    with_op(lib, s, ENCRYPT.slot, args, |slot, (input, (out, len))| {
        cipher_single(slot, &input, out)?.report(len)
    })
}

pub fn encrypt_update(lib: &Library, s: CK_SESSION_HANDLE, args: InOut<'_>) -> Result<()> {
    with_op(lib, s, ENCRYPT.slot, args, |slot, (input, (out, len))| {
        cipher_update(slot, &input, out)?.report(len)
    })
}

pub fn encrypt_final(lib: &Library, s: CK_SESSION_HANDLE, args: Result<Output<'_>>) -> Result<()> {
    with_op(lib, s, ENCRYPT.slot, args, |slot, (out, len)| {
        cipher_final(slot, out)?.report(len)
    })
}

pub fn decrypt(lib: &Library, s: CK_SESSION_HANDLE, args: InOut<'_>) -> Result<()> {
    with_op(lib, s, DECRYPT.slot, args, |slot, (input, (out, len))| {
        cipher_single(slot, &input, out)?.report(len)
    })
}

pub fn decrypt_update(lib: &Library, s: CK_SESSION_HANDLE, args: InOut<'_>) -> Result<()> {
    with_op(lib, s, DECRYPT.slot, args, |slot, (input, (out, len))| {
        cipher_update(slot, &input, out)?.report(len)
    })
}

pub fn decrypt_final(lib: &Library, s: CK_SESSION_HANDLE, args: Result<Output<'_>>) -> Result<()> {
    with_op(lib, s, DECRYPT.slot, args, |slot, (out, len)| {
        cipher_final(slot, out)?.report(len)
    })
}

// ---- sign / verify -------------------------------------------------------------------

pub fn sign_init(lib: &Library, s: CK_SESSION_HANDLE, m: Mech, k: CK_OBJECT_HANDLE) -> Result<()> {
    start(lib, s, m, k, &SIGN, |m, p, k| m.sign(p, key(k)?))
}

pub fn sign(lib: &Library, s: CK_SESSION_HANDLE, args: InOut<'_>) -> Result<()> {
    with_op(lib, s, SIGN.slot, args, |slot, (data, (out, len))| {
        enter(slot, Calls::SinglePart)?;
        deliver(
            slot,
            out,
            true,
            |op| Ok(op.signature_len()),
            |op| {
                op.update(&data)?;
                op.finish().map(Zeroizing::new)
            },
        )?
        .report(len)
    })
}

pub fn sign_update(lib: &Library, s: CK_SESSION_HANDLE, data: Result<&[u8]>) -> Result<()> {
    with_op(lib, s, SIGN.slot, data, |slot, data| {
        let result = begin_update(slot, |op| op.multi_part())?.op.update(data);
        if result.is_err() {
            *slot = None;
        }
        result
    })
}

pub fn sign_final(lib: &Library, s: CK_SESSION_HANDLE, args: Result<Output<'_>>) -> Result<()> {
    with_op(lib, s, SIGN.slot, args, |slot, (out, len)| {
        enter(slot, Calls::MultiPart)?;
        deliver(
            slot,
            out,
            true,
            |op| Ok(op.signature_len()),
            |op| op.finish().map(Zeroizing::new),
        )?
        .report(len)
    })
}

pub fn verify_init(
    lib: &Library,
    s: CK_SESSION_HANDLE,
    m: Mech,
    k: CK_OBJECT_HANDLE,
) -> Result<()> {
    start(lib, s, m, k, &VERIFY, |m, p, k| m.verify(p, key(k)?))
}

pub fn verify(lib: &Library, s: CK_SESSION_HANDLE, args: Result<(&[u8], &[u8])>) -> Result<()> {
    with_op(lib, s, VERIFY.slot, args, |slot, (data, signature)| {
        enter(slot, Calls::SinglePart)?;
        // A verification always ends the operation, whatever its outcome.
        let mut active = slot
            .take()
            .ok_or(Error::new(CKR_OPERATION_NOT_INITIALIZED))?;
        active.op.update(data)?;
        active.op.finish(signature)
    })
}

pub fn verify_update(lib: &Library, s: CK_SESSION_HANDLE, data: Result<&[u8]>) -> Result<()> {
    with_op(lib, s, VERIFY.slot, data, |slot, data| {
        let result = begin_update(slot, |op| op.multi_part())?.op.update(data);
        if result.is_err() {
            *slot = None;
        }
        result
    })
}

pub fn verify_final(lib: &Library, s: CK_SESSION_HANDLE, signature: Result<&[u8]>) -> Result<()> {
    with_op(lib, s, VERIFY.slot, signature, |slot, signature| {
        enter(slot, Calls::MultiPart)?;
        let mut active = slot
            .take()
            .ok_or(Error::new(CKR_OPERATION_NOT_INITIALIZED))?;
        active.op.finish(signature)
    })
}

// ---- digest ----------------------------------------------------------------------------

pub fn digest_init(lib: &Library, s: CK_SESSION_HANDLE, m: Mech) -> Result<()> {
    start(lib, s, m, CK_INVALID_HANDLE, &DIGEST, |m, p, _| m.digest(p))
}

pub fn digest(lib: &Library, s: CK_SESSION_HANDLE, args: InOut<'_>) -> Result<()> {
    with_op(lib, s, DIGEST.slot, args, |slot, (data, (out, len))| {
        enter(slot, Calls::SinglePart)?;
        deliver(
            slot,
            out,
            true,
            |op| Ok(op.digest_len()),
            |op| {
                op.update(&data);
                Ok(Zeroizing::new(op.finish()))
            },
        )?
        .report(len)
    })
}

pub fn digest_update(lib: &Library, s: CK_SESSION_HANDLE, data: Result<&[u8]>) -> Result<()> {
    with_op(lib, s, DIGEST.slot, data, |slot, data| {
        begin_update(slot, |_| true)?.op.update(data);
        Ok(())
    })
}

/// C_DigestKey: a secret key's value enters the running digest as if by C_DigestUpdate,
/// and, as for C_DigestUpdate, an error ends the operation. Only a secret key whose value
/// the caller could read anyway (CKA_SENSITIVE false, CKA_EXTRACTABLE true) is digested;
/// anything else is CKR_KEY_INDIGESTIBLE: the caller chooses what surrounds the value in
/// the digest, which makes it a KDF of the key, and short keys fall to a search.
pub fn digest_key(lib: &Library, s: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE) -> Result<()> {
    let token = {
        let session = lib.session(s)?;
        let session = session.lock();
        if session.ops.digest.is_none() {
            return fail(CKR_OPERATION_NOT_INITIALIZED);
        }
        session.token.clone()
    };
    let value = digestible_value(&token, key);
    with_op(lib, s, DIGEST.slot, value, |slot, value| {
        begin_update(slot, |_| true)?.op.update(&value);
        Ok(())
    })
}

/// The object behind a key argument (C_DigestKey's, C_WrapKey's key to wrap), secrets
/// opened: a handle that names no object is CKR_KEY_HANDLE_INVALID, the code for keys.
pub(crate) fn key_object(
    token: &Token,
    key: CK_OBJECT_HANDLE,
) -> Result<std::sync::Arc<crate::token::Object>> {
    token.object(key).map_err(|e| match e.rv {
        CKR_OBJECT_HANDLE_INVALID => Error::new(CKR_KEY_HANDLE_INVALID),
        _ => e,
    })
}

/// The value of the secret key `key`, for C_DigestKey.
fn digestible_value(token: &Token, key: CK_OBJECT_HANDLE) -> Result<Zeroizing<Vec<u8>>> {
    let object = key_object(token, key)?;
    let attrs = &object.attrs;
    let readable = !attrs.flag(CKA_SENSITIVE, true) && attrs.flag(CKA_EXTRACTABLE, false);
    if attrs.get_ulong(CKA_CLASS)? != Some(CKO_SECRET_KEY) || !readable {
        return fail(CKR_KEY_INDIGESTIBLE);
    }
    if !object.locked.is_empty() {
        return fail(CKR_USER_NOT_LOGGED_IN);
    }
    object
        .attrs
        .get(CKA_VALUE)
        .map(|v| Zeroizing::new(v.to_vec()))
        .ok_or(Error::new(CKR_KEY_INDIGESTIBLE))
}

pub fn digest_final(lib: &Library, s: CK_SESSION_HANDLE, args: Result<Output<'_>>) -> Result<()> {
    with_op(lib, s, DIGEST.slot, args, |slot, (out, len)| {
        enter(slot, Calls::MultiPart)?;
        deliver(
            slot,
            out,
            true,
            |op| Ok(op.digest_len()),
            |op| Ok(Zeroizing::new(op.finish())),
        )?
        .report(len)
    })
}
