//! Mechanism-level tests: the PKCS#11 view (parameters, key kinds, single/multi-part,
//! mechanism info, key objects) over whichever backend is compiled in.

use super::keygen::RsaKeyPairGen;
use super::*;
use crate::crypto::rsa::digest_info_prefix;
use crate::error::Error;
use crate::object::Attributes;
use std::sync::OnceLock;

const HASH_MECHS: [(CK_MECHANISM_TYPE, CK_RSA_PKCS_MGF_TYPE, HashAlg); 5] = [
    (CKM_SHA_1, CKG_MGF1_SHA1, HashAlg::Sha1),
    (CKM_SHA224, CKG_MGF1_SHA224, HashAlg::Sha224),
    (CKM_SHA256, CKG_MGF1_SHA256, HashAlg::Sha256),
    (CKM_SHA384, CKG_MGF1_SHA384, HashAlg::Sha384),
    (CKM_SHA512, CKG_MGF1_SHA512, HashAlg::Sha512),
];

/// One generated pair for the module: (public attributes, private attributes).
fn pair() -> &'static (Attributes, Attributes) {
    static PAIR: OnceLock<(Attributes, Attributes)> = OnceLock::new();
    PAIR.get_or_init(|| {
        let pair = RsaKeyPairGen
            .generate_key_pair(
                &MechanismParam::None,
                &Attributes::new(),
                &Attributes::new(),
            )
            .expect("keygen");
        (pair.public, pair.private)
    })
}

fn keys() -> &'static (LoadedKey, LoadedKey) {
    static KEYS: OnceLock<(LoadedKey, LoadedKey)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let (public, private) = pair();
        (load_key(public).unwrap(), load_key(private).unwrap())
    })
}

fn mechanism(ty: CK_MECHANISM_TYPE) -> Box<dyn Mechanism> {
    mechanisms()
        .into_iter()
        .find(|(t, _)| *t == ty)
        .map(|(_, m)| m)
        .expect("registered")
}

fn rv<T>(r: Result<T>) -> CK_RV {
    match r {
        Ok(_) => CKR_OK,
        Err(Error { rv, .. }) => rv,
    }
}

fn encrypt(ty: CK_MECHANISM_TYPE, param: &MechanismParam, data: &[u8]) -> Result<Vec<u8>> {
    let mut op = mechanism(ty).encrypt(param, &keys().0)?;
    assert_eq!(op.output_len(data.len())?, 256);
    op.run(data).map(|v| v.to_vec())
}

fn decrypt(ty: CK_MECHANISM_TYPE, param: &MechanismParam, data: &[u8]) -> Result<Vec<u8>> {
    let mut op = mechanism(ty).decrypt(param, &keys().1)?;
    op.run(data).map(|v| v.to_vec())
}

/// Signs `parts` (one update each) and verifies them the same way.
fn sign_verify(ty: CK_MECHANISM_TYPE, param: &MechanismParam, parts: &[&[u8]]) -> Result<Vec<u8>> {
    let mut op = mechanism(ty).sign(param, &keys().1)?;
    assert_eq!(op.signature_len(), 256);
    for part in parts {
        op.update(part)?;
    }
    let sig = op.finish()?;
    let mut v = mechanism(ty).verify(param, &keys().0)?;
    for part in parts {
        v.update(part)?;
    }
    v.finish(&sig)?;
    Ok(sig)
}

fn verify(ty: CK_MECHANISM_TYPE, param: &MechanismParam, data: &[u8], sig: &[u8]) -> Result<()> {
    let mut v = mechanism(ty).verify(param, &keys().0)?;
    v.update(data)?;
    v.finish(sig)
}

fn oaep_param(
    hash_alg: CK_MECHANISM_TYPE,
    mgf: CK_RSA_PKCS_MGF_TYPE,
    label: &[u8],
) -> MechanismParam {
    MechanismParam::Oaep {
        hash_alg,
        mgf,
        source: CKZ_DATA_SPECIFIED,
        source_data: label.to_vec(),
    }
}

