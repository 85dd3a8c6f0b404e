//! Objects: create / copy / destroy, C_GetAttributeValue and C_SetAttributeValue rules,
//! visibility of private and session objects, searches among many objects.

#[macro_use]
mod common;

use std::ffi::c_void;

use common::*;
use cryptoki::error::RvError;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki_sys::*;

isolated_test! {
    fn data_object_lifecycle() {
        let token = Token::new();
        let session = token.user();
        let object = session
            .create_object(&data_object("doc", b"hello", false, false))
            .expect("C_CreateObject data");
        assert_eq!(bytes_attr(&session, object, AttributeType::Value), b"hello");
        assert_eq!(bytes_attr(&session, object, AttributeType::Label), b"doc");
        assert!(!bool_attr(&session, object, AttributeType::Token));

        session
            .update_attributes(object, &[Attribute::Label(b"renamed".to_vec())])
            .expect("set CKA_LABEL");
        assert_eq!(bytes_attr(&session, object, AttributeType::Label), b"renamed");
        common::expect_rv(
            session.update_attributes(object, &[Attribute::Class(ObjectClass::SECRET_KEY)]),
            RvError::AttributeReadOnly,
        );

        let copy = session
            .copy_object(object, &[Attribute::Label(b"copy".to_vec()), Attribute::Token(true)])
            .expect("C_CopyObject");
        assert_ne!(copy, object);
        assert_eq!(bytes_attr(&session, copy, AttributeType::Value), b"hello");
        assert_eq!(bytes_attr(&session, copy, AttributeType::Label), b"copy");
        assert!(bool_attr(&session, copy, AttributeType::Token), "copy made a token object");
        assert_eq!(bytes_attr(&session, object, AttributeType::Label), b"renamed", "original kept");
        common::expect_rv(
            session.copy_object(object, &[Attribute::Class(ObjectClass::CERTIFICATE)]),
            RvError::AttributeReadOnly,
        );

        let raw = token.raw();
        let mut size: CK_ULONG = 0;
        assert_rv(raw!(raw, C_GetObjectSize(session.handle(), copy.handle(), &mut size)), CKR_OK, "C_GetObjectSize");

        session.destroy_object(copy).expect("C_DestroyObject");
        common::expect_rv(session.get_attributes(copy, &[AttributeType::Label]), RvError::ObjectHandleInvalid);
        common::expect_rv(session.destroy_object(copy), RvError::ObjectHandleInvalid);
        assert!(find_by_label(&session, "copy").is_empty());

        // A template without CKA_CLASS is incomplete.
        common::expect_rv(
            session.create_object(&[Attribute::Label(b"classless".to_vec())]),
            RvError::TemplateIncomplete,
        );
        // A value of the wrong size for its type.
        let mut class_short = [0u8; 2];
        let mut template = [CK_ATTRIBUTE {
            type_: CKA_CLASS,
            pValue: class_short.as_mut_ptr() as *mut c_void,
            ulValueLen: 2,
        }];
        let mut handle = CK_INVALID_HANDLE;
        let rv = raw!(raw, C_CreateObject(session.handle(), template.as_mut_ptr(), 1, &mut handle));
        assert_rv(rv, CKR_ATTRIBUTE_VALUE_INVALID, "CKA_CLASS of 2 bytes");
    }
}

/// Fills a raw template of (type, buffer) pairs and calls C_GetAttributeValue.
fn get_raw(
    raw: &Raw,
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    types: &[CK_ATTRIBUTE_TYPE],
) -> (CK_RV, Vec<(CK_ULONG, Vec<u8>)>) {
    let mut buffers: Vec<Vec<u8>> = types.iter().map(|_| vec![0u8; 1024]).collect();
    let mut template: Vec<CK_ATTRIBUTE> = types
        .iter()
        .zip(buffers.iter_mut())
        .map(|(t, b)| CK_ATTRIBUTE {
            type_: *t,
            pValue: b.as_mut_ptr() as *mut c_void,
            ulValueLen: b.len() as CK_ULONG,
        })
        .collect();
    let rv = raw!(
        raw,
        C_GetAttributeValue(
            session,
            object,
            template.as_mut_ptr(),
            template.len() as CK_ULONG
        )
    );
    let out = template
        .iter()
        .zip(buffers)
        .map(|(a, mut b)| {
            if a.ulValueLen != CK_UNAVAILABLE_INFORMATION {
                b.truncate(a.ulValueLen as usize);
            }
            (a.ulValueLen, b)
        })
        .collect();
    (rv, out)
}

