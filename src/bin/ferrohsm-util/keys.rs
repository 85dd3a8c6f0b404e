//! The KMS-style key commands: thin wrappers over `ferrohsm::kms`.

use crate::pin;
use base64::Engine;
use clap::{Args, Subcommand};
use cryptoki_sys::*;
use ferrohsm::error::{Error, Result};
use ferrohsm::kms::{KeyInfo, KmsSession, Usage};
use ferrohsm::state::Library;
use ferrohsm::vendor::{KEY_STATE_DISABLED, KEY_STATE_ENABLED};
use std::io::{Read, Write};
use std::path::PathBuf;

/// The token and how its user PIN is given.
#[derive(Args)]
pub struct TokenArgs {
    /// The token's label.
    #[arg(long)]
    token: String,
    /// The user PIN (visible to other users of this machine: prefer --pin-file, FERROHSM_PIN or the prompt).
    #[arg(long)]
    pin: Option<String>,
    /// A file holding the user PIN.
    #[arg(long)]
    pin_file: Option<PathBuf>,
}

/// Input and output of data commands.
#[derive(Args)]
pub struct DataArgs {
    /// Read the data from FILE (default: standard input).
    #[arg(long = "in")]
    input: Option<PathBuf>,
    /// Write the result to FILE (default: standard output).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Data and results are base64 text (what KMS APIs exchange).
    #[arg(long)]
    base64: bool,
}

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Make a key for one usage; prints its key id.
    CreateKey {
        #[command(flatten)]
        token: TokenArgs,
        /// The key's alias (CKA_LABEL), unique on the token.
        #[arg(long)]
        alias: String,
        #[arg(long, default_value = "")]
        description: String,
        /// ASYMMETRIC_DECRYPT_RSA_2048, ASYMMETRIC_DECRYPT_SM2, ASYMMETRIC_SIGN_VERIFY_RSA_2048,
        /// ASYMMETRIC_SIGN_VERIFY_SM2, ASYMMETRIC_SIGN_VERIFY_ECC or ENCRYPT_DECRYPT.
        #[arg(long)]
        usage: String,
        /// Print the key as one JSON object.
        #[arg(long)]
        json: bool,
        /// Make N keys, aliased A-1 to A-N (a progress bar on a terminal); one line each.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        count: u64,
    },
    /// List the keys made for a usage.
    ListKeys {
        #[command(flatten)]
        token: TokenArgs,
        #[arg(long)]
        json: bool,
    },
    /// Show one key (KEY: its alias or key id).
    DescribeKey {
        #[command(flatten)]
        token: TokenArgs,
        key: String,
        #[arg(long)]
        json: bool,
    },
    /// Print a key pair's public key as PEM SubjectPublicKeyInfo (--der: DER bytes).
    GetPublicKey {
        #[command(flatten)]
        token: TokenArgs,
        key: String,
        #[arg(long)]
        der: bool,
    },
    /// Let the key be used again.
    EnableKey {
        #[command(flatten)]
        token: TokenArgs,
        key: String,
    },
    /// Refuse every use of the key's private or secret half until it is enabled again.
    DisableKey {
        #[command(flatten)]
        token: TokenArgs,
        key: String,
    },
    /// Destroy the key after a waiting period (7 to 30 days; the key is unusable meanwhile).
    ScheduleKeyDeletion {
        #[command(flatten)]
        token: TokenArgs,
        key: String,
        #[arg(long, default_value_t = 30)]
        pending_days: u64,
    },
    /// Keep a key scheduled for deletion; it stays disabled.
    CancelKeyDeletion {
        #[command(flatten)]
        token: TokenArgs,
        key: String,
    },
    /// Encrypt with a key pair's public key (RSAES_PKCS1_V1_5, RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, SM2).
    Encrypt {
        #[command(flatten)]
        token: TokenArgs,
        key: String,
        #[arg(long)]
        algorithm: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Decrypt with a key's private half (the algorithms of encrypt).
    Decrypt {
        #[command(flatten)]
        token: TokenArgs,
        key: String,
        #[arg(long)]
        algorithm: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Sign a message (RSASSA_PKCS1_V1_5_SHA_256, RSASSA_PSS_SHA_256, SM2DSA, ECDSA_SHA_256).
    Sign {
        #[command(flatten)]
        token: TokenArgs,
        key: String,
        #[arg(long)]
        algorithm: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Check a signature of a message: exit status 0 when it verifies, 1 otherwise.
    Verify {
        #[command(flatten)]
        token: TokenArgs,
        key: String,
        #[arg(long)]
        algorithm: String,
        /// The signature (base64 text with --base64).
        #[arg(long)]
        signature: PathBuf,
        #[command(flatten)]
        data: DataArgs,
    },
}

fn open<'a>(lib: &'a Library, t: TokenArgs) -> Result<KmsSession<'a>> {
    let pin = pin::user_pin(t.pin, t.pin_file.as_deref())?;
    KmsSession::open(lib, &t.token, &pin)
}

fn io_error(what: &str, e: std::io::Error) -> Error {
    Error::with(CKR_FUNCTION_FAILED, format!("{what}: {e}"))
}

fn read_data(d: &DataArgs, path: Option<&PathBuf>) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    match path.or(d.input.as_ref()) {
        Some(p) => bytes = std::fs::read(p).map_err(|e| io_error(&p.display().to_string(), e))?,
        None => {
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|e| io_error("stdin", e))?;
        }
    }
    if !d.base64 {
        return Ok(bytes);
    }
    let text: String = String::from_utf8_lossy(&bytes).split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| Error::with(CKR_ARGUMENTS_BAD, format!("not base64: {e}")))
}

