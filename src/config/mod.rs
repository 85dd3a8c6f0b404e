//! Configuration: `FERROHSM_CONF` names a TOML file (or a SoftHSMv2 `softhsm2.conf`, read
//! for the keys that apply); without it an embedded default.

mod softhsm;
pub mod store;

use crate::error::{Error, Result};
use crate::log::Level;
use crate::storage::seal::{HostSecret, KdfParams};
use cryptoki_sys::*;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::ops::RangeInclusive;
use std::path::PathBuf;
pub use store::{PgStoreConfig, StoreConfig};

/// `rsa_min_bits` when the file does not set it.
pub const DEFAULT_RSA_MIN_BITS: usize = 2048;
/// The values `rsa_min_bits` may take: never below the smallest modulus any RSA operation
/// accepts (1024: smaller keys are broken, and the crypto backends refuse them), never
/// above the largest size key generation makes (a minimum above it would leave no size to
/// generate). Anything else fails C_Initialize rather than being clamped: a policy that
/// silently differs from what its file says is worse than a clear error.
pub const RSA_MIN_BITS_RANGE: RangeInclusive<usize> =
    crate::crypto::rsa::MIN_MODULUS_BITS..=crate::mechanism::rsa::MAX_GENERATED_BITS;

/// `pin_min_len` when the file does not set it.
pub const DEFAULT_PIN_MIN_LEN: usize = 6;
/// The longest PIN (ulMaxPinLen); also the top of `pin_min_len`'s range.
pub const MAX_PIN_LEN: usize = 255;
/// The values `pin_min_len` may take. Four is the floor (PKCS#11 tokens commonly accept
/// four-digit PINs, SoftHSMv2 among them); lower is refused, not clamped.
pub const PIN_MIN_LEN_RANGE: RangeInclusive<usize> = 4..=MAX_PIN_LEN;
/// `key_deletion_min_days` when the file does not set it: a KMS's usual shortest waiting
/// period before a scheduled deletion.
pub const DEFAULT_KEY_DELETION_MIN_DAYS: usize = 7;
/// The longest waiting period a deletion may be scheduled with, in days; also the top of
/// `key_deletion_min_days`' range (0 allows a deletion at once: for tests).
pub const KEY_DELETION_MAX_DAYS: usize = 30;
/// A host secret file must hold at least this many bytes (256 bits of key).
pub const HOST_SECRET_MIN_LEN: usize = 32;
/// And at most this many: it is a key, not a document.
pub const HOST_SECRET_MAX_LEN: usize = 4096;

/// How PINs are set and turned into keys.
#[derive(Clone, Debug)]
pub struct PinPolicy {
    /// `pin_kdf_memory_kib`, `pin_kdf_iterations`, `pin_kdf_parallelism`: the Argon2id
    /// cost of PINs set from now on (stored PIN records keep their own).
    pub kdf: KdfParams,
    /// `pin_min_len`: the shortest PIN C_InitToken, C_InitPIN and C_SetPIN accept
    /// (ulMinPinLen). Checking a PIN never looks at it: a PIN set under a lower minimum
    /// still logs in.
    pub min_len: usize,
    /// `host_secret_file`'s contents, mixed into PIN keys set from now on.
    pub host_secret: Option<HostSecret>,
    /// `pin_change_rotates_key`: whether C_SetPIN and C_InitPIN make a new token key (so an
    /// old copy of the store and the old PIN open nothing stored afterwards), which ends
    /// other processes' logins; `false` re-wraps the same key. Default true.
    pub change_rotates_key: bool,
}

impl PinPolicy {
    /// PIN lengths (ulMinPinLen, ulMaxPinLen of CK_TOKEN_INFO): a PIN being set (C_InitToken
    /// on a new token, C_InitPIN, C_SetPIN's new PIN) of another length is CKR_PIN_LEN_RANGE.
    /// A PIN being checked (C_Login, C_SetPIN's old PIN) of any length is judged like every
    /// other: a PIN set under a lower `pin_min_len` still opens.
    pub fn check_len(&self, pin: &[u8]) -> Result<()> {
        if (self.min_len..=MAX_PIN_LEN).contains(&pin.len()) {
            Ok(())
        } else {
            Err(Error::with(
                CKR_PIN_LEN_RANGE,
                format!(
                    "PIN length must be {}..={MAX_PIN_LEN} bytes (config pin_min_len)",
                    self.min_len
                ),
            ))
        }
    }

