//! SM2 / SM3 through the vendor mechanisms of ../shared/design/sm2.md: key generation (both
//! mechanisms, CKK_SM2 alias), encryption in the raw and DER formats with NULL parameter and
//! format codes, signatures (CKM_SM3_SM2, _DER, CKM_SM2) checked with the sm2 crate, the SM3
//! digest against the sm3 crate, and refusal of generic ECDSA on an SM2 key.

#[macro_use]
mod common;

use common::*;
use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys::*;
use sm2::dsa::signature::hazmat::PrehashVerifier;
use sm2::dsa::signature::Verifier;
use sm3::Digest;

const CKM_SM2_SIGN: CK_MECHANISM_TYPE = 0x8000_8000;
const CKM_SM3: CK_MECHANISM_TYPE = 0x8000_9001;

const DEFAULT_ID: &str = "1234567812345678";

struct Sm2Pair {
    public: ObjectHandle,
    private: ObjectHandle,
}

fn templates(
    label: &str,
    key_type: Option<CK_KEY_TYPE>,
    ec_params: bool,
) -> (Vec<Attribute>, Vec<Attribute>) {
    let mut public = vec![
        Attribute::Token(false),
        Attribute::Encrypt(true),
        Attribute::Verify(true),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    let mut private = vec![
        Attribute::Token(false),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Decrypt(true),
        Attribute::Sign(true),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    if ec_params {
        public.push(Attribute::EcParams(SM2_OID.to_vec()));
    }
    if let Some(key_type) = key_type {
        let key_type = KeyType::new_vendor_defined(key_type).expect("vendor key type");
        public.push(Attribute::KeyType(key_type));
        private.push(Attribute::KeyType(key_type));
    }
    (public, private)
}

fn sm2_keygen(session: &Session, label: &str) -> Sm2Pair {
    let mechanism = Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(
        vendor_mechanism(CKM_SM2_KEY_PAIR_GEN),
        None,
    ));
    let (public, private) = templates(label, None, false);
    let (public, private) = session
        .generate_key_pair(&mechanism, &public, &private)
        .expect("CKM_SM2_KEY_PAIR_GEN");
    Sm2Pair { public, private }
}

/// The uncompressed point 04||X||Y of a public key, from its CKA_EC_POINT.
fn public_point(session: &Session, key: ObjectHandle) -> Vec<u8> {
    let ec_point = bytes_attr(session, key, AttributeType::EcPoint);
    assert_eq!(
        ec_point.len(),
        67,
        "CKA_EC_POINT is a DER OCTET STRING of 65 bytes"
    );
    assert_eq!(&ec_point[..3], &[0x04, 0x41, 0x04]);
    ec_point[2..].to_vec()
}

fn key_type_of(session: &Session, key: ObjectHandle) -> KeyType {
    match session
        .get_attributes(key, &[AttributeType::KeyType])
        .expect("key type")
        .pop()
    {
        Some(Attribute::KeyType(kind)) => kind,
        other => panic!("no key type: {other:?}"),
    }
}

isolated_test! {
    fn sm2_key_generation_both_mechanisms_and_alias() {
        let token = Token::new();
        let session = token.user();

        let pair = sm2_keygen(&session, "sm2-vendor");
        for key in [pair.public, pair.private] {
            assert_eq!(key_type_of(&session, key), KeyType::EC, "stored as CKK_EC");
            assert_eq!(bytes_attr(&session, key, AttributeType::EcParams), SM2_OID, "SM2 OID on both objects");
        }
        let point = public_point(&session, pair.public);
        sm2::dsa::VerifyingKey::from_sec1_bytes(DEFAULT_ID, &point).expect("point on the SM2 curve");
        assert!(bool_attr(&session, pair.private, AttributeType::Sensitive));
        let raw = token.raw();
        let mut value = [0u8; 64];
        let mut template = [CK_ATTRIBUTE { type_: CKA_VALUE, pValue: value.as_mut_ptr() as *mut std::ffi::c_void, ulValueLen: 64 }];
        let rv = raw!(raw, C_GetAttributeValue(session.handle(), pair.private.handle(), template.as_mut_ptr(), 1));
        assert_rv(rv, CKR_ATTRIBUTE_SENSITIVE, "private scalar is sensitive");

        // Generic EC key generation with the SM2 OID.
        let (public, private) = templates("sm2-generic", None, true);
        let (generic_public, generic_private) = session
            .generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
            .expect("CKM_EC_KEY_PAIR_GEN with the SM2 OID");
        assert_eq!(bytes_attr(&session, generic_private, AttributeType::EcParams), SM2_OID);
        assert_ne!(public_point(&session, generic_public), point, "a fresh key");

        // CKK_SM2 in the template means the same key; the object reports CKK_EC.
        let (public, private) = templates("sm2-alias", Some(CKK_SM2), true);
        let (alias_public, alias_private) = session
            .generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
            .expect("CKK_SM2 alias in C_GenerateKeyPair");
        assert_eq!(key_type_of(&session, alias_public), KeyType::EC);
        assert_eq!(key_type_of(&session, alias_private), KeyType::EC);

        // ... and in C_FindObjectsInit.
        let sm2_type = KeyType::new_vendor_defined(CKK_SM2).expect("vendor key type");
        let found = session
            .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY), Attribute::KeyType(sm2_type)])
            .expect("find by CKK_SM2");
        assert_eq!(found.len(), 3, "all three SM2 private keys found through the alias");
        let found = session
            .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY), Attribute::KeyType(KeyType::EC)])
            .expect("find by CKK_EC");
        assert_eq!(found.len(), 3);

        // ... and in C_CreateObject: import the public point (raw 65 bytes accepted too).
        for ec_point in [[&[0x04, 0x41][..], &point].concat(), point.clone()] {
            let imported = session
                .create_object(&[
                    Attribute::Class(ObjectClass::PUBLIC_KEY),
                    Attribute::KeyType(sm2_type),
                    Attribute::Token(false),
                    Attribute::Verify(true),
                    Attribute::EcParams(SM2_OID.to_vec()),
                    Attribute::EcPoint(ec_point),
                ])
                .expect("import SM2 public key");
            assert_eq!(key_type_of(&session, imported), KeyType::EC);
            assert_eq!(public_point(&session, imported), point);
        }
    }
}

