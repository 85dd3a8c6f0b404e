//! Session, login and PIN functions, C_GenerateRandom, and the legacy parallel-function stubs.

use super::args::{bytes_in, bytes_out, out, write};
use super::guard::with_library;
use crate::api::session as api;
use crate::error::fail;
use cryptoki_sys::*;

#[no_mangle]
pub unsafe extern "C" fn C_InitPIN(
    hSession: CK_SESSION_HANDLE,
    pPin: CK_UTF8CHAR_PTR,
    ulPinLen: CK_ULONG,
) -> CK_RV {
    with_library("C_InitPIN", |lib| {
        api::init_pin(lib, hSession, bytes_in(pPin, ulPinLen)?)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_SetPIN(
    hSession: CK_SESSION_HANDLE,
    pOldPin: CK_UTF8CHAR_PTR,
    ulOldLen: CK_ULONG,
    pNewPin: CK_UTF8CHAR_PTR,
    ulNewLen: CK_ULONG,
) -> CK_RV {
    with_library("C_SetPIN", |lib| {
        api::set_pin(
            lib,
            hSession,
            bytes_in(pOldPin, ulOldLen)?,
            bytes_in(pNewPin, ulNewLen)?,
        )
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_OpenSession(
    slotID: CK_SLOT_ID,
    flags: CK_FLAGS,
    pApplication: CK_VOID_PTR,
    Notify: CK_NOTIFY,
    phSession: CK_SESSION_HANDLE_PTR,
) -> CK_RV {
    // Callbacks are never made: no function runs long enough to report progress.
    let _ = (pApplication, Notify);
    with_library("C_OpenSession", |lib| {
        let handle = out(phSession)?;
        *handle = api::open(lib, slotID, flags)?;
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_CloseSession(hSession: CK_SESSION_HANDLE) -> CK_RV {
    with_library("C_CloseSession", |lib| api::close(lib, hSession))
}

#[no_mangle]
pub unsafe extern "C" fn C_CloseAllSessions(slotID: CK_SLOT_ID) -> CK_RV {
    with_library("C_CloseAllSessions", |lib| api::close_all(lib, slotID))
}

#[no_mangle]
pub unsafe extern "C" fn C_GetSessionInfo(
    hSession: CK_SESSION_HANDLE,
    pInfo: CK_SESSION_INFO_PTR,
) -> CK_RV {
    with_library("C_GetSessionInfo", |lib| {
        write(pInfo, api::info(lib, hSession)?)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_GetOperationState(
    hSession: CK_SESSION_HANDLE,
    pOperationState: CK_BYTE_PTR,
    pulOperationStateLen: CK_ULONG_PTR,
) -> CK_RV {
    let _ = (pOperationState, pulOperationStateLen);
    with_library("C_GetOperationState", |lib| {
        lib.session(hSession)?;
        // Saving an operation would export key-bound state: not offered.
        fail(CKR_FUNCTION_NOT_SUPPORTED)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_SetOperationState(
    hSession: CK_SESSION_HANDLE,
    pOperationState: CK_BYTE_PTR,
    ulOperationStateLen: CK_ULONG,
    hEncryptionKey: CK_OBJECT_HANDLE,
    hAuthenticationKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    let _ = (
        pOperationState,
        ulOperationStateLen,
        hEncryptionKey,
        hAuthenticationKey,
    );
    with_library("C_SetOperationState", |lib| {
        lib.session(hSession)?;
        fail(CKR_FUNCTION_NOT_SUPPORTED)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_Login(
    hSession: CK_SESSION_HANDLE,
    userType: CK_USER_TYPE,
    pPin: CK_UTF8CHAR_PTR,
    ulPinLen: CK_ULONG,
) -> CK_RV {
    with_library("C_Login", |lib| {
        api::login(lib, hSession, userType, bytes_in(pPin, ulPinLen)?)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_LoginUser(
    hSession: CK_SESSION_HANDLE,
    userType: CK_USER_TYPE,
    pPin: CK_UTF8CHAR_PTR,
    ulPinLen: CK_ULONG,
    pUsername: CK_UTF8CHAR_PTR,
    ulUsernameLen: CK_ULONG,
) -> CK_RV {
    with_library("C_LoginUser", |lib| {
        api::login_user(
            lib,
            hSession,
            userType,
            bytes_in(pPin, ulPinLen)?,
            bytes_in(pUsername, ulUsernameLen)?,
        )
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_Logout(hSession: CK_SESSION_HANDLE) -> CK_RV {
    with_library("C_Logout", |lib| api::logout(lib, hSession))
}

#[no_mangle]
pub unsafe extern "C" fn C_SessionCancel(hSession: CK_SESSION_HANDLE, flags: CK_FLAGS) -> CK_RV {
    with_library("C_SessionCancel", |lib| api::cancel(lib, hSession, flags))
}

#[no_mangle]
pub unsafe extern "C" fn C_SeedRandom(
    hSession: CK_SESSION_HANDLE,
    pSeed: CK_BYTE_PTR,
    ulSeedLen: CK_ULONG,
) -> CK_RV {
    with_library("C_SeedRandom", |lib| {
        api::seed_random(lib, hSession, bytes_in(pSeed, ulSeedLen)?)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_GenerateRandom(
    hSession: CK_SESSION_HANDLE,
    RandomData: CK_BYTE_PTR,
    ulRandomLen: CK_ULONG,
) -> CK_RV {
    with_library("C_GenerateRandom", |lib| {
        api::generate_random(lib, hSession, bytes_out(RandomData, ulRandomLen)?)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_GetFunctionStatus(hSession: CK_SESSION_HANDLE) -> CK_RV {
    with_library("C_GetFunctionStatus", |lib| {
        lib.session(hSession)?;
        fail(CKR_FUNCTION_NOT_PARALLEL)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_CancelFunction(hSession: CK_SESSION_HANDLE) -> CK_RV {
    with_library("C_CancelFunction", |lib| {
        lib.session(hSession)?;
        fail(CKR_FUNCTION_NOT_PARALLEL)
    })
}
