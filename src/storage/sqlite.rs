//! The SQLite backend: one database file per token, WAL mode (readers never block the
//! writer, a crash never leaves a torn object), a busy timeout so concurrent processes wait
//! instead of failing, and `BEGIN IMMEDIATE` for writes so a write never has to upgrade a
//! read lock (the one case SQLite reports as SQLITE_BUSY without waiting).
//!
//! Integers are stored as SQLite's signed 64-bit values; `u64` ids and attribute types
//! round-trip bit for bit through `as` casts. Attribute values are stored in PKCS#11 wire
//! form (native-endian CK_ULONG), so a store is tied to the byte order of its machine.

use super::files::{create_private_file, refuse_symlinks};
use super::integrity::{self, MacKey, Tag};
use super::rotation::{self, Rotation};
use super::rules;
use super::{
    AuditRow, ObjectId, PinAttempt, PinRecord, PublicObjectKey, Seal, Signer, StoreImage,
    StoredObject, StoredValue, TokenRecord, TokenStore, FORMAT_VERSION,
};
use crate::error::{Error, Result};
use crate::storage::KdfParams;
use crate::token::UserType;
use cryptoki_sys::*;
use rusqlite::{
    params, Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a call waits for another process's write before giving up with
/// CKR_DEVICE_ERROR. Writes are short transactions, so reaching it means a stuck writer.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// How far a restore moves the change counter past the live store's: more commits than
/// can happen between two statements, so no process mistakes the restored content for
/// what it already has indexed.
const RESTORE_COUNTER_JUMP: i64 = 1 << 32;

const SCHEMA: &str = "
CREATE TABLE token (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 0),
    slot_id INTEGER NOT NULL,
    label TEXT NOT NULL,
    serial TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    change_counter INTEGER NOT NULL,
    public_key BLOB NOT NULL,
    object_set BLOB NOT NULL DEFAULT x'',
    mac BLOB
);
CREATE TABLE pins (
    user_type INTEGER PRIMARY KEY,
    kdf_memory_kib INTEGER NOT NULL,
    kdf_iterations INTEGER NOT NULL,
    kdf_parallelism INTEGER NOT NULL,
    salt BLOB NOT NULL,
    wrapped_key BLOB NOT NULL,
    failures INTEGER NOT NULL,
    flags INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    success_at INTEGER NOT NULL DEFAULT 0,
    counter_mac BLOB NOT NULL DEFAULT x''
);
-- mac_seal: the key of `mac` (0 none yet, 1 token MAC key, 2 public MAC key).
CREATE TABLE objects (
    id INTEGER PRIMARY KEY,
    generation INTEGER NOT NULL,
    mac BLOB,
    mac_seal INTEGER NOT NULL DEFAULT 0,
    in_set INTEGER NOT NULL DEFAULT 0
);
-- sealed: 0 clear, 1 sealed under the token key, 2 under the public-object key.
CREATE TABLE attributes (
    object_id INTEGER NOT NULL,
    type INTEGER NOT NULL,
    sealed INTEGER NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (object_id, type)
) WITHOUT ROWID;
-- The audit log (format 4): JSON entries, each hash-chained to the one before.
CREATE TABLE audit (
    seq INTEGER PRIMARY KEY,
    entry TEXT NOT NULL,
    chain BLOB NOT NULL
);
";

/// Format 4's table, for stores made before it.
const AUDIT_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY, entry TEXT NOT NULL, chain BLOB NOT NULL);";

pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    data_version: Option<i64>,
    /// The store's format (FORMAT_VERSION once opened for use; a backup read as it is may
    /// be older).
    format: i64,
}

/// The `sealed` column's codes.
fn seal_code(seal: Option<Seal>) -> i64 {
    match seal {
        None => 0,
        Some(Seal::Token) => 1,
        Some(Seal::Public) => 2,
    }
}

/// Brings a store of an older format up to FORMAT_VERSION in place, in one write
/// transaction that re-reads the version, so processes opening an old store at the same
/// time upgrade it once. Nothing is re-sealed (no PIN is at hand, and values sealed under
/// the PIN-protected token key must not lose that protection behind their owner's back):
/// format-1 values keep `sealed = 1`, and the public objects among them keep needing a
/// login to open their secrets until they are written again while logged in. Format 3
/// adds the integrity columns empty: the tags need the token key, so the first login
/// computes them (`TokenStore::tag_all`, see token.rs `authenticate`).
fn upgrade(conn: &mut Connection, path: &Path) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| db_error(path, e))?;
    let run = || -> Result<()> {
        let version: i64 = tx
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(|e| db_error(path, e))?;
        if version < 2 {
            // Format 2: the public-object key (see seal::PublicObjectKey) and `sealed = 2`.
            let key = PublicObjectKey::new()?;
            tx.execute_batch("ALTER TABLE token ADD COLUMN public_key BLOB NOT NULL DEFAULT x''")
                .and_then(|()| tx.execute("UPDATE token SET public_key = ?1", [key.0.as_slice()]))
                .map_err(|e| db_error(path, e))?;
        }
        if version < 3 {
            add_format_3_columns(&tx).map_err(|e| db_error(path, e))?;
        }
        if version < 4 {
            tx.execute_batch(AUDIT_TABLE)
                .map_err(|e| db_error(path, e))?;
        }
        // Format 5 (PIN records of the escrow form) changes no table: its records come at
        // each PIN's next login, and the version keeps older builds from misreading them.
        tx.pragma_update(None, "user_version", FORMAT_VERSION)
            .map_err(|e| db_error(path, e))
    };
    run()?;
    tx.commit().map_err(|e| db_error(path, e))
}

