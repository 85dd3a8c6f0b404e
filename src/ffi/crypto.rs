//! Encryption, decryption, digest, signing and verification functions.

use super::args::{buffer_out, bytes_copied, bytes_in, mechanism_in, written};
use super::guard::with_library;
use crate::api::crypto as api;
use crate::error::fail;
use cryptoki_sys::*;

#[no_mangle]
pub unsafe extern "C" fn C_EncryptInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    with_library("C_EncryptInit", |lib| {
        api::encrypt_init(lib, hSession, mechanism_in(pMechanism)?, hKey)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_DecryptInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    with_library("C_DecryptInit", |lib| {
        api::decrypt_init(lib, hSession, mechanism_in(pMechanism)?, hKey)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_SignInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    with_library("C_SignInit", |lib| {
        api::sign_init(lib, hSession, mechanism_in(pMechanism)?, hKey)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_VerifyInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    with_library("C_VerifyInit", |lib| {
        api::verify_init(lib, hSession, mechanism_in(pMechanism)?, hKey)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_DigestInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
) -> CK_RV {
    with_library("C_DigestInit", |lib| {
        api::digest_init(lib, hSession, mechanism_in(pMechanism)?)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_Encrypt(
    hSession: CK_SESSION_HANDLE,
    pData: CK_BYTE_PTR,
    ulDataLen: CK_ULONG,
    pEncryptedData: CK_BYTE_PTR,
    pulEncryptedDataLen: CK_ULONG_PTR,
) -> CK_RV {
    with_library("C_Encrypt", |lib| {
        let input = bytes_copied(pData, ulDataLen)?;
        let (buf, len) = buffer_out(pEncryptedData, pulEncryptedDataLen)?;
        written(len, api::encrypt(lib, hSession, &input, buf)?)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_EncryptUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: CK_BYTE_PTR,
    ulPartLen: CK_ULONG,
    pEncryptedPart: CK_BYTE_PTR,
    pulEncryptedPartLen: CK_ULONG_PTR,
) -> CK_RV {
    with_library("C_EncryptUpdate", |lib| {
        let input = bytes_copied(pPart, ulPartLen)?;
        let (buf, len) = buffer_out(pEncryptedPart, pulEncryptedPartLen)?;
        written(len, api::encrypt_update(lib, hSession, &input, buf)?)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_Decrypt(
    hSession: CK_SESSION_HANDLE,
    pEncryptedData: CK_BYTE_PTR,
    ulEncryptedDataLen: CK_ULONG,
    pData: CK_BYTE_PTR,
    pulDataLen: CK_ULONG_PTR,
) -> CK_RV {
    with_library("C_Decrypt", |lib| {
        let input = bytes_copied(pEncryptedData, ulEncryptedDataLen)?;
        let (buf, len) = buffer_out(pData, pulDataLen)?;
        written(len, api::decrypt(lib, hSession, &input, buf)?)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_DecryptUpdate(
    hSession: CK_SESSION_HANDLE,
    pEncryptedPart: CK_BYTE_PTR,
    ulEncryptedPartLen: CK_ULONG,
    pPart: CK_BYTE_PTR,
    pulPartLen: CK_ULONG_PTR,
) -> CK_RV {
    with_library("C_DecryptUpdate", |lib| {
        let input = bytes_copied(pEncryptedPart, ulEncryptedPartLen)?;
        let (buf, len) = buffer_out(pPart, pulPartLen)?;
        written(len, api::decrypt_update(lib, hSession, &input, buf)?)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_Digest(
    hSession: CK_SESSION_HANDLE,
    pData: CK_BYTE_PTR,
    ulDataLen: CK_ULONG,
    pDigest: CK_BYTE_PTR,
    pulDigestLen: CK_ULONG_PTR,
) -> CK_RV {
    with_library("C_Digest", |lib| {
        let input = bytes_copied(pData, ulDataLen)?;
        let (buf, len) = buffer_out(pDigest, pulDigestLen)?;
        written(len, api::digest(lib, hSession, &input, buf)?)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_Sign(
    hSession: CK_SESSION_HANDLE,
    pData: CK_BYTE_PTR,
    ulDataLen: CK_ULONG,
    pSignature: CK_BYTE_PTR,
    pulSignatureLen: CK_ULONG_PTR,
) -> CK_RV {
    with_library("C_Sign", |lib| {
        let input = bytes_copied(pData, ulDataLen)?;
        let (buf, len) = buffer_out(pSignature, pulSignatureLen)?;
        written(len, api::sign(lib, hSession, &input, buf)?)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_EncryptFinal(
    hSession: CK_SESSION_HANDLE,
    pLastEncryptedPart: CK_BYTE_PTR,
    pulLastEncryptedPartLen: CK_ULONG_PTR,
) -> CK_RV {
    with_library("C_EncryptFinal", |lib| {
        let (buf, len) = buffer_out(pLastEncryptedPart, pulLastEncryptedPartLen)?;
        written(len, api::encrypt_final(lib, hSession, buf)?)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_DecryptFinal(
    hSession: CK_SESSION_HANDLE,
    pLastPart: CK_BYTE_PTR,
    pulLastPartLen: CK_ULONG_PTR,
) -> CK_RV {
    with_library("C_DecryptFinal", |lib| {
        let (buf, len) = buffer_out(pLastPart, pulLastPartLen)?;
        written(len, api::decrypt_final(lib, hSession, buf)?)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_DigestFinal(
    hSession: CK_SESSION_HANDLE,
    pDigest: CK_BYTE_PTR,
    pulDigestLen: CK_ULONG_PTR,
) -> CK_RV {
    with_library("C_DigestFinal", |lib| {
        let (buf, len) = buffer_out(pDigest, pulDigestLen)?;
        written(len, api::digest_final(lib, hSession, buf)?)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_SignFinal(
    hSession: CK_SESSION_HANDLE,
    pSignature: CK_BYTE_PTR,
    pulSignatureLen: CK_ULONG_PTR,
) -> CK_RV {
    with_library("C_SignFinal", |lib| {
        let (buf, len) = buffer_out(pSignature, pulSignatureLen)?;
        written(len, api::sign_final(lib, hSession, buf)?)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_DigestUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: CK_BYTE_PTR,
    ulPartLen: CK_ULONG,
) -> CK_RV {
    with_library("C_DigestUpdate", |lib| {
        api::digest_update(lib, hSession, bytes_in(pPart, ulPartLen)?)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_SignUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: CK_BYTE_PTR,
    ulPartLen: CK_ULONG,
) -> CK_RV {
    with_library("C_SignUpdate", |lib| {
        api::sign_update(lib, hSession, bytes_in(pPart, ulPartLen)?)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_VerifyUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: CK_BYTE_PTR,
    ulPartLen: CK_ULONG,
) -> CK_RV {
    with_library("C_VerifyUpdate", |lib| {
        api::verify_update(lib, hSession, bytes_in(pPart, ulPartLen)?)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_Verify(
    hSession: CK_SESSION_HANDLE,
    pData: CK_BYTE_PTR,
    ulDataLen: CK_ULONG,
    pSignature: CK_BYTE_PTR,
    ulSignatureLen: CK_ULONG,
) -> CK_RV {
    with_library("C_Verify", |lib| {
        api::verify(
            lib,
            hSession,
            bytes_in(pData, ulDataLen)?,
            bytes_in(pSignature, ulSignatureLen)?,
        )
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_VerifyFinal(
    hSession: CK_SESSION_HANDLE,
    pSignature: CK_BYTE_PTR,
    ulSignatureLen: CK_ULONG,
) -> CK_RV {
    with_library("C_VerifyFinal", |lib| {
        api::verify_final(lib, hSession, bytes_in(pSignature, ulSignatureLen)?)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_DigestKey(hSession: CK_SESSION_HANDLE, hKey: CK_OBJECT_HANDLE) -> CK_RV {
    with_library("C_DigestKey", |lib| api::digest_key(lib, hSession, hKey))
}

/// Signatures with message recovery and the dual-function updates are not offered.
macro_rules! session_not_supported {
    ($($name:ident($($arg:ident: $t:ty),*);)*) => {$(
        #[no_mangle]
        pub unsafe extern "C" fn $name(hSession: CK_SESSION_HANDLE, $($arg: $t),*) -> CK_RV {
            let _ = ($($arg),*);
            with_library(stringify!($name), |lib| {
                lib.session(hSession)?;
                fail(CKR_FUNCTION_NOT_SUPPORTED)
            })
        }
    )*};
}

session_not_supported! {
    C_SignRecoverInit(pMechanism: CK_MECHANISM_PTR, hKey: CK_OBJECT_HANDLE);
    C_SignRecover(pData: CK_BYTE_PTR, ulDataLen: CK_ULONG, pSignature: CK_BYTE_PTR, pulSignatureLen: CK_ULONG_PTR);
    C_VerifyRecoverInit(pMechanism: CK_MECHANISM_PTR, hKey: CK_OBJECT_HANDLE);
    C_VerifyRecover(pSignature: CK_BYTE_PTR, ulSignatureLen: CK_ULONG, pData: CK_BYTE_PTR, pulDataLen: CK_ULONG_PTR);
    C_DigestEncryptUpdate(pPart: CK_BYTE_PTR, ulPartLen: CK_ULONG, pEncryptedPart: CK_BYTE_PTR, pulEncryptedPartLen: CK_ULONG_PTR);
    C_DecryptDigestUpdate(pEncryptedPart: CK_BYTE_PTR, ulEncryptedPartLen: CK_ULONG, pPart: CK_BYTE_PTR, pulPartLen: CK_ULONG_PTR);
    C_SignEncryptUpdate(pPart: CK_BYTE_PTR, ulPartLen: CK_ULONG, pEncryptedPart: CK_BYTE_PTR, pulEncryptedPartLen: CK_ULONG_PTR);
    C_DecryptVerifyUpdate(pEncryptedPart: CK_BYTE_PTR, ulEncryptedPartLen: CK_ULONG, pPart: CK_BYTE_PTR, pulPartLen: CK_ULONG_PTR);
}
