//! Slots, tokens and PINs: C_InitToken on the spare slot, slot-id stability across
//! processes, re-initialisation, C_InitPIN / C_SetPIN / C_Login codes, retry counters.

#[macro_use]
mod common;

use common::*;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;
use cryptoki_sys::*;

fn record(name: &str, value: u64) {
    std::fs::write(sandbox_dir().join(name), value.to_string()).expect("write record");
}

fn recorded(name: &str) -> u64 {
    std::fs::read_to_string(sandbox_dir().join(name))
        .expect("read record")
        .trim()
        .parse()
        .expect("number")
}

#[test]
fn init_token_on_spare_slot_is_listed_first_with_a_stable_id() {
    const TEST: &str = "init_token_on_spare_slot_is_listed_first_with_a_stable_id";
    match common::child_phase(TEST).as_deref() {
        Some("init") => {
            let p11 = initialized();
            let all = p11.get_all_slots().expect("slots");
            assert_eq!(all.len(), 1, "a fresh store has only the spare slot");
            let spare = spare_slot(&p11);
            let slot_info = p11.get_slot_info(spare).expect("C_GetSlotInfo");
            assert!(
                slot_info.token_present(),
                "the spare slot holds an uninitialised token"
            );
            assert!(spare.id() < (1 << 31), "slot ids fit in 31 bits");

            p11.init_token(spare, &pin(SO_PIN), "first")
                .expect("C_InitToken");
            let with_token = p11.get_slots_with_token().expect("slots");
            let first = with_token[0];
            assert_eq!(p11.get_token_info(first).expect("info").label(), "first");
            assert_eq!(
                first.id(),
                spare.id(),
                "the token keeps the id of the slot it was made in"
            );
            record("first", spare.id());

            // A new spare slot appears, listed last.
            let spare2 = spare_slot(&p11);
            assert_ne!(spare2.id(), spare.id());
            p11.init_token(spare2, &pin(SO_PIN), "second")
                .expect("C_InitToken second");
            let second = slot_by_label(&p11, "second").expect("second token listed");
            assert_eq!(second.id(), spare2.id());
            record("second", spare2.id());
            let spare3 = spare_slot(&p11);
            assert!(spare3.id() < (1 << 31));
        }
        Some("check") => {
            let p11 = initialized();
            // Java SunPKCS11 asks for a slot it knows before listing slots.
            let known = cryptoki::slot::Slot::try_from(recorded("first")).expect("slot id");
            let info = p11
                .get_token_info(known)
                .expect("C_GetTokenInfo before C_GetSlotList");
            assert_eq!(info.label(), "first");
            let with_token = p11.get_slots_with_token().expect("slots");
            let first = with_token[0];
            assert_eq!(
                p11.get_token_info(first).expect("info").label(),
                "first",
                "the first initialised token is listed first in a new process"
            );
            assert_eq!(
                first.id(),
                recorded("first"),
                "slot id stable across processes"
            );
            let second = slot_by_label(&p11, "second").expect("second token");
            assert_eq!(second.id(), recorded("second"));
            let all = p11.get_all_slots().expect("slots");
            assert_eq!(all.len(), 3, "two tokens and one spare slot");
            spare_slot(&p11);
            for slot in all {
                assert!(
                    slot.id() < (1 << 31),
                    "slot id {} fits in 31 bits",
                    slot.id()
                );
                p11.get_slot_info(slot)
                    .expect("C_GetSlotInfo without C_GetSlotList first");
            }
        }
        Some(other) => panic!("unknown phase {other}"),
        None => {
            let sandbox = Sandbox::new();
            sandbox.run(TEST, "init");
            sandbox.run(TEST, "check");
        }
    }
}

isolated_test! {
    fn reinitialise_token_rules() {
        let token = Token::new();
        {
            let session = token.user();
            session
                .create_object(&data_object("keep-me", b"v", true, false))
                .expect("create token object");
            // Re-initialisation is refused while a session is open.
            common::expect_rv(
                token.p11.init_token(token.slot, &pin(SO_PIN), TOKEN_LABEL),
                RvError::SessionExists,
            );
        }
        common::expect_rv(
            token.p11.init_token(token.slot, &pin("wrong-so-pin"), TOKEN_LABEL),
            RvError::PinIncorrect,
        );
        token
            .p11
            .init_token(token.slot, &pin(SO_PIN), "renewed")
            .expect("re-initialise with the right SO PIN");
        let slot = slot_by_label(&token.p11, "renewed").expect("renamed token");
        let info = token.p11.get_token_info(slot).expect("info");
        assert!(info.token_initialized());
        assert!(!info.user_pin_initialized(), "re-initialisation resets the user PIN");

        let session = token.p11.open_rw_session(slot).expect("session");
        assert!(find_by_label(&session, "keep-me").is_empty(), "objects wiped");
        common::expect_rv(
            session.login(UserType::User, Some(&pin(USER_PIN))),
            RvError::UserPinNotInitialized,
        );
        session.login(UserType::So, Some(&pin(SO_PIN))).expect("SO PIN unchanged");
    }
}

