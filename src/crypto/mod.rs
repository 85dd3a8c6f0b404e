//! Thin adapters over the crypto crates. Only `mechanism/` calls into this module; nothing
//! here knows about sessions, objects or attributes beyond plain byte strings.
//!
//! Backends sit behind small traits (`RsaBackend`, ...) so that a faster implementation can
//! replace one without touching the PKCS#11 logic.

#[cfg(feature = "aws-lc")]
pub mod ec;
pub mod hash;
pub mod rsa;
pub mod sm2;
pub mod symmetric;

/// C_SeedRandom: every random byte ferrohsm uses comes from the kernel's pool (getrandom,
/// and aws-lc's generator, which reseeds from it), so the caller's seed goes there: bytes
/// written to /dev/urandom are mixed into the pool without being credited as entropy, so a
/// bad or hostile seed cannot weaken it. Where that device cannot be written (a sandbox), the
/// spec's CKR_RANDOM_SEED_NOT_SUPPORTED.
pub fn mix_into_os_pool(seed: &[u8]) -> crate::error::Result<()> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/urandom")
        .and_then(|mut pool| pool.write_all(seed))
        .map_err(|e| {
            crate::error::Error::with(
                cryptoki_sys::CKR_RANDOM_SEED_NOT_SUPPORTED,
                format!("cannot mix the seed into /dev/urandom: {e}"),
            )
        })
}

/// Fills `buf` from the operating system's CSPRNG.
pub fn random_bytes(buf: &mut [u8]) -> crate::error::Result<()> {
    getrandom::fill(buf).map_err(|_| {
        crate::error::Error::with(cryptoki_sys::CKR_DEVICE_ERROR, "OS random source failed")
    })
}
