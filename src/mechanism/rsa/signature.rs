//! Signing and verification: CKM_RSA_PKCS and CKM_RSA_X_509 (single-part, data signed as
//! given), CKM_RSA_PKCS_PSS (single-part, data is a digest), and CKM_SHA*_RSA_PKCS /
//! CKM_SHA*_RSA_PKCS_PSS (multi-part, data hashed here).

use super::keys::{private_key, public_key};
use super::{params, Kind};
use crate::crypto::hash::Hasher;
use crate::crypto::rsa::{RsaPrivateKey, RsaPublicKey, RsaSignature};
use crate::error::{fail, Result};
use crate::mechanism::{LoadedKey, MechanismParam, SignOperation, VerifyOperation};
use cryptoki_sys::*;
use std::sync::Arc;
use zeroize::Zeroizing;

/// Where the data goes until the signature is made.
enum Input {
    /// Collected as given (single-part mechanisms: the data is what gets padded).
    Buffer(Zeroizing<Vec<u8>>),
    /// Hashed as it comes (hash-and-sign mechanisms).
    Hash(Option<Hasher>),
}

impl Input {
    fn update(&mut self, data: &[u8]) {
        match self {
            Input::Buffer(buf) => buf.extend_from_slice(data),
            Input::Hash(Some(h)) => h.update(data),
            Input::Hash(None) => {}
        }
    }

    /// What the backend signs: the data, or its digest.
    fn take(&mut self) -> Zeroizing<Vec<u8>> {
        match self {
            Input::Buffer(buf) => std::mem::take(buf),
            Input::Hash(h) => Zeroizing::new(h.take().map(Hasher::finish).unwrap_or_default()),
        }
    }

    fn multi_part(&self) -> bool {
        matches!(self, Input::Hash(_))
    }
}

fn scheme(kind: Kind, param: &MechanismParam, k: usize) -> Result<(RsaSignature, Input)> {
    let buffer = || Input::Buffer(Zeroizing::new(Vec::new()));
    Ok(match kind {
        Kind::Pkcs1 => {
            param.expect_none()?;
            (RsaSignature::Pkcs1v15Raw, buffer())
        }
        Kind::X509 => {
            param.expect_none()?;
            (RsaSignature::Raw, buffer())
        }
        Kind::Pss => (params::pss(param, None, k)?, buffer()),
        Kind::HashPkcs1(hash) => {
            param.expect_none()?;
            (
                RsaSignature::Pkcs1v15Digest(hash),
                Input::Hash(Some(hash.hasher())),
            )
        }
        Kind::HashPss(hash) => (
            params::pss(param, Some(hash), k)?,
            Input::Hash(Some(hash.hasher())),
        ),
        Kind::Oaep | Kind::Pkcs1ImplicitRejection => return fail(CKR_MECHANISM_INVALID),
    })
}

pub fn sign(kind: Kind, param: &MechanismParam, key: &LoadedKey) -> Result<Box<dyn SignOperation>> {
    let key = private_key(key)?;
    let (scheme, input) = scheme(kind, param, key.size())?;
    Ok(Box::new(Sign { key, scheme, input }))
}

pub fn verify(
    kind: Kind,
    param: &MechanismParam,
    key: &LoadedKey,
) -> Result<Box<dyn VerifyOperation>> {
    let key = public_key(key)?;
    let (scheme, input) = scheme(kind, param, key.size())?;
    Ok(Box::new(Verify { key, scheme, input }))
}

struct Sign {
    key: Arc<dyn RsaPrivateKey>,
    scheme: RsaSignature,
    input: Input,
}

impl SignOperation for Sign {
    fn signature_len(&self) -> usize {
        self.key.size()
    }

    fn multi_part(&self) -> bool {
        self.input.multi_part()
    }

    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.input.update(data);
        Ok(())
    }

    fn finish(&mut self) -> Result<Vec<u8>> {
        let input = self.input.take();
        self.key.sign(&self.scheme, &input)
    }
}

struct Verify {
    key: Arc<dyn RsaPublicKey>,
    scheme: RsaSignature,
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
        let input = self.input.take();
        self.key.verify(&self.scheme, &input, signature)
    }
}
