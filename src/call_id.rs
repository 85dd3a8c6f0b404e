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

/// Ids a thread takes from `NEXT` at a time: threads making short calls side by side then
/// do not write the same counter at every call (the cache line would bounce between
/// their cores); ids only need to be unique, not ordered across threads.
const BLOCK: u64 = 1 << 16;

thread_local! {
    static CURRENT: Cell<Option<NonZeroU64>> = const { Cell::new(None) };
    /// The rest of this thread's block: the next id and the end of the block.
    static BLOCK_LEFT: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// A call on this thread begins; ids are unique in the process.
pub fn begin() {
    let (mut next, mut end) = BLOCK_LEFT.get();
    if next == end {
        next = NEXT.fetch_add(BLOCK, Ordering::Relaxed);
        end = next + BLOCK;
    }
    BLOCK_LEFT.set((next + 1, end));
    CURRENT.set(NonZeroU64::new(next));
}

/// The call this thread is in; `None` outside the C boundary (unit tests, the CLI).
pub fn current() -> Option<NonZeroU64> {
    CURRENT.with(Cell::get)
}
