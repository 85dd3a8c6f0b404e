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

/// 16 bytes no other call returns (CKA_UNIQUE_ID): a counter encrypted with AES-128 under a
/// key drawn from the OS CSPRNG per thread, and again in a forked child (a new process
/// id), so values of different threads and processes come from independent random
/// permutations and collide with negligible probability, and none reveals a count. One
/// block encryption instead of a system call or a DRBG run per object created; kept per
/// thread, so no lock is taken (nor inherited held across fork()).
pub fn unique_block() -> crate::error::Result<[u8; 16]> {
    use aes::cipher::{BlockEncrypt, KeyInit};
    struct Generator {
        pid: u32,
        cipher: aes::Aes128,
        counter: u128,
    }
    thread_local! {
        static GENERATOR: std::cell::RefCell<Option<Generator>> = const { std::cell::RefCell::new(None) };
    }
    let pid = crate::ffi::process::current_pid();
    GENERATOR.with(|cell| {
        let mut generator = cell.borrow_mut();
        if generator.as_ref().is_none_or(|g| g.pid != pid) {
            let mut key = zeroize::Zeroizing::new([0u8; 16]);
            random_bytes(&mut *key)?;
            *generator = Some(Generator {
                pid,
                cipher: aes::Aes128::new(&(*key).into()),
                counter: 0,
            });
        }
        let Some(g) = generator.as_mut() else {
            unreachable!("set above")
        };
        g.counter += 1;
        let mut block = g.counter.to_le_bytes().into();
        g.cipher.encrypt_block(&mut block);
        Ok(block.into())
    })
}

/// Fills `buf` from the operating system's CSPRNG.
pub fn random_bytes(buf: &mut [u8]) -> crate::error::Result<()> {
    getrandom::fill(buf).map_err(|_| {
        crate::error::Error::with(cryptoki_sys::CKR_DEVICE_ERROR, "OS random source failed")
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn unique_blocks_differ_within_and_across_threads() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            assert!(seen.insert(super::unique_block().unwrap()));
        }
        let other: Vec<_> =
            std::thread::spawn(|| (0..1000).map(|_| super::unique_block().unwrap()).collect())
                .join()
                .unwrap();
        for block in other {
            assert!(seen.insert(block));
        }
    }
}
