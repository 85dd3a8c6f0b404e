//! The function tables: the 2.40 `CK_FUNCTION_LIST`, the 3.0 `CK_FUNCTION_LIST_3_0`, and the
//! `CK_INTERFACE` list that offers both under the name "PKCS 11".

use super::args::{list_out, out};
use super::guard::with_library;
use super::*;
use crate::error::{fail, Result};
use cryptoki_sys::*;

macro_rules! list {
    ($ty:ident { version: $v:expr, $($f:ident),* $(,)? }) => {
        $ty { version: $v, $($f: Some($f)),* }
    };
}

macro_rules! list_2_40_functions {
    ($m:ident, $ty:ident, $v:expr $(, $extra:ident)*) => {
        $m!($ty {
            version: $v,
            C_Initialize, C_Finalize, C_GetInfo, C_GetFunctionList, C_GetSlotList, C_GetSlotInfo,
            C_GetTokenInfo, C_GetMechanismList, C_GetMechanismInfo, C_InitToken, C_InitPIN,
            C_SetPIN, C_OpenSession, C_CloseSession, C_CloseAllSessions, C_GetSessionInfo,
            C_GetOperationState, C_SetOperationState, C_Login, C_Logout, C_CreateObject,
            C_CopyObject, C_DestroyObject, C_GetObjectSize, C_GetAttributeValue,
            C_SetAttributeValue, C_FindObjectsInit, C_FindObjects, C_FindObjectsFinal,
            C_EncryptInit, C_Encrypt, C_EncryptUpdate, C_EncryptFinal, C_DecryptInit, C_Decrypt,
            C_DecryptUpdate, C_DecryptFinal, C_DigestInit, C_Digest, C_DigestUpdate, C_DigestKey,
            C_DigestFinal, C_SignInit, C_Sign, C_SignUpdate, C_SignFinal, C_SignRecoverInit,
            C_SignRecover, C_VerifyInit, C_Verify, C_VerifyUpdate, C_VerifyFinal,
            C_VerifyRecoverInit, C_VerifyRecover, C_DigestEncryptUpdate, C_DecryptDigestUpdate,
            C_SignEncryptUpdate, C_DecryptVerifyUpdate, C_GenerateKey, C_GenerateKeyPair,
            C_WrapKey, C_UnwrapKey, C_DeriveKey, C_SeedRandom, C_GenerateRandom,
            C_GetFunctionStatus, C_CancelFunction, C_WaitForSlotEvent $(, $extra)*
        })
    };
}

static FUNCTIONS_2_40: CK_FUNCTION_LIST = list_2_40_functions!(
    list,
    CK_FUNCTION_LIST,
    CK_VERSION {
        major: 2,
        minor: 40
    }
);

static FUNCTIONS_3_0: CK_FUNCTION_LIST_3_0 = list_2_40_functions!(
    list,
    CK_FUNCTION_LIST_3_0,
    CK_VERSION { major: 3, minor: 0 },
    C_GetInterfaceList,
    C_GetInterface,
    C_LoginUser,
    C_SessionCancel,
    C_MessageEncryptInit,
    C_EncryptMessage,
    C_EncryptMessageBegin,
    C_EncryptMessageNext,
    C_MessageEncryptFinal,
    C_MessageDecryptInit,
    C_DecryptMessage,
    C_DecryptMessageBegin,
    C_DecryptMessageNext,
    C_MessageDecryptFinal,
    C_MessageSignInit,
    C_SignMessage,
    C_SignMessageBegin,
    C_SignMessageNext,
    C_MessageSignFinal,
    C_MessageVerifyInit,
    C_VerifyMessage,
    C_VerifyMessageBegin,
    C_VerifyMessageNext,
    C_MessageVerifyFinal
);

pub fn function_list_2_40() -> CK_FUNCTION_LIST_PTR {
    &FUNCTIONS_2_40 as *const CK_FUNCTION_LIST as CK_FUNCTION_LIST_PTR
}

static INTERFACE_NAME: &[u8; 8] = b"PKCS 11\0";

/// `CK_INTERFACE` holds raw pointers; these point at statics and are never written.
struct Interface(CK_INTERFACE);
unsafe impl Sync for Interface {}

