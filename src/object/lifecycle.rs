//! Key states, the KMS view of a key's life (vendor attributes in `crate::vendor`): enabled,
//! disabled, pending deletion at a set time. A private or secret key that is not enabled
//! refuses every operation; one whose deletion time has passed is gone for every client
//! (hidden at once, its objects removed at the next login). The state changes through
//! C_SetAttributeValue along these transitions only, whatever CKA_MODIFIABLE says:
//!
//! | from \ to        | enabled | disabled | pending delete          |
//! |------------------|---------|----------|-------------------------|
//! | enabled          | -       | yes      | yes, with the time      |
//! | disabled         | yes     | -        | yes, with the time      |
//! | pending delete   | no      | yes (cancel: the time goes back to 0) | no |
//!
//! The deletion time must lie `key_deletion_min_days` to `KEY_DELETION_MAX_DAYS` days ahead.

use crate::config::KEY_DELETION_MAX_DAYS;
use crate::error::{Error, Result};
use crate::object::Attributes;
use crate::vendor::{
    CKA_FERROHSM_DELETION_TIME, CKA_FERROHSM_KEY_STATE, KEY_STATE_DISABLED, KEY_STATE_ENABLED,
    KEY_STATE_PENDING_DELETE,
};
use cryptoki_sys::*;
use std::time::{SystemTime, UNIX_EPOCH};

const DAY: u64 = 24 * 60 * 60;
/// How far before this check a client may have read the clock for its "now + N days": the
/// second can turn between its reading and ours (ferrohsm-util's schedule-key-deletion
/// sets both halves of a pair, one after the other), and the earliest time allowed with it.
const CLOCK_GRACE: u64 = 60;

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn state_of(attrs: &Attributes) -> CK_ULONG {
    attrs
        .get_ulong(CKA_FERROHSM_KEY_STATE)
        .ok()
        .flatten()
        .unwrap_or(KEY_STATE_ENABLED)
}

// CK_ULONG is 32 bits on some platforms: the cast is not always to the same type.
#[allow(clippy::unnecessary_cast)]
fn deletion_time(attrs: &Attributes) -> u64 {
    attrs
        .get_ulong(CKA_FERROHSM_DELETION_TIME)
        .ok()
        .flatten()
        .unwrap_or(0) as u64
}

/// True for a key whose scheduled deletion time has come: no client may see it any more.
pub fn expired(attrs: &Attributes, now: u64) -> bool {
    state_of(attrs) == KEY_STATE_PENDING_DELETE && deletion_time(attrs) <= now
}

/// A private or secret key may be used only while enabled.
pub fn check_usable(key: &Attributes) -> Result<()> {
    match state_of(key) {
        KEY_STATE_ENABLED => Ok(()),
        KEY_STATE_DISABLED => Err(Error::with(
            CKR_KEY_FUNCTION_NOT_PERMITTED,
            "the key is disabled (ferrohsm-util enable-key to use it again)",
        )),
        _ => Err(Error::with(
            CKR_KEY_FUNCTION_NOT_PERMITTED,
            "the key is scheduled for deletion (ferrohsm-util cancel-key-deletion keeps it)",
        )),
    }
}

fn invalid(what: &'static str) -> Error {
    Error::with(CKR_ATTRIBUTE_VALUE_INVALID, what)
}

/// Checks the state change from `current` to `changed` (both whole objects) at `now`.
pub fn check_change(
    current: &Attributes,
    changed: &Attributes,
    min_days: usize,
    now: u64,
) -> Result<()> {
    let (from, to) = (state_of(current), state_of(changed));
    let time = deletion_time(changed);
    match (from, to) {
        _ if ![
            KEY_STATE_ENABLED,
            KEY_STATE_DISABLED,
            KEY_STATE_PENDING_DELETE,
        ]
        .contains(&to) =>
        {
            Err(invalid("CKA_FERROHSM_KEY_STATE is not a KEY_STATE_* value"))
        }
        (KEY_STATE_PENDING_DELETE, KEY_STATE_PENDING_DELETE) if time != deletion_time(current) => {
            Err(invalid(
                "a scheduled deletion is cancelled first, then scheduled again",
            ))
        }
        (KEY_STATE_PENDING_DELETE, KEY_STATE_ENABLED) => Err(invalid(
            "a key pending deletion goes back to disabled (cancel), then may be enabled",
        )),
        (_, KEY_STATE_PENDING_DELETE) if from != KEY_STATE_PENDING_DELETE => {
            let earliest = (now + min_days as u64 * DAY).saturating_sub(CLOCK_GRACE);
            let latest = now + KEY_DELETION_MAX_DAYS as u64 * DAY;
            if (earliest..=latest).contains(&time) {
                Ok(())
            } else {
                Err(invalid(
                    "CKA_FERROHSM_DELETION_TIME must lie key_deletion_min_days to 30 days ahead",
                ))
            }
        }
        (_, KEY_STATE_PENDING_DELETE) => Ok(()),
        _ if time != 0 => Err(invalid(
            "CKA_FERROHSM_DELETION_TIME is set only with KEY_STATE_PENDING_DELETE",
        )),
        _ => Ok(()),
    }
}

