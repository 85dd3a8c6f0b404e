//! The C boundary and the only home of `unsafe`. Each exported `C_*` function is one call
//! into `guard`, which catches panics and checks initialisation, with `args` converting the
//! raw pointers; the work happens in safe Rust under `crate::api`.
#![allow(non_snake_case, clippy::missing_safety_doc)]

pub mod args;
pub mod guard;
pub mod process;
pub mod tables;

mod crypto;
mod general;
mod keymgmt;
mod object;
mod session;
mod slot_token;

pub use crypto::*;
pub use general::*;
pub use keymgmt::*;
pub use object::*;
pub use session::*;
pub use slot_token::*;
