//! The persistent token store: one SQLite database per token in `token_dir`, or the
//! tokens of a PostgreSQL database (`store = "postgresql://..."`).
//!
//! `TokenStore` is the small interface the token needs; `sqlite` (one SQLite file per
//! token, WAL mode, every change one transaction) and `postgres` implement it, `location`
//! is where a configuration's tokens are listed and created, `rules` what every backend
//! decides alike, `rotation` what a token key rotation computes, and `seal` holds the
//! PIN-derived sealing. The store never sees a PIN, and a backend never a plaintext secret:
//! the token seals secret attribute values before they reach it and wraps the token key
//! under PIN-derived keys. The one exception is a token key rotation, where `rotation`,
//! given both token keys by the token, opens and re-seals each value inside the backend's
//! transaction (zeroized at once).
//!
//! Change detection: every object write bumps the token's `change_counter` and stamps the
//! object row with it (`generation`). A reader first asks `data_changed()` (SQLite's
//! `PRAGMA data_version`: did another connection commit?), then compares the counter, then
//! diffs `(id, generation)` pairs, so a refresh loads only what other processes changed.

pub mod copy;
pub mod directory;
mod escrow;
pub mod files;
pub mod integrity;
pub mod location;
pub mod postgres;
pub mod rotation;
mod rules;
pub mod seal;
pub mod sqlite;

use crate::config::{Config, StoreConfig};
use crate::error::Result;
use crate::token::UserType;
use cryptoki_sys::*;
use integrity::{MacKey, Tag};
pub use seal::{KdfParams, PublicObjectKey};

/// The token location `config` names: `token_dir` (created on first use), or a PostgreSQL
/// database (its schema created or upgraded on first use).
pub fn open_location(config: &Config) -> Result<Box<dyn location::TokenLocation>> {
    open_store(&config.store, &config.token_dir)
}

/// The token location of `store`, `token_dir` for a directory.
pub fn open_store(
    store: &StoreConfig,
    token_dir: &std::path::Path,
) -> Result<Box<dyn location::TokenLocation>> {
    Ok(match store {
        StoreConfig::Directory => Box::new(directory::TokenDirectory::open(token_dir)?),
        StoreConfig::Postgres(pg) => Box::new(postgres::PgLocation::open(pg)?),
    })
}

/// The on-disk format this build writes and reads. A newer store is refused with a clear
/// message rather than misread; an older one is upgraded in place when opened (see
/// `sqlite::upgrade`). Format 2 added the public-object key and values sealed under it;
/// format 3 the integrity tags of objects and token record (see `integrity`), and the PIN
/// records' flags and tamper-evident retry counters; format 4 the audit log (see `crate::audit`);
/// format 5 PIN records of the escrow form (`PIN_ESCROW`), which an older build could not
/// open (no table changes: a format-4 store is format 5 as it is).
pub const FORMAT_VERSION: i64 = 5;

/// One stored audit entry: its sequence number, its text (JSON) and the hash chaining it to
/// the entry before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRow {
    pub seq: i64,
    pub entry: String,
    pub chain: Vec<u8>,
}

/// A whole token store as stored (sealed values, tags and counters untouched): what
/// backups, restores and copies carry from one backend to another. The tags stay valid:
/// none covers the slot id, the change counter or the backend.
#[derive(Clone, Debug)]
pub struct StoreImage {
    pub record: TokenRecord,
    pub objects: Vec<StoredObject>,
    pub audit: Vec<AuditRow>,
}

impl StoreImage {
    /// A new token: its record, no objects, an empty audit log.
    pub fn new_token(record: TokenRecord) -> StoreImage {
        StoreImage {
            record,
            objects: Vec::new(),
            audit: Vec::new(),
        }
    }
}

/// A stored object's identity inside its token's store (random, positive). Sealed values
/// are bound to it, so it never changes.
pub type ObjectId = i64;

/// `PinRecord::flags`: the PIN key was derived with the host secret.
pub const PIN_HOST_SECRET: u32 = 1;
/// `PinRecord::flags`: the record's counter carries a MAC (`counter_mac`) that a correct
/// login checks. Records written before format 3 lack it until their first login.
pub const PIN_COUNTER_MAC: u32 = 2;
/// `PinRecord::flags`: `wrapped_key` is the token key sealed to the record's escrow key
/// pair (`escrow`, format 5), so a rotation can re-wrap the record without its PIN.
/// Records written before format 5 gain it at their next correct login.
pub const PIN_ESCROW: u32 = 4;

