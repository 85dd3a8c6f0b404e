//! One token's store in PostgreSQL: the `TokenStore` of the SQLite backend, with the same
//! guarantees. Every change is one transaction that first locks the token's row
//! (`SELECT ... FOR UPDATE`), so the writers of one token, on any host, take turns as
//! SQLite's `BEGIN IMMEDIATE` makes them; the PIN counter is written in it before the PIN
//! is judged.
//!
//! Change detection: every write transaction notifies the other processes of the token's
//! slot (`feed`); `data_changed` reads the token's flag that the location's listener
//! raises, so it costs no round trip.
//!
//! Outages: while the database is down, nothing is flagged, so calls that need only what is
//! loaded (operations with loaded keys, searches) go on; every read or write that needs
//! the database fails with CKR_DEVICE_ERROR and tries to connect again (at most once a
//! second). When the listener is back, it flags every token for a full re-check.

use super::connect::{pg_error, Connector};
use super::feed::CHANNEL;
use super::sql::{CachedTx, Statements};
use crate::error::{Error, Result};
use crate::storage::integrity::{self, MacKey, Tag};
use crate::storage::rotation::{self, Rotation};
use crate::storage::{
    rules, AuditRow, KdfParams, ObjectId, PinAttempt, PinRecord, PublicObjectKey, Seal, Signer,
    StoredObject, StoredValue, TokenRecord, TokenStore,
};
use crate::token::UserType;
use cryptoki_sys::*;
use postgres::{Client, Row};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The shortest wait between two attempts to reach a database that is down.
const RECONNECT_INTERVAL: Duration = Duration::from_secs(1);

pub struct PgStore {
    connector: Arc<Connector>,
    slot: i64,
    /// None while the database is unreachable.
    client: Option<Client>,
    /// The statements prepared on `client`.
    statements: Statements,
    next_attempt: Instant,
    /// Raised by the location's listener when another process wrote to the token.
    changed: Arc<AtomicBool>,
    /// The payload of this store's notifications (see `feed`).
    payload: String,
    /// Said once per outage on stderr.
    outage_reported: bool,
    /// The change counter of the last record read.
    seen_counter: Option<u64>,
}

fn user_key(user: UserType) -> i32 {
    match user {
        UserType::So => 0,
        UserType::User => 1,
    }
}

fn seal_code(seal: Option<Seal>) -> i32 {
    match seal {
        None => 0,
        Some(Seal::Token) => 1,
        Some(Seal::Public) => 2,
    }
}

const PIN_COLUMNS: &str = "user_type, kdf_memory_kib, kdf_iterations, kdf_parallelism, salt, \
                           wrapped_key, failures, flags, attempts, success_at, counter_mac";

fn pin_from_row(row: &Row) -> PinRecord {
    PinRecord {
        kdf: KdfParams {
            memory_kib: row.get::<_, i64>(1) as u32,
            iterations: row.get::<_, i64>(2) as u32,
            parallelism: row.get::<_, i64>(3) as u32,
        },
        salt: row.get(4),
        wrapped_key: row.get(5),
        failures: row.get::<_, i64>(6) as u32,
        flags: row.get::<_, i64>(7) as u32,
        attempts: row.get::<_, i64>(8) as u64,
        success_at: row.get::<_, i64>(9) as u64,
        counter_mac: row.get(10),
    }
}

