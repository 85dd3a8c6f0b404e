//! C_WrapKey / C_UnwrapKey through the C ABI: RSA (PKCS#1 v1.5 and OAEP with every hash),
//! SM2, AES key wrap (RFC 3394 / 5649) and AES-CBC-PAD; secret keys and PKCS#8 private keys;
//! the wrap/unwrap attribute rules and the spec's codes, with nothing created on failure.

#[macro_use]
mod common;

use common::*;
use cryptoki::error::RvError;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki_sys::*;
use std::ptr;

/// An extractable AES key to be wrapped (session object).
fn wrappable_aes(session: &Session, len: u64) -> ObjectHandle {
    session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::ValueLen(len.into()),
                Attribute::Extractable(true),
                Attribute::Sensitive(true),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
            ],
        )
        .expect("generate wrappable AES key")
}

/// An AES key-encryption key.
fn kek(session: &Session) -> ObjectHandle {
    session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::ValueLen(32.into()),
                Attribute::Wrap(true),
                Attribute::Unwrap(true),
            ],
        )
        .expect("generate KEK")
}

fn unwrap_template_aes() -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(false),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
    ]
}

/// Both keys produce the same AES-CBC ciphertext: the unwrapped key is the wrapped one.
fn same_aes_key(session: &Session, a: ObjectHandle, b: ObjectHandle) {
    let iv = [4u8; 16];
    let data = b"sixteen byte msg";
    let x = session.encrypt(&Mechanism::AesCbc(iv), a, data).unwrap();
    let y = session.encrypt(&Mechanism::AesCbc(iv), b, data).unwrap();
    assert_eq!(x, y, "unwrapped key differs from the original");
}

fn object_count(session: &Session) -> usize {
    session.find_objects(&[]).unwrap().len()
}

