//! Thin adapters over the crypto crates. Only `mechanism/` calls into this module; nothing
//! here knows about sessions, objects or attributes beyond plain byte strings.
//!
//! Backends sit behind small traits (`RsaBackend`, ...) so that a faster implementation can
//! replace one without touching the PKCS#11 logic.

pub mod hash;
pub mod rsa;
pub mod sm2;
pub mod symmetric;

/// Fills `buf` from the operating system's CSPRNG.
pub fn random_bytes(buf: &mut [u8]) -> crate::error::Result<()> {
    getrandom::fill(buf).map_err(|_| {
        crate::error::Error::with(cryptoki_sys::CKR_DEVICE_ERROR, "OS random source failed")
    })
}
