//! Secret keys and their mechanisms through the C ABI: AES/SM4/generic-secret generation
//! and import, ECB/CBC/CBC_PAD/CTR/GCM (single- and multi-part, known answers from the
//! standards), HMAC and CMAC, C_DigestKey, and a token AES key used in a second process.

#[macro_use]
mod common;

use common::*;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys::*;
use sha2::Digest;
use std::ptr;

fn key_type_of(ty: CK_KEY_TYPE) -> KeyType {
    match ty {
        CKK_AES => KeyType::AES,
        CKK_GENERIC_SECRET => KeyType::GENERIC_SECRET,
        vendor => KeyType::new_vendor_defined(vendor).unwrap(),
    }
}

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

/// Imports a secret key (session object, usable for everything).
fn secret_key(session: &Session, key_type: CK_KEY_TYPE, value: &[u8]) -> ObjectHandle {
    session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(key_type_of(key_type)),
            Attribute::Value(value.to_vec()),
            Attribute::Token(false),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Sign(true),
            Attribute::Verify(true),
        ])
        .expect("C_CreateObject secret key")
}

fn handle(session: &Session) -> CK_SESSION_HANDLE {
    session.handle()
}

/// A multi-part encryption or decryption fed in `chunks`; returns every part's output
/// concatenated, with each update's output length checked against its length query.
fn multi_part(
    raw: &Raw,
    s: CK_SESSION_HANDLE,
    encrypt: bool,
    chunks: &[&[u8]],
) -> Result<Vec<u8>, CK_RV> {
    let mut out = Vec::new();
    for chunk in chunks {
        let mut query: CK_ULONG = 0;
        let (ip, il) = (chunk.as_ptr() as *mut u8, chunk.len() as CK_ULONG);
        let rv = if encrypt {
            raw!(raw, C_EncryptUpdate(s, ip, il, ptr::null_mut(), &mut query))
        } else {
            raw!(raw, C_DecryptUpdate(s, ip, il, ptr::null_mut(), &mut query))
        };
        if rv != CKR_OK {
            return Err(rv);
        }
        let mut buf = vec![0u8; query as usize];
        let mut len = query;
        let rv = if encrypt {
            raw!(raw, C_EncryptUpdate(s, ip, il, buf.as_mut_ptr(), &mut len))
        } else {
            raw!(raw, C_DecryptUpdate(s, ip, il, buf.as_mut_ptr(), &mut len))
        };
        if rv != CKR_OK {
            return Err(rv);
        }
        assert!(len <= query, "update wrote more than its length query said");
        out.extend_from_slice(&buf[..len as usize]);
    }
    let mut query: CK_ULONG = 0;
    let rv = if encrypt {
        raw!(raw, C_EncryptFinal(s, ptr::null_mut(), &mut query))
    } else {
        raw!(raw, C_DecryptFinal(s, ptr::null_mut(), &mut query))
    };
    if rv != CKR_OK {
        return Err(rv);
    }
    let mut buf = vec![0u8; query as usize];
    let mut len = query;
    let rv = if encrypt {
        raw!(raw, C_EncryptFinal(s, buf.as_mut_ptr(), &mut len))
    } else {
        raw!(raw, C_DecryptFinal(s, buf.as_mut_ptr(), &mut len))
    };
    if rv != CKR_OK {
        return Err(rv);
    }
    out.extend_from_slice(&buf[..len as usize]);
    Ok(out)
}

fn split<'a>(data: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    let mut rest = data;
    for &n in sizes {
        let n = n.min(rest.len());
        let (a, b) = rest.split_at(n);
        parts.push(a);
        rest = b;
    }
    parts.push(rest);
    parts
}

