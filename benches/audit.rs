//! The cost of `audit = "operations"` (issue 11: at most 10 % of decrypt/sign throughput).
//!
//! `cargo bench --bench audit`: one token; the module is initialised alternately with
//! `audit = "keys"` and `audit = "operations"` (C_Finalize and C_Initialize in this
//! process, a few rounds), and each round measures RSA-2048 PKCS#1 v1.5 decrypt, ECDSA
//! P-256 sign and AES-256-GCM encryption of 64 bytes in wall-clock time (the log's writes
//! wait for the disk, which CPU time would not show). Prints the median ops/s of each
//! setting and their ratio. Figures only.

mod common;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use std::time::{Duration, Instant};

const SO_PIN: &str = "bench-so-pin";
const USER_PIN: &str = "bench-user-pin";
const P256_OID: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const ROUNDS: usize = 3;
const SETTINGS: [&str; 2] = ["keys", "operations"];

fn ops_per_sec(mut op: impl FnMut()) -> f64 {
    op();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(2) {
        op();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

struct Keys {
    rsa_public: ObjectHandle,
    rsa_private: ObjectHandle,
    ec_private: ObjectHandle,
    aes: ObjectHandle,
}

fn make_keys(session: &Session) {
    let token = |id: u8| [Attribute::Token(true), Attribute::Id(vec![id])];
    let mut public = vec![
        Attribute::ModulusBits(2048.into()),
        Attribute::Encrypt(true),
    ];
    public.extend(token(1));
    let mut private = vec![Attribute::Decrypt(true), Attribute::Sign(true)];
    private.extend(token(1));
    session
        .generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private)
        .unwrap();
    let mut public = vec![
        Attribute::EcParams(P256_OID.to_vec()),
        Attribute::Verify(true),
    ];
    public.extend(token(2));
    let mut private = vec![Attribute::Sign(true)];
    private.extend(token(2));
    session
        .generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
        .unwrap();
    let mut secret = vec![Attribute::ValueLen(32.into()), Attribute::Encrypt(true)];
    secret.extend(token(3));
    session
        .generate_key(&Mechanism::AesKeyGen, &secret)
        .unwrap();
}

/// Handles are new after each C_Initialize: the keys are found by their ids.
fn find_keys(session: &Session) -> Keys {
    let find = |class: ObjectClass, id: u8| {
        let template = [Attribute::Class(class), Attribute::Id(vec![id])];
        session.find_objects(&template).unwrap()[0]
    };
    Keys {
        rsa_public: find(ObjectClass::PUBLIC_KEY, 1),
        rsa_private: find(ObjectClass::PRIVATE_KEY, 1),
        ec_private: find(ObjectClass::PRIVATE_KEY, 2),
        aes: find(ObjectClass::SECRET_KEY, 3),
    }
}

fn main() {
    // `cargo test --all-targets` runs this binary too (without --bench): nothing to measure.
    if !std::env::args().any(|a| a == "--bench") {
        println!("audit: run with `cargo bench --bench audit`");
        return;
    }
    let manifest = common::build_release_module();
    let dir = tempfile::tempdir().unwrap();
    let conf_path = dir.path().join("ferrohsm.toml");
    let write_conf = |audit: &str| {
        let conf = format!(
            "token_dir = {:?}\naudit = \"{audit}\"\n",
            dir.path().join("tokens")
        );
        std::fs::write(&conf_path, conf).unwrap();
    };
    std::env::set_var("FERROHSM_CONF", &conf_path);
    let module = manifest.join("target/release/libferrohsm.so");
    let so = AuthPin::new(SO_PIN.into());
    let user = AuthPin::new(USER_PIN.into());

    let mut figures: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); 3]; SETTINGS.len()];
    for round in 0..ROUNDS {
        for (i, audit) in SETTINGS.iter().enumerate() {
            write_conf(audit);
            // C_Finalize takes the context: a new one each time (the same loaded library).
            let p = Pkcs11::new(&module).unwrap();
            p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
                .unwrap();
            if round == 0 && i == 0 {
                let slot = p.get_all_slots().unwrap()[0];
                p.init_token(slot, &so, "bench").unwrap();
                let slot = p.get_slots_with_token().unwrap()[0];
                let s = p.open_rw_session(slot).unwrap();
                s.login(UserType::So, Some(&so)).unwrap();
                s.init_pin(&user).unwrap();
                s.logout().unwrap();
            }
            let slot = p.get_slots_with_token().unwrap()[0];
            let session = p.open_rw_session(slot).unwrap();
            session.login(UserType::User, Some(&user)).unwrap();
            if round == 0 && i == 0 {
                make_keys(&session);
            }
            let k = &find_keys(&session);
            let ciphertext = session
                .encrypt(
                    &Mechanism::RsaPkcs,
                    k.rsa_public,
                    b"an envelope key, 32 bytes long..",
                )
                .unwrap();
            let mut iv = [7u8; 12];
            figures[i][0].push(ops_per_sec(|| {
                session
                    .decrypt(&Mechanism::RsaPkcs, k.rsa_private, &ciphertext)
                    .unwrap();
            }));
            figures[i][1].push(ops_per_sec(|| {
                session
                    .sign(&Mechanism::Ecdsa, k.ec_private, &[1u8; 32])
                    .unwrap();
            }));
            figures[i][2].push(ops_per_sec(|| {
                let gcm = GcmParams::new(&mut iv, &[], 128.into()).unwrap();
                session
                    .encrypt(&Mechanism::AesGcm(gcm), k.aes, &[0u8; 64])
                    .unwrap();
            }));
            drop(session);
            p.finalize().unwrap();
        }
    }
    println!(
        "{:<28} {:>14} {:>14} {:>8}",
        "operation", "audit=keys", "=operations", "ratio"
    );
    for (n, name) in [
        "RSA-2048 decrypt PKCS#1",
        "ECDSA P-256 sign",
        "AES-256-GCM 64 B",
    ]
    .iter()
    .enumerate()
    {
        let keys = median(figures[0][n].clone());
        let ops = median(figures[1][n].clone());
        println!("{name:<28} {keys:>14.0} {ops:>14.0} {:>8.3}", ops / keys);
    }
}
