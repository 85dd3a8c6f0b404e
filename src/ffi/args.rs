//! Raw-pointer helpers: the only place where C arguments become Rust values. Every helper
//! turns a NULL where the spec forbids one into CKR_ARGUMENTS_BAD.
//!
//! Lengths from C are bounded here, once: a region of more than `isize::MAX` bytes cannot
//! exist (and is undefined behaviour in `slice::from_raw_parts`), so such a length is
//! CKR_ARGUMENTS_BAD (`region_len`); a copy of caller memory is allocated fallibly, so a
//! huge but possible length is CKR_HOST_MEMORY, never an abort of the host (`memory`).

use crate::api::object::{is_template_attribute, AttributeRead};
use crate::error::{fail, Result};
use crate::mechanism::params::{layout, ParamLayout};
use crate::mechanism::MechanismParam;
use crate::object::Attributes;
use crate::session::Output;
use cryptoki_sys::*;
use std::mem::size_of;

/// `count` elements of `T` as a `usize`, CKR_ARGUMENTS_BAD when they would span more than
/// `isize::MAX` bytes: no caller can own such a region.
fn region_len<T>(count: CK_ULONG) -> Result<usize> {
    let bytes = usize::try_from(count)
        .ok()
        .and_then(|n| n.checked_mul(size_of::<T>().max(1)));
    match bytes {
        Some(b) if b <= isize::MAX as usize => Ok(count as usize),
        _ => fail(CKR_ARGUMENTS_BAD),
    }
}

/// An input byte string; NULL is allowed when the length is 0.
///
/// # Safety
/// `ptr` must be NULL or point to `len` readable bytes that outlive the returned slice.
pub unsafe fn bytes_in<'a>(ptr: *const u8, len: CK_ULONG) -> Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    let len = region_len::<u8>(len)?;
    if ptr.is_null() {
        return fail(CKR_ARGUMENTS_BAD);
    }
    Ok(std::slice::from_raw_parts(ptr, len))
}

/// An output byte string the call fills; NULL is allowed when the length is 0.
///
/// # Safety
/// `ptr` must be NULL or valid for `len` bytes of writes that outlive the returned slice.
pub unsafe fn bytes_out<'a>(ptr: *mut u8, len: CK_ULONG) -> Result<&'a mut [u8]> {
    if len == 0 {
        return Ok(&mut []);
    }
    let len = region_len::<u8>(len)?;
    if ptr.is_null() {
        return fail(CKR_ARGUMENTS_BAD);
    }
    Ok(std::slice::from_raw_parts_mut(ptr, len))
}

/// A mandatory output location.
///
/// # Safety
/// `ptr` must be NULL or valid for writes of `T`.
pub unsafe fn out<'a, T>(ptr: *mut T) -> Result<&'a mut T> {
    ptr.as_mut()
        .ok_or(crate::error::Error::new(CKR_ARGUMENTS_BAD))
}

/// The output-buffer protocol of the spec (section 5.2): `len` is mandatory; a NULL buffer
/// is a length query; otherwise the buffer holds `*len` bytes.
///
/// # Safety
/// `len` must be NULL or valid; `buf` NULL or valid for `*len` bytes of writes.
pub unsafe fn buffer_out<'a>(buf: *mut u8, len: *mut CK_ULONG) -> Result<Output<'a>> {
    let len = out(len)?;
    let buf = if buf.is_null() {
        None
    } else {
        Some(std::slice::from_raw_parts_mut(buf, region_len::<u8>(*len)?))
    };
    Ok((buf, len))
}

/// An input template. Attribute values are copied; a NULL value with a non-zero length is
/// CKR_ARGUMENTS_BAD.
///
/// # Safety
/// `ptr` must be NULL or point to `count` valid `CK_ATTRIBUTE`s whose values are readable.
pub unsafe fn template_in(ptr: *const CK_ATTRIBUTE, count: CK_ULONG) -> Result<Attributes> {
    template_at_depth(ptr, count, 0)
}

