//! ferrohsm: a software HSM shipped as a PKCS#11 module.
//!
//! Module map (see ../shared/design/architecture.md):
//! - `ffi`: the C boundary, the only home of `unsafe`; `api`: the functions in safe Rust;
//! - `state`, `slot`, `token`, `session`: the library singleton and its runtime state;
//! - `object`: attributes and the policy table; `mechanism`: the CKM_* registry;
//! - `crypto`: adapters over the crypto crates; `storage`: the persistent token store;
//! - `kms`: keys managed the KMS way (usages, aliases, states), for `ferrohsm-util`.

pub mod api;
pub mod audit;
pub mod call_id;
pub mod config;
pub mod crypto;
pub mod error;
pub mod ffi;
pub mod kms;
pub mod log;
pub mod mechanism;
pub mod memory;
pub mod migrate;
pub mod object;
pub mod session;
pub mod slot;
pub mod state;
pub mod storage;
pub mod token;
pub mod vendor;
