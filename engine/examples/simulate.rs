//! Runs the engine benchmark: `cargo run --release -p engine --example simulate -- --n 10000
//! --seed 1 --slip 0.1 [--dont-know D] [--learn-from M] [--model FILE] [--never-run CHECK,...]
//! [--checks parallel|on-request] [--json]`.
//!
//! The server's `rdp-doctor model simulate` calls the same function; this example exists so
//! that the benchmark runs without building the server.

use std::path::PathBuf;
use std::process::ExitCode;

use engine::cli::{simulate, CliError, SimulateOptions};

fn main() -> ExitCode {
    let outcome = parse(std::env::args().skip(1))
        .and_then(|options| simulate(&options, &mut std::io::stdout().lock()));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<SimulateOptions, CliError> {
    let mut options = SimulateOptions::default();
    while let Some(flag) = args.next() {
        if flag == "--json" {
            options.json = true;
            continue;
        }
        let value = args
            .next()
            .ok_or_else(|| CliError(format!("{flag} needs a value")))?;
        let number = |what: &str| CliError(format!("{flag} expects {what}, got `{value}`"));
        match flag.as_str() {
            "--n" => options.n = value.parse().map_err(|_| number("a count"))?,
            "--seed" => options.seed = value.parse().map_err(|_| number("an integer"))?,
            "--slip" => options.slip = Some(value.parse().map_err(|_| number("a probability"))?),
            "--dont-know" => {
                options.dont_know = Some(value.parse().map_err(|_| number("a probability"))?)
            }
            "--learn-from" => {
                options.learn_from = Some(value.parse().map_err(|_| number("a count"))?)
            }
            "--model" => options.model = Some(PathBuf::from(value)),
            "--checks" => options.checks = value.parse().map_err(CliError)?,
            "--never-run" => {
                options.never_run = value.split(',').map(|id| id.trim().to_owned()).collect()
            }
            _ => return Err(CliError(format!("unknown option {flag}"))),
        }
    }
    Ok(options)
}
