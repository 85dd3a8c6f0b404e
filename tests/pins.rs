//! PIN attack resistance (issue 12): the retry counter fails closed (processes racing wrong
//! PINs at the limit get exactly the limit; a store that cannot count the attempt refuses
//! it instead of judging it), edits of the counter in the store file give no extra guesses
//! or are reported, and the PIN settings of the config file (`pin_min_len`,
//! `host_secret_file`, `pin_kdf_*`). ferrohsm only: these test its store and its config.

#[macro_use]
mod common;

use common::*;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::RvError;
use cryptoki::session::UserType;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The retry limit (CKR_PIN_LOCKED after this many wrong PINs in a row).
const LIMIT: u32 = 10;
const WRONG: &str = "wrong-user-pin";
const RACERS: usize = 8;

fn skip_unless_ferrohsm(test: &str) -> bool {
    if !is_ferrohsm() {
        eprintln!("SKIPPED {test}: ferrohsm's store and config");
        return true;
    }
    false
}

/// The one token store file of the sandbox.
fn store_file(token_dir: &Path) -> PathBuf {
    let mut stores = std::fs::read_dir(token_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "db"));
    let store = stores.next().expect("the token's store file");
    assert!(stores.next().is_none(), "one token store");
    store
}

/// Runs `sql` on the sandbox's store, as someone with write access to it but no PIN.
fn edit_store(sandbox: &Sandbox, sql: &str) {
    common::pg::store_sql(sandbox.path(), sql);
}

