//! The copy into a ferrohsm token, through the same code as C_OpenSession, C_Login,
//! C_FindObjects and C_CreateObject: every object passes ferrohsm's attribute checks and
//! its key material is parsed before it is stored, exactly as for an application's import.
//!
//! Re-running is safe: an object already on the ferrohsm token (same class, key or
//! certificate type, CKA_ID, CKA_LABEL and, where it has one, the same public modulus, EC
//! point or certificate value) is reported as present and not copied twice.

use super::convert::{self, Converted};
use super::{SoftObject, SoftObjects, SoftToken};
use crate::api;
use crate::error::Result;
use crate::object::Attributes;
use crate::state::Library;
use cryptoki_sys::*;

/// What happened to one SoftHSM object.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Copied,
    /// `--dry-run`: would be copied.
    WouldCopy,
    AlreadyPresent,
    /// Not copied: ferrohsm refused it (its reason) or could not read it.
    Skipped(String),
}

/// One line of the report.
pub struct Entry {
    pub file: String,
    /// "RSA private key", "X.509 certificate", ...
    pub kind: String,
    pub label: String,
    pub id_hex: String,
    pub outcome: Outcome,
    /// Attributes not carried over, with the reason.
    pub dropped: Vec<(CK_ATTRIBUTE_TYPE, &'static str)>,
}

pub struct Report {
    pub entries: Vec<Entry>,
}

impl Report {
    pub fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.entries.iter().filter(|e| f(&e.outcome)).count()
    }
}

fn kind_name(template: &Attributes) -> String {
    let class = template.get_ulong(CKA_CLASS).ok().flatten();
    let key_type = match template.get_ulong(CKA_KEY_TYPE).ok().flatten() {
        Some(CKK_RSA) => "RSA ",
        Some(CKK_EC) => "EC ",
        Some(CKK_AES) => "AES ",
        Some(CKK_GENERIC_SECRET) => "generic ",
        Some(_) => "other ",
        None => "",
    };
    match class {
        Some(CKO_PUBLIC_KEY) => format!("{key_type}public key"),
        Some(CKO_PRIVATE_KEY) => format!("{key_type}private key"),
        Some(CKO_SECRET_KEY) => format!("{key_type}secret key"),
        Some(CKO_CERTIFICATE) => "certificate".to_string(),
        Some(CKO_DATA) => "data object".to_string(),
        Some(other) => format!("class 0x{other:x}"),
        None => "object".to_string(),
    }
}

/// The attributes that say "this is the same object" (see the module comment).
fn identity(template: &Attributes) -> Attributes {
    let mut search = Attributes::new();
    for ty in [
        CKA_CLASS,
        CKA_KEY_TYPE,
        CKA_CERTIFICATE_TYPE,
        CKA_ID,
        CKA_LABEL,
        CKA_MODULUS,
        CKA_EC_POINT,
    ] {
        if let Some(v) = template.get(ty) {
            search.set(ty, v.to_vec());
        }
    }
    if template.get_ulong(CKA_CLASS).ok().flatten() == Some(CKO_CERTIFICATE) {
        if let Some(v) = template.get(CKA_VALUE) {
            search.set(CKA_VALUE, v.to_vec());
        }
    }
    search
}

fn already_present(
    lib: &Library,
    session: CK_SESSION_HANDLE,
    template: &Attributes,
) -> Result<bool> {
    api::object::find_init(lib, session, identity(template))?;
    let found = api::object::find(lib, session, 1);
    api::object::find_final(lib, session)?;
    Ok(!found?.is_empty())
}

fn copy_one(
    lib: &Library,
    session: CK_SESSION_HANDLE,
    object: &SoftObject,
    dry_run: bool,
) -> Entry {
    let text = |ty| {
        object
            .attributes
            .get(&ty)
            .and_then(|v| match v {
                super::SoftValue::Bytes(b) => Some(b.clone()),
                _ => None,
            })
            .unwrap_or_default()
    };
    let mut entry = Entry {
        file: object.file.clone(),
        kind: String::new(),
        label: String::from_utf8_lossy(&text(CKA_LABEL)).to_string(),
        id_hex: hex::encode(text(CKA_ID)),
        outcome: Outcome::Copied,
        dropped: Vec::new(),
    };
    let Converted {
        mut template,
        dropped,
    } = match convert::to_template(object) {
        Ok(c) => c,
        Err(e) => {
            entry.kind = "object".into();
            entry.outcome = Outcome::Skipped(e.context.to_string());
            return entry;
        }
    };
    // Everything in SoftHSM's token directory is a token object.
    template.set_bool(CKA_TOKEN, true);
    entry.kind = kind_name(&template);
    entry.dropped = dropped;
    entry.outcome = match already_present(lib, session, &template) {
        Ok(true) => Outcome::AlreadyPresent,
        Ok(false) if dry_run => match api::object::check_create(lib, session, &template) {
            Ok(_) => Outcome::WouldCopy,
            Err(e) => Outcome::Skipped(e.to_string()),
        },
        Ok(false) => match api::object::create(lib, session, template) {
            Ok(_) => Outcome::Copied,
            Err(e) => Outcome::Skipped(e.to_string()),
        },
        Err(e) => Outcome::Skipped(e.to_string()),
    };
    entry
}

/// Copies every object of `source` (opened with `softhsm_pin`) into the ferrohsm token in
/// `slot`, logged in as its user with `pin`. Errors end the migration before anything is
/// written (wrong SoftHSM PIN: CKR_PIN_INCORRECT; wrong ferrohsm PIN, no such slot, ...);
/// objects ferrohsm refuses are listed in the report as skipped. `progress(done, total)`
/// is called after each object.
pub fn migrate(
    lib: &Library,
    slot: CK_SLOT_ID,
    pin: &[u8],
    source: &SoftToken,
    softhsm_pin: &[u8],
    dry_run: bool,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Report> {
    let SoftObjects {
        readable: objects,
        unreadable,
    } = source.read_objects(softhsm_pin)?;
    let session = api::session::open(lib, slot, CKF_SERIAL_SESSION | CKF_RW_SESSION)?;
    let result = api::session::login(lib, session, CKU_USER, pin).map(|()| {
        let mut entries = Vec::with_capacity(objects.len());
        for (done, object) in objects.iter().enumerate() {
            entries.push(copy_one(lib, session, object, dry_run));
            progress(done + 1, objects.len());
        }
        entries.extend(unreadable.into_iter().map(|(file, e)| Entry {
            file,
            kind: "object".into(),
            label: String::new(),
            id_hex: String::new(),
            outcome: Outcome::Skipped(format!("unreadable: {e}")),
            dropped: Vec::new(),
        }));
        let _ = api::session::logout(lib, session);
        Report { entries }
    });
    let _ = api::session::close(lib, session);
    result
}
