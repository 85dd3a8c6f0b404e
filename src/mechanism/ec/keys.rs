//! EC, Edwards and Montgomery key objects <-> parsed keys. The curve comes from
//! `CKA_EC_PARAMS` (`curves`), which must agree with `CKA_KEY_TYPE`; SM2 keys are the SM2
//! family's.

use super::curves::{self, curve_of, CurveId};
use crate::crypto::ec::{
    EcPrivateKey, EcPublicKey, Ed25519PrivateKey, Ed25519PublicKey, X25519PrivateKey,
    X25519PublicKey,
};
use crate::error::{fail, Error, Result};
use crate::mechanism::ec_point as point;
use crate::mechanism::LoadedKey;
use crate::object::Attributes;
use cryptoki_sys::*;
use std::sync::Arc;

/// The curve of a key object (its `CKA_EC_PARAMS`), checked against its key type.
pub fn curve_of_key(attrs: &Attributes) -> Result<CurveId> {
    let params = attrs
        .get(CKA_EC_PARAMS)
        .ok_or_else(|| Error::with(CKR_TEMPLATE_INCOMPLETE, "EC key without CKA_EC_PARAMS"))?;
    let curve = curve_of(params)?;
    let key_type = attrs.get_ulong(CKA_KEY_TYPE)?;
    let consistent = key_type == Some(curves::key_type(curve))
        || (curve == CurveId::Sm2 && key_type == Some(crate::vendor::CKK_SM2));
    if !consistent {
        return Err(Error::with(
            CKR_TEMPLATE_INCONSISTENT,
            "CKA_EC_PARAMS names a curve of another key type",
        ));
    }
    Ok(curve)
}

/// Parses a public or private key object on a curve of this family.
pub fn load_key(attrs: &Attributes) -> Result<LoadedKey> {
    let curve = curve_of_key(attrs)?;
    let public = match attrs.get_ulong(CKA_CLASS)? {
        Some(CKO_PUBLIC_KEY) => true,
        Some(CKO_PRIVATE_KEY) => false,
        _ => return fail(CKR_KEY_TYPE_INCONSISTENT),
    };
    if curve == CurveId::Sm2 {
        return crate::mechanism::sm2::load_key(attrs);
    }
    let key = if public {
        load_public(curve, ec_point(attrs, curve)?)?
    } else {
        let value = attrs.get(CKA_VALUE).ok_or_else(|| {
            Error::with(CKR_TEMPLATE_INCOMPLETE, "EC private key without CKA_VALUE")
        })?;
        load_private(curve, value)?
    };
    // A private object may carry the public point too (some importers add it); it must match.
    if !public {
        if let Some(given) = attrs.get(CKA_EC_POINT) {
            if point::raw_attribute(given, curves::public_key_len(curve))? != public_bytes(&key)? {
                return Err(Error::with(
                    CKR_ATTRIBUTE_VALUE_INVALID,
                    "CKA_EC_POINT does not match CKA_VALUE",
                ));
            }
        }
    }
    Ok(key)
}

fn ec_point(attrs: &Attributes, curve: CurveId) -> Result<&[u8]> {
    let value = attrs.get(CKA_EC_POINT).ok_or_else(|| {
        Error::with(
            CKR_TEMPLATE_INCOMPLETE,
            "EC public key without CKA_EC_POINT",
        )
    })?;
    point::raw_attribute(value, curves::public_key_len(curve))
}

fn load_public(curve: CurveId, raw: &[u8]) -> Result<LoadedKey> {
    Ok(match curve {
        CurveId::Weierstrass(c) => LoadedKey::EcPublic(Arc::new(EcPublicKey::from_point(c, raw)?)),
        CurveId::Ed25519 => LoadedKey::Ed25519Public(Arc::new(Ed25519PublicKey::from_bytes(raw)?)),
        CurveId::X25519 => LoadedKey::X25519Public(Arc::new(X25519PublicKey::from_bytes(raw)?)),
        CurveId::Sm2 => return fail(CKR_KEY_TYPE_INCONSISTENT),
    })
}