fn encrypt(
    raw: &Raw,
    h: CK_SESSION_HANDLE,
    mechanism: &CK_MECHANISM,
    key: ObjectHandle,
    data: &[u8],
) -> Vec<u8> {
    raw.encrypt(h, mechanism, key.handle(), data)
        .unwrap_or_else(|rv| panic!("SM2 encrypt {:#x}: {}", mechanism.mechanism, rv_name(rv)))
}

fn decrypt(
    raw: &Raw,
    h: CK_SESSION_HANDLE,
    mechanism: &CK_MECHANISM,
    key: ObjectHandle,
    data: &[u8],
) -> Result<Vec<u8>, CK_RV> {
    raw.decrypt(h, mechanism, key.handle(), data)
}

isolated_test! {
    fn sm2_encryption_formats() {
        let token = Token::new();
        let session = token.user();
        let pair = sm2_keygen(&session, "sm2-crypt");
        let raw = token.raw();
        let h = session.handle();
        let message = b"SM2 public-key encryption, 45 bytes of text.";
        let point = public_point(&session, pair.public);

        for mechanism_type in [CKM_SM2_RAW, CKM_SM2_CIPHER_DER] {
            let mechanism = mech(mechanism_type);
            let ciphertext = encrypt(&raw, h, &mechanism, pair.public, message);
            if mechanism_type == CKM_SM2_RAW {
                assert_eq!(ciphertext.len(), 65 + 32 + message.len(), "raw 04||x||y||C3||C2");
                assert_eq!(ciphertext[0], 0x04);
            } else {
                assert_eq!(ciphertext[0], 0x30, "DER SEQUENCE");
            }
            // Either mechanism decrypts either format (auto detection, NULL parameter).
            for decrypt_with in [CKM_SM2_RAW, CKM_SM2_CIPHER_DER] {
                let plaintext = decrypt(&raw, h, &mech(decrypt_with), pair.private, &ciphertext)
                    .unwrap_or_else(|rv| panic!("decrypt {mechanism_type:#x} output with {decrypt_with:#x}: {}", rv_name(rv)));
                assert_eq!(plaintext, message);
            }
            // The length query gives |C2|.
            assert_rv(raw.decrypt_init(h, &mechanism, pair.private.handle()), CKR_OK, "C_DecryptInit");
            let (rv, len, _) = raw.output_call(OutputCall::Decrypt, h, &ciphertext, None);
            assert_rv(rv, CKR_OK, "length query");
            assert_eq!(len as usize, message.len(), "{mechanism_type:#x}: length query gives |C2|");
            let (rv, _, plaintext) = raw.output_call(OutputCall::Decrypt, h, &ciphertext, Some(message.len()));
            assert_rv(rv, CKR_OK, "decrypt");
            assert_eq!(plaintext, message);
        }

        // Ciphertexts made outside the module by the sm2 crate, in both formats.
        let encrypting = sm2::pke::EncryptingKey::from_sec1_bytes(&point).expect("encrypting key");
        let mut rng = rand::rng();
        let outside_raw = encrypting.encrypt(&mut rng, message).expect("sm2 crate encrypt");
        let outside_der = encrypting.encrypt_der(&mut rng, message).expect("sm2 crate encrypt DER");
        for ciphertext in [&outside_raw, &outside_der] {
            let plaintext = decrypt(&raw, h, &mech(CKM_SM2_RAW), pair.private, ciphertext)
                .unwrap_or_else(|rv| panic!("decrypt sm2-crate ciphertext: {}", rv_name(rv)));
            assert_eq!(plaintext, message);
        }

        // Format codes on encrypt pick the layout; the same code decrypts it.
        for (code, expected_len) in [
            (FORMAT_DER, None),
            (FORMAT_C1C3C2, Some(65 + 32 + message.len())),
            (FORMAT_C1C2C3, Some(65 + 32 + message.len())),
            (FORMAT_C1C3C2 | FORMAT_NO_04, Some(64 + 32 + message.len())),
            (FORMAT_C1C2C3 | FORMAT_NO_04, Some(64 + 32 + message.len())),
        ] {
            let mechanism = mech_with(CKM_SM2_RAW, &code);
            let ciphertext = encrypt(&raw, h, &mechanism, pair.public, message);
            match expected_len {
                Some(len) => assert_eq!(ciphertext.len(), len, "format {code:#x}"),
                None => assert_eq!(ciphertext[0], 0x30, "format {code:#x}"),
            }
            let plaintext = decrypt(&raw, h, &mechanism, pair.private, &ciphertext)
                .unwrap_or_else(|rv| panic!("decrypt format {code:#x}: {}", rv_name(rv)));
            assert_eq!(plaintext, message, "format {code:#x}");
            if code & 0xff == FORMAT_C1C2C3 {
                // C1C2C3 is not what auto-detection assumes: the C3 check fails.
                let rv = decrypt(&raw, h, &mech(CKM_SM2_RAW), pair.private, &ciphertext).err().unwrap_or(CKR_OK);
                assert_rv(rv, CKR_ENCRYPTED_DATA_INVALID, "C1C2C3 decrypted as auto");
            }
            if code == FORMAT_C1C3C2 | FORMAT_NO_04 {
                let plaintext = decrypt(&raw, h, &mech(CKM_SM2_RAW), pair.private, &ciphertext)
                    .unwrap_or_else(|rv| panic!("auto-detect C1 without 04: {}", rv_name(rv)));
                assert_eq!(plaintext, message);
            }
        }

        // Every kind of bad ciphertext gives the same code.
        let good = encrypt(&raw, h, &mech(CKM_SM2_RAW), pair.public, message);
        let mut bad_c3 = good.clone();
        bad_c3[65 + 5] ^= 1;
        let mut bad_c2 = good.clone();
        bad_c2[65 + 32 + 3] ^= 1;
        let mut off_curve = good.clone();
        off_curve[10] ^= 1;
        let der = encrypt(&raw, h, &mech(CKM_SM2_CIPHER_DER), pair.public, message);
        let mut trailing_der = der.clone();
        trailing_der.push(0);
        for (what, ciphertext) in [
            ("flipped C3", bad_c3),
            ("flipped C2", bad_c2),
            ("C1 off the curve", off_curve),
            ("DER with a trailing byte", trailing_der),
            ("garbage", vec![0x5a; 120]),
            ("too short", good[..90].to_vec()),
            ("empty", Vec::new()),
        ] {
            let rv = decrypt(&raw, h, &mech(CKM_SM2_RAW), pair.private, &ciphertext).err().unwrap_or(CKR_OK);
            assert_rv(rv, CKR_ENCRYPTED_DATA_INVALID, what);
            // The failed operation is over.
            let (rv, _, _) = raw.output_call(OutputCall::Decrypt, h, &good, Some(256));
            assert_rv(rv, CKR_OPERATION_NOT_INITIALIZED, what);
        }
    }
}

