//! Backend tests: round trips, cross-checks between aws-lc and the rsa crate, error codes,
//! and malformed input. One key pair is generated for the whole module.

use super::rustcrypto::RustCryptoBackend;
use super::*;
use crate::crypto::random_bytes;
use cryptoki_sys::*;
use std::sync::OnceLock;

const F4: [u8; 3] = [1, 0, 1];
const HASHES: [HashAlg; 5] = [
    HashAlg::Sha1,
    HashAlg::Sha224,
    HashAlg::Sha256,
    HashAlg::Sha384,
    HashAlg::Sha512,
];

fn components() -> &'static RsaPrivateComponents {
    static KEY: OnceLock<RsaPrivateComponents> = OnceLock::new();
    KEY.get_or_init(|| backend().generate(2048, &F4).expect("keygen"))
}

/// The private key as every compiled backend parses it.
fn private_keys() -> &'static [(&'static str, Arc<dyn RsaPrivateKey>)] {
    static KEYS: OnceLock<Vec<(&'static str, Arc<dyn RsaPrivateKey>)>> = OnceLock::new();
    KEYS.get_or_init(|| {
        #[allow(unused_mut)]
        let mut keys = vec![(
            "rustcrypto",
            RustCryptoBackend.load_private(components()).expect("load"),
        )];
        #[cfg(feature = "aws-lc")]
        keys.push((
            "aws-lc",
            awslc::AwsLcBackend
                .load_private(components())
                .expect("load"),
        ));
        keys
    })
}

/// The public key as every compiled backend parses it.
fn public_keys() -> Vec<(&'static str, Arc<dyn RsaPublicKey>)> {
    #[allow(unused_mut)]
    let mut keys: Vec<(&'static str, Arc<dyn RsaPublicKey>)> = vec![(
        "rustcrypto",
        RustCryptoBackend.load_public(&components().public).unwrap(),
    )];
    #[cfg(feature = "aws-lc")]
    keys.push((
        "aws-lc",
        awslc::AwsLcBackend
            .load_public(&components().public)
            .unwrap(),
    ));
    keys
}

/// Every public backend against every private backend: what one encrypts the other
/// decrypts, what one signs the other verifies.
#[test]
fn backend_matrix_interoperates() {
    let mut enc = vec![RsaEncryption::Pkcs1v15, RsaEncryption::Raw];
    for hash in HASHES {
        enc.push(oaep(hash, hash, b""));
        enc.push(oaep(hash, hash, b"label"));
    }
    enc.push(oaep(HashAlg::Sha256, HashAlg::Sha1, b"mixed"));
    for (pub_name, public) in public_keys() {
        for scheme in &enc {
            let ct = public.encrypt(scheme, b"matrix").unwrap();
            assert_eq!(ct.len(), 256);
            for (priv_name, key) in private_keys() {
                let pt = key.decrypt(scheme, &ct).unwrap();
                assert!(
                    pt.ends_with(b"matrix"),
                    "{pub_name} -> {priv_name} {scheme:?}"
                );
            }
        }
        for (scheme, input) in all_signature_schemes() {
            for (priv_name, key) in private_keys() {
                let sig = key.sign(&scheme, &input).unwrap();
                public
                    .verify(&scheme, &input, &sig)
                    .unwrap_or_else(|e| panic!("{priv_name} -> {pub_name} {scheme:?}: {e}"));
                let mut bad = sig.clone();
                bad[0] ^= 0x40;
                assert_ne!(rv(public.verify(&scheme, &input, &bad)), CKR_OK);
                assert_eq!(
                    rv(public.verify(&scheme, &input, &sig[1..])),
                    CKR_SIGNATURE_LEN_RANGE
                );
            }
        }
    }
}

fn public_key() -> Arc<dyn RsaPublicKey> {
    backend()
        .load_public(&components().public)
        .expect("load public")
}

fn rv<T>(r: Result<T>) -> CK_RV {
    match r {
        Ok(_) => CKR_OK,
        Err(e) => e.rv,
    }
}

fn random(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    random_bytes(&mut v).unwrap();
    v
}

fn oaep(hash: HashAlg, mgf1: HashAlg, label: &[u8]) -> RsaEncryption {
    RsaEncryption::Oaep {
        hash,
        mgf1,
        label: label.to_vec(),
    }
}

