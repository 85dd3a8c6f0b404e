//! What a PIN error tells a person: which PIN, how many tries are left before it locks, how
//! a locked one is unlocked. For the commands that check PINs on a user's behalf
//! (`ferrohsm-util`'s key commands and `rotate-token-key`); the code stays the spec's.

use super::{Token, UserType, MAX_PIN_FAILURES};
use crate::error::Error;
use cryptoki_sys::*;

impl Token {
    /// `e` (from checking `user`'s PIN) with its message made explicit; other errors as
    /// they are.
    pub fn explain_pin_error(&self, user: UserType, e: Error) -> Error {
        let who = match user {
            UserType::User => "user",
            UserType::So => "SO",
        };
        let context = match e.rv {
            CKR_PIN_INCORRECT => match self.pin_failures(user) {
                Some(failures) => format!(
                    "wrong {who} PIN: {} tries left before the PIN locks",
                    MAX_PIN_FAILURES.saturating_sub(failures)
                ),
                None => format!("wrong {who} PIN"),
            },
            CKR_PIN_LOCKED => format!(
                "the {who} PIN is locked after {MAX_PIN_FAILURES} wrong PINs in a row: {}",
                match user {
                    UserType::User => {
                        "the security officer sets a new one \
                         (pkcs11-tool --init-pin --login --login-type so)"
                    }
                    UserType::So => "restore the token from a backup",
                }
            ),
            CKR_USER_PIN_NOT_INITIALIZED => {
                "the user PIN is not set (the SO sets it: C_InitPIN)".to_string()
            }
            _ => return e,
        };
        Error::with(e.rv, context)
    }
}
