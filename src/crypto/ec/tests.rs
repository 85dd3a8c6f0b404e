use super::*;

const CURVES: [Curve; 3] = [Curve::P256, Curve::P384, Curve::P521];

#[test]
fn ecdsa_signatures_verify_on_every_curve_and_bind_the_hash() {
    for curve in CURVES {
        let key = EcPrivateKey::generate(curve).unwrap();
        let h = [0x5au8; 32];
        let sig = key.sign_hash(&h).unwrap();
        assert_eq!(sig.len(), curve.signature_len());
        key.public_key().verify_hash(&h, &sig).unwrap();
        let other = [0x5bu8; 32];
        let err = key.public_key().verify_hash(&other, &sig).unwrap_err();
        assert_eq!(err.rv, CKR_SIGNATURE_INVALID, "{curve:?}");
        let err = key.public_key().verify_hash(&h, &sig[1..]).unwrap_err();
        assert_eq!(err.rv, CKR_SIGNATURE_LEN_RANGE, "{curve:?}");
    }
}

#[test]
fn a_hash_is_taken_as_the_integer_its_leftmost_order_bits_make() {
    let key = EcPrivateKey::generate(Curve::P256).unwrap();
    // Shorter than the order: the same integer as its zero-padded form.
    let short = [0x11u8; 20];
    let mut padded = [0u8; 32];
    padded[12..].copy_from_slice(&short);
    let sig = key.sign_hash(&short).unwrap();
    key.public_key().verify_hash(&padded, &sig).unwrap();
    // Longer: only the leftmost 256 bits count.
    let long: Vec<u8> = (0..64u8).collect();
    let sig = key.sign_hash(&long).unwrap();
    key.public_key().verify_hash(&long[..32], &sig).unwrap();
    // P-521 takes up to 64 bytes; longer inputs whose integer needs more are refused.
    let key = EcPrivateKey::generate(Curve::P521).unwrap();
    let sig = key.sign_hash(&[0xffu8; 64]).unwrap();
    key.public_key().verify_hash(&[0xffu8; 64], &sig).unwrap();
    let err = key.sign_hash(&[0xffu8; 66]).unwrap_err();
    assert_eq!(err.rv, CKR_DATA_LEN_RANGE);
}

#[test]
fn scalars_round_trip_and_out_of_range_ones_are_refused() {
    for curve in CURVES {
        let key = EcPrivateKey::generate(curve).unwrap();
        let scalar = key.scalar().unwrap();
        assert_eq!(scalar.len(), curve.field_len());
        let again = EcPrivateKey::from_scalar(curve, &scalar).unwrap();
        assert_eq!(again.public_key().point(), key.public_key().point());
        for bad in [
            vec![0u8; curve.field_len()],
            vec![0xffu8; curve.field_len()],
            vec![],
        ] {
            let err = EcPrivateKey::from_scalar(curve, &bad).err().unwrap();
            assert_eq!(err.rv, CKR_ATTRIBUTE_VALUE_INVALID, "{curve:?}");
        }
    }
    // A scalar with its leading zero stripped is the same key.
    let mut value = vec![0u8; 32];
    value[31] = 7;
    let a = EcPrivateKey::from_scalar(Curve::P256, &value).unwrap();
    let b = EcPrivateKey::from_scalar(Curve::P256, &[7]).unwrap();
    assert_eq!(a.public_key().point(), b.public_key().point());
}

#[test]
fn points_off_the_curve_are_refused() {
    let key = EcPrivateKey::generate(Curve::P256).unwrap();
    let mut point = key.public_key().point().to_vec();
    point[40] ^= 1;
    let err = EcPublicKey::from_point(Curve::P256, &point).err().unwrap();
    assert_eq!(err.rv, CKR_ATTRIBUTE_VALUE_INVALID);
    let err = key.agree(&point).unwrap_err();
    assert_eq!(err.rv, CKR_MECHANISM_PARAM_INVALID);
    let err = EcPublicKey::from_point(Curve::P384, key.public_key().point())
        .err()
        .unwrap();
    assert_eq!(err.rv, CKR_ATTRIBUTE_VALUE_INVALID);
}

#[test]
fn ecdh_gives_both_sides_the_same_secret() {
    for curve in CURVES {
        let a = EcPrivateKey::generate(curve).unwrap();
        let b = EcPrivateKey::generate(curve).unwrap();
        let z1 = a.agree(b.public_key().point()).unwrap();
        let z2 = b.agree(a.public_key().point()).unwrap();
        assert_eq!(*z1, *z2);
        assert_eq!(z1.len(), curve.field_len());
    }
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

#[test]
fn ed25519_matches_rfc8032_test_1() {
    let key = Ed25519PrivateKey::from_seed(&unhex(
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
    ))
    .unwrap();
    assert_eq!(
        key.public_key().bytes().to_vec(),
        unhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    );
    let sig = key.sign(b"").unwrap();
    assert_eq!(
        sig,
        unhex(
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bac\
             c61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        )
    );
    key.public_key().verify(b"", &sig).unwrap();
    assert_eq!(
        key.public_key().verify(b"x", &sig).unwrap_err().rv,
        CKR_SIGNATURE_INVALID
    );
    let generated = Ed25519PrivateKey::generate().unwrap();
    let again = Ed25519PrivateKey::from_seed(&generated.seed().unwrap()).unwrap();
    assert_eq!(again.public_key().bytes(), generated.public_key().bytes());
}

#[test]
fn x25519_matches_rfc7748_section_6_1() {
    let alice = X25519PrivateKey::from_scalar(&unhex(
        "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
    ))
    .unwrap();
    assert_eq!(
        alice.public_key().bytes().to_vec(),
        unhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
    );
    let bob_public = unhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
    assert_eq!(
        alice.agree(&bob_public).unwrap().to_vec(),
        unhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
    );
    assert_eq!(
        alice.agree(&[0u8; 32]).unwrap_err().rv,
        CKR_MECHANISM_PARAM_INVALID
    );
    let generated = X25519PrivateKey::generate().unwrap();
    let again = X25519PrivateKey::from_scalar(&generated.scalar().unwrap()).unwrap();
    assert_eq!(again.public_key().bytes(), generated.public_key().bytes());
}
