//! `rotate-token-key`: a thin command over `Token::rotate_token_key`.

use crate::pin;
use clap::Args;
use cryptoki_sys::*;
use ferrohsm::api;
use ferrohsm::error::{Error, Result};
use ferrohsm::state::Library;
use std::path::PathBuf;

/// The token (by slot, label or serial) and both of its PINs.
#[derive(Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["slot", "token", "serial"])))]
pub struct RotateArgs {
    /// The token's slot id.
    #[arg(long)]
    slot: Option<CK_SLOT_ID>,
    /// The token's label.
    #[arg(long)]
    token: Option<String>,
    /// The token's serial number.
    #[arg(long)]
    serial: Option<String>,
    /// The SO PIN (visible to other users of this machine: prefer --so-pin-file,
    /// FERROHSM_SO_PIN or the prompt).
    #[arg(long)]
    so_pin: Option<String>,
    /// A file holding the SO PIN.
    #[arg(long)]
    so_pin_file: Option<PathBuf>,
    /// The user PIN (visible to other users of this machine: prefer --pin-file,
    /// FERROHSM_PIN or the prompt).
    #[arg(long)]
    pin: Option<String>,
    /// A file holding the user PIN.
    #[arg(long)]
    pin_file: Option<PathBuf>,
}

pub fn run(lib: &Library, args: RotateArgs) -> Result<()> {
    let slot = select(lib, &args)?;
    let token = lib
        .slots
        .token(slot)?
        .ok_or_else(|| Error::with(CKR_TOKEN_NOT_PRESENT, format!("slot {slot} has no token")))?;
    // Read in this order on standard input: the SO PIN's line first.
    let so_pin = pin::pin(&pin::SO, args.so_pin, args.so_pin_file.as_deref())?;
    let user_pin = pin::pin(&pin::USER, args.pin, args.pin_file.as_deref())?;
    token
        .rotate_token_key(&so_pin, &user_pin)
        .map_err(not_rotated)?;
    let info = token.info();
    println!(
        "rotated the token key of token \"{}\" serial {} (slot {slot}): every private secret \
         is re-sealed under a new key; logins on the token have ended",
        info.label, info.serial
    );
    Ok(())
}

/// The slot of the token `args` names.
fn select(lib: &Library, args: &RotateArgs) -> Result<CK_SLOT_ID> {
    for slot in api::general::slot_list(lib)? {
        let info = lib.slots.token_info(slot)?;
        if info.flags & CKF_TOKEN_INITIALIZED == 0 {
            continue;
        }
        let matches = match (&args.slot, &args.token, &args.serial) {
            (Some(wanted), _, _) => *wanted == slot,
            (_, Some(label), _) => info.label == *label,
            (_, _, Some(serial)) => info.serial == *serial,
            _ => false,
        };
        if matches {
            return Ok(slot);
        }
    }
    Err(Error::with(
        CKR_TOKEN_NOT_PRESENT,
        "no such initialised token (ferrohsm-util slots lists them)",
    ))
}

/// The library's message (which PIN, its tries left: `Token::explain_pin_error`), and that
/// nothing was changed.
fn not_rotated(e: Error) -> Error {
    Error::with(
        e.rv,
        format!("{}; the token key was not rotated", e.context),
    )
}
