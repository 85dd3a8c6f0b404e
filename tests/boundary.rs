//! Hardening of the C boundary and of session state (issue 12): lengths no memory can have,
//! lengths no memory has, operations that end at C_Logout, searches that do not confirm
//! guesses of secret values.

#[macro_use]
mod common;

use std::ffi::c_void;
use std::ptr;

use common::*;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki_sys::*;

/// A length no region of memory can have: more than isize::MAX bytes.
const IMPOSSIBLE: CK_ULONG = isize::MAX as CK_ULONG + 1;
/// Another one, just below CK_UNAVAILABLE_INFORMATION (which templates refuse by itself).
const IMPOSSIBLE_TOO: CK_ULONG = CK_ULONG::MAX - 1;
/// A length an address space could in principle hold, but no machine can allocate.
const HUGE: CK_ULONG = 1 << 62;

fn aes_key(session: &cryptoki::session::Session) -> ObjectHandle {
    session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::ValueLen(16.into()),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
                Attribute::Token(false),
            ],
        )
        .expect("AES key")
}

fn attr(ty: CK_ATTRIBUTE_TYPE, value: &[u8], len: CK_ULONG) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE {
        type_: ty,
        pValue: value.as_ptr() as *mut c_void,
        ulValueLen: len,
    }
}

