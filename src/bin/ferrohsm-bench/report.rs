//! What the run prints: the terminal table, --json, and --report's report.md and chart.svg.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::chart;
use crate::openssl::OpensslFigures;
use crate::operations::Operation;
use crate::runner::{Outcome, Row};

/// Everything one run measured.
pub struct Results {
    /// (name, path) of each module, in the order given.
    pub modules: Vec<(String, String)>,
    pub operations: Vec<Operation>,
    pub thread_counts: Vec<usize>,
    pub rows: Vec<Row>,
    /// `openssl speed` beside the modules (--compare with openssl on PATH).
    pub openssl: Option<OpensslFigures>,
    pub seconds: f64,
    pub repeat: u32,
}

/// A module's ops/s divided by another's (the first module's by each other's, each
/// module's by OpenSSL's), both from this run.
struct Ratio {
    operation: Operation,
    threads: usize,
    module: String,
    versus: String,
    ratio: f64,
}

impl Results {
    fn row(&self, operation: Operation, threads: usize, module: &str) -> Option<&Row> {
        self.rows.iter().find(|row| {
            row.operation == operation && row.threads == threads && row.module == module
        })
    }

    fn rate(&self, operation: Operation, threads: usize, module: &str) -> Option<f64> {
        match self.row(operation, threads, module)?.outcome {
            Outcome::Measured { ops_per_sec, .. } if ops_per_sec > 0.0 => Some(ops_per_sec),
            _ => None,
        }
    }

    fn openssl_rate(&self, operation: Operation, threads: usize) -> Option<f64> {
        self.openssl.as_ref()?.get(&(operation, threads)).copied()
    }

    /// (operation, threads) pairs measured, in the run's order.
    fn measured_pairs(&self) -> Vec<(Operation, usize)> {
        let mut pairs = Vec::new();
        for row in &self.rows {
            if !pairs.contains(&(row.operation, row.threads)) {
                pairs.push((row.operation, row.threads));
            }
        }
        pairs
    }

    /// The first module against every other, and every module against OpenSSL.
    fn ratios(&self) -> Vec<Ratio> {
        let mut ratios = Vec::new();
        let Some((first, _)) = self.modules.first() else {
            return ratios;
        };
        for (operation, threads) in self.measured_pairs() {
            for (module, _) in &self.modules {
                let Some(rate) = self.rate(operation, threads, module) else {
                    continue;
                };
                let mut push = |versus: &str, base: Option<f64>| {
                    if let Some(base) = base {
                        ratios.push(Ratio {
                            operation,
                            threads,
                            module: module.clone(),
                            versus: versus.to_owned(),
                            ratio: rate / base,
                        });
                    }
                };
                push("openssl", self.openssl_rate(operation, threads));
                if module == first {
                    for (other, _) in self.modules.iter().skip(1) {
                        push(other, self.rate(operation, threads, other));
                    }
                }
            }
        }
        ratios
    }

    pub fn to_json(&self) -> Value {
        let results: Vec<Value> = self
            .rows
            .iter()
            .map(|row| {
                let mut entry = json!({
                    "operation": row.operation.name(),
                    "module": row.module,
                    "threads": row.threads,
                });
                let fields = match &row.outcome {
                    Outcome::Measured {
                        ops_per_sec,
                        p50,
                        p99,
                        repetitions,
                    } => json!({
                        "status": "measured",
                        "ops_per_sec": ops_per_sec,
                        "p50_us": micros(*p50),
                        "p99_us": micros(*p99),
                        "repetitions_ops_per_sec": repetitions,
                    }),
                    Outcome::Unsupported(why) => json!({"status": "unsupported", "reason": why}),
                    Outcome::Failed(why) => json!({"status": "failed", "reason": why}),
                };
                if let (Value::Object(entry), Value::Object(fields)) = (&mut entry, fields) {
                    entry.extend(fields);
                }
                entry
            })
            .collect();
        let openssl: Vec<Value> = self
            .measured_pairs()
            .into_iter()
            .filter_map(|(operation, threads)| {
                let rate = self.openssl_rate(operation, threads)?;
                Some(
                    json!({"operation": operation.name(), "threads": threads, "ops_per_sec": rate}),
                )
            })
            .collect();
        let ratios: Vec<Value> = self
            .ratios()
            .into_iter()
            .map(|r| {
                json!({
                    "operation": r.operation.name(),
                    "threads": r.threads,
                    "module": r.module,
                    "versus": r.versus,
                    "ratio": r.ratio,
                })
            })
            .collect();
        json!({
            "seconds_per_measurement": self.seconds,
            "repetitions": self.repeat,
            "threads": self.thread_counts,
            "modules": self.modules.iter().map(|(name, path)| json!({"name": name, "path": path})).collect::<Vec<_>>(),
            "results": results,
            "openssl": openssl,
            "ratios": ratios,
        })
    }

