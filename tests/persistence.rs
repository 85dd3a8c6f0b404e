//! Persistence: token objects made in one process are found and used in the next; changes
//! and deletions persist; nothing secret is written to the token directory unsealed.

#[macro_use]
mod common;

use common::*;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::UserType;

const MESSAGE: &[u8] = b"written in process A, read in process B";

fn save(name: &str, bytes: &[u8]) {
    std::fs::write(sandbox_dir().join(name), bytes).expect("save");
}

fn load(name: &str) -> Vec<u8> {
    std::fs::read(sandbox_dir().join(name)).expect("load")
}

#[test]
fn token_objects_persist_across_processes() {
    const TEST: &str = "token_objects_persist_across_processes";
    match common::child_phase(TEST).as_deref() {
        Some("create") => {
            let token = Token::new();
            let session = token.user();
            let pair = gen_rsa(&session, 2048, "persist-rsa", true);
            save(
                "modulus",
                &bytes_attr(&session, pair.public, AttributeType::Modulus),
            );
            let ciphertext = session
                .encrypt(&Mechanism::RsaPkcs, pair.public, MESSAGE)
                .expect("encrypt");
            save("ciphertext", &ciphertext);
            let signature = session
                .sign(&Mechanism::Sha256RsaPkcs, pair.private, MESSAGE)
                .expect("sign");
            save("signature", &signature);
            session
                .create_object(&data_object("persist-data", b"public data", true, false))
                .expect("token data object");
            session
                .create_object(&data_object("persist-secret", b"private data", true, true))
                .expect("private token data object");
            session
                .create_object(&data_object("ephemeral", b"gone", false, false))
                .expect("session object");
        }
        Some("use") => {
            let token = Token::existing();
            let session = token.rw();
            // Without login: public objects only.
            let public = session
                .find_objects(&[
                    Attribute::Class(ObjectClass::PUBLIC_KEY),
                    Attribute::Label(b"persist-rsa".to_vec()),
                ])
                .expect("find public key");
            assert_eq!(public.len(), 1, "public key visible without login");
            assert_eq!(
                bytes_attr(&session, public[0], AttributeType::Modulus),
                load("modulus")
            );
            assert_eq!(
                bytes_attr(&session, public[0], AttributeType::Id),
                b"persist-rsa"
            );
            assert_eq!(find_by_label(&session, "persist-data").len(), 1);
            assert!(
                find_by_label(&session, "persist-secret").is_empty(),
                "private object hidden"
            );
            assert!(
                find_by_label(&session, "ephemeral").is_empty(),
                "session object did not persist"
            );
            session
                .verify(
                    &Mechanism::Sha256RsaPkcs,
                    public[0],
                    MESSAGE,
                    &load("signature"),
                )
                .expect("verify process A's signature");

            session
                .login(UserType::User, Some(&pin(USER_PIN)))
                .expect("login");
            let private = session
                .find_objects(&[
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::Label(b"persist-rsa".to_vec()),
                ])
                .expect("find private key");
            assert_eq!(private.len(), 1, "private key visible after login");
            assert!(bool_attr(&session, private[0], AttributeType::Sensitive));
            assert!(bool_attr(&session, private[0], AttributeType::Local));
            let plaintext = session
                .decrypt(&Mechanism::RsaPkcs, private[0], &load("ciphertext"))
                .expect("decrypt");
            assert_eq!(plaintext, MESSAGE);
            let signature = session
                .sign(&Mechanism::Sha256RsaPkcs, private[0], MESSAGE)
                .expect("sign");
            assert_eq!(
                signature,
                load("signature"),
                "same key, deterministic signature"
            );
            let secret = find_by_label(&session, "persist-secret");
            assert_eq!(secret.len(), 1);
            assert_eq!(
                bytes_attr(&session, secret[0], AttributeType::Value),
                b"private data"
            );

            // Changes made here must be seen by the next process.
            let data = find_by_label(&session, "persist-data");
            session
                .update_attributes(data[0], &[Attribute::Label(b"persist-renamed".to_vec())])
                .expect("rename");
            session.destroy_object(secret[0]).expect("destroy");
        }
        Some("changed") => {
            let token = Token::existing();
            let session = token.user();
            assert!(find_by_label(&session, "persist-data").is_empty());
            let renamed = find_by_label(&session, "persist-renamed");
            assert_eq!(renamed.len(), 1, "rename persisted");
            assert_eq!(
                bytes_attr(&session, renamed[0], AttributeType::Value),
                b"public data"
            );
            assert!(
                find_by_label(&session, "persist-secret").is_empty(),
                "destroy persisted"
            );
            assert_eq!(
                find_by_label(&session, "persist-rsa").len(),
                2,
                "key pair still there"
            );
        }
        Some(other) => panic!("unknown phase {other}"),
        None => {
            let sandbox = Sandbox::new();
            sandbox.run(TEST, "create");
            sandbox.run(TEST, "use");
            sandbox.run(TEST, "changed");
        }
    }
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Fails if any file of the token directory contains one of `needles` (name, bytes).
fn assert_absent_from_store(needles: &[(String, Vec<u8>)]) {
    if common::on_postgres() {
        // bytea values come out as hex: look for the bytes in both forms.
        let dump = common::pg::dump(&sandbox_dir());
        assert!(!dump.is_empty(), "the schema holds the store");
        for (name, needle) in needles {
            let hex = hex_of(needle);
            assert!(
                !contains(&dump, needle) && !contains(&dump, hex.as_bytes()),
                "{name} found unsealed in the database"
            );
        }
        return;
    }
    let token_dir = sandbox_dir().join("tokens");
    let files = files_under(&token_dir);
    assert!(!files.is_empty(), "the token directory holds the store");
    for file in files {
        let bytes = std::fs::read(&file).expect("read store file");
        for (name, needle) in needles {
            assert!(
                !contains(&bytes, needle),
                "{name} found unsealed in {}",
                file.display()
            );
        }
    }
}

#[test]
fn key_material_and_pins_are_never_written_unsealed() {
    const TEST: &str = "key_material_and_pins_are_never_written_unsealed";
    match common::child_phase(TEST).as_deref() {
        Some("create") => {
            let token = Token::new();
            let session = token.user();
            // Extractable and not sensitive, so the test can learn the values; they are
            // still secret attributes of a private key and must be sealed at rest.
            let (public, mut private) = rsa_templates(2048, "sealed", true);
            for attribute in private.iter_mut() {
                match attribute {
                    Attribute::Sensitive(v) => *v = false,
                    Attribute::Extractable(v) => *v = true,
                    _ => {}
                }
            }
            let (_, key) = session
                .generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private)
                .expect("generate");
            let parts = session
                .get_attributes(
                    key,
                    &[
                        AttributeType::PrivateExponent,
                        AttributeType::Prime1,
                        AttributeType::Prime2,
                    ],
                )
                .expect("components");
            assert_eq!(parts.len(), 3, "components readable: {parts:?}");
            for part in parts {
                let (name, bytes) = match part {
                    Attribute::PrivateExponent(v) => ("private-exponent", v),
                    Attribute::Prime1(v) => ("prime-1", v),
                    Attribute::Prime2(v) => ("prime-2", v),
                    other => panic!("unexpected {other:?}"),
                };
                save(name, &bytes);
            }
        }
        Some("scan") => {
            let mut needles = Vec::new();
            for name in ["private-exponent", "prime-1", "prime-2"] {
                let mut secret = load(name);
                assert!(secret.len() >= 64);
                // A 16-byte window is enough to spot the value in any file.
                secret.truncate(16);
                needles.push((name.to_string(), secret));
            }
            needles.push(("the user PIN".to_string(), USER_PIN.as_bytes().to_vec()));
            needles.push(("the SO PIN".to_string(), SO_PIN.as_bytes().to_vec()));
            assert_absent_from_store(&needles);
        }
        Some(other) => panic!("unknown phase {other}"),
        None => {
            let sandbox = Sandbox::new();
            sandbox.run(TEST, "create");
            sandbox.run(TEST, "scan");
        }
    }
}

