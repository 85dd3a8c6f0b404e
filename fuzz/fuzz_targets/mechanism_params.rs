//! Mechanisms and their parameters into every *Init (and C_GenerateKey[Pair], C_WrapKey,
//! C_DeriveKey, C_UnwrapKey, which take a mechanism too), then the operation run on the data,
//! single-part or in parts, with the output-buffer protocol checked.
#![no_main]

use arbitrary::Arbitrary;
use ferrohsm::ffi as p11;
use ferrohsm_fuzz::*;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Func {
    Encrypt,
    Decrypt,
    Sign,
    Verify,
    Digest,
    GenerateKey,
    GenerateKeyPair,
    Wrap,
    Unwrap,
    Derive,
}

#[derive(Arbitrary, Debug)]
struct Input {
    func: Func,
    mech: MechSel,
    param: Param,
    key: KeySel,
    data: Vec<u8>,
    /// Run in parts (update calls of these sizes, then final) instead of single-part.
    parts: Option<Vec<u8>>,
    out: OutMode,
}

fn run(s: CK_SESSION_HANDLE, input: &Input) {
    let mech = input.mech.get();
    if mech == CKM_RSA_PKCS_KEY_PAIR_GEN {
        return; // key generation cost; keygen_templates covers it
    }
    let mut m = RawMechanism::new(mech, &input.param);
    let key = input.key.get();
    let mut data = input.data.clone();
    let (dp, dl) = (data.as_mut_ptr(), data.len() as CK_ULONG);
    let secret = [
        Attr::ulong(CKA_CLASS, CKO_SECRET_KEY),
        Attr::ulong(CKA_KEY_TYPE, CKK_AES),
        Attr::ulong(CKA_VALUE_LEN, 16),
        Attr::bool(CKA_TOKEN, false),
    ];
    let mut t = RawTemplate::new(&secret);
    // SAFETY: raw calls with buffers that live across each call.
    unsafe {
        let init = match input.func {
            Func::Encrypt => p11::C_EncryptInit(s, m.ptr(), key),
            Func::Decrypt => p11::C_DecryptInit(s, m.ptr(), key),
            Func::Sign => p11::C_SignInit(s, m.ptr(), key),
            Func::Verify => p11::C_VerifyInit(s, m.ptr(), key),
            Func::Digest => p11::C_DigestInit(s, m.ptr()),
            Func::GenerateKey => {
                let mut h = 0;
                check(
                    p11::C_GenerateKey(s, m.ptr(), t.ptr(), t.len(), &mut h),
                    "C_GenerateKey",
                );
                return;
            }
            Func::GenerateKeyPair => {
                let (mut a, mut b) = (0, 0);
                let rv = p11::C_GenerateKeyPair(
                    s,
                    m.ptr(),
                    std::ptr::null_mut(),
                    0,
                    std::ptr::null_mut(),
                    0,
                    &mut a,
                    &mut b,
                );
                check(rv, "C_GenerateKeyPair");
                return;
            }
            Func::Wrap => {
                let target = fixture().keys.aes_extractable;
                output("C_WrapKey", input.out, |buf, len| {
                    p11::C_WrapKey(s, m.ptr(), key, target, buf, len)
                });
                return;
            }
            Func::Unwrap => {
                let mut h = 0;
                check(
                    p11::C_UnwrapKey(s, m.ptr(), key, dp, dl, t.ptr(), t.len(), &mut h),
                    "C_UnwrapKey",
                );
                return;
            }
            Func::Derive => {
                let mut h = 0;
                check(
                    p11::C_DeriveKey(s, m.ptr(), key, t.ptr(), t.len(), &mut h),
                    "C_DeriveKey",
                );
                return;
            }
        };
        if check(init, "C_*Init") != CKR_OK {
            return;
        }
        let Some(parts) = &input.parts else {
            match input.func {
                Func::Encrypt => output("C_Encrypt", input.out, |b, l| {
                    p11::C_Encrypt(s, dp, dl, b, l)
                }),
                Func::Decrypt => output("C_Decrypt", input.out, |b, l| {
                    p11::C_Decrypt(s, dp, dl, b, l)
                }),
                Func::Sign => output("C_Sign", input.out, |b, l| p11::C_Sign(s, dp, dl, b, l)),
                Func::Digest => {
                    output("C_Digest", input.out, |b, l| p11::C_Digest(s, dp, dl, b, l))
                }
                _ => {
                    // Verify: the data's second half as the signature.
                    let half = data.len() / 2;
                    let rv = p11::C_Verify(
                        s,
                        dp,
                        half as CK_ULONG,
                        dp.add(half),
                        (data.len() - half) as CK_ULONG,
                    );
                    (check(rv, "C_Verify"), Vec::new())
                }
            };
            return;
        };
        let mut rest = &mut data[..];
        for &size in parts.iter().take(8) {
            let n = (size as usize).min(rest.len());
            let (part, tail) = std::mem::take(&mut rest).split_at_mut(n);
            let (pp, pl) = (part.as_mut_ptr(), part.len() as CK_ULONG);
            let rv = match input.func {
                Func::Encrypt => {
                    output("C_EncryptUpdate", input.out, |b, l| {
                        p11::C_EncryptUpdate(s, pp, pl, b, l)
                    })
                    .0
                }
                Func::Decrypt => {
                    output("C_DecryptUpdate", input.out, |b, l| {
                        p11::C_DecryptUpdate(s, pp, pl, b, l)
                    })
                    .0
                }
                Func::Sign => check(p11::C_SignUpdate(s, pp, pl), "C_SignUpdate"),
                Func::Verify => check(p11::C_VerifyUpdate(s, pp, pl), "C_VerifyUpdate"),
                _ => check(p11::C_DigestUpdate(s, pp, pl), "C_DigestUpdate"),
            };
            if !matches!(rv, CKR_OK | CKR_BUFFER_TOO_SMALL) {
                return;
            }
            rest = tail;
        }
        let (rp, rl) = (rest.as_mut_ptr(), rest.len() as CK_ULONG);
        match input.func {
            Func::Encrypt => output("C_EncryptFinal", input.out, |b, l| {
                p11::C_EncryptFinal(s, b, l)
            }),
            Func::Decrypt => output("C_DecryptFinal", input.out, |b, l| {
                p11::C_DecryptFinal(s, b, l)
            }),
            Func::Sign => output("C_SignFinal", input.out, |b, l| p11::C_SignFinal(s, b, l)),
            Func::Verify => (
                check(p11::C_VerifyFinal(s, rp, rl), "C_VerifyFinal"),
                Vec::new(),
            ),
            _ => output("C_DigestFinal", input.out, |b, l| {
                p11::C_DigestFinal(s, b, l)
            }),
        };
    }
}

fuzz_target!(|input: Input| {
    let _ = fixture();
    let session = ExecSession::open();
    run(session.handle, &input);
});
