//! SM2 signatures (GB/T 32918.2) with any binary signer ID.
//!
//! The crate's signing key takes the ID as `&str` and hashes it into Z itself; PKCS#11
//! callers hand arbitrary bytes. So Z and e = SM3(Z||M) are computed here and the crate signs
//! and verifies the prehash e (`RandomizedPrehashSigner`, `PrehashVerifier`).

use super::{Sm2PrivateKey, Sm2PublicKey, FIELD_LEN, POINT_LEN};
use crate::error::{Error, Result};
use cryptoki_sys::*;
use sm2::dsa::signature::hazmat::{PrehashVerifier, RandomizedPrehashSigner};
use sm2::dsa::Signature;
use sm3::{Digest, Sm3};

/// Raw signature length: r||s.
pub const SIGNATURE_LEN: usize = 2 * FIELD_LEN;
/// Longest DER signature: SEQUENCE of two 33-byte INTEGERs.
pub const SIGNATURE_DER_MAX_LEN: usize = 2 + 2 * (2 + FIELD_LEN + 1);

// Curve parameters of the SM2 recommended curve (GB/T 32918.5) that enter Z.
const CURVE_A: [u8; 32] = [
    0xff, 0xff, 0xff, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfc,
];
const CURVE_B: [u8; 32] = [
    0x28, 0xe9, 0xfa, 0x9e, 0x9d, 0x9f, 0x5e, 0x34, 0x4d, 0x5a, 0x9e, 0x4b, 0xcf, 0x65, 0x09, 0xa7,
    0xf3, 0x97, 0x89, 0xf5, 0x15, 0xab, 0x8f, 0x92, 0xdd, 0xbc, 0xbd, 0x41, 0x4d, 0x94, 0x0e, 0x93,
];
pub(super) const GENERATOR_X: [u8; 32] = [
    0x32, 0xc4, 0xae, 0x2c, 0x1f, 0x19, 0x81, 0x19, 0x5f, 0x99, 0x04, 0x46, 0x6a, 0x39, 0xc9, 0x94,
    0x8f, 0xe3, 0x0b, 0xbf, 0xf2, 0x66, 0x0b, 0xe1, 0x71, 0x5a, 0x45, 0x89, 0x33, 0x4c, 0x74, 0xc7,
];
pub(super) const GENERATOR_Y: [u8; 32] = [
    0xbc, 0x37, 0x36, 0xa2, 0xf4, 0xf6, 0x77, 0x9c, 0x59, 0xbd, 0xce, 0xe3, 0x6b, 0x69, 0x21, 0x53,
    0xd0, 0xa9, 0x87, 0x7c, 0xc6, 0x2a, 0x47, 0x40, 0x02, 0xdf, 0x32, 0xe5, 0x21, 0x39, 0xf0, 0xa0,
];

/// Z = SM3(ENTL||ID||a||b||xG||yG||xA||yA); `point` is 04||xA||yA.
pub(super) fn compute_z(signer_id: &[u8], point: &[u8; POINT_LEN]) -> Result<[u8; 32]> {
    let entl = signer_id
        .len()
        .checked_mul(8)
        .and_then(|bits| u16::try_from(bits).ok())
        .ok_or_else(|| {
            Error::with(
                CKR_MECHANISM_PARAM_INVALID,
                "SM2 signer ID longer than 8191 bytes",
            )
        })?;
    let mut hasher = Sm3::new();
    hasher.update(entl.to_be_bytes());
    hasher.update(signer_id);
    hasher.update(CURVE_A);
    hasher.update(CURVE_B);
    hasher.update(GENERATOR_X);
    hasher.update(GENERATOR_Y);
    hasher.update(&point[1..]);
    Ok(hasher.finalize().into())
}

impl Sm2PrivateKey {
    /// Signs the 32-byte digest e, returns r||s. k comes from RFC 6979 (d, e) hedged with 32
    /// random bytes (the crate's randomized prehash signer). The hedge comes from the
    /// thread's userspace CSPRNG, not a syscall per signature: k stays secret and unique
    /// even if that generator repeated (after a fork), because RFC 6979 alone already is.
    pub fn sign_prehash(&self, e: &[u8]) -> Result<[u8; SIGNATURE_LEN]> {
        if e.len() != FIELD_LEN {
            return Err(Error::with(
                CKR_DATA_LEN_RANGE,
                "SM2 digest must be 32 bytes",
            ));
        }
        // The crate returns an error (instead of retrying) when r = 0 or r + k = n, which
        // happens with probability ~2^-256; fresh randomness makes a retry a new k.
        for _ in 0..4 {
            let signed: std::result::Result<Signature, _> =
                self.signing().sign_prehash_with_rng(&mut rand::rng(), e);
            if let Ok(signature) = signed {
                let mut out = [0u8; SIGNATURE_LEN];
                out.copy_from_slice(&signature.to_bytes());
                return Ok(out);
            }
        }
        Err(Error::with(
            CKR_DEVICE_ERROR,
            "SM2 signing failed repeatedly",
        ))
    }
}

impl Sm2PublicKey {
    /// Verifies r||s over the 32-byte digest e: `CKR_SIGNATURE_LEN_RANGE` for a signature
    /// that is not 64 bytes, `CKR_SIGNATURE_INVALID` for any other failure (r or s out of
    /// [1, n-1] included).
    pub fn verify_prehash(&self, e: &[u8], signature: &[u8]) -> Result<()> {
        if e.len() != FIELD_LEN {
            return Err(Error::with(
                CKR_DATA_LEN_RANGE,
                "SM2 digest must be 32 bytes",
            ));
        }
        if signature.len() != SIGNATURE_LEN {
            return Err(Error::new(CKR_SIGNATURE_LEN_RANGE));
        }
        let signature =
            Signature::from_slice(signature).map_err(|_| Error::new(CKR_SIGNATURE_INVALID))?;
        self.verifying()
            .verify_prehash(e, &signature)
            .map_err(|_| Error::new(CKR_SIGNATURE_INVALID))
    }
}

/// r||s to DER `SEQUENCE { r INTEGER, s INTEGER }`.
pub fn signature_to_der(raw: &[u8; SIGNATURE_LEN]) -> Result<Vec<u8>> {
    let signature = Signature::from_slice(raw)
        .map_err(|_| Error::with(CKR_DEVICE_ERROR, "SM2 signature out of range"))?;
    Ok(signature.to_der().to_vec())
}

/// Strict DER `SEQUENCE { r INTEGER, s INTEGER }` to r||s: `CKR_SIGNATURE_LEN_RANGE` when
/// longer than any SM2 DER signature, `CKR_SIGNATURE_INVALID` when malformed or r, s out of
/// [1, n-1].
pub fn signature_from_der(der: &[u8]) -> Result<[u8; SIGNATURE_LEN]> {
    if der.len() > SIGNATURE_DER_MAX_LEN {
        return Err(Error::new(CKR_SIGNATURE_LEN_RANGE));
    }
    let signature = Signature::from_der(der).map_err(|_| Error::new(CKR_SIGNATURE_INVALID))?;
    let mut out = [0u8; SIGNATURE_LEN];
    out.copy_from_slice(&signature.to_bytes());
    Ok(out)
}