isolated_test! {
    fn rsa_wraps_aes_keys_with_every_oaep_hash_and_pkcs1() {
        let token = Token::new();
        let session = token.user();
        let (mut public, mut private) = rsa_templates(2048, "kex", false);
        public.push(Attribute::Wrap(true));
        private.push(Attribute::Unwrap(true));
        let (public, private) = session
            .generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private)
            .unwrap();
        let key = wrappable_aes(&session, 32);
        let hashes = [
            (MechanismType::SHA1, PkcsMgfType::MGF1_SHA1),
            (MechanismType::SHA224, PkcsMgfType::MGF1_SHA224),
            (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
            (MechanismType::SHA384, PkcsMgfType::MGF1_SHA384),
            (MechanismType::SHA512, PkcsMgfType::MGF1_SHA512),
        ];
        for (hash, mgf) in hashes {
            for label in [&b""[..], b"label"] {
                let source = if label.is_empty() {
                    PkcsOaepSource::empty()
                } else {
                    PkcsOaepSource::data_specified(label)
                };
                let m = Mechanism::RsaPkcsOaep(PkcsOaepParams::new(hash, mgf, source));
                let wrapped = session.wrap_key(&m, public, key).unwrap();
                assert_eq!(wrapped.len(), 256);
                let unwrapped = session
                    .unwrap_key(&m, private, &wrapped, &unwrap_template_aes())
                    .unwrap();
                same_aes_key(&session, key, unwrapped);
            }
        }
        let wrapped = session.wrap_key(&Mechanism::RsaPkcs, public, key).unwrap();
        let unwrapped = session
            .unwrap_key(&Mechanism::RsaPkcs, private, &wrapped, &unwrap_template_aes())
            .unwrap();
        same_aes_key(&session, key, unwrapped);
        // An unwrapped key was known outside the token.
        let attrs = session
            .get_attributes(unwrapped, &[
                AttributeType::Local,
                AttributeType::AlwaysSensitive,
                AttributeType::NeverExtractable,
                AttributeType::Extractable,
                AttributeType::ValueLen,
            ])
            .unwrap();
        assert_eq!(attrs, vec![
            Attribute::Local(false),
            Attribute::AlwaysSensitive(false),
            Attribute::NeverExtractable(false),
            Attribute::Extractable(false),
            Attribute::ValueLen(32.into()),
        ]);

        // Codes, and nothing created on failure.
        let before = object_count(&session);
        let mut garbage = wrapped.clone();
        garbage[100] ^= 0x55;
        expect_rv_in(
            session.unwrap_key(&Mechanism::RsaPkcs, private, &garbage, &unwrap_template_aes()),
            &[RvError::WrappedKeyInvalid],
        );
        expect_rv(
            session.unwrap_key(&Mechanism::RsaPkcs, private, &wrapped[..100], &unwrap_template_aes()),
            RvError::WrappedKeyLenRange,
        );
        // A 20-byte secret is no AES key.
        let twenty = session
            .create_object(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::GENERIC_SECRET),
                Attribute::Value(vec![7; 20]),
                Attribute::Extractable(true),
                Attribute::Token(false),
            ])
            .unwrap();
        let wrapped20 = session.wrap_key(&Mechanism::RsaPkcs, public, twenty).unwrap();
        let before_twenty = object_count(&session);
        expect_rv(
            session.unwrap_key(&Mechanism::RsaPkcs, private, &wrapped20, &unwrap_template_aes()),
            RvError::WrappedKeyInvalid,
        );
        assert_eq!(object_count(&session), before_twenty);
        assert_eq!(before, before_twenty - 1);
        // Wrapping keys that may not be used so.
        expect_rv(session.wrap_key(&Mechanism::RsaPkcs, private, key), RvError::KeyFunctionNotPermitted);
        expect_rv(
            session.unwrap_key(&Mechanism::RsaPkcs, public, &wrapped, &unwrap_template_aes()),
            RvError::KeyFunctionNotPermitted,
        );
        let (public_t, mut private_t) = rsa_templates(2048, "no-unwrap", false);
        private_t.push(Attribute::Unwrap(false));
        let (_, no_unwrap) = session
            .generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public_t, &private_t)
            .unwrap();
        expect_rv(
            session.unwrap_key(&Mechanism::RsaPkcs, no_unwrap, &wrapped, &unwrap_template_aes()),
            RvError::KeyFunctionNotPermitted,
        );
        // The key to wrap must be extractable.
        let stuck = session
            .generate_key(&Mechanism::AesKeyGen, &[Attribute::ValueLen(16.into())])
            .unwrap();
        expect_rv(session.wrap_key(&Mechanism::RsaPkcs, public, stuck), RvError::KeyUnextractable);
        // A mechanism that does not wrap; a wrapping key of the wrong type.
        expect_rv(session.wrap_key(&Mechanism::AesEcb, public, key), RvError::MechanismInvalid);
        let aes_kek = kek(&session);
        expect_rv(session.wrap_key(&Mechanism::RsaPkcs, aes_kek, key), RvError::WrappingKeyTypeInconsistent);
        expect_rv(
            session.unwrap_key(&Mechanism::RsaPkcs, aes_kek, &wrapped, &unwrap_template_aes()),
            RvError::UnwrappingKeyTypeInconsistent,
        );
        // An incomplete template.
        expect_rv(
            session.unwrap_key(&Mechanism::RsaPkcs, private, &wrapped, &[Attribute::Class(ObjectClass::SECRET_KEY)]),
            RvError::TemplateIncomplete,
        );
        // The no-unwrap pair, the unextractable key and the KEK; nothing else.
        assert_eq!(object_count(&session), before_twenty + 4);

        // Raw: handle codes and the length protocol.
        let raw = token.raw();
        let s = session.handle();
        let mut m = mech(CKM_RSA_PKCS);
        let mut len: CK_ULONG = 0;
        let rv = raw!(raw, C_WrapKey(s, &mut m, 0xdead, key.handle(), ptr::null_mut(), &mut len));
        assert_rv(rv, CKR_WRAPPING_KEY_HANDLE_INVALID, "bad wrapping handle");
        let rv = raw!(raw, C_WrapKey(s, &mut m, public.handle(), 0xdead, ptr::null_mut(), &mut len));
        assert_rv(rv, CKR_KEY_HANDLE_INVALID, "bad key handle");
        let rv = raw!(raw, C_WrapKey(s, &mut m, public.handle(), key.handle(), ptr::null_mut(), &mut len));
        assert_rv(rv, CKR_OK, "length query");
        assert_eq!(len, 256);
        let mut small = vec![0u8; 10];
        let mut len: CK_ULONG = 10;
        let rv = raw!(raw, C_WrapKey(s, &mut m, public.handle(), key.handle(), small.as_mut_ptr(), &mut len));
        assert_rv(rv, CKR_BUFFER_TOO_SMALL, "short buffer");
        assert_eq!(len, 256);
        let rv = raw!(raw, C_WrapKey(s, &mut m, public.handle(), key.handle(), ptr::null_mut(), ptr::null_mut()));
        assert_rv(rv, CKR_ARGUMENTS_BAD, "NULL length");
        let mut handle = CK_INVALID_HANDLE;
        let rv = raw!(raw, C_UnwrapKey(s, &mut m, 0xdead, wrapped.as_ptr() as *mut u8, 256, ptr::null_mut(), 0, &mut handle));
        assert_rv(rv, CKR_UNWRAPPING_KEY_HANDLE_INVALID, "bad unwrapping handle");
    }
}