isolated_test! {
    fn user_pin_not_initialised_until_init_pin() {
        let p11 = initialized();
        let slot = init_token_with(&p11, TOKEN_LABEL, None);
        let info = p11.get_token_info(slot).expect("info");
        assert!(!info.user_pin_initialized());
        assert!(info.login_required(), "CKF_LOGIN_REQUIRED must be set");

        let session = p11.open_rw_session(slot).expect("session");
        common::expect_rv(
            session.login(UserType::User, Some(&pin(USER_PIN))),
            RvError::UserPinNotInitialized,
        );
        // C_InitPIN needs the SO.
        common::expect_rv(session.init_pin(&pin(USER_PIN)), RvError::UserNotLoggedIn);
        session.login(UserType::So, Some(&pin(SO_PIN))).expect("SO login");
        let info = p11.get_token_info(slot).expect("info");
        let too_long = "x".repeat(info.max_pin_length() + 1);
        common::expect_rv(session.init_pin(&pin(&too_long)), RvError::PinLenRange);
        if info.min_pin_length() > 1 {
            let too_short = "x".repeat(info.min_pin_length() - 1);
            common::expect_rv(session.init_pin(&pin(&too_short)), RvError::PinLenRange);
        }
        session.init_pin(&pin(USER_PIN)).expect("C_InitPIN");
        session.logout().expect("logout");
        assert!(p11.get_token_info(slot).expect("info").user_pin_initialized());
        session.login(UserType::User, Some(&pin(USER_PIN))).expect("user login");
    }
}

isolated_test! {
    fn login_and_logout_codes() {
        let token = Token::new();
        let ro = token.ro();
        let rw = token.rw();

        common::expect_rv(rw.login(UserType::User, Some(&pin("wrong-pin"))), RvError::PinIncorrect);
        let info = token.p11.get_token_info(token.slot).expect("info");
        assert!(info.user_pin_count_low(), "CKF_USER_PIN_COUNT_LOW after a failed login");
        assert!(!info.user_pin_locked());

        rw.login(UserType::User, Some(&pin(USER_PIN))).expect("user login");
        let info = token.p11.get_token_info(token.slot).expect("info");
        assert!(!info.user_pin_count_low(), "a good login resets the counter");

        common::expect_rv(rw.login(UserType::User, Some(&pin(USER_PIN))), RvError::UserAlreadyLoggedIn);
        // Login state is per token, so the other session is logged in too.
        common::expect_rv(ro.login(UserType::User, Some(&pin(USER_PIN))), RvError::UserAlreadyLoggedIn);
        ro.logout().expect("logout from the other session");
        common::expect_rv(rw.logout(), RvError::UserNotLoggedIn);

        // SO login with a read-only session open.
        common::expect_rv(
            rw.login(UserType::So, Some(&pin(SO_PIN))),
            RvError::SessionReadOnlyExists,
        );
        ro.close().expect("close RO session");

        // One user type at a time.
        rw.login(UserType::User, Some(&pin(USER_PIN))).expect("user login");
        common::expect_rv(
            rw.login(UserType::So, Some(&pin(SO_PIN))),
            RvError::UserAnotherAlreadyLoggedIn,
        );
        rw.logout().expect("logout");
        common::expect_rv(rw.login(UserType::So, Some(&pin("wrong-so"))), RvError::PinIncorrect);
        rw.login(UserType::So, Some(&pin(SO_PIN))).expect("SO login");
        common::expect_rv(
            rw.login(UserType::User, Some(&pin(USER_PIN))),
            RvError::UserAnotherAlreadyLoggedIn,
        );
        // No read-only session while the SO is logged in.
        common::expect_rv(
            token.p11.open_ro_session(token.slot),
            RvError::SessionReadWriteSoExists,
        );
        rw.logout().expect("SO logout");
        common::expect_rv(rw.logout(), RvError::UserNotLoggedIn);

        // CKU_CONTEXT_SPECIFIC without an operation needing it.
        let code = common::rv_of(rw.login(UserType::ContextSpecific, Some(&pin(USER_PIN))));
        assert!(
            matches!(code, RvError::OperationNotInitialized | RvError::UserNotLoggedIn),
            "context-specific login without operation: {code:?}"
        );
    }
}

