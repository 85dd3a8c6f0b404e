//! RSA behind a backend trait. The PKCS#11 side (mechanism/rsa*.rs) speaks only these
//! types; `backend()` picks the implementation chosen at build time.
//!
//! Error codes are part of the contract: every method returns the exact `CKR_*` the spec
//! names (`CKR_ENCRYPTED_DATA_INVALID`, `CKR_ENCRYPTED_DATA_LEN_RANGE`, `CKR_DATA_LEN_RANGE`,
//! `CKR_SIGNATURE_INVALID`, `CKR_SIGNATURE_LEN_RANGE`, `CKR_KEY_SIZE_RANGE`, ...).

use crate::crypto::hash::HashAlg;
use crate::error::{fail, Error, Result};
use cryptoki_sys::{CKR_ATTRIBUTE_VALUE_INVALID, CKR_DATA_LEN_RANGE, CKR_MECHANISM_PARAM_INVALID};
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
    /// RSAES-PKCS1-v1_5 whose decryption never fails on bad padding: it returns a message
    /// derived from the private key and the ciphertext instead (implicit rejection,
    /// draft-irtf-cfrg-rsa-guidance section 7), so neither the code nor the timing tells a
    /// valid padding from an invalid one. Encryption is plain PKCS#1 v1.5.
    Pkcs1v15ImplicitRejection,
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

#[cfg(feature = "aws-lc")]
pub mod awslc;
#[cfg(feature = "aws-lc")]
mod awslc_public;
mod keygen;
pub mod rustcrypto;
#[cfg(test)]
mod tests;

/// The backend chosen at build time: aws-lc-rs (with the `rsa` crate for what it lacks) when
/// the `aws-lc` feature is on, the pure-Rust `rsa` crate otherwise.
pub fn backend() -> &'static dyn RsaBackend {
    #[cfg(feature = "aws-lc")]
    {
        &awslc::AwsLcBackend
    }
    #[cfg(not(feature = "aws-lc"))]
    {
        &rustcrypto::RustCryptoBackend
    }
}

/// DER SubjectPublicKeyInfo (rsaEncryption) of a public key; components the backends would
/// not load are `CKR_ATTRIBUTE_VALUE_INVALID`.
pub fn public_key_spki_der(key: &RsaPublicComponents) -> Result<Vec<u8>> {
    rustcrypto::RustCryptoPublicKey::new(key)?
        .spki_der()
        .ok_or_else(|| Error::with(CKR_ATTRIBUTE_VALUE_INVALID, "RSA SPKI encoding failed"))
}

/// `bytes` without its leading zero octets (big-endian integers arrive padded sometimes).
pub fn trim_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// The DER `DigestInfo` header that precedes a digest of `hash` in EMSA-PKCS1-v1_5
/// (RFC 8017 section 9.2, note 1), or None for hashes RSA signatures do not name.
pub fn digest_info_prefix(hash: HashAlg) -> Option<&'static [u8]> {
    Some(match hash {
        HashAlg::Sha1 => &[
            0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04,
            0x14,
        ],
        HashAlg::Sha224 => &[
            0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x04, 0x05, 0x00, 0x04, 0x1c,
        ],
        HashAlg::Sha256 => &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ],
        HashAlg::Sha384 => &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x05, 0x00, 0x04, 0x30,
        ],
        HashAlg::Sha512 => &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ],
        HashAlg::Sm3 => return None,
    })
}

/// Splits a caller-built DigestInfo (CKM_RSA_PKCS signing) into the hash it names and the
/// digest, when it is exactly the canonical encoding for one of our hashes. Lets a backend
/// use its hash-specific signing path; anything else is signed as opaque bytes.
pub fn split_digest_info(input: &[u8]) -> Option<(HashAlg, &[u8])> {
    [
        HashAlg::Sha1,
        HashAlg::Sha224,
        HashAlg::Sha256,
        HashAlg::Sha384,
        HashAlg::Sha512,
    ]
    .into_iter()
    .find_map(|hash| {
        let prefix = digest_info_prefix(hash)?;
        let digest = input.strip_prefix(prefix)?;
        (digest.len() == hash.output_len()).then_some((hash, digest))
    })
}

