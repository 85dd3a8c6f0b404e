//! `ferrohsm-util rotate-token-key` (issue 12): after a PIN change, no old PIN opens keys
//! created afterwards. Each test drives the built module (through cryptoki) and the built
//! ferrohsm-util in separate processes, as users do, on the sandbox's token directory or,
//! with FERROHSM_TEST_STORE_URL, on PostgreSQL (the suite is in test.sh's `pg_suites`).
//! ferrohsm only: these test its store.

#[macro_use]
mod common;

use common::*;
use cryptoki::error::RvError;
use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use std::collections::BTreeMap;
use std::path::Path;

const NEW_USER_PIN: &str = "user-secret-changed-5678";
const PLAINTEXT: &[u8] = b"sealed under the token key, opened after the rotation";
const IV: [u8; 16] = [7; 16];
/// CKA_LABEL and CKA_VALUE, as stored in the `attributes` rows.
const CKA_LABEL: u64 = 0x03;
const CKA_VALUE: u64 = 0x11;

fn skip_unless_ferrohsm(test: &str) -> bool {
    if !is_ferrohsm() {
        eprintln!("SKIPPED {test}: ferrohsm's store and CLI");
        return true;
    }
    false
}

// ---------------------------------------------------------------------------------------
// The store as someone with access to it sees it (SQLite file or PostgreSQL schema)
// ---------------------------------------------------------------------------------------

/// The attribute type column of `attributes` (named differently in the two backends).
fn type_column() -> &'static str {
    if on_postgres() {
        "attr_type"
    } else {
        "type"
    }
}

/// A bytea/BLOB value as `store_sql` prints it (PostgreSQL `\x..`, SQLite plain hex).
fn blob(field: &str) -> Vec<u8> {
    hex::decode(field.trim_start_matches("\\x")).expect("hex blob")
}

/// An SQL literal of `bytes` for the backend.
fn blob_literal(bytes: &[u8]) -> String {
    if on_postgres() {
        format!("decode('{}', 'hex')", hex::encode(bytes))
    } else {
        format!("X'{}'", hex::encode(bytes))
    }
}

fn sql(sandbox: &Sandbox, query: &str) -> Vec<Vec<String>> {
    pg::store_sql(sandbox.path(), query)
        .lines()
        .map(|line| line.split('|').map(str::to_string).collect())
        .collect()
}

/// Every sealed value in the store, by (object id, attribute type), with its seal code
/// (1 token key, 2 public-object key).
fn sealed_values(sandbox: &Sandbox) -> BTreeMap<(i64, u64), (i64, Vec<u8>)> {
    let ty = type_column();
    sql(
        sandbox,
        &format!("SELECT object_id, {ty}, sealed, value FROM attributes WHERE sealed <> 0"),
    )
    .into_iter()
    .map(|row| {
        (
            (row[0].parse().unwrap(), row[1].parse().unwrap()),
            (row[2].parse().unwrap(), blob(&row[3])),
        )
    })
    .collect()
}

/// The store id of the object labelled `label` that holds a sealed CKA_VALUE, with it.
fn sealed_value_of(sandbox: &Sandbox, label: &str) -> (i64, Vec<u8>) {
    let ty = type_column();
    let rows = sql(
        sandbox,
        &format!(
            "SELECT a.object_id, a.value FROM attributes a WHERE a.{ty} = {CKA_VALUE} \
             AND a.sealed = 1 AND a.object_id IN (SELECT l.object_id FROM attributes l \
             WHERE l.{ty} = {CKA_LABEL} AND l.value = {})",
            blob_literal(label.as_bytes())
        ),
    );
    assert_eq!(rows.len(), 1, "one sealed CKA_VALUE labelled {label:?}");
    (rows[0][0].parse().unwrap(), blob(&rows[0][1]))
}

/// A PIN record as stored (what an old copy of the store holds).
#[derive(Clone, Debug, PartialEq)]
struct PinRow {
    user_type: i64,
    kdf: (u32, u32, u32),
    salt: Vec<u8>,
    flags: u32,
    wrapped_key: Vec<u8>,
    counter_mac: Vec<u8>,
    failures: u32,
    attempts: i64,
    success_at: i64,
}

fn pin_rows(sandbox: &Sandbox) -> Vec<PinRow> {
    sql(
        sandbox,
        "SELECT user_type, kdf_memory_kib, kdf_iterations, kdf_parallelism, salt, flags, \
         wrapped_key, counter_mac, failures, attempts, success_at FROM pins ORDER BY user_type",
    )
    .into_iter()
    .map(|r| PinRow {
        user_type: r[0].parse().unwrap(),
        kdf: (
            r[1].parse().unwrap(),
            r[2].parse().unwrap(),
            r[3].parse().unwrap(),
        ),
        salt: blob(&r[4]),
        flags: r[5].parse().unwrap(),
        wrapped_key: blob(&r[6]),
        counter_mac: blob(&r[7]),
        failures: r[8].parse().unwrap(),
        attempts: r[9].parse().unwrap(),
        success_at: r[10].parse().unwrap(),
    })
    .collect()
}

