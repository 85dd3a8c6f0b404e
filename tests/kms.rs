//! Keys managed the KMS way, through the module as every client sees it (issue 11): raw RSA
//! needs every usage it amounts to, key states (vendor attributes) change along their
//! transitions even on a key fixed with CKA_MODIFIABLE=false, a key that is not enabled
//! refuses private-key work while its public half stays usable, and a key whose deletion
//! time has come is gone for every process and destroyed at the next login.

#[macro_use]
mod common;

use common::*;
use cryptoki::error::RvError;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys::*;

const CKA_FERROHSM_KEY_STATE: CK_ATTRIBUTE_TYPE = 0xC648_0001;
const CKA_FERROHSM_DELETION_TIME: CK_ATTRIBUTE_TYPE = 0xC648_0002;
const CKA_FERROHSM_CREATION_TIME: CK_ATTRIBUTE_TYPE = 0xC648_0005;
const ENABLED: CK_ULONG = 1;
const DISABLED: CK_ULONG = 2;
const PENDING_DELETE: CK_ULONG = 3;
const DAY: u64 = 24 * 60 * 60;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn vendor(ty: CK_ATTRIBUTE_TYPE) -> AttributeType {
    AttributeType::VendorDefined(ty)
}

fn ulong_value(value: CK_ULONG) -> Vec<u8> {
    value.to_ne_bytes().to_vec()
}

fn read_ulong(session: &Session, key: ObjectHandle, ty: CK_ATTRIBUTE_TYPE) -> CK_ULONG {
    let attrs = session.get_attributes(key, &[vendor(ty)]).unwrap();
    match attrs.as_slice() {
        [Attribute::VendorDefined((_, v))] => CK_ULONG::from_ne_bytes(v[..].try_into().unwrap()),
        other => panic!("0x{ty:x}: {other:?}"),
    }
}

/// Sets the key state (and the deletion time) with C_SetAttributeValue.
fn set_state(
    session: &Session,
    key: ObjectHandle,
    state: CK_ULONG,
    deletion: u64,
) -> cryptoki::error::Result<()> {
    session.update_attributes(
        key,
        &[
            Attribute::VendorDefined((vendor(CKA_FERROHSM_KEY_STATE), ulong_value(state))),
            Attribute::VendorDefined((
                vendor(CKA_FERROHSM_DELETION_TIME),
                ulong_value(deletion as CK_ULONG),
            )),
        ],
    )
}

/// An RSA-2048 pair fixed for decryption the KMS way: no signing, not modifiable, not
/// copyable, both halves with the same CKA_ID.
fn decrypt_only_pair(session: &Session, label: &str, token: bool) -> (ObjectHandle, ObjectHandle) {
    let (mut public, mut private) = rsa_templates(2048, label, token);
    public.push(Attribute::Id(label.as_bytes().to_vec()));
    private.retain(|a| !matches!(a, Attribute::Sign(_) | Attribute::Decrypt(_)));
    private.extend([
        Attribute::Id(label.as_bytes().to_vec()),
        Attribute::Decrypt(true),
        Attribute::Sign(false),
        Attribute::Modifiable(false),
        Attribute::Copyable(false),
    ]);
    session
        .generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private)
        .expect("RSA key pair")
}

