//! A quick throughput comparison, not a timed test: SM2 sign, verify, decrypt and key-pair
//! generation through the mechanism layer against the `sm2` crate called directly.
//! Run: `cargo test --release --lib sm2_speed -- --ignored --nocapture` (compare with
//! `openssl speed sm2`). The C ABI adds a lock and a few copies on top of these figures.

use super::*;
use crate::mechanism::{load_key, lookup, LoadedKey, MechanismParam};
use crate::object::Attributes;
use std::time::{Duration, Instant};

/// Operations per second of `op`, run for about `budget`.
fn rate(budget: Duration, mut op: impl FnMut()) -> f64 {
    op(); // warm-up: lazy tables, caches
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed() < budget {
        for _ in 0..16 {
            op();
        }
        n += 16;
    }
    f64::from(n) / start.elapsed().as_secs_f64()
}

/// Best rates of two contenders measured in alternating rounds, so that both see the same
/// background load (the machine is shared).
fn duel(mut a: impl FnMut(), mut b: impl FnMut()) -> (f64, f64) {
    let round = Duration::from_millis(500);
    let (mut best_a, mut best_b) = (0f64, 0f64);
    for _ in 0..6 {
        best_a = best_a.max(rate(round, &mut a));
        best_b = best_b.max(rate(round, &mut b));
    }
    (best_a, best_b)
}

#[test]
#[ignore = "benchmark; run with --release --ignored --nocapture"]
fn sm2_speed() {
    use sm2::dsa::signature::{Signer, Verifier};
    use sm2::elliptic_curve::Generate;

    let budget = Duration::from_secs(2);
    let none = MechanismParam::None;
    let pair = lookup(CKM_SM2_KEY_PAIR_GEN)
        .unwrap()
        .generate_key_pair(&none, &Attributes::new(), &Attributes::new())
        .unwrap();
    let public = load_key(&pair.public).unwrap();
    let private = load_key(&pair.private).unwrap();
    let value = pair.private.get(CKA_VALUE).unwrap().to_vec();
    let msg = [0x42u8; 32];

    // The crate directly, same key, same default ID.
    let crate_signing = sm2::dsa::SigningKey::from_slice("1234567812345678", &value).unwrap();
    let crate_verifying = crate_signing.verifying_key().clone();
    let crate_decrypting = sm2::pke::DecryptingKey::new_with_mode(
        sm2::NonZeroScalar::try_from(&value[..]).unwrap(),
        sm2::pke::Mode::C1C3C2,
    );

    let sign_mech = lookup(CKM_SM3_SM2).unwrap();
    let (ours_sign, crate_sign) = duel(
        || {
            let mut op = sign_mech.sign(&none, &private).unwrap();
            op.update(&msg).unwrap();
            std::hint::black_box(op.finish().unwrap());
        },
        || {
            let sig: sm2::dsa::Signature = crate_signing.sign(&msg);
            std::hint::black_box(sig);
        },
    );

    let sig = {
        let mut op = sign_mech.sign(&none, &private).unwrap();
        op.update(&msg).unwrap();
        op.finish().unwrap()
    };
    let crate_sig = sm2::dsa::Signature::from_slice(&sig).unwrap();
    let (ours_verify, crate_verify) = duel(
        || {
            let mut op = sign_mech.verify(&none, &public).unwrap();
            op.update(&msg).unwrap();
            op.finish(&sig).unwrap();
        },
        || {
            crate_verifying.verify(&msg, &crate_sig).unwrap();
        },
    );

    let cipher = lookup(CKM_SM2_CIPHER_DER).unwrap();
    let ct = cipher.encrypt(&none, &public).unwrap().run(&msg).unwrap();
    let (ours_decrypt, crate_decrypt) = duel(
        || {
            let mut op = cipher.decrypt(&none, &private).unwrap();
            std::hint::black_box(op.run(&ct).unwrap());
        },
        || {
            std::hint::black_box(crate_decrypting.decrypt_der(&ct).unwrap());
        },
    );

    let keygen = lookup(CKM_SM2_KEY_PAIR_GEN).unwrap();
    let (ours_keygen, crate_keygen) = duel(
        || {
            std::hint::black_box(
                keygen
                    .generate_key_pair(&none, &Attributes::new(), &Attributes::new())
                    .unwrap(),
            );
        },
        || {
            let secret = sm2::SecretKey::generate();
            std::hint::black_box(secret.public_key().to_sec1_bytes());
        },
    );
    // Loading a stored private key (done once per key and login).
    let ours_load = rate(budget, || {
        let LoadedKey::Sm2Private(k) = load_key(&pair.private).unwrap() else {
            unreachable!()
        };
        std::hint::black_box(k);
    });

    // Where a signature's time goes (crate primitives).
    let scalar = sm2::NonZeroScalar::try_from(&value[..]).unwrap();
    let base_mul = rate(budget, || {
        use sm2::elliptic_curve::Group;
        std::hint::black_box(sm2::ProjectivePoint::mul_by_generator(scalar.as_ref()).to_affine());
    });
    let invert = rate(budget, || {
        std::hint::black_box((*scalar.as_ref() + sm2::Scalar::ONE).invert().unwrap());
    });
    let prehash_sign = rate(budget, || {
        use sm2::dsa::signature::hazmat::PrehashSigner;
        let sig: sm2::dsa::Signature = crate_signing.sign_prehash(&msg).unwrap();
        std::hint::black_box(sig);
    });
    println!(
        "components/s: k*G {base_mul:.0}, (1+d)^-1 {invert:.0}, crate sign_prehash {prehash_sign:.0}"
    );

    println!("SM2 ops/s        ferrohsm   sm2 crate   ratio");
    for (name, ours, theirs) in [
        ("sign (SM3+Z)", ours_sign, crate_sign),
        ("verify", ours_verify, crate_verify),
        ("decrypt (DER)", ours_decrypt, crate_decrypt),
        ("keygen", ours_keygen, crate_keygen),
    ] {
        println!(
            "{name:<16} {ours:>9.0} {theirs:>11.0} {:>7.2}",
            ours / theirs
        );
    }
    println!("load private key {ours_load:>9.0}");
}
