//! RSA mechanisms (placeholder until the RSA family lands).

use super::Mechanism;
use cryptoki_sys::*;

pub fn mechanisms() -> Vec<(CK_MECHANISM_TYPE, Box<dyn Mechanism>)> {
    Vec::new()
}
