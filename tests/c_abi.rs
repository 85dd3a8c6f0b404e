//! The C boundary as a C client sees it: C_GetFunctionList / C_GetInterfaceList,
//! C_Initialize argument rules and races, NULL pointers, the output-buffer protocol, fork.

#[macro_use]
mod common;

use std::ffi::{c_void, CStr};
use std::ptr;
use std::sync::{Arc, Barrier};

use common::*;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;
use cryptoki_sys::*;

/// Every function pointer of a function-list struct must be set.
macro_rules! assert_all_set {
    ($list:expr, [$($name:ident),* $(,)?]) => {{
        let mut missing = Vec::new();
        $( if $list.$name.is_none() { missing.push(stringify!($name)); } )*
        assert!(missing.is_empty(), "NULL function pointers: {missing:?}");
    }};
}

macro_rules! functions_240 {
    ($m:ident, $list:expr) => {
        $m!(
            $list,
            [
                C_Initialize,
                C_Finalize,
                C_GetInfo,
                C_GetFunctionList,
                C_GetSlotList,
                C_GetSlotInfo,
                C_GetTokenInfo,
                C_GetMechanismList,
                C_GetMechanismInfo,
                C_InitToken,
                C_InitPIN,
                C_SetPIN,
                C_OpenSession,
                C_CloseSession,
                C_CloseAllSessions,
                C_GetSessionInfo,
                C_GetOperationState,
                C_SetOperationState,
                C_Login,
                C_Logout,
                C_CreateObject,
                C_CopyObject,
                C_DestroyObject,
                C_GetObjectSize,
                C_GetAttributeValue,
                C_SetAttributeValue,
                C_FindObjectsInit,
                C_FindObjects,
                C_FindObjectsFinal,
                C_EncryptInit,
                C_Encrypt,
                C_EncryptUpdate,
                C_EncryptFinal,
                C_DecryptInit,
                C_Decrypt,
                C_DecryptUpdate,
                C_DecryptFinal,
                C_DigestInit,
                C_Digest,
                C_DigestUpdate,
                C_DigestKey,
                C_DigestFinal,
                C_SignInit,
                C_Sign,
                C_SignUpdate,
                C_SignFinal,
                C_SignRecoverInit,
                C_SignRecover,
                C_VerifyInit,
                C_Verify,
                C_VerifyUpdate,
                C_VerifyFinal,
                C_VerifyRecoverInit,
                C_VerifyRecover,
                C_DigestEncryptUpdate,
                C_DecryptDigestUpdate,
                C_SignEncryptUpdate,
                C_DecryptVerifyUpdate,
                C_GenerateKey,
                C_GenerateKeyPair,
                C_WrapKey,
                C_UnwrapKey,
                C_DeriveKey,
                C_SeedRandom,
                C_GenerateRandom,
                C_GetFunctionStatus,
                C_CancelFunction,
                C_WaitForSlotEvent,
            ]
        )
    };
}

/// Every 2.40 function is also exported as a symbol (clients link against them directly).
macro_rules! assert_exported {
    ($lib:expr, [$($name:ident),* $(,)?]) => {{
        let mut missing = Vec::new();
        $( if $lib.$name.is_err() { missing.push(stringify!($name)); } )*
        assert!(missing.is_empty(), "symbols not exported: {missing:?}");
    }};
}

isolated_test! {
    fn function_list_is_complete_2_40() {
        let raw = Raw::load();
        assert_eq!(
            (raw.f.version.major, raw.f.version.minor),
            (2, 40),
            "C_GetFunctionList returns the 2.40 table"
        );
        functions_240!(assert_all_set, raw.f);
        functions_240!(assert_exported, raw.lib);
        assert_rv(
            unsafe { raw.lib.C_GetFunctionList(ptr::null_mut()) },
            CKR_ARGUMENTS_BAD,
            "C_GetFunctionList(NULL)",
        );
    }
}

fn interface_name(interface: &CK_INTERFACE) -> String {
    assert!(
        !interface.pInterfaceName.is_null(),
        "interface name is NULL"
    );
    unsafe { CStr::from_ptr(interface.pInterfaceName as *const std::ffi::c_char) }
        .to_string_lossy()
        .into_owned()
}

fn interface_version(interface: &CK_INTERFACE) -> (u8, u8) {
    assert!(!interface.pFunctionList.is_null(), "function list is NULL");
    // Every function list starts with its CK_VERSION.
    let version = unsafe { *(interface.pFunctionList as *const CK_VERSION) };
    (version.major, version.minor)
}