isolated_test! {
    fn impossible_and_huge_lengths_are_refused_without_aborting() {
        let token = Token::new();
        let session = token.user();
        let key = aes_key(&session).handle();
        let raw = token.raw();
        let h = session.handle();
        let label = b"a label";
        let mut buf = [0u8; 64];
        let out = buf.as_mut_ptr();
        let mut object = CK_INVALID_HANDLE;

        // Templates: the count and each value length.
        let class = CKO_DATA;
        let mut one = [ulong_attr_raw(CKA_CLASS, &class)];
        for n in [IMPOSSIBLE, IMPOSSIBLE_TOO] {
            let what = format!("count {n:#x}");
            assert_rv(raw!(raw, C_CreateObject(h, one.as_mut_ptr(), n, &mut object)), CKR_ARGUMENTS_BAD, &format!("C_CreateObject {what}"));
            assert_rv(raw!(raw, C_FindObjectsInit(h, one.as_mut_ptr(), n)), CKR_ARGUMENTS_BAD, &format!("C_FindObjectsInit {what}"));
            assert_rv(raw!(raw, C_GetAttributeValue(h, key, one.as_mut_ptr(), n)), CKR_ARGUMENTS_BAD, &format!("C_GetAttributeValue {what}"));
            assert_rv(raw!(raw, C_SetAttributeValue(h, key, one.as_mut_ptr(), n)), CKR_ARGUMENTS_BAD, &format!("C_SetAttributeValue {what}"));
            assert_rv(raw!(raw, C_CopyObject(h, key, one.as_mut_ptr(), n, &mut object)), CKR_ARGUMENTS_BAD, &format!("C_CopyObject {what}"));
            let mut gen = mech(CKM_AES_KEY_GEN);
            assert_rv(raw!(raw, C_GenerateKey(h, &mut gen, one.as_mut_ptr(), n, &mut object)), CKR_ARGUMENTS_BAD, &format!("C_GenerateKey {what}"));
            let mut pair = mech(CKM_RSA_PKCS_KEY_PAIR_GEN);
            let (mut public, mut private) = (CK_INVALID_HANDLE, CK_INVALID_HANDLE);
            assert_rv(
                raw!(raw, C_GenerateKeyPair(h, &mut pair, one.as_mut_ptr(), n, one.as_mut_ptr(), 1, &mut public, &mut private)),
                CKR_ARGUMENTS_BAD,
                &format!("C_GenerateKeyPair {what}"),
            );
        }
        for (len, want) in [(IMPOSSIBLE, CKR_ARGUMENTS_BAD), (IMPOSSIBLE_TOO, CKR_ARGUMENTS_BAD), (HUGE, CKR_HOST_MEMORY)] {
            let what = format!("ulValueLen {len:#x}");
            let mut template = [ulong_attr_raw(CKA_CLASS, &class), attr(CKA_LABEL, label, len)];
            assert_rv(raw!(raw, C_CreateObject(h, template.as_mut_ptr(), 2, &mut object)), want, &format!("C_CreateObject {what}"));
            assert_rv(raw!(raw, C_FindObjectsInit(h, template.as_mut_ptr(), 2)), want, &format!("C_FindObjectsInit {what}"));
            assert_rv(raw!(raw, C_SetAttributeValue(h, key, template[1..].as_mut_ptr(), 1)), want, &format!("C_SetAttributeValue {what}"));
            // A nested template (CKA_WRAP_TEMPLATE) goes through the same bounds.
            let mut wrap = [ulong_attr_raw(CKA_WRAP_TEMPLATE, &class)];
            wrap[0].pValue = template.as_mut_ptr() as *mut c_void;
            wrap[0].ulValueLen = 2 * std::mem::size_of::<CK_ATTRIBUTE>() as CK_ULONG;
            let mut gen = mech(CKM_AES_KEY_GEN);
            assert_rv(raw!(raw, C_GenerateKey(h, &mut gen, wrap.as_mut_ptr(), 1, &mut object)), want, &format!("nested template {what}"));
        }
        // C_GetAttributeValue's output lengths are only compared, never trusted for a copy.
        let mut read = [attr(CKA_LABEL, &buf, IMPOSSIBLE)];
        assert_rv(raw!(raw, C_GetAttributeValue(h, key, read.as_mut_ptr(), 1)), CKR_OK, "C_GetAttributeValue with a huge buffer length");

        // Data in, data out: the operation is refused (and ended, as every argument error).
        let data = [0u8; 16];
        let input = data.as_ptr() as *mut u8;
        let encrypt_init = || raw.encrypt_init(h, &mech(CKM_AES_ECB), key);
        let ended = |what: &str| {
            let mut len: CK_ULONG = 0;
            assert_rv(raw!(raw, C_EncryptFinal(h, ptr::null_mut(), &mut len)), CKR_OPERATION_NOT_INITIALIZED, &format!("{what} ended the operation"));
        };
        for n in [IMPOSSIBLE, IMPOSSIBLE_TOO] {
            let mut len: CK_ULONG = buf.len() as CK_ULONG;
            assert_rv(encrypt_init(), CKR_OK, "C_EncryptInit");
            assert_rv(raw!(raw, C_Encrypt(h, input, n, out, &mut len)), CKR_ARGUMENTS_BAD, "C_Encrypt with an impossible input length");
            ended("C_Encrypt");
            assert_rv(encrypt_init(), CKR_OK, "C_EncryptInit");
            let mut len = n;
            assert_rv(raw!(raw, C_Encrypt(h, input, 16, out, &mut len)), CKR_ARGUMENTS_BAD, "C_Encrypt with an impossible output length");
            ended("C_Encrypt (output)");
            assert_rv(encrypt_init(), CKR_OK, "C_EncryptInit");
            let mut len: CK_ULONG = buf.len() as CK_ULONG;
            assert_rv(raw!(raw, C_EncryptUpdate(h, input, n, out, &mut len)), CKR_ARGUMENTS_BAD, "C_EncryptUpdate with an impossible input length");
            ended("C_EncryptUpdate");
            assert_rv(raw!(raw, C_DigestInit(h, &mut mech(CKM_SHA256))), CKR_OK, "C_DigestInit");
            assert_rv(raw!(raw, C_DigestUpdate(h, input, n)), CKR_ARGUMENTS_BAD, "C_DigestUpdate with an impossible length");
            assert_rv(raw!(raw, C_GenerateRandom(h, out, n)), CKR_ARGUMENTS_BAD, "C_GenerateRandom with an impossible length");
            assert_rv(raw!(raw, C_SeedRandom(h, input, n)), CKR_ARGUMENTS_BAD, "C_SeedRandom with an impossible length");
        }
        // In place (input and output the same buffer), the input is copied: no memory for the
        // copy is CKR_HOST_MEMORY.
        assert_rv(encrypt_init(), CKR_OK, "C_EncryptInit");
        let mut len: CK_ULONG = buf.len() as CK_ULONG;
        assert_rv(raw!(raw, C_Encrypt(h, out, HUGE, out, &mut len)), CKR_HOST_MEMORY, "in-place C_Encrypt of a huge length");
        ended("in-place C_Encrypt");

        // PINs.
        let pin = USER_PIN.as_ptr() as *mut u8;
        assert_rv(raw!(raw, C_Logout(h)), CKR_OK, "C_Logout");
        for n in [IMPOSSIBLE, IMPOSSIBLE_TOO] {
            assert_rv(raw!(raw, C_Login(h, CKU_USER, pin, n)), CKR_ARGUMENTS_BAD, "C_Login with an impossible PIN length");
            assert_rv(raw!(raw, C_SetPIN(h, pin, n, pin, 16)), CKR_ARGUMENTS_BAD, "C_SetPIN old PIN impossible");
            assert_rv(raw!(raw, C_SetPIN(h, pin, 16, pin, n)), CKR_ARGUMENTS_BAD, "C_SetPIN new PIN impossible");
            assert_rv(raw!(raw, C_InitPIN(h, pin, n)), CKR_ARGUMENTS_BAD, "C_InitPIN impossible");
            let mut label32 = [b' '; 32];
            assert_rv(raw!(raw, C_InitToken(token.slot.id(), pin, n, label32.as_mut_ptr())), CKR_ARGUMENTS_BAD, "C_InitToken impossible");
        }
        // No guess was counted: the PIN still works and no retry flag is up.
        assert_rv(raw.login(h, CKU_USER, USER_PIN), CKR_OK, "C_Login after the refused ones");
        let info = token.p11.get_token_info(token.slot).unwrap();
        assert!(!info.user_pin_count_low(), "a refused length counted as a wrong PIN");

        // Mechanism parameters: the parameter itself and the strings it points to.
        let iv = [0u8; 16];
        for (len, want) in [(IMPOSSIBLE, CKR_MECHANISM_PARAM_INVALID), (HUGE, CKR_HOST_MEMORY)] {
            let mut m = mech_bytes(CKM_AES_CBC, &iv);
            m.ulParameterLen = len;
            assert_rv(raw!(raw, C_EncryptInit(h, &mut m, key)), want, &format!("CBC IV of length {len:#x}"));
            let mut gcm = CK_GCM_PARAMS {
                pIv: iv.as_ptr() as *mut u8,
                ulIvLen: 12,
                ulIvBits: 96,
                pAAD: iv.as_ptr() as *mut u8,
                ulAADLen: len,
                ulTagBits: 128,
            };
            assert_rv(raw!(raw, C_EncryptInit(h, &mut mech_with(CKM_AES_GCM, &gcm), key)), want, &format!("GCM AAD of length {len:#x}"));
            gcm.ulAADLen = 0;
            gcm.ulIvLen = len;
            assert_rv(raw!(raw, C_EncryptInit(h, &mut mech_with(CKM_AES_GCM, &gcm), key)), want, &format!("GCM IV of length {len:#x}"));
            let oaep = CK_RSA_PKCS_OAEP_PARAMS {
                hashAlg: CKM_SHA256,
                mgf: CKG_MGF1_SHA256,
                source: CKZ_DATA_SPECIFIED,
                pSourceData: iv.as_ptr() as *mut c_void,
                ulSourceDataLen: len,
            };
            assert_rv(raw!(raw, C_EncryptInit(h, &mut mech_with(CKM_RSA_PKCS_OAEP, &oaep), key)), want, &format!("OAEP label of length {len:#x}"));
        }

        // Wrapped keys in.
        let mut unwrap = mech(CKM_AES_KEY_WRAP);
        let mut template = [ulong_attr_raw(CKA_CLASS, &class)];
        assert_rv(
            raw!(raw, C_UnwrapKey(h, &mut unwrap, key, out, IMPOSSIBLE, template.as_mut_ptr(), 1, &mut object)),
            CKR_ARGUMENTS_BAD,
            "C_UnwrapKey with an impossible wrapped length",
        );

        // Everything still works.
        assert_eq!(raw.encrypt(h, &mech(CKM_AES_ECB), key, &data).map(|c| c.len()), Ok(16));
    }
}

