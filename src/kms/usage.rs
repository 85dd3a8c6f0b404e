//! The usages a KMS key is made for, as data: the generation mechanism and the templates
//! that give the key exactly that usage for its life (usage flags, CKA_ALLOWED_MECHANISMS,
//! CKA_MODIFIABLE / CKA_COPYABLE / CKA_DESTROYABLE false: deleted only by a scheduled
//! deletion).

use crate::error::{Error, Result};
use crate::object::Attributes;
use crate::vendor::*;
use cryptoki_sys::*;

/// One usage: its KMS name, its `KEY_USAGE_*` code, how keys for it are made.
pub struct Usage {
    pub name: &'static str,
    pub code: CK_ULONG,
    pub mechanism: CK_MECHANISM_TYPE,
    /// `None` for a secret key (no pair).
    pub public: Option<&'static [CK_ATTRIBUTE_TYPE]>,
    /// Usage flags set true on the private or secret key; every other one is false.
    pub private: &'static [CK_ATTRIBUTE_TYPE],
    pub allowed: &'static [CK_MECHANISM_TYPE],
    /// The algorithm parameters of the generation (modulus size, curve, key length).
    pub shape: Shape,
}

pub enum Shape {
    Rsa { bits: CK_ULONG },
    Curve(&'static [u8]),
    SecretLen(CK_ULONG),
}

const P256_OID: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

pub const USAGES: &[Usage] = &[
    Usage {
        name: "ASYMMETRIC_DECRYPT_RSA_2048",
        code: KEY_USAGE_ASYMMETRIC_DECRYPT_RSA_2048,
        mechanism: CKM_RSA_PKCS_KEY_PAIR_GEN,
        public: Some(&[CKA_ENCRYPT, CKA_WRAP]),
        private: &[CKA_DECRYPT, CKA_UNWRAP],
        allowed: &[CKM_RSA_PKCS, CKM_RSA_PKCS_OAEP],
        shape: Shape::Rsa { bits: 2048 },
    },
    Usage {
        name: "ASYMMETRIC_DECRYPT_SM2",
        code: KEY_USAGE_ASYMMETRIC_DECRYPT_SM2,
        mechanism: CKM_SM2_KEY_PAIR_GEN,
        public: Some(&[CKA_ENCRYPT, CKA_WRAP]),
        private: &[CKA_DECRYPT, CKA_UNWRAP],
        allowed: &[CKM_SM2_RAW, CKM_SM2_CIPHER_DER],
        shape: Shape::Curve(&SM2_OID_DER),
    },
    Usage {
        name: "ASYMMETRIC_SIGN_VERIFY_RSA_2048",
        code: KEY_USAGE_ASYMMETRIC_SIGN_VERIFY_RSA_2048,
        mechanism: CKM_RSA_PKCS_KEY_PAIR_GEN,
        public: Some(&[CKA_VERIFY]),
        private: &[CKA_SIGN],
        allowed: &[
            CKM_SHA256_RSA_PKCS,
            CKM_SHA384_RSA_PKCS,
            CKM_SHA512_RSA_PKCS,
            CKM_SHA256_RSA_PKCS_PSS,
            CKM_SHA384_RSA_PKCS_PSS,
            CKM_SHA512_RSA_PKCS_PSS,
            CKM_RSA_PKCS_PSS,
        ],
        shape: Shape::Rsa { bits: 2048 },
    },
    Usage {
        name: "ASYMMETRIC_SIGN_VERIFY_SM2",
        code: KEY_USAGE_ASYMMETRIC_SIGN_VERIFY_SM2,
        mechanism: CKM_SM2_KEY_PAIR_GEN,
        public: Some(&[CKA_VERIFY]),
        private: &[CKA_SIGN],
        allowed: &[CKM_SM3_SM2, CKM_SM3_SM2_DER, CKM_SM2],
        shape: Shape::Curve(&SM2_OID_DER),
    },
    Usage {
        name: "ASYMMETRIC_SIGN_VERIFY_ECC",
        code: KEY_USAGE_ASYMMETRIC_SIGN_VERIFY_ECC,
        mechanism: CKM_EC_KEY_PAIR_GEN,
        public: Some(&[CKA_VERIFY]),
        private: &[CKA_SIGN],
        allowed: &[
            CKM_ECDSA,
            CKM_ECDSA_SHA256,
            CKM_ECDSA_SHA384,
            CKM_ECDSA_SHA512,
        ],
        shape: Shape::Curve(P256_OID),
    },
    Usage {
        name: "ENCRYPT_DECRYPT",
        code: KEY_USAGE_ENCRYPT_DECRYPT,
        mechanism: CKM_AES_KEY_GEN,
        public: None,
        private: &[CKA_ENCRYPT, CKA_DECRYPT],
        allowed: &[CKM_AES_GCM, CKM_AES_CBC_PAD],
        shape: Shape::SecretLen(32),
    },
];

/// Every usage flag a key object may carry; those a usage does not list are set false.
const PUBLIC_FLAGS: &[CK_ATTRIBUTE_TYPE] = &[CKA_ENCRYPT, CKA_VERIFY, CKA_VERIFY_RECOVER, CKA_WRAP];
const PRIVATE_FLAGS: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_DECRYPT,
    CKA_SIGN,
    CKA_SIGN_RECOVER,
    CKA_UNWRAP,
    CKA_DERIVE,
];
/// Every usage flag of a secret key.
pub(super) const SECRET_FLAGS: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_ENCRYPT,
    CKA_DECRYPT,
    CKA_SIGN,
    CKA_VERIFY,
    CKA_WRAP,
    CKA_UNWRAP,
    CKA_DERIVE,
];

