//! The store step of C_SetPIN and C_InitPIN: a new PIN record, and with it a new token key.
//!
//! Why a new key: re-wrapping the same token key under the new PIN would let an old copy of
//! the store and the old PIN open every key created afterwards. So a PIN change is a
//! token key rotation (`storage::rotation`) in which the changed PIN's record is replaced
//! and every other record is re-wrapped without its PIN, through its escrow key
//! (`storage::escrow`). A record from before store format 5 has no escrow key until its
//! PIN logs in once; while the other PIN's record is such a one, the new PIN's record
//! wraps the same token key, as before (logged, and `ferrohsm-util rotate-token-key` with
//! both PINs rotates then).
//!
//! The new epoch ends every other process's login at its next call (their token key is
//! the old one); this process's login goes on under the new key. Where that matters more
//! than the old copies (long-running processes whose PIN is changed by an administrator),
//! `pin_change_rotates_key = false` keeps the same key.

use super::rotate::next_epoch;
use super::{wrap_for_pin, Token, UserType};
use crate::error::Result;
use crate::storage::integrity::MacKey;
use crate::storage::rotation::{NewPin, RewrappedPin, Rotation};
use crate::storage::seal::{self, TokenKey};
use crate::storage::PIN_ESCROW;

impl Token {
    /// Stores `pin` as `user`'s new PIN. `key` is the token key of `epoch`, which the caller
    /// has just proved (a PIN check, or the SO's login). Argon2 runs without the token lock.
    /// Codes: CKR_PIN_INCORRECT when another process set one of the PINs meanwhile,
    /// CKR_DEVICE_REMOVED when the token was re-initialised or rotated meanwhile,
    /// CKR_DEVICE_ERROR for a store failure or a record failing its checks (nothing changed).
    pub(super) fn store_new_pin(
        &self,
        user: UserType,
        key: &TokenKey,
        epoch: u64,
        pin: &[u8],
    ) -> Result<()> {
        let (current, others) = {
            let inner = self.inner.read();
            let current = inner
                .record
                .pin(user)
                .map(|record| (record.salt.clone(), record.flags));
            let others: Vec<_> = [UserType::So, UserType::User]
                .into_iter()
                .filter(|other| *other != user)
                .filter_map(|other| inner.record.pin(other).map(|r| (other, r.clone())))
                .collect();
            (current, others)
        };
        let unescrowed = others
            .iter()
            .find(|(_, record)| record.flags & PIN_ESCROW == 0)
            .map(|(other, _)| *other);
        let rotate = current.filter(|_| self.pins.change_rotates_key);
        let (Some((salt, flags)), None) = (rotate, unescrowed) else {
            // No earlier PIN to outdate (the first C_InitPIN), rotation turned off
            // (`pin_change_rotates_key = false`), or a record that cannot be re-wrapped
            // without its PIN: the same token key.
            if let (Some(other), true) = (unescrowed, self.pins.change_rotates_key) {
                crate::log::warn(&format!(
                    "token in slot {}: the new {user:?} PIN wraps the same token key: the \
                     {other:?} PIN has not logged in since the store was upgraded to \
                     format 5, so its record cannot follow a new key; log in with it once, \
                     or run ferrohsm-util rotate-token-key",
                    self.slot_id
                ));
            }
            let record = wrap_for_pin(key, user, pin, &self.pins, epoch)?;
            let mut inner = self.inner.write();
            inner
                .store
                .get_mut()
                .store_pin(epoch, user, &record, &MacKey::for_token(key))?;
            return inner.reload_record();
        };
        let new_key = seal::new_token_key()?;
        let new_epoch = next_epoch(epoch)?;
        let record = wrap_for_pin(&new_key, user, pin, &self.pins, new_epoch)?;
        let mut pins = vec![RewrappedPin {
            user,
            salt,
            flags,
            new: NewPin::Record(record),
        }];
        for (other, record) in others {
            pins.push(RewrappedPin {
                user: other,
                new: NewPin::Wrapped(seal::rewrap_token_key(
                    &record.wrapped_key,
                    &new_key,
                    other.wrap_tag(),
                    record.flags,
                )?),
                salt: record.salt,
                flags: record.flags,
            });
        }
        let mut inner = self.inner.write();
        inner.store.get_mut().rotate_token_key(&Rotation {
            old_epoch: epoch,
            new_epoch,
            old_key: key,
            new_key: &new_key,
            pins: &pins,
        })?;
        inner.adopt_rotated_key(new_key)
    }
}
