//! Templates (and mechanism parameters) into C_GenerateKeyPair and C_GenerateKey; a key that
//! is made is then read back attribute by attribute.
#![no_main]

use arbitrary::Arbitrary;
use ferrohsm::ffi as p11;
use ferrohsm::vendor;
use ferrohsm_fuzz::input::KNOWN_TYPES;
use ferrohsm_fuzz::*;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Keygen {
    Rsa,
    Sm2,
    Ec,
    Edwards,
    Montgomery,
    Aes,
    Sm4,
    Generic,
    Other(MechSel),
}

#[derive(Arbitrary, Debug)]
struct Input {
    keygen: Keygen,
    param: Param,
    pair: bool,
    public: Vec<Attr>,
    private: Vec<Attr>,
}

/// RSA key generation above this size takes long enough to stall the fuzzer; sizes up to
/// it (and every invalid one) are still tried.
const MAX_FUZZ_RSA_BITS: CK_ULONG = 1024;

fn read_back(s: CK_SESSION_HANDLE, h: CK_OBJECT_HANDLE) {
    for &ty in KNOWN_TYPES {
        let mut buf = vec![0u8; 2048];
        let mut a = CK_ATTRIBUTE {
            type_: ty,
            pValue: buf.as_mut_ptr().cast(),
            ulValueLen: buf.len() as CK_ULONG,
        };
        // SAFETY: one attribute with a buffer of its length.
        check(
            unsafe { p11::C_GetAttributeValue(s, h, &mut a, 1) },
            "C_GetAttributeValue",
        );
    }
}

fuzz_target!(|input: Input| {
    let (mech, pair) = match input.keygen {
        Keygen::Rsa => (CKM_RSA_PKCS_KEY_PAIR_GEN, true),
        Keygen::Sm2 => (vendor::CKM_SM2_KEY_PAIR_GEN, true),
        Keygen::Ec => (CKM_EC_KEY_PAIR_GEN, true),
        Keygen::Edwards => (CKM_EC_EDWARDS_KEY_PAIR_GEN, true),
        Keygen::Montgomery => (CKM_EC_MONTGOMERY_KEY_PAIR_GEN, true),
        Keygen::Aes => (CKM_AES_KEY_GEN, false),
        Keygen::Sm4 => (vendor::CKM_SM4_KEY_GEN, false),
        Keygen::Generic => (CKM_GENERIC_SECRET_KEY_GEN, false),
        Keygen::Other(m) => (m.get(), input.pair),
    };
    if mech == CKM_RSA_PKCS_KEY_PAIR_GEN
        && input.public.iter().chain(&input.private).any(|a| {
            a.ty.get() == CKA_MODULUS_BITS && a.as_ulong().is_some_and(|b| b > MAX_FUZZ_RSA_BITS)
        })
    {
        return;
    }
    let _ = fixture();
    let session = ExecSession::open();
    let s = session.handle;
    let mut m = RawMechanism::new(mech, &input.param);
    let mut public = RawTemplate::new(&input.public);
    // SAFETY: raw calls with buffers that live across each call.
    unsafe {
        if pair {
            let mut private = RawTemplate::new(&input.private);
            let (mut hpub, mut hpriv) = (0, 0);
            let rv = p11::C_GenerateKeyPair(
                s,
                m.ptr(),
                public.ptr(),
                public.len(),
                private.ptr(),
                private.len(),
                &mut hpub,
                &mut hpriv,
            );
            if check(rv, "C_GenerateKeyPair") == CKR_OK {
                read_back(s, hpub);
                read_back(s, hpriv);
            }
        } else {
            let mut h = 0;
            if check(
                p11::C_GenerateKey(s, m.ptr(), public.ptr(), public.len(), &mut h),
                "C_GenerateKey",
            ) == CKR_OK
            {
                read_back(s, h);
            }
        }
    }
});