static INTERFACES: [Interface; 2] = [
    Interface(CK_INTERFACE {
        pInterfaceName: INTERFACE_NAME as *const u8 as *mut CK_UTF8CHAR,
        pFunctionList: &FUNCTIONS_3_0 as *const CK_FUNCTION_LIST_3_0 as *mut std::ffi::c_void,
        flags: 0,
    }),
    Interface(CK_INTERFACE {
        pInterfaceName: INTERFACE_NAME as *const u8 as *mut CK_UTF8CHAR,
        pFunctionList: &FUNCTIONS_2_40 as *const CK_FUNCTION_LIST as *mut std::ffi::c_void,
        flags: 0,
    }),
];

fn interface_version(i: &CK_INTERFACE) -> CK_VERSION {
    // Both tables start with their CK_VERSION.
    unsafe { *(i.pFunctionList as *const CK_VERSION) }
}

pub unsafe fn interface_list(list: CK_INTERFACE_PTR, count: CK_ULONG_PTR) -> Result<()> {
    list_out(list, count, &INTERFACES.each_ref().map(|i| i.0))
}

pub unsafe fn interface(
    name: CK_UTF8CHAR_PTR,
    version: CK_VERSION_PTR,
    result: CK_INTERFACE_PTR_PTR,
    flags: CK_FLAGS,
) -> Result<()> {
    let result = out(result)?;
    if !name.is_null() && std::ffi::CStr::from_ptr(name as *const _).to_bytes() != b"PKCS 11" {
        return fail(CKR_ARGUMENTS_BAD);
    }
    let wanted = version.as_ref().map(|v| (v.major, v.minor));
    let found = INTERFACES.iter().find(|i| {
        let v = interface_version(&i.0);
        wanted.is_none_or(|w| w == (v.major, v.minor)) && i.0.flags & flags == flags
    });
    match found {
        Some(i) => {
            *result = &i.0 as *const CK_INTERFACE as CK_INTERFACE_PTR;
            Ok(())
        }
        None => fail(CKR_ARGUMENTS_BAD),
    }
}

/// The 3.0 message-based functions are not offered: each answers CKR_FUNCTION_NOT_SUPPORTED
/// (after the initialisation check every function makes).
macro_rules! not_supported {
    ($($name:ident($($t:ty),*);)*) => {$(
        pub unsafe extern "C" fn $name($(_: $t),*) -> CK_RV {
            with_library(stringify!($name), |_| fail(CKR_FUNCTION_NOT_SUPPORTED))
        }
    )*};
}

type H = CK_SESSION_HANDLE;
type P = CK_VOID_PTR;
type B = CK_BYTE_PTR;
type L = CK_ULONG;
type LP = CK_ULONG_PTR;
type M = CK_MECHANISM_PTR;
type K = CK_OBJECT_HANDLE;

not_supported! {
    C_MessageEncryptInit(H, M, K);
    C_EncryptMessage(H, P, L, B, L, B, L, B, LP);
    C_EncryptMessageBegin(H, P, L, B, L);
    C_EncryptMessageNext(H, P, L, B, L, B, LP, CK_FLAGS);
    C_MessageEncryptFinal(H);
    C_MessageDecryptInit(H, M, K);
    C_DecryptMessage(H, P, L, B, L, B, L, B, LP);
    C_DecryptMessageBegin(H, P, L, B, L);
    C_DecryptMessageNext(H, P, L, B, L, B, LP, CK_FLAGS);
    C_MessageDecryptFinal(H);
    C_MessageSignInit(H, M, K);
    C_SignMessage(H, P, L, B, L, B, LP);
    C_SignMessageBegin(H, P, L);
    C_SignMessageNext(H, P, L, B, L, B, LP);
    C_MessageSignFinal(H);
    C_MessageVerifyInit(H, M, K);
    C_VerifyMessage(H, P, L, B, L, B, L);
    C_VerifyMessageBegin(H, P, L);
    C_VerifyMessageNext(H, P, L, B, L, B, L);
    C_MessageVerifyFinal(H);
}
