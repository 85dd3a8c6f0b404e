//! `ferrohsm-util`'s softhsm2-util command line (issue 11): one script of `--init-token`,
//! `--show-slots`, `--import` and `--delete-token` calls, successes and failures, runs
//! against SoftHSMv2's own `softhsm2-util` and against `ferrohsm-util`; every exit status
//! must be the same, and so must every line a script would parse (slot numbers, serials and
//! paths aside, which differ by nature). Then what only ferrohsm-util imports (AES keys,
//! certificates, Ed25519 and SM2 keys) is used through pkcs11-tool and OpenSSL, and the
//! binary works under the name `softhsm2-util`.
//!
//! softhsm2-util, pkcs11-tool and openssl are part of the test (CI installs them).

mod common;

use common::module_path;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SO: &str = "12345678";
const USER: &str = "87654321";

/// One of the two tools with its own token directory.
struct Tool {
    program: PathBuf,
    env: (&'static str, PathBuf),
    module: PathBuf,
}

impl Tool {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(&self.program)
            .env(self.env.0, &self.env.1)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", self.program.display()))
    }
}

fn softhsm_tool(dir: &Path) -> Tool {
    let tokens = dir.join("softhsm-tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .unwrap();
    Tool {
        program: PathBuf::from("softhsm2-util"),
        env: ("SOFTHSM2_CONF", conf),
        module: PathBuf::from("/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"),
    }
}

fn ferrohsm_tool(dir: &Path, program: PathBuf) -> Tool {
    let tokens = dir.join("ferrohsm-tokens");
    let conf = dir.join("ferrohsm.toml");
    std::fs::write(&conf, format!("token_dir = \"{}\"\n", tokens.display())).unwrap();
    Tool {
        program,
        env: ("FERROHSM_CONF", conf),
        module: module_path(),
    }
}

/// `openssl args` (every path in them absolute), which must succeed.
#[track_caller]
fn openssl(args: &[&str]) {
    common::openssl::openssl(Path::new("/"), args);
}

/// A new RSA-2048 private key in a PKCS#8 PEM file, by OpenSSL.
fn rsa_key_file(path: &str) {
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        path,
    ]);
}

/// Rewrites what differs by nature between the two tools: slot numbers (SoftHSM picks a
/// random one for each new token: "reassigned to slot 653642097") become N; the token
/// named by --delete-token (a UUID for SoftHSM, the serial here) and its path become
/// placeholders.
fn normalise(text: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(text)
        .lines()
        .map(normalise_line)
        .collect()
}

