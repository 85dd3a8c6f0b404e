//! RSA key generation, encryption and decryption: CKM_RSA_PKCS, every OAEP hash / MGF1
//! combination with and without a label, CKM_RSA_X_509, and the error codes for bad
//! ciphertext, bad parameters and keys that do not allow the operation.

#[macro_use]
mod common;

use std::ffi::c_void;
use std::ptr;

use common::encoding;
use common::*;
use cryptoki::error::RvError;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType};
use cryptoki_sys::*;

isolated_test! {
    fn rsa_key_generation_sizes_and_exponents() {
        let token = Token::new();
        let session = token.user();

        // Default exponent when none is given; 2048 bits.
        let (mut public, private) = rsa_templates(2048, "k2048", false);
        public.retain(|a| !matches!(a, Attribute::PublicExponent(_)));
        let (public_key, private_key) = session
            .generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private)
            .expect("RSA-2048 without exponent");
        assert_eq!(bytes_attr(&session, public_key, AttributeType::Modulus).len(), 256);
        assert_eq!(strip_zeros(&bytes_attr(&session, public_key, AttributeType::PublicExponent)), F4);
        let bits = session.get_attributes(public_key, &[AttributeType::ModulusBits]).expect("bits");
        assert_eq!(bits, vec![Attribute::ModulusBits(2048u64.into())]);
        let private_modulus = bytes_attr(&session, private_key, AttributeType::Modulus);
        assert_eq!(private_modulus, bytes_attr(&session, public_key, AttributeType::Modulus));

        let pair = gen_rsa(&session, 3072, "k3072", false);
        assert_eq!(bytes_attr(&session, pair.public, AttributeType::Modulus).len(), 384);
        let ciphertext = session.encrypt(&Mechanism::RsaPkcs, pair.public, b"3072").expect("encrypt");
        assert_eq!(session.decrypt(&Mechanism::RsaPkcs, pair.private, &ciphertext).expect("decrypt"), b"3072");

        let (public, private) = rsa_templates(1024, "k1024", false);
        common::expect_rv(
            session.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private),
            RvError::KeySizeRange,
        );

        for exponent in [vec![0x01, 0x00, 0x00], vec![0x01, 0x00, 0x02], vec![0x03]] {
            let (mut public, private) = rsa_templates(2048, "bad-e", false);
            for attribute in public.iter_mut() {
                if let Attribute::PublicExponent(e) = attribute {
                    *e = exponent.clone();
                }
            }
            common::expect_rv(
                session.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private),
                RvError::AttributeValueInvalid,
            );
        }

        // Without CKA_MODULUS_BITS: the spec wants TEMPLATE_INCOMPLETE, the issue allows
        // a 2048-bit default. Anything else is wrong.
        let (mut public, private) = rsa_templates(2048, "no-bits", false);
        public.retain(|a| !matches!(a, Attribute::ModulusBits(_)));
        match session.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private) {
            Ok((public, _)) => assert_eq!(bytes_attr(&session, public, AttributeType::Modulus).len(), 256),
            Err(error) => common::expect_rv(Err::<(), _>(error), RvError::TemplateIncomplete),
        }

        if is_ferrohsm() {
            let info = token.p11.get_mechanism_info(token.slot, MechanismType::RSA_PKCS_KEY_PAIR_GEN).expect("info");
            assert_eq!((info.min_key_size(), info.max_key_size()), (2048, 4096));
        }
    }
}

const HASHES: [(CK_MECHANISM_TYPE, usize); 5] = [
    (CKM_SHA_1, 20),
    (CKM_SHA224, 28),
    (CKM_SHA256, 32),
    (CKM_SHA384, 48),
    (CKM_SHA512, 64),
];
const MGFS: [CK_RSA_PKCS_MGF_TYPE; 5] = [
    CKG_MGF1_SHA1,
    CKG_MGF1_SHA224,
    CKG_MGF1_SHA256,
    CKG_MGF1_SHA384,
    CKG_MGF1_SHA512,
];

