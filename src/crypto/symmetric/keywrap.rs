//! AES key wrap: RFC 3394 (KW, input a multiple of 8 bytes, at least 16) and RFC 5649 (KWP,
//! any non-empty input), through RustCrypto's `aes-kw`. Integrity failures are one code.

use crate::error::{Error, Result};
use aes::{Aes128, Aes192, Aes256};
use aes_kw::Kek;
use cryptoki_sys::*;
use zeroize::Zeroizing;

/// Which of the two wrapping schemes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// RFC 3394.
    Kw,
    /// RFC 5649 (with padding).
    Kwp,
}

/// The length of the wrapped form of `input_len` bytes.
pub fn wrapped_len(scheme: Scheme, input_len: usize) -> usize {
    match scheme {
        Scheme::Kw => input_len + 8,
        Scheme::Kwp => input_len.div_ceil(8) * 8 + 8,
    }
}

/// Checks that `input_len` bytes can be wrapped: KW needs a multiple of 8 bytes, at least
/// 16 (CKR_DATA_LEN_RANGE as for any encryption of the wrong length).
pub fn check_wrap_len(scheme: Scheme, input_len: usize) -> Result<()> {
    let ok = match scheme {
        Scheme::Kw => input_len >= 16 && input_len.is_multiple_of(8),
        Scheme::Kwp => input_len >= 1,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::with(
            CKR_DATA_LEN_RANGE,
            "wrong input length for AES key wrap",
        ))
    }
}

/// Checks that `len` bytes can be a wrapped key of the scheme (a multiple of 8, at least
/// 24 for KW and 16 for KWP): CKR_ENCRYPTED_DATA_LEN_RANGE otherwise.
pub fn check_unwrap_len(scheme: Scheme, len: usize) -> Result<()> {
    let min = match scheme {
        Scheme::Kw => 24,
        Scheme::Kwp => 16,
    };
    if len >= min && len.is_multiple_of(8) {
        Ok(())
    } else {
        Err(Error::with(
            CKR_ENCRYPTED_DATA_LEN_RANGE,
            "wrong length for an AES-wrapped key",
        ))
    }
}

pub fn wrap(scheme: Scheme, kek: &[u8], input: &[u8]) -> Result<Vec<u8>> {
    check_wrap_len(scheme, input.len())?;
    macro_rules! with {
        ($aes:ty) => {{
            let kek = Kek::<$aes>::try_from(kek).map_err(|_| Error::new(CKR_KEY_SIZE_RANGE))?;
            match scheme {
                Scheme::Kw => kek.wrap_vec(input),
                Scheme::Kwp => kek.wrap_with_padding_vec(input),
            }
        }};
    }
    let wrapped = match kek.len() {
        16 => with!(Aes128),
        24 => with!(Aes192),
        32 => with!(Aes256),
        _ => return Err(Error::new(CKR_KEY_SIZE_RANGE)),
    };
    wrapped.map_err(|_| Error::with(CKR_DATA_LEN_RANGE, "AES key wrap refused the input"))
}

/// The unwrapped bytes; a wrong integrity check value is CKR_ENCRYPTED_DATA_INVALID.
pub fn unwrap(scheme: Scheme, kek: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    check_unwrap_len(scheme, wrapped.len())?;
    // Into a zeroizing buffer: on an integrity failure it holds unverified plaintext too.
    let mut out = Zeroizing::new(vec![0u8; wrapped.len() - 8]);
    macro_rules! with {
        ($aes:ty) => {{
            let kek = Kek::<$aes>::try_from(kek).map_err(|_| Error::new(CKR_KEY_SIZE_RANGE))?;
            match scheme {
                Scheme::Kw => kek.unwrap(wrapped, &mut out).map(|()| out.len()),
                Scheme::Kwp => kek.unwrap_with_padding(wrapped, &mut out).map(<[u8]>::len),
            }
        }};
    }
    let len = match kek.len() {
        16 => with!(Aes128),
        24 => with!(Aes192),
        32 => with!(Aes256),
        _ => return Err(Error::new(CKR_KEY_SIZE_RANGE)),
    }
    .map_err(|_| {
        Error::with(
            CKR_ENCRYPTED_DATA_INVALID,
            "AES key unwrap integrity check failed",
        )
    })?;
    out.truncate(len);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    fn rfc3394_4_1_known_answer_and_tamper() {
        let kek = h("000102030405060708090A0B0C0D0E0F");
        let key = h("00112233445566778899AABBCCDDEEFF");
        let wrapped = wrap(Scheme::Kw, &kek, &key).unwrap();
        assert_eq!(
            hex::encode_upper(&wrapped),
            "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"
        );
        assert_eq!(unwrap(Scheme::Kw, &kek, &wrapped).unwrap().as_slice(), key);
        let mut bad = wrapped.clone();
        bad[10] ^= 0x80;
        assert_eq!(
            unwrap(Scheme::Kw, &kek, &bad).unwrap_err().rv,
            CKR_ENCRYPTED_DATA_INVALID
        );
        assert_eq!(
            unwrap(Scheme::Kw, &kek, &wrapped[..20]).unwrap_err().rv,
            CKR_ENCRYPTED_DATA_LEN_RANGE
        );
        assert_eq!(
            wrap(Scheme::Kw, &kek, &key[..12]).unwrap_err().rv,
            CKR_DATA_LEN_RANGE
        );
    }

    #[test]
    fn rfc5649_known_answer() {
        // RFC 5649 §6, 7-octet key.
        let kek = h("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8");
        let key = h("466f7250617369");
        let wrapped = wrap(Scheme::Kwp, &kek, &key).unwrap();
        assert_eq!(hex::encode(&wrapped), "afbeb0f07dfbf5419200f2ccb50bb24f");
        assert_eq!(wrapped.len(), wrapped_len(Scheme::Kwp, key.len()));
        assert_eq!(unwrap(Scheme::Kwp, &kek, &wrapped).unwrap().as_slice(), key);
    }
}
