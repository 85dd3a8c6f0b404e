use super::*;
use crate::error::Result;
use crate::mechanism::{load_key, lookup, GeneratedKeyPair, LoadedKey, MechanismParam};
use crate::object::Attributes;

const P256_OID: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384_OID: [u8; 7] = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
const P521_OID: [u8; 7] = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];
const ED25519_OID: [u8; 5] = [0x06, 0x03, 0x2b, 0x65, 0x70];
const X25519_OID: [u8; 5] = [0x06, 0x03, 0x2b, 0x65, 0x6e];

fn printable(name: &str) -> Vec<u8> {
    let mut v = vec![0x13, name.len() as u8];
    v.extend_from_slice(name.as_bytes());
    v
}

fn with_params(params: &[u8]) -> Attributes {
    let mut t = Attributes::new();
    t.set(CKA_EC_PARAMS, params.to_vec());
    t
}

fn generate(mechanism: CK_MECHANISM_TYPE, params: &[u8]) -> Result<GeneratedKeyPair> {
    lookup(mechanism)?.generate_key_pair(
        &MechanismParam::None,
        &with_params(params),
        &Attributes::new(),
    )
}

fn sign(m: CK_MECHANISM_TYPE, key: &LoadedKey, data: &[u8]) -> Result<Vec<u8>> {
    let mut op = lookup(m)?.sign(&MechanismParam::None, key)?;
    op.update(data)?;
    op.finish()
}

fn verify(m: CK_MECHANISM_TYPE, key: &LoadedKey, data: &[u8], sig: &[u8]) -> Result<()> {
    let mut op = lookup(m)?.verify(&MechanismParam::None, key)?;
    op.update(data)?;
    op.finish(sig)
}

#[test]
fn curves_are_read_from_oids_names_and_explicit_parameters() {
    let p256 = CurveId::Weierstrass(Curve::P256);
    assert_eq!(curve_of(&P256_OID).unwrap(), p256);
    assert_eq!(curve_of(&printable("prime256v1")).unwrap(), p256);
    assert_eq!(curve_of(&printable("secp256r1")).unwrap(), p256);
    assert_eq!(
        curve_of(&P384_OID).unwrap(),
        CurveId::Weierstrass(Curve::P384)
    );
    assert_eq!(
        curve_of(&P521_OID).unwrap(),
        CurveId::Weierstrass(Curve::P521)
    );
    assert_eq!(curve_of(&ED25519_OID).unwrap(), CurveId::Ed25519);
    assert_eq!(
        curve_of(&printable("edwards25519")).unwrap(),
        CurveId::Ed25519
    );
    assert_eq!(curve_of(&X25519_OID).unwrap(), CurveId::X25519);
    assert_eq!(curve_of(&printable("curve25519")).unwrap(), CurveId::X25519);
    assert_eq!(curve_of(b"\x13\x0bcurve25519").unwrap(), CurveId::X25519);
    assert_eq!(curve_of(&crate::vendor::SM2_OID_DER).unwrap(), CurveId::Sm2);
    let rv = |v: &[u8]| curve_of(v).unwrap_err().rv;
    // Ed448, brainpoolP256r1, a name of no supported curve.
    assert_eq!(rv(&[0x06, 0x03, 0x2b, 0x65, 0x71]), CKR_CURVE_NOT_SUPPORTED);
    assert_eq!(
        rv(&hex::decode("06092b2403030208010107").unwrap()),
        CKR_CURVE_NOT_SUPPORTED
    );
    assert_eq!(rv(&printable("edwards448")), CKR_CURVE_NOT_SUPPORTED);
    for garbage in [&[][..], &[0x30, 0x00], &[0x06], &[0xff, 0x01, 0x00]] {
        assert_eq!(rv(garbage), CKR_ATTRIBUTE_VALUE_INVALID, "{garbage:02x?}");
    }
}

/// `openssl ecparam -name prime256v1 -param_enc explicit`, and variants of it.
const P256_EXPLICIT: &str = "3081f7020101302c06072a8648ce3d0101022100ffffffff000000010000000000\
    00000000000000ffffffffffffffffffffffff305b0420ffffffff0000000100000000000000000000000\
    0fffffffffffffffffffffffc04205ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2\
    604b031500c49d360886e704936a6678e1139d26b7819f7e900441046b17d1f2e12c4247f8bce6e563a440f2\
    77037d812deb33a0f4a13945d898c2964fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb64068\
    37bf51f5022100ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551020101";

