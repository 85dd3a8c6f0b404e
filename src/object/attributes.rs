//! A set of attribute values in PKCS#11 wire form: `CK_BBOOL` is one byte, `CK_ULONG` is
//! native-endian `size_of::<CK_ULONG>()` bytes, everything else raw bytes. Values are kept
//! in zeroizing buffers because some of them are key material.

use crate::error::{Error, Result};
use cryptoki_sys::*;
use zeroize::{Zeroize, Zeroizing};

pub type AttrValue = Zeroizing<Vec<u8>>;

/// Where one attribute's value lies in `Attributes::bytes`.
#[derive(Clone, Copy)]
struct Slot {
    ty: CK_ATTRIBUTE_TYPE,
    start: usize,
    len: usize,
}

/// The attributes sorted by type, their values back to back in one zeroizing buffer. An
/// object has some thirty attributes of a few bytes each: one buffer instead of a tree node
/// and an allocation per value makes creating, copying and dropping an object a handful of
/// allocations (what a session object's C_UnwrapKey + C_DestroyObject mostly cost).
///
/// Secrets never outlive their use in freed memory: a replaced or removed value's bytes are
/// zeroized at once, and the buffer grows by copying into a new one and zeroizing the old
/// (never by `Vec`'s own reallocation, which would free the old bytes as they are).
#[derive(Clone)]
pub struct Attributes {
    slots: Vec<Slot>,
    bytes: Zeroizing<Vec<u8>>,
    /// Bytes of replaced or removed values (zeroized) still in `bytes`.
    dead: usize,
}

impl Default for Attributes {
    fn default() -> Self {
        Attributes {
            slots: Vec::new(),
            bytes: Zeroizing::new(Vec::new()),
            dead: 0,
        }
    }
}

impl std::fmt::Debug for Attributes {
    // Only the types: values may be secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set()
            .entries(self.slots.iter().map(|s| format!("0x{:x}", s.ty)))
            .finish()
    }
}

impl Attributes {
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty set with room for `attributes` values of `bytes` bytes in all.
    pub fn with_capacity(attributes: usize, bytes: usize) -> Self {
        Attributes {
            slots: Vec::with_capacity(attributes),
            bytes: Zeroizing::new(Vec::with_capacity(bytes)),
            dead: 0,
        }
    }

    /// A copy of `self` (an object kind's defaults) with the values of `over` set: each
    /// replaces the value of its type or adds one. Given in ascending type order, they merge
    /// in one pass after a single copy of `self`'s buffers (a new object: some thirty
    /// defaults, a dozen given or computed values); a value out of order is set the slow way.
    /// `room`: how many values `over` has and how many bytes they take, at most (else the
    /// buffers regrow).
    pub fn overlaid<'v>(
        &self,
        over: impl IntoIterator<Item = (CK_ATTRIBUTE_TYPE, &'v [u8])>,
        (attributes, bytes): (usize, usize),
    ) -> Attributes {
        let mut out =
            Attributes::with_capacity(self.slots.len() + attributes, self.bytes.len() + bytes);
        out.bytes.extend_from_slice(&self.bytes);
        out.dead = self.dead;
        let mut rest = self.slots.as_slice();
        let mut out_of_order = Vec::new();
        for (ty, value) in over {
            if out.slots.last().is_some_and(|s| s.ty >= ty) {
                out_of_order.push((ty, value));
                continue;
            }
            while let Some((first, tail)) = rest.split_first() {
                if first.ty >= ty {
                    break;
                }
                out.slots.push(*first);
                rest = tail;
            }
            if let Some((first, tail)) = rest.split_first().filter(|(f, _)| f.ty == ty) {
                rest = tail;
                if first.len == value.len() {
                    out.bytes[first.start..first.start + first.len].copy_from_slice(value);
                    out.slots.push(*first);
                    continue;
                }
                out.bytes[first.start..first.start + first.len].zeroize();
                out.dead += first.len;
            }
            let start = out.append(value);
            out.slots.push(Slot {
                ty,
                start,
                len: value.len(),
            });
        }
        out.slots.extend_from_slice(rest);
        for (ty, value) in out_of_order {
            out.set_slice(ty, value);
        }
        out
    }

    /// The bytes of the values (with any replaced ones not yet compacted away).
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    fn position(&self, ty: CK_ATTRIBUTE_TYPE) -> std::result::Result<usize, usize> {
        self.slots.binary_search_by_key(&ty, |s| s.ty)
    }

