//! Bytes as a SoftHSMv2 object file, through what `ferrohsm-util migrate-softhsm` does with
//! one: parse, convert to a C_CreateObject template, create (as a session object).
#![no_main]

use ferrohsm::ffi as p11;
use ferrohsm::migrate::softhsm::{convert, file, SoftObject};
use ferrohsm_fuzz::input::TEMPLATE_TYPES;
use ferrohsm_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let attributes = match file::parse(bytes) {
        Ok(a) => a,
        Err(e) => {
            assert_eq!(e.rv, CKR_DEVICE_ERROR, "{e}");
            return;
        }
    };
    let object = SoftObject {
        file: "fuzz.object".into(),
        attributes,
    };
    let Ok(converted) = convert::to_template(&object) else {
        return;
    };
    // Stored templates are kept in ferrohsm's own encoding, not as CK_ATTRIBUTE arrays.
    let mut attrs: Vec<Attr> = converted
        .template
        .iter()
        .filter(|(ty, _)| !TEMPLATE_TYPES.contains(ty) && *ty != CKA_TOKEN)
        .map(|(ty, v)| Attr::new(ty, v.to_vec()))
        .collect();
    attrs.push(Attr::bool(CKA_TOKEN, false));
    let _ = fixture();
    let session = ExecSession::open();
    let mut t = RawTemplate::new(&attrs);
    let mut h = 0;
    // SAFETY: raw call with a template that lives across it.
    check(
        unsafe { p11::C_CreateObject(session.handle, t.ptr(), t.len(), &mut h) },
        "C_CreateObject",
    );
});