isolated_test! {
    fn get_attribute_value_processes_every_attribute() {
        let token = Token::new();
        let session = token.user();
        let pair = gen_rsa(&session, 2048, "attrs", false);
        let raw = token.raw();
        let h = session.handle();

        let (rv, values) = get_raw(&raw, h, pair.private.handle(), &[CKA_MODULUS, CKA_PRIVATE_EXPONENT, CKA_PUBLIC_EXPONENT]);
        assert_rv(rv, CKR_ATTRIBUTE_SENSITIVE, "sensitive private exponent");
        assert_eq!(values[0].0, 256, "modulus still returned");
        assert_eq!(values[1].0, CK_UNAVAILABLE_INFORMATION, "private exponent unavailable");
        assert_eq!(strip_zeros(&values[2].1), F4, "public exponent still returned");

        for secret in [CKA_PRIME_1, CKA_PRIME_2, CKA_EXPONENT_1, CKA_EXPONENT_2, CKA_COEFFICIENT] {
            let (rv, values) = get_raw(&raw, h, pair.private.handle(), &[secret]);
            assert_rv(rv, CKR_ATTRIBUTE_SENSITIVE, "CRT component");
            assert_eq!(values[0].0, CK_UNAVAILABLE_INFORMATION);
        }

        let (rv, values) = get_raw(&raw, h, pair.private.handle(), &[CKA_MODULUS, 0x7fff_0123, CKA_LABEL]);
        assert_rv(rv, CKR_ATTRIBUTE_TYPE_INVALID, "unknown attribute type");
        assert_eq!(values[0].0, 256);
        assert_eq!(values[1].0, CK_UNAVAILABLE_INFORMATION);
        assert_eq!(values[2].1, b"attrs");
        // An attribute that exists but not for this class (CKA_VALUE_LEN on an RSA key).
        let (rv, values) = get_raw(&raw, h, pair.public.handle(), &[CKA_VALUE_LEN, CKA_MODULUS_BITS]);
        assert_rv(rv, CKR_ATTRIBUTE_TYPE_INVALID, "CKA_VALUE_LEN on an RSA public key");
        assert_eq!(values[0].0, CK_UNAVAILABLE_INFORMATION);
        assert_eq!(values[1].1, 2048u64.to_ne_bytes());

        // Both problems in one call: either code, both entries unavailable.
        let (rv, values) = get_raw(&raw, h, pair.private.handle(), &[CKA_PRIVATE_EXPONENT, 0x7fff_0123, CKA_CLASS]);
        assert_rv_in(rv, &[CKR_ATTRIBUTE_SENSITIVE, CKR_ATTRIBUTE_TYPE_INVALID], "sensitive and invalid");
        assert_eq!(values[0].0, CK_UNAVAILABLE_INFORMATION);
        assert_eq!(values[1].0, CK_UNAVAILABLE_INFORMATION);
        assert_eq!(values[2].1, CKO_PRIVATE_KEY.to_ne_bytes());

        // Key-generation bookkeeping attributes.
        let attrs = session
            .get_attributes(pair.private, &[
                AttributeType::Local, AttributeType::AlwaysSensitive,
                AttributeType::NeverExtractable, AttributeType::KeyGenMechanism,
                AttributeType::KeyType,
            ])
            .expect("get attributes");
        assert!(attrs.contains(&Attribute::Local(true)), "{attrs:?}");
        assert!(attrs.contains(&Attribute::AlwaysSensitive(true)), "{attrs:?}");
        assert!(attrs.contains(&Attribute::NeverExtractable(true)), "{attrs:?}");
        assert!(attrs.contains(&Attribute::KeyGenMechanism(MechanismType::RSA_PKCS_KEY_PAIR_GEN)), "{attrs:?}");
        assert!(attrs.contains(&Attribute::KeyType(KeyType::RSA)), "{attrs:?}");
    }
}

