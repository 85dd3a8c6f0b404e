//! The digital envelope, end to end with real outside tools (the README's "Envelope"
//! section): a sender with OpenSSL wraps a fresh symmetric key under the token's public key
//! and encrypts the data with it; the token unwraps the key into a sensitive,
//! non-extractable key object and decrypts the data, which never needs the key outside.
//! And the reverse: the token wraps a key it made for another party's OpenSSL key.
//!
//! AES-GCM comes from Python's `cryptography` package (OpenSSL's GCM underneath), since
//! `openssl enc` does not do AEAD ciphers.

#[macro_use]
mod common;

use common::*;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys::*;
use std::path::Path;
use std::process::Command;

/// Runs `program args` in `dir` and fails the test unless it succeeded; returns stdout.
#[track_caller]
fn run(dir: &Path, program: &str, args: &[&str]) -> Vec<u8> {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("spawn {program}: {e} (the tests need it installed)"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed ({})\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// `ferrohsm-util pubkey` of the token key labelled `label`, written to `<label>.pem`.
fn export_public_key(dir: &Path, label: &str) -> String {
    let pem = run(
        dir,
        env!("CARGO_BIN_EXE_ferrohsm-util"),
        &["pubkey", "--token", TOKEN_LABEL, "--label", label],
    );
    let file = format!("{label}.pem");
    std::fs::write(dir.join(&file), pem).unwrap();
    file
}

fn vendor(mechanism: CK_MECHANISM_TYPE) -> Mechanism<'static> {
    Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(
        vendor_mechanism(mechanism),
        None,
    ))
}

fn oaep_sha256() -> Mechanism<'static> {
    Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
        MechanismType::SHA256,
        PkcsMgfType::MGF1_SHA256,
        PkcsOaepSource::empty(),
    ))
}

/// The template of the key the token unwraps: it never leaves the token.
fn kept_key(key_type: KeyType) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(key_type),
        Attribute::Token(false),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Decrypt(true),
    ]
}

fn token_rsa_key(session: &Session, label: &str) -> ObjectHandle {
    let (mut public, mut private) = rsa_templates(2048, label, true);
    public.push(Attribute::Wrap(true));
    private.push(Attribute::Unwrap(true));
    session
        .generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private)
        .expect("RSA key pair")
        .1
}

/// AES-256-GCM decryption in the token of what `cryptography` sealed: `sealed` is
/// ciphertext || 16-byte tag.
fn gcm_decrypt(
    session: &Session,
    key: ObjectHandle,
    iv: &[u8],
    aad: &[u8],
    sealed: &[u8],
) -> Vec<u8> {
    let raw = Raw::load();
    let params = CK_GCM_PARAMS {
        pIv: iv.as_ptr() as *mut u8,
        ulIvLen: iv.len() as CK_ULONG,
        ulIvBits: (iv.len() * 8) as CK_ULONG,
        pAAD: aad.as_ptr() as *mut u8,
        ulAADLen: aad.len() as CK_ULONG,
        ulTagBits: 128,
    };
    let m = CK_MECHANISM {
        mechanism: CKM_AES_GCM,
        pParameter: &params as *const _ as *mut _,
        ulParameterLen: std::mem::size_of_val(&params) as CK_ULONG,
    };
    raw.decrypt(session.handle(), &m, key.handle(), sealed)
        .unwrap_or_else(|rv| panic!("GCM decrypt: {}", rv_name(rv)))
}

/// Data encrypted by OpenSSL's AES-256-GCM (through Python's `cryptography`).
fn outside_gcm_encrypt(dir: &Path, key_file: &str, iv_hex: &str, aad: &str) {
    let script = format!(
        "from cryptography.hazmat.primitives.ciphers.aead import AESGCM\n\
         key = open('{key_file}', 'rb').read()\n\
         data = open('data.txt', 'rb').read()\n\
         open('data.gcm', 'wb').write(AESGCM(key).encrypt(bytes.fromhex('{iv_hex}'), data, b'{aad}'))\n"
    );
    run(dir, "/usr/bin/python3", &["-c", &script]);
}

