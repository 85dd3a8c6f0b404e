//! Configuration files: a SoftHSMv2 `softhsm2.conf` named by FERROHSM_CONF is read for the
//! keys that apply (`directories.tokendir` with ferrohsm's store in a subfolder,
//! `slots.removable`, `slots.mechanisms`); a bad file makes C_Initialize fail cleanly.

#[macro_use]
mod common;

use common::*;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::MechanismType;

#[test]
fn softhsm2_conf_is_read_for_the_keys_that_apply() {
    const TEST: &str = "softhsm2_conf_is_read_for_the_keys_that_apply";
    if is_softhsm() {
        eprintln!("SKIPPED {TEST}: ferrohsm's own configuration");
        return;
    }
    match child_phase(TEST).as_deref() {
        Some("main") => {
            let token = Token::new();
            let info = token.p11.get_slot_info(token.slot).expect("slot info");
            assert!(info.removable_device(), "slots.removable = true");
            let list = token
                .p11
                .get_mechanism_list(token.slot)
                .expect("mechanisms");
            assert!(!list.contains(&MechanismType::RSA_X_509), "-CKM_RSA_X_509");
            assert!(!list.contains(&MechanismType::SHA1), "-CKM_SHA_1");
            assert!(list.contains(&MechanismType::RSA_PKCS));
            // A mechanism the configuration leaves out cannot be used either.
            let session = token.user();
            common::expect_rv(
                session.digest(&cryptoki::mechanism::Mechanism::Sha1, b"x"),
                cryptoki::error::RvError::MechanismInvalid,
            );
            // The store lives in a subfolder: SoftHSMv2's token files are never touched.
            let dir = sandbox_dir().join("softhsm-tokens");
            assert!(
                dir.join("ferrohsm").is_dir(),
                "store under <tokendir>/ferrohsm"
            );
            let stray: Vec<_> = std::fs::read_dir(&dir)
                .expect("tokendir")
                .map(|e| e.expect("entry").file_name())
                .filter(|n| n != "ferrohsm" && n != "softhsm-token.marker")
                .collect();
            assert!(
                stray.is_empty(),
                "nothing else written to tokendir: {stray:?}"
            );
        }
        Some(other) => panic!("unknown phase {other}"),
        None => {
            let sandbox = Sandbox::new();
            let tokendir = sandbox.path().join("softhsm-tokens");
            std::fs::create_dir_all(&tokendir).expect("tokendir");
            std::fs::write(tokendir.join("softhsm-token.marker"), b"SoftHSM's").expect("marker");
            // Content decides the format: FERROHSM_CONF still names ferrohsm.toml.
            std::fs::write(
                sandbox.path().join("ferrohsm.toml"),
                format!(
                    "# SoftHSM v2 configuration file\n\
                     directories.tokendir = {}\n\
                     objectstore.backend = file\n\
                     log.level = ERROR\n\
                     slots.removable = true\n\
                     slots.mechanisms = -CKM_RSA_X_509,-CKM_SHA_1\n",
                    tokendir.display()
                ),
            )
            .expect("write softhsm2.conf");
            sandbox.run(TEST, "main");
        }
    }
}

isolated_test! {
    fn bad_config_file_fails_initialize_cleanly() {
        if is_softhsm() {
            return;
        }
        let conf = sandbox_dir().join("ferrohsm.toml");
        std::fs::write(&conf, "token_dir = \"/tmp\"\nno_such_key = 1\n").expect("write");
        let p11 = Pkcs11::new(module_path()).expect("load");
        let result = p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK));
        common::expect_rv(result, cryptoki::error::RvError::FunctionFailed);
    }
}

/// The config file with `extra` lines after its `token_dir`.
fn write_config(sandbox: &Sandbox, extra: &str) {
    sandbox.write_config(extra);
}

fn rsa_min_sizes(token: &Token) -> Vec<u64> {
    [
        MechanismType::RSA_PKCS_KEY_PAIR_GEN,
        MechanismType::RSA_PKCS,
        MechanismType::SHA256_RSA_PKCS_PSS,
    ]
    .into_iter()
    .map(|m| {
        token
            .p11
            .get_mechanism_info(token.slot, m)
            .expect("C_GetMechanismInfo")
            .min_key_size() as u64
    })
    .collect()
}

/// The 1024-bit public key as a new session object.
fn import_public(
    session: &cryptoki::session::Session,
    modulus: &[u8],
) -> cryptoki::error::Result<cryptoki::object::ObjectHandle> {
    use cryptoki::object::{Attribute, KeyType, ObjectClass};
    session.create_object(&[
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::KeyType(KeyType::RSA),
        Attribute::Token(false),
        Attribute::Encrypt(true),
        Attribute::Modulus(modulus.to_vec()),
        Attribute::PublicExponent(F4.to_vec()),
    ])
}

