//! `CKA_EC_POINT`: the DER OCTET STRING of the public key (the uncompressed point of a
//! Weierstrass curve, the 32 bytes of an Ed25519 or X25519 key). Importers also send the
//! raw key; both are read, the DER form is stored.

use crate::error::{Error, Result};
use cryptoki_sys::*;
use der::asn1::OctetStringRef;
use der::{Decode, Encode};

/// The DER OCTET STRING of a raw public key.
pub fn to_der(raw: &[u8]) -> Vec<u8> {
    OctetStringRef::new(raw)
        .and_then(|o| o.to_der())
        .expect("a public key fits an OCTET STRING")
}

/// The raw public key of `expected_len` bytes in a `CKA_EC_POINT` (DER or raw) or in a
/// derivation's public data; `None` when it is neither.
pub fn raw_of(value: &[u8], expected_len: usize) -> Option<&[u8]> {
    if let Ok(octets) = <&OctetStringRef>::from_der(value) {
        if octets.as_bytes().len() == expected_len {
            return Some(octets.as_bytes());
        }
    }
    // A raw key is taken only by its exact length: a DER form is always longer.
    (value.len() == expected_len).then_some(value)
}

/// As `raw_of`, for a stored attribute: anything else is `CKR_ATTRIBUTE_VALUE_INVALID`.
pub fn raw_attribute(value: &[u8], expected_len: usize) -> Result<&[u8]> {
    raw_of(value, expected_len).ok_or_else(|| {
        Error::with(
            CKR_ATTRIBUTE_VALUE_INVALID,
            "CKA_EC_POINT is not a public key of the curve",
        )
    })
}
