//! The command line.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::operations::Operation;

/// Measures a PKCS#11 module (or several side by side) through its C ABI, as a client does:
/// ops/s and latency p50/p99 per operation.
#[derive(Parser, Debug)]
#[command(name = "ferrohsm-bench", version)]
pub struct Args {
    /// PKCS#11 module to measure (repeatable).
    #[arg(long = "module", value_name = "PATH")]
    pub modules: Vec<PathBuf>,
    /// Several modules measured side by side, interleaved in one run; adds `openssl speed`
    /// as the machine's limit when openssl is on PATH.
    #[arg(long, value_name = "MODULE", num_args = 1..)]
    pub compare: Vec<PathBuf>,
    /// Label of the token to use (default: the first initialised token).
    #[arg(long = "token", value_name = "LABEL", conflicts_with = "slot")]
    pub token_label: Option<String>,
    /// Slot id of the token to use.
    #[arg(long, value_name = "N")]
    pub slot: Option<u64>,
    /// User PIN of the token (or env FERROHSM_PIN).
    #[arg(long)]
    pub pin: Option<String>,
    /// Initialise a fresh token in the first uninitialised slot of each module, labelled
    /// --token (default "ferrohsm-bench"), with --so-pin and --pin.
    #[arg(long, requires = "so_pin")]
    pub init: bool,
    /// SO PIN for --init.
    #[arg(long)]
    pub so_pin: Option<String>,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 2.0, value_parser = parse_seconds)]
    pub seconds: f64,
    /// Thread counts to measure, each thread with its own session.
    #[arg(long, value_delimiter = ',', default_value = "1", value_parser = parse_threads)]
    pub threads: Vec<usize>,
    /// Repetitions of every measurement; figures are their medians.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// Operations to measure (comma-separated; default all; `--ops list` names them).
    #[arg(long, value_delimiter = ',')]
    pub ops: Vec<String>,
    /// RSA-2048 keys generated per thread and repetition by rsa2048-keygen.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub keygen_keys: u32,
    /// Objects on the token (session objects) among which find-object looks for one.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub objects: u32,
    /// Machine-readable results on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Directory to write report.md (a Markdown table) and chart.svg (ops/s bar chart) into.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
}

impl Args {
    /// Every module named by --module and --compare, in the order given.
    pub fn all_modules(&self) -> Vec<PathBuf> {
        self.modules.iter().chain(&self.compare).cloned().collect()
    }

    /// --pin, else env FERROHSM_PIN (which keeps the PIN out of `ps`).
    pub fn user_pin(&self) -> Option<String> {
        self.pin
            .clone()
            .or_else(|| std::env::var("FERROHSM_PIN").ok())
    }

    pub fn measurement_time(&self) -> Duration {
        Duration::from_secs_f64(self.seconds)
    }

    /// The operations chosen by --ops, in the tool's order; unknown names are an error.
    pub fn operations(&self) -> Result<Vec<Operation>, String> {
        if self.ops.is_empty() {
            return Ok(Operation::ALL.to_vec());
        }
        let mut chosen = Vec::new();
        for name in &self.ops {
            let operation = Operation::from_name(name.trim()).ok_or_else(|| {
                format!(
                    "unknown operation {name:?}; known: {}",
                    Operation::ALL.map(|op| op.name()).join(", ")
                )
            })?;
            if !chosen.contains(&operation) {
                chosen.push(operation);
            }
        }
        Ok(chosen)
    }
}

fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds > 0.0 && seconds <= 3600.0 => Ok(seconds),
        _ => Err(format!("{text:?} is not a number of seconds in (0, 3600]")),
    }
}

fn parse_threads(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(threads) if (1..=256).contains(&threads) => Ok(threads),
        _ => Err(format!("{text:?} is not a thread count in 1..=256")),
    }
}
