//! Unit tests of the attribute policy: one test per footnote class of rule, with the exact
//! return code; defaults; copy rules; sensitive reads; the CKK_SM2 alias.

use super::*;

const SM2_OID: &[u8] = &[0x06, 0x08, 0x2A, 0x81, 0x1C, 0xCF, 0x55, 0x01, 0x82, 0x2D];
const RSA_GEN: Origin = Origin::Generate {
    mechanism: CKM_RSA_PKCS_KEY_PAIR_GEN,
};
const AES_GEN: Origin = Origin::Generate {
    mechanism: CKM_AES_KEY_GEN,
};

fn ul(v: CK_ULONG) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

fn b(v: bool) -> Vec<u8> {
    vec![v as u8]
}

fn attrs(pairs: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)]) -> Attributes {
    pairs.iter().cloned().collect()
}

fn with(mut base: Attributes, pairs: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)]) -> Attributes {
    for (ty, v) in pairs {
        base.set(*ty, v.clone());
    }
    base
}

fn without(mut base: Attributes, ty: CK_ATTRIBUTE_TYPE) -> Attributes {
    base.remove(ty);
    base
}

fn rv<T: std::fmt::Debug>(r: Result<T>) -> CK_RV {
    r.expect_err("expected an error").rv
}

fn modulus() -> Vec<u8> {
    let mut m = vec![0xC5; 256];
    m[255] = 0x01;
    m
}

fn rsa_public() -> Attributes {
    attrs(&[
        (CKA_CLASS, ul(CKO_PUBLIC_KEY)),
        (CKA_KEY_TYPE, ul(CKK_RSA)),
        (CKA_MODULUS, modulus()),
        (CKA_PUBLIC_EXPONENT, vec![1, 0, 1]),
    ])
}

fn rsa_private() -> Attributes {
    attrs(&[
        (CKA_CLASS, ul(CKO_PRIVATE_KEY)),
        (CKA_KEY_TYPE, ul(CKK_RSA)),
        (CKA_MODULUS, modulus()),
        (CKA_PRIVATE_EXPONENT, vec![0x42; 256]),
    ])
}

fn ec_public() -> Attributes {
    let mut point = vec![0x04];
    point.extend_from_slice(&[0x11; 64]);
    attrs(&[
        (CKA_CLASS, ul(CKO_PUBLIC_KEY)),
        (CKA_KEY_TYPE, ul(CKK_EC)),
        (CKA_EC_PARAMS, SM2_OID.to_vec()),
        (CKA_EC_POINT, point),
    ])
}

fn aes_key() -> Attributes {
    attrs(&[
        (CKA_CLASS, ul(CKO_SECRET_KEY)),
        (CKA_KEY_TYPE, ul(CKK_AES)),
        (CKA_VALUE, vec![7; 16]),
    ])
}

fn certificate() -> Attributes {
    attrs(&[
        (CKA_CLASS, ul(CKO_CERTIFICATE)),
        (CKA_CERTIFICATE_TYPE, ul(CKC_X_509)),
        (CKA_SUBJECT, b"subject".to_vec()),
        (CKA_VALUE, b"certificate bytes".to_vec()),
    ])
}

fn data() -> Attributes {
    attrs(&[(CKA_CLASS, ul(CKO_DATA)), (CKA_VALUE, b"hello".to_vec())])
}

/// What an RSA key-pair mechanism hands to the object layer.
fn generated_rsa() -> (Attributes, Attributes) {
    let public = attrs(&[
        (CKA_CLASS, ul(CKO_PUBLIC_KEY)),
        (CKA_KEY_TYPE, ul(CKK_RSA)),
        (CKA_MODULUS, modulus()),
        (CKA_PUBLIC_EXPONENT, vec![1, 0, 1]),
    ]);
    let private = attrs(&[
        (CKA_CLASS, ul(CKO_PRIVATE_KEY)),
        (CKA_KEY_TYPE, ul(CKK_RSA)),
        (CKA_MODULUS, modulus()),
        (CKA_PUBLIC_EXPONENT, vec![1, 0, 1]),
        (CKA_PRIVATE_EXPONENT, vec![0x42; 256]),
        (CKA_PRIME_1, vec![0x43; 128]),
        (CKA_PRIME_2, vec![0x44; 128]),
    ]);
    (public, private)
}

fn generated_sm2() -> (Attributes, Attributes) {
    let ec = ec_public();
    let public = attrs(&[
        (CKA_CLASS, ul(CKO_PUBLIC_KEY)),
        (CKA_KEY_TYPE, ul(CKK_EC)),
        (CKA_EC_PARAMS, SM2_OID.to_vec()),
        (CKA_EC_POINT, ec.get(CKA_EC_POINT).unwrap().to_vec()),
    ]);
    let private = attrs(&[
        (CKA_CLASS, ul(CKO_PRIVATE_KEY)),
        (CKA_KEY_TYPE, ul(CKK_EC)),
        (CKA_EC_PARAMS, SM2_OID.to_vec()),
        (CKA_VALUE, vec![0x55; 32]),
    ]);
    (public, private)
}

fn create(t: &Attributes) -> Result<Attributes> {
    new_object(t, Origin::Create, &Attributes::new())
}

fn bool_of(o: &Attributes, ty: CK_ATTRIBUTE_TYPE) -> bool {
    o.get_bool(ty)
        .unwrap()
        .unwrap_or_else(|| panic!("0x{ty:x} missing"))
}

fn ulong_of(o: &Attributes, ty: CK_ATTRIBUTE_TYPE) -> CK_ULONG {
    o.get_ulong(ty)
        .unwrap()
        .unwrap_or_else(|| panic!("0x{ty:x} missing"))
}

// --- class and key type -------------------------------------------------------------------

#[test]
fn create_without_class_is_incomplete() {
    assert_eq!(
        rv(create(&without(data(), CKA_CLASS))),
        CKR_TEMPLATE_INCOMPLETE
    );
}

#[test]
fn create_key_without_key_type_is_incomplete() {
    assert_eq!(
        rv(create(&without(rsa_public(), CKA_KEY_TYPE))),
        CKR_TEMPLATE_INCOMPLETE
    );
    assert_eq!(
        rv(create(&without(aes_key(), CKA_KEY_TYPE))),
        CKR_TEMPLATE_INCOMPLETE
    );
}

