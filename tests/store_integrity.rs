//! Store integrity and file hygiene (issue 12): rows of the token file edited between
//! processes are found (CKR_DEVICE_ERROR on that object, the others still work, no secret
//! comes out), a store written by the previous release is upgraded in place, and token
//! files and directories are owner-only. ferrohsm only: these edit its SQLite store.

#[macro_use]
mod common;

use common::*;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const MESSAGE: &[u8] = b"integrity matters";

fn db_path(sandbox_path: &Path) -> PathBuf {
    sandbox_path.join("tokens").join("token-0.db")
}

fn open_db(sandbox_path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(db_path(sandbox_path)).expect("open token file")
}

/// PKCS#11 wire form of a CK_ULONG, as the store keeps it.
fn ulong(v: CK_ULONG) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

/// The store id of the object labelled `label` of class `class`.
fn object_id(conn: &rusqlite::Connection, label: &str, class: CK_OBJECT_CLASS) -> i64 {
    conn.query_row(
        "SELECT l.object_id FROM attributes l JOIN attributes c
           ON c.object_id = l.object_id AND c.type = ?3
         WHERE l.type = ?1 AND l.value = ?2 AND c.value = ?4",
        rusqlite::params![
            CKA_LABEL as i64,
            label.as_bytes(),
            CKA_CLASS as i64,
            ulong(class)
        ],
        |row| row.get(0),
    )
    .unwrap_or_else(|e| panic!("object {label:?}: {e}"))
}

fn set_value(conn: &rusqlite::Connection, id: i64, ty: CK_ATTRIBUTE_TYPE, value: &[u8]) {
    let changed = conn
        .execute(
            "UPDATE attributes SET value = ?1 WHERE object_id = ?2 AND type = ?3",
            rusqlite::params![value, id, ty as i64],
        )
        .unwrap();
    assert_eq!(changed, 1, "attribute 0x{ty:x} of object {id}");
}

