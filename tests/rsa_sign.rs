//! RSA signatures: CKM_RSA_PKCS, CKM_RSA_PKCS_PSS, CKM_SHA*_RSA_PKCS and CKM_SHA*_RSA_PKCS_PSS,
//! single- and multi-part, checked against hashes computed outside the module, and the
//! codes for bad signatures.

#[macro_use]
mod common;

use common::encoding;
use common::*;
use cryptoki::mechanism::Mechanism;
use cryptoki_sys::*;
use sha2::Digest;

struct Hash {
    name: &'static str,
    digest: CK_MECHANISM_TYPE,
    pkcs: CK_MECHANISM_TYPE,
    pss: CK_MECHANISM_TYPE,
    mgf: CK_RSA_PKCS_MGF_TYPE,
    digest_info_prefix: &'static [u8],
    compute: fn(&[u8]) -> Vec<u8>,
}

const HASHES: [Hash; 5] = [
    Hash {
        name: "SHA-1",
        digest: CKM_SHA_1,
        pkcs: CKM_SHA1_RSA_PKCS,
        pss: CKM_SHA1_RSA_PKCS_PSS,
        mgf: CKG_MGF1_SHA1,
        digest_info_prefix: &[
            0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04,
            0x14,
        ],
        compute: |m| sha1::Sha1::digest(m).to_vec(),
    },
    Hash {
        name: "SHA-224",
        digest: CKM_SHA224,
        pkcs: CKM_SHA224_RSA_PKCS,
        pss: CKM_SHA224_RSA_PKCS_PSS,
        mgf: CKG_MGF1_SHA224,
        digest_info_prefix: &[
            0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x04, 0x05, 0x00, 0x04, 0x1c,
        ],
        compute: |m| sha2::Sha224::digest(m).to_vec(),
    },
    Hash {
        name: "SHA-256",
        digest: CKM_SHA256,
        pkcs: CKM_SHA256_RSA_PKCS,
        pss: CKM_SHA256_RSA_PKCS_PSS,
        mgf: CKG_MGF1_SHA256,
        digest_info_prefix: &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ],
        compute: |m| sha2::Sha256::digest(m).to_vec(),
    },
    Hash {
        name: "SHA-384",
        digest: CKM_SHA384,
        pkcs: CKM_SHA384_RSA_PKCS,
        pss: CKM_SHA384_RSA_PKCS_PSS,
        mgf: CKG_MGF1_SHA384,
        digest_info_prefix: &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x05, 0x00, 0x04, 0x30,
        ],
        compute: |m| sha2::Sha384::digest(m).to_vec(),
    },
    Hash {
        name: "SHA-512",
        digest: CKM_SHA512,
        pkcs: CKM_SHA512_RSA_PKCS,
        pss: CKM_SHA512_RSA_PKCS_PSS,
        mgf: CKG_MGF1_SHA512,
        digest_info_prefix: &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ],
        compute: |m| sha2::Sha512::digest(m).to_vec(),
    },
];

const MESSAGE: &[u8] = b"The quick brown fox jumps over the lazy dog, signed in three parts";

fn parts() -> [&'static [u8]; 3] {
    [&MESSAGE[..10], &MESSAGE[10..11], &MESSAGE[11..]]
}

/// EMSA-PKCS1-v1_5 encoding of `digest_info` for a k-byte modulus.
fn pkcs1_encoded(digest_info: &[u8], k: usize) -> Vec<u8> {
    let mut em = vec![0x00, 0x01];
    em.resize(k - 1 - digest_info.len(), 0xff);
    em.push(0x00);
    em.extend_from_slice(digest_info);
    em
}

