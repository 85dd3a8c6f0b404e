//! The token store under faults (issue 4): an online backup taken while another process
//! writes and restored after the token directory is lost; several processes with several
//! threads on one token; processes killed with SIGKILL at random points while they create
//! and destroy keys; and processes killed with SIGKILL while they change a PIN (C_SetPIN by
//! the user or the SO, C_InitPIN), after which exactly the old or the new PIN must log in
//! and the token's private key must still decrypt. ferrohsm only: these test its store and
//! its admin binary.
//!
//! Everything random is drawn from a seeded generator, so a failure replays with the same
//! seed (`FERROHSM_FAULT_SEED`, printed on failure). `FERROHSM_KILL_ROUNDS` sets the number
//! of kills during key churn (default 1000, about two minutes in a debug build);
//! `FERROHSM_PIN_KILL_ROUNDS` the number of kills during PIN changes (default 100, a few
//! minutes: each change runs Argon2id once or twice, about 170 ms each at the default cost).

#[macro_use]
mod common;

use common::*;
use cryptoki::error::RvError;
use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki_sys::*;
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const MESSAGE: &[u8] = b"encrypted before the backup";

/// A seeded generator (reproducible runs) for choosing operations and delays.
struct Rng(rand::rngs::StdRng);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(rand::SeedableRng::seed_from_u64(seed))
    }
    fn below(&mut self, n: u64) -> u64 {
        rand::RngExt::random_range(&mut self.0, 0..n)
    }
}

fn seed() -> u64 {
    std::env::var("FERROHSM_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED)
}

fn vendor(mechanism: CK_MECHANISM_TYPE) -> Mechanism<'static> {
    Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(
        vendor_mechanism(mechanism),
        None,
    ))
}