#[test]
fn unknown_class_is_value_invalid() {
    for class in [CKO_HW_FEATURE, CKO_DOMAIN_PARAMETERS, 0x1234] {
        let t = with(data(), &[(CKA_CLASS, ul(class))]);
        assert_eq!(rv(create(&t)), CKR_ATTRIBUTE_VALUE_INVALID);
    }
}

#[test]
fn unknown_key_type_is_value_invalid_and_mismatched_type_inconsistent() {
    let t = with(rsa_public(), &[(CKA_KEY_TYPE, ul(CKK_DSA))]);
    assert_eq!(rv(create(&t)), CKR_ATTRIBUTE_VALUE_INVALID);
    let t = with(rsa_public(), &[(CKA_KEY_TYPE, ul(CKK_AES))]);
    assert_eq!(rv(create(&t)), CKR_TEMPLATE_INCONSISTENT);
    let t = with(aes_key(), &[(CKA_KEY_TYPE, ul(CKK_RSA))]);
    assert_eq!(rv(create(&t)), CKR_TEMPLATE_INCONSISTENT);
}

#[test]
fn certificate_type_required_and_only_x509() {
    let t = without(certificate(), CKA_CERTIFICATE_TYPE);
    assert_eq!(rv(create(&t)), CKR_TEMPLATE_INCOMPLETE);
    let t = with(certificate(), &[(CKA_CERTIFICATE_TYPE, ul(CKC_WTLS))]);
    assert_eq!(rv(create(&t)), CKR_ATTRIBUTE_VALUE_INVALID);
}

// --- footnote 1: required on create ------------------------------------------------------

#[test]
fn footnote_1_required_on_create() {
    for (t, ty) in [
        (rsa_public(), CKA_MODULUS),
        (rsa_public(), CKA_PUBLIC_EXPONENT),
        (rsa_private(), CKA_MODULUS),
        (rsa_private(), CKA_PRIVATE_EXPONENT),
        (ec_public(), CKA_EC_PARAMS),
        (ec_public(), CKA_EC_POINT),
        (aes_key(), CKA_VALUE),
        (certificate(), CKA_SUBJECT),
    ] {
        assert_eq!(
            rv(create(&without(t, ty))),
            CKR_TEMPLATE_INCOMPLETE,
            "0x{ty:x}"
        );
    }
}

#[test]
fn rsa_private_public_exponent_and_crt_are_optional() {
    let o = create(&rsa_private()).unwrap();
    assert!(!o.contains(CKA_PUBLIC_EXPONENT));
    assert!(!o.contains(CKA_PRIME_1));
}

#[test]
fn certificate_needs_value_or_url() {
    let t = without(certificate(), CKA_VALUE);
    assert_eq!(rv(create(&t)), CKR_TEMPLATE_INCOMPLETE);
    let t = with(t, &[(CKA_URL, b"https://example.org/c.der".to_vec())]);
    create(&t).unwrap();
}

#[test]
fn ec_private_import_needs_params_and_value() {
    let (_, private) = generated_sm2();
    create(&private).unwrap();
    assert_eq!(
        rv(create(&without(private.clone(), CKA_EC_PARAMS))),
        CKR_TEMPLATE_INCOMPLETE
    );
    assert_eq!(
        rv(create(&without(private, CKA_VALUE))),
        CKR_TEMPLATE_INCOMPLETE
    );
}

// --- footnote 2: not on create (derived) --------------------------------------------------

#[test]
fn footnote_2_modulus_bits_derived_on_create() {
    let o = create(&rsa_public()).unwrap();
    assert_eq!(ulong_of(&o, CKA_MODULUS_BITS), 2048);
    // The true value contradicts nothing; another one does.
    create(&with(rsa_public(), &[(CKA_MODULUS_BITS, ul(2048))])).unwrap();
    let t = with(rsa_public(), &[(CKA_MODULUS_BITS, ul(1024))]);
    assert_eq!(rv(create(&t)), CKR_TEMPLATE_INCONSISTENT);
}

#[test]
fn footnote_2_value_len_derived_on_create() {
    let o = create(&aes_key()).unwrap();
    assert_eq!(ulong_of(&o, CKA_VALUE_LEN), 16);
    let t = with(aes_key(), &[(CKA_VALUE_LEN, ul(32))]);
    assert_eq!(rv(create(&t)), CKR_TEMPLATE_INCONSISTENT);
}

// --- footnotes 3/4: generation ----------------------------------------------------------------

#[test]
fn generate_rsa_pair_merges_template_and_material() {
    let (gp, gs) = generated_rsa();
    let pub_t = attrs(&[
        (CKA_MODULUS_BITS, ul(2048)),
        (CKA_PUBLIC_EXPONENT, vec![0, 1, 0, 1]),
        (CKA_LABEL, b"k".to_vec()),
        (CKA_TOKEN, b(true)),
    ]);
    let priv_t = attrs(&[(CKA_LABEL, b"k".to_vec()), (CKA_TOKEN, b(true))]);
    let public = new_object(&pub_t, RSA_GEN, &gp).unwrap();
    let private = new_object(&priv_t, RSA_GEN, &gs).unwrap();
    assert_eq!(ulong_of(&public, CKA_CLASS), CKO_PUBLIC_KEY);
    assert_eq!(ulong_of(&private, CKA_CLASS), CKO_PRIVATE_KEY);
    assert_eq!(public.get(CKA_PUBLIC_EXPONENT), Some(&[1u8, 0, 1][..]));
    assert_eq!(ulong_of(&public, CKA_MODULUS_BITS), 2048);
    assert!(bool_of(&private, CKA_TOKEN));
}

#[test]
fn footnote_3_modulus_bits_default_comes_from_the_key() {
    // The 2048-bit default: no CKA_MODULUS_BITS in the template, the mechanism's
    // modulus supplies it.
    let (gp, _) = generated_rsa();
    let public = new_object(&Attributes::new(), RSA_GEN, &gp).unwrap();
    assert_eq!(ulong_of(&public, CKA_MODULUS_BITS), 2048);
}

#[test]
fn footnote_3_ec_params_required_on_generate() {
    let (gp, _) = generated_sm2();
    let gp = without(gp, CKA_EC_PARAMS);
    let origin = Origin::Generate {
        mechanism: CKM_EC_KEY_PAIR_GEN,
    };
    assert_eq!(
        rv(new_object(&Attributes::new(), origin, &gp)),
        CKR_TEMPLATE_INCOMPLETE
    );
}

