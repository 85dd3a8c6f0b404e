//! Public-key side of the aws-lc backend: PKCS#1 v1.5 and same-hash OAEP encryption, and
//! PKCS#1 v1.5 / PSS (salt = digest length) verification of SHA-256/384/512 digests run in
//! aws-lc-rs, about five times faster than the rsa crate. Raw RSA, other hashes and salts,
//! and keys aws-lc refuses go to the rsa crate, parsed once at load like the fast forms.

use super::awslc::{digest_algorithm, oaep_algorithm};
use super::rustcrypto::RustCryptoPublicKey;
use super::{
    check_plaintext_len, check_sign_input, trim_leading_zeros, RsaEncryption, RsaPublicComponents,
    RsaPublicKey, RsaSignature,
};
use crate::crypto::hash::HashAlg;
use crate::error::{fail, Error, Result};
use aws_lc_rs::digest;
use aws_lc_rs::rsa::{OaepPublicEncryptingKey, Pkcs1PublicEncryptingKey, PublicEncryptingKey};
use aws_lc_rs::signature::{self, ParsedPublicKey, RsaParameters};
use cryptoki_sys::*;
use std::sync::OnceLock;

/// Verification parameter sets aws-lc-rs offers for our digests, in `verifier_index` order.
const VERIFIERS: [&RsaParameters; 6] = [
    &signature::RSA_PKCS1_2048_8192_SHA256,
    &signature::RSA_PKCS1_2048_8192_SHA384,
    &signature::RSA_PKCS1_2048_8192_SHA512,
    &signature::RSA_PSS_2048_8192_SHA256,
    &signature::RSA_PSS_2048_8192_SHA384,
    &signature::RSA_PSS_2048_8192_SHA512,
];

fn verifier_index(scheme: &RsaSignature) -> Option<(usize, HashAlg)> {
    let by_hash = |hash: HashAlg| match hash {
        HashAlg::Sha256 => Some(0),
        HashAlg::Sha384 => Some(1),
        HashAlg::Sha512 => Some(2),
        _ => None,
    };
    match scheme {
        RsaSignature::Pkcs1v15Digest(hash) => Some((by_hash(*hash)?, *hash)),
        RsaSignature::Pss {
            hash,
            mgf1,
            salt_len,
        } if hash == mgf1 && *salt_len == hash.output_len() => Some((3 + by_hash(*hash)?, *hash)),
        _ => None,
    }
}

struct FastPublic {
    pkcs1: Pkcs1PublicEncryptingKey,
    oaep: OaepPublicEncryptingKey,
    /// SubjectPublicKeyInfo DER, parsed into a verifier per parameter set on first use.
    spki: Vec<u8>,
    verifiers: [OnceLock<Option<ParsedPublicKey>>; 6],
}

pub struct AwsLcPublicKey {
    fallback: RustCryptoPublicKey,
    fast: Option<FastPublic>,
}

impl AwsLcPublicKey {
    pub fn new(c: &RsaPublicComponents) -> Result<Self> {
        // The rsa crate checks the components and serves what aws-lc does not.
        let fallback = RustCryptoPublicKey::new(c)?;
        let bits = trim_leading_zeros(&c.modulus).len() * 8;
        let fast = if bits >= 2048 {
            fallback.spki_der().and_then(|spki| {
                let key = PublicEncryptingKey::from_der(&spki).ok()?;
                Some(FastPublic {
                    pkcs1: Pkcs1PublicEncryptingKey::new(key.clone()).ok()?,
                    oaep: OaepPublicEncryptingKey::new(key).ok()?,
                    spki,
                    verifiers: Default::default(),
                })
            })
        } else {
            None
        };
        Ok(AwsLcPublicKey { fallback, fast })
    }
}

impl FastPublic {
    fn verifier(&self, index: usize) -> Option<&ParsedPublicKey> {
        self.verifiers[index]
            .get_or_init(|| ParsedPublicKey::new(VERIFIERS[index], &self.spki).ok())
            .as_ref()
    }
}

impl RsaPublicKey for AwsLcPublicKey {
    fn size(&self) -> usize {
        self.fallback.size()
    }

    fn encrypt(&self, scheme: &RsaEncryption, plaintext: &[u8]) -> Result<Vec<u8>> {
        let Some(fast) = &self.fast else {
            return self.fallback.encrypt(scheme, plaintext);
        };
        let k = self.size();
        check_plaintext_len(scheme, k, plaintext.len())?;
        let mut out = vec![0u8; k];
        let written = match scheme {
            RsaEncryption::Pkcs1v15 | RsaEncryption::Pkcs1v15ImplicitRejection => {
                fast.pkcs1.encrypt(plaintext, &mut out).map(|c| c.len())
            }
            RsaEncryption::Oaep { hash, mgf1, label } => {
                let Some(alg) = oaep_algorithm(*hash, *mgf1) else {
                    return self.fallback.encrypt(scheme, plaintext);
                };
                let label = (!label.is_empty()).then_some(label.as_slice());
                fast.oaep
                    .encrypt(alg, plaintext, &mut out, label)
                    .map(|c| c.len())
            }
            RsaEncryption::Raw => return self.fallback.encrypt(scheme, plaintext),
        };
        let written =
            written.map_err(|_| Error::with(CKR_DEVICE_ERROR, "aws-lc encryption failed"))?;
        out.truncate(written);
        Ok(out)
    }

    fn verify(&self, scheme: &RsaSignature, input: &[u8], signature: &[u8]) -> Result<()> {
        let fast = self.fast.as_ref();
        let Some(((index, hash), fast)) = verifier_index(scheme).zip(fast) else {
            return self.fallback.verify(scheme, input, signature);
        };
        if signature.len() != self.size() {
            return fail(CKR_SIGNATURE_LEN_RANGE);
        }
        check_sign_input(scheme, self.size(), input.len())?;
        let (Some(verifier), Some(alg)) = (fast.verifier(index), digest_algorithm(hash)) else {
            return self.fallback.verify(scheme, input, signature);
        };
        let digest = digest::Digest::import_less_safe(input, alg)
            .map_err(|_| Error::new(CKR_DATA_LEN_RANGE))?;
        verifier
            .verify_digest_sig(&digest, signature)
            .map_err(|_| Error::new(CKR_SIGNATURE_INVALID))
    }
}
