//! Object management functions: create, copy, destroy, attributes, search.

use super::key_size;
use crate::config::Config;
use crate::error::{fail, Error, Result};
use crate::object::policy::{self, Origin, Readable};
use crate::object::Attributes;
use crate::session::Search;
use crate::state::Library;
use crate::token::{Token, UserType};
use cryptoki_sys::*;

/// The answer for one attribute of C_GetAttributeValue.
pub enum AttributeRead {
    Value(zeroize::Zeroizing<Vec<u8>>),
    /// An attribute-array attribute (CKA_WRAP_TEMPLATE, CKA_UNWRAP_TEMPLATE).
    Template(Attributes),
    Sensitive,
    Invalid,
}

/// Checks that a session may hold the object `attrs` describes: token objects need a
/// read-write session, private objects a logged-in user. Also refuses a generation's
/// templates before the (slow) generation.
pub(crate) fn check_storage(token: &Token, read_write: bool, attrs: &Attributes) -> Result<()> {
    if attrs.flag(CKA_TOKEN, false) && !read_write {
        return fail(CKR_SESSION_READ_ONLY);
    }
    if attrs.flag(CKA_PRIVATE, false) && token.logged_in() != Some(UserType::User) {
        return fail(CKR_USER_NOT_LOGGED_IN);
    }
    Ok(())
}

/// Key objects must hold usable key material: parse them once now so that a bad import is
/// refused at C_CreateObject rather than at first use.
pub(crate) fn check_key_material(config: &Config, attrs: &Attributes) -> Result<()> {
    match attrs.get_ulong(CKA_CLASS)? {
        Some(CKO_PUBLIC_KEY) | Some(CKO_PRIVATE_KEY) => crate::mechanism::load_key(attrs)
            .map(|_| ())
            .map_err(|e| match e.rv {
                CKR_TEMPLATE_INCOMPLETE | CKR_CURVE_NOT_SUPPORTED => e,
                _ => Error::with(CKR_ATTRIBUTE_VALUE_INVALID, e.context),
            })
            .and_then(|()| key_size::check_key(config, attrs, CKR_ATTRIBUTE_VALUE_INVALID)),
        _ => Ok(()),
    }
}

/// Every check C_CreateObject makes in `session`, without storing: the object it would
/// store. `create` is this plus the store; `ferrohsm-util migrate-softhsm --dry-run` uses it
/// alone.
pub fn check_create(
    lib: &Library,
    session: CK_SESSION_HANDLE,
    template: &Attributes,
) -> Result<Attributes> {
    let s = lib.session(session)?;
    let s = s.lock();
    checked_new_object(&lib.config, &s.token, s.read_write, template)
}

fn checked_new_object(
    config: &Config,
    token: &Token,
    read_write: bool,
    template: &Attributes,
) -> Result<Attributes> {
    let attrs = policy::new_object(template, Origin::Create, &Attributes::new())?;
    check_storage(token, read_write, &attrs)?;
    check_key_material(config, &attrs)?;
    Ok(attrs)
}

pub fn create(
    lib: &Library,
    session: CK_SESSION_HANDLE,
    template: Attributes,
) -> Result<CK_OBJECT_HANDLE> {
    let s = lib.session(session)?;
    let s = s.lock();
    let attrs = checked_new_object(&lib.config, &s.token, s.read_write, &template)?;
    create_audited(&s.token, attrs, session, "import")
}

/// True for a key object kept on the token: what the audit log follows.
fn audited_key(attrs: &Attributes) -> bool {
    attrs.flag(CKA_TOKEN, false)
        && matches!(
            attrs.get_ulong(CKA_CLASS),
            Ok(Some(CKO_PUBLIC_KEY | CKO_PRIVATE_KEY | CKO_SECRET_KEY))
        )
}

/// Stores the object; a key kept on the token is recorded in the audit log as `event`.
pub(crate) fn create_audited(
    token: &Token,
    attrs: Attributes,
    session: CK_SESSION_HANDLE,
    event: &str,
) -> Result<CK_OBJECT_HANDLE> {
    let audited = audited_key(&attrs).then(|| attrs.get(CKA_ID).unwrap_or_default().to_vec());
    let handle = token.create_object(attrs, session)?;
    if let Some(id) = audited {
        token.audit(event, &id, CKR_OK);
    }
    Ok(handle)
}

pub fn copy(
    lib: &Library,
    session: CK_SESSION_HANDLE,
    handle: CK_OBJECT_HANDLE,
    template: Attributes,
) -> Result<CK_OBJECT_HANDLE> {
    let s = lib.session(session)?;
    let s = s.lock();
    let original = s.token.object(handle)?;
    if !original.locked.is_empty() {
        // Its sealed secrets cannot be read without login: a copy would lose them.
        return fail(CKR_USER_NOT_LOGGED_IN);
    }
    if !original.attrs.flag(CKA_COPYABLE, true) {
        return fail(CKR_ACTION_PROHIBITED);
    }
    let by_so = s.token.logged_in() == Some(UserType::So);
    let attrs = policy::change_by(&original.attrs, &template, true, by_so)?;
    lifecycle_change(lib, &original.attrs, &attrs)?;
    check_storage(&s.token, s.read_write, &attrs)?;
    create_audited(&s.token, attrs, session, "copy")
}

/// The key-state transition from `current` to `changed` must be one `lifecycle` allows.
fn lifecycle_change(lib: &Library, current: &Attributes, changed: &Attributes) -> Result<()> {
    crate::object::lifecycle::check_change(
        current,
        changed,
        lib.config.key_deletion_min_days,
        crate::object::lifecycle::now(),
    )
}

