//! The few libc calls the rest of the crate needs, as safe functions (`unsafe` lives in
//! src/ffi/ only).

/// The process's effective user id (token directories must belong to it).
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail (POSIX).
    unsafe { libc::geteuid() }
}
