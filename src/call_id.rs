//! Which C call a thread is in: the guard of every exported function starts a new one.
//!
//! A PKCS#11 call sees other processes' commits as of its start. The token asks the store
//! whether anything changed (a SQLite read transaction, the dearest part of a cheap call)
//! once per call, not again at every step of it: C_UnwrapKey looks up its key and then
//! stores the new one, C_DestroyObject after C_FindObjects in one call would not need two.

use std::cell::Cell;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static CURRENT: Cell<Option<NonZeroU64>> = const { Cell::new(None) };
}

/// A call on this thread begins; ids are unique in the process.
pub fn begin() {
    let id = NonZeroU64::new(NEXT.fetch_add(1, Ordering::Relaxed));
    CURRENT.with(|c| c.set(id));
}

/// The call this thread is in; `None` outside the C boundary (unit tests, the CLI).
pub fn current() -> Option<NonZeroU64> {
    CURRENT.with(Cell::get)
}
