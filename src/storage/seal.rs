//! Sealing with PIN-derived keys: the token key wrapped under Argon2id(PIN), and secret
//! attribute values sealed under the token key. Both use AES-256-GCM; the associated data
//! names what a blob is (purpose, user type, object id, attribute type) so a blob cannot be
//! moved to another place and still open.
//!
//! Blob layout: one format byte (`BLOB_V1`), a 12-byte random nonce, ciphertext + 16-byte tag.

use super::{escrow, PIN_ESCROW};
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
/// default (or the configured `pin_kdf_*` cost) changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl KdfParams {
    /// The default cost: RFC 9106 section 4's second recommended option (64 MiB, 4 lanes)
    /// with 2 passes instead of 3, so that a login stays within 250 ms here: the argon2 crate
    /// computes the lanes one after another (no threads), each pass over 64 MiB about 100 ms
    /// on the 2-core build machine (`cargo bench --bench login`; README, "PINs").
    pub const DEFAULT: KdfParams = KdfParams {
        memory_kib: 64 * 1024,
        iterations: 2,
        parallelism: 4,
    };

    /// The parameters as Argon2 takes them; invalid ones (from a config file or a damaged
    /// record) are `code` with the reason.
    pub fn argon2(self, code: CK_RV) -> Result<Params> {
        Params::new(
            self.memory_kib,
            self.iterations,
            self.parallelism,
            Some(KEY_LEN),
        )
        .map_err(|e| Error::with(code, format!("Argon2 parameters {self:?} invalid: {e}")))
    }

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
        if bytes.len() != KEY_LEN {
            return Err(Error::with(
                CKR_DEVICE_ERROR,
                "token record has no valid public-object key",
            ));
        }
        // Copied straight into the zeroizing key: no stray copy on the stack.
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        key.copy_from_slice(bytes);
        Ok(PublicObjectKey(key))
    }
}

pub fn new_token_key() -> Result<TokenKey> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    getrandom::fill(key.as_mut_slice())
        .map_err(|e| Error::with(CKR_DEVICE_ERROR, format!("OS random source failed: {e}")))?;
    Ok(key)
}

/// The optional host secret (config `host_secret_file`): bytes kept outside `token_dir`
/// and given to Argon2 as its secret input K, so the token files alone cannot be used to
/// test PINs. Never printed.
#[derive(Clone)]
pub struct HostSecret(pub Zeroizing<Vec<u8>>);

impl std::fmt::Debug for HostSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HostSecret(..)")
    }
}

/// The key-encryption key for one PIN: Argon2id(PIN, salt, secret = host secret if any).
/// Slow on purpose: run it without holding locks. The work does not depend on the PIN
/// (its length only feeds one hash), so a wrong PIN costs what a right one does. Argon2's
/// memory blocks are wiped before they are freed.
pub fn derive_pin_key(
    pin: &[u8],
    salt: &[u8],
    params: KdfParams,
    host_secret: Option<&HostSecret>,
) -> Result<Zeroizing<[u8; KEY_LEN]>> {
    let argon_params = params.argon2(CKR_DEVICE_ERROR)?;
    let blocks = argon_params.block_count();
    let argon = match host_secret {
        None => Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params),
        Some(secret) => {
            Argon2::new_with_secret(&secret.0, Algorithm::Argon2id, Version::V0x13, argon_params)
                .map_err(|e| Error::with(CKR_DEVICE_ERROR, format!("host secret: {e}")))?
        }
    };
    let mut memory = Zeroizing::new(vec![argon2::Block::default(); blocks]);
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    argon
        .hash_password_into_with_memory(pin, salt, out.as_mut_slice(), memory.as_mut_slice())
        .map_err(|e| Error::with(CKR_DEVICE_ERROR, format!("Argon2 failed: {e}")))?;
    Ok(out)
}