/// Format 3: the integrity tags of the token record and objects, and the PIN records'
/// flags, attempt count and last success with its MAC. Idempotent (a column already there
/// is kept). Existing counters start consistent (`attempts = failures`, `success_at = 0`),
/// without a MAC until the next correct login; the tags come at the first login.
fn add_format_3_columns(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    add_missing_columns(
        tx,
        "token",
        &[("object_set", "BLOB NOT NULL DEFAULT x''"), ("mac", "BLOB")],
    )?;
    add_missing_columns(
        tx,
        "objects",
        &[
            ("mac", "BLOB"),
            ("mac_seal", "INTEGER NOT NULL DEFAULT 0"),
            ("in_set", "INTEGER NOT NULL DEFAULT 0"),
        ],
    )?;
    let added = add_missing_columns(
        tx,
        "pins",
        &[
            ("flags", "INTEGER NOT NULL DEFAULT 0"),
            ("attempts", "INTEGER NOT NULL DEFAULT 0"),
            ("success_at", "INTEGER NOT NULL DEFAULT 0"),
            ("counter_mac", "BLOB NOT NULL DEFAULT x''"),
        ],
    )?;
    if added.contains(&"attempts") {
        tx.execute_batch("UPDATE pins SET attempts = failures")?;
    }
    Ok(())
}

/// Adds those of `columns` (name, declaration) that `table` lacks; returns their names.
fn add_missing_columns<'a>(
    tx: &Transaction<'_>,
    table: &str,
    columns: &[(&'a str, &str)],
) -> rusqlite::Result<Vec<&'a str>> {
    let mut have = std::collections::BTreeSet::new();
    {
        let mut stmt = tx.prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            have.insert(row.get::<_, String>(0)?);
        }
    }
    let mut added = Vec::new();
    for (name, decl) in columns {
        if !have.contains(*name) {
            tx.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {name} {decl}"))?;
            added.push(*name);
        }
    }
    Ok(added)
}

/// The `pins` columns `pin_from_row` reads, for a store of `format`.
fn pin_columns(format: i64) -> &'static str {
    if format >= 3 {
        "user_type, kdf_memory_kib, kdf_iterations, kdf_parallelism, salt, wrapped_key, \
         failures, flags, attempts, success_at, counter_mac"
    } else {
        "user_type, kdf_memory_kib, kdf_iterations, kdf_parallelism, salt, wrapped_key, \
         failures, 0, failures, 0, x''"
    }
}

fn pin_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<PinRecord> {
    Ok(PinRecord {
        kdf: KdfParams {
            memory_kib: row.get(1)?,
            iterations: row.get(2)?,
            parallelism: row.get(3)?,
        },
        salt: row.get(4)?,
        wrapped_key: row.get(5)?,
        failures: row.get(6)?,
        flags: row.get(7)?,
        attempts: row.get::<_, i64>(8)? as u64,
        success_at: row.get::<_, i64>(9)? as u64,
        counter_mac: row.get(10)?,
    })
}

fn user_key(user: UserType) -> i64 {
    match user {
        UserType::So => 0,
        UserType::User => 1,
    }
}

impl SqliteStore {
    /// Writes a new token database at `path` (which must not exist yet). The caller
    /// creates it under a temporary name and renames it into place, so other processes
    /// never see a half-made token.
    pub fn create(path: &Path, record: &TokenRecord) -> Result<()> {
        // Owner-only from the first byte; SQLite gives -wal and -shm the same mode.
        create_private_file(path)?;
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| db_error(path, e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| db_error(path, e))?;
        set_secure_delete(&conn, path)?;
        let public_key = record.public_key.as_ref().ok_or_else(|| {
            Error::with(
                CKR_GENERAL_ERROR,
                "new token record without public-object key",
            )
        })?;
        let tx = conn.transaction().map_err(|e| db_error(path, e))?;
        tx.execute_batch(SCHEMA).map_err(|e| db_error(path, e))?;
        tx.execute(
            "INSERT INTO token
             (singleton, slot_id, label, serial, epoch, change_counter, public_key,
              object_set, mac)
             VALUES (0, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                record.slot_id as i64,
                record.label,
                record.serial,
                record.epoch as i64,
                record.change_counter as i64,
                public_key.0.as_slice(),
                record.object_set.as_slice(),
                record.mac
            ],
        )
        .map_err(|e| db_error(path, e))?;
        for (user, pin) in [
            (UserType::So, &record.so_pin),
            (UserType::User, &record.user_pin),
        ] {
            if let Some(pin) = pin {
                write_pin(&tx, user, pin).map_err(|e| db_error(path, e))?;
            }
        }
        tx.pragma_update(None, "user_version", FORMAT_VERSION)
            .map_err(|e| db_error(path, e))?;
        tx.commit().map_err(|e| db_error(path, e))?;
        conn.close().map_err(|(_, e)| db_error(path, e))
    }

