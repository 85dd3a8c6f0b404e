//! Reads SoftHSMv2's `softhsm2.conf` format (`key = value` lines, `#` comments) for the keys
//! that mean something to ferrohsm. SoftHSM's own token files are never read or written:
//! ferrohsm keeps its store in a `ferrohsm` subfolder of `directories.tokendir`.

use super::{Config, MechanismFilter};
use crate::error::{Error, Result};
use crate::log::Level;
use cryptoki_sys::*;
use std::path::Path;

/// True when `text` looks like softhsm2.conf rather than TOML: its first setting is a bare
/// `section.key = value` whose value is not a TOML literal.
pub fn looks_like_softhsm(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .and_then(|l| l.split_once('='))
        .is_some_and(|(key, value)| {
            let value = value.trim();
            key.trim().contains('.')
                && !(value.starts_with('"') || value.starts_with('\'') || value.starts_with('['))
        })
}

pub fn parse(path: &Path, text: &str) -> Result<Config> {
    let bad = |line: usize, what: String| {
        Error::with(
            CKR_FUNCTION_FAILED,
            format!("config file {} line {line}: {what}", path.display()),
        )
    };
    let mut config = Config::default();
    let mut unknown = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(bad(index + 1, "expected `key = value`".into()));
        };
        let (key, value) = (key.trim(), value.trim());
        match key {
            "directories.tokendir" => {
                let dir = Path::new(value);
                let dir = if dir.is_relative() {
                    path.parent()
                        .map(|p| p.join(dir))
                        .unwrap_or(dir.to_path_buf())
                } else {
                    dir.to_path_buf()
                };
                config.token_dir = dir.join("ferrohsm");
            }
            "log.level" => {
                config.log_level = Some(match value.to_ascii_uppercase().as_str() {
                    "ERROR" => Level::Error,
                    "WARNING" => Level::Warn,
                    "INFO" => Level::Info,
                    "DEBUG" => Level::Debug,
                    _ => return Err(bad(index + 1, format!("unknown log.level {value:?}"))),
                })
            }
            "slots.removable" => {
                config.removable = match value {
                    "true" => true,
                    "false" => false,
                    _ => return Err(bad(index + 1, "slots.removable is true or false".into())),
                }
            }
            "slots.mechanisms" => {
                config.mechanisms = MechanismFilter::parse(value)
                    .map_err(|name| bad(index + 1, format!("unknown mechanism {name:?}")))?
            }
            _ => unknown.push(key.to_string()),
        }
    }
    if !unknown.is_empty() {
        crate::log::warn(&format!(
            "config file {}: ignoring keys ferrohsm does not use: {}",
            path.display(),
            unknown.join(", ")
        ));
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softhsm_format_is_detected_and_read() {
        let text = "# SoftHSM v2 configuration file\n\
                    directories.tokendir = /var/lib/softhsm/tokens/\n\
                    objectstore.backend = file\n\
                    log.level = INFO\n\
                    slots.removable = true\n\
                    slots.mechanisms = -CKM_RSA_X_509,-CKM_SHA_1\n";
        assert!(looks_like_softhsm(text));
        assert!(!looks_like_softhsm("token_dir = \"/x\"\n"));
        let c = parse(Path::new("/etc/softhsm2.conf"), text).unwrap();
        assert_eq!(c.token_dir, Path::new("/var/lib/softhsm/tokens/ferrohsm"));
        assert!(c.log_level == Some(Level::Info));
        assert!(c.removable);
        assert!(!c.mechanisms.allows(CKM_RSA_X_509));
        assert!(!c.mechanisms.allows(CKM_SHA_1));
        assert!(c.mechanisms.allows(CKM_RSA_PKCS));
    }

    #[test]
    fn allow_lists_and_errors() {
        let c = parse(
            Path::new("a.conf"),
            "slots.mechanisms = CKM_RSA_PKCS,CKM_SHA256\n",
        )
        .unwrap();
        assert!(c.mechanisms.allows(CKM_RSA_PKCS));
        assert!(!c.mechanisms.allows(CKM_RSA_PKCS_OAEP));
        let all = parse(Path::new("a.conf"), "slots.mechanisms = ALL\n").unwrap();
        assert!(all.mechanisms.allows(CKM_RSA_PKCS_OAEP));
        for bad in [
            "slots.mechanisms = CKM_NOPE\n",
            "log.level = LOUD\n",
            "slots.removable = yes\n",
            "garbage\n",
        ] {
            let e = parse(Path::new("a.conf"), bad).expect_err(bad);
            assert_eq!(e.rv, CKR_FUNCTION_FAILED);
            assert!(e.context.contains("line 1"), "{}", e.context);
        }
    }
}
