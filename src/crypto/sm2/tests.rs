//! Tests of the SM2 adapter: GB/T 32918.5-2017 Annex A vectors, the `sm2` crate's own
//! vectors, round trips in every form, auto-detection and hostile ciphertexts.

use super::*;
use sm2::dsa::signature::Verifier;
use sm2::elliptic_curve::rand_core::{TryCryptoRng, TryRng};

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.replace([' ', '\n'], "")).unwrap()
}

// GB/T 32918.5-2017 Annex A (also GM/T 0003.5-2012): one key for both examples.
const GBT_D: &str = "3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8";
const GBT_PUB: &str = "04 09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020
                          CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13";
const GBT_K: &str = "59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21";
const GBT_Z: &str = "B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3";
const GBT_E: &str = "F0B43E94BA45ACCAACE692ED534382EB17E6AB5A19CE7B31F4486FDFC0D28640";
const GBT_SIG: &str = "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3
                       B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA";
const GBT_C1: &str = "04 04EBFC718E8D1798620432268E77FEB6415E2EDE0E073C0F4F640ECD2E149A73
                         E858F9D81E5430A57B36DAAB8F950A3C64E6EE6A63094D99283AFF767E124DF0";
const GBT_C3: &str = "59983C18F809E262923C53AEC295D30383B54E39D609D160AFCB1908D0BD8766";
const GBT_C2: &str = "21886CA989CA9C7D58087307CA93092D651EFA";
const GBT_DER: &str = "307C022004EBFC718E8D1798620432268E77FEB6415E2EDE0E073C0F4F640ECD2E149A73
    022100E858F9D81E5430A57B36DAAB8F950A3C64E6EE6A63094D99283AFF767E124DF0
    042059983C18F809E262923C53AEC295D30383B54E39D609D160AFCB1908D0BD8766
    041321886CA989CA9C7D58087307CA93092D651EFA";

pub(crate) fn gbt_key() -> Sm2PrivateKey {
    Sm2PrivateKey::from_value(&unhex(GBT_D)).unwrap()
}

/// An "RNG" that hands out a fixed k, for the encryption known-answer test.
struct FixedK(Vec<u8>);

