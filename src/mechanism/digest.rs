//! Digest mechanisms: CKM_SHA_1, CKM_SHA224..512 (and CKM_SM3 through the SM2 family).

use super::{DigestOperation, Mechanism, MechanismInfo, MechanismParam};
use crate::crypto::hash::{HashAlg, Hasher};
use crate::error::Result;
use cryptoki_sys::*;

/// The SHA digest mechanisms and the hash each names: the registry's entries and the
/// `hashAlg` values OAEP and PSS accept. (CKM_SM3 is registered by the SM2 family and named
/// by no RSA parameter.)
const SHA_MECHANISMS: [(CK_MECHANISM_TYPE, HashAlg); 5] = [
    (CKM_SHA_1, HashAlg::Sha1),
    (CKM_SHA224, HashAlg::Sha224),
    (CKM_SHA256, HashAlg::Sha256),
    (CKM_SHA384, HashAlg::Sha384),
    (CKM_SHA512, HashAlg::Sha512),
];

/// Every SHA digest mechanism, for the registry.
pub fn mechanisms() -> Vec<(CK_MECHANISM_TYPE, Box<dyn Mechanism>)> {
    SHA_MECHANISMS
        .iter()
        .map(|&(ty, alg)| (ty, Box::new(Digest(alg)) as Box<dyn Mechanism>))
        .collect()
}

pub struct Digest(pub HashAlg);

impl Mechanism for Digest {
    fn info(&self) -> MechanismInfo {
        MechanismInfo {
            min_key_size: 0,
            max_key_size: 0,
            flags: CKF_DIGEST,
        }
    }

    fn digest(&self, param: &MechanismParam) -> Result<Box<dyn DigestOperation>> {
        param.expect_none()?;
        Ok(Box::new(RunningDigest {
            alg: self.0,
            hasher: Some(self.0.hasher()),
        }))
    }
}

struct RunningDigest {
    alg: HashAlg,
    hasher: Option<Hasher>,
}

impl DigestOperation for RunningDigest {
    fn digest_len(&self) -> usize {
        self.alg.output_len()
    }

    fn update(&mut self, data: &[u8]) {
        if let Some(h) = self.hasher.as_mut() {
            h.update(data);
        }
    }

    fn finish(&mut self) -> Vec<u8> {
        self.hasher.take().map(Hasher::finish).unwrap_or_default()
    }
}

/// The PKCS#11 mechanism that names each hash, for parameters such as OAEP's `hashAlg`.
pub fn hash_for_mechanism(mechanism: CK_MECHANISM_TYPE) -> Option<HashAlg> {
    SHA_MECHANISMS
        .iter()
        .find(|(ty, _)| *ty == mechanism)
        .map(|(_, alg)| *alg)
}

/// The MGF1 variant that uses each hash (`CKG_MGF1_SHA*`).
pub fn hash_for_mgf(mgf: CK_RSA_PKCS_MGF_TYPE) -> Option<HashAlg> {
    Some(match mgf {
        CKG_MGF1_SHA1 => HashAlg::Sha1,
        CKG_MGF1_SHA224 => HashAlg::Sha224,
        CKG_MGF1_SHA256 => HashAlg::Sha256,
        CKG_MGF1_SHA384 => HashAlg::Sha384,
        CKG_MGF1_SHA512 => HashAlg::Sha512,
        _ => return None,
    })
}
