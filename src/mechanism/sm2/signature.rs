//! SM2 signatures: `CKM_SM3_SM2` (raw r||s) and `CKM_SM3_SM2_DER` hash e = SM3(Z||M) inside,
//! single- and multi-part, with the signer ID from `pParameter` (NULL = 1234567812345678);
//! `CKM_SM2` signs a caller's 32-byte e, single-part, no parameter.

use super::keys::{private_key, public_key};
use super::{info, SIGN_FLAGS};
use crate::crypto::hash::{HashAlg, Hasher};
use crate::crypto::sm2::{
    signature_from_der, signature_to_der, Sm2PrivateKey, Sm2PublicKey, SIGNATURE_DER_MAX_LEN,
    SIGNATURE_LEN,
};
use crate::error::{fail, Error, Result};
use crate::mechanism::{
    LoadedKey, Mechanism, MechanismInfo, MechanismParam, SignOperation, VerifyOperation,
};
use crate::vendor::SM2_DEFAULT_SIGNER_ID;
use cryptoki_sys::*;
use std::sync::Arc;

/// The hash that makes e (GB/T 32918.2: e = SM3(Z||M)).
const E_HASH: HashAlg = HashAlg::Sm3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sm2SignKind {
    /// e = SM3(Z||M) computed here; `der` picks the signature encoding.
    WithSm3 { der: bool },
    /// The input is e itself (`CKM_SM2`).
    Prehashed,
}

pub struct Sm2Sign(pub Sm2SignKind);

impl Mechanism for Sm2Sign {
    fn info(&self) -> MechanismInfo {
        info(SIGN_FLAGS)
    }

    fn sign(&self, param: &MechanismParam, key: &LoadedKey) -> Result<Box<dyn SignOperation>> {
        let key = private_key(key)?;
        let input = Input::new(self.0, param, key.public_key())?;
        Ok(Box::new(Sign {
            kind: self.0,
            key,
            input,
        }))
    }

    fn verify(&self, param: &MechanismParam, key: &LoadedKey) -> Result<Box<dyn VerifyOperation>> {
        let key = public_key(key)?;
        let input = Input::new(self.0, param, &key)?;
        Ok(Box::new(Verify {
            kind: self.0,
            key,
            input,
        }))
    }
}

/// What the data turns into e: a running SM3 over Z||M, or the caller's e collected.
enum Input {
    Hashing(Hasher),
    Digest { bytes: Vec<u8>, too_long: bool },
}

impl Input {
    fn new(kind: Sm2SignKind, param: &MechanismParam, key: &Sm2PublicKey) -> Result<Self> {
        let param_bytes = param.bytes().ok_or_else(|| {
            Error::with(
                CKR_MECHANISM_PARAM_INVALID,
                "SM2 signer ID must be raw bytes",
            )
        })?;
        match kind {
            Sm2SignKind::WithSm3 { .. } => {
                let signer_id = if param_bytes.is_empty() {
                    &SM2_DEFAULT_SIGNER_ID[..]
                } else {
                    param_bytes
                };
                let mut hasher = E_HASH.hasher();
                hasher.update(&key.z(signer_id)?);
                Ok(Input::Hashing(hasher))
            }
            Sm2SignKind::Prehashed if param_bytes.is_empty() => Ok(Input::Digest {
                bytes: Vec::with_capacity(E_HASH.output_len()),
                too_long: false,
            }),
            Sm2SignKind::Prehashed => Err(Error::with(
                CKR_MECHANISM_PARAM_INVALID,
                "CKM_SM2 takes no parameter",
            )),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Input::Hashing(hasher) => hasher.update(data),
            Input::Digest { bytes, too_long } => {
                // Never buffer more than one digest's worth: the length is wrong anyway.
                if *too_long || bytes.len() + data.len() > E_HASH.output_len() {
                    *too_long = true;
                } else {
                    bytes.extend_from_slice(data);
                }
            }
        }
    }

    /// e, or `CKR_DATA_LEN_RANGE` when a caller's e is not 32 bytes.
    fn digest(&self) -> Result<Vec<u8>> {
        match self {
            Input::Hashing(hasher) => Ok(hasher.clone().finish()),
            Input::Digest { bytes, too_long }
                if !*too_long && bytes.len() == E_HASH.output_len() =>
            {
                Ok(bytes.clone())
            }
            Input::Digest { .. } => Err(Error::with(
                CKR_DATA_LEN_RANGE,
                "CKM_SM2 signs a 32-byte digest",
            )),
        }
    }
}

struct Sign {
    kind: Sm2SignKind,
    key: Arc<Sm2PrivateKey>,
    input: Input,
}

impl SignOperation for Sign {
    fn signature_len(&self) -> usize {
        match self.kind {
            Sm2SignKind::WithSm3 { der: true } => SIGNATURE_DER_MAX_LEN,
            _ => SIGNATURE_LEN,
        }
    }

    fn multi_part(&self) -> bool {
        self.kind != Sm2SignKind::Prehashed
    }

    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.input.update(data);
        Ok(())
    }

    fn finish(&mut self) -> Result<Vec<u8>> {
        let e = self.input.digest()?;
        let raw = self.key.sign_prehash(&e)?;
        match self.kind {
            Sm2SignKind::WithSm3 { der: true } => signature_to_der(&raw),
            _ => Ok(raw.to_vec()),
        }
    }
}

struct Verify {
    kind: Sm2SignKind,
    key: Arc<Sm2PublicKey>,
    input: Input,
}

impl VerifyOperation for Verify {
    fn multi_part(&self) -> bool {
        self.kind != Sm2SignKind::Prehashed
    }

    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.input.update(data);
        Ok(())
    }

    fn finish(&mut self, signature: &[u8]) -> Result<()> {
        let e = self.input.digest()?;
        match self.kind {
            Sm2SignKind::WithSm3 { der: true } => {
                let raw = signature_from_der(signature)?;
                self.key.verify_prehash(&e, &raw)
            }
            _ if signature.len() != SIGNATURE_LEN => fail(CKR_SIGNATURE_LEN_RANGE),
            _ => self.key.verify_prehash(&e, signature),
        }
    }
}
