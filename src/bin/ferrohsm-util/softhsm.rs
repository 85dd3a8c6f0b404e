//! softhsm2-util's command line, for scripts written for SoftHSMv2: `--init-token`,
//! `--show-slots`, `--import`, `--delete-token` with its options, the lines it prints (the
//! ones scripts parse, such as "The token has been initialized and is reassigned to slot
//! N") and its exit codes (0 done, 1 anything else). Taken when the first argument is one
//! of these actions, or when the binary is called `softhsm2-util` (a symlink).

use crate::pin::{self, Pin};
use clap::{ArgGroup, Parser, ValueEnum};
use cryptoki_sys::*;
use ferrohsm::api;
use ferrohsm::config::MAX_PIN_LEN;
use ferrohsm::error::Error;
use ferrohsm::kms::{ImportKind, KmsSession};
use ferrohsm::state::Library;
use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use zeroize::Zeroizing;

/// The actions that select this command line as the first argument.
const ACTIONS: &[&str] = &["--init-token", "--show-slots", "--import", "--delete-token"];

/// True when `args` (the whole command line) is softhsm2-util's.
pub fn wanted(args: &[OsString]) -> bool {
    let called_so = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .is_some_and(|n| n == "softhsm2-util");
    let first = args.get(1).and_then(|a| a.to_str()).unwrap_or("");
    called_so || ACTIONS.contains(&first)
}

#[derive(Clone, Copy, ValueEnum)]
enum ImportType {
    Keypair,
    Cert,
    Aes,
}

#[derive(Parser)]
#[command(
    name = "softhsm2-util",
    about = "Support tool for PKCS#11 (softhsm2-util's command line, on ferrohsm's token store)",
    disable_version_flag = true,
    group(ArgGroup::new("action").required(true)
        .args(["init_token", "show_slots", "import", "delete_token", "version"]))
)]
struct Args {
    /// Initialize the token at a given slot (with --slot, --token, --serial or --free,
    /// --label, --so-pin and --pin). Any content in the token is erased.
    #[arg(long)]
    init_token: bool,
    /// Display all the available slots.
    #[arg(long)]
    show_slots: bool,
    /// Import a key pair (PKCS#8, PEM or DER), an AES key (--aes) or a certificate
    /// (--import-type cert) from the given path (with --slot, --token or --serial, --label,
    /// --id, --no-public-key and --pin).
    #[arg(long, value_name = "PATH")]
    import: Option<PathBuf>,
    /// Delete the token (with --token or --serial). Any content in the token is erased.
    #[arg(long)]
    delete_token: bool,
    /// Show version info.
    #[arg(short = 'v', long)]
    version: bool,
    /// The slot where the token is located.
    #[arg(long, value_name = "NUMBER")]
    slot: Option<CK_SLOT_ID>,
    /// Use the first free/uninitialized token.
    #[arg(long)]
    free: bool,
    /// Use the token with a matching token label.
    #[arg(long, value_name = "LABEL")]
    token: Option<String>,
    /// Use the token with a matching serial number.
    #[arg(long, value_name = "NUMBER")]
    serial: Option<String>,
    /// The label of the object or the token.
    #[arg(long, value_name = "TEXT")]
    label: Option<String>,
    /// The PIN for the Security Officer (SO); prompted for when absent.
    #[arg(long, value_name = "PIN")]
    so_pin: Option<String>,
    /// The PIN for the normal user; prompted for when absent.
    #[arg(long, value_name = "PIN")]
    pin: Option<String>,
    /// The ID of the object, in hexadecimal.
    #[arg(long, value_name = "HEX")]
    id: Option<String>,
    /// Do not import the public key.
    #[arg(long)]
    no_public_key: bool,
    /// Import even when another object has the same ID.
    #[arg(long)]
    force: bool,
    /// Import the file as it is as an AES key (--import-type aes).
    #[arg(long)]
    aes: bool,
    /// What the file of --import holds (default keypair).
    #[arg(long, value_enum)]
    import_type: Option<ImportType>,
    /// The PIN of an encrypted PKCS#8 file (not supported: decrypt it first).
    #[arg(long, value_name = "PIN")]
    file_pin: Option<String>,
    /// Another PKCS#11 library: only ferrohsm's own is administered here.
    #[arg(long, value_name = "PATH")]
    module: Option<PathBuf>,
}

