//! The configured key-size policy, `rsa_min_bits` (2048 unless the config file says
//! otherwise, never below 1024): the smallest RSA modulus the module generates, imports
//! (C_CreateObject, and so `ferrohsm-util migrate-softhsm`) and uses. C_GetMechanismInfo
//! reports it as ulMinKeySize of every RSA mechanism, so what a client reads there is what
//! the token does: a key below it that is already stored (made under a lower setting) is
//! still listed and readable, but C_EncryptInit, C_SignInit, ... refuse it with
//! CKR_KEY_SIZE_RANGE, the spec's code for a key outside the mechanism's range. The
//! mechanisms' own bounds (1024..=4096 generated, 1024..=8192 used) stay the outer limits.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::mechanism::rsa::{is_rsa_mechanism, DEFAULT_MODULUS_BITS};
use crate::mechanism::MechanismInfo;
use crate::object::Attributes;
use cryptoki_sys::*;

/// `info` of mechanism `ty` with the configured minimum.
pub fn mechanism_info(
    config: &Config,
    ty: CK_MECHANISM_TYPE,
    info: MechanismInfo,
) -> MechanismInfo {
    if !is_rsa_mechanism(ty) {
        return info;
    }
    let min = (config.rsa_min_bits as CK_ULONG).max(info.min_key_size);
    MechanismInfo {
        min_key_size: min,
        ..info
    }
}

/// Refuses, before the (slow) generation, an RSA key pair below the minimum
/// (CKR_KEY_SIZE_RANGE). `public` is the caller's public-key template.
pub fn check_generation(
    config: &Config,
    generated_type: Option<CK_KEY_TYPE>,
    public: &Attributes,
) -> Result<()> {
    if generated_type != Some(CKK_RSA) {
        return Ok(());
    }
    let bits = match public.get_ulong(CKA_MODULUS_BITS)? {
        Some(bits) => usize::try_from(bits).unwrap_or(usize::MAX),
        None => DEFAULT_MODULUS_BITS,
    };
    check_rsa_bits(config, bits, CKR_KEY_SIZE_RANGE)
}

/// Refuses a key object whose RSA modulus is below the minimum with `code`
/// (CKR_ATTRIBUTE_VALUE_INVALID when it is imported, as for any other modulus out of
/// range; CKR_KEY_SIZE_RANGE when an operation would use it). `attrs` are its clear
/// attributes: CKA_MODULUS is public, so no sealed value is opened for this.
pub fn check_key(config: &Config, attrs: &Attributes, code: CK_RV) -> Result<()> {
    if attrs.get_ulong(CKA_KEY_TYPE)? != Some(CKK_RSA) {
        return Ok(());
    }
    match attrs.get(CKA_MODULUS) {
        Some(modulus) => check_rsa_bits(config, bit_length(modulus), code),
        // The key's own checks report a missing modulus.
        None => Ok(()),
    }
}

fn check_rsa_bits(config: &Config, bits: usize, code: CK_RV) -> Result<()> {
    if bits >= config.rsa_min_bits {
        return Ok(());
    }
    Err(Error::with(
        code,
        format!(
            "RSA key of {bits} bits is below the configured minimum rsa_min_bits = {} \
             (set rsa_min_bits in the config file to allow smaller keys, down to 1024)",
            config.rsa_min_bits
        ),
    ))
}

/// Bits of a big-endian unsigned integer.
fn bit_length(bytes: &[u8]) -> usize {
    match bytes.iter().position(|b| *b != 0) {
        Some(i) => (bytes.len() - i) * 8 - bytes[i].leading_zeros() as usize,
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_lengths() {
        assert_eq!(bit_length(&[]), 0);
        assert_eq!(bit_length(&[0, 0]), 0);
        assert_eq!(bit_length(&[1]), 1);
        assert_eq!(bit_length(&[0, 0x80, 0]), 16);
        assert_eq!(bit_length(&[0x7f; 256]), 2047);
    }

    #[test]
    fn policy_applies_to_rsa_only() {
        let config = Config {
            rsa_min_bits: 3072,
            ..Config::default()
        };
        let info = MechanismInfo {
            min_key_size: 1024,
            max_key_size: 8192,
            flags: 0,
        };
        assert_eq!(
            mechanism_info(&config, CKM_RSA_PKCS, info).min_key_size,
            3072
        );
        assert_eq!(mechanism_info(&config, CKM_SHA256, info).min_key_size, 1024);
        let mut template = Attributes::new();
        template.set_ulong(CKA_MODULUS_BITS, 2048);
        let rv = |r: Result<()>| r.err().map(|e| e.rv);
        assert_eq!(
            rv(check_generation(&config, Some(CKK_RSA), &template)),
            Some(CKR_KEY_SIZE_RANGE)
        );
        assert_eq!(rv(check_generation(&config, Some(CKK_EC), &template)), None);
        // Without CKA_MODULUS_BITS the generation's default (2048) is what is judged.
        assert_eq!(
            rv(check_generation(&config, Some(CKK_RSA), &Attributes::new())),
            Some(CKR_KEY_SIZE_RANGE)
        );
        let mut key = Attributes::new();
        key.set_ulong(CKA_KEY_TYPE, CKK_RSA);
        key.set(CKA_MODULUS, vec![0xc5; 384]);
        assert_eq!(rv(check_key(&config, &key, CKR_KEY_SIZE_RANGE)), None);
        key.set(CKA_MODULUS, vec![0x45; 384]);
        assert_eq!(
            rv(check_key(&config, &key, CKR_KEY_SIZE_RANGE)),
            Some(CKR_KEY_SIZE_RANGE)
        );
    }
}
