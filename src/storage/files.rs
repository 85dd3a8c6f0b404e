//! File-system hygiene of a token directory: everything ferrohsm creates is owner-only
//! (files 0600, directories 0700, set explicitly so the umask does not matter), a token
//! directory that others could write to is refused, and token files are never symlinks.
//! SQLite creates a database's `-wal` and `-shm` files with the database file's mode, so
//! creating the database file 0600 covers them.

use crate::error::{Error, Result};
use cryptoki_sys::*;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

const FILE_MODE: u32 = 0o600;
const DIR_MODE: u32 = 0o700;

fn io_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::with(CKR_DEVICE_ERROR, format!("{what} {}: {e}", path.display()))
}

/// Creates `path` (which must not exist: CKR_ARGUMENTS_BAD if it does) as an empty file,
/// mode 0600 whatever the umask, never through a symlink.
pub fn create_private_file(path: &Path) -> Result<()> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                Error::with(CKR_ARGUMENTS_BAD, format!("{} exists", path.display()))
            }
            _ => io_error("cannot create", path, e),
        })?;
    file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))
        .map_err(|e| io_error("cannot set the mode of", path, e))
}

/// A token file, or its `-wal` / `-shm` companion, that is a symlink is refused: whoever
/// placed it could point ferrohsm's writes at another file.
pub fn refuse_symlinks(db: &Path) -> Result<()> {
    let name = db.as_os_str();
    for suffix in ["", "-wal", "-shm"] {
        let mut candidate = name.to_os_string();
        candidate.push(suffix);
        let candidate = Path::new(&candidate);
        if let Ok(meta) = std::fs::symlink_metadata(candidate) {
            if meta.file_type().is_symlink() {
                return Err(Error::with(
                    CKR_TOKEN_NOT_RECOGNIZED,
                    format!(
                        "token file {} is a symbolic link; ferrohsm does not follow it (move the real file into the token directory)",
                        candidate.display()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The token directory: created (with any missing parents) mode 0700 on first use; an
/// existing one must be a real directory owned by this user and not writable by group or
/// others, else CKR_GENERAL_ERROR with how to fix it.
pub fn prepare_token_dir(dir: &Path) -> Result<()> {
    let missing: Vec<&Path> = dir.ancestors().take_while(|p| !p.exists()).collect();
    for path in missing.iter().rev() {
        match std::fs::DirBuilder::new().mode(DIR_MODE).create(path) {
            Ok(()) => std::fs::set_permissions(path, std::fs::Permissions::from_mode(DIR_MODE))
                .map_err(|e| io_error("cannot set the mode of", path, e))?,
            // Another process made it meanwhile: checked below like any existing one.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_error("cannot create token directory", path, e)),
        }
    }
    check_token_dir(dir)
}

fn check_token_dir(dir: &Path) -> Result<()> {
    let refuse = |why: String| {
        Err(Error::with(
            CKR_GENERAL_ERROR,
            format!("token directory {}: {why}", dir.display()),
        ))
    };
    // A symlinked directory is its owner's choice: its target is what is checked.
    let meta =
        std::fs::metadata(dir).map_err(|e| io_error("cannot read token directory", dir, e))?;
    check_dir_meta(dir, &meta, refuse)
}

fn check_dir_meta(
    dir: &Path,
    meta: &std::fs::Metadata,
    refuse: impl Fn(String) -> Result<()>,
) -> Result<()> {
    if !meta.is_dir() {
        return refuse("not a directory".into());
    }
    let me = crate::ffi::process::effective_uid();
    if meta.uid() != me {
        return refuse(format!(
            "owned by uid {}, not by this user (uid {me}); run `chown {me} {}` or set token_dir to a directory of your own",
            meta.uid(),
            dir.display()
        ));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o022 != 0 {
        return refuse(format!(
            "writable by group or others (mode {mode:03o}); run `chmod go-w {}` (ferrohsm creates it 0700)",
            dir.display()
        ));
    }
    Ok(())
}
