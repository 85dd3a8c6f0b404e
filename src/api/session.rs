//! Session management, login and PIN functions.

use crate::error::{fail, Result};
use crate::session::{Operations, Session};
use crate::state::Library;
use crate::token::UserType;
use cryptoki_sys::*;

pub fn open(lib: &Library, slot: CK_SLOT_ID, flags: CK_FLAGS) -> Result<CK_SESSION_HANDLE> {
    if flags & CKF_SERIAL_SESSION == 0 {
        return fail(CKR_SESSION_PARALLEL_NOT_SUPPORTED);
    }
    let token = match lib.slots.token(slot)? {
        Some(t) => t,
        // The spare slot's token is not initialised yet.
        None => return fail(CKR_TOKEN_NOT_RECOGNIZED),
    };
    let read_write = flags & CKF_RW_SESSION != 0;
    if !read_write && token.logged_in() == Some(UserType::So) {
        return fail(CKR_SESSION_READ_WRITE_SO_EXISTS);
    }
    Ok(lib.add_session(Session {
        slot_id: slot,
        token,
        read_write,
        ops: Operations::default(),
    }))
}

pub fn close(lib: &Library, session: CK_SESSION_HANDLE) -> Result<()> {
    lib.close_session(session)
}

pub fn close_all(lib: &Library, slot: CK_SLOT_ID) -> Result<()> {
    lib.slots.token(slot)?; // CKR_SLOT_ID_INVALID for an unknown slot
    lib.close_all_sessions(Some(slot));
    Ok(())
}

pub fn info(lib: &Library, session: CK_SESSION_HANDLE) -> Result<CK_SESSION_INFO> {
    let s = lib.session(session)?;
    let s = s.lock();
    Ok(CK_SESSION_INFO {
        slotID: s.slot_id,
        state: s.state(),
        flags: CKF_SERIAL_SESSION | if s.read_write { CKF_RW_SESSION } else { 0 },
        ulDeviceError: 0,
    })
}

pub fn login(
    lib: &Library,
    session: CK_SESSION_HANDLE,
    user: CK_USER_TYPE,
    pin: &[u8],
) -> Result<()> {
    let (slot, token) = {
        let s = lib.session(session)?;
        let s = s.lock();
        (s.slot_id, s.token.clone())
    };
    let user = match user {
        CKU_SO => UserType::So,
        CKU_USER => UserType::User,
        CKU_CONTEXT_SPECIFIC => {
            // Re-authentication for a key with CKA_ALWAYS_AUTHENTICATE: whoever is logged in
            // proves the PIN again.
            let who = token
                .logged_in()
                .ok_or(crate::error::Error::new(CKR_USER_NOT_LOGGED_IN))?;
            // Only an operation on a CKA_ALWAYS_AUTHENTICATE key asks for it: otherwise the
            // PIN is not even checked (a wrong one would cost a retry for nothing).
            let entry = lib.session(session)?;
            let pending = {
                let s = entry.lock();
                s.ops.decrypt.is_some() || s.ops.sign.is_some()
            };
            if !pending {
                return fail(CKR_OPERATION_NOT_INITIALIZED);
            }
            // Argon2 runs without the session lock.
            token.verify_pin(who, pin)?;
            let mut s = entry.lock();
            let ops = &mut s.ops;
            let pending = [
                ops.decrypt.as_mut().map(|a| &mut a.needs_login),
                ops.sign.as_mut().map(|a| &mut a.needs_login),
            ];
            for needs_login in pending.into_iter().flatten() {
                *needs_login = false;
            }
            return Ok(());
        }
        _ => return fail(CKR_USER_TYPE_INVALID),
    };
    if user == UserType::So && lib.sessions_on(Some(slot)).iter().any(|(_, rw)| !rw) {
        return fail(CKR_SESSION_READ_ONLY_EXISTS);
    }
    let result = token.login(user, pin);
    if let Err(e) = &result {
        if matches!(e.rv, CKR_PIN_INCORRECT | CKR_PIN_LOCKED) {
            token.audit("login-failure", &[], e.rv);
            let locked = match user {
                UserType::User => CKF_USER_PIN_LOCKED,
                UserType::So => CKF_SO_PIN_LOCKED,
            };
            if e.rv == CKR_PIN_INCORRECT && token.info().flags & locked != 0 {
                token.audit("lockout", &[], e.rv);
            }
        }
    }
    result
}

