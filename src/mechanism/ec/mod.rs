//! The elliptic-curve family: ECDSA and ECDH on P-256/P-384/P-521, Ed25519 (`CKM_EDDSA`)
//! and X25519 (through `CKM_ECDH1_DERIVE`), over the aws-lc-rs adapter in `crypto::ec`. SM2
//! keys are `CKK_EC` too: `CKM_EC_KEY_PAIR_GEN` and key loading hand them to the SM2 family.

mod curves;
mod ecdh;
mod ecdsa;
mod eddsa;
mod explicit;
mod keygen;
mod keys;
pub mod pkcs8;

#[cfg(test)]
mod tests;

pub use curves::{curve_of, public_key_len, CurveId};
pub use keys::{export_public_key, load_key, public_bytes};

use super::{Mechanism, MechanismInfo};
use crate::crypto::ec::Curve;
use crate::crypto::hash::HashAlg;
use cryptoki_sys::*;

/// Curve properties reported with the function flags of every NIST-curve mechanism.
const EC_FLAGS: CK_FLAGS = CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS;
const SIGN_FLAGS: CK_FLAGS = CKF_SIGN | CKF_VERIFY;
const DERIVE_FLAGS: CK_FLAGS = CKF_DERIVE;

/// NIST curves: key sizes are the order's bits, P-256 to P-521.
fn weierstrass_info(function_flags: CK_FLAGS) -> MechanismInfo {
    MechanismInfo {
        min_key_size: Curve::P256.order_bits() as CK_ULONG,
        max_key_size: Curve::P521.order_bits() as CK_ULONG,
        flags: function_flags | EC_FLAGS,
    }
}

/// Curve25519 in both forms: 255-bit keys.
fn edwards_info(function_flags: CK_FLAGS) -> MechanismInfo {
    MechanismInfo {
        min_key_size: 255,
        max_key_size: 255,
        flags: function_flags,
    }
}

pub fn mechanisms() -> Vec<(CK_MECHANISM_TYPE, Box<dyn Mechanism>)> {
    let ecdsa = |hash| -> Box<dyn Mechanism> { Box::new(ecdsa::Ecdsa { hash }) };
    vec![
        (
            CKM_EC_KEY_PAIR_GEN,
            Box::new(keygen::KeyPairGen {
                key_type: CKK_EC,
                info: weierstrass_info(CKF_GENERATE_KEY_PAIR),
            }),
        ),
        (
            CKM_EC_EDWARDS_KEY_PAIR_GEN,
            Box::new(keygen::KeyPairGen {
                key_type: CKK_EC_EDWARDS,
                info: edwards_info(CKF_GENERATE_KEY_PAIR),
            }),
        ),
        (
            CKM_EC_MONTGOMERY_KEY_PAIR_GEN,
            Box::new(keygen::KeyPairGen {
                key_type: CKK_EC_MONTGOMERY,
                info: edwards_info(CKF_GENERATE_KEY_PAIR),
            }),
        ),
        (CKM_ECDSA, ecdsa(None)),
        (CKM_ECDSA_SHA1, ecdsa(Some(HashAlg::Sha1))),
        (CKM_ECDSA_SHA224, ecdsa(Some(HashAlg::Sha224))),
        (CKM_ECDSA_SHA256, ecdsa(Some(HashAlg::Sha256))),
        (CKM_ECDSA_SHA384, ecdsa(Some(HashAlg::Sha384))),
        (CKM_ECDSA_SHA512, ecdsa(Some(HashAlg::Sha512))),
        (CKM_EDDSA, Box::new(eddsa::Eddsa)),
        (CKM_ECDH1_DERIVE, Box::new(ecdh::Ecdh)),
        (CKM_ECDH1_COFACTOR_DERIVE, Box::new(ecdh::Ecdh)),
    ]
}
