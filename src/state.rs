//! The library singleton: the initialised flag with the initialising process id, the
//! configuration, the slots and the session table.
//!
//! Lock order (never take them the other way round): `LIBRARY` -> `Library::sessions` ->
//! one session's `Mutex` -> token locks (inside `Token`, which never calls back out). The
//! registry locks (`LIBRARY`, `sessions`) are held only to clone an `Arc` and are never held
//! while crypto runs; a session's own lock is held during its operation, so sessions on
//! different threads never wait for each other's crypto. Nothing here takes a session lock
//! while holding the session map.

use crate::config::{Config, Pkcs1v15Decrypt};
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
    sessions: RwLock<BTreeMap<CK_SESSION_HANDLE, Arc<SessionEntry>>>,
    next_session: AtomicU64,
    /// `disable_core_dumps`: what C_Initialize changed, put back at C_Finalize.
    core_dumps: Option<crate::ffi::process::CoreDumps>,
}

/// A session with the facts that never change after C_OpenSession kept outside its lock,
/// so that counting sessions (C_GetTokenInfo, C_Login's checks) never waits for a session
/// that is busy with crypto.
pub struct SessionEntry {
    pub slot_id: CK_SLOT_ID,
    pub read_write: bool,
    session: Mutex<Session>,
}

impl SessionEntry {
    pub fn lock(&self) -> parking_lot::MutexGuard<'_, Session> {
        self.session.lock()
    }
}

/// The functions the `rsa_pkcs1v15_decrypt` policy governs.
const PKCS1V15_DECRYPTING: CK_FLAGS = CKF_DECRYPT | CKF_UNWRAP;

static LIBRARY: Lazy<RwLock<Option<Arc<Library>>>> = Lazy::new(|| RwLock::new(None));

/// C_Initialize: exactly one caller wins; a forked child gets a fresh state.
pub fn initialize() -> Result<()> {
    let mut lib = LIBRARY.write();
    if let Some(current) = lib.take() {
        if current.pid == crate::ffi::process::current_pid() {
            *lib = Some(current);
            return fail(CKR_CRYPTOKI_ALREADY_INITIALIZED);
        }
        forget_inherited(current);
    }
    // Failures are reported once, by the guard, with their one-line reason.
    let config = Config::load()?;
    crate::log::configure(config.log_level);
    // An unusable token directory is CKR_DEVICE_ERROR elsewhere, but C_Initialize's list of
    // codes (PKCS#11 3.0 §5.4) has no device errors: it is the function that failed.
    let slots = Slots::open(&config).map_err(|e| Error::with(CKR_FUNCTION_FAILED, e.context))?;
    // Keys are loaded only between C_Initialize and C_Finalize: no core dump in between.
    let core_dumps = if config.disable_core_dumps {
        let previous = crate::ffi::process::disable_core_dumps().map_err(|e| {
            Error::with(
                CKR_FUNCTION_FAILED,
                format!("disable_core_dumps: cannot make the process undumpable: {e}"),
            )
        })?;
        Some(previous)
    } else {
        None
    };
    crate::crypto::seed_backend_random();
    *lib = Some(Arc::new(Library {
        pid: crate::ffi::process::current_pid(),
        config,
        slots,
        sessions: RwLock::new(BTreeMap::new()),
        next_session: AtomicU64::new(1),
        core_dumps,
    }));
    Ok(())
}

/// A library inherited from the parent across fork(): its database connections and locks
/// belong to the parent, so the child must neither use nor close them (the state is leaked),
/// but the keys it holds are wiped first: the child's memory should not keep the parent's
/// secrets (a core dump or a compromise of the child would reveal them). Only free locks
/// are taken: a lock held at fork() belongs to a thread the child does not have.
fn forget_inherited(lib: Arc<Library>) {
    if let Some(sessions) = lib.sessions.try_read() {
        for entry in sessions.values() {
            if let Some(mut session) = entry.session.try_lock() {
                // Operations hold keys and kept outputs (zeroizing).
                session.ops = crate::session::Operations::default();
            }
        }
    }
    for token in lib.slots.tokens_now().unwrap_or_default() {
        token.forget_login_after_fork();
    }
    std::mem::forget(lib);
}

/// C_Finalize: closes every session (which logs out) and drops the state.
pub fn finalize() -> Result<()> {
    let lib = {
        let mut guard = LIBRARY.write();
        match guard.as_ref() {
            Some(l) if l.pid == crate::ffi::process::current_pid() => guard.take(),
            _ => return fail(CKR_CRYPTOKI_NOT_INITIALIZED),
        }
    };
    if let Some(lib) = lib {
        lib.close_all_sessions(None);
        for token in lib.slots.tokens_now().unwrap_or_default() {
            token.flush_audit();
        }
        if let Some(previous) = &lib.core_dumps {
            crate::ffi::process::restore_core_dumps(previous);
        }
    }
    Ok(())
}

