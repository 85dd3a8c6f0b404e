//! C_WrapKey and C_UnwrapKey.
//!
//! A wrap is a single-part encryption of the key's bytes with a mechanism whose info says
//! CKF_WRAP, an unwrap a single-part decryption with one that says CKF_UNWRAP; the key
//! checks are the ones C_EncryptInit / C_DecryptInit make, with CKA_WRAP / CKA_UNWRAP as
//! the usage. The key's bytes are a secret key's CKA_VALUE, or a private key's PKCS#8
//! PrivateKeyInfo. Unwrapping builds the new key from the caller's template through the
//! creation rules of C_CreateObject (`policy::new_object`, origin Unwrap), so nothing is
//! created unless every check passes.
//!
//! Codes (base spec §5.18): errors of the wrapping key are reported as its own codes
//! (CKR_WRAPPING_KEY_HANDLE_INVALID, ..._SIZE_RANGE, ..._TYPE_INCONSISTENT, and the
//! UNWRAPPING_ twins); a key that policy keeps from being wrapped is CKR_KEY_UNEXTRACTABLE
//! (CKA_EXTRACTABLE false) or CKR_KEY_NOT_WRAPPABLE (CKA_WRAP_WITH_TRUSTED with an untrusted
//! wrapping key, a key outside the wrapping key's CKA_WRAP_TEMPLATE, a class that cannot be
//! wrapped); a wrapped key that does not decrypt is CKR_WRAPPED_KEY_INVALID or
//! CKR_WRAPPED_KEY_LEN_RANGE.

use crate::api::crypto::{key_object, single_call_key};
use crate::api::object::{check_key_material, check_storage};
use crate::error::{fail, Error, Result};
use crate::mechanism::{self, MechanismParam};
use crate::object::policy::{self, Origin};
use crate::object::{pkcs8, Attributes};
use crate::session::Written;
use crate::state::Library;
use cryptoki_sys::*;
use zeroize::Zeroizing;

/// Replaces the codes of `renames` (from, to) in an error.
fn renamed(renames: &'static [(CK_RV, CK_RV)]) -> impl Fn(Error) -> Error {
    move |mut e| {
        if let Some((_, to)) = renames.iter().find(|(from, _)| *from == e.rv) {
            e.rv = *to;
        }
        e
    }
}

const WRAPPING_KEY: &[(CK_RV, CK_RV)] = &[
    (CKR_KEY_HANDLE_INVALID, CKR_WRAPPING_KEY_HANDLE_INVALID),
    (
        CKR_KEY_TYPE_INCONSISTENT,
        CKR_WRAPPING_KEY_TYPE_INCONSISTENT,
    ),
    (CKR_KEY_SIZE_RANGE, CKR_WRAPPING_KEY_SIZE_RANGE),
];
const UNWRAPPING_KEY: &[(CK_RV, CK_RV)] = &[
    (CKR_KEY_HANDLE_INVALID, CKR_UNWRAPPING_KEY_HANDLE_INVALID),
    (
        CKR_KEY_TYPE_INCONSISTENT,
        CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT,
    ),
    (CKR_KEY_SIZE_RANGE, CKR_UNWRAPPING_KEY_SIZE_RANGE),
];
/// The wrapped key's bytes do not fit the mechanism (too long for RSA, not whole blocks).
const WRAPPED_INPUT: &[(CK_RV, CK_RV)] = &[(CKR_DATA_LEN_RANGE, CKR_KEY_SIZE_RANGE)];
const WRAPPED_KEY: &[(CK_RV, CK_RV)] = &[
    (CKR_ENCRYPTED_DATA_INVALID, CKR_WRAPPED_KEY_INVALID),
    (CKR_ENCRYPTED_DATA_LEN_RANGE, CKR_WRAPPED_KEY_LEN_RANGE),
];

/// What the wrapping (or unwrapping) key's clear attributes say about the operation.
#[derive(Default)]
struct KeyPolicy {
    trusted: bool,
    /// CKA_WRAP_TEMPLATE or CKA_UNWRAP_TEMPLATE.
    template: Option<Attributes>,
}

fn template_attribute(attrs: &Attributes, ty: CK_ATTRIBUTE_TYPE) -> Result<Option<Attributes>> {
    match attrs.get(ty) {
        None => Ok(None),
        Some(bytes) => Attributes::from_template_bytes(bytes)
            .map(Some)
            .ok_or_else(|| Error::with(CKR_DEVICE_ERROR, "stored key has a malformed template")),
    }
}