isolated_test! {
    fn interface_list_offers_pkcs11_3_0_and_2_40() {
        let raw = Raw::load();
        assert!(raw.lib.C_GetInterfaceList.is_ok(), "C_GetInterfaceList is not exported");
        assert!(raw.lib.C_GetInterface.is_ok(), "C_GetInterface is not exported");

        // Like C_GetFunctionList, these work before C_Initialize.
        let mut count: CK_ULONG = 0;
        let rv = unsafe { raw.lib.C_GetInterfaceList(ptr::null_mut(), &mut count) };
        assert_rv(rv, CKR_OK, "C_GetInterfaceList length query");
        assert!(count >= 2, "expected at least 3.0 and 2.40 interfaces, got {count}");

        let empty = CK_INTERFACE { pInterfaceName: ptr::null_mut(), pFunctionList: ptr::null_mut(), flags: 0 };
        let mut too_small: CK_ULONG = 1;
        let mut one = [empty; 1];
        let rv = unsafe { raw.lib.C_GetInterfaceList(one.as_mut_ptr(), &mut too_small) };
        assert_rv(rv, CKR_BUFFER_TOO_SMALL, "C_GetInterfaceList with room for one");
        assert_eq!(too_small, count, "needed count written back");

        let mut interfaces = vec![empty; count as usize];
        let rv = unsafe { raw.lib.C_GetInterfaceList(interfaces.as_mut_ptr(), &mut count) };
        assert_rv(rv, CKR_OK, "C_GetInterfaceList");
        let found: Vec<(String, (u8, u8))> = interfaces
            .iter()
            .map(|i| (interface_name(i), interface_version(i)))
            .collect();
        assert!(found.contains(&("PKCS 11".to_string(), (3, 0))), "no PKCS 11 3.0 in {found:?}");
        assert!(found.contains(&("PKCS 11".to_string(), (2, 40))), "no PKCS 11 2.40 in {found:?}");
        assert_rv(
            unsafe { raw.lib.C_GetInterfaceList(ptr::null_mut(), ptr::null_mut()) },
            CKR_ARGUMENTS_BAD,
            "C_GetInterfaceList(NULL, NULL)",
        );

        // C_GetInterface by name and version.
        let mut name = *b"PKCS 11\0";
        let mut version = CK_VERSION { major: 3, minor: 0 };
        let mut interface: *mut CK_INTERFACE = ptr::null_mut();
        let rv = unsafe { raw.lib.C_GetInterface(name.as_mut_ptr(), &mut version, &mut interface, 0) };
        assert_rv(rv, CKR_OK, "C_GetInterface(PKCS 11, 3.0)");
        let interface = unsafe { &*interface };
        assert_eq!(interface_version(interface), (3, 0));
        let list30 = unsafe { &*(interface.pFunctionList as *const CK_FUNCTION_LIST_3_0) };
        functions_240!(assert_all_set, list30);
        assert_all_set!(list30, [
            C_GetInterfaceList, C_GetInterface, C_LoginUser, C_SessionCancel,
            C_MessageEncryptInit, C_EncryptMessage, C_EncryptMessageBegin,
            C_EncryptMessageNext, C_MessageEncryptFinal, C_MessageDecryptInit,
            C_DecryptMessage, C_DecryptMessageBegin, C_DecryptMessageNext,
            C_MessageDecryptFinal, C_MessageSignInit, C_SignMessage, C_SignMessageBegin,
            C_SignMessageNext, C_MessageSignFinal, C_MessageVerifyInit, C_VerifyMessage,
            C_VerifyMessageBegin, C_VerifyMessageNext, C_MessageVerifyFinal,
        ]);

        let mut version = CK_VERSION { major: 2, minor: 40 };
        let mut interface: *mut CK_INTERFACE = ptr::null_mut();
        let rv = unsafe { raw.lib.C_GetInterface(name.as_mut_ptr(), &mut version, &mut interface, 0) };
        assert_rv(rv, CKR_OK, "C_GetInterface(PKCS 11, 2.40)");
        assert_eq!(interface_version(unsafe { &*interface }), (2, 40));

        // The default interface (NULL name and version) is usable too.
        let mut interface: *mut CK_INTERFACE = ptr::null_mut();
        let rv = unsafe { raw.lib.C_GetInterface(ptr::null_mut(), ptr::null_mut(), &mut interface, 0) };
        assert_rv(rv, CKR_OK, "C_GetInterface(NULL, NULL)");
        assert_eq!(interface_name(unsafe { &*interface }), "PKCS 11");

        let rv = unsafe { raw.lib.C_GetInterface(name.as_mut_ptr(), ptr::null_mut(), ptr::null_mut(), 0) };
        assert_rv(rv, CKR_ARGUMENTS_BAD, "C_GetInterface with NULL output");
    }
}

isolated_test! {
    fn calls_before_initialize_are_refused() {
        let raw = Raw::load();
        let mut info = CK_INFO::default();
        assert_rv(raw!(raw, C_GetInfo(&mut info)), CKR_CRYPTOKI_NOT_INITIALIZED, "C_GetInfo");
        let mut count: CK_ULONG = 0;
        assert_rv(
            raw!(raw, C_GetSlotList(CK_FALSE, ptr::null_mut(), &mut count)),
            CKR_CRYPTOKI_NOT_INITIALIZED,
            "C_GetSlotList",
        );
        let mut session = CK_INVALID_HANDLE;
        assert_rv(
            raw!(raw, C_OpenSession(0, CKF_SERIAL_SESSION, ptr::null_mut(), None, &mut session)),
            CKR_CRYPTOKI_NOT_INITIALIZED,
            "C_OpenSession",
        );
        assert_rv(raw!(raw, C_CloseAllSessions(0)), CKR_CRYPTOKI_NOT_INITIALIZED, "C_CloseAllSessions");
        let mut random = [0u8; 8];
        assert_rv(
            raw!(raw, C_GenerateRandom(1, random.as_mut_ptr(), 8)),
            CKR_CRYPTOKI_NOT_INITIALIZED,
            "C_GenerateRandom",
        );
        assert_rv(raw.finalize(), CKR_CRYPTOKI_NOT_INITIALIZED, "C_Finalize");

        assert_rv(raw.initialize(), CKR_OK, "C_Initialize(NULL)");
        assert_rv(raw.initialize(), CKR_CRYPTOKI_ALREADY_INITIALIZED, "second C_Initialize");
        assert_rv(raw!(raw, C_GetInfo(&mut info)), CKR_OK, "C_GetInfo after init");
        assert!(info.cryptokiVersion.major >= 2);
        if is_ferrohsm() {
            let manufacturer = String::from_utf8_lossy(&info.manufacturerID);
            assert_eq!(manufacturer.trim_end(), "ferrohsm", "C_GetInfo manufacturer");
        }
        assert_rv(
            raw!(raw, C_Finalize(&mut count as *mut CK_ULONG as *mut c_void)),
            CKR_ARGUMENTS_BAD,
            "C_Finalize(non-NULL)",
        );
        assert_rv(raw.finalize(), CKR_OK, "C_Finalize");
        assert_rv(raw!(raw, C_GetInfo(&mut info)), CKR_CRYPTOKI_NOT_INITIALIZED, "C_GetInfo after finalize");
        assert_rv(raw.finalize(), CKR_CRYPTOKI_NOT_INITIALIZED, "second C_Finalize");

        // The library can be initialised again after C_Finalize and works.
        assert_rv(raw.initialize(), CKR_OK, "C_Initialize after C_Finalize");
        assert_rv(
            raw!(raw, C_GetSlotList(CK_FALSE, ptr::null_mut(), &mut count)),
            CKR_OK,
            "C_GetSlotList after re-initialise",
        );
        assert!(count >= 1, "the spare slot is always there");
        assert_rv(raw.finalize(), CKR_OK, "final C_Finalize");
    }
}

unsafe extern "C" fn create_mutex(mutex: *mut *mut c_void) -> CK_RV {
    if mutex.is_null() {
        return CKR_ARGUMENTS_BAD;
    }
    *mutex = Box::into_raw(Box::new(0u64)) as *mut c_void;
    CKR_OK
}