const PRIVATE_VALUE: &[u8] = b"PRIVATE-DATA-OBJECT-VALUE-0123456789";

/// A private object is readable only after login, so its value must not lie on disk in
/// clear either (SoftHSMv2 encrypts every attribute of private objects).
#[test]
fn private_data_object_values_are_sealed_at_rest() {
    const TEST: &str = "private_data_object_values_are_sealed_at_rest";
    match common::child_phase(TEST).as_deref() {
        Some("create") => {
            let token = Token::new();
            let session = token.user();
            session
                .create_object(&data_object("secret-data", PRIVATE_VALUE, true, true))
                .expect("private data object");
        }
        Some("scan") => {
            assert_absent_from_store(&[(
                "a private data object's CKA_VALUE".to_string(),
                PRIVATE_VALUE[..25].to_vec(),
            )]);
            // And it is still there for the user.
            let token = Token::existing();
            let session = token.user();
            let found = find_by_label(&session, "secret-data");
            assert_eq!(found.len(), 1);
            assert_eq!(
                bytes_attr(&session, found[0], AttributeType::Value),
                PRIVATE_VALUE
            );
        }
        Some(other) => panic!("unknown phase {other}"),
        None => {
            let sandbox = Sandbox::new();
            sandbox.run(TEST, "create");
            sandbox.run(TEST, "scan");
        }
    }
}