isolated_test! {
    fn aes_key_wrap_kwp_cbc_pad_and_sm2_wrap_secret_and_private_keys() {
        let token = Token::new();
        let session = token.user();
        let raw = token.raw();
        let s = session.handle();
        let kek = kek(&session);
        let key = wrappable_aes(&session, 16);

        // RFC 3394 through cryptoki.
        let wrapped = session.wrap_key(&Mechanism::AesKeyWrap, kek, key).unwrap();
        assert_eq!(wrapped.len(), 24);
        let unwrapped = session
            .unwrap_key(&Mechanism::AesKeyWrap, kek, &wrapped, &unwrap_template_aes())
            .unwrap();
        same_aes_key(&session, key, unwrapped);
        let before = object_count(&session);
        let mut tampered = wrapped.clone();
        tampered[5] ^= 1;
        expect_rv(
            session.unwrap_key(&Mechanism::AesKeyWrap, kek, &tampered, &unwrap_template_aes()),
            RvError::WrappedKeyInvalid,
        );
        expect_rv(
            session.unwrap_key(&Mechanism::AesKeyWrap, kek, &wrapped[..20], &unwrap_template_aes()),
            RvError::WrappedKeyLenRange,
        );
        assert_eq!(object_count(&session), before);

        // An RSA private key as PKCS#8 under KWP and CBC_PAD; the copy decrypts.
        let (public_t, mut private_t) = rsa_templates(2048, "exportable", false);
        private_t.retain(|a| !matches!(a, Attribute::Extractable(_)));
        private_t.push(Attribute::Extractable(true));
        let (public, private) = session
            .generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public_t, &private_t)
            .unwrap();
        let ciphertext = session.encrypt(&Mechanism::RsaPkcs, public, b"for the copy").unwrap();
        let iv = [0x42u8; 16];
        for m in [mech(CKM_AES_KEY_WRAP_KWP), mech_bytes(CKM_AES_CBC_PAD, &iv)] {
            let mut mm = m;
            let mut len: CK_ULONG = 0;
            let rv = raw!(raw, C_WrapKey(s, &mut mm, kek.handle(), private.handle(), ptr::null_mut(), &mut len));
            assert_rv(rv, CKR_OK, "wrap length query");
            let mut blob = vec![0u8; len as usize];
            let rv = raw!(raw, C_WrapKey(s, &mut mm, kek.handle(), private.handle(), blob.as_mut_ptr(), &mut len));
            assert_rv(rv, CKR_OK, "wrap private key");
            blob.truncate(len as usize);
            let class: CK_ULONG = CKO_PRIVATE_KEY;
            let key_type: CK_ULONG = CKK_RSA;
            let yes: CK_BBOOL = CK_TRUE;
            let no: CK_BBOOL = CK_FALSE;
            let mut template = [
                ulong_attr_raw(CKA_CLASS, &class),
                ulong_attr_raw(CKA_KEY_TYPE, &key_type),
                bool_attr_raw(CKA_DECRYPT, &yes),
                bool_attr_raw(CKA_TOKEN, &no),
            ];
            let mut copy = CK_INVALID_HANDLE;
            let rv = raw!(raw, C_UnwrapKey(s, &mut mm, kek.handle(), blob.as_mut_ptr(), len, template.as_mut_ptr(), 4, &mut copy));
            assert_rv(rv, CKR_OK, "unwrap private key");
            assert_eq!(raw.decrypt(s, &mech(CKM_RSA_PKCS), copy, &ciphertext).unwrap(), b"for the copy");
        }

        // SM2 wraps an SM4 key (the unwrapped value is the SM2 plaintext).
        let mut gen = mech(CKM_SM2_KEY_PAIR_GEN);
        let yes: CK_BBOOL = CK_TRUE;
        let no: CK_BBOOL = CK_FALSE;
        let mut pub_t = [bool_attr_raw(CKA_WRAP, &yes), bool_attr_raw(CKA_TOKEN, &no)];
        let mut priv_t = [bool_attr_raw(CKA_UNWRAP, &yes), bool_attr_raw(CKA_TOKEN, &no)];
        let (mut sm2_pub, mut sm2_priv) = (0, 0);
        let rv = raw!(raw, C_GenerateKeyPair(s, &mut gen, pub_t.as_mut_ptr(), 2, priv_t.as_mut_ptr(), 2, &mut sm2_pub, &mut sm2_priv));
        assert_rv(rv, CKR_OK, "SM2 key pair");
        let sm4_value = [0x5au8; 16];
        let class: CK_ULONG = CKO_SECRET_KEY;
        let sm4_type: CK_ULONG = CKK_SM4;
        let mut sm4_t = [
            ulong_attr_raw(CKA_CLASS, &class),
            ulong_attr_raw(CKA_KEY_TYPE, &sm4_type),
            CK_ATTRIBUTE { type_: CKA_VALUE, pValue: sm4_value.as_ptr() as *mut _, ulValueLen: 16 },
            bool_attr_raw(CKA_EXTRACTABLE, &yes),
            bool_attr_raw(CKA_TOKEN, &no),
        ];
        let mut sm4 = 0;
        let rv = raw!(raw, C_CreateObject(s, sm4_t.as_mut_ptr(), 5, &mut sm4));
        assert_rv(rv, CKR_OK, "SM4 key");
        let cbc_iv = [3u8; 16];
        let reference = raw.encrypt(s, &mech_bytes(CKM_SM4_CBC_PAD, &cbc_iv), sm4, b"sm4 data").unwrap();
        for ty in [CKM_SM2_CIPHER_DER, CKM_SM2_RAW] {
            let mut m = mech_bytes(ty, &[]);
            let mut len: CK_ULONG = 0;
            let rv = raw!(raw, C_WrapKey(s, &mut m, sm2_pub, sm4, ptr::null_mut(), &mut len));
            assert_rv(rv, CKR_OK, "SM2 wrap length");
            let mut blob = vec![0u8; len as usize];
            let rv = raw!(raw, C_WrapKey(s, &mut m, sm2_pub, sm4, blob.as_mut_ptr(), &mut len));
            assert_rv(rv, CKR_OK, "SM2 wrap");
            blob.truncate(len as usize);
            let mut t = [
                ulong_attr_raw(CKA_CLASS, &class),
                ulong_attr_raw(CKA_KEY_TYPE, &sm4_type),
                bool_attr_raw(CKA_DECRYPT, &yes),
                bool_attr_raw(CKA_TOKEN, &no),
            ];
            let mut copy = 0;
            let rv = raw!(raw, C_UnwrapKey(s, &mut m, sm2_priv, blob.as_mut_ptr(), len, t.as_mut_ptr(), 4, &mut copy));
            assert_rv(rv, CKR_OK, "SM2 unwrap");
            assert_eq!(raw.decrypt(s, &mech_bytes(CKM_SM4_CBC_PAD, &cbc_iv), copy, &reference).unwrap(), b"sm4 data");
        }

        // An SM2 private key as PKCS#8 (ECPrivateKey with the SM2 OID) under KWP.
        let mut pub_t = [bool_attr_raw(CKA_ENCRYPT, &yes), bool_attr_raw(CKA_TOKEN, &no)];
        let mut priv_t = [bool_attr_raw(CKA_EXTRACTABLE, &yes), bool_attr_raw(CKA_TOKEN, &no)];
        let (mut export_pub, mut export_priv) = (0, 0);
        let rv = raw!(raw, C_GenerateKeyPair(s, &mut gen, pub_t.as_mut_ptr(), 2, priv_t.as_mut_ptr(), 2, &mut export_pub, &mut export_priv));
        assert_rv(rv, CKR_OK, "extractable SM2 key pair");
        let sm2_ct = raw.encrypt(s, &mech(CKM_SM2_CIPHER_DER), export_pub, b"to the copy").unwrap();
        let mut m = mech(CKM_AES_KEY_WRAP_KWP);
        let mut blob = vec![0u8; 512];
        let mut len: CK_ULONG = 512;
        let rv = raw!(raw, C_WrapKey(s, &mut m, kek.handle(), export_priv, blob.as_mut_ptr(), &mut len));
        assert_rv(rv, CKR_OK, "wrap SM2 private key");
        let private_class: CK_ULONG = CKO_PRIVATE_KEY;
        let ec: CK_ULONG = CKK_EC;
        let mut t = [
            ulong_attr_raw(CKA_CLASS, &private_class),
            ulong_attr_raw(CKA_KEY_TYPE, &ec),
            bool_attr_raw(CKA_DECRYPT, &yes),
            bool_attr_raw(CKA_TOKEN, &no),
        ];
        let mut copy = 0;
        let rv = raw!(raw, C_UnwrapKey(s, &mut m, kek.handle(), blob.as_mut_ptr(), len, t.as_mut_ptr(), 4, &mut copy));
        assert_rv(rv, CKR_OK, "unwrap SM2 private key");
        assert_eq!(raw.decrypt(s, &mech(CKM_SM2_CIPHER_DER), copy, &sm2_ct).unwrap(), b"to the copy");
        // The wrong class for the bytes: an RSA template over an SM2 key.
        let rsa: CK_ULONG = CKK_RSA;
        let mut t = [ulong_attr_raw(CKA_CLASS, &private_class), ulong_attr_raw(CKA_KEY_TYPE, &rsa)];
        let rv = raw!(raw, C_UnwrapKey(s, &mut m, kek.handle(), blob.as_mut_ptr(), len, t.as_mut_ptr(), 2, &mut copy));
        assert_rv(rv, CKR_TEMPLATE_INCONSISTENT, "RSA template over an SM2 PKCS#8 key");
    }
}