unsafe extern "C" fn destroy_mutex(mutex: *mut c_void) -> CK_RV {
    if !mutex.is_null() {
        drop(Box::from_raw(mutex as *mut u64));
    }
    CKR_OK
}

// The child runs on one thread, so no real locking is needed behind these callbacks.
unsafe extern "C" fn lock_mutex(_mutex: *mut c_void) -> CK_RV {
    CKR_OK
}

unsafe extern "C" fn unlock_mutex(_mutex: *mut c_void) -> CK_RV {
    CKR_OK
}

fn init_args() -> CK_C_INITIALIZE_ARGS {
    CK_C_INITIALIZE_ARGS {
        CreateMutex: None,
        DestroyMutex: None,
        LockMutex: None,
        UnlockMutex: None,
        flags: 0,
        pReserved: ptr::null_mut(),
    }
}

fn initialize_with(raw: &Raw, args: &mut CK_C_INITIALIZE_ARGS) -> CK_RV {
    raw!(
        raw,
        C_Initialize(args as *mut CK_C_INITIALIZE_ARGS as *mut c_void)
    )
}

isolated_test! {
    fn initialize_argument_rules() {
        let raw = Raw::load();
        let mut info = CK_INFO::default();
        let mut dummy = 0u64;

        let mut args = init_args();
        args.pReserved = &mut dummy as *mut u64 as *mut c_void;
        assert_rv(initialize_with(&raw, &mut args), CKR_ARGUMENTS_BAD, "pReserved non-NULL");

        let mut args = init_args();
        args.CreateMutex = Some(create_mutex);
        assert_rv(initialize_with(&raw, &mut args), CKR_ARGUMENTS_BAD, "only CreateMutex");

        let mut args = init_args();
        args.CreateMutex = Some(create_mutex);
        args.DestroyMutex = Some(destroy_mutex);
        args.LockMutex = Some(lock_mutex);
        args.flags = CKF_OS_LOCKING_OK;
        assert_rv(initialize_with(&raw, &mut args), CKR_ARGUMENTS_BAD, "three of four callbacks");

        // None of the refused calls initialised the library.
        assert_rv(raw!(raw, C_GetInfo(&mut info)), CKR_CRYPTOKI_NOT_INITIALIZED, "after refused C_Initialize");

        let mut args = init_args();
        args.flags = CKF_OS_LOCKING_OK;
        assert_rv(initialize_with(&raw, &mut args), CKR_OK, "no callbacks, CKF_OS_LOCKING_OK");
        assert_rv(raw.finalize(), CKR_OK, "C_Finalize");

        let mut args = init_args();
        assert_rv(initialize_with(&raw, &mut args), CKR_OK, "no callbacks, no flags");
        assert_rv(raw.finalize(), CKR_OK, "C_Finalize");

        let mut args = init_args();
        args.CreateMutex = Some(create_mutex);
        args.DestroyMutex = Some(destroy_mutex);
        args.LockMutex = Some(lock_mutex);
        args.UnlockMutex = Some(unlock_mutex);
        args.flags = CKF_OS_LOCKING_OK;
        assert_rv(initialize_with(&raw, &mut args), CKR_OK, "all callbacks and CKF_OS_LOCKING_OK");
        assert_rv(raw!(raw, C_GetInfo(&mut info)), CKR_OK, "C_GetInfo");
        assert_rv(raw.finalize(), CKR_OK, "C_Finalize");
    }
}

isolated_test! {
    fn racing_initialize_has_exactly_one_winner() {
        let raw = Raw::load();
        const THREADS: usize = 8;
        for round in 0..5 {
            let barrier = Arc::new(Barrier::new(THREADS));
            let f = raw.f;
            let handles: Vec<_> = (0..THREADS)
                .map(|_| {
                    let barrier = Arc::clone(&barrier);
                    std::thread::spawn(move || {
                        barrier.wait();
                        unsafe { (f.C_Initialize.expect("C_Initialize"))(ptr::null_mut()) }
                    })
                })
                .collect();
            let codes: Vec<CK_RV> = handles.into_iter().map(|h| h.join().expect("thread")).collect();
            let winners = codes.iter().filter(|rv| **rv == CKR_OK).count();
            assert_eq!(winners, 1, "round {round}: codes {codes:?}");
            assert!(
                codes.iter().all(|rv| *rv == CKR_OK || *rv == CKR_CRYPTOKI_ALREADY_INITIALIZED),
                "round {round}: codes {codes:?}"
            );
            let mut count: CK_ULONG = 0;
            assert_rv(
                raw!(raw, C_GetSlotList(CK_FALSE, ptr::null_mut(), &mut count)),
                CKR_OK,
                "library usable after the race",
            );
            assert_rv(raw.finalize(), CKR_OK, "C_Finalize");
        }
    }
}

