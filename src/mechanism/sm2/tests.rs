//! Tests of the SM2 mechanisms through the `Mechanism` traits, as the session layer drives
//! them, and interop with OpenSSL 3 (skipped with a message when `openssl` is absent).

use super::keys::{check_ec_params, ec_point_der};
use super::*;
use crate::error::Result;
use crate::mechanism::{load_key, lookup, GeneratedKeyPair, LoadedKey, MechanismParam};
use crate::object::Attributes;
use std::path::Path;
use std::process::Command;

const P256_OID: [u8; 10] = [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];

fn code(code: CK_ULONG) -> MechanismParam {
    MechanismParam::Bytes(code.to_ne_bytes().to_vec())
}

fn generate(mechanism: CK_MECHANISM_TYPE, public: &Attributes) -> Result<GeneratedKeyPair> {
    lookup(mechanism)?.generate_key_pair(&MechanismParam::None, public, &Attributes::new())
}

fn key_pair() -> (LoadedKey, LoadedKey) {
    let pair = generate(CKM_SM2_KEY_PAIR_GEN, &Attributes::new()).unwrap();
    (
        load_key(&pair.public).unwrap(),
        load_key(&pair.private).unwrap(),
    )
}

fn encrypt(
    m: CK_MECHANISM_TYPE,
    p: &MechanismParam,
    key: &LoadedKey,
    data: &[u8],
) -> Result<Vec<u8>> {
    Ok(lookup(m)?.encrypt(p, key)?.run(data)?.to_vec())
}

fn decrypt(
    m: CK_MECHANISM_TYPE,
    p: &MechanismParam,
    key: &LoadedKey,
    data: &[u8],
) -> Result<Vec<u8>> {
    Ok(lookup(m)?.decrypt(p, key)?.run(data)?.to_vec())
}

fn sign(
    m: CK_MECHANISM_TYPE,
    p: &MechanismParam,
    key: &LoadedKey,
    parts: &[&[u8]],
) -> Result<Vec<u8>> {
    let mut op = lookup(m)?.sign(p, key)?;
    for part in parts {
        op.update(part)?;
    }
    let sig = op.finish()?;
    assert!(sig.len() <= op.signature_len());
    Ok(sig)
}

fn verify(
    m: CK_MECHANISM_TYPE,
    p: &MechanismParam,
    key: &LoadedKey,
    parts: &[&[u8]],
    sig: &[u8],
) -> Result<()> {
    let mut op = lookup(m)?.verify(p, key)?;
    for part in parts {
        op.update(part)?;
    }
    op.finish(sig)
}

#[test]
fn mechanism_info() {
    let ec = CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS;
    for (m, flags) in [
        (CKM_EC_KEY_PAIR_GEN, CKF_GENERATE_KEY_PAIR),
        (CKM_SM2_KEY_PAIR_GEN, CKF_GENERATE_KEY_PAIR),
        (
            CKM_SM2_RAW,
            CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP,
        ),
        (
            CKM_SM2_CIPHER_DER,
            CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP,
        ),
        (CKM_SM3_SM2, CKF_SIGN | CKF_VERIFY),
        (CKM_SM3_SM2_DER, CKF_SIGN | CKF_VERIFY),
        (CKM_SM2, CKF_SIGN | CKF_VERIFY),
    ] {
        if m == CKM_EC_KEY_PAIR_GEN && cfg!(feature = "aws-lc") {
            continue; // the EC family's, for every curve (mechanism::ec::tests)
        }
        let info = lookup(m).unwrap().info();
        assert_eq!((info.min_key_size, info.max_key_size), (256, 256), "{m:#x}");
        assert_eq!(info.flags, flags | ec, "{m:#x}");
    }
    assert_eq!(lookup(CKM_SM3).unwrap().info().flags, CKF_DIGEST);
    assert!(crate::mechanism::mechanism_list().contains(&CKM_SM2_CIPHER_DER));
}

#[test]
fn sm3_digest() {
    let mut op = lookup(CKM_SM3)
        .unwrap()
        .digest(&MechanismParam::None)
        .unwrap();
    op.update(b"a");
    op.update(b"bc");
    assert_eq!(
        hex::encode(op.finish()),
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    );
}

