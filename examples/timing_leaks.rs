//! A dudect-style timing test of the decryption paths that must not tell a valid ciphertext
//! from an invalid one by their speed: RSA PKCS#1 v1.5 (as the spec has it, and with implicit
//! rejection), RSA OAEP, SM2 with a wrong C3. A documented measurement, not a CI pass/fail.
//!
//!     cargo run --release --example timing_leaks [seconds per test, default 30]
//!
//! Method (Reparaz, Balasch, Verbauwhede, "Dude, is my code constant time?", 2017): two
//! classes of inputs, valid and invalid, are drawn in random order and each decryption is
//! timed; Welch's t-statistic compares the two timing distributions, on all measurements and
//! on those below several percentiles (cropping the long tail of interrupts and a shared
//! machine). |t| below 4.5 means no difference was detected at this number of measurements;
//! above 4.5, the timing tells the classes apart. RSA PKCS#1 v1.5 as the spec demands returns
//! an error for a bad padding, so its *code* tells anyway: its t is reported for reference.

use ferrohsm::crypto::hash::HashAlg;
use ferrohsm::crypto::rsa::{backend, RsaEncryption, RsaPrivateComponents, RsaPrivateKey};
use ferrohsm::crypto::sm2::{CiphertextForm, RawOrder, Sm2PrivateKey};
use rand::RngExt;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Inputs per class, prepared before measuring (drawn from at random during it).
const POOL: usize = 64;

/// Running mean and variance (Welford) of one class.
#[derive(Default, Clone, Copy)]
struct Moments {
    n: f64,
    mean: f64,
    m2: f64,
}

impl Moments {
    fn push(&mut self, x: f64) {
        self.n += 1.0;
        let delta = x - self.mean;
        self.mean += delta / self.n;
        self.m2 += delta * (x - self.mean);
    }

    fn variance(&self) -> f64 {
        if self.n > 1.0 {
            self.m2 / (self.n - 1.0)
        } else {
            0.0
        }
    }
}

/// Welch's t of two classes.
fn welch_t(a: &Moments, b: &Moments) -> f64 {
    let se = (a.variance() / a.n + b.variance() / b.n).sqrt();
    if se == 0.0 {
        0.0
    } else {
        (a.mean - b.mean) / se
    }
}

struct Report {
    name: &'static str,
    measurements: usize,
    mean_ns: [f64; 2],
    /// t over all measurements, then below the 50th, 75th, 90th, 99th percentile.
    t: [f64; 5],
}

impl Report {
    fn max_abs_t(&self) -> f64 {
        self.t.iter().fold(0.0, |m, t| m.max(t.abs()))
    }
}

/// Times `op` on inputs of class 0 (valid) and 1 (invalid), drawn at random, for `budget`.
fn measure(
    name: &'static str,
    budget: Duration,
    inputs: [&[Vec<u8>]; 2],
    mut op: impl FnMut(&[u8]),
) -> Report {
    let mut rng = rand::rng();
    // Warm-up: caches, lazily built tables.
    for class in inputs {
        for input in class.iter().take(4) {
            op(input);
        }
    }
    let mut samples: Vec<(usize, f64)> = Vec::new();
    let start = Instant::now();
    while start.elapsed() < budget {
        for _ in 0..64 {
            let class = rng.random_range(0..2usize);
            let input = &inputs[class][rng.random_range(0..inputs[class].len())];
            let t0 = Instant::now();
            op(black_box(input));
            let dt = t0.elapsed().as_nanos() as f64;
            samples.push((class, dt));
        }
    }
    let mut sorted: Vec<f64> = samples.iter().map(|s| s.1).collect();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let cut = |p: f64| sorted[((sorted.len() - 1) as f64 * p) as usize];
    let limits = [f64::INFINITY, cut(0.50), cut(0.75), cut(0.90), cut(0.99)];
    let mut t = [0.0; 5];
    let mut means = [Moments::default(); 2];
    for (i, limit) in limits.iter().enumerate() {
        let mut m = [Moments::default(); 2];
        for &(class, dt) in samples.iter().filter(|s| s.1 <= *limit) {
            m[class].push(dt);
        }
        t[i] = welch_t(&m[0], &m[1]);
        if i == 0 {
            means = m;
        }
    }
    Report {
        name,
        measurements: samples.len(),
        mean_ns: [means[0].mean, means[1].mean],
        t,
    }
}

fn rsa_key() -> (std::sync::Arc<dyn RsaPrivateKey>, RsaPrivateComponents) {
    let components = backend().generate(2048, &[1, 0, 1]).expect("RSA key");
    (
        backend().load_private(&components).expect("load"),
        components,
    )
}

