//! ECB, CBC, CBC with PKCS#7 padding and CTR as PKCS#11 cipher operations: single- and
//! multi-part, with partial blocks carried between calls.
//!
//! Lengths (mechanisms spec §2.10 tables): ECB and CBC take whole blocks only
//! (CKR_DATA_LEN_RANGE / CKR_ENCRYPTED_DATA_LEN_RANGE otherwise, raised as soon as a call
//! can tell); CBC_PAD encrypts anything and decrypts whole blocks, holding the last block
//! back until C_DecryptFinal because it carries the padding; CTR is a stream.

use super::Kind;
use crate::crypto::symmetric::block::{self, BlockStream, Direction, Mode};
use crate::crypto::symmetric::{BlockCipher, BLOCK_LEN};
use crate::error::{Error, Result};
use crate::mechanism::{CipherOperation, MechanismParam};
use cryptoki_sys::*;
use subtle::{ConditionallySelectable, ConstantTimeEq, ConstantTimeLess};
use zeroize::Zeroizing;

pub fn operation(
    cipher: BlockCipher,
    kind: Kind,
    param: &MechanismParam,
    key: &[u8],
    encrypt: bool,
) -> Result<Box<dyn CipherOperation>> {
    let direction = if encrypt {
        Direction::Encrypt
    } else {
        Direction::Decrypt
    };
    let (mode, counter_limit) = match kind {
        Kind::Ecb => {
            param.expect_none()?;
            (Mode::Ecb, None)
        }
        Kind::Cbc | Kind::CbcPad => (Mode::Cbc { iv: iv(param)? }, None),
        _ => {
            let (counter_block, blocks) = ctr_param(param)?;
            (Mode::Ctr { counter_block }, Some(blocks))
        }
    };
    let stream = block::stream(cipher, key, mode, direction)?;
    Ok(Box::new(BlockOperation {
        stream,
        direction,
        padded: kind == Kind::CbcPad,
        counter_blocks_left: counter_limit,
        stream_offset: 0,
        pending: Zeroizing::new(Vec::with_capacity(BLOCK_LEN)),
    }))
}

/// CBC's parameter: the 16-byte IV.
fn iv(param: &MechanismParam) -> Result<[u8; BLOCK_LEN]> {
    param
        .bytes()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| Error::with(CKR_MECHANISM_PARAM_INVALID, "CBC needs a 16-byte IV"))
}

/// CTR's parameter: the counter block and how many blocks its counter bits allow before
/// they would wrap (the spec forbids wrapping: the keystream would repeat).
fn ctr_param(param: &MechanismParam) -> Result<([u8; BLOCK_LEN], u128)> {
    let MechanismParam::Ctr {
        counter_bits,
        block,
    } = param
    else {
        return Err(Error::with(
            CKR_MECHANISM_PARAM_INVALID,
            "CTR needs CK_AES_CTR_PARAMS",
        ));
    };
    if !(1..=128).contains(counter_bits) {
        return Err(Error::with(
            CKR_MECHANISM_PARAM_INVALID,
            "ulCounterBits must be 1..=128",
        ));
    }
    let bits = *counter_bits as u32;
    let value = u128::from_be_bytes(*block);
    // Counter values left from the starting one (itself included): 2^bits - counter. For
    // 128 bits that is 2^128 - value, which u128 holds unless value is 0 (then u128::MAX,
    // one short, which no message comes near).
    let left = if bits == 128 {
        match value {
            0 => u128::MAX,
            v => 0u128.wrapping_sub(v),
        }
    } else {
        (1u128 << bits) - (value & ((1u128 << bits) - 1))
    };
    Ok((*block, left))
}

struct BlockOperation {
    stream: Box<dyn BlockStream>,
    direction: Direction,
    padded: bool,
    /// CTR only: the counter values the data may use (each block of keystream one).
    counter_blocks_left: Option<u128>,
    /// CTR only: keystream bytes used so far, so that data ending mid-block is counted.
    stream_offset: u128,
    /// Input not yet transformed: a partial block (or, decrypting with padding, the last
    /// whole block, which may be the padding block).
    pending: Zeroizing<Vec<u8>>,
}

impl BlockOperation {
    fn is_stream(&self) -> bool {
        self.counter_blocks_left.is_some()
    }

    fn holds_last_block(&self) -> bool {
        self.padded && self.direction == Direction::Decrypt
    }

    /// How many of `total` buffered bytes an update may transform now.
    fn ready(&self, total: usize) -> usize {
        if self.is_stream() {
            return total;
        }
        let whole = total - total % BLOCK_LEN;
        if self.holds_last_block() && whole == total && whole > 0 {
            whole - BLOCK_LEN
        } else {
            whole
        }
    }

    fn wrong_length(&self) -> Error {
        match self.direction {
            Direction::Encrypt => Error::with(CKR_DATA_LEN_RANGE, "input is not whole blocks"),
            Direction::Decrypt => Error::with(
                CKR_ENCRYPTED_DATA_LEN_RANGE,
                "ciphertext is not whole blocks",
            ),
        }
    }