isolated_test! {
    fn null_pointer_arguments_are_refused() {
        let token = Token::new();
        let raw = token.raw();
        let slot = token.slot.id();
        let bad = CKR_ARGUMENTS_BAD;
        let null_ulong: *mut CK_ULONG = ptr::null_mut();

        assert_rv(raw!(raw, C_GetInfo(ptr::null_mut())), bad, "C_GetInfo(NULL)");
        assert_rv(raw!(raw, C_GetSlotList(CK_TRUE, ptr::null_mut(), null_ulong)), bad, "C_GetSlotList count NULL");
        assert_rv(raw!(raw, C_GetSlotInfo(slot, ptr::null_mut())), bad, "C_GetSlotInfo(NULL)");
        assert_rv(raw!(raw, C_GetTokenInfo(slot, ptr::null_mut())), bad, "C_GetTokenInfo(NULL)");
        assert_rv(raw!(raw, C_GetMechanismList(slot, ptr::null_mut(), null_ulong)), bad, "C_GetMechanismList count NULL");
        assert_rv(
            raw!(raw, C_GetMechanismInfo(slot, CKM_RSA_PKCS, ptr::null_mut())),
            bad,
            "C_GetMechanismInfo(NULL)",
        );
        assert_rv(
            raw!(raw, C_OpenSession(slot, CKF_SERIAL_SESSION, ptr::null_mut(), None, ptr::null_mut())),
            bad,
            "C_OpenSession(phSession NULL)",
        );

        let session = raw.open_session(token.slot, true);
        assert_rv(raw!(raw, C_GetSessionInfo(session, ptr::null_mut())), bad, "C_GetSessionInfo(NULL)");
        assert_rv(
            raw!(raw, C_Login(session, CKU_USER, ptr::null_mut(), 8)),
            bad,
            "C_Login(pPin NULL, len 8)",
        );
        assert_rv(raw.login(session, CKU_USER, USER_PIN), CKR_OK, "C_Login");
        assert_rv(raw!(raw, C_FindObjectsInit(session, ptr::null_mut(), 1)), bad, "C_FindObjectsInit(NULL, 1)");
        assert_rv(raw!(raw, C_GenerateRandom(session, ptr::null_mut(), 16)), bad, "C_GenerateRandom(NULL)");
        assert_rv(raw!(raw, C_DigestInit(session, ptr::null_mut())), bad, "C_DigestInit(NULL)");
        let mut object = CK_INVALID_HANDLE;
        assert_rv(raw!(raw, C_CreateObject(session, ptr::null_mut(), 2, &mut object)), bad, "C_CreateObject(NULL, 2)");

        let mut class = CKO_DATA;
        let mut template = [CK_ATTRIBUTE {
            type_: CKA_CLASS,
            pValue: &mut class as *mut CK_ULONG as *mut c_void,
            ulValueLen: std::mem::size_of::<CK_ULONG>() as CK_ULONG,
        }];
        assert_rv(
            raw!(raw, C_CreateObject(session, template.as_mut_ptr(), 1, ptr::null_mut())),
            bad,
            "C_CreateObject(phObject NULL)",
        );
        assert_rv(raw!(raw, C_CreateObject(session, template.as_mut_ptr(), 1, &mut object)), CKR_OK, "C_CreateObject");
        assert_rv(
            raw!(raw, C_GetAttributeValue(session, object, ptr::null_mut(), 1)),
            bad,
            "C_GetAttributeValue(NULL, 1)",
        );
        assert_rv(
            raw!(raw, C_SetAttributeValue(session, object, ptr::null_mut(), 1)),
            bad,
            "C_SetAttributeValue(NULL, 1)",
        );

        let mut mechanism = mech(CKM_SHA256);
        assert_rv(raw!(raw, C_DigestInit(session, &mut mechanism)), CKR_OK, "C_DigestInit");
        let data = *b"abc";
        assert_rv(
            raw!(raw, C_Digest(session, data.as_ptr() as *mut u8, 3, ptr::null_mut(), null_ulong)),
            bad,
            "C_Digest(pulDigestLen NULL)",
        );
        assert_rv(
            raw!(raw, C_GenerateKeyPair(session, ptr::null_mut(), ptr::null_mut(), 0, ptr::null_mut(), 0, &mut object, &mut object)),
            bad,
            "C_GenerateKeyPair(pMechanism NULL)",
        );
    }
}

/// Checks that a call the C boundary refuses with CKR_ARGUMENTS_BAD ends the operation like
/// any other failure (PKCS#11 3.0 §5.12-5.15: every call but a length query or
/// CKR_BUFFER_TOO_SMALL "always terminates the active operation"; a failed update does
/// too): `probe`, which would succeed or fail differently on a live operation, then gets
/// CKR_OPERATION_NOT_INITIALIZED and a new init is not CKR_OPERATION_ACTIVE.
fn check_bad_arguments_end(
    what: &str,
    init: &dyn Fn() -> CK_RV,
    bad: &dyn Fn() -> CK_RV,
    probe: &dyn Fn() -> CK_RV,
) {
    assert_rv(init(), CKR_OK, &format!("{what}: init"));
    assert_rv(bad(), CKR_ARGUMENTS_BAD, what);
    assert_rv(
        probe(),
        CKR_OPERATION_NOT_INITIALIZED,
        &format!("{what} ended the operation"),
    );
    assert_rv(init(), CKR_OK, &format!("{what}: a new init after it"));
    // Ends the new operation the same way, for the next case.
    assert_rv(bad(), CKR_ARGUMENTS_BAD, what);
}

