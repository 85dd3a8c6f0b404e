//! Elliptic-curve keys through the module (issue 10): ECDSA on P-256/P-384/P-521 crossing
//! with OpenSSL both ways, ECDH secrets equal to `openssl pkeyutl -derive` (NIST curves and
//! X25519), Ed25519 signatures crossing with OpenSSL, keys kept across processes, and the
//! spec's codes for bad curves, points, signatures and key types.
//!
//! The OpenSSL tests skip (with a message) when `openssl` is not on PATH.

#[macro_use]
mod common;

use std::path::Path;

use common::openssl::*;
use common::*;
use cryptoki::error::RvError;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys::*;
use der::asn1::{OctetStringRef, UintRef};
use der::{Decode, Encode};

/// A curve as PKCS#11 and OpenSSL name it.
struct Curve {
    openssl: &'static str,
    oid: &'static [u8],
    field_len: usize,
}

const P256: Curve = Curve {
    openssl: "P-256",
    oid: &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
    field_len: 32,
};
const P384: Curve = Curve {
    openssl: "P-384",
    oid: &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22],
    field_len: 48,
};
const P521: Curve = Curve {
    openssl: "P-521",
    oid: &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23],
    field_len: 66,
};
const NIST: [Curve; 3] = [P256, P384, P521];
const ED25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
const X25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x6e];

fn key_pair_mechanism(oid: &[u8]) -> Mechanism<'static> {
    match oid {
        ED25519_OID => Mechanism::EccEdwardsKeyPairGen,
        X25519_OID => Mechanism::EccMontgomeryKeyPairGen,
        _ => Mechanism::EccKeyPairGen,
    }
}

/// A key pair on the curve `oid` that signs, verifies and derives (token objects when
/// `ferrohsm-util pubkey`, another process, must find them).
fn generate(
    session: &Session,
    oid: &[u8],
    label: &str,
    token: bool,
) -> (ObjectHandle, ObjectHandle) {
    let label = Attribute::Label(label.as_bytes().to_vec());
    let public = [
        Attribute::Token(token),
        Attribute::EcParams(oid.to_vec()),
        Attribute::Verify(true),
        label.clone(),
    ];
    let private = [
        Attribute::Token(token),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Sign(true),
        Attribute::Derive(true),
        label,
    ];
    session
        .generate_key_pair(&key_pair_mechanism(oid), &public, &private)
        .expect("C_GenerateKeyPair")
}

/// The raw public key inside a CKA_EC_POINT (a DER OCTET STRING).
fn raw_public(session: &Session, public: ObjectHandle) -> Vec<u8> {
    let der = bytes_attr(session, public, AttributeType::EcPoint);
    <&OctetStringRef>::from_der(&der)
        .expect("CKA_EC_POINT is a DER OCTET STRING")
        .as_bytes()
        .to_vec()
}

/// An OpenSSL key (`k.pem`, `pub.pem` in `dir`) with its raw private and public values.
struct OpensslKey {
    private: Vec<u8>,
    public: Vec<u8>,
}

fn openssl_key(dir: &Path, algorithm: &[&str]) -> OpensslKey {
    let mut args = vec!["genpkey"];
    args.extend_from_slice(algorithm);
    args.extend_from_slice(&["-out", "k.pem"]);
    openssl(dir, &args);
    openssl(dir, &["pkey", "-in", "k.pem", "-pubout", "-out", "pub.pem"]);
    let text = String::from_utf8(openssl(dir, &["pkey", "-in", "k.pem", "-text", "-noout"]))
        .expect("text output");
    OpensslKey {
        private: text_block(&text, "priv:"),
        public: text_block(&text, "pub:"),
    }
}

fn openssl_ec_key(dir: &Path, curve: &Curve) -> OpensslKey {
    let paramgen = format!("ec_paramgen_curve:{}", curve.openssl);
    openssl_key(dir, &["-algorithm", "EC", "-pkeyopt", &paramgen])
}

/// Imports an OpenSSL key pair with C_CreateObject: the public point raw or DER-wrapped.
fn import(
    session: &Session,
    key_type: KeyType,
    oid: &[u8],
    key: &OpensslKey,
    der_point: bool,
) -> (ObjectHandle, ObjectHandle) {
    let point = if der_point {
        OctetStringRef::new(&key.public).unwrap().to_der().unwrap()
    } else {
        key.public.clone()
    };
    let public = session
        .create_object(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(key_type),
            Attribute::Token(false),
            Attribute::Verify(true),
            Attribute::EcParams(oid.to_vec()),
            Attribute::EcPoint(point),
        ])
        .expect("C_CreateObject public");
    let private = session
        .create_object(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(key_type),
            Attribute::Token(false),
            Attribute::Private(true),
            Attribute::Sign(true),
            Attribute::Derive(true),
            Attribute::EcParams(oid.to_vec()),
            Attribute::Value(key.private.clone()),
        ])
        .expect("C_CreateObject private");
    (public, private)
}

