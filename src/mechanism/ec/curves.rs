//! `CKA_EC_PARAMS` -> the curve it names. PKCS#11 3.x allows a DER choice of a named-curve
//! OID, a curve-name PrintableString and explicit parameters; the first two are read here
//! for every supported curve, explicit parameters in `explicit`.

use super::explicit::{self, Explicit};
use crate::crypto::ec::Curve;
use crate::error::{Error, Result};
use cryptoki_sys::*;
use der::asn1::{ObjectIdentifier, PrintableStringRef};
use der::Decode;

/// Every curve a key object of this module may be on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CurveId {
    /// `CKK_EC`: ECDSA and ECDH.
    Weierstrass(Curve),
    /// `CKK_EC` with the SM2 OID: the SM2 family's keys.
    Sm2,
    /// `CKK_EC_EDWARDS`.
    Ed25519,
    /// `CKK_EC_MONTGOMERY`.
    X25519,
}

struct Named {
    id: CurveId,
    oid: ObjectIdentifier,
    names: &'static [&'static str],
}

const NAMED: &[Named] = &[
    Named {
        id: CurveId::Weierstrass(Curve::P256),
        oid: ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7"),
        names: &["prime256v1", "secp256r1", "P-256"],
    },
    Named {
        id: CurveId::Weierstrass(Curve::P384),
        oid: ObjectIdentifier::new_unwrap("1.3.132.0.34"),
        names: &["secp384r1", "P-384"],
    },
    Named {
        id: CurveId::Weierstrass(Curve::P521),
        oid: ObjectIdentifier::new_unwrap("1.3.132.0.35"),
        names: &["secp521r1", "P-521"],
    },
    Named {
        id: CurveId::Sm2,
        oid: ObjectIdentifier::new_unwrap("1.2.156.10197.1.301"),
        // By OID only: SM2 keys carry the OID (sm2.md).
        names: &[],
    },
    Named {
        id: CurveId::Ed25519,
        oid: ObjectIdentifier::new_unwrap("1.3.101.112"),
        names: &["edwards25519", "Ed25519"],
    },
    Named {
        id: CurveId::X25519,
        oid: ObjectIdentifier::new_unwrap("1.3.101.110"),
        names: &["curve25519", "X25519"],
    },
];

/// What OpenSC 0.23's pkcs11-tool sends for `--key-type EC:curve25519`: a PrintableString
/// "curve25519" whose length byte counts 11 bytes, one more than follow. Read as the curve it
/// names, since no other meaning is possible.
const OPENSC_CURVE25519: &[u8] = b"\x13\x0bcurve25519";

fn not_supported(what: &'static str) -> Error {
    Error::with(CKR_CURVE_NOT_SUPPORTED, what)
}

/// The curve of a `CKA_EC_PARAMS` value. A well-formed value naming a curve this module
/// lacks (Ed448, brainpool, ...) or explicit parameters of no supported curve are
/// `CKR_CURVE_NOT_SUPPORTED`; anything that is none of the three forms is
/// `CKR_ATTRIBUTE_VALUE_INVALID`.
pub fn curve_of(ec_params: &[u8]) -> Result<CurveId> {
    if let Ok(oid) = ObjectIdentifier::from_der(ec_params) {
        return NAMED
            .iter()
            .find(|n| n.oid == oid)
            .map(|n| n.id)
            .ok_or_else(|| not_supported("CKA_EC_PARAMS names a curve this token lacks"));
    }
    if let Ok(name) = PrintableStringRef::from_der(ec_params) {
        return NAMED
            .iter()
            .find(|n| n.names.contains(&name.as_str()))
            .map(|n| n.id)
            .ok_or_else(|| not_supported("CKA_EC_PARAMS names a curve this token lacks"));
    }
    if ec_params == OPENSC_CURVE25519 {
        return Ok(CurveId::X25519);
    }
    if ec_params.first() == Some(&0x30) {
        match explicit::named_curve_of(ec_params) {
            Explicit::Named(curve) => return Ok(CurveId::Weierstrass(curve)),
            Explicit::Unsupported => {
                return Err(not_supported(
                    "explicit curve parameters that are no supported named curve",
                ))
            }
            Explicit::Malformed => {}
        }
    }
    // The value is public: show it, so a client's encoding can be told from the log.
    Err(Error::with(
        CKR_ATTRIBUTE_VALUE_INVALID,
        format!(
            "CKA_EC_PARAMS {} is neither a curve OID, a curve name nor curve parameters",
            hex::encode(&ec_params[..ec_params.len().min(64)])
        ),
    ))
}

/// The named-curve OID of `id`, DER (`CKA_EC_PARAMS` of unwrapped keys).
pub fn oid_der(id: CurveId) -> Vec<u8> {
    der::Encode::to_der(&oid(id)).expect("an OID encodes")
}

/// The OID of `id`.
pub fn oid(id: CurveId) -> ObjectIdentifier {
    NAMED
        .iter()
        .find(|n| n.id == id)
        .expect("every curve is named")
        .oid
}

/// The key type objects on `id` carry.
pub fn key_type(id: CurveId) -> CK_KEY_TYPE {
    match id {
        CurveId::Weierstrass(_) | CurveId::Sm2 => CKK_EC,
        CurveId::Ed25519 => CKK_EC_EDWARDS,
        CurveId::X25519 => CKK_EC_MONTGOMERY,
    }
}

/// Length of the raw public key (`CKA_EC_POINT` inside its OCTET STRING).
pub fn public_key_len(id: CurveId) -> usize {
    match id {
        CurveId::Weierstrass(curve) => curve.point_len(),
        CurveId::Sm2 => crate::crypto::sm2::POINT_LEN,
        CurveId::Ed25519 | CurveId::X25519 => 32,
    }
}
