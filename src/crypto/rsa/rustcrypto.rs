//! The pure-Rust RSA backend over the `rsa` crate. Used alone with `--no-default-features`,
//! and by the aws-lc backend for what aws-lc-rs cannot do (raw RSA, mixed OAEP hashes,
//! opaque PKCS#1 v1.5 signing, odd key sizes and exponents) and for all public-key work.

use super::{
    check_plaintext_len, check_pss_salt, check_sign_input, digest_info_prefix, trim_leading_zeros,
    RsaBackend, RsaEncryption, RsaPrivateComponents, RsaPrivateKey, RsaPublicComponents,
    RsaPublicKey, RsaSignature, MAX_MODULUS_BITS, MIN_MODULUS_BITS,
};
use crate::crypto::hash::HashAlg;
use crate::error::{fail, Error, Result};
use cryptoki_sys::*;
use rand::rngs::SysRng;
use rsa::hazmat::{rsa_decrypt_and_check, rsa_encrypt};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::{BoxedUint, Oaep, Pkcs1v15Encrypt, Pkcs1v15Sign, Pss};
use std::sync::Arc;
use subtle::{ConditionallySelectable, ConstantTimeEq, ConstantTimeLess};
use zeroize::Zeroizing;

/// Runs `$body` with `$D` bound to the digest type of a `HashAlg`; SM3 is no RSA hash.
macro_rules! with_hash {
    ($alg:expr, $D:ident, $body:expr) => {
        match $alg {
            HashAlg::Sha1 => {
                type $D = sha1::Sha1;
                $body
            }
            HashAlg::Sha224 => {
                type $D = sha2::Sha224;
                $body
            }
            HashAlg::Sha256 => {
                type $D = sha2::Sha256;
                $body
            }
            HashAlg::Sha384 => {
                type $D = sha2::Sha384;
                $body
            }
            HashAlg::Sha512 => {
                type $D = sha2::Sha512;
                $body
            }
            HashAlg::Sm3 => fail(CKR_MECHANISM_PARAM_INVALID),
        }
    };
}

pub struct RustCryptoBackend;

impl RsaBackend for RustCryptoBackend {
    fn generate(&self, bits: usize, public_exponent: &[u8]) -> Result<RsaPrivateComponents> {
        super::keygen::generate(bits, public_exponent)
    }

    fn load_private(&self, key: &RsaPrivateComponents) -> Result<Arc<dyn RsaPrivateKey>> {
        Ok(Arc::new(RustCryptoPrivateKey::new(key)?))
    }

    fn load_public(&self, key: &RsaPublicComponents) -> Result<Arc<dyn RsaPublicKey>> {
        Ok(Arc::new(RustCryptoPublicKey::new(key)?))
    }
}

/// Every component of a parsed key, CRT values included, through its PKCS#1 encoding.
pub(super) fn components_of(key: &rsa::PrivateKey) -> Result<RsaPrivateComponents> {
    let der = key
        .to_pkcs1_der()
        .map_err(|_| Error::with(CKR_FUNCTION_FAILED, "PKCS#1 encoding failed"))?;
    super::components_from_pkcs1_der(der.as_bytes())
}

/// A big-endian public integer; empty or zero is invalid.
pub(super) fn public_uint(bytes: &[u8]) -> Result<BoxedUint> {
    let bytes = trim_leading_zeros(bytes);
    if bytes.is_empty() {
        return fail(CKR_ATTRIBUTE_VALUE_INVALID);
    }
    Ok(BoxedUint::from_be_slice_vartime(bytes))
}

/// A big-endian secret integer, decoded at the width its encoding has.
fn secret_uint(bytes: &[u8]) -> Result<BoxedUint> {
    let bits =
        u32::try_from(bytes.len() * 8).map_err(|_| Error::new(CKR_ATTRIBUTE_VALUE_INVALID))?;
    if bits == 0 {
        return fail(CKR_ATTRIBUTE_VALUE_INVALID);
    }
    BoxedUint::from_be_slice(bytes, bits).map_err(|_| Error::new(CKR_ATTRIBUTE_VALUE_INVALID))
}

