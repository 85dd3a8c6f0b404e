//! Message authentication codes: HMAC (RFC 2104) over SHA-1, SHA-2 and SM3, and AES-CMAC
//! (NIST SP 800-38B), as running computations.

use crate::crypto::hash::HashAlg;
use crate::error::{Error, Result};
use cryptoki_sys::*;
use subtle::ConstantTimeEq;

/// A running MAC computation.
pub trait MacStream: Send {
    fn update(&mut self, data: &[u8]);
    /// The full-length MAC; the stream is spent.
    fn finish(&mut self) -> Vec<u8>;
}

/// HMAC with `hash` under `key` (any length: RFC 2104 hashes long keys first).
pub fn hmac(hash: HashAlg, key: &[u8]) -> Box<dyn MacStream> {
    use hmac::{Hmac, KeyInit};
    macro_rules! make {
        ($d:ty) => {
            // HMAC accepts keys of every length, so new_from_slice cannot fail.
            Box::new(Running(Some(
                <Hmac<$d> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length"),
            )))
        };
    }
    match hash {
        HashAlg::Sha1 => make!(sha1::Sha1),
        HashAlg::Sha224 => make!(sha2::Sha224),
        HashAlg::Sha256 => make!(sha2::Sha256),
        HashAlg::Sha384 => make!(sha2::Sha384),
        HashAlg::Sha512 => make!(sha2::Sha512),
        HashAlg::Sm3 => make!(sm3::Sm3),
    }
}

/// A running MAC of one of the two `Mac` traits in use (hmac 0.13 implements digest 0.11's,
/// cmac 0.7 digest 0.10's): the same adapter for each.
macro_rules! running_mac {
    ($name:ident, $mac:path) => {
        struct $name<M>(Option<M>);

        impl<M: $mac + Send> MacStream for $name<M> {
            fn update(&mut self, data: &[u8]) {
                if let Some(m) = self.0.as_mut() {
                    m.update(data);
                }
            }

            fn finish(&mut self) -> Vec<u8> {
                self.0
                    .take()
                    .map(|m| m.finalize().into_bytes().to_vec())
                    .unwrap_or_default()
            }
        }
    };
}

running_mac!(Running, hmac::Mac);
running_mac!(RunningCmac, cmac::Mac);

/// AES-CMAC under an AES key of 16, 24 or 32 bytes (CKR_KEY_SIZE_RANGE otherwise).
pub fn aes_cmac(key: &[u8]) -> Result<Box<dyn MacStream>> {
    use cmac::digest::KeyInit;
    use cmac::Cmac;
    macro_rules! make {
        ($aes:ty) => {
            Box::new(RunningCmac(Some(
                <Cmac<$aes> as KeyInit>::new_from_slice(key)
                    .map_err(|_| Error::new(CKR_KEY_SIZE_RANGE))?,
            )))
        };
    }
    Ok(match key.len() {
        16 => make!(aes::Aes128),
        24 => make!(aes::Aes192),
        32 => make!(aes::Aes256),
        _ => return Err(Error::new(CKR_KEY_SIZE_RANGE)),
    })
}

/// Constant-time equality of a computed MAC (already truncated) and a presented one.
pub fn mac_matches(computed: &[u8], presented: &[u8]) -> bool {
    computed.len() == presented.len() && bool::from(computed.ct_eq(presented))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(mut m: Box<dyn MacStream>, parts: &[&[u8]]) -> String {
        for p in parts {
            m.update(p);
        }
        hex::encode(m.finish())
    }

    #[test]
    fn hmac_rfc4231_case_2() {
        let m = hmac(HashAlg::Sha256, b"Jefe");
        assert_eq!(
            mac(m, &[b"what do ya want ", b"for nothing?"]),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let m = hmac(HashAlg::Sha1, b"Jefe");
        assert_eq!(
            mac(m, &[b"what do ya want for nothing?"]),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }

    #[test]
    fn cmac_sp800_38b_example_2() {
        let key = hex::decode("2b7e151628aed2a6abf7158809cf4f3c").unwrap();
        let msg = hex::decode("6bc1bee22e409f96e93d7e117393172a").unwrap();
        assert_eq!(
            mac(aes_cmac(&key).unwrap(), &[&msg[..7], &msg[7..]]),
            "070a16b46b4d4144f79bdd9dd04a287c"
        );
        assert_eq!(
            aes_cmac(&[0; 10]).err().map(|e| e.rv),
            Some(CKR_KEY_SIZE_RANGE)
        );
    }

    #[test]
    fn mac_comparison() {
        assert!(mac_matches(b"abc", b"abc"));
        assert!(!mac_matches(b"abc", b"abd"));
        assert!(!mac_matches(b"abc", b"ab"));
    }
}