isolated_test! {
    fn every_mechanism_advertised_for_wrapping_wraps() {
        let token = Token::new();
        let session = token.user();
        let raw = token.raw();
        let s = session.handle();
        let slot = token.slot.id();
        let wrapping: Vec<CK_MECHANISM_TYPE> = raw
            .mechanism_list(token.slot)
            .into_iter()
            .filter(|m| {
                let mut info = CK_MECHANISM_INFO::default();
                raw!(raw, C_GetMechanismInfo(slot, *m, &mut info));
                info.flags & (CKF_WRAP | CKF_UNWRAP) != 0
            })
            .collect();
        let expected = [CKM_RSA_PKCS, CKM_RSA_PKCS_OAEP, CKM_AES_CBC_PAD, CKM_AES_KEY_WRAP, CKM_AES_KEY_WRAP_KWP, CKM_SM4_CBC_PAD, CKM_SM2_RAW, CKM_SM2_CIPHER_DER];
        let mut sorted = expected.to_vec();
        sorted.sort_unstable();
        assert_eq!(wrapping, sorted, "mechanisms with CKF_WRAP/CKF_UNWRAP");
        let (mut public, mut private) = rsa_templates(2048, "wrapper", false);
        public.push(Attribute::Wrap(true));
        private.push(Attribute::Unwrap(true));
        let (rsa_pub, rsa_priv) = session.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private).unwrap();
        let aes_kek = kek(&session);
        let yes: CK_BBOOL = CK_TRUE;
        let no: CK_BBOOL = CK_FALSE;
        let mut gen = mech(CKM_SM2_KEY_PAIR_GEN);
        let mut pub_t = [bool_attr_raw(CKA_WRAP, &yes), bool_attr_raw(CKA_TOKEN, &no)];
        let mut priv_t = [bool_attr_raw(CKA_UNWRAP, &yes), bool_attr_raw(CKA_TOKEN, &no)];
        let (mut sm2_pub, mut sm2_priv) = (0, 0);
        raw!(raw, C_GenerateKeyPair(s, &mut gen, pub_t.as_mut_ptr(), 2, priv_t.as_mut_ptr(), 2, &mut sm2_pub, &mut sm2_priv));
        let sm4_kek_value = [1u8; 16];
        let class: CK_ULONG = CKO_SECRET_KEY;
        let sm4_type: CK_ULONG = CKK_SM4;
        let mut sm4_t = [
            ulong_attr_raw(CKA_CLASS, &class),
            ulong_attr_raw(CKA_KEY_TYPE, &sm4_type),
            CK_ATTRIBUTE { type_: CKA_VALUE, pValue: sm4_kek_value.as_ptr() as *mut _, ulValueLen: 16 },
            bool_attr_raw(CKA_WRAP, &yes),
            bool_attr_raw(CKA_UNWRAP, &yes),
            bool_attr_raw(CKA_TOKEN, &no),
        ];
        let mut sm4_kek = 0;
        assert_rv(raw!(raw, C_CreateObject(s, sm4_t.as_mut_ptr(), 6, &mut sm4_kek)), CKR_OK, "SM4 KEK");
        let key = wrappable_aes(&session, 32);
        let iv = [8u8; 16];
        let oaep = CK_RSA_PKCS_OAEP_PARAMS { hashAlg: CKM_SHA256, mgf: CKG_MGF1_SHA256, source: 0, pSourceData: ptr::null_mut(), ulSourceDataLen: 0 };
        for ty in expected {
            let (wrap_key, unwrap_key, param): (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE, &[u8]) = match ty {
                CKM_RSA_PKCS => (rsa_pub.handle(), rsa_priv.handle(), &[]),
                CKM_RSA_PKCS_OAEP => (rsa_pub.handle(), rsa_priv.handle(), as_bytes(&oaep)),
                CKM_AES_CBC_PAD => (aes_kek.handle(), aes_kek.handle(), &iv),
                CKM_SM4_CBC_PAD => (sm4_kek, sm4_kek, &iv),
                CKM_SM2_RAW | CKM_SM2_CIPHER_DER => (sm2_pub, sm2_priv, &[]),
                _ => (aes_kek.handle(), aes_kek.handle(), &[]),
            };
            let mut m = mech_bytes(ty, param);
            let mut blob = vec![0u8; 1024];
            let mut len: CK_ULONG = 1024;
            let rv = raw!(raw, C_WrapKey(s, &mut m, wrap_key, key.handle(), blob.as_mut_ptr(), &mut len));
            assert_rv(rv, CKR_OK, &format!("wrap with {ty:#x}"));
            let key_type: CK_ULONG = CKK_AES;
            let mut t = [
                ulong_attr_raw(CKA_CLASS, &class),
                ulong_attr_raw(CKA_KEY_TYPE, &key_type),
                bool_attr_raw(CKA_ENCRYPT, &yes),
                bool_attr_raw(CKA_TOKEN, &no),
            ];
            let mut copy = 0;
            let rv = raw!(raw, C_UnwrapKey(s, &mut m, unwrap_key, blob.as_mut_ptr(), len, t.as_mut_ptr(), 4, &mut copy));
            assert_rv(rv, CKR_OK, &format!("unwrap with {ty:#x}"));
            let a = raw.encrypt(s, &mech(CKM_AES_ECB), key.handle(), &[0; 16]).unwrap();
            let b = raw.encrypt(s, &mech(CKM_AES_ECB), copy, &[0; 16]).unwrap();
            assert_eq!(a, b, "{ty:#x} unwrapped another key");
        }
    }
}