isolated_test! {
    fn logout_ends_every_operation_of_every_session() {
        let token = Token::new();
        let a = token.user();
        let b = token.rw();
        let pair = gen_rsa(&a, 2048, "logout", false);
        let (public, private) = (pair.public.handle(), pair.private.handle());
        let raw = token.raw();
        let (ha, hb) = (a.handle(), b.handle());
        let message = b"secret until logout";
        let ciphertext = raw.encrypt(ha, &mech(CKM_RSA_PKCS), public, message).expect("encrypt");
        let ct = ciphertext.as_ptr() as *mut u8;
        let ct_len = ciphertext.len() as CK_ULONG;

        // Session a: a decryption whose plaintext is kept after CKR_BUFFER_TOO_SMALL.
        assert_rv(raw.decrypt_init(ha, &mech(CKM_RSA_PKCS), private), CKR_OK, "C_DecryptInit");
        let mut small = [0u8; 1];
        let mut len: CK_ULONG = 1;
        assert_rv(raw!(raw, C_Decrypt(ha, ct, ct_len, small.as_mut_ptr(), &mut len)), CKR_BUFFER_TOO_SMALL, "C_Decrypt short buffer");
        assert_eq!(len as usize, message.len());
        // Session a also signs; session b searches, digests, encrypts, verifies.
        let class = CKO_PRIVATE_KEY;
        let mut template = [ulong_attr_raw(CKA_CLASS, &class)];
        assert_rv(raw.sign_init(ha, &mech(CKM_SHA256_RSA_PKCS), private), CKR_OK, "C_SignInit");
        assert_rv(raw!(raw, C_FindObjectsInit(hb, template.as_mut_ptr(), 1)), CKR_OK, "C_FindObjectsInit");
        assert_rv(raw!(raw, C_DigestInit(hb, &mut mech(CKM_SHA256))), CKR_OK, "C_DigestInit");
        assert_rv(raw.encrypt_init(hb, &mech(CKM_RSA_PKCS), public), CKR_OK, "C_EncryptInit");
        assert_rv(raw.verify_init(hb, &mech(CKM_SHA256_RSA_PKCS), public), CKR_OK, "C_VerifyInit");
        assert_rv(raw.decrypt_init(hb, &mech(CKM_RSA_PKCS), private), CKR_OK, "C_DecryptInit on b");

        assert_rv(raw!(raw, C_Logout(hb)), CKR_OK, "C_Logout from the other session");

        let gone = CKR_OPERATION_NOT_INITIALIZED;
        let mut buf = [0u8; 512];
        let mut len = buf.len() as CK_ULONG;
        assert_rv(raw!(raw, C_Decrypt(ha, ct, ct_len, buf.as_mut_ptr(), &mut len)), gone, "the kept plaintext after logout");
        assert!(buf.iter().all(|b| *b == 0), "plaintext written after logout");
        let mut len = buf.len() as CK_ULONG;
        assert_rv(raw!(raw, C_Decrypt(hb, ct, ct_len, buf.as_mut_ptr(), &mut len)), gone, "DecryptInit, Logout, Decrypt");
        assert!(buf.iter().all(|b| *b == 0), "plaintext written after logout");
        let mut len = buf.len() as CK_ULONG;
        assert_rv(raw!(raw, C_Sign(ha, ct, 4, buf.as_mut_ptr(), &mut len)), gone, "C_Sign after logout");
        let mut handles = [CK_INVALID_HANDLE; 4];
        let mut count: CK_ULONG = 0;
        assert_rv(raw!(raw, C_FindObjects(hb, handles.as_mut_ptr(), 4, &mut count)), gone, "C_FindObjects after logout");
        let mut len = buf.len() as CK_ULONG;
        assert_rv(raw!(raw, C_DigestFinal(hb, buf.as_mut_ptr(), &mut len)), gone, "C_DigestFinal after logout");
        let mut len = buf.len() as CK_ULONG;
        assert_rv(raw!(raw, C_Encrypt(hb, ct, 4, buf.as_mut_ptr(), &mut len)), gone, "C_Encrypt after logout");
        assert_rv(raw!(raw, C_VerifyFinal(hb, buf.as_mut_ptr(), 256)), gone, "C_VerifyFinal after logout");

        // A new login does not bring them back.
        assert_rv(raw.login(ha, CKU_USER, USER_PIN), CKR_OK, "C_Login again");
        let mut len = buf.len() as CK_ULONG;
        assert_rv(raw!(raw, C_Decrypt(ha, ct, ct_len, buf.as_mut_ptr(), &mut len)), gone, "the kept plaintext after a new login");
        // And fresh operations work.
        assert_eq!(raw.decrypt(ha, &mech(CKM_RSA_PKCS), private, &ciphertext).as_deref(), Ok(&message[..]));
    }
}