fn oaep_params(
    hash: CK_MECHANISM_TYPE,
    mgf: CK_RSA_PKCS_MGF_TYPE,
    label: &[u8],
) -> CK_RSA_PKCS_OAEP_PARAMS {
    CK_RSA_PKCS_OAEP_PARAMS {
        hashAlg: hash,
        mgf,
        source: CKZ_DATA_SPECIFIED,
        pSourceData: if label.is_empty() {
            ptr::null_mut()
        } else {
            label.as_ptr() as *mut c_void
        },
        ulSourceDataLen: label.len() as CK_ULONG,
    }
}

/// The raw k-byte RSA private-key operation on `ciphertext` (CKM_RSA_X_509), left-padded.
fn raw_block(
    raw: &Raw,
    h: CK_SESSION_HANDLE,
    private: CK_OBJECT_HANDLE,
    ciphertext: &[u8],
) -> Vec<u8> {
    let block = raw
        .decrypt(h, &mech(CKM_RSA_X_509), private, ciphertext)
        .unwrap_or_else(|rv| panic!("CKM_RSA_X_509 decrypt: {}", rv_name(rv)));
    let mut padded = vec![0u8; ciphertext.len().saturating_sub(block.len())];
    padded.extend(block);
    padded
}

isolated_test! {
    fn rsa_pkcs_and_oaep_round_trips() {
        let token = Token::new();
        let session = token.user();
        let pair = gen_rsa(&session, 2048, "crypt", false);
        let raw = token.raw();
        let h = session.handle();

        // PKCS#1 v1.5: up to k - 11 bytes; empty input too.
        for message in [&b""[..], b"short", &[0x5a; 245][..]] {
            let ciphertext = session.encrypt(&Mechanism::RsaPkcs, pair.public, message).expect("encrypt");
            assert_eq!(ciphertext.len(), 256);
            assert_eq!(session.decrypt(&Mechanism::RsaPkcs, pair.private, &ciphertext).expect("decrypt"), message);
        }
        let first = session.encrypt(&Mechanism::RsaPkcs, pair.public, b"random padding").expect("encrypt");
        let second = session.encrypt(&Mechanism::RsaPkcs, pair.public, b"random padding").expect("encrypt");
        assert_ne!(first, second, "PKCS#1 v1.5 encryption padding is random");
        common::expect_rv(
            session.encrypt(&Mechanism::RsaPkcs, pair.public, &[0x5a; 246]),
            RvError::DataLenRange,
        );

        // OAEP: every hash with every MGF1 hash, with and without a label.
        let message = b"OAEP round trip, 32 bytes long!!";
        for (hash, hash_len) in HASHES {
            for mgf in MGFS {
                for label in [&b""[..], b"abc"] {
                    let params = oaep_params(hash, mgf, label);
                    let mechanism = mech_with(CKM_RSA_PKCS_OAEP, &params);
                    let what = format!("OAEP hash {hash:#x} mgf {mgf:#x} label {label:?}");
                    let ciphertext = raw.encrypt(h, &mechanism, pair.public.handle(), message)
                        .unwrap_or_else(|rv| panic!("{what}: encrypt {}", rv_name(rv)));
                    assert_eq!(ciphertext.len(), 256, "{what}");
                    let plaintext = raw.decrypt(h, &mechanism, pair.private.handle(), &ciphertext)
                        .unwrap_or_else(|rv| panic!("{what}: decrypt {}", rv_name(rv)));
                    assert_eq!(plaintext, message, "{what}");
                    // Decode the block here: the module must honour hash, MGF1 hash and
                    // label as RFC 8017 defines them, not just agree with itself.
                    let block = raw_block(&raw, h, pair.private.handle(), &ciphertext);
                    assert_eq!(encoding::oaep_decode(&block, hash, mgf, label), message, "{what}: encoding");
                }
            }
            // The longest message OAEP allows with this hash, and one byte more.
            let params = oaep_params(hash, CKG_MGF1_SHA1, b"");
            let mechanism = mech_with(CKM_RSA_PKCS_OAEP, &params);
            let longest = vec![0x42u8; 256 - 2 * hash_len - 2];
            let ciphertext = raw.encrypt(h, &mechanism, pair.public.handle(), &longest).expect("longest OAEP message");
            assert_eq!(raw.decrypt(h, &mechanism, pair.private.handle(), &ciphertext).expect("decrypt"), longest);
            let too_long = vec![0x42u8; 256 - 2 * hash_len - 1];
            assert_rv(
                raw.encrypt(h, &mechanism, pair.public.handle(), &too_long).err().unwrap_or(CKR_OK),
                CKR_DATA_LEN_RANGE,
                "OAEP message one byte too long",
            );
        }

        // Through cryptoki's own OAEP type, as a Rust client would write it.
        let params = PkcsOaepParams::new(MechanismType::SHA256, PkcsMgfType::MGF1_SHA256, PkcsOaepSource::data_specified(b"lbl"));
        let ciphertext = session.encrypt(&Mechanism::RsaPkcsOaep(params), pair.public, message).expect("encrypt");
        assert_eq!(session.decrypt(&Mechanism::RsaPkcsOaep(params), pair.private, &ciphertext).expect("decrypt"), message);

        // A different label on decryption is a decryption failure.
        let wrong = PkcsOaepParams::new(MechanismType::SHA256, PkcsMgfType::MGF1_SHA256, PkcsOaepSource::data_specified(b"LBL"));
        common::expect_rv(
            session.decrypt(&Mechanism::RsaPkcsOaep(wrong), pair.private, &ciphertext),
            RvError::EncryptedDataInvalid,
        );
        // So is the wrong hash.
        let wrong = PkcsOaepParams::new(MechanismType::SHA1, PkcsMgfType::MGF1_SHA1, PkcsOaepSource::data_specified(b"lbl"));
        common::expect_rv(
            session.decrypt(&Mechanism::RsaPkcsOaep(wrong), pair.private, &ciphertext),
            RvError::EncryptedDataInvalid,
        );
    }
}

