//! `ferrohsm-util`'s KMS-style key commands, driven as a user drives them (issue 11): keys
//! made for each usage, listed and described (table and JSON), public keys that OpenSSL
//! encrypts and verifies with, decryption and signatures through the CLI, a disabled or
//! pending key refused to the CLI and to pkcs11-tool alike, and the failures' messages.
//!
//! OpenSSL and pkcs11-tool steps are part of the test (CI installs both).

#[macro_use]
mod common;

use common::openssl::*;
use common::*;
use std::path::Path;
use std::process::{Command, Output};

const PIN_ARGS: [&str; 2] = ["--pin", USER_PIN];

/// Runs `ferrohsm-util args` with the sandbox's configuration.
fn util(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferrohsm-util"))
        .args(args)
        .output()
        .expect("run ferrohsm-util")
}

/// `util` that must succeed; returns stdout.
#[track_caller]
fn ok(args: &[&str]) -> String {
    let out = util(args);
    assert!(
        out.status.success(),
        "ferrohsm-util {args:?} failed ({})\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("text output")
}

/// `util` that must fail with exit status 1 and one error line containing `wanted`.
#[track_caller]
fn fails(args: &[&str], wanted: &str) {
    let out = util(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(
        stderr.contains(wanted),
        "{args:?}: {stderr:?} lacks {wanted:?}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn with_token<'a>(command: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![command, "--token", TOKEN_LABEL];
    args.extend_from_slice(&PIN_ARGS);
    args.extend_from_slice(rest);
    args
}

fn pkcs11_tool_decrypt(dir: &Path, key_id_hex: &str) -> Output {
    Command::new("pkcs11-tool")
        .args([
            "--module",
            &module_path().display().to_string(),
            "--token-label",
            TOKEN_LABEL,
        ])
        .args([
            "--login",
            "--pin",
            USER_PIN,
            "--decrypt",
            "-m",
            "RSA-PKCS-OAEP",
        ])
        .args([
            "--hash-algorithm",
            "SHA256",
            "--mgf",
            "MGF1-SHA256",
            "--id",
            key_id_hex,
        ])
        .args(["--input-file", "c.bin"])
        .current_dir(dir)
        .output()
        .expect("run pkcs11-tool")
}

/// OpenSSL's `pkeyutl -decrypt` of c.bin (RSA-OAEP-SHA256) through the libp11 engine with
/// the token key of CKA_ID `key_id_hex` (configured only through its own openssl.cnf).
fn openssl_engine_decrypt(dir: &Path, key_id_hex: &str) -> Output {
    let conf = dir.join("engine.cnf");
    std::fs::write(
        &conf,
        format!(
            "openssl_conf = openssl_init\n[openssl_init]\nengines = engine_section\n\
             [engine_section]\npkcs11 = pkcs11_section\n[pkcs11_section]\nengine_id = pkcs11\n\
             dynamic_path = /usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so\nMODULE_PATH = {}\ninit = 0\n",
            module_path().display()
        ),
    )
    .unwrap();
    let id: String = key_id_hex
        .as_bytes()
        .chunks(2)
        .map(|pair| format!("%{}", std::str::from_utf8(pair).unwrap()))
        .collect();
    let uri = format!("pkcs11:token={TOKEN_LABEL};id={id};type=private?pin-value={USER_PIN}");
    Command::new("openssl")
        .args([
            "pkeyutl", "-engine", "pkcs11", "-keyform", "engine", "-inkey", &uri, "-decrypt",
        ])
        .args([
            "-pkeyopt",
            "rsa_padding_mode:oaep",
            "-pkeyopt",
            "rsa_oaep_md:sha256",
        ])
        .args(["-pkeyopt", "rsa_mgf1_md:sha256", "-in", "c.bin"])
        .env("OPENSSL_CONF", &conf)
        .current_dir(dir)
        .output()
        .expect("run openssl")
}

isolated_test! {
    fn kms_key_commands_work_end_to_end() {
        let dir = sandbox_dir();
        drop(Token::new());
        // One key per usage; each prints its key id (a UUID).
        let usages = [
            ("dec-rsa", "ASYMMETRIC_DECRYPT_RSA_2048"),
            ("dec-sm2", "ASYMMETRIC_DECRYPT_SM2"),
            ("sig-rsa", "ASYMMETRIC_SIGN_VERIFY_RSA_2048"),
            ("sig-sm2", "ASYMMETRIC_SIGN_VERIFY_SM2"),
            ("sig-ecc", "ASYMMETRIC_SIGN_VERIFY_ECC"),
            ("aes", "ENCRYPT_DECRYPT"),
        ];
        let mut ids = Vec::new();
        for (alias, usage) in usages {
            let id = ok(&with_token("create-key", &["--alias", alias, "--usage", usage, "--description", "made by the test"]));
            let id = id.trim().to_string();
            assert_eq!(id.len(), 36, "{id}");
            ids.push(id);
        }
        fails(&with_token("create-key", &["--alias", "dec-rsa", "--usage", "ENCRYPT_DECRYPT"]), "taken");
        let listed: serde_json::Value = serde_json::from_str(&ok(&with_token("list-keys", &["--json"]))).unwrap();
        let listed = listed.as_array().unwrap();
        assert_eq!(listed.len(), usages.len());
        for key in listed {
            assert_eq!(key["state"], "Enabled");
            let alias = key["alias"].as_str().unwrap();
            let (_, usage) = usages.iter().find(|(a, _)| *a == alias).unwrap();
            assert_eq!(key["usage"], *usage);
            assert_eq!(key["description"], "made by the test");
        }
        let table = ok(&with_token("list-keys", &[]));
        assert!(table.contains("dec-rsa") && table.contains(&ids[0]), "{table}");
        // --count: N keys aliased A-1..A-N, one key id a line, and no progress bar in a pipe.
        let out = util(&with_token("create-key", &["--alias", "batch", "--usage", "ASYMMETRIC_SIGN_VERIFY_ECC", "--count", "3"]));
        assert!(out.status.success() && out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
        let batch: Vec<_> = String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect();
        assert_eq!(batch.len(), 3, "{batch:?}");
        for (n, id) in batch.iter().enumerate() {
            let described = ok(&with_token("describe-key", &[&format!("batch-{}", n + 1)]));
            assert!(described.contains(id.as_str()), "{described}");
        }
        fails(&with_token("create-key", &["--alias", "batch", "--usage", "ENCRYPT_DECRYPT", "--count", "2"]), "batch-1");
        for n in 1..=3 {
            ok(&with_token("schedule-key-deletion", &[&format!("batch-{n}"), "--pending-days", "7"]));
        }
        fails(&with_token("create-key", &["--alias", "x", "--usage", "SIGN_EVERYTHING"]), "unknown usage");

        // A sender encrypts with the exported key; the token decrypts, by alias or key id.
        std::fs::write(dir.join("dec-rsa.pem"), ok(&with_token("get-public-key", &["dec-rsa"]))).unwrap();
        std::fs::write(dir.join("m.txt"), b"the envelope key").unwrap();
        openssl(&dir, &["pkeyutl", "-encrypt", "-pubin", "-inkey", "dec-rsa.pem", "-pkeyopt", "rsa_padding_mode:oaep",
            "-pkeyopt", "rsa_oaep_md:sha256", "-pkeyopt", "rsa_mgf1_md:sha256", "-in", "m.txt", "-out", "c.bin"]);
        let c = dir.join("c.bin").display().to_string();
        for key in ["dec-rsa", ids[0].as_str()] {
            assert_eq!(ok(&with_token("decrypt", &[key, "--algorithm", "RSAES_OAEP_SHA_256", "--in", &c])), "the envelope key");
        }
        // Base64 in and out, as KMS APIs exchange data.
        std::fs::write(dir.join("m.b64"), "dGhlIGVudmVsb3BlIGtleQ==\n").unwrap();
        let b64 = ok(&with_token("encrypt", &["dec-sm2", "--algorithm", "SM2", "--in", &dir.join("m.b64").display().to_string(), "--base64"]));
        std::fs::write(dir.join("c.b64"), b64).unwrap();
        let out = ok(&with_token("decrypt", &["dec-sm2", "--algorithm", "SM2", "--in", &dir.join("c.b64").display().to_string(), "--base64"]));
        assert_eq!(out.trim(), "dGhlIGVudmVsb3BlIGtleQ==");
        // A decrypt key does not sign, a sign key does not decrypt.
        fails(&with_token("sign", &["dec-rsa", "--algorithm", "RSASSA_PKCS1_V1_5_SHA_256", "--in", &c]), "CKR_KEY_FUNCTION_NOT_PERMITTED");
        fails(&with_token("decrypt", &["sig-rsa", "--algorithm", "RSAES_OAEP_SHA_256", "--in", &c]), "CKR_KEY_FUNCTION_NOT_PERMITTED");

        // Signatures: made by the CLI, checked by the CLI and by OpenSSL.
        let m = dir.join("m.txt").display().to_string();
        for (alias, algorithm) in [("sig-rsa", "RSASSA_PKCS1_V1_5_SHA_256"), ("sig-rsa", "RSASSA_PSS_SHA_256"), ("sig-sm2", "SM2DSA"), ("sig-ecc", "ECDSA_SHA_256")] {
            let sig = dir.join("sig.bin").display().to_string();
            ok(&with_token("sign", &[alias, "--algorithm", algorithm, "--in", &m, "--out", &sig]));
            assert!(ok(&with_token("verify", &[alias, "--algorithm", algorithm, "--in", &m, "--signature", &sig])).contains("verified"));
            fails(&with_token("verify", &[alias, "--algorithm", algorithm, "--in", &c, "--signature", &sig]), "CKR_SIGNATURE_INVALID");
        }
        std::fs::write(dir.join("sig-rsa.pem"), ok(&with_token("get-public-key", &["sig-rsa"]))).unwrap();
        ok(&with_token("sign", &["sig-rsa", "--algorithm", "RSASSA_PKCS1_V1_5_SHA_256", "--in", &m, "--out", &dir.join("s.bin").display().to_string()]));
        let out = openssl(&dir, &["dgst", "-sha256", "-verify", "sig-rsa.pem", "-signature", "s.bin", "m.txt"]);
        assert!(String::from_utf8_lossy(&out).contains("Verified OK"));

        // pkcs11-tool decrypts with the same key while it is enabled, not once disabled.
        let id_hex = ids[0].replace('-', "");
        let out = pkcs11_tool_decrypt(&dir, &id_hex);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.stdout, b"the envelope key");
        let out = openssl_engine_decrypt(&dir, &id_hex);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.stdout, b"the envelope key");
        ok(&with_token("disable-key", &["dec-rsa"]));
        // OpenSSL through the engine is refused too (libp11 reports the failed C_Decrypt).
        let out = openssl_engine_decrypt(&dir, &id_hex);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && out.stdout.is_empty(), "{stderr}");
        assert!(stderr.contains("Key function not permitted"), "{stderr}");
        assert!(ok(&with_token("describe-key", &["dec-rsa"])).contains("Disabled"));
        fails(&with_token("decrypt", &["dec-rsa", "--algorithm", "RSAES_OAEP_SHA_256", "--in", &c]), "disabled");
        let out = pkcs11_tool_decrypt(&dir, &id_hex);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("CKR_KEY_FUNCTION_NOT_PERMITTED"), "{}", String::from_utf8_lossy(&out.stderr));
        // The public key still serves senders.
        ok(&with_token("get-public-key", &["dec-rsa"]));
        ok(&with_token("enable-key", &["dec-rsa"]));
        assert_eq!(ok(&with_token("decrypt", &["dec-rsa", "--algorithm", "RSAES_OAEP_SHA_256", "--in", &c])), "the envelope key");

        // Scheduled deletion: 7 to 30 days; the key is unusable meanwhile; cancel keeps it.
        fails(&with_token("schedule-key-deletion", &["dec-rsa", "--pending-days", "3"]), "CKR_ATTRIBUTE_VALUE_INVALID");
        assert!(ok(&with_token("schedule-key-deletion", &["dec-rsa", "--pending-days", "7"])).contains("deletion scheduled for"));
        let described: serde_json::Value = serde_json::from_str(&ok(&with_token("describe-key", &["dec-rsa", "--json"]))).unwrap();
        assert_eq!(described["state"], "PendingDeletion");
        let days = (described["deletion_time"].as_u64().unwrap() - described["created"].as_u64().unwrap()) / 86_400;
        assert!((6..=7).contains(&days), "{described}");
        fails(&with_token("decrypt", &["dec-rsa", "--algorithm", "RSAES_OAEP_SHA_256", "--in", &c]), "scheduled for deletion");
        ok(&with_token("cancel-key-deletion", &["dec-rsa"]));
        assert!(ok(&with_token("describe-key", &["dec-rsa"])).contains("Disabled"));

        // Failures are one line naming the code and what to do.
        fails(&with_token("describe-key", &["no-such-key"]), "list-keys");
        fails(&["list-keys", "--token", TOKEN_LABEL, "--pin", "wrong-pin-000"], "CKR_PIN_INCORRECT");
        fails(&["list-keys", "--token", TOKEN_LABEL, "--pin", "wrong-pin-000"], "8 tries left");
        ok(&with_token("list-keys", &[])); // a right PIN resets the count
        fails(&["list-keys", "--token", "nonesuch", "--pin", USER_PIN], "CKR_TOKEN_NOT_PRESENT");
        // The PIN from FERROHSM_PIN, as scripts give it.
        let out = Command::new(env!("CARGO_BIN_EXE_ferrohsm-util"))
            .args(["list-keys", "--token", TOKEN_LABEL])
            .env("FERROHSM_PIN", USER_PIN)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}
