//! RSA key generation, for every backend: two primes from crypto-primes (the `rsa` crate's
//! own prime search: a small-factor sieve and the Baillie-PSW test, the top two bits set so
//! that the modulus has exactly the requested size), assembled by the `rsa` crate
//! (`PrivateKey::from_p_q`: the private exponent per NIST SP 800-56B, the key checked).
//!
//! Why not `rsa::PrivateKey::new_with_exp` or aws-lc's `KeyPair::generate`: the search for p
//! and the search for q are independent, and here they run on two threads at once, so a
//! key takes about the time of its slower prime instead of the sum. And by measurement, the
//! crate's search is the faster one: 41-46 ms of CPU a 2048-bit key against 60-72 ms for
//! aws-lc's (100 keys each, twice, in one run on the 2-core build machine).

use super::rustcrypto::{components_of, public_uint};
use super::{RsaPrivateComponents, MAX_MODULUS_BITS, MIN_MODULUS_BITS};
use crate::error::{fail, Error, Result};
use crypto_primes::hazmat::{SetBits, SmallFactorsSieveFactory};
use crypto_primes::{is_prime, sieve_and_find, Flavor};
use cryptoki_sys::*;
use rand::rand_core::UnwrapErr;
use rand::rngs::SysRng;
use rsa::traits::PublicKeyParts;
use rsa::BoxedUint;

/// The exponents the `rsa` crate accepts (odd, 3 to 2^33 - 1), checked before any prime
/// is searched.
const MAX_EXPONENT_BITS: u32 = 33;

/// A new key pair of `bits` bits with public exponent `public_exponent` (big-endian).
pub(super) fn generate(bits: usize, public_exponent: &[u8]) -> Result<RsaPrivateComponents> {
    if !(MIN_MODULUS_BITS..=MAX_MODULUS_BITS).contains(&bits) {
        return fail(CKR_KEY_SIZE_RANGE);
    }
    let e = public_uint(public_exponent)?;
    let odd = public_exponent.last().is_some_and(|byte| byte & 1 == 1);
    if !odd || e.bit_width() < 2 || e.bit_width() > MAX_EXPONENT_BITS {
        return Err(Error::with(
            CKR_ATTRIBUTE_VALUE_INVALID,
            "public exponent rejected (odd, 3 to 2^33 - 1)",
        ));
    }
    let (p_bits, q_bits) = ((bits / 2) as u32, (bits - bits / 2) as u32);
    // A pair is thrown away when gcd(e, p - 1) or gcd(e, q - 1) is not 1 (about 1 in
    // 32 768 for e = 65537, but 3 in 4 for e = 3) or p = q; the bound only keeps a broken
    // random source from looping (e = 3 misses 64 pairs in a row once in 10^8).
    for _ in 0..64 {
        let (p, q) = two_primes(p_bits, q_bits)?;
        if let Ok(key) = rsa::PrivateKey::from_p_q(p, q, e.clone()) {
            if key.n().bit_width() as usize == bits {
                return components_of(&key);
            }
        }
    }
    Err(Error::with(
        CKR_FUNCTION_FAILED,
        "RSA key generation found no valid key",
    ))
}

/// p on this thread and q on another at the same time; both here when no thread can be had.
fn two_primes(p_bits: u32, q_bits: u32) -> Result<(BoxedUint, BoxedUint)> {
    std::thread::scope(|scope| {
        let other = std::thread::Builder::new()
            .name("ferrohsm-rsa-prime".into())
            .spawn_scoped(scope, move || prime(q_bits));
        let p = prime(p_bits)?;
        let q = match other {
            Ok(handle) => handle
                .join()
                .map_err(|_| Error::with(CKR_GENERAL_ERROR, "the prime search thread failed"))??,
            Err(_) => prime(q_bits)?,
        };
        Ok((p, q))
    })
}

/// A random prime of exactly `bits` bits whose top two bits are set. The candidates come
/// straight from the OS (no generator state to wipe afterwards).
fn prime(bits: u32) -> Result<BoxedUint> {
    let factory = SmallFactorsSieveFactory::<BoxedUint>::new(Flavor::Any, bits, SetBits::TwoMsb)
        .map_err(|e| Error::with(CKR_GENERAL_ERROR, format!("prime sieve: {e}")))?;
    sieve_and_find(&mut UnwrapErr(SysRng), factory, |_, candidate| {
        is_prime(Flavor::Any, candidate)
    })
    .map_err(|e| Error::with(CKR_GENERAL_ERROR, format!("prime search: {e}")))?
    .ok_or_else(|| Error::with(CKR_GENERAL_ERROR, "prime search ran out of candidates"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rv(result: Result<RsaPrivateComponents>) -> CK_RV {
        crate::error::rv_of(&result)
    }

    #[test]
    fn exponents_outside_the_crates_range_are_refused_before_any_search() {
        for e in [&[][..], &[0], &[1], &[2], &[1, 0, 0], &[3, 0, 0, 0, 1]] {
            assert_eq!(rv(generate(2048, e)), CKR_ATTRIBUTE_VALUE_INVALID, "{e:?}");
        }
        assert_eq!(rv(generate(512, &[1, 0, 1])), CKR_KEY_SIZE_RANGE);
    }

    #[test]
    fn moduli_have_exactly_the_size_asked_and_are_the_product_of_the_primes() {
        for (bits, e) in [(1024, &[3][..]), (1025, &[1, 0, 1]), (2048, &[1, 0, 1])] {
            let key = generate(bits, e).unwrap();
            let n = BoxedUint::from_be_slice_vartime(&key.public.modulus);
            assert_eq!(n.bit_width() as usize, bits);
            let uint = |v: &Option<zeroize::Zeroizing<Vec<u8>>>| {
                BoxedUint::from_be_slice_vartime(v.as_deref().unwrap())
            };
            let (p, q) = (uint(&key.prime_1), uint(&key.prime_2));
            assert_ne!(p, q);
            // n = p * q, through the rsa crate's own check of the components.
            let rebuilt = rsa::PrivateKey::from_components(
                n,
                BoxedUint::from_be_slice_vartime(e),
                BoxedUint::from_be_slice_vartime(&key.private_exponent),
                vec![p, q],
            );
            assert!(rebuilt.is_ok(), "{bits} bits: {rebuilt:?}");
        }
    }
}
