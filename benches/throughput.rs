//! Throughput through the C ABI, ferrohsm side by side with SoftHSMv2 when it is installed.
//!
//! `cargo bench --bench throughput` (builds the release module first). Prints operations per
//! second of the calling thread's CPU time for RSA-2048 decrypt (PKCS#1 v1.5 and
//! OAEP-SHA256) and sign, SM2 sign and decrypt where the module has SM2, ECDSA P-256/P-384,
//! ECDH P-256 and Ed25519 where it has them, the secret-key operations, and the time to find
//! one object among many, with `openssl speed`'s AES-GCM and EC figures beside them. Figures
//! only: no assertion depends on speed.

mod common;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const SO_PIN: &str = "bench-so-pin";
const USER_PIN: &str = "bench-user-pin";
const SM2_OID: [u8; 10] = [0x06, 0x08, 0x2A, 0x81, 0x1C, 0xCF, 0x55, 0x01, 0x82, 0x2D];
const CKM_SM2_KEY_PAIR_GEN: u64 = 0x8000_8001;
const CKM_SM2_RAW: u64 = 0x8000_8200;
const CKM_SM3_SM2: u64 = 0x8000_8100;
const P256_OID: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384_OID: [u8; 7] = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
/// PrintableString "edwards25519", as pkcs11-tool sends it (SoftHSMv2 reads no other form).
const ED25519_PARAMS: &[u8] = b"\x13\x0cedwards25519";

/// Operations per second of this thread's CPU time (see `cpu_time`).
fn rate(name: &str, module: &str, mut op: impl FnMut()) {
    op(); // warm up
    let start = Instant::now();
    let cpu_start = cpu_time();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(3) {
        op();
        n += 1;
    }
    let per_sec = n as f64 / (cpu_time() - cpu_start).as_secs_f64();
    println!("{module:<10} {name:<32} {per_sec:>10.1} ops/s");
}

/// `rate` of `op` alone, where each call leaves something for `clean_up` (an unwrapped key
/// to destroy): that runs every 256 calls, and its CPU time is not counted.
fn rate_without_clean_up(
    name: &str,
    module: &str,
    mut op: impl FnMut(),
    mut clean_up: impl FnMut(),
) {
    op(); // warm up
    clean_up();
    let start = Instant::now();
    let cpu_start = cpu_time();
    let mut untimed = Duration::ZERO;
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(3) {
        op();
        n += 1;
        if n.is_multiple_of(256) {
            let before = cpu_time();
            clean_up();
            untimed += cpu_time() - before;
        }
    }
    let before = cpu_time();
    clean_up();
    untimed += cpu_time() - before;
    let per_sec = n as f64 / (cpu_time() - cpu_start - untimed).as_secs_f64();
    println!("{module:<10} {name:<32} {per_sec:>10.1} ops/s");
}

/// This thread's CPU time (Linux `/proc/thread-self/schedstat`, nanoseconds on the CPU):
/// the module works in the calling thread, and CPU time stays comparable between runs on
/// a machine that is busy with other work.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns = stat.split_whitespace().next().and_then(|v| v.parse().ok());
    Duration::from_nanos(ns.unwrap_or(0))
}

/// MB/s of `op`, which processes `bytes` bytes per call, per second of this thread's CPU
/// time: `openssl speed` divides by its (user) CPU time too.
fn bandwidth(name: &str, module: &str, bytes: usize, mut op: impl FnMut()) {
    op();
    let start = Instant::now();
    let cpu_start = cpu_time();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(3) {
        op();
        n += 1;
    }
    let mb = (n as f64 * bytes as f64) / (cpu_time() - cpu_start).as_secs_f64() / 1e6;
    println!("{module:<10} {name:<32} {mb:>10.1} MB/s");
}