/// Puts `row` back into the store in place of the current record of its user: the old
/// copy's PIN record in the current store.
fn put_pin_row(sandbox: &Sandbox, row: &PinRow) {
    pg::store_sql(
        sandbox.path(),
        &format!(
            "UPDATE pins SET kdf_memory_kib = {}, kdf_iterations = {}, kdf_parallelism = {}, \
             salt = {}, flags = {}, wrapped_key = {}, counter_mac = {}, failures = {}, \
             attempts = {}, success_at = {} WHERE user_type = {}",
            row.kdf.0,
            row.kdf.1,
            row.kdf.2,
            blob_literal(&row.salt),
            row.flags,
            blob_literal(&row.wrapped_key),
            blob_literal(&row.counter_mac),
            row.failures,
            row.attempts,
            row.success_at,
            row.user_type
        ),
    );
}

/// What an attacker with a copy of the store and the PIN it had then computes offline,
/// with ferrohsm's own unsealing code: the token key that copy's PIN record wraps.
fn token_key_of(row: &PinRow, pin: &str) -> ferrohsm::storage::seal::TokenKey {
    use ferrohsm::storage::seal;
    let kdf = seal::KdfParams {
        memory_kib: row.kdf.0,
        iterations: row.kdf.1,
        parallelism: row.kdf.2,
    };
    let pin_key = seal::derive_pin_key(pin.as_bytes(), &row.salt, kdf, None).unwrap();
    // The user type is the tag of the wrapped key (0 the SO's, 1 the user's).
    seal::unwrap_token_key(&pin_key, &row.wrapped_key, row.user_type as u8, row.flags)
        .expect("the PIN of the copy opens the copy's record")
}

/// Whether `key` opens the sealed CKA_VALUE `blob` of stored object `id`.
fn opens(key: &ferrohsm::storage::seal::TokenKey, id: i64, blob: &[u8]) -> bool {
    ferrohsm::storage::seal::unseal_attribute(key, id, CKA_VALUE as _, blob).is_ok()
}

fn rotate(sandbox: &Sandbox, so_pin: &str, user_pin: &str) -> (bool, String) {
    run_util(
        sandbox,
        &[
            "rotate-token-key",
            "--token",
            TOKEN_LABEL,
            "--so-pin",
            so_pin,
            "--pin",
            user_pin,
        ],
    )
}

/// Runs ferrohsm-util on the sandbox with extra environment variables and `stdin`, as a
/// script would; returns (success, stdout + stderr).
fn run_util_input(
    sandbox: &Sandbox,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: &str,
) -> (bool, String) {
    use std::io::Write;
    let mut child = util_command(&sandbox.path().join("ferrohsm.toml"))
        .envs(env.iter().copied())
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run ferrohsm-util");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    util_result(child.wait_with_output().unwrap())
}

/// The token's slot id and serial, as `ferrohsm-util slots` lists them.
fn slot_and_serial(sandbox: &Sandbox) -> (String, String) {
    let (ok, out) = run_util(sandbox, &["slots"]);
    assert!(ok, "{out}");
    let line = out
        .lines()
        .find(|l| l.contains(&format!("token \"{TOKEN_LABEL}\"")))
        .unwrap_or_else(|| panic!("the token in {out}"));
    let slot = line
        .trim_start_matches("slot ")
        .split(':')
        .next()
        .unwrap()
        .to_string();
    let serial = line.rsplit("serial ").next().unwrap().trim().to_string();
    (slot, serial)
}

// ---------------------------------------------------------------------------------------
// Keys (token objects) and their use
// ---------------------------------------------------------------------------------------

fn vendor(mechanism: cryptoki_sys::CK_MECHANISM_TYPE) -> Mechanism<'static> {
    Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(
        vendor_mechanism(mechanism),
        None,
    ))
}

fn gen_aes(session: &Session, label: &str) -> ObjectHandle {
    session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
                Attribute::ValueLen(32.into()),
                Attribute::Label(label.as_bytes().to_vec()),
            ],
        )
        .expect("C_GenerateKey AES")
}

fn gen_token_sm2(session: &Session, label: &str) {
    let label = Attribute::Label(label.as_bytes().to_vec());
    session
        .generate_key_pair(
            &vendor(CKM_SM2_KEY_PAIR_GEN),
            &[
                Attribute::Token(true),
                Attribute::Encrypt(true),
                Attribute::Verify(true),
                label.clone(),
            ],
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Decrypt(true),
                Attribute::Sign(true),
                label,
            ],
        )
        .expect("CKM_SM2_KEY_PAIR_GEN");
}