#[test]
fn generated_key_is_complete_and_2048_bits() {
    let c = components();
    assert_eq!(c.public.modulus.len(), 256);
    assert!(c.public.modulus[0] & 0x80 != 0);
    assert_eq!(c.public.public_exponent, F4);
    for part in [
        &c.prime_1,
        &c.prime_2,
        &c.exponent_1,
        &c.exponent_2,
        &c.coefficient,
    ] {
        assert!(part.as_ref().is_some_and(|v| !v.is_empty()));
    }
}

#[test]
fn pkcs1v15_and_raw_round_trip_on_every_backend() {
    let public = public_key();
    for (name, key) in private_keys() {
        let ct = public.encrypt(&RsaEncryption::Pkcs1v15, b"hello").unwrap();
        assert_eq!(
            key.decrypt(&RsaEncryption::Pkcs1v15, &ct)
                .unwrap()
                .as_slice(),
            b"hello",
            "{name}"
        );
        let max = vec![0x5a; 256 - 11];
        let ct = public.encrypt(&RsaEncryption::Pkcs1v15, &max).unwrap();
        assert_eq!(
            key.decrypt(&RsaEncryption::Pkcs1v15, &ct)
                .unwrap()
                .as_slice(),
            max,
            "{name}"
        );
        let ct = public.encrypt(&RsaEncryption::Pkcs1v15, b"").unwrap();
        assert!(
            key.decrypt(&RsaEncryption::Pkcs1v15, &ct)
                .unwrap()
                .is_empty(),
            "{name}"
        );

        let ct = public.encrypt(&RsaEncryption::Raw, b"\x01\x02raw").unwrap();
        assert_eq!(ct.len(), 256);
        let pt = key.decrypt(&RsaEncryption::Raw, &ct).unwrap();
        let mut expected = vec![0u8; 256 - 5];
        expected.extend_from_slice(b"\x01\x02raw");
        assert_eq!(pt.as_slice(), expected, "{name}");
    }
}

#[test]
fn oaep_every_hash_and_mgf_with_and_without_label() {
    let public = public_key();
    for hash in HASHES {
        for mgf1 in HASHES {
            for label in [&b""[..], b"a label"] {
                let scheme = oaep(hash, mgf1, label);
                let ct = public.encrypt(&scheme, b"secret").unwrap();
                for (name, key) in private_keys() {
                    let pt = key.decrypt(&scheme, &ct).unwrap();
                    assert_eq!(pt.as_slice(), b"secret", "{name} {hash:?} {mgf1:?}");
                    // The wrong label or MGF hash must not decrypt.
                    let other = oaep(hash, mgf1, b"other");
                    assert_eq!(rv(key.decrypt(&other, &ct)), CKR_ENCRYPTED_DATA_INVALID);
                }
            }
        }
    }
}

#[test]
fn oaep_longest_message_and_one_more() {
    let public = public_key();
    for hash in HASHES {
        let room = 256 - 2 * hash.output_len() - 2;
        let scheme = oaep(hash, hash, b"");
        let ct = public.encrypt(&scheme, &vec![7u8; room]).unwrap();
        for (_, key) in private_keys() {
            assert_eq!(key.decrypt(&scheme, &ct).unwrap().len(), room);
        }
        assert_eq!(
            rv(public.encrypt(&scheme, &vec![7u8; room + 1])),
            CKR_DATA_LEN_RANGE
        );
    }
}

fn all_signature_schemes() -> Vec<(RsaSignature, Vec<u8>)> {
    let mut schemes = Vec::new();
    for hash in HASHES {
        let digest = hash.digest(b"message");
        schemes.push((RsaSignature::Pkcs1v15Digest(hash), digest.clone()));
        let mut info = digest_info_prefix(hash).unwrap().to_vec();
        info.extend_from_slice(&digest);
        schemes.push((RsaSignature::Pkcs1v15Raw, info));
        for salt_len in [0, hash.output_len(), 256 - hash.output_len() - 2] {
            schemes.push((
                RsaSignature::Pss {
                    hash,
                    mgf1: hash,
                    salt_len,
                },
                digest.clone(),
            ));
        }
    }
    schemes.push((RsaSignature::Pkcs1v15Raw, b"any bytes at all".to_vec()));
    schemes.push((RsaSignature::Raw, b"\x00\x01raw input".to_vec()));
    schemes
}

