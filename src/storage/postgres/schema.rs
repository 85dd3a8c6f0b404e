//! The tables of a PostgreSQL store: every token of the schema in the same tables, keyed
//! by slot id (stable for every host). Created on first use and upgraded by version, under
//! an advisory lock so that hosts starting together do it once.
//!
//! Integers are PostgreSQL's signed 64-bit values; `u64` ids, counters and attribute types
//! round-trip bit for bit through `as` casts, as in the SQLite store. Attribute values are
//! PKCS#11 wire form (native-endian CK_ULONG): the hosts sharing a store must have the same
//! byte order and word size.

use super::connect::pg_error;
use crate::error::{Error, Result};
use crate::storage::FORMAT_VERSION;
use cryptoki_sys::*;
use postgres::Client;

/// The advisory lock key of schema changes (any fixed number; "fhsm").
const SCHEMA_LOCK: i64 = 0x6668_736d;

/// The tables of `FORMAT_VERSION` (the same content as the SQLite store's).
const TABLES: &str = "
CREATE TABLE IF NOT EXISTS store_format (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 0),
    version BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    slot_id BIGINT PRIMARY KEY,
    label TEXT NOT NULL,
    serial TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    change_counter BIGINT NOT NULL,
    public_key BYTEA NOT NULL,
    object_set BYTEA NOT NULL,
    mac BYTEA
);
CREATE TABLE IF NOT EXISTS pins (
    slot_id BIGINT NOT NULL REFERENCES tokens ON DELETE CASCADE,
    user_type INTEGER NOT NULL,
    kdf_memory_kib BIGINT NOT NULL,
    kdf_iterations BIGINT NOT NULL,
    kdf_parallelism BIGINT NOT NULL,
    salt BYTEA NOT NULL,
    wrapped_key BYTEA NOT NULL,
    failures BIGINT NOT NULL,
    flags BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    success_at BIGINT NOT NULL,
    counter_mac BYTEA NOT NULL,
    PRIMARY KEY (slot_id, user_type)
);
-- mac_seal: the key of `mac` (0 none yet, 1 token MAC key, 2 public MAC key).
CREATE TABLE IF NOT EXISTS objects (
    slot_id BIGINT NOT NULL REFERENCES tokens ON DELETE CASCADE,
    id BIGINT NOT NULL,
    generation BIGINT NOT NULL,
    mac BYTEA,
    mac_seal INTEGER NOT NULL,
    in_set BOOLEAN NOT NULL,
    PRIMARY KEY (slot_id, id)
);
-- sealed: 0 clear, 1 sealed under the token key, 2 under the public-object key.
CREATE TABLE IF NOT EXISTS attributes (
    slot_id BIGINT NOT NULL,
    object_id BIGINT NOT NULL,
    attr_type BIGINT NOT NULL,
    sealed INTEGER NOT NULL,
    value BYTEA NOT NULL,
    PRIMARY KEY (slot_id, object_id, attr_type),
    FOREIGN KEY (slot_id, object_id) REFERENCES objects ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS audit (
    slot_id BIGINT NOT NULL REFERENCES tokens ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    entry TEXT NOT NULL,
    chain BYTEA NOT NULL,
    PRIMARY KEY (slot_id, seq)
);
";

/// Makes `schema` and its tables if they are missing; refuses a store of a newer format.
/// `place` names the store in errors. Runs in one transaction.
pub fn ensure(client: &mut Client, schema: &str, place: &str) -> Result<()> {
    let mut tx = client.transaction().map_err(|e| pg_error(place, e))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
        .map_err(|e| pg_error(place, e))?;
    // `schema` is checked to be a plain lowercase identifier (config::store).
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema}; SET LOCAL search_path TO {schema}; {TABLES}"
    ))
    .map_err(|e| pg_error(place, e))?;
    let version: Option<i64> = tx
        .query_opt("SELECT version FROM store_format", &[])
        .map_err(|e| pg_error(place, e))?
        .map(|row| row.get(0));
    match version {
        Some(v) if v > FORMAT_VERSION => {
            return Err(Error::with(
                CKR_TOKEN_NOT_RECOGNIZED,
                format!(
                    "token store {place}: store format {v} is newer than this ferrohsm supports ({FORMAT_VERSION}); upgrade ferrohsm"
                ),
            ))
        }
        // The first PostgreSQL format was the SQLite store's format 4; format 5 (PIN records
        // of the escrow form, see `storage::escrow`) changes no table. A later format adds
        // its steps here, as `sqlite::upgrade` does.
        Some(v) if v < FORMAT_VERSION => {
            tx.execute("UPDATE store_format SET version = $1", &[&FORMAT_VERSION])
                .map_err(|e| pg_error(place, e))?;
        }
        Some(_) => {}
        None => {
            tx.execute(
                "INSERT INTO store_format (singleton, version) VALUES (0, $1)",
                &[&FORMAT_VERSION],
            )
            .map_err(|e| pg_error(place, e))?;
        }
    }
    tx.commit().map_err(|e| pg_error(place, e))
}