    /// Opens an existing token database; a file that is not one (or of a newer format)
    /// is CKR_TOKEN_NOT_RECOGNIZED with the reason.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        refuse_symlinks(path)?;
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| db_error(path, e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| db_error(path, e))?;
        let format = check_format(&conn, path)?;
        // Persistent in the file; a no-op once set.
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(|e| db_error(path, e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::with(
                CKR_DEVICE_ERROR,
                format!(
                    "token store {}: cannot switch to WAL mode ({mode})",
                    path.display()
                ),
            ));
        }
        // FULL: a commit that returned is on disk, also across a power loss.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| db_error(path, e))?;
        set_secure_delete(&conn, path)?;
        if format < FORMAT_VERSION {
            upgrade(&mut conn, path)?;
        }
        let mut store = SqliteStore {
            conn,
            path: path.to_path_buf(),
            data_version: None,
            format: FORMAT_VERSION,
        };
        store.load_token()?;
        Ok(store)
    }

    /// An online, consistent copy of the whole store at `dest` (a new file, mode 0600),
    /// taken in one read transaction with SQLite's backup API, so writers in other
    /// processes go on meanwhile. The copy is a complete token store: restoring it is
    /// placing it in a token directory as `token-<slot id>.db` (its slot id is inside).
    pub fn backup_to(&self, dest: &Path) -> Result<()> {
        // Created here, owner-only from the first byte (it holds the sealed secrets and the
        // wrapped token keys), and never over an existing file.
        create_private_file(dest).map_err(|e| match e.rv {
            CKR_ARGUMENTS_BAD => Error::with(
                CKR_ARGUMENTS_BAD,
                format!("backup target {} exists", dest.display()),
            ),
            _ => e,
        })?;
        let mut target = Connection::open(dest).map_err(|e| db_error(dest, e))?;
        set_secure_delete(&target, dest)?;
        copy_database(&self.conn, &mut target, &self.path, "backup of")?;
        // The copy is a plain rollback-journal file until a token opens it.
        target
            .pragma_update(None, "journal_mode", "DELETE")
            .map_err(|e| db_error(dest, e))?;
        target.close().map_err(|(_, e)| db_error(dest, e))
    }

    /// Writes a new token database at `dest` (which must not exist) holding `image` as
    /// stored: a backup of a token of another backend, in the format of this one's.
    pub fn create_from_image(dest: &Path, image: &StoreImage) -> Result<()> {
        Self::create(dest, &image.record).map_err(|e| match e.rv {
            CKR_ARGUMENTS_BAD => Error::with(
                CKR_ARGUMENTS_BAD,
                format!("backup target {} exists", dest.display()),
            ),
            _ => e,
        })?;
        let mut conn = Connection::open(dest).map_err(|e| db_error(dest, e))?;
        set_secure_delete(&conn, dest)?;
        let tx = conn.transaction().map_err(|e| db_error(dest, e))?;
        let run = || -> rusqlite::Result<()> {
            for object in &image.objects {
                let (mac_seal, mac) = match &object.mac {
                    Some((seal, tag)) => (seal_code(Some(*seal)), Some(tag.as_slice())),
                    None => (0, None),
                };
                tx.execute(
                    "INSERT INTO objects (id, generation, mac, mac_seal, in_set)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        object.id,
                        object.generation as i64,
                        mac,
                        mac_seal,
                        object.in_set
                    ],
                )?;
                insert_attributes(&tx, object.id, &object.attributes)?;
            }
            let mut insert =
                tx.prepare("INSERT INTO audit (seq, entry, chain) VALUES (?1, ?2, ?3)")?;
            for row in &image.audit {
                insert.execute(params![row.seq, row.entry, row.chain])?;
            }
            Ok(())
        };
        run().map_err(|e| db_error(dest, e))?;
        tx.commit().map_err(|e| db_error(dest, e))?;
        conn.pragma_update(None, "journal_mode", "DELETE")
            .map_err(|e| db_error(dest, e))?;
        conn.close().map_err(|(_, e)| db_error(dest, e))
    }

    /// The whole store as stored, from one read transaction.
    pub fn image(&mut self) -> Result<StoreImage> {
        let path = self.path.clone();
        let format = self.format;
        let tx = self.conn.transaction().map_err(|e| db_error(&path, e))?;
        let record = read_record(&tx, &path, format)?;
        let run = || -> rusqlite::Result<(Vec<StoredObject>, Vec<AuditRow>)> {
            let mut objects = Vec::new();
            let mut stmt = tx.prepare(&format!("{SELECT_OBJECTS} ORDER BY o.id"))?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                push_object_row(&mut objects, row)?;
            }
            let audit = read_audit(&tx)?;
            Ok((objects, audit))
        };
        let (objects, audit) = run().map_err(|e| db_error(&path, e))?;
        Ok(StoreImage {
            record,
            objects,
            audit,
        })
    }

    /// The token row of a backup file, read without changing the file; a file that is not
    /// a ferrohsm store of a supported format is CKR_TOKEN_NOT_RECOGNIZED.
    pub fn read_backup(src: &Path) -> Result<TokenRecord> {
        let conn = Connection::open_with_flags(src, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| db_error(src, e))?;
        let format = check_format(&conn, src)?;
        let mut store = SqliteStore {
            conn,
            path: src.to_path_buf(),
            data_version: None,
            format,
        };
        store
            .load_token()
            .map_err(|e| Error::with(CKR_TOKEN_NOT_RECOGNIZED, e.context))
    }

    /// Puts the backup `src` into `dest` with SQLite's backup API, as slot `slot_id`.
    /// `dest` is a new file or a live store: the copy is one write transaction there, so
    /// other processes using `dest` see the old or the restored content, never a mix. The
    /// change counter ends above both the backup's and `dest`'s so that every process
    /// re-reads its objects.
    pub fn restore_into(src: &Path, dest: &Path, slot_id: CK_SLOT_ID) -> Result<()> {
        let source = Connection::open_with_flags(src, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| db_error(src, e))?;
        check_format(&source, src)?;
        if !dest.exists() {
            create_private_file(dest)?;
        }
        refuse_symlinks(dest)?;
        let mut target = Connection::open(dest).map_err(|e| db_error(dest, e))?;
        set_secure_delete(&target, dest)?;
        target
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| db_error(dest, e))?;
        let before: i64 = target
            .query_row("SELECT change_counter FROM token", [], |row| row.get(0))
            .unwrap_or(0);
        copy_database(&source, &mut target, dest, "restore into")?;
        // An older backup is upgraded at once: the processes using `dest` read the current
        // format. (Between the copy and the upgrade, a reader may fail one call.)
        if check_format(&target, dest)? < FORMAT_VERSION {
            upgrade(&mut target, dest)?;
        }
        // `before` was read outside the backup's transaction, so other processes may have
        // committed (and seen counters) a little above it meanwhile: jump far past them.
        target
            .execute(
                "UPDATE token SET slot_id = ?1, change_counter = max(change_counter, ?2) + ?3",
                params![slot_id as i64, before, RESTORE_COUNTER_JUMP],
            )
            .map_err(|e| db_error(dest, e))?;
        target.close().map_err(|(_, e)| db_error(dest, e))
    }

    fn err(&self, e: rusqlite::Error) -> Error {
        db_error(&self.path, e)
    }

    /// A write to the token record in one transaction: the epoch and the record's current
    /// tag are checked first, the record is re-tagged after `write`.
    fn record_write(
        &mut self,
        epoch: u64,
        key: &MacKey,
        write: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<()>,
    ) -> Result<()> {
        let path = self.path.clone();
        let tx = self.write_tx()?;
        check_epoch(&tx, &path, epoch)?;
        check_record(&tx, &path, key)?;
        write(&tx).map_err(|e| db_error(&path, e))?;
        tag_record(&tx, &path, key)?;
        tx.commit().map_err(|e| db_error(&path, e))
    }

    fn write_tx(&mut self) -> Result<Transaction<'_>> {
        let path = self.path.clone();
        self.conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| db_error(&path, e))
    }
}

