//! C_DeriveKey. The mechanism computes the new key's value from the base key (checked for
//! CKA_DERIVE and CKA_ALLOWED_MECHANISMS); the key is built from the caller's template by
//! the creation rules (`policy::new_object`, origin Derive), so nothing is created unless
//! every check passes. A template without CKA_CLASS / CKA_KEY_TYPE makes a generic secret
//! key; CKA_VALUE_LEN, when given, takes the first that many bytes of the derived value.

use crate::api::crypto::single_call_key;
use crate::api::object::check_storage;
use crate::error::{Error, Result};
use crate::mechanism::{self, MechanismParam};
use crate::object::policy::{self, Origin};
use crate::object::Attributes;
use crate::state::Library;
use cryptoki_sys::*;

pub fn derive_key(
    lib: &Library,
    session: CK_SESSION_HANDLE,
    (ty, param): (CK_MECHANISM_TYPE, MechanismParam),
    base: CK_OBJECT_HANDLE,
    template: Attributes,
) -> Result<CK_OBJECT_HANDLE> {
    let s = lib.session(session)?;
    let s = s.lock();
    let m = lib.mechanism_for(ty, CKF_DERIVE)?;
    let mut history = (false, false);
    let base_key = single_call_key(lib, &s, base, CKA_DERIVE, ty, |attrs| {
        history = (
            attrs.flag(CKA_ALWAYS_SENSITIVE, false),
            attrs.flag(CKA_NEVER_EXTRACTABLE, false),
        );
        Ok(())
    })?;
    let mut template = template;
    policy::normalize_template(&mut template);
    if !template.contains(CKA_CLASS) {
        template.set_ulong(CKA_CLASS, CKO_SECRET_KEY);
    }
    if !template.contains(CKA_KEY_TYPE) {
        template.set_ulong(CKA_KEY_TYPE, CKK_GENERIC_SECRET);
    }
    check_storage(&s.token, s.read_write, &template)?;
    if template.get_ulong(CKA_CLASS)? != Some(CKO_SECRET_KEY) {
        return Err(Error::with(
            CKR_TEMPLATE_INCONSISTENT,
            "only secret keys are derived",
        ));
    }
    let key_type = template
        .get_ulong(CKA_KEY_TYPE)?
        .unwrap_or(CKK_GENERIC_SECRET);
    let lengths = mechanism::secret::key_lengths(key_type);
    let requested = template.get_ulong(CKA_VALUE_LEN)?;
    // A key type of one length (SM4) needs no CKA_VALUE_LEN to tell a KDF what to make.
    let value_len = requested
        .map(|l| l as usize)
        .or_else(|| lengths.and_then(|l| l.only()));
    let mut value = m.derive(&param, &base_key, value_len)?;
    if let Some(len) = requested {
        let len = len as usize;
        // Data too short for the key asked for is a fault of the parameter (the data), as
        // SoftHSMv2 and python-pkcs11's suite also have it.
        if len == 0 || len > value.len() {
            return Err(Error::with(
                CKR_MECHANISM_PARAM_INVALID,
                "derivation data shorter than CKA_VALUE_LEN",
            ));
        }
        value.truncate(len);
    }
    let fits = lengths.is_some_and(|l| l.contains(value.len()));
    if !fits {
        return Err(Error::with(
            CKR_MECHANISM_PARAM_INVALID,
            "the derivation data gives a length the key type does not have",
        ));
    }
    let mut material = Attributes::new();
    material.set(CKA_VALUE, value.as_slice());
    let origin = Origin::Derive {
        base_always_sensitive: history.0,
        base_never_extractable: history.1,
    };
    let attrs = policy::new_object(&template, origin, &material)?;
    check_storage(&s.token, s.read_write, &attrs)?;
    crate::api::object::create_audited(&s.token, attrs, session, "create")
}