isolated_test! {
    fn rsa_x509_raw_round_trip() {
        let token = Token::new();
        let session = token.user();
        let pair = gen_rsa(&session, 2048, "raw", false);
        let mut block = vec![0u8; 256];
        for (i, byte) in block.iter_mut().enumerate().skip(1) {
            *byte = i as u8;
        }
        let ciphertext = session.encrypt(&Mechanism::RsaX509, pair.public, &block).expect("raw encrypt");
        assert_eq!(ciphertext.len(), 256);
        assert_ne!(ciphertext, block);
        let plaintext = session.decrypt(&Mechanism::RsaX509, pair.private, &ciphertext).expect("raw decrypt");
        assert_eq!(plaintext, block, "raw RSA returns the full k-byte block");
        // Raw RSA is deterministic.
        assert_eq!(session.encrypt(&Mechanism::RsaX509, pair.public, &block).expect("encrypt"), ciphertext);
        // A shorter input is a smaller integer: left-padded with zeros.
        let short = session.encrypt(&Mechanism::RsaX509, pair.public, &block[1..]).expect("short input");
        assert_eq!(short, ciphertext);
        // Input >= modulus is refused.
        let modulus = bytes_attr(&session, pair.public, AttributeType::Modulus);
        common::expect_rv_in(
            session.encrypt(&Mechanism::RsaX509, pair.public, &modulus),
            &[RvError::DataInvalid, RvError::DataLenRange],
        );
    }
}