    /// Transforms `data` in place. For CTR, refuses data that would need a counter value
    /// past the counter bits' space: the keystream would wrap into the nonce bits, or
    /// repeat (a partly used block has used its counter value).
    fn apply(&mut self, data: &mut [u8]) -> Result<()> {
        if let Some(left) = self.counter_blocks_left {
            let end = self.stream_offset + data.len() as u128;
            if end.div_ceil(BLOCK_LEN as u128) > left {
                let rv = match self.direction {
                    Direction::Encrypt => CKR_DATA_LEN_RANGE,
                    Direction::Decrypt => CKR_ENCRYPTED_DATA_LEN_RANGE,
                };
                return Err(Error::with(
                    rv,
                    "CTR counter would wrap (ulCounterBits too small for this much data)",
                ));
            }
            self.stream_offset = end;
        }
        self.stream.apply(data);
        Ok(())
    }

    fn padding_len_for_final(&self) -> usize {
        BLOCK_LEN - self.pending.len() % BLOCK_LEN
    }
}

impl CipherOperation for BlockOperation {
    fn multi_part(&self) -> bool {
        true
    }

    fn output_len(&self, input_len: usize) -> Result<usize> {
        Ok(self.ready(self.pending.len() + input_len))
    }

    fn output_len_for(&self, input: &[u8]) -> Result<usize> {
        // A single-part call: everything at once.
        let len = input.len();
        match (self.is_stream(), self.padded, self.direction) {
            (true, _, _) => Ok(len),
            (false, true, Direction::Encrypt) => Ok(len - len % BLOCK_LEN + BLOCK_LEN),
            _ if !len.is_multiple_of(BLOCK_LEN) => Err(self.wrong_length()),
            (false, true, Direction::Decrypt) if len == 0 => Err(self.wrong_length()),
            _ => Ok(len),
        }
    }

    fn run(&mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.output_len_for(input)?;
        let mut out = self.update(input)?;
        out.extend_from_slice(&self.finish()?);
        Ok(out)
    }

    fn update(&mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let mut data = Zeroizing::new(crate::memory::buffer(self.pending.len() + input.len())?);
        data.extend_from_slice(&self.pending);
        data.extend_from_slice(input);
        let n = self.ready(data.len());
        self.apply(&mut data[..n])?;
        // Into the same zeroizing buffer: a replaced Vec would be freed unwiped.
        self.pending.clear();
        self.pending.extend_from_slice(&data[n..]);
        data.truncate(n);
        Ok(data)
    }

    fn finish_len(&self) -> Result<usize> {
        Ok(match (self.is_stream(), self.padded, self.direction) {
            (true, _, _) => self.pending.len(),
            (false, true, Direction::Encrypt) => self.pending.len() + self.padding_len_for_final(),
            // At most the held-back block less one padding byte; an upper bound is what a
            // length query may answer (§5.2).
            (false, true, Direction::Decrypt) => BLOCK_LEN,
            (false, false, _) => 0,
        })
    }

    fn finish(&mut self) -> Result<Zeroizing<Vec<u8>>> {
        let pad = self.padding_len_for_final();
        let mut last = std::mem::take(&mut self.pending);
        if self.is_stream() {
            self.apply(&mut last)?;
            return Ok(last);
        }
        match (self.padded, self.direction) {
            (true, Direction::Encrypt) => {
                let padded_len = last.len() + pad;
                last.resize(padded_len, pad as u8);
                self.apply(&mut last)?;
                Ok(last)
            }
            (true, Direction::Decrypt) => {
                if last.len() != BLOCK_LEN {
                    return Err(self.wrong_length());
                }
                self.apply(&mut last)?;
                let keep = unpadded_len(&last)
                    .ok_or_else(|| Error::with(CKR_ENCRYPTED_DATA_INVALID, "bad CBC padding"))?;
                last.truncate(keep);
                Ok(last)
            }
            (false, _) if !last.is_empty() => Err(self.wrong_length()),
            (false, _) => Ok(last),
        }
    }
}

/// The data length of a decrypted, PKCS#7-padded last block, or `None` when the padding
/// is malformed. Every byte is examined whatever the outcome, so the time taken says
/// nothing about where the padding went wrong.
fn unpadded_len(block: &[u8]) -> Option<usize> {
    let pad = block[BLOCK_LEN - 1];
    let mut bad = pad.ct_eq(&0) | (BLOCK_LEN as u8).ct_lt(&pad);
    for (i, b) in block.iter().enumerate() {
        // Byte i is padding when i >= 16 - pad.
        let in_padding = !(i as u8).ct_lt(&(BLOCK_LEN as u8).wrapping_sub(pad));
        bad |= in_padding & !b.ct_eq(&pad);
    }
    let len = u8::conditional_select(&(BLOCK_LEN as u8).wrapping_sub(pad), &0, bad);
    if bool::from(bad) {
        None
    } else {
        Some(len as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::unpadded_len;

    #[test]
    fn padding_checks() {
        let mut block = [0u8; 16];
        block[15] = 1;
        assert_eq!(unpadded_len(&block), Some(15));
        let block = [16u8; 16];
        assert_eq!(unpadded_len(&block), Some(0));
        let mut block = [3u8; 16];
        block[13] = 2;
        assert_eq!(unpadded_len(&block), None);
        assert_eq!(unpadded_len(&[0u8; 16]), None);
        assert_eq!(unpadded_len(&[17u8; 16]), None);
    }
}