/// The RSA components of a key pair generated (as session objects, readable) for import.
const COMPONENTS: [(&str, AttributeType); 8] = [
    ("n", AttributeType::Modulus),
    ("e", AttributeType::PublicExponent),
    ("d", AttributeType::PrivateExponent),
    ("p", AttributeType::Prime1),
    ("q", AttributeType::Prime2),
    ("dp", AttributeType::Exponent1),
    ("dq", AttributeType::Exponent2),
    ("qinv", AttributeType::Coefficient),
];

/// An RSA private key as a client imports it: every component, token object.
fn rsa_private_template(label: &str, private: bool) -> Vec<Attribute> {
    let mut template = vec![
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(cryptoki::object::KeyType::RSA),
        Attribute::Token(true),
        Attribute::Private(private),
        Attribute::Sensitive(true),
        Attribute::Decrypt(true),
        Attribute::Sign(true),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    for (name, kind) in COMPONENTS {
        let value = load(name);
        template.push(match kind {
            AttributeType::Modulus => Attribute::Modulus(value),
            AttributeType::PublicExponent => Attribute::PublicExponent(value),
            AttributeType::PrivateExponent => Attribute::PrivateExponent(value),
            AttributeType::Prime1 => Attribute::Prime1(value),
            AttributeType::Prime2 => Attribute::Prime2(value),
            AttributeType::Exponent1 => Attribute::Exponent1(value),
            AttributeType::Exponent2 => Attribute::Exponent2(value),
            _ => Attribute::Coefficient(value),
        });
    }
    template
}

/// The public half, as a session object.
fn rsa_public_object(session: &cryptoki::session::Session) -> cryptoki::object::ObjectHandle {
    session
        .create_object(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(cryptoki::object::KeyType::RSA),
            Attribute::Token(false),
            Attribute::Encrypt(true),
            Attribute::Verify(true),
            Attribute::Modulus(load("n")),
            Attribute::PublicExponent(load("e")),
        ])
        .expect("public key object")
}

const SECRET_VALUE: &[u8] = b"public secret key value, 32 byte";

fn one(session: &cryptoki::session::Session, label: &str) -> cryptoki::object::ObjectHandle {
    let found = find_by_label(session, label);
    assert_eq!(found.len(), 1, "{label}");
    found[0]
}

/// Decrypts and signs with the key labelled `label` from `session`, checked with the
/// public key.
fn use_rsa_key(session: &cryptoki::session::Session, label: &str) -> cryptoki::error::Result<()> {
    let key = one(session, label);
    let public = rsa_public_object(session);
    let ciphertext = session.encrypt(&Mechanism::RsaPkcs, public, MESSAGE)?;
    assert_eq!(
        session.decrypt(&Mechanism::RsaPkcs, key, &ciphertext)?,
        MESSAGE
    );
    let signature = session.sign(&Mechanism::Sha256RsaPkcs, key, MESSAGE)?;
    session.verify(&Mechanism::Sha256RsaPkcs, public, MESSAGE, &signature)
}

