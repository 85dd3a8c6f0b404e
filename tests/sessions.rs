//! Sessions: serial only, RO/RW, the five states, login shared by the token's sessions,
//! closing the last session logs out, C_CloseAllSessions, invalid handles.

#[macro_use]
mod common;

use std::ptr;

use common::*;
use cryptoki::error::RvError;
use cryptoki::session::{SessionState, UserType};
use cryptoki_sys::*;

isolated_test! {
    fn sessions_must_be_serial() {
        let token = Token::new();
        let raw = token.raw();
        let mut handle = CK_INVALID_HANDLE;
        for flags in [0, CKF_RW_SESSION] {
            let rv = raw!(raw, C_OpenSession(token.slot.id(), flags, ptr::null_mut(), None, &mut handle));
            assert_rv(rv, CKR_SESSION_PARALLEL_NOT_SUPPORTED, "C_OpenSession without CKF_SERIAL_SESSION");
        }
        let rv = raw!(raw, C_OpenSession(0x7fff_fff0, CKF_SERIAL_SESSION, ptr::null_mut(), None, &mut handle));
        assert_rv(rv, CKR_SLOT_ID_INVALID, "C_OpenSession on a slot that does not exist");
    }
}

isolated_test! {
    fn the_five_session_states() {
        let token = Token::new();
        let ro = token.ro();
        let rw = token.rw();
        let state = |s: &cryptoki::session::Session| s.get_session_info().expect("C_GetSessionInfo");

        assert_eq!(state(&ro).session_state(), SessionState::RoPublic);
        assert!(!state(&ro).read_write());
        assert_eq!(state(&rw).session_state(), SessionState::RwPublic);
        assert!(state(&rw).read_write());
        assert_eq!(state(&rw).slot_id().id(), token.slot.id());

        rw.login(UserType::User, Some(&pin(USER_PIN))).expect("user login");
        assert_eq!(state(&ro).session_state(), SessionState::RoUser, "login applies to all sessions");
        assert_eq!(state(&rw).session_state(), SessionState::RwUser);

        // A session opened while logged in starts in the user state.
        let late = token.ro();
        assert_eq!(state(&late).session_state(), SessionState::RoUser);
        drop(late);

        rw.logout().expect("logout");
        assert_eq!(state(&ro).session_state(), SessionState::RoPublic);
        assert_eq!(state(&rw).session_state(), SessionState::RwPublic);

        ro.close().expect("close RO");
        rw.login(UserType::So, Some(&pin(SO_PIN))).expect("SO login");
        assert_eq!(state(&rw).session_state(), SessionState::RwSecurityOfficer);
        let late = token.rw();
        assert_eq!(state(&late).session_state(), SessionState::RwSecurityOfficer);
    }
}

isolated_test! {
    fn closing_the_last_session_logs_out() {
        let token = Token::new();
        let first = token.user();
        let second = token.ro();
        assert_eq!(second.get_session_info().expect("info").session_state(), SessionState::RoUser);
        first.close().expect("close first");
        assert_eq!(
            second.get_session_info().expect("info").session_state(),
            SessionState::RoUser,
            "still logged in while a session is open"
        );
        second.close().expect("close second");

        let third = token.rw();
        assert_eq!(
            third.get_session_info().expect("info").session_state(),
            SessionState::RwPublic,
            "closing the last session logged the user out"
        );
        third.login(UserType::User, Some(&pin(USER_PIN))).expect("login again works");
    }
}

