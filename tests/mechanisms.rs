//! Mechanism list and info, digests against the sha1/sha2 crates, C_GenerateRandom.

#[macro_use]
mod common;

use common::*;
use cryptoki::mechanism::Mechanism;
use cryptoki_sys::*;
use sha2::Digest;

const RSA_SET: [CK_MECHANISM_TYPE; 19] = [
    CKM_RSA_PKCS_KEY_PAIR_GEN,
    CKM_RSA_PKCS,
    CKM_RSA_PKCS_OAEP,
    CKM_RSA_X_509,
    CKM_RSA_PKCS_PSS,
    CKM_SHA1_RSA_PKCS,
    CKM_SHA224_RSA_PKCS,
    CKM_SHA256_RSA_PKCS,
    CKM_SHA384_RSA_PKCS,
    CKM_SHA512_RSA_PKCS,
    CKM_SHA1_RSA_PKCS_PSS,
    CKM_SHA224_RSA_PKCS_PSS,
    CKM_SHA256_RSA_PKCS_PSS,
    CKM_SHA384_RSA_PKCS_PSS,
    CKM_SHA512_RSA_PKCS_PSS,
    CKM_SHA_1,
    CKM_SHA224,
    CKM_SHA256,
    CKM_SHA384,
];

/// A hash computed outside the module.
type HashFn = fn(&[u8]) -> Vec<u8>;

fn mechanism_info(raw: &Raw, slot: CK_SLOT_ID, mechanism: CK_MECHANISM_TYPE) -> CK_MECHANISM_INFO {
    let mut info = CK_MECHANISM_INFO::default();
    let rv = raw!(raw, C_GetMechanismInfo(slot, mechanism, &mut info));
    assert_rv(rv, CKR_OK, &format!("C_GetMechanismInfo({mechanism:#x})"));
    info
}

isolated_test! {
    fn mechanism_list_and_flags() {
        let token = Token::new();
        let raw = token.raw();
        let slot = token.slot.id();
        let list = raw.mechanism_list(token.slot);
        for mechanism in RSA_SET.iter().chain([CKM_SHA512].iter()) {
            assert!(list.contains(mechanism), "mechanism {mechanism:#x} missing from {list:x?}");
        }

        let crypt = CKF_ENCRYPT | CKF_DECRYPT;
        let sign = CKF_SIGN | CKF_VERIFY;
        let function_flags = CKF_ENCRYPT | CKF_DECRYPT | CKF_DIGEST | CKF_SIGN | CKF_SIGN_RECOVER
            | CKF_VERIFY | CKF_VERIFY_RECOVER | CKF_GENERATE | CKF_GENERATE_KEY_PAIR | CKF_WRAP
            | CKF_UNWRAP | CKF_DERIVE;
        let ec_flags = CKF_EC_F_P | CKF_EC_F_2M | CKF_EC_ECPARAMETERS | CKF_EC_OID
            | CKF_EC_UNCOMPRESS | CKF_EC_COMPRESS | CKF_EXTENSION;

        let info = mechanism_info(&raw, slot, CKM_RSA_PKCS_KEY_PAIR_GEN);
        assert_eq!(info.flags & function_flags, CKF_GENERATE_KEY_PAIR, "key pair gen flags {:#x}", info.flags);
        assert!(info.ulMinKeySize <= 2048 && info.ulMaxKeySize >= 4096, "RSA key sizes {}..{}", info.ulMinKeySize, info.ulMaxKeySize);
        if is_ferrohsm() {
            assert_eq!((info.ulMinKeySize, info.ulMaxKeySize), (2048, 4096));
        }

        let info = mechanism_info(&raw, slot, CKM_RSA_PKCS);
        assert_eq!(info.flags & (crypt | sign), crypt | sign, "RSA_PKCS flags {:#x}", info.flags);
        let info = mechanism_info(&raw, slot, CKM_RSA_X_509);
        assert_eq!(info.flags & crypt, crypt, "RSA_X_509 flags {:#x}", info.flags);
        let info = mechanism_info(&raw, slot, CKM_RSA_PKCS_OAEP);
        assert_eq!(info.flags & (crypt | sign | CKF_DIGEST), crypt, "OAEP flags {:#x}", info.flags);
        for mechanism in [
            CKM_RSA_PKCS_PSS, CKM_SHA1_RSA_PKCS, CKM_SHA224_RSA_PKCS, CKM_SHA256_RSA_PKCS,
            CKM_SHA384_RSA_PKCS, CKM_SHA512_RSA_PKCS, CKM_SHA1_RSA_PKCS_PSS, CKM_SHA224_RSA_PKCS_PSS,
            CKM_SHA256_RSA_PKCS_PSS, CKM_SHA384_RSA_PKCS_PSS, CKM_SHA512_RSA_PKCS_PSS,
        ] {
            let info = mechanism_info(&raw, slot, mechanism);
            assert_eq!(info.flags & (crypt | sign | CKF_DIGEST), sign, "{mechanism:#x} flags {:#x}", info.flags);
            assert!(info.ulMinKeySize <= 2048 && info.ulMaxKeySize >= 4096);
        }
        for mechanism in [CKM_SHA_1, CKM_SHA224, CKM_SHA256, CKM_SHA384, CKM_SHA512] {
            let info = mechanism_info(&raw, slot, mechanism);
            assert_eq!(info.flags & function_flags, CKF_DIGEST, "{mechanism:#x} flags {:#x}", info.flags);
        }
        for mechanism in RSA_SET {
            let info = mechanism_info(&raw, slot, mechanism);
            assert_eq!(info.flags & ec_flags, 0, "{mechanism:#x}: EC/extension flags on a non-EC mechanism");
        }

        let mut info = CK_MECHANISM_INFO::default();
        assert_rv(
            raw!(raw, C_GetMechanismInfo(slot, 0x7fff_0001, &mut info)),
            CKR_MECHANISM_INVALID,
            "unknown mechanism",
        );
        assert_rv(
            raw!(raw, C_GetMechanismInfo(0x7fff_fff0, CKM_RSA_PKCS, &mut info)),
            CKR_SLOT_ID_INVALID,
            "unknown slot",
        );
        // Every listed mechanism has info.
        for mechanism in list {
            mechanism_info(&raw, slot, mechanism);
        }
    }
}

