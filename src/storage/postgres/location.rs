//! The tokens of a PostgreSQL schema as a token location: one row of `tokens` per token,
//! named `slot <id>`. Creating, deleting and restoring run under a session-level advisory
//! lock (held by a connection of its own, so it goes when the process dies), the slot map
//! is one query.

use super::connect::{pg_error, Connector};
use super::feed::{ChangeFeed, CHANNEL};
use super::sql::{CachedTx, Statements};
use super::store::PgStore;
use super::{image, schema};
use crate::config::PgStoreConfig;
use crate::error::{Error, Result};
use crate::storage::location::{InitLock, StoreOpener, TokenLocation};
use crate::storage::sqlite::SqliteStore;
use crate::storage::{StoreImage, TokenStore};
use cryptoki_sys::*;
use parking_lot::Mutex;
use postgres::Client;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

const NAME_PREFIX: &str = "slot ";

/// How far a restore moves the change counter past the live token's, as for SQLite.
const RESTORE_COUNTER_JUMP: u64 = 1 << 32;

pub struct PgLocation {
    connector: Arc<Connector>,
    /// The session of slot-list queries; None until needed or after it broke.
    client: Mutex<Option<Client>>,
    /// The last list read, served while the database is unreachable.
    last_names: Mutex<BTreeSet<String>>,
    feed: ChangeFeed,
}

impl PgLocation {
    /// Connects, and creates the schema and its tables on first use.
    pub fn open(config: &PgStoreConfig) -> Result<PgLocation> {
        let connector = Arc::new(Connector::new(config)?);
        let mut client = connector.connect()?;
        schema::ensure(&mut client, connector.schema(), &connector.place())?;
        Ok(PgLocation {
            feed: ChangeFeed::start(connector.clone()),
            connector,
            client: Mutex::new(Some(client)),
            last_names: Mutex::new(BTreeSet::new()),
        })
    }

    /// Runs `f` on the location's session (connecting when there is none).
    fn with_client<T>(&self, f: impl FnOnce(&mut Client, &str) -> Result<T>) -> Result<T> {
        let place = self.connector.place();
        let mut guard = self.client.lock();
        if guard.as_ref().is_none_or(Client::is_closed) {
            *guard = None;
            *guard = Some(self.connector.connect()?);
        }
        let client = guard.as_mut().expect("connected above");
        let result = f(client, &place);
        if client.is_closed() {
            *guard = None;
        }
        result
    }

    /// The image of a backup file, upgraded to the current format on a private copy (the
    /// backup itself is never changed).
    fn backup_image(backup: &Path) -> Result<StoreImage> {
        let dir = tempfile_dir()?;
        let copy = dir.join("restore.db");
        let result = SqliteStore::restore_into(backup, &copy, 0)
            .and_then(|()| SqliteStore::open(&copy))
            .and_then(|mut store| store.image());
        let _ = std::fs::remove_dir_all(&dir);
        result
    }
}

/// A private temporary directory for the upgraded copy of a backup.
fn tempfile_dir() -> Result<std::path::PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = std::env::temp_dir().join(format!(
        "ferrohsm-restore-{}-{:x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| {
            Error::with(
                CKR_DEVICE_ERROR,
                format!("cannot create {}: {e}", dir.display()),
            )
        })?;
    Ok(dir)
}

fn slot_of(name: &str) -> Option<CK_SLOT_ID> {
    name.strip_prefix(NAME_PREFIX)?.parse().ok()
}

impl TokenLocation for PgLocation {
    fn names(&self) -> Result<BTreeSet<String>> {
        let listed = self.with_client(|client, place| {
            let rows = client
                .query("SELECT slot_id FROM tokens", &[])
                .map_err(|e| pg_error(place, e))?;
            Ok(rows
                .iter()
                .map(|row| format!("{NAME_PREFIX}{}", row.get::<_, i64>(0)))
                .collect::<BTreeSet<String>>())
        });
        match listed {
            Ok(names) => {
                *self.last_names.lock() = names.clone();
                Ok(names)
            }
            // The tokens already open keep working while the database is down.
            Err(e) if e.rv == CKR_DEVICE_ERROR => Ok(self.last_names.lock().clone()),
            Err(e) => Err(e),
        }
    }

    fn reserved_slot(&self, name: &str) -> Option<CK_SLOT_ID> {
        slot_of(name)
    }