#[test]
fn every_signature_scheme_verifies_on_every_backend() {
    let public = public_key();
    for (scheme, input) in all_signature_schemes() {
        for (name, key) in private_keys() {
            let sig = key.sign(&scheme, &input).unwrap();
            assert_eq!(sig.len(), 256);
            public
                .verify(&scheme, &input, &sig)
                .unwrap_or_else(|e| panic!("{name} {scheme:?}: {e}"));
            let mut bad = sig.clone();
            bad[100] ^= 1;
            assert_eq!(
                rv(public.verify(&scheme, &input, &bad)),
                CKR_SIGNATURE_INVALID,
                "{name} {scheme:?}"
            );
        }
    }
}

#[test]
fn deterministic_signatures_agree_between_backends() {
    let keys = private_keys();
    for (scheme, input) in all_signature_schemes() {
        if matches!(scheme, RsaSignature::Pss { .. }) {
            continue;
        }
        let first = keys[0].1.sign(&scheme, &input).unwrap();
        for (name, key) in &keys[1..] {
            assert_eq!(
                key.sign(&scheme, &input).unwrap(),
                first,
                "{name} {scheme:?}"
            );
        }
    }
    // CKM_RSA_PKCS over a DigestInfo is the hash-specific PKCS#1 v1.5 signature.
    for hash in HASHES {
        let digest = hash.digest(b"x");
        let mut info = digest_info_prefix(hash).unwrap().to_vec();
        info.extend_from_slice(&digest);
        for (_, key) in keys {
            assert_eq!(
                key.sign(&RsaSignature::Pkcs1v15Raw, &info).unwrap(),
                key.sign(&RsaSignature::Pkcs1v15Digest(hash), &digest)
                    .unwrap()
            );
        }
    }
}

#[test]
fn decrypt_error_codes() {
    let public = public_key();
    let n = components().public.modulus.clone();
    let ct = public.encrypt(&RsaEncryption::Pkcs1v15, b"x").unwrap();
    let schemes = [
        RsaEncryption::Pkcs1v15,
        RsaEncryption::Raw,
        oaep(HashAlg::Sha256, HashAlg::Sha256, b""),
        oaep(HashAlg::Sha224, HashAlg::Sha1, b""),
    ];
    for (name, key) in private_keys() {
        for scheme in &schemes {
            assert_eq!(
                rv(key.decrypt(scheme, &ct[1..])),
                CKR_ENCRYPTED_DATA_LEN_RANGE,
                "{name}"
            );
            assert_eq!(
                rv(key.decrypt(scheme, &[ct.clone(), vec![0]].concat())),
                CKR_ENCRYPTED_DATA_LEN_RANGE
            );
            assert_eq!(rv(key.decrypt(scheme, &[])), CKR_ENCRYPTED_DATA_LEN_RANGE);
            assert_eq!(
                rv(key.decrypt(scheme, &n)),
                CKR_ENCRYPTED_DATA_INVALID,
                "{name} {scheme:?}"
            );
            assert_eq!(
                rv(key.decrypt(scheme, &[0xff; 256])),
                CKR_ENCRYPTED_DATA_INVALID
            );
        }
        // A PKCS#1 ciphertext is not OAEP and the other way round.
        assert_eq!(
            rv(key.decrypt(&schemes[2], &ct)),
            CKR_ENCRYPTED_DATA_INVALID,
            "{name}"
        );
        // An OAEP block starts 00 02 one time in 256 (its masked seed is random), and then
        // likely parses as PKCS#1 v1.5: take one that does not (raw decryption shows it).
        let oaep_ct = loop {
            let ct = public.encrypt(&schemes[2], b"x").unwrap();
            let block = key.decrypt(&RsaEncryption::Raw, &ct).unwrap();
            if block[1] != 2 {
                break ct;
            }
        };
        assert_eq!(
            rv(key.decrypt(&RsaEncryption::Pkcs1v15, &oaep_ct)),
            CKR_ENCRYPTED_DATA_INVALID,
            "{name}"
        );
        // Raw encryption of a block with bad PKCS#1 padding (type 1 instead of 2).
        let mut em = vec![0u8, 1];
        em.extend(std::iter::repeat_n(0xff, 243));
        em.push(0);
        em.extend_from_slice(b"0123456789");
        let ct = public.encrypt(&RsaEncryption::Raw, &em).unwrap();
        assert_eq!(
            rv(key.decrypt(&RsaEncryption::Pkcs1v15, &ct)),
            CKR_ENCRYPTED_DATA_INVALID,
            "{name}"
        );
        // Padding shorter than eight octets.
        let mut em = vec![0u8, 2, 1, 1, 1, 0];
        em.extend(std::iter::repeat_n(0x41, 250));
        let ct = public.encrypt(&RsaEncryption::Raw, &em).unwrap();
        assert_eq!(
            rv(key.decrypt(&RsaEncryption::Pkcs1v15, &ct)),
            CKR_ENCRYPTED_DATA_INVALID,
            "{name}"
        );
    }
}

