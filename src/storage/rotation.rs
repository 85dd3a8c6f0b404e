//! Rotating a token's key (`Token::rotate_token_key`, and every PIN change: `token::new_pin`):
//! what every backend computes alike inside the one transaction of
//! `TokenStore::rotate_token_key`. The backends read the record and every object in that
//! transaction, hand them to `rotate`, and write back what it returns; a failure anywhere
//! rolls the whole transaction back.
//!
//! Why it exists: re-wrapping the same token key under a new PIN would let an old copy of
//! the store and the old PIN give that key, which opens every private secret stored since.
//! After a rotation, the secrets sealed under the token key (and the tags, the counter MACs
//! and the wrapped copies in the PIN records) are under a new random key that no earlier
//! PIN record wraps. A PIN change replaces its own record (`NewPin::Record`) and re-wraps
//! the other one without its PIN (`seal::rewrap_token_key`, the escrow form).
//!
//! Nothing that fails its check is blessed: the record's tag, every object's tag, every
//! sealed value and both PIN records' counter MACs must hold under the old keys before
//! anything is re-sealed or re-tagged (else CKR_DEVICE_ERROR and no change: restore a
//! backup or destroy the failing object first).
//!
//! The epoch changes too: every other process holding the old token key then finds a new
//! epoch at its next call, which ends its login as a re-initialisation does, and the store
//! refuses any write it makes with the old epoch (CKR_DEVICE_REMOVED), so nothing is ever
//! sealed or tagged with the old key after the rotation commits. The objects survive; they
//! are read again with their new tags.

use super::integrity::{self, MacKey, Tag};
use super::seal::{self, CounterState, TokenKey};
use super::{
    rules, ObjectId, PinRecord, Seal, StoredObject, StoredValue, TokenRecord, PIN_COUNTER_MAC,
};
use crate::error::{Error, Result};
use crate::token::UserType;
use cryptoki_sys::*;

/// What one PIN record becomes in a rotation.
pub struct RewrappedPin {
    pub user: UserType,
    /// The record the token read (its salt and flags): the stored record must still be
    /// that one, else another process set a new PIN meanwhile.
    pub salt: Vec<u8>,
    pub flags: u32,
    pub new: NewPin,
}

/// A PIN record's new content.
pub enum NewPin {
    /// The same PIN, its record's token key wrapped anew (under the PIN key the token just
    /// derived, or without it for a record of the escrow form: `seal::rewrap_token_key`);
    /// salt, cost, flags and counter stay.
    Wrapped(Vec<u8>),
    /// A new PIN (C_SetPIN, C_InitPIN): the whole record, wrapping the new token key, its
    /// counter from zero. Its counter MAC is made here, at the new epoch.
    Record(PinRecord),
}

/// What `TokenStore::rotate_token_key` is asked to do.
pub struct Rotation<'a> {
    /// The epoch the old key belongs to (the store's, checked in the transaction).
    pub old_epoch: u64,
    pub new_epoch: u64,
    pub old_key: &'a TokenKey,
    pub new_key: &'a TokenKey,
    /// Every PIN record of the token, re-wrapped.
    pub pins: &'a [RewrappedPin],
}

/// One PIN record as the backend writes it (the whole row).
pub struct RotatedPin {
    pub user: UserType,
    pub record: PinRecord,
}

/// One object row as it now is: its re-sealed attributes and its new tag (under the key
/// kind `seal`), at the rotation's generation.
pub struct RotatedObject {
    pub id: ObjectId,
    pub attributes: Vec<(CK_ATTRIBUTE_TYPE, StoredValue)>,
    pub seal: Seal,
    pub tag: Tag,
    pub in_set: bool,
}

/// What the backend writes: every object row, the new object-set digest and PIN fields;
/// then it re-tags the record under `mac` (with the new epoch written).
pub struct Rotated {
    pub objects: Vec<RotatedObject>,
    pub object_set: Tag,
    pub pins: Vec<RotatedPin>,
    /// The new token MAC key.
    pub mac: MacKey,
}

/// The rotation of `record` and `objects` (the whole store, as read in the transaction),
/// every object moving to `generation`. `place` names the store in errors.
pub fn rotate(
    rotation: &Rotation<'_>,
    record: &TokenRecord,
    objects: &[StoredObject],
    generation: u64,
    place: &str,
) -> Result<Rotated> {
    let old_mac = MacKey::for_token(rotation.old_key);
    let new_mac = MacKey::for_token(rotation.new_key);
    rules::check_record_tag(record, &old_mac, place)?;
    let public_mac = record
        .public_key
        .as_ref()
        .map(MacKey::for_public)
        .ok_or_else(|| {
            Error::with(
                CKR_DEVICE_ERROR,
                format!("token store {place}: the record has no public-object key"),
            )
        })?;
    let mut set_before = Tag::default();
    let mut set_after = Tag::default();
    let mut rotated = Vec::with_capacity(objects.len());
    for object in objects {
        let seal = check_object(object, record.epoch, &old_mac, &public_mac, place)?;
        if let Some(tag) = rules::member_tag(object) {
            integrity::xor_into(&mut set_before, &tag);
        }
        let attributes = reseal(object, rotation)?;
        // Each row stays under the kind of key it was tagged with: rows written without
        // login keep the public MAC key (a PIN-less reader can still check them).
        let key = match seal {
            Seal::Token => &new_mac,
            Seal::Public => &public_mac,
        };
        let tag = integrity::object_tag(
            key,
            rotation.new_epoch,
            object.id,
            generation,
            object.in_set,
            &attributes,
        );
        if object.in_set {
            integrity::xor_into(&mut set_after, &tag);
        }
        rotated.push(RotatedObject {
            id: object.id,
            attributes,
            seal,
            tag,
            in_set: object.in_set,
        });
    }
    if set_before != record.object_set {
        return Err(Error::with(
            CKR_DEVICE_ERROR,
            format!(
                "token store {place}: the private objects do not match the token's object set \
                 (one was removed or put back outside ferrohsm); nothing was rotated: restore \
                 the token from a backup first"
            ),
        ));
    }
    let pins = rotate_pins(rotation, record, place)?;
    Ok(Rotated {
        objects: rotated,
        object_set: set_after,
        pins,
        mac: new_mac,
    })
}

