//! What every `TokenStore` backend decides the same way, whatever its SQL: the PIN retry
//! counter's arithmetic, the record's tag check, and how an object write moves the
//! object-set digest. The backends only read and write rows around these.

use super::integrity::{self, MacKey, Tag};
use super::{PinAttempt, PinRecord, Seal, Signer, StoredObject, TokenRecord};
use crate::error::{Error, Result};
use cryptoki_sys::*;

/// Counts one attempt on `record` unless `limit` failures are counted already. Failures
/// are read as the larger of `failures` and `attempts - success_at`, so resetting one of
/// them in the store gains nothing; the counted record has `failures == attempts -
/// success_at` again. The caller writes `failures` and `attempts` back when `Counted`.
pub fn count_attempt(mut record: PinRecord, limit: u32) -> PinAttempt {
    let tampered = record.counter_inconsistent();
    let since_success = record.attempts.saturating_sub(record.success_at);
    let failures = u64::from(record.failures).max(since_success);
    if failures >= u64::from(limit) {
        return PinAttempt::Locked(record);
    }
    record.failures = u32::try_from(failures + 1).unwrap_or(u32::MAX);
    record.attempts += 1;
    PinAttempt::Counted { record, tampered }
}

/// Whether `pin_succeeded` may record attempt `attempt` on a record whose stored attempt
/// count is `stored` (`None`: the record with that salt is gone). `place` names the store.
pub fn success_recordable(stored: Option<u64>, attempt: u64, place: &str) -> Result<()> {
    match stored {
        None => Err(Error::with(
            CKR_PIN_INCORRECT,
            "the PIN was changed by another process while it was checked",
        )),
        Some(attempts) if attempts < attempt => Err(Error::with(
            CKR_DEVICE_ERROR,
            format!(
                "token store {place}: the PIN retry counter went backwards during the check \
                 (the store was edited)"
            ),
        )),
        Some(_) => Ok(()),
    }
}

/// Inside a write: the stored record's tag must hold under `key` before the write re-tags
/// it, so a record edited in the store is never blessed by a later write.
pub fn check_record_tag(record: &TokenRecord, key: &MacKey, place: &str) -> Result<()> {
    let holds = record
        .mac
        .as_ref()
        .is_some_and(|mac| integrity::tags_match(mac, &integrity::record_tag(key, record)));
    if holds {
        return Ok(());
    }
    Err(Error::with(
        CKR_DEVICE_ERROR,
        format!(
            "token store {place}: the token record fails its integrity check (changed outside ferrohsm?)"
        ),
    ))
}

/// The stored tag a member of the object set contributes to the record's digest.
pub fn member_tag(object: &StoredObject) -> Option<Tag> {
    match &object.mac {
        Some((Seal::Token, stored)) if object.in_set => {
            integrity::tag_from(stored, "object tag").ok()
        }
        _ => None,
    }
}

/// A private object written without the token key could never be checked.
pub fn check_signer(signer: &Signer<'_>) -> Result<()> {
    if signer.in_set && signer.token.is_none() {
        return Err(Error::with(
            CKR_GENERAL_ERROR,
            "a private object written without the token key",
        ));
    }
    Ok(())
}

/// The key an object write tags with, and which one it is.
pub fn signing_key<'a>(signer: &Signer<'a>) -> (Seal, &'a MacKey) {
    match signer.token {
        Some(key) => (Seal::Token, key),
        None => (Seal::Public, signer.public),
    }
}

/// How replacing `old` by an object tagged `tag` moves the object-set digest (XOR), with
/// the key to re-tag the record under; `None` when the set does not change.
pub fn set_change<'a>(
    old: Option<&StoredObject>,
    signer: &Signer<'a>,
    tag: &Tag,
) -> Option<(&'a MacKey, Tag)> {
    let key = signer.token?;
    let left = old.and_then(member_tag);
    if left.is_none() && !signer.in_set {
        return None;
    }
    let mut change = Tag::default();
    if let Some(old_tag) = left {
        integrity::xor_into(&mut change, &old_tag);
    }
    if signer.in_set {
        integrity::xor_into(&mut change, tag);
    }
    Some((key, change))
}

/// The row `put_object` returns.
pub fn written_object(
    id: super::ObjectId,
    generation: u64,
    attributes: &[(CK_ATTRIBUTE_TYPE, super::StoredValue)],
    seal: Seal,
    tag: &Tag,
    in_set: bool,
) -> StoredObject {
    StoredObject {
        id,
        generation,
        attributes: attributes.to_vec(),
        mac: Some((seal, tag.to_vec())),
        in_set,
    }
}

/// One object's new tag in `tag_all`, and whether it is a member of the object set.
pub struct Retagged {
    pub id: super::ObjectId,
    pub tag: Tag,
    pub member: bool,
}

/// `tag_all`'s arithmetic: every object tagged under `key` at the new `generation`
/// (`in_set` says which are members), and the digest of the members' tags.
pub fn retag_all(
    objects: &[StoredObject],
    key: &MacKey,
    epoch: u64,
    generation: u64,
    in_set: &dyn Fn(&StoredObject) -> bool,
) -> (Vec<Retagged>, Tag) {
    let mut digest = Tag::default();
    let retagged = objects
        .iter()
        .map(|object| {
            let member = in_set(object);
            let tag = integrity::object_tag(
                key,
                epoch,
                object.id,
                generation,
                member,
                &object.attributes,
            );
            if member {
                integrity::xor_into(&mut digest, &tag);
            }
            Retagged {
                id: object.id,
                tag,
                member,
            }
        })
        .collect();
    (retagged, digest)
}