fn write_data(d: &DataArgs, bytes: &[u8]) -> Result<()> {
    let out = if d.base64 {
        let mut t = base64::engine::general_purpose::STANDARD
            .encode(bytes)
            .into_bytes();
        t.push(b'\n');
        t
    } else {
        bytes.to_vec()
    };
    match &d.out {
        Some(p) => std::fs::write(p, out).map_err(|e| io_error(&p.display().to_string(), e)),
        None => std::io::stdout()
            .write_all(&out)
            .map_err(|e| io_error("stdout", e)),
    }
}

/// RFC 3339 UTC time of Unix seconds; "-" for 0 (not set).
fn date(secs: u64) -> String {
    if secs == 0 {
        return "-".into();
    }
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    humantime::format_rfc3339_seconds(when).to_string()
}

fn print_key(k: &KeyInfo, json: bool) {
    if json {
        println!("{}", serde_json::to_string(k).expect("a key serializes"));
        return;
    }
    println!("alias:       {}", k.alias);
    println!("key id:      {}", k.key_id);
    println!("usage:       {}", k.usage);
    println!("state:       {}", k.state);
    println!("created:     {}", date(k.created));
    println!("deletion:    {}", date(k.deletion_time));
    println!("description: {}", k.description);
}

/// Reads the data, runs `f` on it with the key, writes the result.
fn transform(
    lib: &Library,
    token: TokenArgs,
    key: &str,
    data: &DataArgs,
    f: impl FnOnce(&KmsSession<'_>, &KeyInfo, &[u8]) -> Result<Vec<u8>>,
) -> Result<()> {
    let input = read_data(data, None)?;
    let kms = open(lib, token)?;
    let output = zeroize::Zeroizing::new(f(&kms, &kms.key(key)?, &input)?);
    write_data(data, &output)
}

pub fn run(lib: &Library, command: KeyCommand) -> Result<()> {
    match command {
        KeyCommand::CreateKey {
            token,
            alias,
            description,
            usage,
            json,
            count,
        } => {
            let usage = Usage::by_name(&usage)?;
            let kms = open(lib, token)?;
            let bar = crate::progress::bar(count, "creating keys");
            for n in 1..=count {
                let alias = if count == 1 {
                    alias.clone()
                } else {
                    format!("{alias}-{n}")
                };
                let key = kms.create_key(&alias, &description, usage)?;
                bar.suspend(|| match json {
                    true => print_key(&key, true),
                    false => println!("{}", key.key_id),
                });
                bar.inc(1);
            }
            bar.finish_and_clear();
        }
        KeyCommand::ListKeys { token, json } => {
            let keys = open(lib, token)?.keys()?;
            if json {
                println!("{}", serde_json::to_string(&keys).expect("keys serialize"));
            } else {
                println!(
                    "{:<20} {:<36} {:<31} {:<15} {:<20} deletion",
                    "alias", "key id", "usage", "state", "created"
                );
                for k in keys {
                    println!(
                        "{:<20} {:<36} {:<31} {:<15} {:<20} {}",
                        k.alias,
                        k.key_id,
                        k.usage,
                        k.state,
                        date(k.created),
                        date(k.deletion_time)
                    );
                }
            }
        }
        KeyCommand::DescribeKey { token, key, json } => {
            let kms = open(lib, token)?;
            print_key(&kms.key(&key)?, json);
        }
        KeyCommand::GetPublicKey { token, key, der } => {
            let kms = open(lib, token)?;
            let spki = kms.public_key_der(&kms.key(&key)?)?;
            if der {
                std::io::stdout()
                    .write_all(&spki)
                    .map_err(|e| io_error("stdout", e))?;
            } else {
                print!("{}", ferrohsm::object::spki::pem_of_der(&spki)?);
            }
        }
        KeyCommand::EnableKey { token, key } => {
            let kms = open(lib, token)?;
            kms.set_state(&kms.key(&key)?, KEY_STATE_ENABLED, 0)?;
        }
        KeyCommand::DisableKey { token, key } | KeyCommand::CancelKeyDeletion { token, key } => {
            let kms = open(lib, token)?;
            kms.set_state(&kms.key(&key)?, KEY_STATE_DISABLED, 0)?;
        }
        KeyCommand::ScheduleKeyDeletion {
            token,
            key,
            pending_days,
        } => {
            let kms = open(lib, token)?;
            let when = kms.schedule_deletion(&kms.key(&key)?, pending_days)?;
            println!("deletion scheduled for {}", date(when));
        }
        KeyCommand::Encrypt {
            token,
            key,
            algorithm,
            data,
        } => transform(lib, token, &key, &data, |kms, k, input| {
            kms.encrypt(k, &algorithm, input)
        })?,
        KeyCommand::Decrypt {
            token,
            key,
            algorithm,
            data,
        } => transform(lib, token, &key, &data, |kms, k, input| {
            Ok(kms.decrypt(k, &algorithm, input)?.to_vec())
        })?,
        KeyCommand::Sign {
            token,
            key,
            algorithm,
            data,
        } => transform(lib, token, &key, &data, |kms, k, input| {
            kms.sign(k, &algorithm, input)
        })?,
        KeyCommand::Verify {
            token,
            key,
            algorithm,
            signature,
            data,
        } => {
            let input = read_data(&data, None)?;
            let signature = read_data(&data, Some(&signature))?;
            let kms = open(lib, token)?;
            kms.verify(&kms.key(&key)?, &algorithm, &input, &signature)?;
            println!("signature verified");
        }
    }
    Ok(())
}