fn pss_param(
    hash_alg: CK_MECHANISM_TYPE,
    mgf: CK_RSA_PKCS_MGF_TYPE,
    salt_len: CK_ULONG,
) -> MechanismParam {
    MechanismParam::Pss {
        hash_alg,
        mgf,
        salt_len,
    }
}

#[test]
fn generated_pair_has_the_attributes_the_object_layer_expects() {
    let (public, private) = pair();
    assert_eq!(public.get_ulong(CKA_CLASS).unwrap(), Some(CKO_PUBLIC_KEY));
    assert_eq!(public.get_ulong(CKA_KEY_TYPE).unwrap(), Some(CKK_RSA));
    assert_eq!(public.get_ulong(CKA_MODULUS_BITS).unwrap(), Some(2048));
    assert_eq!(public.get(CKA_MODULUS).map(<[u8]>::len), Some(256));
    assert_eq!(public.get(CKA_PUBLIC_EXPONENT), Some(&[1u8, 0, 1][..]));
    assert_eq!(private.get_ulong(CKA_CLASS).unwrap(), Some(CKO_PRIVATE_KEY));
    assert_eq!(private.get_ulong(CKA_KEY_TYPE).unwrap(), Some(CKK_RSA));
    assert_eq!(private.get(CKA_MODULUS), public.get(CKA_MODULUS));
    for ty in [
        CKA_PUBLIC_EXPONENT,
        CKA_PRIVATE_EXPONENT,
        CKA_PRIME_1,
        CKA_PRIME_2,
        CKA_EXPONENT_1,
        CKA_EXPONENT_2,
        CKA_COEFFICIENT,
    ] {
        assert!(private.get(ty).is_some_and(|v| !v.is_empty()), "0x{ty:x}");
    }
}

#[test]
fn keygen_template_checks() {
    let gen = |bits: Option<CK_ULONG>, e: Option<&[u8]>| {
        let mut t = Attributes::new();
        if let Some(bits) = bits {
            t.set_ulong(CKA_MODULUS_BITS, bits);
        }
        if let Some(e) = e {
            t.set(CKA_PUBLIC_EXPONENT, e.to_vec());
        }
        rv(RsaKeyPairGen.generate_key_pair(&MechanismParam::None, &t, &Attributes::new()))
    };
    // The mechanism's own floor; the configured minimum (api::key_size) raises it.
    assert_eq!(gen(Some(768), None), CKR_KEY_SIZE_RANGE);
    assert_eq!(gen(Some(1023), None), CKR_KEY_SIZE_RANGE);
    assert_eq!(gen(Some(4097), None), CKR_KEY_SIZE_RANGE);
    assert_eq!(gen(Some(0), None), CKR_KEY_SIZE_RANGE);
    assert_eq!(gen(None, Some(&[3])), CKR_ATTRIBUTE_VALUE_INVALID);
    assert_eq!(gen(None, Some(&[1, 0, 0])), CKR_ATTRIBUTE_VALUE_INVALID);
    assert_eq!(
        gen(None, Some(&[0, 0, 0xff, 0xff])),
        CKR_ATTRIBUTE_VALUE_INVALID
    );
    assert_eq!(gen(None, Some(&[])), CKR_ATTRIBUTE_VALUE_INVALID);
    let mut bad_bits = Attributes::new();
    bad_bits.set(CKA_MODULUS_BITS, vec![1, 2]);
    assert_eq!(
        rv(RsaKeyPairGen.generate_key_pair(&MechanismParam::None, &bad_bits, &Attributes::new())),
        CKR_ATTRIBUTE_VALUE_INVALID
    );
    assert_eq!(
        rv(RsaKeyPairGen.generate_key_pair(
            &MechanismParam::Bytes(vec![1]),
            &Attributes::new(),
            &Attributes::new()
        )),
        CKR_MECHANISM_PARAM_INVALID
    );
}

