//! The mechanism registry: `CKM_*` -> implementation. One mechanism family per file.
//!
//! A mechanism turns a key that the object layer has already checked (class, usage flag,
//! allowed mechanisms) and loaded (`LoadedKey`, parsed once per login) into an operation
//! object that the session keeps until the operation ends. Nothing here takes a lock.

pub mod digest;
#[cfg(feature = "aws-lc")]
pub mod ec;
pub mod ec_point;
pub mod mac;
pub mod params;
pub mod registry;
pub mod rsa;
pub mod secret;
pub mod sm2;
pub mod symmetric;

use crate::error::{fail, Result};
use crate::object::Attributes;
use cryptoki_sys::*;
use std::sync::Arc;
use zeroize::Zeroizing;

pub use ec_point::to_der as ec_point_der;
pub use params::MechanismParam;
pub use registry::{lookup, mechanism_list};

/// `CK_MECHANISM_INFO` in safe form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MechanismInfo {
    pub min_key_size: CK_ULONG,
    pub max_key_size: CK_ULONG,
    pub flags: CK_FLAGS,
}

/// A key ready for use: parsed once after login and shared by every operation on it.
#[derive(Clone)]
pub enum LoadedKey {
    RsaPublic(Arc<dyn crate::crypto::rsa::RsaPublicKey>),
    RsaPrivate(Arc<dyn crate::crypto::rsa::RsaPrivateKey>),
    Sm2Public(Arc<crate::crypto::sm2::Sm2PublicKey>),
    Sm2Private(Arc<crate::crypto::sm2::Sm2PrivateKey>),
    /// AES, SM4 and generic secret keys: the value, kept in zeroizing memory.
    Secret(Arc<secret::SecretKey>),
    #[cfg(feature = "aws-lc")]
    EcPublic(Arc<crate::crypto::ec::EcPublicKey>),
    #[cfg(feature = "aws-lc")]
    EcPrivate(Arc<crate::crypto::ec::EcPrivateKey>),
    #[cfg(feature = "aws-lc")]
    Ed25519Public(Arc<crate::crypto::ec::Ed25519PublicKey>),
    #[cfg(feature = "aws-lc")]
    Ed25519Private(Arc<crate::crypto::ec::Ed25519PrivateKey>),
    #[cfg(feature = "aws-lc")]
    X25519Public(Arc<crate::crypto::ec::X25519PublicKey>),
    #[cfg(feature = "aws-lc")]
    X25519Private(Arc<crate::crypto::ec::X25519PrivateKey>),
}

/// Parses a stored key object (public or private) into its ready-to-use form. Called by
/// the token once per key and login; the result is cached there.
pub fn load_key(attrs: &Attributes) -> Result<LoadedKey> {
    if attrs.get_ulong(CKA_CLASS)? == Some(CKO_SECRET_KEY) {
        return secret::load_key(attrs);
    }
    match attrs.get_ulong(CKA_KEY_TYPE)? {
        Some(CKK_RSA) => rsa::load_key(attrs),
        // SM2 keys made before CKA_EC_PARAMS was required carry none.
        Some(CKK_EC) | Some(crate::vendor::CKK_SM2) if !attrs.contains(CKA_EC_PARAMS) => {
            sm2::load_key(attrs)
        }
        #[cfg(feature = "aws-lc")]
        Some(CKK_EC)
        | Some(crate::vendor::CKK_SM2)
        | Some(CKK_EC_EDWARDS)
        | Some(CKK_EC_MONTGOMERY) => ec::load_key(attrs),
        #[cfg(not(feature = "aws-lc"))]
        Some(CKK_EC) | Some(crate::vendor::CKK_SM2) => sm2::load_key(attrs),
        _ => fail(CKR_KEY_TYPE_INCONSISTENT),
    }
}

/// Length of the raw public key on the curve a `CKA_EC_PARAMS` value names, if supported.
pub fn ec_public_key_len(ec_params: &[u8]) -> Option<usize> {
    #[cfg(feature = "aws-lc")]
    return ec::curve_of(ec_params).ok().map(ec::public_key_len);
    #[cfg(not(feature = "aws-lc"))]
    return (ec_params == crate::vendor::SM2_OID_DER).then_some(crate::crypto::sm2::POINT_LEN);
}

/// Key material made by a key-pair generation mechanism: the attributes that describe the
/// new keys (CKA_KEY_TYPE, CKA_MODULUS, CKA_PRIVATE_EXPONENT, CKA_EC_POINT, ...). The object
/// layer adds the template's attributes and the policy's defaults.
pub struct GeneratedKeyPair {
    pub public: Attributes,
    pub private: Attributes,
}

