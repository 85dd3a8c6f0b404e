//! SoftHSMv2 migration: read a SoftHSMv2 token directory (never write it), open it with
//! its user PIN, and copy its objects into a ferrohsm token.
//!
//! - `file`: the object file format; `token_key`: SoftHSM's PIN blob and attribute
//!   encryption; `convert`: a SoftHSM object as a C_CreateObject template;
//!   `import`: the copy into a ferrohsm token, with its report.
//!
//! Layout read: `<tokendir>/<token uuid>/token.object` (label, serial, PIN blobs) and one
//! `<object uuid>.object` per token object; `*.lock` and `generation` are left alone.
//! The database backend (`objectstore.backend = db`, a `sqlite3.db` file) is refused.

// `file` and `convert` are public for the fuzz crate (fuzz/), which feeds them bytes.
pub mod convert;
pub mod file;
mod import;
mod token_key;

pub use import::{migrate, Outcome, Report};

use crate::error::{Error, Result};
use cryptoki_sys::*;
use file::{SoftAttributes, SoftValue};
use std::path::{Path, PathBuf};
use token_key::SoftTokenKey;
use zeroize::Zeroizing;

/// SoftHSM's own token attributes in `token.object` (CKA_VENDOR_DEFINED + "SH" + n).
const CKA_OS_TOKENLABEL: CK_ATTRIBUTE_TYPE = 0x8000_5349;
const CKA_OS_TOKENSERIAL: CK_ATTRIBUTE_TYPE = 0x8000_534A;
const CKA_OS_USERPIN: CK_ATTRIBUTE_TYPE = 0x8000_534D;

const TOKEN_FILE: &str = "token.object";
const OBJECT_SUFFIX: &str = ".object";

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::with(CKR_DEVICE_ERROR, format!("{}: {e}", path.display()))
}

/// A SoftHSMv2 token directory, before login.
pub struct SoftToken {
    pub dir: PathBuf,
    pub label: String,
    pub serial: String,
    user_pin_blob: Option<Vec<u8>>,
}

/// One object of the token, its private byte strings decrypted.
pub struct SoftObject {
    /// The object's file name (its SoftHSM uuid), for the report.
    pub file: String,
    pub attributes: SoftAttributes,
}

/// The objects of a token: those read, and the files that could not be (with why).
pub struct SoftObjects {
    pub readable: Vec<SoftObject>,
    pub unreadable: Vec<(String, Error)>,
}

impl Drop for SoftObject {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        for value in self.attributes.values_mut() {
            if let SoftValue::Bytes(b) = value {
                b.zeroize();
            }
        }
    }
}

fn bytes_of(attributes: &SoftAttributes, ty: CK_ATTRIBUTE_TYPE) -> Option<&[u8]> {
    match attributes.get(&ty) {
        Some(SoftValue::Bytes(b)) => Some(b),
        _ => None,
    }
}

fn text_of(attributes: &SoftAttributes, ty: CK_ATTRIBUTE_TYPE) -> String {
    bytes_of(attributes, ty)
        .map(|b| String::from_utf8_lossy(b).trim_end().to_string())
        .unwrap_or_default()
}

fn is_token_dir(dir: &Path) -> bool {
    dir.join(TOKEN_FILE).is_file()
}