#[test]
fn keygen_honours_size_and_padded_exponent() {
    let mut t = Attributes::new();
    t.set_ulong(CKA_MODULUS_BITS, 3072);
    t.set(CKA_PUBLIC_EXPONENT, vec![0, 1, 0, 1]);
    let pair = RsaKeyPairGen
        .generate_key_pair(&MechanismParam::None, &t, &Attributes::new())
        .unwrap();
    assert_eq!(pair.public.get_ulong(CKA_MODULUS_BITS).unwrap(), Some(3072));
    assert_eq!(pair.public.get(CKA_MODULUS).map(<[u8]>::len), Some(384));
    assert_eq!(pair.public.get(CKA_PUBLIC_EXPONENT), Some(&[1u8, 0, 1][..]));
}

#[test]
fn mechanism_info_is_exact() {
    let info = |ty| mechanism(ty).info();
    assert_eq!(
        info(CKM_RSA_PKCS_KEY_PAIR_GEN),
        MechanismInfo {
            // Before the configured minimum (api::key_size) applies.
            min_key_size: 1024,
            max_key_size: 4096,
            flags: CKF_GENERATE_KEY_PAIR
        }
    );
    let all4 = CKF_ENCRYPT | CKF_DECRYPT | CKF_SIGN | CKF_VERIFY;
    let wrap = CKF_WRAP | CKF_UNWRAP;
    assert_eq!(info(CKM_RSA_PKCS).flags, all4 | wrap);
    // Raw RSA does not wrap: the unwrapped bytes would carry no length.
    assert_eq!(info(CKM_RSA_X_509).flags, all4);
    assert_eq!(
        info(CKM_RSA_PKCS_OAEP).flags,
        CKF_ENCRYPT | CKF_DECRYPT | wrap
    );
    for ty in [
        CKM_RSA_PKCS_PSS,
        CKM_SHA1_RSA_PKCS,
        CKM_SHA224_RSA_PKCS,
        CKM_SHA256_RSA_PKCS,
        CKM_SHA384_RSA_PKCS,
        CKM_SHA512_RSA_PKCS,
        CKM_SHA1_RSA_PKCS_PSS,
        CKM_SHA224_RSA_PKCS_PSS,
        CKM_SHA256_RSA_PKCS_PSS,
        CKM_SHA384_RSA_PKCS_PSS,
        CKM_SHA512_RSA_PKCS_PSS,
    ] {
        assert_eq!(info(ty).flags, CKF_SIGN | CKF_VERIFY, "0x{ty:x}");
        assert_eq!((info(ty).min_key_size, info(ty).max_key_size), (1024, 8192));
    }
    assert_eq!(mechanisms().len(), 15);
}

#[test]
fn functions_a_mechanism_lacks_are_mechanism_invalid() {
    let (public, private) = keys();
    assert_eq!(
        rv(mechanism(CKM_RSA_PKCS_OAEP).sign(&MechanismParam::None, private)),
        CKR_MECHANISM_INVALID
    );
    assert_eq!(
        rv(mechanism(CKM_RSA_PKCS_OAEP).verify(&MechanismParam::None, public)),
        CKR_MECHANISM_INVALID
    );
    assert_eq!(
        rv(mechanism(CKM_SHA256_RSA_PKCS).encrypt(&MechanismParam::None, public)),
        CKR_MECHANISM_INVALID
    );
    assert_eq!(
        rv(mechanism(CKM_RSA_PKCS_PSS).decrypt(&MechanismParam::None, private)),
        CKR_MECHANISM_INVALID
    );
    assert_eq!(
        rv(mechanism(CKM_RSA_PKCS_KEY_PAIR_GEN).encrypt(&MechanismParam::None, public)),
        CKR_MECHANISM_INVALID
    );
}