#[test]
fn encrypt_error_codes() {
    let public = public_key();
    let n = components().public.modulus.clone();
    assert_eq!(
        rv(public.encrypt(&RsaEncryption::Pkcs1v15, &[1; 246])),
        CKR_DATA_LEN_RANGE
    );
    assert_eq!(
        rv(public.encrypt(&RsaEncryption::Pkcs1v15, &[1; 245])),
        CKR_OK
    );
    assert_eq!(
        rv(public.encrypt(&RsaEncryption::Raw, &[1; 257])),
        CKR_DATA_LEN_RANGE
    );
    assert_eq!(
        rv(public.encrypt(&RsaEncryption::Raw, &n)),
        CKR_DATA_INVALID
    );
    assert_eq!(
        rv(public.encrypt(&RsaEncryption::Raw, &[0xff; 256])),
        CKR_DATA_INVALID
    );
    let sm3 = oaep(HashAlg::Sm3, HashAlg::Sha1, b"");
    assert_eq!(rv(public.encrypt(&sm3, b"x")), CKR_MECHANISM_PARAM_INVALID);
}

#[test]
fn signature_error_codes() {
    let public = public_key();
    let n = components().public.modulus.clone();
    let digest = HashAlg::Sha256.digest(b"m");
    let pss = RsaSignature::Pss {
        hash: HashAlg::Sha256,
        mgf1: HashAlg::Sha256,
        salt_len: 32,
    };
    for (name, key) in private_keys() {
        let sig = key.sign(&pss, &digest).unwrap();
        assert_eq!(
            rv(public.verify(&pss, &digest, &sig[1..])),
            CKR_SIGNATURE_LEN_RANGE
        );
        assert_eq!(
            rv(public.verify(&pss, &digest, &[sig.clone(), vec![0]].concat())),
            CKR_SIGNATURE_LEN_RANGE
        );
        assert_eq!(rv(public.verify(&pss, &digest, &n)), CKR_SIGNATURE_INVALID);
        assert_eq!(
            rv(public.verify(&pss, &digest[1..], &sig)),
            CKR_DATA_LEN_RANGE
        );
        assert_eq!(
            rv(key.sign(&pss, &digest[1..])),
            CKR_DATA_LEN_RANGE,
            "{name}"
        );
        let long_salt = RsaSignature::Pss {
            hash: HashAlg::Sha256,
            mgf1: HashAlg::Sha256,
            salt_len: 256 - 32 - 1,
        };
        assert_eq!(
            rv(key.sign(&long_salt, &digest)),
            CKR_MECHANISM_PARAM_INVALID,
            "{name}"
        );
        let mixed = RsaSignature::Pss {
            hash: HashAlg::Sha256,
            mgf1: HashAlg::Sha1,
            salt_len: 32,
        };
        assert_eq!(
            rv(key.sign(&mixed, &digest)),
            CKR_MECHANISM_PARAM_INVALID,
            "{name}"
        );
        // A salt length other than the one signed with does not verify.
        let other_salt = RsaSignature::Pss {
            hash: HashAlg::Sha256,
            mgf1: HashAlg::Sha256,
            salt_len: 20,
        };
        assert_eq!(
            rv(public.verify(&other_salt, &digest, &sig)),
            CKR_SIGNATURE_INVALID
        );

        let p1 = RsaSignature::Pkcs1v15Digest(HashAlg::Sha256);
        assert_eq!(
            rv(key.sign(&p1, &digest[1..])),
            CKR_DATA_LEN_RANGE,
            "{name}"
        );
        assert_eq!(
            rv(key.sign(&RsaSignature::Pkcs1v15Raw, &[1; 246])),
            CKR_DATA_LEN_RANGE,
            "{name}"
        );
        assert_eq!(
            rv(key.sign(&RsaSignature::Pkcs1v15Raw, &[1; 245])),
            CKR_OK,
            "{name}"
        );
        assert_eq!(
            rv(key.sign(&RsaSignature::Raw, &[1; 257])),
            CKR_DATA_LEN_RANGE,
            "{name}"
        );
        assert_eq!(
            rv(key.sign(&RsaSignature::Raw, &n)),
            CKR_DATA_INVALID,
            "{name}"
        );
        let sig = key.sign(&p1, &digest).unwrap();
        assert_eq!(
            rv(public.verify(&p1, &HashAlg::Sha256.digest(b"n"), &sig)),
            CKR_SIGNATURE_INVALID
        );
        assert_eq!(
            rv(public.verify(&RsaSignature::Pkcs1v15Raw, &[1; 246], &sig)),
            CKR_DATA_LEN_RANGE
        );
        assert_eq!(
            rv(public.verify(&RsaSignature::Raw, &[1; 257], &sig)),
            CKR_DATA_LEN_RANGE
        );
        assert_eq!(
            rv(public.verify(&RsaSignature::Raw, b"x", &n)),
            CKR_SIGNATURE_INVALID
        );
        assert_eq!(
            rv(public.verify(&RsaSignature::Raw, b"x", &sig)),
            CKR_SIGNATURE_INVALID
        );
    }
}