/// Writes (inserts or replaces) one PIN record of `slot`.
pub(super) fn write_pin(
    tx: &mut CachedTx<'_>,
    slot: i64,
    user: UserType,
    pin: &PinRecord,
) -> std::result::Result<u64, postgres::Error> {
    tx.execute(
        "INSERT INTO pins (slot_id, user_type, kdf_memory_kib, kdf_iterations, kdf_parallelism,
                           salt, wrapped_key, failures, flags, attempts, success_at, counter_mac)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (slot_id, user_type) DO UPDATE SET
           kdf_memory_kib = EXCLUDED.kdf_memory_kib, kdf_iterations = EXCLUDED.kdf_iterations,
           kdf_parallelism = EXCLUDED.kdf_parallelism, salt = EXCLUDED.salt,
           wrapped_key = EXCLUDED.wrapped_key, failures = EXCLUDED.failures,
           flags = EXCLUDED.flags, attempts = EXCLUDED.attempts,
           success_at = EXCLUDED.success_at, counter_mac = EXCLUDED.counter_mac",
        &[
            &slot,
            &user_key(user),
            &i64::from(pin.kdf.memory_kib),
            &i64::from(pin.kdf.iterations),
            &i64::from(pin.kdf.parallelism),
            &pin.salt,
            &pin.wrapped_key,
            &i64::from(pin.failures),
            &i64::from(pin.flags),
            &(pin.attempts as i64),
            &(pin.success_at as i64),
            &pin.counter_mac,
        ],
    )
}

/// The token record of `slot` with its PIN records; `place` names the store in errors.
pub(super) fn read_record(
    client: &mut CachedTx<'_>,
    slot: i64,
    place: &str,
) -> Result<TokenRecord> {
    let row = client
        .query_opt(
            "SELECT slot_id, label, serial, epoch, change_counter, public_key, object_set, mac
             FROM tokens WHERE slot_id = $1",
            &[&slot],
        )
        .map_err(|e| pg_error(place, e))?
        .ok_or_else(|| {
            Error::with(
                CKR_TOKEN_NOT_PRESENT,
                format!("token store {place}: slot {slot} was deleted"),
            )
        })?;
    let in_place = |e: Error| Error::with(e.rv, format!("token store {place}: {}", e.context));
    let object_set: Vec<u8> = row.get(6);
    let public_key: Vec<u8> = row.get(5);
    let mut record = TokenRecord {
        slot_id: row.get::<_, i64>(0) as CK_SLOT_ID,
        label: row.get(1),
        serial: row.get(2),
        epoch: row.get::<_, i64>(3) as u64,
        change_counter: row.get::<_, i64>(4) as u64,
        so_pin: None,
        user_pin: None,
        public_key: Some(PublicObjectKey::from_bytes(&public_key).map_err(in_place)?),
        object_set: Tag::default(),
        mac: row.get(7),
    };
    // Empty: no private object was ever tagged.
    if !object_set.is_empty() {
        record.object_set =
            integrity::tag_from(&object_set, "object-set digest").map_err(in_place)?;
    }
    let pins = client
        .query(
            &format!("SELECT {PIN_COLUMNS} FROM pins WHERE slot_id = $1"),
            &[&slot],
        )
        .map_err(|e| pg_error(place, e))?;
    for row in &pins {
        match row.get::<_, i32>(0) {
            0 => record.so_pin = Some(pin_from_row(row)),
            1 => record.user_pin = Some(pin_from_row(row)),
            _ => {}
        }
    }
    Ok(record)
}

const SELECT_OBJECTS: &str =
    "SELECT o.id, o.generation, a.attr_type, a.sealed, a.value, o.mac, o.mac_seal, o.in_set
     FROM objects o JOIN attributes a ON a.slot_id = o.slot_id AND a.object_id = o.id";

/// The rows of the objects-join-attributes query as objects (rows of one object adjacent).
pub(super) fn objects_from_rows(rows: &[Row], place: &str) -> Result<Vec<StoredObject>> {
    let mut objects: Vec<StoredObject> = Vec::new();
    for row in rows {
        let id: i64 = row.get(0);
        let ty = row.get::<_, i64>(2) as CK_ATTRIBUTE_TYPE;
        let value: Vec<u8> = row.get(4);
        let value = match row.get::<_, i32>(3) {
            0 => StoredValue::Clear(value),
            1 => StoredValue::Sealed(Seal::Token, value),
            2 => StoredValue::Sealed(Seal::Public, value),
            other => {
                return Err(Error::with(
                    CKR_DEVICE_ERROR,
                    format!("token store {place}: object {id} has an unknown seal code {other}"),
                ))
            }
        };
        match objects.last_mut() {
            Some(last) if last.id == id => last.attributes.push((ty, value)),
            _ => {
                let mac = match (row.get::<_, i32>(6), row.get::<_, Option<Vec<u8>>>(5)) {
                    (1, Some(tag)) => Some((Seal::Token, tag)),
                    (2, Some(tag)) => Some((Seal::Public, tag)),
                    _ => None,
                };
                objects.push(StoredObject {
                    id,
                    generation: row.get::<_, i64>(1) as u64,
                    attributes: vec![(ty, value)],
                    mac,
                    in_set: row.get(7),
                });
            }
        }
    }
    Ok(objects)
}