pub fn destroy(lib: &Library, session: CK_SESSION_HANDLE, handle: CK_OBJECT_HANDLE) -> Result<()> {
    let s = lib.session(session)?;
    let s = s.lock();
    let read_write = s.read_write;
    let mut audited = None;
    s.token.destroy_object_if(handle, |attrs| {
        if attrs.flag(CKA_TOKEN, false) && !read_write {
            return fail(CKR_SESSION_READ_ONLY);
        }
        if !attrs.flag(CKA_DESTROYABLE, true) {
            return fail(CKR_ACTION_PROHIBITED);
        }
        audited = audited_key(attrs).then(|| attrs.get(CKA_ID).unwrap_or_default().to_vec());
        Ok(())
    })?;
    if let Some(id) = audited {
        s.token.audit("destroy", &id, CKR_OK);
    }
    Ok(())
}

pub fn size(
    lib: &Library,
    session: CK_SESSION_HANDLE,
    handle: CK_OBJECT_HANDLE,
) -> Result<CK_ULONG> {
    let s = lib.session(session)?;
    let object = s.lock().token.object(handle)?;
    Ok(object
        .attrs
        .iter()
        .map(|(_, v)| v.len() + 16)
        .sum::<usize>() as CK_ULONG)
}

pub fn get_attributes(
    lib: &Library,
    session: CK_SESSION_HANDLE,
    handle: CK_OBJECT_HANDLE,
    types: &[CK_ATTRIBUTE_TYPE],
) -> Result<Vec<AttributeRead>> {
    let s = lib.session(session)?;
    let object = s.lock().token.object(handle)?;
    Ok(types
        .iter()
        .map(|ty| match policy::read(&object.attrs, *ty) {
            // A sealed secret that cannot be unsealed without login is never revealed.
            _ if object.locked.contains(ty) => AttributeRead::Sensitive,
            Readable::Value(v) if is_template_attribute(*ty) => {
                match Attributes::from_template_bytes(v) {
                    Some(t) => AttributeRead::Template(t),
                    None => AttributeRead::Invalid,
                }
            }
            Readable::Value(v) => AttributeRead::Value(zeroize::Zeroizing::new(v.to_vec())),
            Readable::Sensitive => AttributeRead::Sensitive,
            Readable::Invalid => AttributeRead::Invalid,
        })
        .collect())
}

/// The attributes whose value is itself a template (an array of `CK_ATTRIBUTE`).
pub fn is_template_attribute(ty: CK_ATTRIBUTE_TYPE) -> bool {
    matches!(
        ty,
        CKA_WRAP_TEMPLATE | CKA_UNWRAP_TEMPLATE | CKA_DERIVE_TEMPLATE
    )
}

pub fn set_attributes(
    lib: &Library,
    session: CK_SESSION_HANDLE,
    handle: CK_OBJECT_HANDLE,
    changes: Attributes,
) -> Result<()> {
    let s = lib.session(session)?;
    let s = s.lock();
    let object = s.token.object(handle)?;
    if object.attrs.flag(CKA_TOKEN, false) && !s.read_write {
        return fail(CKR_SESSION_READ_ONLY);
    }
    // CKR_ACTION_PROHIBITED is the spec's code for an object whose policy attribute
    // (here CKA_MODIFIABLE) forbids the action.
    // A key's management state (`object::lifecycle`) changes whatever CKA_MODIFIABLE says.
    let only_lifecycle = changes
        .types()
        .all(|ty| policy::is_lifecycle(&object.attrs, ty));
    if !object.attrs.flag(CKA_MODIFIABLE, true) && !only_lifecycle {
        return fail(CKR_ACTION_PROHIBITED);
    }
    let by_so = s.token.logged_in() == Some(UserType::So);
    let attrs = policy::change_by(&object.attrs, &changes, false, by_so)?;
    lifecycle_change(lib, &object.attrs, &attrs)?;
    check_storage(&s.token, s.read_write, &attrs)?;
    let event = crate::object::lifecycle::event(&object.attrs, &attrs);
    let id = attrs.get(CKA_ID).unwrap_or_default().to_vec();
    s.token.update_object(handle, attrs)?;
    if let Some(event) = event {
        s.token.audit(event, &id, CKR_OK);
    }
    Ok(())
}

pub fn find_init(
    lib: &Library,
    session: CK_SESSION_HANDLE,
    mut template: Attributes,
) -> Result<()> {
    let s = lib.session(session)?;
    let mut s = s.lock();
    if s.ops.find.is_some() {
        return fail(CKR_OPERATION_ACTIVE);
    }
    policy::normalize_template(&mut template);
    let found = s.token.find(&template)?;
    s.ops.find = Some(Search {
        remaining: found.into_iter(),
    });
    Ok(())
}

pub fn find(
    lib: &Library,
    session: CK_SESSION_HANDLE,
    max: usize,
) -> Result<Vec<CK_OBJECT_HANDLE>> {
    let s = lib.session(session)?;
    let mut s = s.lock();
    let search = s
        .ops
        .find
        .as_mut()
        .ok_or(Error::new(CKR_OPERATION_NOT_INITIALIZED))?;
    Ok(search.remaining.by_ref().take(max).collect())
}

pub fn find_final(lib: &Library, session: CK_SESSION_HANDLE) -> Result<()> {
    let s = lib.session(session)?;
    let mut s = s.lock();
    match s.ops.find.take() {
        Some(_) => Ok(()),
        None => fail(CKR_OPERATION_NOT_INITIALIZED),
    }
}