    /// The table's header and cells: per module ops/s, p50, p99; then the ratios.
    fn table(&self) -> (Vec<String>, Vec<Vec<String>>) {
        let mut header = vec!["operation".to_owned(), "threads".to_owned()];
        for (module, _) in &self.modules {
            header.extend([format!("{module} ops/s"), "p50".into(), "p99".into()]);
        }
        let first = self
            .modules
            .first()
            .map(|(name, _)| name.clone())
            .unwrap_or_default();
        for (other, _) in self.modules.iter().skip(1) {
            header.push(format!("{first}/{other}"));
        }
        if self.openssl.is_some() {
            header.push("openssl ops/s".into());
            for (module, _) in &self.modules {
                header.push(format!("{module}/openssl"));
            }
        }
        let mut cells = Vec::new();
        for (operation, threads) in self.measured_pairs() {
            let mut line = vec![operation.name().to_owned(), threads.to_string()];
            for (module, _) in &self.modules {
                match self.row(operation, threads, module).map(|row| &row.outcome) {
                    Some(Outcome::Measured {
                        ops_per_sec,
                        p50,
                        p99,
                        ..
                    }) => line.extend([rate(*ops_per_sec), latency(*p50), latency(*p99)]),
                    Some(Outcome::Unsupported(_)) => {
                        line.extend(["unsupported".into(), String::new(), String::new()])
                    }
                    Some(Outcome::Failed(_)) | None => {
                        line.extend(["failed".into(), String::new(), String::new()])
                    }
                }
            }
            let ratio_cell = |module: &str, base: Option<f64>| match (
                self.rate(operation, threads, module),
                base,
            ) {
                (Some(rate), Some(base)) => ratio(rate / base),
                _ => String::new(),
            };
            for (other, _) in self.modules.iter().skip(1) {
                line.push(ratio_cell(&first, self.rate(operation, threads, other)));
            }
            if self.openssl.is_some() {
                let base = self.openssl_rate(operation, threads);
                line.push(base.map(rate).unwrap_or_default());
                for (module, _) in &self.modules {
                    line.push(ratio_cell(module, base));
                }
            }
            cells.push(line);
        }
        (header, cells)
    }

    /// Why something was not measured, one line each.
    fn notes(&self) -> Vec<String> {
        self.rows
            .iter()
            .filter_map(|row| {
                let (status, why) = match &row.outcome {
                    Outcome::Unsupported(why) => ("unsupported", why),
                    Outcome::Failed(why) => ("failed", why),
                    Outcome::Measured { .. } => return None,
                };
                Some(format!(
                    "{} on {}, threads={}: {status}: {why}",
                    row.operation.name(),
                    row.module,
                    row.threads
                ))
            })
            .collect()
    }

    fn preamble(&self) -> String {
        format!(
            "{} s per measurement, medians of {} repetition(s); ops/s of wall time over all threads, each with its own session; ratios within this run only",
            self.seconds, self.repeat
        )
    }