/// Every object of `slot` (or those of `ids`), in id order.
pub(super) fn read_objects(
    client: &mut CachedTx<'_>,
    slot: i64,
    ids: Option<&[ObjectId]>,
    place: &str,
) -> Result<Vec<StoredObject>> {
    let rows = match ids {
        None => client.query(
            &format!("{SELECT_OBJECTS} WHERE o.slot_id = $1 ORDER BY o.id, a.attr_type"),
            &[&slot],
        ),
        Some(ids) => client.query(
            &format!(
                "{SELECT_OBJECTS} WHERE o.slot_id = $1 AND o.id = ANY($2) ORDER BY o.id, a.attr_type"
            ),
            &[&slot, &ids],
        ),
    }
    .map_err(|e| pg_error(place, e))?;
    objects_from_rows(&rows, place)
}

/// Inserts one object's rows (the object row must not exist).
pub(super) fn insert_object(
    tx: &mut CachedTx<'_>,
    slot: i64,
    object: &StoredObject,
) -> std::result::Result<(), postgres::Error> {
    let (mac_seal, mac) = match &object.mac {
        Some((seal, tag)) => (seal_code(Some(*seal)), Some(tag.as_slice())),
        None => (0, None),
    };
    tx.execute(
        "INSERT INTO objects (slot_id, id, generation, mac, mac_seal, in_set)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &slot,
            &object.id,
            &(object.generation as i64),
            &mac,
            &mac_seal,
            &object.in_set,
        ],
    )?;
    // All rows in one statement (arrays unnested by the server): one round trip per
    // object instead of one per attribute, which made C_CreateObject ~7x SQLite's.
    let mut types = Vec::with_capacity(object.attributes.len());
    let mut seals = Vec::with_capacity(object.attributes.len());
    let mut values = Vec::with_capacity(object.attributes.len());
    for (ty, value) in &object.attributes {
        let (sealed, bytes) = match value {
            StoredValue::Clear(v) => (seal_code(None), v),
            StoredValue::Sealed(seal, v) => (seal_code(Some(*seal)), v),
        };
        types.push(*ty as i64);
        seals.push(sealed);
        values.push(bytes.as_slice());
    }
    tx.execute(
        "INSERT INTO attributes (slot_id, object_id, attr_type, sealed, value)
         SELECT $1, $2, t, s, v FROM unnest($3::bigint[], $4::integer[], $5::bytea[]) AS a(t, s, v)",
        &[&slot, &object.id, &types, &seals, &values],
    )?;
    Ok(())
}

/// Appends audit entries to `slot`'s chain, after its last one.
pub(super) fn append_audit_rows(
    tx: &mut CachedTx<'_>,
    slot: i64,
    entries: &[String],
) -> std::result::Result<(), postgres::Error> {
    let last = tx.query_opt(
        "SELECT seq, chain FROM audit WHERE slot_id = $1 ORDER BY seq DESC LIMIT 1",
        &[&slot],
    )?;
    let (mut seq, mut previous): (i64, Vec<u8>) = match last {
        Some(row) => (row.get(0), row.get(1)),
        None => (0, crate::audit::GENESIS.to_vec()),
    };
    for entry in entries {
        seq += 1;
        let chain = crate::audit::chain(&previous, seq, entry);
        tx.execute(
            "INSERT INTO audit (slot_id, seq, entry, chain) VALUES ($1, $2, $3, $4)",
            &[&slot, &seq, entry, &chain.as_slice()],
        )?;
        previous = chain.to_vec();
    }
    Ok(())
}

