//! SM2 public-key encryption (GB/T 32918.4) and the ciphertext forms found in the field:
//! DER (GM/T 0009, OpenSSL 3), raw C1||C3||C2 (GB/T 32918-2016) and raw C1||C2||C3 (the
//! 2010 draft order), the raw forms with or without the 0x04 prefix of C1.
//!
//! Encryption is the crate's (`EncryptingKey::encrypt_cipher`, explicit `Mode`), re-encoded
//! here. Decryption is done here with the crate's point and scalar types because the crate's
//! own decrypt compares C3 in variable time and does not reject an all-zero KDF output.
//! Every decryption failure is the same `CKR_ENCRYPTED_DATA_INVALID`.

use super::{coordinates, parse_affine, Sm2PrivateKey, Sm2PublicKey, FIELD_LEN};
use crate::error::{fail, Error, Result};
use cryptoki_sys::*;
use der::{Decode, Encode};
use sm2::elliptic_curve::rand_core::TryCryptoRng;
use sm2::elliptic_curve::subtle::ConstantTimeEq;
use sm2::pke::{Cipher, EncryptingKey, Mode};
use sm2::{AffinePoint, ProjectivePoint};
use sm3::{Digest, Sm3};
use zeroize::Zeroizing;

/// Length of C3 (an SM3 digest).
const HASH_LEN: usize = 32;
/// Length of C1 without its prefix byte.
const C1_LEN: usize = 2 * FIELD_LEN;

/// Order of the parts after C1 in a raw ciphertext.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawOrder {
    /// C1||C3||C2 (GB/T 32918.4-2016).
    C1C3C2,
    /// C1||C2||C3 (legacy).
    C1C2C3,
}

/// A ciphertext encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CiphertextForm {
    /// `SEQUENCE { x INTEGER, y INTEGER, hash OCTET STRING (32), ciphertext OCTET STRING }`.
    Der,
    /// Raw concatenation; `prefix` is the 0x04 byte in front of x1||y1.
    Raw { order: RawOrder, prefix: bool },
}

impl CiphertextForm {
    /// Bytes a raw ciphertext adds to the plaintext; `None` for DER (variable).
    fn raw_overhead(self) -> Option<usize> {
        match self {
            CiphertextForm::Der => None,
            CiphertextForm::Raw { prefix, .. } => Some(usize::from(prefix) + C1_LEN + HASH_LEN),
        }
    }
}

/// The largest ciphertext `encrypt` can write for `msg_len` plaintext bytes (DER output is
/// shorter when x1 or y1 has leading zero bytes or no high bit set).
pub fn ciphertext_len_bound(msg_len: usize, form: CiphertextForm) -> usize {
    match form.raw_overhead() {
        Some(overhead) => msg_len.saturating_add(overhead),
        None => {
            // Two INTEGERs of at most 33 content bytes, a 32-byte OCTET STRING, then C2.
            let body = 2 * (2 + FIELD_LEN + 1) + (2 + HASH_LEN) + der_tlv_len(msg_len);
            der_tlv_len(body)
        }
    }
}

/// |C2| of a `ciphertext_len`-byte ciphertext from its length alone (`form` `None` =
/// auto-detection): exact for the raw forms; for DER and auto-detection the length less
/// the smallest raw overhead (C1 without prefix and C3, 96 bytes), an upper bound unless x1
/// and y1 of a DER ciphertext together lose more than 10 leading zero bytes (probability
/// < 2^-80 for honest input). `plaintext_len` reads the bytes for the exact value.
pub fn plaintext_len_bound(ciphertext_len: usize, form: Option<CiphertextForm>) -> usize {
    let overhead = form
        .and_then(CiphertextForm::raw_overhead)
        .unwrap_or(C1_LEN + HASH_LEN);
    ciphertext_len.saturating_sub(overhead)
}

/// Length of a DER TLV with a `content`-byte value.
fn der_tlv_len(content: usize) -> usize {
    let length_octets = match content {
        0..=0x7f => 1,
        0x80..=0xff => 2,
        0x100..=0xffff => 3,
        0x1_0000..=0xff_ffff => 4,
        _ => 5,
    };
    content.saturating_add(1 + length_octets)
}

/// |C2| of a ciphertext: exact when the form is known or detected, `CKR_ENCRYPTED_DATA_INVALID`
/// when the input is no SM2 ciphertext at all. `form` `None` = auto-detection.
pub fn plaintext_len(ciphertext: &[u8], form: Option<CiphertextForm>) -> Result<usize> {
    Ok(parse(ciphertext, form)?.c2.len())
}

/// A ciphertext split into its parts, C1 checked to be on the curve.
struct Parts<'a> {
    c1: AffinePoint,
    c3: [u8; HASH_LEN],
    c2: &'a [u8],
}

