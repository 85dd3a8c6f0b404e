//! The default RSA backend: aws-lc-rs for the private-key operations it offers (PKCS#1 v1.5
//! and same-hash OAEP decryption with SHA-1/256/384/512, PKCS#1 v1.5 and PSS signing of
//! SHA-256/384/512 digests). Key generation is `keygen`'s; everything else goes to the `rsa`
//! crate (`rustcrypto`).
//!
//! The `rsa`-crate twin of a loaded key is parsed lazily, at most once per loaded key, and
//! only when an operation aws-lc cannot do needs it (raw RSA, mixed OAEP hashes, SHA-1/224
//! signatures, other PSS salts, opaque PKCS#1 v1.5 input). Two cases parse it at load
//! instead: a key without all CRT values (the `rsa` crate recovers them, and its parse is
//! kept) and a key aws-lc refuses (the twin then serves every operation). The twin lives as
//! long as the loaded key and is owned by it alone.

use super::rustcrypto::{self, RustCryptoPrivateKey};
use super::{
    check_sign_input, split_digest_info, RsaBackend, RsaEncryption, RsaPrivateComponents,
    RsaPrivateKey, RsaPublicComponents, RsaPublicKey, RsaSignature,
};
use crate::crypto::hash::HashAlg;
use crate::error::{fail, Error, Result};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{
    KeyPair, KeyPairComponents, OaepAlgorithm, OaepPrivateDecryptingKey, Pkcs1PrivateDecryptingKey,
    PrivateDecryptingKey, PublicKeyComponents,
};
use aws_lc_rs::signature::RsaEncoding;
use aws_lc_rs::{digest, signature};
use cryptoki_sys::*;
use std::sync::{Arc, OnceLock};
use zeroize::Zeroizing;

pub struct AwsLcBackend;

impl RsaBackend for AwsLcBackend {
    /// Key generation is `keygen`'s, faster than aws-lc's (see there); the key is loaded
    /// into aws-lc like any other afterwards, which checks it.
    fn generate(&self, bits: usize, public_exponent: &[u8]) -> Result<RsaPrivateComponents> {
        super::keygen::generate(bits, public_exponent)
    }

    fn load_private(&self, key: &RsaPrivateComponents) -> Result<Arc<dyn RsaPrivateKey>> {
        Ok(Arc::new(AwsLcPrivateKey::new(key)?))
    }

    fn load_public(&self, key: &RsaPublicComponents) -> Result<Arc<dyn RsaPublicKey>> {
        Ok(Arc::new(super::awslc_public::AwsLcPublicKey::new(key)?))
    }
}

/// The aws-lc-rs forms of one key, all made at load time from one parse.
struct FastKey {
    signer: KeyPair,
    pkcs1: Pkcs1PrivateDecryptingKey,
    oaep: OaepPrivateDecryptingKey,
}

impl FastKey {
    fn new(c: &RsaPrivateComponents) -> Option<FastKey> {
        let components = KeyPairComponents {
            public_key: PublicKeyComponents {
                n: super::trim_leading_zeros(&c.public.modulus),
                e: super::trim_leading_zeros(&c.public.public_exponent),
            },
            d: c.private_exponent.as_slice(),
            p: c.prime_1.as_deref()?.as_slice(),
            q: c.prime_2.as_deref()?.as_slice(),
            dP: c.exponent_1.as_deref()?.as_slice(),
            dQ: c.exponent_2.as_deref()?.as_slice(),
            qInv: c.coefficient.as_deref()?.as_slice(),
        };
        let signer = KeyPair::from_components(&components).ok()?;
        let pkcs8 = signer.as_der().ok()?;
        let decrypting = PrivateDecryptingKey::from_pkcs8(pkcs8.as_ref()).ok()?;
        Some(FastKey {
            pkcs1: Pkcs1PrivateDecryptingKey::new(decrypting.clone()).ok()?,
            oaep: OaepPrivateDecryptingKey::new(decrypting).ok()?,
            signer,
        })
    }
}