/// `openssl speed -evp aes-256-gcm` at 16 KiB blocks (the machine's limit), in MB/s.
fn openssl_gcm_speed() {
    let out = std::process::Command::new("openssl")
        .args([
            "speed",
            "-evp",
            "aes-256-gcm",
            "-bytes",
            "16384",
            "-seconds",
            "3",
        ])
        .output();
    let Ok(out) = out else {
        println!("openssl    AES-256-GCM 16 KiB               not run (no openssl)");
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    // The last line: "aes-256-gcm   <kB/s>k"
    if let Some(kb) = text
        .lines()
        .rev()
        .find(|l| l.starts_with("AES-256-GCM") || l.starts_with("aes-256-gcm"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.trim_end_matches('k').parse::<f64>().ok())
    {
        println!(
            "{:<10} {:<32} {:>10.1} MB/s",
            "openssl",
            "AES-256-GCM encrypt 16 KiB",
            kb * 1000.0 / 1e6
        );
    }
}

/// `openssl speed` for the EC operations measured here: sign/s and verify/s of ECDSA P-256
/// and P-384 and Ed25519, op/s of ECDH P-256.
fn openssl_ec_speed() {
    let out = std::process::Command::new("openssl")
        .args([
            "speed",
            "-seconds",
            "3",
            "ecdsap256",
            "ecdsap384",
            "ecdhp256",
            "ed25519",
        ])
        .output();
    let Ok(out) = out else {
        println!("openssl    EC                               not run (no openssl)");
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    // " 256 bits ecdsa (nistp256)   0.0000s   0.0001s  40000.0  13000.0": the rates are last.
    let rates = |tag: &str| -> Vec<f64> {
        text.lines()
            .find(|l| l.contains(tag))
            .map(|l| {
                l.split_whitespace()
                    .filter(|w| !w.ends_with('s'))
                    .filter_map(|w| w.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    let show = |name: &str, value: Option<&f64>| {
        if let Some(v) = value {
            println!("{:<10} {name:<32} {v:>10.1} ops/s", "openssl");
        }
    };
    for (tag, curve) in [("ecdsa (nistp256)", "P-256"), ("ecdsa (nistp384)", "P-384")] {
        let r = rates(tag);
        show(&format!("ECDSA {curve} sign"), r.iter().rev().nth(1));
        show(&format!("ECDSA {curve} verify"), r.last());
    }
    show("ECDH P-256 derive", rates("ecdh (nistp256)").last());
    let r = rates("(Ed25519)");
    show("Ed25519 sign", r.iter().rev().nth(1));
    show("Ed25519 verify", r.last());
}

fn open(module: &Path, dir: &Path) -> (Pkcs11, Session) {
    let conf = dir.join("module.conf");
    if module.to_string_lossy().contains("softhsm") {
        std::fs::create_dir_all(dir.join("softhsm")).unwrap();
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\n",
                dir.join("softhsm").display()
            ),
        )
        .unwrap();
        std::env::set_var("SOFTHSM2_CONF", &conf);
    } else {
        std::fs::write(&conf, format!("token_dir = {:?}\n", dir.join("ferrohsm"))).unwrap();
        std::env::set_var("FERROHSM_CONF", &conf);
    }
    let p = Pkcs11::new(module).unwrap();
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let slot = *p
        .get_all_slots()
        .unwrap()
        .iter()
        .find(|s| {
            p.get_token_info(**s)
                .map(|t| !t.token_initialized())
                .unwrap_or(false)
        })
        .unwrap();
    p.init_token(slot, &AuthPin::new(SO_PIN.into()), "bench")
        .unwrap();
    let slot = *p
        .get_slots_with_token()
        .unwrap()
        .iter()
        .find(|s| {
            p.get_token_info(**s)
                .map(|t| t.label() == "bench")
                .unwrap_or(false)
        })
        .unwrap();
    let session = p.open_rw_session(slot).unwrap();
    session
        .login(UserType::So, Some(&AuthPin::new(SO_PIN.into())))
        .unwrap();
    session.init_pin(&AuthPin::new(USER_PIN.into())).unwrap();
    session.logout().unwrap();
    session
        .login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))
        .unwrap();
    (p, session)
}

fn rsa_key(session: &Session) -> (ObjectHandle, ObjectHandle) {
    session
        .generate_key_pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::ModulusBits(2048.into()),
                Attribute::Encrypt(true),
                Attribute::Verify(true),
            ],
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Decrypt(true),
                Attribute::Sign(true),
            ],
        )
        .unwrap()
}