/// Random, short, long and out-of-range inputs to every operation: errors only, no panic.
#[test]
fn malformed_input_fuzz() {
    let public = public_key();
    let n = components().public.modulus.clone();
    let enc_schemes = [
        RsaEncryption::Pkcs1v15,
        RsaEncryption::Raw,
        oaep(HashAlg::Sha1, HashAlg::Sha1, b""),
        oaep(HashAlg::Sha512, HashAlg::Sha224, b"l"),
    ];
    let mut inputs: Vec<Vec<u8>> = vec![
        vec![],
        vec![0],
        vec![0; 255],
        vec![0; 256],
        vec![0; 257],
        n.clone(),
    ];
    let mut above_n = n.clone();
    above_n[255] = above_n[255].wrapping_add(1);
    inputs.push(above_n);
    for len in [1, 11, 128, 255, 256, 256, 256, 256, 257, 512] {
        inputs.push(random(len));
    }
    for (name, key) in private_keys() {
        for scheme in &enc_schemes {
            for input in &inputs {
                let r = key.decrypt(scheme, input);
                if let Err(e) = &r {
                    assert!(
                        [CKR_ENCRYPTED_DATA_LEN_RANGE, CKR_ENCRYPTED_DATA_INVALID].contains(&e.rv),
                        "{name} {scheme:?} len {}: {e}",
                        input.len()
                    );
                } else {
                    assert_eq!(input.len(), 256);
                }
                let _ = public.encrypt(scheme, input);
            }
        }
        for (scheme, _) in all_signature_schemes() {
            for input in &inputs {
                let _ = key.sign(&scheme, input);
                let r = public.verify(&scheme, input, input);
                // 0^e = 0: an all-zero block is its own raw signature.
                let zero_block = input.len() == 256 && input.iter().all(|b| *b == 0);
                assert!(
                    r.is_err() || (scheme == RsaSignature::Raw && zero_block),
                    "{name} {scheme:?}"
                );
            }
        }
    }
}

