//! The user PIN of the key commands: `--pin` (visible to other users of the machine: for
//! tests), `--pin-file`, `FERROHSM_PIN`, else prompted without echo on a terminal, else one
//! line of standard input. Kept in zeroizing memory; the environment copy is wiped.

use cryptoki_sys::*;
use ferrohsm::error::{Error, Result};
use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::path::Path;
use zeroize::{Zeroize, Zeroizing};

pub type Pin = Zeroizing<Vec<u8>>;

pub fn user_pin(flag: Option<String>, file: Option<&Path>) -> Result<Pin> {
    if let Some(pin) = flag {
        return Ok(Zeroizing::new(pin.into_bytes()));
    }
    if let Some(file) = file {
        let mut bytes = Zeroizing::new(std::fs::read(file).map_err(|e| {
            Error::with(
                CKR_ARGUMENTS_BAD,
                format!("--pin-file {}: {e}", file.display()),
            )
        })?);
        while matches!(bytes.last(), Some(b'\n' | b'\r')) {
            bytes.pop();
        }
        return Ok(bytes);
    }
    if let Some(pin) = ferrohsm::ffi::process::take_env_secret("FERROHSM_PIN") {
        return Ok(pin);
    }
    if std::io::stdin().is_terminal() {
        let pin = rpassword::prompt_password("User PIN: ")
            .map_err(|e| Error::with(CKR_FUNCTION_FAILED, format!("reading the PIN: {e}")))?;
        return Ok(Zeroizing::new(pin.into_bytes()));
    }
    // Read unbuffered: the stdin buffer would keep a copy of the PIN.
    let mut input = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .map_err(|e| Error::with(CKR_FUNCTION_FAILED, format!("stdin: {e}")))?;
    pin_line(&mut input).ok_or_else(|| {
        Error::with(
            CKR_ARGUMENTS_BAD,
            "no user PIN: give --pin-file, set FERROHSM_PIN, or type it on a terminal",
        )
    })
}

/// One line of `input`, read a byte at a time into zeroizing memory; None at the end of the
/// input or for an empty line. A `\r` before the `\n` is dropped.
pub fn pin_line(input: &mut impl std::io::Read) -> Option<Pin> {
    let mut line = Zeroizing::new(Vec::new());
    let mut byte = [0u8; 1];
    while let Ok(1) = input.read(&mut byte) {
        if byte[0] == b'\n' {
            break;
        }
        ferrohsm::mechanism::secret::append_wiped(&mut line, &byte);
    }
    byte.zeroize();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    (!line.is_empty()).then_some(line)
}