/// After a failed C_Decrypt the operation is over: the next C_Decrypt is refused and a new
/// C_DecryptInit works.
fn assert_decrypt_ended(
    raw: &Raw,
    h: CK_SESSION_HANDLE,
    mechanism: &CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
    good: &[u8],
    expected: &[u8],
    what: &str,
) {
    let (rv, _, _) = raw.output_call(OutputCall::Decrypt, h, good, Some(512));
    assert_rv(
        rv,
        CKR_OPERATION_NOT_INITIALIZED,
        &format!("{what}: C_Decrypt after the failure"),
    );
    let plaintext = raw
        .decrypt(h, mechanism, key, good)
        .unwrap_or_else(|rv| panic!("{what}: new decrypt {}", rv_name(rv)));
    assert_eq!(plaintext, expected);
}

isolated_test! {
    fn bad_ciphertext_is_rejected_and_ends_the_operation() {
        let token = Token::new();
        let session = token.user();
        let pair = gen_rsa(&session, 2048, "bad-ct", false);
        let raw = token.raw();
        let h = session.handle();
        let modulus = bytes_attr(&session, pair.public, AttributeType::Modulus);
        let oaep = oaep_params(CKM_SHA256, CKG_MGF1_SHA256, b"abc");
        let message = b"good message";

        for mechanism in [mech(CKM_RSA_PKCS), mech_with(CKM_RSA_PKCS_OAEP, &oaep)] {
            let good = raw.encrypt(h, &mechanism, pair.public.handle(), message).expect("encrypt");
            let mut pattern = vec![0u8; 256];
            for (i, byte) in pattern.iter_mut().enumerate().skip(1) {
                *byte = (i as u8).wrapping_mul(37).wrapping_add(11);
            }
            let mut flipped = good.clone();
            flipped[128] ^= 0x01;
            let cases: Vec<(&str, Vec<u8>, &[CK_RV])> = vec![
                ("garbage below the modulus", pattern, &[CKR_ENCRYPTED_DATA_INVALID]),
                ("one flipped bit", flipped, &[CKR_ENCRYPTED_DATA_INVALID]),
                ("all zero", vec![0u8; 256], &[CKR_ENCRYPTED_DATA_INVALID]),
                ("short", good[..100].to_vec(), &[CKR_ENCRYPTED_DATA_LEN_RANGE, CKR_ENCRYPTED_DATA_INVALID]),
                ("one byte short", good[..255].to_vec(), &[CKR_ENCRYPTED_DATA_LEN_RANGE, CKR_ENCRYPTED_DATA_INVALID]),
                ("long", [good.clone(), vec![0u8]].concat(), &[CKR_ENCRYPTED_DATA_LEN_RANGE, CKR_ENCRYPTED_DATA_INVALID]),
                ("equal to the modulus", modulus.clone(), &[CKR_ENCRYPTED_DATA_INVALID, CKR_ENCRYPTED_DATA_LEN_RANGE]),
                ("all 0xff", vec![0xffu8; 256], &[CKR_ENCRYPTED_DATA_INVALID, CKR_ENCRYPTED_DATA_LEN_RANGE]),
                ("empty", Vec::new(), &[CKR_ENCRYPTED_DATA_LEN_RANGE, CKR_ENCRYPTED_DATA_INVALID]),
            ];
            for (what, ciphertext, codes) in cases {
                let what = format!("mechanism {:#x}, {what}", mechanism.mechanism);
                let rv = raw.decrypt(h, &mechanism, pair.private.handle(), &ciphertext).err().unwrap_or(CKR_OK);
                assert_rv_in(rv, codes, &what);
                assert_decrypt_ended(&raw, h, &mechanism, pair.private.handle(), &good, message, &what);
            }
        }

        // A second C_DecryptInit while one is active.
        let rsa = mech(CKM_RSA_PKCS);
        let good = raw.encrypt(h, &rsa, pair.public.handle(), message).expect("encrypt");
        assert_rv(raw.decrypt_init(h, &rsa, pair.private.handle()), CKR_OK, "C_DecryptInit");
        assert_rv(raw.decrypt_init(h, &rsa, pair.private.handle()), CKR_OPERATION_ACTIVE, "second C_DecryptInit");
        let (rv, _, plaintext) = raw.output_call(OutputCall::Decrypt, h, &good, Some(256));
        assert_rv(rv, CKR_OK, "the first operation is still usable");
        assert_eq!(plaintext, message);
    }
}

