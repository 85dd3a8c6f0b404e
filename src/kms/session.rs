//! A logged-in session on one token, and the key operations of the KMS view on it.

// CK_ULONG is 32 bits on some platforms: its casts to and from u64 are not always no-ops.
#![allow(clippy::unnecessary_cast)]

use super::algorithm::{self, Mech};
use super::key_id::{format_key_id, new_key_id, no_such_key, parse_key_id};
use super::usage::{Usage, USAGES};
use crate::api;
use crate::error::{Error, Result};
use crate::object::lifecycle;
use crate::object::Attributes;
use crate::session::Input;
use crate::state::Library;
use crate::token::UserType;
use crate::vendor::*;
use cryptoki_sys::*;
use zeroize::Zeroizing;

/// What `list-keys` and `describe-key` show of a key.
#[derive(Clone, Debug, serde::Serialize)]
pub struct KeyInfo {
    pub alias: String,
    pub key_id: String,
    pub usage: String,
    pub state: &'static str,
    pub created: u64,
    /// Unix seconds; 0 unless pending deletion.
    pub deletion_time: u64,
    pub description: String,
    /// The private or secret key object.
    #[serde(skip)]
    pub handle: CK_OBJECT_HANDLE,
    /// The public key object of a pair.
    #[serde(skip)]
    pub public: Option<CK_OBJECT_HANDLE>,
}

pub fn state_name(state: CK_ULONG) -> &'static str {
    match state {
        KEY_STATE_ENABLED => "Enabled",
        KEY_STATE_DISABLED => "Disabled",
        KEY_STATE_PENDING_DELETE => "PendingDeletion",
        _ => "Unknown",
    }
}

/// A read-write session of the token's user, logged out and closed when dropped.
pub struct KmsSession<'a> {
    pub(super) lib: &'a Library,
    pub(super) session: CK_SESSION_HANDLE,
}

impl Drop for KmsSession<'_> {
    fn drop(&mut self) {
        let _ = api::session::logout(self.lib, self.session);
        let _ = api::session::close(self.lib, self.session);
    }
}

/// The slot of the token labelled `label`.
pub fn find_token(lib: &Library, label: &str) -> Result<CK_SLOT_ID> {
    for slot in api::general::slot_list(lib)? {
        if lib.slots.token_info(slot)?.label == label {
            return Ok(slot);
        }
    }
    Err(Error::with(
        CKR_TOKEN_NOT_PRESENT,
        format!("no token labelled {label:?} (ferrohsm-util slots lists them)"),
    ))
}

/// A login error with what the user can do about it (`Token::explain_pin_error`).
fn pin_hint(lib: &Library, slot: CK_SLOT_ID, e: Error) -> Error {
    match lib.slots.token(slot) {
        Ok(Some(token)) => token.explain_pin_error(UserType::User, e),
        _ => e,
    }
}

fn ulong(attrs: &Attributes, ty: CK_ATTRIBUTE_TYPE) -> u64 {
    attrs.get_ulong(ty).ok().flatten().unwrap_or(0) as u64
}

fn text(attrs: &Attributes, ty: CK_ATTRIBUTE_TYPE) -> String {
    String::from_utf8_lossy(attrs.get(ty).unwrap_or_default()).into_owned()
}

impl<'a> KmsSession<'a> {
    /// Logs the user in to the token labelled `token` (which destroys keys whose deletion
    /// time has come).
    pub fn open(lib: &'a Library, token: &str, pin: &[u8]) -> Result<Self> {
        Self::open_slot(lib, find_token(lib, token)?, pin)
    }

    /// As `open`, on the token in `slot`. A wrong PIN's error says how many tries are
    /// left, a locked PIN's how to unlock it.
    pub fn open_slot(lib: &'a Library, slot: CK_SLOT_ID, pin: &[u8]) -> Result<Self> {
        let session = api::session::open(lib, slot, CKF_SERIAL_SESSION | CKF_RW_SESSION)?;
        let kms = KmsSession { lib, session };
        api::session::login(lib, session, CKU_USER, pin).map_err(|e| pin_hint(lib, slot, e))?;
        Ok(kms)
    }

    pub(super) fn find(&self, template: Attributes) -> Result<Vec<CK_OBJECT_HANDLE>> {
        api::object::find_init(self.lib, self.session, template)?;
        let found = api::object::find(self.lib, self.session, usize::MAX);
        api::object::find_final(self.lib, self.session)?;
        found
    }