isolated_test! {
    fn secret_key_generation_and_attributes() {
        let token = Token::new();
        let session = token.user();
        for len in [16u64, 24, 32] {
            let key = session
                .generate_key(
                    &Mechanism::AesKeyGen,
                    &[Attribute::ValueLen(len.into()), Attribute::Token(true)],
                )
                .expect("C_GenerateKey AES");
            let attrs = session
                .get_attributes(
                    key,
                    &[
                        AttributeType::ValueLen,
                        AttributeType::Local,
                        AttributeType::AlwaysSensitive,
                        AttributeType::NeverExtractable,
                        AttributeType::KeyGenMechanism,
                        AttributeType::CheckValue,
                    ],
                )
                .unwrap();
            assert!(attrs.contains(&Attribute::ValueLen(len.into())), "{attrs:?}");
            assert!(attrs.contains(&Attribute::Local(true)));
            assert!(attrs.contains(&Attribute::AlwaysSensitive(true)));
            assert!(attrs.contains(&Attribute::NeverExtractable(true)));
            assert!(attrs.contains(&Attribute::KeyGenMechanism(
                cryptoki::mechanism::MechanismType::AES_KEY_GEN
            )));
            assert!(attrs.iter().any(|a| matches!(a, Attribute::CheckValue(v) if v.len() == 3)));
            // Sensitive: cryptoki leaves out what the module reports unavailable.
            let value = session.get_attributes(key, &[AttributeType::Value]).unwrap();
            assert!(value.is_empty(), "sensitive value readable: {value:?}");
        }
        expect_rv(
            session.generate_key(&Mechanism::AesKeyGen, &[]),
            RvError::TemplateIncomplete,
        );
        expect_rv(
            session.generate_key(&Mechanism::AesKeyGen, &[Attribute::ValueLen(20.into())]),
            RvError::AttributeValueInvalid,
        );
        expect_rv(
            session.generate_key(
                &Mechanism::AesKeyGen,
                &[Attribute::ValueLen(16.into()), Attribute::Value(vec![0; 16])],
            ),
            RvError::TemplateInconsistent,
        );
        expect_rv(
            session.generate_key(
                &Mechanism::AesKeyGen,
                &[Attribute::ValueLen(16.into()), Attribute::KeyType(KeyType::RSA)],
            ),
            RvError::TemplateInconsistent,
        );
        let generic = session
            .generate_key(
                &Mechanism::GenericSecretKeyGen,
                &[Attribute::ValueLen(64.into())],
            )
            .expect("generic secret");
        let attrs = session.get_attributes(generic, &[AttributeType::KeyType]).unwrap();
        assert_eq!(attrs, vec![Attribute::KeyType(KeyType::GENERIC_SECRET)]);

        // SM4: CKA_VALUE_LEN may be left out (always 16 bytes).
        let raw = token.raw();
        let mut m = mech(CKM_SM4_KEY_GEN);
        let label = b"sm4-generated";
        let mut template = [CK_ATTRIBUTE {
            type_: CKA_LABEL,
            pValue: label.as_ptr() as *mut _,
            ulValueLen: label.len() as CK_ULONG,
        }];
        let mut key = CK_INVALID_HANDLE;
        let rv = raw!(raw, C_GenerateKey(handle(&session), &mut m, template.as_mut_ptr(), 1, &mut key));
        assert_rv(rv, CKR_OK, "C_GenerateKey SM4");
        let found = find_by_label(&session, "sm4-generated");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].handle(), key);
        let attrs = session
            .get_attributes(found[0], &[AttributeType::ValueLen, AttributeType::KeyType])
            .unwrap();
        assert!(attrs.contains(&Attribute::ValueLen(16.into())), "{attrs:?}");
        assert!(attrs.contains(&Attribute::KeyType(key_type_of(CKK_SM4))), "{attrs:?}");

        // Imports: a wrong length for the type is refused; the check value is computed.
        expect_rv(
            session.create_object(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Value(vec![1; 20]),
            ]),
            RvError::AttributeValueInvalid,
        );
        let aes = secret_key(&session, CKK_AES, &[0; 16]);
        let attrs = session.get_attributes(aes, &[AttributeType::CheckValue]).unwrap();
        assert_eq!(attrs, vec![Attribute::CheckValue(vec![0x66, 0xe9, 0x4b])]);
        // Private (the default) secret keys need the user.
        let public_session = token.rw();
        session.logout().unwrap();
        expect_rv(
            public_session.generate_key(&Mechanism::AesKeyGen, &[Attribute::ValueLen(16.into())]),
            RvError::UserNotLoggedIn,
        );
    }
}