isolated_test! {
    fn digests_match_the_sha_crates() {
        let token = Token::new();
        let session = token.ro();
        let raw = token.raw();
        let h = session.handle();
        let long: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        let cases: [(CK_MECHANISM_TYPE, HashFn); 5] = [
            (CKM_SHA_1, |m| sha1::Sha1::digest(m).to_vec()),
            (CKM_SHA224, |m| sha2::Sha224::digest(m).to_vec()),
            (CKM_SHA256, |m| sha2::Sha256::digest(m).to_vec()),
            (CKM_SHA384, |m| sha2::Sha384::digest(m).to_vec()),
            (CKM_SHA512, |m| sha2::Sha512::digest(m).to_vec()),
        ];
        for (mechanism, compute) in cases {
            for message in [&b""[..], b"abc", &long[..]] {
                let expected = compute(message);
                let single = raw.digest(h, mechanism, message)
                    .unwrap_or_else(|rv| panic!("{mechanism:#x}: C_Digest {}", rv_name(rv)));
                assert_eq!(single, expected, "{mechanism:#x} single-part, {} bytes", message.len());
                let (a, b) = message.split_at(message.len() / 3);
                let multi = raw.digest_multi(h, mechanism, &[a, &[], b])
                    .unwrap_or_else(|rv| panic!("{mechanism:#x}: multi-part {}", rv_name(rv)));
                assert_eq!(multi, expected, "{mechanism:#x} multi-part");
            }
        }
        // Through cryptoki.
        let digest = session.digest(&Mechanism::Sha256, b"abc").expect("digest");
        assert_eq!(digest, sha2::Sha256::digest(b"abc").to_vec());
        // Digests need no login and work in a RO public session.
        assert_eq!(
            session.get_session_info().expect("info").session_state(),
            cryptoki::session::SessionState::RoPublic
        );
    }
}

