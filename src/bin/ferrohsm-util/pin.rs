//! The PINs of the commands: the user PIN from `--pin` (visible to other users of the
//! machine: for tests), `--pin-file`, `FERROHSM_PIN`, else prompted without echo on a
//! terminal, else one line of standard input; the SO PIN (`rotate-token-key`) the same way
//! from `--so-pin`, `--so-pin-file`, `FERROHSM_SO_PIN`. Kept in zeroizing memory; the
//! environment copy is wiped.

use cryptoki_sys::*;
use ferrohsm::error::{Error, Result};
use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::path::Path;
use zeroize::{Zeroize, Zeroizing};

pub type Pin = Zeroizing<Vec<u8>>;

/// Where one kind of PIN comes from when its flag is not given.
pub struct PinSource {
    /// "user", "SO": in prompts and errors.
    pub who: &'static str,
    /// The option naming a file with the PIN, for errors.
    pub file_option: &'static str,
    /// The environment variable holding the PIN.
    pub env: &'static str,
}

pub const USER: PinSource = PinSource {
    who: "user",
    file_option: "--pin-file",
    env: "FERROHSM_PIN",
};

pub const SO: PinSource = PinSource {
    who: "SO",
    file_option: "--so-pin-file",
    env: "FERROHSM_SO_PIN",
};

pub fn user_pin(flag: Option<String>, file: Option<&Path>) -> Result<Pin> {
    pin(&USER, flag, file)
}

/// The PIN `source` describes: its flag, its file, its environment variable, a prompt on a
/// terminal, else one line of standard input.
pub fn pin(source: &PinSource, flag: Option<String>, file: Option<&Path>) -> Result<Pin> {
    if let Some(pin) = flag {
        return Ok(Zeroizing::new(pin.into_bytes()));
    }
    if let Some(file) = file {
        let mut bytes = Zeroizing::new(std::fs::read(file).map_err(|e| {
            Error::with(
                CKR_ARGUMENTS_BAD,
                format!("{} {}: {e}", source.file_option, file.display()),
            )
        })?);
        while matches!(bytes.last(), Some(b'\n' | b'\r')) {
            bytes.pop();
        }
        return Ok(bytes);
    }
    if let Some(pin) = ferrohsm::ffi::process::take_env_secret(source.env) {
        return Ok(pin);
    }
    if std::io::stdin().is_terminal() {
        let prompt = match source.who {
            "user" => "User PIN: ".to_string(),
            who => format!("{who} PIN: "),
        };
        let pin = rpassword::prompt_password(prompt)
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
            format!(
                "no {} PIN: give {}, set {}, or type it on a terminal",
                source.who, source.file_option, source.env
            ),
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
