//! Shared harness for the integration tests.
//!
//! The module under test is a process-wide singleton that reads `FERROHSM_CONF` in
//! `C_Initialize`, so every test body runs in a child process of its own: the `#[test]`
//! function re-executes the test binary (`--exact <name>`) with a fresh token directory and
//! `FERROHSM_TEST_CHILD=<name>/<phase>` set. Tests that need several processes (persistence,
//! slot-id stability, PIN lockout) run several phases one after another on the same
//! directory.
//!
//! The module path is `FERROHSM_MODULE` when set (e.g. SoftHSMv2 to validate the tests
//! themselves), else the cdylib Cargo built next to the test binary.
#![allow(dead_code)]

use std::ffi::c_void;
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::ptr;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, Rv, RvError};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use cryptoki_sys::*;

pub mod c_client;
pub mod encoding;
pub mod openssl;
pub mod pg;

/// `<test name>/<phase>` of the test body this process must run.
pub const CHILD_ENV: &str = "FERROHSM_TEST_CHILD";
/// The sandbox directory shared by the phases of one test.
pub const DIR_ENV: &str = "FERROHSM_TEST_DIR";

pub const SO_PIN: &str = "so-secret-4321";
pub const USER_PIN: &str = "user-secret-1234";
pub const TOKEN_LABEL: &str = "ferrohsm-test";