isolated_test! {
    fn set_pin_rules() {
        let token = Token::new();
        let ro = token.ro();
        ro.login(UserType::User, Some(&pin(USER_PIN))).expect("login");
        common::expect_rv(ro.set_pin(&pin(USER_PIN), &pin("new-user-pin")), RvError::SessionReadOnly);
        ro.logout().expect("logout");
        drop(ro);

        let rw = token.user();
        common::expect_rv(rw.set_pin(&pin("not-the-pin"), &pin("new-user-pin")), RvError::PinIncorrect);
        let info = token.p11.get_token_info(token.slot).expect("info");
        let too_long = "y".repeat(info.max_pin_length() + 1);
        common::expect_rv(rw.set_pin(&pin(USER_PIN), &pin(&too_long)), RvError::PinLenRange);
        rw.set_pin(&pin(USER_PIN), &pin("new-user-pin")).expect("C_SetPIN");
        rw.logout().expect("logout");
        common::expect_rv(rw.login(UserType::User, Some(&pin(USER_PIN))), RvError::PinIncorrect);
        rw.login(UserType::User, Some(&pin("new-user-pin"))).expect("login with the new PIN");
        rw.logout().expect("logout");

        // The SO changes its own PIN the same way.
        rw.login(UserType::So, Some(&pin(SO_PIN))).expect("SO login");
        rw.set_pin(&pin(SO_PIN), &pin("new-so-pin")).expect("SO C_SetPIN");
        rw.logout().expect("logout");
        common::expect_rv(rw.login(UserType::So, Some(&pin(SO_PIN))), RvError::PinIncorrect);
        rw.login(UserType::So, Some(&pin("new-so-pin"))).expect("SO login with the new PIN");
    }
}

#[test]
fn user_pin_locks_after_ten_failures_and_stays_locked() {
    const TEST: &str = "user_pin_locks_after_ten_failures_and_stays_locked";
    match common::child_phase(TEST).as_deref() {
        Some("lock") => {
            let token = Token::new();
            let session = token.rw();
            for attempt in 1..=9 {
                common::expect_rv(
                    session.login(UserType::User, Some(&pin("bad-pin"))),
                    RvError::PinIncorrect,
                );
                let info = token.p11.get_token_info(token.slot).expect("info");
                // On the last try a module may show FINAL_TRY instead of COUNT_LOW.
                assert!(
                    info.user_pin_count_low() || (attempt == 9 && info.user_pin_final_try()),
                    "count low after {attempt} failures"
                );
                assert!(
                    !info.user_pin_locked(),
                    "not locked after {attempt} failures"
                );
                if attempt == 9 {
                    assert!(info.user_pin_final_try(), "final try after 9 failures");
                }
            }
            common::expect_rv_in(
                session.login(UserType::User, Some(&pin("bad-pin"))),
                &[RvError::PinIncorrect, RvError::PinLocked],
            );
            let info = token.p11.get_token_info(token.slot).expect("info");
            assert!(
                info.user_pin_locked(),
                "CKF_USER_PIN_LOCKED after 10 failures"
            );
            common::expect_rv(
                session.login(UserType::User, Some(&pin(USER_PIN))),
                RvError::PinLocked,
            );
            // The SO is a separate counter.
            session
                .login(UserType::So, Some(&pin(SO_PIN)))
                .expect("SO still works");
        }
        Some("check") => {
            let token = Token::existing();
            let info = token.p11.get_token_info(token.slot).expect("info");
            assert!(info.user_pin_locked(), "the lock survives a restart");
            let session = token.rw();
            common::expect_rv(
                session.login(UserType::User, Some(&pin(USER_PIN))),
                RvError::PinLocked,
            );
            session
                .login(UserType::So, Some(&pin(SO_PIN)))
                .expect("SO login");
            session
                .init_pin(&pin("fresh-user-pin"))
                .expect("SO re-initialises the user PIN");
            session.logout().expect("logout");
            let info = token.p11.get_token_info(token.slot).expect("info");
            assert!(!info.user_pin_locked(), "C_InitPIN unlocks");
            assert!(!info.user_pin_count_low(), "C_InitPIN resets the counter");
            session
                .login(UserType::User, Some(&pin("fresh-user-pin")))
                .expect("login with the new PIN");
        }
        Some(other) => panic!("unknown phase {other}"),
        None => {
            let sandbox = Sandbox::new();
            sandbox.run(TEST, "lock");
            sandbox.run(TEST, "check");
        }
    }
}