isolated_test! {
    fn argument_errors_at_the_c_boundary_end_the_operation() {
        let token = Token::new();
        let session = token.user();
        let (public, private) = gen_sm2(&session, "boundary");
        let (public, private) = (public.handle(), private.handle());
        let raw = token.raw();
        let h = session.handle();
        let null = ptr::null_mut::<u8>();
        let null_len = ptr::null_mut::<CK_ULONG>();
        let data = b"some data".as_ptr() as *mut u8;
        let mut buf = [0u8; 512];
        let out = buf.as_mut_ptr();
        let out_len = std::cell::Cell::new(buf.len() as CK_ULONG);
        let len = || out_len.as_ptr();
        let query = |f: &dyn Fn(*mut CK_ULONG) -> CK_RV| {
            let mut len: CK_ULONG = 0;
            f(&mut len)
        };

        let digest_init = || raw!(raw, C_DigestInit(h, &mut mech(CKM_SHA256)));
        let digest_probe = || query(&|l| raw!(raw, C_DigestFinal(h, null, l)));
        check_bad_arguments_end("C_Digest(pulDigestLen NULL)", &digest_init, &|| raw!(raw, C_Digest(h, data, 9, out, null_len)), &digest_probe);
        check_bad_arguments_end("C_Digest(pData NULL, 9)", &digest_init, &|| raw!(raw, C_Digest(h, null, 9, out, len())), &digest_probe);
        check_bad_arguments_end("C_DigestUpdate(pPart NULL, 9)", &digest_init, &|| raw!(raw, C_DigestUpdate(h, null, 9)), &digest_probe);
        check_bad_arguments_end("C_DigestFinal(pulDigestLen NULL)", &digest_init, &|| raw!(raw, C_DigestFinal(h, out, null_len)), &digest_probe);

        let encrypt_init = || raw.encrypt_init(h, &mech(CKM_SM2_RAW), public);
        let encrypt_probe = || query(&|l| raw!(raw, C_EncryptFinal(h, null, l)));
        check_bad_arguments_end("C_Encrypt(pulEncryptedDataLen NULL)", &encrypt_init, &|| raw!(raw, C_Encrypt(h, data, 9, out, null_len)), &encrypt_probe);
        check_bad_arguments_end("C_Encrypt(pData NULL, 9)", &encrypt_init, &|| raw!(raw, C_Encrypt(h, null, 9, out, len())), &encrypt_probe);
        check_bad_arguments_end("C_EncryptUpdate(pulEncryptedPartLen NULL)", &encrypt_init, &|| raw!(raw, C_EncryptUpdate(h, data, 9, out, null_len)), &encrypt_probe);
        check_bad_arguments_end("C_EncryptUpdate(pPart NULL, 9)", &encrypt_init, &|| raw!(raw, C_EncryptUpdate(h, null, 9, out, len())), &encrypt_probe);
        check_bad_arguments_end("C_EncryptFinal(pulLastEncryptedPartLen NULL)", &encrypt_init, &|| raw!(raw, C_EncryptFinal(h, out, null_len)), &encrypt_probe);

        let decrypt_init = || raw.decrypt_init(h, &mech(CKM_SM2_RAW), private);
        let decrypt_probe = || query(&|l| raw!(raw, C_DecryptUpdate(h, data, 9, null, l)));
        check_bad_arguments_end("C_Decrypt(pulDataLen NULL)", &decrypt_init, &|| raw!(raw, C_Decrypt(h, data, 9, out, null_len)), &decrypt_probe);
        check_bad_arguments_end("C_Decrypt(pEncryptedData NULL, 9)", &decrypt_init, &|| raw!(raw, C_Decrypt(h, null, 9, out, len())), &decrypt_probe);
        check_bad_arguments_end("C_DecryptUpdate(pulPartLen NULL)", &decrypt_init, &|| raw!(raw, C_DecryptUpdate(h, data, 9, out, null_len)), &decrypt_probe);
        check_bad_arguments_end("C_DecryptFinal(pulLastPartLen NULL)", &decrypt_init, &|| raw!(raw, C_DecryptFinal(h, out, null_len)), &decrypt_probe);

        let sign_init = || raw.sign_init(h, &mech(CKM_SM3_SM2), private);
        let sign_probe = || query(&|l| raw!(raw, C_SignFinal(h, null, l)));
        check_bad_arguments_end("C_Sign(pulSignatureLen NULL)", &sign_init, &|| raw!(raw, C_Sign(h, data, 9, out, null_len)), &sign_probe);
        check_bad_arguments_end("C_Sign(pData NULL, 9)", &sign_init, &|| raw!(raw, C_Sign(h, null, 9, out, len())), &sign_probe);
        check_bad_arguments_end("C_SignUpdate(pPart NULL, 9)", &sign_init, &|| raw!(raw, C_SignUpdate(h, null, 9)), &sign_probe);
        check_bad_arguments_end("C_SignFinal(pulSignatureLen NULL)", &sign_init, &|| raw!(raw, C_SignFinal(h, out, null_len)), &sign_probe);

        let verify_init = || raw.verify_init(h, &mech(CKM_SM3_SM2), public);
        // On a live operation this is CKR_SIGNATURE_INVALID.
        let verify_probe = || raw!(raw, C_VerifyFinal(h, out, 64));
        check_bad_arguments_end("C_Verify(pSignature NULL, 64)", &verify_init, &|| raw!(raw, C_Verify(h, data, 9, null, 64)), &verify_probe);
        check_bad_arguments_end("C_Verify(pData NULL, 9)", &verify_init, &|| raw!(raw, C_Verify(h, null, 9, out, 64)), &verify_probe);
        check_bad_arguments_end("C_VerifyUpdate(pPart NULL, 9)", &verify_init, &|| raw!(raw, C_VerifyUpdate(h, null, 9)), &verify_probe);
        check_bad_arguments_end("C_VerifyFinal(pSignature NULL, 64)", &verify_init, &|| raw!(raw, C_VerifyFinal(h, null, 64)), &verify_probe);
    }
}

/// Checks that once `first` made the operation single-part (a length query or a too-small
/// buffer of C_Encrypt, C_Sign, ...) or multi-part, `mixed` (a call of the other kind) is
/// refused with CKR_OPERATION_ACTIVE, and that the refusal ended the operation, as every
/// failure of these calls does: `probe` gets CKR_OPERATION_NOT_INITIALIZED.
fn check_mix_refused(
    what: &str,
    init: &dyn Fn() -> CK_RV,
    first: &dyn Fn() -> CK_RV,
    mixed: &dyn Fn() -> CK_RV,
    probe: &dyn Fn() -> CK_RV,
) {
    assert_rv(init(), CKR_OK, &format!("{what}: init"));
    assert_rv_in(
        first(),
        &[CKR_OK, CKR_BUFFER_TOO_SMALL],
        &format!("{what}: first call"),
    );
    assert_rv(mixed(), CKR_OPERATION_ACTIVE, what);
    assert_rv(
        probe(),
        CKR_OPERATION_NOT_INITIALIZED,
        &format!("{what}: the refusal ended the operation"),
    );
}

