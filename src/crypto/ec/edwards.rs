//! Ed25519 (RFC 8032, pure): `CKA_VALUE` is the 32-byte seed, `CKA_EC_POINT` wraps the
//! 32-byte public key.

use super::key_invalid;
use crate::error::{fail, Error, Result};
use aws_lc_rs::encoding::{AsBigEndian, Curve25519SeedBin};
use aws_lc_rs::signature::{self, Ed25519KeyPair, KeyPair};
use cryptoki_sys::*;
use std::sync::Arc;
use zeroize::Zeroizing;

pub const ED25519_KEY_LEN: usize = 32;
pub const ED25519_SIGNATURE_LEN: usize = 64;

pub struct Ed25519PublicKey {
    bytes: [u8; ED25519_KEY_LEN],
    verifier: signature::ParsedPublicKey,
}

impl Ed25519PublicKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let bytes: [u8; ED25519_KEY_LEN] = bytes
            .try_into()
            .map_err(|_| key_invalid("an Ed25519 public key is 32 bytes"))?;
        let verifier = signature::UnparsedPublicKey::new(&signature::ED25519, bytes)
            .parse()
            .map_err(|_| key_invalid("not an Ed25519 public key"))?;
        Ok(Ed25519PublicKey { bytes, verifier })
    }

    pub fn bytes(&self) -> &[u8; ED25519_KEY_LEN] {
        &self.bytes
    }

    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<()> {
        if signature.len() != ED25519_SIGNATURE_LEN {
            return fail(CKR_SIGNATURE_LEN_RANGE);
        }
        self.verifier
            .verify_sig(message, signature)
            .map_err(|_| Error::new(CKR_SIGNATURE_INVALID))
    }
}

pub struct Ed25519PrivateKey {
    pair: Ed25519KeyPair,
    public: Arc<Ed25519PublicKey>,
}

impl Ed25519PrivateKey {
    pub fn generate() -> Result<Self> {
        let pair = Ed25519KeyPair::generate()
            .map_err(|_| Error::with(CKR_GENERAL_ERROR, "Ed25519 key generation failed"))?;
        Self::from_pair(pair)
    }

    /// The key of a 32-byte seed (`CKA_VALUE`).
    pub fn from_seed(seed: &[u8]) -> Result<Self> {
        if seed.len() != ED25519_KEY_LEN {
            return Err(key_invalid("an Ed25519 private key is a 32-byte seed"));
        }
        let pair = Ed25519KeyPair::from_seed_unchecked(seed)
            .map_err(|_| key_invalid("not an Ed25519 seed"))?;
        Self::from_pair(pair)
    }

    fn from_pair(pair: Ed25519KeyPair) -> Result<Self> {
        let public = Arc::new(Ed25519PublicKey::from_bytes(pair.public_key().as_ref())?);
        Ok(Ed25519PrivateKey { pair, public })
    }

    pub fn public_key(&self) -> &Arc<Ed25519PublicKey> {
        &self.public
    }

    /// The seed (`CKA_VALUE`).
    pub fn seed(&self) -> Result<Zeroizing<Vec<u8>>> {
        let seed: Curve25519SeedBin = self
            .pair
            .seed()
            .and_then(|s| s.as_be_bytes())
            .map_err(|_| Error::new(CKR_GENERAL_ERROR))?;
        Ok(Zeroizing::new(seed.as_ref().to_vec()))
    }

    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        self.pair
            .try_sign(message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| Error::with(CKR_GENERAL_ERROR, "Ed25519 signing failed"))
    }
}