/// A PIN presented for checking (C_Login, C_SetPIN's old PIN) whose length no PIN can
/// have is a wrong PIN: CKR_PIN_INCORRECT, counted in the persisted retry counter, and
/// refused with CKR_PIN_LOCKED once locked. CKR_PIN_LEN_RANGE is for PINs being set.
#[test]
fn wrong_length_pins_are_incorrect_and_counted() {
    const TEST: &str = "wrong_length_pins_are_incorrect_and_counted";
    match common::child_phase(TEST).as_deref() {
        Some("count") => {
            let token = Token::new();
            let session = token.rw();
            let info = token.p11.get_token_info(token.slot).expect("info");
            let too_short = "x".repeat(info.min_pin_length() - 1);
            let too_long = "y".repeat(info.max_pin_length() + 1);

            common::expect_rv(
                session.login(UserType::User, Some(&pin(&too_short))),
                RvError::PinIncorrect,
            );
            assert!(
                token
                    .p11
                    .get_token_info(token.slot)
                    .expect("info")
                    .user_pin_count_low(),
                "a short PIN counts"
            );
            // A good login resets the counter, so a short PIN is not a free guess either.
            session
                .login(UserType::User, Some(&pin(USER_PIN)))
                .expect("login");
            session.logout().expect("logout");
            common::expect_rv(
                session.login(UserType::User, Some(&pin(&too_long))),
                RvError::PinIncorrect,
            );
            assert!(
                token
                    .p11
                    .get_token_info(token.slot)
                    .expect("info")
                    .user_pin_count_low(),
                "a long PIN counts"
            );
            // C_SetPIN without login checks the user's old PIN the same way; the new PIN
            // is the one being set.
            common::expect_rv(
                session.set_pin(&pin(&too_short), &pin("new-user-pin")),
                RvError::PinIncorrect,
            );
            common::expect_rv(
                session.set_pin(&pin(USER_PIN), &pin(&too_short)),
                RvError::PinLenRange,
            );
            common::expect_rv(
                session.set_pin(&pin(USER_PIN), &pin(&too_long)),
                RvError::PinLenRange,
            );
            // The SO's counter too.
            common::expect_rv(
                session.login(UserType::So, Some(&pin(&too_short))),
                RvError::PinIncorrect,
            );
            assert!(
                token
                    .p11
                    .get_token_info(token.slot)
                    .expect("info")
                    .so_pin_count_low(),
                "the SO's short PIN counts"
            );

            // Two user failures so far (the long login, the short old PIN); eight more lock.
            for attempt in 3..=10 {
                let wrong = if attempt % 2 == 0 {
                    &too_short
                } else {
                    &too_long
                };
                common::expect_rv_in(
                    session.login(UserType::User, Some(&pin(wrong))),
                    &[RvError::PinIncorrect, RvError::PinLocked],
                );
                let info = token.p11.get_token_info(token.slot).expect("info");
                assert_eq!(
                    info.user_pin_locked(),
                    attempt == 10,
                    "locked after {attempt} failures?"
                );
                if attempt == 9 {
                    assert!(info.user_pin_final_try(), "final try after 9 failures");
                }
            }
        }
        Some("check") => {
            let token = Token::existing();
            let info = token.p11.get_token_info(token.slot).expect("info");
            assert!(
                info.user_pin_locked(),
                "the lock the wrong-length PINs caused persists"
            );
            assert!(info.so_pin_count_low(), "the SO's count persists");
            let session = token.rw();
            let too_short = "x".repeat(info.min_pin_length() - 1);
            // No way around the lock with a PIN of another length.
            common::expect_rv(
                session.login(UserType::User, Some(&pin(&too_short))),
                RvError::PinLocked,
            );
            common::expect_rv(
                session.set_pin(&pin(&too_short), &pin("new-user-pin")),
                RvError::PinLocked,
            );
            common::expect_rv(
                session.login(UserType::User, Some(&pin(USER_PIN))),
                RvError::PinLocked,
            );
        }
        Some(other) => panic!("unknown phase {other}"),
        None => {
            let sandbox = Sandbox::new();
            sandbox.run(TEST, "count");
            sandbox.run(TEST, "check");
        }
    }
}

