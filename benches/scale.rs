//! Scale through the C ABI (issue 4): a token holding 10 000 objects against the targets
//! `C_Initialize` + first `C_GetSlotList` under 200 ms, `C_Login` within 20% of an empty
//! token's, one object found by label or id under 50 us, and the store's size per RSA-2048
//! key pair.
//!
//! `cargo bench --bench scale` (builds the release module first). `FERROHSM_SCALE_PAIRS`
//! sets the number of key pairs (default 5 000, i.e. 10 000 objects). SoftHSMv2, when
//! installed, is measured the same way side by side, with `FERROHSM_SCALE_SOFTHSM_PAIRS`
//! pairs (default 1 000; 0 skips it). Every figure is taken in a fresh process (this binary
//! started again with a phase argument), so C_Initialize starts cold while the page cache
//! is warm. Figures only: no assertion depends on speed. With `FERROHSM_PG_URL` set, the
//! same module is measured a second time with its tokens in that PostgreSQL database
//! (column `ferrohsm-pg`; its store size is the server's business and shows as 0).

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const SO_PIN: &str = "scale-so-pin";
const USER_PIN: &str = "scale-user-pin";
const TOKEN_LABEL: &str = "scale";
const MESSAGE: &[u8] = b"scale benchmark";
/// The file in a store's directory holding `MESSAGE` encrypted to the keys.
const CIPHERTEXT: &str = "ciphertext";
/// The argument that makes this binary run one phase instead of the whole benchmark.
const PHASE: &str = "scale-phase";
/// Processes per cold-start figure and per login figure (medians across them).
const INIT_RUNS: usize = 10;
const LOGIN_RUNS: usize = 11;
/// Searches timed per process and kind: this many, or as many as fit in `SEARCH_TIME`
/// (SoftHSMv2 takes milliseconds per search).
const SEARCHES: usize = 5_000;
const SEARCH_TIME: Duration = Duration::from_secs(2);

/// The secret half of an RSA key, copied from one generated key into every created one.
const PRIVATE_PARTS: [AttributeType; 6] = [
    AttributeType::PrivateExponent,
    AttributeType::Prime1,
    AttributeType::Prime2,
    AttributeType::Exponent1,
    AttributeType::Exponent2,
    AttributeType::Coefficient,
];

fn label(i: usize, half: &str) -> Vec<u8> {
    format!("scale key {i:05} {half}").into_bytes()
}

fn id(i: usize) -> Vec<u8> {
    (i as u32).to_be_bytes().to_vec()
}

/// One measured value, read back by the parent from the child's stdout.
fn report(name: &str, value: Duration) {
    println!("= {name} {}", value.as_nanos());
}

fn median(values: &mut [u128]) -> u128 {
    values.sort_unstable();
    values[values.len() / 2]
}

fn load(module: &Path) -> Pkcs11 {
    let p = Pkcs11::new(module).unwrap();
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    p
}

fn scale_slot(p: &Pkcs11) -> Slot {
    *p.get_slots_with_token()
        .unwrap()
        .iter()
        .find(|s| p.get_token_info(**s).unwrap().label() == TOKEN_LABEL)
        .expect("the scale token")
}

/// Initialises the token, sets the user PIN and creates `pairs` RSA-2048 key pairs as
/// token objects: one key is generated (extractable, in the session) and its material is
/// imported again and again with C_CreateObject under distinct labels and ids, as sensitive
/// private keys. Generating thousands of RSA keys would take hours.
fn fill(module: &Path, pairs: usize, dir: &Path) {
    let p = load(module);
    let spare = *p
        .get_all_slots()
        .unwrap()
        .iter()
        .find(|s| !p.get_token_info(**s).unwrap().token_initialized())
        .unwrap();
    p.init_token(spare, &AuthPin::new(SO_PIN.into()), TOKEN_LABEL)
        .unwrap();
    let session = p.open_rw_session(scale_slot(&p)).unwrap();
    session
        .login(UserType::So, Some(&AuthPin::new(SO_PIN.into())))
        .unwrap();
    session.init_pin(&AuthPin::new(USER_PIN.into())).unwrap();
    session.logout().unwrap();
    session
        .login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))
        .unwrap();
    if pairs > 0 {
        let ciphertext = create_pairs(&session, pairs);
        std::fs::write(dir.join(CIPHERTEXT), ciphertext).unwrap();
    }
    session.logout().unwrap();
    drop(session);
    p.finalize().unwrap();
}