/// The audit event of a state change from `current` to `changed`, if the state changed.
pub fn event(current: &Attributes, changed: &Attributes) -> Option<&'static str> {
    let (from, to) = (state_of(current), state_of(changed));
    match (from, to) {
        _ if from == to => None,
        (_, KEY_STATE_ENABLED) => Some("enable"),
        (KEY_STATE_PENDING_DELETE, KEY_STATE_DISABLED) => Some("cancel-deletion"),
        (_, KEY_STATE_DISABLED) => Some("disable"),
        (_, KEY_STATE_PENDING_DELETE) => Some("schedule-deletion"),
        _ => Some("state-change"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(state: CK_ULONG, time: u64) -> Attributes {
        let mut a = Attributes::new();
        a.set_ulong(CKA_FERROHSM_KEY_STATE, state);
        a.set_ulong(CKA_FERROHSM_DELETION_TIME, time as CK_ULONG);
        a
    }

    #[test]
    fn transitions_follow_the_table() {
        let now = 1_000_000_000;
        let week = now + 7 * DAY;
        let ok = |from: &Attributes, to: &Attributes| check_change(from, to, 7, now).is_ok();
        let enabled = key(KEY_STATE_ENABLED, 0);
        let disabled = key(KEY_STATE_DISABLED, 0);
        assert!(ok(&enabled, &disabled) && ok(&disabled, &enabled));
        assert!(ok(&enabled, &key(KEY_STATE_PENDING_DELETE, week)));
        assert!(ok(
            &disabled,
            &key(KEY_STATE_PENDING_DELETE, now + 30 * DAY)
        ));
        // "now + 7 days" read a moment before the check passes; a minute short does not.
        assert!(ok(&enabled, &key(KEY_STATE_PENDING_DELETE, week - 1)));
        assert!(ok(
            &enabled,
            &key(KEY_STATE_PENDING_DELETE, week - CLOCK_GRACE)
        ));
        assert!(!ok(
            &enabled,
            &key(KEY_STATE_PENDING_DELETE, week - CLOCK_GRACE - 1)
        ));
        assert!(!ok(
            &enabled,
            &key(KEY_STATE_PENDING_DELETE, now + 30 * DAY + 1)
        ));
        let pending = key(KEY_STATE_PENDING_DELETE, week);
        assert!(ok(&pending, &disabled), "cancel");
        assert!(
            !ok(&pending, &key(KEY_STATE_DISABLED, week)),
            "cancel clears the time"
        );
        assert!(!ok(&pending, &enabled));
        assert!(!ok(&pending, &key(KEY_STATE_PENDING_DELETE, week + 1)));
        assert!(ok(&pending, &pending), "unchanged");
        assert!(!ok(&enabled, &key(9, 0)));
        assert!(!ok(&enabled, &key(KEY_STATE_DISABLED, week)));
    }

    #[test]
    fn only_enabled_keys_are_usable_and_expired_ones_are_gone() {
        assert!(check_usable(&Attributes::new()).is_ok(), "absent: enabled");
        for state in [KEY_STATE_DISABLED, KEY_STATE_PENDING_DELETE] {
            let err = check_usable(&key(state, 5)).unwrap_err();
            assert_eq!(err.rv, CKR_KEY_FUNCTION_NOT_PERMITTED);
        }
        assert!(expired(&key(KEY_STATE_PENDING_DELETE, 5), 5));
        assert!(!expired(&key(KEY_STATE_PENDING_DELETE, 6), 5));
        assert!(!expired(&key(KEY_STATE_DISABLED, 1), 5));
    }
}