fn invalid() -> Error {
    Error::with(CKR_ENCRYPTED_DATA_INVALID, "not a valid SM2 ciphertext")
}

/// Splits `ciphertext` per `form`, or by auto-detection (sm2.md, in this order, never by
/// trial decryption): strict DER; 0x04 + a valid point, raw C1C3C2; a valid point in the
/// first 64 bytes, raw C1C3C2 without prefix.
fn parse(ciphertext: &[u8], form: Option<CiphertextForm>) -> Result<Parts<'_>> {
    match form {
        Some(CiphertextForm::Der) => parse_der(ciphertext),
        Some(CiphertextForm::Raw { order, prefix }) => parse_raw(ciphertext, order, prefix),
        None => {
            if ciphertext.first() == Some(&0x30) {
                if let Ok(parts) = parse_der(ciphertext) {
                    return Ok(parts);
                }
            }
            if ciphertext.first() == Some(&0x04) && ciphertext.len() > C1_LEN + HASH_LEN {
                if let Ok(parts) = parse_raw(ciphertext, RawOrder::C1C3C2, true) {
                    return Ok(parts);
                }
            }
            parse_raw(ciphertext, RawOrder::C1C3C2, false)
        }
    }
}

fn parse_der(ciphertext: &[u8]) -> Result<Parts<'_>> {
    // The crate's decoder is strict DER (minimal INTEGERs, a 32-byte hash, no trailing
    // bytes) and checks that (x, y) is on the curve.
    let cipher = Cipher::<sm2::Sm2, Sm3>::from_der(ciphertext).map_err(|_| invalid())?;
    let mut c3 = [0u8; HASH_LEN];
    c3.copy_from_slice(cipher.c3());
    let c1 = *cipher.c1();
    // `from_der` borrows C2 from the input: re-slice it from there for the lifetime.
    let c2_len = cipher.c2().len();
    let c2 = ciphertext
        .len()
        .checked_sub(c2_len)
        .and_then(|start| ciphertext.get(start..))
        .filter(|tail| *tail == cipher.c2())
        .ok_or_else(invalid)?;
    Ok(Parts { c1, c3, c2 })
}

fn parse_raw(ciphertext: &[u8], order: RawOrder, prefix: bool) -> Result<Parts<'_>> {
    let body = if prefix {
        match ciphertext.split_first() {
            Some((0x04, rest)) => rest,
            _ => return Err(invalid()),
        }
    } else {
        ciphertext
    };
    if body.len() < C1_LEN + HASH_LEN {
        return Err(invalid());
    }
    let (c1, rest) = body.split_at(C1_LEN);
    let c1 = parse_affine(c1).ok_or_else(invalid)?;
    let (c3, c2) = match order {
        RawOrder::C1C3C2 => rest.split_at(HASH_LEN),
        RawOrder::C1C2C3 => {
            let (c2, c3) = rest.split_at(rest.len() - HASH_LEN);
            (c3, c2)
        }
    };
    let mut c3_arr = [0u8; HASH_LEN];
    c3_arr.copy_from_slice(c3);
    Ok(Parts { c1, c3: c3_arr, c2 })
}

impl Sm2PublicKey {
    /// Encrypts `msg` (at least one byte, else `CKR_DATA_LEN_RANGE`) and writes `form`.
    pub fn encrypt(&self, msg: &[u8], form: CiphertextForm) -> Result<Vec<u8>> {
        self.encrypt_with_rng(
            &mut sm2::elliptic_curve::common::getrandom::SysRng,
            msg,
            form,
        )
    }

    pub(crate) fn encrypt_with_rng<R: TryCryptoRng>(
        &self,
        rng: &mut R,
        msg: &[u8],
        form: CiphertextForm,
    ) -> Result<Vec<u8>> {
        if msg.is_empty() {
            return Err(Error::with(
                CKR_DATA_LEN_RANGE,
                "SM2 cannot encrypt an empty message",
            ));
        }
        // The mode only steers the crate's raw encoding; set it explicitly anyway.
        let mode = match form {
            CiphertextForm::Raw {
                order: RawOrder::C1C2C3,
                ..
            } => Mode::C1C2C3,
            _ => Mode::C1C3C2,
        };
        let key = EncryptingKey::new_with_mode(*self.public(), mode);
        let cipher = key
            .encrypt_cipher::<R, Sm3>(rng, msg)
            .map_err(|_| Error::with(CKR_DEVICE_ERROR, "SM2 encryption failed"))?;
        let encoded = match form {
            CiphertextForm::Der => cipher.to_der().ok(),
            CiphertextForm::Raw { prefix, .. } => cipher.to_vec(mode, false).ok().map(|mut v| {
                if !prefix {
                    v.remove(0);
                }
                v
            }),
        };
        encoded.ok_or_else(|| Error::with(CKR_DEVICE_ERROR, "SM2 ciphertext encoding failed"))
    }
}