isolated_test! {
    fn bad_mechanism_parameters() {
        let token = Token::new();
        let session = token.user();
        let pair = gen_rsa(&session, 2048, "params", false);
        let raw = token.raw();
        let h = session.handle();
        let public = pair.public.handle();
        let bad = CKR_MECHANISM_PARAM_INVALID;

        let mut params = oaep_params(CKM_SHA256, 0x9999, b"");
        assert_rv(raw.encrypt_init(h, &mech_with(CKM_RSA_PKCS_OAEP, &params), public), bad, "OAEP with unknown MGF");
        params = oaep_params(CKM_MD5, CKG_MGF1_SHA1, b"");
        assert_rv(raw.encrypt_init(h, &mech_with(CKM_RSA_PKCS_OAEP, &params), public), bad, "OAEP with MD5");
        params = oaep_params(CKM_SHA256, CKG_MGF1_SHA256, b"");
        params.source = 0x7;
        assert_rv(raw.encrypt_init(h, &mech_with(CKM_RSA_PKCS_OAEP, &params), public), bad, "OAEP with unknown source");
        params = oaep_params(CKM_SHA256, CKG_MGF1_SHA256, b"");
        params.ulSourceDataLen = 4; // length without data
        assert_rv(raw.encrypt_init(h, &mech_with(CKM_RSA_PKCS_OAEP, &params), public), bad, "OAEP label length without pointer");
        params = oaep_params(CKM_SHA256, CKG_MGF1_SHA256, b"");
        let mut short = mech_with(CKM_RSA_PKCS_OAEP, &params);
        short.ulParameterLen -= 8;
        assert_rv(raw.encrypt_init(h, &short, public), bad, "OAEP parameter of the wrong size");

        let pss = CK_RSA_PKCS_PSS_PARAMS { hashAlg: CKM_SHA256, mgf: 0x9999, sLen: 32 };
        assert_rv(raw.sign_init(h, &mech_with(CKM_RSA_PKCS_PSS, &pss), pair.private.handle()), bad, "PSS with unknown MGF");
        let pss = CK_RSA_PKCS_PSS_PARAMS { hashAlg: CKM_SHA256, mgf: CKG_MGF1_SHA256, sLen: 32 };
        assert_rv(
            raw.sign_init(h, &mech_with(CKM_SHA512_RSA_PKCS_PSS, &pss), pair.private.handle()),
            bad,
            "SHA512_RSA_PKCS_PSS with a SHA-256 hashAlg",
        );

        // Every failed init leaves no operation behind.
        let rv = raw.encrypt(h, &mech(CKM_RSA_PKCS), public, b"still works").err().unwrap_or(CKR_OK);
        assert_rv(rv, CKR_OK, "encrypt after failed inits");
    }
}

isolated_test! {
    fn missing_oaep_and_pss_parameters() {
        let token = Token::new();
        let session = token.user();
        let pair = gen_rsa(&session, 2048, "noparam", false);
        let raw = token.raw();
        let h = session.handle();
        assert_rv(
            raw.encrypt_init(h, &mech(CKM_RSA_PKCS_OAEP), pair.public.handle()),
            CKR_MECHANISM_PARAM_INVALID,
            "OAEP without parameter",
        );
        assert_rv(
            raw.sign_init(h, &mech(CKM_RSA_PKCS_PSS), pair.private.handle()),
            CKR_MECHANISM_PARAM_INVALID,
            "PSS without parameter",
        );
    }
}

