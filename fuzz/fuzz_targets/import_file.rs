//! Bytes as a file given to `ferrohsm-util --import` (softhsm2-util's command line): the
//! first byte picks what the file is said to hold (key pair, AES key, certificate), the rest
//! is the file. Reading it yields the objects' templates or a specific error, never a panic.
#![no_main]

use ferrohsm::kms::{import_templates, ImportKind};
use ferrohsm_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Some((&pick, file)) = bytes.split_first() else {
        return;
    };
    let kind = match pick % 4 {
        0 => ImportKind::KeyPair { with_public: true },
        1 => ImportKind::KeyPair { with_public: false },
        2 => ImportKind::Aes,
        _ => ImportKind::Certificate,
    };
    match import_templates(kind, file) {
        Ok(objects) => {
            let want = match kind {
                ImportKind::KeyPair { with_public: true } => 2,
                _ => 1,
            };
            assert_eq!(objects.len(), want);
        }
        Err(e) => assert!(
            matches!(
                e.rv,
                CKR_ARGUMENTS_BAD | CKR_ATTRIBUTE_VALUE_INVALID | CKR_TEMPLATE_INCOMPLETE
            ),
            "{e}"
        ),
    }
});
