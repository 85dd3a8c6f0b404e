//! ferrohsm-util: the admin CLI. Works on the token store named by `FERROHSM_CONF` (or the
//! default), in-process through the same code the PKCS#11 module runs. Its subcommands are
//! its own; softhsm2-util's command line (`--init-token`, `--import`, ...) is `softhsm`'s.

mod keys;
mod pin;
mod progress;
mod rotate;
mod softhsm;

use clap::{Parser, Subcommand};
use cryptoki_sys::*;
use ferrohsm::api;
use ferrohsm::object::Attributes;
use ferrohsm::state;
use std::os::fd::AsFd;
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
    #[command(flatten)]
    Key(keys::KeyCommand),
    /// Show the token's audit log of key management; --verify checks its hash chain
    /// (exit status 1 naming the first broken entry).
    Audit {
        /// The token's label.
        #[arg(long)]
        token: String,
        #[arg(long)]
        verify: bool,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Replace the token key by a new one (both PINs needed), so that no old PIN opens the
    /// keys stored from now on.
    ///
    /// C_SetPIN re-wraps the same token key under the new PIN: an old copy of the store
    /// and the PIN it had then still open every private key, also the ones made later.
    /// This makes a new random token key, re-seals every private secret under it, re-tags
    /// every object and re-wraps both PIN records (same PINs), in one transaction. Logins
    /// on the token end, in every process (they log in again with the same PINs). The
    /// PINs come from --so-pin/--pin, --so-pin-file/--pin-file, FERROHSM_SO_PIN/FERROHSM_PIN,
    /// a prompt on a terminal, or standard input (the SO PIN's line first).
    RotateTokenKey(rotate::RotateArgs),
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
    /// Copy every token of one store into another: a token directory or a PostgreSQL
    /// database, either way.
    ///
    /// FROM and TO are a token directory or a postgresql:// URL (its schema: --from-schema,
    /// --to-schema, default ferrohsm). Tokens are copied as stored (sealed secrets, PINs
    /// and their retry counters, audit log), each from one consistent snapshot while
    /// applications go on using it, with their slot ids; the destination gets each token
    /// whole or not at all. A token whose serial or slot id the destination already has is
    /// left out (listed). Exit status: 0 all copied, 3 some left out, 1 error.
    CopyStore {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        from_schema: Option<String>,
        #[arg(long)]
        to_schema: Option<String>,
    },
    /// Copy the keys, certificates and data objects of a SoftHSMv2 token into a ferrohsm
    /// token.
    ///
    /// FROM is SoftHSM's token directory (`directories.tokendir` of softhsm2.conf) or one
    /// token's folder in it; SoftHSM's files are only read, never written or locked, so
    /// stop processes that change that token first. The ferrohsm token (--token) must be
    /// initialised with a user PIN. PINs are never arguments: FERROHSM_SOFTHSM_PIN is the
    /// SoftHSM user PIN and FERROHSM_PIN the ferrohsm user PIN (default: the same); without
    /// FERROHSM_SOFTHSM_PIN, standard input gives them one per line. Each object goes
    /// through the same checks as C_CreateObject; objects already on the token are not
    /// copied again, so the command can be re-run. Exit status: 0 all copied or present,
    /// 3 some objects skipped (listed with the reason), 1 nothing done (error).
    MigrateSofthsm {
        /// SoftHSM's tokendir, or one token's folder in it.
        #[arg(long)]
        from: PathBuf,
        /// The SoftHSM token's label, when FROM holds several.
        #[arg(long)]
        softhsm_token: Option<String>,
        /// The ferrohsm token's label.
        #[arg(long)]
        token: String,
        /// Report what would be copied; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Exit status when a migration copied what it could but skipped some objects.
const EXIT_PARTIAL: u8 = 3;

/// How a command that ran without error ended.
enum Done {
    Complete,
    Partial,
}

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if softhsm::wanted(&args) {
        return softhsm::main(args);
    }
    let cli = Cli::parse_from(args);
    if let Command::CopyStore {
        from,
        to,
        from_schema,
        to_schema,
    } = &cli.command
    {
        return exit_code(copy_store(from, from_schema, to, to_schema));
    }
    let result = state::initialize().and_then(|()| {
        let lib = state::library()?;
        let r = match cli.command {
            Command::Slots => slots(&lib).map(|()| Done::Complete),
            Command::RotateTokenKey(args) => rotate::run(&lib, args).map(|()| Done::Complete),
            Command::Key(command) => keys::run(&lib, command).map(|()| Done::Complete),
            Command::Audit {
                token,
                verify,
                json,
            } => audit(&lib, &token, verify, json).map(|()| Done::Complete),
            Command::Pubkey { token, label, id } => {
                pubkey(&lib, &token, label, id).map(|()| Done::Complete)
            }
            Command::Backup { token, out } => backup(&lib, &token, &out).map(|()| Done::Complete),
            Command::Restore { input, force } => {
                restore(&lib, &input, force).map(|()| Done::Complete)
            }
            Command::MigrateSofthsm {
                from,
                softhsm_token,
                token,
                dry_run,
            } => migrate_softhsm(&lib, &from, softhsm_token.as_deref(), &token, dry_run),
            Command::CopyStore { .. } => unreachable!("run without the library"),
        };
        let _ = state::finalize();
        r
    });
    exit_code(result)
}

fn exit_code(result: ferrohsm::error::Result<Done>) -> ExitCode {
    match result {
        Ok(Done::Complete) => ExitCode::SUCCESS,
        Ok(Done::Partial) => ExitCode::from(EXIT_PARTIAL),
        Err(e) => {
            eprintln!("ferrohsm-util: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A token directory, or a PostgreSQL URL with its schema.
fn store_arg(
    arg: &str,
    schema: &Option<String>,
) -> ferrohsm::error::Result<Box<dyn ferrohsm::storage::location::TokenLocation>> {
    use ferrohsm::config::store;
    let is_url = arg.starts_with("postgresql://") || arg.starts_with("postgres://");
    let config = store::parse(is_url.then(|| arg.to_string()), schema.clone(), None)
        .map_err(|what| ferrohsm::error::Error::with(cryptoki_sys::CKR_ARGUMENTS_BAD, what))?;
    ferrohsm::storage::open_store(&config, std::path::Path::new(arg))
}

fn copy_store(
    from: &str,
    from_schema: &Option<String>,
    to: &str,
    to_schema: &Option<String>,
) -> ferrohsm::error::Result<Done> {
    let source = store_arg(from, from_schema)?;
    let destination = store_arg(to, to_schema)?;
    let report = ferrohsm::storage::copy::copy_store(source.as_ref(), destination.as_ref())?;
    let mut done = Done::Complete;
    for token in &report {
        match &token.skipped {
            None => println!(
                "copied token \"{}\" serial {} (slot {}, {} objects)",
                token.label, token.serial, token.slot, token.objects
            ),
            Some(why) => {
                done = Done::Partial;
                println!(
                    "left out token \"{}\" serial {} (slot {}): {why}",
                    token.label, token.serial, token.slot
                );
            }
        }
    }
    println!(
        "{} of {} tokens copied from {} to {}",
        report.iter().filter(|t| t.skipped.is_none()).count(),
        report.len(),
        source.describe(),
        destination.describe()
    );
    Ok(done)
}

fn slots(lib: &state::Library) -> ferrohsm::error::Result<()> {
    let kind = match lib.config.store {
        ferrohsm::config::StoreConfig::Directory => "token directory",
        ferrohsm::config::StoreConfig::Postgres(_) => "token store",
    };
    println!("{kind}: {}", lib.slots.location());
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

fn audit(
    lib: &state::Library,
    token: &str,
    verify: bool,
    json: bool,
) -> ferrohsm::error::Result<()> {
    let slot = find_token(lib, token)?;
    let token = lib.slots.token(slot)?.ok_or_else(|| {
        ferrohsm::error::Error::with(CKR_TOKEN_NOT_PRESENT, format!("slot {slot} has no token"))
    })?;
    let rows = token.audit_log()?;
    if verify {
        ferrohsm::audit::verify(&rows).map_err(|(seq, why)| {
            ferrohsm::error::Error::with(
                CKR_DEVICE_ERROR,
                format!("audit log broken at entry {seq}: {why}"),
            )
        })?;
        let head = rows
            .last()
            .map(|r| hex::encode(&r.chain))
            .unwrap_or_default();
        let count = ferrohsm::audit::entries(&rows)?.len();
        println!(
            "audit log intact: {count} entries in {} rows, last chain value {head}",
            rows.len()
        );
        return Ok(());
    }
    for (seq, e) in ferrohsm::audit::entries(&rows)? {
        if json {
            println!("{}", e.to_json());
        } else {
            let or_dash = |s: &str| {
                if s.is_empty() {
                    "-".to_string()
                } else {
                    s.to_string()
                }
            };
            println!(
                "{seq:>6} {} pid {:<7} {:<5} {:<18} key {:<32} {:<24} {}",
                e.time,
                e.pid,
                e.user,
                e.event,
                or_dash(&e.key_id),
                or_dash(&e.mechanism),
                e.result
            );
        }
    }
    Ok(())
}

fn backup(lib: &state::Library, token: &str, out: &std::path::Path) -> ferrohsm::error::Result<()> {
    let slot = find_token(lib, token)?;
    let token = lib.slots.token(slot)?.ok_or_else(|| {
        ferrohsm::error::Error::with(CKR_TOKEN_NOT_PRESENT, format!("slot {slot} has no token"))
    })?;
    // Written owner-only (sealed secrets and wrapped token keys, like the token directory).
    token.backup_to(out)?;
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
        lib.slots.location()
    );
    Ok(())
}

/// The SoftHSM and ferrohsm user PINs: from FERROHSM_SOFTHSM_PIN / FERROHSM_PIN, else one
/// per line on standard input; the ferrohsm PIN defaults to the SoftHSM one.
use pin::Pin;

fn migration_pins() -> ferrohsm::error::Result<(Pin, Pin)> {
    // Taken out of the environment and wiped there: no copy is left behind.
    let from_env = ferrohsm::ffi::process::take_env_secret;
    let (softhsm, ferro) = match from_env("FERROHSM_SOFTHSM_PIN") {
        Some(pin) => (pin, from_env("FERROHSM_PIN")),
        None => {
            // Read unbuffered: the stdin buffer would keep a copy of each PIN.
            let mut input = std::io::stdin()
                .as_fd()
                .try_clone_to_owned()
                .map(std::fs::File::from)
                .map_err(|e| {
                    ferrohsm::error::Error::with(CKR_FUNCTION_FAILED, format!("stdin: {e}"))
                })?;
            let mut next = || pin::pin_line(&mut input);
            let softhsm = next().ok_or_else(|| {
                ferrohsm::error::Error::with(
                    CKR_ARGUMENTS_BAD,
                    "no SoftHSM PIN: set FERROHSM_SOFTHSM_PIN or give it on standard input",
                )
            })?;
            (softhsm, next())
        }
    };
    let ferro = ferro.unwrap_or_else(|| softhsm.clone());
    Ok((softhsm, ferro))
}

fn migrate_softhsm(
    lib: &state::Library,
    from: &std::path::Path,
    softhsm_token: Option<&str>,
    token: &str,
    dry_run: bool,
) -> ferrohsm::error::Result<Done> {
    use ferrohsm::migrate::softhsm::{self, Outcome, SoftToken};
    let source = SoftToken::find(from, softhsm_token)?;
    let slot = find_token(lib, token)?;
    let (softhsm_pin, pin) = migration_pins()?;
    println!(
        "{} SoftHSM token \"{}\" serial {} ({}) into ferrohsm token \"{token}\" (slot {slot})",
        if dry_run {
            "dry run: would migrate"
        } else {
            "migrating"
        },
        source.label,
        source.serial,
        source.dir.display()
    );
    let bar = progress::bar(0, "migrating");
    let report = softhsm::migrate(
        lib,
        slot,
        &pin,
        &source,
        &softhsm_pin,
        dry_run,
        &mut |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
    );
    bar.finish_and_clear();
    let report = report?;
    for e in &report.entries {
        let outcome = match &e.outcome {
            Outcome::Copied => "copied".to_string(),
            Outcome::WouldCopy => "would copy".to_string(),
            Outcome::AlreadyPresent => "already present".to_string(),
            Outcome::Skipped(why) => format!("SKIPPED: {why}"),
        };
        println!(
            "  {:<18} label {:?} id {:<6} {} [{}]",
            e.kind,
            e.label,
            if e.id_hex.is_empty() { "-" } else { &e.id_hex },
            outcome,
            e.file
        );
        for (ty, why) in &e.dropped {
            println!("      attribute 0x{ty:x} not copied: {why}");
        }
    }
    let skipped = report.count(|o| matches!(o, Outcome::Skipped(_)));
    println!(
        "{} copied, {} already present, {} skipped{}; SoftHSM's files were only read",
        report.count(|o| matches!(o, Outcome::Copied | Outcome::WouldCopy)),
        report.count(|o| *o == Outcome::AlreadyPresent),
        skipped,
        if dry_run {
            " (dry run: nothing written)"
        } else {
            ""
        }
    );
    Ok(if skipped == 0 {
        Done::Complete
    } else {
        Done::Partial
    })
}
