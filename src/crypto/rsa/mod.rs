//! RSA behind a backend trait. The PKCS#11 side (mechanism/rsa*.rs) speaks only these
//! types; `backend()` picks the implementation chosen at build time.
//!
//! Error codes are part of the contract: every method returns the exact `CKR_*` the spec
//! names (`CKR_ENCRYPTED_DATA_INVALID`, `CKR_ENCRYPTED_DATA_LEN_RANGE`, `CKR_DATA_LEN_RANGE`,
//! `CKR_SIGNATURE_INVALID`, `CKR_SIGNATURE_LEN_RANGE`, `CKR_KEY_SIZE_RANGE`, ...).

use crate::crypto::hash::HashAlg;
use crate::error::Result;
use std::sync::Arc;
use zeroize::Zeroizing;

/// Public components, big-endian unsigned bytes without leading zeros.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RsaPublicComponents {
    pub modulus: Vec<u8>,
    pub public_exponent: Vec<u8>,
}

/// Private components as PKCS#11 stores them (CKA_MODULUS ... CKA_COEFFICIENT),
/// big-endian unsigned bytes. The CRT values are optional on import.
#[derive(Clone)]
pub struct RsaPrivateComponents {
    pub public: RsaPublicComponents,
    pub private_exponent: Zeroizing<Vec<u8>>,
    pub prime_1: Option<Zeroizing<Vec<u8>>>,
    pub prime_2: Option<Zeroizing<Vec<u8>>>,
    pub exponent_1: Option<Zeroizing<Vec<u8>>>,
    pub exponent_2: Option<Zeroizing<Vec<u8>>>,
    pub coefficient: Option<Zeroizing<Vec<u8>>>,
}

/// Encryption schemes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RsaEncryption {
    /// RSAES-PKCS1-v1_5 (CKM_RSA_PKCS).
    Pkcs1v15,
    /// RSAES-OAEP with any hash and MGF1 hash and an optional label (CKM_RSA_PKCS_OAEP).
    Oaep {
        hash: HashAlg,
        mgf1: HashAlg,
        label: Vec<u8>,
    },
    /// Raw RSA, no padding (CKM_RSA_X_509). Decrypt output is the full modulus length.
    Raw,
}

/// Signature schemes. Inputs are always what the PKCS#11 caller hands the raw mechanism;
/// hash-and-sign mechanisms hash first and pass the digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RsaSignature {
    /// EMSA-PKCS1-v1_5 over a DigestInfo built from `hash` and the digest given as input.
    Pkcs1v15Digest(HashAlg),
    /// EMSA-PKCS1-v1_5 block type 1 over arbitrary input of at most k-11 bytes
    /// (CKM_RSA_PKCS: the caller supplies the DigestInfo itself).
    Pkcs1v15Raw,
    /// EMSA-PSS over a digest of `hash` given as input.
    Pss {
        hash: HashAlg,
        mgf1: HashAlg,
        salt_len: usize,
    },
    /// Raw RSA (CKM_RSA_X_509): input left-padded with zeros to k bytes, must be < n.
    Raw,
}

pub trait RsaPrivateKey: Send + Sync {
    /// Modulus length in bytes (k).
    fn size(&self) -> usize;
    fn decrypt(&self, scheme: &RsaEncryption, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>>;
    fn sign(&self, scheme: &RsaSignature, input: &[u8]) -> Result<Vec<u8>>;
}

pub trait RsaPublicKey: Send + Sync {
    fn size(&self) -> usize;
    fn encrypt(&self, scheme: &RsaEncryption, plaintext: &[u8]) -> Result<Vec<u8>>;
    fn verify(&self, scheme: &RsaSignature, input: &[u8], signature: &[u8]) -> Result<()>;
}

pub trait RsaBackend: Send + Sync {
    /// A new key pair of `bits` bits with the given public exponent, all CRT values set.
    fn generate(&self, bits: usize, public_exponent: &[u8]) -> Result<RsaPrivateComponents>;
    /// Parses and checks a private key once; the result is shared by all operations.
    fn load_private(&self, key: &RsaPrivateComponents) -> Result<Arc<dyn RsaPrivateKey>>;
    fn load_public(&self, key: &RsaPublicComponents) -> Result<Arc<dyn RsaPublicKey>>;
}