/// The format of a ferrohsm store this build reads, or CKR_TOKEN_NOT_RECOGNIZED with why not.
fn check_format(conn: &Connection, path: &Path) -> Result<i64> {
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|e| not_recognized(path, e.to_string()))?;
    if version == 0 {
        return Err(not_recognized(path, "not a ferrohsm token store".into()));
    }
    if version > FORMAT_VERSION {
        return Err(not_recognized(
            path,
            format!(
                "store format {version} is newer than this ferrohsm supports ({FORMAT_VERSION}); upgrade ferrohsm"
            ),
        ));
    }
    Ok(version)
}

fn not_recognized(path: &Path, reason: String) -> Error {
    Error::with(
        CKR_TOKEN_NOT_RECOGNIZED,
        format!("token store {}: {reason}", path.display()),
    )
}

/// Copies every page of `source` into `target` in one step of SQLite's backup API (one read
/// snapshot of the source, one write transaction on the target), retrying while either is
/// busy until BUSY_TIMEOUT. `path` and `what` name the store in errors.
fn copy_database(
    source: &Connection,
    target: &mut Connection,
    path: &Path,
    what: &str,
) -> Result<()> {
    use rusqlite::backup::{Backup, StepResult};
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        let backup = Backup::new(source, target).map_err(|e| db_error(path, e))?;
        match backup.step(-1).map_err(|e| db_error(path, e))? {
            StepResult::Done => return Ok(()),
            _ if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {
                return Err(Error::with(
                    CKR_DEVICE_ERROR,
                    format!("{what} {}: store stayed busy", path.display()),
                ))
            }
        }
    }
}

fn db_error(path: &Path, e: rusqlite::Error) -> Error {
    // A full disk has its own code in every function that writes (C_CreateObject,
    // C_GenerateKeyPair, C_SetAttributeValue, C_SetPIN, ...).
    let rv = match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => CKR_DEVICE_MEMORY,
        _ => CKR_DEVICE_ERROR,
    };
    let reason = match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy) | Some(rusqlite::ErrorCode::DatabaseLocked) => {
            format!("still locked by another process after {BUSY_TIMEOUT:?}")
        }
        Some(rusqlite::ErrorCode::NotADatabase) => {
            "not a database (damaged or foreign file)".into()
        }
        _ => e.to_string(),
    };
    Error::with(rv, format!("token store {}: {reason}", path.display()))
}

fn write_pin(tx: &Transaction<'_>, user: UserType, pin: &PinRecord) -> rusqlite::Result<usize> {
    tx.execute(
        "INSERT OR REPLACE INTO pins
         (user_type, kdf_memory_kib, kdf_iterations, kdf_parallelism, salt, wrapped_key, failures,
          flags, attempts, success_at, counter_mac)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            user_key(user),
            pin.kdf.memory_kib,
            pin.kdf.iterations,
            pin.kdf.parallelism,
            pin.salt,
            pin.wrapped_key,
            pin.failures,
            pin.flags,
            pin.attempts as i64,
            pin.success_at as i64,
            pin.counter_mac
        ],
    )
}

/// The sealed-data writes check that the token was not re-initialised since the caller
/// unwrapped its token key.
fn check_epoch(tx: &Transaction<'_>, path: &Path, epoch: u64) -> Result<()> {
    let stored: i64 = tx
        .query_row("SELECT epoch FROM token", [], |row| row.get(0))
        .map_err(|e| db_error(path, e))?;
    if stored as u64 != epoch {
        return Err(Error::with(
            CKR_DEVICE_REMOVED,
            format!(
                "token {} was re-initialised (or its token key rotated) by another process",
                path.display()
            ),
        ));
    }
    Ok(())
}