isolated_test! {
    fn close_all_sessions_closes_and_logs_out() {
        let token = Token::new();
        let raw = token.raw();
        let a = raw.open_session(token.slot, true);
        let b = raw.open_session(token.slot, false);
        let c = raw.open_session(token.slot, true);
        assert_rv(raw.login(a, CKU_USER, USER_PIN), CKR_OK, "login");
        assert_rv(raw!(raw, C_CloseAllSessions(token.slot.id())), CKR_OK, "C_CloseAllSessions");
        for handle in [a, b, c] {
            let mut info = CK_SESSION_INFO::default();
            assert_rv(
                raw!(raw, C_GetSessionInfo(handle, &mut info)),
                CKR_SESSION_HANDLE_INVALID,
                "session closed by C_CloseAllSessions",
            );
            assert_rv(raw!(raw, C_CloseSession(handle)), CKR_SESSION_HANDLE_INVALID, "close again");
        }
        let info = token.p11.get_token_info(token.slot).expect("info");
        assert_eq!(info.session_count(), Some(0));
        let d = raw.open_session(token.slot, true);
        let mut info = CK_SESSION_INFO::default();
        assert_rv(raw!(raw, C_GetSessionInfo(d, &mut info)), CKR_OK, "C_GetSessionInfo");
        assert_eq!(info.state, CKS_RW_PUBLIC_SESSION, "logged out by C_CloseAllSessions");
        // Closing all sessions of a slot with none open, twice, is fine (teardown paths).
        assert_rv(raw!(raw, C_CloseAllSessions(token.slot.id())), CKR_OK, "C_CloseAllSessions");
        assert_rv(raw!(raw, C_CloseAllSessions(token.slot.id())), CKR_OK, "C_CloseAllSessions again");
        assert_rv(raw!(raw, C_CloseAllSessions(0x7fff_fff0)), CKR_SLOT_ID_INVALID, "unknown slot");
    }
}

isolated_test! {
    fn invalid_session_handles() {
        let token = Token::new();
        let raw = token.raw();
        let mut info = CK_SESSION_INFO::default();
        assert_rv(raw!(raw, C_GetSessionInfo(0xdead_beef, &mut info)), CKR_SESSION_HANDLE_INVALID, "bogus handle");
        assert_rv(raw!(raw, C_CloseSession(0xdead_beef)), CKR_SESSION_HANDLE_INVALID, "close bogus handle");
        let mut random = [0u8; 4];
        assert_rv(
            raw!(raw, C_GenerateRandom(0xdead_beef, random.as_mut_ptr(), 4)),
            CKR_SESSION_HANDLE_INVALID,
            "C_GenerateRandom on a bogus handle",
        );
        let h = raw.open_session(token.slot, false);
        assert_rv(raw!(raw, C_CloseSession(h)), CKR_OK, "close");
        assert_rv(raw!(raw, C_CloseSession(h)), CKR_SESSION_HANDLE_INVALID, "close twice");
        // Finalize with sessions open, then everything starts clean again.
        let _kept = raw.open_session(token.slot, true);
        assert_rv(raw.finalize(), CKR_OK, "C_Finalize with open sessions");
        assert_rv(raw.initialize(), CKR_OK, "C_Initialize again");
        let slot = slot_by_label(&token.p11, TOKEN_LABEL).expect("token after re-initialise");
        let info = token.p11.get_token_info(slot).expect("info");
        assert_eq!(info.session_count(), Some(0), "C_Finalize closed everything");
        let session = token.p11.open_rw_session(slot).expect("session");
        assert_eq!(
            session.get_session_info().expect("info").session_state(),
            SessionState::RwPublic
        );
        common::expect_rv(session.logout(), RvError::UserNotLoggedIn);
    }
}

isolated_test! {
    fn sessions_on_many_threads_work_at_once() {
        let token = Token::new();
        let setup = token.user();
        let pair = gen_rsa(&setup, 2048, "threads", false);
        let message = b"signed from many threads";
        let expected = setup
            .sign(&cryptoki::mechanism::Mechanism::Sha256RsaPkcs, pair.private, message)
            .expect("sign");
        let slot = token.slot;
        let handles: Vec<_> = (0..4)
            .map(|thread| {
                let p11 = token.p11.clone();
                let expected = expected.clone();
                std::thread::spawn(move || {
                    let session = p11.open_ro_session(slot).expect("session per thread");
                    for round in 0..10 {
                        let signature = session
                            .sign(&cryptoki::mechanism::Mechanism::Sha256RsaPkcs, pair.private, message)
                            .unwrap_or_else(|e| panic!("thread {thread} round {round}: {e}"));
                        assert_eq!(signature, expected, "deterministic signature");
                        let ciphertext = session
                            .encrypt(&cryptoki::mechanism::Mechanism::RsaPkcs, pair.public, message)
                            .expect("encrypt");
                        let plaintext = session
                            .decrypt(&cryptoki::mechanism::Mechanism::RsaPkcs, pair.private, &ciphertext)
                            .expect("decrypt");
                        assert_eq!(plaintext, message);
                        session.generate_random_vec(16).expect("random");
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().expect("thread");
        }
    }
}
