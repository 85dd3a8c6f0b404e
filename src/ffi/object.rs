//! Object management functions.

use super::args::{attributes_out, out, template_in, template_out, write};
use super::guard::with_library;
use crate::api::object as api;
use crate::error::fail;
use cryptoki_sys::*;

#[no_mangle]
pub unsafe extern "C" fn C_CreateObject(
    hSession: CK_SESSION_HANDLE,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulCount: CK_ULONG,
    phObject: CK_OBJECT_HANDLE_PTR,
) -> CK_RV {
    with_library("C_CreateObject", |lib| {
        let handle = out(phObject)?;
        *handle = api::create(lib, hSession, template_in(pTemplate, ulCount)?)?;
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_CopyObject(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulCount: CK_ULONG,
    phNewObject: CK_OBJECT_HANDLE_PTR,
) -> CK_RV {
    with_library("C_CopyObject", |lib| {
        let handle = out(phNewObject)?;
        *handle = api::copy(lib, hSession, hObject, template_in(pTemplate, ulCount)?)?;
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_DestroyObject(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
) -> CK_RV {
    with_library("C_DestroyObject", |lib| {
        api::destroy(lib, hSession, hObject)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_GetObjectSize(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pulSize: CK_ULONG_PTR,
) -> CK_RV {
    with_library("C_GetObjectSize", |lib| {
        write(pulSize, api::size(lib, hSession, hObject)?)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_GetAttributeValue(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulCount: CK_ULONG,
) -> CK_RV {
    with_library("C_GetAttributeValue", |lib| {
        let template = template_out(pTemplate, ulCount)?;
        let types: Vec<CK_ATTRIBUTE_TYPE> = template.iter().map(|a| a.type_).collect();
        let reads = api::get_attributes(lib, hSession, hObject, &types)?;
        attributes_out(template, reads)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_SetAttributeValue(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulCount: CK_ULONG,
) -> CK_RV {
    with_library("C_SetAttributeValue", |lib| {
        api::set_attributes(lib, hSession, hObject, template_in(pTemplate, ulCount)?)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_FindObjectsInit(
    hSession: CK_SESSION_HANDLE,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulCount: CK_ULONG,
) -> CK_RV {
    with_library("C_FindObjectsInit", |lib| {
        api::find_init(lib, hSession, template_in(pTemplate, ulCount)?)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_FindObjects(
    hSession: CK_SESSION_HANDLE,
    phObject: CK_OBJECT_HANDLE_PTR,
    ulMaxObjectCount: CK_ULONG,
    pulObjectCount: CK_ULONG_PTR,
) -> CK_RV {
    with_library("C_FindObjects", |lib| {
        let count = out(pulObjectCount)?;
        if phObject.is_null() && ulMaxObjectCount != 0 {
            return fail(CKR_ARGUMENTS_BAD);
        }
        let found = api::find(lib, hSession, ulMaxObjectCount as usize)?;
        if !found.is_empty() {
            std::slice::from_raw_parts_mut(phObject, found.len()).copy_from_slice(&found);
        }
        *count = found.len() as CK_ULONG;
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_FindObjectsFinal(hSession: CK_SESSION_HANDLE) -> CK_RV {
    with_library("C_FindObjectsFinal", |lib| api::find_final(lib, hSession))
}
