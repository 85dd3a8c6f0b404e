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

/// Seeds aws-lc's random generator now. Its first use in a process gathers CPU jitter
/// entropy (about 20 ms here), which would otherwise fall on the first RSA encryption,
/// blinded private-key operation or EC signature; C_Initialize pays it instead.
pub fn seed_backend_random() {
    #[cfg(feature = "aws-lc")]
    {
        let mut byte = [0u8; 1];
        // A failure here shows again, as an error, in the operation that needs it.
        let _ = aws_lc_rs::rand::fill(&mut byte);
    }
}

/// Fills `buf` from aws-lc's generator: in user space (no system call), fork-safe, reseeded
/// from the kernel's pool; the OS CSPRNG without aws-lc. For values made per object
/// (CKA_UNIQUE_ID), where a `getrandom` system call per object was a measurable part of
/// creating a session object.
pub fn process_random_bytes(buf: &mut [u8]) -> crate::error::Result<()> {
    #[cfg(feature = "aws-lc")]
    {
        aws_lc_rs::rand::fill(buf).map_err(|_| {
            crate::error::Error::with(cryptoki_sys::CKR_DEVICE_ERROR, "random generator failed")
        })
    }
    #[cfg(not(feature = "aws-lc"))]
    {
        random_bytes(buf)
    }
}

/// Fills `buf` from the operating system's CSPRNG.
pub fn random_bytes(buf: &mut [u8]) -> crate::error::Result<()> {
    getrandom::fill(buf).map_err(|_| {
        crate::error::Error::with(cryptoki_sys::CKR_DEVICE_ERROR, "OS random source failed")
    })
}
