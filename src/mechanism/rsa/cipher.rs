//! Encryption and decryption: CKM_RSA_PKCS, CKM_RSA_PKCS_OAEP, CKM_RSA_X_509. All are
//! single-part; the output is at most the modulus length k.

use super::keys::{private_key, public_key};
use super::{params, Kind};
use crate::crypto::rsa::{RsaEncryption, RsaPrivateKey, RsaPublicKey};
use crate::error::{fail, Result};
use crate::mechanism::{CipherOperation, LoadedKey, MechanismParam};
use cryptoki_sys::*;
use std::sync::Arc;
use zeroize::Zeroizing;

fn scheme(kind: Kind, param: &MechanismParam) -> Result<RsaEncryption> {
    match kind {
        Kind::Pkcs1 => param.expect_none().map(|_| RsaEncryption::Pkcs1v15),
        Kind::Pkcs1ImplicitRejection => param
            .expect_none()
            .map(|_| RsaEncryption::Pkcs1v15ImplicitRejection),
        Kind::X509 => param.expect_none().map(|_| RsaEncryption::Raw),
        Kind::Oaep => params::oaep(param),
        _ => fail(CKR_MECHANISM_INVALID),
    }
}

pub fn encrypt(
    kind: Kind,
    param: &MechanismParam,
    key: &LoadedKey,
) -> Result<Box<dyn CipherOperation>> {
    let scheme = scheme(kind, param)?;
    Ok(Box::new(Encrypt {
        key: public_key(key)?,
        scheme,
    }))
}

pub fn decrypt(
    kind: Kind,
    param: &MechanismParam,
    key: &LoadedKey,
) -> Result<Box<dyn CipherOperation>> {
    let scheme = scheme(kind, param)?;
    Ok(Box::new(Decrypt {
        key: private_key(key)?,
        scheme,
    }))
}

struct Encrypt {
    key: Arc<dyn RsaPublicKey>,
    scheme: RsaEncryption,
}

impl CipherOperation for Encrypt {
    fn output_len(&self, _input_len: usize) -> Result<usize> {
        Ok(self.key.size())
    }

    fn run(&mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.key.encrypt(&self.scheme, input).map(Zeroizing::new)
    }
}

struct Decrypt {
    key: Arc<dyn RsaPrivateKey>,
    scheme: RsaEncryption,
}

impl CipherOperation for Decrypt {
    fn output_len(&self, _input_len: usize) -> Result<usize> {
        Ok(self.key.size())
    }

    fn run(&mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.key.decrypt(&self.scheme, input)
    }
}