isolated_test! {
    fn sensitive_and_extractable_only_move_one_way() {
        let token = Token::new();
        let session = token.user();
        let (public, mut private) = rsa_templates(2048, "one-way", false);
        for attribute in private.iter_mut() {
            match attribute {
                Attribute::Sensitive(v) => *v = false,
                Attribute::Extractable(v) => *v = true,
                _ => {}
            }
        }
        let (_, key) = session
            .generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private)
            .expect("generate extractable key");
        assert!(!bytes_attr(&session, key, AttributeType::PrivateExponent).is_empty());
        assert!(!bool_attr(&session, key, AttributeType::AlwaysSensitive));

        session.update_attributes(key, &[Attribute::Sensitive(true)]).expect("false -> true");
        let raw = token.raw();
        let (rv, values) = get_raw(&raw, session.handle(), key.handle(), &[CKA_PRIVATE_EXPONENT]);
        assert_rv(rv, CKR_ATTRIBUTE_SENSITIVE, "private exponent after CKA_SENSITIVE became true");
        assert_eq!(values[0].0, CK_UNAVAILABLE_INFORMATION);
        common::expect_rv(
            session.update_attributes(key, &[Attribute::Sensitive(false)]),
            RvError::AttributeReadOnly,
        );
        assert!(!bool_attr(&session, key, AttributeType::AlwaysSensitive), "was not always sensitive");

        session.update_attributes(key, &[Attribute::Extractable(false)]).expect("true -> false");
        common::expect_rv(
            session.update_attributes(key, &[Attribute::Extractable(true)]),
            RvError::AttributeReadOnly,
        );
        assert!(!bool_attr(&session, key, AttributeType::NeverExtractable));
        // Settable-only-on-create attributes.
        common::expect_rv(
            session.update_attributes(key, &[Attribute::KeyType(KeyType::EC)]),
            RvError::AttributeReadOnly,
        );
        common::expect_rv(
            session.update_attributes(key, &[Attribute::Local(false)]),
            RvError::AttributeReadOnly,
        );
    }
}

isolated_test! {
    fn modifiable_copyable_destroyable_are_enforced() {
        let token = Token::new();
        let session = token.user();
        let mut template = data_object("fixed", b"v", false, false);
        template.push(Attribute::Modifiable(false));
        template.push(Attribute::Copyable(false));
        let fixed = session.create_object(&template).expect("create");
        // The spec names no single code for a change to a CKA_MODIFIABLE=FALSE object.
        common::expect_rv_in(
            session.update_attributes(fixed, &[Attribute::Label(b"x".to_vec())]),
            &[RvError::ActionProhibited, RvError::AttributeReadOnly],
        );
        assert_eq!(bytes_attr(&session, fixed, AttributeType::Label), b"fixed");
        common::expect_rv(session.copy_object(fixed, &[]), RvError::ActionProhibited);

        let mut template = data_object("permanent", b"v", false, false);
        template.push(Attribute::Destroyable(false));
        let permanent = session.create_object(&template).expect("create");
        common::expect_rv(session.destroy_object(permanent), RvError::ActionProhibited);
        assert_eq!(find_by_label(&session, "permanent").len(), 1);
    }
}

