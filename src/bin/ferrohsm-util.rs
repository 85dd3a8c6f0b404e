//! ferrohsm-util: the admin CLI. Works on the token store named by `FERROHSM_CONF` (or the
//! default), in-process through the same code the PKCS#11 module runs.

use clap::{Parser, Subcommand};
use cryptoki_sys::*;
use ferrohsm::api;
use ferrohsm::object::Attributes;
use ferrohsm::state;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "ferrohsm-util",
    version,
    about = "ferrohsm token administration"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the slots and their tokens.
    Slots,
    /// Print a public key as PEM SubjectPublicKeyInfo (RSA, or SM2 as id-ecPublicKey + SM2 OID).
    Pubkey {
        /// The token's label.
        #[arg(long)]
        token: String,
        /// The key's CKA_LABEL.
        #[arg(long, conflicts_with = "id")]
        label: Option<String>,
        /// The key's CKA_ID, in hex.
        #[arg(long)]
        id: Option<String>,
    },
    /// Copy a token's store to FILE while other processes go on using it.
    ///
    /// The copy is one consistent snapshot taken with SQLite's online backup API: every
    /// object committed before the snapshot is in it, none half-written. It holds the same
    /// sealed secrets and PIN records as the token (the PINs at backup time open it), so
    /// keep it as safe as the token directory; FILE is created readable by its owner only
    /// and must not exist yet.
    Backup {
        /// The token's label.
        #[arg(long)]
        token: String,
        /// Where to write the backup (a new file).
        #[arg(long)]
        out: PathBuf,
    },
    /// Put a backup back into the token directory as the token it was.
    ///
    /// The restored token keeps the backup's serial number, label, PINs (as they were at
    /// backup time) and objects, so its keys decrypt what they encrypted before. It gets
    /// the slot id it had when no token file in the directory uses that id, else the
    /// spare slot's id. When a token with the same serial number is present, restore
    /// refuses unless --force is given; --force then overwrites that token's store in place
    /// (it keeps that token's slot id; one transaction: processes using it see either the old or the restored token, and
    /// objects made after the backup are gone). The backup file is only read.
    Restore {
        /// The backup file made by `ferrohsm-util backup`.
        #[arg(long = "in")]
        input: PathBuf,
        /// Overwrite a present token with the same serial number.
        #[arg(long)]
        force: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = state::initialize().and_then(|()| {
        let lib = state::library()?;
        let r = match cli.command {
            Command::Slots => slots(&lib),
            Command::Pubkey { token, label, id } => pubkey(&lib, &token, label, id),
            Command::Backup { token, out } => backup(&lib, &token, &out),
            Command::Restore { input, force } => restore(&lib, &input, force),
        };
        let _ = state::finalize();
        r
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferrohsm-util: {e}");
            ExitCode::FAILURE
        }
    }
}

fn slots(lib: &state::Library) -> ferrohsm::error::Result<()> {
    println!("token directory: {}", lib.config.token_dir.display());
    for slot in api::general::slot_list(lib)? {
        let info = lib.slots.token_info(slot)?;
        if info.flags & CKF_TOKEN_INITIALIZED != 0 {
            println!(
                "slot {slot}: token \"{}\" serial {}",
                info.label, info.serial
            );
        } else {
            println!("slot {slot}: (spare, no token yet)");
        }
    }
    Ok(())
}

fn find_token(lib: &state::Library, label: &str) -> ferrohsm::error::Result<CK_SLOT_ID> {
    for slot in api::general::slot_list(lib)? {
        if lib.slots.token_info(slot)?.label == label {
            return Ok(slot);
        }
    }
    Err(ferrohsm::error::Error::with(
        CKR_TOKEN_NOT_PRESENT,
        format!("no token labelled {label:?}"),
    ))
}

fn pubkey(
    lib: &state::Library,
    token: &str,
    label: Option<String>,
    id: Option<String>,
) -> ferrohsm::error::Result<()> {
    let slot = find_token(lib, token)?;
    let session = api::session::open(lib, slot, CKF_SERIAL_SESSION)?;
    let mut template = Attributes::new();
    template.set_ulong(CKA_CLASS, CKO_PUBLIC_KEY);
    if let Some(l) = label {
        template.set(CKA_LABEL, l.into_bytes());
    }
    if let Some(i) = id {
        let bytes = hex::decode(i)
            .map_err(|e| ferrohsm::error::Error::with(CKR_ARGUMENTS_BAD, format!("--id: {e}")))?;
        template.set(CKA_ID, bytes);
    }
    api::object::find_init(lib, session, template)?;
    let found = api::object::find(lib, session, 2)?;
    api::object::find_final(lib, session)?;
    let handle = match found.as_slice() {
        [h] => *h,
        [] => {
            return Err(ferrohsm::error::Error::with(
                CKR_OBJECT_HANDLE_INVALID,
                "no such public key",
            ))
        }
        _ => {
            return Err(ferrohsm::error::Error::with(
                CKR_ARGUMENTS_BAD,
                "several public keys match; give --id",
            ))
        }
    };
    let attrs = lib
        .session(session)?
        .lock()
        .token
        .object(handle)?
        .attrs
        .clone();
    print!("{}", ferrohsm::object::spki::public_key_pem(&attrs)?);
    api::session::close(lib, session)
}

fn backup(lib: &state::Library, token: &str, out: &std::path::Path) -> ferrohsm::error::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let slot = find_token(lib, token)?;
    let token = lib.slots.token(slot)?.ok_or_else(|| {
        ferrohsm::error::Error::with(CKR_TOKEN_NOT_PRESENT, format!("slot {slot} has no token"))
    })?;
    token.backup_to(out)?;
    // Sealed secrets and wrapped token keys: owner only, like the token directory.
    std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
        ferrohsm::error::Error::with(CKR_DEVICE_ERROR, format!("{}: {e}", out.display()))
    })?;
    let info = token.info();
    println!(
        "backed up token \"{}\" serial {} (slot {slot}) to {}",
        info.label,
        info.serial,
        out.display()
    );
    Ok(())
}

fn restore(
    lib: &state::Library,
    input: &std::path::Path,
    force: bool,
) -> ferrohsm::error::Result<()> {
    let slot = lib.slots.restore(input, force)?;
    let info = lib.slots.token_info(slot)?;
    println!(
        "restored token \"{}\" serial {} into slot {slot} of {}",
        info.label,
        info.serial,
        lib.config.token_dir.display()
    );
    Ok(())
}
