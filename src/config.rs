//! Configuration: `FERROHSM_CONF` names a TOML file; without it an embedded default.

use crate::error::{Error, Result};
use cryptoki_sys::*;
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Clone, Debug)]
pub struct Config {
    /// The token store's directory.
    pub token_dir: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    token_dir: Option<PathBuf>,
}

impl Config {
    /// Reads `FERROHSM_CONF` if set, else the default. A bad file is CKR_FUNCTION_FAILED
    /// with a one-line reason naming the file, the line and what is wrong.
    pub fn load() -> Result<Config> {
        match std::env::var_os("FERROHSM_CONF") {
            Some(path) if !path.is_empty() => Self::from_file(PathBuf::from(path)),
            _ => Ok(Config {
                token_dir: default_token_dir(),
            }),
        }
    }

    pub fn from_file(path: PathBuf) -> Result<Config> {
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::with(
                CKR_FUNCTION_FAILED,
                format!("cannot read config file {}: {e}", path.display()),
            )
        })?;
        let file: ConfigFile = toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
                .unwrap_or(0);
            // One line on stderr: toml's messages may span several.
            let what = e.message().trim().replace('\n', "; ");
            Error::with(
                CKR_FUNCTION_FAILED,
                format!("config file {} line {line}: {what}", path.display()),
            )
        })?;
        let token_dir = match file.token_dir {
            // A relative token_dir is relative to the config file, not to the caller's cwd.
            Some(dir) if dir.is_relative() => path.parent().map(|p| p.join(&dir)).unwrap_or(dir),
            Some(dir) => dir,
            None => default_token_dir(),
        };
        Ok(Config { token_dir })
    }
}

/// `$XDG_DATA_HOME/ferrohsm`, else `~/.local/share/ferrohsm`.
pub fn default_token_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("ferrohsm");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/share/ferrohsm")
}