/// Reports the time of the C_CreateObject calls; returns `MESSAGE` encrypted (PKCS#1 v1.5)
/// to the keys' common public key.
fn create_pairs(session: &Session, pairs: usize) -> Vec<u8> {
    let (public, private) = session
        .generate_key_pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &[Attribute::Token(false), Attribute::ModulusBits(2048.into())],
            &[
                Attribute::Token(false),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
            ],
        )
        .unwrap();
    let public_parts = session
        .get_attributes(
            public,
            &[AttributeType::Modulus, AttributeType::PublicExponent],
        )
        .unwrap();
    let private_parts = session.get_attributes(private, &PRIVATE_PARTS).unwrap();
    assert_eq!(
        private_parts.len(),
        PRIVATE_PARTS.len(),
        "key material readable"
    );
    let started = Instant::now();
    for i in 0..pairs {
        let mut template = vec![
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(KeyType::RSA),
            Attribute::Token(true),
            Attribute::Label(label(i, "public")),
            Attribute::Id(id(i)),
            Attribute::Encrypt(true),
            Attribute::Verify(true),
        ];
        template.extend(public_parts.iter().cloned());
        session.create_object(&template).unwrap();
        let mut template = vec![
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(KeyType::RSA),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Label(label(i, "private")),
            Attribute::Id(id(i)),
            Attribute::Decrypt(true),
            Attribute::Sign(true),
        ];
        template.extend(public_parts.iter().cloned());
        template.extend(private_parts.iter().cloned());
        session.create_object(&template).unwrap();
    }
    report("fill", started.elapsed());
    session
        .encrypt(&Mechanism::RsaPkcs, public, MESSAGE)
        .unwrap()
}

/// A cold start: loading the module, C_Initialize and the first C_GetSlotList.
fn cold_start(module: &Path) {
    let started = Instant::now();
    let p = Pkcs11::new(module).unwrap();
    let loaded = started.elapsed();
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let slots = p.get_slots_with_token().unwrap();
    let total = started.elapsed();
    assert!(!slots.is_empty());
    report("init", total - loaded);
    report("load_init", total);
}

/// C_Login on a freshly started module, then (on a filled token) searches and the first
/// use of a private key.
fn login(module: &Path, pairs: usize, dir: &Path) {
    let p = load(module);
    let session = p.open_ro_session(scale_slot(&p)).unwrap();
    let started = Instant::now();
    session
        .login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))
        .unwrap();
    report("login", started.elapsed());
    if pairs == 0 {
        return;
    }

    let target = pairs / 2;
    let by_label = |i| [Attribute::Label(label(i, "private"))];
    let by_id = |i| {
        [
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Id(id(i)),
        ]
    };
    let started = Instant::now();
    let found = session.find_objects(&by_label(target)).unwrap();
    report("first_find", started.elapsed());
    assert_eq!(found.len(), 1);
    let private = found[0];

    // Steady state: C_FindObjectsInit + C_FindObjects + C_FindObjectsFinal per search,
    // each for another key (templates built before timing).
    for (name, templates) in [
        (
            "find_label",
            (0..SEARCHES)
                .map(|k| by_label(k * 7_919 % pairs).to_vec())
                .collect::<Vec<_>>(),
        ),
        (
            "find_id",
            (0..SEARCHES)
                .map(|k| by_id(k * 7_919 % pairs).to_vec())
                .collect(),
        ),
    ] {
        let mut times = Vec::with_capacity(SEARCHES);
        let all = Instant::now();
        for template in templates.iter().take_while(|_| all.elapsed() < SEARCH_TIME) {
            let started = Instant::now();
            let found = session.find_objects(template).unwrap();
            times.push(started.elapsed().as_nanos());
            assert_eq!(found.len(), 1);
        }
        report(name, Duration::from_nanos(median(&mut times) as u64));
    }

    // The process's first private-key operation: key load (unseal, parse) plus whatever
    // the module starts on first use (e.g. its random generator for blinding); then
    // another key's first use (key load only); then a loaded key.
    let ciphertext = std::fs::read(dir.join(CIPHERTEXT)).unwrap();
    let decrypt = |key| {
        let started = Instant::now();
        let clear = session
            .decrypt(&Mechanism::RsaPkcs, key, &ciphertext)
            .unwrap();
        let elapsed = started.elapsed();
        assert_eq!(clear, MESSAGE);
        elapsed
    };
    report("first_decrypt", decrypt(private));
    let other = session.find_objects(&by_label(target + 1)).unwrap()[0];
    report("other_key_decrypt", decrypt(other));
    report("next_decrypt", decrypt(private));
}

fn run_phase(args: &[String]) {
    let [phase, module, pairs, dir] = args else {
        panic!("usage: {PHASE} fill|init|login MODULE PAIRS STORE-DIR");
    };
    let dir = Path::new(dir);
    let module = Path::new(module);
    let pairs: usize = pairs.parse().unwrap();
    match phase.as_str() {
        "fill" => fill(module, pairs, dir),
        "init" => cold_start(module),
        "login" => login(module, pairs, dir),
        other => panic!("unknown phase {other}"),
    }
}

