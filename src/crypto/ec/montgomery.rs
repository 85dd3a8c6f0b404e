//! X25519 (RFC 7748): `CKA_VALUE` is the 32-byte scalar, `CKA_EC_POINT` wraps the 32-byte
//! u-coordinate. Used only through `CKM_ECDH1_DERIVE`.

use super::key_invalid;
use crate::error::{Error, Result};
use aws_lc_rs::agreement;
use aws_lc_rs::encoding::{AsBigEndian, Curve25519SeedBin};
use cryptoki_sys::*;
use zeroize::Zeroizing;

pub const X25519_KEY_LEN: usize = 32;

pub struct X25519PublicKey {
    bytes: [u8; X25519_KEY_LEN],
}

impl X25519PublicKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let bytes = bytes
            .try_into()
            .map_err(|_| key_invalid("an X25519 public key is 32 bytes"))?;
        Ok(X25519PublicKey { bytes })
    }

    pub fn bytes(&self) -> &[u8; X25519_KEY_LEN] {
        &self.bytes
    }
}

pub struct X25519PrivateKey {
    key: agreement::PrivateKey,
    public: X25519PublicKey,
}

impl X25519PrivateKey {
    pub fn generate() -> Result<Self> {
        let key = agreement::PrivateKey::generate(&agreement::X25519)
            .map_err(|_| Error::with(CKR_GENERAL_ERROR, "X25519 key generation failed"))?;
        Self::from_key(key)
    }

    /// The key of a 32-byte scalar (`CKA_VALUE`).
    pub fn from_scalar(scalar: &[u8]) -> Result<Self> {
        let key = agreement::PrivateKey::from_private_key(&agreement::X25519, scalar)
            .map_err(|_| key_invalid("an X25519 private key is a 32-byte scalar"))?;
        Self::from_key(key)
    }

    fn from_key(key: agreement::PrivateKey) -> Result<Self> {
        let public = key
            .compute_public_key()
            .map_err(|_| key_invalid("not an X25519 private key"))?;
        let public = X25519PublicKey::from_bytes(public.as_ref())?;
        Ok(X25519PrivateKey { key, public })
    }

    pub fn public_key(&self) -> &X25519PublicKey {
        &self.public
    }

    /// The scalar (`CKA_VALUE`).
    pub fn scalar(&self) -> Result<Zeroizing<Vec<u8>>> {
        let bin: Curve25519SeedBin = self
            .key
            .as_be_bytes()
            .map_err(|_| Error::new(CKR_GENERAL_ERROR))?;
        Ok(Zeroizing::new(bin.as_ref().to_vec()))
    }

    /// The shared secret with a peer's 32-byte public key. An all-zero result (a peer key of
    /// small order) is refused by aws-lc: `CKR_MECHANISM_PARAM_INVALID`.
    pub fn agree(&self, peer: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if peer.len() != X25519_KEY_LEN {
            return Err(Error::with(
                CKR_MECHANISM_PARAM_INVALID,
                "the public data is not a 32-byte X25519 key",
            ));
        }
        let peer = agreement::UnparsedPublicKey::new(&agreement::X25519, peer);
        agreement::agree(
            &self.key,
            peer,
            Error::with(CKR_MECHANISM_PARAM_INVALID, "X25519 agreement failed"),
            |z| Ok(Zeroizing::new(z.to_vec())),
        )
    }
}