#[test]
fn wrong_key_kind_is_key_type_inconsistent() {
    let (public, private) = keys();
    let none = MechanismParam::None;
    let pkcs = mechanism(CKM_RSA_PKCS);
    assert_eq!(rv(pkcs.decrypt(&none, public)), CKR_KEY_TYPE_INCONSISTENT);
    assert_eq!(rv(pkcs.encrypt(&none, private)), CKR_KEY_TYPE_INCONSISTENT);
    assert_eq!(rv(pkcs.sign(&none, public)), CKR_KEY_TYPE_INCONSISTENT);
    assert_eq!(rv(pkcs.verify(&none, private)), CKR_KEY_TYPE_INCONSISTENT);
    let sha = mechanism(CKM_SHA256_RSA_PKCS_PSS);
    let pss = pss_param(CKM_SHA256, CKG_MGF1_SHA256, 32);
    assert_eq!(rv(sha.sign(&pss, public)), CKR_KEY_TYPE_INCONSISTENT);
}

#[test]
fn pkcs1_and_x509_round_trips() {
    let none = MechanismParam::None;
    let ct = encrypt(CKM_RSA_PKCS, &none, b"pkcs1").unwrap();
    assert_eq!(decrypt(CKM_RSA_PKCS, &none, &ct).unwrap(), b"pkcs1");
    let ct = encrypt(CKM_RSA_X_509, &none, b"raw").unwrap();
    let pt = decrypt(CKM_RSA_X_509, &none, &ct).unwrap();
    assert_eq!(pt.len(), 256);
    assert!(pt.ends_with(b"raw") && pt[..253].iter().all(|b| *b == 0));

    let digest = HashAlg::Sha256.digest(b"data");
    let mut info = digest_info_prefix(HashAlg::Sha256).unwrap().to_vec();
    info.extend_from_slice(&digest);
    let sig = sign_verify(CKM_RSA_PKCS, &none, &[&info]).unwrap();
    // The same signature as CKM_SHA256_RSA_PKCS over the data.
    assert_eq!(
        sign_verify(CKM_SHA256_RSA_PKCS, &none, &[b"data"]).unwrap(),
        sig
    );
    sign_verify(CKM_RSA_X_509, &none, &[b"raw block"]).unwrap();

    let with_param = MechanismParam::Bytes(vec![0]);
    assert_eq!(
        rv(encrypt(CKM_RSA_PKCS, &with_param, b"x")),
        CKR_MECHANISM_PARAM_INVALID
    );
    assert_eq!(
        rv(sign_verify(CKM_RSA_X_509, &with_param, &[b"x"])),
        CKR_MECHANISM_PARAM_INVALID
    );
}

#[test]
fn oaep_every_hash_and_mgf_through_the_mechanism() {
    for (hash_mech, _, _) in HASH_MECHS {
        for (_, mgf, _) in HASH_MECHS {
            for label in [&b""[..], b"label"] {
                let param = oaep_param(hash_mech, mgf, label);
                let ct = encrypt(CKM_RSA_PKCS_OAEP, &param, b"oaep").unwrap();
                assert_eq!(decrypt(CKM_RSA_PKCS_OAEP, &param, &ct).unwrap(), b"oaep");
            }
        }
    }
    // Source 0 without a label is accepted (and means the empty label).
    let zero_source = MechanismParam::Oaep {
        hash_alg: CKM_SHA256,
        mgf: CKG_MGF1_SHA256,
        source: 0,
        source_data: Vec::new(),
    };
    let ct = encrypt(CKM_RSA_PKCS_OAEP, &zero_source, b"z").unwrap();
    assert_eq!(
        decrypt(
            CKM_RSA_PKCS_OAEP,
            &oaep_param(CKM_SHA256, CKG_MGF1_SHA256, b""),
            &ct
        )
        .unwrap(),
        b"z"
    );
}