/// `template_in` for a template nested `depth` levels inside another (CKA_WRAP_TEMPLATE's
/// value is itself an array of `CK_ATTRIBUTE`). Templates of templates are refused: no
/// attribute of a wrap or unwrap template is one, and the limit bounds the recursion.
unsafe fn template_at_depth(
    ptr: *const CK_ATTRIBUTE,
    count: CK_ULONG,
    depth: usize,
) -> Result<Attributes> {
    let count = region_len::<CK_ATTRIBUTE>(count)?;
    if count != 0 && ptr.is_null() {
        return fail(CKR_ARGUMENTS_BAD);
    }
    let mut out = Attributes::new();
    for i in 0..count {
        // Read one entry at a time, unaligned: a nested template arrives through a `void*`
        // (CKA_WRAP_TEMPLATE's pValue) that nothing promises is aligned for CK_ATTRIBUTE.
        let a = ptr.add(i).read_unaligned();
        if a.ulValueLen == CK_UNAVAILABLE_INFORMATION {
            return fail(CKR_ATTRIBUTE_VALUE_INVALID);
        }
        if is_template_attribute(a.type_) {
            let size = size_of::<CK_ATTRIBUTE>() as CK_ULONG;
            if depth > 0 || a.ulValueLen % size != 0 {
                return fail(CKR_ATTRIBUTE_VALUE_INVALID);
            }
            let nested = a.pValue as *const CK_ATTRIBUTE;
            let inner = template_at_depth(nested, a.ulValueLen / size, depth + 1)?;
            out.set(a.type_, inner.to_template_bytes());
            continue;
        }
        let value = bytes_in(a.pValue as *const u8, a.ulValueLen)?;
        out.try_set_slice(a.type_, value)?;
    }
    Ok(out)
}

/// The template of C_GetAttributeValue: the types asked for and each buffer (None when
/// pValue is NULL, a length query).
///
/// # Safety
/// As `template_in`, with writable values.
pub unsafe fn template_out<'a>(
    ptr: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> Result<&'a mut [CK_ATTRIBUTE]> {
    let count = region_len::<CK_ATTRIBUTE>(count)?;
    if count == 0 {
        return Ok(&mut []);
    }
    if ptr.is_null() {
        return fail(CKR_ARGUMENTS_BAD);
    }
    Ok(std::slice::from_raw_parts_mut(ptr, count))
}

/// Writes C_GetAttributeValue's answers into its template. Every attribute is processed;
/// the call's code reports the worst case (sensitive or invalid attributes over short
/// buffers), as section 5.7 of the spec says.
///
/// # Safety
/// Each non-NULL `pValue` of `template` must be valid for `ulValueLen` bytes of writes.
pub unsafe fn attributes_out(
    template: &mut [CK_ATTRIBUTE],
    reads: Vec<AttributeRead>,
) -> Result<()> {
    let mut rv = CKR_OK;
    for (attr, read) in template.iter_mut().zip(reads) {
        let problem = match read {
            AttributeRead::Sensitive => Some(CKR_ATTRIBUTE_SENSITIVE),
            AttributeRead::Invalid => Some(CKR_ATTRIBUTE_TYPE_INVALID),
            AttributeRead::Value(v) if attr.pValue.is_null() => {
                attr.ulValueLen = v.len() as CK_ULONG;
                None
            }
            AttributeRead::Value(v) if (attr.ulValueLen as usize) < v.len() => {
                Some(CKR_BUFFER_TOO_SMALL)
            }
            AttributeRead::Value(v) => {
                std::slice::from_raw_parts_mut(attr.pValue as *mut u8, v.len()).copy_from_slice(&v);
                attr.ulValueLen = v.len() as CK_ULONG;
                None
            }
            AttributeRead::Template(t) => template_value_out(attr, &t).err().map(|e| e.rv),
        };
        if let Some(code) = problem {
            attr.ulValueLen = CK_UNAVAILABLE_INFORMATION;
            if rv == CKR_OK || rv == CKR_BUFFER_TOO_SMALL {
                rv = code;
            }
        }
    }
    if rv == CKR_OK {
        Ok(())
    } else {
        fail(rv)
    }
}

/// Writes an attribute-array value (§5.7, CKF_ARRAY_ATTRIBUTE): a NULL `pValue` asks for
/// the array size (count * sizeof(CK_ATTRIBUTE)); otherwise `pValue` is the caller's array,
/// whose entries get the types and, each under the usual buffer rule, the values.
///
/// # Safety
/// `attr.pValue` NULL or valid for `attr.ulValueLen` bytes of `CK_ATTRIBUTE`s, each of
/// whose non-NULL `pValue` is valid for its `ulValueLen` bytes of writes.
unsafe fn template_value_out(attr: &mut CK_ATTRIBUTE, template: &Attributes) -> Result<()> {
    let size = size_of::<CK_ATTRIBUTE>();
    let needed = template.len() * size;
    if attr.pValue.is_null() {
        attr.ulValueLen = needed as CK_ULONG;
        return Ok(());
    }
    if (attr.ulValueLen as usize) < needed {
        return fail(CKR_BUFFER_TOO_SMALL);
    }
    let entries = attr.pValue as *mut CK_ATTRIBUTE;
    let mut rv = Ok(());
    for (i, (ty, value)) in template.iter().enumerate() {
        // Unaligned, as in `template_at_depth`: the array came through a `void*`.
        let slot = entries.add(i);
        let mut entry = slot.read_unaligned();
        entry.type_ = ty;
        if entry.pValue.is_null() {
            entry.ulValueLen = value.len() as CK_ULONG;
        } else if (entry.ulValueLen as usize) < value.len() {
            entry.ulValueLen = CK_UNAVAILABLE_INFORMATION;
            rv = fail(CKR_BUFFER_TOO_SMALL);
        } else {
            std::slice::from_raw_parts_mut(entry.pValue as *mut u8, value.len())
                .copy_from_slice(value);
            entry.ulValueLen = value.len() as CK_ULONG;
        }
        slot.write_unaligned(entry);
    }
    attr.ulValueLen = needed as CK_ULONG;
    rv
}

