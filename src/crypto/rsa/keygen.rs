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
use crypto_bigint::{Gcd, Odd};
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
    let e = Odd::new(e)
        .into_option()
        .ok_or_else(|| Error::with(CKR_ATTRIBUTE_VALUE_INVALID, "public exponent must be odd"))?;
    let (p_bits, q_bits) = ((bits / 2) as u32, (bits - bits / 2) as u32);
    // Each prime already has gcd(e, prime - 1) = 1, so a pair is thrown away only when p = q
    // (never, from a working random source); the bound keeps a broken one from looping.
    for _ in 0..4 {
        let (p, q) = two_primes(p_bits, q_bits, &e)?;
        if let Ok(key) = rsa::PrivateKey::from_p_q(p, q, e.as_ref().clone()) {
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
fn two_primes(p_bits: u32, q_bits: u32, e: &Odd<BoxedUint>) -> Result<(BoxedUint, BoxedUint)> {
    std::thread::scope(|scope| {
        let other = std::thread::Builder::new()
            .name("ferrohsm-rsa-prime".into())
            .spawn_scoped(scope, move || prime(q_bits, e));
        let p = prime(p_bits, e)?;
        let q = match other {
            Ok(handle) => handle
                .join()
                .map_err(|_| Error::with(CKR_GENERAL_ERROR, "the prime search thread failed"))??,
            Err(_) => prime(q_bits, e)?,
        };
        Ok((p, q))
    })
}

/// A random prime of exactly `bits` bits whose top two bits are set and with
/// gcd(e, prime - 1) = 1 (for e = 3 half the primes fail it, for 65537 one in 65 536). The
/// candidates come straight from the OS (no generator state to wipe afterwards). The gcd runs
/// only on primes, in constant time: they are the secret key.
fn prime(bits: u32, e: &Odd<BoxedUint>) -> Result<BoxedUint> {
    let factory = SmallFactorsSieveFactory::<BoxedUint>::new(Flavor::Any, bits, SetBits::TwoMsb)
        .map_err(|e| Error::with(CKR_GENERAL_ERROR, format!("prime sieve: {e}")))?;
    sieve_and_find(&mut UnwrapErr(SysRng), factory, |_, candidate| {
        is_prime(Flavor::Any, candidate) && coprime_to_predecessor(e, candidate)
    })
    .map_err(|e| Error::with(CKR_GENERAL_ERROR, format!("prime search: {e}")))?
    .ok_or_else(|| Error::with(CKR_GENERAL_ERROR, "prime search ran out of candidates"))
}

/// gcd(e, prime - 1) = 1: e is invertible modulo prime - 1, as the private exponent needs.
fn coprime_to_predecessor(e: &Odd<BoxedUint>, prime: &BoxedUint) -> bool {
    let predecessor = prime.wrapping_sub(BoxedUint::one());
    bool::from(e.gcd(&predecessor).as_ref().is_one())
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
    fn a_prime_whose_predecessor_shares_a_factor_with_e_is_refused() {
        let uint = |v: u64| BoxedUint::from(v);
        let three = Odd::new(uint(3)).unwrap();
        assert!(!coprime_to_predecessor(&three, &uint(7)), "gcd(3, 6) = 3");
        assert!(coprime_to_predecessor(&three, &uint(5)), "gcd(3, 4) = 1");
        let f4 = Odd::new(uint(65537)).unwrap();
        assert!(!coprime_to_predecessor(&f4, &uint(2 * 65537 + 1)));
        assert!(coprime_to_predecessor(&f4, &uint(65539)));
        // Full-size primes: 2^1024 - 105 is 1 mod 3 (3 divides its predecessor), 2^1024 - 179
        // is 2 mod 3 (both prime, checked with sympy).
        let below_2_1024 =
            |c: u64| BoxedUint::from_be_slice_vartime(&[0xff; 128]).wrapping_sub(uint(c - 1));
        assert!(!coprime_to_predecessor(&three, &below_2_1024(105)));
        assert!(coprime_to_predecessor(&three, &below_2_1024(179)));
        assert!(coprime_to_predecessor(&f4, &below_2_1024(179)));
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
