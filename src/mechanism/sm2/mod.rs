//! SM2 mechanisms (placeholder until the SM2 family lands).

use super::Mechanism;
use cryptoki_sys::*;

pub fn mechanisms() -> Vec<(CK_MECHANISM_TYPE, Box<dyn Mechanism>)> {
    Vec::new()
}

/// Parses an SM2 public or private key object (placeholder).
pub fn load_key(_attrs: &crate::object::Attributes) -> crate::error::Result<super::LoadedKey> {
    crate::error::fail(CKR_KEY_TYPE_INCONSISTENT)
}
