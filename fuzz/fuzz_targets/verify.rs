//! Signatures into C_Verify / C_VerifyUpdate+Final: real ones (RSA PKCS#1 and PSS, SM2, CMAC,
//! HMAC) mutated, or any bytes under any mechanism. An unchanged sample verifies; a changed
//! signature (or changed data) never does, except for DER-encoded SM2 where a different
//! encoding of the same (r, s) may be accepted.
#![no_main]

use arbitrary::Arbitrary;
use ferrohsm::ffi as p11;
use ferrohsm::vendor;
use ferrohsm_fuzz::input::Mutation;
use ferrohsm_fuzz::*;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Signed {
    Sample {
        index: u8,
        signature: Mutation,
        data: Mutation,
    },
    Raw {
        mech: MechSel,
        param: Param,
        key: KeySel,
        data: Vec<u8>,
        signature: Vec<u8>,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    signed: Signed,
    multipart: bool,
}

fuzz_target!(|input: Input| {
    let fx = fixture();
    let (mech, param, key, mut data, mut sig, expect_ok) = match input.signed {
        Signed::Sample {
            index,
            signature,
            data,
        } => {
            let sample = &fx.signatures[index as usize % fx.signatures.len()];
            let (sig, sig_changed) = signature.apply(&sample.output);
            let (msg, data_changed) = data.apply(&sample.input);
            let expect = if !sig_changed && !data_changed {
                Some(true)
            } else if sample.mech == vendor::CKM_SM3_SM2_DER && !data_changed {
                None
            } else {
                Some(false)
            };
            (
                sample.mech,
                sample.param.clone(),
                sample.key,
                msg,
                sig,
                expect,
            )
        }
        Signed::Raw {
            mech,
            param,
            key,
            data,
            signature,
        } => (mech.get(), param, key.get(), data, signature, None),
    };
    let session = ExecSession::open();
    let s = session.handle;
    let mut m = RawMechanism::new(mech, &param);
    // SAFETY: raw calls with buffers that live across each call.
    unsafe {
        if check(p11::C_VerifyInit(s, m.ptr(), key), "C_VerifyInit") != CKR_OK {
            assert!(expect_ok.is_none(), "C_VerifyInit refused a sample");
            return;
        }
        let rv = if input.multipart {
            let rv = check(
                p11::C_VerifyUpdate(s, data.as_mut_ptr(), data.len() as CK_ULONG),
                "C_VerifyUpdate",
            );
            if rv != CKR_OK {
                return;
            }
            check(
                p11::C_VerifyFinal(s, sig.as_mut_ptr(), sig.len() as CK_ULONG),
                "C_VerifyFinal",
            )
        } else {
            check(
                p11::C_Verify(
                    s,
                    data.as_mut_ptr(),
                    data.len() as CK_ULONG,
                    sig.as_mut_ptr(),
                    sig.len() as CK_ULONG,
                ),
                "C_Verify",
            )
        };
        match expect_ok {
            Some(true) => assert_eq!(rv, CKR_OK, "sample 0x{mech:x} did not verify"),
            Some(false) => assert_ne!(rv, CKR_OK, "a changed sample 0x{mech:x} verified"),
            None => {}
        }
    }
});