fn bench_module(module: &Path, label: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (_p, session) = open(module, dir.path());
    let (public, private) = rsa_key(&session);
    let msg = b"benchmark message";

    let ct = session.encrypt(&Mechanism::RsaPkcs, public, msg).unwrap();
    rate("RSA-2048 decrypt PKCS#1 v1.5", label, || {
        session.decrypt(&Mechanism::RsaPkcs, private, &ct).unwrap();
    });
    let oaep = Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
        MechanismType::SHA256,
        PkcsMgfType::MGF1_SHA256,
        PkcsOaepSource::empty(),
    ));
    match session.encrypt(&oaep, public, msg) {
        Ok(ct) => rate("RSA-2048 decrypt OAEP-SHA256", label, || {
            session.decrypt(&oaep, private, &ct).unwrap();
        }),
        Err(e) => println!("{label:<10} RSA-2048 decrypt OAEP-SHA256     unsupported ({e})"),
    }
    rate("RSA-2048 sign SHA256-RSA-PKCS", label, || {
        session
            .sign(&Mechanism::Sha256RsaPkcs, private, msg)
            .unwrap();
    });

    bench_secret_keys(&session, label, public, private);

    let sm2_gen = Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(
        MechanismType::new_vendor_defined(CKM_SM2_KEY_PAIR_GEN).unwrap(),
        None,
    ));
    match session.generate_key_pair(
        &sm2_gen,
        &[
            Attribute::EcParams(SM2_OID.to_vec()),
            Attribute::Encrypt(true),
            Attribute::Verify(true),
        ],
        &[
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Decrypt(true),
            Attribute::Sign(true),
        ],
    ) {
        Ok((spub, spriv)) => {
            let raw = Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(
                MechanismType::new_vendor_defined(CKM_SM2_RAW).unwrap(),
                None,
            ));
            let sign = Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(
                MechanismType::new_vendor_defined(CKM_SM3_SM2).unwrap(),
                None,
            ));
            let ct = session.encrypt(&raw, spub, msg).unwrap();
            rate("SM2 decrypt (raw C1C3C2)", label, || {
                session.decrypt(&raw, spriv, &ct).unwrap();
            });
            rate("SM2 sign (SM3, default ID)", label, || {
                session.sign(&sign, spriv, msg).unwrap();
            });
            rate("SM2 key pair generation", label, || {
                session
                    .generate_key_pair(
                        &sm2_gen,
                        &[Attribute::EcParams(SM2_OID.to_vec())],
                        &[Attribute::Sign(true)],
                    )
                    .unwrap();
            });
        }
        Err(e) => println!("{label:<10} SM2                              unsupported ({e})"),
    }

    bench_ec(&session, label);

    // Search: one object by label among many session data objects.
    let count = 2000;
    for i in 0..count {
        session
            .create_object(&[
                Attribute::Class(cryptoki::object::ObjectClass::DATA),
                Attribute::Label(format!("obj-{i}").into_bytes()),
                Attribute::Value(vec![0u8; 16]),
            ])
            .unwrap();
    }
    let target = [Attribute::Label(format!("obj-{}", count / 2).into_bytes())];
    rate(&format!("find 1 of {count} by label"), label, || {
        assert_eq!(session.find_objects(&target).unwrap().len(), 1);
    });
}

/// ECDSA on P-256 and P-384 (CKM_ECDSA on a digest, as `openssl speed` signs one), ECDH
/// P-256 (a session key made and destroyed per call: what a PKCS#11 derivation is), Ed25519,
/// and key generation.
fn bench_ec(session: &Session, label: &str) {
    let digest = [0x5au8; 32];
    for (curve, oid) in [("P-256", &P256_OID[..]), ("P-384", &P384_OID[..])] {
        let keys = session.generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[Attribute::EcParams(oid.to_vec()), Attribute::Verify(true)],
            &[Attribute::Sign(true), Attribute::Derive(true)],
        );
        let Ok((public, private)) = keys else {
            println!("{label:<10} ECDSA {curve:<26} unsupported");
            continue;
        };
        let signature = session.sign(&Mechanism::Ecdsa, private, &digest).unwrap();
        rate(&format!("ECDSA {curve} sign"), label, || {
            session.sign(&Mechanism::Ecdsa, private, &digest).unwrap();
        });
        rate(&format!("ECDSA {curve} verify"), label, || {
            session
                .verify(&Mechanism::Ecdsa, public, &digest, &signature)
                .unwrap();
        });
        if curve != "P-256" {
            continue;
        }
        let point = session
            .get_attributes(public, &[cryptoki::object::AttributeType::EcPoint])
            .unwrap();
        let Some(Attribute::EcPoint(point)) = point.into_iter().next() else {
            continue;
        };
        let derive = Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(EcKdf::null(), &point));
        let template = [
            Attribute::Class(cryptoki::object::ObjectClass::SECRET_KEY),
            Attribute::KeyType(cryptoki::object::KeyType::GENERIC_SECRET),
            Attribute::Token(false),
        ];
        if session.derive_key(&derive, private, &template).is_ok() {
            rate("ECDH P-256 derive", label, || {
                let key = session.derive_key(&derive, private, &template).unwrap();
                session.destroy_object(key).unwrap();
            });
        }
        rate("ECDSA P-256 key pair generation", label, || {
            session
                .generate_key_pair(
                    &Mechanism::EccKeyPairGen,
                    &[Attribute::EcParams(oid.to_vec())],
                    &[Attribute::Sign(true)],
                )
                .unwrap();
        });
    }
    let eddsa = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
    let keys = session.generate_key_pair(
        &Mechanism::EccEdwardsKeyPairGen,
        &[
            Attribute::EcParams(ED25519_PARAMS.to_vec()),
            Attribute::Verify(true),
        ],
        &[Attribute::Sign(true)],
    );
    let Ok((public, private)) = keys else {
        println!("{label:<10} Ed25519                          unsupported");
        return;
    };
    let msg = b"benchmark message";
    let signature = session.sign(&eddsa, private, msg).unwrap();
    rate("Ed25519 sign", label, || {
        session.sign(&eddsa, private, msg).unwrap();
    });
    rate("Ed25519 verify", label, || {
        session.verify(&eddsa, public, msg, &signature).unwrap();
    });
}