/// The audit log of `slot`, oldest first.
pub(super) fn read_audit(
    client: &mut CachedTx<'_>,
    slot: i64,
    place: &str,
) -> Result<Vec<AuditRow>> {
    let rows = client
        .query(
            "SELECT seq, entry, chain FROM audit WHERE slot_id = $1 ORDER BY seq",
            &[&slot],
        )
        .map_err(|e| pg_error(place, e))?;
    Ok(rows
        .iter()
        .map(|row| AuditRow {
            seq: row.get(0),
            entry: row.get(1),
            chain: row.get(2),
        })
        .collect())
}

impl PgStore {
    /// The store of `slot` (which must exist: CKR_TOKEN_NOT_PRESENT otherwise), its
    /// changes flagged in `changed`, its writes notified with `payload`.
    pub fn open(
        connector: Arc<Connector>,
        slot: i64,
        changed: Arc<AtomicBool>,
        payload: String,
    ) -> Result<PgStore> {
        let mut store = PgStore {
            connector,
            slot,
            client: None,
            statements: Statements::default(),
            next_attempt: Instant::now(),
            changed,
            payload,
            outage_reported: false,
            seen_counter: None,
        };
        store.load_token()?;
        Ok(store)
    }

    fn place(&self) -> String {
        format!("{} slot {}", self.connector.place(), self.slot)
    }

    /// The live session, connecting when there is none; while the database is down, at
    /// most one attempt a second, CKR_DEVICE_ERROR in between.
    fn client(&mut self) -> Result<&mut Client> {
        if self.client.as_ref().is_some_and(Client::is_closed) {
            self.lost();
        }
        if self.client.is_none() {
            let now = Instant::now();
            if now < self.next_attempt {
                return Err(Error::with(
                    CKR_DEVICE_ERROR,
                    format!("token store {}: the database is unreachable", self.place()),
                ));
            }
            self.next_attempt = now + RECONNECT_INTERVAL;
            match self.connector.connect() {
                Ok(client) => {
                    if self.outage_reported {
                        eprintln!("ferrohsm: token store {}: connected again", self.place());
                    }
                    self.outage_reported = false;
                    self.client = Some(client);
                }
                Err(e) => {
                    self.report_outage(&e);
                    return Err(e);
                }
            }
        }
        Ok(self.client.as_mut().expect("connected above"))
    }

    /// The connection broke: the next use connects again.
    fn lost(&mut self) {
        // Dropping a closed client sends nothing; its runtime goes with it, and its
        // prepared statements with it.
        self.client = None;
        self.statements = Statements::default();
    }

    fn report_outage(&mut self, e: &Error) {
        if !self.outage_reported {
            eprintln!(
                "ferrohsm: {}; loaded keys keep working, changes fail until it is back",
                e.context
            );
            self.outage_reported = true;
        }
    }

