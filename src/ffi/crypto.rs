//! Encryption, decryption, digest, signing and verification functions.

use super::args::{buffer_out, bytes_copied, bytes_in, mechanism_in};
use super::guard::with_library;
use crate::api::crypto as api;
use crate::error::{fail, Result};
use crate::session::{Input, Output};
use cryptoki_sys::*;

// The calls on an active operation hand their converted arguments to the api layer as a
// `Result`, not with `?`: a refused argument is a failed call, which ends the operation
// (see `api::crypto::with_op`), and only the api layer knows the session's operations.

/// The input and output of a call. The input is copied only when it overlaps the output
/// buffer (in-place operation, which the spec allows).
///
/// # Safety
/// As `bytes_in` and `buffer_out`.
unsafe fn in_out<'a>(
    input: *const u8,
    input_len: CK_ULONG,
    output: *mut u8,
    output_len: *mut CK_ULONG,
) -> Result<(Input<'a>, Output<'a>)> {
    let (buf, len) = buffer_out(output, output_len)?;
    let overlaps = buf.as_ref().is_some_and(|b| {
        let (i, o) = (input as usize, b.as_ptr() as usize);
        // Saturating: the lengths are the caller's and not yet bounded (`bytes_in` does).
        input_len != 0 && i < o.saturating_add(b.len()) && o < i.saturating_add(input_len as usize)
    });
    let input = if overlaps {
        Input::Copied(bytes_copied(input, input_len)?)
    } else {
        Input::Borrowed(bytes_in(input, input_len)?)
    };
    Ok((input, (buf, len)))
}

/// The data and signature of C_Verify.
///
/// # Safety
/// As `bytes_in`, for both.
unsafe fn two_in<'a>(
    a: *const u8,
    a_len: CK_ULONG,
    b: *const u8,
    b_len: CK_ULONG,
) -> Result<(&'a [u8], &'a [u8])> {
    Ok((bytes_in(a, a_len)?, bytes_in(b, b_len)?))
}

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
        api::encrypt(
            lib,
            hSession,
            in_out(pData, ulDataLen, pEncryptedData, pulEncryptedDataLen),
        )
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
        api::encrypt_update(
            lib,
            hSession,
            in_out(pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen),
        )
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
        api::decrypt(
            lib,
            hSession,
            in_out(pEncryptedData, ulEncryptedDataLen, pData, pulDataLen),
        )
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
        api::decrypt_update(
            lib,
            hSession,
            in_out(pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen),
        )
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
        api::digest(
            lib,
            hSession,
            in_out(pData, ulDataLen, pDigest, pulDigestLen),
        )
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
        api::sign(
            lib,
            hSession,
            in_out(pData, ulDataLen, pSignature, pulSignatureLen),
        )
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_EncryptFinal(
    hSession: CK_SESSION_HANDLE,
    pLastEncryptedPart: CK_BYTE_PTR,
    pulLastEncryptedPartLen: CK_ULONG_PTR,
) -> CK_RV {
    with_library("C_EncryptFinal", |lib| {
        api::encrypt_final(
            lib,
            hSession,
            buffer_out(pLastEncryptedPart, pulLastEncryptedPartLen),
        )
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_DecryptFinal(
    hSession: CK_SESSION_HANDLE,
    pLastPart: CK_BYTE_PTR,
    pulLastPartLen: CK_ULONG_PTR,
) -> CK_RV {
    with_library("C_DecryptFinal", |lib| {
        api::decrypt_final(lib, hSession, buffer_out(pLastPart, pulLastPartLen))
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_DigestFinal(
    hSession: CK_SESSION_HANDLE,
    pDigest: CK_BYTE_PTR,
    pulDigestLen: CK_ULONG_PTR,
) -> CK_RV {
    with_library("C_DigestFinal", |lib| {
        api::digest_final(lib, hSession, buffer_out(pDigest, pulDigestLen))
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_SignFinal(
    hSession: CK_SESSION_HANDLE,
    pSignature: CK_BYTE_PTR,
    pulSignatureLen: CK_ULONG_PTR,
) -> CK_RV {
    with_library("C_SignFinal", |lib| {
        api::sign_final(lib, hSession, buffer_out(pSignature, pulSignatureLen))
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_DigestUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: CK_BYTE_PTR,
    ulPartLen: CK_ULONG,
) -> CK_RV {
    with_library("C_DigestUpdate", |lib| {
        api::digest_update(lib, hSession, bytes_in(pPart, ulPartLen))
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_SignUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: CK_BYTE_PTR,
    ulPartLen: CK_ULONG,
) -> CK_RV {
    with_library("C_SignUpdate", |lib| {
        api::sign_update(lib, hSession, bytes_in(pPart, ulPartLen))
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_VerifyUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: CK_BYTE_PTR,
    ulPartLen: CK_ULONG,
) -> CK_RV {
    with_library("C_VerifyUpdate", |lib| {
        api::verify_update(lib, hSession, bytes_in(pPart, ulPartLen))
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
            two_in(pData, ulDataLen, pSignature, ulSignatureLen),
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
        api::verify_final(lib, hSession, bytes_in(pSignature, ulSignatureLen))
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