/// The initialised library of this process. A forked child's first call wipes and forgets
/// what it inherited (`forget_inherited`).
pub fn library() -> Result<Arc<Library>> {
    match LIBRARY.read().as_ref() {
        Some(l) if l.pid == crate::ffi::process::current_pid() => return Ok(l.clone()),
        None => return fail(CKR_CRYPTOKI_NOT_INITIALIZED),
        Some(_) => {}
    }
    let mut lib = LIBRARY.write();
    if let Some(inherited) = lib.take_if(|l| l.pid != crate::ffi::process::current_pid()) {
        forget_inherited(inherited);
    }
    match lib.as_ref() {
        // Another thread of this child initialised meanwhile.
        Some(l) => Ok(l.clone()),
        None => fail(CKR_CRYPTOKI_NOT_INITIALIZED),
    }
}

impl Library {
    /// The mechanism `ty` if this configuration offers it (softhsm2.conf `slots.mechanisms`),
    /// else CKR_MECHANISM_INVALID.
    pub fn mechanism(
        &self,
        ty: CK_MECHANISM_TYPE,
    ) -> Result<&'static dyn crate::mechanism::Mechanism> {
        if !self.config.mechanisms.allows(ty) {
            return fail(CKR_MECHANISM_INVALID);
        }
        crate::mechanism::lookup(ty)
    }

    /// `mechanism(ty)` if it serves `function` (CKF_ENCRYPT, CKF_WRAP, CKF_DERIVE, ...): a
    /// mechanism used for a function it does not offer is CKR_MECHANISM_INVALID, before any
    /// key is looked at. CKM_RSA_PKCS decryption and unwrapping follow the configured
    /// `rsa_pkcs1v15_decrypt` policy.
    pub fn mechanism_for(
        &self,
        ty: CK_MECHANISM_TYPE,
        function: CK_FLAGS,
    ) -> Result<&'static dyn crate::mechanism::Mechanism> {
        let m = self.mechanism(ty)?;
        if self.offered_flags(ty, m.info().flags) & function == 0 {
            return fail(CKR_MECHANISM_INVALID);
        }
        if ty == CKM_RSA_PKCS
            && function & PKCS1V15_DECRYPTING != 0
            && self.config.rsa_pkcs1v15_decrypt == Pkcs1v15Decrypt::ImplicitRejection
        {
            return Ok(crate::mechanism::rsa::pkcs1v15_implicit_rejection());
        }
        Ok(m)
    }

    /// The functions (CKF_*) mechanism `ty` serves in this configuration, from those its
    /// implementation offers: `rsa_pkcs1v15_decrypt = "deny"` takes decryption and
    /// unwrapping from CKM_RSA_PKCS (C_GetMechanismInfo says so too).
    pub fn offered_flags(&self, ty: CK_MECHANISM_TYPE, flags: CK_FLAGS) -> CK_FLAGS {
        if ty == CKM_RSA_PKCS && self.config.rsa_pkcs1v15_decrypt == Pkcs1v15Decrypt::Deny {
            flags & !PKCS1V15_DECRYPTING
        } else {
            flags
        }
    }

    pub fn session(&self, handle: CK_SESSION_HANDLE) -> Result<Arc<SessionEntry>> {
        self.sessions
            .read()
            .get(&handle)
            .cloned()
            .ok_or(Error::new(CKR_SESSION_HANDLE_INVALID))
    }

    pub fn add_session(&self, session: Session) -> CK_SESSION_HANDLE {
        let handle = self.next_session.fetch_add(1, Ordering::Relaxed) as CK_SESSION_HANDLE;
        let session = Arc::new(SessionEntry {
            slot_id: session.slot_id,
            read_write: session.read_write,
            session: Mutex::new(session),
        });
        self.sessions.write().insert(handle, session);
        handle
    }

    /// Sessions open on `slot` (all slots for None): (handle, read-write).
    pub fn sessions_on(&self, slot: Option<CK_SLOT_ID>) -> Vec<(CK_SESSION_HANDLE, bool)> {
        self.sessions
            .read()
            .iter()
            .filter(|(_, s)| slot.is_none_or(|slot| slot == s.slot_id))
            .map(|(handle, s)| (*handle, s.read_write))
            .collect()
    }

    /// Ends every operation of every session on `slot`; kept outputs are wiped as they
    /// drop. Takes one session lock at a time, holding nothing else.
    pub fn end_operations(&self, slot: CK_SLOT_ID) {
        for (handle, _) in self.sessions_on(Some(slot)) {
            if let Ok(entry) = self.session(handle) {
                entry.lock().ops = crate::session::Operations::default();
            }
        }
    }

    /// Closes one session; closing the last session of a token logs it out.
    pub fn close_session(&self, handle: CK_SESSION_HANDLE) -> Result<()> {
        let session = self
            .sessions
            .write()
            .remove(&handle)
            .ok_or(Error::new(CKR_SESSION_HANDLE_INVALID))?;
        let slot = session.slot_id;
        let token = session.lock().token.clone();
        token.close_session(handle);
        // Asked without listing the sessions: closing one should not cost as many steps
        // as there are sessions.
        let last = !self.sessions.read().values().any(|s| s.slot_id == slot);
        if last && token.logged_in().is_some() {
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
