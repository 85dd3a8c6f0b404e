//! C_Initialize, C_Finalize, C_GetInfo, C_GetFunctionList and the 3.0 interface calls.

use super::args::{out, write};
use super::guard::{call, with_library};
use super::tables;
use crate::error::{fail, Result};
use cryptoki_sys::*;

/// Validates `CK_C_INITIALIZE_ARGS`: pReserved NULL, mutex callbacks all or none. The module
/// always locks with its own OS primitives, which the spec allows whether or not
/// CKF_OS_LOCKING_OK is set when the application supplies callbacks too.
unsafe fn check_init_args(args: *const CK_C_INITIALIZE_ARGS) -> Result<()> {
    let Some(a) = args.as_ref() else {
        return Ok(());
    };
    if !a.pReserved.is_null() {
        return fail(CKR_ARGUMENTS_BAD);
    }
    let given = [
        a.CreateMutex.is_some(),
        a.DestroyMutex.is_some(),
        a.LockMutex.is_some(),
        a.UnlockMutex.is_some(),
    ];
    if given.iter().any(|g| *g) && !given.iter().all(|g| *g) {
        return fail(CKR_ARGUMENTS_BAD);
    }
    Ok(())
}

#[no_mangle]
pub unsafe extern "C" fn C_Initialize(pInitArgs: CK_VOID_PTR) -> CK_RV {
    call("C_Initialize", || {
        check_init_args(pInitArgs as *const _)?;
        crate::state::initialize()
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_Finalize(pReserved: CK_VOID_PTR) -> CK_RV {
    call("C_Finalize", || {
        crate::state::library()?;
        if !pReserved.is_null() {
            return fail(CKR_ARGUMENTS_BAD);
        }
        crate::state::finalize()
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_GetInfo(pInfo: CK_INFO_PTR) -> CK_RV {
    with_library("C_GetInfo", |_| write(pInfo, crate::api::general::info()))
}

#[no_mangle]
pub unsafe extern "C" fn C_GetFunctionList(ppFunctionList: CK_FUNCTION_LIST_PTR_PTR) -> CK_RV {
    call("C_GetFunctionList", || {
        *out(ppFunctionList)? = tables::function_list_2_40();
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_GetInterfaceList(
    pInterfacesList: CK_INTERFACE_PTR,
    pulCount: CK_ULONG_PTR,
) -> CK_RV {
    call("C_GetInterfaceList", || {
        tables::interface_list(pInterfacesList, pulCount)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_GetInterface(
    pInterfaceName: CK_UTF8CHAR_PTR,
    pVersion: CK_VERSION_PTR,
    ppInterface: CK_INTERFACE_PTR_PTR,
    flags: CK_FLAGS,
) -> CK_RV {
    call("C_GetInterface", || {
        tables::interface(pInterfaceName, pVersion, ppInterface, flags)
    })
}