#[allow(unused_macros)]
/// Defines a `#[test]` whose body runs in a fresh child process with its own token dir.
macro_rules! isolated_test {
    ($(#[$meta:meta])* fn $name:ident() $body:block) => {
        $(#[$meta])*
        #[test]
        fn $name() {
            if common::child_phase(stringify!($name)).is_some() {
                $body
            } else {
                common::Sandbox::new().run(stringify!($name), "main");
            }
        }
    };
}

// ---------------------------------------------------------------------------------------
// Module location and process isolation
// ---------------------------------------------------------------------------------------

pub fn module_path() -> PathBuf {
    if let Some(path) = std::env::var_os("FERROHSM_MODULE") {
        return PathBuf::from(path);
    }
    // Integration test binaries live in <target>/<profile>/deps/. Cargo builds the cdylib
    // for them in that same deps/ directory; the copy one level up is only refreshed by
    // `cargo build` and may be stale, so it is the second choice.
    if let Ok(exe) = std::env::current_exe() {
        if let Some(deps_dir) = exe.parent() {
            for dir in [Some(deps_dir), deps_dir.parent()].into_iter().flatten() {
                let candidate = dir.join("libferrohsm.so");
                if candidate.exists() {
                    return candidate;
                }
            }
        }
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("debug").join("libferrohsm.so")
}

pub fn is_softhsm() -> bool {
    module_path().to_string_lossy().contains("softhsm")
}

/// Checks that only ferrohsm promises (manufacturer string, key size limits) run only then.
pub fn is_ferrohsm() -> bool {
    module_path()
        .file_name()
        .map(|n| n.to_string_lossy().starts_with("libferrohsm"))
        .unwrap_or(false)
}

/// The phase this process must run for `test`, if it is a child started for that test.
pub fn child_phase(test: &str) -> Option<String> {
    let value = std::env::var(CHILD_ENV).ok()?;
    let (name, phase) = value.split_once('/')?;
    (name == test).then(|| phase.to_string())
}

/// The sandbox directory of the current child process.
pub fn sandbox_dir() -> PathBuf {
    PathBuf::from(std::env::var_os(DIR_ENV).expect("not running inside a sandbox child"))
}

/// Set to a PostgreSQL URL, the tests keep their tokens there (`store = ...`, each sandbox
/// in a schema of its own) instead of in the sandbox's token directory.
pub const STORE_URL_ENV: &str = "FERROHSM_TEST_STORE_URL";

/// Whether this run keeps the tokens in PostgreSQL (tests of the token files skip then).
pub fn on_postgres() -> bool {
    std::env::var_os(STORE_URL_ENV).is_some_and(|v| !v.is_empty())
}

/// The PostgreSQL URL of this run, if any.
pub fn store_url() -> Option<String> {
    std::env::var(STORE_URL_ENV).ok().filter(|v| !v.is_empty())
}

/// The schema a sandbox's tokens use on PostgreSQL (from its unique directory name).
pub fn pg_schema(sandbox: &Path) -> String {
    let name = sandbox.file_name().unwrap().to_string_lossy();
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The config lines that put a sandbox's tokens in PostgreSQL, empty without it.
fn store_lines(sandbox: &Path) -> String {
    match store_url() {
        Some(url) => format!(
            "store = \"{url}\"\nstore_schema = \"{}\"\n",
            pg_schema(sandbox)
        ),
        None => String::new(),
    }
}

/// The ferrohsm.toml of a sandbox: its token directory (and store), then `extra`.
pub fn config_text(sandbox: &Path, extra: &str) -> String {
    format!(
        "token_dir = \"{}\"\n{}{extra}",
        sandbox.join("tokens").display(),
        store_lines(sandbox)
    )
}

/// A temporary token directory plus the config files pointing at it.
pub struct Sandbox {
    dir: tempfile::TempDir,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("ferrohsm-test-")
            .tempdir()
            .expect("create temp dir");
        let tokens = dir.path().join("tokens");
        std::fs::create_dir_all(&tokens).expect("create token dir");
        std::fs::write(
            dir.path().join("ferrohsm.toml"),
            config_text(dir.path(), ""),
        )
        .expect("write ferrohsm.toml");
        std::fs::write(
            dir.path().join("softhsm2.conf"),
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
                tokens.display()
            ),
        )
        .expect("write softhsm2.conf");
        Sandbox { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn token_dir(&self) -> PathBuf {
        self.dir.path().join("tokens")
    }

    /// Rewrites ferrohsm.toml: the token directory plus the `extra` lines.
    pub fn write_config(&self, extra: &str) {
        std::fs::write(
            self.path().join("ferrohsm.toml"),
            config_text(self.path(), extra),
        )
        .expect("write ferrohsm.toml");
    }

    /// The command that runs `test` in phase `phase` in a child process.
    pub fn command(&self, test: &str, phase: &str) -> Command {
        let exe = std::env::current_exe().expect("current_exe");
        let mut cmd = Command::new(exe);
        cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, format!("{test}/{phase}"))
            .env(DIR_ENV, self.path())
            .env("FERROHSM_CONF", self.path().join("ferrohsm.toml"))
            .env("FERROHSM_MODULE", module_path())
            .env("RUST_BACKTRACE", "1");
        if is_softhsm() {
            cmd.env("SOFTHSM2_CONF", self.path().join("softhsm2.conf"));
        }
        cmd
    }

    /// Runs `test` in phase `phase` in a child process and fails unless it passed.
    pub fn run(&self, test: &str, phase: &str) {
        self.run_with_env(test, phase, &[]);
    }

    /// `run` with extra environment variables for the child.
    pub fn run_with_env(&self, test: &str, phase: &str, env: &[(&str, &Path)]) {
        let mut command = self.command(test, phase);
        command.envs(env.iter().copied());
        let output = command.output().expect("spawn test child");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        // "1 passed" also proves the filter matched: a typo would run nothing and "pass".
        let ran = stdout.contains("test result: ok. 1 passed");
        if !output.status.success() || !ran {
            panic!(
                "child {test}/{phase} failed ({})\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
                output.status
            );
        }
    }
}

/// Runs `ferrohsm-util` on the sandbox's config; returns (success, stdout + stderr).
pub fn run_util(sandbox: &Sandbox, args: &[&str]) -> (bool, String) {
    run_util_with(&sandbox.path().join("ferrohsm.toml"), args)
}

/// Runs `ferrohsm-util` on the config file `conf`; returns (success, stdout + stderr).
pub fn run_util_with(conf: &Path, args: &[&str]) -> (bool, String) {
    util_result(
        util_command(conf)
            .args(args)
            .output()
            .expect("run ferrohsm-util"),
    )
}

/// ferrohsm-util with `conf` as its configuration.
pub fn util_command(conf: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferrohsm-util"));
    command.env("FERROHSM_CONF", conf);
    command
}

/// Whether ferrohsm-util succeeded, and its stdout then stderr.
pub fn util_result(out: std::process::Output) -> (bool, String) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

// ---------------------------------------------------------------------------------------
// Return-code helpers
// ---------------------------------------------------------------------------------------

pub fn rv_name(rv: CK_RV) -> String {
    format!("{:?} (0x{rv:x})", Rv::from(rv))
}

/// The PKCS#11 code of a failed cryptoki call.
#[track_caller]
pub fn rv_of<T: Debug>(result: cryptoki::error::Result<T>) -> RvError {
    match result {
        Ok(value) => panic!("expected a PKCS#11 error, got Ok({value:?})"),
        Err(Error::Pkcs11(rv, _)) => rv,
        Err(other) => panic!("expected a PKCS#11 error, got {other:?}"),
    }
}

#[track_caller]
pub fn expect_rv<T: Debug>(result: cryptoki::error::Result<T>, want: RvError) {
    let got = rv_of(result);
    assert_eq!(got, want, "wrong return code");
}

#[track_caller]
pub fn expect_rv_in<T: Debug>(result: cryptoki::error::Result<T>, wants: &[RvError]) -> RvError {
    let got = rv_of(result);
    assert!(
        wants.contains(&got),
        "got {got:?}, expected one of {wants:?}"
    );
    got
}

#[track_caller]
pub fn assert_rv(got: CK_RV, want: CK_RV, what: &str) {
    assert!(
        got == want,
        "{what}: got {}, expected {}",
        rv_name(got),
        rv_name(want)
    );
}

#[track_caller]
pub fn assert_rv_in(got: CK_RV, wants: &[CK_RV], what: &str) {
    assert!(
        wants.contains(&got),
        "{what}: got {}, expected one of {:?}",
        rv_name(got),
        wants.iter().map(|rv| rv_name(*rv)).collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------------------------------
// cryptoki-level fixtures
// ---------------------------------------------------------------------------------------

pub fn pin(s: &str) -> AuthPin {
    AuthPin::from(s.to_string())
}

/// Loads the module and calls `C_Initialize` with OS locking.
///
/// The module stays loaded for the rest of the process: dropping the last `Pkcs11` would
/// dlclose it. Unloading after use is tested on its own
/// (c_abi::unloading_after_use_on_a_thread_is_safe) so that a crash there does not take
/// every other test down with it.
pub fn initialized() -> Pkcs11 {
    let p11 = Pkcs11::new(module_path()).expect("load module");
    std::mem::forget(p11.clone());
    p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .expect("C_Initialize");
    p11
}

pub fn slot_by_label(p11: &Pkcs11, label: &str) -> Option<Slot> {
    p11.get_slots_with_token()
        .expect("C_GetSlotList")
        .into_iter()
        .find(|slot| {
            p11.get_token_info(*slot)
                .map(|info| info.token_initialized() && info.label() == label)
                .unwrap_or(false)
        })
}

/// The spare uninitialised slot (listed last).
pub fn spare_slot(p11: &Pkcs11) -> Slot {
    let slots = p11.get_all_slots().expect("C_GetSlotList(FALSE)");
    let spare = *slots.last().expect("at least one slot");
    let info = p11.get_token_info(spare).expect("C_GetTokenInfo(spare)");
    assert!(
        !info.token_initialized(),
        "the last slot must be the spare uninitialised one"
    );
    spare
}

/// Initialises a token on the spare slot (SO PIN set, user PIN set unless `user_pin` is
/// None) and returns the slot the token is now in.
pub fn init_token_with(p11: &Pkcs11, label: &str, user_pin: Option<&str>) -> Slot {
    let spare = spare_slot(p11);
    p11.init_token(spare, &pin(SO_PIN), label)
        .expect("C_InitToken");
    let slot = slot_by_label(p11, label).expect("initialised token is listed");
    if let Some(user_pin) = user_pin {
        let session = p11.open_rw_session(slot).expect("C_OpenSession");
        session
            .login(UserType::So, Some(&pin(SO_PIN)))
            .expect("SO login");
        session.init_pin(&pin(user_pin)).expect("C_InitPIN");
        session.logout().expect("C_Logout");
        session.close().expect("C_CloseSession");
    }
    slot
}

/// An initialised library with one token (SO and user PIN set).
pub struct Token {
    pub p11: Pkcs11,
    pub slot: Slot,
}

impl Token {
    pub fn new() -> Token {
        let p11 = initialized();
        let slot = init_token_with(&p11, TOKEN_LABEL, Some(USER_PIN));
        Token { p11, slot }
    }

    /// Attaches to the token created by an earlier phase.
    pub fn existing() -> Token {
        let p11 = initialized();
        let slot = slot_by_label(&p11, TOKEN_LABEL).expect("token from the earlier phase");
        Token { p11, slot }
    }

    pub fn ro(&self) -> Session {
        self.p11
            .open_ro_session(self.slot)
            .expect("open RO session")
    }

    pub fn rw(&self) -> Session {
        self.p11
            .open_rw_session(self.slot)
            .expect("open RW session")
    }

    /// A RW session logged in as the normal user.
    pub fn user(&self) -> Session {
        let session = self.rw();
        session
            .login(UserType::User, Some(&pin(USER_PIN)))
            .expect("user login");
        session
    }

    pub fn raw(&self) -> Raw {
        Raw::load()
    }
}

impl Default for Token {
    fn default() -> Self {
        Self::new()
    }
}

pub struct RsaPair {
    pub public: ObjectHandle,
    pub private: ObjectHandle,
}

pub const F4: [u8; 3] = [0x01, 0x00, 0x01];

/// Public and private templates of an ordinary RSA key pair.
pub fn rsa_templates(bits: u64, label: &str, token: bool) -> (Vec<Attribute>, Vec<Attribute>) {
    let public = vec![
        Attribute::Token(token),
        Attribute::Private(false),
        Attribute::ModulusBits(bits.into()),
        Attribute::PublicExponent(F4.to_vec()),
        Attribute::Encrypt(true),
        Attribute::Verify(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(label.as_bytes().to_vec()),
    ];
    let private = vec![
        Attribute::Token(token),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Decrypt(true),
        Attribute::Sign(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(label.as_bytes().to_vec()),
    ];
    (public, private)
}

pub fn gen_rsa(session: &Session, bits: u64, label: &str, token: bool) -> RsaPair {
    let (public, private) = rsa_templates(bits, label, token);
    let (public, private) = session
        .generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private)
        .expect("C_GenerateKeyPair RSA");
    RsaPair { public, private }
}

/// An SM2 key pair of session objects for encryption and signing (CKM_SM2_KEY_PAIR_GEN).
pub fn gen_sm2(session: &Session, label: &str) -> (ObjectHandle, ObjectHandle) {
    let mechanism = Mechanism::VendorDefined(
        cryptoki::mechanism::vendor_defined::VendorDefinedMechanism::new::<()>(
            vendor_mechanism(CKM_SM2_KEY_PAIR_GEN),
            None,
        ),
    );
    let label = Attribute::Label(label.as_bytes().to_vec());
    let public = [
        Attribute::Token(false),
        Attribute::Encrypt(true),
        Attribute::Verify(true),
        label.clone(),
    ];
    let private = [
        Attribute::Token(false),
        Attribute::Private(true),
        Attribute::Decrypt(true),
        Attribute::Sign(true),
        label,
    ];
    session
        .generate_key_pair(&mechanism, &public, &private)
        .expect("CKM_SM2_KEY_PAIR_GEN")
}

pub fn bytes_attr(session: &Session, object: ObjectHandle, kind: AttributeType) -> Vec<u8> {
    let attrs = session
        .get_attributes(object, &[kind])
        .expect("C_GetAttributeValue");
    match attrs.into_iter().next() {
        Some(Attribute::Modulus(v))
        | Some(Attribute::PublicExponent(v))
        | Some(Attribute::PrivateExponent(v))
        | Some(Attribute::Label(v))
        | Some(Attribute::Id(v))
        | Some(Attribute::Value(v))
        | Some(Attribute::EcParams(v))
        | Some(Attribute::EcPoint(v))
        | Some(Attribute::Application(v)) => v,
        other => panic!("attribute {kind:?} not available as bytes: {other:?}"),
    }
}

pub fn bool_attr(session: &Session, object: ObjectHandle, kind: AttributeType) -> bool {
    let attrs = session
        .get_attributes(object, &[kind])
        .expect("C_GetAttributeValue");
    match attrs.into_iter().next() {
        Some(Attribute::Token(b))
        | Some(Attribute::Private(b))
        | Some(Attribute::Sensitive(b))
        | Some(Attribute::Extractable(b))
        | Some(Attribute::AlwaysSensitive(b))
        | Some(Attribute::NeverExtractable(b))
        | Some(Attribute::Local(b))
        | Some(Attribute::Modifiable(b))
        | Some(Attribute::Copyable(b))
        | Some(Attribute::Destroyable(b))
        | Some(Attribute::Encrypt(b))
        | Some(Attribute::Decrypt(b))
        | Some(Attribute::Sign(b))
        | Some(Attribute::Verify(b)) => b,
        other => panic!("attribute {kind:?} not available as bool: {other:?}"),
    }
}

pub fn find_by_label(session: &Session, label: &str) -> Vec<ObjectHandle> {
    session
        .find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
        .expect("C_FindObjects")
}

pub fn data_object(label: &str, value: &[u8], token: bool, private: bool) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::DATA),
        Attribute::Token(token),
        Attribute::Private(private),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Application(b"ferrohsm-tests".to_vec()),
        Attribute::Value(value.to_vec()),
    ]
}

pub fn vendor_mechanism(value: CK_MECHANISM_TYPE) -> MechanismType {
    MechanismType::new_vendor_defined(value).expect("vendor mechanism value")
}

/// Strips leading zero bytes of a big-endian integer.
pub fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

// ---------------------------------------------------------------------------------------
// Raw C ABI access (for what cryptoki hides: exact codes, NULL pointers, length queries)
// ---------------------------------------------------------------------------------------

/// The module's 2.40 function list, as a C client gets it from `C_GetFunctionList`.
pub struct Raw {
    pub lib: &'static cryptoki_sys::Pkcs11,
    pub f: &'static CK_FUNCTION_LIST,
}

#[allow(unused_macros)]
/// Calls a function of the raw function list: `raw!(r, C_GetInfo(&mut info))`.
macro_rules! raw {
    ($raw:expr, $func:ident ( $($arg:expr),* $(,)? )) => {
        unsafe { ($raw.f.$func.expect(concat!(stringify!($func), " is NULL")))($($arg),*) }
    };
}

impl Raw {
    pub fn load() -> Raw {
        // Leaked on purpose: the library stays loaded for the life of the test process, so
        // the function pointers stay valid.
        let lib: &'static cryptoki_sys::Pkcs11 = Box::leak(Box::new(
            unsafe { cryptoki_sys::Pkcs11::new(module_path()) }.expect("dlopen module"),
        ));
        let mut list: *mut CK_FUNCTION_LIST = ptr::null_mut();
        let rv = unsafe { lib.C_GetFunctionList(&mut list) };
        assert_rv(rv, CKR_OK, "C_GetFunctionList");
        assert!(!list.is_null(), "C_GetFunctionList gave NULL");
        Raw {
            lib,
            f: unsafe { &*list },
        }
    }

    /// C_GetMechanismList as a C client sees it (cryptoki drops types it has no name for,
    /// such as CKM_SHA224 and every vendor mechanism).
    pub fn mechanism_list(&self, slot: Slot) -> Vec<CK_MECHANISM_TYPE> {
        let mut count: CK_ULONG = 0;
        let rv = raw!(
            self,
            C_GetMechanismList(slot.id(), ptr::null_mut(), &mut count)
        );
        assert_rv(rv, CKR_OK, "C_GetMechanismList length query");
        let mut list = vec![0 as CK_MECHANISM_TYPE; count as usize];
        let rv = raw!(
            self,
            C_GetMechanismList(slot.id(), list.as_mut_ptr(), &mut count)
        );
        assert_rv(rv, CKR_OK, "C_GetMechanismList");
        list.truncate(count as usize);
        list
    }

    pub fn initialize(&self) -> CK_RV {
        raw!(self, C_Initialize(ptr::null_mut()))
    }

    pub fn finalize(&self) -> CK_RV {
        raw!(self, C_Finalize(ptr::null_mut()))
    }

    pub fn open_session(&self, slot: Slot, rw: bool) -> CK_SESSION_HANDLE {
        let mut handle = CK_INVALID_HANDLE;
        let flags = CKF_SERIAL_SESSION | if rw { CKF_RW_SESSION } else { 0 };
        let rv = raw!(
            self,
            C_OpenSession(slot.id(), flags, ptr::null_mut(), None, &mut handle)
        );
        assert_rv(rv, CKR_OK, "C_OpenSession");
        handle
    }

    pub fn login(&self, session: CK_SESSION_HANDLE, user: CK_USER_TYPE, pin: &str) -> CK_RV {
        raw!(
            self,
            C_Login(
                session,
                user,
                pin.as_ptr() as *mut u8,
                pin.len() as CK_ULONG
            )
        )
    }

    pub fn encrypt_init(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: &CK_MECHANISM,
        key: CK_OBJECT_HANDLE,
    ) -> CK_RV {
        let mut mechanism = *mechanism;
        raw!(self, C_EncryptInit(session, &mut mechanism, key))
    }

    pub fn decrypt_init(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: &CK_MECHANISM,
        key: CK_OBJECT_HANDLE,
    ) -> CK_RV {
        let mut mechanism = *mechanism;
        raw!(self, C_DecryptInit(session, &mut mechanism, key))
    }

    pub fn sign_init(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: &CK_MECHANISM,
        key: CK_OBJECT_HANDLE,
    ) -> CK_RV {
        let mut mechanism = *mechanism;
        raw!(self, C_SignInit(session, &mut mechanism, key))
    }

    pub fn verify_init(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: &CK_MECHANISM,
        key: CK_OBJECT_HANDLE,
    ) -> CK_RV {
        let mut mechanism = *mechanism;
        raw!(self, C_VerifyInit(session, &mut mechanism, key))
    }

    /// One output-producing call with a buffer of `capacity` bytes (None = NULL pointer).
    /// Returns the code and the length the module wrote back.
    pub fn output_call(
        &self,
        which: OutputCall,
        session: CK_SESSION_HANDLE,
        input: &[u8],
        capacity: Option<usize>,
    ) -> (CK_RV, CK_ULONG, Vec<u8>) {
        let mut buffer = vec![0u8; capacity.unwrap_or(0)];
        let out_ptr = if capacity.is_some() {
            buffer.as_mut_ptr()
        } else {
            ptr::null_mut()
        };
        let mut len = capacity.unwrap_or(0) as CK_ULONG;
        let in_ptr = input.as_ptr() as *mut u8;
        let in_len = input.len() as CK_ULONG;
        let rv = match which {
            OutputCall::Encrypt => {
                raw!(self, C_Encrypt(session, in_ptr, in_len, out_ptr, &mut len))
            }
            OutputCall::Decrypt => {
                raw!(self, C_Decrypt(session, in_ptr, in_len, out_ptr, &mut len))
            }
            OutputCall::Sign => raw!(self, C_Sign(session, in_ptr, in_len, out_ptr, &mut len)),
            OutputCall::Digest => raw!(self, C_Digest(session, in_ptr, in_len, out_ptr, &mut len)),
            OutputCall::SignFinal => raw!(self, C_SignFinal(session, out_ptr, &mut len)),
            OutputCall::DigestFinal => raw!(self, C_DigestFinal(session, out_ptr, &mut len)),
        };
        if rv == CKR_OK && capacity.is_some() {
            buffer.truncate(len as usize);
        }
        (rv, len, buffer)
    }

    /// Single-part operation with the usual length query; Err(rv) on any failure.
    pub fn run(
        &self,
        which: OutputCall,
        session: CK_SESSION_HANDLE,
        input: &[u8],
    ) -> Result<Vec<u8>, CK_RV> {
        let (rv, len, _) = self.output_call(which, session, input, None);
        if rv != CKR_OK {
            return Err(rv);
        }
        let (rv, _, out) = self.output_call(which, session, input, Some(len as usize));
        if rv != CKR_OK {
            return Err(rv);
        }
        Ok(out)
    }

    pub fn encrypt(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: &CK_MECHANISM,
        key: CK_OBJECT_HANDLE,
        data: &[u8],
    ) -> Result<Vec<u8>, CK_RV> {
        match self.encrypt_init(session, mechanism, key) {
            CKR_OK => self.run(OutputCall::Encrypt, session, data),
            rv => Err(rv),
        }
    }

    pub fn decrypt(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: &CK_MECHANISM,
        key: CK_OBJECT_HANDLE,
        data: &[u8],
    ) -> Result<Vec<u8>, CK_RV> {
        match self.decrypt_init(session, mechanism, key) {
            CKR_OK => self.run(OutputCall::Decrypt, session, data),
            rv => Err(rv),
        }
    }

    pub fn sign(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: &CK_MECHANISM,
        key: CK_OBJECT_HANDLE,
        data: &[u8],
    ) -> Result<Vec<u8>, CK_RV> {
        match self.sign_init(session, mechanism, key) {
            CKR_OK => self.run(OutputCall::Sign, session, data),
            rv => Err(rv),
        }
    }

    pub fn verify(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: &CK_MECHANISM,
        key: CK_OBJECT_HANDLE,
        data: &[u8],
        signature: &[u8],
    ) -> CK_RV {
        match self.verify_init(session, mechanism, key) {
            CKR_OK => raw!(
                self,
                C_Verify(
                    session,
                    data.as_ptr() as *mut u8,
                    data.len() as CK_ULONG,
                    signature.as_ptr() as *mut u8,
                    signature.len() as CK_ULONG
                )
            ),
            rv => rv,
        }
    }

    /// Multi-part sign: init, one update per chunk, final.
    pub fn sign_multi(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: &CK_MECHANISM,
        key: CK_OBJECT_HANDLE,
        chunks: &[&[u8]],
    ) -> Result<Vec<u8>, CK_RV> {
        let rv = self.sign_init(session, mechanism, key);
        if rv != CKR_OK {
            return Err(rv);
        }
        for chunk in chunks {
            let rv = raw!(
                self,
                C_SignUpdate(session, chunk.as_ptr() as *mut u8, chunk.len() as CK_ULONG)
            );
            if rv != CKR_OK {
                return Err(rv);
            }
        }
        let (rv, len, _) = self.output_call(OutputCall::SignFinal, session, &[], None);
        if rv != CKR_OK {
            return Err(rv);
        }
        let (rv, _, out) =
            self.output_call(OutputCall::SignFinal, session, &[], Some(len as usize));
        if rv != CKR_OK {
            return Err(rv);
        }
        Ok(out)
    }

    /// Multi-part verify: init, one update per chunk, final.
    pub fn verify_multi(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: &CK_MECHANISM,
        key: CK_OBJECT_HANDLE,
        chunks: &[&[u8]],
        signature: &[u8],
    ) -> CK_RV {
        let rv = self.verify_init(session, mechanism, key);
        if rv != CKR_OK {
            return rv;
        }
        for chunk in chunks {
            let rv = raw!(
                self,
                C_VerifyUpdate(session, chunk.as_ptr() as *mut u8, chunk.len() as CK_ULONG)
            );
            if rv != CKR_OK {
                return rv;
            }
        }
        raw!(
            self,
            C_VerifyFinal(
                session,
                signature.as_ptr() as *mut u8,
                signature.len() as CK_ULONG
            )
        )
    }

    pub fn digest(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: CK_MECHANISM_TYPE,
        data: &[u8],
    ) -> Result<Vec<u8>, CK_RV> {
        let mut mechanism = mech(mechanism);
        let rv = raw!(self, C_DigestInit(session, &mut mechanism));
        if rv != CKR_OK {
            return Err(rv);
        }
        self.run(OutputCall::Digest, session, data)
    }

    pub fn digest_multi(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: CK_MECHANISM_TYPE,
        chunks: &[&[u8]],
    ) -> Result<Vec<u8>, CK_RV> {
        let mut mechanism = mech(mechanism);
        let rv = raw!(self, C_DigestInit(session, &mut mechanism));
        if rv != CKR_OK {
            return Err(rv);
        }
        for chunk in chunks {
            let rv = raw!(
                self,
                C_DigestUpdate(session, chunk.as_ptr() as *mut u8, chunk.len() as CK_ULONG)
            );
            if rv != CKR_OK {
                return Err(rv);
            }
        }
        let (rv, len, _) = self.output_call(OutputCall::DigestFinal, session, &[], None);
        if rv != CKR_OK {
            return Err(rv);
        }
        let (rv, _, out) =
            self.output_call(OutputCall::DigestFinal, session, &[], Some(len as usize));
        if rv != CKR_OK {
            return Err(rv);
        }
        Ok(out)
    }
}

#[derive(Clone, Copy, Debug)]
pub enum OutputCall {
    Encrypt,
    Decrypt,
    Sign,
    Digest,
    SignFinal,
    DigestFinal,
}

/// A mechanism without parameter.
pub fn mech(mechanism: CK_MECHANISM_TYPE) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism,
        pParameter: ptr::null_mut(),
        ulParameterLen: 0,
    }
}

