//! RSA mechanisms: key-pair generation, PKCS#1 v1.5, OAEP, raw RSA, PSS and the
//! hash-and-sign variants. The PKCS#11 rules (parameters, key kinds, single- or multi-part)
//! live here; the arithmetic and padding live behind `crate::crypto::rsa::backend()`.

mod cipher;
mod keygen;
mod keys;
mod params;
mod signature;

#[cfg(test)]
mod tests;

pub use keygen::{DEFAULT_MODULUS_BITS, MAX_GENERATED_BITS};
pub use keys::{export_public_key, load_key};

use super::{
    CipherOperation, LoadedKey, Mechanism, MechanismInfo, MechanismParam, SignOperation,
    VerifyOperation,
};
use crate::crypto::hash::HashAlg;
use crate::crypto::rsa::{MAX_MODULUS_BITS, MIN_MODULUS_BITS};
use crate::error::Result;
use cryptoki_sys::*;

/// Which member of the family a registered mechanism is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// CKM_RSA_PKCS: PKCS#1 v1.5 encryption, and signing of a caller-built DigestInfo.
    Pkcs1,
    /// CKM_RSA_PKCS decryption and unwrapping under the token policy
    /// `rsa_pkcs1v15_decrypt = "implicit-rejection"` (not in the registry: see
    /// `pkcs1v15_implicit_rejection`).
    Pkcs1ImplicitRejection,
    /// CKM_RSA_PKCS_OAEP.
    Oaep,
    /// CKM_RSA_X_509: raw RSA.
    X509,
    /// CKM_RSA_PKCS_PSS: PSS over a digest the caller computed.
    Pss,
    /// CKM_SHA*_RSA_PKCS: hash, then PKCS#1 v1.5.
    HashPkcs1(HashAlg),
    /// CKM_SHA*_RSA_PKCS_PSS: hash, then PSS.
    HashPss(HashAlg),
}

struct RsaMechanism(Kind);

const SIGN_VERIFY: CK_FLAGS = CKF_SIGN | CKF_VERIFY;
const ENCRYPT_DECRYPT: CK_FLAGS = CKF_ENCRYPT | CKF_DECRYPT;
const WRAP_UNWRAP: CK_FLAGS = CKF_WRAP | CKF_UNWRAP;

impl Mechanism for RsaMechanism {
    fn info(&self) -> MechanismInfo {
        let flags = match self.0 {
            // C_WrapKey / C_UnwrapKey encrypt and decrypt the key's bytes (api/wrap.rs).
            Kind::Pkcs1 => ENCRYPT_DECRYPT | SIGN_VERIFY | WRAP_UNWRAP,
            Kind::Pkcs1ImplicitRejection => ENCRYPT_DECRYPT | WRAP_UNWRAP,
            Kind::Oaep => ENCRYPT_DECRYPT | WRAP_UNWRAP,
            Kind::X509 => ENCRYPT_DECRYPT | SIGN_VERIFY,
            Kind::Pss | Kind::HashPkcs1(_) | Kind::HashPss(_) => SIGN_VERIFY,
        };
        MechanismInfo {
            min_key_size: MIN_MODULUS_BITS as CK_ULONG,
            max_key_size: MAX_MODULUS_BITS as CK_ULONG,
            flags,
        }
    }

    fn encrypt(&self, param: &MechanismParam, key: &LoadedKey) -> Result<Box<dyn CipherOperation>> {
        cipher::encrypt(self.0, param, key)
    }

    fn decrypt(&self, param: &MechanismParam, key: &LoadedKey) -> Result<Box<dyn CipherOperation>> {
        cipher::decrypt(self.0, param, key)
    }

    fn sign(&self, param: &MechanismParam, key: &LoadedKey) -> Result<Box<dyn SignOperation>> {
        signature::sign(self.0, param, key)
    }

    fn verify(&self, param: &MechanismParam, key: &LoadedKey) -> Result<Box<dyn VerifyOperation>> {
        signature::verify(self.0, param, key)
    }
}

/// The RSA mechanisms but key-pair generation.
const FAMILY: [(CK_MECHANISM_TYPE, Kind); 14] = [
    (CKM_RSA_PKCS, Kind::Pkcs1),
    (CKM_RSA_PKCS_OAEP, Kind::Oaep),
    (CKM_RSA_X_509, Kind::X509),
    (CKM_RSA_PKCS_PSS, Kind::Pss),
    (CKM_SHA1_RSA_PKCS, Kind::HashPkcs1(HashAlg::Sha1)),
    (CKM_SHA224_RSA_PKCS, Kind::HashPkcs1(HashAlg::Sha224)),
    (CKM_SHA256_RSA_PKCS, Kind::HashPkcs1(HashAlg::Sha256)),
    (CKM_SHA384_RSA_PKCS, Kind::HashPkcs1(HashAlg::Sha384)),
    (CKM_SHA512_RSA_PKCS, Kind::HashPkcs1(HashAlg::Sha512)),
    (CKM_SHA1_RSA_PKCS_PSS, Kind::HashPss(HashAlg::Sha1)),
    (CKM_SHA224_RSA_PKCS_PSS, Kind::HashPss(HashAlg::Sha224)),
    (CKM_SHA256_RSA_PKCS_PSS, Kind::HashPss(HashAlg::Sha256)),
    (CKM_SHA384_RSA_PKCS_PSS, Kind::HashPss(HashAlg::Sha384)),
    (CKM_SHA512_RSA_PKCS_PSS, Kind::HashPss(HashAlg::Sha512)),
];

/// CKM_RSA_PKCS with implicit rejection on decryption: what C_DecryptInit and C_UnwrapKey
/// use for CKM_RSA_PKCS when the configuration asks for it (`state::Library::mechanism_for`).
pub fn pkcs1v15_implicit_rejection() -> &'static dyn Mechanism {
    static IMPLICIT_REJECTION: RsaMechanism = RsaMechanism(Kind::Pkcs1ImplicitRejection);
    &IMPLICIT_REJECTION
}

/// Whether `ty` is one of the RSA mechanisms (for the configured key-size minimum).
pub fn is_rsa_mechanism(ty: CK_MECHANISM_TYPE) -> bool {
    ty == CKM_RSA_PKCS_KEY_PAIR_GEN || FAMILY.iter().any(|(t, _)| *t == ty)
}

/// Every RSA mechanism, for the registry.
pub fn mechanisms() -> Vec<(CK_MECHANISM_TYPE, Box<dyn Mechanism>)> {
    let mut all: Vec<(CK_MECHANISM_TYPE, Box<dyn Mechanism>)> = FAMILY
        .into_iter()
        .map(|(ty, kind)| (ty, Box::new(RsaMechanism(kind)) as Box<dyn Mechanism>))
        .collect();
    all.push((CKM_RSA_PKCS_KEY_PAIR_GEN, Box::new(keygen::RsaKeyPairGen)));
    all
}