#[test]
fn generated_attributes() {
    for m in [CKM_SM2_KEY_PAIR_GEN, CKM_EC_KEY_PAIR_GEN] {
        let mut template = Attributes::new();
        template.set(CKA_EC_PARAMS, SM2_OID_DER.to_vec());
        let pair = generate(m, &template).unwrap();
        let (public, private) = (&pair.public, &pair.private);
        assert_eq!(public.get_ulong(CKA_CLASS).unwrap(), Some(CKO_PUBLIC_KEY));
        assert_eq!(private.get_ulong(CKA_CLASS).unwrap(), Some(CKO_PRIVATE_KEY));
        for attrs in [public, private] {
            assert_eq!(attrs.get_ulong(CKA_KEY_TYPE).unwrap(), Some(CKK_EC));
            assert_eq!(attrs.get(CKA_EC_PARAMS), Some(&SM2_OID_DER[..]));
        }
        let point = public.get(CKA_EC_POINT).unwrap();
        assert_eq!(point.len(), 67);
        assert_eq!(point[..3], [0x04, 0x41, 0x04]);
        assert_eq!(private.get(CKA_VALUE).unwrap().len(), 32);
        assert!(!private.contains(CKA_EC_POINT));
        assert!(!public.contains(CKA_VALUE));
        match (load_key(public).unwrap(), load_key(private).unwrap()) {
            (LoadedKey::Sm2Public(p), LoadedKey::Sm2Private(k)) => {
                assert_eq!(p.point(), k.public_key().point());
                assert_eq!(&point[2..], &p.point()[..]);
            }
            _ => panic!("not SM2 keys"),
        }
    }
}

#[test]
fn key_generation_templates() {
    let with = |ty: CK_ATTRIBUTE_TYPE, value: &[u8]| {
        let mut t = Attributes::new();
        t.set(ty, value.to_vec());
        t
    };
    let rv = |r: Result<GeneratedKeyPair>| r.err().map(|e| e.rv);
    assert_eq!(
        rv(generate(CKM_EC_KEY_PAIR_GEN, &Attributes::new())),
        Some(CKR_TEMPLATE_INCOMPLETE)
    );
    for m in [CKM_EC_KEY_PAIR_GEN, CKM_SM2_KEY_PAIR_GEN] {
        // With aws-lc, CKM_EC_KEY_PAIR_GEN makes P-256 keys too.
        if m == CKM_SM2_KEY_PAIR_GEN || !cfg!(feature = "aws-lc") {
            assert_eq!(
                rv(generate(m, &with(CKA_EC_PARAMS, &P256_OID))),
                Some(CKR_CURVE_NOT_SUPPORTED)
            );
        }
        assert_eq!(
            rv(generate(m, &with(CKA_EC_PARAMS, &[0x30, 0x00]))),
            Some(CKR_ATTRIBUTE_VALUE_INVALID)
        );
        let mut rsa = with(CKA_EC_PARAMS, &SM2_OID_DER);
        rsa.set_ulong(CKA_KEY_TYPE, CKK_RSA);
        assert_eq!(rv(generate(m, &rsa)), Some(CKR_TEMPLATE_INCONSISTENT));
        let mut alias = with(CKA_EC_PARAMS, &SM2_OID_DER);
        alias.set_ulong(CKA_KEY_TYPE, CKK_SM2);
        let pair = generate(m, &alias).unwrap();
        assert_eq!(pair.public.get_ulong(CKA_KEY_TYPE).unwrap(), Some(CKK_EC));
        let private_other_curve = with(CKA_EC_PARAMS, &P256_OID);
        assert_eq!(
            rv(lookup(m).unwrap().generate_key_pair(
                &MechanismParam::None,
                &with(CKA_EC_PARAMS, &SM2_OID_DER),
                &private_other_curve
            )),
            Some(CKR_TEMPLATE_INCONSISTENT)
        );
        assert_eq!(
            rv(lookup(m).unwrap().generate_key_pair(
                &code(0),
                &with(CKA_EC_PARAMS, &SM2_OID_DER),
                &Attributes::new()
            )),
            Some(CKR_MECHANISM_PARAM_INVALID)
        );
    }
}