    /// Cheap Argon2 parameters for unit tests.
    #[cfg(test)]
    pub fn test() -> PinPolicy {
        PinPolicy {
            kdf: KdfParams::TEST,
            ..PinPolicy::default()
        }
    }
}

impl Default for PinPolicy {
    fn default() -> Self {
        PinPolicy {
            kdf: KdfParams::DEFAULT,
            min_len: DEFAULT_PIN_MIN_LEN,
            host_secret: None,
            change_rotates_key: true,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    /// The token store's directory.
    pub token_dir: PathBuf,
    /// `log.level` of a softhsm2.conf; `FERROHSM_LOG` still wins.
    pub log_level: Option<Level>,
    /// `slots.removable`: slots report CKF_REMOVABLE_DEVICE.
    pub removable: bool,
    /// `slots.mechanisms`: which mechanisms the slots offer.
    pub mechanisms: MechanismFilter,
    /// `rsa_min_bits`: the smallest RSA modulus, in bits, that is generated, imported or
    /// used (see `api::key_size`), within `RSA_MIN_BITS_RANGE`.
    pub rsa_min_bits: usize,
    /// `rsa_pkcs1v15_decrypt`: what C_Decrypt and C_UnwrapKey do with CKM_RSA_PKCS.
    pub rsa_pkcs1v15_decrypt: Pkcs1v15Decrypt,
    /// `disable_core_dumps`: no core dump of the process while keys are loaded.
    pub disable_core_dumps: bool,
    /// The PIN settings (`pin_*`, `host_secret_file`).
    pub pin: PinPolicy,
    /// `key_deletion_min_days`: the shortest waiting period, in days, a key's deletion may
    /// be scheduled with (`object::lifecycle`), 0..=KEY_DELETION_MAX_DAYS.
    pub key_deletion_min_days: usize,
    /// `audit`: what the audit log records (`crate::audit`).
    pub audit: AuditLevel,
    /// `store`, `store_schema`, `store_password_file`: `token_dir` or a PostgreSQL
    /// database.
    pub store: StoreConfig,
}

/// `audit`: key management only, or every private/secret-key operation as well.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditLevel {
    /// Key management: creation, import, state changes, destruction, PINs, failed logins.
    #[default]
    Keys,
    /// Also every operation with a private or secret key (key id, mechanism, result).
    Operations,
}

/// The policy for PKCS#1 v1.5 decryption (CKM_RSA_PKCS in C_Decrypt and C_UnwrapKey). It
/// answers a bad padding with CKR_ENCRYPTED_DATA_INVALID, as the spec demands: whoever can
/// submit ciphertexts learns which ones are well padded, the oracle of Bleichenbacher's
/// attack (and of its timing form, Marvin). OAEP has no such oracle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pkcs1v15Decrypt {
    /// As the spec says (the default: clients rely on it).
    #[default]
    Allow,
    /// CKM_RSA_PKCS decrypts and unwraps nothing: CKR_MECHANISM_INVALID, and the mechanism
    /// info lacks CKF_DECRYPT and CKF_UNWRAP. Encryption, wrapping and signing still work.
    Deny,
    /// A bad padding yields a message derived from the key and the ciphertext, not an error
    /// (draft-irtf-cfrg-rsa-guidance): there is no oracle left, and the caller must check
    /// what it got (a key that does not work, a MAC that does not verify).
    ImplicitRejection,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            token_dir: default_token_dir(),
            log_level: None,
            removable: false,
            mechanisms: MechanismFilter::All,
            rsa_min_bits: DEFAULT_RSA_MIN_BITS,
            rsa_pkcs1v15_decrypt: Pkcs1v15Decrypt::default(),
            disable_core_dumps: false,
            pin: PinPolicy::default(),
            key_deletion_min_days: DEFAULT_KEY_DELETION_MIN_DAYS,
            audit: AuditLevel::Keys,
            store: StoreConfig::Directory,
        }
    }
}

/// SoftHSMv2's `slots.mechanisms`: `ALL`, a comma list of `CKM_*` names, or a list of
/// `-CKM_*` names to leave out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MechanismFilter {
    All,
    Only(BTreeSet<CK_MECHANISM_TYPE>),
    AllExcept(BTreeSet<CK_MECHANISM_TYPE>),
}