fn bump_counter(tx: &Transaction<'_>) -> rusqlite::Result<u64> {
    tx.query_row(
        "UPDATE token SET change_counter = change_counter + 1 RETURNING change_counter",
        [],
        |row| row.get::<_, i64>(0),
    )
    .map(|c| c as u64)
}

/// Destroyed keys must not linger in free pages (a per-connection setting).
fn set_secure_delete(conn: &Connection, path: &Path) -> Result<()> {
    conn.pragma_update(None, "secure_delete", "ON")
        .map_err(|e| db_error(path, e))
}

/// The token record as stored (PIN records included) from a connection or transaction.
fn read_record(conn: &Connection, path: &Path, format: i64) -> Result<TokenRecord> {
    let read = || -> rusqlite::Result<(TokenRecord, Option<Vec<u8>>, Vec<u8>)> {
        let columns = match format {
            1 => "slot_id, label, serial, epoch, change_counter, NULL, x'', NULL",
            2 => "slot_id, label, serial, epoch, change_counter, public_key, x'', NULL",
            _ => "slot_id, label, serial, epoch, change_counter, public_key, object_set, mac",
        };
        let (mut record, public_key, object_set) =
            conn.query_row(&format!("SELECT {columns} FROM token"), [], |row| {
                Ok((
                    TokenRecord {
                        slot_id: row.get::<_, i64>(0)? as CK_SLOT_ID,
                        label: row.get(1)?,
                        serial: row.get(2)?,
                        epoch: row.get::<_, i64>(3)? as u64,
                        change_counter: row.get::<_, i64>(4)? as u64,
                        so_pin: None,
                        user_pin: None,
                        public_key: None,
                        object_set: Tag::default(),
                        mac: row.get(7)?,
                    },
                    row.get::<_, Option<Vec<u8>>>(5)?,
                    row.get::<_, Vec<u8>>(6)?,
                ))
            })?;
        let mut stmt = conn.prepare_cached(&format!("SELECT {} FROM pins", pin_columns(format)))?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let pin = pin_from_row(row)?;
            match row.get::<_, i64>(0)? {
                0 => record.so_pin = Some(pin),
                1 => record.user_pin = Some(pin),
                _ => {}
            }
        }
        Ok((record, public_key, object_set))
    };
    let (mut record, public_key, object_set) = read().map_err(|e| db_error(path, e))?;
    let in_path = |e: Error| {
        Error::with(
            e.rv,
            format!("token store {}: {}", path.display(), e.context),
        )
    };
    // Empty: no private object was ever tagged (a store not yet upgraded, or a new one).
    if !object_set.is_empty() {
        record.object_set =
            integrity::tag_from(&object_set, "object-set digest").map_err(in_path)?;
    }
    record.public_key = public_key
        .map(|key| PublicObjectKey::from_bytes(&key).map_err(in_path))
        .transpose()?;
    Ok(record)
}

/// Inside a write: the stored record's tag must hold under `key` before the write re-tags
/// it, so a record edited in the file is never blessed by a later write.
fn check_record(tx: &Transaction<'_>, path: &Path, key: &MacKey) -> Result<TokenRecord> {
    let record = read_record(tx, path, FORMAT_VERSION)?;
    rules::check_record_tag(&record, key, &path.display().to_string())?;
    Ok(record)
}

/// Re-tags the record as it now stands in the transaction.
fn tag_record(tx: &Transaction<'_>, path: &Path, key: &MacKey) -> Result<()> {
    let record = read_record(tx, path, FORMAT_VERSION)?;
    let tag = integrity::record_tag(key, &record);
    tx.execute("UPDATE token SET mac = ?1", [tag.as_slice()])
        .map_err(|e| db_error(path, e))?;
    Ok(())
}

/// One row of the objects-join-attributes query into `objects` (rows of one object are
/// adjacent).
fn push_object_row(
    objects: &mut Vec<StoredObject>,
    row: &rusqlite::Row<'_>,
) -> rusqlite::Result<()> {
    let id: i64 = row.get(0)?;
    let generation = row.get::<_, i64>(1)? as u64;
    let ty = row.get::<_, i64>(2)? as CK_ATTRIBUTE_TYPE;
    let sealed: i64 = row.get(3)?;
    // A value SQLite turned into TEXT (by hand edits) still reads as its bytes;
    // a damaged sealed value is then caught when it is opened.
    let value: Vec<u8> = match row.get_ref(4)? {
        rusqlite::types::ValueRef::Blob(b) | rusqlite::types::ValueRef::Text(b) => b.to_vec(),
        other => {
            return Err(rusqlite::Error::InvalidColumnType(
                4,
                "value".into(),
                other.data_type(),
            ))
        }
    };
    let value = match sealed {
        0 => StoredValue::Clear(value),
        1 => StoredValue::Sealed(Seal::Token, value),
        2 => StoredValue::Sealed(Seal::Public, value),
        other => return Err(rusqlite::Error::IntegralValueOutOfRange(3, other)),
    };
    match objects.last_mut() {
        Some(last) if last.id == id => last.attributes.push((ty, value)),
        _ => {
            let mac = match (row.get::<_, i64>(6)?, row.get::<_, Option<Vec<u8>>>(5)?) {
                (1, Some(tag)) => Some((Seal::Token, tag)),
                (2, Some(tag)) => Some((Seal::Public, tag)),
                _ => None,
            };
            objects.push(StoredObject {
                id,
                generation,
                attributes: vec![(ty, value)],
                mac,
                in_set: row.get::<_, i64>(7)? != 0,
            })
        }
    }
    Ok(())
}