pub struct AwsLcPrivateKey {
    k: usize,
    fast: Option<FastKey>,
    /// Complete components (CRT values included), kept to build the fallback lazily.
    components: RsaPrivateComponents,
    fallback: OnceLock<Result<RustCryptoPrivateKey>>,
}

impl AwsLcPrivateKey {
    fn new(c: &RsaPrivateComponents) -> Result<Self> {
        let complete = c.prime_1.is_some()
            && c.prime_2.is_some()
            && c.exponent_1.is_some()
            && c.exponent_2.is_some()
            && c.coefficient.is_some();
        let fallback = OnceLock::new();
        let components = if complete {
            c.clone()
        } else {
            // Imported without (all) CRT values: the rsa crate recovers the primes, and its
            // parse is kept since it already happened.
            let parsed = RustCryptoPrivateKey::new(c)?;
            let full = rustcrypto::components_of(parsed.key())?;
            let _ = fallback.set(Ok(parsed));
            full
        };
        let fast = FastKey::new(&components);
        if fast.is_none() {
            // Sizes or exponents aws-lc refuses (or an inconsistent key): the rsa crate
            // decides, and serves every operation.
            if fallback.get().is_none() {
                let _ = fallback.set(Ok(RustCryptoPrivateKey::new(&components)?));
            }
        }
        let k = super::trim_leading_zeros(&components.public.modulus).len();
        Ok(AwsLcPrivateKey {
            k,
            fast,
            components,
            fallback,
        })
    }

    fn fallback(&self) -> Result<&RustCryptoPrivateKey> {
        self.fallback
            .get_or_init(|| {
                RustCryptoPrivateKey::new(&self.components)
                    // aws-lc took the key, the rsa crate did not: outside what it supports.
                    .map_err(|_| Error::with(CKR_KEY_SIZE_RANGE, "key unsupported by fallback"))
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

pub(super) fn oaep_algorithm(hash: HashAlg, mgf1: HashAlg) -> Option<&'static OaepAlgorithm> {
    use aws_lc_rs::rsa::{
        OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OAEP_SHA384_MGF1SHA384, OAEP_SHA512_MGF1SHA512,
    };
    if hash != mgf1 {
        return None;
    }
    match hash {
        HashAlg::Sha1 => Some(&OAEP_SHA1_MGF1SHA1),
        HashAlg::Sha256 => Some(&OAEP_SHA256_MGF1SHA256),
        HashAlg::Sha384 => Some(&OAEP_SHA384_MGF1SHA384),
        HashAlg::Sha512 => Some(&OAEP_SHA512_MGF1SHA512),
        _ => None,
    }
}

pub(super) fn digest_algorithm(hash: HashAlg) -> Option<&'static digest::Algorithm> {
    match hash {
        HashAlg::Sha256 => Some(&digest::SHA256),
        HashAlg::Sha384 => Some(&digest::SHA384),
        HashAlg::Sha512 => Some(&digest::SHA512),
        _ => None,
    }
}

fn pkcs1_encoding(hash: HashAlg) -> Option<&'static dyn RsaEncoding> {
    match hash {
        HashAlg::Sha256 => Some(&signature::RSA_PKCS1_SHA256),
        HashAlg::Sha384 => Some(&signature::RSA_PKCS1_SHA384),
        HashAlg::Sha512 => Some(&signature::RSA_PKCS1_SHA512),
        _ => None,
    }
}

/// PSS with MGF1 over the same hash and a salt as long as the digest (aws-lc's default).
fn pss_encoding(hash: HashAlg) -> Option<&'static dyn RsaEncoding> {
    match hash {
        HashAlg::Sha256 => Some(&signature::RSA_PSS_SHA256),
        HashAlg::Sha384 => Some(&signature::RSA_PSS_SHA384),
        HashAlg::Sha512 => Some(&signature::RSA_PSS_SHA512),
        _ => None,
    }
}