impl SoftToken {
    /// Finds the token: `path` is a token's own directory, or SoftHSM's `tokendir` holding
    /// one token or several (then `label` picks one). Errors: CKR_TOKEN_NOT_PRESENT (none,
    /// or no such label), CKR_ARGUMENTS_BAD (several and no label), CKR_DEVICE_ERROR
    /// (unreadable or the database backend).
    pub fn find(path: &Path, label: Option<&str>) -> Result<SoftToken> {
        if path.join("sqlite3.db").exists() {
            return Err(Error::with(
                CKR_DEVICE_ERROR,
                "SoftHSM's database backend (objectstore.backend = db) is not supported; \
                 only the file backend",
            ));
        }
        if is_token_dir(path) {
            let token = SoftToken::open(path)?;
            return match label {
                Some(l) if l != token.label => Err(Error::with(
                    CKR_TOKEN_NOT_PRESENT,
                    format!(
                        "the SoftHSM token in {} is {:?}",
                        path.display(),
                        token.label
                    ),
                )),
                _ => Ok(token),
            };
        }
        let entries = std::fs::read_dir(path).map_err(|e| io_error(path, e))?;
        let mut tokens = Vec::new();
        for entry in entries {
            let dir = entry.map_err(|e| io_error(path, e))?.path();
            if dir.is_dir() && is_token_dir(&dir) {
                tokens.push(SoftToken::open(&dir)?);
            }
        }
        if let Some(l) = label {
            tokens.retain(|t| t.label == l);
        }
        match tokens.len() {
            1 => Ok(tokens.remove(0)),
            0 => Err(Error::with(
                CKR_TOKEN_NOT_PRESENT,
                format!(
                    "no SoftHSM token{} in {}",
                    label
                        .map(|l| format!(" labelled {l:?}"))
                        .unwrap_or_default(),
                    path.display()
                ),
            )),
            _ => Err(Error::with(
                CKR_ARGUMENTS_BAD,
                format!(
                    "{} SoftHSM tokens in {} ({}); say which with --softhsm-token",
                    tokens.len(),
                    path.display(),
                    tokens
                        .iter()
                        .map(|t| format!("{:?}", t.label))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }

    fn open(dir: &Path) -> Result<SoftToken> {
        let path = dir.join(TOKEN_FILE);
        let bytes = std::fs::read(&path).map_err(|e| io_error(&path, e))?;
        let attributes = file::parse(&bytes)
            .map_err(|e| Error::with(e.rv, format!("{}: {}", path.display(), e.context)))?;
        Ok(SoftToken {
            dir: dir.to_path_buf(),
            label: text_of(&attributes, CKA_OS_TOKENLABEL),
            serial: text_of(&attributes, CKA_OS_TOKENSERIAL),
            user_pin_blob: bytes_of(&attributes, CKA_OS_USERPIN).map(<[u8]>::to_vec),
        })
    }

    /// Opens the token key with the user PIN and reads every object, decrypting the byte
    /// strings of private ones. A file that does not parse or decrypt is listed in
    /// `unreadable` with its error, so one bad file does not stop the others.
    pub fn read_objects(&self, user_pin: &[u8]) -> Result<SoftObjects> {
        let blob = self
            .user_pin_blob
            .as_deref()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| {
                Error::with(
                    CKR_USER_PIN_NOT_INITIALIZED,
                    "the SoftHSM token has no user PIN",
                )
            })?;
        let key = SoftTokenKey::unwrap(blob, user_pin)?;
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(|e| io_error(&self.dir, e))? {
            let name = entry.map_err(|e| io_error(&self.dir, e))?.file_name();
            let name = name.to_string_lossy().to_string();
            if name.ends_with(OBJECT_SUFFIX) && name != TOKEN_FILE {
                names.push(name);
            }
        }
        names.sort();
        let mut objects = Vec::new();
        let mut broken = Vec::new();
        for name in names {
            match read_object(&self.dir.join(&name), &key) {
                Ok(attributes) => objects.push(SoftObject {
                    file: name,
                    attributes,
                }),
                Err(e) => broken.push((name, e)),
            }
        }
        Ok(SoftObjects {
            readable: objects,
            unreadable: broken,
        })
    }
}

fn read_object(path: &Path, key: &SoftTokenKey) -> Result<SoftAttributes> {
    let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| io_error(path, e))?);
    let mut attributes = file::parse(&bytes)?;
    // SoftHSM encrypts every non-empty byte string of an object whose CKA_PRIVATE is true.
    if matches!(attributes.get(&CKA_PRIVATE), Some(SoftValue::Bool(true))) {
        for value in attributes.values_mut() {
            if let SoftValue::Bytes(sealed) = value {
                let plain = key.decrypt(sealed)?;
                *sealed = plain.to_vec();
            }
        }
    }
    Ok(attributes)
}