    pub fn to_terminal(&self) -> String {
        let (header, cells) = self.table();
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for line in &cells {
            for (width, cell) in widths.iter_mut().zip(line) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let format_line = |line: &[String]| {
            let mut text = String::new();
            for (index, (cell, width)) in line.iter().zip(&widths).enumerate() {
                // Names left-aligned, figures right-aligned.
                if index == 0 {
                    let _ = write!(text, "{cell:<width$}");
                } else {
                    let _ = write!(text, "  {cell:>width$}");
                }
            }
            text.trim_end().to_owned()
        };
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.preamble());
        let _ = writeln!(out, "{}", format_line(&header));
        for line in &cells {
            let _ = writeln!(out, "{}", format_line(line));
        }
        for note in self.notes() {
            let _ = writeln!(out, "  {note}");
        }
        out
    }

    pub fn to_markdown(&self) -> String {
        let (header, cells) = self.table();
        let mut out = String::from("# ferrohsm-bench\n\n");
        for (name, path) in &self.modules {
            let _ = writeln!(out, "- {name}: `{path}`");
        }
        let _ = writeln!(out, "\n{}.\n", self.preamble());
        let _ = writeln!(out, "| {} |", header.join(" | "));
        let _ = writeln!(out, "|{}", "---|".repeat(header.len()));
        for line in &cells {
            let _ = writeln!(out, "| {} |", line.join(" | "));
        }
        let notes = self.notes();
        if !notes.is_empty() {
            out.push_str("\nNot measured:\n\n");
            for note in notes {
                let _ = writeln!(out, "- {note}");
            }
        }
        out.push_str("\n![ops/s per operation](chart.svg)\n");
        out
    }

    /// report.md and chart.svg in `dir` (made if missing). The chart shows the first thread
    /// count, every module and OpenSSL where it has a figure.
    pub fn write_report(&self, dir: &Path) -> Result<(), String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let markdown = dir.join("report.md");
        std::fs::write(&markdown, self.to_markdown())
            .map_err(|e| format!("{}: {e}", markdown.display()))?;
        let threads = self.thread_counts.first().copied().unwrap_or(1);
        let labels: Vec<&str> = self.operations.iter().map(|op| op.name()).collect();
        let mut series: Vec<(String, Vec<Option<f64>>)> = self
            .modules
            .iter()
            .map(|(module, _)| {
                let values = self
                    .operations
                    .iter()
                    .map(|op| self.rate(*op, threads, module));
                (module.clone(), values.collect())
            })
            .collect();
        if self.openssl.is_some() {
            let values = self
                .operations
                .iter()
                .map(|op| self.openssl_rate(*op, threads));
            series.push(("openssl speed".to_owned(), values.collect()));
        }
        let title = format!("ops/s, {threads} thread(s), log scale");
        chart::write_chart(&dir.join("chart.svg"), &title, &labels, &series)
    }
}

fn ratio(value: f64) -> String {
    if value >= 10.0 {
        format!("{value:.0}x")
    } else if value >= 0.1 {
        format!("{value:.2}x")
    } else {
        format!("{value:.3}x")
    }
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

/// ops/s with three significant figures at most and thin grouping: "37 100", "2.94".
fn rate(ops_per_sec: f64) -> String {
    if ops_per_sec >= 1000.0 {
        let digits = ops_per_sec.log10().floor() as i32 + 1;
        let unit = 10f64.powi(digits - 3);
        let rounded = ((ops_per_sec / unit).round() * unit) as u64;
        group_thousands(rounded)
    } else if ops_per_sec >= 100.0 {
        format!("{ops_per_sec:.0}")
    } else if ops_per_sec >= 10.0 {
        format!("{ops_per_sec:.1}")
    } else {
        format!("{ops_per_sec:.2}")
    }
}

fn group_thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(digit);
    }
    out
}

fn latency(duration: Duration) -> String {
    let micros = micros(duration);
    if micros < 1000.0 {
        format!("{micros:.1} us")
    } else if micros < 1e6 {
        format!("{:.2} ms", micros / 1e3)
    } else {
        format!("{:.2} s", micros / 1e6)
    }
}