fn normalise_line(line: &str) -> String {
    let line = line
        .split(' ')
        .map(|w| {
            let digits = w.trim_end_matches('.');
            if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
                format!("N{}", &w[digits.len()..])
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    let names_token = line.starts_with("Found token (") || line.starts_with("The token (");
    match (line.find('('), line.find(')')) {
        (Some(open), Some(close)) if names_token => {
            format!("{}(TOKEN){}", &line[..open], &line[close + 1..])
        }
        _ => line,
    }
}

/// --show-slots as the facts scripts read: per slot (initialised, user PIN set, label),
/// sorted (SoftHSM's random slot ids order its list differently).
fn slot_facts(stdout: &[u8]) -> Vec<(String, String, String)> {
    let text = String::from_utf8_lossy(stdout);
    let mut facts = Vec::new();
    let mut current: Option<(String, String, String)> = None;
    for line in text.lines() {
        if line.starts_with("Slot ") {
            facts.extend(current.take());
            current = Some(Default::default());
        }
        let value = |key: &str| line.trim().strip_prefix(key).map(|v| v.trim().to_string());
        if let Some(c) = current.as_mut() {
            if let Some(v) = value("Initialized:") {
                c.0 = v;
            } else if let Some(v) = value("User PIN init.:") {
                c.1 = v;
            } else if let Some(v) = value("Label:") {
                c.2 = v;
            }
        }
    }
    facts.extend(current);
    facts.sort();
    facts
}

/// How a step's output is compared.
#[derive(Clone, Copy)]
enum Compare {
    /// Exit status, stdout and stderr lines (normalised).
    All,
    /// Exit status and stdout; stderr only by its first `n` characters (the message
    /// ferrohsm-util makes more precise, e.g. with the tries left).
    StderrPrefix(usize),
    /// Exit status and the --show-slots facts.
    Slots,
    /// Exit status only.
    Status,
}

#[test]
fn the_same_script_gives_the_same_results_on_softhsm2_util_and_ferrohsm_util() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).display().to_string();
    rsa_key_file(&d("rsa.pem"));
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        &d("ec.pem"),
    ]);
    let (rsa, ec, missing) = (d("rsa.pem"), d("ec.pem"), d("missing.pem"));
    use Compare::*;
    let import = |file: &str, rest: &[&str]| -> Vec<String> {
        let mut args = vec![
            "--import".to_string(),
            file.to_string(),
            "--token".into(),
            "alpha2".into(),
        ];
        args.extend(rest.iter().map(|s| s.to_string()));
        args
    };
    let strings = |args: &[&str]| args.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let init = |rest: &[&str]| {
        let mut args = strings(&["--init-token"]);
        args.extend(strings(rest));
        args
    };
    let script: Vec<(Vec<String>, Compare)> = vec![
        (strings(&["--show-slots"]), Slots),
        (
            init(&["--free", "--label", "alpha", "--so-pin", SO, "--pin", USER]),
            All,
        ),
        (
            init(&["--free", "--label", "beta", "--so-pin", SO, "--pin", USER]),
            All,
        ),
        (
            init(&[
                "--token", "alpha", "--label", "alpha2", "--so-pin", SO, "--pin", USER,
            ]),
            All,
        ),
        (
            init(&[
                "--token", "alpha2", "--label", "x", "--so-pin", "00000000", "--pin", USER,
            ]),
            All,
        ),
        (init(&["--label", "x", "--so-pin", SO, "--pin", USER]), All),
        (init(&["--free", "--so-pin", SO, "--pin", USER]), All),
        (
            init(&[
                "--slot", "999999", "--label", "x", "--so-pin", SO, "--pin", USER,
            ]),
            All,
        ),
        (
            init(&[
                "--token", "nosuch", "--label", "x", "--so-pin", SO, "--pin", USER,
            ]),
            All,
        ),
        (
            import(&rsa, &["--label", "k1", "--id", "01", "--pin", USER]),
            All,
        ),
        (
            import(&rsa, &["--label", "k1", "--id", "01", "--pin", USER]),
            All,
        ),
        (
            import(
                &rsa,
                &["--label", "k1", "--id", "01", "--pin", USER, "--force"],
            ),
            All,
        ),
        (
            import(
                &ec,
                &[
                    "--label",
                    "k2",
                    "--id",
                    "02",
                    "--pin",
                    USER,
                    "--no-public-key",
                ],
            ),
            All,
        ),
        (import(&rsa, &["--id", "09", "--pin", USER]), All),
        (import(&rsa, &["--label", "x", "--pin", USER]), All),
        (
            import(&rsa, &["--label", "x", "--id", "09", "--pin", "00000000"]),
            StderrPrefix(62),
        ),
        (
            import(&missing, &["--label", "x", "--id", "09", "--pin", USER]),
            Status,
        ),
        (
            strings(&[
                "--import", &rsa, "--token", "nosuch", "--label", "x", "--id", "09",
            ]),
            All,
        ),
        (
            strings(&[
                "--import", &rsa, "--serial", "1234", "--label", "x", "--id", "09",
            ]),
            All,
        ),
        (
            strings(&["--import", &rsa, "--label", "x", "--id", "09"]),
            All,
        ),
        (strings(&["--delete-token", "--token", "nosuch"]), All),
        (strings(&["--delete-token"]), All),
        (strings(&["--delete-token", "--token", "beta"]), All),
        (strings(&["--show-slots"]), Slots),
        (strings(&["--version"]), Status),
    ];

    let softhsm = softhsm_tool(dir.path());
    let ferrohsm = ferrohsm_tool(
        dir.path(),
        PathBuf::from(env!("CARGO_BIN_EXE_ferrohsm-util")),
    );
    for (args, compare) in &script {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (a, b) = (softhsm.run(&args), ferrohsm.run(&args));
        let show = |o: &Output| {
            format!(
                "status {:?}\n--- stdout\n{}--- stderr\n{}",
                o.status.code(),
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        };
        let context = format!(
            "{args:?}\n=== softhsm2-util: {}\n=== ferrohsm-util: {}",
            show(&a),
            show(&b)
        );
        assert_eq!(a.status.code(), b.status.code(), "exit status of {context}");
        assert!(
            !String::from_utf8_lossy(&b.stderr).contains("panicked"),
            "{context}"
        );
        match compare {
            All | StderrPrefix(_) => {
                assert_eq!(
                    normalise(&a.stdout),
                    normalise(&b.stdout),
                    "stdout of {context}"
                );
                let (ea, eb) = (normalise(&a.stderr), normalise(&b.stderr));
                match compare {
                    StderrPrefix(n) => {
                        let cut = |e: &[String]| e.join("\n").chars().take(*n).collect::<String>();
                        assert_eq!(cut(&ea), cut(&eb), "stderr of {context}");
                    }
                    _ => assert_eq!(ea, eb, "stderr of {context}"),
                }
            }
            Slots => assert_eq!(
                slot_facts(&a.stdout),
                slot_facts(&b.stdout),
                "slots of {context}"
            ),
            Status => {}
        }
    }

    // What the imports made, as pkcs11-tool lists it from each module.
    let kinds = |tool: &Tool| {
        let out = Command::new("pkcs11-tool")
            .args([
                "--module",
                &tool.module.display().to_string(),
                "--token-label",
                "alpha2",
            ])
            .args(["--login", "--pin", USER, "--list-objects"])
            .env(tool.env.0, &tool.env.1)
            .output()
            .expect("run pkcs11-tool");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut kinds: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("Object;"))
            .map(|l| l.split_whitespace().take(4).collect::<Vec<_>>().join(" "))
            .collect();
        kinds.sort();
        kinds
    };
    let listed = kinds(&ferrohsm);
    assert_eq!(kinds(&softhsm), listed);
    assert_eq!(
        listed.len(),
        5,
        "2 RSA pairs and an EC private key: {listed:?}"
    );
}

