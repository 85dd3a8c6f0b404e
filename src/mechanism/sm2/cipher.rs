//! `CKM_SM2_RAW` and `CKM_SM2_CIPHER_DER`: SM2 encryption with the public key, decryption
//! with the private key, single- and multi-part (update buffers, finish runs: SM2 cannot
//! stream because C3 covers the whole plaintext and C1 comes first).

use super::format::FormatCode;
use super::keys::{private_key, public_key};
use super::{info, CIPHER_FLAGS};
use crate::crypto::sm2::{
    ciphertext_len_bound, plaintext_len, plaintext_len_bound, CiphertextForm, Sm2PrivateKey,
    Sm2PublicKey,
};
use crate::error::{Error, Result};
use crate::mechanism::{CipherOperation, LoadedKey, Mechanism, MechanismInfo, MechanismParam};
use cryptoki_sys::CKR_ENCRYPTED_DATA_INVALID;
use std::sync::Arc;
use zeroize::Zeroizing;

pub struct Sm2Cipher {
    /// What Encrypt writes when the format code does not say.
    pub default_form: CiphertextForm,
}

impl Mechanism for Sm2Cipher {
    fn info(&self) -> MechanismInfo {
        info(CIPHER_FLAGS)
    }

    fn encrypt(&self, param: &MechanismParam, key: &LoadedKey) -> Result<Box<dyn CipherOperation>> {
        let form = FormatCode::from_param(param)?.encrypt_form(self.default_form)?;
        Ok(Box::new(Encrypt {
            key: public_key(key)?,
            form,
            buffer: Zeroizing::new(Vec::new()),
        }))
    }

    fn decrypt(&self, param: &MechanismParam, key: &LoadedKey) -> Result<Box<dyn CipherOperation>> {
        let form = FormatCode::from_param(param)?.decrypt_form();
        Ok(Box::new(Decrypt {
            key: private_key(key)?,
            form,
            buffer: Vec::new(),
        }))
    }
}

struct Encrypt {
    key: Arc<Sm2PublicKey>,
    form: CiphertextForm,
    /// Plaintext collected by `update`.
    buffer: Zeroizing<Vec<u8>>,
}

impl CipherOperation for Encrypt {
    fn output_len(&self, input_len: usize) -> Result<usize> {
        Ok(ciphertext_len_bound(input_len, self.form))
    }

    fn run(&mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.key.encrypt(input, self.form).map(Zeroizing::new)
    }

    fn multi_part(&self) -> bool {
        true
    }

    fn update(&mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.buffer.extend_from_slice(input);
        Ok(Zeroizing::new(Vec::new()))
    }

    fn finish_len(&self) -> Result<usize> {
        Ok(ciphertext_len_bound(self.buffer.len(), self.form))
    }

    fn finish(&mut self) -> Result<Zeroizing<Vec<u8>>> {
        let plaintext = std::mem::take(&mut self.buffer);
        self.key.encrypt(&plaintext, self.form).map(Zeroizing::new)
    }
}

struct Decrypt {
    key: Arc<Sm2PrivateKey>,
    /// `None`: auto-detection.
    form: Option<CiphertextForm>,
    /// Ciphertext collected by `update`.
    buffer: Vec<u8>,
}

impl Decrypt {
    /// |C2| read from the ciphertext itself, which also checks everything about it that does
    /// not depend on the key: its form (length, DER), C1 on the curve, C2 not empty (an
    /// empty key stream is refused by GB/T 32918.4 step B4 whatever the key). A ciphertext
    /// that fails there can never decrypt, so its length query fails with the code the
    /// decryption would give, and the failure ends the operation; answering a length would
    /// leave the operation active for a client that then never makes the real call.
    fn exact_len(&self, input: &[u8]) -> Result<usize> {
        match plaintext_len(input, self.form)? {
            0 => Err(Error::with(
                CKR_ENCRYPTED_DATA_INVALID,
                "SM2 ciphertext without C2",
            )),
            n => Ok(n),
        }
    }
}

impl CipherOperation for Decrypt {
    fn output_len(&self, input_len: usize) -> Result<usize> {
        Ok(plaintext_len_bound(input_len, self.form))
    }

    fn output_len_for(&self, input: &[u8]) -> Result<usize> {
        self.exact_len(input)
    }

    fn run(&mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.key.decrypt(input, self.form)
    }

    fn multi_part(&self) -> bool {
        true
    }

    fn update(&mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.buffer.extend_from_slice(input);
        Ok(Zeroizing::new(Vec::new()))
    }

    fn finish_len(&self) -> Result<usize> {
        self.exact_len(&self.buffer)
    }

    fn finish(&mut self) -> Result<Zeroizing<Vec<u8>>> {
        let ciphertext = std::mem::take(&mut self.buffer);
        self.key.decrypt(&ciphertext, self.form)
    }
}