#[test]
fn explicit_parameters_match_only_a_supported_curve() {
    let der = hex::decode(P256_EXPLICIT).unwrap();
    assert_eq!(curve_of(&der).unwrap(), CurveId::Weierstrass(Curve::P256));
    // Another b: a curve, but not P-256.
    let mut other = der.clone();
    other[100] ^= 1;
    assert_eq!(curve_of(&other).unwrap_err().rv, CKR_CURVE_NOT_SUPPORTED);
    // Without the seed and the cofactor, generator compressed: still P-256.
    let out = std::process::Command::new("openssl")
        .args(["ecparam", "-name", "prime256v1", "-param_enc", "explicit"])
        .args(["-conv_form", "compressed", "-no_seed", "-outform", "DER"])
        .output();
    if let Some(out) = out.ok().filter(|o| o.status.success()) {
        assert_eq!(
            curve_of(&out.stdout).unwrap(),
            CurveId::Weierstrass(Curve::P256)
        );
    }
}

#[test]
fn mechanism_info_reports_curve_sizes_and_ec_flags() {
    let ec = CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS;
    for (m, flags) in [
        (CKM_EC_KEY_PAIR_GEN, CKF_GENERATE_KEY_PAIR | ec),
        (CKM_ECDSA, CKF_SIGN | CKF_VERIFY | ec),
        (CKM_ECDSA_SHA256, CKF_SIGN | CKF_VERIFY | ec),
    ] {
        let info = lookup(m).unwrap().info();
        assert_eq!(
            (info.min_key_size, info.max_key_size, info.flags),
            (256, 521, flags)
        );
    }
    let derive = lookup(CKM_ECDH1_DERIVE).unwrap().info();
    assert_eq!((derive.min_key_size, derive.max_key_size), (255, 521));
    assert_eq!(derive.flags, CKF_DERIVE | ec);
    let eddsa = lookup(CKM_EDDSA).unwrap().info();
    assert_eq!(
        (eddsa.min_key_size, eddsa.flags),
        (255, CKF_SIGN | CKF_VERIFY)
    );
}

#[test]
fn generated_keys_load_sign_and_verify_on_every_curve() {
    for (params, len) in [
        (&P256_OID[..], 64),
        (&P384_OID[..], 96),
        (&P521_OID[..], 132),
    ] {
        let pair = generate(CKM_EC_KEY_PAIR_GEN, params).unwrap();
        assert_eq!(pair.private.get(CKA_EC_PARAMS), Some(params));
        assert_eq!(pair.public.get_ulong(CKA_KEY_TYPE).unwrap(), Some(CKK_EC));
        let private = load_key(&pair.private).unwrap();
        let public = load_key(&pair.public).unwrap();
        for m in [CKM_ECDSA_SHA1, CKM_ECDSA_SHA256, CKM_ECDSA_SHA512] {
            let sig = sign(m, &private, b"message").unwrap();
            assert_eq!(sig.len(), len);
            verify(m, &public, b"message", &sig).unwrap();
            verify(m, &private, b"message", &sig).unwrap();
            let err = verify(m, &public, b"massage", &sig).unwrap_err();
            assert_eq!(err.rv, CKR_SIGNATURE_INVALID);
        }
        // CKM_ECDSA signs the caller's hash; the hashing mechanisms agree with it.
        let h = crate::crypto::hash::HashAlg::Sha256.digest(b"message");
        let sig = sign(CKM_ECDSA, &private, &h).unwrap();
        verify(CKM_ECDSA_SHA256, &public, b"message", &sig).unwrap();
        let op = lookup(CKM_ECDSA)
            .unwrap()
            .sign(&MechanismParam::None, &private)
            .unwrap();
        assert!(!op.multi_part());
    }
}

