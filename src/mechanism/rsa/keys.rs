//! RSA key objects: stored attributes -> parsed keys, and the key-kind checks operations make.

use crate::crypto::rsa::{
    backend, public_key_spki_der, RsaPrivateComponents, RsaPrivateKey, RsaPublicComponents,
    RsaPublicKey,
};
use crate::error::{fail, Error, Result};
use crate::mechanism::LoadedKey;
use crate::object::Attributes;
use cryptoki_sys::*;
use std::sync::Arc;
use zeroize::Zeroizing;

/// Parses an RSA public or private key object once; the token caches the result.
pub fn load_key(attrs: &Attributes) -> Result<LoadedKey> {
    match attrs.get_ulong(CKA_CLASS)? {
        Some(CKO_PUBLIC_KEY) => {
            let public = public_components(attrs)?;
            Ok(LoadedKey::RsaPublic(backend().load_public(&public)?))
        }
        Some(CKO_PRIVATE_KEY) => {
            let private = private_components(attrs)?;
            Ok(LoadedKey::RsaPrivate(backend().load_private(&private)?))
        }
        Some(_) => fail(CKR_KEY_TYPE_INCONSISTENT),
        None => Err(Error::with(
            CKR_TEMPLATE_INCOMPLETE,
            "key object without CKA_CLASS",
        )),
    }
}

/// The DER SubjectPublicKeyInfo of an RSA public key object from its `CKA_MODULUS` and
/// `CKA_PUBLIC_EXPONENT`. `object::spki` makes the PEM.
pub fn export_public_key(modulus: &[u8], public_exponent: &[u8]) -> Result<Vec<u8>> {
    public_key_spki_der(&RsaPublicComponents {
        modulus: modulus.to_vec(),
        public_exponent: public_exponent.to_vec(),
    })
}

fn required(attrs: &Attributes, ty: CK_ATTRIBUTE_TYPE) -> Result<&[u8]> {
    match attrs.get(ty) {
        Some(v) if !v.is_empty() => Ok(v),
        Some(_) => Err(Error::with(
            CKR_ATTRIBUTE_VALUE_INVALID,
            format!("empty RSA component 0x{ty:x}"),
        )),
        None => Err(Error::with(
            CKR_TEMPLATE_INCOMPLETE,
            format!("missing RSA component 0x{ty:x}"),
        )),
    }
}

fn optional_secret(attrs: &Attributes, ty: CK_ATTRIBUTE_TYPE) -> Option<Zeroizing<Vec<u8>>> {
    attrs
        .get(ty)
        .filter(|v| !v.is_empty())
        .map(|v| Zeroizing::new(v.to_vec()))
}

fn public_components(attrs: &Attributes) -> Result<RsaPublicComponents> {
    Ok(RsaPublicComponents {
        modulus: required(attrs, CKA_MODULUS)?.to_vec(),
        public_exponent: required(attrs, CKA_PUBLIC_EXPONENT)?.to_vec(),
    })
}

/// n, e and d are needed (the primes are recovered from them); the CRT values are optional.
fn private_components(attrs: &Attributes) -> Result<RsaPrivateComponents> {
    Ok(RsaPrivateComponents {
        public: public_components(attrs)?,
        private_exponent: Zeroizing::new(required(attrs, CKA_PRIVATE_EXPONENT)?.to_vec()),
        prime_1: optional_secret(attrs, CKA_PRIME_1),
        prime_2: optional_secret(attrs, CKA_PRIME_2),
        exponent_1: optional_secret(attrs, CKA_EXPONENT_1),
        exponent_2: optional_secret(attrs, CKA_EXPONENT_2),
        coefficient: optional_secret(attrs, CKA_COEFFICIENT),
    })
}

/// The RSA public key an encrypt or verify operation needs.
pub fn public_key(key: &LoadedKey) -> Result<Arc<dyn RsaPublicKey>> {
    match key {
        LoadedKey::RsaPublic(k) => Ok(k.clone()),
        _ => Err(Error::with(
            CKR_KEY_TYPE_INCONSISTENT,
            "an RSA public key is needed",
        )),
    }
}

/// The RSA private key a decrypt or sign operation needs.
pub fn private_key(key: &LoadedKey) -> Result<Arc<dyn RsaPrivateKey>> {
    match key {
        LoadedKey::RsaPrivate(k) => Ok(k.clone()),
        _ => Err(Error::with(
            CKR_KEY_TYPE_INCONSISTENT,
            "an RSA private key is needed",
        )),
    }
}