isolated_test! {
    fn a_search_does_not_confirm_a_guess_of_a_secret_value() {
        let token = Token::new();
        let session = token.user();
        let value = [0x5au8; 16];
        let mut made = Vec::new();
        for (on_token, sensitive) in [(false, true), (true, true), (false, false)] {
            let key = session
                .create_object(&[
                    Attribute::Class(cryptoki::object::ObjectClass::SECRET_KEY),
                    Attribute::KeyType(cryptoki::object::KeyType::AES),
                    Attribute::Value(value.to_vec()),
                    Attribute::Token(on_token),
                    Attribute::Sensitive(sensitive),
                    Attribute::Label(b"guess".to_vec()),
                    Attribute::Encrypt(true),
                ])
                .expect("import AES key");
            made.push(key);
        }
        let label = Attribute::Label(b"guess".to_vec());
        let found = session.find_objects(std::slice::from_ref(&label)).unwrap();
        assert_eq!(found.len(), 3, "the keys are there");
        for guess in [value.to_vec(), vec![0x5a; 15], vec![0u8; 16]] {
            let found = session
                .find_objects(&[label.clone(), Attribute::Value(guess.clone())])
                .unwrap();
            assert!(found.is_empty(), "a search by CKA_VALUE {guess:02x?} found {found:?}");
        }
        // An RSA private key: its private exponent is not a search criterion either.
        let pair = gen_rsa(&session, 2048, "guess-rsa", false);
        let modulus = bytes_attr(&session, pair.public, cryptoki::object::AttributeType::Modulus);
        let by_modulus = session
            .find_objects(&[Attribute::Modulus(modulus.clone()), Attribute::Class(cryptoki::object::ObjectClass::PRIVATE_KEY)])
            .unwrap();
        assert_eq!(by_modulus, vec![pair.private], "public values still match");
        let found = session
            .find_objects(&[Attribute::Modulus(modulus), Attribute::PrivateExponent(vec![1; 256])])
            .unwrap();
        assert!(found.is_empty(), "a search by CKA_PRIVATE_EXPONENT found {found:?}");
        // A public data object's value is not a secret: it is a search criterion.
        let data = session.create_object(&data_object("public-data", b"hello", false, false)).unwrap();
        let found = session.find_objects(&[Attribute::Value(b"hello".to_vec())]).unwrap();
        assert_eq!(found, vec![data]);
    }
}