fn public_attrs(ec_point: &[u8], params: Option<&[u8]>) -> Attributes {
    let mut a = Attributes::new();
    a.set_ulong(CKA_CLASS, CKO_PUBLIC_KEY);
    a.set_ulong(CKA_KEY_TYPE, CKK_EC);
    if let Some(p) = params {
        a.set(CKA_EC_PARAMS, p.to_vec());
    }
    a.set(CKA_EC_POINT, ec_point.to_vec());
    a
}

fn private_attrs(value: &[u8]) -> Attributes {
    let mut a = Attributes::new();
    a.set_ulong(CKA_CLASS, CKO_PRIVATE_KEY);
    a.set_ulong(CKA_KEY_TYPE, CKK_EC);
    a.set(CKA_EC_PARAMS, SM2_OID_DER.to_vec());
    a.set(CKA_VALUE, value.to_vec());
    a
}

#[test]
fn key_loading() {
    let pair = generate(CKM_SM2_KEY_PAIR_GEN, &Attributes::new()).unwrap();
    let der_point = pair.public.get(CKA_EC_POINT).unwrap().to_vec();
    let raw_point = der_point[2..].to_vec();
    let rv = |a: &Attributes| load_key(a).err().map(|e| e.rv);
    // DER-wrapped or raw point, with or without CKA_EC_PARAMS.
    for point in [&der_point, &raw_point] {
        assert_eq!(rv(&public_attrs(point, Some(&SM2_OID_DER))), None);
        assert_eq!(rv(&public_attrs(point, None)), None);
    }
    // The CKK_SM2 alias reaches the same parser.
    let mut alias = public_attrs(&der_point, Some(&SM2_OID_DER));
    alias.set_ulong(CKA_KEY_TYPE, CKK_SM2);
    assert_eq!(rv(&alias), None);
    // With aws-lc the P-256 parser reads it, and an SM2 point is not on P-256.
    let other_curve = if cfg!(feature = "aws-lc") {
        CKR_ATTRIBUTE_VALUE_INVALID
    } else {
        CKR_KEY_TYPE_INCONSISTENT
    };
    assert_eq!(
        rv(&public_attrs(&der_point, Some(&P256_OID))),
        Some(other_curve)
    );
    let mut off_curve = der_point.clone();
    off_curve[66] ^= 1;
    for bad in [
        &der_point[..66],
        &off_curve[..],
        &der_point[1..],
        &[0x04, 0x41][..],
    ] {
        assert_eq!(
            rv(&public_attrs(bad, None)),
            Some(CKR_ATTRIBUTE_VALUE_INVALID)
        );
    }
    // A private key with a matching CKA_EC_POINT loads; a mismatching one does not.
    let value = pair.private.get(CKA_VALUE).unwrap().to_vec();
    let mut with_point = private_attrs(&value);
    with_point.set(CKA_EC_POINT, der_point.clone());
    assert_eq!(rv(&with_point), None);
    let other = generate(CKM_SM2_KEY_PAIR_GEN, &Attributes::new()).unwrap();
    with_point.set(
        CKA_EC_POINT,
        other.public.get(CKA_EC_POINT).unwrap().to_vec(),
    );
    assert_eq!(rv(&with_point), Some(CKR_ATTRIBUTE_VALUE_INVALID));
    assert_eq!(
        rv(&private_attrs(&[0u8; 32])),
        Some(CKR_ATTRIBUTE_VALUE_INVALID)
    );
    let mut no_value = private_attrs(&value);
    no_value.remove(CKA_VALUE);
    assert_eq!(rv(&no_value), Some(CKR_TEMPLATE_INCOMPLETE));
    // Import validation helper for C_CreateObject.
    assert!(check_ec_params(&SM2_OID_DER).is_ok());
    assert_eq!(
        check_ec_params(&P256_OID).unwrap_err().rv,
        CKR_CURVE_NOT_SUPPORTED
    );
}

struct NotSm2;
impl crate::crypto::rsa::RsaPublicKey for NotSm2 {
    fn size(&self) -> usize {
        256
    }
    fn encrypt(&self, _: &crate::crypto::rsa::RsaEncryption, _: &[u8]) -> Result<Vec<u8>> {
        unreachable!()
    }
    fn verify(&self, _: &crate::crypto::rsa::RsaSignature, _: &[u8], _: &[u8]) -> Result<()> {
        unreachable!()
    }
}

