//! Secret keys (AES, SM4, generic secret): the loaded form every symmetric mechanism takes,
//! and the one generation mechanism all three key types share.

use super::{LoadedKey, Mechanism, MechanismInfo, MechanismParam};
use crate::error::{Error, Result};
use crate::object::Attributes;
use cryptoki_sys::*;
use std::sync::Arc;
use zeroize::Zeroizing;

/// A secret key's type and value. The value never leaves this struct except into a cipher
/// or MAC constructor (and into C_WrapKey's input, which the caller's policy allowed).
pub struct SecretKey {
    pub key_type: CK_KEY_TYPE,
    value: Zeroizing<Vec<u8>>,
}

impl SecretKey {
    pub fn new(key_type: CK_KEY_TYPE, value: &[u8]) -> Self {
        SecretKey {
            key_type,
            value: Zeroizing::new(value.to_vec()),
        }
    }

    pub fn value(&self) -> &[u8] {
        &self.value
    }
}

/// Parses a secret key object: its CKA_VALUE (already unsealed) and CKA_KEY_TYPE.
pub fn load_key(attrs: &Attributes) -> Result<LoadedKey> {
    let key_type = attrs
        .get_ulong(CKA_KEY_TYPE)?
        .ok_or_else(|| Error::with(CKR_TEMPLATE_INCOMPLETE, "secret key without a type"))?;
    let value = attrs
        .get(CKA_VALUE)
        .ok_or_else(|| Error::with(CKR_TEMPLATE_INCOMPLETE, "secret key without CKA_VALUE"))?;
    Ok(LoadedKey::Secret(Arc::new(SecretKey::new(key_type, value))))
}

/// The secret key behind `key` if it is one of `types`: CKR_KEY_TYPE_INCONSISTENT
/// otherwise (an RSA key given to AES-CBC, an AES key given to SM4).
pub fn secret_of<'a>(key: &'a LoadedKey, types: &[CK_KEY_TYPE]) -> Result<&'a Arc<SecretKey>> {
    match key {
        LoadedKey::Secret(k) if types.contains(&k.key_type) => Ok(k),
        _ => Err(Error::with(
            CKR_KEY_TYPE_INCONSISTENT,
            "mechanism does not take this key type",
        )),
    }
}

/// C_GenerateKey for one secret key type: random bytes from the OS CSPRNG of the length
/// the template's CKA_VALUE_LEN asks for (or the type's only length).
pub struct SecretKeyGen {
    pub key_type: CK_KEY_TYPE,
    pub lengths: KeyLengths,
    /// Whether CK_MECHANISM_INFO counts key sizes in bits (generic secret, as the
    /// mechanisms spec says) or bytes (AES, SM4).
    pub sizes_in_bits: bool,
}

impl Mechanism for SecretKeyGen {
    fn info(&self) -> MechanismInfo {
        let unit = if self.sizes_in_bits { 8 } else { 1 };
        MechanismInfo {
            min_key_size: (self.lengths.min() * unit) as CK_ULONG,
            max_key_size: (self.lengths.max() * unit) as CK_ULONG,
            flags: CKF_GENERATE,
        }
    }

    fn generated_key_type(&self) -> Option<CK_KEY_TYPE> {
        Some(self.key_type)
    }

    fn generate_key(&self, param: &MechanismParam, template: &Attributes) -> Result<Attributes> {
        param.expect_none()?;
        let len = match (template.get_ulong(CKA_VALUE_LEN)?, self.lengths.only()) {
            (Some(len), _) => len as usize,
            (None, Some(len)) => len,
            (None, None) => {
                return Err(Error::with(
                    CKR_TEMPLATE_INCOMPLETE,
                    "CKA_VALUE_LEN is required",
                ))
            }
        };
        if !self.lengths.contains(len) {
            // C_GenerateKey's list has no CKR_KEY_SIZE_RANGE: the template's value is wrong.
            return Err(Error::with(
                CKR_ATTRIBUTE_VALUE_INVALID,
                "CKA_VALUE_LEN is not a length of the key type",
            ));
        }
        let mut value = Zeroizing::new(vec![0u8; len]);
        crate::crypto::random_bytes(&mut value)?;
        let mut made = Attributes::new();
        made.set_ulong(CKA_CLASS, CKO_SECRET_KEY);
        made.set_ulong(CKA_KEY_TYPE, self.key_type);
        made.set(CKA_VALUE, value.as_slice());
        made.set_ulong(CKA_VALUE_LEN, len as CK_ULONG);
        Ok(made)
    }
}

/// The value lengths, in bytes, a secret key type has.
#[derive(Clone, Copy, Debug)]
pub enum KeyLengths {
    /// Exactly these (AES: 16, 24, 32; SM4: 16).
    List(&'static [usize]),
    /// Any length in the range (generic secret).
    Range(usize, usize),
}

impl KeyLengths {
    pub fn contains(self, len: usize) -> bool {
        match self {
            KeyLengths::List(list) => list.contains(&len),
            KeyLengths::Range(min, max) => (min..=max).contains(&len),
        }
    }

    pub fn min(self) -> usize {
        match self {
            KeyLengths::List(list) => list.iter().copied().min().unwrap_or(0),
            KeyLengths::Range(min, _) => min,
        }
    }

    pub fn max(self) -> usize {
        match self {
            KeyLengths::List(list) => list.iter().copied().max().unwrap_or(0),
            KeyLengths::Range(_, max) => max,
        }
    }

    /// The one length of a type that has only one.
    pub fn only(self) -> Option<usize> {
        match self {
            KeyLengths::List([len]) => Some(*len),
            _ => None,
        }
    }
}

pub const AES_LENGTHS: KeyLengths = KeyLengths::List(&[16, 24, 32]);
pub const SM4_LENGTHS: KeyLengths = KeyLengths::List(&[16]);
/// Generic secret keys (HMAC keys): 1 to 512 bytes.
pub const GENERIC_SECRET_LENGTHS: KeyLengths = KeyLengths::Range(1, 512);

/// The lengths a secret key type has; `None` for a type that is not a secret key type.
pub fn key_lengths(key_type: CK_KEY_TYPE) -> Option<KeyLengths> {
    match key_type {
        CKK_AES => Some(AES_LENGTHS),
        crate::vendor::CKK_SM4 => Some(SM4_LENGTHS),
        CKK_GENERIC_SECRET => Some(GENERIC_SECRET_LENGTHS),
        _ => None,
    }
}

/// Appends `data` to a zeroizing buffer without leaving copies behind: `Vec` growth frees
/// the old allocation unwiped, so growth goes into a new zeroizing buffer instead (the old
/// one is wiped when dropped).
pub fn append_wiped(buffer: &mut Zeroizing<Vec<u8>>, data: &[u8]) {
    let needed = buffer.len() + data.len();
    if needed > buffer.capacity() {
        let mut grown = Zeroizing::new(Vec::with_capacity(needed.max(2 * buffer.capacity())));
        grown.extend_from_slice(buffer);
        *buffer = grown;
    }
    buffer.extend_from_slice(data);
}