impl TryRng for FixedK {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> std::result::Result<u32, Self::Error> {
        unimplemented!()
    }
    fn try_next_u64(&mut self) -> std::result::Result<u64, Self::Error> {
        unimplemented!()
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> std::result::Result<(), Self::Error> {
        dst.copy_from_slice(&self.0[..dst.len()]);
        Ok(())
    }
}
impl TryCryptoRng for FixedK {}

fn raw(order: RawOrder, prefix: bool) -> CiphertextForm {
    CiphertextForm::Raw { order, prefix }
}

const ALL_FORMS: [CiphertextForm; 5] = [
    CiphertextForm::Der,
    CiphertextForm::Raw {
        order: RawOrder::C1C3C2,
        prefix: true,
    },
    CiphertextForm::Raw {
        order: RawOrder::C1C3C2,
        prefix: false,
    },
    CiphertextForm::Raw {
        order: RawOrder::C1C2C3,
        prefix: true,
    },
    CiphertextForm::Raw {
        order: RawOrder::C1C2C3,
        prefix: false,
    },
];

#[test]
fn curve_constants_match_the_crate() {
    use sm2::elliptic_curve::Group;
    let g = sm2::ProjectivePoint::generator().to_affine();
    let encoded = g.to_sec1_point(false);
    assert_eq!(&encoded.as_bytes()[1..33], &signature::GENERATOR_X);
    assert_eq!(&encoded.as_bytes()[33..], &signature::GENERATOR_Y);
}

#[test]
fn gbt_public_key_z_and_e() {
    let key = gbt_key();
    assert_eq!(key.public_key().point().to_vec(), unhex(GBT_PUB));
    assert_eq!(key.value().to_vec(), unhex(GBT_D));
    let z = key.public_key().z(b"1234567812345678").unwrap();
    assert_eq!(z.to_vec(), unhex(GBT_Z));
    // The cached default Z and a freshly computed one agree.
    assert_eq!(
        signature::compute_z(b"1234567812345678", key.public_key().point()).unwrap(),
        z
    );
    let mut hasher = <sm3::Sm3 as sm3::Digest>::new_with_prefix(z);
    sm3::Digest::update(&mut hasher, b"message digest");
    assert_eq!(sm3::Digest::finalize(hasher).to_vec(), unhex(GBT_E));
}

#[test]
fn gbt_signature_verifies() {
    let key = gbt_key();
    let public = key.public_key();
    let e = unhex(GBT_E);
    let sig = unhex(GBT_SIG);
    public.verify_prehash(&e, &sig).unwrap();
    // DER round trip of the published signature.
    let der = signature_to_der(&sig.clone().try_into().unwrap()).unwrap();
    assert_eq!(der[..4], [0x30, 0x46, 0x02, 0x21]);
    assert_eq!(signature_from_der(&der).unwrap().to_vec(), sig);
    // Our own signatures over the same e verify, and differ each time (fresh k).
    let a = key.sign_prehash(&e).unwrap();
    let b = key.sign_prehash(&e).unwrap();
    assert_ne!(a, b);
    public.verify_prehash(&e, &a).unwrap();
    public.verify_prehash(&e, &b).unwrap();
}

#[test]
fn gbt_encryption_known_answer() {
    let key = gbt_key();
    let public = key.public_key();
    let msg = b"encryption standard";
    let k = unhex(GBT_K);
    let (c1, c3, c2) = (unhex(GBT_C1), unhex(GBT_C3), unhex(GBT_C2));
    let expect = |form: CiphertextForm| -> Vec<u8> {
        let c1 = match form {
            CiphertextForm::Raw { prefix: false, .. } => &c1[1..],
            _ => &c1[..],
        };
        match form {
            CiphertextForm::Der => unhex(GBT_DER),
            CiphertextForm::Raw {
                order: RawOrder::C1C3C2,
                ..
            } => [c1, &c3, &c2].concat(),
            CiphertextForm::Raw {
                order: RawOrder::C1C2C3,
                ..
            } => [c1, &c2, &c3].concat(),
        }
    };
    for form in ALL_FORMS {
        let ct = public
            .encrypt_with_rng(&mut FixedK(k.clone()), msg, form)
            .unwrap();
        assert_eq!(ct, expect(form), "{form:?}");
        assert_eq!(key.decrypt(&ct, Some(form)).unwrap().as_slice(), msg);
        assert_eq!(plaintext_len(&ct, Some(form)).unwrap(), msg.len());
        assert!(ct.len() <= ciphertext_len_bound(msg.len(), form));
        // The C1C3C2 order is found without a format code; C1C2C3 needs one.
        let auto = key.decrypt(&ct, None);
        match form {
            CiphertextForm::Raw {
                order: RawOrder::C1C2C3,
                ..
            } => assert_eq!(auto.unwrap_err().rv, CKR_ENCRYPTED_DATA_INVALID),
            _ => assert_eq!(auto.unwrap().as_slice(), msg),
        }
    }
}

// The `sm2` crate's own vectors (tests/sm2pke.rs), the DER one made by OpenSSL.
#[test]
fn crate_vectors_decrypt() {
    let key = Sm2PrivateKey::from_value(&unhex(
        "3DDD2A3679BF6F1DFC3B49D3E99114718E48EC170EB4E4D3A82052DAB19E8B50",
    ))
    .unwrap();
    let raw_ct = unhex("041ed68db303f5bc6bce516d5a62e1cd16781d3007df6864d970a56d46a6cecca0e0d33bfc71e78c440ae6afeef1a18cce473b3e27002189a058ddadc9182c80a3f13be66476ba6ef66d95a7fb11f30de441b3b66d566e48348bd830e584e7ec37f9b704ef32eba9055c");
    let der_ct = unhex("307202206ba17ad462a75beeb2caf8a1282687ab7e2f248b776a481612d89425a519ce6002210083e1de8c57dae995137227839d3880eaf9fe82a885a750be29ebe58193c8e31a0420d513a555087c2b17a88dd62749435133d325a4afca675284c85d754ba35670f80409bd3a294a6d50184b37");
    for ct in [&raw_ct, &der_ct] {
        assert_eq!(key.decrypt(ct, None).unwrap().as_slice(), b"plaintext");
    }
    assert_eq!(
        key.decrypt(&raw_ct, Some(raw(RawOrder::C1C3C2, true)))
            .unwrap()
            .as_slice(),
        b"plaintext"
    );
    assert_eq!(
        key.decrypt(&der_ct, Some(CiphertextForm::Der))
            .unwrap()
            .as_slice(),
        b"plaintext"
    );
    // A form code that does not match the input is refused, never guessed around.
    assert_eq!(
        key.decrypt(&der_ct, Some(raw(RawOrder::C1C3C2, true)))
            .unwrap_err()
            .rv,
        CKR_ENCRYPTED_DATA_INVALID
    );
    assert_eq!(
        key.decrypt(&raw_ct, Some(CiphertextForm::Der))
            .unwrap_err()
            .rv,
        CKR_ENCRYPTED_DATA_INVALID
    );
}

#[test]
fn round_trips_every_form_and_length() {
    let key = Sm2PrivateKey::generate().unwrap();
    let public = key.public_key();
    for len in [1usize, 31, 32, 33, 64, 127, 128, 300, 4096] {
        let msg: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
        for form in ALL_FORMS {
            let ct = public.encrypt(&msg, form).unwrap();
            assert!(
                ct.len() <= ciphertext_len_bound(len, form),
                "{form:?} {len}"
            );
            assert_eq!(plaintext_len(&ct, Some(form)).unwrap(), len);
            assert_eq!(key.decrypt(&ct, Some(form)).unwrap().as_slice(), &msg[..]);
        }
    }
}

#[test]
fn auto_detection_order() {
    let key = Sm2PrivateKey::generate().unwrap();
    let public = key.public_key();
    let msg = b"auto";
    // Many ciphertexts so that raw ones whose x1 starts with 0x30 or 0x04 turn up too.
    for _ in 0..64 {
        for form in [
            CiphertextForm::Der,
            raw(RawOrder::C1C3C2, true),
            raw(RawOrder::C1C3C2, false),
        ] {
            let ct = public.encrypt(msg, form).unwrap();
            assert_eq!(key.decrypt(&ct, None).unwrap().as_slice(), msg, "{form:?}");
            assert_eq!(plaintext_len(&ct, None).unwrap(), msg.len());
        }
    }
}

#[test]
fn empty_plaintext_is_refused() {
    let key = gbt_key();
    for form in ALL_FORMS {
        assert_eq!(
            key.public_key().encrypt(b"", form).unwrap_err().rv,
            CKR_DATA_LEN_RANGE
        );
    }
    // An empty C2 (97 bytes, valid C1) cannot decrypt: the key stream is empty.
    let ct = key
        .public_key()
        .encrypt(b"x", raw(RawOrder::C1C3C2, true))
        .unwrap();
    assert_eq!(
        key.decrypt(&ct[..97], None).unwrap_err().rv,
        CKR_ENCRYPTED_DATA_INVALID
    );
}

fn assert_invalid(key: &Sm2PrivateKey, ct: &[u8], form: Option<CiphertextForm>, what: &str) {
    match key.decrypt(ct, form) {
        Err(e) => assert_eq!(e.rv, CKR_ENCRYPTED_DATA_INVALID, "{what} {form:?}"),
        Ok(_) => panic!("{what} {form:?} decrypted"),
    }
}

#[test]
fn hostile_ciphertexts() {
    let key = Sm2PrivateKey::generate().unwrap();
    let public = key.public_key();
    let msg = b"hostile input must never panic";
    for form in ALL_FORMS {
        let ct = public.encrypt(msg, form).unwrap();
        for detect in [Some(form), None] {
            // Truncated at every length.
            for cut in 0..ct.len() {
                assert_invalid(&key, &ct[..cut], detect, "truncated");
            }
            // Extended.
            for extra in [&[0u8][..], &[0x00, 0x00], &[0xff; 40]] {
                assert_invalid(&key, &[&ct[..], extra].concat(), detect, "extended");
            }
            // Every bit flipped, one at a time (every 8th bit for speed in debug builds).
            for bit in (0..ct.len() * 8).step_by(if detect.is_some() { 1 } else { 8 }) {
                let mut bad = ct.clone();
                bad[bit / 8] ^= 1 << (bit % 8);
                assert_invalid(&key, &bad, detect, "bit flip");
            }
        }
    }
}

#[test]
fn c1_off_the_curve() {
    let key = Sm2PrivateKey::generate().unwrap();
    let ct = key
        .public_key()
        .encrypt(b"off the curve", raw(RawOrder::C1C3C2, true))
        .unwrap();
    let mut bad = ct.clone();
    bad[64] ^= 0x01; // last byte of y1
    for form in [Some(raw(RawOrder::C1C3C2, true)), None] {
        assert_invalid(&key, &bad, form, "y1 changed");
    }
    // (0, 0) and (p-like garbage) are not points either.
    let mut zero = ct.clone();
    zero[1..65].fill(0);
    assert_invalid(&key, &zero, None, "C1 = (0,0)");
    let mut ff = ct.clone();
    ff[1..65].fill(0xff);
    assert_invalid(&key, &ff, None, "C1 = (ff.., ff..)");
    // Compressed C1 is not one of the accepted forms.
    let mut compressed = vec![0x02 | (ct[64] & 1)];
    compressed.extend_from_slice(&ct[1..33]);
    compressed.extend_from_slice(&ct[65..]);
    assert_invalid(&key, &compressed, None, "compressed C1");
}

#[test]
fn private_value_range() {
    let n = unhex("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123");
    let mut n_minus_1 = n.clone();
    n_minus_1[31] -= 1;
    let mut n_minus_2 = n.clone();
    n_minus_2[31] -= 2;
    for bad in [
        vec![],
        vec![0u8; 32],
        n.clone(),
        n_minus_1,
        vec![1u8; 33],
        vec![0xff; 32],
    ] {
        assert_eq!(
            Sm2PrivateKey::from_value(&bad).unwrap_err().rv,
            CKR_ATTRIBUTE_VALUE_INVALID
        );
    }
    Sm2PrivateKey::from_value(&n_minus_2).unwrap();
    // Leading zeros may be stripped: d = 1.
    let one = Sm2PrivateKey::from_value(&[1]).unwrap();
    assert_eq!(one.value().len(), 32);
    assert_eq!(one.public_key().point()[1..33], signature::GENERATOR_X);
}

#[test]
fn public_point_parsing() {
    let key = gbt_key();
    let point = key.public_key().point().to_vec();
    assert_eq!(
        Sm2PublicKey::from_point(&point).unwrap().point().to_vec(),
        point
    );
    let mut off = point.clone();
    off[64] ^= 1;
    for bad in [&point[..64], &point[1..], &off[..], &[0u8; 65][..]] {
        assert_eq!(
            Sm2PublicKey::from_point(bad).unwrap_err().rv,
            CKR_ATTRIBUTE_VALUE_INVALID
        );
    }
}

#[test]
fn our_z_matches_the_crate_for_text_ids() {
    // Sign with our Z for an ID the crate can take as &str; the crate's verifier (its own Z)
    // must accept the signature.
    let key = Sm2PrivateKey::generate().unwrap();
    let public = key.public_key();
    for id in ["1234567812345678", "", "ALICE123@YAHOO.COM"] {
        let z = public.z(id.as_bytes()).unwrap();
        let mut hasher = <sm3::Sm3 as sm3::Digest>::new_with_prefix(z);
        sm3::Digest::update(&mut hasher, b"message");
        let e = sm3::Digest::finalize(hasher);
        let sig = key.sign_prehash(&e).unwrap();
        let crate_vk = VerifyingKey::new(id, *public.public()).unwrap();
        let sig = sm2::dsa::Signature::from_slice(&sig).unwrap();
        crate_vk.verify(b"message", &sig).unwrap();
    }
    // Binary IDs work, and the longest one ENTL can express.
    public.z(&[0u8, 0xff, 0x80, 0x01]).unwrap();
    public.z(&[7u8; 8191]).unwrap();
    assert_eq!(
        public.z(&[7u8; 8192]).unwrap_err().rv,
        CKR_MECHANISM_PARAM_INVALID
    );
}

#[test]
fn bad_signatures() {
    let key = gbt_key();
    let public = key.public_key();
    let e = unhex(GBT_E);
    let sig = unhex(GBT_SIG);
    assert_eq!(
        public.verify_prehash(&e, &sig[..63]).unwrap_err().rv,
        CKR_SIGNATURE_LEN_RANGE
    );
    assert_eq!(
        public
            .verify_prehash(&e, &[&sig[..], &[0]].concat())
            .unwrap_err()
            .rv,
        CKR_SIGNATURE_LEN_RANGE
    );
    for i in 0..64 {
        let mut bad = sig.clone();
        bad[i] ^= 0x10;
        assert_eq!(
            public.verify_prehash(&e, &bad).unwrap_err().rv,
            CKR_SIGNATURE_INVALID
        );
    }
    // r = 0, r = n.
    let n = unhex("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123");
    for r in [vec![0u8; 32], n] {
        let bad = [&r[..], &sig[32..]].concat();
        assert_eq!(
            public.verify_prehash(&e, &bad).unwrap_err().rv,
            CKR_SIGNATURE_INVALID
        );
    }
    assert_eq!(
        public.verify_prehash(&e[..31], &sig).unwrap_err().rv,
        CKR_DATA_LEN_RANGE
    );
    // DER: trailing bytes, wrong tag, oversize, empty.
    let der = signature_to_der(&sig.clone().try_into().unwrap()).unwrap();
    for bad in [
        [&der[..], &[0]].concat(),
        [&[0x31], &der[1..]].concat(),
        der[..der.len() - 1].to_vec(),
        vec![],
    ] {
        let expected = if bad.len() > SIGNATURE_DER_MAX_LEN {
            CKR_SIGNATURE_LEN_RANGE
        } else {
            CKR_SIGNATURE_INVALID
        };
        assert_eq!(signature_from_der(&bad).unwrap_err().rv, expected);
    }
    assert_eq!(
        signature_from_der(&[0x30; 73]).unwrap_err().rv,
        CKR_SIGNATURE_LEN_RANGE
    );
}

#[test]
fn spki_der_and_pem() {
    let key = gbt_key();
    let der = public_key_spki_der(key.public_key()).unwrap();
    // SEQUENCE { SEQUENCE { id-ecPublicKey, sm2p256v1 }, BIT STRING 04||X||Y }
    let alg = unhex("3013 0607 2A8648CE3D0201 0608 2A811CCF5501822D");
    assert_eq!(der[2..2 + alg.len()], alg[..]);
    assert!(der.ends_with(key.public_key().point()));
    let mut attrs = crate::object::Attributes::new();
    attrs.set_ulong(CKA_KEY_TYPE, CKK_EC);
    attrs.set(
        CKA_EC_POINT,
        [&[0x04, POINT_LEN as u8][..], key.public_key().point()].concat(),
    );
    let pem = crate::object::spki::public_key_pem(&attrs).unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
}
