//! One token used by several processes at once (issue 13): RSA-2048 OAEP decryptions per
//! second with 4 processes, each its own module instance, on a token in a token directory
//! and on the same token in PostgreSQL (two "hosts" of two processes each: on one machine
//! a host is a group of processes with their own module instances and connections). The
//! crypto runs in each process, so the two should match; C_GenerateKeyPair, C_Login and
//! C_Initialize are timed beside them.
//!
//! `cargo bench --bench shared_store` with `FERROHSM_PG_URL` naming a server (e.g. one
//! `.ci/start-postgres` started); without it only the directory is measured. Figures
//! only: no assertion depends on speed.

mod common;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const SO_PIN: &str = "bench-so-pin";
const USER_PIN: &str = "bench-user-pin";
const PROCESSES: usize = 4;
const SECONDS: u64 = 3;
const PHASE: &str = "shared-store-phase";

fn oaep() -> Mechanism<'static> {
    Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
        MechanismType::SHA256,
        PkcsMgfType::MGF1_SHA256,
        PkcsOaepSource::empty(),
    ))
}

fn initialized(module: &Path) -> Pkcs11 {
    let p11 = Pkcs11::new(module).unwrap();
    p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    p11
}

/// Makes the token and its key pair; prints the setup figures.
fn setup(module: &Path) {
    let started = Instant::now();
    let p11 = initialized(module);
    let init = started.elapsed();
    let slot = p11.get_all_slots().unwrap()[0];
    p11.init_token(slot, &AuthPin::new(SO_PIN.into()), "shared")
        .unwrap();
    let session = p11.open_rw_session(slot).unwrap();
    session
        .login(UserType::So, Some(&AuthPin::new(SO_PIN.into())))
        .unwrap();
    session.init_pin(&AuthPin::new(USER_PIN.into())).unwrap();
    session.logout().unwrap();
    let started = Instant::now();
    session
        .login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))
        .unwrap();
    let login = started.elapsed();
    let mut keygen = Vec::new();
    for i in 0..5 {
        let started = Instant::now();
        session
            .generate_key_pair(
                &Mechanism::RsaPkcsKeyPairGen,
                &[
                    Attribute::Token(true),
                    Attribute::ModulusBits(2048.into()),
                    Attribute::Encrypt(true),
                    Attribute::Label(format!("k{i}").into_bytes()),
                ],
                &[
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Decrypt(true),
                    Attribute::Label(format!("k{i}").into_bytes()),
                ],
            )
            .unwrap();
        keygen.push(started.elapsed());
    }
    keygen.sort();
    println!("= init {}", init.as_micros());
    println!("= login {}", login.as_micros());
    println!("= keygen {}", keygen[keygen.len() / 2].as_micros());
}

/// Decrypts with key k0 for SECONDS; prints the count.
fn decrypt(module: &Path) {
    let p11 = initialized(module);
    let slot = p11.get_slots_with_token().unwrap()[0];
    let session = p11.open_rw_session(slot).unwrap();
    session
        .login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))
        .unwrap();
    let find = |class| {
        session
            .find_objects(&[Attribute::Class(class), Attribute::Label(b"k0".to_vec())])
            .unwrap()[0]
    };
    let (public, private) = (
        find(ObjectClass::PUBLIC_KEY),
        find(ObjectClass::PRIVATE_KEY),
    );
    let ciphertext = session.encrypt(&oaep(), public, b"shared").unwrap();
    // Start together: the parent's start file.
    while !Path::new(&std::env::var("FERROHSM_BENCH_GO").unwrap()).exists() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let deadline = Instant::now() + Duration::from_secs(SECONDS);
    let mut count = 0u64;
    while Instant::now() < deadline {
        session.decrypt(&oaep(), private, &ciphertext).unwrap();
        count += 1;
    }
    println!("= decrypts {count}");
}

fn figures(output: &std::process::Output) -> Vec<(String, u64)> {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("= ")?.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.parse().unwrap()))
        .collect()
}

fn phase(module: &Path, conf: &Path, phase: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([PHASE, phase])
        .arg(module)
        .env("FERROHSM_CONF", conf);
    cmd
}

fn measure(module: &Path, dir: &Path, name: &str, store: &str) {
    let conf = dir.join(format!("{name}.toml"));
    std::fs::write(&conf, format!("token_dir = {:?}\n{store}", dir.join(name))).unwrap();
    let setup = figures(&phase(module, &conf, "setup").output().unwrap());
    let go = dir.join(format!("{name}.go"));
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            phase(module, &conf, "decrypt")
                .env("FERROHSM_BENCH_GO", &go)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    std::fs::write(&go, b"").unwrap();
    let decrypts: u64 = children
        .into_iter()
        .flat_map(|c| figures(&c.wait_with_output().unwrap()))
        .map(|(_, v)| v)
        .sum();
    let get = |k: &str| setup.iter().find(|(n, _)| n == k).unwrap().1 as f64 / 1e3;
    println!(
        "{name:<12} {:>10.0} {:>12.1} {:>10.1} {:>16.1}",
        decrypts as f64 / SECONDS as f64,
        get("keygen"),
        get("login"),
        get("init"),
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(PHASE) {
        let module = Path::new(&args[2]);
        return match args[1].as_str() {
            "setup" => setup(module),
            "decrypt" => decrypt(module),
            other => panic!("unknown phase {other}"),
        };
    }
    if !args.iter().any(|a| a == "--bench") {
        println!("shared_store: run with `cargo bench --bench shared_store`");
        return;
    }
    let manifest = common::build_release_module();
    let module = manifest.join("target/release/libferrohsm.so");
    let dir = tempfile::tempdir().unwrap();
    println!("store        decrypt/s ({PROCESSES} procs)  keygen ms  login ms  C_Initialize ms");
    measure(&module, dir.path(), "directory", "");
    if let Ok(url) = std::env::var("FERROHSM_PG_URL") {
        let schema = format!("bench_shared_{}", std::process::id());
        measure(
            &module,
            dir.path(),
            "postgresql",
            &format!("store = {url:?}\nstore_schema = {schema:?}\n"),
        );
    }
}
