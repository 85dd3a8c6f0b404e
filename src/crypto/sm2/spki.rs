//! SubjectPublicKeyInfo export of SM2 public keys: algorithm id-ecPublicKey
//! (1.2.840.10045.2.1) with parameters 1.2.156.10197.1.301, which OpenSSL 3 reads as an SM2
//! key. Built from the key itself, not from a client's export (pkcs11-tool's is not usable).

use super::Sm2PublicKey;
use crate::error::{Error, Result};
use cryptoki_sys::*;
use sm2::pkcs8::EncodePublicKey;

/// DER SubjectPublicKeyInfo.
pub fn public_key_spki_der(key: &Sm2PublicKey) -> Result<Vec<u8>> {
    key.public()
        .to_public_key_der()
        .map(|doc| doc.as_bytes().to_vec())
        .map_err(|_| Error::with(CKR_DEVICE_ERROR, "SM2 SubjectPublicKeyInfo encoding failed"))
}
