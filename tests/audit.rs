//! The audit log (issue 11): key-management events of every process are appended to the
//! token store, `ferrohsm-util audit` shows them (`--json`), and `--verify` finds an entry
//! that was changed or removed in the file.

#[macro_use]
mod common;

use common::*;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType};
use cryptoki::session::UserType;

const TEST: &str = "key_management_events_are_logged_and_tampering_is_found";
const CKA_FERROHSM_KEY_STATE: u64 = 0xC648_0001;

/// A token RSA-2048 key pair whose halves have CKA_ID `id`: (public, private).
fn rsa_pair_with_id(
    session: &cryptoki::session::Session,
    label: &str,
    id: u8,
) -> (
    cryptoki::object::ObjectHandle,
    cryptoki::object::ObjectHandle,
) {
    let (mut public, mut private) = rsa_templates(2048, label, true);
    public.push(Attribute::Id(vec![id]));
    private.push(Attribute::Id(vec![id]));
    session
        .generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private)
        .unwrap()
}

#[test]
fn key_management_events_are_logged_and_tampering_is_found() {
    match common::child_phase(TEST).as_deref() {
        Some("events") => {
            let token = Token::new();
            let session = token.user();
            let (_, key) = rsa_pair_with_id(&session, "audited", 0xa1);
            session
                .update_attributes(
                    key,
                    &[Attribute::VendorDefined((
                        AttributeType::VendorDefined(CKA_FERROHSM_KEY_STATE),
                        2u64.to_ne_bytes().to_vec(),
                    ))],
                )
                .unwrap();
            session.destroy_object(key).unwrap();
            // Session keys are not key management of the token: not logged.
            gen_rsa(&session, 2048, "session-only", false);
            session.logout().unwrap();
            let other = token.rw();
            expect_rv(
                other.login(UserType::User, Some(&pin("wrong-pin-0000"))),
                cryptoki::error::RvError::PinIncorrect,
            );
            other.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
            other
                .set_pin(&pin(USER_PIN), &pin("changed-pin-1234"))
                .unwrap();
        }
        Some(other) => panic!("unknown phase {other}"),
        None => {
            let sandbox = Sandbox::new();
            sandbox.run(TEST, "events");
            let (ok, text) = run_util(&sandbox, &["audit", "--token", TOKEN_LABEL, "--json"]);
            assert!(ok, "{text}");
            let entries: Vec<serde_json::Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
                .collect();
            let events: Vec<(&str, &str, &str)> = entries
                .iter()
                .map(|e| {
                    (
                        e["event"].as_str().unwrap(),
                        e["key_id"].as_str().unwrap(),
                        e["result"].as_str().unwrap(),
                    )
                })
                .collect();
            assert_eq!(
                events,
                [
                    ("pin-change", "", "CKR_OK"), // C_InitPIN by the SO
                    ("create", "a1", "CKR_OK"),
                    ("disable", "a1", "CKR_OK"),
                    ("destroy", "a1", "CKR_OK"),
                    ("login-failure", "", "CKR_PIN_INCORRECT"),
                    ("pin-change", "", "CKR_OK"),
                ]
            );
            assert!(entries.iter().all(|e| e["pid"].as_u64().unwrap() > 0));
            assert_eq!(entries[0]["user"], "so");
            assert_eq!(entries[1]["user"], "user");
            assert_eq!(entries[4]["user"], "none");
            let verify = || run_util(&sandbox, &["audit", "--token", TOKEN_LABEL, "--verify"]);
            let (ok, text) = verify();
            assert!(ok && text.contains("intact: 6 entries"), "{text}");
            // An entry changed in the file: found there.
            let edit = |sql: &str| common::pg::store_sql(sandbox.path(), sql);
            edit("UPDATE audit SET entry = replace(entry, 'disable', 'enable') WHERE seq = 3");
            let (ok, text) = verify();
            assert!(!ok && text.contains("broken at entry 3"), "{text}");
            edit("UPDATE audit SET entry = replace(entry, 'enable', 'disable') WHERE seq = 3");
            assert!(verify().0, "restored");
            // An entry removed: found at the next one.
            edit("DELETE FROM audit WHERE seq = 4");
            let (ok, text) = verify();
            assert!(!ok && text.contains("broken at entry 5"), "{text}");
        }
    }
}

