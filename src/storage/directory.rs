//! The default token location: a directory with one SQLite store per token,
//! `token-<slot id>.db` (the slot id is also stored inside it at init).
//!
//! Token creation runs under an exclusive lock on `token_dir/.init.lock`, so two processes
//! never make the same slot; a new token is written under a temporary name and renamed
//! into place, so no process ever opens a half-made one.

use super::location::{InitLock, StoreOpener, TokenLocation};
use super::sqlite::SqliteStore;
use super::{StoreImage, TokenStore};
use crate::error::{Error, Result};
use cryptoki_sys::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const FILE_PREFIX: &str = "token-";
const FILE_SUFFIX: &str = ".db";
const INIT_LOCK: &str = ".init.lock";

pub struct TokenDirectory {
    dir: PathBuf,
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::with(CKR_DEVICE_ERROR, format!("{what} {}: {e}", path.display()))
}

fn slot_from_file_name(name: &str) -> Option<CK_SLOT_ID> {
    name.strip_prefix(FILE_PREFIX)?
        .strip_suffix(FILE_SUFFIX)?
        .parse()
        .ok()
}

impl TokenDirectory {
    /// The directory `dir`, created on first use (owner-only; one others can write to is
    /// refused, see `files::prepare_token_dir`).
    pub fn open(dir: &Path) -> Result<TokenDirectory> {
        super::files::prepare_token_dir(dir)?;
        Ok(TokenDirectory {
            dir: dir.to_path_buf(),
        })
    }

    fn token_path(&self, slot: CK_SLOT_ID) -> PathBuf {
        self.dir.join(format!("{FILE_PREFIX}{slot}{FILE_SUFFIX}"))
    }

    /// A rename or unlink is durable only once the directory is synced.
    fn sync_dir(&self) {
        if let Ok(dir) = std::fs::File::open(&self.dir) {
            let _ = dir.sync_all();
        }
    }

    /// Makes the store of `slot` with `make` under a temporary name and renames it into
    /// place, so other processes never see a half-made token file.
    fn install_file(
        &self,
        slot: CK_SLOT_ID,
        what: &str,
        make: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<()> {
        let final_path = self.token_path(slot);
        let temp_path = self.dir.join(format!(
            ".{FILE_PREFIX}{slot}{FILE_SUFFIX}.{}.{what}.tmp",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&temp_path);
        let made = make(&temp_path).and_then(|()| {
            std::fs::rename(&temp_path, &final_path)
                .map_err(|e| io_error(&format!("cannot {what} token store"), &final_path, e))
        });
        if let Err(e) = made {
            let _ = std::fs::remove_file(&temp_path);
            return Err(e);
        }
        self.sync_dir();
        Ok(())
    }
}

impl TokenLocation for TokenDirectory {
    fn names(&self) -> Result<BTreeSet<String>> {
        let entries = std::fs::read_dir(&self.dir)
            .map_err(|e| io_error("cannot list token directory", &self.dir, e))?;
        let mut names = BTreeSet::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_error("cannot list token directory", &self.dir, e))?;
            if let Some(name) = entry.file_name().to_str() {
                if name.starts_with(FILE_PREFIX) && name.ends_with(FILE_SUFFIX) {
                    names.insert(name.to_string());
                }
            }
        }
        Ok(names)
    }

    fn reserved_slot(&self, name: &str) -> Option<CK_SLOT_ID> {
        slot_from_file_name(name)
    }

    fn open(&self, name: &str) -> Result<Box<dyn TokenStore>> {
        Ok(Box::new(SqliteStore::open(&self.dir.join(name))?))
    }

    fn checker_opener(&self, name: &str) -> Option<StoreOpener> {
        let file = self.dir.join(name);
        Some(Box::new(move || {
            SqliteStore::open(&file).map(|store| Box::new(store) as Box<dyn TokenStore>)
        }))
    }

    /// An advisory `flock` on `.init.lock`, released on drop and when the process dies.
    #[allow(clippy::incompatible_msrv)]
    fn lock_init(&self) -> Result<InitLock> {
        let path = self.dir.join(INIT_LOCK);
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| io_error("cannot open lock file", &path, e))?;
        file.lock().map_err(|e| io_error("cannot lock", &path, e))?;
        Ok(Box::new(file))
    }

    fn install(&self, image: &StoreImage) -> Result<()> {
        self.install_file(image.record.slot_id, "create", |temp| {
            SqliteStore::create_from_image(temp, image)
        })
    }

    fn image(&self, name: &str) -> Result<StoreImage> {
        SqliteStore::open(&self.dir.join(name))?.image()
    }

    /// The store file and SQLite's `-wal`/`-shm` files.
    fn delete(&self, slot: CK_SLOT_ID) -> Result<String> {
        let path = self.token_path(slot);
        std::fs::remove_file(&path).map_err(|e| io_error("cannot delete", &path, e))?;
        for side in ["-wal", "-shm"] {
            let mut name = path.clone().into_os_string();
            name.push(side);
            let _ = std::fs::remove_file(name);
        }
        self.sync_dir();
        Ok(path.display().to_string())
    }

    fn slot_in_use(&self, slot: CK_SLOT_ID) -> bool {
        self.token_path(slot).exists()
    }

    fn restore(&self, backup: &Path, slot: CK_SLOT_ID, live: bool) -> Result<()> {
        if live {
            return SqliteStore::restore_into(backup, &self.token_path(slot), slot);
        }
        self.install_file(slot, "restore", |temp| {
            SqliteStore::restore_into(backup, temp, slot)
        })
    }

    fn describe(&self) -> String {
        self.dir.display().to_string()
    }
}