#[test]
fn oaep_bad_parameters() {
    let bad = [
        MechanismParam::None,
        MechanismParam::Bytes(vec![1, 2, 3]),
        pss_param(CKM_SHA256, CKG_MGF1_SHA256, 32),
        oaep_param(CKM_MD5, CKG_MGF1_SHA1, b""),
        oaep_param(CKM_SHA256, 0, b""),
        oaep_param(CKM_SHA256, 0x1000, b""),
        MechanismParam::Oaep {
            hash_alg: CKM_SHA256,
            mgf: CKG_MGF1_SHA256,
            source: 0,
            source_data: b"label without source".to_vec(),
        },
        MechanismParam::Oaep {
            hash_alg: CKM_SHA256,
            mgf: CKG_MGF1_SHA256,
            source: 2,
            source_data: Vec::new(),
        },
    ];
    for param in &bad {
        assert_eq!(
            rv(encrypt(CKM_RSA_PKCS_OAEP, param, b"x")),
            CKR_MECHANISM_PARAM_INVALID,
            "{param:?}"
        );
        assert_eq!(
            rv(decrypt(CKM_RSA_PKCS_OAEP, param, &[0; 256])),
            CKR_MECHANISM_PARAM_INVALID,
            "{param:?}"
        );
    }
}

#[test]
fn pss_over_a_digest() {
    for (hash_mech, mgf, hash) in HASH_MECHS {
        let digest = hash.digest(b"pss");
        for salt in [0, hash.output_len() as CK_ULONG, 20] {
            let param = pss_param(hash_mech, mgf, salt);
            sign_verify(CKM_RSA_PKCS_PSS, &param, &[&digest]).unwrap();
            assert_eq!(
                rv(sign_verify(CKM_RSA_PKCS_PSS, &param, &[&digest[1..]])),
                CKR_DATA_LEN_RANGE
            );
        }
    }
    let too_long_salt = pss_param(CKM_SHA256, CKG_MGF1_SHA256, 256 - 32 - 1);
    assert_eq!(
        rv(mechanism(CKM_RSA_PKCS_PSS).sign(&too_long_salt, &keys().1)),
        CKR_MECHANISM_PARAM_INVALID
    );
    assert_eq!(
        rv(mechanism(CKM_RSA_PKCS_PSS).sign(&MechanismParam::None, &keys().1)),
        CKR_MECHANISM_PARAM_INVALID
    );
    let bad_hash = pss_param(CKM_MD5, CKG_MGF1_SHA1, 0);
    assert_eq!(
        rv(mechanism(CKM_RSA_PKCS_PSS).verify(&bad_hash, &keys().0)),
        CKR_MECHANISM_PARAM_INVALID
    );
}