isolated_test! {
    /// A ciphertext no key could decrypt (too short, C2 empty, C1 off the curve, broken
    /// DER) fails the length query itself, and the failure ends the operation; answering
    /// CKR_OK with a length left PyKCS11 with an operation it never finished, and
    /// CKR_OPERATION_ACTIVE at every later C_DecryptInit of the session.
    fn sm2_length_query_refuses_impossible_ciphertexts() {
        let token = Token::new();
        let session = token.user();
        let pair = sm2_keygen(&session, "sm2-query");
        let raw = token.raw();
        let h = session.handle();
        let message = b"a message";
        let good = encrypt(&raw, h, &mech(CKM_SM2_RAW), pair.public, message);
        let der = encrypt(&raw, h, &mech(CKM_SM2_CIPHER_DER), pair.public, message);
        let mut off_curve = good.clone();
        off_curve[10] ^= 1;
        let mut trailing_der = der.clone();
        trailing_der.push(0);
        let der_code = FORMAT_DER;
        let as_der = mech_with(CKM_SM2_RAW, &der_code);
        let auto = mech(CKM_SM2_RAW);
        for (what, mechanism, ciphertext) in [
            ("too short", &auto, good[..90].to_vec()),
            ("C1 and C3 only (C2 empty)", &auto, good[..65 + 32].to_vec()),
            ("empty", &auto, Vec::new()),
            ("C1 off the curve", &auto, off_curve),
            ("DER with a trailing byte", &as_der, trailing_der),
            ("a DER header and nothing", &as_der, vec![0x30, 0x03, 0x02, 0x01, 0x01]),
        ] {
            assert_rv(raw.decrypt_init(h, mechanism, pair.private.handle()), CKR_OK, what);
            let (rv, _, _) = raw.output_call(OutputCall::Decrypt, h, &ciphertext, None);
            assert_rv(rv, CKR_ENCRYPTED_DATA_INVALID, &format!("C_Decrypt length query, {what}"));
            let (rv, _, _) = raw.output_call(OutputCall::Decrypt, h, &good, Some(256));
            assert_rv(rv, CKR_OPERATION_NOT_INITIALIZED, &format!("{what}: the query ended the operation"));

            // Multi-part: C_DecryptFinal's length query on the collected ciphertext.
            assert_rv(raw.decrypt_init(h, mechanism, pair.private.handle()), CKR_OK, what);
            let mut len: CK_ULONG = 0;
            let rv = raw!(raw, C_DecryptUpdate(h, ciphertext.as_ptr() as *mut u8, ciphertext.len() as CK_ULONG, std::ptr::null_mut(), &mut len));
            assert_rv(rv, CKR_OK, &format!("C_DecryptUpdate, {what}"));
            let rv = raw!(raw, C_DecryptFinal(h, std::ptr::null_mut(), &mut len));
            assert_rv(rv, CKR_ENCRYPTED_DATA_INVALID, &format!("C_DecryptFinal length query, {what}"));
            let rv = raw!(raw, C_DecryptFinal(h, std::ptr::null_mut(), &mut len));
            assert_rv(rv, CKR_OPERATION_NOT_INITIALIZED, &format!("{what}: the final query ended the operation"));

            // The session goes on decrypting.
            assert_eq!(decrypt(&raw, h, &auto, pair.private, &good).expect("decrypt after"), message);
        }
    }
}