    fn open(&self, name: &str) -> Result<Box<dyn TokenStore>> {
        let slot = slot_of(name).ok_or_else(|| {
            Error::with(CKR_TOKEN_NOT_RECOGNIZED, format!("no token store {name}"))
        })?;
        let slot = slot as i64;
        Ok(Box::new(PgStore::open(
            self.connector.clone(),
            slot,
            self.feed.flag(slot),
            self.feed.payload(slot),
        )?))
    }

    /// None: a check reads the listener's flag, no connection needed.
    fn checker_opener(&self, _name: &str) -> Option<StoreOpener> {
        None
    }

    fn lock_init(&self) -> Result<InitLock> {
        let place = self.connector.place();
        let mut client = self.connector.connect()?;
        client
            .execute(
                "SELECT pg_advisory_lock(hashtext($1))",
                &[&format!("ferrohsm init {}", self.connector.schema())],
            )
            .map_err(|e| pg_error(&place, e))?;
        // The lock is the session's: it goes when this connection closes.
        Ok(Box::new(client))
    }

    fn install(&self, image: &StoreImage) -> Result<()> {
        let record = &image.record;
        self.with_client(|client, place| {
            let mut statements = Statements::default();
            let tx = client.transaction().map_err(|e| pg_error(place, e))?;
            let mut tx = CachedTx::new(tx, &mut statements);
            image::write(
                &mut tx,
                record.slot_id as i64,
                image,
                record.change_counter,
                place,
            )?;
            tx.commit().map_err(|e| pg_error(place, e))
        })
    }

    fn image(&self, name: &str) -> Result<StoreImage> {
        let slot = slot_of(name).ok_or_else(|| {
            Error::with(CKR_TOKEN_NOT_RECOGNIZED, format!("no token store {name}"))
        })?;
        self.with_client(|client, place| {
            let mut statements = Statements::default();
            let tx = client.transaction().map_err(|e| pg_error(place, e))?;
            let mut tx = CachedTx::new(tx, &mut statements);
            let image = image::read(&mut tx, slot as i64, place)?;
            tx.commit().map_err(|e| pg_error(place, e))?;
            Ok(image)
        })
    }

    fn delete(&self, slot: CK_SLOT_ID) -> Result<String> {
        self.with_client(|client, place| {
            let mut tx = client.transaction().map_err(|e| pg_error(place, e))?;
            tx.execute("DELETE FROM tokens WHERE slot_id = $1", &[&(slot as i64)])
                .and_then(|_| {
                    tx.execute(
                        "SELECT pg_notify($1, $2)",
                        &[&CHANNEL, &self.feed.payload(slot as i64)],
                    )
                })
                .map_err(|e| pg_error(place, e))?;
            tx.commit().map_err(|e| pg_error(place, e))?;
            Ok(format!("slot {slot} of {place}"))
        })
    }

    fn slot_in_use(&self, slot: CK_SLOT_ID) -> bool {
        self.with_client(|client, place| {
            client
                .query_opt("SELECT 1 FROM tokens WHERE slot_id = $1", &[&(slot as i64)])
                .map(|row| row.is_some())
                .map_err(|e| pg_error(place, e))
        })
        // Unknown counts as taken: a restore then picks the spare slot.
        .unwrap_or(true)
    }

    fn restore(&self, backup: &Path, slot: CK_SLOT_ID, live: bool) -> Result<()> {
        let mut image = Self::backup_image(backup)?;
        image.record.slot_id = slot;
        self.with_client(|client, place| {
            let slot = slot as i64;
            let mut statements = Statements::default();
            let tx = client.transaction().map_err(|e| pg_error(place, e))?;
            let mut tx = CachedTx::new(tx, &mut statements);
            let mut counter = image.record.change_counter;
            if live {
                let before: Option<i64> = tx
                    .query_opt(
                        "SELECT change_counter FROM tokens WHERE slot_id = $1 FOR UPDATE",
                        &[&slot],
                    )
                    .map_err(|e| pg_error(place, e))?
                    .map(|row| row.get(0));
                // Every process re-reads its objects: the counter ends above both.
                counter = counter.max(before.unwrap_or(0) as u64) + RESTORE_COUNTER_JUMP;
                tx.execute("DELETE FROM tokens WHERE slot_id = $1", &[&slot])
                    .map_err(|e| pg_error(place, e))?;
            }
            image::write(&mut tx, slot, &image, counter, place)?;
            tx.execute(
                "SELECT pg_notify($1, $2)",
                &[&CHANNEL, &self.feed.payload(slot)],
            )
            .map_err(|e| pg_error(place, e))?;
            tx.commit().map_err(|e| pg_error(place, e))
        })
    }

    fn describe(&self) -> String {
        self.connector.place()
    }
}