/// Runs a child phase and returns its stderr (the module's log), failing unless it passed.
fn run_logged(sandbox: &Sandbox, test: &str, phase: &str) -> String {
    let output = sandbox.command(test, phase).output().expect("spawn child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success() && stdout.contains("test result: ok. 1 passed"),
        "child {test}/{phase} failed\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    );
    stderr
}

fn find_one(session: &Session, template: &[Attribute]) -> ObjectHandle {
    let found = session.find_objects(template).expect("C_FindObjects");
    assert_eq!(found.len(), 1, "{template:?}");
    found[0]
}

fn key(session: &Session, class: ObjectClass, label: &str) -> ObjectHandle {
    find_one(
        session,
        &[
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
        ],
    )
}

fn decrypts(session: &Session, label: &str) {
    let public = key(session, ObjectClass::PUBLIC_KEY, label);
    let private = key(session, ObjectClass::PRIVATE_KEY, label);
    let ciphertext = session
        .encrypt(&Mechanism::RsaPkcs, public, MESSAGE)
        .expect("C_Encrypt");
    let plain = session
        .decrypt(&Mechanism::RsaPkcs, private, &ciphertext)
        .expect("C_Decrypt");
    assert_eq!(plain, MESSAGE);
}

const DEVICE_ERROR: RvError = RvError::DeviceError;

/// Every use of a tampered object is CKR_DEVICE_ERROR; nothing of it comes out.
fn refused(session: &Session, object: ObjectHandle, kinds: &[AttributeType], what: &str) {
    for kind in kinds {
        assert_eq!(
            rv_of(session.get_attributes(object, &[*kind])),
            DEVICE_ERROR,
            "{what}: C_GetAttributeValue {kind:?}"
        );
    }
}

#[test]
fn edited_rows_are_found_and_the_other_objects_keep_working() {
    const TEST: &str = "edited_rows_are_found_and_the_other_objects_keep_working";
    match child_phase(TEST).as_deref() {
        Some("setup") => {
            let token = Token::new();
            let session = token.user();
            for label in ["intact", "sensitive", "extractable", "reclass", "modulus"] {
                gen_rsa(&session, 2048, label, true);
            }
            for label in ["deleted", "kept"] {
                session
                    .create_object(&data_object(label, b"private data", true, true))
                    .expect("C_CreateObject");
            }
        }
        Some("delete") => {
            let token = Token::existing();
            let session = token.user();
            let deleted = find_one(&session, &[Attribute::Label(b"deleted".to_vec())]);
            session.destroy_object(deleted).expect("C_DestroyObject");
        }
        Some("check") => {
            let token = Token::existing();
            let session = token.user();
            decrypts(&session, "intact");
            let kept = find_one(&session, &[Attribute::Label(b"kept".to_vec())]);
            assert_eq!(
                bytes_attr(&session, kept, AttributeType::Value),
                b"private data"
            );
            for label in ["sensitive", "extractable"] {
                let private = key(&session, ObjectClass::PRIVATE_KEY, label);
                refused(
                    &session,
                    private,
                    &[AttributeType::PrivateExponent, AttributeType::Sensitive],
                    label,
                );
                assert_eq!(
                    rv_of(session.decrypt_init(&Mechanism::RsaPkcs, private)),
                    DEVICE_ERROR,
                    "{label}: C_DecryptInit"
                );
                // Its public half was not touched.
                let public = key(&session, ObjectClass::PUBLIC_KEY, label);
                bytes_attr(&session, public, AttributeType::Modulus);
            }
            let reclassed = key(&session, ObjectClass::DATA, "reclass");
            refused(
                &session,
                reclassed,
                &[AttributeType::Value, AttributeType::PrivateExponent],
                "reclass",
            );
            let swapped = key(&session, ObjectClass::PUBLIC_KEY, "modulus");
            refused(&session, swapped, &[AttributeType::Modulus], "modulus");
            assert_eq!(
                rv_of(session.encrypt(&Mechanism::RsaPkcs, swapped, MESSAGE)),
                DEVICE_ERROR
            );
            let back = find_one(&session, &[Attribute::Label(b"deleted".to_vec())]);
            refused(&session, back, &[AttributeType::Value], "re-inserted");
            // A tampered object can be destroyed; the others still work afterwards.
            session
                .destroy_object(back)
                .expect("destroy the re-inserted row");
            decrypts(&session, "intact");
            assert_eq!(
                bytes_attr(&session, kept, AttributeType::Value),
                b"private data"
            );
        }
        Some("after-cleanup") => {
            let token = Token::existing();
            let session = token.user();
            decrypts(&session, "intact");
            assert!(find_by_label(&session, "deleted").is_empty());
        }
        Some(other) => panic!("unknown phase {other}"),
        None => {
            let sandbox = Sandbox::new();
            sandbox.run(TEST, "setup");
            let conn = open_db(sandbox.path());
            let deleted = object_id(&conn, "deleted", CKO_DATA);
            let object_row: (i64, Vec<u8>, i64, i64) = conn
                .query_row(
                    "SELECT generation, mac, mac_seal, in_set FROM objects WHERE id = ?1",
                    [deleted],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .unwrap();
            let mut stmt = conn
                .prepare("SELECT type, sealed, value FROM attributes WHERE object_id = ?1")
                .unwrap();
            let attribute_rows: Vec<(i64, i64, Vec<u8>)> = stmt
                .query_map([deleted], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            drop(stmt);
            drop(conn);
            sandbox.run(TEST, "delete");

            let conn = open_db(sandbox.path());
            let id = |label, class| object_id(&conn, label, class);
            set_value(
                &conn,
                id("sensitive", CKO_PRIVATE_KEY),
                CKA_SENSITIVE,
                &[CK_FALSE],
            );
            set_value(
                &conn,
                id("extractable", CKO_PRIVATE_KEY),
                CKA_EXTRACTABLE,
                &[CK_TRUE],
            );
            set_value(
                &conn,
                id("reclass", CKO_PRIVATE_KEY),
                CKA_CLASS,
                &ulong(CKO_DATA),
            );
            let other_modulus: Vec<u8> = conn
                .query_row(
                    "SELECT value FROM attributes WHERE object_id = ?1 AND type = ?2",
                    [id("intact", CKO_PUBLIC_KEY), CKA_MODULUS as i64],
                    |r| r.get(0),
                )
                .unwrap();
            set_value(
                &conn,
                id("modulus", CKO_PUBLIC_KEY),
                CKA_MODULUS,
                &other_modulus,
            );
            conn.execute(
                "INSERT INTO objects (id, generation, mac, mac_seal, in_set)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![
                    deleted,
                    object_row.0,
                    object_row.1,
                    object_row.2,
                    object_row.3
                ],
            )
            .unwrap();
            for (ty, sealed, value) in &attribute_rows {
                conn.execute(
                    "INSERT INTO attributes (object_id, type, sealed, value) VALUES (?1, ?2, ?3, ?4)",
                    rusqlite::params![deleted, ty, sealed, value],
                )
                .unwrap();
            }
            // Other processes notice a commit by the change counter.
            conn.execute("UPDATE token SET change_counter = change_counter + 1", [])
                .unwrap();
            drop(conn);

            let log = run_logged(&sandbox, TEST, "check");
            for what in [
                "fails its integrity check",
                "is not in the token's object set",
            ] {
                assert!(log.contains(what), "log names the problem ({what}):\n{log}");
            }
            sandbox.run(TEST, "after-cleanup");
        }
    }
}

/// The fixture (tests/fixtures/README.md) is a format-2 store of the previous release.
#[test]
fn a_store_of_the_previous_release_is_upgraded_in_place() {
    const TEST: &str = "a_store_of_the_previous_release_is_upgraded_in_place";
    match child_phase(TEST).as_deref() {
        Some("open") | Some("again") => {
            let p11 = initialized();
            let slot = slot_by_label(&p11, "fixture").expect("fixture token listed");
            let session = p11.open_rw_session(slot).expect("C_OpenSession");
            // A public object works before any login.
            let data = find_one(&session, &[Attribute::Label(b"fixture-data".to_vec())]);
            assert_eq!(
                bytes_attr(&session, data, AttributeType::Value),
                b"public data\n"
            );
            session
                .login(cryptoki::session::UserType::User, Some(&pin(USER_PIN)))
                .expect("user login with the fixture's PIN");
            decrypts(&session, "fixture-rsa");
            assert_eq!(
                bytes_attr(&session, data, AttributeType::Value),
                b"public data\n"
            );
        }
        Some(other) => panic!("unknown phase {other}"),
        None => {
            let sandbox = sandbox_with_fixture("format2-token");
            assert_eq!(store_format(&sandbox), 2, "fixture is format 2");
            sandbox.run(TEST, "open");
            assert_eq!(store_format(&sandbox), 5);
            let conn = open_db(sandbox.path());
            let untagged: i64 = conn
                .query_row(
                    "SELECT count(*) FROM objects WHERE mac IS NULL OR mac_seal <> 1",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(untagged, 0, "the first login tagged every object");
            let record_tag: Option<Vec<u8>> = conn
                .query_row("SELECT mac FROM token", [], |r| r.get(0))
                .unwrap();
            assert_eq!(record_tag.map(|t| t.len()), Some(32));
            drop(conn);
            // A second process logs in (the re-wrapped key) and finds everything intact.
            sandbox.run(TEST, "again");
            // Stripping the tags now does not pass for an old store.
            let conn = open_db(sandbox.path());
            conn.execute_batch(
                "UPDATE token SET mac = NULL, change_counter = change_counter + 1;
                 UPDATE objects SET mac = NULL, mac_seal = 0;",
            )
            .unwrap();
            drop(conn);
            let output = sandbox.command(TEST, "again").output().unwrap();
            assert!(
                !output.status.success(),
                "login must fail on a stripped store"
            );
            assert!(
                String::from_utf8_lossy(&output.stderr).contains("integrity check"),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}

/// A sandbox whose token directory holds `tests/fixtures/<name>/token-0.db`.
fn sandbox_with_fixture(name: &str) -> Sandbox {
    let sandbox = Sandbox::new();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .join("token-0.db");
    std::fs::copy(&fixture, db_path(sandbox.path())).expect("copy fixture");
    sandbox
}

/// The store format of the sandbox's token file (SQLite's user_version).
fn store_format(sandbox: &Sandbox) -> i64 {
    open_db(sandbox.path())
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

/// A R/W session on the fixture token (the library stays loaded while the first half lives).
fn fixture_session() -> (cryptoki::context::Pkcs11, Session) {
    let p11 = initialized();
    let slot = slot_by_label(&p11, "fixture").expect("fixture token listed");
    let session = p11.open_rw_session(slot).expect("C_OpenSession");
    (p11, session)
}

/// The epoch (which a token key rotation changes) and each PIN record's flags.
fn epoch_and_pin_flags(sandbox: &Sandbox) -> (i64, Vec<u32>) {
    let conn = open_db(sandbox.path());
    let epoch = conn
        .query_row("SELECT epoch FROM token", [], |r| r.get(0))
        .unwrap();
    let flags = conn
        .prepare("SELECT flags FROM pins ORDER BY user_type")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|f| f.unwrap())
        .collect();
    (epoch, flags)
}

/// `tests/fixtures/format4-token` is a format-4 store of the release before PIN records of
/// the escrow form (format 5). It opens as it is; each PIN's record gains its escrow key at
/// its next login; C_SetPIN rotates the token key once both records have it, and before
/// that wraps the same key (so nobody loses access), saying why.
#[test]
fn a_format_4_store_gains_escrow_records_and_then_rotates_at_c_setpin() {
    const TEST: &str = "a_format_4_store_gains_escrow_records_and_then_rotates_at_c_setpin";
    use cryptoki::session::UserType;
    const NEW_PIN: &str = "user-secret-5678";
    const NEWER_PIN: &str = "user-secret-9012";
    let uses_every_key = |session: &Session| {
        decrypts(session, "fixture-rsa");
        let aes = key(session, ObjectClass::SECRET_KEY, "fixture-aes");
        let iv = [7u8; 16];
        let ciphertext = session
            .encrypt(&Mechanism::AesCbcPad(iv), aes, MESSAGE)
            .expect("C_Encrypt with the fixture's AES key");
        let plain = session
            .decrypt(&Mechanism::AesCbcPad(iv), aes, &ciphertext)
            .expect("C_Decrypt with the fixture's AES key");
        assert_eq!(plain, MESSAGE);
    };
    match child_phase(TEST).as_deref() {
        Some(phase @ ("set-pin" | "set-pin-again")) => {
            let (old, new) = match phase {
                "set-pin" => (USER_PIN, NEW_PIN),
                _ => (NEW_PIN, NEWER_PIN),
            };
            let (_p11, session) = fixture_session();
            session
                .login(UserType::User, Some(&pin(old)))
                .expect("user login");
            uses_every_key(&session);
            session.set_pin(&pin(old), &pin(new)).expect("C_SetPIN");
            // Still logged in, under whichever token key the store now has.
            uses_every_key(&session);
        }
        Some("so-login") => {
            let (_p11, session) = fixture_session();
            session
                .login(UserType::So, Some(&pin(SO_PIN)))
                .expect("SO login");
        }
        Some("check") => {
            let (_p11, session) = fixture_session();
            expect_rv(
                session.login(UserType::User, Some(&pin(NEW_PIN))),
                RvError::PinIncorrect,
            );
            session
                .login(UserType::User, Some(&pin(NEWER_PIN)))
                .expect("user login with the newest PIN");
            uses_every_key(&session);
            session.logout().unwrap();
            session
                .login(UserType::So, Some(&pin(SO_PIN)))
                .expect("the SO's record followed the new key");
        }
        Some(other) => panic!("unknown phase {other}"),
        None => {
            let sandbox = sandbox_with_fixture("format4-token");
            assert_eq!(store_format(&sandbox), 4, "fixture is format 4");
            let (epoch, flags) = epoch_and_pin_flags(&sandbox);
            // SO first: PIN_COUNTER_MAC, no PIN_ESCROW.
            assert_eq!(flags, [2, 2], "fixture records");

            let log = run_logged(&sandbox, TEST, "set-pin");
            assert_eq!(store_format(&sandbox), 5);
            let (after, flags) = epoch_and_pin_flags(&sandbox);
            assert_eq!(
                flags,
                [2, 2 | 4],
                "the user's new record has its escrow key"
            );
            assert_eq!(
                after, epoch,
                "not rotated while the SO's record has no escrow key"
            );
            assert!(
                log.contains("wraps the same token key") && log.contains("rotate-token-key"),
                "the log says why: {log}"
            );

            sandbox.run(TEST, "so-login");
            let (after, flags) = epoch_and_pin_flags(&sandbox);
            assert_eq!(
                flags,
                [2 | 4, 2 | 4],
                "the SO's login gave it its escrow key"
            );
            assert_eq!(after, epoch);

            let log = run_logged(&sandbox, TEST, "set-pin-again");
            let (after, _) = epoch_and_pin_flags(&sandbox);
            assert_ne!(after, epoch, "C_SetPIN rotated the token key");
            assert!(!log.contains("wraps the same token key"), "{log}");
            sandbox.run(TEST, "check");
        }
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn token_files_are_owner_only_whatever_the_umask() {
    const TEST: &str = "token_files_are_owner_only_whatever_the_umask";
    match child_phase(TEST).as_deref() {
        Some("make") => {
            let token = Token::new();
            let session = token.user();
            gen_rsa(&session, 2048, "k", true);
            // -wal and -shm exist while the module has the store open.
            let dir = sandbox_dir().join("fresh/tokens");
            for name in [
                "token-0.db",
                "token-0.db-wal",
                "token-0.db-shm",
                ".init.lock",
            ] {
                assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
            }
        }
        Some(other) => panic!("unknown phase {other}"),
        None => {
            let sandbox = Sandbox::new();
            let fresh = sandbox.path().join("fresh/tokens");
            let config = sandbox.path().join("ferrohsm.toml");
            std::fs::write(&config, format!("token_dir = \"{}\"\n", fresh.display())).unwrap();
            // The child runs under umask 000, which would make files 0666 and dirs 0777.
            let template = sandbox.command(TEST, "make");
            let mut command = Command::new("sh");
            command
                .arg("-c")
                .arg("umask 000; exec \"$0\" \"$@\"")
                .arg(template.get_program())
                .args(template.get_args());
            for (key, value) in template.get_envs() {
                if let Some(value) = value {
                    command.env(key, value);
                }
            }
            let output = command.output().unwrap();
            assert!(
                output.status.success()
                    && String::from_utf8_lossy(&output.stdout).contains("1 passed"),
                "{}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            assert_eq!(mode(&fresh), 0o700);
            assert_eq!(mode(fresh.parent().unwrap()), 0o700);
            let backup = sandbox.path().join("backup.db");
            let (ok, text) = run_util(
                &sandbox,
                &[
                    "backup",
                    "--token",
                    TOKEN_LABEL,
                    "--out",
                    backup.to_str().unwrap(),
                ],
            );
            assert!(ok, "{text}");
            assert_eq!(mode(&backup), 0o600);
        }
    }
}

#[test]
fn an_unsafe_token_directory_or_a_symlinked_token_file_is_refused() {
    let sandbox = Sandbox::new();
    let dir = sandbox.token_dir();
    let (ok, text) = run_util(&sandbox, &["slots"]);
    assert!(ok, "{text}");

    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (ok, text) = run_util(&sandbox, &["slots"]);
    assert!(!ok, "a world-writable token_dir is refused: {text}");
    assert!(text.contains("chmod go-w"), "{text}");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o770)).unwrap();
    let (ok, text) = run_util(&sandbox, &["slots"]);
    assert!(!ok && text.contains("chmod go-w"), "group-writable: {text}");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();

    // Another owner (the tests run as root on CI, where chown works).
    if std::os::unix::fs::chown(&dir, Some(4242), None).is_ok() {
        let (ok, text) = run_util(&sandbox, &["slots"]);
        assert!(!ok, "a token_dir of another user is refused: {text}");
        assert!(text.contains("chown"), "{text}");
        std::os::unix::fs::chown(&dir, Some(current_owner(sandbox.path())), None).unwrap();
    } else {
        eprintln!("skipping the other-owner case: chown not permitted");
    }

    // A token file that is a symlink (to a real store elsewhere) is not followed.
    let elsewhere = tempfile::tempdir().unwrap();
    let real = elsewhere.path().join("token-7.db");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format2-token/token-0.db"),
        &real,
    )
    .unwrap();
    std::os::unix::fs::symlink(&real, dir.join("token-0.db")).unwrap();
    let (ok, text) = run_util(&sandbox, &["slots"]);
    assert!(ok, "{text}");
    assert!(text.contains("symbolic link"), "{text}");
    assert!(
        !text.contains("fixture"),
        "the linked token is not listed: {text}"
    );
    let version: i64 = rusqlite::Connection::open(&real)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, 2, "the linked file was not touched");
}

fn current_owner(path: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().uid()
}