/// Encrypt or decrypt; also C_WrapKey (a single-part encryption of the key's bytes) and
/// C_UnwrapKey (a single-part decryption) for mechanisms whose info has CKF_WRAP /
/// CKF_UNWRAP. Single-part calls use `run`; mechanisms that allow multi-part
/// operation say so in `multi_part` and override `update`, `finish_len` and `finish`.
pub trait CipherOperation: Send {
    /// False for mechanisms the spec marks single-part only (every RSA cipher): the session
    /// layer then refuses C_EncryptUpdate/C_DecryptUpdate, length queries included, with
    /// `CKR_FUNCTION_NOT_SUPPORTED` instead of starting a multi-part operation.
    fn multi_part(&self) -> bool {
        false
    }
    /// An upper bound of `run`'s output for `input_len` bytes, for length queries.
    fn output_len(&self, input_len: usize) -> Result<usize>;
    /// The same for this very input, when the output length depends on its content (an SM2
    /// ciphertext's form and |C2|); defaults to `output_len(input.len())`.
    fn output_len_for(&self, input: &[u8]) -> Result<usize> {
        self.output_len(input.len())
    }
    fn run(&mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>>;
    /// `run` straight into the caller's buffer, for bulk ciphers whose output length is
    /// known before the work: no intermediate buffer to fill, copy and wipe. `None` when
    /// not offered or `out` is too small; the general path (`run`, output kept) then runs.
    fn run_into(&mut self, _input: &[u8], _out: &mut [u8]) -> Option<Result<usize>> {
        None
    }
    fn update(&mut self, _input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        fail(CKR_FUNCTION_NOT_SUPPORTED)
    }
    /// An upper bound of `finish`'s output.
    fn finish_len(&self) -> Result<usize> {
        fail(CKR_FUNCTION_NOT_SUPPORTED)
    }
    fn finish(&mut self) -> Result<Zeroizing<Vec<u8>>> {
        fail(CKR_FUNCTION_NOT_SUPPORTED)
    }
}

/// Sign: data comes through `update` (once for C_Sign), the signature from `finish`.
pub trait SignOperation: Send {
    fn signature_len(&self) -> usize;
    /// False for mechanisms the spec marks single-part only (raw RSA, CKM_RSA_PKCS, ...).
    fn multi_part(&self) -> bool;
    fn update(&mut self, data: &[u8]) -> Result<()>;
    fn finish(&mut self) -> Result<Vec<u8>>;
}

/// Verify: data through `update`, the signature checked by `finish`.
pub trait VerifyOperation: Send {
    fn multi_part(&self) -> bool;
    fn update(&mut self, data: &[u8]) -> Result<()>;
    fn finish(&mut self, signature: &[u8]) -> Result<()>;
}

pub trait DigestOperation: Send {
    fn digest_len(&self) -> usize;
    fn update(&mut self, data: &[u8]);
    fn finish(&mut self) -> Vec<u8>;
}

/// One PKCS#11 mechanism. Every constructor defaults to `CKR_MECHANISM_INVALID`, the code
/// the spec names for a mechanism used with a function it does not support.
pub trait Mechanism: Send + Sync {
    fn info(&self) -> MechanismInfo;

    fn encrypt(
        &self,
        _param: &MechanismParam,
        _key: &LoadedKey,
    ) -> Result<Box<dyn CipherOperation>> {
        fail(CKR_MECHANISM_INVALID)
    }
    fn decrypt(
        &self,
        _param: &MechanismParam,
        _key: &LoadedKey,
    ) -> Result<Box<dyn CipherOperation>> {
        fail(CKR_MECHANISM_INVALID)
    }
    fn sign(&self, _param: &MechanismParam, _key: &LoadedKey) -> Result<Box<dyn SignOperation>> {
        fail(CKR_MECHANISM_INVALID)
    }
    fn verify(
        &self,
        _param: &MechanismParam,
        _key: &LoadedKey,
    ) -> Result<Box<dyn VerifyOperation>> {
        fail(CKR_MECHANISM_INVALID)
    }
    fn digest(&self, _param: &MechanismParam) -> Result<Box<dyn DigestOperation>> {
        fail(CKR_MECHANISM_INVALID)
    }
    /// C_GenerateKey: the attributes of the new secret key (CKA_CLASS, CKA_KEY_TYPE,
    /// CKA_VALUE, CKA_VALUE_LEN), from the caller's `template` (CKA_VALUE_LEN).
    fn generate_key(&self, _param: &MechanismParam, _template: &Attributes) -> Result<Attributes> {
        fail(CKR_MECHANISM_INVALID)
    }
    /// C_DeriveKey: the bytes of the new key's value, made from `base` (already checked for
    /// CKA_DERIVE); the object layer builds the key from them and the caller's template.
    /// `value_len` is the length the template asks for (CKA_VALUE_LEN, or the key type's
    /// only length), for mechanisms whose output length is chosen (a KDF); the object
    /// layer takes the leading `value_len` bytes of longer values.
    fn derive(
        &self,
        _param: &MechanismParam,
        _base: &LoadedKey,
        _value_len: Option<usize>,
    ) -> Result<Zeroizing<Vec<u8>>> {
        fail(CKR_MECHANISM_INVALID)
    }
    /// The key type `generate_key_pair` / `generate_key` makes, so that templates can be
    /// checked before the (slow) generation runs.
    fn generated_key_type(&self) -> Option<CK_KEY_TYPE> {
        None
    }
    /// `public` and `private` are the caller's templates, for the attributes that steer
    /// generation (CKA_MODULUS_BITS, CKA_PUBLIC_EXPONENT, CKA_EC_PARAMS).
    fn generate_key_pair(
        &self,
        _param: &MechanismParam,
        _public: &Attributes,
        _private: &Attributes,
    ) -> Result<GeneratedKeyPair> {
        fail(CKR_MECHANISM_INVALID)
    }
}