isolated_test! {
    fn single_part_length_query_then_update_or_final_is_refused() {
        let token = Token::new();
        let session = token.user();
        let (public, private) = gen_sm2(&session, "mix");
        let (public, private) = (public.handle(), private.handle());
        let raw = token.raw();
        let h = session.handle();
        let message = b"single or multi";
        let ciphertext = raw.encrypt(h, &mech(CKM_SM2_RAW), public, message).expect("SM2 encrypt");
        // A call with a buffer of `n` bytes (None: a length query).
        let call = |which: OutputCall, input: &[u8], n: Option<usize>| raw.output_call(which, h, input, n).0;
        let part = |f: unsafe extern "C" fn(CK_SESSION_HANDLE, *mut u8, CK_ULONG) -> CK_RV| {
            unsafe { f(h, message.as_ptr() as *mut u8, message.len() as CK_ULONG) }
        };
        let with_out = |f: unsafe extern "C" fn(CK_SESSION_HANDLE, *mut u8, CK_ULONG, *mut u8, *mut CK_ULONG) -> CK_RV, input: &[u8]| {
            let mut buf = [0u8; 512];
            let mut len = buf.len() as CK_ULONG;
            unsafe { f(h, input.as_ptr() as *mut u8, input.len() as CK_ULONG, buf.as_mut_ptr(), &mut len) }
        };
        let last = |f: unsafe extern "C" fn(CK_SESSION_HANDLE, *mut u8, *mut CK_ULONG) -> CK_RV| {
            let mut buf = [0u8; 512];
            let mut len = buf.len() as CK_ULONG;
            unsafe { f(h, buf.as_mut_ptr(), &mut len) }
        };
        let f = raw.f;

        let digest_init = || raw!(raw, C_DigestInit(h, &mut mech(CKM_SHA256)));
        let digest = || call(OutputCall::Digest, message, Some(32));
        let digest_query = || call(OutputCall::Digest, message, None);
        check_mix_refused("C_DigestFinal after a C_Digest length query", &digest_init, &digest_query, &|| last(f.C_DigestFinal.unwrap()), &digest);
        check_mix_refused("C_DigestUpdate after a C_Digest length query", &digest_init, &digest_query, &|| part(f.C_DigestUpdate.unwrap()), &digest);
        check_mix_refused("C_DigestFinal after C_Digest with a short buffer", &digest_init, &|| call(OutputCall::Digest, message, Some(4)), &|| last(f.C_DigestFinal.unwrap()), &digest);
        check_mix_refused("C_Digest after a C_DigestFinal length query", &digest_init, &|| call(OutputCall::DigestFinal, &[], None), &digest, &digest);

        let encrypt_init = || raw.encrypt_init(h, &mech(CKM_SM2_RAW), public);
        let encrypt = || call(OutputCall::Encrypt, message, Some(512));
        let encrypt_query = || call(OutputCall::Encrypt, message, None);
        check_mix_refused("C_EncryptUpdate after a C_Encrypt length query", &encrypt_init, &encrypt_query, &|| with_out(f.C_EncryptUpdate.unwrap(), message), &encrypt);
        check_mix_refused("C_EncryptFinal after a C_Encrypt length query", &encrypt_init, &encrypt_query, &|| last(f.C_EncryptFinal.unwrap()), &encrypt);

        let decrypt_init = || raw.decrypt_init(h, &mech(CKM_SM2_RAW), private);
        let decrypt = || call(OutputCall::Decrypt, &ciphertext, Some(512));
        let decrypt_query = || call(OutputCall::Decrypt, &ciphertext, None);
        check_mix_refused("C_DecryptUpdate after a C_Decrypt length query", &decrypt_init, &decrypt_query, &|| with_out(f.C_DecryptUpdate.unwrap(), &ciphertext), &decrypt);
        check_mix_refused("C_DecryptFinal after a C_Decrypt length query", &decrypt_init, &decrypt_query, &|| last(f.C_DecryptFinal.unwrap()), &decrypt);
        check_mix_refused("C_DecryptFinal after C_Decrypt with a short buffer", &decrypt_init, &|| call(OutputCall::Decrypt, &ciphertext, Some(1)), &|| last(f.C_DecryptFinal.unwrap()), &decrypt);

        let sign_init = || raw.sign_init(h, &mech(CKM_SM3_SM2), private);
        let sign = || call(OutputCall::Sign, message, Some(64));
        let sign_query = || call(OutputCall::Sign, message, None);
        check_mix_refused("C_SignUpdate after a C_Sign length query", &sign_init, &sign_query, &|| part(f.C_SignUpdate.unwrap()), &sign);
        check_mix_refused("C_SignFinal after a C_Sign length query", &sign_init, &sign_query, &|| last(f.C_SignFinal.unwrap()), &sign);

        // Without the mix, the two-call pattern still works.
        assert_rv(digest_init(), CKR_OK, "C_DigestInit");
        assert_rv(digest_query(), CKR_OK, "C_Digest length query");
        assert_rv(digest(), CKR_OK, "C_Digest");
    }
}