/// The key kind `object`'s tag is under, once the tag holds (as `Token::judge` decides).
fn check_object(
    object: &StoredObject,
    epoch: u64,
    token_mac: &MacKey,
    public_mac: &MacKey,
    place: &str,
) -> Result<Seal> {
    let private = object.flag(CKA_PRIVATE, true);
    let holds = |key: &MacKey, tag: &[u8]| integrity::object_tag_holds(key, epoch, object, tag);
    let intact = match &object.mac {
        Some((Seal::Token, tag)) => object.in_set == private && holds(token_mac, tag),
        Some((Seal::Public, tag)) => !private && !object.in_set && holds(public_mac, tag),
        None => false,
    };
    match &object.mac {
        Some((seal, _)) if intact => Ok(*seal),
        _ => Err(Error::with(
            CKR_DEVICE_ERROR,
            format!(
                "token store {place}: stored object {} fails its integrity check; nothing was \
                 rotated: destroy it or restore the token from a backup first",
                object.id
            ),
        )),
    }
}

/// `object`'s attributes with every value sealed under the old token key opened and sealed
/// again under the new one (same associated data: object id and attribute type); values
/// under the public-object key and clear ones as they are.
fn reseal(
    object: &StoredObject,
    rotation: &Rotation<'_>,
) -> Result<Vec<(CK_ATTRIBUTE_TYPE, StoredValue)>> {
    object
        .attributes
        .iter()
        .map(|(ty, value)| match value {
            StoredValue::Sealed(Seal::Token, blob) => {
                // Zeroized when dropped, right after sealing.
                let plain = seal::unseal_attribute(rotation.old_key, object.id, *ty, blob)?;
                let blob = seal::seal_attribute(rotation.new_key, object.id, *ty, &plain)?;
                Ok((*ty, StoredValue::Sealed(Seal::Token, blob)))
            }
            other => Ok((*ty, other.clone())),
        })
        .collect()
}

/// Every PIN record under the new key: each must be the one the token read (same salt
/// and flags; CKR_PIN_INCORRECT when another process set a new PIN meanwhile), with a
/// counter MAC that holds under the old key unless it is being replaced; its new counter
/// MAC covers the same last success (a new PIN's record: its own) at the new epoch.
fn rotate_pins(
    rotation: &Rotation<'_>,
    record: &TokenRecord,
    place: &str,
) -> Result<Vec<RotatedPin>> {
    let mut rotated = Vec::new();
    for user in [UserType::So, UserType::User] {
        let Some(stored) = record.pin(user) else {
            continue;
        };
        let Some(pin) = rotation.pins.iter().find(|p| p.user == user) else {
            // A record left out would keep wrapping the old key.
            return Err(Error::with(
                CKR_GENERAL_ERROR,
                format!("token store {place}: the {user:?} PIN record was not re-wrapped"),
            ));
        };
        if stored.salt != pin.salt || stored.flags != pin.flags {
            return Err(Error::with(
                CKR_PIN_INCORRECT,
                format!("the {user:?} PIN was changed by another process during the rotation"),
            ));
        }
        // A record being replaced may fail its counter check: C_InitPIN is how the SO
        // gives a user whose counter was forged a valid record again.
        let replaced = matches!(pin.new, NewPin::Record(_));
        if !replaced
            && stored.flags & PIN_COUNTER_MAC != 0
            && !seal::counter_mac_ok(
                rotation.old_key,
                &counter_state(user, record.epoch, stored),
                &stored.counter_mac,
            )
        {
            return Err(Error::with(
                CKR_DEVICE_ERROR,
                format!(
                    "token store {place}: the {user:?} PIN retry counter fails authentication \
                     (the store was edited); nothing was rotated"
                ),
            ));
        }
        let mut new = match &pin.new {
            NewPin::Wrapped(wrapped_key) => PinRecord {
                wrapped_key: wrapped_key.clone(),
                ..stored.clone()
            },
            NewPin::Record(new) => new.clone(),
        };
        new.counter_mac = seal::counter_mac(
            rotation.new_key,
            &counter_state(user, rotation.new_epoch, &new),
        );
        rotated.push(RotatedPin { user, record: new });
    }
    Ok(rotated)
}

/// What `pin`'s counter MAC covers at `epoch`.
fn counter_state(user: UserType, epoch: u64, pin: &PinRecord) -> CounterState<'_> {
    CounterState {
        user_tag: user.wrap_tag(),
        epoch,
        salt: &pin.salt,
        success_at: pin.success_at,
    }
}
