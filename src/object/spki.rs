//! Public keys as DER SubjectPublicKeyInfo and PEM `PUBLIC KEY`, built from a public key
//! object's attributes (how a KMS hands a public key to senders).

use crate::error::{fail, Error, Result};
use crate::object::Attributes;
use cryptoki_sys::*;
use pkcs8::der::pem::LineEnding;

fn attr(attrs: &Attributes, ty: CK_ATTRIBUTE_TYPE) -> Result<&[u8]> {
    attrs.get(ty).ok_or(Error::new(CKR_TEMPLATE_INCOMPLETE))
}

/// DER SubjectPublicKeyInfo of an RSA, EC (NIST, SM2), Ed25519 or X25519 public key object.
pub fn public_key_der(attrs: &Attributes) -> Result<Vec<u8>> {
    match attrs.get_ulong(CKA_KEY_TYPE)? {
        Some(CKK_RSA) => crate::mechanism::rsa::export_public_key(
            attr(attrs, CKA_MODULUS)?,
            attr(attrs, CKA_PUBLIC_EXPONENT)?,
        ),
        // SM2 keys made before CKA_EC_PARAMS was required carry none.
        Some(CKK_EC) if !attrs.contains(CKA_EC_PARAMS) => {
            crate::mechanism::sm2::export_public_key(attr(attrs, CKA_EC_POINT)?)
        }
        #[cfg(feature = "aws-lc")]
        Some(CKK_EC | CKK_EC_EDWARDS | CKK_EC_MONTGOMERY) => {
            crate::mechanism::ec::export_public_key(attrs)
        }
        #[cfg(not(feature = "aws-lc"))]
        Some(CKK_EC) => crate::mechanism::sm2::export_public_key(attr(attrs, CKA_EC_POINT)?),
        _ => fail(CKR_KEY_TYPE_INCONSISTENT),
    }
}

/// PEM `PUBLIC KEY` of a public key object (`public_key_der`).
pub fn public_key_pem(attrs: &Attributes) -> Result<String> {
    pem_of_der(&public_key_der(attrs)?)
}

/// PEM `PUBLIC KEY` of a DER SubjectPublicKeyInfo.
pub fn pem_of_der(der: &[u8]) -> Result<String> {
    pkcs8::der::pem::encode_string("PUBLIC KEY", LineEnding::LF, der)
        .map_err(|_| Error::new(CKR_GENERAL_ERROR))
}
