//! The SM2 family (sm2.md): key-pair generation, encryption in every common ciphertext form,
//! SM3-with-SM2 signatures, the SM3 digest. All values are vendor-defined (`crate::vendor`).

mod cipher;
mod format;
mod keygen;
mod keys;
mod signature;

#[cfg(test)]
mod bench;
#[cfg(test)]
mod tests;

pub use keys::export_public_key;

use super::{Mechanism, MechanismInfo};
use crate::crypto::hash::HashAlg;
use crate::crypto::sm2::{CiphertextForm, RawOrder};
use crate::vendor::*;
use cipher::Sm2Cipher;
use cryptoki_sys::*;
use keygen::Sm2KeyPairGen;
use signature::{Sm2Sign, Sm2SignKind};

/// Every SM2 mechanism reports the curve's properties with its function flags.
const EC_FLAGS: CK_FLAGS = CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS;
const KEYGEN_FLAGS: CK_FLAGS = CKF_GENERATE_KEY_PAIR;
/// The SM2 ciphers also wrap and unwrap: the wrapped key is the SM2 plaintext.
const CIPHER_FLAGS: CK_FLAGS = CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP;
const SIGN_FLAGS: CK_FLAGS = CKF_SIGN | CKF_VERIFY;

fn info(function_flags: CK_FLAGS) -> MechanismInfo {
    MechanismInfo {
        min_key_size: SM2_KEY_BITS,
        max_key_size: SM2_KEY_BITS,
        flags: function_flags | EC_FLAGS,
    }
}

pub fn mechanisms() -> Vec<(CK_MECHANISM_TYPE, Box<dyn Mechanism>)> {
    let mut all: Vec<(CK_MECHANISM_TYPE, Box<dyn Mechanism>)> = vec![
        (
            CKM_SM2_KEY_PAIR_GEN,
            Box::new(Sm2KeyPairGen {
                require_ec_params: false,
            }),
        ),
        (
            CKM_SM2_RAW,
            Box::new(Sm2Cipher {
                default_form: CiphertextForm::Raw {
                    order: RawOrder::C1C3C2,
                    prefix: true,
                },
            }),
        ),
        (
            CKM_SM2_CIPHER_DER,
            Box::new(Sm2Cipher {
                default_form: CiphertextForm::Der,
            }),
        ),
        (
            CKM_SM3_SM2,
            Box::new(Sm2Sign(Sm2SignKind::WithSm3 { der: false })),
        ),
        (
            CKM_SM3_SM2_DER,
            Box::new(Sm2Sign(Sm2SignKind::WithSm3 { der: true })),
        ),
        (CKM_SM2, Box::new(Sm2Sign(Sm2SignKind::Prehashed))),
        (CKM_SM3, Box::new(super::digest::Digest(HashAlg::Sm3))),
    ];
    // With aws-lc, CKM_EC_KEY_PAIR_GEN belongs to the EC family, which hands SM2 here.
    if !cfg!(feature = "aws-lc") {
        all.push((
            CKM_EC_KEY_PAIR_GEN,
            Box::new(Sm2KeyPairGen {
                require_ec_params: true,
            }),
        ));
    }
    all
}

/// `CKM_EC_KEY_PAIR_GEN` on the SM2 curve (the EC family's generator calls it).
pub fn generate_key_pair(
    param: &super::MechanismParam,
    public: &crate::object::Attributes,
    private: &crate::object::Attributes,
) -> crate::error::Result<super::GeneratedKeyPair> {
    let generator = Sm2KeyPairGen {
        require_ec_params: true,
    };
    generator.generate_key_pair(param, public, private)
}

/// Parses an SM2 public or private key object (`CKK_EC` on the SM2 curve).
pub fn load_key(attrs: &crate::object::Attributes) -> crate::error::Result<super::LoadedKey> {
    keys::load_key(attrs)
}
