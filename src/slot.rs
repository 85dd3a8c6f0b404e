//! The slot list: one slot per initialised token in the configured location (a token
//! directory, or a PostgreSQL database: `storage::location`), plus one spare
//! uninitialised slot listed last. Slot ids are stable across processes and hosts and
//! < 2^31.
//!
//! The spare slot's id is one more than the highest id in use (store names included, so a
//! broken store's id is never handed out again), 0 for an empty location. C_InitToken runs
//! under the location's init lock, so two processes never make the same slot.
//!
//! Locks: `Slots` is the registry level of the library's lock order. Its lock is held only
//! to read or update the slot map (the only other lock taken under it is a newly opened
//! token's), never during Argon2: C_InitToken derives keys holding only the location's
//! init lock.

use crate::config::{Config, PinPolicy};
use crate::error::{fail, Error, Result};
use crate::storage::location::{InitLock, TokenLocation};
use crate::storage::sqlite::SqliteStore;
use crate::token::{Token, TokenInfo};
use cryptoki_sys::*;
use parking_lot::RwLock;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

/// Slot ids stay below 2^31: Java clients read them as an int.
const MAX_SLOT_ID: CK_SLOT_ID = (1 << 31) - 1;

/// What we know of one store of the location (by its name).
enum KnownStore {
    Token(CK_SLOT_ID),
    /// Reported once on stderr; its name's slot id (if any) stays reserved.
    Broken(Option<CK_SLOT_ID>),
}

#[derive(Default)]
struct SlotMap {
    tokens: BTreeMap<CK_SLOT_ID, Arc<Token>>,
    stores: HashMap<String, KnownStore>,
}

impl SlotMap {
    fn spare(&self) -> CK_SLOT_ID {
        let highest_store = self.stores.values().filter_map(|f| match f {
            KnownStore::Token(id) => Some(*id),
            KnownStore::Broken(id) => *id,
        });
        let highest = self.tokens.keys().copied().chain(highest_store).max();
        highest.map_or(0, |id| id + 1)
    }
}

pub struct Slots {
    location: Box<dyn TokenLocation>,
    pins: PinPolicy,
    map: RwLock<SlotMap>,
}

impl Slots {
    /// Opens every token store of the configured location (creating a token directory on
    /// first use). A broken store is reported once on stderr and never stops the others.
    pub fn open(config: &Config) -> Result<Slots> {
        Self::open_at(crate::storage::open_location(config)?, config.pin.clone())
    }

    /// The token directory `dir`, with the PIN policy (tests use a cheap Argon2 cost).
    #[cfg(test)]
    pub(crate) fn open_with(dir: &Path, pins: PinPolicy) -> Result<Slots> {
        Self::open_at(
            Box::new(crate::storage::directory::TokenDirectory::open(dir)?),
            pins,
        )
    }

    pub(crate) fn open_at(location: Box<dyn TokenLocation>, pins: PinPolicy) -> Result<Slots> {
        let slots = Slots {
            location,
            pins,
            map: RwLock::new(SlotMap::default()),
        };
        slots.refresh()?;
        Ok(slots)
    }

    /// Where the tokens are (a directory, or a database without its password).
    pub fn location(&self) -> String {
        self.location.describe()
    }

    /// Initialised tokens first (by slot id), the spare slot last.
    pub fn slot_ids(&self) -> Vec<CK_SLOT_ID> {
        let map = self.map.read();
        let mut ids: Vec<_> = map.tokens.keys().copied().collect();
        let spare = map.spare();
        if spare <= MAX_SLOT_ID {
            ids.push(spare);
        }
        ids
    }