/// One step of a test run from its parent process.
enum Step<'a> {
    /// Runs a phase in a child process.
    Phase(&'a str),
    /// Edits the store file between phases.
    Edit(&'a str),
}

/// Runs `steps` in one fresh sandbox.
fn run_steps(test: &str, steps: &[Step<'_>]) {
    let sandbox = Sandbox::new();
    for step in steps {
        match step {
            Step::Phase(phase) => sandbox.run(test, phase),
            Step::Edit(sql) => edit_store(&sandbox, sql),
        }
    }
}

/// Wrong user PINs until CKR_PIN_LOCKED; returns how many were judged (CKR_PIN_INCORRECT).
fn guess_until_locked(token: &Token) -> u32 {
    let session = token.rw();
    let mut judged = 0;
    loop {
        match rv_of(session.login(UserType::User, Some(&pin(WRONG)))) {
            RvError::PinIncorrect => judged += 1,
            RvError::PinLocked => return judged,
            other => panic!("wrong PIN after {judged} judged: {other:?}"),
        }
        assert!(judged <= LIMIT, "more than {LIMIT} wrong PINs judged");
    }
}

fn user_flags(token: &Token) -> (bool, bool) {
    let info = token.p11.get_token_info(token.slot).expect("info");
    (info.user_pin_count_low(), info.user_pin_locked())
}

#[test]
fn processes_racing_wrong_pins_get_exactly_the_limit() {
    const TEST: &str = "processes_racing_wrong_pins_get_exactly_the_limit";
    if skip_unless_ferrohsm(TEST) {
        return;
    }
    match child_phase(TEST).as_deref() {
        None => {
            let sandbox = Sandbox::new();
            sandbox.run(TEST, "setup");
            let go = sandbox.path().join("go");
            let racers: Vec<_> = (0..RACERS)
                .map(|i| {
                    sandbox
                        .command(TEST, "race")
                        .env("FERROHSM_RACER", i.to_string())
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .spawn()
                        .expect("spawn racer")
                })
                .collect();
            // All start guessing at once, once every one has its token open.
            let deadline = Instant::now() + Duration::from_secs(120);
            while (0..RACERS).any(|i| !sandbox.path().join(format!("ready-{i}")).exists()) {
                assert!(Instant::now() < deadline, "racers not ready in two minutes");
                std::thread::sleep(Duration::from_millis(10));
            }
            std::fs::write(&go, "").unwrap();
            let mut total = 0;
            for (i, racer) in racers.into_iter().enumerate() {
                let out = racer.wait_with_output().unwrap();
                let stdout = String::from_utf8_lossy(&out.stdout);
                assert!(
                    out.status.success() && stdout.contains("1 passed"),
                    "racer {i}: {stdout}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let judged: u32 =
                    std::fs::read_to_string(sandbox.path().join(format!("judged-{i}")))
                        .unwrap()
                        .parse()
                        .unwrap();
                eprintln!("racer {i}: {judged} wrong PINs judged");
                total += judged;
            }
            assert_eq!(
                total, LIMIT,
                "wrong PINs judged by {RACERS} racing processes"
            );
            sandbox.run(TEST, "check");
        }
        Some("setup") => {
            Token::new();
        }
        Some("race") => {
            let i = std::env::var("FERROHSM_RACER").unwrap();
            let token = Token::existing();
            std::fs::write(sandbox_dir().join(format!("ready-{i}")), "").unwrap();
            while !sandbox_dir().join("go").exists() {
                std::thread::sleep(Duration::from_millis(1));
            }
            let judged = guess_until_locked(&token);
            std::fs::write(
                sandbox_dir().join(format!("judged-{i}")),
                judged.to_string(),
            )
            .unwrap();
        }
        Some("check") => {
            let token = Token::existing();
            assert_eq!(user_flags(&token), (true, true), "locked");
            expect_rv(
                token.rw().login(UserType::User, Some(&pin(USER_PIN))),
                RvError::PinLocked,
            );
        }
        Some(other) => panic!("unknown phase {other}"),
    }
}

/// Makes the store file read-only for this process's writes: `chmod` for a normal user;
/// root ignores modes, so there the file is made immutable (`chattr +i`). Returns false
/// when neither works here.
fn set_read_only(file: &Path, read_only: bool) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let is_root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    if is_root {
        std::process::Command::new("chattr")
            .arg(if read_only { "+i" } else { "-i" })
            .arg(file)
            .status()
            .is_ok_and(|s| s.success())
    } else {
        let mode = if read_only { 0o400 } else { 0o600 };
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(mode)).is_ok()
    }
}

/// A store that cannot count the attempt refuses it (CKR_DEVICE_ERROR) without judging it:
/// the right PIN does not log in, and once the store is writable again nothing was counted.
#[test]
fn a_read_only_store_refuses_the_attempt_instead_of_judging_it() {
    const TEST: &str = "a_read_only_store_refuses_the_attempt_instead_of_judging_it";
    if skip_unless_ferrohsm(TEST) {
        return;
    }
    if on_postgres() {
        // A read-only token file; the database's counterpart is tests/postgres.rs's outage.
        eprintln!("SKIPPED {TEST}: a file mode test");
        return;
    }
    match child_phase(TEST).as_deref() {
        None => {
            let sandbox = Sandbox::new();
            sandbox.run(TEST, "setup");
            let store = store_file(&sandbox.token_dir());
            if !set_read_only(&store, true) {
                eprintln!(
                    "SKIPPED {TEST}: cannot make {} read-only here",
                    store.display()
                );
                return;
            }
            let result = std::panic::catch_unwind(|| sandbox.run(TEST, "read-only"));
            assert!(set_read_only(&store, false), "store writable again");
            if let Err(panic) = result {
                std::panic::resume_unwind(panic);
            }
            sandbox.run(TEST, "check");
        }
        Some("setup") => {
            Token::new();
        }
        Some("read-only") => {
            let token = Token::existing();
            let session = token.rw();
            for (what, candidate) in [("right", USER_PIN), ("wrong", WRONG)] {
                expect_rv(
                    session.login(UserType::User, Some(&pin(candidate))),
                    RvError::DeviceError,
                );
                eprintln!("{what} PIN on a read-only store: CKR_DEVICE_ERROR");
            }
            expect_rv(
                session.login(UserType::So, Some(&pin(SO_PIN))),
                RvError::DeviceError,
            );
        }
        Some("check") => {
            let token = Token::existing();
            assert_eq!(user_flags(&token), (false, false), "nothing was counted");
            token.user();
        }
        Some(other) => panic!("unknown phase {other}"),
    }
}

/// Resetting `pins.failures` in the file between phases gives no extra guesses: the count
/// is read from the attempt count as well.
#[test]
fn resetting_failures_in_the_file_gives_no_extra_guesses() {
    const TEST: &str = "resetting_failures_in_the_file_gives_no_extra_guesses";
    if skip_unless_ferrohsm(TEST) {
        return;
    }
    match child_phase(TEST).as_deref() {
        None => run_steps(
            TEST,
            &[
                Step::Phase("setup"),
                Step::Phase("guess-six"),
                Step::Edit("UPDATE pins SET failures = 0"),
                Step::Phase("guess-rest"),
                // Also once locked.
                Step::Edit("UPDATE pins SET failures = 0"),
                Step::Phase("still-locked"),
            ],
        ),
        Some("setup") => {
            let token = Token::new();
            // A success first, so that the counter has a MAC'd last success.
            token.user().logout().expect("logout");
        }
        Some("guess-six") => {
            let token = Token::existing();
            let session = token.rw();
            for _ in 0..6 {
                expect_rv(
                    session.login(UserType::User, Some(&pin(WRONG))),
                    RvError::PinIncorrect,
                );
            }
        }
        Some("guess-rest") => {
            let token = Token::existing();
            assert_eq!(
                guess_until_locked(&token),
                LIMIT - 6,
                "guesses left after the reset"
            );
        }
        Some("still-locked") => {
            let token = Token::existing();
            assert_eq!(
                guess_until_locked(&token),
                0,
                "guesses after resetting a locked PIN"
            );
            expect_rv(
                token.rw().login(UserType::User, Some(&pin(USER_PIN))),
                RvError::PinLocked,
            );
        }
        Some(other) => panic!("unknown phase {other}"),
    }
}

/// Moving the last success forward in the file (as if the wrong PINs since had not
/// happened) gives guesses, which the module cannot see before a PIN opens the token key;
/// the next right PIN sees the counter's MAC fail and reports it (CKR_DEVICE_ERROR) instead
/// of logging in. The SO's C_InitPIN gives the user a fresh, valid record.
#[test]
fn a_forged_reset_is_reported_at_the_next_right_pin() {
    const TEST: &str = "a_forged_reset_is_reported_at_the_next_right_pin";
    if skip_unless_ferrohsm(TEST) {
        return;
    }
    match child_phase(TEST).as_deref() {
        None => run_steps(
            TEST,
            &[
                Step::Phase("setup"),
                Step::Edit(
                    "UPDATE pins SET failures = 0, success_at = attempts WHERE user_type = 1",
                ),
                Step::Phase("check"),
            ],
        ),
        Some("setup") => {
            let token = Token::new();
            token.user().logout().expect("logout");
            let session = token.rw();
            for _ in 0..3 {
                expect_rv(
                    session.login(UserType::User, Some(&pin(WRONG))),
                    RvError::PinIncorrect,
                );
            }
        }
        Some("check") => {
            let token = Token::existing();
            let session = token.rw();
            expect_rv(
                session.login(UserType::User, Some(&pin(USER_PIN))),
                RvError::DeviceError,
            );
            session
                .login(UserType::So, Some(&pin(SO_PIN)))
                .expect("SO login");
            session.init_pin(&pin("fresh-user-pin")).expect("C_InitPIN");
            session.logout().expect("logout");
            session
                .login(UserType::User, Some(&pin("fresh-user-pin")))
                .expect("the new user PIN logs in");
        }
        Some(other) => panic!("unknown phase {other}"),
    }
}

/// Clearing a PIN record's flags (to turn its counter check off, or to drop the host
/// secret) leaves a wrapped key that no PIN opens: the right PIN is then just wrong.
#[test]
fn clearing_the_record_flags_makes_every_pin_wrong() {
    const TEST: &str = "clearing_the_record_flags_makes_every_pin_wrong";
    if skip_unless_ferrohsm(TEST) {
        return;
    }
    match child_phase(TEST).as_deref() {
        None => run_steps(
            TEST,
            &[
                Step::Phase("setup"),
                Step::Edit("UPDATE pins SET flags = 0 WHERE user_type = 1"),
                Step::Phase("check"),
            ],
        ),
        Some("setup") => {
            Token::new();
        }
        Some("check") => {
            let token = Token::existing();
            expect_rv(
                token.rw().login(UserType::User, Some(&pin(USER_PIN))),
                RvError::PinIncorrect,
            );
        }
        Some(other) => panic!("unknown phase {other}"),
    }
}

// ---------------------------------------------------------------------------------------
// Config: pin_min_len, host_secret_file, pin_kdf_*
// ---------------------------------------------------------------------------------------

/// Writes the sandbox's ferrohsm.toml with `extra` lines after `token_dir`.
fn write_config(extra: &str) {
    let dir = sandbox_dir();
    std::fs::write(dir.join("ferrohsm.toml"), common::config_text(&dir, extra)).unwrap();
}

/// C_Initialize's result with the sandbox's config as it is now.
fn initialize_rv() -> Result<Pkcs11, RvError> {
    let p11 = Pkcs11::new(module_path()).expect("load module");
    std::mem::forget(p11.clone());
    p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .map(|()| p11)
        .map_err(|e| match e {
            cryptoki::error::Error::Pkcs11(rv, _) => rv,
            other => panic!("C_Initialize: {other}"),
        })
}

#[test]
fn pin_min_len_is_configurable_and_reported() {
    const TEST: &str = "pin_min_len_is_configurable_and_reported";
    if skip_unless_ferrohsm(TEST) {
        return;
    }
    match child_phase(TEST).as_deref() {
        None => run_steps(
            TEST,
            &["default", "four", "default-again", "bad"].map(Step::Phase),
        ),
        Some("default") => {
            let token = Token::new();
            let info = token.p11.get_token_info(token.slot).unwrap();
            assert_eq!(info.min_pin_length(), 6, "ulMinPinLen by default");
            let session = token.rw();
            session.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
            expect_rv(session.init_pin(&pin("12345")), RvError::PinLenRange);
            session.init_pin(&pin("123456")).expect("six characters");
        }
        Some("four") => {
            write_config("pin_min_len = 4\n");
            let token = Token::existing();
            let info = token.p11.get_token_info(token.slot).unwrap();
            assert_eq!(info.min_pin_length(), 4, "ulMinPinLen as configured");
            let session = token.rw();
            session.login(UserType::User, Some(&pin("123456"))).unwrap();
            expect_rv(
                session.set_pin(&pin("123456"), &pin("123")),
                RvError::PinLenRange,
            );
            session
                .set_pin(&pin("123456"), &pin("1234"))
                .expect("four characters");
        }
        Some("default-again") => {
            write_config("");
            // A PIN set under a lower minimum still logs in; new ones need six.
            let token = Token::existing();
            let session = token.rw();
            session
                .login(UserType::User, Some(&pin("1234")))
                .expect("old short PIN");
            expect_rv(
                session.set_pin(&pin("1234"), &pin("4321")),
                RvError::PinLenRange,
            );
        }
        Some("bad") => {
            for bad in ["3", "0", "256", "-6", "\"6\""] {
                write_config(&format!("pin_min_len = {bad}\n"));
                assert_eq!(
                    initialize_rv().err(),
                    Some(RvError::FunctionFailed),
                    "pin_min_len = {bad}"
                );
            }
        }
        Some(other) => panic!("unknown phase {other}"),
    }
}

#[test]
fn host_secret_file_is_needed_for_pins_set_with_it() {
    const TEST: &str = "host_secret_file_is_needed_for_pins_set_with_it";
    if skip_unless_ferrohsm(TEST) {
        return;
    }
    match child_phase(TEST).as_deref() {
        None => {
            let sandbox = Sandbox::new();
            std::fs::write(sandbox.path().join("host.key"), [0x5au8; 32]).unwrap();
            std::fs::write(sandbox.path().join("other.key"), [0xa5u8; 32]).unwrap();
            std::fs::write(sandbox.path().join("short.key"), [1u8; 16]).unwrap();
            std::fs::write(sandbox.token_dir().join("inside.key"), [2u8; 32]).unwrap();
            for phase in ["setup", "without", "other", "bad", "with"] {
                sandbox.run(TEST, phase);
            }
        }
        Some("setup") => {
            write_config("host_secret_file = \"host.key\"\n");
            Token::new().user();
        }
        Some("without") => {
            // The module opens, the token is listed, its PIN cannot be checked: a clear
            // error, and no attempt spent.
            write_config("");
            let token = Token::existing();
            expect_rv(
                token.rw().login(UserType::User, Some(&pin(USER_PIN))),
                RvError::DeviceError,
            );
            assert_eq!(user_flags(&token), (false, false), "no attempt counted");
        }
        Some("other") => {
            // Another secret makes another key: the right PIN does not open.
            write_config("host_secret_file = \"other.key\"\n");
            let token = Token::existing();
            expect_rv(
                token.rw().login(UserType::User, Some(&pin(USER_PIN))),
                RvError::PinIncorrect,
            );
        }
        Some("bad") => {
            let inside = sandbox_dir().join("tokens/inside.key");
            for value in [
                "\"missing.key\"".to_string(),
                "\"short.key\"".to_string(),
                format!("{:?}", inside.display().to_string()),
            ] {
                write_config(&format!("host_secret_file = {value}\n"));
                assert_eq!(
                    initialize_rv().err(),
                    Some(RvError::FunctionFailed),
                    "host_secret_file = {value}"
                );
            }
        }
        Some("with") => {
            write_config("host_secret_file = \"host.key\"\n");
            Token::existing().user();
        }
        Some(other) => panic!("unknown phase {other}"),
    }
}

#[test]
fn pin_kdf_cost_is_configurable_and_kept_per_record() {
    const TEST: &str = "pin_kdf_cost_is_configurable_and_kept_per_record";
    if skip_unless_ferrohsm(TEST) {
        return;
    }
    match child_phase(TEST).as_deref() {
        None => {
            let sandbox = Sandbox::new();
            sandbox.run(TEST, "cheap");
            let cost = common::pg::store_sql(
                sandbox.path(),
                "SELECT kdf_memory_kib, kdf_iterations, kdf_parallelism FROM pins WHERE user_type = 1",
            );
            assert_eq!(
                cost.trim(),
                "8192|1|2",
                "the record keeps the cost it was made with"
            );
            sandbox.run(TEST, "default");
            sandbox.run(TEST, "bad");
        }
        Some("cheap") => {
            write_config(
                "pin_kdf_memory_kib = 8192\npin_kdf_iterations = 1\npin_kdf_parallelism = 2\n",
            );
            Token::new();
        }
        Some("default") => {
            // Opened with the default cost configured: the record's own cost is used.
            write_config("");
            Token::existing().user();
        }
        Some("bad") => {
            for bad in [
                "pin_kdf_iterations = 0",
                "pin_kdf_parallelism = 0",
                "pin_kdf_memory_kib = 1",
                "pin_kdf_memory_kib = -1",
            ] {
                write_config(&format!("{bad}\n"));
                assert_eq!(
                    initialize_rv().err(),
                    Some(RvError::FunctionFailed),
                    "{bad}"
                );
            }
        }
        Some(other) => panic!("unknown phase {other}"),
    }
}