#[test]
fn edwards_and_montgomery_keys_need_their_own_mechanisms() {
    let pair = generate(CKM_EC_EDWARDS_KEY_PAIR_GEN, &ED25519_OID).unwrap();
    assert_eq!(
        pair.public.get_ulong(CKA_KEY_TYPE).unwrap(),
        Some(CKK_EC_EDWARDS)
    );
    assert_eq!(pair.public.get(CKA_EC_POINT).unwrap().len(), 34);
    let private = load_key(&pair.private).unwrap();
    let public = load_key(&pair.public).unwrap();
    let sig = sign(CKM_EDDSA, &private, b"message").unwrap();
    verify(CKM_EDDSA, &public, b"message", &sig).unwrap();
    // ECDSA on an Edwards key, EdDSA on a NIST key: the wrong key type.
    let rv = |r: Result<Vec<u8>>| r.unwrap_err().rv;
    assert_eq!(
        rv(sign(CKM_ECDSA, &private, &[0; 32])),
        CKR_KEY_TYPE_INCONSISTENT
    );
    let nist = load_key(&generate(CKM_EC_KEY_PAIR_GEN, &P256_OID).unwrap().private).unwrap();
    assert_eq!(rv(sign(CKM_EDDSA, &nist, b"m")), CKR_KEY_TYPE_INCONSISTENT);
    // Ed25519ph / Ed25519ctx are not offered.
    let ph = MechanismParam::Eddsa {
        prehash: true,
        context: vec![],
    };
    let err = lookup(CKM_EDDSA)
        .unwrap()
        .sign(&ph, &private)
        .err()
        .unwrap();
    assert_eq!(err.rv, CKR_MECHANISM_PARAM_INVALID);
    // Each generator makes its own family only.
    let rv = |r: Result<GeneratedKeyPair>| r.err().unwrap().rv;
    assert_eq!(
        rv(generate(CKM_EC_KEY_PAIR_GEN, &ED25519_OID)),
        CKR_TEMPLATE_INCONSISTENT
    );
    assert_eq!(
        rv(generate(CKM_EC_EDWARDS_KEY_PAIR_GEN, &P256_OID)),
        CKR_TEMPLATE_INCONSISTENT
    );
    assert_eq!(
        rv(generate(CKM_EC_MONTGOMERY_KEY_PAIR_GEN, &ED25519_OID)),
        CKR_TEMPLATE_INCONSISTENT
    );
    let x = generate(CKM_EC_MONTGOMERY_KEY_PAIR_GEN, &X25519_OID).unwrap();
    assert_eq!(
        x.private.get_ulong(CKA_KEY_TYPE).unwrap(),
        Some(CKK_EC_MONTGOMERY)
    );
    load_key(&x.private).unwrap();
}

fn ecdh(kdf: CK_EC_KDF_TYPE, shared: &[u8], public: &[u8]) -> MechanismParam {
    MechanismParam::Ecdh1 {
        kdf,
        shared_data: shared.to_vec(),
        public_data: public.to_vec(),
    }
}

#[test]
fn ecdh_agrees_with_raw_and_der_public_data_and_applies_the_kdf() {
    for (m, params) in [
        (CKM_EC_KEY_PAIR_GEN, &P256_OID[..]),
        (CKM_EC_KEY_PAIR_GEN, &P521_OID[..]),
        (CKM_EC_MONTGOMERY_KEY_PAIR_GEN, &X25519_OID[..]),
    ] {
        let a = generate(m, params).unwrap();
        let b = generate(m, params).unwrap();
        let a_key = load_key(&a.private).unwrap();
        let b_key = load_key(&b.private).unwrap();
        let a_der = a.public.get(CKA_EC_POINT).unwrap().to_vec();
        let b_raw = crate::mechanism::ec_point::raw_of(
            b.public.get(CKA_EC_POINT).unwrap(),
            public_key_len(curve_of(params).unwrap()),
        )
        .unwrap()
        .to_vec();
        let derive = |p: &MechanismParam, k: &LoadedKey, len| {
            lookup(CKM_ECDH1_DERIVE).unwrap().derive(p, k, len)
        };
        let z1 = derive(&ecdh(CKD_NULL, &[], &b_raw), &a_key, None).unwrap();
        let z2 = derive(&ecdh(CKD_NULL, &[], &a_der), &b_key, None).unwrap();
        assert_eq!(*z1, *z2);
        let k1 = derive(&ecdh(CKD_SHA256_KDF, b"info", &b_raw), &a_key, Some(16)).unwrap();
        let k2 = derive(&ecdh(CKD_SHA256_KDF, b"info", &a_der), &b_key, Some(16)).unwrap();
        assert_eq!((k1.len(), &*k1), (16, &*k2));
        let mut x963 = [0u8; 16];
        ansi_x963_kdf::derive_key_into::<sha2::Sha256>(&z1, b"info", &mut x963).unwrap();
        assert_eq!(&*k1, &x963);
        let rv = |r: Result<zeroize::Zeroizing<Vec<u8>>>| r.unwrap_err().rv;
        assert_eq!(
            rv(derive(&ecdh(CKD_NULL, b"x", &b_raw), &a_key, None)),
            CKR_MECHANISM_PARAM_INVALID
        );
        assert_eq!(
            rv(derive(&ecdh(CKD_SHA256_KDF, b"", &b_raw), &a_key, None)),
            CKR_TEMPLATE_INCOMPLETE
        );
        assert_eq!(
            rv(derive(&ecdh(0x1234, b"", &b_raw), &a_key, Some(16))),
            CKR_MECHANISM_PARAM_INVALID
        );
        assert_eq!(
            rv(derive(&ecdh(CKD_NULL, &[], &b_raw[1..]), &a_key, None)),
            CKR_MECHANISM_PARAM_INVALID
        );
        assert_eq!(
            rv(derive(&MechanismParam::None, &a_key, None)),
            CKR_MECHANISM_PARAM_INVALID
        );
        let public = load_key(&a.public).unwrap();
        assert_eq!(
            rv(derive(&ecdh(CKD_NULL, &[], &b_raw), &public, None)),
            CKR_KEY_TYPE_INCONSISTENT
        );
    }
}