/// The wrapped token key's associated data. Records of format 2 and before (`flags` 0)
/// used the v1 form; later ones bind the record's flags, so clearing a flag in the file
/// (to skip the counter check, or to drop the host secret) leaves a blob that no PIN
/// opens: every guess then fails and tells nothing.
fn token_key_aad(user_tag: u8, flags: u32) -> Vec<u8> {
    if flags == 0 {
        let mut aad = b"ferrohsm token key v1".to_vec();
        aad.push(user_tag);
        return aad;
    }
    let mut aad = b"ferrohsm token key v2".to_vec();
    aad.push(user_tag);
    aad.extend_from_slice(&flags.to_le_bytes());
    aad
}

/// What a PIN record's counter MAC covers (see `token` on the retry counter): the
/// attempt count at the last success, bound to the record (its salt), its user and the
/// token's epoch, so a MAC cannot be moved to another record or token.
pub struct CounterState<'a> {
    pub user_tag: u8,
    pub epoch: u64,
    pub salt: &'a [u8],
    pub success_at: u64,
}

fn counter_mac_input(state: &CounterState<'_>) -> Vec<u8> {
    let mut data = b"ferrohsm PIN counter v1".to_vec();
    data.push(state.user_tag);
    data.extend_from_slice(&state.epoch.to_le_bytes());
    data.extend_from_slice(&(state.salt.len() as u64).to_le_bytes());
    data.extend_from_slice(state.salt);
    data.extend_from_slice(&state.success_at.to_le_bytes());
    data
}

fn counter_hmac(token_key: &TokenKey) -> hmac::Hmac<sha2::Sha256> {
    use hmac::KeyInit;
    <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(token_key.as_slice())
        .expect("HMAC takes any key length")
}

/// HMAC-SHA256 under the token key (a use of its own: the input starts with a label no
/// sealed blob's associated data has).
pub fn counter_mac(token_key: &TokenKey, state: &CounterState<'_>) -> Vec<u8> {
    use hmac::Mac;
    let mut mac = counter_hmac(token_key);
    mac.update(&counter_mac_input(state));
    mac.finalize().into_bytes().to_vec()
}

/// Constant-time check of a stored counter MAC.
pub fn counter_mac_ok(token_key: &TokenKey, state: &CounterState<'_>, tag: &[u8]) -> bool {
    use hmac::Mac;
    let mut mac = counter_hmac(token_key);
    mac.update(&counter_mac_input(state));
    mac.verify_slice(tag).is_ok()
}

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

/// Wraps the token key under a PIN key; `user_tag` separates the SO's and the user's
/// blobs, `flags` are the PIN record's (see `token_key_aad`). With `PIN_ESCROW` the key is
/// sealed to the record's escrow key pair instead (`escrow`), which the PIN key derives.
pub fn wrap_token_key(
    pin_key: &[u8; KEY_LEN],
    token_key: &TokenKey,
    user_tag: u8,
    flags: u32,
) -> Result<Vec<u8>> {
    let aad = token_key_aad(user_tag, flags);
    if flags & PIN_ESCROW != 0 {
        return escrow::wrap(pin_key, token_key, &aad);
    }
    seal(pin_key, &aad, token_key.as_slice())
}

/// The token key, or `None` when the PIN key does not open the blob (a wrong PIN).
pub fn unwrap_token_key(
    pin_key: &[u8; KEY_LEN],
    wrapped: &[u8],
    user_tag: u8,
    flags: u32,
) -> Option<TokenKey> {
    let aad = token_key_aad(user_tag, flags);
    if flags & PIN_ESCROW != 0 {
        return escrow::unwrap(pin_key, wrapped, &aad);
    }
    let plain = open(pin_key, &aad, wrapped)?;
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    if plain.len() != KEY_LEN {
        return None;
    }
    key.copy_from_slice(&plain);
    Some(key)
}