const OPS_TEST: &str = "with_audit_operations_every_private_and_secret_key_operation_is_logged";

/// `audit = "operations"`: decryptions, signatures and secret-key operations are entries
/// with their key id, mechanism and result, failures included; public-key operations are
/// not; the entries of a process are in the log after its C_Finalize, in order and chained.
#[test]
fn with_audit_operations_every_private_and_secret_key_operation_is_logged() {
    match common::child_phase(OPS_TEST).as_deref() {
        Some("operations") => {
            let token = Token::new();
            let session = token.user();
            let (public, private) = rsa_pair_with_id(&session, "ops", 0xb2);
            let ciphertext = session
                .encrypt(&Mechanism::RsaPkcs, public, b"secret")
                .unwrap();
            for _ in 0..3 {
                assert_eq!(
                    session
                        .decrypt(&Mechanism::RsaPkcs, private, &ciphertext)
                        .unwrap(),
                    b"secret"
                );
            }
            // A ciphertext that is not one: the failure is an entry with its code.
            let garbage = vec![0x42u8; ciphertext.len()];
            assert!(session
                .decrypt(&Mechanism::RsaPkcs, private, &garbage)
                .is_err());
            session
                .sign(&Mechanism::Sha256RsaPkcs, private, b"message")
                .unwrap();
            let aes = session
                .generate_key(
                    &Mechanism::AesKeyGen,
                    &[
                        Attribute::ValueLen(32.into()),
                        Attribute::Id(vec![0xc3]),
                        Attribute::Encrypt(true),
                        Attribute::Token(false),
                    ],
                )
                .unwrap();
            session
                .encrypt(&Mechanism::AesEcb, aes, &[0u8; 16])
                .unwrap();
            // Still waiting in the process (less than a second old): written at C_Finalize.
        }
        Some(other) => panic!("unknown phase {other}"),
        None => {
            let sandbox = Sandbox::new();
            sandbox.write_config("audit = \"operations\"\n");
            sandbox.run(OPS_TEST, "operations");
            let (ok, text) = run_util(&sandbox, &["audit", "--token", TOKEN_LABEL, "--json"]);
            assert!(ok, "{text}");
            let entries: Vec<serde_json::Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
                .collect();
            // Alike operations one after the other in the same second are one entry with a
            // count: expanded, the entries are the operations in order.
            let operations: Vec<(&str, &str, &str, &str)> = entries
                .iter()
                .filter(|e| e.get("mechanism").is_some())
                .flat_map(|e| {
                    let count = e.get("count").map_or(1, |c| c.as_u64().unwrap());
                    let op = (
                        e["event"].as_str().unwrap(),
                        e["key_id"].as_str().unwrap(),
                        e["mechanism"].as_str().unwrap(),
                        e["result"].as_str().unwrap(),
                    );
                    std::iter::repeat_n(op, count as usize)
                })
                .collect();
            let decrypted = ("decrypt", "b2", "CKM_RSA_PKCS", "CKR_OK");
            assert_eq!(
                operations,
                [
                    decrypted,
                    decrypted,
                    decrypted,
                    (
                        "decrypt",
                        "b2",
                        "CKM_RSA_PKCS",
                        "CKR_ENCRYPTED_DATA_INVALID"
                    ),
                    ("sign", "b2", "CKM_SHA256_RSA_PKCS", "CKR_OK"),
                    ("encrypt", "c3", "CKM_AES_ECB", "CKR_OK"),
                ],
                "{text}"
            );
            assert!(entries
                .iter()
                .filter(|e| e.get("mechanism").is_some())
                .all(|e| e["user"] == "user"));
            let (ok, text) = run_util(&sandbox, &["audit", "--token", TOKEN_LABEL, "--verify"]);
            assert!(
                ok && text.contains(&format!("intact: {} entries", entries.len())),
                "{text}"
            );
        }
    }
}