/// A token SM2 key pair labelled `label` (both halves).
fn sm2_token_pair(session: &Session, label: &str) -> (ObjectHandle, ObjectHandle) {
    let public = [
        Attribute::Token(true),
        Attribute::Encrypt(true),
        Attribute::Verify(true),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    let private = [
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Decrypt(true),
        Attribute::Sign(true),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    session
        .generate_key_pair(&vendor(CKM_SM2_KEY_PAIR_GEN), &public, &private)
        .unwrap_or_else(|e| panic!("C_GenerateKeyPair {label}: {e}"))
}

fn find_one(session: &Session, class: ObjectClass, label: &str) -> ObjectHandle {
    let found = session
        .find_objects(&[
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .unwrap_or_else(|e| panic!("C_FindObjects {label}: {e}"));
    assert_eq!(
        found.len(),
        1,
        "{class:?} {label:?} found {} times",
        found.len()
    );
    found[0]
}

/// Signs with the private key and verifies with the public key of the pair `label`.
fn check_sign_verify(session: &Session, label: &str) {
    let private = find_one(session, ObjectClass::PRIVATE_KEY, label);
    let public = find_one(session, ObjectClass::PUBLIC_KEY, label);
    let signature = session
        .sign(&vendor(CKM_SM3_SM2), private, label.as_bytes())
        .unwrap_or_else(|e| panic!("C_Sign {label}: {e}"));
    session
        .verify(&vendor(CKM_SM3_SM2), public, label.as_bytes(), &signature)
        .unwrap_or_else(|e| panic!("C_Verify {label}: {e}"));
}

fn wait_for_file(path: &Path, limit: Duration) {
    let start = Instant::now();
    while !path.exists() {
        assert!(start.elapsed() < limit, "{} did not appear", path.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------------------
// Backup and restore
// ---------------------------------------------------------------------------------------

const BACKUP_TEST: &str = "backup_while_writing_then_restore_decrypts_old_ciphertext";

#[test]
fn backup_while_writing_then_restore_decrypts_old_ciphertext() {
    let phase = child_phase(BACKUP_TEST);
    if !is_ferrohsm() {
        eprintln!("skipped: tests ferrohsm's store and ferrohsm-util");
        return;
    }
    match phase.as_deref() {
        None => {
            let sandbox = Sandbox::new();
            sandbox.run(BACKUP_TEST, "create");
            // A second process keeps writing while the backup is taken.
            let writer = sandbox
                .command(BACKUP_TEST, "writer")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn writer");
            wait_for_file(
                &sandbox.path().join("writer-started"),
                Duration::from_secs(60),
            );
            let backup = sandbox.path().join("token.backup");
            let started = Instant::now();
            let (ok, text) = run_util(
                &sandbox,
                &[
                    "backup",
                    "--token",
                    TOKEN_LABEL,
                    "--out",
                    backup.to_str().unwrap(),
                ],
            );
            assert!(ok, "backup failed: {text}");
            eprintln!("backup took {:?}: {text}", started.elapsed());
            std::fs::write(sandbox.path().join("stop"), b"").unwrap();
            let out = writer.wait_with_output().expect("writer");
            assert!(
                out.status.success(),
                "writer failed:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&backup).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "backup readable by others: {mode:o}");
            let (ok, text) = run_util(
                &sandbox,
                &[
                    "backup",
                    "--token",
                    TOKEN_LABEL,
                    "--out",
                    backup.to_str().unwrap(),
                ],
            );
            assert!(!ok, "backup over an existing file must fail: {text}");

            // Lose the token directory, restore, use the keys in a new process.
            common::pg::lose_store(sandbox.path());
            let (ok, text) = run_util(&sandbox, &["restore", "--in", backup.to_str().unwrap()]);
            assert!(ok, "restore failed: {text}");
            assert!(text.contains("into slot 0"), "same slot id: {text}");
            sandbox.run(BACKUP_TEST, "use");

            // The token is live now: a second restore must not overwrite it by accident.
            let (ok, text) = run_util(&sandbox, &["restore", "--in", backup.to_str().unwrap()]);
            assert!(
                !ok && text.contains("--force"),
                "restore over a live token: {text}"
            );
            sandbox.run(BACKUP_TEST, "after-backup-object");
            let (ok, text) = run_util(
                &sandbox,
                &["restore", "--in", backup.to_str().unwrap(), "--force"],
            );
            assert!(ok, "restore --force failed: {text}");
            sandbox.run(BACKUP_TEST, "use");
            sandbox.run(BACKUP_TEST, "forced-restore-dropped-later-object");
            let (ok, text) = run_util(&sandbox, &["slots"]);
            assert!(ok && text.matches("serial").count() == 1, "{text}");
        }
        Some("create") => {
            let token = Token::new();
            let session = token.user();
            let pair = gen_rsa(&session, 2048, "backed-up", true);
            let ciphertext = session
                .encrypt(&Mechanism::RsaPkcs, pair.public, MESSAGE)
                .expect("encrypt");
            std::fs::write(sandbox_dir().join("ciphertext"), ciphertext).unwrap();
            let serial = token
                .p11
                .get_token_info(token.slot)
                .unwrap()
                .serial_number()
                .to_string();
            std::fs::write(sandbox_dir().join("serial"), serial).unwrap();
        }
        Some("writer") => {
            let token = Token::existing();
            let session = token.user();
            let stop = sandbox_dir().join("stop");
            let mut written = 0u32;
            // Bounded: the parent stops it long before this.
            while !stop.exists() && written < 5000 {
                let label = format!("written-{written}");
                session
                    .create_object(&data_object(
                        &label,
                        label.as_bytes(),
                        true,
                        written.is_multiple_of(2),
                    ))
                    .expect("create while backing up");
                written += 1;
                if written == 5 {
                    std::fs::write(sandbox_dir().join("writer-started"), b"").unwrap();
                }
            }
            eprintln!("writer created {written} objects");
        }
        Some("use") => {
            let token = Token::existing();
            let info = token.p11.get_token_info(token.slot).unwrap();
            let serial = std::fs::read_to_string(sandbox_dir().join("serial")).unwrap();
            assert_eq!(
                info.serial_number(),
                serial,
                "restored token keeps its serial"
            );
            let session = token.user();
            let private = find_one(&session, ObjectClass::PRIVATE_KEY, "backed-up");
            let ciphertext = std::fs::read(sandbox_dir().join("ciphertext")).unwrap();
            let plaintext = session
                .decrypt(&Mechanism::RsaPkcs, private, &ciphertext)
                .expect("restored key decrypts");
            assert_eq!(plaintext, MESSAGE);
            // The snapshot is consistent: the writer's objects in it are a prefix
            // written-0..n, each intact.
            let data = session
                .find_objects(&[Attribute::Class(ObjectClass::DATA)])
                .unwrap();
            let mut numbers = Vec::new();
            for handle in data {
                let label = bytes_attr(&session, handle, AttributeType::Label);
                let value = bytes_attr(&session, handle, AttributeType::Value);
                assert_eq!(label, value, "data object intact");
                let label = String::from_utf8(label).unwrap();
                let n: u32 = label.strip_prefix("written-").unwrap().parse().unwrap();
                numbers.push(n);
            }
            numbers.sort();
            assert!(numbers.len() >= 5, "backup taken after the writer started");
            assert_eq!(numbers, (0..numbers.len() as u32).collect::<Vec<_>>());
            eprintln!("backup holds {} writer objects", numbers.len());
        }
        Some("after-backup-object") => {
            let token = Token::existing();
            token
                .user()
                .create_object(&data_object("after-backup", b"x", true, false))
                .expect("create");
        }
        Some("forced-restore-dropped-later-object") => {
            let token = Token::existing();
            assert!(find_by_label(&token.user(), "after-backup").is_empty());
        }
        Some(other) => panic!("unknown phase {other}"),
    }
}

// ---------------------------------------------------------------------------------------
// Many processes, many threads
// ---------------------------------------------------------------------------------------

const MANY_TEST: &str = "four_processes_two_threads_mixed_operations_all_commit";
const PROCESSES: u32 = 4;
const THREADS: u32 = 2;
const OPS_PER_THREAD: u32 = 400;

/// What one worker thread left on the token: data objects (label -> value) and SM2 key
/// pairs (labels).
#[derive(Default)]
struct Manifest {
    data: BTreeMap<String, Vec<u8>>,
    keys: Vec<String>,
}

fn worker_thread(token: &Token, process: u32, thread: u32) -> Manifest {
    let session = token.rw();
    let mut rng = Rng::new(seed() ^ ((process as u64) << 32) ^ thread as u64);
    let mut manifest = Manifest::default();
    let mut handles: BTreeMap<String, ObjectHandle> = BTreeMap::new();
    let mut pairs: Vec<(String, ObjectHandle, Vec<u8>)> = Vec::new();
    for op in 0..OPS_PER_THREAD {
        let tag = format!("p{process}t{thread}o{op}");
        match rng.below(10) {
            0..=3 => {
                let value = tag.as_bytes().repeat(1 + rng.below(8) as usize);
                let handle = session
                    .create_object(&data_object(&tag, &value, true, op.is_multiple_of(2)))
                    .unwrap_or_else(|e| panic!("{tag}: C_CreateObject: {e}"));
                manifest.data.insert(tag.clone(), value);
                handles.insert(tag, handle);
            }
            4 if !handles.is_empty() => {
                let pick = rng.below(handles.len() as u64) as usize;
                let label = handles.keys().nth(pick).unwrap().clone();
                let handle = handles.remove(&label).unwrap();
                session
                    .destroy_object(handle)
                    .unwrap_or_else(|e| panic!("{tag}: C_DestroyObject {label}: {e}"));
                manifest.data.remove(&label);
            }
            5 | 6 if !handles.is_empty() => {
                let pick = rng.below(handles.len() as u64) as usize;
                let label = handles.keys().nth(pick).unwrap().clone();
                let handle = handles.remove(&label).unwrap();
                let renamed = format!("{tag}-renamed");
                session
                    .update_attributes(handle, &[Attribute::Label(renamed.as_bytes().to_vec())])
                    .unwrap_or_else(|e| panic!("{tag}: C_SetAttributeValue {label}: {e}"));
                let value = manifest.data.remove(&label).unwrap();
                manifest.data.insert(renamed.clone(), value);
                handles.insert(renamed, handle);
            }
            7 => {
                let (public, private) = sm2_token_pair(&session, &tag);
                let ciphertext = session
                    .encrypt(&vendor(CKM_SM2_RAW), public, tag.as_bytes())
                    .unwrap_or_else(|e| panic!("{tag}: C_Encrypt: {e}"));
                manifest.keys.push(tag.clone());
                pairs.push((tag, private, ciphertext));
            }
            _ if !pairs.is_empty() => {
                let (label, private, ciphertext) = &pairs[rng.below(pairs.len() as u64) as usize];
                let plaintext = session
                    .decrypt(&vendor(CKM_SM2_RAW), *private, ciphertext)
                    .unwrap_or_else(|e| panic!("{tag}: C_Decrypt with {label}: {e}"));
                assert_eq!(plaintext, label.as_bytes(), "{tag}: decrypt with {label}");
            }
            _ => {
                // Nothing of ours yet: a search across everything the others committed.
                session
                    .find_objects(&[Attribute::Class(ObjectClass::DATA)])
                    .unwrap_or_else(|e| panic!("{tag}: C_FindObjects: {e}"));
            }
        }
    }
    manifest
}

fn manifest_path(process: u32, thread: u32) -> std::path::PathBuf {
    sandbox_dir().join(format!("manifest-{process}-{thread}"))
}

fn write_manifest(path: &Path, manifest: &Manifest) {
    let mut text = String::new();
    for (label, value) in &manifest.data {
        text.push_str(&format!("data {label} {}\n", hex_encode(value)));
    }
    for label in &manifest.keys {
        text.push_str(&format!("key {label}\n"));
    }
    std::fs::write(path, text).unwrap();
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn four_processes_two_threads_mixed_operations_all_commit() {
    let phase = child_phase(MANY_TEST);
    if !is_ferrohsm() {
        eprintln!("skipped: tests ferrohsm's store");
        return;
    }
    match phase.as_deref() {
        None => {
            let sandbox = Sandbox::new();
            sandbox.run(MANY_TEST, "setup");
            let started = Instant::now();
            let workers: Vec<_> = (0..PROCESSES)
                .map(|p| {
                    sandbox
                        .command(MANY_TEST, "worker")
                        .env("FERROHSM_WORKER", p.to_string())
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .spawn()
                        .expect("spawn worker")
                })
                .collect();
            for (p, worker) in workers.into_iter().enumerate() {
                let out = worker.wait_with_output().expect("worker");
                let stdout = String::from_utf8_lossy(&out.stdout);
                assert!(
                    out.status.success() && stdout.contains("1 passed"),
                    "worker {p} failed:\n{stdout}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            eprintln!(
                "{PROCESSES} processes x {THREADS} threads x {OPS_PER_THREAD} ops took {:?}",
                started.elapsed()
            );
            sandbox.run(MANY_TEST, "verify");
        }
        Some("setup") => {
            Token::new();
        }
        Some("worker") => {
            let process: u32 = std::env::var("FERROHSM_WORKER").unwrap().parse().unwrap();
            let token = Token::existing();
            // The login is per token and process: it stays while this session is open.
            let login = token.user();
            std::thread::scope(|scope| {
                let threads: Vec<_> = (0..THREADS)
                    .map(|t| {
                        let token = &token;
                        scope.spawn(move || (t, worker_thread(token, process, t)))
                    })
                    .collect();
                for thread in threads {
                    let (t, manifest) = thread.join().expect("worker thread");
                    write_manifest(&manifest_path(process, t), &manifest);
                }
            });
            drop(login);
        }
        Some("verify") => {
            let token = Token::existing();
            let session = token.user();
            let (mut data_count, mut key_count) = (0, 0);
            for p in 0..PROCESSES {
                for t in 0..THREADS {
                    let text = std::fs::read_to_string(manifest_path(p, t)).unwrap();
                    for line in text.lines() {
                        let fields: Vec<&str> = line.split(' ').collect();
                        match fields.as_slice() {
                            ["data", label, value] => {
                                let handle = find_one(&session, ObjectClass::DATA, label);
                                let stored = bytes_attr(&session, handle, AttributeType::Value);
                                assert_eq!(hex_encode(&stored), *value, "{label} intact");
                                data_count += 1;
                            }
                            ["key", label] => {
                                check_sign_verify(&session, label);
                                key_count += 1;
                            }
                            _ => panic!("bad manifest line {line:?}"),
                        }
                    }
                }
            }
            let all = session.find_objects(&[]).unwrap();
            assert_eq!(
                all.len(),
                data_count + 2 * key_count,
                "destroyed objects are gone, nothing else appeared"
            );
            eprintln!("verified {data_count} data objects and {key_count} key pairs");
        }
        Some(other) => panic!("unknown phase {other}"),
    }
}

// ---------------------------------------------------------------------------------------
// SIGKILL at random points
// ---------------------------------------------------------------------------------------

const KILL_TEST: &str = "sigkill_during_keygen_and_destroy_loses_no_committed_key";

fn kill_rounds() -> u64 {
    std::env::var("FERROHSM_KILL_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000)
}

/// One line to the parent, flushed before the next PKCS#11 call.
fn report(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

/// A child phase to be SIGKILLed at a chosen moment; its stdout lines (sent with `report`)
/// arrive on a channel, so the parent can time the kill from one of them.
struct Victim {
    child: Child,
    lines: mpsc::Receiver<String>,
    reader: std::thread::JoinHandle<()>,
    seen: Vec<String>,
}

impl Victim {
    fn spawn(command: &mut Command) -> Victim {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child phase");
        let stdout = child.stdout.take().unwrap();
        let (lines_tx, lines) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        Victim {
            child,
            lines,
            reader,
            seen: Vec::new(),
        }
    }

    /// Waits (at most a minute) for a line ending with `marker`; `what` names the round in
    /// the failure message.
    fn wait_for(&mut self, marker: &str, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                // libtest prints its "test ... " prefix without a newline.
                Ok(line) if line.ends_with(marker) => return,
                Ok(line) => self.seen.push(line),
                Err(e) => {
                    let _ = self.child.kill();
                    panic!(
                        "{what}: child never said {marker:?}: {e}; it said {:?}",
                        self.seen
                    );
                }
            }
        }
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL (a no-op if it already exited); its exit status and every line it sent.
    fn kill(mut self) -> (std::process::ExitStatus, Vec<String>) {
        self.child.kill().expect("SIGKILL");
        self.finish()
    }

    /// Waits for it to exit; its exit status and every line it sent.
    fn finish(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let status = self.child.wait().expect("wait");
        self.reader.join().unwrap();
        self.seen.extend(self.lines.try_iter());
        (status, self.seen)
    }
}

#[test]
fn sigkill_during_keygen_and_destroy_loses_no_committed_key() {
    let phase = child_phase(KILL_TEST);
    if !is_ferrohsm() {
        eprintln!("skipped: tests ferrohsm's store");
        return;
    }
    match phase.as_deref() {
        None => {
            let sandbox = Sandbox::new();
            sandbox.run(KILL_TEST, "setup");
            let rounds = kill_rounds();
            let seed = seed();
            let mut rng = Rng::new(seed);
            // label -> still expected (false once a destroy of it started).
            let mut keys: BTreeMap<String, bool> = BTreeMap::new();
            let started = Instant::now();
            let mut killed_before_ready = 0;
            for round in 0..rounds {
                let mut victim = Victim::spawn(
                    sandbox
                        .command(KILL_TEST, "churn")
                        .env("FERROHSM_ROUND", round.to_string())
                        .env("FERROHSM_FAULT_SEED", (seed ^ round).to_string()),
                );
                // Mostly kill while keys are made and destroyed; sometimes during start-up.
                if rng.below(8) == 0 {
                    std::thread::sleep(Duration::from_millis(rng.below(150)));
                    killed_before_ready += 1;
                } else {
                    victim.wait_for("ready", &format!("round {round} (seed {seed})"));
                    std::thread::sleep(Duration::from_millis(rng.below(100)));
                }
                let (status, lines) = victim.kill();
                assert!(
                    !status.success() || lines.iter().any(|l| l.ends_with("done")),
                    "round {round}: child neither killed nor done (seed {seed})"
                );
                for line in lines {
                    if let Some((_, label)) = line.split_once("generated ") {
                        keys.insert(label.to_string(), true);
                    } else if let Some((_, label)) = line.split_once("destroying ") {
                        keys.insert(label.to_string(), false);
                    }
                }
            }
            let expected: Vec<&String> = keys.iter().filter(|(_, v)| **v).map(|(k, _)| k).collect();
            eprintln!(
                "{rounds} kills ({killed_before_ready} during start-up) took {:?}; {} keys reported, {} must be present (seed {seed})",
                started.elapsed(),
                keys.len(),
                expected.len()
            );
            let list: String = expected.iter().map(|k| format!("{k}\n")).collect();
            std::fs::write(sandbox.path().join("expected-keys"), list).unwrap();
            sandbox.run(KILL_TEST, "check");
        }
        Some("setup") => {
            Token::new();
        }
        Some("churn") => {
            let round: u64 = std::env::var("FERROHSM_ROUND").unwrap().parse().unwrap();
            let mut rng = Rng::new(seed());
            let token = Token::existing();
            let session = token.user();
            report("ready");
            let mut mine: Vec<(String, ObjectHandle, ObjectHandle)> = Vec::new();
            // Bounded: the parent kills it within a few dozen keys.
            for i in 0..400 {
                if !mine.is_empty() && rng.below(3) == 0 {
                    let (label, public, private) =
                        mine.swap_remove(rng.below(mine.len() as u64) as usize);
                    report(&format!("destroying {label}"));
                    session.destroy_object(private).expect("destroy private");
                    session.destroy_object(public).expect("destroy public");
                } else {
                    let label = format!("r{round}k{i}");
                    let (public, private) = sm2_token_pair(&session, &label);
                    report(&format!("generated {label}"));
                    mine.push((label, public, private));
                }
            }
            report("done");
        }
        Some("check") => {
            // The store opens cleanly: C_Initialize, the token listed, login.
            let token = Token::existing();
            let session = token.user();
            let expected = std::fs::read_to_string(sandbox_dir().join("expected-keys")).unwrap();
            let mut count = 0;
            for label in expected.lines() {
                check_sign_verify(&session, label);
                count += 1;
            }
            eprintln!("all {count} committed keys present and usable");
        }
        Some(other) => panic!("unknown phase {other}"),
    }
}

// ---------------------------------------------------------------------------------------
// SIGKILL during PIN changes
// ---------------------------------------------------------------------------------------

const PIN_TEST: &str = "sigkill_during_pin_change_leaves_old_or_new_pin";
const PIN_KEY: &str = "pin-change-key";

fn pin_kill_rounds() -> u64 {
    std::env::var("FERROHSM_PIN_KILL_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100)
}

/// The PIN changes a round can make; each one rewraps the token key under a new PIN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum PinChange {
    /// C_SetPIN in a session where nobody is logged in (changes the user PIN).
    UserSetPin,
    /// C_SetPIN by the logged-in user.
    UserSetPinLoggedIn,
    /// C_SetPIN by the logged-in SO (changes the SO PIN).
    SoSetPin,
    /// C_InitPIN by the logged-in SO (replaces the user PIN).
    SoInitPin,
}

const PIN_CHANGES: [PinChange; 4] = [
    PinChange::UserSetPin,
    PinChange::UserSetPinLoggedIn,
    PinChange::SoSetPin,
    PinChange::SoInitPin,
];

impl PinChange {
    fn name(self) -> &'static str {
        match self {
            PinChange::UserSetPin => "user-set-pin",
            PinChange::UserSetPinLoggedIn => "user-set-pin-logged-in",
            PinChange::SoSetPin => "so-set-pin",
            PinChange::SoInitPin => "so-init-pin",
        }
    }

    fn parse(name: &str) -> PinChange {
        *PIN_CHANGES
            .iter()
            .find(|c| c.name() == name)
            .unwrap_or_else(|| panic!("unknown PIN change {name}"))
    }

    /// Whether it changes the SO PIN (else the user PIN).
    fn changes_so_pin(self) -> bool {
        self == PinChange::SoSetPin
    }

    /// Store writes the call makes before the one that stores the new PIN: C_SetPIN
    /// checks the old PIN first, which counts the attempt and then resets the counter.
    fn writes_before_store(self) -> usize {
        match self {
            PinChange::SoInitPin => 0,
            _ => 2,
        }
    }
}

/// The PINs the parent believes current.
#[derive(Clone)]
struct Pins {
    user: String,
    so: String,
}

impl Pins {
    fn get(&self, so: bool) -> &str {
        if so {
            &self.so
        } else {
            &self.user
        }
    }

    fn set(&mut self, so: bool, pin: String) {
        if so {
            self.so = pin;
        } else {
            self.user = pin;
        }
    }
}

/// Starts the `change` phase: `change` from the current `pins` to `new`.
fn spawn_pin_change(sandbox: &Sandbox, change: PinChange, pins: &Pins, new: &str) -> Victim {
    Victim::spawn(
        sandbox
            .command(PIN_TEST, "change")
            .env("FERROHSM_PIN_CHANGE", change.name())
            .env("FERROHSM_OLD_PIN", pins.get(change.changes_so_pin()))
            .env("FERROHSM_SO_PIN", &pins.so)
            .env("FERROHSM_NEW_PIN", new),
    )
}

/// The write-ahead log of the token's store. A commit appends its frames there (or
/// rewrites them from the start, after a checkpoint), so a change of its size or time marks
/// the store write of a PIN change.
fn wal_path(sandbox: &Sandbox) -> std::path::PathBuf {
    let mut stores = std::fs::read_dir(sandbox.token_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "db"));
    let store = stores.next().expect("the token's store file");
    assert!(stores.next().is_none(), "one token store");
    let mut wal = store.into_os_string();
    wal.push("-wal");
    wal.into()
}

fn wal_state(wal: &Path) -> Option<(u64, std::time::SystemTime)> {
    let meta = std::fs::metadata(wal).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

/// Waits until the WAL changes (the commit is being written) or the child exits.
fn wait_for_wal_write(victim: &mut Victim, wal: &Path, what: &str) {
    let before = wal_state(wal);
    let deadline = Instant::now() + Duration::from_secs(60);
    while wal_state(wal) == before && victim.running() {
        assert!(
            Instant::now() < deadline,
            "{what}: no store write in a minute"
        );
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// Runs the `check` phase: for the user (and the SO when `so` is given) exactly one of two
/// candidate PINs logs in, tried in the given order; the user's private key decrypts.
/// Returns the user's PIN and the SO's (if checked) that logged in. `what` names the round
/// (and seed) in a failure.
fn check_pins(
    sandbox: &Sandbox,
    what: &str,
    user: [&str; 2],
    so: Option<[&str; 2]>,
) -> (String, Option<String>) {
    let mut candidates = format!("user {} {}\n", user[0], user[1]);
    if let Some(so) = so {
        candidates.push_str(&format!("so {} {}\n", so[0], so[1]));
    }
    std::fs::write(sandbox.path().join("pin-candidates"), candidates).unwrap();
    let found = sandbox.path().join("pin-found");
    let _ = std::fs::remove_file(&found);
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sandbox.run(PIN_TEST, "check");
    }));
    if let Err(payload) = run {
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .unwrap_or("check failed");
        panic!("{what}: {message}");
    }
    let text = std::fs::read_to_string(found).unwrap();
    let mut user_pin = None;
    let mut so_pin = None;
    for line in text.lines() {
        match line.split_once(' ') {
            Some(("user", pin)) => user_pin = Some(pin.to_string()),
            Some(("so", pin)) => so_pin = Some(pin.to_string()),
            _ => panic!("bad pin-found line {line:?}"),
        }
    }
    (user_pin.expect("user PIN checked"), so_pin)
}

/// Logs `user` in with exactly one of `candidates` (the other gives CKR_PIN_INCORRECT) and
/// returns the one that worked, leaving the session logged in.
///
/// The first candidate is tried first. When it works, the second is tried (after a logout)
/// and must fail, and the first logs in again: a success resets the retry counter, so the
/// counter never exceeds one and the PIN never locks however many rounds run.
fn login_with_one_of<'a>(session: &Session, user: UserType, candidates: [&'a str; 2]) -> &'a str {
    let attempt = |pin_text: &str| session.login(user, Some(&pin(pin_text)));
    match attempt(candidates[0]) {
        Ok(()) => {
            session.logout().expect("C_Logout");
            let other = rv_of(attempt(candidates[1]));
            assert_eq!(
                other,
                RvError::PinIncorrect,
                "{user:?}: both the old and the new PIN log in"
            );
            attempt(candidates[0]).expect("the working PIN logs in again");
            candidates[0]
        }
        Err(cryptoki::error::Error::Pkcs11(RvError::PinIncorrect, _)) => {
            match attempt(candidates[1]) {
                Ok(()) => candidates[1],
                Err(e) => panic!("{user:?}: neither the old nor the new PIN logs in: {e}"),
            }
        }
        Err(e) => panic!("{user:?}: C_Login: {e}"),
    }
}

#[test]
fn sigkill_during_pin_change_leaves_old_or_new_pin() {
    let phase = child_phase(PIN_TEST);
    if !is_ferrohsm() {
        eprintln!("skipped: tests ferrohsm's store");
        return;
    }
    if common::on_postgres() {
        // Kills are timed by the SQLite WAL file's writes.
        eprintln!("skipped: a kill timed on the token file");
        return;
    }
    match phase.as_deref() {
        None => {
            let sandbox = Sandbox::new();
            let seed = seed();
            eprintln!("FERROHSM_FAULT_SEED={seed}");
            sandbox.run(PIN_TEST, "setup");
            let mut pins = Pins {
                user: USER_PIN.to_string(),
                so: SO_PIN.to_string(),
            };
            let mut rng = Rng::new(seed);

            // How long each change takes when nothing kills it (the longer of two runs: the
            // machine is shared): timed kills are spread over that and half as much again,
            // so they land before, during and after the store write at its end.
            let mut durations: BTreeMap<PinChange, Duration> = BTreeMap::new();
            for (sample, change) in PIN_CHANGES.iter().chain(PIN_CHANGES.iter()).enumerate() {
                let new = format!("measure-{sample}");
                let (status, lines) = spawn_pin_change(&sandbox, *change, &pins, &new).finish();
                let micros: u64 = lines
                    .iter()
                    .find_map(|l| l.strip_prefix("returned "))
                    .unwrap_or_else(|| panic!("measuring {change:?}: {status}: {lines:?}"))
                    .parse()
                    .unwrap();
                let longest = durations.entry(*change).or_default();
                *longest = (*longest).max(Duration::from_micros(micros));
                assert!(
                    status.success(),
                    "measuring {change:?}: {status}: {lines:?}"
                );
                pins.set(change.changes_so_pin(), new);
            }
            eprintln!("uninterrupted PIN changes: {durations:?}");
            let found = check_pins(
                &sandbox,
                &format!("after the measured changes (FERROHSM_FAULT_SEED={seed})"),
                ["not-the-user-pin", &pins.user],
                Some(["not-the-so-pin", &pins.so]),
            );
            assert_eq!(
                found,
                (pins.user.clone(), Some(pins.so.clone())),
                "the measured changes took effect"
            );

            let rounds = pin_kill_rounds();
            let wal = wal_path(&sandbox);
            let started = Instant::now();
            // (kept old PIN, new PIN took effect but the call was not seen returning,
            // new PIN after the call returned)
            let mut kept_old = 0u64;
            let mut new_unreturned = 0u64;
            let mut new_returned = 0u64;
            let mut per_change: BTreeMap<PinChange, (u64, u64)> = BTreeMap::new();
            // Kills at the store write: (old kept, new took effect).
            let mut at_write_counts = (0u64, 0u64);
            for round in 0..rounds {
                let what = format!("round {round} (FERROHSM_FAULT_SEED={seed})");
                let change = match rng.below(8) {
                    0..=2 => PinChange::UserSetPin,
                    3 | 4 => PinChange::UserSetPinLoggedIn,
                    5 | 6 => PinChange::SoSetPin,
                    _ => PinChange::SoInitPin,
                };
                let so = change.changes_so_pin();
                let new = format!("pin-{round}-{}", rng.below(1_000_000));
                let full = durations[&change].as_micros() as u64;
                // One round in three kills within 2 ms of the PIN's store write showing in the WAL:
                // mostly after the commit but before the call returns, a window of a few ms
                // that the timed kills (over the whole call) rarely hit.
                let at_write = rng.below(3) == 0;
                let delay = rng.below(full * 3 / 2);
                let after_write = rng.below(2000);
                let mut victim = spawn_pin_change(&sandbox, change, &pins, &new);
                victim.wait_for("calling", &what);
                if at_write {
                    for _ in 0..=change.writes_before_store() {
                        wait_for_wal_write(&mut victim, &wal, &what);
                    }
                    std::thread::sleep(Duration::from_micros(after_write));
                } else {
                    std::thread::sleep(Duration::from_micros(delay));
                }
                let (_, lines) = victim.kill();
                let returned = lines.iter().any(|l| l.starts_with("returned "));

                // The unlikely PIN first: a miss then costs one attempt, which the other
                // PIN's success resets (see login_with_one_of).
                let old = pins.get(so).to_string();
                let order = if returned || (!at_write && delay >= full) {
                    [old.as_str(), new.as_str()]
                } else {
                    [new.as_str(), old.as_str()]
                };
                let (user_pin, so_pin) = if so {
                    check_pins(
                        &sandbox,
                        &what,
                        ["not-the-user-pin", &pins.user],
                        Some(order),
                    )
                } else {
                    check_pins(&sandbox, &what, order, None)
                };
                let took_new = if so {
                    so_pin.unwrap()
                } else {
                    user_pin.clone()
                } == new;
                assert!(
                    took_new || !returned,
                    "{what}: {change:?} returned CKR_OK but the old PIN is still the one"
                );
                if so {
                    assert_eq!(
                        user_pin, pins.user,
                        "{what}: the user PIN changed in an SO change"
                    );
                }
                if at_write {
                    if took_new {
                        at_write_counts.1 += 1;
                    } else {
                        at_write_counts.0 += 1;
                    }
                }
                let counts = per_change.entry(change).or_default();
                if took_new {
                    pins.set(so, new);
                    counts.1 += 1;
                    if returned {
                        new_returned += 1;
                    } else {
                        new_unreturned += 1;
                    }
                } else {
                    counts.0 += 1;
                    kept_old += 1;
                }
            }
            eprintln!(
                "{rounds} kills during PIN changes took {:?}: old PIN kept {kept_old}, new PIN \
                 took effect {} ({new_unreturned} of them before the call was seen returning); \
                 per change (old, new): {per_change:?}; of the kills at the store write \
                 (old, new): {at_write_counts:?}; FERROHSM_FAULT_SEED={seed}",
                started.elapsed(),
                new_unreturned + new_returned,
            );
            assert!(
                kept_old > 0 && new_unreturned + new_returned > 0,
                "the kills never landed on both sides of the store write: widen the delays \
                 (FERROHSM_FAULT_SEED={seed})"
            );
        }
        Some("setup") => {
            let token = Token::new();
            let session = token.user();
            let (public, _) = sm2_token_pair(&session, PIN_KEY);
            let ciphertext = session
                .encrypt(&vendor(CKM_SM2_RAW), public, MESSAGE)
                .expect("C_Encrypt");
            std::fs::write(sandbox_dir().join("ciphertext"), ciphertext).unwrap();
        }
        Some("change") => {
            let var = |name: &str| std::env::var(name).unwrap();
            let change = PinChange::parse(&var("FERROHSM_PIN_CHANGE"));
            let (old, new, so) = (
                var("FERROHSM_OLD_PIN"),
                var("FERROHSM_NEW_PIN"),
                var("FERROHSM_SO_PIN"),
            );
            let token = Token::existing();
            let session = token.rw();
            match change {
                PinChange::UserSetPin => {}
                PinChange::UserSetPinLoggedIn => session
                    .login(UserType::User, Some(&pin(&old)))
                    .expect("user login"),
                PinChange::SoSetPin | PinChange::SoInitPin => session
                    .login(UserType::So, Some(&pin(&so)))
                    .expect("SO login"),
            }
            report("calling");
            let started = Instant::now();
            match change {
                PinChange::SoInitPin => session.init_pin(&pin(&new)).expect("C_InitPIN"),
                _ => session.set_pin(&pin(&old), &pin(&new)).expect("C_SetPIN"),
            }
            report(&format!("returned {}", started.elapsed().as_micros()));
        }
        Some("check") => {
            // A fresh process: the store opens cleanly after the kill.
            let token = Token::existing();
            let candidates = std::fs::read_to_string(sandbox_dir().join("pin-candidates")).unwrap();
            let ciphertext = std::fs::read(sandbox_dir().join("ciphertext")).unwrap();
            let mut found = String::new();
            for line in candidates.lines() {
                let fields: Vec<&str> = line.split(' ').collect();
                let (user, candidates) = match fields.as_slice() {
                    ["user", a, b] => (UserType::User, [*a, *b]),
                    ["so", a, b] => (UserType::So, [*a, *b]),
                    _ => panic!("bad candidate line {line:?}"),
                };
                let session = token.rw();
                let working = login_with_one_of(&session, user, candidates);
                if matches!(user, UserType::User) {
                    let private = find_one(&session, ObjectClass::PRIVATE_KEY, PIN_KEY);
                    let plaintext = session
                        .decrypt(&vendor(CKM_SM2_RAW), private, &ciphertext)
                        .expect("the private key decrypts after the PIN change");
                    assert_eq!(plaintext, MESSAGE);
                }
                session.logout().expect("C_Logout");
                let info = token.p11.get_token_info(token.slot).unwrap();
                assert!(
                    !info.user_pin_locked() && !info.so_pin_locked(),
                    "a PIN got locked"
                );
                found.push_str(&format!("{} {working}\n", fields[0]));
            }
            std::fs::write(sandbox_dir().join("pin-found"), found).unwrap();
        }
        Some(other) => panic!("unknown phase {other}"),
    }
}