isolated_test! {
    fn wrap_and_unwrap_templates_and_trusted_wrapping_keys() {
        let token = Token::new();
        let session = token.user();
        let raw = token.raw();
        let s = session.handle();
        let yes: CK_BBOOL = CK_TRUE;
        let no: CK_BBOOL = CK_FALSE;
        let class: CK_ULONG = CKO_SECRET_KEY;
        let aes: CK_ULONG = CKK_AES;
        let value_len: CK_ULONG = 32;
        // A KEK that wraps only AES keys and unwraps only non-extractable ones.
        let mut wrap_t = [ulong_attr_raw(CKA_KEY_TYPE, &aes)];
        let mut unwrap_t = [bool_attr_raw(CKA_EXTRACTABLE, &no)];
        let size = std::mem::size_of::<CK_ATTRIBUTE>() as CK_ULONG;
        let mut kek_t = [
            ulong_attr_raw(CKA_VALUE_LEN, &value_len),
            bool_attr_raw(CKA_WRAP, &yes),
            bool_attr_raw(CKA_UNWRAP, &yes),
            bool_attr_raw(CKA_TOKEN, &no),
            CK_ATTRIBUTE { type_: CKA_WRAP_TEMPLATE, pValue: wrap_t.as_mut_ptr() as *mut _, ulValueLen: size },
            CK_ATTRIBUTE { type_: CKA_UNWRAP_TEMPLATE, pValue: unwrap_t.as_mut_ptr() as *mut _, ulValueLen: size },
        ];
        let mut gen = mech(CKM_AES_KEY_GEN);
        let mut kek = 0;
        assert_rv(raw!(raw, C_GenerateKey(s, &mut gen, kek_t.as_mut_ptr(), 6, &mut kek)), CKR_OK, "KEK with templates");

        // The templates read back with the attribute-array protocol.
        let mut query = [CK_ATTRIBUTE { type_: CKA_WRAP_TEMPLATE, pValue: ptr::null_mut(), ulValueLen: 0 }];
        assert_rv(raw!(raw, C_GetAttributeValue(s, kek, query.as_mut_ptr(), 1)), CKR_OK, "template size");
        assert_eq!(query[0].ulValueLen, size);
        let mut got: CK_ULONG = 0;
        let mut inner = [CK_ATTRIBUTE { type_: 0, pValue: &mut got as *mut _ as *mut _, ulValueLen: std::mem::size_of::<CK_ULONG>() as CK_ULONG }];
        let mut read = [CK_ATTRIBUTE { type_: CKA_WRAP_TEMPLATE, pValue: inner.as_mut_ptr() as *mut _, ulValueLen: size }];
        assert_rv(raw!(raw, C_GetAttributeValue(s, kek, read.as_mut_ptr(), 1)), CKR_OK, "template read");
        assert_eq!((inner[0].type_, got), (CKA_KEY_TYPE, CKK_AES));

        let kek = ObjectHandle::clone(&session.find_objects(&[Attribute::KeyType(KeyType::AES), Attribute::Wrap(true)]).unwrap()[0]);
        let key = wrappable_aes(&session, 32);
        let wrapped = session.wrap_key(&Mechanism::AesKeyWrap, kek, key).unwrap();
        let generic = session
            .create_object(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::GENERIC_SECRET),
                Attribute::Value(vec![1; 32]),
                Attribute::Extractable(true),
                Attribute::Token(false),
            ])
            .unwrap();
        expect_rv(session.wrap_key(&Mechanism::AesKeyWrap, kek, generic), RvError::KeyNotWrappable);
        // Asking for an extractable copy where the unwrap template forbids it.
        let mut t = unwrap_template_aes();
        t.retain(|a| !matches!(a, Attribute::Extractable(_)));
        let before = object_count(&session);
        let mut extractable = t.clone();
        extractable.push(Attribute::Extractable(true));
        expect_rv(
            session.unwrap_key(&Mechanism::AesKeyWrap, kek, &wrapped, &extractable),
            RvError::TemplateInconsistent,
        );
        assert_eq!(object_count(&session), before);
        // The value never comes from the template, not even the right one.
        let mut with_value = t.clone();
        let value = vec![0u8; 32];
        with_value.push(Attribute::Value(value));
        expect_rv(
            session.unwrap_key(&Mechanism::AesKeyWrap, kek, &wrapped, &with_value),
            RvError::TemplateInconsistent,
        );
        let copy = session.unwrap_key(&Mechanism::AesKeyWrap, kek, &wrapped, &t).unwrap();
        assert!(!bool_attr(&session, copy, AttributeType::Extractable));
        let _ = class;

        // CKA_WRAP_WITH_TRUSTED: only a wrapping key the SO marked trusted may wrap it.
        let precious = session
            .generate_key(&Mechanism::AesKeyGen, &[
                Attribute::ValueLen(16.into()),
                Attribute::Extractable(true),
                Attribute::WrapWithTrusted(true),
                Attribute::Token(true),
                Attribute::Label(b"precious".to_vec()),
            ])
            .unwrap();
        let (mut public, mut private) = rsa_templates(2048, "trusted", true);
        public.push(Attribute::Wrap(true));
        private.push(Attribute::Unwrap(true));
        let (trusted_pub, _) = session.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private).unwrap();
        expect_rv(session.wrap_key(&Mechanism::RsaPkcs, trusted_pub, precious), RvError::KeyNotWrappable);
        expect_rv(
            session.update_attributes(trusted_pub, &[Attribute::Trusted(true)]),
            RvError::AttributeReadOnly,
        );
        session.logout().unwrap();
        session.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
        session.update_attributes(trusted_pub, &[Attribute::Trusted(true)]).expect("SO sets CKA_TRUSTED");
        session.logout().unwrap();
        session.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        let wrapped = session.wrap_key(&Mechanism::RsaPkcs, trusted_pub, precious).unwrap();
        assert_eq!(wrapped.len(), 256);
        // A user's copy of a trusted key is not trusted (else it could be made modifiable and
        // given other usages).
        let copy = session.copy_object(trusted_pub, &[Attribute::Token(false)]).unwrap();
        let trusted = session.get_attributes(copy, &[AttributeType::Trusted]).unwrap();
        assert_eq!(trusted, vec![Attribute::Trusted(false)]);
        expect_rv(session.wrap_key(&Mechanism::RsaPkcs, copy, precious), RvError::KeyNotWrappable);
        expect_rv(session.wrap_key(&Mechanism::AesKeyWrap, kek, precious), RvError::KeyNotWrappable);
    }
}