impl Sm2PrivateKey {
    /// Decrypts `ciphertext` given in `form`, or auto-detected when `form` is `None`.
    pub fn decrypt(
        &self,
        ciphertext: &[u8],
        form: Option<CiphertextForm>,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let parts = parse(ciphertext, form)?;
        self.decrypt_parts(&parts)
    }

    /// GB/T 32918.4 steps B3-B7 with the crate's arithmetic.
    fn decrypt_parts(&self, parts: &Parts<'_>) -> Result<Zeroizing<Vec<u8>>> {
        // B1-B2: C1 is on the curve (checked when parsed); h = 1, so [h]C1 is C1 and cannot
        // be the identity.
        // B3: (x2, y2) = [d]C1.
        // The product is the shared secret: both of its forms are wiped on drop.
        let d = self.signing().as_nonzero_scalar().as_ref();
        let product = Zeroizing::new(ProjectivePoint::from(parts.c1) * d);
        let shared = Zeroizing::new(product.to_affine());
        let xy = coordinates(&shared).ok_or_else(invalid)?;
        let (x2, y2) = xy.split_at(FIELD_LEN);

        // B4-B5: t = KDF(x2||y2, klen), M' = C2 xor t.
        let mut plaintext = Zeroizing::new(vec![0u8; parts.c2.len()]);
        let t_nonzero = kdf_xor(x2, y2, parts.c2, &mut plaintext)?;

        // B6: u = SM3(x2||M'||y2), compared with C3 in constant time.
        let mut hasher = Sm3::new();
        hasher.update(x2);
        hasher.update(plaintext.as_slice());
        hasher.update(y2);
        let u = hasher.finalize();
        let good = u.as_slice().ct_eq(&parts.c3) & t_nonzero;
        if bool::from(good) {
            Ok(plaintext)
        } else {
            fail(CKR_ENCRYPTED_DATA_INVALID)
        }
    }
}

/// The GB/T 32918.4 KDF over SM3 XOR-ed into `out`: out = input xor KDF(x2||y2, |input|).
/// Returns whether the key stream had a non-zero byte (an all-zero or empty t is an error
/// per step B4), computed without branching on the key stream.
fn kdf_xor(
    x2: &[u8],
    y2: &[u8],
    input: &[u8],
    out: &mut [u8],
) -> Result<sm2::elliptic_curve::subtle::Choice> {
    let mut any_bits = 0u8;
    for (index, (src, dst)) in input
        .chunks(HASH_LEN)
        .zip(out.chunks_mut(HASH_LEN))
        .enumerate()
    {
        let counter = u32::try_from(index + 1).map_err(|_| invalid())?;
        let mut hasher = Sm3::new();
        hasher.update(x2);
        hasher.update(y2);
        hasher.update(counter.to_be_bytes());
        let mut block = Zeroizing::new([0u8; HASH_LEN]);
        block.copy_from_slice(&hasher.finalize());
        for ((s, d), k) in src.iter().zip(dst.iter_mut()).zip(block.iter()) {
            *d = s ^ k;
            any_bits |= k;
        }
    }
    Ok(!any_bits.ct_eq(&0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_bound_covers_the_largest_encoding() {
        // 0x30 len | 02 21 00 x | 02 21 00 y | 04 20 c3 | 04 len c2
        assert_eq!(
            ciphertext_len_bound(19, CiphertextForm::Der),
            2 + 35 + 35 + 34 + 21
        );
        assert_eq!(
            ciphertext_len_bound(200, CiphertextForm::Der),
            4 + 35 + 35 + 34 + 203
        );
        let raw = |prefix| CiphertextForm::Raw {
            order: RawOrder::C1C3C2,
            prefix,
        };
        assert_eq!(ciphertext_len_bound(19, raw(true)), 19 + 97);
        assert_eq!(ciphertext_len_bound(19, raw(false)), 19 + 96);
    }

    #[test]
    fn plaintext_bound_inverts_the_raw_forms_and_bounds_der() {
        for order in [RawOrder::C1C3C2, RawOrder::C1C2C3] {
            for prefix in [true, false] {
                let form = CiphertextForm::Raw { order, prefix };
                let len = ciphertext_len_bound(19, form);
                assert_eq!(plaintext_len_bound(len, Some(form)), 19);
            }
        }
        // The largest DER encoding of 19 bytes is 127 long: 127 - 96 >= 19.
        let der = ciphertext_len_bound(19, CiphertextForm::Der);
        assert_eq!(
            plaintext_len_bound(der, Some(CiphertextForm::Der)),
            der - 96
        );
        assert_eq!(plaintext_len_bound(der, None), der - 96);
        assert_eq!(plaintext_len_bound(50, None), 0);
    }
}