    fn value(&self, slot: &Slot) -> &[u8] {
        &self.bytes[slot.start..slot.start + slot.len]
    }

    pub fn get(&self, ty: CK_ATTRIBUTE_TYPE) -> Option<&[u8]> {
        let i = self.position(ty).ok()?;
        Some(self.value(&self.slots[i]))
    }

    pub fn contains(&self, ty: CK_ATTRIBUTE_TYPE) -> bool {
        self.position(ty).is_ok()
    }

    /// Makes room for `extra` more bytes, growing the buffer without leaving a copy in
    /// freed memory.
    fn reserve(
        &mut self,
        extra: usize,
    ) -> std::result::Result<(), std::collections::TryReserveError> {
        let len = self.bytes.len();
        if self.bytes.capacity() - len >= extra {
            return Ok(());
        }
        let wanted = len
            .saturating_add(extra)
            .max(2 * self.bytes.capacity())
            .max(64);
        let mut grown = Vec::new();
        grown.try_reserve_exact(wanted)?;
        grown.extend_from_slice(&self.bytes);
        // The old buffer zeroizes (all its capacity) as it drops.
        self.bytes = Zeroizing::new(grown);
        Ok(())
    }

    /// Appends `value` to the buffer; returns where it starts.
    fn append(&mut self, value: &[u8]) -> usize {
        if self.reserve(value.len()).is_err() {
            // What `Vec` itself does when it cannot grow.
            std::alloc::handle_alloc_error(
                std::alloc::Layout::array::<u8>(value.len())
                    .unwrap_or(std::alloc::Layout::new::<u8>()),
            );
        }
        let start = self.bytes.len();
        self.bytes.extend_from_slice(value);
        start
    }

    /// `set_slice` for a value of the caller's size (a template at the C boundary): memory
    /// that cannot be had is CKR_HOST_MEMORY, not an abort.
    pub fn try_set_slice(&mut self, ty: CK_ATTRIBUTE_TYPE, value: &[u8]) -> Result<()> {
        self.reserve(value.len())
            .map_err(|_| Error::with(CKR_HOST_MEMORY, "no memory for an attribute value"))?;
        self.set_slice(ty, value);
        Ok(())
    }

    /// Forgets the value of `slot` (zeroized now), and rewrites the buffer once the dead
    /// bytes outweigh the live ones.
    fn retire(&mut self, slot: Slot) {
        self.bytes[slot.start..slot.start + slot.len].zeroize();
        self.dead += slot.len;
        if self.dead > 64 && self.dead * 2 > self.bytes.len() {
            let mut live = Vec::with_capacity(self.bytes.len() - self.dead);
            for s in &mut self.slots {
                let start = live.len();
                live.extend_from_slice(&self.bytes[s.start..s.start + s.len]);
                s.start = start;
            }
            self.bytes = Zeroizing::new(live);
            self.dead = 0;
        }
    }

    /// Sets `ty` to a copy of `value`.
    pub fn set_slice(&mut self, ty: CK_ATTRIBUTE_TYPE, value: &[u8]) {
        match self.position(ty) {
            Ok(i) => {
                let old = self.slots[i];
                if old.len == value.len() {
                    self.bytes[old.start..old.start + old.len].copy_from_slice(value);
                    return;
                }
                let start = self.append(value);
                self.slots[i] = Slot {
                    ty,
                    start,
                    len: value.len(),
                };
                self.retire(old);
            }
            Err(i) => {
                let start = self.append(value);
                self.slots.insert(
                    i,
                    Slot {
                        ty,
                        start,
                        len: value.len(),
                    },
                );
            }
        }
    }

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

