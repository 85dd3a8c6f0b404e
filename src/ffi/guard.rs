//! The one guard every exported function goes through: panics are caught (a panic must
//! never unwind into a C host), the library must be initialised in this process, and the
//! name and return value are traced.

use crate::error::{Error, Result};
use crate::state::{self, Library};
use cryptoki_sys::*;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// Runs `f` with panics turned into CKR_GENERAL_ERROR.
pub fn call(name: &'static str, f: impl FnOnce() -> Result<()>) -> CK_RV {
    crate::call_id::begin();
    let rv = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => CKR_OK,
        Ok(Err(e)) => {
            crate::log::call_failed(name, &e);
            e.rv
        }
        Err(_) => {
            crate::log::call_failed(
                name,
                &Error::with(CKR_GENERAL_ERROR, "internal panic caught at the C boundary"),
            );
            CKR_GENERAL_ERROR
        }
    };
    crate::log::trace_call(name, rv);
    rv
}

/// As `call`, for functions that need an initialised library.
pub fn with_library(name: &'static str, f: impl FnOnce(&Arc<Library>) -> Result<()>) -> CK_RV {
    call(name, || f(&state::library()?))
}
