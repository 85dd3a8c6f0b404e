//! The in-memory object index of one token: every object by handle, plus a lookup by the
//! values of the attributes searches name most (CKA_LABEL, CKA_ID, CKA_CLASS), so finding
//! one object among many touches only the candidates with a matching value. The other
//! attributes of a template filter those candidates (`policy::search_matches`: secret
//! attributes never match). Nothing here decrypts or reads disk.
//!
//! `M` is the owner's per-object bookkeeping (store id, sealed values, ...).

use crate::object::policy::search_matches;
use crate::object::Attributes;
use crate::token::Object;
use cryptoki_sys::*;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Hashes object handles with one multiply (FxHash's) instead of SipHash. Handles are the
/// token's own counter (`token::new_handle`), never a caller's data, so there is no
/// collision flooding to resist; SipHash was the larger part of indexing a session object.
/// Values (labels, IDs: caller data) keep the standard hasher.
#[derive(Default, Clone, Copy)]
pub struct HandleHasher(u64);

impl std::hash::Hasher for HandleHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

pub type HandleHash = std::hash::BuildHasherDefault<HandleHasher>;
type Handles = HashSet<CK_OBJECT_HANDLE, HandleHash>;

/// The attribute types with a value lookup.
pub const INDEXED_TYPES: [CK_ATTRIBUTE_TYPE; 3] = [CKA_LABEL, CKA_ID, CKA_CLASS];

pub struct Entry<M> {
    pub object: Arc<Object>,
    pub meta: M,
}

pub struct ObjectIndex<M> {
    entries: HashMap<CK_OBJECT_HANDLE, Entry<M>, HandleHash>,
    /// Per indexed type (in `INDEXED_TYPES` order), the handles by value: keyed by the value
    /// alone, so that a look-up borrows it (`&[u8]`) instead of copying it.
    by_value: [HashMap<Vec<u8>, Handles>; INDEXED_TYPES.len()],
    /// The session objects of each session that has any, so that closing a session
    /// touches only its own objects, not every object of the token.
    by_session: HashMap<CK_SESSION_HANDLE, Handles>,
}

impl<M> Default for ObjectIndex<M> {
    fn default() -> Self {
        ObjectIndex {
            entries: HashMap::default(),
            by_value: Default::default(),
            by_session: HashMap::new(),
        }
    }
}

impl<M> ObjectIndex<M> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Only the tests count entries; the token asks for matches.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn get(&self, handle: CK_OBJECT_HANDLE) -> Option<&Entry<M>> {
        self.entries.get(&handle)
    }

    /// Adds the object, replacing any entry with the same handle.
    pub fn insert(&mut self, object: Arc<Object>, meta: M) {
        let handle = object.handle;
        self.remove(handle);
        for (ty, by_value) in INDEXED_TYPES.iter().zip(&mut self.by_value) {
            if let Some(value) = object.attrs.get(*ty) {
                match by_value.get_mut(value) {
                    Some(set) => {
                        set.insert(handle);
                    }
                    None => {
                        let mut set = Handles::default();
                        set.insert(handle);
                        by_value.insert(value.to_vec(), set);
                    }
                }
            }
        }
        if let Some(session) = object.session {
            self.by_session.entry(session).or_default().insert(handle);
        }
        self.entries.insert(handle, Entry { object, meta });
    }

    /// Every entry's metadata, mutable (the objects themselves stay as indexed).
    pub fn metas_mut(&mut self) -> impl Iterator<Item = (&Arc<Object>, &mut M)> {
        self.entries.values_mut().map(|e| (&e.object, &mut e.meta))
    }

    pub fn remove(&mut self, handle: CK_OBJECT_HANDLE) -> Option<Entry<M>> {
        let entry = self.entries.remove(&handle)?;
        for (ty, by_value) in INDEXED_TYPES.iter().zip(&mut self.by_value) {
            if let Some(value) = entry.object.attrs.get(*ty) {
                if let Some(set) = by_value.get_mut(value) {
                    set.remove(&handle);
                    if set.is_empty() {
                        by_value.remove(value);
                    }
                }
            }
        }
        if let Some(session) = entry.object.session {
            if let Some(set) = self.by_session.get_mut(&session) {
                set.remove(&handle);
                if set.is_empty() {
                    self.by_session.remove(&session);
                }
            }
        }
        Some(entry)
    }

    /// Whether `session` owns any session object.
    pub fn has_session_objects(&self, session: CK_SESSION_HANDLE) -> bool {
        self.by_session.contains_key(&session)
    }

    /// Removes the session objects of `session`; returns their handles.
    pub fn remove_session(&mut self, session: CK_SESSION_HANDLE) -> Vec<CK_OBJECT_HANDLE> {
        let gone: Vec<_> = self
            .by_session
            .remove(&session)
            .map(|set| set.into_iter().collect())
            .unwrap_or_default();
        for handle in &gone {
            self.remove(*handle);
        }
        gone
    }

    /// Removes every entry for which `drop` is true; returns the removed handles.
    pub fn remove_where(
        &mut self,
        mut drop: impl FnMut(&Entry<M>) -> bool,
    ) -> Vec<CK_OBJECT_HANDLE> {
        let gone: Vec<_> = self
            .entries
            .iter()
            .filter(|(_, e)| drop(e))
            .map(|(h, _)| *h)
            .collect();
        for handle in &gone {
            self.remove(*handle);
        }
        gone
    }

    /// The entries whose attributes match every attribute of `template`. When the
    /// template names an indexed type, only the smallest matching value set is walked.
    pub fn matching<'a>(
        &'a self,
        template: &'a Attributes,
    ) -> Box<dyn Iterator<Item = &'a Entry<M>> + 'a> {
        let mut smallest: Option<&Handles> = None;
        for (ty, by_value) in INDEXED_TYPES.iter().zip(&self.by_value) {
            if let Some(value) = template.get(*ty) {
                match by_value.get(value) {
                    None => return Box::new(std::iter::empty()),
                    Some(set) => {
                        if smallest.is_none_or(|s| set.len() < s.len()) {
                            smallest = Some(set);
                        }
                    }
                }
            }
        }
        match smallest {
            Some(set) => Box::new(
                set.iter()
                    .filter_map(|h| self.entries.get(h))
                    .filter(move |e| search_matches(&e.object.attrs, template)),
            ),
            None => Box::new(
                self.entries
                    .values()
                    .filter(move |e| search_matches(&e.object.attrs, template)),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(handle: CK_OBJECT_HANDLE, label: &str, class: CK_OBJECT_CLASS) -> Arc<Object> {
        let mut attrs = Attributes::new();
        attrs.set(CKA_LABEL, label.as_bytes());
        attrs.set_ulong(CKA_CLASS, class);
        attrs.set_bool(CKA_TOKEN, true);
        Arc::new(Object {
            handle,
            attrs,
            session: None,
            locked: Vec::new(),
        })
    }

    #[test]
    fn finds_by_indexed_and_other_attributes() {
        let mut index = ObjectIndex::new();
        for h in 1..=100 {
            index.insert(object(h, &format!("k{h}"), CKO_DATA), ());
        }
        let mut t = Attributes::new();
        t.set(CKA_LABEL, b"k42".to_vec());
        let found: Vec<_> = index.matching(&t).map(|e| e.object.handle).collect();
        assert_eq!(found, vec![42]);

        t.set_ulong(CKA_CLASS, CKO_CERTIFICATE);
        assert_eq!(index.matching(&t).count(), 0);

        let mut t = Attributes::new();
        t.set_bool(CKA_TOKEN, true);
        assert_eq!(index.matching(&t).count(), 100);

        index.remove(42);
        let mut t = Attributes::new();
        t.set(CKA_LABEL, b"k42".to_vec());
        assert_eq!(index.matching(&t).count(), 0);
        // Replacing an entry re-indexes it under its new label.
        index.insert(object(7, "renamed", CKO_DATA), ());
        let mut t = Attributes::new();
        t.set(CKA_LABEL, b"k7".to_vec());
        assert_eq!(index.matching(&t).count(), 0);
        assert_eq!(index.len(), 99);
    }

    #[test]
    fn session_objects_by_session() {
        let mut index = ObjectIndex::new();
        let owned = |handle, session| {
            let mut object = Arc::into_inner(object(handle, "s", CKO_DATA)).unwrap();
            object.session = Some(session);
            Arc::new(object)
        };
        index.insert(object(1, "t", CKO_DATA), ());
        index.insert(owned(2, 10), ());
        index.insert(owned(3, 10), ());
        index.insert(owned(4, 11), ());
        index.remove(3);
        assert!(index.has_session_objects(10));
        assert!(!index.has_session_objects(12));
        assert_eq!(index.remove_session(10), vec![2]);
        assert!(!index.has_session_objects(10));
        assert!(index.remove_session(10).is_empty());
        assert_eq!(index.len(), 2);
        let mut t = Attributes::new();
        t.set(CKA_LABEL, b"s".to_vec());
        let left: Vec<_> = index.matching(&t).map(|e| e.object.handle).collect();
        assert_eq!(left, vec![4]);
    }
}