/// A mechanism whose parameter is `param` (which must outlive every use of the result).
pub fn mech_with<T>(mechanism: CK_MECHANISM_TYPE, param: &T) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism,
        pParameter: param as *const T as *mut c_void,
        ulParameterLen: std::mem::size_of::<T>() as CK_ULONG,
    }
}

/// The bytes of a `#[repr(C)]` parameter struct, for `mech_bytes`.
pub fn as_bytes<T>(value: &T) -> &[u8] {
    unsafe { std::slice::from_raw_parts(value as *const T as *const u8, std::mem::size_of::<T>()) }
}

/// A raw template entry holding a `CK_BBOOL` (which must outlive every use).
pub fn bool_attr_raw(ty: CK_ATTRIBUTE_TYPE, value: &CK_BBOOL) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE {
        type_: ty,
        pValue: value as *const CK_BBOOL as *mut c_void,
        ulValueLen: 1,
    }
}

/// A raw template entry holding a `CK_ULONG` (which must outlive every use).
pub fn ulong_attr_raw(ty: CK_ATTRIBUTE_TYPE, value: &CK_ULONG) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE {
        type_: ty,
        pValue: value as *const CK_ULONG as *mut c_void,
        ulValueLen: std::mem::size_of::<CK_ULONG>() as CK_ULONG,
    }
}