/// A raw `r||s` signature as the DER `ECDSA-Sig-Value` OpenSSL reads.
fn signature_to_der(raw: &[u8]) -> Vec<u8> {
    let (r, s) = raw.split_at(raw.len() / 2);
    vec![UintRef::new(r).unwrap(), UintRef::new(s).unwrap()]
        .to_der()
        .unwrap()
}

fn signature_from_der(der: &[u8], field_len: usize) -> Vec<u8> {
    let parts = Vec::<UintRef>::from_der(der).expect("ECDSA-Sig-Value");
    let mut raw = Vec::new();
    for part in parts {
        let bytes = strip_zeros(part.as_bytes());
        raw.extend(std::iter::repeat_n(0u8, field_len - bytes.len()));
        raw.extend_from_slice(bytes);
    }
    raw
}

isolated_test! {
    fn ecdsa_signatures_cross_with_openssl_on_every_curve() {
        if !have_openssl("ecdsa_signatures_cross_with_openssl_on_every_curve") {
            return;
        }
        let dir = sandbox_dir();
        let token = Token::new();
        let session = token.user();
        let message = b"signed on one side, checked on the other";
        std::fs::write(dir.join("m.txt"), message).unwrap();
        for curve in NIST {
            let label = format!("ec-{}", curve.openssl);
            let (public, private) = generate(&session, curve.oid, &label, true);
            // The token's signature verifies in OpenSSL with the exported public key.
            let signature = session.sign(&Mechanism::EcdsaSha256, private, message).unwrap();
            assert_eq!(signature.len(), 2 * curve.field_len);
            std::fs::write(dir.join("sig.der"), signature_to_der(&signature)).unwrap();
            let pem = export_public_key(&dir, &label);
            let out = openssl(&dir, &["dgst", "-sha256", "-verify", &pem, "-signature", "sig.der", "m.txt"]);
            assert!(String::from_utf8_lossy(&out).contains("Verified OK"), "{}", curve.openssl);
            // CKM_ECDSA over a SHA-384 digest is what OpenSSL signs with -sha384.
            let digest = openssl(&dir, &["dgst", "-sha384", "-binary", "m.txt"]);
            let signature = session.sign(&Mechanism::Ecdsa, private, &digest).unwrap();
            std::fs::write(dir.join("sig.der"), signature_to_der(&signature)).unwrap();
            let out = openssl(&dir, &["dgst", "-sha384", "-verify", &pem, "-signature", "sig.der", "m.txt"]);
            assert!(String::from_utf8_lossy(&out).contains("Verified OK"), "{}", curve.openssl);
            session.verify(&Mechanism::EcdsaSha256, public, message, &session.sign(&Mechanism::EcdsaSha256, private, message).unwrap()).unwrap();

            // An OpenSSL key, imported (raw point, then DER point): OpenSSL's signatures
            // verify on the token, the token's signatures verify in OpenSSL.
            for der_point in [false, true] {
                let key = openssl_ec_key(&dir, &curve);
                let (public, private) = import(&session, KeyType::EC, curve.oid, &key, der_point);
                let der = openssl(&dir, &["dgst", "-sha256", "-sign", "k.pem", "m.txt"]);
                let raw = signature_from_der(&der, curve.field_len);
                session.verify(&Mechanism::EcdsaSha256, public, message, &raw)
                    .unwrap_or_else(|e| panic!("{}: OpenSSL's signature: {e}", curve.openssl));
                let ours = session.sign(&Mechanism::EcdsaSha512, private, message).unwrap();
                std::fs::write(dir.join("sig.der"), signature_to_der(&ours)).unwrap();
                let out = openssl(&dir, &["dgst", "-sha512", "-verify", "pub.pem", "-signature", "sig.der", "m.txt"]);
                assert!(String::from_utf8_lossy(&out).contains("Verified OK"));
            }
        }
    }
}

fn derive_extractable(
    session: &Session,
    private: ObjectHandle,
    kdf: EcKdf<'_>,
    peer: &[u8],
    value_len: Option<u64>,
) -> cryptoki::error::Result<Vec<u8>> {
    let mut template = vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::Token(false),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
    ];
    if let Some(len) = value_len {
        template.push(Attribute::ValueLen(len.into()));
    }
    let mechanism = Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(kdf, peer));
    let key = session.derive_key(&mechanism, private, &template)?;
    Ok(bytes_attr(session, key, AttributeType::Value))
}

