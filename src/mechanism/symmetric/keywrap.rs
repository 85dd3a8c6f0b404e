//! CKM_AES_KEY_WRAP (RFC 3394) and CKM_AES_KEY_WRAP_KWP (RFC 5649), single-part: through
//! C_WrapKey / C_UnwrapKey, and C_Encrypt / C_Decrypt as the spec also allows.

use crate::crypto::symmetric::keywrap::{self, Scheme};
use crate::error::{Error, Result};
use crate::mechanism::{CipherOperation, MechanismParam};
use cryptoki_sys::*;
use zeroize::Zeroizing;

/// The only initial values the RFCs define (RFC 3394 §2.2.3.1, RFC 5649 §3). The
/// mechanism's optional parameter may repeat them; any other IV is refused, since no
/// RFC-conformant peer could read the result.
const KW_IV: [u8; 8] = [0xA6; 8];
const KWP_IV: [u8; 4] = [0xA6, 0x59, 0x59, 0xA6];

pub fn operation(
    scheme: Scheme,
    param: &MechanismParam,
    key: &[u8],
    encrypt: bool,
) -> Result<Box<dyn CipherOperation>> {
    let default_iv: &[u8] = match scheme {
        Scheme::Kw => &KW_IV,
        Scheme::Kwp => &KWP_IV,
    };
    match param.bytes() {
        Some(iv) if iv.is_empty() || iv == default_iv => {}
        _ => {
            return Err(Error::with(
                CKR_MECHANISM_PARAM_INVALID,
                "AES key wrap takes no IV other than the RFC's",
            ))
        }
    }
    if !matches!(key.len(), 16 | 24 | 32) {
        return Err(Error::new(CKR_KEY_SIZE_RANGE));
    }
    Ok(Box::new(KeyWrap {
        scheme,
        kek: Zeroizing::new(key.to_vec()),
        encrypt,
    }))
}

struct KeyWrap {
    scheme: Scheme,
    kek: Zeroizing<Vec<u8>>,
    encrypt: bool,
}

impl CipherOperation for KeyWrap {
    fn output_len(&self, input_len: usize) -> Result<usize> {
        if self.encrypt {
            keywrap::check_wrap_len(self.scheme, input_len)?;
            Ok(keywrap::wrapped_len(self.scheme, input_len))
        } else {
            keywrap::check_unwrap_len(self.scheme, input_len)?;
            Ok(input_len - 8)
        }
    }

    fn run(&mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if self.encrypt {
            keywrap::wrap(self.scheme, &self.kek, input).map(Zeroizing::new)
        } else {
            keywrap::unwrap(self.scheme, &self.kek, input)
        }
    }
}
