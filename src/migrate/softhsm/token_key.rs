//! SoftHSMv2's sealing: a random 256-bit token key, stored wrapped under each PIN, and the
//! byte strings of private objects encrypted under that token key.
//!
//! - PIN blob (`token.object`, one per PIN): salt (8) || IV (16) || AES-256-CBC(pin_key,
//!   "RJR" || token key), PKCS#7 padded. `pin_key` is OpenPGP's iterated and salted S2K
//!   (RFC 4880 §3.7.1.3) as SoftHSM does it: SHA-256 over salt || PIN, then SHA-256 of
//!   the previous digest, 1500 + salt[7] digests in all.
//! - Attribute value: IV (16) || AES-256-CBC(token key, value), PKCS#7 padded; an empty
//!   value is stored empty.
//!
//! Read-only: nothing here can write a SoftHSM file.

use crate::error::{Error, Result};
use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyIvInit};
use cryptoki_sys::*;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

type Aes256CbcDecryptor = cbc::Decryptor<aes::Aes256>;

const SALT_LEN: usize = 8;
const IV_LEN: usize = 16;
const KEY_LEN: usize = 32;
const ITERATION_BASE: usize = 1500;
/// What SoftHSM puts before the token key, to tell a wrong PIN from a right one.
const MAGIC: &[u8; 3] = b"RJR";

/// A SoftHSM token key, opened with its user PIN.
pub struct SoftTokenKey(Zeroizing<[u8; KEY_LEN]>);

fn pin_key(pin: &[u8], salt: &[u8; SALT_LEN]) -> Zeroizing<[u8; KEY_LEN]> {
    let iterations = ITERATION_BASE + usize::from(salt[SALT_LEN - 1]);
    let mut digest = Zeroizing::new([0u8; KEY_LEN]);
    let mut hash = Sha256::new();
    hash.update(salt);
    hash.update(pin);
    digest.copy_from_slice(&hash.finalize());
    for _ in 1..iterations {
        let next = Sha256::digest(digest.as_slice());
        digest.copy_from_slice(&next);
    }
    digest
}

/// AES-256-CBC decryption with PKCS#7 padding; `None` when the padding is wrong.
fn cbc_decrypt(key: &[u8; KEY_LEN], iv: &[u8], ciphertext: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let decryptor = Aes256CbcDecryptor::new_from_slices(key, iv).ok()?;
    let mut buffer = Zeroizing::new(ciphertext.to_vec());
    let plain_len = decryptor
        .decrypt_padded_mut::<Pkcs7>(buffer.as_mut_slice())
        .ok()?
        .len();
    buffer.truncate(plain_len);
    Some(buffer)
}

impl SoftTokenKey {
    /// Opens a PIN blob with `pin`. A wrong PIN is CKR_PIN_INCORRECT (SoftHSM's own retry
    /// counter is not touched: its files are only read); a malformed blob CKR_DEVICE_ERROR.
    pub fn unwrap(blob: &[u8], pin: &[u8]) -> Result<SoftTokenKey> {
        if blob.len() < SALT_LEN + IV_LEN + 16
            || !(blob.len() - SALT_LEN - IV_LEN).is_multiple_of(16)
        {
            return Err(Error::with(CKR_DEVICE_ERROR, "malformed SoftHSM PIN blob"));
        }
        let (salt, rest) = blob.split_at(SALT_LEN);
        let (iv, ciphertext) = rest.split_at(IV_LEN);
        let mut salt_array = [0u8; SALT_LEN];
        salt_array.copy_from_slice(salt);
        let key = pin_key(pin, &salt_array);
        let wrong_pin = || Error::with(CKR_PIN_INCORRECT, "the SoftHSM user PIN is wrong");
        let plain = cbc_decrypt(&key, iv, ciphertext).ok_or_else(wrong_pin)?;
        if plain.len() != MAGIC.len() + KEY_LEN || &plain[..MAGIC.len()] != MAGIC {
            return Err(wrong_pin());
        }
        let mut token_key = Zeroizing::new([0u8; KEY_LEN]);
        token_key.copy_from_slice(&plain[MAGIC.len()..]);
        Ok(SoftTokenKey(token_key))
    }