isolated_test! {
    fn aes_and_sm4_block_modes_known_answers() {
        let token = Token::new();
        let session = token.user();
        let raw = token.raw();
        let s = handle(&session);
        // NIST SP 800-38A, AES-128.
        let key = secret_key(&session, CKK_AES, &h("2b7e151628aed2a6abf7158809cf4f3c"));
        let pt = h("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51");
        let ecb = raw.encrypt(s, &mech(CKM_AES_ECB), key.handle(), &pt).unwrap();
        assert_eq!(hex::encode(&ecb), "3ad77bb40d7a3660a89ecaf32466ef97f5d3d58503b9699de785895a96fdbaaf");
        let iv = h("000102030405060708090a0b0c0d0e0f");
        let cbc = raw.encrypt(s, &mech_bytes(CKM_AES_CBC, &iv), key.handle(), &pt).unwrap();
        assert_eq!(hex::encode(&cbc), "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2");
        assert_eq!(raw.decrypt(s, &mech_bytes(CKM_AES_CBC, &iv), key.handle(), &cbc).unwrap(), pt);
        // CTR, F.5.1, with a 32-bit counter.
        let mut ctr = CK_AES_CTR_PARAMS { ulCounterBits: 32, cb: [0; 16] };
        ctr.cb.copy_from_slice(&h("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"));
        let ctr_bytes = as_bytes(&ctr);
        let out = raw.encrypt(s, &mech_bytes(CKM_AES_CTR, ctr_bytes), key.handle(), &pt[..20]).unwrap();
        assert_eq!(hex::encode(out), "874d6191b620e3261bef6864990db6ce9806f66b");
        // A 1-bit counter starting at 0 covers two blocks, not three.
        ctr.ulCounterBits = 1;
        ctr.cb = [0; 16];
        let ctr_bytes = as_bytes(&ctr);
        assert!(raw.encrypt(s, &mech_bytes(CKM_AES_CTR, ctr_bytes), key.handle(), &[0; 32]).is_ok());
        assert_eq!(
            raw.encrypt(s, &mech_bytes(CKM_AES_CTR, ctr_bytes), key.handle(), &[0; 33]),
            Err(CKR_DATA_LEN_RANGE)
        );
        // The same limit across multi-part calls that end mid-block.
        assert_eq!(raw.encrypt_init(s, &mech_bytes(CKM_AES_CTR, ctr_bytes), key.handle()), CKR_OK);
        let chunks = [&[0u8; 8][..]; 4];
        assert!(multi_part(&raw, s, true, &chunks).is_ok());
        assert_eq!(raw.encrypt_init(s, &mech_bytes(CKM_AES_CTR, ctr_bytes), key.handle()), CKR_OK);
        let chunks = [&[0u8; 8][..]; 5];
        assert_eq!(multi_part(&raw, s, true, &chunks), Err(CKR_DATA_LEN_RANGE));
        assert_eq!(raw.decrypt_init(s, &mech_bytes(CKM_AES_CTR, ctr_bytes), key.handle()), CKR_OK);
        assert_eq!(multi_part(&raw, s, false, &[&[0u8; 33][..]]), Err(CKR_ENCRYPTED_DATA_LEN_RANGE));
        // A 128-bit counter at its last value still has that one block.
        ctr.ulCounterBits = 128;
        ctr.cb = [0xff; 16];
        let ctr_bytes = as_bytes(&ctr);
        assert!(raw.encrypt(s, &mech_bytes(CKM_AES_CTR, ctr_bytes), key.handle(), &[0; 16]).is_ok());
        assert_eq!(
            raw.encrypt(s, &mech_bytes(CKM_AES_CTR, ctr_bytes), key.handle(), &[0; 17]),
            Err(CKR_DATA_LEN_RANGE)
        );
        // SM4, GB/T 32907 Appendix A.1.
        let sm4_key = h("0123456789abcdeffedcba9876543210");
        let sm4 = secret_key(&session, CKK_SM4, &sm4_key);
        let out = raw.encrypt(s, &mech(CKM_SM4_ECB), sm4.handle(), &sm4_key).unwrap();
        assert_eq!(hex::encode(out), "681edf34d206965e86b3e94f536e4246");

        // Lengths and parameters.
        assert_eq!(raw.encrypt(s, &mech(CKM_AES_ECB), key.handle(), &[0; 15]), Err(CKR_DATA_LEN_RANGE));
        assert_eq!(raw.decrypt(s, &mech_bytes(CKM_AES_CBC_PAD, &iv), key.handle(), &[0; 17]), Err(CKR_ENCRYPTED_DATA_LEN_RANGE));
        assert_eq!(raw.encrypt_init(s, &mech_bytes(CKM_AES_CBC, &iv[..8]), key.handle()), CKR_MECHANISM_PARAM_INVALID);
        assert_eq!(raw.encrypt_init(s, &mech(CKM_SM4_ECB), key.handle()), CKR_KEY_TYPE_INCONSISTENT);
        assert_eq!(raw.encrypt_init(s, &mech(CKM_AES_ECB), sm4.handle()), CKR_KEY_TYPE_INCONSISTENT);
        // A ciphertext whose padding is wrong.
        let garbage = raw.encrypt(s, &mech_bytes(CKM_AES_CBC, &iv), key.handle(), &[0x11; 16]).unwrap();
        assert_eq!(
            raw.decrypt(s, &mech_bytes(CKM_AES_CBC_PAD, &iv), key.handle(), &garbage),
            Err(CKR_ENCRYPTED_DATA_INVALID)
        );
        // The operation ended: nothing is active.
        let (rv, _, _) = raw.output_call(OutputCall::Decrypt, s, &garbage, None);
        assert_rv(rv, CKR_OPERATION_NOT_INITIALIZED, "decrypt after a failed decrypt");
    }
}