#[test]
fn wrong_key_types() {
    let rsa = LoadedKey::RsaPublic(std::sync::Arc::new(NotSm2));
    let (public, _) = key_pair();
    let rv = |r: Result<Vec<u8>>| r.unwrap_err().rv;
    for m in [CKM_SM2_RAW, CKM_SM2_CIPHER_DER] {
        assert_eq!(
            rv(encrypt(m, &MechanismParam::None, &rsa, b"x")),
            CKR_KEY_TYPE_INCONSISTENT
        );
        assert_eq!(
            rv(decrypt(m, &MechanismParam::None, &rsa, b"x")),
            CKR_KEY_TYPE_INCONSISTENT
        );
        // Decrypting needs the private key.
        assert_eq!(
            rv(decrypt(m, &MechanismParam::None, &public, b"x")),
            CKR_KEY_TYPE_INCONSISTENT
        );
    }
    for m in [CKM_SM3_SM2, CKM_SM3_SM2_DER, CKM_SM2] {
        assert_eq!(
            rv(sign(m, &MechanismParam::None, &rsa, &[])),
            CKR_KEY_TYPE_INCONSISTENT
        );
        assert_eq!(
            rv(sign(m, &MechanismParam::None, &public, &[])),
            CKR_KEY_TYPE_INCONSISTENT
        );
        assert_eq!(
            verify(m, &MechanismParam::None, &rsa, &[], &[0; 64])
                .unwrap_err()
                .rv,
            CKR_KEY_TYPE_INCONSISTENT
        );
    }
}

#[test]
fn cipher_formats_through_the_mechanisms() {
    let (public, private) = key_pair();
    let msg = b"format codes pick the encoding";
    let none = MechanismParam::None;
    // Defaults: raw 04||C1||C3||C2 for CKM_SM2_RAW, DER for CKM_SM2_CIPHER_DER.
    let raw = encrypt(CKM_SM2_RAW, &none, &public, msg).unwrap();
    assert_eq!((raw[0], raw.len()), (0x04, msg.len() + 97));
    let der = encrypt(CKM_SM2_CIPHER_DER, &none, &public, msg).unwrap();
    assert_eq!(der[0], 0x30);
    for m in [CKM_SM2_RAW, CKM_SM2_CIPHER_DER] {
        for ct in [&raw, &der] {
            assert_eq!(decrypt(m, &none, &private, ct).unwrap(), msg);
            assert_eq!(decrypt(m, &code(0), &private, ct).unwrap(), msg);
        }
        for (c, len) in [
            (1, None),
            (2, Some(97)),
            (3, Some(97)),
            (0x102, Some(96)),
            (0x103, Some(96)),
        ] {
            let ct = encrypt(m, &code(c), &public, msg).unwrap();
            if let Some(overhead) = len {
                assert_eq!(ct.len(), msg.len() + overhead, "code {c:#x}");
            } else {
                assert_eq!(ct[0], 0x30);
            }
            assert_eq!(
                decrypt(m, &code(c), &private, &ct).unwrap(),
                msg,
                "code {c:#x}"
            );
            // Auto finds everything but the legacy order.
            let auto = decrypt(m, &none, &private, &ct);
            if c & 0xff == 3 {
                assert_eq!(auto.unwrap_err().rv, CKR_ENCRYPTED_DATA_INVALID);
            } else {
                assert_eq!(auto.unwrap(), msg);
            }
            // A code naming another form refuses the input.
            let other = if c == 1 { 2 } else { 1 };
            assert_eq!(
                decrypt(m, &code(other), &private, &ct).unwrap_err().rv,
                CKR_ENCRYPTED_DATA_INVALID
            );
        }
        let raw_no_prefix = encrypt(m, &code(0x100), &public, msg);
        if m == CKM_SM2_RAW {
            assert_eq!(raw_no_prefix.unwrap().len(), msg.len() + 96);
        } else {
            assert_eq!(raw_no_prefix.unwrap_err().rv, CKR_MECHANISM_PARAM_INVALID);
        }
        for bad in [
            code(4),
            code(0x101),
            code(0x1002),
            MechanismParam::Bytes(vec![1, 0, 0, 0]),
        ] {
            let enc = lookup(m)
                .unwrap()
                .encrypt(&bad, &public)
                .err()
                .map(|e| e.rv);
            let dec = lookup(m)
                .unwrap()
                .decrypt(&bad, &private)
                .err()
                .map(|e| e.rv);
            assert_eq!(enc, Some(CKR_MECHANISM_PARAM_INVALID));
            assert_eq!(dec, Some(CKR_MECHANISM_PARAM_INVALID));
        }
    }
    assert_eq!(
        encrypt(CKM_SM2_RAW, &none, &public, b"").unwrap_err().rv,
        CKR_DATA_LEN_RANGE
    );
}

