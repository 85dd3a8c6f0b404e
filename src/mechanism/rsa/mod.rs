//! RSA mechanisms (placeholder until the RSA family lands).

use super::Mechanism;
use cryptoki_sys::*;

pub fn mechanisms() -> Vec<(CK_MECHANISM_TYPE, Box<dyn Mechanism>)> {
    Vec::new()
}

/// Parses an RSA public or private key object (placeholder).
pub fn load_key(_attrs: &crate::object::Attributes) -> crate::error::Result<super::LoadedKey> {
    crate::error::fail(CKR_KEY_TYPE_INCONSISTENT)
}
