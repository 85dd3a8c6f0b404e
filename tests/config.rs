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