#[test]
fn hash_and_sign_single_and_multi_part() {
    let sha_pkcs = [
        CKM_SHA1_RSA_PKCS,
        CKM_SHA224_RSA_PKCS,
        CKM_SHA256_RSA_PKCS,
        CKM_SHA384_RSA_PKCS,
        CKM_SHA512_RSA_PKCS,
    ];
    let sha_pss = [
        CKM_SHA1_RSA_PKCS_PSS,
        CKM_SHA224_RSA_PKCS_PSS,
        CKM_SHA256_RSA_PKCS_PSS,
        CKM_SHA384_RSA_PKCS_PSS,
        CKM_SHA512_RSA_PKCS_PSS,
    ];
    for (i, (hash_mech, mgf, hash)) in HASH_MECHS.into_iter().enumerate() {
        let none = MechanismParam::None;
        let whole = sign_verify(sha_pkcs[i], &none, &[b"hello world"]).unwrap();
        let parts = sign_verify(sha_pkcs[i], &none, &[b"hello", b" ", b"world"]).unwrap();
        assert_eq!(whole, parts);
        assert_eq!(
            rv(verify(sha_pkcs[i], &none, b"hello there", &whole)),
            CKR_SIGNATURE_INVALID
        );
        assert_eq!(
            rv(verify(sha_pkcs[i], &none, b"hello world", &whole[1..])),
            CKR_SIGNATURE_LEN_RANGE
        );
        let op = mechanism(sha_pkcs[i]).sign(&none, &keys().1).unwrap();
        assert!(op.multi_part());

        let param = pss_param(hash_mech, mgf, hash.output_len() as CK_ULONG);
        let sig = sign_verify(sha_pss[i], &param, &[b"hello", b" world"]).unwrap();
        verify(sha_pss[i], &param, b"hello world", &sig).unwrap();
        assert_eq!(
            rv(verify(sha_pss[i], &param, b"hello", &sig)),
            CKR_SIGNATURE_INVALID
        );
        // The PSS digest must be the mechanism's own.
        let other = if i == 0 { HASH_MECHS[1] } else { HASH_MECHS[0] };
        let mismatched = pss_param(other.0, other.1, 20);
        assert_eq!(
            rv(mechanism(sha_pss[i]).sign(&mismatched, &keys().1)),
            CKR_MECHANISM_PARAM_INVALID
        );
        assert_eq!(
            rv(mechanism(sha_pss[i]).sign(&none, &keys().1)),
            CKR_MECHANISM_PARAM_INVALID
        );
        let huge_salt = pss_param(hash_mech, mgf, 1 << 20);
        assert_eq!(
            rv(mechanism(sha_pss[i]).verify(&huge_salt, &keys().0)),
            CKR_MECHANISM_PARAM_INVALID
        );
    }
    for single in [CKM_RSA_PKCS, CKM_RSA_X_509] {
        let op = mechanism(single)
            .sign(&MechanismParam::None, &keys().1)
            .unwrap();
        assert!(!op.multi_part());
    }
    let pss = pss_param(CKM_SHA256, CKG_MGF1_SHA256, 32);
    assert!(!mechanism(CKM_RSA_PKCS_PSS)
        .sign(&pss, &keys().1)
        .unwrap()
        .multi_part());
}

#[test]
fn mechanism_error_codes() {
    let none = MechanismParam::None;
    let ct = encrypt(CKM_RSA_PKCS, &none, b"x").unwrap();
    assert_eq!(
        rv(decrypt(CKM_RSA_PKCS, &none, &ct[..255])),
        CKR_ENCRYPTED_DATA_LEN_RANGE
    );
    assert_eq!(
        rv(decrypt(CKM_RSA_PKCS, &none, &[0xff; 256])),
        CKR_ENCRYPTED_DATA_INVALID
    );
    assert_eq!(
        rv(encrypt(CKM_RSA_PKCS, &none, &[0; 250])),
        CKR_DATA_LEN_RANGE
    );
    let oaep = oaep_param(CKM_SHA512, CKG_MGF1_SHA512, b"");
    assert_eq!(
        rv(encrypt(CKM_RSA_PKCS_OAEP, &oaep, &[0; 256 - 130 + 1])),
        CKR_DATA_LEN_RANGE
    );
    assert_eq!(
        rv(sign_verify(CKM_RSA_PKCS, &none, &[&[0; 246]])),
        CKR_DATA_LEN_RANGE
    );
    assert_eq!(
        rv(sign_verify(CKM_RSA_X_509, &none, &[&[0xff; 256]])),
        CKR_DATA_INVALID
    );
}