    /// Picks up tokens that other processes initialised since the last call. Costs one
    /// directory listing (or one query) when nothing changed.
    pub fn refresh(&self) -> Result<()> {
        let names = self.location.names()?;
        {
            let map = self.map.read();
            if map.stores.len() == names.len() && names.iter().all(|n| map.stores.contains_key(n)) {
                return Ok(());
            }
        }
        let mut map = self.map.write();
        let vanished: Vec<String> = map
            .stores
            .keys()
            .filter(|n| !names.contains(*n))
            .cloned()
            .collect();
        for name in vanished {
            if let Some(KnownStore::Token(slot)) = map.stores.remove(&name) {
                map.tokens.remove(&slot);
            }
        }
        for name in names {
            if map.stores.contains_key(&name) {
                continue;
            }
            let known = match self.open_token(&name, &map) {
                Ok(token) => {
                    let slot = token.slot_id();
                    map.tokens.insert(slot, Arc::new(token));
                    KnownStore::Token(slot)
                }
                Err(e) => {
                    eprintln!("ferrohsm: {}; its token is not listed", e.context);
                    KnownStore::Broken(self.location.reserved_slot(&name))
                }
            };
            map.stores.insert(name, known);
        }
        Ok(())
    }
    /// `Ok(None)` for the spare slot; CKR_SLOT_ID_INVALID for an unknown id.
    pub fn token(&self, slot: CK_SLOT_ID) -> Result<Option<Arc<Token>>> {
        let map = self.map.read();
        if let Some(token) = map.tokens.get(&slot) {
            return Ok(Some(token.clone()));
        }
        if slot == map.spare() && slot <= MAX_SLOT_ID {
            return Ok(None);
        }
        fail(CKR_SLOT_ID_INVALID)
    }

    /// Every open token, if the slot map is free now (None when a lock is held: after
    /// fork() it may belong to a parent thread that does not exist in the child).
    pub fn tokens_now(&self) -> Option<Vec<Arc<Token>>> {
        Some(self.map.try_read()?.tokens.values().cloned().collect())
    }

    /// Token info for any slot; the spare slot's token is not initialised.
    pub fn token_info(&self, slot: CK_SLOT_ID) -> Result<TokenInfo> {
        match self.token(slot)? {
            Some(token) => Ok(token.info()),
            None => Ok(TokenInfo {
                label: String::new(),
                serial: String::new(),
                flags: CKF_RNG | CKF_LOGIN_REQUIRED | CKF_RESTORE_KEY_NOT_NEEDED,
            }),
        }
    }

    /// C_InitToken on the spare slot (a new token) or on a token's slot (re-initialise:
    /// the SO PIN must match, every object is wiped). Open sessions are the caller's check.
    pub fn init_token(&self, slot: CK_SLOT_ID, so_pin: &[u8], label: &str) -> Result<()> {
        let label = label.trim_end_matches(' ');
        let _init_lock = self.lock_init()?;
        // Under the lock the map is current: no other process can add a token now.
        self.refresh()?;
        if let Some(token) = self.token(slot)? {
            return token.reinitialise(so_pin, label);
        }
        let record = Token::new_record(slot, label, so_pin, &self.pins)?;
        self.location
            .install(&crate::storage::StoreImage::new_token(record))?;
        self.refresh()
    }

    /// Removes the token in `slot`: every object, PIN record and audit entry of it; returns
    /// where its store was. Its slot id is not handed out again while a higher one is in
    /// use. Other processes drop the token at their next slot-list refresh; their open
    /// sessions on it then fail.
    pub fn delete_token(&self, slot: CK_SLOT_ID) -> Result<String> {
        let _init_lock = self.lock_init()?;
        self.refresh()?;
        if self.token(slot)?.is_none() {
            return Err(Error::with(
                CKR_TOKEN_NOT_RECOGNIZED,
                format!("slot {slot} holds no initialised token"),
            ));
        }
        let place = self.location.delete(slot)?;
        self.refresh()?;
        Ok(place)
    }