impl MechanismFilter {
    /// Parses the value; an unknown name is returned as the error.
    pub fn parse(value: &str) -> std::result::Result<Self, String> {
        if value.trim().eq_ignore_ascii_case("ALL") {
            return Ok(MechanismFilter::All);
        }
        let (mut only, mut except) = (BTreeSet::new(), BTreeSet::new());
        for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let (set, name) = match name.strip_prefix('-') {
                Some(rest) => (&mut except, rest.trim()),
                None => (&mut only, name),
            };
            let ty = crate::mechanism::registry::mechanism_by_name(name)
                .ok_or_else(|| name.to_string())?;
            set.insert(ty);
        }
        Ok(if only.is_empty() {
            MechanismFilter::AllExcept(except)
        } else {
            only.retain(|m| !except.contains(m));
            MechanismFilter::Only(only)
        })
    }

    pub fn allows(&self, mechanism: CK_MECHANISM_TYPE) -> bool {
        match self {
            MechanismFilter::All => true,
            MechanismFilter::Only(set) => set.contains(&mechanism),
            MechanismFilter::AllExcept(set) => !set.contains(&mechanism),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    token_dir: Option<PathBuf>,
    rsa_min_bits: Option<toml::Spanned<i64>>,
    #[serde(default)]
    rsa_pkcs1v15_decrypt: Pkcs1v15Decrypt,
    #[serde(default)]
    disable_core_dumps: bool,
    pin_min_len: Option<toml::Spanned<i64>>,
    pin_kdf_memory_kib: Option<toml::Spanned<i64>>,
    pin_kdf_iterations: Option<toml::Spanned<i64>>,
    pin_kdf_parallelism: Option<toml::Spanned<i64>>,
    host_secret_file: Option<toml::Spanned<PathBuf>>,
    #[serde(default = "yes")]
    pin_change_rotates_key: bool,
    key_deletion_min_days: Option<toml::Spanned<i64>>,
    #[serde(default)]
    audit: AuditLevel,
    store: Option<toml::Spanned<String>>,
    store_schema: Option<String>,
    store_password_file: Option<PathBuf>,
}

fn yes() -> bool {
    true
}

impl Config {
    /// Reads `FERROHSM_CONF` if set, else the default. A bad file is CKR_FUNCTION_FAILED
    /// with a one-line reason naming the file, the line and what is wrong.
    pub fn load() -> Result<Config> {
        match std::env::var_os("FERROHSM_CONF") {
            Some(path) if !path.is_empty() => Self::from_file(PathBuf::from(path)),
            _ => Ok(Config::default()),
        }
    }

    pub fn from_file(path: PathBuf) -> Result<Config> {
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::with(
                CKR_FUNCTION_FAILED,
                format!("cannot read config file {}: {e}", path.display()),
            )
        })?;
        if softhsm::looks_like_softhsm(&text) {
            return softhsm::parse(&path, &text);
        }
        let bad = |span: Option<std::ops::Range<usize>>, what: String| {
            let line = span
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
                .unwrap_or(0);
            Error::with(
                CKR_FUNCTION_FAILED,
                format!("config file {} line {line}: {what}", path.display()),
            )
        };
        // One line on stderr: toml's messages may span several.
        let file: ConfigFile = toml::from_str(&text)
            .map_err(|e| bad(e.span(), e.message().trim().replace('\n', "; ")))?;
        // An integer key within `range`, else an error naming it, the range and `why`.
        let ranged = |value: Option<toml::Spanned<i64>>,
                      name: &str,
                      default: usize,
                      range: &RangeInclusive<usize>,
                      why: &str| match value {
            None => Ok(default),
            Some(value) => usize::try_from(*value.get_ref())
                .ok()
                .filter(|v| range.contains(v))
                .ok_or_else(|| {
                    bad(
                        Some(value.span()),
                        format!(
                            "{name} = {} is out of range: {}..={}{why}",
                            value.get_ref(),
                            range.start(),
                            range.end(),
                        ),
                    )
                }),
        };
        let rsa_min_bits = ranged(
            file.rsa_min_bits,
            "rsa_min_bits",
            DEFAULT_RSA_MIN_BITS,
            &RSA_MIN_BITS_RANGE,
            &format!(
                " (no RSA key below {} bits is ever accepted, none above {} generated)",
                RSA_MIN_BITS_RANGE.start(),
                RSA_MIN_BITS_RANGE.end(),
            ),
        )?;
        // A relative path is relative to the config file, not to the caller's cwd.
        let relative_to_file = |p: PathBuf| match path.parent() {
            Some(parent) if p.is_relative() => parent.join(p),
            _ => p,
        };
        let token_dir = file
            .token_dir
            .map(relative_to_file)
            .unwrap_or_else(default_token_dir);
        let pin_min_len = ranged(
            file.pin_min_len,
            "pin_min_len",
            DEFAULT_PIN_MIN_LEN,
            &PIN_MIN_LEN_RANGE,
            "",
        )?;
        let key_deletion_min_days = ranged(
            file.key_deletion_min_days,
            "key_deletion_min_days",
            DEFAULT_KEY_DELETION_MIN_DAYS,
            &(0..=KEY_DELETION_MAX_DAYS),
            " (days)",
        )?;
        let default = KdfParams::DEFAULT;
        let cost = |value: Option<toml::Spanned<i64>>, name: &str, default: u32| match value {
            None => Ok(default),
            Some(v) => u32::try_from(*v.get_ref()).map_err(|_| {
                bad(
                    Some(v.span()),
                    format!("{name} = {} is out of range", v.get_ref()),
                )
            }),
        };
        let kdf = KdfParams {
            memory_kib: cost(
                file.pin_kdf_memory_kib,
                "pin_kdf_memory_kib",
                default.memory_kib,
            )?,
            iterations: cost(
                file.pin_kdf_iterations,
                "pin_kdf_iterations",
                default.iterations,
            )?,
            parallelism: cost(
                file.pin_kdf_parallelism,
                "pin_kdf_parallelism",
                default.parallelism,
            )?,
        };
        kdf.argon2(CKR_FUNCTION_FAILED)
            .map_err(|e| bad(None, format!("pin_kdf_*: {}", e.context)))?;
        let host_secret = file
            .host_secret_file
            .map(|value| {
                let span = value.span();
                read_host_secret(&relative_to_file(value.into_inner()), &token_dir)
                    .map_err(|what| bad(Some(span), what))
            })
            .transpose()?;
        let store_span = file.store.as_ref().map(|s| s.span());
        let store = store::parse(
            file.store.map(toml::Spanned::into_inner),
            file.store_schema,
            file.store_password_file.map(relative_to_file),
        )
        .map_err(|what| bad(store_span, what))?;
        Ok(Config {
            store,
            token_dir,
            rsa_min_bits,
            rsa_pkcs1v15_decrypt: file.rsa_pkcs1v15_decrypt,
            disable_core_dumps: file.disable_core_dumps,
            pin: PinPolicy {
                kdf,
                min_len: pin_min_len,
                host_secret,
                change_rotates_key: file.pin_change_rotates_key,
            },
            key_deletion_min_days,
            audit: file.audit,
            ..Config::default()
        })
    }
}