/// Random full-length ciphertexts: almost all are bad padding, a few are >= n; both must be
/// CKR_ENCRYPTED_DATA_INVALID on every backend (never another code, never a panic).
#[test]
fn random_ciphertexts_are_encrypted_data_invalid() {
    let schemes = [
        RsaEncryption::Pkcs1v15,
        oaep(HashAlg::Sha256, HashAlg::Sha256, b""),
        oaep(HashAlg::Sha1, HashAlg::Sha384, b"x"),
    ];
    for (name, key) in private_keys() {
        for scheme in &schemes {
            for _ in 0..40 {
                let ct = random(256);
                assert_eq!(
                    rv(key.decrypt(scheme, &ct)),
                    CKR_ENCRYPTED_DATA_INVALID,
                    "{name} {scheme:?}"
                );
            }
        }
    }
}

/// One parsed key shared by threads: the aws-lc handles are used concurrently and the lazy
/// fallback is initialised under a race.
#[test]
fn a_key_is_shared_across_threads() {
    let full = components();
    let fresh = backend().load_private(full).unwrap();
    let public = public_key();
    let ct = public
        .encrypt(&RsaEncryption::Pkcs1v15, b"threads")
        .unwrap();
    let raw_ct = public.encrypt(&RsaEncryption::Raw, b"raw").unwrap();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let key = fresh.clone();
            let (ct, raw_ct) = (&ct, &raw_ct);
            scope.spawn(move || {
                for _ in 0..3 {
                    let pt = key.decrypt(&RsaEncryption::Pkcs1v15, ct).unwrap();
                    assert_eq!(pt.as_slice(), b"threads");
                    let pt = key.decrypt(&RsaEncryption::Raw, raw_ct).unwrap();
                    assert!(pt.ends_with(b"raw"));
                }
            });
        }
    });
}

#[test]
fn imported_key_without_crt_values_works() {
    let full = components();
    let bare = RsaPrivateComponents {
        public: full.public.clone(),
        private_exponent: full.private_exponent.clone(),
        prime_1: None,
        prime_2: None,
        exponent_1: None,
        exponent_2: None,
        coefficient: None,
    };
    let primes_only = RsaPrivateComponents {
        prime_1: full.prime_1.clone(),
        prime_2: full.prime_2.clone(),
        ..bare.clone()
    };
    let public = public_key();
    let ct = public.encrypt(&RsaEncryption::Pkcs1v15, b"bare").unwrap();
    let digest = HashAlg::Sha256.digest(b"m");
    let reference = private_keys()[0]
        .1
        .sign(&RsaSignature::Pkcs1v15Digest(HashAlg::Sha256), &digest)
        .unwrap();
    for parts in [&bare, &primes_only] {
        for key in [
            backend().load_private(parts).unwrap(),
            RustCryptoBackend.load_private(parts).unwrap(),
        ] {
            assert_eq!(
                key.decrypt(&RsaEncryption::Pkcs1v15, &ct)
                    .unwrap()
                    .as_slice(),
                b"bare"
            );
            let sig = key
                .sign(&RsaSignature::Pkcs1v15Digest(HashAlg::Sha256), &digest)
                .unwrap();
            assert_eq!(sig, reference);
        }
    }
}

#[test]
fn invalid_components_are_refused() {
    let full = components();
    let mut wrong_d = full.clone();
    wrong_d.private_exponent[100] ^= 1;
    let mut wrong_p = full.clone();
    if let Some(p) = wrong_p.prime_1.as_mut() {
        p[10] ^= 1;
    }
    let mut even_n = full.clone();
    even_n.public.modulus[255] &= 0xfe;
    let mut short_n = full.clone();
    short_n.public.modulus.truncate(64);
    let mut empty_e = full.clone();
    empty_e.public.public_exponent.clear();
    for bad in [&wrong_d, &wrong_p, &even_n, &short_n, &empty_e] {
        assert_eq!(rv(backend().load_private(bad)), CKR_ATTRIBUTE_VALUE_INVALID);
        assert_eq!(
            rv(RustCryptoBackend.load_private(bad)),
            CKR_ATTRIBUTE_VALUE_INVALID
        );
    }
    for bad in [&even_n, &short_n, &empty_e] {
        assert_eq!(
            rv(backend().load_public(&bad.public)),
            CKR_ATTRIBUTE_VALUE_INVALID
        );
    }
}