fn check_modulus_bits(bits: usize) -> Result<()> {
    if (MIN_MODULUS_BITS..=MAX_MODULUS_BITS).contains(&bits) {
        Ok(())
    } else {
        Err(Error::with(
            CKR_ATTRIBUTE_VALUE_INVALID,
            format!("RSA modulus of {bits} bits is out of range"),
        ))
    }
}

/// `x` as exactly `k` big-endian octets (x < n, so only zero octets are dropped).
fn to_k_octets(x: &BoxedUint, k: usize) -> Zeroizing<Vec<u8>> {
    let full = Zeroizing::new(x.to_be_bytes().into_vec());
    let mut out = Zeroizing::new(vec![0u8; k]);
    if full.len() >= k {
        out.copy_from_slice(&full[full.len() - k..]);
    } else {
        out[k - full.len()..].copy_from_slice(&full);
    }
    out
}

/// The integer of at most `k` octets `bytes`, at the modulus' precision; None when >= n.
fn representative(key: &impl PublicKeyParts, bytes: &[u8]) -> Option<BoxedUint> {
    let x = BoxedUint::from_be_slice(bytes, key.n_bits_precision()).ok()?;
    (x < *key.n().as_ref()).then_some(x)
}

/// EME-PKCS1-v1_5 decoding (RFC 8017 7.2.2 step 3) of `em` (k octets), scanning every octet
/// whatever the padding so its timing does not tell where it went wrong. PKCS#11 reports
/// bad padding as an error, so the outcome itself is visible; the rsa crate's implicit
/// rejection would return random bytes instead, which the spec's callers do not expect.
fn pkcs1_type2_unpad(em: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if em.len() < 11 {
        return fail(CKR_ENCRYPTED_DATA_INVALID);
    }
    let header_ok = em[0].ct_eq(&0) & em[1].ct_eq(&2);
    let mut found = subtle::Choice::from(0);
    let mut separator = 0u32;
    for (i, b) in em.iter().enumerate().skip(2) {
        let is_zero = b.ct_eq(&0);
        separator.conditional_assign(&(i as u32), is_zero & !found);
        found |= is_zero;
    }
    // At least eight octets of nonzero padding: the separator sits at index 10 or later.
    let valid = header_ok & found & !separator.ct_lt(&10);
    if bool::from(valid) {
        Ok(Zeroizing::new(em[separator as usize + 1..].to_vec()))
    } else {
        fail(CKR_ENCRYPTED_DATA_INVALID)
    }
}

/// The rsa crate's EMSA-PSS uses the message hash for MGF1 too: another MGF1 hash is
/// `CKR_MECHANISM_PARAM_INVALID`.
fn check_single_pss_hash(scheme: &RsaSignature) -> Result<()> {
    match scheme {
        RsaSignature::Pss { hash, mgf1, .. } if hash != mgf1 => fail(CKR_MECHANISM_PARAM_INVALID),
        _ => Ok(()),
    }
}

/// The PKCS#1 v1.5 signature padding for a digest of `hash`.
fn pkcs1v15_digest_padding(hash: HashAlg) -> Result<Pkcs1v15Sign> {
    let prefix = digest_info_prefix(hash).ok_or(Error::new(CKR_MECHANISM_PARAM_INVALID))?;
    Ok(Pkcs1v15Sign {
        hash_len: Some(hash.output_len()),
        prefix: prefix.into(),
    })
}

pub struct RustCryptoPrivateKey {
    key: rsa::PrivateKey,
    k: usize,
    mod_bits: usize,
}

impl RustCryptoPrivateKey {
    /// Parses and checks the key once; without primes they are recovered from n, e, d.
    pub fn new(c: &RsaPrivateComponents) -> Result<Self> {
        let n = public_uint(&c.public.modulus)?;
        let mod_bits = n.bit_width() as usize;
        check_modulus_bits(mod_bits)?;
        let e = public_uint(&c.public.public_exponent)?;
        let d = secret_uint(&c.private_exponent)?;
        let primes = match (&c.prime_1, &c.prime_2) {
            (Some(p), Some(q)) => vec![secret_uint(p)?, secret_uint(q)?],
            _ => Vec::new(),
        };
        let key = rsa::PrivateKey::from_components(n, e, d, primes)
            .map_err(|_| Error::with(CKR_ATTRIBUTE_VALUE_INVALID, "inconsistent RSA key"))?;
        Ok(RustCryptoPrivateKey {
            k: key.size(),
            key,
            mod_bits,
        })
    }