/// A failure as softhsm2-util reports it: one line on stderr, exit status 1.
struct Failed(String);

impl From<Error> for Failed {
    fn from(e: Error) -> Self {
        Failed(format!("ERROR: {e}"))
    }
}

fn failed<T>(line: &str) -> std::result::Result<T, Failed> {
    Err(Failed(format!("ERROR: {line}")))
}

type Outcome = std::result::Result<(), Failed>;

pub fn main(args: Vec<OsString>) -> ExitCode {
    let args = match Args::try_parse_from(args) {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            // Help is a success; every other parse error is softhsm2-util's status 1.
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp => ExitCode::SUCCESS,
                _ => ExitCode::FAILURE,
            };
        }
    };
    if args.version {
        println!("{}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let outcome = ferrohsm::state::initialize()
        .map_err(Failed::from)
        .and_then(|()| {
            let lib = ferrohsm::state::library()?;
            let r = run(&lib, args);
            let _ = ferrohsm::state::finalize();
            r
        });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failed(line)) => {
            eprintln!("{line}");
            ExitCode::FAILURE
        }
    }
}

fn run(lib: &Library, args: Args) -> Outcome {
    if let Some(module) = &args.module {
        let ours = module
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.contains("ferrohsm"));
        if !ours {
            return failed(&format!(
                "--module {}: ferrohsm-util administers ferrohsm's own token store (FERROHSM_CONF); \
                 use softhsm2-util itself for other modules",
                module.display()
            ));
        }
    }
    if args.show_slots {
        return show_slots(lib);
    }
    if args.init_token {
        return init_token(lib, &args);
    }
    if args.delete_token {
        return delete_token(lib, &args);
    }
    match &args.import {
        Some(path) => import(lib, &args, path),
        None => Ok(()),
    }
}

fn text(field: &[u8]) -> String {
    String::from_utf8_lossy(field).into_owned()
}

fn yes(flag: bool) -> &'static str {
    if flag {
        "yes"
    } else {
        "no"
    }
}

fn version(v: CK_VERSION) -> String {
    format!("{}.{}", v.major, v.minor)
}

fn show_slots(lib: &Library) -> Outcome {
    println!("Available slots:");
    for slot in api::general::slot_list(lib)? {
        let s = api::general::slot_info(lib, slot)?;
        let t = api::general::token_info(lib, slot)?;
        println!("Slot {slot}");
        println!("    Slot info:");
        println!("        Description:      {}", text(&s.slotDescription));
        println!("        Manufacturer ID:  {}", text(&s.manufacturerID));
        println!("        Hardware version: {}", version(s.hardwareVersion));
        println!("        Firmware version: {}", version(s.firmwareVersion));
        println!(
            "        Token present:    {}",
            yes(s.flags & CKF_TOKEN_PRESENT != 0)
        );
        println!("    Token info:");
        println!("        Manufacturer ID:  {}", text(&t.manufacturerID));
        println!("        Model:            {}", text(&t.model));
        println!("        Hardware version: {}", version(t.hardwareVersion));
        println!("        Firmware version: {}", version(t.firmwareVersion));
        println!("        Serial number:    {}", text(&t.serialNumber));
        println!(
            "        Initialized:      {}",
            yes(t.flags & CKF_TOKEN_INITIALIZED != 0)
        );
        println!(
            "        User PIN init.:   {}",
            yes(t.flags & CKF_USER_PIN_INITIALIZED != 0)
        );
        println!("        Label:            {}", text(&t.label));
    }
    Ok(())
}

/// softhsm2-util's messages when the options name no slot, and name one that is not there.
struct SlotMessages {
    missing: &'static str,
    not_found: &'static str,
}

