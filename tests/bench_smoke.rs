//! ferrohsm-bench runs against the built module (a token it initialises itself in a temp
//! dir) and, when installed, SoftHSMv2 beside it: its JSON parses with every operation and
//! positive rates, --report writes report.md and an SVG chart, and what SoftHSMv2 lacks is
//! reported as unsupported, not as a failure. No timing is asserted: the machine is shared.

mod common;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const SOFTHSM: &str = "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so";
const LABEL: &str = "bench-smoke";
const SO_PIN: &str = "bench-so-4321";
const USER_PIN: &str = "bench-user-1234";

/// Every operation the tool knows (`--ops list`), ferrohsm doing all of them.
const OPERATIONS: [&str; 20] = [
    "rsa2048-keygen",
    "rsa2048-decrypt-pkcs1",
    "rsa2048-decrypt-oaep-sha256",
    "rsa2048-sign-sha256-pkcs1",
    "rsa2048-sign-sha256-pss",
    "rsa2048-encrypt-pkcs1",
    "rsa2048-verify-sha256-pkcs1",
    "ecdsa-p256-sign",
    "ed25519-sign",
    "aes256-gcm-encrypt-1mib",
    "find-object",
    "get-attribute-modulus",
    "open-close-session",
    "login-logout",
    "sm2-sign-sm3",
    "sm2-decrypt",
    "aes-kw-decrypt-32",
    "aes-kw-unwrap-32",
    "rsa2048-unwrap-oaep-sha256",
    "ecdh-p256-derive",
];

fn bench(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferrohsm-bench"));
    command
        .env("FERROHSM_CONF", dir.join("ferrohsm.toml"))
        .env("SOFTHSM2_CONF", dir.join("softhsm2.conf"))
        .env("FERROHSM_PIN", USER_PIN);
    command
}

fn run_json(mut command: Command) -> Value {
    let output = command.output().expect("run ferrohsm-bench");
    assert!(
        output.status.success(),
        "ferrohsm-bench failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("--json output parses")
}

fn results_of<'a>(json: &'a Value, module: &str) -> Vec<&'a Value> {
    json["results"]
        .as_array()
        .expect("results array")
        .iter()
        .filter(|row| row["module"] == module)
        .collect()
}

#[test]
fn bench_runs_on_ferrohsm_and_softhsm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tokens = dir.path().join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    std::fs::write(
        dir.path().join("ferrohsm.toml"),
        format!("token_dir = \"{}\"\n", tokens.display()),
    )
    .unwrap();
    let module = common::module_path();
    let report = dir.path().join("report");

    // Bad input: one line on stderr and exit status 1, no panic.
    let missing = bench(dir.path())
        .args(["--module", "/nonexistent/libnothing.so", "--pin", USER_PIN])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cannot load"), "{stderr}");

    let mut command = bench(dir.path());
    command.arg("--module").arg(&module).args([
        "--init",
        "--so-pin",
        SO_PIN,
        "--token",
        LABEL,
        "--seconds",
        "0.05",
        "--threads",
        "1,2",
        "--keygen-keys",
        "1",
        "--objects",
        "20",
        "--json",
        "--report",
    ]);
    command.arg(&report);
    let json = run_json(command);
    let ferrohsm = results_of(&json, "ferrohsm");
    for operation in OPERATIONS {
        let rows: Vec<_> = ferrohsm
            .iter()
            .filter(|row| row["operation"] == operation)
            .collect();
        assert!(!rows.is_empty(), "{operation} missing from {json:#}");
        for row in rows {
            assert_eq!(row["status"], "measured", "{row:#}");
            assert!(row["ops_per_sec"].as_f64().unwrap() > 0.0, "{row:#}");
            assert!(row["p99_us"].as_f64().unwrap() >= row["p50_us"].as_f64().unwrap());
        }
    }
    // Login is measured on one thread only (it logs every session in and out).
    let login_threads: Vec<_> = ferrohsm
        .iter()
        .filter(|row| row["operation"] == "login-logout")
        .map(|row| row["threads"].as_u64().unwrap())
        .collect();
    assert_eq!(login_threads, [1]);
    let markdown = std::fs::read_to_string(report.join("report.md")).expect("report.md");
    assert!(markdown.contains("| rsa2048-decrypt-pkcs1 |"), "{markdown}");
    let chart = std::fs::read_to_string(report.join("chart.svg")).expect("chart.svg");
    assert!(chart.contains("<svg") && chart.trim_end().ends_with("</svg>"));

    if !Path::new(SOFTHSM).exists() {
        eprintln!("{SOFTHSM} not installed: SoftHSMv2 part skipped");
        return;
    }
    let softhsm_tokens = dir.path().join("softhsm-tokens");
    std::fs::create_dir_all(&softhsm_tokens).unwrap();
    std::fs::write(
        dir.path().join("softhsm2.conf"),
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            softhsm_tokens.display()
        ),
    )
    .unwrap();
    let init = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", dir.path().join("softhsm2.conf"))
        .args([
            "--init-token",
            "--free",
            "--label",
            LABEL,
            "--so-pin",
            SO_PIN,
            "--pin",
            USER_PIN,
        ])
        .output()
        .expect("softhsm2-util");
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );

    // Both modules in one run, on the token labelled LABEL in each (ferrohsm's from above).
    let mut command = bench(dir.path());
    command
        .arg("--compare")
        .args([module.as_path(), Path::new(SOFTHSM)])
        .args([
            "--token", LABEL, "--seconds", "0.05", "--ops",
            "rsa2048-sign-sha256-pkcs1,get-attribute-modulus,open-close-session,sm2-sign-sm3,sm2-decrypt",
            "--json", "--report",
        ]);
    command.arg(dir.path().join("compare"));
    let json = run_json(command);
    let softhsm = results_of(&json, "softhsm2");
    assert_eq!(softhsm.len(), 5, "{json:#}");
    for row in &softhsm {
        let sm2 = row["operation"].as_str().unwrap().starts_with("sm2-");
        let expected = if sm2 { "unsupported" } else { "measured" };
        assert_eq!(row["status"], expected, "{row:#}");
    }
    // The ratios of this run: ferrohsm against SoftHSMv2 where both measured.
    let ratios = json["ratios"].as_array().unwrap();
    assert!(ratios.iter().any(|r| r["module"] == "ferrohsm"
        && r["versus"] == "softhsm2"
        && r["ratio"].as_f64().unwrap() > 0.0));
    let chart = dir.path().join("compare/chart.svg");
    assert!(std::fs::read_to_string(chart).unwrap().contains("<svg"));
}