    /// Puts a backup made by `Token::backup_to` back into the location; returns its slot
    /// id. Its serial, label, PINs and objects are the backup's. A live token with the same
    /// serial is refused unless `force`: then its store is overwritten in place (one write
    /// transaction, so processes using it see the old or the restored token). Else the
    /// backup's slot id is used when no store has it, and the spare slot's otherwise.
    pub fn restore(&self, backup: &Path, force: bool) -> Result<CK_SLOT_ID> {
        let record = SqliteStore::read_backup(backup)?;
        let _init_lock = self.lock_init()?;
        self.refresh()?;
        let (same_serial, target) = {
            let map = self.map.read();
            let same_serial = map
                .tokens
                .values()
                .find(|t| t.info().serial == record.serial)
                .map(|t| t.slot_id());
            let taken = map.tokens.contains_key(&record.slot_id)
                || map.stores.values().any(|f| match f {
                    KnownStore::Token(id) => *id == record.slot_id,
                    KnownStore::Broken(id) => *id == Some(record.slot_id),
                })
                || self.location.slot_in_use(record.slot_id);
            let target = if taken || record.slot_id > MAX_SLOT_ID {
                map.spare()
            } else {
                record.slot_id
            };
            (same_serial, target)
        };
        if let Some(live) = same_serial {
            if !force {
                return Err(Error::with(
                    CKR_ARGUMENTS_BAD,
                    format!(
                        "token with serial {} is live in slot {live}; give --force to overwrite it",
                        record.serial
                    ),
                ));
            }
            self.location.restore(backup, live, true)?;
            return Ok(live);
        }
        if target > MAX_SLOT_ID {
            return fail(CKR_SLOT_ID_INVALID);
        }
        self.location.restore(backup, target, false)?;
        self.refresh()?;
        Ok(target)
    }

    fn open_token(&self, name: &str, map: &SlotMap) -> Result<Token> {
        let store = self.location.open(name)?;
        let checkers = self.location.checker_opener(name);
        let token = Token::open(store, self.pins.clone(), checkers)?;
        let slot = token.slot_id();
        let place = self.location.describe();
        if slot > MAX_SLOT_ID {
            return Err(Error::with(
                CKR_TOKEN_NOT_RECOGNIZED,
                format!("token store {name} in {place}: slot id {slot} out of range"),
            ));
        }
        if map.tokens.contains_key(&slot) {
            return Err(Error::with(
                CKR_TOKEN_NOT_RECOGNIZED,
                format!(
                    "token store {name} in {place}: slot id {slot} is already used by another token store"
                ),
            ));
        }
        Ok(token)
    }

    fn lock_init(&self) -> Result<InitLock> {
        self.location.lock_init()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::Attributes;
    use crate::token::UserType;

    const SO_PIN: &[u8] = b"so-pin-1234";
    const USER_PIN: &[u8] = b"user-pin-1234";

    fn open(dir: &Path) -> Slots {
        Slots::open_with(dir, PinPolicy::test()).unwrap()
    }

    fn rv<T>(r: Result<T>) -> CK_RV {
        match r {
            Ok(_) => CKR_OK,
            Err(e) => e.rv,
        }
    }

    fn data_object(label: &str, token: bool, private: bool) -> Attributes {
        let mut a = Attributes::new();
        a.set_ulong(CKA_CLASS, CKO_DATA);
        a.set_bool(CKA_TOKEN, token);
        a.set_bool(CKA_PRIVATE, private);
        a.set(CKA_LABEL, label.as_bytes());
        a
    }

    fn label_template(label: &str) -> Attributes {
        let mut t = Attributes::new();
        t.set(CKA_LABEL, label.as_bytes());
        t
    }

    /// The library singleton shares these across threads.
    #[test]
    fn slots_and_tokens_are_send_and_sync() {
        fn shared<T: Send + Sync>() {}
        shared::<Slots>();
        shared::<crate::token::Token>();
    }

    #[test]
    fn delete_token_removes_its_files_and_its_slot() {
        let dir = tempfile::tempdir().unwrap();
        let slots = open(dir.path());
        slots.init_token(0, SO_PIN, "first").unwrap();
        slots.init_token(1, SO_PIN, "second").unwrap();
        assert_eq!(rv(slots.delete_token(2)), CKR_TOKEN_NOT_RECOGNIZED);
        let path = slots.delete_token(0).unwrap();
        assert!(!Path::new(&path).exists());
        assert_eq!(slots.slot_ids(), vec![1, 2]);
        assert_eq!(rv(slots.token(0)), CKR_SLOT_ID_INVALID);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("token-0"))
            .collect();
        assert!(names.is_empty(), "left behind: {names:?}");
        // Another process sees the same slot list.
        assert_eq!(open(dir.path()).slot_ids(), vec![1, 2]);
    }