#[test]
fn length_queries() {
    let (public, private) = key_pair();
    let msg = [0x5a; 45];
    for (m, c) in [
        (CKM_SM2_RAW, 0),
        (CKM_SM2_CIPHER_DER, 0),
        (CKM_SM2_RAW, 0x103),
    ] {
        let mut enc = lookup(m).unwrap().encrypt(&code(c), &public).unwrap();
        let bound = enc.output_len(msg.len()).unwrap();
        let ct = enc.run(&msg).unwrap();
        assert!(ct.len() <= bound);
        let dec = lookup(m).unwrap().decrypt(&code(c), &private).unwrap();
        // Exact |C2| from the bytes; from the length alone exact for known raw forms and
        // never below |C2| otherwise.
        assert_eq!(dec.output_len_for(&ct).unwrap(), msg.len());
        let from_len = dec.output_len(ct.len()).unwrap();
        assert!(from_len >= msg.len());
        if c == 0x103 {
            assert_eq!(from_len, msg.len());
        }
        // A ciphertext no key could decrypt fails the query with the decryption's code.
        for impossible in [&[0u8; 10][..], &ct[..ct.len() - msg.len()], &[]] {
            assert_eq!(
                dec.output_len_for(impossible).unwrap_err().rv,
                CKR_ENCRYPTED_DATA_INVALID
            );
        }
    }
}

#[test]
fn multi_part_cipher() {
    let (public, private) = key_pair();
    let msg: Vec<u8> = (0..200u8).collect();
    for m in [CKM_SM2_RAW, CKM_SM2_CIPHER_DER] {
        let mut enc = lookup(m)
            .unwrap()
            .encrypt(&MechanismParam::None, &public)
            .unwrap();
        for chunk in msg.chunks(33) {
            assert!(enc.update(chunk).unwrap().is_empty());
        }
        let bound = enc.finish_len().unwrap();
        let ct = enc.finish().unwrap();
        assert!(ct.len() <= bound);

        let mut dec = lookup(m)
            .unwrap()
            .decrypt(&MechanismParam::None, &private)
            .unwrap();
        for chunk in ct.chunks(7) {
            assert!(dec.update(chunk).unwrap().is_empty());
        }
        assert_eq!(dec.finish_len().unwrap(), msg.len());
        assert_eq!(dec.finish().unwrap().as_slice(), &msg[..]);

        // A corrupted multi-part ciphertext fails at finish with the uniform code.
        let mut dec = lookup(m)
            .unwrap()
            .decrypt(&MechanismParam::None, &private)
            .unwrap();
        dec.update(&ct[..ct.len() - 1]).unwrap();
        assert_eq!(dec.finish().unwrap_err().rv, CKR_ENCRYPTED_DATA_INVALID);
    }
}