    /// Runs `f` in one transaction on the session; a broken connection is dropped (the
    /// next call reconnects) and reported.
    fn with_tx<T>(
        &mut self,
        f: impl FnOnce(&mut CachedTx<'_>, i64, &str) -> Result<T>,
    ) -> Result<T> {
        let place = self.place();
        let slot = self.slot;
        self.client()?;
        let client = self.client.as_mut().expect("connected above");
        let result = client
            .transaction()
            .map_err(|e| pg_error(&place, e))
            .and_then(|tx| {
                let mut tx = CachedTx::new(tx, &mut self.statements);
                let value = f(&mut tx, slot, &place)?;
                tx.commit().map_err(|e| pg_error(&place, e))?;
                Ok(value)
            });
        if result.is_err() && client.is_closed() {
            self.lost();
            // What this call did not read must be read at the next one.
            self.changed.store(true, Ordering::SeqCst);
            if let Err(e) = &result {
                self.report_outage(e);
            }
        }
        result
    }

    /// A write to the token's rows: locks the token row (the writers of a token take
    /// turns), checks the epoch, runs `f`, and notifies the other sessions at commit.
    fn write<T>(
        &mut self,
        epoch: Option<u64>,
        f: impl FnOnce(&mut CachedTx<'_>, i64, &str) -> Result<T>,
    ) -> Result<T> {
        let payload = self.payload.clone();
        self.with_tx(|tx, slot, place| {
            let row = tx
                .query_opt(
                    "SELECT epoch FROM tokens WHERE slot_id = $1 FOR UPDATE",
                    &[&slot],
                )
                .map_err(|e| pg_error(place, e))?
                .ok_or_else(|| {
                    Error::with(
                        CKR_DEVICE_REMOVED,
                        format!("token store {place}: the token was deleted"),
                    )
                })?;
            if let Some(epoch) = epoch {
                if row.get::<_, i64>(0) as u64 != epoch {
                    return Err(Error::with(
                        CKR_DEVICE_REMOVED,
                        format!(
                            "token {place} was re-initialised (or its token key rotated) by \
                             another process"
                        ),
                    ));
                }
            }
            let value = f(tx, slot, place)?;
            tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])
                .map_err(|e| pg_error(place, e))?;
            Ok(value)
        })
    }

    /// A write to the token record: the record's current tag is checked first, and the
    /// record re-tagged after `f`.
    fn record_write(
        &mut self,
        epoch: u64,
        key: &MacKey,
        f: impl FnOnce(&mut CachedTx<'_>, i64) -> std::result::Result<(), postgres::Error>,
    ) -> Result<()> {
        self.write(Some(epoch), |tx, slot, place| {
            check_record(tx, slot, place, key)?;
            f(tx, slot).map_err(|e| pg_error(place, e))?;
            tag_record(tx, slot, place, key)
        })
    }
}

fn check_record(
    tx: &mut CachedTx<'_>,
    slot: i64,
    place: &str,
    key: &MacKey,
) -> Result<TokenRecord> {
    let record = read_record(tx, slot, place)?;
    rules::check_record_tag(&record, key, place)?;
    Ok(record)
}

fn tag_record(tx: &mut CachedTx<'_>, slot: i64, place: &str, key: &MacKey) -> Result<()> {
    let record = read_record(tx, slot, place)?;
    let tag = integrity::record_tag(key, &record);
    tx.execute(
        "UPDATE tokens SET mac = $2 WHERE slot_id = $1",
        &[&slot, &tag.as_slice()],
    )
    .map_err(|e| pg_error(place, e))?;
    Ok(())
}

fn bump_counter(tx: &mut CachedTx<'_>, slot: i64, place: &str) -> Result<u64> {
    tx.query_one(
        "UPDATE tokens SET change_counter = change_counter + 1 WHERE slot_id = $1
         RETURNING change_counter",
        &[&slot],
    )
    .map(|row| row.get::<_, i64>(0) as u64)
    .map_err(|e| pg_error(place, e))
}

/// Moves the record's object-set digest by `change` and re-tags it, after checking it.
fn update_object_set(
    tx: &mut CachedTx<'_>,
    slot: i64,
    place: &str,
    key: &MacKey,
    change: &Tag,
) -> Result<()> {
    let record = check_record(tx, slot, place, key)?;
    let mut digest = record.object_set;
    integrity::xor_into(&mut digest, change);
    set_object_set(tx, slot, place, key, &digest)
}

/// Stores the object-set digest and re-tags the record.
fn set_object_set(
    tx: &mut CachedTx<'_>,
    slot: i64,
    place: &str,
    key: &MacKey,
    digest: &Tag,
) -> Result<()> {
    tx.execute(
        "UPDATE tokens SET object_set = $2 WHERE slot_id = $1",
        &[&slot, &digest.as_slice()],
    )
    .map_err(|e| pg_error(place, e))?;
    tag_record(tx, slot, place, key)
}

fn delete_rows(
    tx: &mut CachedTx<'_>,
    slot: i64,
    id: Option<ObjectId>,
) -> std::result::Result<(), postgres::Error> {
    match id {
        Some(id) => tx.execute(
            "DELETE FROM objects WHERE slot_id = $1 AND id = $2",
            &[&slot, &id],
        ),
        None => tx.execute("DELETE FROM objects WHERE slot_id = $1", &[&slot]),
    }
    .map(|_| ())
}

impl TokenStore for PgStore {
    fn load_token(&mut self) -> Result<TokenRecord> {
        let record = self.with_tx(read_record)?;
        self.seen_counter = Some(record.change_counter);
        Ok(record)
    }