/// One wrapped copy of the token key, with what is needed to re-derive the PIN key, and
/// the PIN's retry counter.
///
/// The counter (see `Token::check_pin`): every attempt is counted in `attempts` (never
/// lowered while the record lives) and in `failures` before its PIN is judged; a success
/// records its attempt's number in `success_at` and MACs it under the token key. So
/// `failures == attempts - success_at` always holds, and an edit of the file that breaks
/// it, or that moves `success_at` without the token key, is seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinRecord {
    pub kdf: KdfParams,
    pub salt: Vec<u8>,
    /// Bound into `wrapped_key`'s associated data (see `seal::wrap_token_key`).
    pub flags: u32,
    pub wrapped_key: Vec<u8>,
    /// Attempts since the last success (wrong ones, and ones still being judged),
    /// persisted so a restart does not reset them.
    pub failures: u32,
    /// Every attempt on this record.
    pub attempts: u64,
    /// `attempts` as it was right after the last successful attempt counted.
    pub success_at: u64,
    /// HMAC of `success_at` under the token key (`seal::counter_mac`); empty before format 3.
    pub counter_mac: Vec<u8>,
}

impl PinRecord {
    /// Whether the counter fields contradict each other (someone edited them).
    pub fn counter_inconsistent(&self) -> bool {
        self.attempts.checked_sub(self.success_at) != Some(u64::from(self.failures))
    }
}

/// The result of counting a PIN attempt before it is judged.
#[derive(Debug)]
pub enum PinAttempt {
    /// Counted; the record as it now is (its `attempts` is this attempt's number) and
    /// whether its counter was found inconsistent (then counted from the larger reading).
    Counted { record: PinRecord, tampered: bool },
    /// The PIN is locked; nothing was written.
    Locked(PinRecord),
    /// No such PIN record.
    Missing,
}

/// The token row and its PIN records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    pub slot_id: CK_SLOT_ID,
    pub label: String,
    pub serial: String,
    /// Changes at every (re-)initialisation and token key rotation: a process holding the
    /// token key of an older epoch must not seal anything with it.
    pub epoch: u64,
    pub change_counter: u64,
    pub so_pin: Option<PinRecord>,
    pub user_pin: Option<PinRecord>,
    /// Seals the secret values of public objects; `None` only in the record of a format-1
    /// backup read without upgrading it.
    pub public_key: Option<PublicObjectKey>,
    /// The XOR of the tags of the object set (the private objects), see `integrity`.
    pub object_set: Tag,
    /// The record's tag under the token MAC key; `None` in a store of format 1 or 2 until
    /// the first login after the upgrade computes the tags.
    pub mac: Option<Vec<u8>>,
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
    /// The row's tag and the key it is under (`Seal::Token`: the token MAC key, `Public`:
    /// the public MAC key); `None` for a row from before format 3 not yet tagged.
    pub mac: Option<(Seal, Vec<u8>)>,
    /// Whether the row counts in the record's object-set digest (a private object).
    pub in_set: bool,
}

impl StoredObject {
    /// A CK_BBOOL attribute as stored (clear values only; sealed ones are never flags).
    pub fn flag(&self, ty: CK_ATTRIBUTE_TYPE, default: bool) -> bool {
        match self.attributes.iter().find(|(t, _)| *t == ty) {
            Some((_, StoredValue::Clear(v))) => v.first().is_some_and(|b| *b != 0),
            _ => default,
        }
    }
}

/// The keys a write tags an object with: the token MAC key while someone is logged in
/// (required for an object of the set), else the public MAC key.
pub struct Signer<'a> {
    pub token: Option<&'a MacKey>,
    pub public: &'a MacKey,
    pub in_set: bool,
}

/// What a token needs from its persistent store. Every method is one transaction; the
/// writes that touch sealed data take the epoch the caller's token key belongs to and fail
/// with CKR_DEVICE_REMOVED when the token was re-initialised (or its key rotated) meanwhile.
pub trait TokenStore: Send {
    fn load_token(&mut self) -> Result<TokenRecord>;

    /// True when another connection (another process, or another `Slots` in this one)
    /// committed since the last call; always true on the first call.
    fn data_changed(&mut self) -> Result<bool>;

