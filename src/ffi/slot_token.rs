//! Slot and token management functions.

use super::args::{bytes_in, list_out, write};
use super::guard::with_library;
use crate::api::general as api;
use crate::error::fail;
use cryptoki_sys::*;

#[no_mangle]
pub unsafe extern "C" fn C_GetSlotList(
    tokenPresent: CK_BBOOL,
    pSlotList: CK_SLOT_ID_PTR,
    pulCount: CK_ULONG_PTR,
) -> CK_RV {
    // Every slot has a token present (the spare one's is uninitialised): the flag changes nothing.
    let _ = tokenPresent;
    with_library("C_GetSlotList", |lib| {
        list_out(pSlotList, pulCount, &api::slot_list(lib)?)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_GetSlotInfo(slotID: CK_SLOT_ID, pInfo: CK_SLOT_INFO_PTR) -> CK_RV {
    with_library("C_GetSlotInfo", |lib| {
        write(pInfo, api::slot_info(lib, slotID)?)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_GetTokenInfo(slotID: CK_SLOT_ID, pInfo: CK_TOKEN_INFO_PTR) -> CK_RV {
    with_library("C_GetTokenInfo", |lib| {
        write(pInfo, api::token_info(lib, slotID)?)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_GetMechanismList(
    slotID: CK_SLOT_ID,
    pMechanismList: CK_MECHANISM_TYPE_PTR,
    pulCount: CK_ULONG_PTR,
) -> CK_RV {
    with_library("C_GetMechanismList", |lib| {
        list_out(pMechanismList, pulCount, &api::mechanism_list(lib, slotID)?)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_GetMechanismInfo(
    slotID: CK_SLOT_ID,
    type_: CK_MECHANISM_TYPE,
    pInfo: CK_MECHANISM_INFO_PTR,
) -> CK_RV {
    with_library("C_GetMechanismInfo", |lib| {
        write(pInfo, api::mechanism_info(lib, slotID, type_)?)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_InitToken(
    slotID: CK_SLOT_ID,
    pPin: CK_UTF8CHAR_PTR,
    ulPinLen: CK_ULONG,
    pLabel: CK_UTF8CHAR_PTR,
) -> CK_RV {
    with_library("C_InitToken", |lib| {
        api::init_token(
            lib,
            slotID,
            bytes_in(pPin, ulPinLen)?,
            bytes_in(pLabel, 32)?,
        )
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_WaitForSlotEvent(
    flags: CK_FLAGS,
    pSlot: CK_SLOT_ID_PTR,
    pReserved: CK_VOID_PTR,
) -> CK_RV {
    let _ = (pSlot, pReserved);
    // Slots never change state by themselves: there is no event to wait for.
    with_library("C_WaitForSlotEvent", |_| {
        if flags & CKF_DONT_BLOCK != 0 {
            fail(CKR_NO_EVENT)
        } else {
            fail(CKR_FUNCTION_NOT_SUPPORTED)
        }
    })
}