/// `rsa_min_bits` sets the smallest RSA key the module generates, imports and uses, and
/// C_GetMechanismInfo reports it; the default is 2048, and 1024 can be allowed.
#[test]
fn rsa_min_bits_is_the_smallest_rsa_key_generated_imported_and_used() {
    const TEST: &str = "rsa_min_bits_is_the_smallest_rsa_key_generated_imported_and_used";
    if is_softhsm() {
        eprintln!("SKIPPED {TEST}: ferrohsm's own configuration");
        return;
    }
    use cryptoki::error::RvError;
    use cryptoki::mechanism::Mechanism;
    use cryptoki::object::AttributeType;
    match child_phase(TEST).as_deref() {
        Some("default") => {
            let token = Token::new();
            assert_eq!(rsa_min_sizes(&token), vec![2048; 3]);
            let session = token.user();
            let (public, private) = rsa_templates(1024, "k1024", true);
            common::expect_rv(
                session.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private),
                RvError::KeySizeRange,
            );
        }
        Some("lowered") => {
            let token = Token::existing();
            assert_eq!(rsa_min_sizes(&token), vec![1024; 3]);
            let session = token.user();
            let pair = gen_rsa(&session, 1024, "k1024", true);
            let modulus = bytes_attr(&session, pair.public, AttributeType::Modulus);
            assert_eq!(modulus.len(), 128);
            std::fs::write(sandbox_dir().join("modulus"), &modulus).expect("save modulus");
            let ciphertext = session
                .encrypt(&Mechanism::RsaPkcs, pair.public, b"1024")
                .expect("encrypt");
            assert_eq!(
                session
                    .decrypt(&Mechanism::RsaPkcs, pair.private, &ciphertext)
                    .expect("decrypt"),
                b"1024"
            );
            let signature = session
                .sign(&Mechanism::Sha256RsaPkcs, pair.private, b"1024")
                .expect("sign");
            session
                .verify(&Mechanism::Sha256RsaPkcs, pair.public, b"1024", &signature)
                .expect("verify");
            let imported = import_public(&session, &modulus).expect("import of a 1024-bit key");
            session
                .encrypt(&Mechanism::RsaPkcs, imported, b"1024")
                .expect("encrypt with it");
            // Never below 1024, whatever the configuration.
            let (public, private) = rsa_templates(768, "k768", false);
            common::expect_rv(
                session.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private),
                RvError::KeySizeRange,
            );
        }
        Some("raised") => {
            let token = Token::existing();
            assert_eq!(rsa_min_sizes(&token), vec![2048; 3]);
            let session = token.user();
            let key = |class| {
                use cryptoki::object::Attribute;
                let found = session
                    .find_objects(&[Attribute::Label(b"k1024".to_vec()), Attribute::Class(class)])
                    .expect("C_FindObjects");
                assert_eq!(found.len(), 1, "the stored 1024-bit key is still listed");
                found[0]
            };
            let public = key(cryptoki::object::ObjectClass::PUBLIC_KEY);
            let private = key(cryptoki::object::ObjectClass::PRIVATE_KEY);
            common::expect_rv(
                session.encrypt(&Mechanism::RsaPkcs, public, b"1024"),
                RvError::KeySizeRange,
            );
            common::expect_rv(
                session.sign(&Mechanism::Sha256RsaPkcs, private, b"1024"),
                RvError::KeySizeRange,
            );
            let modulus = std::fs::read(sandbox_dir().join("modulus")).expect("modulus");
            common::expect_rv(
                import_public(&session, &modulus),
                RvError::AttributeValueInvalid,
            );
        }
        Some(other) => panic!("unknown phase {other}"),
        None => {
            let sandbox = Sandbox::new();
            sandbox.run(TEST, "default");
            write_config(&sandbox, "rsa_min_bits = 1024\n");
            sandbox.run(TEST, "lowered");
            write_config(&sandbox, "");
            sandbox.run(TEST, "raised");
        }
    }
}

/// A minimum in range is taken; below 1024 bits (or above 4096, where nothing could be
/// generated) it is refused.
#[test]
fn rsa_min_bits_in_range_is_taken_out_of_range_fails_initialize() {
    const TEST: &str = "rsa_min_bits_in_range_is_taken_out_of_range_fails_initialize";
    if is_softhsm() {
        eprintln!("SKIPPED {TEST}: ferrohsm's own configuration");
        return;
    }
    match child_phase(TEST).as_deref() {
        Some("refused") => {
            let p11 = Pkcs11::new(module_path()).expect("load");
            let result = p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK));
            common::expect_rv(result, cryptoki::error::RvError::FunctionFailed);
        }
        Some("accepted") => {
            let token = Token::new();
            assert_eq!(rsa_min_sizes(&token), vec![3072; 3]);
        }
        Some(other) => panic!("unknown phase {other}"),
        None => {
            let sandbox = Sandbox::new();
            write_config(&sandbox, "rsa_min_bits = 3072\n");
            sandbox.run(TEST, "accepted");
            for value in ["512", "1023", "4097", "-1", "\"2048\""] {
                write_config(&sandbox, &format!("rsa_min_bits = {value}\n"));
                sandbox.run(TEST, "refused");
            }
        }
    }
}
