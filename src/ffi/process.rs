//! Process-wide settings made through libc: no core dumps while keys are loaded, and secrets
//! taken out of the environment. The only libc calls of the module outside the C ABI.

use std::ffi::{CStr, CString};
use zeroize::{Zeroize, Zeroizing};

/// What `disable_core_dumps` changed, to put back at C_Finalize.
#[derive(Debug)]
pub struct CoreDumps {
    dumpable: libc::c_int,
    soft_limit: libc::rlim_t,
}

/// Makes the process undumpable (`prctl(PR_SET_DUMPABLE, 0)`: no core file, no ptrace
/// attach by other processes of the same user, /proc/<pid>/mem unreadable to them) and sets
/// the soft RLIMIT_CORE to 0 (the hard limit is left alone, so the previous soft limit can
/// be restored). Returns what to restore.
pub fn disable_core_dumps() -> std::io::Result<CoreDumps> {
    // SAFETY: prctl and getrlimit/setrlimit with valid arguments and a valid rlimit
    // pointer; they touch no memory of ours but `limit`.
    unsafe {
        let dumpable = libc::prctl(libc::PR_GET_DUMPABLE);
        if dumpable < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_CORE, &mut limit) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let previous = CoreDumps {
            dumpable,
            soft_limit: limit.rlim_cur,
        };
        if libc::prctl(libc::PR_SET_DUMPABLE, 0 as libc::c_ulong) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        limit.rlim_cur = 0;
        if libc::setrlimit(libc::RLIMIT_CORE, &limit) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(previous)
    }
}

/// Whether the process may dump core now (PR_GET_DUMPABLE), for tests and diagnostics.
pub fn dumpable() -> bool {
    // SAFETY: PR_GET_DUMPABLE reads a flag.
    unsafe { libc::prctl(libc::PR_GET_DUMPABLE) > 0 }
}

/// Puts back what `disable_core_dumps` changed (C_Finalize: no keys are loaded any more).
pub fn restore_core_dumps(previous: &CoreDumps) {
    // SAFETY: as in `disable_core_dumps`. Failures leave the stricter setting in place.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_CORE, &mut limit) == 0 {
            limit.rlim_cur = previous.soft_limit.min(limit.rlim_max);
            libc::setrlimit(libc::RLIMIT_CORE, &limit);
        }
        libc::prctl(libc::PR_SET_DUMPABLE, previous.dumpable as libc::c_ulong);
    }
}

/// Takes the secret environment variable `name` out of the process: returns its value in
/// zeroizing memory, overwrites the bytes of the environment string in place (unsetenv
/// alone leaves them in memory, where a core dump or /proc/<pid>/environ of a process
/// that is still running would show them) and removes the variable. For the admin CLI,
/// which calls it before it starts any thread.
pub fn take_env_secret(name: &str) -> Option<Zeroizing<Vec<u8>>> {
    let name = CString::new(name).ok()?;
    // SAFETY: getenv returns NULL or a pointer to the NUL-terminated value inside the
    // environment block, which stays valid and writable until the environment changes; no
    // other thread runs (see above). The bytes are overwritten before unsetenv drops the
    // entry.
    unsafe {
        let value = libc::getenv(name.as_ptr());
        if value.is_null() {
            return None;
        }
        let len = CStr::from_ptr(value).to_bytes().len();
        let bytes = std::slice::from_raw_parts_mut(value as *mut u8, len);
        let secret = Zeroizing::new(bytes.to_vec());
        bytes.zeroize();
        libc::unsetenv(name.as_ptr());
        Some(secret)
    }
}

/// The process's effective user id (a token directory must belong to it).
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail (POSIX).
    unsafe { libc::geteuid() }
}

/// The process id, without a system call each time. glibc no longer caches getpid(), and
/// every C call checks it (a forked child must not use its parent's state), so it is kept
/// here and refreshed by a `pthread_atfork` child handler, which fork() runs in the child
/// before fork() returns there. A child made without glibc's fork (a raw clone system call)
/// would keep the parent's id: such children do not call back into a PKCS#11 library.
pub fn current_pid() -> u32 {
    use std::sync::atomic::Ordering;
    PID_HANDLER.call_once(|| {
        // SAFETY: registers a handler that only calls getpid() and stores into an atomic
        // (async-signal-safe work, as a fork child handler must be). glibc's pthread_atfork
        // ties the handler to this shared object and removes it when the object is
        // unloaded (dlclose), so it never points at unmapped code.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(refresh_pid)) };
        CACHE_PID.store(
            if rc == 0 { std::process::id() } else { 0 },
            Ordering::SeqCst,
        );
    });
    match CACHE_PID.load(Ordering::Relaxed) {
        // Registration failed: ask the kernel every time.
        0 => std::process::id(),
        pid => pid,
    }
}

static PID_HANDLER: std::sync::Once = std::sync::Once::new();
static CACHE_PID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

extern "C" fn refresh_pid() {
    // SAFETY: getpid() has no preconditions and is async-signal-safe.
    let pid = unsafe { libc::getpid() } as u32;
    CACHE_PID.store(pid, std::sync::atomic::Ordering::SeqCst);
}
