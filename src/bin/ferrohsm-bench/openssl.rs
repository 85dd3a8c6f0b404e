//! `openssl speed` beside the modules (--compare): the machine's own limit for the same
//! primitives, measured in the same run so that ratios to it mean something.

use std::collections::HashMap;
use std::process::{Command, Stdio};

use crate::operations::{Operation, GCM_MESSAGE_BYTES};

/// ops/s of `openssl speed` per operation and thread count (`-multi N` processes).
pub type OpensslFigures = HashMap<(Operation, usize), f64>;

/// The OpenSSL figure an operation is compared with: RSA private-key operations with its
/// RSA sign, public-key ones with its verify.
fn counterparts(algorithm: &str) -> Option<(&'static [Operation], &'static [Operation])> {
    const RSA_PRIVATE: &[Operation] = &[
        Operation::RsaDecryptPkcs1,
        Operation::RsaDecryptOaep,
        Operation::RsaSignPkcs1,
        Operation::RsaSignPss,
    ];
    const RSA_PUBLIC: &[Operation] = &[Operation::RsaEncrypt, Operation::RsaVerify];
    match algorithm {
        "rsa2048" => Some((RSA_PRIVATE, RSA_PUBLIC)),
        "ecdsap256" => Some((&[Operation::EcdsaP256Sign], &[])),
        "ed25519" => Some((&[Operation::Ed25519Sign], &[])),
        // ECDH's one figure (derivations per second) is read as the "private" one.
        "ecdhp256" => Some((&[Operation::EcdhP256Derive], &[])),
        _ => None,
    }
}

pub fn available() -> bool {
    Command::new("openssl")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Runs `openssl speed -mr` for the operations asked for, once per thread count; what it
/// cannot run is left out.
pub fn speed(operations: &[Operation], thread_counts: &[usize], seconds: f64) -> OpensslFigures {
    // openssl takes whole seconds.
    let seconds = (seconds.round() as u64).max(1).to_string();
    let mut figures = OpensslFigures::new();
    let algorithms: Vec<&str> = ["rsa2048", "ecdsap256", "ed25519", "ecdhp256"]
        .into_iter()
        .filter(|algorithm| {
            counterparts(algorithm).is_some_and(|(private, public)| {
                private
                    .iter()
                    .chain(public)
                    .any(|op| operations.contains(op))
            })
        })
        .collect();
    for &threads in thread_counts {
        let mut common = vec![
            "speed".to_owned(),
            "-mr".into(),
            "-seconds".into(),
            seconds.clone(),
        ];
        if threads > 1 {
            common.extend(["-multi".to_owned(), threads.to_string()]);
        }
        if !algorithms.is_empty() {
            let mut command = common.clone();
            command.extend(algorithms.iter().map(|a| a.to_string()));
            for line in run(&command) {
                parse_public_key_line(&line, threads, &mut figures);
            }
        }
        if operations.contains(&Operation::AesGcmEncrypt) {
            let mut command = common.clone();
            command.extend(
                [
                    "-evp",
                    "aes-256-gcm",
                    "-bytes",
                    &GCM_MESSAGE_BYTES.to_string(),
                ]
                .map(String::from),
            );
            for line in run(&command) {
                // "+F:<n>:AES-256-GCM:<bytes per second>"
                let fields: Vec<&str> = line.split(':').collect();
                if fields.first() == Some(&"+F") && fields.len() >= 4 {
                    if let Ok(bytes_per_sec) = fields[3].parse::<f64>() {
                        figures.insert(
                            (Operation::AesGcmEncrypt, threads),
                            bytes_per_sec / GCM_MESSAGE_BYTES as f64,
                        );
                    }
                }
            }
        }
    }
    figures
}

/// The lines of `openssl <args>`'s output; none if it cannot run.
fn run(args: &[String]) -> Vec<String> {
    let output = Command::new("openssl")
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    match output {
        Ok(output) => String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_owned)
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// -mr lines: "+F2:<n>:2048:<sign/s>:<verify/s>" (RSA), "+F4:<n>:256:<sign/s>:<verify/s>"
/// (ECDSA), "+F6:<n>:253:Ed25519:<sign/s>:<verify/s>" (EdDSA), "+F5:<n>:256:<derive/s>:<s>"
/// (ECDH, the second figure a time per operation). With -multi, the children's
/// lines come first prefixed "Got: ", then the sums unprefixed: only the latter are read.
fn parse_public_key_line(line: &str, threads: usize, figures: &mut OpensslFigures) {
    let fields: Vec<&str> = line.split(':').collect();
    let (algorithm, sign, verify) = match fields.as_slice() {
        ["+F2", _, "2048", sign, verify] => ("rsa2048", sign, verify),
        ["+F4", _, "256", sign, verify] => ("ecdsap256", sign, verify),
        ["+F6", _, _, "Ed25519", sign, verify] => ("ed25519", sign, verify),
        // No verify side: the second field is seconds per derivation, never used.
        ["+F5", _, "256", derive, seconds] => ("ecdhp256", derive, seconds),
        _ => return,
    };
    let (Some((private_ops, public_ops)), Ok(sign), Ok(verify)) = (
        counterparts(algorithm),
        sign.parse::<f64>(),
        verify.parse::<f64>(),
    ) else {
        return;
    };
    for op in private_ops {
        figures.insert((*op, threads), sign);
    }
    for op in public_ops {
        figures.insert((*op, threads), verify);
    }
}
