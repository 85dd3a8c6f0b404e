//! Templates into C_CreateObject, C_FindObjectsInit, C_SetAttributeValue, C_CopyObject and
//! C_GetAttributeValue, as a sequence of operations on the objects the input creates (and
//! read-only ones on the baseline keys). Beyond "no crash": a sensitive key's secret
//! attributes are never returned, neither from the key nor from a copy of it.
#![no_main]

use arbitrary::Arbitrary;
use ferrohsm::ffi as p11;
use ferrohsm_fuzz::*;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Object {
    Baseline(u8),
    Created(u8),
    Raw(u64),
}

#[derive(Arbitrary, Debug)]
enum Op {
    Create(Vec<Attr>),
    Find(Vec<Attr>, u8),
    Set(u8, Vec<Attr>),
    Copy(Object, Vec<Attr>),
    Get(Object, Vec<(AttrType, OutLen)>),
    Size(Object),
    Destroy(u8),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum OutLen {
    Query,
    Len(u8),
}

const SECRET_TYPES: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_VALUE,
    CKA_PRIVATE_EXPONENT,
    CKA_PRIME_1,
    CKA_PRIME_2,
    CKA_EXPONENT_1,
    CKA_EXPONENT_2,
    CKA_COEFFICIENT,
];

struct State {
    created: Vec<CK_OBJECT_HANDLE>,
    /// Handles whose secret attributes must stay unreadable.
    sensitive: Vec<CK_OBJECT_HANDLE>,
}

impl State {
    fn object(&self, which: &Object) -> Option<CK_OBJECT_HANDLE> {
        Some(match which {
            Object::Baseline(i) => KeySel::Baseline(*i).get(),
            Object::Created(_) if self.created.is_empty() => return None,
            Object::Created(i) => self.created[*i as usize % self.created.len()],
            Object::Raw(h) => *h as CK_OBJECT_HANDLE,
        })
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let fx = fixture();
    let session = ExecSession::open();
    let s = session.handle;
    let mut state = State {
        created: Vec::new(),
        sensitive: fx.keys.sensitive().to_vec(),
    };
    for op in ops.iter().take(12) {
        // SAFETY: raw calls with buffers that live across each call.
        unsafe {
            match op {
                Op::Create(attrs) => {
                    let mut t = RawTemplate::new(attrs);
                    let mut h = 0;
                    if check(
                        p11::C_CreateObject(s, t.ptr(), t.len(), &mut h),
                        "C_CreateObject",
                    ) == CKR_OK
                    {
                        state.created.push(h);
                    }
                }
                Op::Find(attrs, max) => {
                    let mut t = RawTemplate::new(attrs);
                    if check(
                        p11::C_FindObjectsInit(s, t.ptr(), t.len()),
                        "C_FindObjectsInit",
                    ) == CKR_OK
                    {
                        let mut found = vec![0; *max as usize % 32 + 1];
                        let mut count = 0;
                        check(
                            p11::C_FindObjects(
                                s,
                                found.as_mut_ptr(),
                                found.len() as CK_ULONG,
                                &mut count,
                            ),
                            "C_FindObjects",
                        );
                        assert!(count as usize <= found.len());
                        check(p11::C_FindObjectsFinal(s), "C_FindObjectsFinal");
                    }
                }
                Op::Set(i, attrs) => {
                    if state.created.is_empty() {
                        continue;
                    }
                    let h = state.created[*i as usize % state.created.len()];
                    let mut t = RawTemplate::new(attrs);
                    check(
                        p11::C_SetAttributeValue(s, h, t.ptr(), t.len()),
                        "C_SetAttributeValue",
                    );
                }
                Op::Copy(which, attrs) => {
                    let Some(h) = state.object(which) else {
                        continue;
                    };
                    let mut t = RawTemplate::new(attrs);
                    let mut copy = 0;
                    if check(
                        p11::C_CopyObject(s, h, t.ptr(), t.len(), &mut copy),
                        "C_CopyObject",
                    ) == CKR_OK
                    {
                        state.created.push(copy);
                        if state.sensitive.contains(&h) {
                            state.sensitive.push(copy);
                        }
                    }
                }
                Op::Get(which, asks) => {
                    let Some(h) = state.object(which) else {
                        continue;
                    };
                    let asks: Vec<_> = asks.iter().take(16).collect();
                    let mut buffers: Vec<Vec<u8>> = asks
                        .iter()
                        .map(|(_, len)| match len {
                            OutLen::Query => Vec::new(),
                            OutLen::Len(n) => vec![0; *n as usize],
                        })
                        .collect();
                    let mut template: Vec<CK_ATTRIBUTE> = asks
                        .iter()
                        .zip(buffers.iter_mut())
                        .map(|((ty, len), buf)| CK_ATTRIBUTE {
                            type_: ty.get(),
                            pValue: match len {
                                OutLen::Query => std::ptr::null_mut(),
                                OutLen::Len(_) => buf.as_mut_ptr().cast(),
                            },
                            ulValueLen: buf.len() as CK_ULONG,
                        })
                        .collect();
                    let rv = check(
                        p11::C_GetAttributeValue(
                            s,
                            h,
                            template.as_mut_ptr(),
                            template.len() as CK_ULONG,
                        ),
                        "C_GetAttributeValue",
                    );
                    if matches!(
                        rv,
                        CKR_OK
                            | CKR_ATTRIBUTE_SENSITIVE
                            | CKR_ATTRIBUTE_TYPE_INVALID
                            | CKR_BUFFER_TOO_SMALL
                    ) && state.sensitive.contains(&h)
                    {
                        for a in &template {
                            if SECRET_TYPES.contains(&a.type_) {
                                assert_eq!(
                                    a.ulValueLen, CK_UNAVAILABLE_INFORMATION,
                                    "secret attribute 0x{:x} of a sensitive key readable",
                                    a.type_
                                );
                            }
                        }
                    }
                }
                Op::Size(which) => {
                    let Some(h) = state.object(which) else {
                        continue;
                    };
                    let mut size = 0;
                    check(p11::C_GetObjectSize(s, h, &mut size), "C_GetObjectSize");
                }
                Op::Destroy(i) => {
                    if state.created.is_empty() {
                        continue;
                    }
                    let h = state.created.remove(*i as usize % state.created.len());
                    check(p11::C_DestroyObject(s, h), "C_DestroyObject");
                }
            }
        }
    }
});
