//! The shared harness of ferrohsm's fuzz targets (see run.sh).
//!
//! - `fixture`: one token per process in a temp dir, set up once through the exported C_*
//!   functions (the library is linked as an rlib), with baseline keys and sample
//!   ciphertexts, signatures and wrapped keys to mutate;
//! - `input`: structured inputs that `arbitrary` builds from libFuzzer's bytes (templates,
//!   mechanisms with their parameters) and their raw C form;
//! - `oracle`: what every call must satisfy whatever its input (no panic, no internal error,
//!   the output-buffer protocol).
//!
//! `unsafe` is confined to this crate's raw calls into the C ABI, which is what a C caller
//! does; the library itself keeps its rule (unsafe only in src/ffi/).
#![allow(clippy::missing_safety_doc)]

pub mod fixture;
pub mod input;
pub mod oracle;

pub use cryptoki_sys::*;
pub use fixture::{fixture, ExecSession, Fixture};
pub use input::{Attr, AttrType, AttrValue, KeySel, MechSel, Param, RawMechanism, RawTemplate};
pub use oracle::{check, output, OutMode};