isolated_test! {
    fn cbc_pad_multi_part_equals_single_part() {
        let token = Token::new();
        let session = token.user();
        let raw = token.raw();
        let s = handle(&session);
        let iv = [9u8; 16];
        for (ty, key_type, value) in [
            (CKM_AES_CBC_PAD, CKK_AES, vec![3u8; 32]),
            (CKM_SM4_CBC_PAD, CKK_SM4, vec![5u8; 16]),
        ] {
            let key = secret_key(&session, key_type, &value);
            for len in [0usize, 1, 15, 16, 17, 31, 32, 100] {
                let data: Vec<u8> = (0..len as u8).collect();
                assert_eq!(raw.encrypt_init(s, &mech_bytes(ty, &iv), key.handle()), CKR_OK);
                let (rv, query, _) = raw.output_call(OutputCall::Encrypt, s, &data, None);
                assert_rv(rv, CKR_OK, "length query");
                assert_eq!(query as usize, (len / 16 + 1) * 16, "length query of {len} bytes");
                let (rv, n, whole) = raw.output_call(OutputCall::Encrypt, s, &data, Some(query as usize));
                assert_rv(rv, CKR_OK, &format!("encrypt {len} bytes into {query} (wrote {n})"));
                assert_eq!(whole.len(), (len / 16 + 1) * 16);
                assert_eq!(raw.encrypt_init(s, &mech_bytes(ty, &iv), key.handle()), CKR_OK);
                let parts = multi_part(&raw, s, true, &split(&data, &[1, 15, 17, 3])).unwrap();
                assert_eq!(parts, whole, "encrypt {len} bytes in parts");
                assert_eq!(raw.decrypt(s, &mech_bytes(ty, &iv), key.handle(), &whole).unwrap(), data);
                assert_eq!(raw.decrypt_init(s, &mech_bytes(ty, &iv), key.handle()), CKR_OK);
                let parts = multi_part(&raw, s, false, &split(&whole, &[16, 1, 15, 7])).unwrap();
                assert_eq!(parts, data, "decrypt {len} bytes in parts");
            }
        }
    }
}

/// `CK_GCM_PARAMS` as PKCS#11 2.40 defined it (no ulIvBits).
#[repr(C)]
struct Gcm240 {
    iv: *const u8,
    iv_len: CK_ULONG,
    aad: *const u8,
    aad_len: CK_ULONG,
    tag_bits: CK_ULONG,
}

