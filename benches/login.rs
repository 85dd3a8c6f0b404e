//! The cost of C_Login with a right and with a wrong PIN, through the C ABI of the release
//! module: `cargo bench --bench login`. Both run the record's full Argon2id work (plus one
//! store write that counts the attempt, and for the right PIN one that resets the counter),
//! so the two figures should match; a wrong PIN that came back early would show here.
//!
//! `FERROHSM_BENCH_KDF=memory_kib,iterations,parallelism` sets the Argon2 cost of the PIN
//! (config keys `pin_kdf_*`) to compare costs; default: the module's default. Figures only,
//! per attempt: wall time, and the CPU time of the calling thread (the login runs on it),
//! which a busy machine inflates less.

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const SO_PIN: &str = "bench-so-pin";
const USER_PIN: &str = "bench-user-pin";
const WRONG_PIN: &str = "bench-user-pim";
const ROUNDS: usize = 12;

fn thread_cpu() -> Duration {
    let ns = std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    // `cargo test --all-targets` runs this binary too (without --bench): nothing to measure.
    if !std::env::args().any(|a| a == "--bench") {
        println!("login: run with `cargo bench --bench login`");
        return;
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "--release", "--lib"])
        .current_dir(&manifest)
        .status()
        .expect("cargo build");
    assert!(status.success());
    let dir = tempfile::tempdir().unwrap();
    let mut conf = format!("token_dir = {:?}\n", dir.path().join("tokens"));
    if let Ok(kdf) = std::env::var("FERROHSM_BENCH_KDF") {
        let v: Vec<&str> = kdf.split(',').collect();
        assert_eq!(
            v.len(),
            3,
            "FERROHSM_BENCH_KDF=memory_kib,iterations,parallelism"
        );
        conf.push_str(&format!(
            "pin_kdf_memory_kib = {}\npin_kdf_iterations = {}\npin_kdf_parallelism = {}\n",
            v[0], v[1], v[2]
        ));
    }
    let conf_path = dir.path().join("ferrohsm.toml");
    std::fs::write(&conf_path, &conf).unwrap();
    std::env::set_var("FERROHSM_CONF", &conf_path);

    let p = Pkcs11::new(manifest.join("target/release/libferrohsm.so")).unwrap();
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let slot = p.get_all_slots().unwrap()[0];
    p.init_token(slot, &AuthPin::new(SO_PIN.into()), "bench")
        .unwrap();
    let slot = p.get_slots_with_token().unwrap()[0];
    let session = p.open_rw_session(slot).unwrap();
    session
        .login(UserType::So, Some(&AuthPin::new(SO_PIN.into())))
        .unwrap();
    session.init_pin(&AuthPin::new(USER_PIN.into())).unwrap();
    session.logout().unwrap();

    let timed = |f: &dyn Fn()| {
        let (cpu, wall) = (thread_cpu(), Instant::now());
        f();
        (wall.elapsed(), thread_cpu() - cpu)
    };
    let (mut right, mut wrong) = (Vec::new(), Vec::new());
    // Alternating keeps the retry counter at one at most: a right PIN resets it.
    for _ in 0..ROUNDS {
        wrong.push(timed(&|| match session
            .login(UserType::User, Some(&AuthPin::new(WRONG_PIN.into())))
        {
            Err(Error::Pkcs11(RvError::PinIncorrect, _)) => {}
            other => panic!("wrong PIN: {other:?}"),
        }));
        right.push(timed(&|| {
            session
                .login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))
                .unwrap()
        }));
        session.logout().unwrap();
    }
    println!("C_Login over {ROUNDS} rounds; config:\n{conf}");
    for (name, samples) in [("right PIN", right), ("wrong PIN", wrong)] {
        let wall = median(samples.iter().map(|s| s.0).collect());
        let cpu = median(samples.iter().map(|s| s.1).collect());
        println!("{name:<10} median {wall:>10.1?} wall, {cpu:>10.1?} CPU");
    }
}