isolated_test! {
    fn output_buffer_protocol() {
        let token = Token::new();
        let session = token.user();
        let pair = gen_rsa(&session, 2048, "buffers", false);
        let raw = token.raw();
        let h = session.handle();
        let message = b"output buffer protocol";

        // C_Encrypt: length query, too small, then the real call; then the operation is over.
        let rsa_pkcs = mech(CKM_RSA_PKCS);
        assert_rv(raw.encrypt_init(h, &rsa_pkcs, pair.public.handle()), CKR_OK, "C_EncryptInit");
        let (rv, len, _) = raw.output_call(OutputCall::Encrypt, h, message, None);
        assert_rv(rv, CKR_OK, "C_Encrypt length query");
        assert_eq!(len, 256, "RSA-2048 ciphertext length");
        let (rv, len, _) = raw.output_call(OutputCall::Encrypt, h, message, Some(10));
        assert_rv(rv, CKR_BUFFER_TOO_SMALL, "C_Encrypt with 10 bytes");
        assert_eq!(len, 256, "needed length written back");
        let (rv, len, ciphertext) = raw.output_call(OutputCall::Encrypt, h, message, Some(256));
        assert_rv(rv, CKR_OK, "C_Encrypt after BUFFER_TOO_SMALL (operation kept)");
        assert_eq!((len, ciphertext.len()), (256, 256));
        let (rv, _, _) = raw.output_call(OutputCall::Encrypt, h, message, Some(256));
        assert_rv(rv, CKR_OPERATION_NOT_INITIALIZED, "C_Encrypt after the operation finished");

        // C_Decrypt: the length query may over-estimate; too small keeps the operation.
        assert_rv(raw.decrypt_init(h, &rsa_pkcs, pair.private.handle()), CKR_OK, "C_DecryptInit");
        let (rv, len, _) = raw.output_call(OutputCall::Decrypt, h, &ciphertext, None);
        assert_rv(rv, CKR_OK, "C_Decrypt length query");
        assert!(len as usize >= message.len() && len <= 256, "decrypt length query {len}");
        let (rv, len, _) = raw.output_call(OutputCall::Decrypt, h, &ciphertext, Some(1));
        assert_rv(rv, CKR_BUFFER_TOO_SMALL, "C_Decrypt with 1 byte");
        assert!(len as usize >= message.len(), "needed length {len} written back");
        let (rv, _, plaintext) = raw.output_call(OutputCall::Decrypt, h, &ciphertext, Some(len as usize));
        assert_rv(rv, CKR_OK, "C_Decrypt after BUFFER_TOO_SMALL");
        assert_eq!(plaintext, message);

        // C_Sign.
        let sha256_rsa = mech(CKM_SHA256_RSA_PKCS);
        assert_rv(raw.sign_init(h, &sha256_rsa, pair.private.handle()), CKR_OK, "C_SignInit");
        let (rv, len, _) = raw.output_call(OutputCall::Sign, h, message, None);
        assert_rv(rv, CKR_OK, "C_Sign length query");
        assert_eq!(len, 256);
        let (rv, len, _) = raw.output_call(OutputCall::Sign, h, message, Some(255));
        assert_rv(rv, CKR_BUFFER_TOO_SMALL, "C_Sign with 255 bytes");
        assert_eq!(len, 256);
        let (rv, _, signature) = raw.output_call(OutputCall::Sign, h, message, Some(256));
        assert_rv(rv, CKR_OK, "C_Sign");
        assert_rv(
            raw.verify(h, &sha256_rsa, pair.public.handle(), message, &signature),
            CKR_OK,
            "C_Verify of that signature",
        );

        // C_DigestFinal.
        let mut sha256 = mech(CKM_SHA256);
        assert_rv(raw!(raw, C_DigestInit(h, &mut sha256)), CKR_OK, "C_DigestInit");
        assert_rv(
            raw!(raw, C_DigestUpdate(h, message.as_ptr() as *mut u8, message.len() as CK_ULONG)),
            CKR_OK,
            "C_DigestUpdate",
        );
        let (rv, len, _) = raw.output_call(OutputCall::DigestFinal, h, &[], None);
        assert_rv(rv, CKR_OK, "C_DigestFinal length query");
        assert_eq!(len, 32);
        let (rv, len, _) = raw.output_call(OutputCall::DigestFinal, h, &[], Some(4));
        assert_rv(rv, CKR_BUFFER_TOO_SMALL, "C_DigestFinal with 4 bytes");
        assert_eq!(len, 32);
        let (rv, _, digest) = raw.output_call(OutputCall::DigestFinal, h, &[], Some(32));
        assert_rv(rv, CKR_OK, "C_DigestFinal");
        use sha2::Digest;
        assert_eq!(digest, sha2::Sha256::digest(message).to_vec());

        // C_GetAttributeValue: a short buffer gives BUFFER_TOO_SMALL and, per the spec,
        // CK_UNAVAILABLE_INFORMATION in that attribute's length; NULL gives the length.
        let mut small = [0u8; 4];
        let mut template = [CK_ATTRIBUTE {
            type_: CKA_MODULUS,
            pValue: small.as_mut_ptr() as *mut c_void,
            ulValueLen: 4,
        }];
        let rv = raw!(raw, C_GetAttributeValue(h, pair.public.handle(), template.as_mut_ptr(), 1));
        assert_rv(rv, CKR_BUFFER_TOO_SMALL, "C_GetAttributeValue short buffer");
        assert_eq!(template[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
        template[0].pValue = ptr::null_mut();
        template[0].ulValueLen = 0;
        let rv = raw!(raw, C_GetAttributeValue(h, pair.public.handle(), template.as_mut_ptr(), 1));
        assert_rv(rv, CKR_OK, "C_GetAttributeValue length query");
        assert_eq!(template[0].ulValueLen, 256);

        // C_GetSlotList / C_GetMechanismList with a too-small array.
        let mut count: CK_ULONG = 0;
        assert_rv(raw!(raw, C_GetSlotList(CK_FALSE, ptr::null_mut(), &mut count)), CKR_OK, "slot count");
        assert!(count >= 2, "token slot and spare slot");
        let mut slots = vec![0 as CK_SLOT_ID; count as usize];
        let mut short: CK_ULONG = 1;
        assert_rv(
            raw!(raw, C_GetSlotList(CK_FALSE, slots.as_mut_ptr(), &mut short)),
            CKR_BUFFER_TOO_SMALL,
            "C_GetSlotList with room for one",
        );
        assert_eq!(short, count);
        let mut mech_count: CK_ULONG = 0;
        let slot = token.slot.id();
        assert_rv(raw!(raw, C_GetMechanismList(slot, ptr::null_mut(), &mut mech_count)), CKR_OK, "mechanism count");
        assert!(mech_count > 1);
        let mut mechs = vec![0 as CK_MECHANISM_TYPE; mech_count as usize];
        let mut short: CK_ULONG = 1;
        assert_rv(
            raw!(raw, C_GetMechanismList(slot, mechs.as_mut_ptr(), &mut short)),
            CKR_BUFFER_TOO_SMALL,
            "C_GetMechanismList with room for one",
        );
        assert_eq!(short, mech_count);
    }
}

isolated_test! {
    fn fork_child_initializes_and_works() {
        let token = Token::new();
        let session = token.user();
        let pair = gen_rsa(&session, 2048, "forked", true);
        let message = b"signed on both sides of fork()";
        let parent_signature = session
            .sign(&Mechanism::Sha256RsaPkcs, pair.private, message)
            .expect("parent sign");

        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // The child: a fresh library state, like pkcs11-tool --test-fork.
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let raw = Raw::load();
                assert_rv(raw.initialize(), CKR_OK, "C_Initialize in the fork child");
                let p11 = cryptoki::context::Pkcs11::new(module_path()).expect("load");
                let slot = slot_by_label(&p11, TOKEN_LABEL).expect("token visible in child");
                let child = p11.open_rw_session(slot).expect("open session in child");
                child.login(UserType::User, Some(&pin(USER_PIN))).expect("login in child");
                let keys = child
                    .find_objects(&[
                        Attribute::Class(ObjectClass::PRIVATE_KEY),
                        Attribute::Label(b"forked".to_vec()),
                    ])
                    .expect("find in child");
                assert_eq!(keys.len(), 1, "token key visible in child");
                let signature = child
                    .sign(&Mechanism::Sha256RsaPkcs, keys[0], message)
                    .expect("sign in child");
                assert_eq!(signature, parent_signature, "PKCS#1 v1.5 signatures are deterministic");
                child.close().expect("close");
                assert_rv(raw.finalize(), CKR_OK, "C_Finalize in child");
            }));
            unsafe { libc::_exit(if outcome.is_ok() { 0 } else { 1 }) };
        }
        let mut status = 0;
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(waited, pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "fork child failed (status {status:#x})"
        );
        // The parent's state is untouched by the child.
        session
            .verify(&Mechanism::Sha256RsaPkcs, pair.public, message, &parent_signature)
            .expect("parent still works after the child exited");
        let again = session
            .sign(&Mechanism::Sha256RsaPkcs, pair.private, message)
            .expect("parent sign after fork");
        assert_eq!(again, parent_signature);
    }
}

