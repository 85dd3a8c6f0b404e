//! CKM_RSA_PKCS_KEY_PAIR_GEN.

use crate::crypto::rsa::{backend, trim_leading_zeros};
use crate::error::{fail, Error, Result};
use crate::mechanism::{GeneratedKeyPair, Mechanism, MechanismInfo, MechanismParam};
use crate::object::Attributes;
use cryptoki_sys::*;

pub const DEFAULT_MODULUS_BITS: usize = 2048;
/// The floor of generation; the configured `rsa_min_bits` (2048 by default) raises it,
/// applied by `api::key_size`, which also reports it in C_GetMechanismInfo.
pub const MIN_GENERATED_BITS: usize = crate::crypto::rsa::MIN_MODULUS_BITS;
pub const MAX_GENERATED_BITS: usize = 4096;
const F4: [u8; 3] = [0x01, 0x00, 0x01];

pub struct RsaKeyPairGen;

impl Mechanism for RsaKeyPairGen {
    fn info(&self) -> MechanismInfo {
        MechanismInfo {
            min_key_size: MIN_GENERATED_BITS as CK_ULONG,
            max_key_size: MAX_GENERATED_BITS as CK_ULONG,
            flags: CKF_GENERATE_KEY_PAIR,
        }
    }

    fn generated_key_type(&self) -> Option<CK_KEY_TYPE> {
        Some(CKK_RSA)
    }

    fn generate_key_pair(
        &self,
        param: &MechanismParam,
        public: &Attributes,
        _private: &Attributes,
    ) -> Result<GeneratedKeyPair> {
        param.expect_none()?;
        let bits = modulus_bits(public)?;
        let exponent = public_exponent(public)?;
        let key = backend().generate(bits, exponent)?;

        let mut pub_attrs = Attributes::new();
        pub_attrs.set_ulong(CKA_CLASS, CKO_PUBLIC_KEY);
        pub_attrs.set_ulong(CKA_KEY_TYPE, CKK_RSA);
        pub_attrs.set(CKA_MODULUS, key.public.modulus.clone());
        pub_attrs.set_ulong(CKA_MODULUS_BITS, bits as CK_ULONG);
        pub_attrs.set(CKA_PUBLIC_EXPONENT, key.public.public_exponent.clone());

        let mut priv_attrs = Attributes::new();
        priv_attrs.set_ulong(CKA_CLASS, CKO_PRIVATE_KEY);
        priv_attrs.set_ulong(CKA_KEY_TYPE, CKK_RSA);
        priv_attrs.set(CKA_MODULUS, key.public.modulus.clone());
        priv_attrs.set(CKA_PUBLIC_EXPONENT, key.public.public_exponent.clone());
        priv_attrs.set(CKA_PRIVATE_EXPONENT, key.private_exponent.to_vec());
        for (ty, value) in [
            (CKA_PRIME_1, &key.prime_1),
            (CKA_PRIME_2, &key.prime_2),
            (CKA_EXPONENT_1, &key.exponent_1),
            (CKA_EXPONENT_2, &key.exponent_2),
            (CKA_COEFFICIENT, &key.coefficient),
        ] {
            let value = value.as_ref().ok_or(Error::with(
                CKR_FUNCTION_FAILED,
                "generated key lacks a CRT value",
            ))?;
            priv_attrs.set(ty, value.to_vec());
        }
        Ok(GeneratedKeyPair {
            public: pub_attrs,
            private: priv_attrs,
        })
    }
}

/// CKA_MODULUS_BITS of the public template, 2048 when absent.
fn modulus_bits(public: &Attributes) -> Result<usize> {
    let bits = match public.get_ulong(CKA_MODULUS_BITS)? {
        None => return Ok(DEFAULT_MODULUS_BITS),
        Some(bits) => usize::try_from(bits).map_err(|_| Error::new(CKR_KEY_SIZE_RANGE))?,
    };
    if !(MIN_GENERATED_BITS..=MAX_GENERATED_BITS).contains(&bits) {
        return Err(Error::with(
            CKR_KEY_SIZE_RANGE,
            format!("RSA key generation supports {MIN_GENERATED_BITS}..={MAX_GENERATED_BITS} bits"),
        ));
    }
    Ok(bits)
}

/// CKA_PUBLIC_EXPONENT of the public template, 65537 when absent; it must be odd and at
/// least 65537 (small exponents are a known weakness).
fn public_exponent(public: &Attributes) -> Result<&[u8]> {
    let Some(given) = public.get(CKA_PUBLIC_EXPONENT) else {
        return Ok(&F4);
    };
    let e = trim_leading_zeros(given);
    let odd = e.last().is_some_and(|b| b & 1 == 1);
    // Big-endian without leading zeros: a longer number is larger, same length compares bytewise.
    let at_least_f4 = e.len() > F4.len() || (e.len() == F4.len() && e >= &F4[..]);
    if !odd || !at_least_f4 {
        return fail(CKR_ATTRIBUTE_VALUE_INVALID);
    }
    Ok(e)
}