#[test]
fn signatures_single_and_multi_part() {
    let (public, private) = key_pair();
    let none = MechanismParam::None;
    let msg = b"the quick brown fox jumps over the lazy dog";
    for (m, der) in [(CKM_SM3_SM2, false), (CKM_SM3_SM2_DER, true)] {
        let single = sign(m, &none, &private, &[msg]).unwrap();
        if der {
            assert_eq!(single[0], 0x30);
        } else {
            assert_eq!(single.len(), 64);
        }
        let multi = sign(m, &none, &private, &[&msg[..5], &msg[5..20], &msg[20..]]).unwrap();
        for sig in [&single, &multi] {
            verify(m, &none, &public, &[msg], sig).unwrap();
            verify(m, &none, &public, &[&msg[..1], &msg[1..]], sig).unwrap();
            // The private key carries its public half.
            verify(m, &none, &private, &[msg], sig).unwrap();
            assert_eq!(
                verify(m, &none, &public, &[b"other"], sig).unwrap_err().rv,
                CKR_SIGNATURE_INVALID
            );
        }
        assert!(lookup(m)
            .unwrap()
            .sign(&none, &private)
            .unwrap()
            .multi_part());
    }
    // Wrong lengths.
    let raw = sign(CKM_SM3_SM2, &none, &private, &[msg]).unwrap();
    assert_eq!(
        verify(CKM_SM3_SM2, &none, &public, &[msg], &raw[..63])
            .unwrap_err()
            .rv,
        CKR_SIGNATURE_LEN_RANGE
    );
    // Raw r||s given to the DER mechanism is not a DER signature.
    assert_eq!(
        verify(CKM_SM3_SM2_DER, &none, &public, &[msg], &raw)
            .unwrap_err()
            .rv,
        CKR_SIGNATURE_INVALID
    );
    assert_eq!(
        verify(CKM_SM3_SM2_DER, &none, &public, &[msg], &[0x30; 100])
            .unwrap_err()
            .rv,
        CKR_SIGNATURE_LEN_RANGE
    );
}

#[test]
fn binary_signer_id() {
    let (public, private) = key_pair();
    let id = MechanismParam::Bytes(vec![0x00, 0xff, 0x10, 0x80, 0x00]);
    let msg = b"signed with a binary ID";
    for m in [CKM_SM3_SM2, CKM_SM3_SM2_DER] {
        let sig = sign(m, &id, &private, &[msg]).unwrap();
        verify(m, &id, &public, &[msg], &sig).unwrap();
        assert_eq!(
            verify(m, &MechanismParam::None, &public, &[msg], &sig)
                .unwrap_err()
                .rv,
            CKR_SIGNATURE_INVALID
        );
        // NULL and the explicit default ID are the same thing.
        let default_id = MechanismParam::Bytes(b"1234567812345678".to_vec());
        let sig = sign(m, &MechanismParam::None, &private, &[msg]).unwrap();
        verify(m, &default_id, &public, &[msg], &sig).unwrap();
        // ENTL is 16 bits.
        let too_long = MechanismParam::Bytes(vec![1; 8192]);
        assert_eq!(
            lookup(m)
                .unwrap()
                .sign(&too_long, &private)
                .err()
                .map(|e| e.rv),
            Some(CKR_MECHANISM_PARAM_INVALID)
        );
    }
}

#[test]
fn ckm_sm2_on_a_digest() {
    let (public, private) = key_pair();
    let none = MechanismParam::None;
    let msg = b"prehashed elsewhere";
    // e = SM3(Z||M) with the default ID, as a caller would compute it.
    let z = match &public {
        LoadedKey::Sm2Public(k) => k.z(b"1234567812345678").unwrap(),
        _ => unreachable!(),
    };
    let e = crate::crypto::hash::HashAlg::Sm3.digest(&[&z[..], msg].concat());
    // CKM_SM2 over e and CKM_SM3_SM2 over M are interchangeable.
    let sig = sign(CKM_SM2, &none, &private, &[&e]).unwrap();
    assert_eq!(sig.len(), 64);
    verify(CKM_SM3_SM2, &none, &public, &[msg], &sig).unwrap();
    let sig = sign(CKM_SM3_SM2, &none, &private, &[msg]).unwrap();
    verify(CKM_SM2, &none, &public, &[&e], &sig).unwrap();

    assert!(!lookup(CKM_SM2)
        .unwrap()
        .sign(&none, &private)
        .unwrap()
        .multi_part());
    for bad in [&e[..31], &[&e[..], &[0]].concat()[..], &[]] {
        assert_eq!(
            sign(CKM_SM2, &none, &private, &[bad]).unwrap_err().rv,
            CKR_DATA_LEN_RANGE
        );
        assert_eq!(
            verify(CKM_SM2, &none, &public, &[bad], &sig)
                .unwrap_err()
                .rv,
            CKR_DATA_LEN_RANGE
        );
    }
    assert_eq!(
        sign(CKM_SM2, &code(0), &private, &[&e]).unwrap_err().rv,
        CKR_MECHANISM_PARAM_INVALID
    );
}

// ---- OpenSSL 3 interop ------------------------------------------------------------------

