//! SM2 key objects <-> parsed keys: `CKA_EC_PARAMS`, `CKA_EC_POINT` and `CKA_VALUE` in the
//! form sm2.md fixes (`CKK_EC`, the SM2 OID on both objects, the point as a DER OCTET STRING).

use crate::crypto::sm2::{public_key_spki_der, Sm2PrivateKey, Sm2PublicKey, POINT_LEN};
use crate::error::{fail, Error, Result};
use crate::mechanism::LoadedKey;
use crate::object::Attributes;
use crate::vendor::{CKK_SM2, SM2_OID_DER};
use cryptoki_sys::*;
use der::Decode;
use std::sync::Arc;

/// Length of `CKA_EC_POINT`: `04 41` then the 65-byte point.
const EC_POINT_DER_LEN: usize = POINT_LEN + 2;

/// Checks a `CKA_EC_PARAMS` value: the SM2 OID is fine; any other named curve (a DER OID)
/// is `CKR_CURVE_NOT_SUPPORTED`; anything that is no DER OID at all (explicit parameters,
/// garbage) is `CKR_ATTRIBUTE_VALUE_INVALID`.
pub(super) fn check_ec_params(value: &[u8]) -> Result<()> {
    if value == SM2_OID_DER {
        return Ok(());
    }
    match <der::asn1::ObjectIdentifier>::from_der(value) {
        Ok(_) => Err(Error::with(
            CKR_CURVE_NOT_SUPPORTED,
            "only the SM2 curve is supported",
        )),
        Err(_) => Err(Error::with(
            CKR_ATTRIBUTE_VALUE_INVALID,
            "CKA_EC_PARAMS is not a named curve OID",
        )),
    }
}

/// True for a key type an SM2 key may carry in a template (`CKK_EC` or the `CKK_SM2` alias).
pub(super) fn is_sm2_key_type(key_type: CK_KEY_TYPE) -> bool {
    key_type == CKK_EC || key_type == CKK_SM2
}

/// `CKA_EC_POINT` for a point: DER OCTET STRING `04 41 04||X||Y`.
pub(super) fn ec_point_der(point: &[u8; POINT_LEN]) -> Vec<u8> {
    let mut out = Vec::with_capacity(EC_POINT_DER_LEN);
    out.extend_from_slice(&[0x04, POINT_LEN as u8]);
    out.extend_from_slice(point);
    out
}

/// The uncompressed point inside a `CKA_EC_POINT` value: the DER OCTET STRING (67 bytes) or,
/// as some importers send it, the raw 65-byte point. Anything else is
/// `CKR_ATTRIBUTE_VALUE_INVALID`.
fn point_from_ec_point(value: &[u8]) -> Result<&[u8]> {
    match value {
        [0x04, len, point @ ..] if usize::from(*len) == POINT_LEN && point.len() == POINT_LEN => {
            Ok(point)
        }
        [0x04, ..] if value.len() == POINT_LEN => Ok(value),
        _ => Err(Error::with(
            CKR_ATTRIBUTE_VALUE_INVALID,
            "CKA_EC_POINT is not an uncompressed SM2 point",
        )),
    }
}

/// The DER SubjectPublicKeyInfo of an SM2 public key object (id-ecPublicKey + the SM2 OID,
/// read by OpenSSL 3 as an SM2 key), from its `CKA_EC_POINT`. `object::spki` makes the PEM.
pub fn export_public_key(ec_point: &[u8]) -> Result<Vec<u8>> {
    let key = Sm2PublicKey::from_point(point_from_ec_point(ec_point)?)?;
    public_key_spki_der(&key)
}

/// Parses an SM2 public or private key object (CKK_EC with the SM2 OID, or no
/// `CKA_EC_PARAMS` at all). An EC key on another curve is `CKR_KEY_TYPE_INCONSISTENT`: no
/// mechanism of this module can use it.
pub(super) fn load_key(attrs: &Attributes) -> Result<LoadedKey> {
    match attrs.get_ulong(CKA_KEY_TYPE)? {
        Some(key_type) if is_sm2_key_type(key_type) => {}
        _ => return fail(CKR_KEY_TYPE_INCONSISTENT),
    }
    if let Some(params) = attrs.get(CKA_EC_PARAMS) {
        if params != SM2_OID_DER {
            return Err(Error::with(
                CKR_KEY_TYPE_INCONSISTENT,
                "EC key is not on the SM2 curve",
            ));
        }
    }
    match attrs.get_ulong(CKA_CLASS)? {
        Some(CKO_PUBLIC_KEY) => Ok(LoadedKey::Sm2Public(Arc::new(load_public(attrs)?))),
        Some(CKO_PRIVATE_KEY) => Ok(LoadedKey::Sm2Private(Arc::new(load_private(attrs)?))),
        _ => fail(CKR_KEY_TYPE_INCONSISTENT),
    }
}

fn load_public(attrs: &Attributes) -> Result<Sm2PublicKey> {
    let value = attrs.get(CKA_EC_POINT).ok_or_else(|| {
        Error::with(
            CKR_TEMPLATE_INCOMPLETE,
            "SM2 public key without CKA_EC_POINT",
        )
    })?;
    Sm2PublicKey::from_point(point_from_ec_point(value)?)
}

fn load_private(attrs: &Attributes) -> Result<Sm2PrivateKey> {
    let value = attrs
        .get(CKA_VALUE)
        .ok_or_else(|| Error::with(CKR_TEMPLATE_INCOMPLETE, "SM2 private key without CKA_VALUE"))?;
    let key = Sm2PrivateKey::from_value(value)?;
    // A private object may carry the public point too (some importers add it); it must match.
    if let Some(ec_point) = attrs.get(CKA_EC_POINT) {
        if point_from_ec_point(ec_point)? != key.public_key().point() {
            return Err(Error::with(
                CKR_ATTRIBUTE_VALUE_INVALID,
                "CKA_EC_POINT does not match CKA_VALUE",
            ));
        }
    }
    Ok(key)
}

/// The SM2 private key of a loaded key, or `CKR_KEY_TYPE_INCONSISTENT` (an RSA key, or an
/// SM2 public key where a private one is needed).
pub(super) fn private_key(key: &LoadedKey) -> Result<Arc<Sm2PrivateKey>> {
    match key {
        LoadedKey::Sm2Private(k) => Ok(Arc::clone(k)),
        _ => fail(CKR_KEY_TYPE_INCONSISTENT),
    }
}

/// The SM2 public key of a loaded key (a private key carries its public half).
pub(super) fn public_key(key: &LoadedKey) -> Result<Arc<Sm2PublicKey>> {
    match key {
        LoadedKey::Sm2Public(k) => Ok(Arc::clone(k)),
        LoadedKey::Sm2Private(k) => Ok(Arc::clone(k.public_key())),
        _ => fail(CKR_KEY_TYPE_INCONSISTENT),
    }
}
