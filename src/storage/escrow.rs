//! A PIN record's escrow form (`PIN_ESCROW`, store format 5): the token key sealed to the
//! record's X25519 public key with HPKE (RFC 9180, base mode: DHKEM(X25519, HKDF-SHA256),
//! HKDF-SHA256, AES-256-GCM), whose private key is derived from the PIN key.
//!
//! Why: a token key rotation has to re-wrap every PIN record, and C_SetPIN and C_InitPIN
//! know one PIN only. With the record's public key at hand, the new token key is sealed to
//! a record whose PIN is not: only that PIN (its Argon2 key) opens it again, and a record
//! whose PIN changes gets a new key pair with its new salt. The record's tag (under the
//! token MAC key) covers the public key, so it cannot be swapped for someone else's, and a
//! rotation checks that tag before it seals anything to the key.
//!
//! Blob layout: one format byte (`BLOB_ESCROW`), the record's public key (32 bytes),
//! HPKE's encapsulated key (32), the sealed token key (32 + 16-byte tag).

use super::seal::{TokenKey, KEY_LEN};
use crate::error::{Error, Result};
use cryptoki_sys::CKR_DEVICE_ERROR;
use hpke::aead::AesGcm256;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use rand::rand_core::UnwrapErr;
use rand::rngs::SysRng;
use zeroize::Zeroizing;

type Kem = X25519HkdfSha256;
type PublicKey = <Kem as hpke::Kem>::PublicKey;
type EncappedKey = <Kem as hpke::Kem>::EncappedKey;

const BLOB_ESCROW: u8 = 2;
const PUBLIC_LEN: usize = 32;
const ENCAPPED_LEN: usize = 32;
const SEALED_LEN: usize = KEY_LEN + 16;
/// HPKE's `info`: binds every blob to this one use.
const INFO: &[u8] = b"ferrohsm token key escrow v1";

/// The token key sealed to the key pair that `pin_key` derives; `aad` names the record
/// (`seal::token_key_aad`).
pub fn wrap(pin_key: &[u8; KEY_LEN], token_key: &TokenKey, aad: &[u8]) -> Result<Vec<u8>> {
    let (_, public) = Kem::derive_keypair(pin_key);
    seal_to(&public, token_key, aad)
}

/// `blob`'s record re-wrapped around another token key, without its PIN: the same public
/// key, a fresh encapsulation. A blob that is not of the escrow form is a damaged record.
pub fn rewrap(blob: &[u8], token_key: &TokenKey, aad: &[u8]) -> Result<Vec<u8>> {
    let public = parse(blob)
        .and_then(|parts| PublicKey::from_bytes(parts.public).ok())
        .ok_or_else(|| {
            Error::with(
                CKR_DEVICE_ERROR,
                "a PIN record's escrow key is damaged; nothing was rotated",
            )
        })?;
    seal_to(&public, token_key, aad)
}

/// The token key, or `None` when `pin_key` does not open the blob (a wrong PIN), or the
/// record's public key is not the one the PIN derives. Both steps run whatever the PIN, so
/// a wrong one costs what a right one does.
pub fn unwrap(pin_key: &[u8; KEY_LEN], blob: &[u8], aad: &[u8]) -> Option<TokenKey> {
    let parts = parse(blob)?;
    let (private, public) = Kem::derive_keypair(pin_key);
    let encapped = EncappedKey::from_bytes(parts.encapped).ok()?;
    let plain = hpke::single_shot_open::<AesGcm256, HkdfSha256, Kem>(
        &OpModeR::Base,
        &private,
        &encapped,
        INFO,
        parts.sealed,
        aad,
    )
    .ok()
    .map(Zeroizing::new)?;
    if public.to_bytes().as_slice() != parts.public || plain.len() != KEY_LEN {
        return None;
    }
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    key.copy_from_slice(&plain);
    Some(key)
}