impl Usage {
    pub fn by_name(name: &str) -> Result<&'static Usage> {
        USAGES.iter().find(|u| u.name == name).ok_or_else(|| {
            let names: Vec<&str> = USAGES.iter().map(|u| u.name).collect();
            Error::with(
                CKR_ARGUMENTS_BAD,
                format!("unknown usage {name:?}; one of {}", names.join(", ")),
            )
        })
    }

    pub fn by_code(code: CK_ULONG) -> Option<&'static Usage> {
        USAGES.iter().find(|u| u.code == code)
    }

    /// The templates (public, private or secret) for a key with these common attributes.
    pub fn templates(&self, common: &Attributes) -> (Option<Attributes>, Attributes) {
        let fixed = |mut t: Attributes, all: &[CK_ATTRIBUTE_TYPE], on: &[CK_ATTRIBUTE_TYPE]| {
            for (ty, value) in common.iter() {
                t.set(ty, value.to_vec());
            }
            for flag in all {
                t.set_bool(*flag, on.contains(flag));
            }
            t.set_bool(CKA_TOKEN, true);
            t.set_bool(CKA_MODIFIABLE, false);
            t.set_bool(CKA_COPYABLE, false);
            t.set_bool(CKA_DESTROYABLE, false);
            t.set_ulong(CKA_FERROHSM_KEY_USAGE, self.code);
            t
        };
        let public = self.public.map(|on| {
            let mut t = fixed(Attributes::new(), PUBLIC_FLAGS, on);
            t.set_bool(CKA_PRIVATE, false);
            self.shape_into(&mut t, true);
            t
        });
        let flags = if self.public.is_some() {
            PRIVATE_FLAGS
        } else {
            SECRET_FLAGS
        };
        let mut private = fixed(Attributes::new(), flags, self.private);
        private.set_bool(CKA_PRIVATE, true);
        private.set_bool(CKA_SENSITIVE, true);
        private.set_bool(CKA_EXTRACTABLE, false);
        let allowed: Vec<u8> = self.allowed.iter().flat_map(|m| m.to_ne_bytes()).collect();
        private.set(CKA_ALLOWED_MECHANISMS, allowed);
        self.shape_into(&mut private, false);
        (public, private)
    }

    fn shape_into(&self, t: &mut Attributes, public: bool) {
        match self.shape {
            Shape::Rsa { bits } if public => {
                t.set_ulong(CKA_MODULUS_BITS, bits);
                t.set(CKA_PUBLIC_EXPONENT, vec![0x01, 0x00, 0x01]);
            }
            Shape::Curve(oid) if public => t.set(CKA_EC_PARAMS, oid.to_vec()),
            Shape::SecretLen(len) => t.set_ulong(CKA_VALUE_LEN, len),
            _ => {}
        }
    }
}