    /// Sets each `(type, value)` of `values` whose type is not set yet (an object's
    /// defaults). Given in ascending type order, they merge in one pass instead of a search
    /// and an insertion each; a value out of order is set the slow way.
    pub fn set_missing<'v>(
        &mut self,
        values: impl IntoIterator<Item = (CK_ATTRIBUTE_TYPE, &'v [u8])>,
    ) {
        let old = std::mem::take(&mut self.slots);
        let mut merged = Vec::with_capacity(old.capacity().max(old.len() + 8));
        let mut rest = old.as_slice();
        let mut values = values.into_iter();
        let mut out_of_order = None;
        for (ty, value) in values.by_ref() {
            if merged.last().is_some_and(|s: &Slot| s.ty > ty) {
                out_of_order = Some((ty, value));
                break;
            }
            while let Some((first, tail)) = rest.split_first() {
                if first.ty > ty {
                    break;
                }
                merged.push(*first);
                rest = tail;
            }
            if merged.last().is_some_and(|s| s.ty == ty) {
                continue;
            }
            let start = self.append(value);
            merged.push(Slot {
                ty,
                start,
                len: value.len(),
            });
        }
        merged.extend_from_slice(rest);
        self.slots = merged;
        for (ty, value) in out_of_order.into_iter().chain(values) {
            if !self.contains(ty) {
                self.set_slice(ty, value);
            }
        }
    }

    /// Sets `ty` to `value`; an owned value given here (key material, say) is zeroized once
    /// copied in. `set_slice` copies a borrowed one without the intermediate `Vec`.
    pub fn set(&mut self, ty: CK_ATTRIBUTE_TYPE, value: impl Into<Vec<u8>>) {
        let value = Zeroizing::new(value.into());
        self.set_slice(ty, &value);
    }

    pub fn set_bool(&mut self, ty: CK_ATTRIBUTE_TYPE, value: bool) {
        self.set_slice(ty, &[if value { CK_TRUE } else { CK_FALSE }]);
    }

    pub fn set_ulong(&mut self, ty: CK_ATTRIBUTE_TYPE, value: CK_ULONG) {
        self.set_slice(ty, &value.to_ne_bytes());
    }

    pub fn remove(&mut self, ty: CK_ATTRIBUTE_TYPE) -> Option<AttrValue> {
        let i = self.position(ty).ok()?;
        let slot = self.slots.remove(i);
        let value = Zeroizing::new(self.value(&slot).to_vec());
        self.retire(slot);
        Some(value)
    }

    pub fn iter(&self) -> impl Iterator<Item = (CK_ATTRIBUTE_TYPE, &[u8])> {
        self.slots.iter().map(|s| (s.ty, self.value(s)))
    }

    pub fn types(&self) -> impl Iterator<Item = CK_ATTRIBUTE_TYPE> + '_ {
        self.slots.iter().map(|s| s.ty)
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
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
            out.set_slice(ty as CK_ATTRIBUTE_TYPE, value);
            bytes = &bytes[12 + len..];
        }
        Some(out)
    }

    /// True when every attribute in `template` is present here with an equal value
    /// (the C_FindObjects match rule).
    pub fn matches(&self, template: &Attributes) -> bool {
        template.iter().all(|(ty, v)| self.get(ty) == Some(v))
    }
}