isolated_test! {
    fn pkcs1_v15_signatures_match_an_independent_encoding() {
        let token = Token::new();
        let session = token.user();
        let pair = gen_rsa(&session, 2048, "pkcs-sign", false);
        let raw = token.raw();
        let h = session.handle();
        let (public, private) = (pair.public.handle(), pair.private.handle());

        for hash in HASHES.iter() {
            let mechanism = mech(hash.pkcs);
            let single = raw.sign(h, &mechanism, private, MESSAGE)
                .unwrap_or_else(|rv| panic!("{}: sign {}", hash.name, rv_name(rv)));
            assert_eq!(single.len(), 256);
            let multi = raw.sign_multi(h, &mechanism, private, &parts())
                .unwrap_or_else(|rv| panic!("{}: multi-part sign {}", hash.name, rv_name(rv)));
            assert_eq!(single, multi, "{}: single and multi-part agree", hash.name);

            // Raw RSA on the signature reveals the encoded message: check the hash and the
            // DigestInfo against our own computation.
            let em = raw.encrypt(h, &mech(CKM_RSA_X_509), public, &single).expect("raw public op");
            let digest_info = [hash.digest_info_prefix, &(hash.compute)(MESSAGE)].concat();
            assert_eq!(em, pkcs1_encoded(&digest_info, 256), "{}: encoded message", hash.name);

            // CKM_RSA_PKCS over the DigestInfo makes the same signature.
            let prehashed = raw.sign(h, &mech(CKM_RSA_PKCS), private, &digest_info).expect("RSA_PKCS sign");
            assert_eq!(prehashed, single, "{}: CKM_RSA_PKCS over DigestInfo", hash.name);

            assert_rv(raw.verify(h, &mechanism, public, MESSAGE, &single), CKR_OK, hash.name);
            assert_rv(raw.verify_multi(h, &mechanism, public, &parts(), &single), CKR_OK, hash.name);
            assert_rv(raw.verify(h, &mech(CKM_RSA_PKCS), public, &digest_info, &single), CKR_OK, hash.name);

            let mut tampered = MESSAGE.to_vec();
            tampered[0] ^= 1;
            assert_rv(raw.verify(h, &mechanism, public, &tampered, &single), CKR_SIGNATURE_INVALID, "tampered data");
            let mut bad = single.clone();
            bad[200] ^= 0x80;
            assert_rv(raw.verify(h, &mechanism, public, MESSAGE, &bad), CKR_SIGNATURE_INVALID, "flipped bit");
            assert_rv(raw.verify_multi(h, &mechanism, public, &parts(), &bad), CKR_SIGNATURE_INVALID, "multi-part flipped bit");
            assert_rv(raw.verify(h, &mechanism, public, MESSAGE, &single[..255]), CKR_SIGNATURE_LEN_RANGE, "short signature");
            let long = [single.clone(), vec![0]].concat();
            assert_rv(raw.verify(h, &mechanism, public, MESSAGE, &long), CKR_SIGNATURE_LEN_RANGE, "long signature");
        }

        // The verify operation ends with its failure.
        let mechanism = mech(CKM_SHA256_RSA_PKCS);
        assert_rv(raw.verify(h, &mechanism, public, MESSAGE, &[0u8; 256]), CKR_SIGNATURE_INVALID, "zero signature");
        let rv = raw!(raw, C_Verify(h, MESSAGE.as_ptr() as *mut u8, MESSAGE.len() as CK_ULONG, [0u8; 256].as_mut_ptr(), 256));
        assert_rv(rv, CKR_OPERATION_NOT_INITIALIZED, "C_Verify after a failed verify");

        // CKM_RSA_PKCS input limit: k - 11.
        assert_rv(raw.sign(h, &mech(CKM_RSA_PKCS), private, &[1u8; 245]).err().unwrap_or(CKR_OK), CKR_OK, "245 bytes");
        assert_rv(raw.sign(h, &mech(CKM_RSA_PKCS), private, &[1u8; 246]).err().unwrap_or(CKR_OK), CKR_DATA_LEN_RANGE, "246 bytes");

        // C_Sign after C_SignUpdate is refused.
        assert_rv(raw.sign_init(h, &mechanism, private), CKR_OK, "C_SignInit");
        assert_rv(raw!(raw, C_SignUpdate(h, MESSAGE.as_ptr() as *mut u8, 4)), CKR_OK, "C_SignUpdate");
        let (rv, _, _) = raw.output_call(OutputCall::Sign, h, MESSAGE, Some(256));
        assert_rv(rv, CKR_OPERATION_ACTIVE, "C_Sign after C_SignUpdate");
        // C_Sign "always terminates the active signing operation" unless it returns
        // CKR_BUFFER_TOO_SMALL or answers a length query.
        let (rv, _, _) = raw.output_call(OutputCall::SignFinal, h, &[], Some(256));
        assert_rv(rv, CKR_OPERATION_NOT_INITIALIZED, "the refused C_Sign ended the operation");

        // Through cryptoki, as a Rust client would.
        let signature = session.sign(&Mechanism::Sha256RsaPkcs, pair.private, MESSAGE).expect("sign");
        session.verify(&Mechanism::Sha256RsaPkcs, pair.public, MESSAGE, &signature).expect("verify");
    }
}

