//! Logging to stderr at a level set by `FERROHSM_LOG` (error, warn, info, debug, trace;
//! default warn). Messages never contain PINs, keys or plaintext: only function names,
//! return codes and the error contexts written for logs.

use crate::error::{rv_name, Error};
use cryptoki_sys::*;
use once_cell::sync::Lazy;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

/// `FERROHSM_LOG`, when set, wins over the configuration file.
static ENV_LEVEL: Lazy<Option<Level>> =
    Lazy::new(
        || match std::env::var("FERROHSM_LOG").unwrap_or_default().as_str() {
            "error" => Some(Level::Error),
            "warn" => Some(Level::Warn),
            "info" => Some(Level::Info),
            "debug" => Some(Level::Debug),
            "trace" => Some(Level::Trace),
            _ => None,
        },
    );

static CONFIGURED: parking_lot::RwLock<Option<Level>> = parking_lot::RwLock::new(None);

/// The level a configuration file asks for (softhsm2.conf `log.level`).
pub fn configure(level: Option<Level>) {
    *CONFIGURED.write() = level;
}

pub fn enabled(level: Level) -> bool {
    level <= ENV_LEVEL.or(*CONFIGURED.read()).unwrap_or(Level::Warn)
}

pub fn warn(msg: &str) {
    if enabled(Level::Warn) {
        eprintln!("ferrohsm: {msg}");
    }
}

/// Errors that a caller provoked are routine (debug); internal ones are reported.
pub fn call_failed(name: &str, e: &Error) {
    let internal = matches!(
        e.rv,
        CKR_GENERAL_ERROR | CKR_DEVICE_ERROR | CKR_FUNCTION_FAILED
    );
    let level = if internal { Level::Error } else { Level::Debug };
    if enabled(level) {
        eprintln!("ferrohsm: {name}: {e}");
    }
}

pub fn trace_call(name: &str, rv: CK_RV) {
    if enabled(Level::Trace) {
        eprintln!("ferrohsm: {name} -> {} (0x{rv:x})", rv_name(rv));
    }
}