isolated_test! {
    fn sm2_signatures_verify_with_the_sm2_crate() {
        let token = Token::new();
        let session = token.user();
        let pair = sm2_keygen(&session, "sm2-sign");
        let raw = token.raw();
        let h = session.handle();
        let point = public_point(&session, pair.public);
        let message = b"message signed with SM3-SM2";
        let (public, private) = (pair.public.handle(), pair.private.handle());

        // CKM_SM3_SM2 with the default ID: raw r||s, verified outside.
        let sm3_sm2 = mech(CKM_SM3_SM2);
        let signature = raw.sign(h, &sm3_sm2, private, message)
            .unwrap_or_else(|rv| panic!("CKM_SM3_SM2 sign: {}", rv_name(rv)));
        assert_eq!(signature.len(), 64);
        let verifying = sm2::dsa::VerifyingKey::from_sec1_bytes(DEFAULT_ID, &point).expect("verifying key");
        let parsed = sm2::dsa::Signature::from_slice(&signature).expect("r||s");
        verifying.verify(message, &parsed).expect("sm2 crate verifies the module's signature");
        assert_rv(raw.verify(h, &sm3_sm2, public, message, &signature), CKR_OK, "module verify");
        let multi = raw.sign_multi(h, &sm3_sm2, private, &[&message[..7], &message[7..]]).expect("multi-part sign");
        verifying.verify(message, &sm2::dsa::Signature::from_slice(&multi).expect("r||s")).expect("multi-part signature");
        assert_rv(raw.verify_multi(h, &sm3_sm2, public, &[&message[..3], &message[3..]], &signature), CKR_OK, "multi-part verify");

        // An explicit signer ID (binary) as parameter.
        let id = b"ALICE123@YAHOO.COM";
        let with_id = mech_bytes(CKM_SM3_SM2, id);
        let signature_id = raw.sign(h, &with_id, private, message).expect("sign with ID");
        let verifying_id = sm2::dsa::VerifyingKey::from_sec1_bytes("ALICE123@YAHOO.COM", &point).expect("key");
        verifying_id.verify(message, &sm2::dsa::Signature::from_slice(&signature_id).expect("r||s")).expect("ID signature");
        assert_rv(raw.verify(h, &with_id, public, message, &signature_id), CKR_OK, "verify with ID");
        assert_rv(raw.verify(h, &sm3_sm2, public, message, &signature_id), CKR_SIGNATURE_INVALID, "ID matters");

        // Bad signatures.
        let mut bad = signature.clone();
        bad[40] ^= 1;
        assert_rv(raw.verify(h, &sm3_sm2, public, message, &bad), CKR_SIGNATURE_INVALID, "flipped bit");
        assert_rv(raw.verify(h, &sm3_sm2, public, b"other message", &signature), CKR_SIGNATURE_INVALID, "other message");
        assert_rv(raw.verify(h, &sm3_sm2, public, message, &signature[..63]), CKR_SIGNATURE_LEN_RANGE, "63 bytes");

        // CKM_SM3_SM2_DER: DER SEQUENCE { r, s }.
        let der_mech = mech(CKM_SM3_SM2_DER);
        let der = raw.sign(h, &der_mech, private, message).expect("CKM_SM3_SM2_DER sign");
        assert_eq!(der[0], 0x30);
        let parsed = sm2::dsa::DerSignature::try_from(&der[..]).expect("DER signature");
        let parsed = sm2::dsa::Signature::try_from(parsed).expect("convert DER signature");
        verifying.verify(message, &parsed).expect("DER signature verifies outside");
        assert_rv(raw.verify(h, &der_mech, public, message, &der), CKR_OK, "DER verify");

        // CKM_SM2 over the caller's e = SM3(Z || M).
        let z_and_m = [&sm2_z(DEFAULT_ID, &point)[..], message].concat();
        let e = sm3::Sm3::digest(&z_and_m).to_vec();
        let plain = mech(CKM_SM2_SIGN);
        let prehash_signature = raw.sign(h, &plain, private, &e).expect("CKM_SM2 sign");
        verifying
            .verify_prehash(&e, &sm2::dsa::Signature::from_slice(&prehash_signature).expect("r||s"))
            .expect("CKM_SM2 signature over e");
        assert_rv(raw.verify(h, &plain, public, &e, &signature), CKR_OK, "CKM_SM2 verifies a CKM_SM3_SM2 signature");
        let rv = raw.sign(h, &plain, private, &e[..31]).err().unwrap_or(CKR_OK);
        assert_rv_in(rv, &[CKR_DATA_LEN_RANGE, CKR_DATA_INVALID], "CKM_SM2 input of 31 bytes");

        // Generic ECDSA on an SM2 key fails loudly.
        let rv = raw.sign(h, &mech(CKM_ECDSA), private, &e).err().unwrap_or(CKR_OK);
        assert_rv_in(rv, &[CKR_KEY_TYPE_INCONSISTENT, CKR_MECHANISM_INVALID], "CKM_ECDSA on an SM2 key");
        let rv = raw.sign(h, &mech(CKM_ECDSA_SHA256), private, message).err().unwrap_or(CKR_OK);
        assert_rv_in(rv, &[CKR_KEY_TYPE_INCONSISTENT, CKR_MECHANISM_INVALID], "CKM_ECDSA_SHA256 on an SM2 key");
    }
}

