//! Private keys of this family as PKCS#8 PrivateKeyInfo, the form C_WrapKey encrypts and
//! C_UnwrapKey expects: NIST curves as id-ecPublicKey + named curve + RFC 5915 ECPrivateKey
//! (aws-lc writes and checks it, as OpenSSL does); Ed25519 and X25519 as RFC 8410
//! CurvePrivateKey (an OCTET STRING of the 32-byte seed or scalar). SM2 keys stay with
//! `object::pkcs8`.

use super::curves::{self, CurveId};
use super::keys;
use crate::crypto::ec::{Curve, EcPrivateKey, Ed25519PrivateKey, X25519PrivateKey};
use crate::error::{Error, Result};
use crate::mechanism::LoadedKey;
use crate::object::Attributes;
use cryptoki_sys::*;
use der::asn1::{ObjectIdentifier, OctetStringRef};
use der::{Decode, Encode};
use zeroize::Zeroizing;

const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");

fn encoding_failed<E>(_: E) -> Error {
    Error::with(CKR_GENERAL_ERROR, "PKCS#8 encoding failed")
}

/// The PKCS#8 DER of a private key object on a NIST curve, Ed25519 or X25519 (its secret
/// values opened).
pub fn encode(attrs: &Attributes) -> Result<Zeroizing<Vec<u8>>> {
    match keys::load_key(attrs)? {
        LoadedKey::EcPrivate(key) => key.to_pkcs8(),
        LoadedKey::Ed25519Private(key) => rfc8410(curves::oid(CurveId::Ed25519), &key.seed()?),
        LoadedKey::X25519Private(key) => rfc8410(curves::oid(CurveId::X25519), &key.scalar()?),
        _ => Err(Error::with(
            CKR_KEY_NOT_WRAPPABLE,
            "no PKCS#8 form for this key",
        )),
    }
}

fn rfc8410(oid: ObjectIdentifier, value: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let inner = Zeroizing::new(
        OctetStringRef::new(value)
            .and_then(|o| o.to_der())
            .map_err(encoding_failed)?,
    );
    let info = pkcs8::PrivateKeyInfoRef::new(
        spki::AlgorithmIdentifier {
            oid,
            parameters: None,
        },
        OctetStringRef::new(&inner).map_err(encoding_failed)?,
    );
    Ok(Zeroizing::new(info.to_der().map_err(encoding_failed)?))
}

/// The attributes (class, key type, curve, value) of the private key in `info` (whose DER
/// is `der`) when it is a key of this family; `None` for other algorithms and for SM2.
/// A key of this family that does not parse is `CKR_WRAPPED_KEY_INVALID`.
pub fn decode(info: &pkcs8::PrivateKeyInfoRef<'_>, der: &[u8]) -> Result<Option<Attributes>> {
    let invalid = || Error::with(CKR_WRAPPED_KEY_INVALID, "malformed EC private key");
    let oid = info.algorithm.oid;
    let (curve, value) = if oid == ID_EC_PUBLIC_KEY {
        let Some(params) = info.algorithm.parameters.as_ref() else {
            return Err(invalid());
        };
        let params = params.to_der().map_err(|_| invalid())?;
        let curve = match curves::curve_of(&params) {
            Ok(CurveId::Sm2) => return Ok(None),
            Ok(CurveId::Weierstrass(curve)) => curve,
            _ => return Err(invalid()),
        };
        (
            CurveId::Weierstrass(curve),
            weierstrass_scalar(curve, der).ok_or_else(invalid)?,
        )
    } else if oid == curves::oid(CurveId::Ed25519) || oid == curves::oid(CurveId::X25519) {
        let curve = if oid == curves::oid(CurveId::Ed25519) {
            CurveId::Ed25519
        } else {
            CurveId::X25519
        };
        let value = <&OctetStringRef>::from_der(info.private_key.as_bytes())
            .map_err(|_| invalid())?
            .as_bytes();
        let valid = match curve {
            CurveId::Ed25519 => Ed25519PrivateKey::from_seed(value).is_ok(),
            _ => X25519PrivateKey::from_scalar(value).is_ok(),
        };
        if !valid {
            return Err(invalid());
        }
        (curve, Zeroizing::new(value.to_vec()))
    } else {
        return Ok(None);
    };
    let mut attrs = Attributes::new();
    attrs.set_ulong(CKA_CLASS, CKO_PRIVATE_KEY);
    attrs.set_ulong(CKA_KEY_TYPE, curves::key_type(curve));
    attrs.set(CKA_EC_PARAMS, curves::oid_der(curve));
    attrs.set(CKA_VALUE, value.as_slice());
    Ok(Some(attrs))
}

fn weierstrass_scalar(curve: Curve, der: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    EcPrivateKey::from_pkcs8(curve, der)?.scalar().ok()
}
