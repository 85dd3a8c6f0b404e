//! The table of every mechanism the module offers, built once. Each family file exports
//! `mechanisms()`; adding a family is one line here.

use super::Mechanism;
use crate::error::{fail, Result};
use cryptoki_sys::*;
use once_cell::sync::Lazy;
use std::collections::BTreeMap;

pub type Registry = BTreeMap<CK_MECHANISM_TYPE, Box<dyn Mechanism>>;

static REGISTRY: Lazy<Registry> = Lazy::new(|| {
    let mut all = Registry::new();
    all.extend(super::digest::mechanisms());
    #[cfg(feature = "aws-lc")]
    all.extend(super::ec::mechanisms());
    all.extend(super::rsa::mechanisms());
    all.extend(super::sm2::mechanisms());
    all.extend(super::symmetric::mechanisms());
    all.extend(super::mac::mechanisms());
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

/// The `CKM_*` names of the offered mechanisms, for configuration files
/// (softhsm2.conf `slots.mechanisms`).
const NAMES: &[(&str, CK_MECHANISM_TYPE)] = &[
    ("CKM_RSA_PKCS_KEY_PAIR_GEN", CKM_RSA_PKCS_KEY_PAIR_GEN),
    ("CKM_RSA_PKCS", CKM_RSA_PKCS),
    ("CKM_RSA_X_509", CKM_RSA_X_509),
    ("CKM_RSA_PKCS_OAEP", CKM_RSA_PKCS_OAEP),
    ("CKM_RSA_PKCS_PSS", CKM_RSA_PKCS_PSS),
    ("CKM_SHA1_RSA_PKCS", CKM_SHA1_RSA_PKCS),
    ("CKM_SHA224_RSA_PKCS", CKM_SHA224_RSA_PKCS),
    ("CKM_SHA256_RSA_PKCS", CKM_SHA256_RSA_PKCS),
    ("CKM_SHA384_RSA_PKCS", CKM_SHA384_RSA_PKCS),
    ("CKM_SHA512_RSA_PKCS", CKM_SHA512_RSA_PKCS),
    ("CKM_SHA1_RSA_PKCS_PSS", CKM_SHA1_RSA_PKCS_PSS),
    ("CKM_SHA224_RSA_PKCS_PSS", CKM_SHA224_RSA_PKCS_PSS),
    ("CKM_SHA256_RSA_PKCS_PSS", CKM_SHA256_RSA_PKCS_PSS),
    ("CKM_SHA384_RSA_PKCS_PSS", CKM_SHA384_RSA_PKCS_PSS),
    ("CKM_SHA512_RSA_PKCS_PSS", CKM_SHA512_RSA_PKCS_PSS),
    ("CKM_SHA_1", CKM_SHA_1),
    ("CKM_SHA224", CKM_SHA224),
    ("CKM_SHA256", CKM_SHA256),
    ("CKM_SHA384", CKM_SHA384),
    ("CKM_SHA512", CKM_SHA512),
    ("CKM_EC_KEY_PAIR_GEN", CKM_EC_KEY_PAIR_GEN),
    ("CKM_EC_EDWARDS_KEY_PAIR_GEN", CKM_EC_EDWARDS_KEY_PAIR_GEN),
    (
        "CKM_EC_MONTGOMERY_KEY_PAIR_GEN",
        CKM_EC_MONTGOMERY_KEY_PAIR_GEN,
    ),
    ("CKM_ECDSA", CKM_ECDSA),
    ("CKM_ECDSA_SHA1", CKM_ECDSA_SHA1),
    ("CKM_ECDSA_SHA224", CKM_ECDSA_SHA224),
    ("CKM_ECDSA_SHA256", CKM_ECDSA_SHA256),
    ("CKM_ECDSA_SHA384", CKM_ECDSA_SHA384),
    ("CKM_ECDSA_SHA512", CKM_ECDSA_SHA512),
    ("CKM_EDDSA", CKM_EDDSA),
    ("CKM_ECDH1_DERIVE", CKM_ECDH1_DERIVE),
    ("CKM_ECDH1_COFACTOR_DERIVE", CKM_ECDH1_COFACTOR_DERIVE),
    ("CKM_SM2", crate::vendor::CKM_SM2),
    ("CKM_SM2_KEY_PAIR_GEN", crate::vendor::CKM_SM2_KEY_PAIR_GEN),
    ("CKM_SM3_SM2", crate::vendor::CKM_SM3_SM2),
    ("CKM_SM3_SM2_DER", crate::vendor::CKM_SM3_SM2_DER),
    ("CKM_SM2_RAW", crate::vendor::CKM_SM2_RAW),
    ("CKM_SM2_CIPHER_DER", crate::vendor::CKM_SM2_CIPHER_DER),
    ("CKM_SM3", crate::vendor::CKM_SM3),
    ("CKM_AES_KEY_GEN", CKM_AES_KEY_GEN),
    ("CKM_AES_ECB", CKM_AES_ECB),
    ("CKM_AES_CBC", CKM_AES_CBC),
    ("CKM_AES_CBC_PAD", CKM_AES_CBC_PAD),
    ("CKM_AES_CTR", CKM_AES_CTR),
    ("CKM_AES_GCM", CKM_AES_GCM),
    ("CKM_AES_CMAC", CKM_AES_CMAC),
    ("CKM_AES_CMAC_GENERAL", CKM_AES_CMAC_GENERAL),
    ("CKM_AES_KEY_WRAP", CKM_AES_KEY_WRAP),
    ("CKM_AES_KEY_WRAP_KWP", CKM_AES_KEY_WRAP_KWP),
    ("CKM_AES_ECB_ENCRYPT_DATA", CKM_AES_ECB_ENCRYPT_DATA),
    ("CKM_AES_CBC_ENCRYPT_DATA", CKM_AES_CBC_ENCRYPT_DATA),
    ("CKM_SM4_KEY_GEN", crate::vendor::CKM_SM4_KEY_GEN),
    ("CKM_SM4_ECB", crate::vendor::CKM_SM4_ECB),
    ("CKM_SM4_CBC", crate::vendor::CKM_SM4_CBC),
    ("CKM_SM4_CBC_PAD", crate::vendor::CKM_SM4_CBC_PAD),
    ("CKM_GENERIC_SECRET_KEY_GEN", CKM_GENERIC_SECRET_KEY_GEN),
    ("CKM_SHA_1_HMAC", CKM_SHA_1_HMAC),
    ("CKM_SHA_1_HMAC_GENERAL", CKM_SHA_1_HMAC_GENERAL),
    ("CKM_SHA224_HMAC", CKM_SHA224_HMAC),
    ("CKM_SHA224_HMAC_GENERAL", CKM_SHA224_HMAC_GENERAL),
    ("CKM_SHA256_HMAC", CKM_SHA256_HMAC),
    ("CKM_SHA256_HMAC_GENERAL", CKM_SHA256_HMAC_GENERAL),
    ("CKM_SHA384_HMAC", CKM_SHA384_HMAC),
    ("CKM_SHA384_HMAC_GENERAL", CKM_SHA384_HMAC_GENERAL),
    ("CKM_SHA512_HMAC", CKM_SHA512_HMAC),
    ("CKM_SHA512_HMAC_GENERAL", CKM_SHA512_HMAC_GENERAL),
    ("CKM_SM3_HMAC", crate::vendor::CKM_SM3_HMAC),
    ("CKM_SM3_HMAC_GENERAL", crate::vendor::CKM_SM3_HMAC_GENERAL),
];

/// The `CKM_*` name of `ty` (audit entries), or its value in hex for one without a name.
pub fn mechanism_name(ty: CK_MECHANISM_TYPE) -> String {
    NAMES
        .iter()
        .find(|(_, t)| *t == ty)
        .map_or_else(|| format!("0x{ty:x}"), |(name, _)| name.to_string())
}

/// The mechanism a `CKM_*` name stands for, among those the module offers.
pub fn mechanism_by_name(name: &str) -> Option<CK_MECHANISM_TYPE> {
    NAMES.iter().find(|(n, _)| *n == name).map(|(_, ty)| *ty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_offered_mechanism_has_a_name() {
        for ty in mechanism_list() {
            assert!(NAMES.iter().any(|(_, t)| *t == ty), "no name for 0x{ty:x}");
        }
        if cfg!(feature = "aws-lc") {
            assert!(NAMES.iter().all(|(_, ty)| REGISTRY.contains_key(ty)));
        }
    }
}