#[test]
fn footnote_4_material_in_generate_template_is_inconsistent() {
    let (gp, gs) = generated_rsa();
    let t = attrs(&[(CKA_MODULUS, vec![0x99; 256])]);
    assert_eq!(rv(new_object(&t, RSA_GEN, &gp)), CKR_TEMPLATE_INCONSISTENT);
    let t = attrs(&[(CKA_PRIVATE_EXPONENT, vec![1; 256])]);
    assert_eq!(rv(new_object(&t, RSA_GEN, &gs)), CKR_TEMPLATE_INCONSISTENT);
    // Not made by this mechanism at all: still the caller's material.
    let t = attrs(&[(CKA_COEFFICIENT, vec![1; 128])]);
    assert_eq!(rv(new_object(&t, RSA_GEN, &gs)), CKR_TEMPLATE_INCONSISTENT);
    let (ep, _) = generated_sm2();
    let t = attrs(&[(CKA_EC_POINT, vec![4; 67])]);
    let origin = Origin::Generate {
        mechanism: CKM_EC_KEY_PAIR_GEN,
    };
    assert_eq!(rv(new_object(&t, origin, &ep)), CKR_TEMPLATE_INCONSISTENT);
    let ga = attrs(&[
        (CKA_CLASS, ul(CKO_SECRET_KEY)),
        (CKA_KEY_TYPE, ul(CKK_AES)),
        (CKA_VALUE, vec![1; 32]),
    ]);
    let t = attrs(&[(CKA_VALUE, vec![2; 32])]);
    assert_eq!(rv(new_object(&t, AES_GEN, &ga)), CKR_TEMPLATE_INCONSISTENT);
}

#[test]
fn footnote_4_same_ec_params_on_private_template_is_accepted() {
    let (_, gs) = generated_sm2();
    let origin = Origin::Generate {
        mechanism: CKM_EC_KEY_PAIR_GEN,
    };
    let t = attrs(&[(CKA_EC_PARAMS, SM2_OID.to_vec())]);
    new_object(&t, origin, &gs).unwrap();
    let t = attrs(&[(CKA_EC_PARAMS, vec![0x06, 0x03, 1, 2, 3])]);
    assert_eq!(rv(new_object(&t, origin, &gs)), CKR_TEMPLATE_INCONSISTENT);
}

#[test]
fn generate_class_or_type_conflict_is_inconsistent() {
    let (gp, _) = generated_rsa();
    let t = attrs(&[(CKA_CLASS, ul(CKO_PRIVATE_KEY))]);
    assert_eq!(rv(new_object(&t, RSA_GEN, &gp)), CKR_TEMPLATE_INCONSISTENT);
    let t = attrs(&[(CKA_KEY_TYPE, ul(CKK_EC))]);
    assert_eq!(rv(new_object(&t, RSA_GEN, &gp)), CKR_TEMPLATE_INCONSISTENT);
    // The same values are fine.
    let t = attrs(&[(CKA_CLASS, ul(CKO_PUBLIC_KEY)), (CKA_KEY_TYPE, ul(CKK_RSA))]);
    new_object(&t, RSA_GEN, &gp).unwrap();
}

#[test]
fn generate_infers_class_when_mechanism_omits_it() {
    let (gp, gs) = generated_rsa();
    let public = new_object(&Attributes::new(), RSA_GEN, &without(gp, CKA_CLASS)).unwrap();
    let private = new_object(&Attributes::new(), RSA_GEN, &without(gs, CKA_CLASS)).unwrap();
    assert_eq!(ulong_of(&public, CKA_CLASS), CKO_PUBLIC_KEY);
    assert_eq!(ulong_of(&private, CKA_CLASS), CKO_PRIVATE_KEY);
}

#[test]
fn generate_aes_derives_value_len_and_checks_it() {
    let g = attrs(&[
        (CKA_CLASS, ul(CKO_SECRET_KEY)),
        (CKA_KEY_TYPE, ul(CKK_AES)),
        (CKA_VALUE, vec![1; 32]),
    ]);
    let o = new_object(&attrs(&[(CKA_VALUE_LEN, ul(32))]), AES_GEN, &g).unwrap();
    assert_eq!(ulong_of(&o, CKA_VALUE_LEN), 32);
    let t = attrs(&[(CKA_VALUE_LEN, ul(16))]);
    assert_eq!(rv(new_object(&t, AES_GEN, &g)), CKR_TEMPLATE_INCONSISTENT);
}

#[test]
fn only_keys_are_generated() {
    let t = attrs(&[(CKA_CLASS, ul(CKO_DATA))]);
    assert_eq!(
        rv(new_object(&t, AES_GEN, &Attributes::new())),
        CKR_TEMPLATE_INCONSISTENT
    );
}

#[test]
fn mechanism_output_outside_the_table_is_an_internal_error() {
    let (gp, _) = generated_rsa();
    let gp = with(gp, &[(CKA_PRIVATE_EXPONENT, vec![1])]);
    assert_eq!(
        rv(new_object(&Attributes::new(), RSA_GEN, &gp)),
        CKR_GENERAL_ERROR
    );
}

// --- token-computed attributes --------------------------------------------------------------

#[test]
fn token_computed_attributes_are_read_only() {
    for (ty, v) in [
        (CKA_LOCAL, b(true)),
        (CKA_ALWAYS_SENSITIVE, b(true)),
        (CKA_NEVER_EXTRACTABLE, b(true)),
        (CKA_KEY_GEN_MECHANISM, ul(CKM_RSA_PKCS_KEY_PAIR_GEN)),
        (CKA_UNIQUE_ID, b"abc".to_vec()),
    ] {
        let t = with(rsa_private(), &[(ty, v.clone())]);
        assert_eq!(rv(create(&t)), CKR_ATTRIBUTE_READ_ONLY, "create 0x{ty:x}");
        let o = create(&rsa_private()).unwrap();
        let c = attrs(&[(ty, v.clone())]);
        assert_eq!(
            rv(change(&o, &c, false)),
            CKR_ATTRIBUTE_READ_ONLY,
            "set 0x{ty:x}"
        );
        let (_, gs) = generated_rsa();
        assert_eq!(
            rv(new_object(&c, RSA_GEN, &gs)),
            CKR_ATTRIBUTE_READ_ONLY,
            "generate 0x{ty:x}"
        );
    }
    let t = with(data(), &[(CKA_UNIQUE_ID, b"x".to_vec())]);
    assert_eq!(rv(create(&t)), CKR_ATTRIBUTE_READ_ONLY);
}