/// Inserts the attribute rows of object `id`.
fn insert_attributes(
    tx: &Transaction<'_>,
    id: ObjectId,
    attributes: &[(CK_ATTRIBUTE_TYPE, StoredValue)],
) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO attributes (object_id, type, sealed, value) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (ty, value) in attributes {
        let (sealed, bytes) = match value {
            StoredValue::Clear(v) => (seal_code(None), v),
            StoredValue::Sealed(seal, v) => (seal_code(Some(*seal)), v),
        };
        stmt.execute(params![id, *ty as i64, sealed, bytes])?;
    }
    Ok(())
}

/// The audit log, oldest first.
fn read_audit(conn: &Connection) -> rusqlite::Result<Vec<AuditRow>> {
    let mut stmt = conn.prepare("SELECT seq, entry, chain FROM audit ORDER BY seq")?;
    let rows = stmt.query_map([], |row| {
        Ok(AuditRow {
            seq: row.get(0)?,
            entry: row.get(1)?,
            chain: row.get(2)?,
        })
    })?;
    rows.collect()
}

const SELECT_OBJECTS: &str =
    "SELECT o.id, o.generation, a.type, a.sealed, a.value, o.mac, o.mac_seal, o.in_set
     FROM objects o JOIN attributes a ON a.object_id = o.id";

/// Every object, in id order.
fn read_all_objects(tx: &Transaction<'_>) -> rusqlite::Result<Vec<StoredObject>> {
    let mut objects = Vec::new();
    let mut stmt = tx.prepare_cached(&format!("{SELECT_OBJECTS} ORDER BY o.id"))?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        push_object_row(&mut objects, row)?;
    }
    Ok(objects)
}

fn read_object(tx: &Transaction<'_>, id: ObjectId) -> rusqlite::Result<Option<StoredObject>> {
    let mut objects = Vec::new();
    let mut stmt = tx.prepare_cached(&format!("{SELECT_OBJECTS} WHERE o.id = ?1"))?;
    let mut rows = stmt.query([id])?;
    while let Some(row) = rows.next()? {
        push_object_row(&mut objects, row)?;
    }
    Ok(objects.pop())
}

/// Moves the record's object-set digest by `change` (XOR) and re-tags the record, after
/// checking its current tag.
fn update_object_set(tx: &Transaction<'_>, path: &Path, key: &MacKey, change: &Tag) -> Result<()> {
    let record = check_record(tx, path, key)?;
    let mut digest = record.object_set;
    integrity::xor_into(&mut digest, change);
    tx.execute("UPDATE token SET object_set = ?1", [digest.as_slice()])
        .map_err(|e| db_error(path, e))?;
    tag_record(tx, path, key)
}

impl TokenStore for SqliteStore {
    fn load_token(&mut self) -> Result<TokenRecord> {
        let path = self.path.clone();
        let format = self.format;
        let tx = self.conn.transaction().map_err(|e| db_error(&path, e))?;
        let record = read_record(&tx, &path, format)?;
        tx.commit().map_err(|e| db_error(&path, e))?;
        Ok(record)
    }

    fn backup_to(&mut self, dest: &Path) -> Result<()> {
        SqliteStore::backup_to(self, dest)
    }