isolated_test! {
    fn envelope_rsa_oaep_and_pkcs1_with_aes_256_gcm() {
        let dir = sandbox_dir();
        let token = Token::new();
        let session = token.user();
        let private = token_rsa_key(&session, "kms-rsa");
        let pem = export_public_key(&dir, "kms-rsa");
        let data: Vec<u8> = (0..100_000u32).flat_map(|i| i.to_le_bytes()).collect();
        std::fs::write(dir.join("data.txt"), &data).unwrap();

        // The sender: a random AES-256 key, the data under AES-256-GCM, the key under RSA.
        run(&dir, "openssl", &["rand", "-out", "aes.key", "32"]);
        let iv = "00112233445566778899aabb";
        outside_gcm_encrypt(&dir, "aes.key", iv, "envelope-v1");
        let padding = [
            (vec!["-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256", "-pkeyopt", "rsa_mgf1_md:sha256"], oaep_sha256()),
            (vec!["-pkeyopt", "rsa_padding_mode:pkcs1"], Mechanism::RsaPkcs),
        ];
        for (options, mechanism) in padding {
            let mut args = vec!["pkeyutl", "-encrypt", "-pubin", "-inkey", &pem, "-in", "aes.key", "-out", "aes.key.enc"];
            args.extend(options.iter().copied());
            run(&dir, "openssl", &args);
            let wrapped = std::fs::read(dir.join("aes.key.enc")).unwrap();

            // The recipient: the token unwraps the key into an object that stays inside.
            let key = session
                .unwrap_key(&mechanism, private, &wrapped, &kept_key(KeyType::AES))
                .expect("C_UnwrapKey");
            assert!(bool_attr(&session, key, cryptoki::object::AttributeType::Sensitive));
            assert!(!bool_attr(&session, key, cryptoki::object::AttributeType::Extractable));
            let sealed = std::fs::read(dir.join("data.gcm")).unwrap();
            let plaintext = gcm_decrypt(&session, key, &hex::decode(iv).unwrap(), b"envelope-v1", &sealed);
            assert!(plaintext == data, "plaintext differs from the sender's data");
            // A tampered envelope releases nothing.
            let mut bad = sealed.clone();
            bad[1234] ^= 4;
            let raw = Raw::load();
            let iv_bytes = hex::decode(iv).unwrap();
            let params = CK_GCM_PARAMS {
                pIv: iv_bytes.as_ptr() as *mut u8,
                ulIvLen: 12,
                ulIvBits: 96,
                pAAD: b"envelope-v1".as_ptr() as *mut u8,
                ulAADLen: 11,
                ulTagBits: 128,
            };
            let m = CK_MECHANISM {
                mechanism: CKM_AES_GCM,
                pParameter: &params as *const _ as *mut _,
                ulParameterLen: std::mem::size_of_val(&params) as CK_ULONG,
            };
            assert_eq!(raw.decrypt(session.handle(), &m, key.handle(), &bad), Err(CKR_ENCRYPTED_DATA_INVALID));
        }
    }
}