struct Parts<'a> {
    public: &'a [u8],
    encapped: &'a [u8],
    sealed: &'a [u8],
}

fn parse(blob: &[u8]) -> Option<Parts<'_>> {
    let (&format, rest) = blob.split_first()?;
    if format != BLOB_ESCROW || rest.len() != PUBLIC_LEN + ENCAPPED_LEN + SEALED_LEN {
        return None;
    }
    let (public, rest) = rest.split_at(PUBLIC_LEN);
    let (encapped, sealed) = rest.split_at(ENCAPPED_LEN);
    Some(Parts {
        public,
        encapped,
        sealed,
    })
}

fn seal_to(public: &PublicKey, token_key: &TokenKey, aad: &[u8]) -> Result<Vec<u8>> {
    // HPKE's ephemeral key comes straight from the OS: a seeded generator would leave the
    // state it was drawn from in memory, unwiped.
    let mut rng = UnwrapErr(SysRng);
    let (encapped, sealed) = hpke::single_shot_seal_with_rng::<AesGcm256, HkdfSha256, Kem>(
        &OpModeS::Base,
        public,
        INFO,
        token_key.as_slice(),
        aad,
        &mut rng,
    )
    .map_err(|e| Error::with(CKR_DEVICE_ERROR, format!("HPKE sealing failed: {e}")))?;
    let mut blob = Vec::with_capacity(1 + PUBLIC_LEN + ENCAPPED_LEN + SEALED_LEN);
    blob.push(BLOB_ESCROW);
    blob.extend_from_slice(&public.to_bytes());
    blob.extend_from_slice(&encapped.to_bytes());
    blob.extend_from_slice(&sealed);
    Ok(blob)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> TokenKey {
        Zeroizing::new([byte; KEY_LEN])
    }

    #[test]
    fn opens_with_its_pin_key_only() {
        let pin_key = [7u8; KEY_LEN];
        let blob = wrap(&pin_key, &key(1), b"aad").unwrap();
        assert!(parse(&blob).is_some());
        assert_eq!(*unwrap(&pin_key, &blob, b"aad").unwrap(), [1u8; KEY_LEN]);
        assert!(unwrap(&[8u8; KEY_LEN], &blob, b"aad").is_none());
        assert!(unwrap(&pin_key, &blob, b"other").is_none());
    }

    #[test]
    fn rewrap_needs_no_pin_and_keeps_the_record_key() {
        let pin_key = [7u8; KEY_LEN];
        let blob = wrap(&pin_key, &key(1), b"aad").unwrap();
        let rewrapped = rewrap(&blob, &key(2), b"aad").unwrap();
        assert_eq!(blob[..1 + PUBLIC_LEN], rewrapped[..1 + PUBLIC_LEN]);
        assert_eq!(
            *unwrap(&pin_key, &rewrapped, b"aad").unwrap(),
            [2u8; KEY_LEN]
        );
        assert!(rewrap(&blob[1..], &key(2), b"aad").is_err());
    }

    #[test]
    fn a_swapped_public_key_or_a_flipped_bit_does_not_open() {
        let pin_key = [7u8; KEY_LEN];
        let blob = wrap(&pin_key, &key(1), b"aad").unwrap();
        // Another record's public key with this record's sealed part.
        let other = wrap(&[9u8; KEY_LEN], &key(1), b"aad").unwrap();
        let mut swapped = blob.clone();
        swapped[1..1 + PUBLIC_LEN].copy_from_slice(&other[1..1 + PUBLIC_LEN]);
        assert!(unwrap(&pin_key, &swapped, b"aad").is_none());
        for i in 1 + PUBLIC_LEN..blob.len() {
            let mut flipped = blob.clone();
            flipped[i] ^= 1;
            assert!(unwrap(&pin_key, &flipped, b"aad").is_none(), "byte {i}");
        }
        assert!(unwrap(&pin_key, &blob[..blob.len() - 1], b"aad").is_none());
    }
}
