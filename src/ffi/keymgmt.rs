//! Key management functions.

use super::args::{buffer_out, bytes_in, mechanism_in, out, template_in};
use super::guard::with_library;
use crate::api::keygen as api;
use crate::api::{derive, wrap};
use cryptoki_sys::*;

#[no_mangle]
pub unsafe extern "C" fn C_GenerateKeyPair(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    pPublicKeyTemplate: CK_ATTRIBUTE_PTR,
    ulPublicKeyAttributeCount: CK_ULONG,
    pPrivateKeyTemplate: CK_ATTRIBUTE_PTR,
    ulPrivateKeyAttributeCount: CK_ULONG,
    phPublicKey: CK_OBJECT_HANDLE_PTR,
    phPrivateKey: CK_OBJECT_HANDLE_PTR,
) -> CK_RV {
    with_library("C_GenerateKeyPair", |lib| {
        let public = out(phPublicKey)?;
        let private = out(phPrivateKey)?;
        (*public, *private) = api::generate_key_pair(
            lib,
            hSession,
            mechanism_in(pMechanism)?,
            template_in(pPublicKeyTemplate, ulPublicKeyAttributeCount)?,
            template_in(pPrivateKeyTemplate, ulPrivateKeyAttributeCount)?,
        )?;
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_GenerateKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulCount: CK_ULONG,
    phKey: CK_OBJECT_HANDLE_PTR,
) -> CK_RV {
    with_library("C_GenerateKey", |lib| {
        let key = out(phKey)?;
        let template = template_in(pTemplate, ulCount)?;
        *key = api::generate_key(lib, hSession, mechanism_in(pMechanism)?, template)?;
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_WrapKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hWrappingKey: CK_OBJECT_HANDLE,
    hKey: CK_OBJECT_HANDLE,
    pWrappedKey: CK_BYTE_PTR,
    pulWrappedKeyLen: CK_ULONG_PTR,
) -> CK_RV {
    with_library("C_WrapKey", |lib| {
        let mechanism = mechanism_in(pMechanism)?;
        let (buf, len) = buffer_out(pWrappedKey, pulWrappedKeyLen)?;
        wrap::wrap_key(lib, hSession, mechanism, hWrappingKey, hKey, buf)?.report(len)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_UnwrapKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hUnwrappingKey: CK_OBJECT_HANDLE,
    pWrappedKey: CK_BYTE_PTR,
    ulWrappedKeyLen: CK_ULONG,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulAttributeCount: CK_ULONG,
    phKey: CK_OBJECT_HANDLE_PTR,
) -> CK_RV {
    with_library("C_UnwrapKey", |lib| {
        let key = out(phKey)?;
        let wrapped = bytes_in(pWrappedKey, ulWrappedKeyLen)?;
        let template = template_in(pTemplate, ulAttributeCount)?;
        let mechanism = mechanism_in(pMechanism)?;
        *key = wrap::unwrap_key(lib, hSession, mechanism, hUnwrappingKey, wrapped, template)?;
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_DeriveKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hBaseKey: CK_OBJECT_HANDLE,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulAttributeCount: CK_ULONG,
    phKey: CK_OBJECT_HANDLE_PTR,
) -> CK_RV {
    with_library("C_DeriveKey", |lib| {
        let key = out(phKey)?;
        let template = template_in(pTemplate, ulAttributeCount)?;
        let mechanism = mechanism_in(pMechanism)?;
        *key = derive::derive_key(lib, hSession, mechanism, hBaseKey, template)?;
        Ok(())
    })
}
