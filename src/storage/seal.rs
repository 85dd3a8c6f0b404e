//! Sealing with PIN-derived keys: the token key wrapped under Argon2id(PIN), and secret
//! attribute values sealed under the token key. Both use AES-256-GCM; the associated data
//! names what a blob is (purpose, user type, object id, attribute type) so a blob cannot be
//! moved to another place and still open.
//!
//! Blob layout: one format byte (`BLOB_V1`), a 12-byte random nonce, ciphertext + 16-byte tag.

use crate::error::{Error, Result};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use argon2::{Algorithm, Argon2, Params, Version};
use cryptoki_sys::*;
use zeroize::Zeroizing;

/// The random key that seals a token's secret attributes.
pub type TokenKey = Zeroizing<[u8; KEY_LEN]>;

pub const KEY_LEN: usize = 32;
pub const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 12;
const BLOB_V1: u8 = 1;

/// Argon2id cost; stored with each wrapped key so old tokens keep opening when the
/// default changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl KdfParams {
    /// The production cost: 64 MiB, one pass, about 80 ms of CPU per derivation on the
    /// 2-core build machine (measured under load by the `kdf_cost` test; 64 MiB with two
    /// passes took 140 ms, at the top of the 50-150 ms login budget).
    pub const DEFAULT: KdfParams = KdfParams {
        memory_kib: 64 * 1024,
        iterations: 1,
        parallelism: 1,
    };

    /// Cheap parameters for unit tests only.
    #[cfg(test)]
    pub const TEST: KdfParams = KdfParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
}

/// Random bytes from the OS; failure is a device error, never a panic.
pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf)
        .map_err(|e| Error::with(CKR_DEVICE_ERROR, format!("OS random source failed: {e}")))?;
    Ok(buf)
}

/// The key that seals the secret values of a token's public objects (CKA_PRIVATE false).
/// The spec lets anyone use a public object without login, so this key is not wrapped
/// under a PIN: it lies in clear in the token record, and whoever holds the store file can
/// open those values. It keeps them out of the file in clear and bound to their object and
/// attribute, nothing more; real keys belong in private objects (the default).
#[derive(Clone, PartialEq, Eq)]
pub struct PublicObjectKey(pub TokenKey);

impl std::fmt::Debug for PublicObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Records are printed in tests and errors; the key never is.
        f.write_str("PublicObjectKey(..)")
    }
}

impl PublicObjectKey {
    pub fn new() -> Result<Self> {
        new_token_key().map(PublicObjectKey)
    }

    /// From its stored bytes; anything but KEY_LEN bytes is a damaged record.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let bytes: [u8; KEY_LEN] = bytes.try_into().map_err(|_| {
            Error::with(
                CKR_DEVICE_ERROR,
                "token record has no valid public-object key",
            )
        })?;
        Ok(PublicObjectKey(Zeroizing::new(bytes)))
    }
}

pub fn new_token_key() -> Result<TokenKey> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    getrandom::fill(key.as_mut_slice())
        .map_err(|e| Error::with(CKR_DEVICE_ERROR, format!("OS random source failed: {e}")))?;
    Ok(key)
}

/// The key-encryption key for one PIN. Slow on purpose: run it without holding locks.
pub fn derive_pin_key(
    pin: &[u8],
    salt: &[u8],
    params: KdfParams,
) -> Result<Zeroizing<[u8; KEY_LEN]>> {
    let argon_params = Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        Some(KEY_LEN),
    )
    .map_err(|e| {
        Error::with(
            CKR_DEVICE_ERROR,
            format!("stored Argon2 parameters invalid: {e}"),
        )
    })?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params);
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    argon
        .hash_password_into(pin, salt, out.as_mut_slice())
        .map_err(|e| Error::with(CKR_DEVICE_ERROR, format!("Argon2 failed: {e}")))?;
    Ok(out)
}

/// The wrapped token key's associated data. Version 3 marks a PIN record written by a
/// build that keeps the integrity tags: only a PIN holder can make one, so a format-3
/// token whose tags were stripped from the file cannot pass for a store awaiting its
/// upgrade (see token.rs `authenticate`). Version 1 blobs still open.
fn token_key_aad(user_tag: u8, version: &[u8]) -> Vec<u8> {
    let mut aad = b"ferrohsm token key v".to_vec();
    aad.extend_from_slice(version);
    aad.push(user_tag);
    aad
}

const WRAP_CURRENT: &[u8] = b"3";
const WRAP_LEGACY: &[u8] = b"1";

// CK_ULONG is 32 bits on some platforms; the AAD always encodes 64.
#[allow(clippy::unnecessary_cast)]
fn attribute_aad(object_id: i64, ty: CK_ATTRIBUTE_TYPE) -> Vec<u8> {
    let mut aad = b"ferrohsm attribute v1".to_vec();
    aad.extend_from_slice(&object_id.to_le_bytes());
    aad.extend_from_slice(&(ty as u64).to_le_bytes());
    aad
}

fn seal(key: &[u8; KEY_LEN], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let cipher = Aes256Gcm::new_from_slice(key)
        .map_err(|_| Error::with(CKR_DEVICE_ERROR, "AES-256-GCM key length"))?;
    let nonce: [u8; NONCE_LEN] = random_bytes()?;
    let ciphertext = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| Error::with(CKR_DEVICE_ERROR, "AES-256-GCM sealing failed"))?;
    let mut blob = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
    blob.push(BLOB_V1);
    blob.extend_from_slice(&nonce);
    blob.extend_from_slice(&ciphertext);
    Ok(blob)
}

