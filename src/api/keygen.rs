//! Key generation.

use crate::api::object::check_storage;
use crate::error::Result;
use crate::mechanism::MechanismParam;
use crate::object::policy::{self, Origin};
use crate::object::Attributes;
use crate::state::Library;
use cryptoki_sys::*;

pub fn generate_key_pair(
    lib: &Library,
    session: CK_SESSION_HANDLE,
    (ty, param): (CK_MECHANISM_TYPE, MechanismParam),
    public_template: Attributes,
    private_template: Attributes,
) -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE)> {
    let s = lib.session(session)?;
    let s = s.lock();
    let m = lib.mechanism(ty)?;
    // Refuse early what the session cannot store, before the (slow) generation.
    for template in [&public_template, &private_template] {
        check_storage(&s.token, s.read_write, template)?;
    }
    super::key_size::check_generation(&lib.config, m.generated_key_type(), &public_template)?;
    if let Some(key_type) = m.generated_key_type() {
        policy::check_generate_template(&public_template, CKO_PUBLIC_KEY, key_type)?;
        policy::check_generate_template(&private_template, CKO_PRIVATE_KEY, key_type)?;
    }
    let generated = m.generate_key_pair(&param, &public_template, &private_template)?;
    let origin = Origin::Generate { mechanism: ty };
    let public = policy::new_object(&public_template, origin, &generated.public)?;
    let private = policy::new_object(&private_template, origin, &generated.private)?;
    // A private key is private by default, which its template need not have said.
    check_storage(&s.token, s.read_write, &private)?;
    let public_handle = s.token.create_object(public, session)?;
    match crate::api::object::create_audited(&s.token, private, session, "create") {
        Ok(private_handle) => Ok((public_handle, private_handle)),
        Err(e) => {
            // Never leave half a key pair behind.
            let _ = s.token.destroy_object(public_handle);
            Err(e)
        }
    }
}

/// C_GenerateKey: a secret key (AES, SM4, generic secret) from the caller's template.
pub fn generate_key(
    lib: &Library,
    session: CK_SESSION_HANDLE,
    (ty, param): (CK_MECHANISM_TYPE, MechanismParam),
    template: Attributes,
) -> Result<CK_OBJECT_HANDLE> {
    let s = lib.session(session)?;
    let s = s.lock();
    let m = lib.mechanism_for(ty, CKF_GENERATE)?;
    check_storage(&s.token, s.read_write, &template)?;
    if let Some(key_type) = m.generated_key_type() {
        policy::check_generate_template(&template, CKO_SECRET_KEY, key_type)?;
    }
    let generated = m.generate_key(&param, &template)?;
    let attrs = policy::new_object(&template, Origin::Generate { mechanism: ty }, &generated)?;
    // A secret key is private by default, which its template need not have said.
    check_storage(&s.token, s.read_write, &attrs)?;
    crate::api::object::create_audited(&s.token, attrs, session, "create")
}
