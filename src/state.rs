//! The library singleton: the initialised flag with the initialising process id, the
//! configuration, the slots and the session table.
//!
//! Lock order (never take them the other way round): `LIBRARY` -> `Library::sessions` ->
//! token locks (inside `Token`) -> one session's `Mutex`. No lock in this file is held while
//! crypto runs: callers clone the `Arc` they need and release.

use crate::config::Config;
use crate::error::{fail, Error, Result};
use crate::session::Session;
use crate::slot::Slots;
use cryptoki_sys::*;
use once_cell::sync::Lazy;
use parking_lot::{Mutex, RwLock};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub struct Library {
    /// The process that called C_Initialize: a forked child must initialise again.
    pub pid: u32,
    pub config: Config,
    pub slots: Slots,
    sessions: RwLock<BTreeMap<CK_SESSION_HANDLE, Arc<Mutex<Session>>>>,
    next_session: AtomicU64,
}

static LIBRARY: Lazy<RwLock<Option<Arc<Library>>>> = Lazy::new(|| RwLock::new(None));

/// C_Initialize: exactly one caller wins; a forked child gets a fresh state.
pub fn initialize() -> Result<()> {
    let mut lib = LIBRARY.write();
    if let Some(current) = lib.take() {
        if current.pid == std::process::id() {
            *lib = Some(current);
            return fail(CKR_CRYPTOKI_ALREADY_INITIALIZED);
        }
        // Inherited from the parent across fork(): its database connections and locks belong
        // to the parent, so the child must neither use nor close them.
        std::mem::forget(current);
    }
    // Failures are reported once, by the guard, with their one-line reason.
    let config = Config::load()?;
    let slots = Slots::open(&config)?;
    *lib = Some(Arc::new(Library {
        pid: std::process::id(),
        config,
        slots,
        sessions: RwLock::new(BTreeMap::new()),
        next_session: AtomicU64::new(1),
    }));
    Ok(())
}

/// C_Finalize: closes every session (which logs out) and drops the state.
pub fn finalize() -> Result<()> {
    let lib = {
        let mut guard = LIBRARY.write();
        match guard.as_ref() {
            Some(l) if l.pid == std::process::id() => guard.take(),
            _ => return fail(CKR_CRYPTOKI_NOT_INITIALIZED),
        }
    };
    if let Some(lib) = lib {
        lib.close_all_sessions(None);
    }
    Ok(())
}

/// The initialised library of this process.
pub fn library() -> Result<Arc<Library>> {
    match LIBRARY.read().as_ref() {
        Some(l) if l.pid == std::process::id() => Ok(l.clone()),
        _ => fail(CKR_CRYPTOKI_NOT_INITIALIZED),
    }
}

impl Library {
    pub fn session(&self, handle: CK_SESSION_HANDLE) -> Result<Arc<Mutex<Session>>> {
        self.sessions
            .read()
            .get(&handle)
            .cloned()
            .ok_or(Error::new(CKR_SESSION_HANDLE_INVALID))
    }

    pub fn add_session(
        &self,
        make: impl FnOnce(CK_SESSION_HANDLE) -> Session,
    ) -> CK_SESSION_HANDLE {
        let handle = self.next_session.fetch_add(1, Ordering::Relaxed) as CK_SESSION_HANDLE;
        let session = Arc::new(Mutex::new(make(handle)));
        self.sessions.write().insert(handle, session);
        handle
    }

    /// Sessions open on `slot` (all slots for None): (handle, read-write).
    pub fn sessions_on(&self, slot: Option<CK_SLOT_ID>) -> Vec<(CK_SESSION_HANDLE, bool)> {
        self.sessions
            .read()
            .values()
            .filter_map(|s| {
                let s = s.lock();
                (slot.is_none() || slot == Some(s.slot_id)).then_some((s.handle, s.read_write))
            })
            .collect()
    }

    /// Closes one session; closing the last session of a token logs it out.
    pub fn close_session(&self, handle: CK_SESSION_HANDLE) -> Result<()> {
        let session = self
            .sessions
            .write()
            .remove(&handle)
            .ok_or(Error::new(CKR_SESSION_HANDLE_INVALID))?;
        let (slot, token) = {
            let s = session.lock();
            (s.slot_id, s.token.clone())
        };
        token.close_session(handle);
        if self.sessions_on(Some(slot)).is_empty() && token.logged_in().is_some() {
            // The spec ties login state to the application's sessions: none left, logged out.
            let _ = token.logout();
        }
        Ok(())
    }

    pub fn close_all_sessions(&self, slot: Option<CK_SLOT_ID>) {
        for (handle, _) in self.sessions_on(slot) {
            let _ = self.close_session(handle);
        }
    }
}