/// A PKCS#1 v1.5 ciphertext whose padding is wrong (block type 1, as a signature has),
/// made with raw RSA on the public key.
fn badly_padded(
    raw: &Raw,
    session: CK_SESSION_HANDLE,
    public: CK_OBJECT_HANDLE,
    k: usize,
    fill: u8,
) -> Vec<u8> {
    let mut em = vec![fill; k];
    em[0] = 0;
    em[1] = 1;
    em[k - 17] = 0;
    raw.encrypt(session, &mech(CKM_RSA_X_509), public, &em)
        .expect("raw RSA encrypt")
}

fn policy_key(session: &cryptoki::session::Session) -> (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
    let found = |class| {
        session
            .find_objects(&[
                Attribute::Label(b"policy".to_vec()),
                Attribute::Class(class),
            ])
            .unwrap()[0]
            .handle()
    };
    (
        found(cryptoki::object::ObjectClass::PUBLIC_KEY),
        found(cryptoki::object::ObjectClass::PRIVATE_KEY),
    )
}

fn aes_unwrap_template() -> Vec<CK_ATTRIBUTE> {
    static CLASS: CK_ULONG = CKO_SECRET_KEY;
    static KEY_TYPE: CK_ULONG = CKK_AES;
    static FALSE: CK_BBOOL = CK_FALSE;
    vec![
        ulong_attr_raw(CKA_CLASS, &CLASS),
        ulong_attr_raw(CKA_KEY_TYPE, &KEY_TYPE),
        bool_attr_raw(CKA_TOKEN, &FALSE),
    ]
}

fn unwrap(raw: &Raw, session: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE, wrapped: &[u8]) -> CK_RV {
    let mut template = aes_unwrap_template();
    let mut out = CK_INVALID_HANDLE;
    raw!(
        raw,
        C_UnwrapKey(
            session,
            &mut mech(CKM_RSA_PKCS),
            key,
            wrapped.as_ptr() as *mut u8,
            wrapped.len() as CK_ULONG,
            template.as_mut_ptr(),
            template.len() as CK_ULONG,
            &mut out
        )
    )
}