/// A public token object (CKA_PRIVATE false) with secret values, as Google's pkcs11test
/// makes one, is created and used without login, in its process and the next: the spec
/// lets anyone use a public object. Its secrets are sealed under the token's public-object
/// key; a private key's stay sealed under the PIN-protected token key, so even a private
/// key made "public" by editing the file does not open without the PIN.
#[test]
fn public_objects_with_secret_values_work_without_login() {
    const TEST: &str = "public_objects_with_secret_values_work_without_login";
    match common::child_phase(TEST).as_deref() {
        Some("create") => {
            let token = Token::new();
            {
                let session = token.user();
                let (public, mut private) = rsa_templates(2048, "components", false);
                for attribute in private.iter_mut() {
                    match attribute {
                        Attribute::Sensitive(v) => *v = false,
                        Attribute::Extractable(v) => *v = true,
                        _ => {}
                    }
                }
                let (_, key) = session
                    .generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private)
                    .expect("generate");
                for (name, kind) in COMPONENTS {
                    save(name, &bytes_attr_any(&session, key, kind));
                }
                session
                    .create_object(&rsa_private_template("private-rsa", true))
                    .expect("private RSA key");
                session.logout().expect("logout");
            }
            // A R/W public session: nobody logged in.
            let session = token.rw();
            session
                .create_object(&rsa_private_template("public-rsa", false))
                .expect("a public RSA private key without login");
            session
                .create_object(&[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(cryptoki::object::KeyType::GENERIC_SECRET),
                    Attribute::Token(true),
                    Attribute::Private(false),
                    Attribute::Sensitive(false),
                    Attribute::Extractable(true),
                    Attribute::Label(b"public-secret".to_vec()),
                    Attribute::Value(SECRET_VALUE.to_vec()),
                ])
                .expect("a public secret key without login");
            use_rsa_key(&session, "public-rsa").expect("use without login");
            assert!(
                find_by_label(&session, "private-rsa").is_empty(),
                "private: needs login"
            );
        }
        Some("use") => {
            let token = Token::existing();
            let session = token.ro();
            use_rsa_key(&session, "public-rsa").expect("use without login in a new process");
            let secret = one(&session, "public-secret");
            assert_eq!(
                bytes_attr(&session, secret, AttributeType::Value),
                SECRET_VALUE
            );
            assert!(find_by_label(&session, "private-rsa").is_empty());
            // Logged in, both work.
            session
                .login(UserType::User, Some(&pin(USER_PIN)))
                .expect("login");
            use_rsa_key(&session, "public-rsa").expect("use after login");
            use_rsa_key(&session, "private-rsa").expect("the private key");
        }
        Some("scan") => {
            // Sealed under a key that is in the file, but sealed: never in clear.
            let d = load("d");
            assert_absent_from_store(&[
                (
                    "the public key's private exponent".to_string(),
                    d[..16].to_vec(),
                ),
                (
                    "the public secret key's value".to_string(),
                    SECRET_VALUE[..16].to_vec(),
                ),
            ]);
            // The private key was made public by editing the file (see the parent): its
            // secrets still need the PIN.
            let token = Token::existing();
            let session = token.rw();
            let code = common::rv_of(use_rsa_key(&session, "private-rsa"));
            assert!(
                matches!(
                    code,
                    cryptoki::error::RvError::UserNotLoggedIn
                        | cryptoki::error::RvError::DeviceError
                ),
                "an edited private key must not open without the PIN: {code:?}"
            );
        }
        Some(other) => panic!("unknown phase {other}"),
        None => {
            let sandbox = Sandbox::new();
            sandbox.run(TEST, "create");
            sandbox.run(TEST, "use");
            make_public_in_file(&sandbox.token_dir(), b"private-rsa");
            sandbox.run(TEST, "scan");
        }
    }
}

/// Sets CKA_PRIVATE to false in the store for the object labelled `label`, as someone
/// holding the token file could.
fn make_public_in_file(token_dir: &std::path::Path, label: &[u8]) {
    if common::on_postgres() {
        let sandbox = token_dir.parent().unwrap();
        let changed = common::pg::psql(
            sandbox,
            &format!(
                "WITH c AS (UPDATE attributes SET value = '\\x00' WHERE attr_type = {} AND object_id =
                     (SELECT object_id FROM attributes WHERE attr_type = {} AND value = '\\x{}')
                 RETURNING 1) SELECT count(*) FROM c",
                cryptoki_sys::CKA_PRIVATE,
                cryptoki_sys::CKA_LABEL,
                hex_of(label)
            ),
        );
        assert_eq!(changed.trim(), "1", "one CKA_PRIVATE changed");
        return;
    }
    let db = files_under(token_dir)
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "db"))
        .expect("token database");
    let conn = rusqlite::Connection::open(&db).expect("open store");
    let changed = conn
        .execute(
            "UPDATE attributes SET value = x'00' WHERE type = ?1 AND object_id =
                 (SELECT object_id FROM attributes WHERE type = ?2 AND value = ?3)",
            rusqlite::params![
                cryptoki_sys::CKA_PRIVATE as i64,
                cryptoki_sys::CKA_LABEL as i64,
                label
            ],
        )
        .expect("edit store");
    assert_eq!(changed, 1, "one CKA_PRIVATE changed");
}

/// A byte-string attribute of any kind `bytes_attr` does not list.
fn bytes_attr_any(
    session: &cryptoki::session::Session,
    object: cryptoki::object::ObjectHandle,
    kind: AttributeType,
) -> Vec<u8> {
    match session
        .get_attributes(object, &[kind])
        .expect("C_GetAttributeValue")
        .into_iter()
        .next()
    {
        Some(Attribute::Modulus(v))
        | Some(Attribute::PublicExponent(v))
        | Some(Attribute::PrivateExponent(v))
        | Some(Attribute::Prime1(v))
        | Some(Attribute::Prime2(v))
        | Some(Attribute::Exponent1(v))
        | Some(Attribute::Exponent2(v))
        | Some(Attribute::Coefficient(v)) => v,
        other => panic!("{kind:?}: {other:?}"),
    }
}