isolated_test! {
    fn private_objects_need_login() {
        let token = Token::new();
        let session = token.rw();
        common::expect_rv(
            session.create_object(&data_object("secret", b"s", true, true)),
            RvError::UserNotLoggedIn,
        );
        session.login(UserType::User, Some(&pin(USER_PIN))).expect("login");
        let secret = session.create_object(&data_object("secret", b"s", true, true)).expect("create private");
        session.create_object(&data_object("public", b"p", true, false)).expect("create public");
        let pair = gen_rsa(&session, 2048, "hidden", true);
        session.logout().expect("logout");

        let visible = session.find_objects(&[]).expect("find all");
        let labels: Vec<Vec<u8>> = visible
            .iter()
            .map(|h| bytes_attr(&session, *h, AttributeType::Label))
            .collect();
        assert!(labels.contains(&b"public".to_vec()), "{labels:?}");
        assert!(labels.contains(&b"hidden".to_vec()), "the public key is public");
        assert_eq!(visible.len(), 2, "private objects hidden: {labels:?}");
        assert!(find_by_label(&session, "secret").is_empty());
        // A handle kept from before the logout does not give access.
        common::expect_rv_in(
            session.get_attributes(secret, &[AttributeType::Value]),
            &[RvError::ObjectHandleInvalid, RvError::UserNotLoggedIn],
        );
        let code = common::rv_of(session.sign(&Mechanism::Sha256RsaPkcs, pair.private, b"x"));
        assert!(
            matches!(code, RvError::KeyHandleInvalid | RvError::UserNotLoggedIn | RvError::ObjectHandleInvalid),
            "signing with a private key after logout: {code:?}"
        );

        session.login(UserType::User, Some(&pin(USER_PIN))).expect("login again");
        let found = find_by_label(&session, "secret");
        assert_eq!(found.len(), 1);
        assert_eq!(bytes_attr(&session, found[0], AttributeType::Value), b"s");
        assert_eq!(session.find_objects(&[]).expect("find").len(), 4);
    }
}

isolated_test! {
    fn session_objects_are_shared_and_vanish_at_close() {
        let token = Token::new();
        let keeper = token.user();
        let maker = token.rw();
        let object = maker.create_object(&data_object("ephemeral", b"e", false, false)).expect("create");
        assert_eq!(find_by_label(&keeper, "ephemeral"), vec![object], "visible from the other session");
        // A RO session may create session objects but not token objects.
        let ro = token.ro();
        ro.create_object(&data_object("ro-session-object", b"r", false, false)).expect("session object in RO");
        common::expect_rv(
            ro.create_object(&data_object("ro-token-object", b"r", true, false)),
            RvError::SessionReadOnly,
        );
        drop(ro);
        assert!(find_by_label(&keeper, "ro-session-object").is_empty(), "gone with its session");

        maker.close().expect("close the creating session");
        assert!(find_by_label(&keeper, "ephemeral").is_empty(), "session object gone");
        common::expect_rv(keeper.get_attributes(object, &[AttributeType::Label]), RvError::ObjectHandleInvalid);
    }
}

/// Data object number `i`: label `obj-<i>`, value `i`, application `group-<i % 7>`.
fn grouped_data_object(i: u32, token: bool, private: bool) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::DATA),
        Attribute::Token(token),
        Attribute::Private(private),
        Attribute::Label(format!("obj-{i}").into_bytes()),
        Attribute::Application(format!("group-{}", i % 7).into_bytes()),
        Attribute::Value(i.to_be_bytes().to_vec()),
    ]
}

