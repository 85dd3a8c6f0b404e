//! The AES and SM4 family: key generation, ECB, CBC, CBC with PKCS#7 padding, CTR, GCM and
//! the RFC 3394 / 5649 key wraps. The primitives are `crate::crypto::symmetric`; this
//! folder holds the PKCS#11 rules: parameters, partial blocks across multi-part calls,
//! padding, and which functions each mechanism serves.
//!
//! Wrapping needs no code of its own: C_WrapKey is a single-part encryption of the key's
//! bytes and C_UnwrapKey a single-part decryption, so a mechanism whose info says CKF_WRAP
//! and CKF_UNWRAP wraps exactly what it encrypts (OpenSC's p11test checks that every
//! mechanism advertised so really wraps).

mod block;
mod derive;
mod gcm;
mod keywrap;

use super::secret::{SecretKeyGen, AES_LENGTHS, SM4_LENGTHS};
use super::{CipherOperation, LoadedKey, Mechanism, MechanismInfo, MechanismParam};
use crate::crypto::symmetric::keywrap::Scheme;
use crate::crypto::symmetric::BlockCipher;
use crate::error::Result;
use crate::vendor::{CKK_SM4, CKM_SM4_CBC, CKM_SM4_CBC_PAD, CKM_SM4_ECB, CKM_SM4_KEY_GEN};
use cryptoki_sys::*;
use zeroize::Zeroizing;

/// Which member of the family a registered mechanism is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Ecb,
    Cbc,
    CbcPad,
    Ctr,
    Gcm,
    KeyWrap(Scheme),
    /// `_ENCRYPT_DATA` key derivation, ECB (false) or CBC (true).
    EncryptData {
        cbc: bool,
    },
}

struct SymmetricCipher {
    cipher: BlockCipher,
    kind: Kind,
}

impl SymmetricCipher {
    fn key_type(&self) -> CK_KEY_TYPE {
        match self.cipher {
            BlockCipher::Aes => CKK_AES,
            BlockCipher::Sm4 => CKK_SM4,
        }
    }
}

impl Mechanism for SymmetricCipher {
    fn info(&self) -> MechanismInfo {
        let flags = match self.kind {
            Kind::EncryptData { .. } => CKF_DERIVE,
            Kind::CbcPad | Kind::KeyWrap(_) => CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP,
            _ => CKF_ENCRYPT | CKF_DECRYPT,
        };
        // In bytes, as the mechanisms spec (§2.10) says for AES.
        let lengths = match self.cipher {
            BlockCipher::Aes => AES_LENGTHS,
            BlockCipher::Sm4 => SM4_LENGTHS,
        };
        MechanismInfo {
            min_key_size: lengths.min() as CK_ULONG,
            max_key_size: lengths.max() as CK_ULONG,
            flags,
        }
    }

    fn derive(
        &self,
        param: &MechanismParam,
        base: &LoadedKey,
        _value_len: Option<usize>,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let Kind::EncryptData { cbc } = self.kind else {
            return Err(crate::error::Error::new(CKR_MECHANISM_INVALID));
        };
        let key = super::secret::secret_of(base, &[self.key_type()])?;
        derive::encrypt_data(self.cipher, cbc, param, key.value())
    }

    fn encrypt(&self, param: &MechanismParam, key: &LoadedKey) -> Result<Box<dyn CipherOperation>> {
        self.operation(param, key, true)
    }

    fn decrypt(&self, param: &MechanismParam, key: &LoadedKey) -> Result<Box<dyn CipherOperation>> {
        self.operation(param, key, false)
    }
}

impl SymmetricCipher {
    fn operation(
        &self,
        param: &MechanismParam,
        key: &LoadedKey,
        encrypt: bool,
    ) -> Result<Box<dyn CipherOperation>> {
        let key = super::secret::secret_of(key, &[self.key_type()])?;
        match self.kind {
            Kind::Ecb | Kind::Cbc | Kind::CbcPad | Kind::Ctr => {
                block::operation(self.cipher, self.kind, param, key.value(), encrypt)
            }
            Kind::Gcm => gcm::operation(param, key.value(), encrypt),
            Kind::KeyWrap(scheme) => keywrap::operation(scheme, param, key.value(), encrypt),
            Kind::EncryptData { .. } => Err(crate::error::Error::new(CKR_MECHANISM_INVALID)),
        }
    }
}

/// Every AES and SM4 mechanism, for the registry.
pub fn mechanisms() -> Vec<(CK_MECHANISM_TYPE, Box<dyn Mechanism>)> {
    let aes = BlockCipher::Aes;
    let sm4 = BlockCipher::Sm4;
    let ciphers = [
        (CKM_AES_ECB, aes, Kind::Ecb),
        (CKM_AES_CBC, aes, Kind::Cbc),
        (CKM_AES_CBC_PAD, aes, Kind::CbcPad),
        (CKM_AES_CTR, aes, Kind::Ctr),
        (CKM_AES_GCM, aes, Kind::Gcm),
        (CKM_AES_KEY_WRAP, aes, Kind::KeyWrap(Scheme::Kw)),
        (CKM_AES_KEY_WRAP_KWP, aes, Kind::KeyWrap(Scheme::Kwp)),
        (
            CKM_AES_ECB_ENCRYPT_DATA,
            aes,
            Kind::EncryptData { cbc: false },
        ),
        (
            CKM_AES_CBC_ENCRYPT_DATA,
            aes,
            Kind::EncryptData { cbc: true },
        ),
        (CKM_SM4_ECB, sm4, Kind::Ecb),
        (CKM_SM4_CBC, sm4, Kind::Cbc),
        (CKM_SM4_CBC_PAD, sm4, Kind::CbcPad),
    ];
    let mut all: Vec<(CK_MECHANISM_TYPE, Box<dyn Mechanism>)> = ciphers
        .into_iter()
        .map(|(ty, cipher, kind)| {
            (
                ty,
                Box::new(SymmetricCipher { cipher, kind }) as Box<dyn Mechanism>,
            )
        })
        .collect();
    all.push((
        CKM_AES_KEY_GEN,
        Box::new(SecretKeyGen {
            key_type: CKK_AES,
            lengths: AES_LENGTHS,
            sizes_in_bits: false,
        }),
    ));
    all.push((
        CKM_SM4_KEY_GEN,
        Box::new(SecretKeyGen {
            key_type: CKK_SM4,
            lengths: SM4_LENGTHS,
            sizes_in_bits: false,
        }),
    ));
    all
}