/// The slot the options name, saying how it was found as softhsm2-util does. `free` allows
/// --free (the spare slot).
fn select_slot(
    lib: &Library,
    args: &Args,
    free: bool,
    says: SlotMessages,
) -> std::result::Result<CK_SLOT_ID, Failed> {
    let slots = api::general::slot_list(lib)?;
    if let Some(serial) = &args.serial {
        for &slot in &slots {
            if &lib.slots.token_info(slot)?.serial == serial {
                println!("Found slot {slot} with matching serial.");
                return Ok(slot);
            }
        }
        return failed(says.not_found);
    }
    if let Some(label) = &args.token {
        for &slot in &slots {
            let info = lib.slots.token_info(slot)?;
            if info.flags & CKF_TOKEN_INITIALIZED != 0 && &info.label == label {
                println!("Found slot {slot} with matching token label.");
                return Ok(slot);
            }
        }
        return failed(says.not_found);
    }
    if let Some(slot) = args.slot {
        if !slots.contains(&slot) {
            return Err(Failed(format!(
                "CKR_SLOT_ID_INVALID: Slot {slot} does not exist."
            )));
        }
        return Ok(slot);
    }
    if free && args.free {
        // The spare slot is always listed last.
        let spare = *slots.last().expect("the spare slot is always listed");
        println!("Slot {spare} has a free/uninitialized token.");
        return Ok(spare);
    }
    failed(says.missing)
}

/// A PIN from its option, else asked for: twice on a terminal (softhsm2-util's prompts),
/// else one line of standard input.
fn ask_pin(
    given: Option<&str>,
    who: &str,
    confirm: bool,
    min_len: usize,
) -> std::result::Result<Pin, Failed> {
    if let Some(pin) = given {
        return Ok(Zeroizing::new(pin.as_bytes().to_vec()));
    }
    if std::io::stdin().is_terminal() {
        println!("=== {who} PIN ({min_len}-{MAX_PIN_LEN} characters) ===");
        let read = |prompt: &str| {
            rpassword::prompt_password(prompt)
                .map(|p| Zeroizing::new(p.into_bytes()))
                .map_err(|_| Failed(format!("ERROR: Could not get {who} PIN")))
        };
        let pin = read(&format!("Please enter {who} PIN: "))?;
        if confirm && read(&format!("Please reenter {who} PIN: "))? != pin {
            return failed("The entered PINs are not equal.");
        }
        return Ok(pin);
    }
    let mut stdin = std::io::stdin();
    pin::pin_line(&mut stdin).ok_or_else(|| Failed(format!("ERROR: Could not get {who} PIN")))
}

fn init_token(lib: &Library, args: &Args) -> Outcome {
    let slot = select_slot(
        lib,
        args,
        true,
        SlotMessages {
            missing: "A slot/token must be supplied. Use --slot <number>, --serial <serial>, \
                      --token <label>, or --free",
            not_found: "Could not find a slot/token using --serial, --token, or --free.",
        },
    )?;
    let Some(label) = &args.label else {
        return failed("A label for the token must be supplied. Use --label <text>");
    };
    if label.len() > 32 {
        return failed("The token label must not have a length greater than 32 chars.");
    }
    let min_len = lib.config.pin.min_len;
    let so_pin = ask_pin(args.so_pin.as_deref(), "SO", true, min_len)?;
    let user_pin = ask_pin(args.pin.as_deref(), "user", true, min_len)?;
    // Both checked before the token is touched: a bad user PIN must not leave a new token
    // without one.
    for (who, pin) in [("SO", &so_pin), ("user", &user_pin)] {
        if lib.config.pin.check_len(pin).is_err() {
            return Err(Failed(format!(
                "ERROR: The {who} PIN must have a length between {min_len} and {MAX_PIN_LEN} \
                 characters (pin_min_len in ferrohsm.conf sets the lower bound)."
            )));
        }
    }
    let was_spare = lib.slots.token(slot)?.is_none();
    api::general::init_token(lib, slot, &so_pin, label.as_bytes()).map_err(|e| match e.rv {
        CKR_PIN_INCORRECT => Failed(
            "CKR_PIN_INCORRECT: The given SO PIN does not match the one in the token. Needed \
             when reinitializing the token."
                .to_string(),
        ),
        _ => Failed::from(e),
    })?;
    let session = api::session::open(lib, slot, CKF_SERIAL_SESSION | CKF_RW_SESSION)?;
    let user_set = api::session::login(lib, session, CKU_SO, &so_pin)
        .and_then(|()| api::session::init_pin(lib, session, &user_pin));
    let _ = api::session::logout(lib, session);
    let _ = api::session::close(lib, session);
    user_set.map_err(|e| Failed(format!("ERROR: Could not initialize the user PIN: {e}")))?;
    if was_spare {
        println!("The token has been initialized and is reassigned to slot {slot}");
    } else {
        println!("The token has been initialized on slot {slot}");
    }
    Ok(())
}