/// A record of the escrow form (`PIN_ESCROW`) wrapped around another token key without
/// its PIN (`escrow::rewrap`); CKR_DEVICE_ERROR for a record of another form.
pub fn rewrap_token_key(
    wrapped: &[u8],
    token_key: &TokenKey,
    user_tag: u8,
    flags: u32,
) -> Result<Vec<u8>> {
    if flags & PIN_ESCROW == 0 {
        return Err(Error::with(
            CKR_GENERAL_ERROR,
            "a PIN record without an escrow key cannot be re-wrapped without its PIN",
        ));
    }
    escrow::rewrap(wrapped, token_key, &token_key_aad(user_tag, flags))
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
        let right = derive_pin_key(b"123456", &salt, KdfParams::TEST, None).unwrap();
        let wrong = derive_pin_key(b"123457", &salt, KdfParams::TEST, None).unwrap();
        let wrapped = wrap_token_key(&right, &key, 1, 0).unwrap();
        assert_eq!(
            unwrap_token_key(&right, &wrapped, 1, 0).unwrap().as_slice(),
            key.as_slice()
        );
        assert!(unwrap_token_key(&wrong, &wrapped, 1, 0).is_none());
        // The SO's blob does not open as the user's.
        assert!(unwrap_token_key(&right, &wrapped, 0, 0).is_none());
        // The record's flags are bound: a blob written with flags does not open without.
        let flagged = wrap_token_key(&right, &key, 1, 2).unwrap();
        assert!(unwrap_token_key(&right, &flagged, 1, 2).is_some());
        assert!(unwrap_token_key(&right, &flagged, 1, 0).is_none());
        assert!(unwrap_token_key(&right, &flagged, 1, 3).is_none());
    }

    #[test]
    fn host_secret_changes_the_pin_key() {
        let salt: [u8; SALT_LEN] = random_bytes().unwrap();
        let secret = HostSecret(Zeroizing::new(vec![7u8; 32]));
        let other = HostSecret(Zeroizing::new(vec![8u8; 32]));
        let plain = derive_pin_key(b"123456", &salt, KdfParams::TEST, None).unwrap();
        let with = derive_pin_key(b"123456", &salt, KdfParams::TEST, Some(&secret)).unwrap();
        let again = derive_pin_key(b"123456", &salt, KdfParams::TEST, Some(&secret)).unwrap();
        let with_other = derive_pin_key(b"123456", &salt, KdfParams::TEST, Some(&other)).unwrap();
        assert_eq!(with, again);
        assert_ne!(plain, with);
        assert_ne!(with, with_other);
    }

    #[test]
    fn counter_mac_binds_every_field() {
        let key = new_token_key().unwrap();
        let state = |user_tag, epoch, salt: &'static [u8], success_at| CounterState {
            user_tag,
            epoch,
            salt,
            success_at,
        };
        let tag = counter_mac(&key, &state(1, 9, b"salt", 5));
        assert!(counter_mac_ok(&key, &state(1, 9, b"salt", 5), &tag));
        for other in [
            state(0, 9, b"salt", 5),
            state(1, 8, b"salt", 5),
            state(1, 9, b"salT", 5),
            state(1, 9, b"salt", 6),
        ] {
            assert!(!counter_mac_ok(&key, &other, &tag));
        }
        assert!(!counter_mac_ok(
            &new_token_key().unwrap(),
            &state(1, 9, b"salt", 5),
            &tag
        ));
        assert!(!counter_mac_ok(&key, &state(1, 9, b"salt", 5), b""));
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
        let kib = |mib: u32| mib * 1024;
        for params in [
            KdfParams::DEFAULT,
            KdfParams {
                memory_kib: kib(64),
                iterations: 2,
                parallelism: 4,
            },
            KdfParams {
                memory_kib: kib(64),
                iterations: 1,
                parallelism: 1,
            },
            KdfParams {
                memory_kib: kib(128),
                iterations: 2,
                parallelism: 4,
            },
        ] {
            let (cpu, wall) = (cpu_ns(), std::time::Instant::now());
            for _ in 0..5 {
                derive_pin_key(b"12345678", &salt, params, None).unwrap();
            }
            let cpu_ms = (cpu_ns() - cpu) as f64 / 5e6;
            eprintln!(
                "{params:?}: {cpu_ms:.1} ms CPU, {:?} wall per derivation",
                wall.elapsed() / 5
            );
        }
    }
}