#[test]
fn load_key_checks_the_object() {
    let (public, private) = pair();
    let without = |attrs: &Attributes, ty| {
        let mut a = attrs.clone();
        a.remove(ty);
        rv(load_key(&a))
    };
    assert_eq!(without(public, CKA_MODULUS), CKR_TEMPLATE_INCOMPLETE);
    assert_eq!(
        without(public, CKA_PUBLIC_EXPONENT),
        CKR_TEMPLATE_INCOMPLETE
    );
    assert_eq!(without(public, CKA_CLASS), CKR_TEMPLATE_INCOMPLETE);
    assert_eq!(
        without(private, CKA_PRIVATE_EXPONENT),
        CKR_TEMPLATE_INCOMPLETE
    );
    assert_eq!(without(private, CKA_MODULUS), CKR_TEMPLATE_INCOMPLETE);
    // CRT values are optional: n, e and d suffice.
    let mut bare = private.clone();
    for ty in [
        CKA_PRIME_1,
        CKA_PRIME_2,
        CKA_EXPONENT_1,
        CKA_EXPONENT_2,
        CKA_COEFFICIENT,
    ] {
        bare.remove(ty);
    }
    let key = load_key(&bare).unwrap();
    let ct = encrypt(CKM_RSA_PKCS, &MechanismParam::None, b"bare").unwrap();
    let mut op = mechanism(CKM_RSA_PKCS)
        .decrypt(&MechanismParam::None, &key)
        .unwrap();
    assert_eq!(op.run(&ct).unwrap().as_slice(), b"bare");

    let mut bad = public.clone();
    bad.set(CKA_MODULUS, vec![0u8; 256]);
    assert_eq!(rv(load_key(&bad)), CKR_ATTRIBUTE_VALUE_INVALID);
    let mut bad = private.clone();
    bad.set(CKA_PRIVATE_EXPONENT, vec![1u8; 256]);
    assert_eq!(rv(load_key(&bad)), CKR_ATTRIBUTE_VALUE_INVALID);
    let mut bad = public.clone();
    bad.set_ulong(CKA_CLASS, CKO_SECRET_KEY);
    assert_eq!(rv(load_key(&bad)), CKR_KEY_TYPE_INCONSISTENT);
    let mut bad = public.clone();
    bad.set(CKA_CLASS, vec![1]);
    assert_eq!(rv(load_key(&bad)), CKR_ATTRIBUTE_VALUE_INVALID);
    assert!(matches!(keys().0, LoadedKey::RsaPublic(_)));
    assert!(matches!(keys().1, LoadedKey::RsaPrivate(_)));
}

#[test]
fn exported_public_key_is_the_objects_spki() {
    use rsa::pkcs8::DecodePublicKey;
    use rsa::traits::PublicKeyParts;
    let (public, _) = pair();
    let modulus = public.get(CKA_MODULUS).unwrap();
    let exponent = public.get(CKA_PUBLIC_EXPONENT).unwrap();
    let der = export_public_key(modulus, exponent).unwrap();
    let parsed = rsa::PublicKey::from_public_key_der(&der).unwrap();
    assert_eq!(parsed.n().to_be_bytes_trimmed_vartime().as_ref(), modulus);
    assert_eq!(parsed.e().to_be_bytes_trimmed_vartime().as_ref(), exponent);
    // Through the object layer, PEM included; bad components as before the routing.
    let pem = crate::object::spki::public_key_pem(public).unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    assert_eq!(
        rv(export_public_key(&[0u8; 256], exponent)),
        CKR_ATTRIBUTE_VALUE_INVALID
    );
    assert_eq!(
        rv(export_public_key(&[], exponent)),
        CKR_ATTRIBUTE_VALUE_INVALID
    );
    let mut no_modulus = public.clone();
    no_modulus.remove(CKA_MODULUS);
    assert_eq!(
        rv(crate::object::spki::public_key_der(&no_modulus)),
        CKR_TEMPLATE_INCOMPLETE
    );
}

#[test]
fn rsa_ciphers_are_single_part() {
    let (public, private) = keys();
    let oaep = oaep_param(CKM_SHA256, CKG_MGF1_SHA256, b"");
    for (ty, param) in [
        (CKM_RSA_PKCS, MechanismParam::None),
        (CKM_RSA_X_509, MechanismParam::None),
        (CKM_RSA_PKCS_OAEP, oaep),
    ] {
        let m = mechanism(ty);
        assert!(!m.encrypt(&param, public).unwrap().multi_part(), "0x{ty:x}");
        assert!(
            !m.decrypt(&param, private).unwrap().multi_part(),
            "0x{ty:x}"
        );
    }
}