    fn data_changed(&mut self) -> Result<bool> {
        // Asked before nearly every call: the statement is prepared once per connection.
        let version: i64 = self
            .conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut statement| statement.query_row([], |row| row.get(0)))
            .map_err(|e| self.err(e))?;
        let changed = self.data_version != Some(version);
        self.data_version = Some(version);
        Ok(changed)
    }

    fn count_pin_attempt(&mut self, user: UserType, limit: u32) -> Result<PinAttempt> {
        let path = self.path.clone();
        let tx = self.write_tx()?;
        let run = || -> rusqlite::Result<PinAttempt> {
            let record = tx
                .query_row(
                    &format!(
                        "SELECT {} FROM pins WHERE user_type = ?1",
                        pin_columns(FORMAT_VERSION)
                    ),
                    [user_key(user)],
                    pin_from_row,
                )
                .optional()?;
            let Some(record) = record else {
                return Ok(PinAttempt::Missing);
            };
            let attempt = rules::count_attempt(record, limit);
            if let PinAttempt::Counted { record, .. } = &attempt {
                tx.execute(
                    "UPDATE pins SET failures = ?2, attempts = ?3 WHERE user_type = ?1",
                    params![user_key(user), record.failures, record.attempts as i64],
                )?;
            }
            Ok(attempt)
        };
        let attempt = run().map_err(|e| db_error(&path, e))?;
        tx.commit().map_err(|e| db_error(&path, e))?;
        Ok(attempt)
    }

    fn pin_succeeded(
        &mut self,
        user: UserType,
        salt: &[u8],
        attempt: u64,
        counter_mac: &[u8],
    ) -> Result<()> {
        let path = self.path.clone();
        let tx = self.write_tx()?;
        let run = || -> rusqlite::Result<Option<i64>> {
            let attempts: Option<i64> = tx
                .query_row(
                    "SELECT attempts FROM pins WHERE user_type = ?1 AND salt = ?2",
                    params![user_key(user), salt],
                    |row| row.get(0),
                )
                .optional()?;
            if attempts.is_some_and(|a| a as u64 >= attempt) {
                tx.execute(
                    "UPDATE pins SET success_at = ?2, failures = attempts - ?2, counter_mac = ?3
                     WHERE user_type = ?1",
                    params![user_key(user), attempt as i64, counter_mac],
                )?;
            }
            Ok(attempts)
        };
        let stored = run().map_err(|e| db_error(&path, e))?;
        rules::success_recordable(
            stored.map(|a| a as u64),
            attempt,
            &path.display().to_string(),
        )?;
        tx.commit().map_err(|e| db_error(&path, e))
    }

    fn store_pin(
        &mut self,
        epoch: u64,
        user: UserType,
        pin: &PinRecord,
        key: &MacKey,
    ) -> Result<()> {
        self.record_write(epoch, key, |tx| write_pin(tx, user, pin).map(|_| ()))
    }

    fn rewrap_pin(
        &mut self,
        epoch: u64,
        user: UserType,
        flags: u32,
        wrapped: &[u8],
        key: &MacKey,
    ) -> Result<()> {
        self.record_write(epoch, key, |tx| {
            tx.execute(
                "UPDATE pins SET flags = ?1, wrapped_key = ?2 WHERE user_type = ?3",
                params![flags, wrapped, user_key(user)],
            )
            .map(|_| ())
        })
    }

    fn tag_all(
        &mut self,
        epoch: u64,
        key: &MacKey,
        in_set: &dyn Fn(&StoredObject) -> bool,
    ) -> Result<()> {
        let path = self.path.clone();
        let tx = self.write_tx()?;
        check_epoch(&tx, &path, epoch)?;
        let run = || -> Result<()> {
            let objects = read_all_objects(&tx).map_err(|e| db_error(&path, e))?;
            // A new generation for every object, so other processes re-read them with
            // their tags.
            let generation = bump_counter(&tx).map_err(|e| db_error(&path, e))?;
            let (retagged, digest) = rules::retag_all(&objects, key, epoch, generation, in_set);
            for r in &retagged {
                tx.execute(
                    "UPDATE objects SET generation = ?1, mac = ?2, mac_seal = 1, in_set = ?3
                     WHERE id = ?4",
                    params![generation as i64, r.tag.as_slice(), r.member, r.id],
                )
                .map_err(|e| db_error(&path, e))?;
            }
            tx.execute("UPDATE token SET object_set = ?1", [digest.as_slice()])
                .map_err(|e| db_error(&path, e))?;
            tag_record(&tx, &path, key)
        };
        run()?;
        tx.commit().map_err(|e| db_error(&path, e))
    }

    fn rotate_token_key(&mut self, rotation: &Rotation<'_>) -> Result<()> {
        let path = self.path.clone();
        let place = path.display().to_string();
        let tx = self.write_tx()?;
        check_epoch(&tx, &path, rotation.old_epoch)?;
        let record = read_record(&tx, &path, FORMAT_VERSION)?;
        let objects = read_all_objects(&tx).map_err(|e| db_error(&path, e))?;
        // A new generation for every object, so other processes re-read them.
        let generation = bump_counter(&tx).map_err(|e| db_error(&path, e))?;
        let rotated = rotation::rotate(rotation, &record, &objects, generation, &place)?;
        let run = || -> rusqlite::Result<()> {
            let mut update_object = tx.prepare_cached(
                "UPDATE objects SET generation = ?1, mac = ?2, mac_seal = ?3, in_set = ?4
                 WHERE id = ?5",
            )?;
            let mut update_value = tx.prepare_cached(
                "UPDATE attributes SET value = ?1 WHERE object_id = ?2 AND type = ?3",
            )?;
            for object in &rotated.objects {
                update_object.execute(params![
                    generation as i64,
                    object.tag.as_slice(),
                    seal_code(Some(object.seal)),
                    object.in_set,
                    object.id
                ])?;
                // The values under the token key are the re-sealed ones.
                for (ty, value) in &object.attributes {
                    if let StoredValue::Sealed(Seal::Token, blob) = value {
                        update_value.execute(params![blob, object.id, *ty as i64])?;
                    }
                }
            }
            tx.execute(
                "UPDATE token SET epoch = ?1, object_set = ?2",
                params![rotation.new_epoch as i64, rotated.object_set.as_slice()],
            )?;
            for pin in &rotated.pins {
                write_pin(&tx, pin.user, &pin.record)?;
            }
            Ok(())
        };
        run().map_err(|e| db_error(&path, e))?;
        tag_record(&tx, &path, &rotated.mac)?;
        tx.commit().map_err(|e| db_error(&path, e))
    }

    fn reinitialise(
        &mut self,
        label: &str,
        epoch: u64,
        so_pin: &PinRecord,
        public_key: &PublicObjectKey,
        key: &MacKey,
    ) -> Result<()> {
        let path = self.path.clone();
        let tx = self.write_tx()?;
        let run = || -> rusqlite::Result<()> {
            tx.execute("DELETE FROM attributes", [])?;
            tx.execute("DELETE FROM objects", [])?;
            tx.execute("DELETE FROM pins", [])?;
            bump_counter(&tx)?;
            tx.execute(
                "UPDATE token SET label = ?1, epoch = ?2, public_key = ?3, object_set = ?4",
                params![
                    label,
                    epoch as i64,
                    public_key.0.as_slice(),
                    Tag::default().as_slice()
                ],
            )?;
            write_pin(&tx, UserType::So, so_pin)?;
            Ok(())
        };
        run().map_err(|e| db_error(&path, e))?;
        tag_record(&tx, &path, key)?;
        tx.commit().map_err(|e| db_error(&path, e))
    }

    fn object_generations(&mut self) -> Result<Vec<(ObjectId, u64)>> {
        let path = self.path.clone();
        let run = || -> rusqlite::Result<Vec<(ObjectId, u64)>> {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT id, generation FROM objects")?;
            let rows = stmt.query_map([], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)? as u64))
            })?;
            rows.collect()
        };
        run().map_err(|e| db_error(&path, e))
    }

    fn load_objects(&mut self, ids: Option<&[ObjectId]>) -> Result<Vec<StoredObject>> {
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(|e| db_error(&path, e))?;
        let run = || -> rusqlite::Result<Vec<StoredObject>> {
            let mut objects: Vec<StoredObject> = Vec::new();
            match ids {
                None => {
                    let mut stmt = tx.prepare_cached(&format!("{SELECT_OBJECTS} ORDER BY o.id"))?;
                    let mut rows = stmt.query([])?;
                    while let Some(row) = rows.next()? {
                        push_object_row(&mut objects, row)?;
                    }
                }
                Some(ids) => {
                    let mut stmt =
                        tx.prepare_cached(&format!("{SELECT_OBJECTS} WHERE o.id = ?1"))?;
                    for id in ids {
                        let mut rows = stmt.query([id])?;
                        while let Some(row) = rows.next()? {
                            push_object_row(&mut objects, row)?;
                        }
                    }
                }
            }
            Ok(objects)
        };
        let objects = run().map_err(|e| db_error(&path, e))?;
        tx.commit().map_err(|e| db_error(&path, e))?;
        Ok(objects)
    }

    fn put_object(
        &mut self,
        epoch: u64,
        id: ObjectId,
        attributes: &[(CK_ATTRIBUTE_TYPE, StoredValue)],
        signer: &Signer<'_>,
    ) -> Result<StoredObject> {
        let path = self.path.clone();
        rules::check_signer(signer)?;
        let tx = self.write_tx()?;
        check_epoch(&tx, &path, epoch)?;
        let old = read_object(&tx, id).map_err(|e| db_error(&path, e))?;
        let generation = bump_counter(&tx).map_err(|e| db_error(&path, e))?;
        let (seal, key) = rules::signing_key(signer);
        let tag = integrity::object_tag(key, epoch, id, generation, signer.in_set, attributes);
        let run = || -> rusqlite::Result<()> {
            tx.execute(
                "INSERT OR REPLACE INTO objects (id, generation, mac, mac_seal, in_set)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    id,
                    generation as i64,
                    tag.as_slice(),
                    seal_code(Some(seal)),
                    signer.in_set
                ],
            )?;
            tx.execute("DELETE FROM attributes WHERE object_id = ?1", [id])?;
            insert_attributes(&tx, id, attributes)
        };
        run().map_err(|e| db_error(&path, e))?;
        if let Some((key, change)) = rules::set_change(old.as_ref(), signer, &tag) {
            update_object_set(&tx, &path, key, &change)?;
        }
        tx.commit().map_err(|e| db_error(&path, e))?;
        Ok(rules::written_object(
            id,
            generation,
            attributes,
            seal,
            &tag,
            signer.in_set,
        ))
    }

    fn delete_object(&mut self, epoch: u64, id: ObjectId, key: Option<&MacKey>) -> Result<()> {
        let path = self.path.clone();
        let tx = self.write_tx()?;
        check_epoch(&tx, &path, epoch)?;
        let old = read_object(&tx, id).map_err(|e| db_error(&path, e))?;
        let run = || -> rusqlite::Result<()> {
            bump_counter(&tx)?;
            tx.execute("DELETE FROM attributes WHERE object_id = ?1", [id])?;
            tx.execute("DELETE FROM objects WHERE id = ?1", [id])?;
            Ok(())
        };
        run().map_err(|e| db_error(&path, e))?;
        if let Some(key) = key {
            if let Some(tag) = old.as_ref().and_then(rules::member_tag) {
                update_object_set(&tx, &path, key, &tag)?;
            }
        }
        tx.commit().map_err(|e| db_error(&path, e))
    }

    fn append_audit(&mut self, entries: &[String]) -> Result<()> {
        let path = self.path.clone();
        let tx = self.write_tx()?;
        let run = || -> rusqlite::Result<()> {
            let last: Option<(i64, Vec<u8>)> = tx
                .query_row(
                    "SELECT seq, chain FROM audit ORDER BY seq DESC LIMIT 1",
                    [],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            let (mut seq, mut previous) = match last {
                Some((seq, chain)) => (seq, chain),
                None => (0, crate::audit::GENESIS.to_vec()),
            };
            let mut insert =
                tx.prepare_cached("INSERT INTO audit (seq, entry, chain) VALUES (?1, ?2, ?3)")?;
            for entry in entries {
                seq += 1;
                let chain = crate::audit::chain(&previous, seq, entry);
                insert.execute(rusqlite::params![seq, entry, chain.as_slice()])?;
                previous = chain.to_vec();
            }
            Ok(())
        };
        run().map_err(|e| db_error(&path, e))?;
        tx.commit().map_err(|e| db_error(&path, e))
    }

    fn audit_log(&mut self) -> Result<Vec<AuditRow>> {
        read_audit(&self.conn).map_err(|e| self.err(e))
    }
}