    #[test]
    fn init_token_adds_a_token_and_a_new_spare_slot_last() {
        let dir = tempfile::tempdir().unwrap();
        let token_dir = dir.path().join("new/tokens");
        let slots = open(&token_dir);
        assert!(token_dir.is_dir(), "directory created on first use");
        assert_eq!(slots.slot_ids(), vec![0]);
        assert!(slots.token(0).unwrap().is_none());
        assert_eq!(rv(slots.token(1)), CKR_SLOT_ID_INVALID);
        assert_eq!(
            slots.token_info(0).unwrap().flags & CKF_TOKEN_INITIALIZED,
            0
        );

        assert_eq!(rv(slots.init_token(0, b"abc", "short")), CKR_PIN_LEN_RANGE);
        assert_eq!(
            rv(slots.init_token(3, SO_PIN, "nowhere")),
            CKR_SLOT_ID_INVALID
        );
        slots.init_token(0, SO_PIN, "first token   ").unwrap();
        assert_eq!(slots.slot_ids(), vec![0, 1]);
        let info = slots.token_info(0).unwrap();
        assert_eq!(info.label, "first token");
        assert_eq!(info.serial.len(), 16);
        assert!(info.serial.chars().all(|c| c.is_ascii_hexdigit()));
        let expected =
            CKF_RNG | CKF_LOGIN_REQUIRED | CKF_TOKEN_INITIALIZED | CKF_RESTORE_KEY_NOT_NEEDED;
        assert_eq!(info.flags, expected);

        slots.init_token(1, SO_PIN, "second").unwrap();
        assert_eq!(slots.slot_ids(), vec![0, 1, 2]);
        assert_eq!(slots.token(1).unwrap().unwrap().slot_id(), 1);
    }