isolated_test! {
    fn raw_rsa_needs_every_usage_it_amounts_to() {
        let token = Token::new();
        let session = token.user();
        let raw = token.raw();
        let h = session.handle();
        let (public, private) = decrypt_only_pair(&session, "decrypt-only", false);
        let block = session.encrypt(&Mechanism::RsaX509, public, &[0x42; 256]).unwrap();
        // Raw RSA decryption of a chosen block is a signature: a key that may not sign
        // does not do it, whatever the function is called.
        let rv = raw.decrypt(h, &mech(CKM_RSA_X_509), private.handle(), &block).err().unwrap_or(CKR_OK);
        assert_rv(rv, CKR_KEY_FUNCTION_NOT_PERMITTED, "C_Decrypt(CKM_RSA_X_509) on a decrypt-only key");
        // Padded decryption is what the key is for.
        let ciphertext = session.encrypt(&Mechanism::RsaPkcs, public, b"to the token").unwrap();
        assert_eq!(session.decrypt(&Mechanism::RsaPkcs, private, &ciphertext).unwrap(), b"to the token");

        // A sign-only key does not decrypt raw either.
        let (mut public_t, mut private_t) = rsa_templates(2048, "sign-only", false);
        private_t.retain(|a| !matches!(a, Attribute::Sign(_) | Attribute::Decrypt(_)));
        private_t.extend([Attribute::Sign(true), Attribute::Decrypt(false)]);
        public_t.push(Attribute::Encrypt(true));
        let (sign_public, sign_private) = session.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public_t, &private_t).unwrap();
        let rv = raw.sign(h, &mech(CKM_RSA_X_509), sign_private.handle(), &[0x42; 256]).err().unwrap_or(CKR_OK);
        assert_rv(rv, CKR_KEY_FUNCTION_NOT_PERMITTED, "C_Sign(CKM_RSA_X_509) on a sign-only key");
        let signature = session.sign(&Mechanism::Sha256RsaPkcs, sign_private, b"m").unwrap();
        session.verify(&Mechanism::Sha256RsaPkcs, sign_public, b"m", &signature).unwrap();

        // Naming CKM_RSA_X_509 in CKA_ALLOWED_MECHANISMS is the explicit way to allow it.
        let (public_t, mut private_t) = rsa_templates(2048, "raw-allowed", false);
        private_t.retain(|a| !matches!(a, Attribute::Sign(_) | Attribute::Decrypt(_)));
        private_t.extend([
            Attribute::Decrypt(true),
            Attribute::Sign(false),
            Attribute::AllowedMechanisms(vec![MechanismType::RSA_X_509]),
        ]);
        let (raw_public, raw_private) = session.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public_t, &private_t).unwrap();
        let block = session.encrypt(&Mechanism::RsaX509, raw_public, &[0x42; 256]).unwrap();
        assert_eq!(session.decrypt(&Mechanism::RsaX509, raw_private, &block).unwrap(), vec![0x42; 256]);
        // A default key (every usage) keeps raw RSA, as clients such as libp11 expect.
        let default = gen_rsa(&session, 2048, "default", false);
        let block = session.encrypt(&Mechanism::RsaX509, default.public, &[0x42; 256]).unwrap();
        assert_eq!(session.decrypt(&Mechanism::RsaX509, default.private, &block).unwrap(), vec![0x42; 256]);
    }
}

isolated_test! {
    fn disabled_keys_refuse_private_key_work_and_states_follow_their_transitions() {
        let token = Token::new();
        let session = token.user();
        let (public, private) = decrypt_only_pair(&session, "kms-key", false);
        assert_eq!(read_ulong(&session, private, CKA_FERROHSM_KEY_STATE), ENABLED);
        let created = read_ulong(&session, private, CKA_FERROHSM_CREATION_TIME) as u64;
        assert!(created.abs_diff(now()) < 600, "creation time {created}");
        let ciphertext = session.encrypt(&Mechanism::RsaPkcs, public, b"secret").unwrap();

        // Disabled, although CKA_MODIFIABLE is false: no decryption, the public half works.
        set_state(&session, private, DISABLED, 0).expect("disable");
        expect_rv(session.decrypt(&Mechanism::RsaPkcs, private, &ciphertext), RvError::KeyFunctionNotPermitted);
        session.encrypt(&Mechanism::RsaPkcs, public, b"still").expect("the public key stays usable");
        // The key's properties stay fixed.
        expect_rv(
            session.update_attributes(private, &[Attribute::Sign(true)]),
            RvError::ActionProhibited,
        );
        set_state(&session, private, ENABLED, 0).expect("enable");
        assert_eq!(session.decrypt(&Mechanism::RsaPkcs, private, &ciphertext).unwrap(), b"secret");

        // Deletion: 7 to 30 days ahead by default; cancelling goes back to disabled.
        expect_rv(set_state(&session, private, PENDING_DELETE, now() + DAY), RvError::AttributeValueInvalid);
        expect_rv(set_state(&session, private, PENDING_DELETE, now() + 31 * DAY), RvError::AttributeValueInvalid);
        expect_rv(set_state(&session, private, DISABLED, now() + 8 * DAY), RvError::AttributeValueInvalid);
        set_state(&session, private, PENDING_DELETE, now() + 8 * DAY).expect("schedule");
        expect_rv(session.decrypt(&Mechanism::RsaPkcs, private, &ciphertext), RvError::KeyFunctionNotPermitted);
        expect_rv(set_state(&session, private, ENABLED, 0), RvError::AttributeValueInvalid);
        set_state(&session, private, DISABLED, 0).expect("cancel");
        assert_eq!(read_ulong(&session, private, CKA_FERROHSM_DELETION_TIME), 0);
        expect_rv(set_state(&session, private, 9, 0), RvError::AttributeValueInvalid);
        // A copy cannot escape the state: the key is not copyable, and a copyable one
        // keeps its state unless a transition allows the change.
        expect_rv(session.copy_object(private, &[]), RvError::ActionProhibited);
    }
}

