//! A set of attribute values in PKCS#11 wire form: `CK_BBOOL` is one byte, `CK_ULONG` is
//! native-endian `size_of::<CK_ULONG>()` bytes, everything else raw bytes. Values are kept
//! in zeroizing buffers because some of them are key material.

use crate::error::{Error, Result};
use cryptoki_sys::*;
use std::collections::BTreeMap;
use zeroize::Zeroizing;

pub type AttrValue = Zeroizing<Vec<u8>>;

#[derive(Clone, Default)]
pub struct Attributes(BTreeMap<CK_ATTRIBUTE_TYPE, AttrValue>);

impl std::fmt::Debug for Attributes {
    // Only the types: values may be secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set()
            .entries(self.0.keys().map(|k| format!("0x{k:x}")))
            .finish()
    }
}

impl Attributes {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, ty: CK_ATTRIBUTE_TYPE) -> Option<&[u8]> {
        self.0.get(&ty).map(|v| v.as_slice())
    }

    pub fn contains(&self, ty: CK_ATTRIBUTE_TYPE) -> bool {
        self.0.contains_key(&ty)
    }

    /// A `CK_BBOOL`; a value of the wrong length is `CKR_ATTRIBUTE_VALUE_INVALID`.
    pub fn get_bool(&self, ty: CK_ATTRIBUTE_TYPE) -> Result<Option<bool>> {
        match self.get(ty) {
            None => Ok(None),
            Some([b]) => Ok(Some(*b != 0)),
            Some(_) => Err(Error::with(
                CKR_ATTRIBUTE_VALUE_INVALID,
                format!("attribute 0x{ty:x} is not a CK_BBOOL"),
            )),
        }
    }

    /// A `CK_ULONG`; a value of the wrong length is `CKR_ATTRIBUTE_VALUE_INVALID`.
    pub fn get_ulong(&self, ty: CK_ATTRIBUTE_TYPE) -> Result<Option<CK_ULONG>> {
        match self.get(ty) {
            None => Ok(None),
            Some(v) => match <[u8; std::mem::size_of::<CK_ULONG>()]>::try_from(v) {
                Ok(bytes) => Ok(Some(CK_ULONG::from_ne_bytes(bytes))),
                Err(_) => Err(Error::with(
                    CKR_ATTRIBUTE_VALUE_INVALID,
                    format!("attribute 0x{ty:x} is not a CK_ULONG"),
                )),
            },
        }
    }

    /// The boolean, or `default` when absent.
    pub fn flag(&self, ty: CK_ATTRIBUTE_TYPE, default: bool) -> bool {
        self.get_bool(ty).ok().flatten().unwrap_or(default)
    }

    pub fn set(&mut self, ty: CK_ATTRIBUTE_TYPE, value: impl Into<Vec<u8>>) {
        self.0.insert(ty, Zeroizing::new(value.into()));
    }

    pub fn set_bool(&mut self, ty: CK_ATTRIBUTE_TYPE, value: bool) {
        self.set(ty, vec![if value { CK_TRUE } else { CK_FALSE }]);
    }

    pub fn set_ulong(&mut self, ty: CK_ATTRIBUTE_TYPE, value: CK_ULONG) {
        self.set(ty, value.to_ne_bytes().to_vec());
    }

    pub fn remove(&mut self, ty: CK_ATTRIBUTE_TYPE) -> Option<AttrValue> {
        self.0.remove(&ty)
    }

    pub fn iter(&self) -> impl Iterator<Item = (CK_ATTRIBUTE_TYPE, &[u8])> {
        self.0.iter().map(|(k, v)| (*k, v.as_slice()))
    }

    pub fn types(&self) -> impl Iterator<Item = CK_ATTRIBUTE_TYPE> + '_ {
        self.0.keys().copied()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The stored form of a template-valued attribute (CKA_WRAP_TEMPLATE,
    /// CKA_UNWRAP_TEMPLATE): per attribute, its type (8 bytes LE), value length (4 bytes LE)
    /// and value, in ascending type order.
    pub fn to_template_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (ty, value) in self.iter() {
            // CK_ULONG is 32 bits on some platforms; the stored form is always 64.
            #[allow(clippy::unnecessary_cast)]
            let ty = ty as u64;
            out.extend_from_slice(&ty.to_le_bytes());
            out.extend_from_slice(&(value.len() as u32).to_le_bytes());
            out.extend_from_slice(value);
        }
        out
    }

    /// Reads `to_template_bytes`' form back; `None` when `bytes` is not in that form.
    pub fn from_template_bytes(mut bytes: &[u8]) -> Option<Attributes> {
        let mut out = Attributes::new();
        while !bytes.is_empty() {
            let ty = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
            let len = u32::from_le_bytes(bytes.get(8..12)?.try_into().ok()?) as usize;
            let value = bytes.get(12..12 + len)?;
            out.set(ty as CK_ATTRIBUTE_TYPE, value);
            bytes = &bytes[12 + len..];
        }
        Some(out)
    }

    /// True when every attribute in `template` is present here with an equal value
    /// (the C_FindObjects match rule).
    pub fn matches(&self, template: &Attributes) -> bool {
        template.0.iter().all(|(k, v)| self.0.get(k) == Some(v))
    }
}

impl FromIterator<(CK_ATTRIBUTE_TYPE, Vec<u8>)> for Attributes {
    fn from_iter<I: IntoIterator<Item = (CK_ATTRIBUTE_TYPE, Vec<u8>)>>(iter: I) -> Self {
        Attributes(
            iter.into_iter()
                .map(|(k, v)| (k, Zeroizing::new(v)))
                .collect(),
        )
    }
}