/// Reads a `CK_MECHANISM` into its type and safe parameter.
///
/// # Safety
/// `ptr` must be NULL or point to a valid `CK_MECHANISM` whose parameter is readable.
pub unsafe fn mechanism_in(
    ptr: *const CK_MECHANISM,
) -> Result<(CK_MECHANISM_TYPE, MechanismParam)> {
    let m = ptr
        .as_ref()
        .ok_or(crate::error::Error::new(CKR_ARGUMENTS_BAD))?;
    let raw = m.pParameter as *const u8;
    let len = m.ulParameterLen;
    let param = if len == 0 {
        MechanismParam::None
    } else if raw.is_null() {
        return fail(CKR_MECHANISM_PARAM_INVALID);
    } else {
        match layout(m.mechanism) {
            ParamLayout::Opaque => MechanismParam::Bytes(param_bytes(raw, len)?),
            ParamLayout::Oaep => {
                if len as usize != size_of::<CK_RSA_PKCS_OAEP_PARAMS>() {
                    return fail(CKR_MECHANISM_PARAM_INVALID);
                }
                let p = (raw as *const CK_RSA_PKCS_OAEP_PARAMS).read_unaligned();
                let source_data = param_bytes(p.pSourceData as *const u8, p.ulSourceDataLen)?;
                MechanismParam::Oaep {
                    hash_alg: p.hashAlg,
                    mgf: p.mgf,
                    source: p.source,
                    source_data,
                }
            }
            ParamLayout::Pss => {
                if len as usize != size_of::<CK_RSA_PKCS_PSS_PARAMS>() {
                    return fail(CKR_MECHANISM_PARAM_INVALID);
                }
                let p = (raw as *const CK_RSA_PKCS_PSS_PARAMS).read_unaligned();
                MechanismParam::Pss {
                    hash_alg: p.hashAlg,
                    mgf: p.mgf,
                    salt_len: p.sLen,
                }
            }
            ParamLayout::Gcm => gcm_param(raw, len)?,
            ParamLayout::DerivationString => {
                if len as usize != size_of::<CK_KEY_DERIVATION_STRING_DATA>() {
                    return fail(CKR_MECHANISM_PARAM_INVALID);
                }
                let p = (raw as *const CK_KEY_DERIVATION_STRING_DATA).read_unaligned();
                MechanismParam::DeriveData {
                    iv: None,
                    data: param_bytes(p.pData, p.ulLen)?,
                }
            }
            ParamLayout::CbcEncryptData => {
                if len as usize != size_of::<CK_AES_CBC_ENCRYPT_DATA_PARAMS>() {
                    return fail(CKR_MECHANISM_PARAM_INVALID);
                }
                let p = (raw as *const CK_AES_CBC_ENCRYPT_DATA_PARAMS).read_unaligned();
                MechanismParam::DeriveData {
                    iv: Some(p.iv),
                    data: param_bytes(p.pData, p.length)?,
                }
            }
            ParamLayout::Ecdh1 => {
                if len as usize != size_of::<CK_ECDH1_DERIVE_PARAMS>() {
                    return fail(CKR_MECHANISM_PARAM_INVALID);
                }
                let p = (raw as *const CK_ECDH1_DERIVE_PARAMS).read_unaligned();
                MechanismParam::Ecdh1 {
                    kdf: p.kdf,
                    shared_data: param_bytes(p.pSharedData, p.ulSharedDataLen)?,
                    public_data: param_bytes(p.pPublicData, p.ulPublicDataLen)?,
                }
            }
            ParamLayout::Eddsa => {
                if len as usize != size_of::<CK_EDDSA_PARAMS>() {
                    return fail(CKR_MECHANISM_PARAM_INVALID);
                }
                let p = (raw as *const CK_EDDSA_PARAMS).read_unaligned();
                MechanismParam::Eddsa {
                    prehash: p.phFlag != CK_FALSE,
                    context: param_bytes(p.pContextData, p.ulContextDataLen)?,
                }
            }
            ParamLayout::Ctr => {
                if len as usize != size_of::<CK_AES_CTR_PARAMS>() {
                    return fail(CKR_MECHANISM_PARAM_INVALID);
                }
                let p = (raw as *const CK_AES_CTR_PARAMS).read_unaligned();
                MechanismParam::Ctr {
                    counter_bits: p.ulCounterBits,
                    block: p.cb,
                }
            }
        }
    };
    Ok((m.mechanism, param))
}