/// Z = SM3(ENTL || ID || a || b || xG || yG || xA || yA) of GB/T 32918.2.
fn sm2_z(id: &str, point: &[u8]) -> Vec<u8> {
    const A: &str = "FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC";
    const B: &str = "28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93";
    const GX: &str = "32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7";
    const GY: &str = "BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0";
    let mut hasher = sm3::Sm3::new();
    hasher.update(((id.len() * 8) as u16).to_be_bytes());
    hasher.update(id.as_bytes());
    for constant in [A, B, GX, GY] {
        hasher.update(hex::decode(constant).expect("hex"));
    }
    hasher.update(&point[1..]);
    hasher.finalize().to_vec()
}

isolated_test! {
    fn sm3_digest_matches_the_sm3_crate() {
        let token = Token::new();
        let session = token.ro();
        let raw = token.raw();
        let h = session.handle();
        let long: Vec<u8> = (0..5000u32).map(|i| (i * 13) as u8).collect();
        for message in [&b""[..], b"abc", &long[..]] {
            let expected = sm3::Sm3::digest(message).to_vec();
            let single = raw.digest(h, CKM_SM3, message).unwrap_or_else(|rv| panic!("C_Digest SM3: {}", rv_name(rv)));
            assert_eq!(single, expected);
            let (a, b) = message.split_at(message.len() / 2);
            assert_eq!(raw.digest_multi(h, CKM_SM3, &[a, b]).expect("multi-part SM3"), expected);
        }
        // GB/T 32905 example 1: SM3("abc").
        assert_eq!(
            hex::encode(raw.digest(h, CKM_SM3, b"abc").expect("SM3")),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
    }
}

isolated_test! {
    fn sm2_mechanism_info() {
        let token = Token::new();
        let raw = token.raw();
        let slot = token.slot.id();
        let list = raw.mechanism_list(token.slot);
        let ec_flags = CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS;
        for (mechanism, functions) in [
            (CKM_SM2_KEY_PAIR_GEN, CKF_GENERATE_KEY_PAIR),
            (CKM_SM2_RAW, CKF_ENCRYPT | CKF_DECRYPT),
            (CKM_SM2_CIPHER_DER, CKF_ENCRYPT | CKF_DECRYPT),
            (CKM_SM3_SM2, CKF_SIGN | CKF_VERIFY),
            (CKM_SM3_SM2_DER, CKF_SIGN | CKF_VERIFY),
            (CKM_SM2_SIGN, CKF_SIGN | CKF_VERIFY),
        ] {
            assert!(list.contains(&mechanism), "{mechanism:#x} not listed");
            let mut info = CK_MECHANISM_INFO::default();
            assert_rv(raw!(raw, C_GetMechanismInfo(slot, mechanism, &mut info)), CKR_OK, "C_GetMechanismInfo");
            assert_eq!((info.ulMinKeySize, info.ulMaxKeySize), (256, 256), "{mechanism:#x} key sizes");
            assert_eq!(info.flags & functions, functions, "{mechanism:#x} function flags {:#x}", info.flags);
            assert_eq!(info.flags & ec_flags, ec_flags, "{mechanism:#x} EC flags {:#x}", info.flags);
        }
        assert!(list.contains(&CKM_SM3));
        let mut info = CK_MECHANISM_INFO::default();
        assert_rv(raw!(raw, C_GetMechanismInfo(slot, CKM_SM3, &mut info)), CKR_OK, "SM3 info");
        assert_eq!(info.flags & (CKF_DIGEST | CKF_SIGN | CKF_ENCRYPT), CKF_DIGEST);
        assert!(list.contains(&CKM_EC_KEY_PAIR_GEN), "CKM_EC_KEY_PAIR_GEN makes SM2 keys");
    }
}