#[test]
fn generation_with_other_exponent_and_size_ranges() {
    assert_eq!(rv(backend().generate(512, &F4)), CKR_KEY_SIZE_RANGE);
    assert_eq!(rv(backend().generate(16384, &F4)), CKR_KEY_SIZE_RANGE);
    // 65539 is prime and not aws-lc's exponent: the rsa crate makes this one.
    let key = backend().generate(2048, &[1, 0, 3]).unwrap();
    assert_eq!(key.public.public_exponent, [1, 0, 3]);
    let private = backend().load_private(&key).unwrap();
    let public = backend().load_public(&key.public).unwrap();
    let ct = public.encrypt(&RsaEncryption::Pkcs1v15, b"e").unwrap();
    assert_eq!(
        private
            .decrypt(&RsaEncryption::Pkcs1v15, &ct)
            .unwrap()
            .as_slice(),
        b"e"
    );
}

/// Our DigestInfo headers are the ones the rsa crate derives from each hash's OID.
#[test]
fn digest_info_prefixes_match_the_rsa_crate() {
    use rsa::Pkcs1v15Sign;
    let expected = [
        (HashAlg::Sha1, Pkcs1v15Sign::new::<sha1::Sha1>()),
        (HashAlg::Sha224, Pkcs1v15Sign::new::<sha2::Sha224>()),
        (HashAlg::Sha256, Pkcs1v15Sign::new::<sha2::Sha256>()),
        (HashAlg::Sha384, Pkcs1v15Sign::new::<sha2::Sha384>()),
        (HashAlg::Sha512, Pkcs1v15Sign::new::<sha2::Sha512>()),
    ];
    for (hash, padding) in expected {
        assert_eq!(digest_info_prefix(hash), Some(&*padding.prefix), "{hash:?}");
    }
    assert_eq!(digest_info_prefix(HashAlg::Sm3), None);
}

#[test]
fn digest_info_split() {
    let digest = HashAlg::Sha384.digest(b"q");
    let mut info = digest_info_prefix(HashAlg::Sha384).unwrap().to_vec();
    info.extend_from_slice(&digest);
    assert_eq!(
        split_digest_info(&info),
        Some((HashAlg::Sha384, &digest[..]))
    );
    assert_eq!(split_digest_info(&info[..info.len() - 1]), None);
    assert_eq!(split_digest_info(b"plain"), None);
}

/// RSA-2048 private-key throughput of each backend, for comparison with
/// `openssl speed -seconds 3 rsa2048`. Run with
/// `cargo test --release --lib rsa_decrypt_throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn rsa_decrypt_throughput() {
    let public = public_key();
    let ct = public
        .encrypt(&RsaEncryption::Pkcs1v15, b"benchmark")
        .unwrap();
    let oaep_scheme = oaep(HashAlg::Sha256, HashAlg::Sha256, b"");
    let oaep_ct = public.encrypt(&oaep_scheme, b"benchmark").unwrap();
    let digest = HashAlg::Sha256.digest(b"m");
    let sign_scheme = RsaSignature::Pkcs1v15Digest(HashAlg::Sha256);
    let sig = private_keys()[0].1.sign(&sign_scheme, &digest).unwrap();
    let encrypt = || {
        public
            .encrypt(&RsaEncryption::Pkcs1v15, b"benchmark")
            .unwrap();
    };
    let verify = || public.verify(&sign_scheme, &digest, &sig).unwrap();
    let public_ops: [(&str, &dyn Fn()); 2] = [
        ("PKCS#1 v1.5 encrypt", &encrypt),
        ("PKCS#1 v1.5 SHA-256 verify", &verify),
    ];
    for (what, op) in public_ops {
        let start = std::time::Instant::now();
        let mut count = 0u32;
        while start.elapsed().as_secs_f64() < 1.0 {
            op();
            count += 1;
        }
        let rate = f64::from(count) / start.elapsed().as_secs_f64();
        println!("    public RSA-2048 {what}: {rate:.0} ops/s");
    }
    for (name, key) in private_keys() {
        let measure = |what: &str, op: &dyn Fn()| {
            let start = std::time::Instant::now();
            let mut count = 0u32;
            while start.elapsed().as_secs_f64() < 3.0 {
                op();
                count += 1;
            }
            let rate = f64::from(count) / start.elapsed().as_secs_f64();
            println!("{name:>10} RSA-2048 {what}: {rate:.0} ops/s");
        };
        measure("PKCS#1 v1.5 decrypt", &|| {
            key.decrypt(&RsaEncryption::Pkcs1v15, &ct).unwrap();
        });
        measure("OAEP-SHA256 decrypt", &|| {
            key.decrypt(&oaep_scheme, &oaep_ct).unwrap();
        });
        measure("PKCS#1 v1.5 SHA-256 sign", &|| {
            key.sign(&sign_scheme, &digest).unwrap();
        });
    }
}

