//! Stress: 16 threads in one process, then 4 processes at once (4 threads each), every
//! thread on its own session mixing decrypt, sign, key generation, search, set-attribute and
//! destroy on one token for a bounded time:
//!
//!     FERROHSM_STRESS_SECS=300 cargo test --release --test stress -- --nocapture
//!
//! (`FERROHSM_STRESS_SECS` is the length of each of the two rounds; 10 s by default.)
//! Every call must succeed. Each thread tags what it creates with its own CKA_ID and keeps
//! count; its searches must find exactly its live objects, and at the end a fresh process
//! counts every tag on the token against what the workers reported. A watchdog thread in
//! each worker process fails the run when any thread makes no progress for
//! `FERROHSM_STRESS_WATCHDOG_SECS` (60 s by default): a deadlock, or a lock held for ever.

mod common;

use common::*;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TEST: &str = "threads_and_processes_mix_operations_without_error";
const WORKER_PROCESSES: usize = 4;
const THREADS_ALONE: usize = 16;
const THREADS_PER_PROCESS: usize = 4;

fn env_secs(name: &str, default: u64) -> Duration {
    Duration::from_secs(
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

/// A small deterministic generator: each thread's mix differs, runs are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Per-thread progress, read by the watchdog: the time of the last completed operation
/// (ms since the start) and the operation in progress.
struct Progress {
    last_ms: AtomicU64,
    op: AtomicU64,
}

const OPS: [&str; 7] = [
    "decrypt",
    "sign",
    "keygen AES",
    "keygen SM2",
    "find",
    "set-attribute",
    "destroy",
];

struct Shared {
    rsa_public: ObjectHandle,
    rsa_private: ObjectHandle,
}

fn find_one(session: &Session, label: &str) -> ObjectHandle {
    let found = session
        .find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
        .expect("C_FindObjects");
    assert_eq!(found.len(), 1, "{label}");
    found[0]
}

fn oaep() -> Mechanism<'static> {
    Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
        MechanismType::SHA256,
        PkcsMgfType::MGF1_SHA256,
        PkcsOaepSource::empty(),
    ))
}

fn sm2_keygen() -> Mechanism<'static> {
    Mechanism::VendorDefined(
        cryptoki::mechanism::vendor_defined::VendorDefinedMechanism::new::<()>(
            vendor_mechanism(CKM_SM2_KEY_PAIR_GEN),
            None,
        ),
    )
}