    #[test]
    fn slot_ids_are_stable_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (serial0, serial1) = {
            let slots = open(dir.path());
            slots.init_token(0, SO_PIN, "a").unwrap();
            slots.init_token(1, SO_PIN, "b").unwrap();
            (
                slots.token_info(0).unwrap().serial,
                slots.token_info(1).unwrap().serial,
            )
        };
        let slots = open(dir.path());
        assert_eq!(slots.slot_ids(), vec![0, 1, 2]);
        assert_eq!(slots.token_info(0).unwrap().serial, serial0);
        assert_eq!(slots.token_info(1).unwrap().serial, serial1);
        assert_eq!(slots.token_info(1).unwrap().label, "b");
    }

    #[test]
    fn second_instance_sees_new_tokens_and_objects_after_refresh() {
        let dir = tempfile::tempdir().unwrap();
        let first = open(dir.path());
        let second = open(dir.path());
        first.init_token(0, SO_PIN, "shared").unwrap();
        assert_eq!(second.slot_ids(), vec![0]);
        second.refresh().unwrap();
        assert_eq!(second.slot_ids(), vec![0, 1]);

        // The second instance's stale view of slot 1 as spare: under the init lock it
        // finds that another process took it, so this is a re-init with a wrong SO PIN.
        first.init_token(1, SO_PIN, "taken").unwrap();
        assert_eq!(
            rv(second.init_token(1, b"other-so-pin", "mine")),
            CKR_PIN_INCORRECT
        );
        assert_eq!(second.slot_ids(), vec![0, 1, 2]);

        let a = first.token(0).unwrap().unwrap();
        let b = second.token(0).unwrap().unwrap();
        assert!(b.find(&label_template("hello")).unwrap().is_empty());
        let handle = a
            .create_object(data_object("hello", true, false), 1)
            .unwrap();
        let found = b.find(&label_template("hello")).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(
            b.object(found[0]).unwrap().attrs.get(CKA_LABEL),
            Some(&b"hello"[..])
        );

        // Updates and deletes travel too.
        let mut renamed = a.object(handle).unwrap().attrs.clone();
        renamed.set(CKA_LABEL, b"renamed".to_vec());
        a.update_object(handle, renamed).unwrap();
        assert!(b.find(&label_template("hello")).unwrap().is_empty());
        assert_eq!(
            b.find(&label_template("renamed")).unwrap(),
            found,
            "handle is stable"
        );
        a.destroy_object(handle).unwrap();
        assert!(b.find(&label_template("renamed")).unwrap().is_empty());
        assert_eq!(rv(b.object(found[0])), CKR_OBJECT_HANDLE_INVALID);
    }

    #[test]
    fn a_broken_file_is_skipped_and_its_slot_id_not_reused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let slots = open(dir.path());
            slots.init_token(0, SO_PIN, "good").unwrap();
        }
        std::fs::write(
            dir.path().join("token-7.db"),
            b"this is not a database at all",
        )
        .unwrap();
        let slots = open(dir.path());
        assert_eq!(slots.slot_ids(), vec![0, 8]);
        assert_eq!(rv(slots.token(7)), CKR_SLOT_ID_INVALID);
        let token = slots.token(0).unwrap().unwrap();
        token.login(UserType::So, SO_PIN).unwrap();
        // Refreshing again does not report or reopen it.
        slots.refresh().unwrap();
        assert_eq!(slots.slot_ids(), vec![0, 8]);
    }

    #[test]
    fn reinit_wipes_objects_and_user_pin() {
        let dir = tempfile::tempdir().unwrap();
        let slots = open(dir.path());
        let other = open(dir.path());
        slots.init_token(0, SO_PIN, "before").unwrap();
        other.refresh().unwrap();
        let token = slots.token(0).unwrap().unwrap();
        token.login(UserType::So, SO_PIN).unwrap();
        token.init_pin(USER_PIN).unwrap();
        token.logout().unwrap();
        token.login(UserType::User, USER_PIN).unwrap();
        token
            .create_object(data_object("public", true, false), 1)
            .unwrap();
        token
            .create_object(data_object("private", true, true), 1)
            .unwrap();
        token.logout().unwrap();
        let seen_elsewhere = other.token(0).unwrap().unwrap();
        assert_eq!(seen_elsewhere.find(&Attributes::new()).unwrap().len(), 1);

        assert_eq!(
            rv(slots.init_token(0, b"wrong-so-pin", "after")),
            CKR_PIN_INCORRECT
        );
        slots.init_token(0, SO_PIN, "after").unwrap();
        let info = token.info();
        assert_eq!(info.label, "after");
        assert_eq!(info.flags & CKF_USER_PIN_INITIALIZED, 0);
        assert!(token.find(&Attributes::new()).unwrap().is_empty());
        assert_eq!(
            rv(token.login(UserType::User, USER_PIN)),
            CKR_USER_PIN_NOT_INITIALIZED
        );
        assert_eq!(slots.slot_ids(), vec![0, 1], "re-init keeps the slot");
        assert!(seen_elsewhere.find(&Attributes::new()).unwrap().is_empty());
        assert_eq!(seen_elsewhere.info().label, "after");
        // The SO PIN still works, also in the other instance.
        seen_elsewhere.login(UserType::So, SO_PIN).unwrap();
    }

    /// Two instances (as two processes would) with two threads each write at once: no
    /// call fails with a busy database and every object is there afterwards.
    #[test]
    fn concurrent_writers_all_commit() {
        let dir = tempfile::tempdir().unwrap();
        open(dir.path()).init_token(0, SO_PIN, "busy").unwrap();
        let instances: Vec<_> = (0..2).map(|_| Arc::new(open(dir.path()))).collect();
        let workers: Vec<_> = (0..4)
            .map(|w| {
                let slots = instances[w % 2].clone();
                std::thread::spawn(move || {
                    let token = slots.token(0).unwrap().unwrap();
                    for i in 0..25 {
                        let label = format!("w{w} o{i}");
                        token
                            .create_object(data_object(&label, true, false), 1)
                            .unwrap();
                        assert_eq!(token.find(&label_template(&label)).unwrap().len(), 1);
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
        let fresh = open(dir.path());
        let token = fresh.token(0).unwrap().unwrap();
        assert_eq!(token.find(&Attributes::new()).unwrap().len(), 100);
        for instance in &instances {
            let token = instance.token(0).unwrap().unwrap();
            assert_eq!(token.find(&Attributes::new()).unwrap().len(), 100);
        }
    }

    #[test]
    fn a_newer_store_format_is_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        open(dir.path()).init_token(0, SO_PIN, "future").unwrap();
        let path = dir.path().join("token-0.db");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", crate::storage::FORMAT_VERSION + 1)
            .unwrap();
        drop(conn);
        let err = SqliteStore::open(&path).err().unwrap();
        assert_eq!(err.rv, CKR_TOKEN_NOT_RECOGNIZED);
        assert!(err.context.contains("newer"), "{}", err.context);
        let slots = open(dir.path());
        assert_eq!(slots.slot_ids(), vec![1], "not listed, its id not reused");
    }

    #[test]
    fn restore_takes_the_spare_id_when_its_own_is_used_by_another_token() {
        let source = tempfile::tempdir().unwrap();
        let backup = source.path().join("backup.db");
        let serial = {
            let slots = open(source.path());
            slots.init_token(0, SO_PIN, "backed up").unwrap();
            let token = slots.token(0).unwrap().unwrap();
            token.backup_to(&backup).unwrap();
            token.info().serial
        };
        let dir = tempfile::tempdir().unwrap();
        let slots = open(dir.path());
        slots.init_token(0, SO_PIN, "other").unwrap();
        assert_eq!(slots.restore(&backup, false).unwrap(), 1);
        assert_eq!(slots.slot_ids(), vec![0, 1, 2]);
        assert_eq!(slots.token_info(1).unwrap().serial, serial);
        assert_eq!(slots.token_info(1).unwrap().label, "backed up");
        // Its slot id inside the file follows: another process opens it as slot 1.
        assert_eq!(open(dir.path()).token_info(1).unwrap().serial, serial);
        assert_eq!(rv(slots.restore(&backup, false)), CKR_ARGUMENTS_BAD);
        let not_a_store = dir.path().join("junk");
        std::fs::write(&not_a_store, b"not a database").unwrap();
        assert_ne!(rv(slots.restore(&not_a_store, false)), CKR_OK);
    }

    /// --force overwrites a token that another instance (as another process would) has
    /// open: it sees the restored objects at its next call.
    #[test]
    fn forced_restore_reaches_an_open_token_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let backup = dir.path().join("backup.db");
        let slots = open(&dir.path().join("tokens"));
        slots.init_token(0, SO_PIN, "live").unwrap();
        let token = slots.token(0).unwrap().unwrap();
        token.login(UserType::So, SO_PIN).unwrap();
        token
            .create_object(data_object("before", true, false), 1)
            .unwrap();
        token.backup_to(&backup).unwrap();
        token
            .create_object(data_object("after", true, false), 1)
            .unwrap();
        assert_eq!(token.find(&Attributes::new()).unwrap().len(), 2);

        let restorer = open(&dir.path().join("tokens"));
        assert_eq!(restorer.restore(&backup, true).unwrap(), 0);
        assert_eq!(token.find(&label_template("before")).unwrap().len(), 1);
        assert!(token.find(&label_template("after")).unwrap().is_empty());
        assert_eq!(slots.slot_ids(), vec![0, 1]);
    }
}
