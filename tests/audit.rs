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

fn db(sandbox: &Sandbox) -> rusqlite::Connection {
    let path = std::fs::read_dir(sandbox.token_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "db"))
        .unwrap();
    rusqlite::Connection::open(path).unwrap()
}

#[test]
fn key_management_events_are_logged_and_tampering_is_found() {
    match common::child_phase(TEST).as_deref() {
        Some("events") => {
            let token = Token::new();
            let session = token.user();
            let (mut public, mut private) = rsa_templates(2048, "audited", true);
            public.push(Attribute::Id(vec![0xa1]));
            private.push(Attribute::Id(vec![0xa1]));
            let (_, key) = session
                .generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private)
                .unwrap();
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
            let conn = db(&sandbox);
            conn.execute(
                "UPDATE audit SET entry = replace(entry, 'disable', 'enable') WHERE seq = 3",
                [],
            )
            .unwrap();
            let (ok, text) = verify();
            assert!(!ok && text.contains("broken at entry 3"), "{text}");
            conn.execute(
                "UPDATE audit SET entry = replace(entry, 'enable', 'disable') WHERE seq = 3",
                [],
            )
            .unwrap();
            assert!(verify().0, "restored");
            // An entry removed: found at the next one.
            conn.execute("DELETE FROM audit WHERE seq = 4", []).unwrap();
            let (ok, text) = verify();
            assert!(!ok && text.contains("broken at entry 5"), "{text}");
        }
    }
}
