//! `CKM_EDDSA` with Ed25519 (RFC 8032 pure EdDSA), single- or multi-part: pure EdDSA
//! hashes the message twice, so the parts are collected and signed at the end. The optional
//! `CK_EDDSA_PARAMS` may only ask for pure Ed25519 (phFlag false, no context): Ed25519ph
//! and Ed25519ctx are `CKR_MECHANISM_PARAM_INVALID`, aws-lc-rs offers neither.

use super::keys::{ed25519_private, ed25519_public};
use super::SIGN_FLAGS;
use crate::crypto::ec::{Ed25519PrivateKey, Ed25519PublicKey, ED25519_SIGNATURE_LEN};
use crate::error::{Error, Result};
use crate::mechanism::{
    LoadedKey, Mechanism, MechanismInfo, MechanismParam, SignOperation, VerifyOperation,
};
use cryptoki_sys::*;
use std::sync::Arc;

pub struct Eddsa;

fn check_param(param: &MechanismParam) -> Result<()> {
    match param {
        MechanismParam::None => Ok(()),
        MechanismParam::Eddsa {
            prehash: false,
            context,
        } if context.is_empty() => Ok(()),
        _ => Err(Error::with(
            CKR_MECHANISM_PARAM_INVALID,
            "only pure Ed25519 is supported (no prehash, no context)",
        )),
    }
}

impl Mechanism for Eddsa {
    fn info(&self) -> MechanismInfo {
        super::edwards_info(SIGN_FLAGS)
    }

    fn sign(&self, param: &MechanismParam, key: &LoadedKey) -> Result<Box<dyn SignOperation>> {
        check_param(param)?;
        Ok(Box::new(Sign {
            key: ed25519_private(key)?,
            message: Vec::new(),
        }))
    }

    fn verify(&self, param: &MechanismParam, key: &LoadedKey) -> Result<Box<dyn VerifyOperation>> {
        check_param(param)?;
        Ok(Box::new(Verify {
            key: ed25519_public(key)?,
            message: Vec::new(),
        }))
    }
}

struct Sign {
    key: Arc<Ed25519PrivateKey>,
    message: Vec<u8>,
}

impl SignOperation for Sign {
    fn signature_len(&self) -> usize {
        ED25519_SIGNATURE_LEN
    }

    fn multi_part(&self) -> bool {
        true
    }

    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.message.extend_from_slice(data);
        Ok(())
    }

    fn finish(&mut self) -> Result<Vec<u8>> {
        self.key.sign(&self.message)
    }
}

struct Verify {
    key: Arc<Ed25519PublicKey>,
    message: Vec<u8>,
}

impl VerifyOperation for Verify {
    fn multi_part(&self) -> bool {
        true
    }

    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.message.extend_from_slice(data);
        Ok(())
    }

    fn finish(&mut self, signature: &[u8]) -> Result<()> {
        self.key.verify(&self.message, signature)
    }
}