    #[cfg_attr(not(feature = "aws-lc"), allow(dead_code))]
    pub(super) fn key(&self) -> &rsa::PrivateKey {
        &self.key
    }

    /// m^d mod n with blinding and the CRT fault check, as k octets.
    fn raw_private(&self, m: &BoxedUint) -> Result<Zeroizing<Vec<u8>>> {
        // The integer is the plaintext (CKM_RSA_X_509) or the padded message: wiped on drop,
        // as its octets are.
        let out = Zeroizing::new(
            rsa_decrypt_and_check(&self.key, Some(&mut SysRng), m)
                .map_err(|_| Error::with(CKR_DEVICE_ERROR, "RSA private operation failed"))?,
        );
        Ok(to_k_octets(&out, self.k))
    }
}

impl RsaPrivateKey for RustCryptoPrivateKey {
    fn size(&self) -> usize {
        self.k
    }

    fn decrypt(&self, scheme: &RsaEncryption, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if ciphertext.len() != self.k {
            return fail(CKR_ENCRYPTED_DATA_LEN_RANGE);
        }
        let c =
            representative(&self.key, ciphertext).ok_or(Error::new(CKR_ENCRYPTED_DATA_INVALID))?;
        match scheme {
            RsaEncryption::Raw => self.raw_private(&c),
            RsaEncryption::Pkcs1v15 => pkcs1_type2_unpad(&self.raw_private(&c)?),
            // The rsa crate implements the draft's implicit rejection (KDK from d and the
            // ciphertext, HMAC-SHA256 PRF, constant-time selection); its errors are the
            // publicly invalid ciphertexts only, checked above.
            RsaEncryption::Pkcs1v15ImplicitRejection => self
                .key
                .decrypt(Pkcs1v15Encrypt, ciphertext)
                .map(Zeroizing::new)
                .map_err(|_| Error::new(CKR_ENCRYPTED_DATA_INVALID)),
            RsaEncryption::Oaep { hash, mgf1, label } => {
                let plain = with_hash!(hash, D, {
                    with_hash!(mgf1, M, {
                        let padding = Oaep::<D, M>::new_with_mgf_hash_and_label(label.as_slice());
                        self.key
                            .decrypt(padding, ciphertext)
                            .map_err(|_| Error::new(CKR_ENCRYPTED_DATA_INVALID))
                    })
                })?;
                Ok(Zeroizing::new(plain))
            }
        }
    }

    fn sign(&self, scheme: &RsaSignature, input: &[u8]) -> Result<Vec<u8>> {
        check_single_pss_hash(scheme)?;
        check_sign_input(scheme, self.k, input.len())?;
        let signed = match scheme {
            RsaSignature::Pkcs1v15Digest(hash) => {
                self.key.sign(pkcs1v15_digest_padding(*hash)?, input)
            }
            RsaSignature::Pkcs1v15Raw => self.key.sign(Pkcs1v15Sign::new_unprefixed(), input),
            RsaSignature::Pss { hash, salt_len, .. } => {
                check_pss_salt(self.mod_bits, *hash, *salt_len)?;
                with_hash!(hash, D, {
                    Ok(self.key.sign(Pss::<D>::new_with_salt(*salt_len), input))
                })?
            }
            RsaSignature::Raw => {
                let m = representative(&self.key, input).ok_or(Error::new(CKR_DATA_INVALID))?;
                return Ok(self.raw_private(&m)?.to_vec());
            }
        };
        signed.map_err(|err| match err {
            rsa::Error::MessageTooLong | rsa::Error::InvalidPadLen => {
                Error::with(CKR_KEY_SIZE_RANGE, "key too small for this signature")
            }
            _ => Error::with(CKR_DEVICE_ERROR, "RSA signing failed"),
        })
    }
}

pub struct RustCryptoPublicKey {
    key: rsa::PublicKey,
    k: usize,
}