fn mechanism_flags(raw: &Raw, slot: cryptoki::slot::Slot, ty: CK_MECHANISM_TYPE) -> CK_FLAGS {
    let mut info = CK_MECHANISM_INFO {
        ulMinKeySize: 0,
        ulMaxKeySize: 0,
        flags: 0,
    };
    assert_rv(
        raw!(raw, C_GetMechanismInfo(slot.id(), ty, &mut info)),
        CKR_OK,
        "C_GetMechanismInfo",
    );
    info.flags
}

/// `rsa_pkcs1v15_decrypt`: "allow" (the default) reports bad padding, "deny" refuses the
/// mechanism for decryption and unwrapping, "implicit-rejection" answers bad padding with a
/// deterministic message derived from the key and the ciphertext.
#[test]
fn rsa_pkcs1v15_decrypt_policy() {
    const TEST: &str = "rsa_pkcs1v15_decrypt_policy";
    if is_softhsm() {
        eprintln!("SKIPPED {TEST}: ferrohsm's own configuration");
        return;
    }
    let message = b"pkcs1 v1.5 message";
    let aes = [0x42u8; 16];
    match child_phase(TEST).as_deref() {
        None => {
            let sandbox = Sandbox::new();
            sandbox.run(TEST, "allow");
            sandbox.write_config("rsa_pkcs1v15_decrypt = \"deny\"\n");
            sandbox.run(TEST, "deny");
            sandbox.write_config("rsa_pkcs1v15_decrypt = \"implicit-rejection\"\n");
            sandbox.run(TEST, "implicit-rejection");
        }
        Some("allow") => {
            let token = Token::new();
            let session = token.user();
            let pair = gen_rsa(&session, 2048, "policy", true);
            let (public, private) = (pair.public.handle(), pair.private.handle());
            let raw = token.raw();
            let h = session.handle();
            let ct = raw
                .encrypt(h, &mech(CKM_RSA_PKCS), public, message)
                .unwrap();
            assert_eq!(
                raw.decrypt(h, &mech(CKM_RSA_PKCS), private, &ct).as_deref(),
                Ok(&message[..])
            );
            let bad = badly_padded(&raw, h, public, 256, 0xff);
            assert_eq!(
                raw.decrypt(h, &mech(CKM_RSA_PKCS), private, &bad),
                Err(CKR_ENCRYPTED_DATA_INVALID)
            );
            assert_eq!(unwrap(&raw, h, private, &bad), CKR_WRAPPED_KEY_INVALID);
            assert_ne!(
                mechanism_flags(&raw, token.slot, CKM_RSA_PKCS) & CKF_DECRYPT,
                0
            );
        }
        Some("deny") => {
            let token = Token::existing();
            let session = token.user();
            let (public, private) = policy_key(&session);
            let raw = token.raw();
            let h = session.handle();
            let flags = mechanism_flags(&raw, token.slot, CKM_RSA_PKCS);
            assert_eq!(
                flags & (CKF_DECRYPT | CKF_UNWRAP),
                0,
                "C_GetMechanismInfo still offers decryption"
            );
            assert_ne!(flags & (CKF_ENCRYPT | CKF_WRAP | CKF_SIGN | CKF_VERIFY), 0);
            let ct = raw
                .encrypt(h, &mech(CKM_RSA_PKCS), public, &aes)
                .expect("encryption still works");
            assert_rv(
                raw.decrypt_init(h, &mech(CKM_RSA_PKCS), private),
                CKR_MECHANISM_INVALID,
                "C_DecryptInit denied",
            );
            assert_rv(
                unwrap(&raw, h, private, &ct),
                CKR_MECHANISM_INVALID,
                "C_UnwrapKey denied",
            );
            // OAEP is untouched.
            let oaep = CK_RSA_PKCS_OAEP_PARAMS {
                hashAlg: CKM_SHA256,
                mgf: CKG_MGF1_SHA256,
                source: CKZ_DATA_SPECIFIED,
                pSourceData: ptr::null_mut(),
                ulSourceDataLen: 0,
            };
            let m = mech_with(CKM_RSA_PKCS_OAEP, &oaep);
            let ct = raw.encrypt(h, &m, public, message).unwrap();
            assert_eq!(
                raw.decrypt(h, &m, private, &ct).as_deref(),
                Ok(&message[..])
            );
        }
        Some("implicit-rejection") => {
            let token = Token::existing();
            let session = token.user();
            let (public, private) = policy_key(&session);
            let raw = token.raw();
            let h = session.handle();
            assert_ne!(
                mechanism_flags(&raw, token.slot, CKM_RSA_PKCS) & CKF_DECRYPT,
                0
            );
            let ct = raw
                .encrypt(h, &mech(CKM_RSA_PKCS), public, message)
                .unwrap();
            assert_eq!(
                raw.decrypt(h, &mech(CKM_RSA_PKCS), private, &ct).as_deref(),
                Ok(&message[..]),
                "a good ciphertext decrypts"
            );
            let bad = badly_padded(&raw, h, public, 256, 0xff);
            let first = raw
                .decrypt(h, &mech(CKM_RSA_PKCS), private, &bad)
                .expect("bad padding is not an error");
            let again = raw.decrypt(h, &mech(CKM_RSA_PKCS), private, &bad).unwrap();
            assert_eq!(first, again, "the replacement message is deterministic");
            assert!(first.len() <= 256 - 11);
            let other = badly_padded(&raw, h, public, 256, 0xfe);
            let other = raw
                .decrypt(h, &mech(CKM_RSA_PKCS), private, &other)
                .unwrap();
            assert_ne!(first, other, "the replacement depends on the ciphertext");
            // Publicly invalid ciphertexts are still refused.
            assert_eq!(
                raw.decrypt(h, &mech(CKM_RSA_PKCS), private, &bad[..255]),
                Err(CKR_ENCRYPTED_DATA_LEN_RANGE)
            );
            assert_eq!(
                raw.decrypt(h, &mech(CKM_RSA_PKCS), private, &[0xff; 256]),
                Err(CKR_ENCRYPTED_DATA_INVALID)
            );
            // Unwrap goes through the same decryption: a good wrapping unwraps.
            let wrapped = raw.encrypt(h, &mech(CKM_RSA_PKCS), public, &aes).unwrap();
            assert_rv(
                unwrap(&raw, h, private, &wrapped),
                CKR_OK,
                "C_UnwrapKey of a good wrapping",
            );
        }
        Some(other) => panic!("unknown phase {other}"),
    }
}