/// The plaintext length each encryption scheme allows for a modulus of `k` octets
/// (RFC 8017 7.1.1, 7.2.1): PKCS#1 v1.5 at most k-11, OAEP at most k-2hLen-2, raw RSA at
/// most k. Anything longer is `CKR_DATA_LEN_RANGE`, whichever backend runs.
pub fn check_plaintext_len(scheme: &RsaEncryption, k: usize, len: usize) -> Result<()> {
    let max = match scheme {
        RsaEncryption::Pkcs1v15 | RsaEncryption::Pkcs1v15ImplicitRejection => {
            Some(k.saturating_sub(11))
        }
        RsaEncryption::Oaep { hash, .. } => k.checked_sub(2 * hash.output_len() + 2),
        RsaEncryption::Raw => Some(k),
    };
    match max {
        Some(max) if len <= max => Ok(()),
        _ => fail(CKR_DATA_LEN_RANGE),
    }
}

/// The input length each signature scheme allows for a modulus of `k` octets: exactly one
/// digest for the hash-based schemes, at most k-11 octets for opaque PKCS#1 v1.5 (RFC 8017
/// 9.2 step 3), at most k for raw RSA. Anything else is `CKR_DATA_LEN_RANGE`. Verification
/// checks the signature length (`CKR_SIGNATURE_LEN_RANGE`) before this.
pub fn check_sign_input(scheme: &RsaSignature, k: usize, len: usize) -> Result<()> {
    let fits = match scheme {
        RsaSignature::Pkcs1v15Digest(hash) | RsaSignature::Pss { hash, .. } => {
            len == hash.output_len()
        }
        RsaSignature::Pkcs1v15Raw => len <= k.saturating_sub(11),
        RsaSignature::Raw => len <= k,
    };
    if fits {
        Ok(())
    } else {
        fail(CKR_DATA_LEN_RANGE)
    }
}

/// EMSA-PSS needs emLen >= hLen + sLen + 2 with emLen = ceil((modBits - 1) / 8); a longer
/// salt is `CKR_MECHANISM_PARAM_INVALID`.
pub fn check_pss_salt(mod_bits: usize, hash: HashAlg, salt_len: usize) -> Result<()> {
    let em_len = mod_bits.saturating_sub(1).div_ceil(8);
    match hash
        .output_len()
        .checked_add(salt_len)
        .and_then(|n| n.checked_add(2))
    {
        Some(needed) if needed <= em_len => Ok(()),
        _ => Err(Error::with(
            CKR_MECHANISM_PARAM_INVALID,
            "PSS salt too long for the key",
        )),
    }
}

/// Smallest modulus any operation accepts (bits); imported keys below it are refused.
pub const MIN_MODULUS_BITS: usize = 1024;
/// Largest modulus any operation accepts (bits).
pub const MAX_MODULUS_BITS: usize = 8192;

/// The components of a DER `RSAPrivateKey` (RFC 8017 A.1.2), how both backends hand a new
/// key back: aws-lc-rs exports PKCS#8 around it, the rsa crate PKCS#1.
pub fn components_from_pkcs1_der(der: &[u8]) -> Result<RsaPrivateComponents> {
    use der::Decode;
    let key = pkcs1::RsaPrivateKeyRef::from_der(der).map_err(|_| {
        crate::error::Error::with(cryptoki_sys::CKR_FUNCTION_FAILED, "bad PKCS#1 key")
    })?;
    let secret = |v: pkcs1::UintRef<'_>| Some(Zeroizing::new(v.as_bytes().to_vec()));
    Ok(RsaPrivateComponents {
        public: RsaPublicComponents {
            modulus: key.modulus.as_bytes().to_vec(),
            public_exponent: key.public_exponent.as_bytes().to_vec(),
        },
        private_exponent: Zeroizing::new(key.private_exponent.as_bytes().to_vec()),
        prime_1: secret(key.prime1),
        prime_2: secret(key.prime2),
        exponent_1: secret(key.exponent1),
        exponent_2: secret(key.exponent2),
        coefficient: secret(key.coefficient),
    })
}