/// A mechanism whose parameter is a byte string (e.g. an SM2 signer ID).
pub fn mech_bytes(mechanism: CK_MECHANISM_TYPE, param: &[u8]) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism,
        pParameter: param.as_ptr() as *mut c_void,
        ulParameterLen: param.len() as CK_ULONG,
    }
}

// ---------------------------------------------------------------------------------------
// SM2 vendor values, written out from ../shared/design/sm2.md (not imported from the
// crate, so that a wrong value in src/vendor.rs fails the tests)
// ---------------------------------------------------------------------------------------

#[allow(dead_code)]
pub const CKK_SM2: cryptoki_sys::CK_KEY_TYPE = 0x8000_0004;
#[allow(dead_code)]
pub const CKM_SM2_KEY_PAIR_GEN: cryptoki_sys::CK_MECHANISM_TYPE = 0x8000_8001;
#[allow(dead_code)]
pub const CKM_SM2_RAW: cryptoki_sys::CK_MECHANISM_TYPE = 0x8000_8200;
#[allow(dead_code)]
pub const CKM_SM2_CIPHER_DER: cryptoki_sys::CK_MECHANISM_TYPE = 0x8000_8201;
#[allow(dead_code)]
pub const CKM_SM3_SM2: cryptoki_sys::CK_MECHANISM_TYPE = 0x8000_8100;
#[allow(dead_code)]
pub const CKM_SM3_SM2_DER: cryptoki_sys::CK_MECHANISM_TYPE = 0x8000_8101;
/// DER OID 1.2.156.10197.1.301 (sm2p256v1).
#[allow(dead_code)]
pub const SM2_OID: [u8; 10] = [0x06, 0x08, 0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x01, 0x82, 0x2d];
// SM4 and SM3-HMAC (src/vendor.rs; the README's SM table).
#[allow(dead_code)]
pub const CKK_SM4: cryptoki_sys::CK_KEY_TYPE = 0x8000_0106;
#[allow(dead_code)]
pub const CKM_SM4_KEY_GEN: cryptoki_sys::CK_MECHANISM_TYPE = 0x8000_0107;
#[allow(dead_code)]
pub const CKM_SM4_ECB: cryptoki_sys::CK_MECHANISM_TYPE = 0x8000_0108;
#[allow(dead_code)]
pub const CKM_SM4_CBC_PAD: cryptoki_sys::CK_MECHANISM_TYPE = 0x8000_010A;
#[allow(dead_code)]
pub const CKM_SM3_HMAC: cryptoki_sys::CK_MECHANISM_TYPE = 0x8000_9002;
// Format codes of the optional CK_ULONG parameter of the SM2 encryption mechanisms.
#[allow(dead_code)]
pub const FORMAT_DER: cryptoki_sys::CK_ULONG = 1;
#[allow(dead_code)]
pub const FORMAT_C1C3C2: cryptoki_sys::CK_ULONG = 2;
#[allow(dead_code)]
pub const FORMAT_C1C2C3: cryptoki_sys::CK_ULONG = 3;
#[allow(dead_code)]
pub const FORMAT_NO_04: cryptoki_sys::CK_ULONG = 0x100;