isolated_test! {
    fn ecdh_secrets_equal_openssl_derive() {
        if !have_openssl("ecdh_secrets_equal_openssl_derive") {
            return;
        }
        let dir = sandbox_dir();
        let token = Token::new();
        let session = token.user();
        let x25519 = Curve { openssl: "X25519", oid: X25519_OID, field_len: 32 };
        for curve in NIST.iter().chain([&x25519]) {
            let label = format!("ecdh-{}", curve.openssl);
            let (public, private) = generate(&session, curve.oid, &label, true);
            let peer = if curve.oid == X25519_OID {
                openssl_key(&dir, &["-algorithm", "X25519"])
            } else {
                openssl_ec_key(&dir, curve)
            };
            let pem = export_public_key(&dir, &label);
            let expected = openssl(&dir, &["pkeyutl", "-derive", "-inkey", "k.pem", "-peerkey", &pem]);
            assert_eq!(expected.len(), curve.field_len);
            let z = derive_extractable(&session, private, EcKdf::null(), &peer.public, None).unwrap();
            assert_eq!(z, expected, "{}: Z equals OpenSSL's", curve.openssl);
            // The peer key as a DER OCTET STRING gives the same; CKA_VALUE_LEN takes the
            // leading bytes.
            let wrapped = OctetStringRef::new(&peer.public).unwrap().to_der().unwrap();
            let short = derive_extractable(&session, private, EcKdf::null(), &wrapped, Some(16)).unwrap();
            assert_eq!(short, expected[..16]);
            // Two token keys agree through the X9.63 KDF, and the result is that KDF.
            let (other_public, other_private) = generate(&session, curve.oid, &format!("{label}-2"), false);
            let info = b"shared info";
            let a = derive_extractable(&session, private, EcKdf::sha256(info), &raw_public(&session, other_public), Some(24)).unwrap();
            let b = derive_extractable(&session, other_private, EcKdf::sha256(info), &raw_public(&session, public), Some(24)).unwrap();
            assert_eq!(a, b);
            let z = derive_extractable(&session, private, EcKdf::null(), &raw_public(&session, other_public), None).unwrap();
            let mut x963 = vec![0u8; 24];
            ansi_x963_kdf::derive_key_into::<sha2::Sha256>(&z, info, &mut x963).unwrap();
            assert_eq!(a, x963);
            // A KDF without a length, a point of another curve: the spec's codes.
            expect_rv(derive_extractable(&session, private, EcKdf::sha256(info), &peer.public, None), RvError::TemplateIncomplete);
            expect_rv(derive_extractable(&session, private, EcKdf::null(), &peer.public[1..], None), RvError::MechanismParamInvalid);
        }
    }
}

isolated_test! {
    fn ed25519_signatures_cross_with_openssl() {
        if !have_openssl("ed25519_signatures_cross_with_openssl") {
            return;
        }
        let dir = sandbox_dir();
        let token = Token::new();
        let session = token.user();
        let message = b"pure EdDSA over the whole message";
        std::fs::write(dir.join("m.txt"), message).unwrap();
        let eddsa = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
        let (public, private) = generate(&session, ED25519_OID, "ed", true);
        let signature = session.sign(&eddsa, private, message).unwrap();
        assert_eq!(signature.len(), 64);
        session.verify(&eddsa, public, message, &signature).unwrap();
        std::fs::write(dir.join("sig"), &signature).unwrap();
        let pem = export_public_key(&dir, "ed");
        let out = openssl(&dir, &["pkeyutl", "-verify", "-pubin", "-inkey", &pem, "-rawin", "-in", "m.txt", "-sigfile", "sig"]);
        assert!(String::from_utf8_lossy(&out).contains("Signature Verified Successfully"));
        // An OpenSSL Ed25519 key imported: the same signatures on both sides.
        let key = openssl_key(&dir, &["-algorithm", "ED25519"]);
        let (public, private) = import(&session, KeyType::EC_EDWARDS, ED25519_OID, &key, true);
        let theirs = openssl(&dir, &["pkeyutl", "-sign", "-inkey", "k.pem", "-rawin", "-in", "m.txt"]);
        assert_eq!(session.sign(&eddsa, private, message).unwrap(), theirs, "Ed25519 is deterministic");
        session.verify(&eddsa, public, message, &theirs).unwrap();
        // Ed25519ph is not offered.
        let ph = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Ed25519ph(&[])));
        expect_rv(session.sign(&ph, private, message), RvError::MechanismParamInvalid);
    }
}

