//! CKM_AES_GCM: `CK_GCM_PARAMS` (IV, AAD, tag bits). Multi-part calls collect the message
//! and C_EncryptFinal / C_DecryptFinal do the work: a decryption releases no plaintext
//! before the tag has been checked (a C_DecryptUpdate always returns 0 bytes).

use crate::crypto::symmetric::gcm;
use crate::error::{Error, Result};
use crate::mechanism::{CipherOperation, MechanismParam};
use cryptoki_sys::*;
use zeroize::Zeroizing;

pub fn operation(
    param: &MechanismParam,
    key: &[u8],
    encrypt: bool,
) -> Result<Box<dyn CipherOperation>> {
    let MechanismParam::Gcm { iv, aad, tag_bits } = param else {
        return Err(Error::with(
            CKR_MECHANISM_PARAM_INVALID,
            "GCM needs CK_GCM_PARAMS",
        ));
    };
    if tag_bits % 8 != 0 {
        return Err(Error::with(
            CKR_MECHANISM_PARAM_INVALID,
            "GCM tag bits must be whole bytes",
        ));
    }
    let tag_len = (*tag_bits / 8) as usize;
    gcm::check(key, iv, tag_len)?;
    Ok(Box::new(GcmOperation {
        key: Zeroizing::new(key.to_vec()),
        iv: iv.clone(),
        aad: aad.clone(),
        tag_len,
        encrypt,
        collected: Zeroizing::new(Vec::new()),
    }))
}

struct GcmOperation {
    key: Zeroizing<Vec<u8>>,
    iv: Vec<u8>,
    aad: Vec<u8>,
    tag_len: usize,
    encrypt: bool,
    collected: Zeroizing<Vec<u8>>,
}

impl GcmOperation {
    fn result_len(&self, input_len: usize) -> Result<usize> {
        if self.encrypt {
            Ok(input_len + self.tag_len)
        } else {
            gcm::opened_len(input_len, self.tag_len)
        }
    }

    fn process(&self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if self.encrypt {
            gcm::seal(&self.key, &self.iv, &self.aad, input, self.tag_len).map(Zeroizing::new)
        } else {
            gcm::open(&self.key, &self.iv, &self.aad, input, self.tag_len)
        }
    }
}

impl CipherOperation for GcmOperation {
    fn multi_part(&self) -> bool {
        true
    }

    fn output_len(&self, _input_len: usize) -> Result<usize> {
        Ok(0)
    }

    fn output_len_for(&self, input: &[u8]) -> Result<usize> {
        self.result_len(input.len())
    }

    fn run(&mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.process(input)
    }

    fn run_into(&mut self, input: &[u8], out: &mut [u8]) -> Option<Result<usize>> {
        if out.len() < self.result_len(input.len()).ok()? {
            return None;
        }
        Some(if self.encrypt {
            gcm::seal_into(&self.key, &self.iv, &self.aad, input, self.tag_len, out)
        } else {
            gcm::open_into(&self.key, &self.iv, &self.aad, input, self.tag_len, out)
        })
    }

    fn update(&mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        crate::mechanism::secret::append_wiped(&mut self.collected, input);
        Ok(Zeroizing::new(Vec::new()))
    }

    fn finish_len(&self) -> Result<usize> {
        self.result_len(self.collected.len())
    }

    fn finish(&mut self) -> Result<Zeroizing<Vec<u8>>> {
        let collected = std::mem::take(&mut self.collected);
        self.process(&collected)
    }
}
