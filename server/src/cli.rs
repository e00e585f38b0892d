//! The `rdp-doctor` command line: `serve`, the administrator's `token create` and
//! `helpdesk add|revoke`, and the knowledge engineer's `model check|replay|simulate`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::config::{ServeArgs, StorageArgs};

/// RDP Doctor: self-service diagnosis of Remote Desktop error 0x904.
#[derive(Debug, Parser)]
#[command(name = "rdp-doctor", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the portal and the agent API until SIGINT or SIGTERM.
    Serve(ServeArgs),
    /// Manage agent enrollment tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Validate, replay or simulate a diagnosis knowledge model.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Manage helpdesk accounts (they approve downgrades).
    #[command(subcommand)]
    Helpdesk(HelpdeskCommand),
}

#[derive(Debug, Subcommand)]
pub enum HelpdeskCommand {
    /// Create an account, or give an existing one a new token; prints the token (shown only
    /// this once).
    Add {
        #[command(flatten)]
        storage: StorageArgs,
        /// 1 to 64 letters, digits, '.', '_', '@' or '-'.
        name: String,
    },
    /// Revoke an account's token.
    Revoke {
        #[command(flatten)]
        storage: StorageArgs,
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Validate a model: every problem with its location; non-zero exit if any.
    Check {
        /// The model file [default: the model the server ships with].
        file: Option<PathBuf>,
    },
    /// Replay recorded cases against a model: questions asked, final ranking, fix order.
    Replay {
        /// The model file [default: the model the server ships with].
        #[arg(long)]
        model: Option<PathBuf>,
        /// JSON Lines, one case per line (`-` for standard input).
        #[arg(long)]
        cases: PathBuf,
        /// Stop asking once the top cause reaches this probability.
        #[arg(long, value_parser = parse_probability)]
        stop: Option<f64>,
        /// Ask at most this many questions per case.
        #[arg(long)]
        max_questions: Option<usize>,
        /// When the cases' check outcomes reach the engine: `parallel` (as the deployment
        /// records them, each once its result is in) or `on-request`.
        #[arg(long, default_value = "parallel", value_parser = parse_checks_arrive)]
        checks: engine::ChecksArrive,
    },
    /// Sample cases from a model and measure the engine: accuracy, questions, repair cost,
    /// calibration, latency.
    Simulate {
        /// The model file [default: the model the server ships with].
        #[arg(long)]
        model: Option<PathBuf>,
        /// Number of simulated cases.
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
        n: u64,
        /// Random seed: the same seed gives the same figures.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Probability that an answer is a slip (the wrong answer).
        #[arg(long, value_parser = parse_rate)]
        slip: Option<f64>,
        /// Probability that an employee answers "I don't know".
        #[arg(long, value_parser = parse_rate)]
        dont_know: Option<f64>,
        /// Learn the parameters from this many simulated resolved cases first.
        #[arg(long)]
        learn_from: Option<usize>,
        /// Checks that never run (nothing performs them yet), comma-separated: every case
        /// takes them as not run, so the figures show what the deployment can reach.
        #[arg(long, value_name = "CHECK,...", value_delimiter = ',')]
        never_run: Vec<String>,
        /// When check results reach the engine: `parallel` (as the deployment runs them, every
        /// check from the case's start) or `on-request` (only when the engine asks).
        #[arg(long, default_value = "parallel", value_parser = parse_checks_arrive)]
        checks: engine::ChecksArrive,
        /// Print one JSON object instead of the table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an enrollment token and print it (it is shown only this once).
    Create {
        #[command(flatten)]
        storage: StorageArgs,
        /// How long the token stays valid, e.g. 30m, 24h, 7d.
        #[arg(long, default_value = "24h", value_parser = parse_duration)]
        expires_in: Duration,
        /// How many agents may enroll with it.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        uses: u32,
    },
}

/// Parses the command line; on a usage error prints one line and returns the exit code.
pub fn parse() -> Result<Cli, ExitCode> {
    match Cli::try_parse() {
        Ok(cli) => Ok(cli),
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            Err(ExitCode::SUCCESS)
        }
        Err(e) => {
            let rendered = e.render().to_string();
            eprintln!(
                "{}",
                rendered
                    .lines()
                    .next()
                    .unwrap_or("error: invalid arguments")
            );
            Err(ExitCode::from(2))
        }
    }
}

/// Runs a parsed command.
pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve(args) => {
            crate::telemetry::init(args.log_format);
            crate::startup::serve(args).await
        }
        Command::Token(TokenCommand::Create {
            storage,
            expires_in,
            uses,
        }) => {
            crate::telemetry::init_quiet();
            let db =
                crate::db::Database::open(&storage, crate::embedded_pg::Ownership::Guest).await?;
            let created = crate::enrollment::create_token(db.pool(), expires_in, uses).await;
            db.close().await;
            let token = created?;
            println!("{}", token.token);
            eprintln!(
                "enrollment token valid until {} for {} enrollment(s); shown only now",
                token.expires_at.to_rfc3339(),
                uses
            );
            Ok(())
        }
        Command::Model(command) => run_model_command(command),
        Command::Helpdesk(command) => run_helpdesk_command(command).await,
    }
}