fn load_private(curve: CurveId, value: &[u8]) -> Result<LoadedKey> {
    Ok(match curve {
        CurveId::Weierstrass(c) => {
            LoadedKey::EcPrivate(Arc::new(EcPrivateKey::from_scalar(c, value)?))
        }
        CurveId::Ed25519 => {
            LoadedKey::Ed25519Private(Arc::new(Ed25519PrivateKey::from_seed(value)?))
        }
        CurveId::X25519 => {
            LoadedKey::X25519Private(Arc::new(X25519PrivateKey::from_scalar(value)?))
        }
        CurveId::Sm2 => return fail(CKR_KEY_TYPE_INCONSISTENT),
    })
}

/// The raw public key of a loaded key of this family.
pub fn public_bytes(key: &LoadedKey) -> Result<Vec<u8>> {
    Ok(match key {
        LoadedKey::EcPublic(k) => k.point().to_vec(),
        LoadedKey::EcPrivate(k) => k.public_key().point().to_vec(),
        LoadedKey::Ed25519Public(k) => k.bytes().to_vec(),
        LoadedKey::Ed25519Private(k) => k.public_key().bytes().to_vec(),
        LoadedKey::X25519Public(k) => k.bytes().to_vec(),
        LoadedKey::X25519Private(k) => k.public_key().bytes().to_vec(),
        _ => return fail(CKR_KEY_TYPE_INCONSISTENT),
    })
}

/// The SubjectPublicKeyInfo (DER) of an EC, Ed25519 or X25519 public key object: RFC 5480
/// id-ecPublicKey with the named curve, RFC 8410 id-Ed25519 / id-X25519 without parameters.
pub fn export_public_key(attrs: &Attributes) -> Result<Vec<u8>> {
    let curve = curve_of_key(attrs)?;
    if curve == CurveId::Sm2 {
        let value = attrs
            .get(CKA_EC_POINT)
            .ok_or(Error::new(CKR_TEMPLATE_INCOMPLETE))?;
        return crate::mechanism::sm2::export_public_key(value);
    }
    let key = load_public(curve, ec_point(attrs, curve)?)?;
    let raw = public_bytes(&key)?;
    let algorithm = match curve {
        CurveId::Weierstrass(_) => spki::AlgorithmIdentifierOwned {
            oid: ID_EC_PUBLIC_KEY,
            parameters: Some(der::asn1::Any::from(curves::oid(curve))),
        },
        _ => spki::AlgorithmIdentifierOwned {
            oid: curves::oid(curve),
            parameters: None,
        },
    };
    let info = spki::SubjectPublicKeyInfoOwned {
        algorithm,
        subject_public_key: der::asn1::BitString::from_bytes(&raw)
            .map_err(|_| Error::new(CKR_GENERAL_ERROR))?,
    };
    der::Encode::to_der(&info).map_err(|_| Error::new(CKR_GENERAL_ERROR))
}

const ID_EC_PUBLIC_KEY: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");

/// The NIST-curve private key of a loaded key, or `CKR_KEY_TYPE_INCONSISTENT` (an SM2, RSA,
/// Edwards key, or a public key where a private one is needed).
pub fn ec_private(key: &LoadedKey) -> Result<Arc<EcPrivateKey>> {
    match key {
        LoadedKey::EcPrivate(k) => Ok(Arc::clone(k)),
        _ => fail(CKR_KEY_TYPE_INCONSISTENT),
    }
}

/// The NIST-curve public key of a loaded key (a private key carries its public half).
pub fn ec_public(key: &LoadedKey) -> Result<Arc<EcPublicKey>> {
    match key {
        LoadedKey::EcPublic(k) => Ok(Arc::clone(k)),
        LoadedKey::EcPrivate(k) => Ok(Arc::clone(k.public_key())),
        _ => fail(CKR_KEY_TYPE_INCONSISTENT),
    }
}

pub fn ed25519_private(key: &LoadedKey) -> Result<Arc<Ed25519PrivateKey>> {
    match key {
        LoadedKey::Ed25519Private(k) => Ok(Arc::clone(k)),
        _ => fail(CKR_KEY_TYPE_INCONSISTENT),
    }
}

pub fn ed25519_public(key: &LoadedKey) -> Result<Arc<Ed25519PublicKey>> {
    match key {
        LoadedKey::Ed25519Public(k) => Ok(Arc::clone(k)),
        LoadedKey::Ed25519Private(k) => Ok(Arc::clone(k.public_key())),
        _ => fail(CKR_KEY_TYPE_INCONSISTENT),
    }
}
