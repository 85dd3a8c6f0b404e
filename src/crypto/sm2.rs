//! SM2 (GB/T 32918) over the RustCrypto `sm2` crate: key pairs, public-key encryption in every
//! common ciphertext form, signatures with any binary signer ID, SubjectPublicKeyInfo export.
//!
//! Keys are parsed once (`Sm2PrivateKey::from_value`, `Sm2PublicKey::from_point`) and shared
//! by every operation through an `Arc`; nothing here knows about PKCS#11 objects. All curve
//! arithmetic is the crate's: points, scalars, scalar multiplication, the signing equation.

mod cipher;
mod signature;
mod spki;

pub use cipher::{
    ciphertext_len_bound, plaintext_len, plaintext_len_bound, CiphertextForm, RawOrder,
};
pub use signature::{signature_from_der, signature_to_der, SIGNATURE_DER_MAX_LEN, SIGNATURE_LEN};
pub use spki::public_key_spki_der;

use crate::error::{fail, Error, Result};
use cryptoki_sys::*;
use once_cell::sync::Lazy;
use sm2::dsa::{SigningKey, VerifyingKey};
use sm2::elliptic_curve::common::getrandom::SysRng;
use sm2::elliptic_curve::sec1::{Coordinates, FromSec1Point, ToSec1Point};
use sm2::elliptic_curve::Generate;
use sm2::{AffinePoint, FieldBytes, NonZeroScalar, PublicKey, Scalar, Sec1Point};
use std::sync::Arc;
use zeroize::Zeroizing;

/// Length of the uncompressed point `04||X||Y`.
pub const POINT_LEN: usize = 65;
/// Length of a coordinate or of the private scalar.
pub const FIELD_LEN: usize = 32;

/// An SM2 public key with everything the operations need precomputed: the uncompressed
/// point and Z for the default signer ID.
pub struct Sm2PublicKey {
    public: PublicKey,
    verifying: VerifyingKey,
    point: [u8; POINT_LEN],
    default_z: [u8; 32],
}

impl std::fmt::Debug for Sm2PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sm2PublicKey({})", hex::encode(self.point))
    }
}

impl Sm2PublicKey {
    /// Parses an uncompressed point `04||X||Y` (65 bytes) and checks it is on the curve and
    /// not the identity. Anything else is `CKR_ATTRIBUTE_VALUE_INVALID`.
    pub fn from_point(point: &[u8]) -> Result<Self> {
        if point.len() != POINT_LEN || point[0] != 0x04 {
            return Err(Error::with(
                CKR_ATTRIBUTE_VALUE_INVALID,
                "SM2 public point is not 04||X||Y",
            ));
        }
        let affine = parse_affine(&point[1..]).ok_or_else(|| {
            Error::with(
                CKR_ATTRIBUTE_VALUE_INVALID,
                "SM2 public point not on the curve",
            )
        })?;
        let public = PublicKey::from_affine(affine).map_err(|_| {
            Error::with(
                CKR_ATTRIBUTE_VALUE_INVALID,
                "SM2 public point is the identity",
            )
        })?;
        Self::from_public(public)
    }

    fn from_public(public: PublicKey) -> Result<Self> {
        let verifying = VerifyingKey::new("", public)
            .map_err(|_| Error::with(CKR_ATTRIBUTE_VALUE_INVALID, "SM2 public key rejected"))?;
        let mut point = [0u8; POINT_LEN];
        let encoded = public.as_affine().to_sec1_point(false);
        if encoded.as_bytes().len() != POINT_LEN {
            return fail(CKR_ATTRIBUTE_VALUE_INVALID);
        }
        point.copy_from_slice(encoded.as_bytes());
        let default_z = signature::compute_z(&crate::vendor::SM2_DEFAULT_SIGNER_ID, &point)?;
        Ok(Sm2PublicKey {
            public,
            verifying,
            point,
            default_z,
        })
    }

    /// The uncompressed point `04||X||Y`.
    pub fn point(&self) -> &[u8; POINT_LEN] {
        &self.point
    }

    /// Z = SM3(ENTL||ID||a||b||xG||yG||xA||yA) for a binary signer ID (at most 8191 bytes:
    /// ENTL is 16 bits; longer IDs are `CKR_MECHANISM_PARAM_INVALID`).
    pub fn z(&self, signer_id: &[u8]) -> Result<[u8; 32]> {
        if signer_id == crate::vendor::SM2_DEFAULT_SIGNER_ID {
            return Ok(self.default_z);
        }
        signature::compute_z(signer_id, &self.point)
    }

    pub(crate) fn public(&self) -> &PublicKey {
        &self.public
    }

    pub(crate) fn verifying(&self) -> &VerifyingKey {
        &self.verifying
    }
}

/// An SM2 private key d in [1, n-2] together with its public key.
pub struct Sm2PrivateKey {
    signing: WipedOnDrop,
    public: Arc<Sm2PublicKey>,
}