async fn run_helpdesk_command(command: HelpdeskCommand) -> Result<()> {
    let (HelpdeskCommand::Add { storage, name } | HelpdeskCommand::Revoke { storage, name }) =
        &command;
    // Refuse a bad name before touching the database.
    anyhow::ensure!(
        crate::helpdesk::valid_name(name),
        "{name:?} is not a valid account name: use 1 to 64 letters, digits, '.', '_', '@' or '-'"
    );
    crate::telemetry::init_quiet();
    let db = crate::db::Database::open(storage, crate::embedded_pg::Ownership::Guest).await?;
    let result = match &command {
        HelpdeskCommand::Add { name, .. } => crate::helpdesk::add_account(db.pool(), name)
            .await
            .map(|token| {
                println!("{token}");
                eprintln!("helpdesk account {name}: token shown only now");
            }),
        HelpdeskCommand::Revoke { name, .. } => {
            match crate::helpdesk::revoke_account(db.pool(), name).await {
                Ok(true) => {
                    eprintln!("helpdesk account {name}: token revoked");
                    Ok(())
                }
                Ok(false) => Err(anyhow::anyhow!(
                    "no helpdesk account {name:?} with a valid token"
                )),
                Err(e) => Err(e.into()),
            }
        }
    };
    db.close().await;
    result
}

fn run_model_command(command: ModelCommand) -> Result<()> {
    use engine::cli::{
        check_model, replay, simulate, CheckOptions, ReplayOptions, SimulateOptions,
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match command {
        ModelCommand::Check { file } => check_model(&CheckOptions { model: file }, &mut out)?,
        ModelCommand::Replay {
            model,
            cases,
            stop,
            max_questions,
            checks,
        } => {
            let options = ReplayOptions {
                model,
                stop,
                max_questions,
                checks,
            };
            if cases.as_os_str() == "-" {
                replay(&options, std::io::stdin().lock(), &mut out)?;
            } else {
                let file = std::fs::File::open(&cases)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", cases.display()))?;
                replay(&options, std::io::BufReader::new(file), &mut out)?;
            }
        }
        ModelCommand::Simulate {
            model,
            n,
            seed,
            slip,
            dont_know,
            learn_from,
            never_run,
            checks,
            json,
        } => {
            let options = SimulateOptions {
                model,
                n: usize::try_from(n)?,
                seed,
                slip,
                dont_know,
                learn_from,
                never_run,
                checks,
                json,
            };
            simulate(&options, &mut out)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// `parallel` or `on-request`.
fn parse_checks_arrive(raw: &str) -> Result<engine::ChecksArrive, String> {
    raw.parse()
}

/// A probability strictly between 0 and 1.
fn parse_probability(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(p) if p > 0.0 && p < 1.0 => Ok(p),
        _ => Err(format!("{raw:?} must be a number strictly between 0 and 1")),
    }
}

/// A rate from 0 up to (not including) 0.5.
fn parse_rate(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(p) if (0.0..0.5).contains(&p) => Ok(p),
        _ => Err(format!("{raw:?} must be a number from 0 up to 0.5")),
    }
}

/// Reads `90s`, `30m`, `24h` or `7d`.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{raw:?} is not a duration such as 30m, 24h or 7d"))?;
    let seconds = match unit {
        "s" => number,
        "m" => number * 60,
        "h" | "" => number * 3600,
        "d" => number * 86_400,
        _ => return Err(format!("{raw:?} has an unknown unit; use s, m, h or d")),
    };
    if seconds == 0 || seconds > 365 * 86_400 {
        return Err(format!("{raw:?} must be between 1 second and 365 days"));
    }
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_with_their_units() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert!(parse_duration("0h").is_err());
        assert!(parse_duration("ten minutes").is_err());
        assert!(parse_duration("5w").is_err());
        assert!(parse_duration("400d").is_err());
    }

    #[test]
    fn the_checks_that_never_run_are_a_comma_separated_list() {
        let cli = Cli::try_parse_from([
            "rdp-doctor",
            "model",
            "simulate",
            "--never-run",
            "gateway-probe,vpn-tunnel-events",
        ])
        .unwrap();
        let Command::Model(ModelCommand::Simulate { never_run, .. }) = cli.command else {
            panic!("not model simulate");
        };
        assert_eq!(never_run, ["gateway-probe", "vpn-tunnel-events"]);
    }

    #[test]
    fn checks_arrive_in_parallel_unless_asked_otherwise() {
        let checks_of = |extra: &[&str]| {
            let args = ["rdp-doctor", "model", "simulate"].iter().chain(extra);
            match Cli::try_parse_from(args).map(|cli| cli.command) {
                Ok(Command::Model(ModelCommand::Simulate { checks, .. })) => Ok(checks),
                Ok(_) => panic!("not model simulate"),
                Err(e) => Err(e.to_string()),
            }
        };
        assert_eq!(checks_of(&[]), Ok(engine::ChecksArrive::Parallel));
        assert_eq!(
            checks_of(&["--checks", "on-request"]),
            Ok(engine::ChecksArrive::OnRequest)
        );
        let refused = checks_of(&["--checks", "later"]).unwrap_err();
        assert!(
            refused.contains("--checks takes `parallel` or `on-request`, got `later`"),
            "{refused}"
        );
    }
}