    /// Decrypts one byte-string attribute of a private object. Failure is CKR_DEVICE_ERROR:
    /// the PIN was right, so the file is damaged.
    pub fn decrypt(&self, value: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if value.is_empty() {
            return Ok(Zeroizing::new(Vec::new()));
        }
        let damaged = || Error::with(CKR_DEVICE_ERROR, "SoftHSM attribute does not decrypt");
        if value.len() < IV_LEN + 16 {
            return Err(damaged());
        }
        let (iv, ciphertext) = value.split_at(IV_LEN);
        cbc_decrypt(&self.0, iv, ciphertext).ok_or_else(damaged)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use aes::cipher::BlockEncryptMut;

    type Aes256CbcEncryptor = cbc::Encryptor<aes::Aes256>;

    fn cbc_encrypt(key: &[u8; KEY_LEN], iv: &[u8; IV_LEN], plain: &[u8]) -> Vec<u8> {
        let mut buffer = plain.to_vec();
        let len = plain.len();
        buffer.resize(len + 16, 0);
        let out = Aes256CbcEncryptor::new_from_slices(key, iv)
            .unwrap()
            .encrypt_padded_mut::<Pkcs7>(&mut buffer, len)
            .unwrap()
            .to_vec();
        [iv.as_slice(), &out].concat()
    }

    /// A PIN blob as SoftHSM writes it (test input only).
    pub(crate) fn wrap(token_key: &[u8; KEY_LEN], pin: &[u8], salt: [u8; SALT_LEN]) -> Vec<u8> {
        let key = pin_key(pin, &salt);
        let plain = [MAGIC.as_slice(), token_key].concat();
        [salt.as_slice(), &cbc_encrypt(&key, &[9; IV_LEN], &plain)].concat()
    }

    /// An attribute value as SoftHSM encrypts it (test input only).
    pub(crate) fn encrypt(token_key: &[u8; KEY_LEN], value: &[u8]) -> Vec<u8> {
        cbc_encrypt(token_key, &[3; IV_LEN], value)
    }

    #[test]
    fn pin_key_counts_base_plus_last_salt_byte_digests() {
        // Independent statement of the S2K: 1500 + 2 SHA-256 digests in all.
        let salt = [1, 2, 3, 4, 5, 6, 7, 2];
        let mut d = Sha256::digest([salt.as_slice(), b"1234"].concat()).to_vec();
        for _ in 0..1501 {
            d = Sha256::digest(&d).to_vec();
        }
        assert_eq!(pin_key(b"1234", &salt).as_slice(), d.as_slice());
    }

    #[test]
    fn right_pin_opens_wrong_pin_is_pin_incorrect() {
        let token_key = [0x5A; KEY_LEN];
        let blob = wrap(&token_key, b"1234", [8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(blob.len(), 72, "the size SoftHSM's token.object shows");
        let key = SoftTokenKey::unwrap(&blob, b"1234").unwrap();
        assert_eq!(*key.0, token_key);
        for wrong in [b"1235".as_slice(), b"", b"12345"] {
            assert_eq!(
                SoftTokenKey::unwrap(&blob, wrong).err().unwrap().rv,
                CKR_PIN_INCORRECT
            );
        }
        assert_eq!(
            SoftTokenKey::unwrap(&blob[..50], b"1234").err().unwrap().rv,
            CKR_DEVICE_ERROR
        );
    }

    #[test]
    fn attributes_decrypt_and_damage_is_device_error() {
        let token_key = [0x11; KEY_LEN];
        let key = SoftTokenKey(Zeroizing::new(token_key));
        let sealed = encrypt(&token_key, b"private exponent");
        assert_eq!(
            key.decrypt(&sealed).unwrap().as_slice(),
            b"private exponent"
        );
        assert!(key.decrypt(&[]).unwrap().is_empty());
        let mut damaged = sealed.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        // A flipped last byte breaks the padding (or, rarely, yields other bytes): never
        // the original value.
        match key.decrypt(&damaged) {
            Err(e) => assert_eq!(e.rv, CKR_DEVICE_ERROR),
            Ok(v) => assert_ne!(v.as_slice(), b"private exponent"),
        }
        assert_eq!(
            key.decrypt(&sealed[..20]).err().unwrap().rv,
            CKR_DEVICE_ERROR
        );
    }
}