isolated_test! {
    fn keys_refuse_what_their_attributes_forbid() {
        let token = Token::new();
        let session = token.user();
        let (mut public, mut private) = rsa_templates(2048, "sign-only", false);
        for attribute in public.iter_mut() {
            if let Attribute::Encrypt(v) = attribute {
                *v = false;
            }
        }
        for attribute in private.iter_mut() {
            if let Attribute::Decrypt(v) = attribute {
                *v = false;
            }
        }
        let (public, private) = session
            .generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private)
            .expect("generate sign-only pair");
        common::expect_rv(session.decrypt(&Mechanism::RsaPkcs, private, &[0u8; 256]), RvError::KeyFunctionNotPermitted);
        common::expect_rv(session.encrypt(&Mechanism::RsaPkcs, public, b"x"), RvError::KeyFunctionNotPermitted);
        let signature = session.sign(&Mechanism::Sha256RsaPkcs, private, b"x").expect("sign allowed");
        session.verify(&Mechanism::Sha256RsaPkcs, public, b"x", &signature).expect("verify allowed");

        // Wrong key class for the operation.
        common::expect_rv_in(
            session.sign(&Mechanism::Sha256RsaPkcs, public, b"x"),
            &[RvError::KeyTypeInconsistent, RvError::KeyFunctionNotPermitted],
        );
        common::expect_rv_in(
            session.encrypt(&Mechanism::RsaPkcs, private, b"x"),
            &[RvError::KeyTypeInconsistent, RvError::KeyFunctionNotPermitted],
        );

        // A handle that names no key.
        let data = session.create_object(&data_object("not-a-key", b"v", false, false)).expect("data object");
        common::expect_rv(session.encrypt(&Mechanism::RsaPkcs, data, b"x"), RvError::KeyHandleInvalid);
        common::expect_rv(session.sign(&Mechanism::Sha256RsaPkcs, data, b"x"), RvError::KeyHandleInvalid);
        let bogus = unsafe { cryptoki::object::ObjectHandle::new_from_raw(0x00ab_cdef) };
        common::expect_rv(session.encrypt(&Mechanism::RsaPkcs, bogus, b"x"), RvError::KeyHandleInvalid);
        common::expect_rv(session.decrypt(&Mechanism::RsaPkcs, bogus, &[0u8; 256]), RvError::KeyHandleInvalid);

        // Unknown mechanism, and a digest mechanism in C_EncryptInit, with a key that
        // allows encryption (so no other error applies).
        let raw = token.raw();
        let normal = gen_rsa(&session, 2048, "normal", false);
        assert_rv(
            raw.encrypt_init(session.handle(), &mech(0x7fff_0001), normal.public.handle()),
            CKR_MECHANISM_INVALID,
            "unknown mechanism",
        );
        assert_rv(
            raw.encrypt_init(session.handle(), &mech(CKM_SHA256), normal.public.handle()),
            CKR_MECHANISM_INVALID,
            "digest mechanism in C_EncryptInit",
        );

        // CKA_ALLOWED_MECHANISMS restricts a key to the listed mechanisms.
        let (mut public, mut private) = rsa_templates(2048, "oaep-only", false);
        public.push(Attribute::AllowedMechanisms(vec![MechanismType::RSA_PKCS_OAEP]));
        private.push(Attribute::AllowedMechanisms(vec![MechanismType::RSA_PKCS_OAEP]));
        let (public, private) = session
            .generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private)
            .expect("generate restricted pair");
        common::expect_rv(session.encrypt(&Mechanism::RsaPkcs, public, b"x"), RvError::MechanismInvalid);
        common::expect_rv(session.sign(&Mechanism::Sha256RsaPkcs, private, b"x"), RvError::MechanismInvalid);
        let params = PkcsOaepParams::new(MechanismType::SHA1, PkcsMgfType::MGF1_SHA1, PkcsOaepSource::empty());
        let ciphertext = session.encrypt(&Mechanism::RsaPkcsOaep(params), public, b"x").expect("OAEP allowed");
        assert_eq!(session.decrypt(&Mechanism::RsaPkcsOaep(params), private, &ciphertext).expect("decrypt"), b"x");
    }
}