#[test]
fn computed_values_for_imported_keys() {
    let o = create(&rsa_private()).unwrap();
    assert!(!bool_of(&o, CKA_LOCAL));
    assert_eq!(
        ulong_of(&o, CKA_KEY_GEN_MECHANISM),
        CK_UNAVAILABLE_INFORMATION
    );
    // Sensitive and unextractable now, but its value was known outside the token.
    assert!(bool_of(&o, CKA_SENSITIVE));
    assert!(!bool_of(&o, CKA_ALWAYS_SENSITIVE));
    assert!(!bool_of(&o, CKA_NEVER_EXTRACTABLE));
}

#[test]
fn computed_values_for_generated_keys() {
    let (_, gs) = generated_rsa();
    let o = new_object(&Attributes::new(), RSA_GEN, &gs).unwrap();
    assert!(bool_of(&o, CKA_LOCAL));
    assert_eq!(
        ulong_of(&o, CKA_KEY_GEN_MECHANISM),
        CKM_RSA_PKCS_KEY_PAIR_GEN
    );
    assert!(bool_of(&o, CKA_ALWAYS_SENSITIVE));
    assert!(bool_of(&o, CKA_NEVER_EXTRACTABLE));

    let t = attrs(&[(CKA_SENSITIVE, b(false)), (CKA_EXTRACTABLE, b(true))]);
    let o = new_object(&t, RSA_GEN, &gs).unwrap();
    assert!(!bool_of(&o, CKA_ALWAYS_SENSITIVE));
    assert!(!bool_of(&o, CKA_NEVER_EXTRACTABLE));
}

#[test]
fn unique_id_is_32_hex_chars_and_unique() {
    let a = create(&data()).unwrap();
    let b = create(&data()).unwrap();
    let ida = a.get(CKA_UNIQUE_ID).unwrap();
    assert_eq!(ida.len(), 32);
    assert!(ida.iter().all(u8::is_ascii_hexdigit));
    assert_ne!(ida, b.get(CKA_UNIQUE_ID).unwrap());
}

// --- footnote 7: sensitive reads ------------------------------------------------------------

#[test]
fn footnote_7_sensitive_values_are_not_revealed() {
    let o = create(&rsa_private()).unwrap();
    for ty in [CKA_PRIVATE_EXPONENT, CKA_PRIME_1, CKA_COEFFICIENT] {
        assert_eq!(read(&o, ty), Readable::Sensitive, "0x{ty:x}");
    }
    assert_eq!(read(&o, CKA_MODULUS), Readable::Value(&modulus()[..]));

    // Not sensitive but unextractable: still hidden.
    let t = with(rsa_private(), &[(CKA_SENSITIVE, b(false))]);
    let o = create(&t).unwrap();
    assert_eq!(read(&o, CKA_PRIVATE_EXPONENT), Readable::Sensitive);

    // Neither: readable.
    let t = with(t, &[(CKA_EXTRACTABLE, b(true))]);
    let o = create(&t).unwrap();
    assert_eq!(
        read(&o, CKA_PRIVATE_EXPONENT),
        Readable::Value(&[0x42; 256][..])
    );

    let o = create(&aes_key()).unwrap();
    assert_eq!(read(&o, CKA_VALUE), Readable::Sensitive);
    assert_eq!(read(&o, CKA_VALUE_LEN), Readable::Value(&ul(16)[..]));
    let (_, gs) = generated_sm2();
    let o = create(&gs).unwrap();
    assert_eq!(read(&o, CKA_VALUE), Readable::Sensitive);
    // A data object's CKA_VALUE is no secret.
    let o = create(&data()).unwrap();
    assert_eq!(read(&o, CKA_VALUE), Readable::Value(b"hello"));
}

#[test]
fn reads_of_absent_and_invalid_attributes() {
    let o = create(&rsa_public()).unwrap();
    // Valid, never set: the empty default.
    let o2 = without(o.clone(), CKA_START_DATE);
    assert_eq!(read(&o2, CKA_START_DATE), Readable::Value(&[]));
    assert_eq!(read(&o, CKA_ALLOWED_MECHANISMS), Readable::Value(&[]));
    // Not an attribute of an RSA public key.
    assert_eq!(read(&o, CKA_VALUE), Readable::Invalid);
    assert_eq!(read(&o, CKA_PRIVATE_EXPONENT), Readable::Invalid);
    assert_eq!(read(&o, CKA_SENSITIVE), Readable::Invalid);
    assert_eq!(read(&o, 0x8000_1234), Readable::Invalid);
    let d = create(&data()).unwrap();
    assert_eq!(read(&d, CKA_KEY_TYPE), Readable::Invalid);
    assert_eq!(read(&Attributes::new(), CKA_LABEL), Readable::Invalid);
}

// --- unknown attributes and bad values ------------------------------------------------------

#[test]
fn attributes_outside_the_table_are_type_invalid() {
    for (t, ty) in [
        (data(), CKA_MODULUS),
        (data(), CKA_KEY_TYPE),
        (rsa_public(), CKA_PRIVATE_EXPONENT),
        (rsa_public(), CKA_SENSITIVE),
        (aes_key(), CKA_MODULUS),
        (certificate(), CKA_SIGN),
        (rsa_private(), 0x8000_1234),
        (rsa_public(), CKA_UNWRAP_TEMPLATE),
        (rsa_private(), CKA_WRAP_TEMPLATE),
    ] {
        let t = with(t, &[(ty, vec![0; 8])]);
        assert_eq!(rv(create(&t)), CKR_ATTRIBUTE_TYPE_INVALID, "0x{ty:x}");
    }
    let o = create(&data()).unwrap();
    let c = attrs(&[(CKA_MODULUS, vec![1])]);
    assert_eq!(rv(change(&o, &c, false)), CKR_ATTRIBUTE_TYPE_INVALID);
    assert_eq!(rv(change(&o, &c, true)), CKR_ATTRIBUTE_TYPE_INVALID);
}