    fn attrs(&self, handle: CK_OBJECT_HANDLE) -> Result<Attributes> {
        let s = self.lib.session(self.session)?;
        let object = s.lock().token.object(handle)?;
        Ok(object.attrs.clone())
    }

    /// Makes a key for `usage`; `alias` must be new on the token.
    pub fn create_key(&self, alias: &str, description: &str, usage: &Usage) -> Result<KeyInfo> {
        if alias.is_empty() || parse_key_id(alias).is_some() {
            return Err(Error::with(
                CKR_ARGUMENTS_BAD,
                "an alias is a non-empty name that is not a UUID",
            ));
        }
        if !self.keys_where(&by_alias(alias))?.is_empty() {
            return Err(Error::with(
                CKR_ARGUMENTS_BAD,
                format!("alias {alias:?} is taken on this token"),
            ));
        }
        let mut common = Attributes::new();
        common.set(CKA_LABEL, alias.as_bytes().to_vec());
        common.set(CKA_ID, new_key_id()?.to_vec());
        common.set(CKA_FERROHSM_DESCRIPTION, description.as_bytes().to_vec());
        let (public, private) = usage.templates(&common);
        let mechanism = (usage.mechanism, crate::mechanism::MechanismParam::None);
        let handle = match public {
            Some(public) => {
                api::keygen::generate_key_pair(self.lib, self.session, mechanism, public, private)?
                    .1
            }
            None => api::keygen::generate_key(self.lib, self.session, mechanism, private)?,
        };
        self.info(handle)
    }

    fn info(&self, handle: CK_OBJECT_HANDLE) -> Result<KeyInfo> {
        let attrs = self.attrs(handle)?;
        let id = attrs.get(CKA_ID).unwrap_or_default().to_vec();
        let public = if attrs.get_ulong(CKA_CLASS)? == Some(CKO_PRIVATE_KEY) && !id.is_empty() {
            let mut t = Attributes::new();
            t.set_ulong(CKA_CLASS, CKO_PUBLIC_KEY);
            t.set(CKA_ID, id.clone());
            self.find(t)?.first().copied()
        } else {
            None
        };
        let usage = ulong(&attrs, CKA_FERROHSM_KEY_USAGE) as CK_ULONG;
        Ok(KeyInfo {
            alias: text(&attrs, CKA_LABEL),
            key_id: format_key_id(&id),
            usage: Usage::by_code(usage).map_or("NONE", |u| u.name).to_string(),
            state: state_name(
                attrs
                    .get_ulong(CKA_FERROHSM_KEY_STATE)?
                    .unwrap_or(KEY_STATE_ENABLED),
            ),
            created: ulong(&attrs, CKA_FERROHSM_CREATION_TIME),
            deletion_time: ulong(&attrs, CKA_FERROHSM_DELETION_TIME),
            description: text(&attrs, CKA_FERROHSM_DESCRIPTION),
            handle,
            public,
        })
    }

    /// Every key made for a usage (private and secret keys that carry one), by alias.
    pub fn keys(&self) -> Result<Vec<KeyInfo>> {
        self.keys_where(&Attributes::new())
    }

    /// The keys made for a usage that also match `template`, by alias. A template naming
    /// the label or the id is an index look-up (a key is found among 10 000 without
    /// reading the others).
    fn keys_where(&self, template: &Attributes) -> Result<Vec<KeyInfo>> {
        let mut keys = Vec::new();
        for class in [CKO_PRIVATE_KEY, CKO_SECRET_KEY] {
            let mut t = template.clone();
            t.set_ulong(CKA_CLASS, class);
            for handle in self.find(t)? {
                let attrs = self.attrs(handle)?;
                let usage = ulong(&attrs, CKA_FERROHSM_KEY_USAGE) as CK_ULONG;
                if USAGES.iter().any(|u| u.code == usage) {
                    keys.push(self.info(handle)?);
                }
            }
        }
        keys.sort_by(|a, b| a.alias.cmp(&b.alias));
        Ok(keys)
    }