impl FromIterator<(CK_ATTRIBUTE_TYPE, Vec<u8>)> for Attributes {
    /// A type given twice keeps its last value.
    fn from_iter<I: IntoIterator<Item = (CK_ATTRIBUTE_TYPE, Vec<u8>)>>(iter: I) -> Self {
        let mut attrs = Attributes::new();
        for (ty, value) in iter {
            attrs.set(ty, value);
        }
        attrs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_replaced_removed_and_kept_in_type_order() {
        let mut a = Attributes::new();
        a.set(CKA_LABEL, b"first".to_vec());
        a.set_bool(CKA_TOKEN, true);
        a.set_ulong(CKA_CLASS, CKO_DATA);
        assert_eq!(
            a.types().collect::<Vec<_>>(),
            [CKA_CLASS, CKA_TOKEN, CKA_LABEL]
        );
        // Same length in place, other lengths elsewhere; the others are untouched.
        a.set(CKA_LABEL, b"other".to_vec());
        assert_eq!(a.get(CKA_LABEL), Some(&b"other"[..]));
        for round in 0..200u32 {
            let label = vec![b'x'; (round % 50) as usize];
            a.set_slice(CKA_LABEL, &label);
            assert_eq!(a.get(CKA_LABEL), Some(label.as_slice()));
        }
        assert_eq!(a.get_ulong(CKA_CLASS).unwrap(), Some(CKO_DATA));
        assert_eq!(a.get_bool(CKA_TOKEN).unwrap(), Some(true));
        // Compaction keeps the buffer near the live size.
        assert!(a.bytes.len() < 200, "{}", a.bytes.len());
        assert_eq!(
            a.remove(CKA_TOKEN).as_deref().map(Vec::as_slice),
            Some(&[1u8][..])
        );
        assert!(!a.contains(CKA_TOKEN));
        assert_eq!(a.len(), 2);
        let b = a.clone();
        assert!(b.matches(&a) && a.matches(&b));
    }

    #[test]
    fn missing_values_merge_in_and_present_ones_stay() {
        let mut a = Attributes::new();
        a.set(CKA_LABEL, b"mine".to_vec());
        a.set_bool(CKA_TOKEN, true);
        a.set_missing([
            (CKA_CLASS, &[1u8; 8][..]),
            (CKA_TOKEN, &[0u8][..]),
            (CKA_PRIVATE, &[0u8][..]),
            (CKA_LABEL, &b""[..]),
            (CKA_VALUE, &b"v"[..]),
            (CKA_ID, &b"id"[..]),
            // Out of order: handled the slow way (and present, so left as it is).
            (CKA_TOKEN, &[0u8][..]),
        ]);
        assert_eq!(
            a.types().collect::<Vec<_>>(),
            [
                CKA_CLASS,
                CKA_TOKEN,
                CKA_PRIVATE,
                CKA_LABEL,
                CKA_VALUE,
                CKA_ID
            ]
        );
        assert_eq!(a.get(CKA_LABEL), Some(&b"mine"[..]));
        assert_eq!(a.get_bool(CKA_TOKEN).unwrap(), Some(true));
        assert_eq!(a.get(CKA_ID), Some(&b"id"[..]));
        assert_eq!(a.get(CKA_VALUE), Some(&b"v"[..]));
    }

    #[test]
    fn overlaid_values_replace_or_add_and_out_of_order_ones_still_count() {
        let mut base = Attributes::new();
        base.set_bool(CKA_TOKEN, false);
        base.set(CKA_LABEL, b"".to_vec());
        base.set(CKA_ID, b"default".to_vec());
        base.set_ulong(CKA_KEY_TYPE, CKK_AES);
        let class = CKO_SECRET_KEY.to_ne_bytes();
        let key_type = CKK_GENERIC_SECRET.to_ne_bytes();
        let a = base.overlaid(
            [
                (CKA_CLASS, &class[..]),
                (CKA_TOKEN, &[1u8][..]),
                (CKA_LABEL, &b"mine"[..]),
                (CKA_ID, &b"x"[..]),
                (CKA_VALUE, &b"v"[..]),
                (CKA_KEY_TYPE, &key_type[..]),
                // Out of order, and given twice: the last value counts.
                (CKA_LABEL, &b"last"[..]),
            ],
            (7, 32),
        );
        assert_eq!(
            a.types().collect::<Vec<_>>(),
            [
                CKA_CLASS,
                CKA_TOKEN,
                CKA_LABEL,
                CKA_VALUE,
                CKA_KEY_TYPE,
                CKA_ID
            ]
        );
        assert_eq!(a.get_bool(CKA_TOKEN).unwrap(), Some(true));
        assert_eq!(a.get(CKA_LABEL), Some(&b"last"[..]));
        assert_eq!(a.get(CKA_ID), Some(&b"x"[..]));
        assert_eq!(a.get_ulong(CKA_KEY_TYPE).unwrap(), Some(CKK_GENERIC_SECRET));
        assert_eq!(a.get(CKA_VALUE), Some(&b"v"[..]));
        // The base is as it was; nothing given leaves a copy.
        assert_eq!(base.get(CKA_ID), Some(&b"default"[..]));
        let same = base.overlaid([], (0, 0));
        assert_eq!(
            same.iter().collect::<Vec<_>>(),
            base.iter().collect::<Vec<_>>()
        );
    }

    #[test]
    fn collect_keeps_the_last_value_and_templates_round_trip() {
        let a: Attributes = [
            (CKA_ID, b"one".to_vec()),
            (CKA_LABEL, b"l".to_vec()),
            (CKA_ID, b"two".to_vec()),
        ]
        .into_iter()
        .collect();
        assert_eq!(a.get(CKA_ID), Some(&b"two"[..]));
        let back = Attributes::from_template_bytes(&a.to_template_bytes()).unwrap();
        assert_eq!(
            back.iter().collect::<Vec<_>>(),
            a.iter().collect::<Vec<_>>()
        );
    }
}