/// pkcs11-tool on the ferrohsm token `label`.
fn pkcs11_tool(tool: &Tool, label: &str, args: &[&str]) -> Output {
    Command::new("pkcs11-tool")
        .args([
            "--module",
            &tool.module.display().to_string(),
            "--token-label",
            label,
        ])
        .args(["--login", "--pin", USER])
        .args(args)
        .env(tool.env.0, &tool.env.1)
        .output()
        .expect("run pkcs11-tool")
}

#[track_caller]
fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn imported_keys_and_certificates_work_through_pkcs11_tool_and_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).display().to_string();
    // Called by softhsm2-util's name, as a script that has it on its PATH does.
    let alias = dir.path().join("softhsm2-util");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_ferrohsm-util"), &alias).unwrap();
    let tool = ferrohsm_tool(dir.path(), alias);
    let made = ok(tool.run(&[
        "--init-token",
        "--free",
        "--label",
        "imports",
        "--so-pin",
        SO,
        "--pin",
        USER,
    ]));
    assert_eq!(made, "Slot 0 has a free/uninitialized token.\nThe token has been initialized and is reassigned to slot 0\n");

    rsa_key_file(&d("rsa.pem"));
    openssl(&["genpkey", "-algorithm", "ED25519", "-out", &d("ed.pem")]);
    openssl(&["genpkey", "-algorithm", "SM2", "-out", &d("sm2.pem")]);
    openssl(&[
        "req",
        "-x509",
        "-key",
        &d("ed.pem"),
        "-subj",
        "/CN=imported",
        "-days",
        "1",
        "-out",
        &d("cert.pem"),
    ]);
    let aes_key: Vec<u8> = (0u8..32)
        .map(|i| i.wrapping_mul(37).wrapping_add(5))
        .collect();
    std::fs::write(d("aes.bin"), &aes_key).unwrap();
    let import = |file: &str, label: &str, id: &str, rest: &[&str]| {
        let mut args = vec![
            "--import", file, "--slot", "0", "--label", label, "--id", id, "--pin", USER,
        ];
        args.extend_from_slice(rest);
        tool.run(&args)
    };
    assert!(
        ok(import(&d("rsa.pem"), "rsa", "01", &[])).ends_with("The key pair has been imported.\n")
    );
    assert!(
        ok(import(&d("ed.pem"), "ed", "02", &[])).ends_with("The key pair has been imported.\n")
    );
    assert!(
        ok(import(&d("sm2.pem"), "sm2", "03", &[])).ends_with("The key pair has been imported.\n")
    );
    assert!(ok(import(&d("aes.bin"), "aes", "04", &["--aes"]))
        .ends_with("The key has been imported.\n"));
    let cert = import(
        &d("cert.pem"),
        "cert",
        "02",
        &["--import-type", "cert", "--force"],
    );
    assert!(ok(cert).ends_with("The certificate has been imported.\n"));

    // A sender encrypts with the RSA public key from the file; the token decrypts.
    openssl(&[
        "pkey",
        "-in",
        &d("rsa.pem"),
        "-pubout",
        "-out",
        &d("rsa.pub"),
    ]);
    std::fs::write(d("message"), b"imported key pair").unwrap();
    openssl(&[
        "pkeyutl",
        "-encrypt",
        "-pubin",
        "-inkey",
        &d("rsa.pub"),
        "-in",
        &d("message"),
        "-out",
        &d("message.enc"),
    ]);
    let plain = pkcs11_tool(
        &tool,
        "imports",
        &[
            "--decrypt",
            "-m",
            "RSA-PKCS",
            "--id",
            "01",
            "-i",
            &d("message.enc"),
            "-o",
            &d("message.dec"),
        ],
    );
    ok(plain);
    assert_eq!(
        std::fs::read(d("message.dec")).unwrap(),
        b"imported key pair"
    );

    // The Ed25519 key signs; OpenSSL verifies with the file's public key.
    ok(pkcs11_tool(
        &tool,
        "imports",
        &[
            "--sign",
            "-m",
            "EDDSA",
            "--id",
            "02",
            "-i",
            &d("message"),
            "-o",
            &d("message.sig"),
        ],
    ));
    openssl(&["pkey", "-in", &d("ed.pem"), "-pubout", "-out", &d("ed.pub")]);
    openssl(&[
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        &d("ed.pub"),
        "-rawin",
        "-in",
        &d("message"),
        "-sigfile",
        &d("message.sig"),
    ]);

    // The AES key encrypts as the file's bytes do in OpenSSL.
    let iv = "000102030405060708090a0b0c0d0e0f";
    ok(pkcs11_tool(
        &tool,
        "imports",
        &[
            "--encrypt",
            "-m",
            "AES-CBC-PAD",
            "--id",
            "04",
            "--iv",
            iv,
            "-i",
            &d("message"),
            "-o",
            &d("aes.enc"),
        ],
    ));
    openssl(&[
        "enc",
        "-d",
        "-aes-256-cbc",
        "-K",
        &hex::encode(&aes_key),
        "-iv",
        iv,
        "-in",
        &d("aes.enc"),
        "-out",
        &d("aes.dec"),
    ]);
    assert_eq!(std::fs::read(d("aes.dec")).unwrap(), b"imported key pair");

    // The certificate reads back as the file's DER; the SM2 pair is listed with its public half.
    openssl(&[
        "x509",
        "-in",
        &d("cert.pem"),
        "-outform",
        "DER",
        "-out",
        &d("cert.der"),
    ]);
    ok(pkcs11_tool(
        &tool,
        "imports",
        &[
            "--read-object",
            "--type",
            "cert",
            "--label",
            "cert",
            "-o",
            &d("cert.read"),
        ],
    ));
    assert_eq!(
        std::fs::read(d("cert.read")).unwrap(),
        std::fs::read(d("cert.der")).unwrap()
    );
    let listed = ok(pkcs11_tool(
        &tool,
        "imports",
        &["--list-objects", "--type", "pubkey"],
    ));
    assert_eq!(listed.matches("Public Key Object").count(), 3, "{listed}");

    // Failures: a certificate offered as a key pair, a wrong PIN with the tries left.
    let wrong_type = import(&d("cert.pem"), "x", "09", &[]);
    assert_eq!(wrong_type.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&wrong_type.stderr);
    assert!(stderr.contains("\"CERTIFICATE\""), "{stderr}");
    let wrong_pin = tool.run(&[
        "--import",
        &d("rsa.pem"),
        "--slot",
        "0",
        "--label",
        "x",
        "--id",
        "09",
        "--pin",
        "00000000",
    ]);
    assert_eq!(wrong_pin.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&wrong_pin.stderr);
    assert!(stderr.contains("9 tries left"), "{stderr}");

    // Deleted, the token is gone for every process.
    ok(tool.run(&["--delete-token", "--token", "imports"]));
    let slots = ok(tool.run(&["--show-slots"]));
    assert!(!slots.contains("imports"), "{slots}");
    assert_eq!(slots.matches("Initialized:      no").count(), 1, "{slots}");
}