isolated_test! {
    fn pss_signatures_single_and_multi_part() {
        let token = Token::new();
        let session = token.user();
        let pair = gen_rsa(&session, 2048, "pss-sign", false);
        let raw = token.raw();
        let h = session.handle();
        let (public, private) = (pair.public.handle(), pair.private.handle());

        for hash in HASHES.iter() {
            let hash_len = (hash.compute)(b"").len();
            let params = CK_RSA_PKCS_PSS_PARAMS { hashAlg: hash.digest, mgf: hash.mgf, sLen: hash_len as CK_ULONG };
            let mechanism = mech_with(hash.pss, &params);
            let single = raw.sign(h, &mechanism, private, MESSAGE)
                .unwrap_or_else(|rv| panic!("{}: PSS sign {}", hash.name, rv_name(rv)));
            let again = raw.sign(h, &mechanism, private, MESSAGE).expect("sign again");
            assert_ne!(single, again, "{}: PSS salt is random", hash.name);
            let multi = raw.sign_multi(h, &mechanism, private, &parts())
                .unwrap_or_else(|rv| panic!("{}: PSS multi-part sign {}", hash.name, rv_name(rv)));
            for signature in [&single, &again, &multi] {
                assert_rv(raw.verify(h, &mechanism, public, MESSAGE, signature), CKR_OK, hash.name);
                assert_rv(raw.verify_multi(h, &mechanism, public, &parts(), signature), CKR_OK, hash.name);
            }
            let em = raw.encrypt(h, &mech(CKM_RSA_X_509), public, &single).expect("raw public op");
            assert_eq!(em[255], 0xbc, "{}: PSS trailer byte", hash.name);
            assert_eq!(em[0] & 0x80, 0, "{}: top bit clear", hash.name);
            for signature in [&single, &multi] {
                let em = raw.encrypt(h, &mech(CKM_RSA_X_509), public, signature).expect("raw public op");
                let salt = encoding::pss_check(&em, 2048, &(hash.compute)(MESSAGE), hash.digest, hash.mgf);
                assert_eq!(salt, hash_len, "{}: salt length sLen", hash.name);
            }

            // CKM_RSA_PKCS_PSS over our own hash verifies the same signature: the module
            // hashed what we hashed.
            let digest = (hash.compute)(MESSAGE);
            let plain = mech_with(CKM_RSA_PKCS_PSS, &params);
            assert_rv(raw.verify(h, &plain, public, &digest, &single), CKR_OK, "RSA_PKCS_PSS over the digest");
            let prehashed = raw.sign(h, &plain, private, &digest).expect("RSA_PKCS_PSS sign");
            assert_rv(raw.verify(h, &mechanism, public, MESSAGE, &prehashed), CKR_OK, "hash-and-sign verify");

            let mut bad = single.clone();
            bad[17] ^= 0x04;
            assert_rv(raw.verify(h, &mechanism, public, MESSAGE, &bad), CKR_SIGNATURE_INVALID, "PSS flipped bit");
            assert_rv(raw.verify(h, &mechanism, public, MESSAGE, &single[..128]), CKR_SIGNATURE_LEN_RANGE, "PSS short");
            // CKM_RSA_PKCS_PSS input must be exactly one hash long.
            let rv = raw.sign(h, &plain, private, &digest[1..]).err().unwrap_or(CKR_OK);
            assert_rv_in(rv, &[CKR_DATA_LEN_RANGE, CKR_DATA_INVALID], "RSA_PKCS_PSS input of the wrong length");
        }

        // Salt lengths other than the hash length.
        for salt in [0usize, 20, 64] {
            let params = CK_RSA_PKCS_PSS_PARAMS { hashAlg: CKM_SHA256, mgf: CKG_MGF1_SHA256, sLen: salt as CK_ULONG };
            let mechanism = mech_with(CKM_SHA256_RSA_PKCS_PSS, &params);
            let signature = raw.sign(h, &mechanism, private, MESSAGE).expect("sign with salt");
            let em = raw.encrypt(h, &mech(CKM_RSA_X_509), public, &signature).expect("raw public op");
            let found = encoding::pss_check(&em, 2048, &sha2::Sha256::digest(MESSAGE), CKM_SHA256, CKG_MGF1_SHA256);
            assert_eq!(found, salt, "salt length honoured");
            assert_rv(raw.verify(h, &mechanism, public, MESSAGE, &signature), CKR_OK, "verify with the same salt length");
            if salt == 0 {
                assert_eq!(raw.sign(h, &mechanism, private, MESSAGE).expect("sign"), signature, "no salt: deterministic");
            }
            let other = CK_RSA_PKCS_PSS_PARAMS { hashAlg: CKM_SHA256, mgf: CKG_MGF1_SHA256, sLen: (salt + 1) as CK_ULONG };
            assert_rv(
                raw.verify(h, &mech_with(CKM_SHA256_RSA_PKCS_PSS, &other), public, MESSAGE, &signature),
                CKR_SIGNATURE_INVALID,
                "verify with another salt length",
            );
        }
        // An MGF1 hash different from the message hash: a module may refuse it as a bad
        // parameter, but what it signs must verify.
        let params = CK_RSA_PKCS_PSS_PARAMS { hashAlg: CKM_SHA256, mgf: CKG_MGF1_SHA1, sLen: 32 };
        let mechanism = mech_with(CKM_SHA256_RSA_PKCS_PSS, &params);
        match raw.sign(h, &mechanism, private, MESSAGE) {
            Ok(signature) => {
                assert_rv(
                    raw.verify(h, &mechanism, public, MESSAGE, &signature),
                    CKR_OK,
                    "verify with MGF1-SHA1",
                );
                let em = raw
                    .encrypt(h, &mech(CKM_RSA_X_509), public, &signature)
                    .expect("raw public op");
                encoding::pss_check(&em, 2048, &sha2::Sha256::digest(MESSAGE), CKM_SHA256, CKG_MGF1_SHA1);
            }
            Err(rv) => assert_rv(rv, CKR_MECHANISM_PARAM_INVALID, "PSS with MGF1-SHA1 refused"),
        }
    }
}