impl RustCryptoPublicKey {
    pub fn new(c: &RsaPublicComponents) -> Result<Self> {
        let n = public_uint(&c.modulus)?;
        check_modulus_bits(n.bit_width() as usize)?;
        let e = public_uint(&c.public_exponent)?;
        let key = rsa::PublicKey::new(n, e)
            .map_err(|_| Error::with(CKR_ATTRIBUTE_VALUE_INVALID, "invalid RSA public key"))?;
        Ok(RustCryptoPublicKey { k: key.size(), key })
    }
}

impl RustCryptoPublicKey {
    /// The key as X.509 SubjectPublicKeyInfo DER: the export format, and how aws-lc-rs
    /// imports public keys.
    pub(super) fn spki_der(&self) -> Option<Vec<u8>> {
        use rsa::pkcs8::EncodePublicKey;
        self.key.to_public_key_der().ok().map(|doc| doc.into_vec())
    }
}

impl RsaPublicKey for RustCryptoPublicKey {
    fn size(&self) -> usize {
        self.k
    }

    fn encrypt(&self, scheme: &RsaEncryption, plaintext: &[u8]) -> Result<Vec<u8>> {
        check_plaintext_len(scheme, self.k, plaintext.len())?;
        let encrypted = match scheme {
            RsaEncryption::Pkcs1v15 | RsaEncryption::Pkcs1v15ImplicitRejection => {
                self.key.encrypt(&mut SysRng, Pkcs1v15Encrypt, plaintext)
            }
            RsaEncryption::Oaep { hash, mgf1, label } => with_hash!(hash, D, {
                with_hash!(mgf1, M, {
                    let padding = Oaep::<D, M>::new_with_mgf_hash_and_label(label.as_slice());
                    Ok(self.key.encrypt(&mut SysRng, padding, plaintext))
                })
            })?,
            RsaEncryption::Raw => {
                let m = representative(&self.key, plaintext).ok_or(Error::new(CKR_DATA_INVALID))?;
                let c = rsa_encrypt(&self.key, &m)
                    .map_err(|_| Error::with(CKR_DEVICE_ERROR, "RSA public operation failed"))?;
                return Ok(to_k_octets(&c, self.k).to_vec());
            }
        };
        encrypted.map_err(|err| match err {
            rsa::Error::MessageTooLong => Error::new(CKR_DATA_LEN_RANGE),
            rsa::Error::LabelTooLong => Error::new(CKR_MECHANISM_PARAM_INVALID),
            _ => Error::with(CKR_DEVICE_ERROR, "RSA encryption failed"),
        })
    }

    fn verify(&self, scheme: &RsaSignature, input: &[u8], signature: &[u8]) -> Result<()> {
        if signature.len() != self.k {
            return fail(CKR_SIGNATURE_LEN_RANGE);
        }
        check_single_pss_hash(scheme)?;
        check_sign_input(scheme, self.k, input.len())?;
        let verified = match scheme {
            RsaSignature::Pkcs1v15Digest(hash) => {
                self.key
                    .verify(pkcs1v15_digest_padding(*hash)?, input, signature)
            }
            RsaSignature::Pkcs1v15Raw => {
                self.key
                    .verify(Pkcs1v15Sign::new_unprefixed(), input, signature)
            }
            RsaSignature::Pss { hash, salt_len, .. } => {
                check_pss_salt(self.key.n().bit_width() as usize, *hash, *salt_len)?;
                with_hash!(hash, D, {
                    let mut padding = Pss::<D>::new_with_salt(*salt_len);
                    padding.blinded = false;
                    Ok(self.key.verify(padding, input, signature))
                })?
            }
            RsaSignature::Raw => {
                let s = representative(&self.key, signature)
                    .ok_or(Error::new(CKR_SIGNATURE_INVALID))?;
                let m = rsa_encrypt(&self.key, &s)
                    .map_err(|_| Error::with(CKR_DEVICE_ERROR, "RSA public operation failed"))?;
                let mut expected = vec![0u8; self.k];
                expected[self.k - input.len()..].copy_from_slice(input);
                return if bool::from(
                    to_k_octets(&m, self.k)
                        .as_slice()
                        .ct_eq(expected.as_slice()),
                ) {
                    Ok(())
                } else {
                    fail(CKR_SIGNATURE_INVALID)
                };
            }
        };
        verified.map_err(|_| Error::new(CKR_SIGNATURE_INVALID))
    }
}
