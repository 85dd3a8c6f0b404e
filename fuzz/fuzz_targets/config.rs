//! Bytes as a config file (ferrohsm TOML or softhsm2.conf, told apart by the reader), and as
//! a `slots.mechanisms` value. A bad file is CKR_FUNCTION_FAILED with a one-line reason.
#![no_main]

use ferrohsm::config::{Config, MechanismFilter};
use ferrohsm_fuzz::fixture::temp_dir;
use ferrohsm_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let path = temp_dir().join("fuzz.conf");
    std::fs::write(&path, bytes).expect("write config");
    if let Err(e) = Config::from_file(path) {
        assert_eq!(e.rv, CKR_FUNCTION_FAILED, "{e}");
        assert!(!e.context.contains('\n'), "multi-line reason: {e}");
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = MechanismFilter::parse(text);
    }
});