isolated_test! {
    fn unloading_after_use_on_a_thread_is_safe() {
        // p11-kit and PyKCS11 dlclose a module after C_Finalize, and the threads that used
        // it live on. Nothing the module left behind (thread-local destructors, atexit
        // handlers) may point into the unloaded library.
        fn use_and_unload(round: u32) {
            let p11 = cryptoki::context::Pkcs11::new(module_path()).expect("load");
            p11.initialize(cryptoki::context::CInitializeArgs::new(
                cryptoki::context::CInitializeFlags::OS_LOCKING_OK,
            ))
            .expect("C_Initialize");
            let label = format!("unload-{round}");
            let slot = init_token_with(&p11, &label, Some(USER_PIN));
            let session = p11.open_rw_session(slot).expect("session");
            session.login(UserType::User, Some(&pin(USER_PIN))).expect("login");
            let pair = gen_rsa(&session, 2048, "unload", false);
            let signature = session
                .sign(&Mechanism::Sha256RsaPkcs, pair.private, b"before unload")
                .expect("sign");
            session
                .verify(&Mechanism::Sha256RsaPkcs, pair.public, b"before unload", &signature)
                .expect("verify");
            let ciphertext = session.encrypt(&Mechanism::RsaPkcs, pair.public, b"x").expect("encrypt");
            session.decrypt(&Mechanism::RsaPkcs, pair.private, &ciphertext).expect("decrypt");
            session.digest(&Mechanism::Sha256, b"x").expect("digest");
            session.generate_random_vec(32).expect("random");
            drop(session);
            p11.finalize().expect("C_Finalize");
            // The last handle is gone: the library is dlclosed here.
        }
        for round in 0..2 {
            std::thread::spawn(move || use_and_unload(round))
                .join()
                .expect("a thread that used the module and unloaded it exits cleanly");
        }
    }
}

/// The PKCS#11 3.0 function list, from C_GetInterface("PKCS 11", 3.0).
fn function_list_3_0(raw: &Raw) -> &'static CK_FUNCTION_LIST_3_0 {
    let mut name = *b"PKCS 11\0";
    let mut version = CK_VERSION { major: 3, minor: 0 };
    let mut interface: *mut CK_INTERFACE = ptr::null_mut();
    let rv = unsafe {
        raw.lib
            .C_GetInterface(name.as_mut_ptr(), &mut version, &mut interface, 0)
    };
    assert_rv(rv, CKR_OK, "C_GetInterface(PKCS 11, 3.0)");
    unsafe { &*((*interface).pFunctionList as *const CK_FUNCTION_LIST_3_0) }
}

isolated_test! {
    fn login_user_and_session_cancel_from_3_0() {
        let token = Token::new();
        let raw = token.raw();
        let list = function_list_3_0(&raw);
        let login_user = list.C_LoginUser.expect("C_LoginUser");
        let session_cancel = list.C_SessionCancel.expect("C_SessionCancel");
        let h = raw.open_session(token.slot, true);
        // ferrohsm has one user per role: no user name (NULL, 0).

        let mut wrong = *b"not-the-pin";
        let rv = unsafe { login_user(h, CKU_USER, wrong.as_mut_ptr(), wrong.len() as CK_ULONG, ptr::null_mut(), 0) };
        assert_rv(rv, CKR_PIN_INCORRECT, "C_LoginUser with a wrong PIN");
        let mut good = USER_PIN.as_bytes().to_vec();
        let rv = unsafe { login_user(h, CKU_USER, good.as_mut_ptr(), good.len() as CK_ULONG, ptr::null_mut(), 0) };
        assert_rv(rv, CKR_OK, "C_LoginUser");
        let mut info = CK_SESSION_INFO::default();
        assert_rv(raw!(raw, C_GetSessionInfo(h, &mut info)), CKR_OK, "C_GetSessionInfo");
        assert_eq!(info.state, CKS_RW_USER_FUNCTIONS);

        // C_SessionCancel ends the named operation; a new one can start.
        let mut sha256 = mech(CKM_SHA256);
        assert_rv(raw!(raw, C_DigestInit(h, &mut sha256)), CKR_OK, "C_DigestInit");
        assert_rv(unsafe { session_cancel(h, CKF_DIGEST) }, CKR_OK, "C_SessionCancel(CKF_DIGEST)");
        let (rv, _, _) = raw.output_call(OutputCall::Digest, h, b"abc", Some(32));
        assert_rv(rv, CKR_OPERATION_NOT_INITIALIZED, "C_Digest after C_SessionCancel");
        assert_rv(raw!(raw, C_DigestInit(h, &mut sha256)), CKR_OK, "C_DigestInit after cancel");
        let (rv, _, digest) = raw.output_call(OutputCall::Digest, h, b"abc", Some(32));
        assert_rv(rv, CKR_OK, "C_Digest");
        assert_eq!(digest.len(), 32);

        let mut class = CKO_DATA;
        let mut template = [CK_ATTRIBUTE {
            type_: CKA_CLASS,
            pValue: &mut class as *mut CK_ULONG as *mut c_void,
            ulValueLen: std::mem::size_of::<CK_ULONG>() as CK_ULONG,
        }];
        assert_rv(raw!(raw, C_FindObjectsInit(h, template.as_mut_ptr(), 1)), CKR_OK, "C_FindObjectsInit");
        assert_rv(unsafe { session_cancel(h, CKF_FIND_OBJECTS) }, CKR_OK, "C_SessionCancel(CKF_FIND_OBJECTS)");
        assert_rv(raw!(raw, C_FindObjectsFinal(h)), CKR_OPERATION_NOT_INITIALIZED, "find cancelled");
        assert_rv(raw!(raw, C_FindObjectsInit(h, template.as_mut_ptr(), 1)), CKR_OK, "C_FindObjectsInit after cancel");
        assert_rv(raw!(raw, C_FindObjectsFinal(h)), CKR_OK, "C_FindObjectsFinal");
    }
}