impl FastKey {
    fn sign_digest(
        &self,
        encoding: &'static dyn RsaEncoding,
        hash: HashAlg,
        digest: &[u8],
        k: usize,
    ) -> Result<Vec<u8>> {
        let alg = digest_algorithm(hash).ok_or(Error::new(CKR_MECHANISM_PARAM_INVALID))?;
        let digest = digest::Digest::import_less_safe(digest, alg)
            .map_err(|_| Error::new(CKR_DATA_LEN_RANGE))?;
        let mut out = vec![0u8; k];
        self.signer
            .sign_digest(encoding, &digest, &mut out)
            .map_err(|_| Error::with(CKR_DEVICE_ERROR, "aws-lc signing failed"))?;
        Ok(out)
    }
}

impl RsaPrivateKey for AwsLcPrivateKey {
    fn size(&self) -> usize {
        self.k
    }

    fn decrypt(&self, scheme: &RsaEncryption, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let Some(fast) = &self.fast else {
            return self.fallback()?.decrypt(scheme, ciphertext);
        };
        if ciphertext.len() != self.k {
            return fail(CKR_ENCRYPTED_DATA_LEN_RANGE);
        }
        let mut out = Zeroizing::new(vec![0u8; self.k]);
        // aws-lc reports every failure alike; with the length checked, what remains is a
        // representative >= n or bad padding: both CKR_ENCRYPTED_DATA_INVALID.
        let len = match scheme {
            RsaEncryption::Pkcs1v15 => fast
                .pkcs1
                .decrypt(ciphertext, &mut out)
                .map_err(|_| Error::new(CKR_ENCRYPTED_DATA_INVALID))?
                .len(),
            RsaEncryption::Oaep { hash, mgf1, label } => match oaep_algorithm(*hash, *mgf1) {
                Some(alg) => {
                    let label = (!label.is_empty()).then_some(label.as_slice());
                    fast.oaep
                        .decrypt(alg, ciphertext, &mut out, label)
                        .map_err(|_| Error::new(CKR_ENCRYPTED_DATA_INVALID))?
                        .len()
                }
                None => return self.fallback()?.decrypt(scheme, ciphertext),
            },
            // aws-lc has no implicit rejection: the rsa crate's does it.
            RsaEncryption::Raw | RsaEncryption::Pkcs1v15ImplicitRejection => {
                return self.fallback()?.decrypt(scheme, ciphertext)
            }
        };
        out.truncate(len);
        Ok(out)
    }

    fn sign(&self, scheme: &RsaSignature, input: &[u8]) -> Result<Vec<u8>> {
        let Some(fast) = &self.fast else {
            return self.fallback()?.sign(scheme, input);
        };
        match scheme {
            RsaSignature::Pkcs1v15Digest(hash) => {
                check_sign_input(scheme, self.k, input.len())?;
                if let Some(encoding) = pkcs1_encoding(*hash) {
                    return fast.sign_digest(encoding, *hash, input, self.k);
                }
            }
            RsaSignature::Pkcs1v15Raw => {
                // A canonical DigestInfo signs the same as the hash-specific scheme.
                if let Some((hash, digest)) = split_digest_info(input) {
                    if let Some(encoding) = pkcs1_encoding(hash) {
                        return fast.sign_digest(encoding, hash, digest, self.k);
                    }
                }
            }
            RsaSignature::Pss {
                hash,
                mgf1,
                salt_len,
            } => {
                if hash == mgf1 && *salt_len == hash.output_len() && input.len() == *salt_len {
                    if let Some(encoding) = pss_encoding(*hash) {
                        return fast.sign_digest(encoding, *hash, input, self.k);
                    }
                }
            }
            RsaSignature::Raw => {}
        }
        self.fallback()?.sign(scheme, input)
    }
}
