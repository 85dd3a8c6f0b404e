//! Key ids the KMS way: a random UUID (RFC 9562 version 4), stored as its 16 bytes in
//! `CKA_ID` and shown as the hyphenated text.

use crate::error::{Error, Result};
use cryptoki_sys::*;

pub const KEY_ID_LEN: usize = 16;

/// A new random key id.
pub fn new_key_id() -> Result<[u8; KEY_ID_LEN]> {
    let mut id = [0u8; KEY_ID_LEN];
    crate::crypto::random_bytes(&mut id)?;
    id[6] = (id[6] & 0x0f) | 0x40; // version 4
    id[8] = (id[8] & 0x3f) | 0x80; // RFC variant
    Ok(id)
}

/// The UUID text of a key id (or the hex of a `CKA_ID` that is not 16 bytes).
pub fn format_key_id(id: &[u8]) -> String {
    if id.len() != KEY_ID_LEN {
        return hex::encode(id);
    }
    let h = hex::encode(id);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// The bytes of a key id given as UUID text; `None` when `text` is no UUID.
pub fn parse_key_id(text: &str) -> Option<Vec<u8>> {
    let groups: Vec<&str> = text.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    if lengths != [8, 4, 4, 4, 12] {
        return None;
    }
    hex::decode(groups.concat()).ok()
}

/// `CKR_ARGUMENTS_BAD` naming what was asked for.
pub fn no_such_key(key: &str) -> Error {
    Error::with(
        CKR_ARGUMENTS_BAD,
        format!("no key with alias or key id {key:?} (ferrohsm-util list-keys shows them)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_are_version_4_uuids_and_read_back() {
        let id = new_key_id().unwrap();
        let text = format_key_id(&id);
        assert_eq!(text.len(), 36);
        assert_eq!(&text[14..15], "4");
        assert_eq!(parse_key_id(&text).unwrap(), id);
        assert_eq!(parse_key_id("my-alias"), None);
        assert_eq!(format_key_id(&[0xab, 0x01]), "ab01");
    }
}