/// How many objects the token's store holds (read as anyone with access to it could).
fn stored_objects(sandbox: &std::path::Path) -> i64 {
    common::pg::store_sql(sandbox, "SELECT count(*) FROM objects")
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn keys_whose_deletion_time_has_come_are_gone_for_every_process() {
    const TEST: &str = "keys_whose_deletion_time_has_come_are_gone_for_every_process";
    match common::child_phase(TEST).as_deref() {
        Some("schedule") => {
            let token = Token::new();
            let session = token.user();
            let (public, private) = decrypt_only_pair(&session, "doomed", true);
            let kept = decrypt_only_pair(&session, "kept", true);
            let soon = now() + 2;
            set_state(&session, private, PENDING_DELETE, soon).expect("schedule the private key");
            set_state(&session, public, PENDING_DELETE, soon).expect("and the public key");
            set_state(&session, kept.0, DISABLED, 0).unwrap();
            std::thread::sleep(std::time::Duration::from_secs(3));
            // Past its time: gone for this process at once.
            assert!(find_by_label(&session, "doomed").is_empty());
            assert_eq!(find_by_label(&session, "kept").len(), 2);
        }
        Some("other-process") => {
            let token = Token::existing();
            // Before any login: the public half is not listed either.
            let session = token.rw();
            assert!(find_by_label(&session, "doomed").is_empty());
            assert_eq!(
                find_by_label(&session, "kept").len(),
                1,
                "the kept public key"
            );
            // The login destroys both halves (and only them).
            session
                .login(cryptoki::session::UserType::User, Some(&pin(USER_PIN)))
                .unwrap();
            assert_eq!(find_by_label(&session, "kept").len(), 2);
        }
        Some("after") => {
            let token = Token::existing();
            let session = token.user();
            assert!(find_by_label(&session, "doomed").is_empty());
            let kept = find_by_label(&session, "kept");
            assert_eq!(kept.len(), 2);
            // The disabled state was kept across processes.
            let states: Vec<_> = kept
                .iter()
                .map(|k| read_ulong(&session, *k, CKA_FERROHSM_KEY_STATE))
                .collect();
            assert!(states.contains(&DISABLED), "{states:?}");
        }
        Some(other) => panic!("unknown phase {other}"),
        None => {
            let sandbox = Sandbox::new();
            sandbox.write_config("key_deletion_min_days = 0\n");
            sandbox.run(TEST, "schedule");
            let stored = || stored_objects(sandbox.path());
            assert_eq!(stored(), 4, "hidden, not yet destroyed: no login since");
            sandbox.run(TEST, "other-process");
            assert_eq!(stored(), 2, "the login destroyed both halves");
            sandbox.run(TEST, "after");
        }
    }
}