fn delete_token(lib: &Library, args: &Args) -> Outcome {
    if args.serial.is_none() && args.token.is_none() {
        return failed("A token must be supplied. Use --serial <serial> or --token <label>");
    }
    let mut found = None;
    for slot in api::general::slot_list(lib)? {
        let info = lib.slots.token_info(slot)?;
        if info.flags & CKF_TOKEN_INITIALIZED == 0 {
            continue;
        }
        if args.serial.as_ref() == Some(&info.serial) {
            found = Some((slot, info.serial, "serial"));
        } else if args.serial.is_none() && args.token.as_ref() == Some(&info.label) {
            found = Some((slot, info.serial, "token label"));
        }
        if found.is_some() {
            break;
        }
    }
    let Some((slot, serial, by)) = found else {
        return failed("Could not find a token using --serial or --token.");
    };
    println!("Found token ({serial}) with matching {by}.");
    let path = lib.slots.delete_token(slot)?;
    println!("The token ({path}) has been deleted.");
    Ok(())
}

fn import(lib: &Library, args: &Args, path: &std::path::Path) -> Outcome {
    let slot = select_slot(
        lib,
        args,
        false,
        SlotMessages {
            missing: "A slot/token must be supplied. Use --slot <number>, --serial <serial>, \
                      or --token <label>",
            not_found: "Could not find a slot/token using --serial, or --token",
        },
    )?;
    let Some(label) = &args.label else {
        return failed("A label for the object must be supplied. Use --label <text>");
    };
    let Some(id) = &args.id else {
        return failed("An ID for the object must be supplied. Use --id <hex>");
    };
    let Ok(id) = hex::decode(id) else {
        return failed("Please edit --id <hex> to correct error.");
    };
    if args.file_pin.is_some() {
        return failed(
            "encrypted PKCS#8 files are not supported: decrypt it first \
             (openssl pkcs8 -in FILE -out PLAIN)",
        );
    }
    let kind = match (args.aes, args.import_type) {
        (true, _) | (_, Some(ImportType::Aes)) => ImportKind::Aes,
        (_, Some(ImportType::Cert)) => ImportKind::Certificate,
        _ => ImportKind::KeyPair {
            with_public: !args.no_public_key,
        },
    };
    let file = Zeroizing::new(std::fs::read(path).map_err(|e| {
        Failed(format!(
            "ERROR: Could not open the file {}: {e}",
            path.display()
        ))
    })?);
    // Checked before the PIN is asked for: a file that cannot be imported costs no login.
    ferrohsm::kms::import_templates(kind, &file)?;
    let pin = ask_pin(args.pin.as_deref(), "user", false, lib.config.pin.min_len)?;
    let session = KmsSession::open_slot(lib, slot, &pin).map_err(|e| match e.rv {
        CKR_PIN_INCORRECT => Failed(format!(
            "ERROR: The given user PIN does not match the one in the token. {}.",
            e.context.trim_start_matches("wrong user PIN: ")
        )),
        _ => Failed::from(e),
    })?;
    session
        .import(kind, &file, label, &id, args.force)
        .map_err(|e| match e.rv {
            CKR_ARGUMENTS_BAD if e.context.starts_with("the ID is already") => Failed(
                "ERROR: The ID is already assigned to another object. Use --force to override \
                 this message."
                    .to_string(),
            ),
            _ => Failed::from(e),
        })?;
    println!(
        "{}",
        match kind {
            ImportKind::KeyPair { .. } => "The key pair has been imported.",
            ImportKind::Aes => "The key has been imported.",
            ImportKind::Certificate => "The certificate has been imported.",
        }
    );
    Ok(())
}