isolated_test! {
    fn digest_operation_rules() {
        let token = Token::new();
        let session = token.ro();
        let raw = token.raw();
        let h = session.handle();
        let mut sha256 = mech(CKM_SHA256);

        // C_Digest after C_DigestUpdate: the spec forbids it (C_Digest "cannot be used to
        // terminate a multi-part operation"); 3.x lists CKR_OPERATION_ACTIVE for it, and a
        // failing C_Digest terminates the operation.
        assert_rv(raw!(raw, C_DigestInit(h, &mut sha256)), CKR_OK, "C_DigestInit");
        assert_rv(raw!(raw, C_DigestUpdate(h, b"abc".as_ptr() as *mut u8, 3)), CKR_OK, "C_DigestUpdate");
        let (rv, _, _) = raw.output_call(OutputCall::Digest, h, b"def", Some(32));
        assert_rv(rv, CKR_OPERATION_ACTIVE, "C_Digest after C_DigestUpdate");
        let (rv, _, _) = raw.output_call(OutputCall::DigestFinal, h, &[], Some(32));
        assert_rv(rv, CKR_OPERATION_NOT_INITIALIZED, "the refused C_Digest ended the operation");
        assert_rv(raw!(raw, C_DigestInit(h, &mut sha256)), CKR_OK, "a new C_DigestInit works");
        let (rv, _, digest) = raw.output_call(OutputCall::Digest, h, b"abc", Some(32));
        assert_rv(rv, CKR_OK, "C_Digest");
        assert_eq!(digest, sha2::Sha256::digest(b"abc").to_vec());

        // No operation: every call refused.
        let (rv, _, _) = raw.output_call(OutputCall::Digest, h, b"abc", Some(32));
        assert_rv(rv, CKR_OPERATION_NOT_INITIALIZED, "C_Digest without C_DigestInit");
        assert_rv(
            raw!(raw, C_DigestUpdate(h, b"abc".as_ptr() as *mut u8, 3)),
            CKR_OPERATION_NOT_INITIALIZED,
            "C_DigestUpdate without C_DigestInit",
        );
        // A second init while active.
        assert_rv(raw!(raw, C_DigestInit(h, &mut sha256)), CKR_OK, "C_DigestInit");
        assert_rv(raw!(raw, C_DigestInit(h, &mut sha256)), CKR_OPERATION_ACTIVE, "second C_DigestInit");
        // Length query and a too-small buffer keep the operation.
        let (rv, len, _) = raw.output_call(OutputCall::Digest, h, b"abc", None);
        assert_rv(rv, CKR_OK, "length query");
        assert_eq!(len, 32);
        let (rv, len, _) = raw.output_call(OutputCall::Digest, h, b"abc", Some(31));
        assert_rv(rv, CKR_BUFFER_TOO_SMALL, "31 bytes");
        assert_eq!(len, 32);
        let (rv, _, digest) = raw.output_call(OutputCall::Digest, h, b"abc", Some(64));
        assert_rv(rv, CKR_OK, "C_Digest with a larger buffer");
        assert_eq!(digest.len(), 32);

        // A signature mechanism is no digest mechanism.
        let mut wrong = mech(CKM_SHA256_RSA_PKCS);
        assert_rv(raw!(raw, C_DigestInit(h, &mut wrong)), CKR_MECHANISM_INVALID, "C_DigestInit(SHA256_RSA_PKCS)");
    }
}

isolated_test! {
    fn generate_random_bytes() {
        let token = Token::new();
        let session = token.ro();
        let a = session.generate_random_vec(32).expect("C_GenerateRandom");
        let b = session.generate_random_vec(32).expect("C_GenerateRandom");
        assert_eq!(a.len(), 32);
        assert_ne!(a, b, "two random draws differ");
        let big = session.generate_random_vec(4096).expect("4 KiB");
        assert_eq!(big.len(), 4096);
        let zeros = big.iter().filter(|b| **b == 0).count();
        assert!(zeros < 100, "4096 random bytes with {zeros} zeros");
        let mut distinct = [false; 256];
        for byte in &big {
            distinct[*byte as usize] = true;
        }
        assert!(distinct.iter().filter(|d| **d).count() > 200, "byte values are spread");
        let raw = token.raw();
        let rv = raw!(raw, C_GenerateRandom(session.handle(), [0u8; 1].as_mut_ptr(), 0));
        assert_rv(rv, CKR_OK, "zero-length C_GenerateRandom");
        // The seed goes into the kernel's pool, which anyone may write to.
        let pool_writable = std::fs::OpenOptions::new().write(true).open("/dev/urandom").is_ok();
        match session.seed_random(b"extra entropy") {
            Ok(()) => {}
            Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::RandomSeedNotSupported, _))
                if !pool_writable => {}
            Err(e) => panic!("C_SeedRandom: {e}"),
        }
        let rv = raw!(raw, C_SeedRandom(session.handle(), std::ptr::null_mut(), 4));
        assert_rv(rv, CKR_ARGUMENTS_BAD, "C_SeedRandom of a NULL seed");
        let rv = raw!(raw, C_SeedRandom(0xdead, [1u8; 4].as_mut_ptr(), 4));
        assert_rv(rv, CKR_SESSION_HANDLE_INVALID, "C_SeedRandom in no session");
    }
}
