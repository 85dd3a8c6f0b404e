//! The persistent token store: one database per token in `token_dir`.
//!
//! `TokenStore` is the small interface the token needs; `sqlite` implements it (one SQLite
//! file per token, WAL mode, every change one transaction) and `seal` holds the PIN-derived
//! sealing. The store never sees a PIN or a plaintext secret: the token seals secret
//! attribute values before they reach it and wraps the token key under PIN-derived keys.
//!
//! Change detection: every object write bumps the token's `change_counter` and stamps the
//! object row with it (`generation`). A reader first asks `data_changed()` (SQLite's
//! `PRAGMA data_version`: did another connection commit?), then compares the counter, then
//! diffs `(id, generation)` pairs, so a refresh loads only what other processes changed.

pub mod seal;
pub mod sqlite;

use crate::error::Result;
use crate::token::UserType;
use cryptoki_sys::*;
pub use seal::{KdfParams, PublicObjectKey};

/// The on-disk format this build writes and reads. A newer store is refused with a clear
/// message rather than misread; an older one is upgraded in place when opened (see
/// `sqlite::upgrade`). Format 2 added the public-object key and values sealed under it.
pub const FORMAT_VERSION: i64 = 2;

/// A stored object's identity inside its token's store (random, positive). Sealed values
/// are bound to it, so it never changes.
pub type ObjectId = i64;

/// One wrapped copy of the token key, with what is needed to re-derive the PIN key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinRecord {
    pub kdf: KdfParams,
    pub salt: Vec<u8>,
    pub wrapped_key: Vec<u8>,
    /// Consecutive wrong PINs, persisted so a restart does not reset them.
    pub failures: u32,
}

/// The token row and its PIN records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    pub slot_id: CK_SLOT_ID,
    pub label: String,
    pub serial: String,
    /// Changes at every (re-)initialisation: a process holding the token key of an older
    /// epoch must not seal anything with it.
    pub epoch: u64,
    pub change_counter: u64,
    pub so_pin: Option<PinRecord>,
    pub user_pin: Option<PinRecord>,
    /// Seals the secret values of public objects; `None` only in the record of a format-1
    /// backup read without upgrading it.
    pub public_key: Option<PublicObjectKey>,
}

impl TokenRecord {
    pub fn pin(&self, user: UserType) -> Option<&PinRecord> {
        match user {
            UserType::So => self.so_pin.as_ref(),
            UserType::User => self.user_pin.as_ref(),
        }
    }
}

/// The key a stored value is sealed under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seal {
    /// The token key, wrapped under the PINs: the secrets of private objects (and of
    /// public objects stored before format 2).
    Token,
    /// The token's public-object key, kept in clear in the token record: the secrets of
    /// public objects (CKA_PRIVATE false), which anyone may use without login.
    Public,
}

/// An attribute value as stored: clear (public) or sealed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoredValue {
    Clear(Vec<u8>),
    Sealed(Seal, Vec<u8>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredObject {
    pub id: ObjectId,
    /// The change counter of the transaction that last wrote the object.
    pub generation: u64,
    pub attributes: Vec<(CK_ATTRIBUTE_TYPE, StoredValue)>,
}

/// What a token needs from its persistent store. Every method is one transaction; the
/// writes that touch sealed data take the epoch the caller's token key belongs to and fail
/// with CKR_DEVICE_REMOVED when the token was re-initialised meanwhile.
pub trait TokenStore: Send {
    fn load_token(&mut self) -> Result<TokenRecord>;

    /// True when another connection (another process, or another `Slots` in this one)
    /// committed since the last call; always true on the first call.
    fn data_changed(&mut self) -> Result<bool>;

    /// Adds one wrong PIN to the persisted counter and returns the new count.
    fn record_pin_failure(&mut self, user: UserType) -> Result<u32>;

    fn reset_pin_failures(&mut self, user: UserType) -> Result<()>;

    /// Replaces `user`'s PIN record (its failure counter with it).
    fn store_pin(&mut self, epoch: u64, user: UserType, pin: &PinRecord) -> Result<()>;

    /// C_InitToken on an initialised token: every object and the user PIN go, the label,
    /// epoch, SO PIN record and public-object key are replaced.
    fn reinitialise(
        &mut self,
        label: &str,
        epoch: u64,
        so_pin: &PinRecord,
        public_key: &PublicObjectKey,
    ) -> Result<()>;

    /// Every stored object's id and generation, for a cheap diff against the index.
    fn object_generations(&mut self) -> Result<Vec<(ObjectId, u64)>>;

    /// The given objects (those that still exist), or every object for `None`.
    fn load_objects(&mut self, ids: Option<&[ObjectId]>) -> Result<Vec<StoredObject>>;

    /// Inserts or replaces an object; returns its new generation.
    fn put_object(
        &mut self,
        epoch: u64,
        id: ObjectId,
        attributes: &[(CK_ATTRIBUTE_TYPE, StoredValue)],
    ) -> Result<u64>;

    fn delete_object(&mut self, epoch: u64, id: ObjectId) -> Result<()>;

    /// An online, consistent copy of the store at `dest` (a new file).
    fn backup_to(&mut self, dest: &std::path::Path) -> Result<()>;
}
