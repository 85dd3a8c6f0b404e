//! CKA_CHECK_VALUE: the three-byte checksums the spec defines for certificates and secret
//! keys, which the token computes itself and verifies when a caller supplies one.

use crate::crypto::symmetric::block::encrypt_block;
use crate::crypto::symmetric::BlockCipher;
use cryptoki_sys::*;

use crate::crypto::hash::HashAlg;

/// Base spec §4.6.2 (certificates) and mechanisms spec §2.8 (generic secret): the first
/// three bytes of the SHA-1 hash of CKA_VALUE.
pub fn sha1_check_value(value: &[u8]) -> Vec<u8> {
    let mut hash = HashAlg::Sha1.digest(value);
    hash.truncate(3);
    hash
}

/// Mechanisms spec §2.10 (AES): the first three bytes of the ECB encryption of one
/// all-zero block under the key. SM4 keys get the same (no standard defines one; it is
/// what the vendors of the SM4 values do). `None` for a key of a length the cipher does
/// not have.
pub fn block_cipher_check_value(cipher: BlockCipher, key: &[u8]) -> Option<Vec<u8>> {
    let mut block = [0u8; 16];
    encrypt_block(cipher, key, &mut block).ok()?;
    Some(block[..3].to_vec())
}

/// The check value of a secret key of `key_type`, when the spec defines one.
pub fn secret_key_check_value(key_type: CK_KEY_TYPE, value: &[u8]) -> Option<Vec<u8>> {
    match key_type {
        CKK_AES => block_cipher_check_value(BlockCipher::Aes, value),
        crate::vendor::CKK_SM4 => block_cipher_check_value(BlockCipher::Sm4, value),
        CKK_GENERIC_SECRET => Some(sha1_check_value(value)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aes_128_zero_key_known_answer() {
        // FIPS-197 style known answer: AES-128 with the all-zero key encrypting the
        // all-zero block gives 66e94bd4ef8a2c3b884cfa59ca342b2e.
        assert_eq!(
            block_cipher_check_value(BlockCipher::Aes, &[0; 16]),
            Some(vec![0x66, 0xe9, 0x4b])
        );
        assert_eq!(block_cipher_check_value(BlockCipher::Aes, &[0; 15]), None);
        assert_eq!(
            block_cipher_check_value(BlockCipher::Aes, &[0; 24]).map(|v| v.len()),
            Some(3)
        );
        assert_eq!(
            block_cipher_check_value(BlockCipher::Aes, &[0; 32]).map(|v| v.len()),
            Some(3)
        );
    }

    #[test]
    fn sha1_check_value_known_answer() {
        // SHA-1("abc") = a9993e36...
        assert_eq!(sha1_check_value(b"abc"), vec![0xa9, 0x99, 0x3e]);
    }
}