/// The contents of `host_secret_file`: a regular file outside `token_dir` (a copy of the
/// token directory must not carry it along) holding HOST_SECRET_MIN_LEN..=MAX_LEN bytes.
fn read_host_secret(
    file: &std::path::Path,
    token_dir: &std::path::Path,
) -> std::result::Result<HostSecret, String> {
    let name = file.display();
    let real = std::fs::canonicalize(file).map_err(|e| format!("host_secret_file {name}: {e}"))?;
    let real_dir = std::fs::canonicalize(token_dir).unwrap_or_else(|_| token_dir.to_path_buf());
    if real.starts_with(&real_dir) {
        return Err(format!(
            "host_secret_file {name} is inside token_dir {}: keep it elsewhere, or a copy of \
             the token directory carries it along",
            token_dir.display()
        ));
    }
    // Read into a buffer that never grows (a reallocation would leave a copy behind),
    // at most one byte more than allowed.
    let mut bytes = zeroize::Zeroizing::new(Vec::with_capacity(HOST_SECRET_MAX_LEN + 1));
    std::fs::File::open(&real)
        .and_then(|file| {
            use std::io::Read;
            file.take(HOST_SECRET_MAX_LEN as u64 + 1)
                .read_to_end(&mut bytes)
        })
        .map_err(|e| format!("host_secret_file {name}: {e}"))?;
    if !(HOST_SECRET_MIN_LEN..=HOST_SECRET_MAX_LEN).contains(&bytes.len()) {
        return Err(format!(
            "host_secret_file {name} holds {} bytes, not {HOST_SECRET_MIN_LEN}..={HOST_SECRET_MAX_LEN} \
             (make one with: head -c 32 /dev/urandom > {name})",
            bytes.len()
        ));
    }
    Ok(HostSecret(bytes))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferrohsm.toml");
        std::fs::write(&path, text).unwrap();
        Config::from_file(path)
    }

    #[test]
    fn rsa_min_bits_default_range_and_message() {
        assert_eq!(load("").unwrap().rsa_min_bits, 2048);
        assert_eq!(load("rsa_min_bits = 1024\n").unwrap().rsa_min_bits, 1024);
        assert_eq!(load("rsa_min_bits = 4096\n").unwrap().rsa_min_bits, 4096);
        for bad in ["512", "1023", "4097", "-2048"] {
            let e = load(&format!("token_dir = \"t\"\nrsa_min_bits = {bad}\n")).unwrap_err();
            assert_eq!(e.rv, CKR_FUNCTION_FAILED);
            assert!(
                e.context.contains("line 2: rsa_min_bits")
                    && e.context.contains("1024..=4096")
                    && !e.context.contains('\n'),
                "{}",
                e.context
            );
        }
        assert_eq!(
            load("rsa_min_bits = \"2048\"\n").unwrap_err().rv,
            CKR_FUNCTION_FAILED
        );
    }

    #[test]
    fn audit_levels() {
        assert_eq!(load("token_dir = \"t\"\n").unwrap().audit, AuditLevel::Keys);
        let c = load("token_dir = \"t\"\naudit = \"operations\"\n").unwrap();
        assert_eq!(c.audit, AuditLevel::Operations);
        let e = load("token_dir = \"t\"\naudit = \"everything\"\n").unwrap_err();
        assert!(
            e.context.contains("line 2") && e.context.contains("`operations`"),
            "{e:?}"
        );
    }

    #[test]
    fn rsa_pkcs1v15_decrypt_and_core_dump_settings() {
        let c = load("").unwrap();
        assert_eq!(c.rsa_pkcs1v15_decrypt, Pkcs1v15Decrypt::Allow);
        assert!(!c.disable_core_dumps);
        for (text, want) in [
            ("allow", Pkcs1v15Decrypt::Allow),
            ("deny", Pkcs1v15Decrypt::Deny),
            ("implicit-rejection", Pkcs1v15Decrypt::ImplicitRejection),
        ] {
            let c = load(&format!("rsa_pkcs1v15_decrypt = \"{text}\"\n")).unwrap();
            assert_eq!(c.rsa_pkcs1v15_decrypt, want);
        }
        let e = load("token_dir = \"t\"\nrsa_pkcs1v15_decrypt = \"maybe\"\n").unwrap_err();
        assert_eq!(e.rv, CKR_FUNCTION_FAILED);
        assert!(e.context.contains("line 2"), "{}", e.context);
        assert!(
            load("disable_core_dumps = true\n")
                .unwrap()
                .disable_core_dumps
        );
        assert!(load("disable_core_dumps = 1\n").is_err());
    }

    #[test]
    fn pin_settings_defaults_ranges_and_messages() {
        let config = load("").unwrap();
        assert_eq!(config.pin.min_len, 6);
        assert_eq!(config.pin.kdf, KdfParams::DEFAULT);
        assert!(config.pin.host_secret.is_none());
        assert!(config.pin.change_rotates_key);
        let config = load("pin_change_rotates_key = false\n").unwrap();
        assert!(!config.pin.change_rotates_key);
        let e = load("token_dir = \"t\"\npin_change_rotates_key = \"no\"\n").unwrap_err();
        assert!(e.context.contains("line 2"), "{e:?}");
        let config = load(
            "pin_min_len = 4\npin_kdf_memory_kib = 8192\npin_kdf_iterations = 2\n\
             pin_kdf_parallelism = 1\n",
        )
        .unwrap();
        assert_eq!(config.pin.min_len, 4);
        assert_eq!(
            config.pin.kdf,
            KdfParams {
                memory_kib: 8192,
                iterations: 2,
                parallelism: 1
            }
        );
        for (bad, says) in [
            (
                "pin_min_len = 3",
                "pin_min_len = 3 is out of range: 4..=255",
            ),
            ("pin_kdf_iterations = 0", "pin_kdf_*"),
            ("pin_kdf_memory_kib = 4294967296", "pin_kdf_memory_kib"),
            ("host_secret_file = \"nowhere.key\"", "host_secret_file"),
        ] {
            let e = load(&format!("{bad}\n")).unwrap_err();
            assert_eq!(e.rv, CKR_FUNCTION_FAILED);
            assert!(e.context.contains(says), "{bad}: {}", e.context);
        }
    }
}
