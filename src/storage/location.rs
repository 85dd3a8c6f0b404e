//! Where a configuration's tokens live: a directory of SQLite files (`directory`), or a
//! PostgreSQL database shared by several hosts (`postgres`). `Slots` lists, creates,
//! deletes and restores tokens through this interface and opens each token's
//! `TokenStore` from it; it never knows which backend it has.

use super::TokenStore;
use crate::error::Result;
use crate::storage::StoreImage;
use cryptoki_sys::CK_SLOT_ID;
use std::collections::BTreeSet;
use std::path::Path;

/// Held while a token is created, deleted or restored: no other process (or host) does any
/// of these at the same time. Released when dropped.
pub type InitLock = Box<dyn Send>;

/// Opens another connection to one token's store (for change checks on other threads).
pub type StoreOpener = Box<dyn Fn() -> Result<Box<dyn TokenStore>> + Send + Sync>;

pub trait TokenLocation: Send + Sync {
    /// The names of the token stores there now (file names, or `slot N` rows).
    fn names(&self) -> Result<BTreeSet<String>>;

    /// The slot id a store's name reserves even when the store cannot be opened (a broken
    /// file's id is never handed out again).
    fn reserved_slot(&self, name: &str) -> Option<CK_SLOT_ID>;

    /// Opens the store of `name`; CKR_TOKEN_NOT_RECOGNIZED (with why) for one that is not
    /// a ferrohsm store of a format this build reads.
    fn open(&self, name: &str) -> Result<Box<dyn TokenStore>>;

    /// More connections to the store of `name` for the change checks of threads that run
    /// side by side (an SQLite check is a read transaction, one at a time per connection);
    /// None where the store's own check costs no I/O.
    fn checker_opener(&self, name: &str) -> Option<StoreOpener>;

    /// The lock of token creation, deletion and restore (see `InitLock`).
    fn lock_init(&self) -> Result<InitLock>;

    /// Stores `image` as a new token in its record's slot, so that other processes see
    /// all of it or nothing (a new token is an image without objects).
    fn install(&self, image: &StoreImage) -> Result<()>;

    /// The whole store of `name` as stored, from one consistent snapshot (other processes
    /// go on using it meanwhile).
    fn image(&self, name: &str) -> Result<StoreImage>;

    /// Removes the store of `slot` (every object, PIN record and audit entry); returns
    /// where it was, for messages.
    fn delete(&self, slot: CK_SLOT_ID) -> Result<String>;

    /// Whether a store (even a broken one) uses `slot`.
    fn slot_in_use(&self, slot: CK_SLOT_ID) -> bool;

    /// Puts the backup file `backup` (see `TokenStore::backup_to`) in place as `slot`:
    /// over the live store of that slot when `live`, else as a new store. One write
    /// transaction, so processes using the store see the old or the restored token.
    fn restore(&self, backup: &Path, slot: CK_SLOT_ID, live: bool) -> Result<()>;

    /// Where the tokens are, for messages (a directory, a database without password).
    fn describe(&self) -> String;
}
