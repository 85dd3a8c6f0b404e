//! The table of every mechanism the module offers, built once. Each family file exports
//! `mechanisms()`; adding a family is one line here.

use super::Mechanism;
use crate::crypto::hash::HashAlg;
use crate::error::{fail, Result};
use cryptoki_sys::*;
use once_cell::sync::Lazy;
use std::collections::BTreeMap;

pub type Registry = BTreeMap<CK_MECHANISM_TYPE, Box<dyn Mechanism>>;

static REGISTRY: Lazy<Registry> = Lazy::new(|| {
    let mut all = Registry::new();
    for (ty, alg) in [
        (CKM_SHA_1, HashAlg::Sha1),
        (CKM_SHA224, HashAlg::Sha224),
        (CKM_SHA256, HashAlg::Sha256),
        (CKM_SHA384, HashAlg::Sha384),
        (CKM_SHA512, HashAlg::Sha512),
    ] {
        all.insert(
            ty,
            Box::new(super::digest::Digest(alg)) as Box<dyn Mechanism>,
        );
    }
    all.extend(super::rsa::mechanisms());
    all.extend(super::sm2::mechanisms());
    all
});

/// The mechanism for `ty`, or `CKR_MECHANISM_INVALID`.
pub fn lookup(ty: CK_MECHANISM_TYPE) -> Result<&'static dyn Mechanism> {
    match REGISTRY.get(&ty) {
        Some(m) => Ok(m.as_ref()),
        None => fail(CKR_MECHANISM_INVALID),
    }
}

/// Every mechanism type, in ascending order (C_GetMechanismList).
pub fn mechanism_list() -> Vec<CK_MECHANISM_TYPE> {
    REGISTRY.keys().copied().collect()
}