    /// Counts an attempt on `user`'s PIN in one write transaction, unless `limit`
    /// failures are counted already (a store write that fails is an error: the attempt
    /// must then not be judged). Failures are read as the larger of `failures` and
    /// `attempts - success_at`, so resetting one of them in the file gains nothing.
    fn count_pin_attempt(&mut self, user: UserType, limit: u32) -> Result<PinAttempt>;

    /// Attempt number `attempt` on the record with `salt` succeeded: `success_at` becomes
    /// `attempt` with its MAC, and `failures` the attempts counted after it (still being
    /// judged). Not under the record's tag (see `rewrap_pin` for what is). CKR_PIN_INCORRECT
    /// when the record was replaced meanwhile, CKR_DEVICE_ERROR when its attempt count went
    /// backwards.
    fn pin_succeeded(
        &mut self,
        user: UserType,
        salt: &[u8],
        attempt: u64,
        counter_mac: &[u8],
    ) -> Result<()>;

    /// Replaces `user`'s PIN record (its failure counter with it) and re-tags the record,
    /// whose current tag must hold under `key`.
    fn store_pin(
        &mut self,
        epoch: u64,
        user: UserType,
        pin: &PinRecord,
        key: &MacKey,
    ) -> Result<()>;

    /// Replaces only `user`'s flags and wrapped token key (same PIN, salt and counter; a
    /// record from before format 3 gains its flags) and re-tags the record, whose current
    /// tag must hold under `key`.
    fn rewrap_pin(
        &mut self,
        epoch: u64,
        user: UserType,
        flags: u32,
        wrapped: &[u8],
        key: &MacKey,
    ) -> Result<()>;

    /// The upgrade of a store from before format 3, at the first login: tags every object
    /// under `key` (`in_set` says which belong to the object set) and then the record.
    fn tag_all(
        &mut self,
        epoch: u64,
        key: &MacKey,
        in_set: &dyn Fn(&StoredObject) -> bool,
    ) -> Result<()>;

    /// C_InitToken on an initialised token: every object and the user PIN go, the label,
    /// epoch, SO PIN record and public-object key are replaced, the record tagged under
    /// `key` (the new token key's).
    fn reinitialise(
        &mut self,
        label: &str,
        epoch: u64,
        so_pin: &PinRecord,
        public_key: &PublicObjectKey,
        key: &MacKey,
    ) -> Result<()>;

    /// `Token::rotate_token_key`: in one transaction (whose epoch must be
    /// `rotation.old_epoch`, and whose record and objects must hold their tags), every
    /// value sealed under the old token key is re-sealed under the new one, every object
    /// re-tagged at the new epoch, the object-set digest recomputed, both PIN records
    /// re-wrapped and the record re-tagged under the new key (see `rotation`). Any failure
    /// leaves the store as it was.
    fn rotate_token_key(&mut self, rotation: &rotation::Rotation<'_>) -> Result<()>;

    /// Every stored object's id and generation, for a cheap diff against the index.
    fn object_generations(&mut self) -> Result<Vec<(ObjectId, u64)>>;

    /// The given objects (those that still exist), or every object for `None`.
    fn load_objects(&mut self, ids: Option<&[ObjectId]>) -> Result<Vec<StoredObject>>;

    /// Inserts or replaces an object, tagged as `signer` says; when the object set
    /// changes, the record's digest and tag follow in the same transaction (its current
    /// tag must hold). Returns the stored row.
    fn put_object(
        &mut self,
        epoch: u64,
        id: ObjectId,
        attributes: &[(CK_ATTRIBUTE_TYPE, StoredValue)],
        signer: &Signer<'_>,
    ) -> Result<StoredObject>;

    /// Deletes an object; with `key`, a member of the object set leaves the record's
    /// digest (re-tagged) in the same transaction (the caller passes none for a row found
    /// not to be in the set).
    fn delete_object(&mut self, epoch: u64, id: ObjectId, key: Option<&MacKey>) -> Result<()>;

    /// An online, consistent copy of the store at `dest` (a new file).
    fn backup_to(&mut self, dest: &std::path::Path) -> Result<()>;

    /// Appends `entries` to the audit log, in order, in one transaction: each one's chain
    /// value is `crate::audit::chain(previous chain, seq, entry)`.
    fn append_audit(&mut self, entries: &[String]) -> Result<()>;

    /// The whole audit log, oldest first.
    fn audit_log(&mut self) -> Result<Vec<AuditRow>>;
}
