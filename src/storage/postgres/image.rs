//! A token's whole store read from, or written to, the PostgreSQL tables as stored: for
//! backups (written as SQLite backup files), restores and `copy-store`.

use super::connect::pg_error;
use super::sql::CachedTx;
use super::store::{
    append_audit_rows, insert_object, read_audit, read_objects, read_record, write_pin,
};
use crate::error::Result;
use crate::storage::{StoreImage, TokenRecord};
use crate::token::UserType;

/// The image of `slot`, from one snapshot (the transaction must not have run a query yet).
pub fn read(tx: &mut CachedTx<'_>, slot: i64, place: &str) -> Result<StoreImage> {
    tx.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .map_err(|e| pg_error(place, e))?;
    Ok(StoreImage {
        record: read_record(tx, slot, place)?,
        objects: read_objects(tx, slot, None, place)?,
        audit: read_audit(tx, slot, place)?,
    })
}

/// Inserts `image` as the token of `slot` (no token may have that slot id) with
/// `change_counter` as its counter.
pub fn write(
    tx: &mut CachedTx<'_>,
    slot: i64,
    image: &StoreImage,
    change_counter: u64,
    place: &str,
) -> Result<()> {
    let record: &TokenRecord = &image.record;
    let public_key = record
        .public_key
        .as_ref()
        .map_or(Vec::new(), |k| k.0.to_vec());
    let run = |tx: &mut CachedTx<'_>| -> std::result::Result<(), postgres::Error> {
        tx.execute(
            "INSERT INTO tokens (slot_id, label, serial, epoch, change_counter, public_key,
                                 object_set, mac)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &slot,
                &record.label,
                &record.serial,
                &(record.epoch as i64),
                &(change_counter as i64),
                &public_key,
                &record.object_set.as_slice(),
                &record.mac,
            ],
        )?;
        for (user, pin) in [
            (UserType::So, &record.so_pin),
            (UserType::User, &record.user_pin),
        ] {
            if let Some(pin) = pin {
                write_pin(tx, slot, user, pin)?;
            }
        }
        for object in &image.objects {
            insert_object(tx, slot, object)?;
        }
        let entries: Vec<String> = image.audit.iter().map(|row| row.entry.clone()).collect();
        append_audit_rows(tx, slot, &entries)
    };
    run(tx).map_err(|e| pg_error(place, e))
}
