//! The slot list: one slot per initialised token in `token_dir`, plus one spare
//! uninitialised slot listed last. Slot ids are stable across processes and < 2^31.
//!
//! API SKELETON: bodies are filled in by the token/store work.

use crate::config::Config;
use crate::error::Result;
use crate::token::{Token, TokenInfo};
use cryptoki_sys::*;
use std::sync::Arc;

pub struct Slots {}

impl Slots {
    /// Opens every token store in `config.token_dir` (creating the directory on first use).
    /// A broken store is reported once on stderr and never stops the others.
    pub fn open(_config: &Config) -> Result<Slots> {
        todo!()
    }

    /// Initialised tokens first (by slot id), the spare slot last.
    pub fn slot_ids(&self) -> Vec<CK_SLOT_ID> {
        todo!()
    }

    /// Picks up tokens that other processes initialised since the last call.
    pub fn refresh(&self) -> Result<()> {
        todo!()
    }

    /// `Ok(None)` for the spare slot; CKR_SLOT_ID_INVALID for an unknown id.
    pub fn token(&self, _slot: CK_SLOT_ID) -> Result<Option<Arc<Token>>> {
        todo!()
    }

    /// Token info for any slot; the spare slot's token is not initialised.
    pub fn token_info(&self, _slot: CK_SLOT_ID) -> Result<TokenInfo> {
        todo!()
    }

    /// C_InitToken on the spare slot (a new token) or on a token's slot (re-initialise:
    /// the SO PIN must match, every object is wiped). Open sessions are the caller's check.
    pub fn init_token(&self, _slot: CK_SLOT_ID, _so_pin: &[u8], _label: &str) -> Result<()> {
        todo!()
    }
}