/// `POOL` random PKCS#1 v1.5 encoded messages (`valid`) or encodings with a wrong block
/// type (`!valid`), raw-encrypted under the public key.
fn pkcs1_ciphertexts(
    public: &dyn ferrohsm::crypto::rsa::RsaPublicKey,
    k: usize,
    valid: bool,
) -> Vec<Vec<u8>> {
    let mut rng = rand::rng();
    (0..POOL)
        .map(|_| {
            let mut em = vec![0u8; k];
            em[1] = if valid { 2 } else { 1 };
            for b in &mut em[2..k - 49] {
                *b = rng.random_range(1..=255u8);
            }
            // A 48-byte message (a TLS premaster secret's length) after the separator.
            for b in &mut em[k - 48..] {
                *b = rng.random();
            }
            public
                .encrypt(&RsaEncryption::Raw, &em)
                .expect("raw RSA encryption")
        })
        .collect()
}

fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let budget = Duration::from_secs(seconds);
    let mut reports = Vec::new();

    let (rsa, components) = rsa_key();
    let public = backend()
        .load_public(&components.public)
        .expect("public key");
    let k = rsa.size();
    let good = pkcs1_ciphertexts(public.as_ref(), k, true);
    let bad = pkcs1_ciphertexts(public.as_ref(), k, false);
    for (name, scheme) in [
        (
            "RSA-2048 PKCS#1 v1.5 (allow: error on bad padding)",
            RsaEncryption::Pkcs1v15,
        ),
        (
            "RSA-2048 PKCS#1 v1.5 (implicit-rejection)",
            RsaEncryption::Pkcs1v15ImplicitRejection,
        ),
    ] {
        eprintln!("measuring {name} for {seconds} s");
        reports.push(measure(name, budget, [&good, &bad], |c| {
            let _ = black_box(rsa.decrypt(&scheme, c));
        }));
    }

    let oaep = RsaEncryption::Oaep {
        hash: HashAlg::Sha256,
        mgf1: HashAlg::Sha256,
        label: Vec::new(),
    };
    let mut rng = rand::rng();
    let good: Vec<Vec<u8>> = (0..POOL)
        .map(|_| {
            let msg: [u8; 32] = rng.random();
            public.encrypt(&oaep, &msg).expect("OAEP encrypt")
        })
        .collect();
    // Invalid: valid ciphertexts of a random encoded message that is not OAEP (a random
    // value below n, so the failure comes from the decoding, not the range check).
    let bad: Vec<Vec<u8>> = (0..POOL)
        .map(|_| {
            let mut em = vec![0u8; k];
            for b in &mut em[1..] {
                *b = rng.random();
            }
            public.encrypt(&RsaEncryption::Raw, &em).expect("raw")
        })
        .collect();
    let name = "RSA-2048 OAEP SHA-256 (valid vs bad encoding)";
    eprintln!("measuring {name} for {seconds} s");
    reports.push(measure(name, budget, [&good, &bad], |c| {
        let _ = black_box(rsa.decrypt(&oaep, c));
    }));

    let sm2 = Sm2PrivateKey::generate().expect("SM2 key");
    let form = CiphertextForm::Raw {
        order: RawOrder::C1C3C2,
        prefix: true,
    };
    let good: Vec<Vec<u8>> = (0..POOL)
        .map(|_| {
            let msg: [u8; 32] = rng.random();
            sm2.public_key().encrypt(&msg, form).expect("SM2 encrypt")
        })
        .collect();
    // C1 (65 bytes) then C3 (32): flip one bit of C3.
    let bad: Vec<Vec<u8>> = good
        .iter()
        .map(|c| {
            let mut c = c.clone();
            c[65 + rng.random_range(0..32usize)] ^= 1;
            c
        })
        .collect();
    let name = "SM2 decrypt (valid vs bad C3)";
    eprintln!("measuring {name} for {seconds} s");
    reports.push(measure(name, budget, [&good, &bad], |c| {
        let _ = black_box(sm2.decrypt(c, Some(form)));
    }));

    println!(
        "| test | measurements | mean valid (us) | mean invalid (us) | t all | t p50 | t p75 | t p90 | t p99 | max abs t |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in &reports {
        println!(
            "| {} | {} | {:.1} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2}{} |",
            r.name,
            r.measurements,
            r.mean_ns[0] / 1000.0,
            r.mean_ns[1] / 1000.0,
            r.t[0],
            r.t[1],
            r.t[2],
            r.t[3],
            r.t[4],
            r.max_abs_t(),
            if r.max_abs_t() > 4.5 {
                " (differs)"
            } else {
                ""
            },
        );
    }
}