fn openssl_available() -> bool {
    let ok = Command::new("openssl")
        .arg("version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("skipping OpenSSL interop: `openssl` not found");
    }
    ok
}

fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// An OpenSSL-generated SM2 key imported as PKCS#11 attributes.
struct OpensslKey {
    dir: tempfile::TempDir,
    public: LoadedKey,
    private: LoadedKey,
}

fn openssl_key() -> OpensslKey {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl(d, &["genpkey", "-algorithm", "SM2", "-out", "priv.pem"]);
    openssl(
        d,
        &["pkey", "-in", "priv.pem", "-pubout", "-out", "pub.pem"],
    );
    // d from the text dump: the hex lines between "priv:" and "pub:".
    let text = openssl(d, &["pkey", "-in", "priv.pem", "-text", "-noout"]);
    let text = String::from_utf8(text).unwrap();
    let hex_digits: String = text
        .split("priv:")
        .nth(1)
        .and_then(|rest| rest.split("pub:").next())
        .expect("OpenSSL private key dump")
        .chars()
        .filter(char::is_ascii_hexdigit)
        .collect();
    let value = hex::decode(hex_digits).unwrap();
    let value: Vec<u8> = value.into_iter().skip_while(|b| *b == 0).collect();
    let private = load_key(&private_attrs(&value)).unwrap();
    // The public key from OpenSSL's own SubjectPublicKeyInfo (the point is its tail).
    let spki = openssl(
        d,
        &["pkey", "-in", "priv.pem", "-pubout", "-outform", "DER"],
    );
    let point = &spki[spki.len() - 65..];
    let public = load_key(&public_attrs(point, Some(&SM2_OID_DER))).unwrap();
    OpensslKey {
        dir,
        public,
        private,
    }
}

#[test]
fn openssl_ciphertext_decrypts_here() {
    if !openssl_available() {
        return;
    }
    let key = openssl_key();
    let d = key.dir.path();
    for (i, len) in [1usize, 19, 32, 100, 1000].into_iter().enumerate() {
        let msg: Vec<u8> = (0..len).map(|j| (j * 31 + i) as u8).collect();
        let name = format!("msg{i}");
        std::fs::write(d.join(&name), &msg).unwrap();
        let ct = openssl(
            d,
            &[
                "pkeyutl", "-encrypt", "-pubin", "-inkey", "pub.pem", "-in", &name,
            ],
        );
        assert_eq!(ct[0], 0x30);
        // No parameter (pkcs11-tool style) through both mechanisms, and the DER code.
        for m in [CKM_SM2_CIPHER_DER, CKM_SM2_RAW] {
            assert_eq!(
                decrypt(m, &MechanismParam::None, &key.private, &ct).unwrap(),
                msg
            );
        }
        assert_eq!(
            decrypt(CKM_SM2_RAW, &code(1), &key.private, &ct).unwrap(),
            msg
        );
    }
}

#[test]
fn ciphertext_made_here_decrypts_in_openssl() {
    if !openssl_available() {
        return;
    }
    let key = openssl_key();
    let d = key.dir.path();
    let msg = b"made by ferrohsm, read by OpenSSL";
    for (m, param) in [
        (CKM_SM2_CIPHER_DER, MechanismParam::None),
        (CKM_SM2_RAW, code(1)),
    ] {
        let ct = encrypt(m, &param, &key.public, msg).unwrap();
        std::fs::write(d.join("ct.der"), &ct).unwrap();
        let pt = openssl(
            d,
            &["pkeyutl", "-decrypt", "-inkey", "priv.pem", "-in", "ct.der"],
        );
        assert_eq!(pt, msg);
    }
    // The raw form decrypts with the `sm2` crate directly.
    let ct = encrypt(CKM_SM2_RAW, &MechanismParam::None, &key.public, msg).unwrap();
    let value = match &key.private {
        LoadedKey::Sm2Private(k) => k.value(),
        _ => unreachable!(),
    };
    let dk = sm2::pke::DecryptingKey::new_with_mode(
        sm2::NonZeroScalar::try_from(&value[..]).unwrap(),
        sm2::pke::Mode::C1C3C2,
    );
    assert_eq!(dk.decrypt(&ct).unwrap(), msg);
}

