//! CKM_AES_ECB_ENCRYPT_DATA and CKM_AES_CBC_ENCRYPT_DATA (mechanisms spec §2.15): the new
//! key's value is the base key's encryption of the parameter's data, which must be whole
//! blocks (there is no padding).

use crate::crypto::symmetric::block::{self, Direction, Mode};
use crate::crypto::symmetric::{BlockCipher, BLOCK_LEN};
use crate::error::{Error, Result};
use crate::mechanism::MechanismParam;
use cryptoki_sys::*;
use zeroize::Zeroizing;

pub fn encrypt_data(
    cipher: BlockCipher,
    cbc: bool,
    param: &MechanismParam,
    key: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let invalid = |why| Error::with(CKR_MECHANISM_PARAM_INVALID, why);
    let MechanismParam::DeriveData { iv, data } = param else {
        return Err(invalid("needs the derivation data parameter"));
    };
    let mode = match (cbc, iv) {
        (false, None) => Mode::Ecb,
        (true, Some(iv)) => Mode::Cbc { iv: *iv },
        _ => return Err(invalid("parameter of the other mode")),
    };
    if data.is_empty() || !data.len().is_multiple_of(BLOCK_LEN) {
        return Err(invalid("derivation data must be whole blocks"));
    }
    let mut value = Zeroizing::new(data.clone());
    block::stream(cipher, key, mode, Direction::Encrypt)?.apply(&mut value);
    Ok(value)
}