/// A module under test and how a child process points it at a token directory.
struct Module {
    name: &'static str,
    path: PathBuf,
    /// The environment variable naming its config file, and the file's text.
    conf_var: &'static str,
    conf: fn(&Path) -> String,
}

/// A token directory with its config file, measured by child processes.
struct Store<'m> {
    module: &'m Module,
    dir: PathBuf,
    pairs: usize,
    figures: HashMap<String, Vec<u128>>,
}

impl<'m> Store<'m> {
    fn new(module: &'m Module, root: &Path, name: &str, pairs: usize) -> Store<'m> {
        let dir = root.join(format!("{}-{name}", module.name));
        std::fs::create_dir_all(dir.join("tokens")).unwrap();
        std::fs::write(dir.join("module.conf"), (module.conf)(&dir.join("tokens"))).unwrap();
        Store {
            module,
            dir,
            pairs,
            figures: HashMap::new(),
        }
    }

    /// Runs one phase in a new process and collects what it reports.
    fn phase(&mut self, phase: &str) {
        let output = Command::new(std::env::current_exe().unwrap())
            .args([PHASE, phase])
            .arg(&self.module.path)
            .arg(self.pairs.to_string())
            .arg(&self.dir)
            .env(self.module.conf_var, self.dir.join("module.conf"))
            .output()
            .expect("bench child");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{} phase {phase} failed: {stdout}{}",
            self.module.name,
            String::from_utf8_lossy(&output.stderr)
        );
        for line in stdout.lines() {
            if let Some((name, nanos)) = line.strip_prefix("= ").and_then(|l| l.split_once(' ')) {
                self.figures
                    .entry(name.to_string())
                    .or_default()
                    .push(nanos.parse().unwrap());
            }
        }
    }

    /// The median of a reported figure, in milliseconds.
    fn ms(&mut self, name: &str) -> f64 {
        median(self.figures.get_mut(name).unwrap()) as f64 / 1e6
    }

    /// Bytes of every file in the token directory (for ferrohsm the database, its WAL and
    /// shared memory if any, the slot map; for SoftHSMv2 one file per object). Taken after
    /// a clean C_Finalize: a process that exits without one leaves SQLite's -shm behind.
    fn size(&self) -> u64 {
        fn walk(dir: &Path) -> u64 {
            std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap())
                .map(|e| {
                    let meta = e.metadata().unwrap();
                    if meta.is_dir() {
                        walk(&e.path())
                    } else {
                        meta.len()
                    }
                })
                .sum()
        }
        walk(&self.dir.join("tokens"))
    }
}

/// The figures of one module: a filled token and an empty one, each measured by fresh
/// processes.
struct Measured<'m> {
    full: Store<'m>,
    empty: Store<'m>,
    /// Bytes on disk after the fill's C_Finalize.
    full_size: u64,
    empty_size: u64,
}

fn measure<'m>(module: &'m Module, root: &Path, pairs: usize) -> Measured<'m> {
    let mut full = Store::new(module, root, "full", pairs);
    let mut empty = Store::new(module, root, "empty", 0);
    println!(
        "scale: {}: filling a token with {pairs} RSA-2048 key pairs ...",
        module.name
    );
    full.phase("fill");
    empty.phase("fill");
    let (full_size, empty_size) = (full.size(), empty.size());
    for _ in 0..INIT_RUNS {
        full.phase("init");
        empty.phase("init");
    }
    for _ in 0..LOGIN_RUNS {
        full.phase("login");
        empty.phase("login");
    }
    Measured {
        full,
        empty,
        full_size,
        empty_size,
    }
}