pub fn wrap_key(
    lib: &Library,
    session: CK_SESSION_HANDLE,
    (ty, param): (CK_MECHANISM_TYPE, MechanismParam),
    wrapping: CK_OBJECT_HANDLE,
    key: CK_OBJECT_HANDLE,
    out: Option<&mut [u8]>,
) -> Result<Written> {
    let s = lib.session(session)?;
    let s = s.lock();
    let mut audit = None;
    let query = out.is_none();
    let result = wrap_with(lib, &s, (ty, param), wrapping, key, out, &mut audit);
    // With `audit = "operations"`, a wrap under a secret key is noted (not a length query).
    if let (Some(key_use), false) = (audit, query) {
        s.token
            .audit_operation(key_use, crate::error::rv_of(&result));
    }
    result
}

fn wrap_with(
    lib: &Library,
    s: &crate::session::Session,
    (ty, param): (CK_MECHANISM_TYPE, MechanismParam),
    wrapping: CK_OBJECT_HANDLE,
    key: CK_OBJECT_HANDLE,
    out: Option<&mut [u8]>,
    audit: &mut Option<std::sync::Arc<crate::audit::KeyUse>>,
) -> Result<Written> {
    let m = lib.mechanism_for(ty, CKF_WRAP)?;
    let mut wrapper = KeyPolicy::default();
    let wrapping_key = single_call_key(lib, s, wrapping, CKA_WRAP, ty, |attrs| {
        wrapper.trusted = attrs.flag(CKA_TRUSTED, false);
        wrapper.template = template_attribute(attrs, CKA_WRAP_TEMPLATE)?;
        *audit = super::crypto::audited(lib, attrs, "wrap", ty);
        Ok(())
    })
    .map_err(renamed(WRAPPING_KEY))?;

    let object = key_object(&s.token, key)?;
    let attrs = &object.attrs;
    let class = attrs.get_ulong(CKA_CLASS)?;
    if !matches!(class, Some(CKO_SECRET_KEY | CKO_PRIVATE_KEY)) {
        return match class {
            Some(CKO_PUBLIC_KEY) => Err(Error::with(
                CKR_KEY_NOT_WRAPPABLE,
                "public keys are not wrapped: they are read",
            )),
            _ => fail(CKR_KEY_HANDLE_INVALID),
        };
    }
    if !attrs.flag(CKA_EXTRACTABLE, false) {
        return fail(CKR_KEY_UNEXTRACTABLE);
    }
    if attrs.flag(CKA_WRAP_WITH_TRUSTED, false) && !wrapper.trusted {
        return Err(Error::with(
            CKR_KEY_NOT_WRAPPABLE,
            "CKA_WRAP_WITH_TRUSTED key and an untrusted wrapping key",
        ));
    }
    if let Some(template) = &wrapper.template {
        let mut template = template.clone();
        policy::normalize_template(&mut template);
        if !attrs.matches(&template) {
            return Err(Error::with(
                CKR_KEY_NOT_WRAPPABLE,
                "key does not match the wrapping key's CKA_WRAP_TEMPLATE",
            ));
        }
    }
    if !object.locked.is_empty() {
        return fail(CKR_USER_NOT_LOGGED_IN);
    }
    let bytes = key_bytes(attrs)?;

    let mut op = m
        .encrypt(&param, &wrapping_key)
        .map_err(renamed(WRAPPING_KEY))?;
    let Some(buf) = out else {
        let len = op.output_len_for(&bytes).map_err(renamed(WRAPPED_INPUT))?;
        return Ok(Written::Done(len));
    };
    let wrapped = op.run(&bytes).map_err(renamed(WRAPPED_INPUT))?;
    if wrapped.len() > buf.len() {
        // The bound, not this wrap's length: a randomised wrap (SM2's DER form) may be
        // longer next time.
        let bound = op.output_len_for(&bytes).map_err(renamed(WRAPPED_INPUT))?;
        return Ok(Written::TooSmall(bound.max(wrapped.len())));
    }
    buf[..wrapped.len()].copy_from_slice(&wrapped);
    Ok(Written::Done(wrapped.len()))
}

/// The bytes a wrap encrypts: a secret key's value, a private key's PKCS#8 encoding.
fn key_bytes(attrs: &Attributes) -> Result<Zeroizing<Vec<u8>>> {
    match attrs.get_ulong(CKA_CLASS)? {
        Some(CKO_SECRET_KEY) => attrs
            .get(CKA_VALUE)
            .map(|v| Zeroizing::new(v.to_vec()))
            .ok_or_else(|| Error::with(CKR_DEVICE_ERROR, "stored secret key without a value")),
        _ => pkcs8::encode(attrs),
    }
}