/// C_LoginUser: ferrohsm has one user per role, so a user name must be absent or empty.
pub fn login_user(
    lib: &Library,
    session: CK_SESSION_HANDLE,
    user: CK_USER_TYPE,
    pin: &[u8],
    username: &[u8],
) -> Result<()> {
    if !username.is_empty() {
        return fail(CKR_USER_TYPE_INVALID);
    }
    login(lib, session, user, pin)
}

/// C_Logout. Every operation of every session of the token ends with the login that
/// allowed it (the spec leaves it open, §5.6): a decryption started before the logout does
/// not decrypt after it, and an output kept after CKR_BUFFER_TOO_SMALL is wiped, not
/// returned. Later calls on them are CKR_OPERATION_NOT_INITIALIZED.
pub fn logout(lib: &Library, session: CK_SESSION_HANDLE) -> Result<()> {
    let (slot, token) = {
        let s = lib.session(session)?;
        let s = s.lock();
        (s.slot_id, s.token.clone())
    };
    token.logout()?;
    lib.end_operations(slot);
    Ok(())
}

// C_InitPIN and C_SetPIN run Argon2 (80 ms): the session lock is released first, so other
// calls on the session (C_CloseSession, C_GetSessionInfo) do not wait for it.

pub fn init_pin(lib: &Library, session: CK_SESSION_HANDLE, pin: &[u8]) -> Result<()> {
    let token = {
        let s = lib.session(session)?;
        let s = s.lock();
        if s.state() != CKS_RW_SO_FUNCTIONS {
            return fail(CKR_USER_NOT_LOGGED_IN);
        }
        s.token.clone()
    };
    let result = token.init_pin(pin);
    token.audit("pin-change", &[], crate::error::rv_of(&result));
    result
}

pub fn set_pin(lib: &Library, session: CK_SESSION_HANDLE, old: &[u8], new: &[u8]) -> Result<()> {
    let token = {
        let s = lib.session(session)?;
        let s = s.lock();
        s.require_rw()?;
        s.token.clone()
    };
    let user = token.logged_in().unwrap_or(UserType::User);
    let result = token.set_pin(user, old, new);
    token.audit("pin-change", &[], crate::error::rv_of(&result));
    result
}

/// C_SessionCancel: ends the operations named by `flags` (CKF_ENCRYPT, CKF_FIND_OBJECTS, ...).
pub fn cancel(lib: &Library, session: CK_SESSION_HANDLE, flags: CK_FLAGS) -> Result<()> {
    let s = lib.session(session)?;
    let mut s = s.lock();
    let ops = &mut s.ops;
    if flags & CKF_FIND_OBJECTS != 0 {
        ops.find = None;
    }
    if flags & CKF_ENCRYPT != 0 {
        ops.encrypt = None;
    }
    if flags & CKF_DECRYPT != 0 {
        ops.decrypt = None;
    }
    if flags & CKF_SIGN != 0 {
        ops.sign = None;
    }
    if flags & CKF_VERIFY != 0 {
        ops.verify = None;
    }
    if flags & CKF_DIGEST != 0 {
        ops.digest = None;
    }
    Ok(())
}

pub fn generate_random(lib: &Library, session: CK_SESSION_HANDLE, out: &mut [u8]) -> Result<()> {
    lib.session(session)?;
    crate::crypto::random_bytes(out)
}

pub fn seed_random(lib: &Library, session: CK_SESSION_HANDLE, seed: &[u8]) -> Result<()> {
    lib.session(session)?;
    crate::crypto::mix_into_os_pool(seed)
}
