//! ECB, CBC and CTR over AES and SM4, as running streams: the caller feeds whole blocks
//! (ECB, CBC) or any length (CTR) as many times as it likes and the chaining state carries
//! over, which is what PKCS#11's multi-part operations need.

use super::{BlockCipher, BLOCK_LEN};
use crate::error::{Error, Result};
use aes::cipher::consts::U16;
use aes::cipher::inout::InOutBuf;
use aes::cipher::{
    BlockCipher as CipherCore, BlockDecrypt, BlockDecryptMut, BlockEncrypt, BlockEncryptMut,
    KeyInit, KeyIvInit, StreamCipher,
};
use aes::{Aes128, Aes192, Aes256};
use cryptoki_sys::*;

/// The mode and its starting state.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    Ecb,
    Cbc {
        iv: [u8; BLOCK_LEN],
    },
    /// The whole initial counter block, incremented as a 128-bit big-endian number; the
    /// mechanism keeps the data short enough that only its counter bits ever change.
    Ctr {
        counter_block: [u8; BLOCK_LEN],
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Encrypt,
    Decrypt,
}

/// A running ECB/CBC/CTR transformation. `apply` transforms `data` in place; for ECB and
/// CBC its length must be a multiple of the block size (the mechanism buffers the rest).
pub trait BlockStream: Send {
    fn apply(&mut self, data: &mut [u8]);
}

/// A stream for `cipher` with `key` in `mode`. A key of a length the cipher does not have
/// is CKR_KEY_SIZE_RANGE.
pub fn stream(
    cipher: BlockCipher,
    key: &[u8],
    mode: Mode,
    direction: Direction,
) -> Result<Box<dyn BlockStream>> {
    match (cipher, key.len()) {
        (BlockCipher::Aes, 16) => stream_of::<Aes128>(key, mode, direction),
        (BlockCipher::Aes, 24) => stream_of::<Aes192>(key, mode, direction),
        (BlockCipher::Aes, 32) => stream_of::<Aes256>(key, mode, direction),
        (BlockCipher::Sm4, 16) => stream_of::<sm4::Sm4>(key, mode, direction),
        _ => Err(Error::with(
            CKR_KEY_SIZE_RANGE,
            "wrong key length for the cipher",
        )),
    }
}

/// One block encrypted in place (ECB), for check values.
pub fn encrypt_block(cipher: BlockCipher, key: &[u8], block: &mut [u8; BLOCK_LEN]) -> Result<()> {
    // The cipher alone, with its encryption key schedule only: no stream, no box, no
    // decryption round keys (a new secret key's check value is made this way).
    match (cipher, key.len()) {
        (BlockCipher::Aes, 16) => encrypt_one::<aes::Aes128Enc>(key, block),
        (BlockCipher::Aes, 24) => encrypt_one::<aes::Aes192Enc>(key, block),
        (BlockCipher::Aes, 32) => encrypt_one::<aes::Aes256Enc>(key, block),
        (BlockCipher::Sm4, 16) => encrypt_one::<sm4::Sm4>(key, block),
        _ => Err(Error::with(
            CKR_KEY_SIZE_RANGE,
            "wrong key length for the cipher",
        )),
    }
}

fn encrypt_one<C: BlockEncrypt + KeyInit>(key: &[u8], block: &mut [u8; BLOCK_LEN]) -> Result<()> {
    let cipher = C::new_from_slice(key)
        .map_err(|_| Error::with(CKR_KEY_SIZE_RANGE, "wrong key length for the cipher"))?;
    cipher.encrypt_block(aes::cipher::generic_array::GenericArray::from_mut_slice(
        block,
    ));
    Ok(())
}

fn stream_of<C>(key: &[u8], mode: Mode, direction: Direction) -> Result<Box<dyn BlockStream>>
where
    C: CipherCore<BlockSize = U16> + BlockEncrypt + BlockDecrypt + KeyInit + Send + 'static,
{
    let bad_key = |_| Error::with(CKR_KEY_SIZE_RANGE, "wrong key length for the cipher");
    Ok(match (mode, direction) {
        (Mode::Ecb, Direction::Encrypt) => Box::new(Blocks(
            ecb::Encryptor::<C>::new_from_slice(key).map_err(bad_key)?,
        )),
        (Mode::Ecb, Direction::Decrypt) => Box::new(BlocksBack(
            ecb::Decryptor::<C>::new_from_slice(key).map_err(bad_key)?,
        )),
        (Mode::Cbc { iv }, Direction::Encrypt) => Box::new(Blocks(
            cbc::Encryptor::<C>::new_from_slices(key, &iv).map_err(bad_key)?,
        )),
        (Mode::Cbc { iv }, Direction::Decrypt) => Box::new(BlocksBack(
            cbc::Decryptor::<C>::new_from_slices(key, &iv).map_err(bad_key)?,
        )),
        (Mode::Ctr { counter_block }, _) => Box::new(Keystream(
            ctr::Ctr128BE::<C>::new_from_slices(key, &counter_block).map_err(bad_key)?,
        )),
    })
}