/// AES-256-GCM over 1 MiB in one call, and unwrapping beside the decryption of the same
/// blob: C_UnwrapKey alone (the session keys made are destroyed in batches, untimed), and
/// C_UnwrapKey + C_DestroyObject per call.
fn bench_secret_keys(
    session: &Session,
    label: &str,
    rsa_public: ObjectHandle,
    rsa_private: ObjectHandle,
) {
    let key = match session.generate_key(
        &Mechanism::AesKeyGen,
        &[
            Attribute::ValueLen(32.into()),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Wrap(true),
            Attribute::Unwrap(true),
        ],
    ) {
        Ok(key) => key,
        Err(e) => {
            println!("{label:<10} AES                              unsupported ({e})");
            return;
        }
    };
    let data = vec![0x5au8; 1 << 20];
    let mut iv = [7u8; 12];
    let gcm = Mechanism::AesGcm(GcmParams::new(&mut iv, b"aad", 128.into()).unwrap());
    let sealed = session.encrypt(&gcm, key, &data).unwrap();
    bandwidth("AES-256-GCM encrypt 1 MiB", label, data.len(), || {
        session.encrypt(&gcm, key, &data).unwrap();
    });
    bandwidth("AES-256-GCM decrypt 1 MiB", label, data.len(), || {
        session.decrypt(&gcm, key, &sealed).unwrap();
    });

    let target = session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[Attribute::ValueLen(32.into()), Attribute::Extractable(true)],
        )
        .unwrap();
    let template = [
        Attribute::Class(cryptoki::object::ObjectClass::SECRET_KEY),
        Attribute::KeyType(cryptoki::object::KeyType::AES),
        Attribute::Token(false),
        Attribute::Decrypt(true),
    ];
    let oaep = Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
        MechanismType::SHA256,
        PkcsMgfType::MGF1_SHA256,
        PkcsOaepSource::empty(),
    ));
    for (name, mechanism, wrapping, unwrapping) in [
        ("AES-KW", Mechanism::AesKeyWrap, key, key),
        ("RSA-OAEP-SHA256", oaep, rsa_public, rsa_private),
    ] {
        let Ok(wrapped) = session.wrap_key(&mechanism, wrapping, target) else {
            println!("{label:<10} {name} wrap                      unsupported");
            continue;
        };
        if session.decrypt(&mechanism, unwrapping, &wrapped).is_ok() {
            rate(&format!("{name} decrypt of a 32-byte key"), label, || {
                session.decrypt(&mechanism, unwrapping, &wrapped).unwrap();
            });
        } else {
            println!("{label:<10} {name} decrypt of a 32-byte key   unsupported");
        }
        let made = std::cell::RefCell::new(Vec::new());
        rate_without_clean_up(
            &format!("{name} unwrap of a 32-byte key"),
            label,
            || {
                let k = session
                    .unwrap_key(&mechanism, unwrapping, &wrapped, &template)
                    .unwrap();
                made.borrow_mut().push(k);
            },
            || {
                for k in made.borrow_mut().drain(..) {
                    session.destroy_object(k).unwrap();
                }
            },
        );
        rate(&format!("{name} unwrap + destroy"), label, || {
            let k = session
                .unwrap_key(&mechanism, unwrapping, &wrapped, &template)
                .unwrap();
            session.destroy_object(k).unwrap();
        });
    }
}

fn main() {
    // `cargo test --all-targets` runs this binary too (without --bench): nothing to measure.
    if !std::env::args().any(|a| a == "--bench" || a.ends_with(".so")) {
        println!("throughput: run with `cargo bench --bench throughput`");
        return;
    }
    let manifest = common::build_release_module();
    // One module per process: each loads its own configuration at C_Initialize.
    if let Some(module) = std::env::args().nth(1).filter(|a| a.ends_with(".so")) {
        let label = if module.contains("softhsm") {
            "softhsm2"
        } else {
            "ferrohsm"
        };
        bench_module(Path::new(&module), label);
        return;
    }
    openssl_gcm_speed();
    openssl_ec_speed();
    let exe = std::env::current_exe().unwrap();
    let mut modules = vec![manifest.join("target/release/libferrohsm.so")];
    let softhsm = PathBuf::from("/usr/lib/softhsm/libsofthsm2.so");
    if softhsm.exists() {
        modules.push(softhsm);
    }
    for m in modules {
        std::process::Command::new(&exe)
            .arg(&m)
            .status()
            .expect("bench child");
    }
}