#[test]
fn ec_keys_persist_and_bad_input_gets_the_spec_codes() {
    const TEST: &str = "ec_keys_persist_and_bad_input_gets_the_spec_codes";
    match common::child_phase(TEST).as_deref() {
        Some("create") => {
            let token = Token::new();
            let session = token.user();
            generate(&session, P384.oid, "kept-p384", true);
            generate(&session, ED25519_OID, "kept-ed", true);
        }
        Some("use") => {
            let token = Token::existing();
            let session = token.user();
            let raw = token.raw();
            let h = session.handle();
            let keys = |label: &str| {
                let found = find_by_label(&session, label);
                assert_eq!(found.len(), 2, "{label}: both halves kept");
                let class = |k| match session.get_attributes(k, &[AttributeType::Class]).unwrap()[0]
                {
                    Attribute::Class(c) => c,
                    _ => unreachable!(),
                };
                let private = *found
                    .iter()
                    .find(|k| class(**k) == ObjectClass::PRIVATE_KEY)
                    .unwrap();
                let public = *found
                    .iter()
                    .find(|k| class(**k) == ObjectClass::PUBLIC_KEY)
                    .unwrap();
                (public, private)
            };
            let (public, private) = keys("kept-p384");
            let message = b"after a restart";
            let signature = session
                .sign(&Mechanism::EcdsaSha384, private, message)
                .unwrap();
            session
                .verify(&Mechanism::EcdsaSha384, public, message, &signature)
                .unwrap();
            // Signatures: changed, or of the wrong length.
            let mut changed = signature.clone();
            changed[10] ^= 1;
            expect_rv(
                session.verify(&Mechanism::EcdsaSha384, public, message, &changed),
                RvError::SignatureInvalid,
            );
            let rv = raw.verify(
                h,
                &mech(CKM_ECDSA_SHA384),
                public.handle(),
                message,
                &signature[1..],
            );
            assert_rv(rv, CKR_SIGNATURE_LEN_RANGE, "short ECDSA signature");
            // A mechanism of another key type.
            let eddsa = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
            expect_rv(
                session.sign(&eddsa, private, message),
                RvError::KeyTypeInconsistent,
            );
            let (ed_public, ed_private) = keys("kept-ed");
            expect_rv(
                session.sign(&Mechanism::EcdsaSha256, ed_private, message),
                RvError::KeyTypeInconsistent,
            );
            session
                .verify(
                    &eddsa,
                    ed_public,
                    message,
                    &session.sign(&eddsa, ed_private, message).unwrap(),
                )
                .unwrap();
            let (_, sm2_private) = gen_sm2(&session, "sm2");
            let rv = raw
                .sign(h, &mech(CKM_ECDSA), sm2_private.handle(), &[1; 32])
                .err()
                .unwrap_or(CKR_OK);
            assert_rv(rv, CKR_KEY_TYPE_INCONSISTENT, "CKM_ECDSA on an SM2 key");
            // Imports: a point off the curve, a curve the token lacks, explicit parameters.
            let mut point = raw_public(&session, public);
            point[20] ^= 1;
            let import_public = |params: &[u8], point: Vec<u8>| {
                session.create_object(&[
                    Attribute::Class(ObjectClass::PUBLIC_KEY),
                    Attribute::KeyType(KeyType::EC),
                    Attribute::Token(false),
                    Attribute::EcParams(params.to_vec()),
                    Attribute::EcPoint(point),
                ])
            };
            expect_rv(
                import_public(P384.oid, point.clone()),
                RvError::AttributeValueInvalid,
            );
            let brainpool = hex::decode("06092b2403030208010107").unwrap();
            expect_rv(import_public(&brainpool, point), RvError::CurveNotSupported);
            let explicit = openssl(
                &sandbox_dir(),
                &[
                    "ecparam",
                    "-name",
                    "prime256v1",
                    "-param_enc",
                    "explicit",
                    "-outform",
                    "DER",
                ],
            );
            let (p256_public, _) = generate(&session, P256.oid, "p256", false);
            import_public(&explicit, raw_public(&session, p256_public))
                .expect("explicit P-256 parameters are P-256");
            let mut other = explicit.clone();
            other[100] ^= 1;
            expect_rv(
                import_public(&other, raw_public(&session, p256_public)),
                RvError::CurveNotSupported,
            );
            // Derivation needs CKA_DERIVE on the base key.
            let no_derive = session
                .generate_key_pair(
                    &Mechanism::EccKeyPairGen,
                    &[
                        Attribute::Token(false),
                        Attribute::EcParams(P256.oid.to_vec()),
                    ],
                    &[
                        Attribute::Token(false),
                        Attribute::Sign(true),
                        Attribute::Derive(false),
                    ],
                )
                .unwrap()
                .1;
            let peer = raw_public(&session, p256_public);
            expect_rv(
                derive_extractable(&session, no_derive, EcKdf::null(), &peer, None),
                RvError::KeyFunctionNotPermitted,
            );
            // Mechanism info says what the curves allow.
            let info = token
                .p11
                .get_mechanism_info(token.slot, cryptoki::mechanism::MechanismType::ECDSA)
                .unwrap();
            assert_eq!((info.min_key_size(), info.max_key_size()), (256, 521));
            assert!(info.ec_f_p(), "CKF_EC_F_P");
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
    fn ec_private_keys_wrap_as_pkcs8_that_openssl_reads() {
        if !have_openssl("ec_private_keys_wrap_as_pkcs8_that_openssl_reads") {
            return;
        }
        let dir = sandbox_dir();
        let token = Token::new();
        let session = token.user();
        let kek_value = [0x3cu8; 32];
        const IV: [u8; 16] = [0x24; 16];
        let wrapping = Mechanism::AesCbcPad(IV);
        let kek = session
            .create_object(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Token(false),
                Attribute::Wrap(true),
                Attribute::Unwrap(true),
                Attribute::Value(kek_value.to_vec()),
            ])
            .unwrap();
        for (oid, key_type) in [
            (P256.oid, KeyType::EC),
            (P521.oid, KeyType::EC),
            (ED25519_OID, KeyType::EC_EDWARDS),
            (X25519_OID, KeyType::EC_MONTGOMERY),
        ] {
            let (public, private) = session
                .generate_key_pair(
                    &key_pair_mechanism(oid),
                    &[Attribute::Token(false), Attribute::EcParams(oid.to_vec())],
                    &[
                        Attribute::Token(false),
                        Attribute::Sensitive(true),
                        Attribute::Extractable(true),
                        Attribute::Derive(true),
                    ],
                )
                .unwrap();
            let wrapped = session.wrap_key(&wrapping, kek, private).unwrap();
            // The wrapped bytes are a PKCS#8 key OpenSSL reads: the same public key.
            std::fs::write(dir.join("wrapped"), &wrapped).unwrap();
            openssl(&dir, &["enc", "-d", "-aes-256-cbc", "-K", &hex::encode(kek_value), "-iv", &hex::encode(IV), "-in", "wrapped", "-out", "key.der"]);
            let text = String::from_utf8(openssl(&dir, &["pkey", "-inform", "DER", "-in", "key.der", "-text", "-noout"])).unwrap();
            assert_eq!(text_block(&text, "pub:"), raw_public(&session, public), "{oid:02x?}");
            // Unwrapped again: the same key (ECDH with one peer gives the same secret).
            let copy = session
                .unwrap_key(
                    &wrapping,
                    kek,
                    &wrapped,
                    &[
                        Attribute::Class(ObjectClass::PRIVATE_KEY),
                        Attribute::KeyType(key_type),
                        Attribute::Token(false),
                        Attribute::Derive(true),
                        Attribute::Sign(key_type != KeyType::EC_MONTGOMERY),
                    ],
                )
                .unwrap();
            assert_eq!(bytes_attr(&session, copy, AttributeType::EcParams), oid);
            if key_type == KeyType::EC_EDWARDS {
                let eddsa = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
                let signature = session.sign(&eddsa, copy, b"m").unwrap();
                session.verify(&eddsa, public, b"m", &signature).unwrap();
            } else {
                let peer = raw_public(&session, public);
                assert_eq!(
                    derive_extractable(&session, copy, EcKdf::null(), &peer, None).unwrap(),
                    derive_extractable(&session, private, EcKdf::null(), &peer, None).unwrap()
                );
            }
        }
        // Garbage that unwraps to no key: CKR_WRAPPED_KEY_INVALID.
        std::fs::write(dir.join("garbage"), [0x30, 0x03, 0x02, 0x01, 0x00]).unwrap();
        let blob = openssl(&dir, &["enc", "-aes-256-cbc", "-K", &hex::encode(kek_value), "-iv", &hex::encode(IV), "-in", "garbage"]);
        expect_rv(
            session.unwrap_key(&wrapping, kek, &blob, &[Attribute::Class(ObjectClass::PRIVATE_KEY), Attribute::KeyType(KeyType::EC), Attribute::Token(false)]),
            RvError::WrappedKeyInvalid,
        );
    }
}