/// An encrypting block mode.
struct Blocks<M>(M);

impl<M: BlockEncryptMut<BlockSize = U16> + Send> BlockStream for Blocks<M> {
    fn apply(&mut self, data: &mut [u8]) {
        let (blocks, _) = InOutBuf::from(data).into_chunks::<U16>();
        self.0.encrypt_blocks_inout_mut(blocks);
    }
}

/// A decrypting block mode.
struct BlocksBack<M>(M);

impl<M: BlockDecryptMut<BlockSize = U16> + Send> BlockStream for BlocksBack<M> {
    fn apply(&mut self, data: &mut [u8]) {
        let (blocks, _) = InOutBuf::from(data).into_chunks::<U16>();
        self.0.decrypt_blocks_inout_mut(blocks);
    }
}

/// CTR: the same keystream both ways.
struct Keystream<S>(S);

impl<S: StreamCipher + Send> BlockStream for Keystream<S> {
    fn apply(&mut self, data: &mut [u8]) {
        self.0.apply_keystream(data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(cipher: BlockCipher, key: &[u8], mode: Mode, d: Direction, data: &[u8]) -> Vec<u8> {
        let mut out = data.to_vec();
        stream(cipher, key, mode, d).unwrap().apply(&mut out);
        out
    }

    #[test]
    fn aes_128_ecb_fips197_known_answer() {
        let key = hex::decode("000102030405060708090a0b0c0d0e0f").unwrap();
        let pt = hex::decode("00112233445566778899aabbccddeeff").unwrap();
        let ct = run(BlockCipher::Aes, &key, Mode::Ecb, Direction::Encrypt, &pt);
        assert_eq!(hex::encode(&ct), "69c4e0d86a7b0430d8cdb78070b4c55a");
        assert_eq!(
            run(BlockCipher::Aes, &key, Mode::Ecb, Direction::Decrypt, &ct),
            pt
        );
    }

    #[test]
    fn sm4_ecb_gbt32907_known_answer() {
        // GB/T 32907-2016 Appendix A.1.
        let key = hex::decode("0123456789abcdeffedcba9876543210").unwrap();
        let ct = run(BlockCipher::Sm4, &key, Mode::Ecb, Direction::Encrypt, &key);
        assert_eq!(hex::encode(ct), "681edf34d206965e86b3e94f536e4246");
    }

    #[test]
    fn cbc_in_pieces_equals_cbc_at_once() {
        // NIST SP 800-38A F.2.1 (CBC-AES128.Encrypt), blocks 1-2.
        let key = hex::decode("2b7e151628aed2a6abf7158809cf4f3c").unwrap();
        let iv: [u8; 16] = hex::decode("000102030405060708090a0b0c0d0e0f")
            .unwrap()
            .try_into()
            .unwrap();
        let pt = hex::decode("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51")
            .unwrap();
        let mode = Mode::Cbc { iv };
        let whole = run(BlockCipher::Aes, &key, mode, Direction::Encrypt, &pt);
        assert_eq!(
            hex::encode(&whole),
            "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2"
        );
        let mut s = stream(BlockCipher::Aes, &key, mode, Direction::Encrypt).unwrap();
        let mut parts = pt.clone();
        let (a, b) = parts.split_at_mut(16);
        s.apply(a);
        s.apply(b);
        assert_eq!(parts, whole);
    }

    #[test]
    fn ctr_nist_known_answer_any_split() {
        // NIST SP 800-38A F.5.1 (CTR-AES128.Encrypt), block 1 and half of block 2.
        let key = hex::decode("2b7e151628aed2a6abf7158809cf4f3c").unwrap();
        let counter_block: [u8; 16] = hex::decode("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
            .unwrap()
            .try_into()
            .unwrap();
        let pt = hex::decode("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c").unwrap();
        let mode = Mode::Ctr { counter_block };
        let mut s = stream(BlockCipher::Aes, &key, mode, Direction::Encrypt).unwrap();
        let mut out = pt.clone();
        let (a, b) = out.split_at_mut(5);
        s.apply(a);
        s.apply(b);
        assert_eq!(
            hex::encode(out),
            "874d6191b620e3261bef6864990db6ce9806f66b7970fdff"
        );
    }

    #[test]
    fn wrong_key_length_is_key_size_range() {
        let e = stream(BlockCipher::Sm4, &[0; 32], Mode::Ecb, Direction::Encrypt).err();
        assert_eq!(e.map(|e| e.rv), Some(CKR_KEY_SIZE_RANGE));
    }
}
