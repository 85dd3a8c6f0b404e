//! The PKCS#11 functions in safe Rust, one file per function group. The C boundary
//! (`ffi/`) converts arguments and calls these; everything here returns `Result`.

pub mod crypto;
pub mod derive;
pub mod general;
pub mod key_size;
pub mod keygen;
pub mod object;
pub mod session;
pub mod wrap;