#[test]
fn signatures_interoperate_with_openssl() {
    if !openssl_available() {
        return;
    }
    let key = openssl_key();
    let d = key.dir.path();
    let msg = b"signed on one side, verified on the other";
    std::fs::write(d.join("msg"), msg).unwrap();
    let none = MechanismParam::None;
    let binary_id = [0x00u8, 0x01, 0xfe, 0xff, 0x80];
    for (param, distid) in [
        (none.clone(), "distid:1234567812345678".to_string()),
        (
            MechanismParam::Bytes(binary_id.to_vec()),
            format!("hexdistid:{}", hex::encode(binary_id)),
        ),
    ] {
        // Ours -> OpenSSL: DER directly, raw r||s after conversion to DER.
        let der_sig = sign(CKM_SM3_SM2_DER, &param, &key.private, &[msg]).unwrap();
        let raw_sig = sign(CKM_SM3_SM2, &param, &key.private, &[msg]).unwrap();
        let raw_as_der =
            crate::crypto::sm2::signature_to_der(&raw_sig.clone().try_into().unwrap()).unwrap();
        for sig in [der_sig, raw_as_der] {
            std::fs::write(d.join("sig"), &sig).unwrap();
            let out = openssl(
                d,
                &[
                    "pkeyutl", "-verify", "-rawin", "-digest", "sm3", "-pkeyopt", &distid,
                    "-pubin", "-inkey", "pub.pem", "-in", "msg", "-sigfile", "sig",
                ],
            );
            assert!(String::from_utf8_lossy(&out).contains("Successfully"));
        }
        // OpenSSL -> ours.
        let sig = openssl(
            d,
            &[
                "pkeyutl", "-sign", "-rawin", "-digest", "sm3", "-pkeyopt", &distid, "-inkey",
                "priv.pem", "-in", "msg",
            ],
        );
        verify(CKM_SM3_SM2_DER, &param, &key.public, &[msg], &sig).unwrap();
        let raw = crate::crypto::sm2::signature_from_der(&sig).unwrap();
        verify(
            CKM_SM3_SM2,
            &param,
            &key.public,
            &[&msg[..7], &msg[7..]],
            &raw,
        )
        .unwrap();
    }
}

#[test]
fn exported_public_key_reads_in_openssl() {
    if !openssl_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (public, private) = key_pair();
    let LoadedKey::Sm2Public(pk) = &public else {
        unreachable!()
    };
    let mut attrs = Attributes::new();
    attrs.set_ulong(CKA_KEY_TYPE, CKK_EC);
    attrs.set(CKA_EC_POINT, ec_point_der(pk.point()));
    let der = export_public_key(&ec_point_der(pk.point())).unwrap();
    let pem = crate::object::spki::public_key_pem(&attrs).unwrap();
    std::fs::write(d.join("ours.pem"), pem).unwrap();
    std::fs::write(d.join("ours.der"), der).unwrap();
    let text = openssl(d, &["pkey", "-pubin", "-in", "ours.pem", "-text", "-noout"]);
    let text = String::from_utf8_lossy(&text);
    assert!(text.contains("SM2"), "{text}");
    openssl(
        d,
        &[
            "pkey", "-pubin", "-inform", "DER", "-in", "ours.der", "-noout",
        ],
    );
    // OpenSSL encrypts to the exported key; the token decrypts.
    std::fs::write(d.join("msg"), b"to the exported key").unwrap();
    let ct = openssl(
        d,
        &[
            "pkeyutl", "-encrypt", "-pubin", "-inkey", "ours.pem", "-in", "msg",
        ],
    );
    assert_eq!(
        decrypt(CKM_SM2_CIPHER_DER, &MechanismParam::None, &private, &ct).unwrap(),
        b"to the exported key"
    );
}

#[test]
fn sm2_ciphers_are_multi_part() {
    let (public, private) = key_pair();
    for m in [CKM_SM2_RAW, CKM_SM2_CIPHER_DER] {
        let mechanism = lookup(m).unwrap();
        let encrypt = mechanism.encrypt(&MechanismParam::None, &public).unwrap();
        let decrypt = mechanism.decrypt(&MechanismParam::None, &private).unwrap();
        assert!(encrypt.multi_part() && decrypt.multi_part(), "0x{m:x}");
    }
}