    /// The key named by its alias or its key id.
    pub fn key(&self, key: &str) -> Result<KeyInfo> {
        let by_id = match parse_key_id(key) {
            Some(id) => {
                let mut t = Attributes::new();
                t.set(CKA_ID, id);
                self.keys_where(&t)?
            }
            None => Vec::new(),
        };
        match by_id.into_iter().next() {
            Some(found) => Ok(found),
            None => self
                .keys_where(&by_alias(key))?
                .into_iter()
                .next()
                .ok_or_else(|| no_such_key(key)),
        }
    }

    /// Sets the state (and deletion time) of both halves of the key.
    pub fn set_state(&self, key: &KeyInfo, state: CK_ULONG, deletion_time: u64) -> Result<()> {
        let mut change = Attributes::new();
        change.set_ulong(CKA_FERROHSM_KEY_STATE, state);
        change.set_ulong(CKA_FERROHSM_DELETION_TIME, deletion_time as CK_ULONG);
        // The public half first: once the private key is pending deletion, so is the pair.
        for handle in key.public.iter().chain([&key.handle]) {
            api::object::set_attributes(self.lib, self.session, *handle, change.clone())?;
        }
        Ok(())
    }

    /// Schedules the key's deletion `days` days from now.
    pub fn schedule_deletion(&self, key: &KeyInfo, days: u64) -> Result<u64> {
        let when = lifecycle::now() + days * 24 * 60 * 60;
        self.set_state(key, KEY_STATE_PENDING_DELETE, when)?;
        Ok(when)
    }

    /// The DER SubjectPublicKeyInfo of a key pair's public key.
    pub fn public_key_der(&self, key: &KeyInfo) -> Result<Vec<u8>> {
        let public = key.public.ok_or_else(|| {
            Error::with(CKR_KEY_TYPE_INCONSISTENT, "a secret key has no public key")
        })?;
        crate::object::spki::public_key_der(&self.attrs(public)?)
    }

    /// One single-part call of the output-buffer protocol: a length query, then the call.
    fn single_part(
        &self,
        call: fn(&Library, CK_SESSION_HANDLE, api::crypto::InOut<'_>) -> Result<()>,
        input: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let mut len: CK_ULONG = 0;
        call(
            self.lib,
            self.session,
            Ok((Input::Borrowed(input), (None, &mut len))),
        )?;
        let mut out = Zeroizing::new(vec![0u8; len as usize]);
        call(
            self.lib,
            self.session,
            Ok((Input::Borrowed(input), (Some(out.as_mut_slice()), &mut len))),
        )?;
        out.truncate(len as usize);
        Ok(out)
    }

    pub fn decrypt(
        &self,
        key: &KeyInfo,
        algorithm: &str,
        data: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        api::crypto::decrypt_init(
            self.lib,
            self.session,
            algorithm::cipher(algorithm)?,
            key.handle,
        )?;
        self.single_part(api::crypto::decrypt, data)
    }

    /// Encrypts with the public key of a pair (what a sender does with the exported key).
    pub fn encrypt(&self, key: &KeyInfo, algorithm: &str, data: &[u8]) -> Result<Vec<u8>> {
        let public = key.public.unwrap_or(key.handle);
        api::crypto::encrypt_init(
            self.lib,
            self.session,
            algorithm::cipher(algorithm)?,
            public,
        )?;
        Ok(self.single_part(api::crypto::encrypt, data)?.to_vec())
    }

    pub fn sign(&self, key: &KeyInfo, algorithm: &str, data: &[u8]) -> Result<Vec<u8>> {
        let mechanism: Mech = algorithm::signature(algorithm)?;
        api::crypto::sign_init(self.lib, self.session, mechanism, key.handle)?;
        Ok(self.single_part(api::crypto::sign, data)?.to_vec())
    }

    pub fn verify(
        &self,
        key: &KeyInfo,
        algorithm: &str,
        data: &[u8],
        signature: &[u8],
    ) -> Result<()> {
        let public = key.public.unwrap_or(key.handle);
        api::crypto::verify_init(
            self.lib,
            self.session,
            algorithm::signature(algorithm)?,
            public,
        )?;
        api::crypto::verify(self.lib, self.session, Ok((data, signature)))
    }
}

/// The template of keys labelled `alias`.
fn by_alias(alias: &str) -> Attributes {
    let mut t = Attributes::new();
    t.set(CKA_LABEL, alias.as_bytes().to_vec());
    t
}