    /// A raised flag is confirmed by reading the change counter (one round trip, only
    /// after a notification): true only when the database is reachable now and moved past
    /// what this store last read, so a reconnecting listener's "maybe" costs no reload, and
    /// while the database is down the flag stays up and the call goes on with what is
    /// loaded.
    fn data_changed(&mut self) -> Result<bool> {
        if !self.changed.swap(false, Ordering::SeqCst) {
            return Ok(false);
        }
        let slot = self.slot;
        let place = self.place();
        let counter = self.client().and_then(|client| {
            client
                .query_opt(
                    "SELECT change_counter FROM tokens WHERE slot_id = $1",
                    &[&slot],
                )
                .map_err(|e| pg_error(&place, e))
        });
        match counter {
            // Deleted: the reload says so.
            Ok(None) => Ok(true),
            Ok(Some(row)) => Ok(self.seen_counter != Some(row.get::<_, i64>(0) as u64)),
            Err(e) => {
                if self.client.as_ref().is_some_and(Client::is_closed) {
                    self.lost();
                }
                self.report_outage(&e);
                self.changed.store(true, Ordering::SeqCst);
                Ok(false)
            }
        }
    }

    fn count_pin_attempt(&mut self, user: UserType, limit: u32) -> Result<PinAttempt> {
        self.write(None, |tx, slot, place| {
            let row = tx
                .query_opt(
                    &format!("SELECT {PIN_COLUMNS} FROM pins WHERE slot_id = $1 AND user_type = $2"),
                    &[&slot, &user_key(user)],
                )
                .map_err(|e| pg_error(place, e))?;
            let Some(row) = row else {
                return Ok(PinAttempt::Missing);
            };
            let attempt = rules::count_attempt(pin_from_row(&row), limit);
            if let PinAttempt::Counted { record, .. } = &attempt {
                tx.execute(
                    "UPDATE pins SET failures = $3, attempts = $4 WHERE slot_id = $1 AND user_type = $2",
                    &[
                        &slot,
                        &user_key(user),
                        &i64::from(record.failures),
                        &(record.attempts as i64),
                    ],
                )
                .map_err(|e| pg_error(place, e))?;
            }
            Ok(attempt)
        })
    }

    fn pin_succeeded(
        &mut self,
        user: UserType,
        salt: &[u8],
        attempt: u64,
        counter_mac: &[u8],
    ) -> Result<()> {
        self.write(None, |tx, slot, place| {
            let stored: Option<i64> = tx
                .query_opt(
                    "SELECT attempts FROM pins WHERE slot_id = $1 AND user_type = $2 AND salt = $3",
                    &[&slot, &user_key(user), &salt],
                )
                .map_err(|e| pg_error(place, e))?
                .map(|row| row.get(0));
            rules::success_recordable(stored.map(|a| a as u64), attempt, place)?;
            tx.execute(
                "UPDATE pins SET success_at = $3, failures = attempts - $3, counter_mac = $4
                 WHERE slot_id = $1 AND user_type = $2",
                &[&slot, &user_key(user), &(attempt as i64), &counter_mac],
            )
            .map_err(|e| pg_error(place, e))?;
            Ok(())
        })
    }