#[test]
fn imported_points_and_scalars_are_checked() {
    let pair = generate(CKM_EC_KEY_PAIR_GEN, &P256_OID).unwrap();
    let rv = |a: &Attributes| load_key(a).err().map(|e| e.rv);
    let mut public = pair.public.clone();
    let der = public.get(CKA_EC_POINT).unwrap().to_vec();
    public.set(CKA_EC_POINT, der[2..].to_vec());
    assert_eq!(rv(&public), None, "a raw point loads");
    let mut off = der.clone();
    off[40] ^= 1;
    public.set(CKA_EC_POINT, off);
    assert_eq!(rv(&public), Some(CKR_ATTRIBUTE_VALUE_INVALID));
    public.set(CKA_EC_POINT, der.clone());
    public.set(CKA_EC_PARAMS, P384_OID.to_vec());
    assert_eq!(rv(&public), Some(CKR_ATTRIBUTE_VALUE_INVALID));
    public.set(CKA_EC_PARAMS, ED25519_OID.to_vec());
    assert_eq!(
        rv(&public),
        Some(CKR_TEMPLATE_INCONSISTENT),
        "CKK_EC on an Edwards curve"
    );
    let mut private = pair.private.clone();
    private.set(CKA_EC_POINT, der);
    assert_eq!(rv(&private), None);
    let other = generate(CKM_EC_KEY_PAIR_GEN, &P256_OID).unwrap();
    private.set(
        CKA_EC_POINT,
        other.public.get(CKA_EC_POINT).unwrap().to_vec(),
    );
    assert_eq!(rv(&private), Some(CKR_ATTRIBUTE_VALUE_INVALID));
    private.remove(CKA_EC_POINT);
    private.set(CKA_VALUE, vec![0u8; 32]);
    assert_eq!(rv(&private), Some(CKR_ATTRIBUTE_VALUE_INVALID));
    private.remove(CKA_VALUE);
    assert_eq!(rv(&private), Some(CKR_TEMPLATE_INCOMPLETE));
}

#[test]
fn public_keys_export_as_subject_public_key_info() {
    for (m, params, oid) in [
        (CKM_EC_KEY_PAIR_GEN, &P256_OID[..], "1.2.840.10045.2.1"),
        (CKM_EC_EDWARDS_KEY_PAIR_GEN, &ED25519_OID[..], "1.3.101.112"),
        (
            CKM_EC_MONTGOMERY_KEY_PAIR_GEN,
            &X25519_OID[..],
            "1.3.101.110",
        ),
    ] {
        let pair = generate(m, params).unwrap();
        let der = export_public_key(&pair.public).unwrap();
        let info = spki::SubjectPublicKeyInfoRef::try_from(der.as_slice()).unwrap();
        assert_eq!(info.algorithm.oid.to_string(), oid);
    }
}
