//! ferrohsm-bench: measures any PKCS#11 module (or several side by side) through its C ABI,
//! as a client does, and prints ops/s and latency p50/p99 per operation.
//!
//! args: the command line; operations: what is measured and its keys; runner: loading the
//! modules and the timed loops; openssl: `openssl speed` beside them; report: the table,
//! JSON and Markdown; chart: the SVG bar chart.

mod args;
mod chart;
mod openssl;
mod operations;
mod report;
mod runner;

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;

use args::Args;
use operations::Operation;

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(error)
            if matches!(
                error.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) =>
        {
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            // clap's message is several lines with usage; one line says what is wrong.
            let rendered = error.to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            eprintln!("ferrohsm-bench: {}", first.trim_start_matches("error: "));
            return ExitCode::FAILURE;
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("ferrohsm-bench: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    if args.ops.iter().any(|op| op == "list") {
        for operation in Operation::ALL {
            println!("{}", operation.name());
        }
        return Ok(());
    }
    let operations = args.operations()?;
    let paths = args.all_modules();
    if paths.is_empty() {
        return Err("no module: give --module PATH or --compare MODULE...".into());
    }
    let names = runner::module_names(&paths);
    let mut modules = Vec::new();
    for (path, name) in paths.iter().zip(names) {
        modules.push(runner::open_module(path, name, args)?);
    }
    let rows = runner::run_all(&mut modules, &operations, args);
    let openssl = if !args.compare.is_empty() && openssl::available() {
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            eprintln!("running openssl speed ...");
        }
        Some(openssl::speed(&operations, &args.threads, args.seconds))
    } else {
        None
    };
    let results = report::Results {
        modules: modules
            .iter()
            .map(|module| (module.name.clone(), module.path.display().to_string()))
            .collect(),
        operations,
        thread_counts: args.threads.clone(),
        rows,
        openssl,
        seconds: args.seconds,
        repeat: args.repeat,
    };
    if args.json {
        let text = serde_json::to_string_pretty(&results.to_json())
            .map_err(|e| format!("JSON output: {e}"))?;
        println!("{text}");
    } else {
        print!("{}", results.to_terminal());
    }
    if let Some(dir) = &args.report {
        results.write_report(dir)?;
    }
    Ok(())
}
