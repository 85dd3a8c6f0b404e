//! `ferrohsm-util copy-store`: every token of one location into another (a token directory
//! and a PostgreSQL schema, either way, or two of a kind), as stored: sealed values, tags,
//! PIN records and their counters, audit log. Each token is copied from one consistent
//! snapshot while applications go on using it, and appears at the destination whole or not
//! at all. A token whose slot id or serial the destination already has is left out.

use super::location::TokenLocation;
use crate::error::Result;
use cryptoki_sys::CK_SLOT_ID;

/// What happened to one token of the source.
#[derive(Debug)]
pub struct Copied {
    pub slot: CK_SLOT_ID,
    pub label: String,
    pub serial: String,
    pub objects: usize,
    /// Why it was left out; None when copied.
    pub skipped: Option<String>,
}

/// Copies every token of `from` into `to`, under `to`'s init lock.
pub fn copy_store(from: &dyn TokenLocation, to: &dyn TokenLocation) -> Result<Vec<Copied>> {
    let _lock = to.lock_init()?;
    let mut present = Vec::new();
    for name in to.names()? {
        if let Ok(mut store) = to.open(&name) {
            present.push(store.load_token()?);
        }
    }
    let mut report = Vec::new();
    for name in from.names()? {
        let image = from.image(&name)?;
        let record = &image.record;
        let same_serial = present.iter().find(|p| p.serial == record.serial);
        let skipped = match same_serial {
            Some(p) => Some(format!(
                "the destination has a token with serial {} (slot {})",
                p.serial, p.slot_id
            )),
            // A store there that cannot be opened keeps its slot too.
            None if to.slot_in_use(record.slot_id) => Some(format!(
                "the destination's slot {} is in use",
                record.slot_id
            )),
            None => None,
        };
        if skipped.is_none() {
            to.install(&image)?;
        }
        report.push(Copied {
            slot: record.slot_id,
            label: record.label.clone(),
            serial: record.serial.clone(),
            objects: image.objects.len(),
            skipped,
        });
    }
    Ok(report)
}