#[test]
fn values_of_wrong_shape_are_value_invalid() {
    for (ty, v) in [
        (CKA_TOKEN, vec![1, 0]),
        (CKA_SIGN, vec![]),
        (CKA_CLASS, vec![1, 0, 0, 0]),
        (CKA_START_DATE, b"2024-1-1".to_vec()),
        (CKA_END_DATE, b"2024010".to_vec()),
        (CKA_ALLOWED_MECHANISMS, vec![0; 5]),
        (CKA_PUBLIC_EXPONENT, vec![]),
    ] {
        let t = with(rsa_private(), &[(ty, v)]);
        assert_eq!(rv(create(&t)), CKR_ATTRIBUTE_VALUE_INVALID, "0x{ty:x}");
    }
    let t = with(aes_key(), &[(CKA_VALUE, vec![1; 15])]);
    assert_eq!(rv(create(&t)), CKR_ATTRIBUTE_VALUE_INVALID);
    let t = with(certificate(), &[(CKA_CERTIFICATE_CATEGORY, ul(9))]);
    assert_eq!(rv(create(&t)), CKR_ATTRIBUTE_VALUE_INVALID);
    let o = create(&rsa_private()).unwrap();
    let c = attrs(&[(CKA_LABEL, b"ok".to_vec()), (CKA_SIGN, vec![1, 1])]);
    assert_eq!(rv(change(&o, &c, false)), CKR_ATTRIBUTE_VALUE_INVALID);
    // A date is eight digits or nothing.
    let c = attrs(&[
        (CKA_START_DATE, b"20240131".to_vec()),
        (CKA_END_DATE, vec![]),
    ]);
    change(&o, &c, false).unwrap();
}

#[test]
fn booleans_are_stored_as_zero_or_one() {
    let t = with(rsa_private(), &[(CKA_SIGN, vec![0xFF])]);
    let o = create(&t).unwrap();
    assert_eq!(o.get(CKA_SIGN), Some(&[CK_TRUE][..]));
    let mut search = attrs(&[(CKA_SIGN, vec![7]), (CKA_LABEL, vec![7])]);
    normalize_template(&mut search);
    assert_eq!(search.get(CKA_SIGN), Some(&[CK_TRUE][..]));
    assert_eq!(search.get(CKA_LABEL), Some(&[7u8][..]));
}

// --- defaults ---------------------------------------------------------------------------------

#[test]
fn storage_and_key_defaults() {
    let private = create(&rsa_private()).unwrap();
    for (ty, want) in [
        (CKA_TOKEN, false),
        (CKA_PRIVATE, true),
        (CKA_MODIFIABLE, true),
        (CKA_COPYABLE, true),
        (CKA_DESTROYABLE, true),
        (CKA_SENSITIVE, true),
        (CKA_EXTRACTABLE, false),
        (CKA_DECRYPT, true),
        (CKA_SIGN, true),
        (CKA_SIGN_RECOVER, true),
        (CKA_UNWRAP, true),
        (CKA_DERIVE, false),
        (CKA_ALWAYS_AUTHENTICATE, false),
        (CKA_WRAP_WITH_TRUSTED, false),
    ] {
        assert_eq!(bool_of(&private, ty), want, "private 0x{ty:x}");
    }
    for ty in [CKA_LABEL, CKA_ID, CKA_START_DATE, CKA_END_DATE, CKA_SUBJECT] {
        assert_eq!(private.get(ty), Some(&[][..]), "private 0x{ty:x}");
    }
    assert!(!private.contains(CKA_ALLOWED_MECHANISMS));

    let public = create(&rsa_public()).unwrap();
    for (ty, want) in [
        (CKA_PRIVATE, false),
        (CKA_ENCRYPT, true),
        (CKA_VERIFY, true),
        (CKA_VERIFY_RECOVER, true),
        (CKA_WRAP, true),
        (CKA_TRUSTED, false),
        (CKA_DERIVE, false),
    ] {
        assert_eq!(bool_of(&public, ty), want, "public 0x{ty:x}");
    }

    let secret = create(&aes_key()).unwrap();
    for (ty, want) in [
        (CKA_PRIVATE, true),
        (CKA_SENSITIVE, true),
        (CKA_EXTRACTABLE, false),
        (CKA_ENCRYPT, true),
        (CKA_DECRYPT, true),
        (CKA_TRUSTED, false),
    ] {
        assert_eq!(bool_of(&secret, ty), want, "secret 0x{ty:x}");
    }

    let cert = create(&certificate()).unwrap();
    assert!(!bool_of(&cert, CKA_PRIVATE));
    assert!(!bool_of(&cert, CKA_TRUSTED));
    assert_eq!(ulong_of(&cert, CKA_CERTIFICATE_CATEGORY), 0);
    assert_eq!(ulong_of(&cert, CKA_NAME_HASH_ALGORITHM), CKM_SHA_1);
    assert_eq!(cert.get(CKA_ID), Some(&[][..]));

    let d = create(&data()).unwrap();
    assert!(!bool_of(&d, CKA_PRIVATE));
    assert_eq!(d.get(CKA_APPLICATION), Some(&[][..]));
    assert_eq!(d.get(CKA_OBJECT_ID), Some(&[][..]));
}

#[test]
fn certificate_check_value_is_computed_and_verified() {
    let cert = create(&certificate()).unwrap();
    let hash = crate::crypto::hash::HashAlg::Sha1.digest(b"certificate bytes");
    assert_eq!(cert.get(CKA_CHECK_VALUE), Some(&hash[..3]));
    let t = with(certificate(), &[(CKA_CHECK_VALUE, hash[..3].to_vec())]);
    create(&t).unwrap();
    let t = with(certificate(), &[(CKA_CHECK_VALUE, vec![0, 0, 0])]);
    assert_eq!(rv(create(&t)), CKR_ATTRIBUTE_VALUE_INVALID);
}

#[test]
fn footnote_10_trusted_only_false_without_so() {
    let t = with(rsa_public(), &[(CKA_TRUSTED, b(true))]);
    assert_eq!(rv(create(&t)), CKR_ATTRIBUTE_READ_ONLY);
    create(&with(rsa_public(), &[(CKA_TRUSTED, b(false))])).unwrap();
    let t = with(certificate(), &[(CKA_TRUSTED, b(true))]);
    assert_eq!(rv(create(&t)), CKR_ATTRIBUTE_READ_ONLY);
}

// --- footnote 8 and friends: C_SetAttributeValue ----------------------------------------

