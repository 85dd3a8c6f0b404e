//! Bringing keys from other software tokens into ferrohsm tokens.
//!
//! `softhsm`: SoftHSMv2 2.x token directories (file backend), read-only, copied object by
//! object through the same checks as C_CreateObject (`ferrohsm-util migrate-softhsm`).

pub mod softhsm;