isolated_test! {
    fn aes_gcm_both_layouts_and_tag_checks() {
        let token = Token::new();
        let session = token.user();
        let raw = token.raw();
        let s = handle(&session);
        // The GCM spec's test case 4.
        let key = secret_key(&session, CKK_AES, &h("feffe9928665731c6d6a8f9467308308"));
        let iv = h("cafebabefacedbaddecaf888");
        let aad = h("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let pt = h("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
        let expected = "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e0915bc94fbc3221a5db94fae95ae7121a47";
        let p30 = CK_GCM_PARAMS {
            pIv: iv.as_ptr() as *mut u8,
            ulIvLen: 12,
            ulIvBits: 96,
            pAAD: aad.as_ptr() as *mut u8,
            ulAADLen: aad.len() as CK_ULONG,
            ulTagBits: 128,
        };
        let p240 = Gcm240 { iv: iv.as_ptr(), iv_len: 12, aad: aad.as_ptr(), aad_len: aad.len() as CK_ULONG, tag_bits: 128 };
        let m30 = as_bytes(&p30);
        let m240 = as_bytes(&p240);
        for param in [m30, m240] {
            let sealed = raw.encrypt(s, &mech_bytes(CKM_AES_GCM, param), key.handle(), &pt).unwrap();
            assert_eq!(hex::encode(&sealed), expected);
            assert_eq!(raw.decrypt(s, &mech_bytes(CKM_AES_GCM, param), key.handle(), &sealed).unwrap(), pt);
        }
        let sealed = h(expected);
        // Multi-part decryption releases nothing before the tag: every update is 0 bytes.
        assert_eq!(raw.decrypt_init(s, &mech_bytes(CKM_AES_GCM, m30), key.handle()), CKR_OK);
        let mut len: CK_ULONG = 0;
        let rv = raw!(raw, C_DecryptUpdate(s, sealed.as_ptr() as *mut u8, 40, ptr::null_mut(), &mut len));
        assert_rv(rv, CKR_OK, "update length query");
        assert_eq!(len, 0);
        assert_eq!(raw.decrypt_init(s, &mech_bytes(CKM_AES_GCM, m30), key.handle()), CKR_OPERATION_ACTIVE);
        let rest = multi_part(&raw, s, false, &split(&sealed, &[40, 1])).unwrap();
        assert_eq!(rest, pt);
        assert_eq!(raw.encrypt_init(s, &mech_bytes(CKM_AES_GCM, m30), key.handle()), CKR_OK);
        assert_eq!(hex::encode(multi_part(&raw, s, true, &split(&pt, &[7, 30])).unwrap()), expected);

        // A flipped bit anywhere: CKR_ENCRYPTED_DATA_INVALID and the buffer untouched.
        for i in [0, 30, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert_eq!(raw.decrypt_init(s, &mech_bytes(CKM_AES_GCM, m30), key.handle()), CKR_OK);
            let (rv, _, buffer) = raw.output_call(OutputCall::Decrypt, s, &bad, Some(bad.len()));
            assert_rv(rv, CKR_ENCRYPTED_DATA_INVALID, "tampered GCM");
            assert!(buffer.iter().all(|b| *b == 0), "plaintext released on a tag mismatch");
        }
        assert_eq!(
            raw.decrypt(s, &mech_bytes(CKM_AES_GCM, m30), key.handle(), &sealed[..10]),
            Err(CKR_ENCRYPTED_DATA_LEN_RANGE)
        );
        // Bad parameters.
        let short_tag = CK_GCM_PARAMS { ulTagBits: 64, ..p30 };
        let m = as_bytes(&short_tag);
        assert_eq!(raw.encrypt_init(s, &mech_bytes(CKM_AES_GCM, m), key.handle()), CKR_MECHANISM_PARAM_INVALID);
        assert_eq!(raw.encrypt_init(s, &mech_bytes(CKM_AES_GCM, &[0; 7]), key.handle()), CKR_MECHANISM_PARAM_INVALID);
        assert_eq!(raw.encrypt_init(s, &mech(CKM_AES_GCM), key.handle()), CKR_MECHANISM_PARAM_INVALID);
    }
}

isolated_test! {
    fn hmac_cmac_and_digest_key() {
        let token = Token::new();
        let session = token.user();
        let raw = token.raw();
        let s = handle(&session);
        // RFC 4231 test case 2.
        let key = secret_key(&session, CKK_GENERIC_SECRET, b"Jefe");
        let msg = b"what do ya want for nothing?";
        let mac = session.sign(&Mechanism::Sha256Hmac, key, msg).unwrap();
        assert_eq!(hex::encode(&mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        session.verify(&Mechanism::Sha256Hmac, key, msg, &mac).unwrap();
        let mut bad = mac.clone();
        bad[0] ^= 1;
        expect_rv(session.verify(&Mechanism::Sha256Hmac, key, msg, &bad), RvError::SignatureInvalid);
        expect_rv(session.verify(&Mechanism::Sha256Hmac, key, msg, &mac[..31]), RvError::SignatureLenRange);
        let mac512 = session.sign(&Mechanism::Sha512Hmac, key, msg).unwrap();
        assert_eq!(&hex::encode(&mac512)[..32], "164b7a7bfcf819e2e395fbe73b56e0a3");
        // _GENERAL: the first 16 bytes.
        // The parameter outlives the mechanism that points at it (a temporary would not).
        let len: CK_ULONG = 16;
        let len = len.to_ne_bytes();
        let m = mech_bytes(CKM_SHA256_HMAC_GENERAL, &len);
        assert_eq!(raw.sign_init(s, &m, key.handle()), CKR_OK);
        assert_eq!(raw.run(OutputCall::Sign, s, msg).unwrap(), mac[..16]);
        let len: CK_ULONG = 33;
        let len = len.to_ne_bytes();
        let m = mech_bytes(CKM_SHA256_HMAC_GENERAL, &len);
        assert_eq!(raw.sign_init(s, &m, key.handle()), CKR_MECHANISM_PARAM_INVALID);
        // SM3-HMAC against the hmac crate over sm3 (no published vector set).
        assert_eq!(raw.sign_init(s, &mech(CKM_SM3_HMAC), key.handle()), CKR_OK);
        let sm3 = raw.run(OutputCall::Sign, s, msg).unwrap();
        assert_eq!(sm3.len(), 32);
        // Multi-part equals single-part.
        let parts = session.sign_init(&Mechanism::Sha256Hmac, key).and_then(|_| {
            session.sign_update(&msg[..5])?;
            session.sign_update(&msg[5..])?;
            session.sign_final()
        });
        assert_eq!(parts.unwrap(), mac);

        // AES-CMAC, SP 800-38B example 2.
        let aes = secret_key(&session, CKK_AES, &h("2b7e151628aed2a6abf7158809cf4f3c"));
        let cmac = session.sign(&Mechanism::AesCMac, aes, &h("6bc1bee22e409f96e93d7e117393172a")).unwrap();
        assert_eq!(hex::encode(cmac), "070a16b46b4d4144f79bdd9dd04a287c");
        expect_rv(session.sign(&Mechanism::AesCMac, key, b"x"), RvError::KeyTypeInconsistent);

        // C_DigestKey: the value of a key the caller could read anyway enters the digest;
        // a sensitive key is indigestible.
        session.digest_init(&Mechanism::Sha256).unwrap();
        assert_eq!(raw!(raw, C_DigestKey(s, key.handle())), CKR_KEY_INDIGESTIBLE);
        let key = session
            .create_object(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::GENERIC_SECRET),
                Attribute::Value(b"Jefe".to_vec()),
                Attribute::Token(false),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
            ])
            .unwrap();
        session.digest_init(&Mechanism::Sha256).unwrap();
        session.digest_update(b"prefix").unwrap();
        assert_eq!(raw!(raw, C_DigestKey(s, key.handle())), CKR_OK);
        let digest = session.digest_final().unwrap();
        let mut want = sha2::Sha256::new();
        want.update(b"prefix");
        want.update(b"Jefe");
        assert_eq!(digest, want.finalize().to_vec());
        assert_eq!(raw!(raw, C_DigestKey(s, key.handle())), CKR_OPERATION_NOT_INITIALIZED);
        let pair = gen_rsa(&session, 2048, "indigestible", false);
        session.digest_init(&Mechanism::Sha256).unwrap();
        assert_eq!(raw!(raw, C_DigestKey(s, pair.private.handle())), CKR_KEY_INDIGESTIBLE);
        // The error ended the digest, as a failed C_DigestUpdate would.
        assert_eq!(raw!(raw, C_DigestKey(s, key.handle())), CKR_OPERATION_NOT_INITIALIZED);
        session.digest_init(&Mechanism::Sha256).unwrap();
        assert_eq!(raw!(raw, C_DigestKey(s, 0xdead_beef)), CKR_KEY_HANDLE_INVALID);
    }
}

#[test]
fn token_aes_key_works_in_a_second_process() {
    const TEST: &str = "token_aes_key_works_in_a_second_process";
    let iv = [1u8; 16];
    match common::child_phase(TEST).as_deref() {
        Some("create") => {
            let token = Token::new();
            let session = token.user();
            let key = session
                .generate_key(
                    &Mechanism::AesKeyGen,
                    &[
                        Attribute::ValueLen(32.into()),
                        Attribute::Token(true),
                        Attribute::Label(b"persist-aes".to_vec()),
                    ],
                )
                .unwrap();
            let ct = session
                .encrypt(&Mechanism::AesCbcPad(iv), key, b"across processes")
                .unwrap();
            std::fs::write(sandbox_dir().join("ct"), ct).unwrap();
        }
        Some("use") => {
            let token = Token::existing();
            let session = token.rw();
            // Private: invisible before login.
            assert!(find_by_label(&session, "persist-aes").is_empty());
            session
                .login(cryptoki::session::UserType::User, Some(&pin(USER_PIN)))
                .unwrap();
            let key = find_by_label(&session, "persist-aes")[0];
            let ct = std::fs::read(sandbox_dir().join("ct")).unwrap();
            let pt = session
                .decrypt(&Mechanism::AesCbcPad(iv), key, &ct)
                .unwrap();
            assert_eq!(pt, b"across processes");
            // The value never reached the token directory in clear is checked by
            // persistence.rs for every secret; here the key is also unreadable.
            let attrs = session
                .get_attributes(key, &[AttributeType::Value])
                .unwrap();
            assert!(attrs.is_empty(), "sensitive value readable: {attrs:?}");
        }
        Some(other) => panic!("unknown phase {other}"),
        None => {
            let sandbox = Sandbox::new();
            sandbox.run(TEST, "create");
            sandbox.run(TEST, "use");
        }
    }
}

isolated_test! {
    fn aes_encrypt_data_derivation() {
        let token = Token::new();
        let session = token.user();
        let raw = token.raw();
        let s = handle(&session);
        let base_value = [0x21u8; 16];
        let base = session
            .create_object(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Value(base_value.to_vec()),
                Attribute::Token(false),
                Attribute::Encrypt(true),
                Attribute::Derive(true),
            ])
            .unwrap();
        let data: Vec<u8> = (0..32u8).collect();
        let iv = [0x44u8; 16];
        let ecb = raw.encrypt(s, &mech(CKM_AES_ECB), base.handle(), &data).unwrap();
        let cbc = raw.encrypt(s, &mech_bytes(CKM_AES_CBC, &iv), base.handle(), &data).unwrap();
        let ecb_param = CK_KEY_DERIVATION_STRING_DATA { pData: data.as_ptr() as *mut u8, ulLen: 32 };
        let cbc_param = CK_AES_CBC_ENCRYPT_DATA_PARAMS { iv, pData: data.as_ptr() as *mut u8, length: 32 };
        let class: CK_ULONG = CKO_SECRET_KEY;
        let aes: CK_ULONG = CKK_AES;
        let yes: CK_BBOOL = CK_TRUE;
        let no: CK_BBOOL = CK_FALSE;
        for (ty, param, expected) in [
            (CKM_AES_ECB_ENCRYPT_DATA, as_bytes(&ecb_param), &ecb),
            (CKM_AES_CBC_ENCRYPT_DATA, as_bytes(&cbc_param), &cbc),
        ] {
            let mut m = mech_bytes(ty, param);
            let mut template = [
                ulong_attr_raw(CKA_CLASS, &class),
                ulong_attr_raw(CKA_KEY_TYPE, &aes),
                bool_attr_raw(CKA_ENCRYPT, &yes),
                bool_attr_raw(CKA_TOKEN, &no),
            ];
            let mut derived = 0;
            let rv = raw!(raw, C_DeriveKey(s, &mut m, base.handle(), template.as_mut_ptr(), 4, &mut derived));
            assert_rv(rv, CKR_OK, &format!("C_DeriveKey {ty:#x}"));
            // The derived key is the encrypted data: it encrypts like a key imported so.
            let twin = secret_key(&session, CKK_AES, expected);
            let a = raw.encrypt(s, &mech(CKM_AES_ECB), derived, &[0; 16]).unwrap();
            let b = raw.encrypt(s, &mech(CKM_AES_ECB), twin.handle(), &[0; 16]).unwrap();
            assert_eq!(a, b, "{ty:#x} derived another value");
            // CKA_VALUE_LEN takes a prefix: a 16-byte key from the same data.
            let sixteen: CK_ULONG = 16;
            let mut template = [
                ulong_attr_raw(CKA_CLASS, &class),
                ulong_attr_raw(CKA_KEY_TYPE, &aes),
                ulong_attr_raw(CKA_VALUE_LEN, &sixteen),
                bool_attr_raw(CKA_TOKEN, &no),
            ];
            let rv = raw!(raw, C_DeriveKey(s, &mut m, base.handle(), template.as_mut_ptr(), 4, &mut derived));
            assert_rv(rv, CKR_OK, "derive with CKA_VALUE_LEN");
        }
        // An imported base key was never "always sensitive": neither is what it derives.
        let derived = session
            .find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY), Attribute::Local(false), Attribute::ValueLen(16.into())])
            .unwrap();
        assert!(!derived.is_empty());
        for key in derived {
            assert!(!bool_attr(&session, key, AttributeType::AlwaysSensitive));
        }
        // Codes: whole blocks only; CKA_DERIVE; no CBC parameter on ECB.
        let short = CK_KEY_DERIVATION_STRING_DATA { pData: data.as_ptr() as *mut u8, ulLen: 20 };
        let mut m = mech_bytes(CKM_AES_ECB_ENCRYPT_DATA, as_bytes(&short));
        let mut template = [ulong_attr_raw(CKA_CLASS, &class), ulong_attr_raw(CKA_KEY_TYPE, &aes)];
        let mut derived = 0;
        let rv = raw!(raw, C_DeriveKey(s, &mut m, base.handle(), template.as_mut_ptr(), 2, &mut derived));
        assert_rv(rv, CKR_MECHANISM_PARAM_INVALID, "20 bytes of derivation data");
        // 16 bytes of data cannot give the 32-byte key the template asks for.
        let thirty_two: CK_ULONG = 32;
        let half = CK_KEY_DERIVATION_STRING_DATA { pData: data.as_ptr() as *mut u8, ulLen: 16 };
        let mut m = mech_bytes(CKM_AES_ECB_ENCRYPT_DATA, as_bytes(&half));
        let mut long = [
            ulong_attr_raw(CKA_CLASS, &class),
            ulong_attr_raw(CKA_KEY_TYPE, &aes),
            ulong_attr_raw(CKA_VALUE_LEN, &thirty_two),
        ];
        let rv = raw!(raw, C_DeriveKey(s, &mut m, base.handle(), long.as_mut_ptr(), 3, &mut derived));
        assert_rv(rv, CKR_MECHANISM_PARAM_INVALID, "data shorter than CKA_VALUE_LEN");
        let no_derive = secret_key(&session, CKK_AES, &[9; 16]);
        let mut m = mech_bytes(CKM_AES_ECB_ENCRYPT_DATA, as_bytes(&ecb_param));
        let rv = raw!(raw, C_DeriveKey(s, &mut m, no_derive.handle(), template.as_mut_ptr(), 2, &mut derived));
        assert_rv(rv, CKR_KEY_FUNCTION_NOT_PERMITTED, "base key without CKA_DERIVE");
        let mut m = mech_bytes(CKM_AES_CBC_ENCRYPT_DATA, as_bytes(&ecb_param));
        let rv = raw!(raw, C_DeriveKey(s, &mut m, base.handle(), template.as_mut_ptr(), 2, &mut derived));
        assert_rv(rv, CKR_MECHANISM_PARAM_INVALID, "ECB parameter on the CBC mechanism");
        let mut m = mech(CKM_AES_CBC);
        let rv = raw!(raw, C_DeriveKey(s, &mut m, base.handle(), template.as_mut_ptr(), 2, &mut derived));
        assert_rv(rv, CKR_MECHANISM_INVALID, "a mechanism that does not derive");
    }
}
