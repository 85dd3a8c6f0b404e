//! The audit log of key management (issue 11): every key created, imported, enabled,
//! disabled, scheduled for deletion or kept, destroyed; every PIN change, token key
//! rotation, failed login and lockout. Appended to the token store (one row per event, JSON), each row chained to the
//! one before by SHA-256 over (previous chain value, sequence number, entry), so a changed,
//! removed or inserted entry breaks the chain from there on (`verify`). What the chain
//! cannot show by itself is the loss of the newest entries together: `ferrohsm-util audit`
//! prints the count and the last chain value, to be kept elsewhere and compared.
//!
//! With `audit = "operations"` every operation with a private or secret key is an entry too
//! (key id, mechanism, result), written in batches (`PendingEntries`), one row per batch.

mod pending;

pub use pending::PendingEntries;

use crate::error::Error;
use crate::storage::AuditRow;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The chain value before the first entry.
pub const GENESIS: [u8; 32] = [0u8; 32];

/// The chain value of entry `seq` (`entry`) after `previous`.
pub fn chain(previous: &[u8], seq: i64, entry: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(previous);
    h.update(seq.to_be_bytes());
    h.update(entry.as_bytes());
    h.finalize().into()
}

/// One event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Seconds since the Unix epoch.
    pub time: u64,
    pub pid: u32,
    /// "user", "so" or "none" (not logged in).
    pub user: String,
    /// The key's CKA_ID in hex (a key id for KMS keys), empty for token events.
    pub key_id: String,
    /// `create`, `import`, `enable`, `disable`, `schedule-deletion`, `cancel-deletion`,
    /// `destroy`, `pin-change`, `rotate-token-key`, `login-failure`, `lockout`; with `audit = "operations"`
    /// also `encrypt`, `decrypt`, `sign`, `verify`, `wrap`.
    pub event: String,
    /// The `CKM_*` name of an operation's mechanism; absent for key management events.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mechanism: String,
    /// `CKR_OK` or the code the call failed with.
    pub result: String,
    /// How many times it happened: operations alike in everything above (the same second,
    /// one after the other) are one entry.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub count: u64,
}

fn one() -> u64 {
    1
}

fn is_one(n: &u64) -> bool {
    *n == 1
}

impl Entry {
    pub fn new(user: &str, key_id: &[u8], event: &str, result: &str) -> Entry {
        Entry {
            time: crate::object::lifecycle::now(),
            pid: std::process::id(),
            user: user.to_string(),
            key_id: hex::encode(key_id),
            event: event.to_string(),
            mechanism: String::new(),
            result: result.to_string(),
            count: 1,
        }
    }

    /// The entry of an operation.
    pub fn operation(op: &Operation, pid: u32) -> Entry {
        Entry {
            time: op.time,
            pid,
            user: op.user.to_string(),
            key_id: hex::encode(&op.key_use.key_id),
            event: op.key_use.event.to_string(),
            mechanism: crate::mechanism::registry::mechanism_name(op.key_use.mechanism),
            result: crate::error::rv_name(op.result).to_string(),
            count: op.count,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an audit entry serializes")
    }
}

/// What an operation does with which key, as the audit log names it: fixed when the
/// operation starts (C_*Init, C_WrapKey), shared by the entries it gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyUse {
    /// The key's CKA_ID.
    pub key_id: Vec<u8>,
    /// `encrypt`, `decrypt`, `sign`, `verify`, `wrap`.
    pub event: &'static str,
    pub mechanism: cryptoki_sys::CK_MECHANISM_TYPE,
}

/// An operation with a private or secret key as it happened: cheap to note (no text is
/// made, nothing copied, until it is written).
#[derive(Clone, Debug)]
pub struct Operation {
    pub time: u64,
    pub user: &'static str,
    pub key_use: std::sync::Arc<KeyUse>,
    pub result: cryptoki_sys::CK_RV,
    pub count: u64,
}

impl Operation {
    /// Counts one more of the same operation (same second, user, key, kind, mechanism and
    /// result) instead of a new entry; false when `other` differs.
    pub fn absorb(&mut self, other: &Operation) -> bool {
        let same = self.time == other.time
            && self.user == other.user
            && self.result == other.result
            && (std::sync::Arc::ptr_eq(&self.key_use, &other.key_use)
                || self.key_use == other.key_use);
        if same {
            self.count += other.count;
        }
        same
    }
}

/// Checks the chain of `rows`: Ok(number of entries), or the first entry where it breaks
/// (changed, removed, inserted or reordered there) with what is wrong.
pub fn verify(rows: &[AuditRow]) -> Result<usize, (i64, &'static str)> {
    let mut previous = GENESIS.to_vec();
    for (i, row) in rows.iter().enumerate() {
        if row.seq != i as i64 + 1 {
            return Err((row.seq, "an entry before it is missing"));
        }
        if chain(&previous, row.seq, &row.entry)[..] != row.chain[..] {
            return Err((row.seq, "the entry or one before it was changed"));
        }
        previous = row.chain.clone();
    }
    Ok(rows.len())
}

/// The entries of `rows`, parsed, each with its row's sequence number. A row holds one
/// key management event, or a JSON array of the operations of one batch.
pub fn entries(rows: &[AuditRow]) -> Result<Vec<(i64, Entry)>, Error> {
    let mut all = Vec::new();
    for row in rows {
        let not_entries = || {
            Error::with(
                cryptoki_sys::CKR_DEVICE_ERROR,
                format!("audit entry {} is not an entry", row.seq),
            )
        };
        if row.entry.starts_with('[') {
            let batch: Vec<Entry> = serde_json::from_str(&row.entry).map_err(|_| not_entries())?;
            all.extend(batch.into_iter().map(|e| (row.seq, e)));
        } else {
            all.push((
                row.seq,
                serde_json::from_str(&row.entry).map_err(|_| not_entries())?,
            ));
        }
    }
    Ok(all)
}

/// The row of a batch of operations: one JSON array (one insert and one chain step for the
/// whole batch, which keeps the log's cost per operation small).
pub fn batch_row(operations: &[Operation]) -> String {
    let pid = std::process::id();
    let entries: Vec<Entry> = operations
        .iter()
        .map(|op| Entry::operation(op, pid))
        .collect();
    serde_json::to_string(&entries).expect("audit entries serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(entries: &[&str]) -> Vec<AuditRow> {
        let mut previous = GENESIS.to_vec();
        entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let seq = i as i64 + 1;
                let c = chain(&previous, seq, e);
                previous = c.to_vec();
                AuditRow {
                    seq,
                    entry: e.to_string(),
                    chain: c.to_vec(),
                }
            })
            .collect()
    }

    #[test]
    fn a_changed_removed_or_inserted_entry_breaks_the_chain() {
        let good = rows(&["a", "b", "c"]);
        assert_eq!(verify(&good), Ok(3));
        let mut changed = good.clone();
        changed[1].entry = "B".into();
        assert_eq!(verify(&changed).unwrap_err().0, 2);
        let mut removed = good.clone();
        removed.remove(1);
        assert_eq!(verify(&removed).unwrap_err().0, 3);
        let mut renumbered = removed.clone();
        renumbered[1].seq = 2;
        assert_eq!(verify(&renumbered).unwrap_err().0, 2);
        assert_eq!(verify(&[]), Ok(0));
    }
}
