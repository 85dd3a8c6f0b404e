//! ECDSA and ECDH keys on a NIST curve.

use super::{key_invalid, Curve};
use crate::error::{fail, Error, Result};
use aws_lc_rs::encoding::{AsBigEndian, EcPrivateKeyBin};
use aws_lc_rs::signature::EcdsaKeyPair;
use aws_lc_rs::{agreement, signature};
use cryptoki_sys::*;
use std::sync::Arc;
use zeroize::Zeroizing;

/// A public key: the validated point, ready to verify.
pub struct EcPublicKey {
    curve: Curve,
    point: Vec<u8>,
    verifier: signature::ParsedPublicKey,
}

impl EcPublicKey {
    /// Parses an uncompressed point 04||X||Y and checks that it lies on `curve`.
    pub fn from_point(curve: Curve, point: &[u8]) -> Result<Self> {
        if point.len() != curve.point_len() || point[0] != 0x04 {
            return Err(key_invalid(
                "CKA_EC_POINT is not an uncompressed point of the curve",
            ));
        }
        let verifier = signature::UnparsedPublicKey::new(curve.verification(), point)
            .parse()
            .map_err(|_| key_invalid("CKA_EC_POINT is not a point of the curve"))?;
        Ok(EcPublicKey {
            curve,
            point: point.to_vec(),
            verifier,
        })
    }

    pub fn curve(&self) -> Curve {
        self.curve
    }

    /// The uncompressed point 04||X||Y.
    pub fn point(&self) -> &[u8] {
        &self.point
    }

    /// Checks a raw `r||s` signature of the caller's hash `h` (any length, see
    /// `Curve::digest_for_signing`).
    pub fn verify_hash(&self, h: &[u8], signature: &[u8]) -> Result<()> {
        if signature.len() != self.curve.signature_len() {
            return fail(CKR_SIGNATURE_LEN_RANGE);
        }
        let digest = self.curve.digest_for_signing(h)?;
        self.verifier
            .verify_digest_sig(&digest, signature)
            .map_err(|_| Error::new(CKR_SIGNATURE_INVALID))
    }
}

/// A private key: its ECDSA signer, its ECDH half and its public key, parsed once.
pub struct EcPrivateKey {
    signer: EcdsaKeyPair,
    agreement: agreement::PrivateKey,
    public: Arc<EcPublicKey>,
}

fn not_a_scalar() -> Error {
    key_invalid("CKA_VALUE is not a private scalar of the curve")
}

impl EcPrivateKey {
    /// A new random key.
    pub fn generate(curve: Curve) -> Result<Self> {
        let signer = EcdsaKeyPair::generate(curve.signing())
            .map_err(|_| Error::with(CKR_GENERAL_ERROR, "EC key generation failed"))?;
        Self::from_scalar(curve, &scalar_of(&signer)?)
    }

    /// The key of a big-endian scalar (`CKA_VALUE`; shorter values are left-padded, as some
    /// importers strip leading zeros). A scalar outside [1, n-1] is refused.
    pub fn from_scalar(curve: Curve, value: &[u8]) -> Result<Self> {
        let len = curve.field_len();
        let significant = value.iter().position(|&b| b != 0).unwrap_or(value.len());
        let value = &value[significant..];
        if value.is_empty() || value.len() > len {
            return Err(not_a_scalar());
        }
        let mut scalar = Zeroizing::new(vec![0u8; len]);
        scalar[len - value.len()..].copy_from_slice(value);
        let agreement = agreement::PrivateKey::from_private_key(curve.agreement(), &scalar)
            .map_err(|_| not_a_scalar())?;
        let point = agreement
            .compute_public_key()
            .map_err(|_| not_a_scalar())?
            .as_ref()
            .to_vec();
        let signer =
            EcdsaKeyPair::from_private_key_and_public_key(curve.signing(), &scalar, &point)
                .map_err(|_| not_a_scalar())?;
        Ok(EcPrivateKey {
            signer,
            agreement,
            public: Arc::new(EcPublicKey::from_point(curve, &point)?),
        })
    }

    pub fn curve(&self) -> Curve {
        self.public.curve
    }

    pub fn public_key(&self) -> &Arc<EcPublicKey> {
        &self.public
    }

    /// The scalar, big-endian, `field_len` bytes (`CKA_VALUE`).
    pub fn scalar(&self) -> Result<Zeroizing<Vec<u8>>> {
        scalar_of(&self.signer)
    }

    /// PKCS#8 PrivateKeyInfo: id-ecPublicKey with the named curve and an RFC 5915
    /// ECPrivateKey holding the public key too, as OpenSSL writes it.
    pub fn to_pkcs8(&self) -> Result<Zeroizing<Vec<u8>>> {
        let document = self
            .signer
            .to_pkcs8v1()
            .map_err(|_| Error::with(CKR_GENERAL_ERROR, "PKCS#8 encoding failed"))?;
        Ok(Zeroizing::new(document.as_ref().to_vec()))
    }

    /// The key of a PKCS#8 PrivateKeyInfo on `curve`; `None` when it is no valid key there.
    pub fn from_pkcs8(curve: Curve, der: &[u8]) -> Option<Self> {
        let signer = EcdsaKeyPair::from_pkcs8(curve.signing(), der).ok()?;
        Self::from_scalar(curve, &scalar_of(&signer).ok()?).ok()
    }

    /// A raw `r||s` signature of the caller's hash `h` (any length).
    pub fn sign_hash(&self, h: &[u8]) -> Result<Vec<u8>> {
        let digest = self.curve().digest_for_signing(h)?;
        let signature = self
            .signer
            .sign_digest(&digest)
            .map_err(|_| Error::with(CKR_GENERAL_ERROR, "ECDSA signing failed"))?;
        Ok(signature.as_ref().to_vec())
    }

    /// The ECDH shared secret Z (the x-coordinate, `field_len` bytes) with a peer's
    /// uncompressed point. A point that is not on the curve is
    /// `CKR_MECHANISM_PARAM_INVALID`: it arrives as the mechanism's `pPublicData`.
    pub fn agree(&self, peer_point: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let curve = self.curve();
        if peer_point.len() != curve.point_len() || peer_point[0] != 0x04 {
            return Err(Error::with(
                CKR_MECHANISM_PARAM_INVALID,
                "the public data is not an uncompressed point of the key's curve",
            ));
        }
        let peer = agreement::UnparsedPublicKey::new(curve.agreement(), peer_point);
        agreement::agree(
            &self.agreement,
            peer,
            Error::with(
                CKR_MECHANISM_PARAM_INVALID,
                "the public data is not on the curve",
            ),
            |z| Ok(Zeroizing::new(z.to_vec())),
        )
    }
}

fn scalar_of(signer: &EcdsaKeyPair) -> Result<Zeroizing<Vec<u8>>> {
    let bin: EcPrivateKeyBin = signer
        .private_key()
        .as_be_bytes()
        .map_err(|_| Error::new(CKR_GENERAL_ERROR))?;
    Ok(Zeroizing::new(bin.as_ref().to_vec()))
}