/// The other direction of the cross-check: aws-lc's own public-key code encrypts for, and
/// verifies signatures of, the rsa crate's private key.
#[cfg(feature = "aws-lc")]
#[test]
fn aws_lc_public_side_interoperates_with_the_rsa_crate() {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::{
        KeyPair, KeyPairComponents, OaepPublicEncryptingKey, Pkcs1PublicEncryptingKey,
        PrivateDecryptingKey, PublicKeyComponents, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256,
    };
    use aws_lc_rs::signature;

    let c = components();
    let part = |v: &Option<Zeroizing<Vec<u8>>>| v.as_ref().unwrap().to_vec();
    let pair = KeyPair::from_components(&KeyPairComponents {
        public_key: PublicKeyComponents {
            n: c.public.modulus.clone(),
            e: c.public.public_exponent.clone(),
        },
        d: c.private_exponent.to_vec(),
        p: part(&c.prime_1),
        q: part(&c.prime_2),
        dP: part(&c.exponent_1),
        dQ: part(&c.exponent_2),
        qInv: part(&c.coefficient),
    })
    .unwrap();
    let pkcs8 = pair.as_der().unwrap();
    let aws_public = PrivateDecryptingKey::from_pkcs8(pkcs8.as_ref())
        .unwrap()
        .public_key();
    let rustcrypto = RustCryptoBackend.load_private(c).unwrap();

    let mut out = vec![0u8; 256];
    let pkcs1 = Pkcs1PublicEncryptingKey::new(aws_public.clone()).unwrap();
    let ct = pkcs1.encrypt(b"from aws-lc", &mut out).unwrap().to_vec();
    let pt = rustcrypto.decrypt(&RsaEncryption::Pkcs1v15, &ct).unwrap();
    assert_eq!(pt.as_slice(), b"from aws-lc");

    let oaep_key = OaepPublicEncryptingKey::new(aws_public).unwrap();
    for (alg, hash) in [
        (&OAEP_SHA1_MGF1SHA1, HashAlg::Sha1),
        (&OAEP_SHA256_MGF1SHA256, HashAlg::Sha256),
    ] {
        for label in [None, Some(&b"label"[..])] {
            let ct = oaep_key
                .encrypt(alg, b"oaep from aws-lc", &mut out, label)
                .unwrap()
                .to_vec();
            let scheme = oaep(hash, hash, label.unwrap_or_default());
            let pt = rustcrypto.decrypt(&scheme, &ct).unwrap();
            assert_eq!(pt.as_slice(), b"oaep from aws-lc");
        }
    }

    let aws_verifier = signature::RsaPublicKeyComponents {
        n: c.public.modulus.as_slice(),
        e: c.public.public_exponent.as_slice(),
    };
    let message = b"signed by the rsa crate";
    for (hash, pkcs1_params, pss_params) in [
        (
            HashAlg::Sha256,
            &signature::RSA_PKCS1_2048_8192_SHA256,
            &signature::RSA_PSS_2048_8192_SHA256,
        ),
        (
            HashAlg::Sha512,
            &signature::RSA_PKCS1_2048_8192_SHA512,
            &signature::RSA_PSS_2048_8192_SHA512,
        ),
    ] {
        let digest = hash.digest(message);
        let sig = rustcrypto
            .sign(&RsaSignature::Pkcs1v15Digest(hash), &digest)
            .unwrap();
        aws_verifier.verify(pkcs1_params, message, &sig).unwrap();
        let pss = RsaSignature::Pss {
            hash,
            mgf1: hash,
            salt_len: hash.output_len(),
        };
        let sig = rustcrypto.sign(&pss, &digest).unwrap();
        aws_verifier.verify(pss_params, message, &sig).unwrap();
    }
}