impl std::fmt::Debug for Sm2PrivateKey {
    // Never the scalar.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sm2PrivateKey(public {:?})", self.public)
    }
}

impl Sm2PrivateKey {
    /// A new key pair from the OS random source, d uniform in [1, n-2].
    pub fn generate() -> Result<Self> {
        loop {
            let d = NonZeroScalar::try_generate_from_rng(&mut SysRng)
                .map_err(|_| Error::with(CKR_DEVICE_ERROR, "OS random source failed"))?;
            // d = n-1 has no signing inverse (1+d = 0); draw again.
            if bool::from((*d.as_ref() + Scalar::ONE).is_zero()) {
                continue;
            }
            return Self::from_scalar(d);
        }
    }

    /// Parses `CKA_VALUE`: the big-endian scalar d, 1 to 32 bytes (leading zeros may be
    /// stripped), in [1, n-2]. Anything else is `CKR_ATTRIBUTE_VALUE_INVALID`.
    pub fn from_value(value: &[u8]) -> Result<Self> {
        let invalid = || {
            Error::with(
                CKR_ATTRIBUTE_VALUE_INVALID,
                "SM2 private value out of range",
            )
        };
        if value.is_empty() || value.len() > FIELD_LEN {
            return Err(invalid());
        }
        let mut padded = Zeroizing::new([0u8; FIELD_LEN]);
        padded[FIELD_LEN - value.len()..].copy_from_slice(value);
        let d = NonZeroScalar::try_from(&padded[..]).map_err(|_| invalid())?;
        if bool::from((*d.as_ref() + Scalar::ONE).is_zero()) {
            return Err(invalid());
        }
        Self::from_scalar(d)
    }

    fn from_scalar(d: NonZeroScalar) -> Result<Self> {
        let d = Zeroizing::new(d);
        let signing = SigningKey::from_nonzero_scalar("", *d)
            .map_err(|_| Error::with(CKR_ATTRIBUTE_VALUE_INVALID, "SM2 private key rejected"))?;
        let public = Arc::new(Sm2PublicKey::from_public(PublicKey::from(
            signing.verifying_key(),
        ))?);
        Ok(Sm2PrivateKey {
            signing: WipedOnDrop(signing),
            public,
        })
    }

    /// `CKA_VALUE`: d as 32 big-endian bytes.
    pub fn value(&self) -> Zeroizing<Vec<u8>> {
        let mut bytes = self.signing.0.to_bytes();
        let value = Zeroizing::new(bytes.to_vec());
        zeroize::Zeroize::zeroize(bytes.as_mut_slice());
        value
    }

    pub fn public_key(&self) -> &Arc<Sm2PublicKey> {
        &self.public
    }

    pub(crate) fn signing(&self) -> &SigningKey {
        &self.signing.0
    }
}

/// The crate's `SigningKey` has no zeroize-on-drop; overwrite it in place with a fixed dummy
/// key when dropped so the scalar does not linger in freed memory.
struct WipedOnDrop(SigningKey);

static DUMMY_SIGNING_KEY: Lazy<Option<SigningKey>> = Lazy::new(|| {
    SigningKey::from_nonzero_scalar("", NonZeroScalar::from_uint(1u64.into()).into_option()?).ok()
});

impl Drop for WipedOnDrop {
    fn drop(&mut self) {
        if let Some(dummy) = DUMMY_SIGNING_KEY.as_ref() {
            self.0 = dummy.clone();
            // Keeps the store above from being optimised away as dead.
            std::hint::black_box(&self.0);
        }
    }
}

/// Parses `X||Y` (64 bytes) into a curve point; `None` when not on the curve.
fn parse_affine(xy: &[u8]) -> Option<AffinePoint> {
    if xy.len() != 2 * FIELD_LEN {
        return None;
    }
    let (x, y) = xy.split_at(FIELD_LEN);
    let x = FieldBytes::try_from(x).ok()?;
    let y = FieldBytes::try_from(y).ok()?;
    let encoded = Sec1Point::from_affine_coordinates(&x, &y, false);
    AffinePoint::from_sec1_point(&encoded).into_option()
}

/// The affine coordinates of a point as two 32-byte arrays (zeroized on drop: callers use
/// this for the shared secret of decryption).
fn coordinates(point: &AffinePoint) -> Option<Zeroizing<[u8; 2 * FIELD_LEN]>> {
    let encoded = Zeroizing::new(point.to_sec1_point(false));
    match encoded.coordinates() {
        Coordinates::Uncompressed { x, y } => {
            let mut out = Zeroizing::new([0u8; 2 * FIELD_LEN]);
            out[..FIELD_LEN].copy_from_slice(x);
            out[FIELD_LEN..].copy_from_slice(y);
            Some(out)
        }
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests;