fn key(session: &Session, label: &str, class: ObjectClass) -> ObjectHandle {
    let found = session
        .find_objects(&[
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .expect("C_FindObjects");
    assert_eq!(found.len(), 1, "one {class:?} labelled {label:?}");
    found[0]
}

fn aes_encrypt(session: &Session, key: ObjectHandle) -> Vec<u8> {
    session
        .encrypt(&Mechanism::AesCbcPad(IV), key, PLAINTEXT)
        .expect("AES encrypt")
}

fn aes_decrypt(session: &Session, key: ObjectHandle, ciphertext: &[u8]) -> Vec<u8> {
    session
        .decrypt(&Mechanism::AesCbcPad(IV), key, ciphertext)
        .expect("AES decrypt")
}

fn save(name: &str, bytes: &[u8]) {
    std::fs::write(sandbox_dir().join(name), bytes).unwrap();
}

fn load(name: &str) -> Vec<u8> {
    std::fs::read(sandbox_dir().join(name)).unwrap()
}

/// Every object the user sees.
fn object_count(session: &Session) -> usize {
    session.find_objects(&[]).expect("C_FindObjects").len()
}

/// RSA, SM2 and AES keys (and a public data object) made before the rotation, and
/// ciphertexts made with them.
fn make_keys_and_ciphertexts(token: &Token) {
    let session = token.user();
    let rsa = gen_rsa(&session, 2048, "rsa", true);
    gen_token_sm2(&session, "sm2");
    let aes = gen_aes(&session, "aes");
    session
        .create_object(&data_object("public-data", b"clear", true, false))
        .expect("public data object");
    save(
        "rsa.bin",
        &session
            .encrypt(&Mechanism::RsaPkcs, rsa.public, PLAINTEXT)
            .expect("RSA encrypt"),
    );
    let sm2_public = key(&session, "sm2", ObjectClass::PUBLIC_KEY);
    save(
        "sm2.bin",
        &session
            .encrypt(&vendor(CKM_SM2_CIPHER_DER), sm2_public, PLAINTEXT)
            .expect("SM2 encrypt"),
    );
    save("aes.bin", &aes_encrypt(&session, aes));
    save("count", object_count(&session).to_string().as_bytes());
}

/// Every key made by `make_keys_and_ciphertexts` decrypts its ciphertext and signs.
fn check_keys_and_ciphertexts(session: &Session) {
    let rsa = key(session, "rsa", ObjectClass::PRIVATE_KEY);
    let rsa_public = key(session, "rsa", ObjectClass::PUBLIC_KEY);
    let plain = session
        .decrypt(&Mechanism::RsaPkcs, rsa, &load("rsa.bin"))
        .expect("RSA decrypt after the rotation");
    assert_eq!(plain, PLAINTEXT);
    let signature = session
        .sign(&Mechanism::Sha256RsaPkcs, rsa, PLAINTEXT)
        .expect("RSA sign after the rotation");
    session
        .verify(&Mechanism::Sha256RsaPkcs, rsa_public, PLAINTEXT, &signature)
        .expect("RSA signature verifies");
    let sm2 = key(session, "sm2", ObjectClass::PRIVATE_KEY);
    let sm2_public = key(session, "sm2", ObjectClass::PUBLIC_KEY);
    let plain = session
        .decrypt(&vendor(CKM_SM2_CIPHER_DER), sm2, &load("sm2.bin"))
        .expect("SM2 decrypt after the rotation");
    assert_eq!(plain, PLAINTEXT);
    let signature = session
        .sign(&vendor(CKM_SM3_SM2), sm2, PLAINTEXT)
        .expect("SM2 sign after the rotation");
    session
        .verify(&vendor(CKM_SM3_SM2), sm2_public, PLAINTEXT, &signature)
        .expect("SM2 signature verifies");
    let aes = key(session, "aes", ObjectClass::SECRET_KEY);
    assert_eq!(aes_decrypt(session, aes, &load("aes.bin")), PLAINTEXT);
    let count: usize = String::from_utf8(load("count")).unwrap().parse().unwrap();
    assert_eq!(object_count(session), count, "objects after the rotation");
}

// ---------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------

/// Every key still works after the rotation, in a new process, with both PINs as they
/// were; every value sealed under the token key was sealed again (the blobs differ), the
/// public-object key's are as they were, and both PIN records keep salt, cost and flags.
#[test]
fn rotation_keeps_every_key_and_reseals_every_private_secret() {
    const TEST: &str = "rotation_keeps_every_key_and_reseals_every_private_secret";
    if skip_unless_ferrohsm(TEST) {
        return;
    }
    match child_phase(TEST).as_deref() {
        None => {
            let sandbox = Sandbox::new();
            sandbox.run(TEST, "setup");
            let sealed_before = sealed_values(&sandbox);
            let pins_before = pin_rows(&sandbox);
            assert!(
                sealed_before
                    .values()
                    .filter(|(seal, _)| *seal == 1)
                    .count()
                    >= 3,
                "RSA, SM2 and AES secrets sealed under the token key: {sealed_before:?}"
            );
            let (ok, out) = rotate(&sandbox, SO_PIN, USER_PIN);
            assert!(ok, "rotate-token-key failed: {out}");
            assert!(out.contains("rotated the token key"), "{out}");
            let sealed_after = sealed_values(&sandbox);
            assert_eq!(
                sealed_after.keys().collect::<Vec<_>>(),
                sealed_before.keys().collect::<Vec<_>>(),
                "the same sealed attributes"
            );
            for (at, (seal, value)) in &sealed_before {
                let (seal_after, value_after) = &sealed_after[at];
                assert_eq!(seal, seal_after, "seal of {at:?}");
                match seal {
                    1 => assert_ne!(value, value_after, "{at:?} sealed again"),
                    _ => assert_eq!(value, value_after, "{at:?} under the public-object key"),
                }
            }
            let pins_after = pin_rows(&sandbox);
            assert_eq!(pins_after.len(), 2, "both PIN records");
            for (before, after) in pins_before.iter().zip(&pins_after) {
                assert_eq!(
                    (before.user_type, before.kdf, &before.salt, before.flags),
                    (after.user_type, after.kdf, &after.salt, after.flags),
                    "same PIN, same record parameters"
                );
                assert_ne!(before.wrapped_key, after.wrapped_key, "re-wrapped");
                assert_ne!(before.counter_mac, after.counter_mac, "counter MAC re-made");
            }
            let (ok, log) = run_util(&sandbox, &["audit", "--token", TOKEN_LABEL]);
            assert!(ok && log.contains("rotate-token-key"), "audit log: {log}");
            sandbox.run(TEST, "check");
        }
        Some("setup") => make_keys_and_ciphertexts(&Token::new()),
        Some("check") => {
            let token = Token::existing();
            let so = token.rw();
            so.login(UserType::So, Some(&pin(SO_PIN)))
                .expect("SO PIN after the rotation");
            so.logout().unwrap();
            let session = token.user();
            check_keys_and_ciphertexts(&session);
            // Keys made after the rotation work as well.
            let aes = gen_aes(&session, "after");
            let ciphertext = aes_encrypt(&session, aes);
            assert_eq!(aes_decrypt(&session, aes, &ciphertext), PLAINTEXT);
        }
        Some(other) => panic!("unknown phase {other}"),
    }
}

/// The security property. An attacker holds a copy of the store from before a PIN change
/// and the PIN it had then; that copy's PIN record gives the token key of then (shown
/// first, so the test proves its own attack works). C_SetPIN rotates the token key (the
/// SO's record follows through its escrow key), so a key created after the PIN change does
/// not open under it; nor, after `rotate-token-key`, a key created afterwards or a
/// re-sealed old one; and putting the old copy's PIN records into the current store does
/// not log in with the old PIN.
#[test]
fn an_old_pin_record_opens_nothing_stored_after_the_rotation() {
    const TEST: &str = "an_old_pin_record_opens_nothing_stored_after_the_rotation";
    if skip_unless_ferrohsm(TEST) {
        return;
    }
    match child_phase(TEST).as_deref() {
        None => {
            let sandbox = Sandbox::new();
            sandbox.run(TEST, "setup");
            // The attacker's copy: the PIN records as they were (USER_PIN).
            let old_pins = pin_rows(&sandbox);
            let old_user = pin_row(&sandbox, 1);
            let old_key = token_key_of(&old_user, USER_PIN);
            // The attack works on the copy: its record's key opens the key made before.
            let (before_id, before) = sealed_value_of(&sandbox, "before");
            assert!(
                opens(&old_key, before_id, &before),
                "the old PIN record's token key does not open the key sealed under it"
            );
            sandbox.run(TEST, "change-pin-and-make-between");
            // C_SetPIN rotated the token key (the SO's record followed through its escrow
            // key): the old record opens no key made after the PIN change.
            let (between_id, between) = sealed_value_of(&sandbox, "between");
            assert!(
                !opens(&old_key, between_id, &between),
                "the old PIN record opens a key made after C_SetPIN"
            );
            // The PINs on standard input, the SO's line first, as a script gives them.
            let (slot, _) = slot_and_serial(&sandbox);
            let (ok, out) = run_util_input(
                &sandbox,
                &["rotate-token-key", "--slot", &slot],
                &[],
                &format!("{SO_PIN}\n{NEW_USER_PIN}\n"),
            );
            assert!(ok, "rotate-token-key failed: {out}");
            sandbox.run(TEST, "make-after");
            let (after_id, after) = sealed_value_of(&sandbox, "after");
            assert!(
                !opens(&old_key, after_id, &after),
                "the old PIN record's token key opens a key made after the rotation"
            );
            let (between_id, between) = sealed_value_of(&sandbox, "between");
            assert!(
                !opens(&old_key, between_id, &between),
                "the old PIN record's token key opens a re-sealed key"
            );
            // The old copy's PIN records put into the current store.
            for row in &old_pins {
                put_pin_row(&sandbox, row);
            }
            sandbox.run(TEST, "attack");
        }
        Some("setup") => {
            gen_aes(&Token::new().user(), "before");
        }
        Some("change-pin-and-make-between") => change_pin_and_make_between(),
        Some("make-after") => {
            let token = Token::existing();
            let session = token.rw();
            session
                .login(UserType::User, Some(&pin(NEW_USER_PIN)))
                .expect("the new PIN after the rotation");
            let aes = gen_aes(&session, "after");
            save("after.bin", &aes_encrypt(&session, aes));
        }
        Some("attack") => {
            let token = Token::existing();
            let session = token.rw();
            // The old record's wrapped key opens (the old PIN is right for it) and gives
            // the old token key, but its counter MAC was made under that key at the old
            // epoch, and the rotation moved the epoch: the check of the counter MAC (which
            // binds the epoch) fails, so the login is refused as a tampered store
            // (CKR_DEVICE_ERROR) before any object is touched. Had it passed, the record's
            // tag (under the new key) would fail next, and the keys are sealed under a key
            // the old record does not wrap anyway (checked offline above).
            expect_rv(
                session.login(UserType::User, Some(&pin(USER_PIN))),
                RvError::DeviceError,
            );
            assert!(
                find_by_label(&session, "after").is_empty(),
                "the private key stays out of reach"
            );
        }
        Some(other) => panic!("unknown phase {other}"),
    }
}

/// A wrong PIN on rotate-token-key is counted like a wrong login and changes nothing
/// else; neither does a rotation whose store write fails (the transaction is rolled back,
/// CKR_DEVICE_ERROR). The token works as before after both.
#[test]
fn a_failed_rotation_changes_nothing() {
    const TEST: &str = "a_failed_rotation_changes_nothing";
    if skip_unless_ferrohsm(TEST) {
        return;
    }
    match child_phase(TEST).as_deref() {
        None => {
            let sandbox = Sandbox::new();
            sandbox.run(TEST, "setup");
            let sealed = sealed_values(&sandbox);
            let wrapped = |sandbox: &Sandbox| {
                pin_rows(sandbox)
                    .into_iter()
                    .map(|p| (p.user_type, p.wrapped_key))
                    .collect::<Vec<_>>()
            };
            let failures = |sandbox: &Sandbox| {
                pin_rows(sandbox)
                    .into_iter()
                    .map(|p| p.failures)
                    .collect::<Vec<_>>()
            };
            let pins = wrapped(&sandbox);

            let (ok, out) = rotate(&sandbox, "wrong-so-pin", USER_PIN);
            assert!(!ok, "a wrong SO PIN rotated: {out}");
            assert!(
                out.contains("CKR_PIN_INCORRECT") && out.contains("wrong SO PIN: 9 tries left"),
                "{out}"
            );
            assert!(out.contains("the token key was not rotated"), "{out}");
            assert_eq!(failures(&sandbox), [1, 0], "the SO's wrong PIN counted");

            let (ok, out) = rotate(&sandbox, SO_PIN, "wrong-user-pin");
            assert!(!ok, "a wrong user PIN rotated: {out}");
            assert!(
                out.contains("CKR_PIN_INCORRECT") && out.contains("wrong user PIN: 9 tries left"),
                "{out}"
            );
            assert_eq!(
                failures(&sandbox),
                [0, 1],
                "the user's wrong PIN counted (the SO's right one reset its counter)"
            );
            assert_eq!(sealed_values(&sandbox), sealed, "nothing re-sealed");
            assert_eq!(wrapped(&sandbox), pins, "nothing re-wrapped");

            // The store refuses the last write of the rotation (the PIN records): nothing
            // of it stays, not the re-sealed objects written before in the transaction.
            let fail_pin_rewrap = if on_postgres() {
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$; \
                 CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON pins \
                 FOR EACH ROW EXECUTE FUNCTION refuse();"
            } else {
                "CREATE TRIGGER refuse BEFORE INSERT ON pins \
                 BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;"
            };
            pg::store_sql(sandbox.path(), fail_pin_rewrap);
            let (ok, out) = rotate(&sandbox, SO_PIN, USER_PIN);
            assert!(!ok, "a rotation the store refused succeeded: {out}");
            assert!(out.contains("CKR_DEVICE_ERROR"), "{out}");
            assert!(out.contains("the token key was not rotated"), "{out}");
            assert_eq!(sealed_values(&sandbox), sealed, "nothing re-sealed");
            assert_eq!(wrapped(&sandbox), pins, "nothing re-wrapped");
            pg::store_sql(
                sandbox.path(),
                if on_postgres() {
                    "DROP TRIGGER refuse ON pins; DROP FUNCTION refuse();"
                } else {
                    "DROP TRIGGER refuse;"
                },
            );

            // An object changed outside ferrohsm is not blessed by a rotation: refused,
            // nothing changed.
            let relabel = |from: &str, to: &str| {
                pg::store_sql(
                    sandbox.path(),
                    &format!(
                        "UPDATE attributes SET value = {} WHERE {} = {CKA_LABEL} AND value = {}",
                        blob_literal(to.as_bytes()),
                        type_column(),
                        blob_literal(from.as_bytes())
                    ),
                );
            };
            relabel("aes", "edited");
            let (ok, out) = rotate(&sandbox, SO_PIN, USER_PIN);
            assert!(!ok, "a rotation blessed an edited object: {out}");
            assert!(
                out.contains("CKR_DEVICE_ERROR") && out.contains("fails its integrity check"),
                "{out}"
            );
            assert_eq!(sealed_values(&sandbox), sealed, "nothing re-sealed");
            assert_eq!(wrapped(&sandbox), pins, "nothing re-wrapped");
            relabel("edited", "aes");
            sandbox.run(TEST, "check");
        }
        Some("setup") => make_keys_and_ciphertexts(&Token::new()),
        Some("check") => {
            let token = Token::existing();
            let so = token.rw();
            so.login(UserType::So, Some(&pin(SO_PIN))).expect("SO PIN");
            so.logout().unwrap();
            check_keys_and_ciphertexts(&token.user());
        }
        Some(other) => panic!("unknown phase {other}"),
    }
}

/// A process logged in while another rotates: its next call finds the new epoch, which
/// ends its login (as a re-initialisation would); it cannot write a private object with
/// the old key, its key handles stay valid, and after logging in again (same PIN) its
/// keys work.
#[test]
fn another_process_login_ends_and_its_keys_survive() {
    const TEST: &str = "another_process_login_ends_and_its_keys_survive";
    if skip_unless_ferrohsm(TEST) {
        return;
    }
    match child_phase(TEST).as_deref() {
        None => {
            let sandbox = Sandbox::new();
            sandbox.run(TEST, "setup");
            let holder = start_holder(&sandbox, TEST, "holder");
            let (_, serial) = slot_and_serial(&sandbox);
            let (ok, out) = run_util_input(
                &sandbox,
                &["rotate-token-key", "--serial", &serial],
                &[("FERROHSM_SO_PIN", SO_PIN), ("FERROHSM_PIN", USER_PIN)],
                "",
            );
            assert!(ok, "rotate-token-key failed: {out}");
            finish_holder(&sandbox, holder);
        }
        Some("setup") => make_keys_and_ciphertexts(&Token::new()),
        Some("holder") => {
            let token = Token::existing();
            let session = token.user();
            let aes = key(&session, "aes", ObjectClass::SECRET_KEY);
            assert_eq!(aes_decrypt(&session, aes, &load("aes.bin")), PLAINTEXT);
            wait_for(&sandbox_dir().join("rotated"), &sandbox_dir().join("ready"));
            // The old key is gone with the login: no private object can be written.
            expect_rv(
                session.create_object(&data_object("stale", b"x", true, true)),
                RvError::UserNotLoggedIn,
            );
            session
                .login(UserType::User, Some(&pin(USER_PIN)))
                .expect("the same PIN logs in again");
            assert_eq!(
                aes_decrypt(&session, aes, &load("aes.bin")),
                PLAINTEXT,
                "the same handle, after the rotation"
            );
            check_keys_and_ciphertexts(&session);
        }
        Some(other) => panic!("unknown phase {other}"),
    }
}

/// C_InitPIN and C_SetPIN are token key rotations (the other PIN's record follows through
/// its escrow key): the replaced record's key opens nothing stored afterwards, the record
/// of the PIN that did not change opens everything, and the session that set the PIN stays
/// logged in under the new key (another C_InitPIN, keys used and made right after).
#[test]
fn c_initpin_and_c_setpin_rotate_and_keep_the_login() {
    const TEST: &str = "c_initpin_and_c_setpin_rotate_and_keep_the_login";
    const NEWEST_PIN: &str = "user-secret-newest-9012";
    if skip_unless_ferrohsm(TEST) {
        return;
    }
    match child_phase(TEST).as_deref() {
        None => {
            let sandbox = Sandbox::new();
            sandbox.run(TEST, "setup");
            let first_user = token_key_of(&pin_row(&sandbox, 1), USER_PIN);
            let (before_id, before) = sealed_value_of(&sandbox, "before");
            assert!(opens(&first_user, before_id, &before), "the attack works");

            sandbox.run(TEST, "init-pin");
            let second_user = token_key_of(&pin_row(&sandbox, 1), NEW_USER_PIN);
            let so = token_key_of(&pin_row(&sandbox, 0), SO_PIN);
            let (before_id, before) = sealed_value_of(&sandbox, "before");
            assert!(
                !opens(&first_user, before_id, &before),
                "re-sealed at C_InitPIN"
            );
            assert!(opens(&second_user, before_id, &before));
            assert!(opens(&so, before_id, &before), "the SO's record follows");

            sandbox.run(TEST, "set-pin");
            let so = token_key_of(&pin_row(&sandbox, 0), SO_PIN);
            for label in ["before", "after-init", "after-set"] {
                let (id, value) = sealed_value_of(&sandbox, label);
                assert!(
                    !opens(&first_user, id, &value),
                    "{label}: first user record"
                );
                assert!(
                    !opens(&second_user, id, &value),
                    "{label}: second user record"
                );
                assert!(opens(&so, id, &value), "{label}: the SO's record follows");
            }
            sandbox.run(TEST, "check");
        }
        Some("setup") => {
            gen_aes(&Token::new().user(), "before");
        }
        Some("init-pin") => {
            let token = Token::existing();
            let session = token.rw();
            session
                .login(UserType::So, Some(&pin(SO_PIN)))
                .expect("SO login");
            session
                .init_pin(&pin("user-secret-interim"))
                .expect("C_InitPIN");
            // Still the SO, with the new token key: a second C_InitPIN rotates again.
            session
                .init_pin(&pin(NEW_USER_PIN))
                .expect("C_InitPIN again, in the same login");
        }
        Some("set-pin") => {
            let token = Token::existing();
            let session = token.rw();
            session
                .login(UserType::User, Some(&pin(NEW_USER_PIN)))
                .expect("the PIN the SO set");
            let before = key(&session, "before", ObjectClass::SECRET_KEY);
            let ciphertext = aes_encrypt(&session, before);
            gen_aes(&session, "after-init");
            session
                .set_pin(&pin(NEW_USER_PIN), &pin(NEWEST_PIN))
                .expect("C_SetPIN");
            assert_eq!(aes_decrypt(&session, before, &ciphertext), PLAINTEXT);
            let after = gen_aes(&session, "after-set");
            let ciphertext = aes_encrypt(&session, after);
            assert_eq!(aes_decrypt(&session, after, &ciphertext), PLAINTEXT);
        }
        Some("check") => {
            let token = Token::existing();
            let session = token.rw();
            expect_rv(
                session.login(UserType::User, Some(&pin(NEW_USER_PIN))),
                RvError::PinIncorrect,
            );
            session
                .login(UserType::User, Some(&pin(NEWEST_PIN)))
                .expect("the newest PIN");
            for label in ["before", "after-init", "after-set"] {
                let aes = key(&session, label, ObjectClass::SECRET_KEY);
                let ciphertext = aes_encrypt(&session, aes);
                assert_eq!(
                    aes_decrypt(&session, aes, &ciphertext),
                    PLAINTEXT,
                    "{label}"
                );
            }
            session.logout().unwrap();
            session
                .login(UserType::So, Some(&pin(SO_PIN)))
                .expect("the SO PIN after both changes");
        }
        Some(other) => panic!("unknown phase {other}"),
    }
}

/// `pin_change_rotates_key = false` keeps the token key at C_SetPIN (what older releases
/// did): another process's login goes on, and the old record still opens a key made after
/// the change, the trade-off the README describes. With the default, that process's login
/// ends at its next call.
#[test]
fn pin_change_rotates_key_false_keeps_the_key_and_other_logins() {
    const TEST: &str = "pin_change_rotates_key_false_keeps_the_key_and_other_logins";
    if skip_unless_ferrohsm(TEST) {
        return;
    }
    match child_phase(TEST).as_deref() {
        None => {
            for rotates in [false, true] {
                let sandbox = Sandbox::new();
                if !rotates {
                    sandbox.write_config("pin_change_rotates_key = false\n");
                }
                sandbox.run(TEST, "setup");
                let old_user = pin_row(&sandbox, 1);
                let old_key = token_key_of(&old_user, USER_PIN);
                let holder = start_holder(
                    &sandbox,
                    TEST,
                    if rotates {
                        "holder-ends"
                    } else {
                        "holder-goes-on"
                    },
                );
                sandbox.run(TEST, "change-pin-and-make-between");
                finish_holder(&sandbox, holder);
                let (between_id, between) = sealed_value_of(&sandbox, "between");
                assert_eq!(
                    opens(&old_key, between_id, &between),
                    !rotates,
                    "the old record opens a key made after C_SetPIN only without rotation"
                );
            }
        }
        Some("setup") => {
            gen_aes(&Token::new().user(), "before");
        }
        Some("change-pin-and-make-between") => change_pin_and_make_between(),
        Some(phase @ ("holder-goes-on" | "holder-ends")) => {
            let token = Token::existing();
            let session = token.user();
            let before = key(&session, "before", ObjectClass::SECRET_KEY);
            let ciphertext = aes_encrypt(&session, before);
            wait_for(&sandbox_dir().join("rotated"), &sandbox_dir().join("ready"));
            let made = session.create_object(&data_object("after", b"x", true, true));
            if phase == "holder-goes-on" {
                made.expect("still logged in after another process's C_SetPIN");
                assert_eq!(aes_decrypt(&session, before, &ciphertext), PLAINTEXT);
            } else {
                expect_rv(made, RvError::UserNotLoggedIn);
            }
        }
        Some(other) => panic!("unknown phase {other}"),
    }
}

/// The PIN record of `user_type` (0 the SO's, 1 the user's) as stored.
fn pin_row(sandbox: &Sandbox, user_type: i64) -> PinRow {
    pin_rows(sandbox)
        .into_iter()
        .find(|row| row.user_type == user_type)
        .expect("PIN record")
}

/// A child phase: C_SetPIN of the user PIN (USER_PIN to NEW_USER_PIN), then an AES key
/// `between` made in the same session.
fn change_pin_and_make_between() {
    let token = Token::existing();
    let session = token.user();
    session
        .set_pin(&pin(USER_PIN), &pin(NEW_USER_PIN))
        .expect("C_SetPIN");
    gen_aes(&session, "between");
}

/// Starts `phase` of `test` as a process that holds a login, and returns once it signals
/// `ready` (see `wait_for`).
fn start_holder(sandbox: &Sandbox, test: &str, phase: &str) -> std::process::Child {
    let holder = sandbox
        .command(test, phase)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("holder");
    let ready = sandbox.path().join("ready");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !ready.exists() {
        assert!(std::time::Instant::now() < deadline, "holder not ready");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    holder
}

/// Tells the holder that the other process is done (`rotated`) and checks that its phase
/// passed.
fn finish_holder(sandbox: &Sandbox, holder: std::process::Child) {
    std::fs::write(sandbox.path().join("rotated"), "").unwrap();
    let out = holder.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("test result: ok. 1 passed"),
        "holder phase failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Signals `ready`, then waits until `done` exists.
fn wait_for(done: &Path, ready: &Path) {
    std::fs::write(ready, "").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while !done.exists() {
        assert!(std::time::Instant::now() < deadline, "no rotation in time");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Rounds of `a_rotation_killed_at_any_point_is_all_or_nothing`
/// (`FERROHSM_ROTATE_KILL_ROUNDS`, default 12: each round runs Argon2id four times).
fn rotate_kill_rounds() -> u32 {
    std::env::var("FERROHSM_ROTATE_KILL_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12)
}

/// ferrohsm-util rotate-token-key killed with SIGKILL at a random point of its run (PIN
/// checks, re-sealing, commit): the sealed values are then all as before or all sealed
/// again, never a mix, and both PINs log in and every key works.
#[test]
fn a_rotation_killed_at_any_point_is_all_or_nothing() {
    const TEST: &str = "a_rotation_killed_at_any_point_is_all_or_nothing";
    if skip_unless_ferrohsm(TEST) {
        return;
    }
    match child_phase(TEST).as_deref() {
        None => {
            let sandbox = Sandbox::new();
            sandbox.run(TEST, "setup");
            // A whole rotation's time, to spread the kills over it.
            let started = std::time::Instant::now();
            let (ok, out) = rotate(&sandbox, SO_PIN, USER_PIN);
            assert!(ok, "rotate-token-key failed: {out}");
            let whole = started.elapsed();
            let mut seed = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos();
            eprintln!("kill seed {seed}, a rotation takes {whole:?}");
            let (mut rotated, mut kept) = (0, 0);
            for round in 0..rotate_kill_rounds() {
                let before = sealed_values(&sandbox);
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                // Mostly past the PIN checks, where the transaction runs.
                let delay = whole.mul_f64(0.4 + f64::from(seed % 1000) / 1000.0 * 0.8);
                let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ferrohsm-util"))
                    .env("FERROHSM_CONF", sandbox.path().join("ferrohsm.toml"))
                    .args(["rotate-token-key", "--token", TOKEN_LABEL])
                    .args(["--so-pin", SO_PIN, "--pin", USER_PIN])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .expect("run ferrohsm-util");
                std::thread::sleep(delay);
                let _ = child.kill();
                let status = child.wait().unwrap();
                let after = sealed_values(&sandbox);
                assert_eq!(
                    after.keys().collect::<Vec<_>>(),
                    before.keys().collect::<Vec<_>>(),
                    "round {round}: the same sealed attributes"
                );
                let token_sealed = before.iter().filter(|(_, (seal, _))| *seal == 1);
                let changed: Vec<bool> = token_sealed
                    .map(|(at, (_, value))| after[at].1 != *value)
                    .collect();
                let all = changed.iter().all(|c| *c);
                assert!(
                    all || changed.iter().all(|c| !*c),
                    "round {round} (killed after {delay:?}): some values sealed again, \
                     others not: {changed:?}"
                );
                assert!(
                    !status.success() || all,
                    "round {round}: success without rotation"
                );
                if all {
                    rotated += 1;
                } else {
                    kept += 1;
                }
                // Both PINs log in (which also resets a counter a kill left raised) and
                // every key works, in a new process.
                sandbox.run(TEST, "check");
            }
            eprintln!("{rotated} rounds rotated, {kept} left the key as it was");
        }
        Some("setup") => {
            let token = Token::new();
            // Enough secrets that re-sealing them takes a while to be killed in.
            let session = token.user();
            for i in 0..SECRET_KEYS {
                session
                    .create_object(&[
                        Attribute::Class(ObjectClass::SECRET_KEY),
                        Attribute::KeyType(cryptoki::object::KeyType::GENERIC_SECRET),
                        Attribute::Token(true),
                        Attribute::Private(true),
                        Attribute::Sensitive(true),
                        Attribute::Label(format!("secret-{i}").into_bytes()),
                        Attribute::Value(vec![i as u8; 32]),
                    ])
                    .expect("C_CreateObject secret key");
            }
            session.logout().unwrap();
            drop(session);
            make_keys_and_ciphertexts(&token);
        }
        Some("check") => {
            let token = Token::existing();
            let so = token.rw();
            so.login(UserType::So, Some(&pin(SO_PIN))).expect("SO PIN");
            so.logout().unwrap();
            check_keys_and_ciphertexts(&token.user());
        }
        Some(other) => panic!("unknown phase {other}"),
    }
}

/// Secret keys of `a_rotation_killed_at_any_point_is_all_or_nothing`.
const SECRET_KEYS: usize = 300;