fn dumpable() -> bool {
    unsafe { libc::prctl(libc::PR_GET_DUMPABLE) == 1 }
}

fn core_limit() -> libc::rlim_t {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut limit) }, 0);
    limit.rlim_cur
}

/// `disable_core_dumps = true`: from C_Initialize to C_Finalize the process is not dumpable
/// and its core size limit is 0; C_Finalize puts both back. Off by default.
#[test]
fn disable_core_dumps_while_initialised() {
    const TEST: &str = "disable_core_dumps_while_initialised";
    if is_softhsm() {
        eprintln!("SKIPPED {TEST}: ferrohsm's own configuration");
        return;
    }
    match child_phase(TEST).as_deref() {
        None => {
            let sandbox = Sandbox::new();
            sandbox.run(TEST, "default");
            sandbox.write_config("disable_core_dumps = true\n");
            sandbox.run(TEST, "disabled");
        }
        Some("default") => {
            assert!(dumpable(), "the test process starts dumpable");
            let token = Token::new();
            let _session = token.user();
            assert!(dumpable(), "core dumps are disabled by default");
        }
        Some("disabled") => {
            // A soft limit to see restored (at most the hard limit).
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut limit) };
            limit.rlim_cur = limit.rlim_max.min(4096);
            unsafe { libc::setrlimit(libc::RLIMIT_CORE, &limit) };
            let before = core_limit();
            assert!(dumpable());
            let raw = Raw::load();
            assert_rv(raw.initialize(), CKR_OK, "C_Initialize");
            assert!(!dumpable(), "dumpable after C_Initialize");
            assert_eq!(core_limit(), 0, "RLIMIT_CORE after C_Initialize");
            assert_rv(raw.finalize(), CKR_OK, "C_Finalize");
            assert!(dumpable(), "C_Finalize restores dumpability");
            assert_eq!(core_limit(), before, "C_Finalize restores RLIMIT_CORE");
        }
        Some(other) => panic!("unknown phase {other}"),
    }
}
