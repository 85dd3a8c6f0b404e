//! Ciphertexts into RSA (PKCS#1 v1.5, raw, OAEP), SM2 and AES-GCM (and CBC-PAD) decryption:
//! real ones mutated, or any bytes under any mechanism and parameter. An unchanged sample
//! must decrypt to its plaintext, single-part or in parts.
#![no_main]

use arbitrary::Arbitrary;
use ferrohsm::ffi as p11;
use ferrohsm::vendor;
use ferrohsm_fuzz::input::Mutation;
use ferrohsm_fuzz::*;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Decryption {
    RsaPkcs,
    RsaX509,
    RsaOaep,
    Sm2,
    Sm2Raw,
    Sm2Der,
    AesGcm,
    Other(MechSel),
}

#[derive(Arbitrary, Debug)]
enum Ciphertext {
    Sample(u8, Mutation),
    Raw {
        mech: Decryption,
        param: Param,
        key: KeySel,
        data: Vec<u8>,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    ciphertext: Ciphertext,
    out: OutMode,
    multipart: bool,
}

fuzz_target!(|input: Input| {
    let fx = fixture();
    let (mech, param, key, mut data, expect) = match input.ciphertext {
        Ciphertext::Sample(i, mutation) => {
            let sample = &fx.ciphertexts[i as usize % fx.ciphertexts.len()];
            let (data, changed) = mutation.apply(&sample.output);
            let expect = (!changed).then(|| sample.input.clone());
            (sample.mech, sample.param.clone(), sample.key, data, expect)
        }
        Ciphertext::Raw {
            mech,
            param,
            key,
            data,
        } => {
            let mech = match mech {
                Decryption::RsaPkcs => CKM_RSA_PKCS,
                Decryption::RsaX509 => CKM_RSA_X_509,
                Decryption::RsaOaep => CKM_RSA_PKCS_OAEP,
                Decryption::Sm2 => vendor::CKM_SM2,
                Decryption::Sm2Raw => vendor::CKM_SM2_RAW,
                Decryption::Sm2Der => vendor::CKM_SM2_CIPHER_DER,
                Decryption::AesGcm => CKM_AES_GCM,
                Decryption::Other(m) => m.get(),
            };
            (mech, param, key.get(), data, None)
        }
    };
    let session = ExecSession::open();
    let s = session.handle;
    let mut m = RawMechanism::new(mech, &param);
    let (dp, dl) = (data.as_mut_ptr(), data.len() as CK_ULONG);
    // SAFETY: raw calls with buffers that live across each call.
    unsafe {
        if check(p11::C_DecryptInit(s, m.ptr(), key), "C_DecryptInit") != CKR_OK {
            assert!(expect.is_none(), "C_DecryptInit refused a sample");
            return;
        }
        let mode = if expect.is_some() {
            OutMode::Query
        } else {
            input.out
        };
        let plain = if input.multipart {
            let (rv, mut first) = output("C_DecryptUpdate", mode, |b, l| {
                p11::C_DecryptUpdate(s, dp, dl, b, l)
            });
            if rv == CKR_OK {
                let (rv, last) =
                    output("C_DecryptFinal", mode, |b, l| p11::C_DecryptFinal(s, b, l));
                first.extend(last);
                (rv, first)
            } else {
                (rv, first)
            }
        } else {
            output("C_Decrypt", mode, |b, l| p11::C_Decrypt(s, dp, dl, b, l))
        };
        if let Some(expect) = expect {
            // Multi-part is not offered by every mechanism (RSA, SM2 are single-part).
            if !(input.multipart && plain.0 == CKR_KEY_FUNCTION_NOT_PERMITTED
                || input.multipart && plain.0 == CKR_FUNCTION_NOT_SUPPORTED
                || input.multipart && plain.0 == CKR_MECHANISM_INVALID)
            {
                assert_eq!(plain.0, CKR_OK, "sample 0x{mech:x} did not decrypt");
                assert_eq!(plain.1, expect, "sample 0x{mech:x} decrypted wrong");
            }
        }
    }
});