    fn store_pin(
        &mut self,
        epoch: u64,
        user: UserType,
        pin: &PinRecord,
        key: &MacKey,
    ) -> Result<()> {
        self.record_write(epoch, key, |tx, slot| {
            write_pin(tx, slot, user, pin).map(|_| ())
        })
    }

    fn rewrap_pin(
        &mut self,
        epoch: u64,
        user: UserType,
        flags: u32,
        wrapped: &[u8],
        key: &MacKey,
    ) -> Result<()> {
        self.record_write(epoch, key, |tx, slot| {
            tx.execute(
                "UPDATE pins SET flags = $3, wrapped_key = $4 WHERE slot_id = $1 AND user_type = $2",
                &[&slot, &user_key(user), &i64::from(flags), &wrapped],
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
        self.write(Some(epoch), |tx, slot, place| {
            let objects = read_objects(tx, slot, None, place)?;
            let generation = bump_counter(tx, slot, place)?;
            let (retagged, digest) = rules::retag_all(&objects, key, epoch, generation, in_set);
            for r in &retagged {
                tx.execute(
                    "UPDATE objects SET generation = $3, mac = $4, mac_seal = 1, in_set = $5
                     WHERE slot_id = $1 AND id = $2",
                    &[
                        &slot,
                        &r.id,
                        &(generation as i64),
                        &r.tag.as_slice(),
                        &r.member,
                    ],
                )
                .map_err(|e| pg_error(place, e))?;
            }
            set_object_set(tx, slot, place, key, &digest)
        })
    }

    fn rotate_token_key(&mut self, rotation: &Rotation<'_>) -> Result<()> {
        self.write(Some(rotation.old_epoch), |tx, slot, place| {
            let record = read_record(tx, slot, place)?;
            let objects = read_objects(tx, slot, None, place)?;
            // A new generation for every object, so other processes re-read them.
            let generation = bump_counter(tx, slot, place)?;
            let rotated = rotation::rotate(rotation, &record, &objects, generation, place)?;
            let run = |tx: &mut CachedTx<'_>| -> std::result::Result<(), postgres::Error> {
                const UPDATE_OBJECT: &str = "UPDATE objects
                    SET generation = $3, mac = $4, mac_seal = $5, in_set = $6
                    WHERE slot_id = $1 AND id = $2";
                const UPDATE_VALUE: &str = "UPDATE attributes SET value = $4
                    WHERE slot_id = $1 AND object_id = $2 AND attr_type = $3";
                for object in &rotated.objects {
                    tx.execute(
                        UPDATE_OBJECT,
                        &[
                            &slot,
                            &object.id,
                            &(generation as i64),
                            &object.tag.as_slice(),
                            &seal_code(Some(object.seal)),
                            &object.in_set,
                        ],
                    )?;
                    // The values under the token key are the re-sealed ones.
                    for (ty, value) in &object.attributes {
                        if let StoredValue::Sealed(Seal::Token, blob) = value {
                            tx.execute(UPDATE_VALUE, &[&slot, &object.id, &(*ty as i64), blob])?;
                        }
                    }
                }
                tx.execute(
                    "UPDATE tokens SET epoch = $2 WHERE slot_id = $1",
                    &[&slot, &(rotation.new_epoch as i64)],
                )?;
                for pin in &rotated.pins {
                    write_pin(tx, slot, pin.user, &pin.record)?;
                }
                Ok(())
            };
            run(tx).map_err(|e| pg_error(place, e))?;
            set_object_set(tx, slot, place, &rotated.mac, &rotated.object_set)
        })
    }

    fn reinitialise(
        &mut self,
        label: &str,
        epoch: u64,
        so_pin: &PinRecord,
        public_key: &PublicObjectKey,
        key: &MacKey,
    ) -> Result<()> {
        self.write(None, |tx, slot, place| {
            let run = |tx: &mut CachedTx<'_>| -> std::result::Result<(), postgres::Error> {
                delete_rows(tx, slot, None)?;
                tx.execute("DELETE FROM pins WHERE slot_id = $1", &[&slot])?;
                tx.execute(
                    "UPDATE tokens SET label = $2, epoch = $3, public_key = $4, object_set = $5,
                     change_counter = change_counter + 1 WHERE slot_id = $1",
                    &[
                        &slot,
                        &label,
                        &(epoch as i64),
                        &public_key.0.as_slice(),
                        &Tag::default().as_slice(),
                    ],
                )?;
                write_pin(tx, slot, UserType::So, so_pin)?;
                Ok(())
            };
            run(tx).map_err(|e| pg_error(place, e))?;
            tag_record(tx, slot, place, key)
        })
    }

    fn object_generations(&mut self) -> Result<Vec<(ObjectId, u64)>> {
        self.with_tx(|tx, slot, place| {
            let rows = tx
                .query(
                    "SELECT id, generation FROM objects WHERE slot_id = $1",
                    &[&slot],
                )
                .map_err(|e| pg_error(place, e))?;
            Ok(rows
                .iter()
                .map(|row| (row.get::<_, i64>(0), row.get::<_, i64>(1) as u64))
                .collect())
        })
    }

    fn load_objects(&mut self, ids: Option<&[ObjectId]>) -> Result<Vec<StoredObject>> {
        self.with_tx(|tx, slot, place| read_objects(tx, slot, ids, place))
    }

    fn put_object(
        &mut self,
        epoch: u64,
        id: ObjectId,
        attributes: &[(CK_ATTRIBUTE_TYPE, StoredValue)],
        signer: &Signer<'_>,
    ) -> Result<StoredObject> {
        rules::check_signer(signer)?;
        self.write(Some(epoch), |tx, slot, place| {
            let old = read_objects(tx, slot, Some(&[id]), place)?.pop();
            let generation = bump_counter(tx, slot, place)?;
            let (seal, key) = rules::signing_key(signer);
            let tag = integrity::object_tag(key, epoch, id, generation, signer.in_set, attributes);
            let written =
                rules::written_object(id, generation, attributes, seal, &tag, signer.in_set);
            delete_rows(tx, slot, Some(id))
                .and_then(|()| insert_object(tx, slot, &written))
                .map_err(|e| pg_error(place, e))?;
            if let Some((key, change)) = rules::set_change(old.as_ref(), signer, &tag) {
                update_object_set(tx, slot, place, key, &change)?;
            }
            Ok(written)
        })
    }

    fn delete_object(&mut self, epoch: u64, id: ObjectId, key: Option<&MacKey>) -> Result<()> {
        self.write(Some(epoch), |tx, slot, place| {
            let old = read_objects(tx, slot, Some(&[id]), place)?.pop();
            bump_counter(tx, slot, place)?;
            delete_rows(tx, slot, Some(id)).map_err(|e| pg_error(place, e))?;
            if let Some(key) = key {
                if let Some(tag) = old.as_ref().and_then(rules::member_tag) {
                    update_object_set(tx, slot, place, key, &tag)?;
                }
            }
            Ok(())
        })
    }

    fn backup_to(&mut self, dest: &Path) -> Result<()> {
        let image = self.with_tx(super::image::read)?;
        crate::storage::sqlite::SqliteStore::create_from_image(dest, &image)
    }

    fn append_audit(&mut self, entries: &[String]) -> Result<()> {
        // Not a token change: no notification.
        self.with_tx(|tx, slot, place| {
            tx.query_opt(
                "SELECT 1 FROM tokens WHERE slot_id = $1 FOR UPDATE",
                &[&slot],
            )
            .and_then(|_| append_audit_rows(tx, slot, entries))
            .map_err(|e| pg_error(place, e))
        })
    }

    fn audit_log(&mut self) -> Result<Vec<AuditRow>> {
        self.with_tx(read_audit)
    }
}
