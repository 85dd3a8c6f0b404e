//! OpenSSL's command line as the other party of interop tests: keys, signatures and
//! ciphertexts made or checked by `openssl`, public keys exported by `ferrohsm-util pubkey`.

use std::path::Path;
use std::process::{Command, Output};

/// True when `openssl` runs; prints why the test is skipped otherwise.
pub fn have_openssl(test: &str) -> bool {
    let ok = Command::new("openssl")
        .arg("version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        println!("SKIPPED {test}: openssl not found");
    }
    ok
}

/// Runs `openssl args` in `dir`; returns its output whatever the exit status.
pub fn openssl_output(dir: &Path, args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("spawn openssl")
}

/// Runs `openssl args` in `dir` and fails the test unless it succeeded; returns stdout.
#[track_caller]
pub fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let output = openssl_output(dir, args);
    assert!(
        output.status.success(),
        "openssl {args:?} failed ({})\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// The hex bytes of the `name:` block in `openssl pkey -text` output ("priv:", "pub:").
pub fn text_block(text: &str, name: &str) -> Vec<u8> {
    let mut lines = text.lines().skip_while(|l| l.trim() != name).skip(1);
    let mut hex_digits = String::new();
    for line in lines.by_ref() {
        let line = line.trim();
        if !line.chars().all(|c| c.is_ascii_hexdigit() || c == ':') || line.is_empty() {
            break;
        }
        hex_digits.extend(line.chars().filter(|c| *c != ':'));
    }
    hex::decode(&hex_digits).unwrap_or_else(|e| panic!("{name} block of\n{text}\n: {e}"))
}

/// `ferrohsm-util pubkey --token <test token> --label <label>` (FERROHSM_CONF is inherited
/// from the sandbox), written to `<label>.pem`.
pub fn export_public_key(dir: &Path, label: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_ferrohsm-util"))
        .args(["pubkey", "--token", super::TOKEN_LABEL, "--label", label])
        .output()
        .expect("spawn ferrohsm-util");
    assert!(
        output.status.success(),
        "ferrohsm-util pubkey failed ({})\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let pem = String::from_utf8(output.stdout).expect("PEM is text");
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
    let file = format!("{label}.pem");
    std::fs::write(dir.join(&file), &pem).expect("write PEM");
    file
}