/// `None` when the blob does not authenticate under `key` (wrong key or tampered blob).
fn open(key: &[u8; KEY_LEN], aad: &[u8], blob: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let (&format, rest) = blob.split_first()?;
    if format != BLOB_V1 || rest.len() < NONCE_LEN + 16 {
        return None;
    }
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    let cipher = Aes256Gcm::new_from_slice(key).ok()?;
    cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .ok()
        .map(Zeroizing::new)
}

/// Wraps the token key under a PIN key; `user_tag` separates the SO's and the user's blobs.
pub fn wrap_token_key(
    pin_key: &[u8; KEY_LEN],
    token_key: &TokenKey,
    user_tag: u8,
) -> Result<Vec<u8>> {
    wrap_as(pin_key, token_key, user_tag, WRAP_CURRENT)
}

/// A wrapped key as builds before format 3 wrote it (tests of the upgrade).
#[cfg(test)]
pub fn wrap_token_key_v1(
    pin_key: &[u8; KEY_LEN],
    token_key: &TokenKey,
    user_tag: u8,
) -> Result<Vec<u8>> {
    wrap_as(pin_key, token_key, user_tag, WRAP_LEGACY)
}

fn wrap_as(
    pin_key: &[u8; KEY_LEN],
    token_key: &TokenKey,
    user_tag: u8,
    version: &[u8],
) -> Result<Vec<u8>> {
    seal(
        pin_key,
        &token_key_aad(user_tag, version),
        token_key.as_slice(),
    )
}

/// The token key, or `None` when the PIN key does not open the blob (a wrong PIN).
pub fn unwrap_token_key(pin_key: &[u8; KEY_LEN], wrapped: &[u8], user_tag: u8) -> Option<TokenKey> {
    [WRAP_CURRENT, WRAP_LEGACY].into_iter().find_map(|version| {
        let plain = open(pin_key, &token_key_aad(user_tag, version), wrapped)?;
        let bytes: [u8; KEY_LEN] = plain.as_slice().try_into().ok()?;
        Some(Zeroizing::new(bytes))
    })
}

/// True for a blob `unwrap_token_key` opened as a version-1 one (written before format 3).
pub fn is_legacy_wrap(pin_key: &[u8; KEY_LEN], wrapped: &[u8], user_tag: u8) -> bool {
    open(pin_key, &token_key_aad(user_tag, WRAP_CURRENT), wrapped).is_none()
}

pub fn seal_attribute(
    token_key: &TokenKey,
    object_id: i64,
    ty: CK_ATTRIBUTE_TYPE,
    value: &[u8],
) -> Result<Vec<u8>> {
    seal(token_key, &attribute_aad(object_id, ty), value)
}

/// A sealed value that fails authentication is reported as a device error (the store was
/// tampered with or damaged), never dropped silently.
pub fn unseal_attribute(
    token_key: &TokenKey,
    object_id: i64,
    ty: CK_ATTRIBUTE_TYPE,
    blob: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    open(token_key, &attribute_aad(object_id, ty), blob).ok_or_else(|| {
        Error::with(
            CKR_DEVICE_ERROR,
            format!("sealed attribute 0x{ty:x} of stored object {object_id} fails authentication"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_key_wraps_and_rejects_wrong_pin() {
        let salt: [u8; SALT_LEN] = random_bytes().unwrap();
        let key = new_token_key().unwrap();
        let right = derive_pin_key(b"123456", &salt, KdfParams::TEST).unwrap();
        let wrong = derive_pin_key(b"123457", &salt, KdfParams::TEST).unwrap();
        let wrapped = wrap_token_key(&right, &key, 1).unwrap();
        assert_eq!(
            unwrap_token_key(&right, &wrapped, 1).unwrap().as_slice(),
            key.as_slice()
        );
        assert!(unwrap_token_key(&wrong, &wrapped, 1).is_none());
        // The SO's blob does not open as the user's.
        assert!(unwrap_token_key(&right, &wrapped, 0).is_none());
    }

    #[test]
    fn sealed_attribute_is_bound_to_object_and_type() {
        let key = new_token_key().unwrap();
        let blob = seal_attribute(&key, 7, CKA_VALUE, b"secret").unwrap();
        assert_eq!(
            unseal_attribute(&key, 7, CKA_VALUE, &blob)
                .unwrap()
                .as_slice(),
            b"secret"
        );
        assert_eq!(
            unseal_attribute(&key, 8, CKA_VALUE, &blob).unwrap_err().rv,
            CKR_DEVICE_ERROR
        );
        assert!(unseal_attribute(&key, 7, CKA_PRIME_1, &blob).is_err());
    }

    /// Prints the cost of the production parameters (CPU time of this thread, so a busy
    /// machine does not skew it): `cargo test --lib kdf_cost -- --ignored --nocapture`
    /// (Argon2 is built optimised also in test builds, see Cargo.toml).
    #[test]
    #[ignore]
    fn kdf_cost() {
        fn cpu_ns() -> u64 {
            std::fs::read_to_string("/proc/thread-self/schedstat")
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        }
        let salt: [u8; SALT_LEN] = random_bytes().unwrap();
        for params in [
            KdfParams::DEFAULT,
            KdfParams {
                memory_kib: 19 * 1024,
                iterations: 2,
                parallelism: 1,
            },
            KdfParams {
                memory_kib: 32 * 1024,
                iterations: 2,
                parallelism: 1,
            },
            KdfParams {
                memory_kib: 64 * 1024,
                iterations: 1,
                parallelism: 1,
            },
        ] {
            let (cpu, wall) = (cpu_ns(), std::time::Instant::now());
            for _ in 0..5 {
                derive_pin_key(b"12345678", &salt, params).unwrap();
            }
            let cpu_ms = (cpu_ns() - cpu) as f64 / 5e6;
            eprintln!(
                "{params:?}: {cpu_ms:.1} ms CPU, {:?} wall per derivation",
                wall.elapsed() / 5
            );
        }
    }
}