isolated_test! {
    fn envelope_sm2_with_sm4_cbc() {
        let dir = sandbox_dir();
        let token = Token::new();
        let session = token.user();
        let raw = token.raw();
        let s = session.handle();
        let label = "kms-sm2";
        let (_, private) = session
            .generate_key_pair(
                &vendor(CKM_SM2_KEY_PAIR_GEN),
                &[Attribute::Token(true), Attribute::Encrypt(true), Attribute::Wrap(true), Attribute::Label(label.into())],
                &[Attribute::Token(true), Attribute::Decrypt(true), Attribute::Unwrap(true), Attribute::Label(label.into())],
            )
            .expect("SM2 key pair");
        let pem = export_public_key(&dir, label);
        let data = b"SM2 envelope: the data was encrypted by openssl enc -sm4-cbc".repeat(50);
        std::fs::write(dir.join("data.txt"), &data).unwrap();

        // The sender: a random SM4 key under SM2 (DER C1C3C2), the data under SM4-CBC.
        run(&dir, "openssl", &["rand", "-out", "sm4.key", "16"]);
        let key_hex = hex::encode(std::fs::read(dir.join("sm4.key")).unwrap());
        let iv = "0f0e0d0c0b0a09080706050403020100";
        run(&dir, "openssl", &["pkeyutl", "-encrypt", "-pubin", "-inkey", &pem, "-in", "sm4.key", "-out", "sm4.key.enc"]);
        run(&dir, "openssl", &["enc", "-sm4-cbc", "-K", &key_hex, "-iv", iv, "-in", "data.txt", "-out", "data.sm4"]);

        let wrapped = std::fs::read(dir.join("sm4.key.enc")).unwrap();
        let key = session
            .unwrap_key(
                &vendor(CKM_SM2_CIPHER_DER),
                private,
                &wrapped,
                &kept_key(KeyType::new_vendor_defined(CKK_SM4).unwrap()),
            )
            .expect("C_UnwrapKey SM2");
        let iv = hex::decode(iv).unwrap();
        let m = CK_MECHANISM {
            mechanism: CKM_SM4_CBC_PAD,
            pParameter: iv.as_ptr() as *mut _,
            ulParameterLen: 16,
        };
        let ciphertext = std::fs::read(dir.join("data.sm4")).unwrap();
        let plaintext = raw.decrypt(s, &m, key.handle(), &ciphertext).expect("SM4-CBC-PAD decrypt");
        assert!(plaintext == data, "plaintext differs");
    }
}

isolated_test! {
    fn token_wraps_its_key_for_an_openssl_recipient() {
        let dir = sandbox_dir();
        let token = Token::new();
        let session = token.user();
        // The other party's RSA key lives in OpenSSL; its public half is imported.
        run(&dir, "openssl", &["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "peer.pem"]);
        run(&dir, "openssl", &["pkey", "-in", "peer.pem", "-pubout", "-out", "peer.pub.pem"]);
        let text = String::from_utf8(run(&dir, "openssl", &["pkey", "-pubin", "-in", "peer.pub.pem", "-noout", "-text"])).unwrap();
        let modulus = modulus_from_openssl_text(&text);
        let peer = session
            .create_object(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::KeyType(KeyType::RSA),
                Attribute::Modulus(modulus),
                Attribute::PublicExponent(F4.to_vec()),
                Attribute::Wrap(true),
                Attribute::Token(false),
            ])
            .expect("import the peer's public key");
        // A key the token made, extractable only by wrapping (still sensitive).
        let key = session
            .generate_key(
                &Mechanism::AesKeyGen,
                &[Attribute::ValueLen(32.into()), Attribute::Extractable(true), Attribute::Encrypt(true), Attribute::Token(false)],
            )
            .unwrap();
        let wrapped = session.wrap_key(&oaep_sha256(), peer, key).expect("C_WrapKey OAEP");
        std::fs::write(dir.join("wrapped.bin"), &wrapped).unwrap();
        run(&dir, "openssl", &[
            "pkeyutl", "-decrypt", "-inkey", "peer.pem", "-in", "wrapped.bin", "-out", "aes.key",
            "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256", "-pkeyopt", "rsa_mgf1_md:sha256",
        ]);
        let recovered = std::fs::read(dir.join("aes.key")).unwrap();
        assert_eq!(recovered.len(), 32);
        // The peer's copy and the token's key encrypt alike.
        let block = [0x33u8; 16];
        std::fs::write(dir.join("block"), block).unwrap();
        let theirs = run(&dir, "openssl", &["enc", "-aes-256-ecb", "-nopad", "-K", &hex::encode(&recovered), "-in", "block"]);
        let ours = session.encrypt(&Mechanism::AesEcb, key, &block).unwrap();
        assert_eq!(theirs, ours, "the recipient did not get the token's key");
    }
}

/// The modulus from `openssl pkey -text`: hex pairs after "Modulus:".
fn modulus_from_openssl_text(text: &str) -> Vec<u8> {
    let start = text.find("Modulus:").expect("Modulus in openssl output") + "Modulus:".len();
    let end = text[start..].find("Exponent").expect("Exponent") + start;
    let hex: String = text[start..end]
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .collect();
    hex::decode(hex).expect("modulus hex")
}