/// One worker thread: its own session, a mix of operations until `deadline`. Returns how
/// many objects carrying its tag it leaves on the token.
fn worker(
    token: &Token,
    shared: &Shared,
    tag: String,
    seed: u64,
    deadline: Instant,
    start: Instant,
    progress: &Progress,
) -> (usize, [u64; OPS.len()]) {
    let session = token.rw();
    let mut rng = Rng(seed | 1);
    let id = Attribute::Id(tag.as_bytes().to_vec());
    let mut mine: Vec<ObjectHandle> = Vec::new();
    let mut serial = 0u64;
    let mut done = [0u64; OPS.len()];
    while Instant::now() < deadline {
        let op = rng.below(OPS.len());
        done[op] += 1;
        progress.op.store(op as u64, Ordering::Relaxed);
        match op {
            0 => {
                let plain = format!("{tag} secret {serial}");
                let cipher = session
                    .encrypt(&oaep(), shared.rsa_public, plain.as_bytes())
                    .expect("C_Encrypt");
                let back = session
                    .decrypt(&oaep(), shared.rsa_private, &cipher)
                    .expect("C_Decrypt");
                assert_eq!(back, plain.as_bytes(), "{tag}: decrypt round trip");
            }
            1 => {
                let data = format!("{tag} message {serial}");
                let mech = Mechanism::Sha256RsaPkcs;
                let sig = session
                    .sign(&mech, shared.rsa_private, data.as_bytes())
                    .expect("C_Sign");
                session
                    .verify(&mech, shared.rsa_public, data.as_bytes(), &sig)
                    .expect("C_Verify");
            }
            2 => {
                let key = session
                    .generate_key(
                        &Mechanism::AesKeyGen,
                        &[
                            Attribute::Token(true),
                            Attribute::ValueLen(16.into()),
                            Attribute::Encrypt(true),
                            Attribute::Label(format!("{tag}-{serial}").into_bytes()),
                            id.clone(),
                        ],
                    )
                    .expect("C_GenerateKey");
                mine.push(key);
            }
            3 => {
                let label = Attribute::Label(format!("{tag}-{serial}").into_bytes());
                let (public, private) = session
                    .generate_key_pair(
                        &sm2_keygen(),
                        &[
                            Attribute::Token(true),
                            Attribute::Verify(true),
                            label.clone(),
                            id.clone(),
                        ],
                        &[
                            Attribute::Token(true),
                            Attribute::Private(true),
                            Attribute::Sign(true),
                            label,
                            id.clone(),
                        ],
                    )
                    .expect("C_GenerateKeyPair SM2");
                mine.extend([public, private]);
            }
            4 => {
                let found = session
                    .find_objects(std::slice::from_ref(&id))
                    .expect("C_FindObjects");
                assert_eq!(
                    found.len(),
                    mine.len(),
                    "{tag}: search finds exactly my objects"
                );
            }
            5 => {
                if let Some(&object) = mine.get(rng.below(mine.len().max(1))) {
                    let label = format!("{tag}-renamed-{serial}").into_bytes();
                    session
                        .update_attributes(object, &[Attribute::Label(label.clone())])
                        .expect("C_SetAttributeValue");
                    let read = session
                        .get_attributes(object, &[AttributeType::Label])
                        .expect("C_GetAttributeValue");
                    assert_eq!(
                        read,
                        vec![Attribute::Label(label)],
                        "{tag}: label read back"
                    );
                }
            }
            _ => {
                if !mine.is_empty() {
                    let object = mine.swap_remove(rng.below(mine.len()));
                    session.destroy_object(object).expect("C_DestroyObject");
                }
            }
        }
        serial += 1;
        progress
            .last_ms
            .store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
    let found = session
        .find_objects(std::slice::from_ref(&id))
        .expect("C_FindObjects");
    assert_eq!(found.len(), mine.len(), "{tag}: final count");
    (mine.len(), done)
}

/// Runs `threads` workers in this process for `duration`, under a watchdog; returns each
/// tag with the number of objects it left.
fn run_workers(process: &str, threads: usize, duration: Duration) -> Vec<(String, usize)> {
    let token = Token::existing();
    let login = token.rw();
    login
        .login(UserType::User, Some(&pin(USER_PIN)))
        .expect("user login");
    let shared = Arc::new(Shared {
        rsa_public: find_one(&login, "stress-rsa-public"),
        rsa_private: find_one(&login, "stress-rsa-private"),
    });
    let start = Instant::now();
    let deadline = start + duration;
    let progress: Arc<Vec<Progress>> = Arc::new(
        (0..threads)
            .map(|_| Progress {
                last_ms: AtomicU64::new(0),
                op: AtomicU64::new(0),
            })
            .collect(),
    );
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let (progress, done) = (progress.clone(), done.clone());
        let limit = env_secs("FERROHSM_STRESS_WATCHDOG_SECS", 60);
        let process = process.to_string();
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                let now = start.elapsed().as_millis() as u64;
                for (i, p) in progress.iter().enumerate() {
                    if now.saturating_sub(p.last_ms.load(Ordering::Relaxed))
                        > limit.as_millis() as u64
                        && !done.load(Ordering::Relaxed)
                    {
                        eprintln!(
                            "WATCHDOG: {process} thread {i} made no progress for {limit:?} in \
                             {}: deadlock?",
                            OPS[p.op.load(Ordering::Relaxed) as usize]
                        );
                        std::process::abort();
                    }
                }
            }
        })
    };
    let results: Vec<(String, usize, [u64; OPS.len()])> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let (token, shared, progress) = (&token, &shared, &progress);
                let tag = format!("stress-{process}-{i}");
                let seed =
                    0x9E37_79B9_7F4A_7C15u64.wrapping_mul(i as u64 + 1) ^ std::process::id() as u64;
                scope.spawn(move || {
                    let (left, ops) = worker(
                        token,
                        shared,
                        tag.clone(),
                        seed,
                        deadline,
                        start,
                        &progress[i],
                    );
                    (tag, left, ops)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a worker thread failed"))
            .collect()
    });
    done.store(true, Ordering::Relaxed);
    watchdog.join().expect("watchdog");
    let mut totals = [0u64; OPS.len()];
    for (_, _, ops) in &results {
        for (total, n) in totals.iter_mut().zip(ops) {
            *total += n;
        }
    }
    let summary: Vec<String> = OPS
        .iter()
        .zip(totals)
        .map(|(op, n)| format!("{op} {n}"))
        .collect();
    println!(
        "stress: {process}: {threads} threads, {} operations in {:.1?}: {}",
        totals.iter().sum::<u64>(),
        start.elapsed(),
        summary.join(", ")
    );
    results
        .into_iter()
        .map(|(tag, left, _)| (tag, left))
        .collect()
}

