//! Mechanism parameters in safe form. The C boundary reads `pParameter` according to
//! `layout()` of the mechanism and hands the result here; no mechanism touches raw memory.

use crate::error::{Error, Result};
use cryptoki_sys::*;

/// How the boundary must read a mechanism's `pParameter`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamLayout {
    /// Bytes copied as they are (or none): SM2 format codes and signer IDs, etc.
    Opaque,
    /// `CK_RSA_PKCS_OAEP_PARAMS`.
    Oaep,
    /// `CK_RSA_PKCS_PSS_PARAMS`.
    Pss,
    /// `CK_GCM_PARAMS`, in the 3.0 layout (with `ulIvBits`) or the 2.40 one (without).
    Gcm,
    /// `CK_AES_CTR_PARAMS`.
    Ctr,
    /// `CK_KEY_DERIVATION_STRING_DATA`.
    DerivationString,
    /// `CK_AES_CBC_ENCRYPT_DATA_PARAMS`.
    CbcEncryptData,
    /// `CK_ECDH1_DERIVE_PARAMS`.
    Ecdh1,
    /// `CK_EDDSA_PARAMS`.
    Eddsa,
}

pub fn layout(mechanism: CK_MECHANISM_TYPE) -> ParamLayout {
    match mechanism {
        CKM_RSA_PKCS_OAEP => ParamLayout::Oaep,
        CKM_RSA_PKCS_PSS
        | CKM_SHA1_RSA_PKCS_PSS
        | CKM_SHA224_RSA_PKCS_PSS
        | CKM_SHA256_RSA_PKCS_PSS
        | CKM_SHA384_RSA_PKCS_PSS
        | CKM_SHA512_RSA_PKCS_PSS => ParamLayout::Pss,
        CKM_AES_GCM => ParamLayout::Gcm,
        CKM_AES_CTR => ParamLayout::Ctr,
        CKM_AES_ECB_ENCRYPT_DATA => ParamLayout::DerivationString,
        CKM_AES_CBC_ENCRYPT_DATA => ParamLayout::CbcEncryptData,
        CKM_ECDH1_DERIVE | CKM_ECDH1_COFACTOR_DERIVE => ParamLayout::Ecdh1,
        CKM_EDDSA => ParamLayout::Eddsa,
        _ => ParamLayout::Opaque,
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MechanismParam {
    /// `pParameter` NULL (or length 0).
    None,
    Bytes(Vec<u8>),
    Oaep {
        hash_alg: CK_MECHANISM_TYPE,
        mgf: CK_RSA_PKCS_MGF_TYPE,
        source: CK_RSA_PKCS_OAEP_SOURCE_TYPE,
        source_data: Vec<u8>,
    },
    Pss {
        hash_alg: CK_MECHANISM_TYPE,
        mgf: CK_RSA_PKCS_MGF_TYPE,
        salt_len: CK_ULONG,
    },
    Gcm {
        iv: Vec<u8>,
        aad: Vec<u8>,
        tag_bits: CK_ULONG,
    },
    Ctr {
        counter_bits: CK_ULONG,
        block: [u8; 16],
    },
    Ecdh1 {
        kdf: CK_EC_KDF_TYPE,
        shared_data: Vec<u8>,
        public_data: Vec<u8>,
    },
    Eddsa {
        prehash: bool,
        context: Vec<u8>,
    },
    /// The data a key is derived from, and for CBC its IV.
    DeriveData {
        iv: Option<[u8; 16]>,
        data: Vec<u8>,
    },
}

impl MechanismParam {
    /// The parameter as opaque bytes (empty when absent); structured parameters are not bytes.
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            MechanismParam::None => Some(&[]),
            MechanismParam::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// A parameter that is one `CK_ULONG` (`CK_MAC_GENERAL_PARAMS`, SM2 format codes), in
    /// native byte order; anything else is `CKR_MECHANISM_PARAM_INVALID`.
    pub fn ulong(&self) -> Result<CK_ULONG> {
        self.bytes()
            .and_then(|b| <[u8; std::mem::size_of::<CK_ULONG>()]>::try_from(b).ok())
            .map(CK_ULONG::from_ne_bytes)
            .ok_or_else(|| Error::with(CKR_MECHANISM_PARAM_INVALID, "parameter is not a CK_ULONG"))
    }

    /// Mechanisms without parameters accept only an absent (or empty) `pParameter`;
    /// anything else is `CKR_MECHANISM_PARAM_INVALID`.
    pub fn expect_none(&self) -> Result<()> {
        match self {
            MechanismParam::None => Ok(()),
            _ => Err(Error::with(
                CKR_MECHANISM_PARAM_INVALID,
                "mechanism takes no parameter",
            )),
        }
    }
}