pub fn unwrap_key(
    lib: &Library,
    session: CK_SESSION_HANDLE,
    (ty, param): (CK_MECHANISM_TYPE, MechanismParam),
    unwrapping: CK_OBJECT_HANDLE,
    wrapped: &[u8],
    template: Attributes,
) -> Result<CK_OBJECT_HANDLE> {
    let s = lib.session(session)?;
    let s = s.lock();
    let m = lib.mechanism_for(ty, CKF_UNWRAP)?;
    let mut unwrapper = KeyPolicy::default();
    let unwrapping_key = single_call_key(lib, &s, unwrapping, CKA_UNWRAP, ty, |attrs| {
        unwrapper.template = template_attribute(attrs, CKA_UNWRAP_TEMPLATE)?;
        Ok(())
    })
    .map_err(renamed(UNWRAPPING_KEY))?;
    let template = with_unwrap_template(template, unwrapper.template.as_ref())?;
    // Refuse what the session cannot hold before the private-key work.
    check_storage(&s.token, s.read_write, &template)?;
    let class = template
        .get_ulong(CKA_CLASS)?
        .ok_or_else(|| Error::with(CKR_TEMPLATE_INCOMPLETE, "CKA_CLASS is required"))?;

    let mut op = m
        .decrypt(&param, &unwrapping_key)
        .map_err(renamed(UNWRAPPING_KEY))?;
    let bytes = op.run(wrapped).map_err(renamed(WRAPPED_KEY))?;
    let material = match class {
        CKO_SECRET_KEY => secret_material(&template, &bytes)?,
        CKO_PRIVATE_KEY => pkcs8::decode(&bytes)?,
        _ => {
            return Err(Error::with(
                CKR_TEMPLATE_INCONSISTENT,
                "only secret and private keys are unwrapped",
            ))
        }
    };
    let attrs = policy::new_object(&template, Origin::Unwrap, &material)?;
    check_storage(&s.token, s.read_write, &attrs)?;
    check_key_material(&lib.config, &attrs)?;
    crate::api::object::create_audited(&s.token, attrs, session, "import")
}

/// The caller's template with the unwrapping key's CKA_UNWRAP_TEMPLATE added: an attribute
/// both give must have the same value (CKR_TEMPLATE_INCONSISTENT otherwise, §4.9).
fn with_unwrap_template(template: Attributes, forced: Option<&Attributes>) -> Result<Attributes> {
    let mut template = template;
    policy::normalize_template(&mut template);
    let Some(forced) = forced else {
        return Ok(template);
    };
    let mut forced = forced.clone();
    policy::normalize_template(&mut forced);
    for (ty, value) in forced.iter() {
        match template.get(ty) {
            Some(given) if given != value => {
                return Err(Error::with(
                    CKR_TEMPLATE_INCONSISTENT,
                    format!("attribute 0x{ty:x} contradicts the unwrapping key's template"),
                ))
            }
            _ => template.set(ty, value),
        }
    }
    Ok(template)
}

/// A secret key's material from its unwrapped bytes. Every wrapping mechanism offered
/// restores the exact length, so a CKA_VALUE_LEN in the template must agree with it
/// (`policy::new_object` checks); a length the key type does not have means the wrapped
/// key was not a key of that type: CKR_WRAPPED_KEY_INVALID.
fn secret_material(template: &Attributes, bytes: &[u8]) -> Result<Attributes> {
    let key_type = template
        .get_ulong(CKA_KEY_TYPE)?
        .ok_or_else(|| Error::with(CKR_TEMPLATE_INCOMPLETE, "CKA_KEY_TYPE is required"))?;
    let lengths = mechanism::secret::key_lengths(key_type).ok_or_else(|| {
        Error::with(
            CKR_TEMPLATE_INCONSISTENT,
            "key type is not a secret key type",
        )
    })?;
    if !lengths.contains(bytes.len()) {
        return Err(Error::with(
            CKR_WRAPPED_KEY_INVALID,
            "unwrapped value has a length the key type does not have",
        ));
    }
    let mut material = Attributes::with_capacity(1, bytes.len());
    material.set_slice(CKA_VALUE, bytes);
    Ok(material)
}