isolated_test! {
    fn find_by_label_among_two_thousand_objects() {
        let token = Token::new();
        let session = token.user();
        for i in 0..1800u32 {
            let template = grouped_data_object(i, false, false);
            session.create_object(&template).expect("create session object");
        }
        for i in 1800..2000u32 {
            let template = grouped_data_object(i, true, i % 2 == 0);
            session.create_object(&template).expect("create token object");
        }
        for i in [0u32, 1234, 1799, 1800, 1999] {
            let found = find_by_label(&session, &format!("obj-{i}"));
            assert_eq!(found.len(), 1, "obj-{i}");
            assert_eq!(bytes_attr(&session, found[0], AttributeType::Value), i.to_be_bytes());
        }
        assert!(find_by_label(&session, "obj-2000").is_empty());
        assert!(find_by_label(&session, "obj-").is_empty(), "labels match exactly, not by prefix");

        let data = session.find_objects(&[Attribute::Class(ObjectClass::DATA)]).expect("find");
        assert_eq!(data.len(), 2000);
        let group = session
            .find_objects(&[Attribute::Class(ObjectClass::DATA), Attribute::Application(b"group-3".to_vec())])
            .expect("find by application");
        assert_eq!(group.len(), (0..2000).filter(|i| i % 7 == 3).count());
        let token_objects = session.find_objects(&[Attribute::Token(true)]).expect("find token");
        assert_eq!(token_objects.len(), 200);
        let combined = session
            .find_objects(&[Attribute::Label(b"obj-1001".to_vec()), Attribute::Token(true)])
            .expect("find");
        assert!(combined.is_empty(), "obj-1001 is a session object");

        // C_FindObjects hands out results in batches and ends with an empty batch.
        let raw = token.raw();
        let h = session.handle();
        let mut class = CKO_DATA;
        let mut template = [CK_ATTRIBUTE { type_: CKA_CLASS, pValue: &mut class as *mut CK_ULONG as *mut c_void, ulValueLen: 8 }];
        assert_rv(raw!(raw, C_FindObjectsInit(h, template.as_mut_ptr(), 1)), CKR_OK, "C_FindObjectsInit");
        assert_rv(raw!(raw, C_FindObjectsInit(h, template.as_mut_ptr(), 1)), CKR_OPERATION_ACTIVE, "second C_FindObjectsInit");
        let mut total = 0;
        let mut batch = [CK_INVALID_HANDLE; 333];
        loop {
            let mut n: CK_ULONG = 0;
            assert_rv(raw!(raw, C_FindObjects(h, batch.as_mut_ptr(), 333, &mut n)), CKR_OK, "C_FindObjects");
            if n == 0 {
                break;
            }
            total += n;
        }
        assert_eq!(total, 2000);
        assert_rv(raw!(raw, C_FindObjectsFinal(h)), CKR_OK, "C_FindObjectsFinal");
        let mut n: CK_ULONG = 0;
        assert_rv(
            raw!(raw, C_FindObjects(h, batch.as_mut_ptr(), 1, &mut n)),
            CKR_OPERATION_NOT_INITIALIZED,
            "C_FindObjects after final",
        );
        assert_rv(raw!(raw, C_FindObjectsFinal(h)), CKR_OPERATION_NOT_INITIALIZED, "second final");
    }
}

isolated_test! {
    fn import_rsa_key_from_components() {
        let token = Token::new();
        let session = token.user();
        let (public, mut private) = rsa_templates(2048, "source", false);
        for attribute in private.iter_mut() {
            match attribute {
                Attribute::Sensitive(v) => *v = false,
                Attribute::Extractable(v) => *v = true,
                _ => {}
            }
        }
        let (public, private) = session
            .generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private)
            .expect("generate");
        let parts = session
            .get_attributes(private, &[
                AttributeType::Modulus, AttributeType::PublicExponent, AttributeType::PrivateExponent,
                AttributeType::Prime1, AttributeType::Prime2, AttributeType::Exponent1,
                AttributeType::Exponent2, AttributeType::Coefficient,
            ])
            .expect("read components");
        assert_eq!(parts.len(), 8, "all components readable: {parts:?}");

        let mut template = vec![
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(KeyType::RSA),
            Attribute::Token(false),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Decrypt(true),
            Attribute::Sign(true),
            Attribute::Label(b"imported".to_vec()),
        ];
        template.extend(parts.iter().cloned());
        let imported = session.create_object(&template).expect("import private key");
        assert!(!bool_attr(&session, imported, AttributeType::Local), "imported keys are not local");
        assert!(!bool_attr(&session, imported, AttributeType::AlwaysSensitive) || is_softhsm());

        let message = b"imported key works";
        let ciphertext = session.encrypt(&Mechanism::RsaPkcs, public, message).expect("encrypt");
        assert_eq!(session.decrypt(&Mechanism::RsaPkcs, imported, &ciphertext).expect("decrypt"), message);

        let modulus = bytes_attr(&session, public, AttributeType::Modulus);
        let imported_public = session
            .create_object(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::KeyType(KeyType::RSA),
                Attribute::Token(false),
                Attribute::Verify(true),
                Attribute::Encrypt(true),
                Attribute::Modulus(modulus),
                Attribute::PublicExponent(F4.to_vec()),
            ])
            .expect("import public key");
        let signature = session.sign(&Mechanism::Sha256RsaPkcs, imported, message).expect("sign");
        session
            .verify(&Mechanism::Sha256RsaPkcs, imported_public, message, &signature)
            .expect("verify with imported public key");

        common::expect_rv(
            session.create_object(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::KeyType(KeyType::RSA),
                Attribute::PublicExponent(F4.to_vec()),
            ]),
            RvError::TemplateIncomplete,
        );
    }
}
