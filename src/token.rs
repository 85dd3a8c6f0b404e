//! One initialised token: its info, login state, PIN retry counters, and its objects
//! (persistent token objects and this process's session objects) with the in-memory index.
//!
//! API SKELETON: bodies are filled in by the token/store work.

use crate::error::Result;
use crate::mechanism::LoadedKey;
use crate::object::Attributes;
use cryptoki_sys::*;
use std::sync::Arc;

/// Who is logged in to a token (per process, shared by all its sessions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserType {
    So,
    User,
}

/// `CK_TOKEN_INFO` in safe form; strings are unpadded.
#[derive(Clone, Debug)]
pub struct TokenInfo {
    pub label: String,
    pub serial: String,
    pub flags: CK_FLAGS,
}

/// An object as the token holds it.
pub struct Object {
    pub handle: CK_OBJECT_HANDLE,
    pub attrs: Attributes,
    /// `Some(session)` for a session object, owned by that session.
    pub session: Option<CK_SESSION_HANDLE>,
}

pub struct Token {}

impl Token {
    pub fn slot_id(&self) -> CK_SLOT_ID {
        todo!()
    }

    pub fn info(&self) -> TokenInfo {
        todo!()
    }

    /// Verifies the PIN (Argon2id), updates the retry counters, unwraps the token key.
    /// Codes: CKR_PIN_INCORRECT, CKR_PIN_LOCKED, CKR_USER_PIN_NOT_INITIALIZED,
    /// CKR_USER_ALREADY_LOGGED_IN, CKR_USER_ANOTHER_ALREADY_LOGGED_IN, CKR_PIN_LEN_RANGE.
    pub fn login(&self, _user: UserType, _pin: &[u8]) -> Result<()> {
        todo!()
    }

    /// Verifies the PIN of whoever is logged in again (CKU_CONTEXT_SPECIFIC).
    pub fn verify_pin(&self, _user: UserType, _pin: &[u8]) -> Result<()> {
        todo!()
    }

    /// CKR_USER_NOT_LOGGED_IN when nobody is. Drops the token key and loaded private keys.
    pub fn logout(&self) -> Result<()> {
        todo!()
    }

    pub fn logged_in(&self) -> Option<UserType> {
        todo!()
    }

    /// C_InitPIN: the SO sets a new user PIN (resets the user's retry counter).
    pub fn init_pin(&self, _pin: &[u8]) -> Result<()> {
        todo!()
    }

    /// C_SetPIN for `user` (the logged-in user, or the normal user when nobody is).
    pub fn set_pin(&self, _user: UserType, _old: &[u8], _new: &[u8]) -> Result<()> {
        todo!()
    }

    /// Stores a complete, policy-checked object: persisted (secrets sealed) when CKA_TOKEN
    /// is true, else kept in memory for `session`.
    pub fn create_object(
        &self,
        _attrs: Attributes,
        _session: CK_SESSION_HANDLE,
    ) -> Result<CK_OBJECT_HANDLE> {
        todo!()
    }

    /// The object if it exists and is visible (private objects only when logged in);
    /// otherwise CKR_OBJECT_HANDLE_INVALID.
    pub fn object(&self, _handle: CK_OBJECT_HANDLE) -> Result<Arc<Object>> {
        todo!()
    }

    /// Replaces the object's attributes with `attrs` (already policy-checked).
    pub fn update_object(&self, _handle: CK_OBJECT_HANDLE, _attrs: Attributes) -> Result<()> {
        todo!()
    }

    pub fn destroy_object(&self, _handle: CK_OBJECT_HANDLE) -> Result<()> {
        todo!()
    }

    /// Handles of the visible objects matching every attribute of `template`, from the
    /// in-memory index (never a disk scan, never a decryption).
    pub fn find(&self, _template: &Attributes) -> Result<Vec<CK_OBJECT_HANDLE>> {
        todo!()
    }

    /// Drops the session objects of a closed session.
    pub fn close_session(&self, _session: CK_SESSION_HANDLE) {
        todo!()
    }

    /// The key parsed once per login and shared; CKR_KEY_HANDLE_INVALID when `handle`
    /// names no visible key, CKR_USER_NOT_LOGGED_IN for a private key without login.
    pub fn loaded_key(&self, _handle: CK_OBJECT_HANDLE) -> Result<LoadedKey> {
        todo!()
    }
}