#[test]
fn footnote_8_modifiable_attributes_change() {
    let o = create(&rsa_private()).unwrap();
    let c = attrs(&[
        (CKA_LABEL, b"new".to_vec()),
        (CKA_ID, vec![1, 2]),
        (CKA_SIGN, b(false)),
        (CKA_DERIVE, b(true)),
        (CKA_SUBJECT, b"cn".to_vec()),
    ]);
    let n = change(&o, &c, false).unwrap();
    assert_eq!(n.get(CKA_LABEL), Some(&b"new"[..]));
    assert!(!bool_of(&n, CKA_SIGN));
    assert_eq!(n.get(CKA_UNIQUE_ID), o.get(CKA_UNIQUE_ID));
    let d = create(&data()).unwrap();
    let c = attrs(&[
        (CKA_VALUE, b"bye".to_vec()),
        (CKA_APPLICATION, b"app".to_vec()),
    ]);
    change(&d, &c, false).unwrap();
}

#[test]
fn fixed_attributes_are_read_only() {
    let o = create(&rsa_private()).unwrap();
    for (ty, v) in [
        (CKA_CLASS, ul(CKO_PUBLIC_KEY)),
        (CKA_CLASS, ul(CKO_PRIVATE_KEY)),
        (CKA_KEY_TYPE, ul(CKK_EC)),
        (CKA_MODULUS, vec![1; 256]),
        (CKA_PRIVATE_EXPONENT, vec![1; 256]),
        (CKA_ALLOWED_MECHANISMS, ul(CKM_RSA_PKCS)),
        (CKA_ALWAYS_AUTHENTICATE, b(true)),
        // Copy-only attributes.
        (CKA_TOKEN, b(true)),
        (CKA_PRIVATE, b(false)),
        (CKA_MODIFIABLE, b(false)),
    ] {
        let c = attrs(&[(ty, v)]);
        assert_eq!(
            rv(change(&o, &c, false)),
            CKR_ATTRIBUTE_READ_ONLY,
            "0x{ty:x}"
        );
    }
    let p = create(&rsa_public()).unwrap();
    let c = attrs(&[(CKA_MODULUS_BITS, ul(2048))]);
    assert_eq!(rv(change(&p, &c, false)), CKR_ATTRIBUTE_READ_ONLY);
    let cert = create(&certificate()).unwrap();
    let c = attrs(&[(CKA_VALUE, b"other".to_vec())]);
    assert_eq!(rv(change(&cert, &c, false)), CKR_ATTRIBUTE_READ_ONLY);
}

#[test]
fn footnote_11_sensitive_only_false_to_true() {
    let t = with(
        rsa_private(),
        &[(CKA_SENSITIVE, b(false)), (CKA_EXTRACTABLE, b(true))],
    );
    let o = create(&t).unwrap();
    let n = change(&o, &attrs(&[(CKA_SENSITIVE, b(true))]), false).unwrap();
    assert!(bool_of(&n, CKA_SENSITIVE));
    assert!(!bool_of(&n, CKA_ALWAYS_SENSITIVE));
    let c = attrs(&[(CKA_SENSITIVE, b(false))]);
    assert_eq!(rv(change(&n, &c, false)), CKR_ATTRIBUTE_READ_ONLY);
    assert_eq!(rv(change(&n, &c, true)), CKR_ATTRIBUTE_READ_ONLY);
    // CKA_WRAP_WITH_TRUSTED is footnote 11 too.
    let n = change(&n, &attrs(&[(CKA_WRAP_WITH_TRUSTED, b(true))]), false).unwrap();
    let c = attrs(&[(CKA_WRAP_WITH_TRUSTED, b(false))]);
    assert_eq!(rv(change(&n, &c, false)), CKR_ATTRIBUTE_READ_ONLY);
}

#[test]
fn footnote_12_extractable_copyable_destroyable_only_true_to_false() {
    let t = with(aes_key(), &[(CKA_EXTRACTABLE, b(true))]);
    let o = create(&t).unwrap();
    for ty in [CKA_EXTRACTABLE, CKA_COPYABLE, CKA_DESTROYABLE] {
        let n = change(&o, &attrs(&[(ty, b(false))]), false).unwrap();
        assert!(!bool_of(&n, ty));
        let c = attrs(&[(ty, b(true))]);
        assert_eq!(
            rv(change(&n, &c, false)),
            CKR_ATTRIBUTE_READ_ONLY,
            "0x{ty:x}"
        );
    }
    let n = change(&o, &attrs(&[(CKA_EXTRACTABLE, b(false))]), false).unwrap();
    // Became unextractable later: never-extractable stays false.
    assert!(!bool_of(&n, CKA_NEVER_EXTRACTABLE));
}

#[test]
fn unmodifiable_object_refuses_every_set() {
    let t = with(rsa_private(), &[(CKA_MODIFIABLE, b(false))]);
    let o = create(&t).unwrap();
    for (ty, v) in [
        (CKA_LABEL, b"x".to_vec()),
        (CKA_SIGN, b(false)),
        (CKA_SENSITIVE, b(true)),
        (CKA_EXTRACTABLE, b(false)),
    ] {
        let c = attrs(&[(ty, v)]);
        assert_eq!(
            rv(change(&o, &c, false)),
            CKR_ATTRIBUTE_READ_ONLY,
            "0x{ty:x}"
        );
    }
    // An empty template changes nothing and succeeds.
    change(&o, &Attributes::new(), false).unwrap();
}

// --- C_CopyObject -------------------------------------------------------------------------

#[test]
fn copy_may_change_token_private_modifiable_and_footnote_8() {
    let o = create(&rsa_private()).unwrap();
    let c = attrs(&[
        (CKA_TOKEN, b(true)),
        (CKA_PRIVATE, b(false)),
        (CKA_MODIFIABLE, b(false)),
        (CKA_LABEL, b"copy".to_vec()),
        (CKA_EXTRACTABLE, b(false)),
    ]);
    let n = change(&o, &c, true).unwrap();
    assert!(bool_of(&n, CKA_TOKEN));
    assert!(!bool_of(&n, CKA_PRIVATE));
    assert!(!bool_of(&n, CKA_MODIFIABLE));
    assert_eq!(n.get(CKA_LABEL), Some(&b"copy"[..]));
    assert_ne!(n.get(CKA_UNIQUE_ID), o.get(CKA_UNIQUE_ID));
    assert_eq!(n.get(CKA_UNIQUE_ID).map(<[u8]>::len), Some(32));
    // Copies keep their origin's history.
    for ty in [
        CKA_LOCAL,
        CKA_ALWAYS_SENSITIVE,
        CKA_NEVER_EXTRACTABLE,
        CKA_KEY_GEN_MECHANISM,
    ] {
        assert_eq!(n.get(ty), o.get(ty), "0x{ty:x}");
    }
}

