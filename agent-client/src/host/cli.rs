//! The command line of host fixes (`rdp-doctor-agent fix ...`, `rdp-doctor-agent journal`)
//! and the plain-text printing of host check reports and fix records.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Subcommand;

use super::fix::{
    fix_info, ActionRecord, ActionState, ApprovalToken, FixRequest, FixSpec, JournalRequest,
    Requester, RollbackRequest, FIX_CATALOGUE,
};
use super::journal::{dir_for_identity, Journal};
use super::report::HostCheckReport;
use super::service::FixService;
use crate::agent::config::{default_path, Identity};

/// `rdp-doctor-agent fix ...`
#[derive(Debug, Subcommand)]
pub enum FixCommand {
    /// List the fixes with their tier and what each snapshots.
    List,
    /// Apply a fix here (or show what it would change with --dry-run).
    Run {
        /// The fix's id (see `rdp-doctor-agent fix list`).
        id: String,
        /// A fix parameter, KEY=VALUE (repeatable).
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// Only say what would change.
        #[arg(long)]
        dry_run: bool,
        /// The case the fix is for (a downgrade's approval names it).
        #[arg(long = "case")]
        case_id: Option<String>,
        /// The approval token the server issued (downgrades only).
        #[arg(long)]
        approval: Option<String>,
        /// Repeat-safe key; a second run with the same key shows the first run's record.
        #[arg(long)]
        idempotency_key: Option<String>,
        /// The agent identity; the journal lives beside it.
        #[arg(long, env = "RDP_DOCTOR_AGENT_CONFIG")]
        config: Option<PathBuf>,
        /// Print the record as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Undo an applied fix from its snapshot.
    Rollback {
        action_id: String,
        /// Restore the snapshot even if the state changed again since the fix.
        #[arg(long)]
        force: bool,
        #[arg(long, env = "RDP_DOCTOR_AGENT_CONFIG")]
        config: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

/// The fix service for local use: the journal beside the identity, the identity's server
/// key for approvals when there is an identity.
pub fn local_service(config: &Path) -> Result<FixService> {
    let journal = Journal::open(&dir_for_identity(config))
        .with_context(|| format!("cannot open the journal beside {}", config.display()))?;
    let (agent_id, server_key) = match Identity::load(config) {
        Ok(identity) => (identity.agent_id, Some(identity.server_key)),
        Err(_) => ("local".to_owned(), None),
    };
    let platform = super::platform::native(std::time::Duration::from_secs(60));
    Ok(FixService::new(
        Arc::from(platform),
        journal,
        agent_id,
        server_key,
    ))
}

fn parse_params(raw: &[String]) -> Result<std::collections::BTreeMap<String, String>> {
    raw.iter()
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
            _ => bail!("--param takes KEY=VALUE, not {pair:?}"),
        })
        .collect()
}

/// Runs `rdp-doctor-agent fix ...`. Blocking work runs off the async runtime.
pub async fn run_fix_command(command: FixCommand) -> Result<()> {
    match command {
        FixCommand::List => {
            for fix in FIX_CATALOGUE {
                let head = format!(
                    "{} [{}, {}] {}",
                    fix.id,
                    format!("{:?}", fix.tier).to_lowercase(),
                    format!("{:?}", fix.platform).to_lowercase(),
                    fix.parameters
                );
                println!(
                    "{}\n    {}\n    snapshot: {}",
                    head.trim_end(),
                    fix.summary,
                    fix.snapshot
                );
            }
            Ok(())
        }
        FixCommand::Run {
            id,
            params,
            dry_run,
            case_id,
            approval,
            idempotency_key,
            config,
            json,
        } => {
            fix_info(&id).with_context(|| {
                format!("unknown fix {id:?}; `rdp-doctor-agent fix list` lists them")
            })?;
            let fix = FixSpec::from_params(&id, &parse_params(&params)?)
                .map_err(|e| anyhow::anyhow!(e))?;
            let key = idempotency_key.unwrap_or_else(|| {
                let random: String = crate::signing::random_bytes::<8>()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                format!("local-{random}")
            });
            let request = FixRequest {
                idempotency_key: key,
                case_id,
                fix,
                dry_run,
                approval: approval.map(ApprovalToken),
            };
            let config = config.unwrap_or_else(default_path);
            let response = tokio::task::spawn_blocking(move || {
                local_service(&config)?
                    .run(request, Requester::Local)
                    .map_err(anyhow::Error::from)
            })
            .await??;
            if json {
                println!("{}", serde_json::to_string_pretty(&response)?);
            } else {
                if response.repeated {
                    println!("(this idempotency key was used before: the earlier record follows)");
                }
                print_action(&response.action);
            }
            finish(&response.action)
        }
        FixCommand::Rollback {
            action_id,
            force,
            config,
            json,
        } => {
            let config = config.unwrap_or_else(default_path);
            let record = tokio::task::spawn_blocking(move || {
                local_service(&config)?
                    .rollback(RollbackRequest { action_id, force }, Requester::Local)
                    .map_err(anyhow::Error::from)
            })
            .await??;
            if json {
                println!("{}", serde_json::to_string_pretty(&record)?);
            } else {
                print_action(&record);
            }
            finish(&record)
        }
    }
}

/// Runs `rdp-doctor-agent journal`.
pub async fn run_journal_command(config: Option<PathBuf>, json: bool) -> Result<()> {
    let config = config.unwrap_or_else(default_path);
    let journal = tokio::task::spawn_blocking(move || {
        local_service(&config)?
            .list(&JournalRequest::default())
            .map_err(anyhow::Error::from)
    })
    .await??;
    if json {
        println!("{}", serde_json::to_string_pretty(&journal)?);
    } else if journal.actions.is_empty() {
        println!("no fix actions yet");
    } else {
        for action in &journal.actions {
            println!(
                "{}  {:<34} {:<9} {}",
                action.action_id,
                action.fix.id(),
                format!("{:?}", action.tier).to_lowercase(),
                state_line(&action.state)
            );
        }
    }
    Ok(())
}

/// A failed or refused action makes the command fail, after printing it.
fn finish(record: &ActionRecord) -> Result<()> {
    match &record.state {
        ActionState::Refused { reason } => bail!("refused: {reason}"),
        ActionState::Failed { error, .. } => bail!("failed: {error}"),
        ActionState::RollbackFailed { error, .. } => bail!("rollback failed: {error}"),
        _ => Ok(()),
    }
}

fn state_line(state: &ActionState) -> String {
    match state {
        ActionState::DryRun => "dry run (nothing changed)".to_owned(),
        ActionState::Refused { reason } => format!("refused: {reason}"),
        ActionState::AlreadyInPlace => "already in place (nothing changed)".to_owned(),
        ActionState::Applying => "interrupted while applying (roll back to restore)".to_owned(),
        ActionState::Applied => "applied and verified".to_owned(),
        ActionState::Failed { error, rolled_back } => {
            format!(
                "failed ({}): {error}",
                if *rolled_back {
                    "rolled back"
                } else {
                    "NOT rolled back"
                }
            )
        }
        ActionState::RolledBack { by, .. } => format!("rolled back by {by:?}"),
        ActionState::AutoReverted { .. } => {
            "reverted by the agent when its approval expired".to_owned()
        }
        ActionState::RollbackFailed { error, .. } => format!("rollback failed: {error}"),
    }
}

/// A fix record for a person.
pub fn print_action(record: &ActionRecord) {
    println!(
        "{} {} ({:?}) - {}",
        record.action_id,
        record.fix.id(),
        record.tier,
        state_line(&record.state)
    );
    for change in &record.plan {
        println!("  {}: {} -> {}", change.target, change.from, change.to);
    }
    if let Some(verification) = &record.verification {
        println!("  verified: {verification}");
    }
    if let Some(at) = record.revert_at {
        println!("  reverted automatically at {at} (Unix time)");
    }
}

/// A host check report for a person.
pub fn print_host_report(report: &HostCheckReport) {
    let summary = report.summary();
    println!(
        "{}: {} (confidence {:?})",
        summary.check,
        summary.outcome.as_deref().unwrap_or("no outcome"),
        summary.confidence
    );
    if let Some(error) = summary.error {
        println!("  could not run ({:?}): {}", error.kind, error.message);
    }
    for finding in summary.findings {
        println!("  - {finding}");
    }
}