/// One row of the table: a figure for every module, and its target.
fn row(name: &str, target: &str, measured: &mut [Measured], figure: fn(&mut Measured) -> String) {
    let values: String = measured
        .iter_mut()
        .map(|m| format!("{:>16}", figure(m)))
        .collect();
    println!("{name:<44}{values}   {target}");
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(PHASE) {
        return run_phase(&args[1..]);
    }
    // `cargo test --all-targets` runs this binary too (without --bench): nothing to measure.
    if !args.iter().any(|a| a == "--bench") {
        println!("scale: run with `cargo bench --bench scale`");
        return;
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--lib"])
        .current_dir(&manifest)
        .status()
        .expect("cargo build");
    assert!(status.success());
    let count = |var: &str, default: usize| {
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let pairs = count("FERROHSM_SCALE_PAIRS", 5_000);
    let mut modules = vec![(
        Module {
            name: "ferrohsm",
            path: manifest.join("target/release/libferrohsm.so"),
            conf_var: "FERROHSM_CONF",
            conf: |tokens| format!("token_dir = {tokens:?}\n"),
        },
        pairs,
    )];
    // The same module with its tokens in PostgreSQL (issue 13), when FERROHSM_PG_URL names
    // a server (e.g. one .ci/start-postgres started): each store in a schema of its own.
    if std::env::var_os("FERROHSM_PG_URL").is_some() {
        modules.push((
            Module {
                name: "ferrohsm-pg",
                path: manifest.join("target/release/libferrohsm.so"),
                conf_var: "FERROHSM_CONF",
                conf: |tokens| {
                    use std::hash::{Hash, Hasher};
                    let mut hasher = std::collections::hash_map::DefaultHasher::new();
                    tokens.hash(&mut hasher);
                    format!(
                        "token_dir = {tokens:?}\nstore = {:?}\nstore_schema = \"bench_{:x}\"\n",
                        std::env::var("FERROHSM_PG_URL").unwrap(),
                        hasher.finish()
                    )
                },
            },
            pairs,
        ));
    }
    let softhsm = PathBuf::from("/usr/lib/softhsm/libsofthsm2.so");
    // SoftHSMv2 keeps one file per object and creating one took about 12 ms with 400 on
    // the token here: 10 000 would take minutes, so it gets fewer by default.
    let softhsm_pairs = count("FERROHSM_SCALE_SOFTHSM_PAIRS", pairs.min(1_000));
    if softhsm.exists() && softhsm_pairs > 0 {
        modules.push((
            Module {
                name: "softhsm2",
                path: softhsm,
                conf_var: "SOFTHSM2_CONF",
                conf: |tokens| {
                    format!(
                        "directories.tokendir = {}\nobjectstore.backend = file\n",
                        tokens.display()
                    )
                },
            },
            softhsm_pairs,
        ));
    }

    let root = tempfile::tempdir().unwrap();
    let load_before = load_average();
    let mut measured: Vec<Measured> = modules
        .iter()
        .map(|(module, pairs)| measure(module, root.path(), *pairs))
        .collect();

    println!(
        "\nscale: RSA-2048 pairs (2 token objects each) in {}; load average {load_before} before, {} after",
        root.path().display(),
        load_average()
    );
    let names: String = measured
        .iter()
        .map(|m| format!("{:>16}", m.full.module.name))
        .collect();
    println!("{:<44}{names}   target", "figure (median of processes)");
    row(
        "key pairs on the token",
        "10 000 objects",
        &mut measured,
        |m| m.full.pairs.to_string(),
    );
    row("fill: C_CreateObject per object", "", &mut measured, |m| {
        let objects = 2 * m.full.pairs;
        format!("{:.2} ms", m.full.ms("fill") / objects as f64)
    });
    row(
        "C_Initialize + first C_GetSlotList",
        "< 200 ms",
        &mut measured,
        |m| format!("{:.2} ms", m.full.ms("init")),
    );
    row("  same, empty token", "", &mut measured, |m| {
        format!("{:.2} ms", m.empty.ms("init"))
    });
    row(
        "  with loading the module (dlopen)",
        "",
        &mut measured,
        |m| format!("{:.2} ms", m.full.ms("load_init")),
    );
    row("C_Login(USER)", "", &mut measured, |m| {
        format!("{:.1} ms", m.full.ms("login"))
    });
    row("  same, empty token", "", &mut measured, |m| {
        format!("{:.1} ms", m.empty.ms("login"))
    });
    row("  full vs empty", "within +20%", &mut measured, |m| {
        format!(
            "{:+.1}%",
            (m.full.ms("login") / m.empty.ms("login") - 1.0) * 100.0
        )
    });
    row(
        "first search after login (loads objects)",
        "",
        &mut measured,
        |m| format!("{:.1} ms", m.full.ms("first_find")),
    );
    row(
        "search 1 by label (Init+Find+Final)",
        "< 50 us",
        &mut measured,
        |m| format!("{:.1} us", m.full.ms("find_label") * 1e3),
    );
    row("search 1 by id (+ class)", "< 50 us", &mut measured, |m| {
        format!("{:.1} us", m.full.ms("find_id") * 1e3)
    });
    row("first C_Decrypt of the process", "", &mut measured, |m| {
        format!("{:.2} ms", m.full.ms("first_decrypt"))
    });
    row(
        "  first C_Decrypt with another key",
        "",
        &mut measured,
        |m| format!("{:.2} ms", m.full.ms("other_key_decrypt")),
    );
    row("  next C_Decrypt", "", &mut measured, |m| {
        format!("{:.2} ms", m.full.ms("next_decrypt"))
    });
    row("store on disk, full token", "", &mut measured, |m| {
        format!("{:.1} MiB", m.full_size as f64 / (1 << 20) as f64)
    });
    row(
        "store per RSA-2048 pair (full - empty)",
        "(reported)",
        &mut measured,
        |m| format!("{} B", (m.full_size - m.empty_size) / m.full.pairs as u64),
    );
}