/// `CK_GCM_PARAMS` as PKCS#11 2.40 defined it, before 3.0 added `ulIvBits`. Clients
/// built against either header are in use (OpenSC and python-pkcs11 send the 3.0 form,
/// older Java and C programs the 2.40 one); the two differ in size, so the length tells.
/// Public for the fuzz crate, which sends both.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct GcmParams240 {
    pub iv: *const u8,
    pub iv_len: CK_ULONG,
    pub aad: *const u8,
    pub aad_len: CK_ULONG,
    pub tag_bits: CK_ULONG,
}

/// A byte string a mechanism parameter points to; NULL with a non-zero length, or a length
/// no memory can have, is CKR_MECHANISM_PARAM_INVALID, as every other malformed parameter.
///
/// # Safety
/// `ptr` must be NULL or readable for `len` bytes.
unsafe fn param_bytes(ptr: *const u8, len: CK_ULONG) -> Result<Vec<u8>> {
    if len != 0 && ptr.is_null() || region_len::<u8>(len).is_err() {
        return fail(CKR_MECHANISM_PARAM_INVALID);
    }
    crate::memory::copy(bytes_in(ptr, len)?)
}

/// A GCM parameter in either layout. A NULL IV or AAD with a non-zero length is
/// CKR_MECHANISM_PARAM_INVALID, as every other malformed parameter.
///
/// # Safety
/// `raw` must point to `len` readable bytes whose pointers, if non-NULL, are readable for
/// their lengths.
unsafe fn gcm_param(raw: *const u8, len: CK_ULONG) -> Result<MechanismParam> {
    let p = match len as usize {
        n if n == size_of::<CK_GCM_PARAMS>() => {
            let p = (raw as *const CK_GCM_PARAMS).read_unaligned();
            GcmParams240 {
                iv: p.pIv,
                iv_len: p.ulIvLen,
                aad: p.pAAD,
                aad_len: p.ulAADLen,
                tag_bits: p.ulTagBits,
            }
        }
        n if n == size_of::<GcmParams240>() => (raw as *const GcmParams240).read_unaligned(),
        _ => return fail(CKR_MECHANISM_PARAM_INVALID),
    };
    Ok(MechanismParam::Gcm {
        iv: param_bytes(p.iv, p.iv_len)?,
        aad: param_bytes(p.aad, p.aad_len)?,
        tag_bits: p.tag_bits,
    })
}

/// Copies `src` into a fixed-size, blank-padded PKCS#11 string field.
pub fn padded<const N: usize>(src: &str) -> [u8; N] {
    let mut out = [b' '; N];
    let bytes = src.as_bytes();
    let n = bytes.len().min(N);
    out[..n].copy_from_slice(&bytes[..n]);
    out
}

/// The list protocol of C_GetSlotList and C_GetMechanismList: NULL list = count query,
/// a short list = CKR_BUFFER_TOO_SMALL with the count written.
///
/// # Safety
/// `count` NULL or valid; `list` NULL or valid for `*count` writes.
pub unsafe fn list_out<T: Copy>(list: *mut T, count: *mut CK_ULONG, items: &[T]) -> Result<()> {
    let count = out(count)?;
    let n = items.len();
    if !list.is_null() {
        if (*count as usize) < n {
            *count = n as CK_ULONG;
            return fail(CKR_BUFFER_TOO_SMALL);
        }
        std::slice::from_raw_parts_mut(list, n).copy_from_slice(items);
    }
    *count = n as CK_ULONG;
    Ok(())
}

/// An input copied out of caller memory: the spec allows in-place operation (input and
/// output buffers the same), which must not alias a Rust `&mut [u8]`.
///
/// # Safety
/// As `bytes_in`.
pub unsafe fn bytes_copied(ptr: *const u8, len: CK_ULONG) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    Ok(zeroize::Zeroizing::new(crate::memory::copy(bytes_in(
        ptr, len,
    )?)?))
}

/// Writes `value` to a mandatory output location.
///
/// # Safety
/// As `out`.
pub unsafe fn write<T>(ptr: *mut T, value: T) -> Result<()> {
    *out(ptr)? = value;
    Ok(())
}
