//! ECDSA (mechanisms spec §2.3.6): `CKM_ECDSA` signs the caller's hash of any length,
//! single-part only; `CKM_ECDSA_SHA*` hash the data here, single- or multi-part. Signatures
//! are raw `r||s`, each half the curve's field length.

use super::keys::{ec_private, ec_public};
use super::{weierstrass_info, SIGN_FLAGS};
use crate::crypto::ec::{EcPrivateKey, EcPublicKey};
use crate::crypto::hash::{HashAlg, Hasher};
use crate::error::Result;
use crate::mechanism::{
    LoadedKey, Mechanism, MechanismInfo, MechanismParam, SignOperation, VerifyOperation,
};
use std::sync::Arc;

/// `hash`: the digest computed here; `None` for `CKM_ECDSA`.
pub struct Ecdsa {
    pub hash: Option<HashAlg>,
}

impl Mechanism for Ecdsa {
    fn info(&self) -> MechanismInfo {
        weierstrass_info(SIGN_FLAGS)
    }

    fn sign(&self, param: &MechanismParam, key: &LoadedKey) -> Result<Box<dyn SignOperation>> {
        param.expect_none()?;
        Ok(Box::new(Sign {
            key: ec_private(key)?,
            input: Input::new(self.hash),
        }))
    }

    fn verify(&self, param: &MechanismParam, key: &LoadedKey) -> Result<Box<dyn VerifyOperation>> {
        param.expect_none()?;
        Ok(Box::new(Verify {
            key: ec_public(key)?,
            input: Input::new(self.hash),
        }))
    }
}

/// The data: hashed as it comes, or (CKM_ECDSA) the caller's hash collected.
enum Input {
    Hashing(Hasher),
    Hash(Vec<u8>),
}

impl Input {
    fn new(hash: Option<HashAlg>) -> Self {
        match hash {
            Some(alg) => Input::Hashing(alg.hasher()),
            None => Input::Hash(Vec::new()),
        }
    }

    fn multi_part(&self) -> bool {
        matches!(self, Input::Hashing(_))
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Input::Hashing(hasher) => hasher.update(data),
            Input::Hash(bytes) => bytes.extend_from_slice(data),
        }
    }

    fn hash(&mut self) -> Vec<u8> {
        match self {
            Input::Hashing(hasher) => hasher.clone().finish(),
            Input::Hash(bytes) => std::mem::take(bytes),
        }
    }
}

struct Sign {
    key: Arc<EcPrivateKey>,
    input: Input,
}

impl SignOperation for Sign {
    fn signature_len(&self) -> usize {
        self.key.curve().signature_len()
    }

    fn multi_part(&self) -> bool {
        self.input.multi_part()
    }

    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.input.update(data);
        Ok(())
    }

    fn finish(&mut self) -> Result<Vec<u8>> {
        self.key.sign_hash(&self.input.hash())
    }
}

struct Verify {
    key: Arc<EcPublicKey>,
    input: Input,
}

impl VerifyOperation for Verify {
    fn multi_part(&self) -> bool {
        self.input.multi_part()
    }

    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.input.update(data);
        Ok(())
    }

    fn finish(&mut self, signature: &[u8]) -> Result<()> {
        self.key.verify_hash(&self.input.hash(), signature)
    }
}