isolated_test! {
    fn token_slot_and_library_info_report_true_values() {
        let token = Token::new();
        let library = token.p11.get_library_info().expect("C_GetInfo");
        let info = token.p11.get_token_info(token.slot).expect("C_GetTokenInfo");
        if is_ferrohsm() {
            assert_eq!(library.manufacturer_id(), "ferrohsm");
            assert_eq!(info.manufacturer_id(), "ferrohsm");
        }
        assert_eq!(info.label(), TOKEN_LABEL);
        assert!(info.token_initialized());
        assert!(info.login_required(), "CKF_LOGIN_REQUIRED");
        assert!(info.user_pin_initialized());
        assert!(info.rng(), "C_GenerateRandom is offered, so CKF_RNG");
        assert!(!info.serial_number().is_empty(), "serial number");
        assert!(info.min_pin_length() >= 1 && info.min_pin_length() <= info.max_pin_length());
        assert_eq!(info.session_count(), Some(0));

        let ro = token.ro();
        let rw = token.rw();
        let info = token.p11.get_token_info(token.slot).expect("C_GetTokenInfo");
        assert_eq!(info.session_count(), Some(2), "open sessions counted");
        assert_eq!(info.rw_session_count(), Some(1), "RW sessions counted");
        drop(ro);
        drop(rw);

        let slot_info = token.p11.get_slot_info(token.slot).expect("C_GetSlotInfo");
        assert!(slot_info.token_present());
        // The serial numbers of two tokens differ.
        let second = init_token_with(&token.p11, "other", None);
        let other = token.p11.get_token_info(second).expect("info");
        assert_ne!(other.serial_number(), info.serial_number());

        // A token object count check keeps this honest: the fresh token has no objects.
        let session = token.user();
        let all = session
            .find_objects(&[Attribute::Class(ObjectClass::DATA)])
            .expect("find");
        assert!(all.is_empty());
    }
}

isolated_test! {
    fn always_authenticate_key_needs_context_specific_login() {
        let token = Token::new();
        let session = token.user();
        let (public, mut private) = rsa_templates(2048, "always-auth", false);
        private.push(Attribute::AlwaysAuthenticate(true));
        let (public, private) = session
            .generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private)
            .expect("generate");
        let raw = token.raw();
        let sha256_rsa = mech(CKM_SHA256_RSA_PKCS);
        let message = b"each use needs the PIN";
        // Each refusal below happens in a session of its own: whether a refused call ends
        // the operation is not what this test is about.
        let refused = raw.open_session(token.slot, true);
        assert_rv(raw.sign_init(refused, &sha256_rsa, private.handle()), CKR_OK, "C_SignInit");
        let (rv, _, _) = raw.output_call(OutputCall::Sign, refused, message, Some(256));
        assert_rv(rv, CKR_USER_NOT_LOGGED_IN, "C_Sign without CKU_CONTEXT_SPECIFIC login");

        let wrong = raw.open_session(token.slot, true);
        assert_rv(raw.sign_init(wrong, &sha256_rsa, private.handle()), CKR_OK, "C_SignInit");
        assert_rv(
            raw.login(wrong, CKU_CONTEXT_SPECIFIC, "wrong-pin"),
            CKR_PIN_INCORRECT,
            "context-specific login with a wrong PIN",
        );

        let h = session.handle();
        assert_rv(raw.sign_init(h, &sha256_rsa, private.handle()), CKR_OK, "C_SignInit");
        assert_rv(raw.login(h, CKU_CONTEXT_SPECIFIC, USER_PIN), CKR_OK, "context-specific login");
        let (rv, _, signature) = raw.output_call(OutputCall::Sign, h, message, Some(256));
        assert_rv(rv, CKR_OK, "C_Sign after CKU_CONTEXT_SPECIFIC login");
        session
            .verify(&Mechanism::Sha256RsaPkcs, public, message, &signature)
            .expect("verify");

        // The authentication covers one operation only.
        assert_rv(raw.sign_init(h, &sha256_rsa, private.handle()), CKR_OK, "second C_SignInit");
        let (rv, _, _) = raw.output_call(OutputCall::Sign, h, message, Some(256));
        assert_rv(rv, CKR_USER_NOT_LOGGED_IN, "second C_Sign without a new login");
        // The session itself is still logged in.
        assert_eq!(
            session.get_session_info().expect("info").session_state(),
            cryptoki::session::SessionState::RwUser
        );
    }
}