fn counts_file(process: &str) -> std::path::PathBuf {
    sandbox_dir().join(format!("counts-{process}.txt"))
}

fn save_counts(process: &str, counts: &[(String, usize)]) {
    let text: String = counts.iter().map(|(t, n)| format!("{t} {n}\n")).collect();
    std::fs::write(counts_file(process), text).expect("write counts");
}

/// Waits for a worker process; fails unless it passed; shows its summary line.
fn check_worker(phase: &str, child: std::process::Child) {
    let output = child.wait_with_output().expect("wait for worker");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("test result: ok. 1 passed"),
        "worker {phase} failed ({})\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    // The child's own "test ... " header may share the line.
    for line in stdout
        .lines()
        .filter_map(|l| l.find("stress: ").map(|i| &l[i..]))
    {
        println!("{line}");
    }
}

#[test]
fn threads_and_processes_mix_operations_without_error() {
    let duration = env_secs("FERROHSM_STRESS_SECS", 10);
    match child_phase(TEST).as_deref() {
        Some("setup") => {
            let token = Token::new();
            let session = token.user();
            let (public, private) = rsa_templates(2048, "stress-rsa", true);
            let relabel = |mut t: Vec<Attribute>, label: &str| {
                t.retain(|a| a.attribute_type() != AttributeType::Label);
                t.push(Attribute::Label(label.as_bytes().to_vec()));
                t
            };
            session
                .generate_key_pair(
                    &Mechanism::RsaPkcsKeyPairGen,
                    &relabel(public, "stress-rsa-public"),
                    &relabel(private, "stress-rsa-private"),
                )
                .expect("C_GenerateKeyPair RSA");
        }
        Some("alone") => {
            let counts = run_workers("alone", THREADS_ALONE, duration);
            save_counts("alone", &counts);
        }
        Some(phase) if phase.starts_with("worker") => {
            let counts = run_workers(phase, THREADS_PER_PROCESS, duration);
            save_counts(phase, &counts);
        }
        Some("count") => {
            let token = Token::existing();
            let session = token.user();
            let mut expected = 0;
            for entry in std::fs::read_dir(sandbox_dir()).expect("sandbox") {
                let path = entry.expect("entry").path();
                if !path
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("counts-")
                {
                    continue;
                }
                for line in std::fs::read_to_string(&path).expect("counts").lines() {
                    let (tag, n) = line.split_once(' ').expect("tag count");
                    let n: usize = n.parse().expect("count");
                    let found = session
                        .find_objects(&[Attribute::Id(tag.as_bytes().to_vec())])
                        .expect("C_FindObjects");
                    assert_eq!(found.len(), n, "{tag}: objects left on the token");
                    expected += n;
                }
            }
            let all_keys: usize = [
                ObjectClass::SECRET_KEY,
                ObjectClass::PUBLIC_KEY,
                ObjectClass::PRIVATE_KEY,
            ]
            .into_iter()
            .map(|class| {
                session
                    .find_objects(&[Attribute::Class(class), Attribute::Token(true)])
                    .expect("C_FindObjects")
                    .len()
            })
            .sum();
            assert_eq!(
                all_keys,
                expected + 2,
                "every key is a worker's or the shared pair"
            );
        }
        Some(other) => panic!("unknown phase {other}"),
        None => {
            if !is_ferrohsm() {
                eprintln!("SKIPPED: SM2 key generation is ferrohsm's");
                return;
            }
            let sandbox = Sandbox::new();
            sandbox.run(TEST, "setup");
            let alone = sandbox
                .command(TEST, "alone")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn the 16-thread process");
            check_worker("alone", alone);
            let children: Vec<_> = (0..WORKER_PROCESSES)
                .map(|i| {
                    let phase = format!("worker{i}");
                    let child = sandbox
                        .command(TEST, &phase)
                        .stdout(std::process::Stdio::piped())
                        .stderr(std::process::Stdio::piped())
                        .spawn()
                        .expect("spawn worker process");
                    (phase, child)
                })
                .collect();
            for (phase, child) in children {
                check_worker(&phase, child);
            }
            sandbox.run(TEST, "count");
        }
    }
}
