//! MAC mechanisms: HMAC over SHA-1, SHA-2 and SM3 (with and without `_GENERAL`), AES-CMAC
//! (with and without `_GENERAL`), and the generation of the generic secret keys HMAC uses.
//! Sign computes the MAC, Verify recomputes it and compares in constant time; both are
//! single- and multi-part.

use super::secret::{secret_of, SecretKeyGen, GENERIC_SECRET_LENGTHS};
use super::{LoadedKey, Mechanism, MechanismInfo, MechanismParam, SignOperation, VerifyOperation};
use crate::crypto::hash::HashAlg;
use crate::crypto::symmetric::mac::{self, MacStream};
use crate::error::{Error, Result};
use crate::vendor::{CKK_SM4, CKM_SM3_HMAC, CKM_SM3_HMAC_GENERAL};
use cryptoki_sys::*;

#[derive(Clone, Copy, Debug)]
enum Algorithm {
    Hmac(HashAlg),
    AesCmac,
}

impl Algorithm {
    fn full_len(self) -> usize {
        match self {
            Algorithm::Hmac(hash) => hash.output_len(),
            Algorithm::AesCmac => 16,
        }
    }

    fn start(self, key: &LoadedKey) -> Result<Box<dyn MacStream>> {
        match self {
            // HMAC keys are generic secrets; SoftHSMv2 and python-pkcs11 also use AES and
            // SM4 keys as HMAC keys, which PKCS#11 does not forbid.
            Algorithm::Hmac(hash) => {
                let key = secret_of(key, &[CKK_GENERIC_SECRET, CKK_AES, CKK_SM4])?;
                Ok(mac::hmac(hash, key.value()))
            }
            Algorithm::AesCmac => mac::aes_cmac(secret_of(key, &[CKK_AES])?.value()),
        }
    }
}

struct MacMechanism {
    algorithm: Algorithm,
    /// `_GENERAL`: the parameter is the MAC length (`CK_MAC_GENERAL_PARAMS`).
    general: bool,
}

impl MacMechanism {
    fn mac_len(&self, param: &MechanismParam) -> Result<usize> {
        let full = self.algorithm.full_len();
        if !self.general {
            param.expect_none()?;
            return Ok(full);
        }
        match param.ulong()? as usize {
            len @ 1.. if len <= full => Ok(len),
            _ => Err(Error::with(
                CKR_MECHANISM_PARAM_INVALID,
                "MAC length out of range",
            )),
        }
    }
}

impl Mechanism for MacMechanism {
    fn info(&self) -> MechanismInfo {
        let (min_key_size, max_key_size) = match self.algorithm {
            // Generic secret key sizes, in bits (mechanisms spec §2.8).
            Algorithm::Hmac(_) => (8, 4096),
            Algorithm::AesCmac => (16, 32),
        };
        MechanismInfo {
            min_key_size,
            max_key_size,
            flags: CKF_SIGN | CKF_VERIFY,
        }
    }

    fn sign(&self, param: &MechanismParam, key: &LoadedKey) -> Result<Box<dyn SignOperation>> {
        Ok(Box::new(MacOperation {
            mac_len: self.mac_len(param)?,
            stream: self.algorithm.start(key)?,
        }))
    }

    fn verify(&self, param: &MechanismParam, key: &LoadedKey) -> Result<Box<dyn VerifyOperation>> {
        Ok(Box::new(MacOperation {
            mac_len: self.mac_len(param)?,
            stream: self.algorithm.start(key)?,
        }))
    }
}

struct MacOperation {
    mac_len: usize,
    stream: Box<dyn MacStream>,
}

impl MacOperation {
    fn mac(&mut self) -> Vec<u8> {
        let mut mac = self.stream.finish();
        mac.truncate(self.mac_len);
        mac
    }
}

impl SignOperation for MacOperation {
    fn signature_len(&self) -> usize {
        self.mac_len
    }

    fn multi_part(&self) -> bool {
        true
    }

    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.stream.update(data);
        Ok(())
    }

    fn finish(&mut self) -> Result<Vec<u8>> {
        Ok(self.mac())
    }
}

impl VerifyOperation for MacOperation {
    fn multi_part(&self) -> bool {
        true
    }

    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.stream.update(data);
        Ok(())
    }

    fn finish(&mut self, signature: &[u8]) -> Result<()> {
        if signature.len() != self.mac_len {
            return Err(Error::new(CKR_SIGNATURE_LEN_RANGE));
        }
        if mac::mac_matches(&self.mac(), signature) {
            Ok(())
        } else {
            Err(Error::new(CKR_SIGNATURE_INVALID))
        }
    }
}

/// Every MAC mechanism and CKM_GENERIC_SECRET_KEY_GEN, for the registry.
pub fn mechanisms() -> Vec<(CK_MECHANISM_TYPE, Box<dyn Mechanism>)> {
    let family = [
        (CKM_SHA_1_HMAC, Algorithm::Hmac(HashAlg::Sha1), false),
        (CKM_SHA_1_HMAC_GENERAL, Algorithm::Hmac(HashAlg::Sha1), true),
        (CKM_SHA224_HMAC, Algorithm::Hmac(HashAlg::Sha224), false),
        (
            CKM_SHA224_HMAC_GENERAL,
            Algorithm::Hmac(HashAlg::Sha224),
            true,
        ),
        (CKM_SHA256_HMAC, Algorithm::Hmac(HashAlg::Sha256), false),
        (
            CKM_SHA256_HMAC_GENERAL,
            Algorithm::Hmac(HashAlg::Sha256),
            true,
        ),
        (CKM_SHA384_HMAC, Algorithm::Hmac(HashAlg::Sha384), false),
        (
            CKM_SHA384_HMAC_GENERAL,
            Algorithm::Hmac(HashAlg::Sha384),
            true,
        ),
        (CKM_SHA512_HMAC, Algorithm::Hmac(HashAlg::Sha512), false),
        (
            CKM_SHA512_HMAC_GENERAL,
            Algorithm::Hmac(HashAlg::Sha512),
            true,
        ),
        (CKM_SM3_HMAC, Algorithm::Hmac(HashAlg::Sm3), false),
        (CKM_SM3_HMAC_GENERAL, Algorithm::Hmac(HashAlg::Sm3), true),
        (CKM_AES_CMAC, Algorithm::AesCmac, false),
        (CKM_AES_CMAC_GENERAL, Algorithm::AesCmac, true),
    ];
    let mut all: Vec<(CK_MECHANISM_TYPE, Box<dyn Mechanism>)> = family
        .into_iter()
        .map(|(ty, algorithm, general)| {
            (
                ty,
                Box::new(MacMechanism { algorithm, general }) as Box<dyn Mechanism>,
            )
        })
        .collect();
    all.push((
        CKM_GENERIC_SECRET_KEY_GEN,
        Box::new(SecretKeyGen {
            key_type: CKK_GENERIC_SECRET,
            lengths: GENERIC_SECRET_LENGTHS,
            sizes_in_bits: true,
        }),
    ));
    all
}
