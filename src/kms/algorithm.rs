//! KMS algorithm names -> PKCS#11 mechanisms with their parameters.

use crate::error::{Error, Result};
use crate::mechanism::MechanismParam;
use crate::vendor::{CKM_SM2_CIPHER_DER, CKM_SM3_SM2_DER};
use cryptoki_sys::*;

pub type Mech = (CK_MECHANISM_TYPE, MechanismParam);

fn oaep(hash_alg: CK_MECHANISM_TYPE, mgf: CK_RSA_PKCS_MGF_TYPE) -> Mech {
    let param = MechanismParam::Oaep {
        hash_alg,
        mgf,
        source: CKZ_DATA_SPECIFIED,
        source_data: Vec::new(),
    };
    (CKM_RSA_PKCS_OAEP, param)
}

/// Encryption algorithms (`encrypt` / `decrypt --algorithm`).
pub const CIPHERS: &[&str] = &[
    "RSAES_PKCS1_V1_5",
    "RSAES_OAEP_SHA_1",
    "RSAES_OAEP_SHA_256",
    "SM2",
];
/// Signature algorithms (`sign` / `verify --algorithm`).
pub const SIGNATURES: &[&str] = &[
    "RSASSA_PKCS1_V1_5_SHA_256",
    "RSASSA_PSS_SHA_256",
    "SM2DSA",
    "ECDSA_SHA_256",
];

fn unknown(name: &str, known: &[&str]) -> Error {
    Error::with(
        CKR_ARGUMENTS_BAD,
        format!("unknown algorithm {name:?}; one of {}", known.join(", ")),
    )
}

/// The mechanism of an encryption algorithm. SM2 ciphertexts are the GM/T 0009 DER form
/// (what OpenSSL writes and reads).
pub fn cipher(name: &str) -> Result<Mech> {
    Ok(match name {
        "RSAES_PKCS1_V1_5" => (CKM_RSA_PKCS, MechanismParam::None),
        "RSAES_OAEP_SHA_1" => oaep(CKM_SHA_1, CKG_MGF1_SHA1),
        "RSAES_OAEP_SHA_256" => oaep(CKM_SHA256, CKG_MGF1_SHA256),
        "SM2" => (CKM_SM2_CIPHER_DER, MechanismParam::None),
        _ => return Err(unknown(name, CIPHERS)),
    })
}

/// The mechanism of a signature algorithm (over the message; the token hashes). SM2DSA uses
/// the default signer ID and writes DER; ECDSA signatures are raw `r||s` as in PKCS#11.
pub fn signature(name: &str) -> Result<Mech> {
    Ok(match name {
        "RSASSA_PKCS1_V1_5_SHA_256" => (CKM_SHA256_RSA_PKCS, MechanismParam::None),
        "RSASSA_PSS_SHA_256" => (
            CKM_SHA256_RSA_PKCS_PSS,
            MechanismParam::Pss {
                hash_alg: CKM_SHA256,
                mgf: CKG_MGF1_SHA256,
                salt_len: 32,
            },
        ),
        "SM2DSA" => (CKM_SM3_SM2_DER, MechanismParam::None),
        "ECDSA_SHA_256" => (CKM_ECDSA_SHA256, MechanismParam::None),
        _ => return Err(unknown(name, SIGNATURES)),
    })
}