#[test]
fn copy_refuses_fixed_and_computed_attributes_but_accepts_equal_values() {
    let o = create(&rsa_private()).unwrap();
    for (ty, v) in [
        (CKA_KEY_TYPE, ul(CKK_EC)),
        (CKA_CLASS, ul(CKO_SECRET_KEY)),
        (CKA_MODULUS, vec![9; 256]),
        (CKA_LOCAL, b(true)),
    ] {
        let c = attrs(&[(ty, v)]);
        assert_eq!(
            rv(change(&o, &c, true)),
            CKR_ATTRIBUTE_READ_ONLY,
            "0x{ty:x}"
        );
    }
    let c = attrs(&[
        (CKA_CLASS, ul(CKO_PRIVATE_KEY)),
        (CKA_KEY_TYPE, ul(CKK_RSA)),
        (CKA_LOCAL, b(false)),
    ]);
    change(&o, &c, true).unwrap();
}

#[test]
fn copy_of_unmodifiable_object() {
    let t = with(
        rsa_private(),
        &[(CKA_MODIFIABLE, b(false)), (CKA_LABEL, b"l".to_vec())],
    );
    let o = create(&t).unwrap();
    // Token/private/modifiable may change on copy; the label may be repeated.
    let c = attrs(&[
        (CKA_TOKEN, b(true)),
        (CKA_MODIFIABLE, b(true)),
        (CKA_LABEL, b"l".to_vec()),
    ]);
    let n = change(&o, &c, true).unwrap();
    assert!(bool_of(&n, CKA_MODIFIABLE));
    let c = attrs(&[(CKA_LABEL, b"other".to_vec())]);
    assert_eq!(rv(change(&o, &c, true)), CKR_ATTRIBUTE_READ_ONLY);
}

// --- SM2 ------------------------------------------------------------------------------------

#[test]
fn ckk_sm2_alias_is_stored_as_ec() {
    let t = with(ec_public(), &[(CKA_KEY_TYPE, ul(CKK_SM2))]);
    let o = create(&t).unwrap();
    assert_eq!(ulong_of(&o, CKA_KEY_TYPE), CKK_EC);

    let (gp, gs) = generated_sm2();
    let origin = Origin::Generate {
        mechanism: 0x8000_8001,
    };
    let tmpl = attrs(&[(CKA_KEY_TYPE, ul(CKK_SM2))]);
    new_object(&tmpl, origin, &gp).unwrap();
    let private = new_object(&tmpl, origin, &gs).unwrap();
    assert_eq!(ulong_of(&private, CKA_KEY_TYPE), CKK_EC);
    assert_eq!(ulong_of(&private, CKA_KEY_GEN_MECHANISM), 0x8000_8001);

    let mut search = attrs(&[
        (CKA_KEY_TYPE, ul(CKK_SM2)),
        (CKA_CLASS, ul(CKO_PRIVATE_KEY)),
    ]);
    normalize_template(&mut search);
    assert!(private.matches(&search));

    // The alias in a change template names the stored type: copying with it is a no-op.
    change(&o, &attrs(&[(CKA_KEY_TYPE, ul(CKK_SM2))]), true).unwrap();
}

#[test]
fn raw_ec_point_is_stored_as_der() {
    let o = create(&ec_public()).unwrap();
    let point = o.get(CKA_EC_POINT).unwrap();
    assert_eq!(point.len(), 67);
    assert_eq!(&point[..3], &[0x04, 0x41, 0x04]);
    // Already DER: unchanged.
    let t = with(ec_public(), &[(CKA_EC_POINT, point.to_vec())]);
    assert_eq!(create(&t).unwrap().get(CKA_EC_POINT), Some(point));
}

#[test]
fn kms_decrypt_only_key_is_frozen() {
    let t = with(
        generated_sm2().1,
        &[
            (CKA_DECRYPT, b(true)),
            (CKA_SIGN, b(false)),
            (CKA_DERIVE, b(false)),
            (CKA_UNWRAP, b(false)),
            (CKA_MODIFIABLE, b(false)),
        ],
    );
    let o = create(&t).unwrap();
    check_usage(&o, CKA_DECRYPT, 0x8000_8200).unwrap();
    assert_eq!(
        rv(check_usage(&o, CKA_SIGN, 0x8000_8100)),
        CKR_KEY_FUNCTION_NOT_PERMITTED
    );
    let c = attrs(&[(CKA_SIGN, b(true))]);
    assert_eq!(rv(change(&o, &c, false)), CKR_ATTRIBUTE_READ_ONLY);
}

// --- helpers for the lead -------------------------------------------------------------------

#[test]
fn check_usage_flags_and_allowed_mechanisms() {
    let o = create(&with(rsa_private(), &[(CKA_DECRYPT, b(false))])).unwrap();
    assert_eq!(
        rv(check_usage(&o, CKA_DECRYPT, CKM_RSA_PKCS)),
        CKR_KEY_FUNCTION_NOT_PERMITTED
    );
    check_usage(&o, CKA_SIGN, CKM_RSA_PKCS).unwrap();
    // A flag the key does not have at all (CKA_ENCRYPT on a private key) is no permission.
    assert_eq!(
        rv(check_usage(&o, CKA_ENCRYPT, CKM_RSA_PKCS)),
        CKR_KEY_FUNCTION_NOT_PERMITTED
    );

    let mut list = ul(CKM_SHA256_RSA_PKCS);
    list.extend(ul(CKM_RSA_PKCS_PSS));
    let o = create(&with(rsa_private(), &[(CKA_ALLOWED_MECHANISMS, list)])).unwrap();
    check_usage(&o, CKA_SIGN, CKM_SHA256_RSA_PKCS).unwrap();
    check_usage(&o, CKA_SIGN, CKM_RSA_PKCS_PSS).unwrap();
    assert_eq!(
        rv(check_usage(&o, CKA_SIGN, CKM_RSA_PKCS)),
        CKR_MECHANISM_INVALID
    );
    // Usage flag first: a forbidden usage is not a mechanism question.
    let o2 = change(&o, &attrs(&[(CKA_SIGN, b(false))]), false).unwrap();
    assert_eq!(
        rv(check_usage(&o2, CKA_SIGN, CKM_SHA256_RSA_PKCS)),
        CKR_KEY_FUNCTION_NOT_PERMITTED
    );

    let o = create(&with(rsa_private(), &[(CKA_ALLOWED_MECHANISMS, vec![])])).unwrap();
    check_usage(&o, CKA_SIGN, CKM_RSA_PKCS).unwrap();
}

