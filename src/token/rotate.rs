//! `Token::rotate_token_key`: a new token key that no earlier PIN record wraps. The token's
//! side (both PIN checks, the new key and epoch, the re-wrapped PIN keys); what the store
//! computes in its one transaction is `storage::rotation`.

use super::{Token, UserType};
use crate::error::{Error, Result};
use crate::storage::rotation::{NewPin, RewrappedPin, Rotation};
use crate::storage::seal;
use cryptoki_sys::*;

impl Token {
    /// Replaces the token key by a new random one, so that no earlier PIN record (an old
    /// copy of the store, with the PIN it had then) opens the keys stored from now on, nor
    /// the re-sealed ones (`storage::rotation` says what moves). Both PINs are needed, since
    /// both records wrap the token key: each is checked as a login checks it (counted
    /// before it is judged; CKR_PIN_INCORRECT, CKR_PIN_LOCKED), the SO's first, and a wrong
    /// one changes nothing else. Then one store transaction re-seals, re-tags and re-wraps
    /// everything (under the same PIN keys: salts, cost and flags stay) and moves the
    /// epoch, so every login on the token ends, in this process and in every other one at
    /// its next call, and no process can write with the old key any more. Store failures
    /// are CKR_DEVICE_ERROR with the store as it was. Argon2 runs only in the two PIN
    /// checks, outside the token lock; the re-sealing (AES-GCM) runs under it.
    /// The attempt, success or not, goes to the audit log (`rotate-token-key`).
    pub fn rotate_token_key(&self, so_pin: &[u8], user_pin: &[u8]) -> Result<()> {
        let result = self.rotate_key(so_pin, user_pin);
        self.audit("rotate-token-key", &[], crate::error::rv_of(&result));
        result
    }

    fn rotate_key(&self, so_pin: &[u8], user_pin: &[u8]) -> Result<()> {
        let (so_key, so_pin_key) = {
            let (mut inner, key, pin_key) = self
                .check_pin(UserType::So, so_pin)
                .map_err(|e| self.explain_pin_error(UserType::So, e))?;
            inner.authenticate(UserType::So, &key, &pin_key)?;
            (key, pin_key)
        };
        let (mut inner, old_key, user_pin_key) = self
            .check_pin(UserType::User, user_pin)
            .map_err(|e| self.explain_pin_error(UserType::User, e))?;
        inner.authenticate(UserType::User, &old_key, &user_pin_key)?;
        {
            use subtle::ConstantTimeEq;
            if !bool::from(so_key.ct_eq(&*old_key)) {
                return Err(Error::with(
                    CKR_DEVICE_ERROR,
                    "the SO and user PIN records wrap different token keys (the store was edited)",
                ));
            }
        }
        let new_key = seal::new_token_key()?;
        let old_epoch = inner.record.epoch;
        let new_epoch = next_epoch(old_epoch)?;
        let mut pins = Vec::with_capacity(2);
        for (user, pin_key) in [(UserType::So, &so_pin_key), (UserType::User, &user_pin_key)] {
            let record = inner
                .record
                .pin(user)
                .ok_or_else(|| Error::with(CKR_DEVICE_ERROR, "a PIN record vanished"))?;
            pins.push(RewrappedPin {
                user,
                salt: record.salt.clone(),
                flags: record.flags,
                new: NewPin::Wrapped(seal::wrap_token_key(
                    pin_key,
                    &new_key,
                    user.wrap_tag(),
                    record.flags,
                )?),
            });
        }
        inner.store.get_mut().rotate_token_key(&Rotation {
            old_epoch,
            new_epoch,
            old_key: &old_key,
            new_key: &new_key,
            pins: &pins,
        })?;
        // The new epoch ends this process's login too and has every object read again
        // (`reload_record`), as in the other processes.
        inner.reload_record()?;
        inner.sync()
    }
}

/// A random epoch other than `old`.
pub(super) fn next_epoch(old: u64) -> Result<u64> {
    loop {
        let epoch = u64::from_le_bytes(seal::random_bytes()?);
        if epoch != old {
            return Ok(epoch);
        }
    }
}
