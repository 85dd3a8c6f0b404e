//! What every call must satisfy, whatever its input.

use arbitrary::Arbitrary;
use cryptoki_sys::*;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the store-row target: damaged stored data is reported as CKR_DEVICE_ERROR there,
/// which is the point. Everywhere else a device error from bad *arguments* is a bug.
static DEVICE_ERROR_ALLOWED: AtomicBool = AtomicBool::new(false);

pub fn allow_device_error() {
    DEVICE_ERROR_ALLOWED.store(true, Ordering::Relaxed);
}

/// Fails the run (libFuzzer keeps the input) on a return code bad input must never cause:
/// CKR_GENERAL_ERROR is what the guard returns for a caught panic (libfuzzer-sys's panic hook
/// aborts before that, so this catches internal errors reported as such).
#[track_caller]
pub fn check(rv: CK_RV, what: &str) -> CK_RV {
    assert_ne!(rv, CKR_GENERAL_ERROR, "{what}: CKR_GENERAL_ERROR");
    if !DEVICE_ERROR_ALLOWED.load(Ordering::Relaxed) {
        assert_ne!(
            rv, CKR_DEVICE_ERROR,
            "{what}: CKR_DEVICE_ERROR from arguments"
        );
    }
    rv
}

/// How an output buffer is offered (PKCS#11 §5.2 protocol).
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum OutMode {
    /// NULL first (length query), then a buffer of the length returned.
    Query,
    /// A buffer of this many bytes.
    Fixed(u16),
    /// A large buffer.
    Large,
}

/// Runs an output call `f(buf, &mut len)` in `mode` and checks the length protocol:
/// CKR_OK writes at most the buffer's length, CKR_BUFFER_TOO_SMALL says a larger one.
pub fn output(
    what: &str,
    mode: OutMode,
    mut f: impl FnMut(*mut u8, *mut CK_ULONG) -> CK_RV,
) -> (CK_RV, Vec<u8>) {
    let size = match mode {
        OutMode::Query => {
            let mut len: CK_ULONG = 0;
            let rv = check(f(std::ptr::null_mut(), &mut len), what);
            if rv != CKR_OK {
                return (rv, Vec::new());
            }
            assert!(len < 1 << 24, "{what}: absurd length query {len}");
            len as usize
        }
        OutMode::Fixed(n) => n as usize,
        OutMode::Large => 1 << 16,
    };
    let mut buf = vec![0u8; size];
    let mut len = size as CK_ULONG;
    let rv = check(f(buf.as_mut_ptr(), &mut len), what);
    match rv {
        CKR_OK => {
            assert!(len as usize <= size, "{what}: wrote {len} into {size}");
            buf.truncate(len as usize);
        }
        CKR_BUFFER_TOO_SMALL => {
            assert!(
                len as usize > size,
                "{what}: too small but needs {len} <= {size}"
            );
            buf.clear();
        }
        _ => buf.clear(),
    }
    (rv, buf)
}