#[test]
fn generate_template_precheck() {
    let t = attrs(&[
        (CKA_MODULUS_BITS, ul(2048)),
        (CKA_PUBLIC_EXPONENT, vec![1, 0, 1]),
        (CKA_LABEL, b"k".to_vec()),
    ]);
    check_generate_template(&t, CKO_PUBLIC_KEY, CKK_RSA).unwrap();
    let t2 = with(t.clone(), &[(CKA_SIGN, b(true))]);
    assert_eq!(
        rv(check_generate_template(&t2, CKO_PUBLIC_KEY, CKK_RSA)),
        CKR_ATTRIBUTE_TYPE_INVALID
    );
    let t2 = with(t.clone(), &[(CKA_LOCAL, b(true))]);
    assert_eq!(
        rv(check_generate_template(&t2, CKO_PUBLIC_KEY, CKK_RSA)),
        CKR_ATTRIBUTE_READ_ONLY
    );
    let t2 = with(t.clone(), &[(CKA_KEY_TYPE, ul(CKK_EC))]);
    assert_eq!(
        rv(check_generate_template(&t2, CKO_PUBLIC_KEY, CKK_RSA)),
        CKR_TEMPLATE_INCONSISTENT
    );
    let t2 = with(t, &[(CKA_TOKEN, vec![1, 1])]);
    assert_eq!(
        rv(check_generate_template(&t2, CKO_PUBLIC_KEY, CKK_RSA)),
        CKR_ATTRIBUTE_VALUE_INVALID
    );
    let sm2 = attrs(&[
        (CKA_KEY_TYPE, ul(CKK_SM2)),
        (CKA_EC_PARAMS, SM2_OID.to_vec()),
    ]);
    check_generate_template(&sm2, CKO_PRIVATE_KEY, CKK_EC).unwrap();
    for (class, key_type, ty) in [
        (CKO_PUBLIC_KEY, CKK_RSA, CKA_MODULUS),
        (CKO_PRIVATE_KEY, CKK_RSA, CKA_PRIVATE_EXPONENT),
        (CKO_PRIVATE_KEY, CKK_RSA, CKA_PRIME_1),
        (CKO_PUBLIC_KEY, CKK_EC, CKA_EC_POINT),
        (CKO_PRIVATE_KEY, CKK_EC, CKA_VALUE),
        (CKO_SECRET_KEY, CKK_AES, CKA_VALUE),
    ] {
        let t = attrs(&[(ty, vec![1; 32])]);
        assert_eq!(
            rv(check_generate_template(&t, class, key_type)),
            CKR_TEMPLATE_INCONSISTENT,
            "0x{ty:x}"
        );
    }
}

#[test]
fn is_secret_is_unchanged() {
    let o = create(&rsa_private()).unwrap();
    assert!(is_secret(&o, CKA_PRIVATE_EXPONENT));
    assert!(!is_secret(&o, CKA_MODULUS));
    let d = create(&data()).unwrap();
    assert!(!is_secret(&d, CKA_VALUE));
    let k = create(&aes_key()).unwrap();
    assert!(is_secret(&k, CKA_VALUE));
}

#[test]
fn secret_key_check_value_is_computed_and_verified() {
    let o = create(&aes_key()).unwrap();
    let kcv =
        check_value::block_cipher_check_value(crate::crypto::symmetric::BlockCipher::Aes, &[7; 16])
            .unwrap();
    assert_eq!(o.get(CKA_CHECK_VALUE), Some(&kcv[..]));
    assert_eq!(read(&o, CKA_CHECK_VALUE), Readable::Value(&kcv[..]));
    create(&with(aes_key(), &[(CKA_CHECK_VALUE, kcv)])).unwrap();
    let t = with(aes_key(), &[(CKA_CHECK_VALUE, vec![1, 2, 3])]);
    assert_eq!(rv(create(&t)), CKR_ATTRIBUTE_VALUE_INVALID);

    let g = attrs(&[
        (CKA_CLASS, ul(CKO_SECRET_KEY)),
        (CKA_KEY_TYPE, ul(CKK_GENERIC_SECRET)),
        (CKA_VALUE, b"abc".to_vec()),
    ]);
    let origin = Origin::Generate {
        mechanism: CKM_GENERIC_SECRET_KEY_GEN,
    };
    let o = new_object(&attrs(&[(CKA_VALUE_LEN, ul(3))]), origin, &g).unwrap();
    assert_eq!(o.get(CKA_CHECK_VALUE), Some(&[0xa9u8, 0x99, 0x3e][..]));
}

#[test]
fn mechanism_that_omits_material_is_an_internal_error() {
    let (_, gs) = generated_sm2();
    let origin = Origin::Generate {
        mechanism: CKM_EC_KEY_PAIR_GEN,
    };
    assert_eq!(
        rv(new_object(
            &Attributes::new(),
            origin,
            &without(gs, CKA_EC_PARAMS)
        )),
        CKR_GENERAL_ERROR
    );
    let (_, gs) = generated_rsa();
    assert_eq!(
        rv(new_object(
            &Attributes::new(),
            RSA_GEN,
            &without(gs, CKA_PRIVATE_EXPONENT)
        )),
        CKR_GENERAL_ERROR
    );
}

#[test]
fn every_token_computed_attribute_has_a_computed_value() {
    // new_object merges `RuleSet::computed` (ascending) with the given values in one pass,
    // taking each value from `Computed`.
    let computed = Computed::of(&Attributes::new(), Origin::Create).unwrap();
    let kinds = [
        (CKO_DATA, Subtype::Data),
        (CKO_CERTIFICATE, Subtype::X509),
        (CKO_PUBLIC_KEY, Subtype::Key(CKK_RSA)),
        (CKO_PUBLIC_KEY, Subtype::Key(CKK_EC)),
        (CKO_PRIVATE_KEY, Subtype::Key(CKK_RSA)),
        (CKO_PRIVATE_KEY, Subtype::Key(CKK_EC)),
        (CKO_SECRET_KEY, Subtype::Key(CKK_AES)),
    ];
    for (class, subtype) in kinds {
        let set = rules::rules_for(class, subtype).unwrap();
        assert!(!set.computed().is_empty());
        assert!(set.computed().windows(2).all(|w| w[0] < w[1]));
        for ty in set.computed() {
            assert!(computed.value(*ty).is_some(), "0x{ty:x}");
        }
    }
}
