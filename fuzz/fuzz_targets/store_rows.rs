//! Damaged store rows into the loader: an object's attribute rows (any type, clear or
//! sealed, any bytes) are written straight into the token's store through the store
//! interface, as another process (or someone editing the file) would leave them; the token
//! then picks them up (C_FindObjects refreshes its index) and the object is read and used.
//! Damage must be reported (CKR_DEVICE_ERROR is expected here), never crash.
//!
//! Kept thin on purpose: only `TokenStore::put_object` / `delete_object`, the row type and
//! the public-object MAC key.
#![no_main]

use arbitrary::Arbitrary;
use ferrohsm::ffi as p11;
use ferrohsm::storage::integrity::MacKey;
use ferrohsm::storage::sqlite::SqliteStore;
use ferrohsm::storage::{Seal, Signer, StoredValue, TokenStore};
use ferrohsm_fuzz::input::KNOWN_TYPES;
use ferrohsm_fuzz::*;
use libfuzzer_sys::fuzz_target;
use std::sync::Mutex;
use std::sync::OnceLock;

#[derive(Arbitrary, Debug)]
enum Stored {
    Clear,
    SealedToken,
    SealedPublic,
}

#[derive(Arbitrary, Debug)]
struct Input {
    rows: Vec<(Attr, Stored)>,
    use_as: Option<(MechSel, bool)>,
}

static STORE: OnceLock<Mutex<SqliteStore>> = OnceLock::new();

fn store() -> &'static Mutex<SqliteStore> {
    STORE.get_or_init(|| {
        oracle::allow_device_error();
        let tokens = fixture().dir.join("tokens");
        let db = std::fs::read_dir(&tokens)
            .expect("token dir")
            .map(|e| e.expect("entry").path())
            .find(|p| p.extension().is_some_and(|e| e == "db"))
            .expect("the token's store file");
        Mutex::new(SqliteStore::open(&db).expect("open the token's store"))
    })
}

fuzz_target!(|input: Input| {
    let fx = fixture();
    let mut store = store().lock().unwrap();
    let record = store.load_token().expect("token record");
    let epoch = record.epoch;
    // Tagged as a public object under the record's public-object key, as any process (or
    // someone with the file and the module) can: the loader must then survive the rows
    // themselves. Rows of private objects would need the token key, which the file alone
    // does not give.
    let public = MacKey::for_public(record.public_key.as_ref().expect("a format-3 record"));
    let signer = Signer {
        token: None,
        public: &public,
        in_set: false,
    };
    // One row per attribute type, as the store's key requires.
    let mut seen = std::collections::BTreeSet::new();
    let rows: Vec<_> = input
        .rows
        .iter()
        .filter(|(attr, _)| seen.insert(attr.ty.get()))
        .take(32)
        .map(|(attr, stored)| {
            let value = attr.bytes().unwrap_or_default();
            let value = match stored {
                Stored::Clear => StoredValue::Clear(value),
                Stored::SealedToken => StoredValue::Sealed(Seal::Token, value),
                Stored::SealedPublic => StoredValue::Sealed(Seal::Public, value),
            };
            (attr.ty.get(), value)
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    const ID: i64 = 0x0F0F_0F0F;
    store
        .put_object(epoch, ID, &rows, &signer)
        .expect("write the rows");
    let session = ExecSession::open();
    let s = session.handle;
    // SAFETY: raw calls with buffers that live across each call.
    unsafe {
        check(
            p11::C_FindObjectsInit(s, std::ptr::null_mut(), 0),
            "C_FindObjectsInit",
        );
        let mut found = [0 as CK_OBJECT_HANDLE; 64];
        let mut count = 0;
        check(
            p11::C_FindObjects(s, found.as_mut_ptr(), 64, &mut count),
            "C_FindObjects",
        );
        check(p11::C_FindObjectsFinal(s), "C_FindObjectsFinal");
        let baseline = fx.keys.all();
        for &h in found[..count as usize]
            .iter()
            .filter(|h| !baseline.contains(h))
        {
            for &ty in KNOWN_TYPES {
                let mut buf = vec![0u8; 4096];
                let mut a = CK_ATTRIBUTE {
                    type_: ty,
                    pValue: buf.as_mut_ptr().cast(),
                    ulValueLen: 4096,
                };
                check(
                    p11::C_GetAttributeValue(s, h, &mut a, 1),
                    "C_GetAttributeValue",
                );
            }
            let mut size = 0;
            check(p11::C_GetObjectSize(s, h, &mut size), "C_GetObjectSize");
            if let Some((mech, decrypt)) = input.use_as {
                let mut m = RawMechanism::new(mech.get(), &Param::None);
                let mut data = vec![0x42u8; 32];
                let mut out = vec![0u8; 4096];
                let mut len = out.len() as CK_ULONG;
                if decrypt {
                    if check(p11::C_DecryptInit(s, m.ptr(), h), "C_DecryptInit") == CKR_OK {
                        check(
                            p11::C_Decrypt(s, data.as_mut_ptr(), 32, out.as_mut_ptr(), &mut len),
                            "C_Decrypt",
                        );
                    }
                } else if check(p11::C_SignInit(s, m.ptr(), h), "C_SignInit") == CKR_OK {
                    check(
                        p11::C_Sign(s, data.as_mut_ptr(), 32, out.as_mut_ptr(), &mut len),
                        "C_Sign",
                    );
                }
            }
        }
    }
    drop(session);
    store
        .delete_object(epoch, ID, None)
        .expect("delete the rows");
});
