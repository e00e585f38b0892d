//! The allowlisted checks. Each one is a typed function; [`run`] is the only way in.

pub mod rdp;
pub mod tcp_connect;

use crate::wire::{CheckReport, CheckSpec};

/// Runs one check and reports what it observed. Checks never fail as a whole: what went
/// wrong (a name that does not resolve, a port that does not answer) is part of the report.
pub async fn run(spec: &CheckSpec) -> CheckReport {
    match spec {
        CheckSpec::TcpConnect { target, timeout_ms } => CheckReport::TcpConnect(
            tcp_connect::run(
                target,
                std::time::Duration::from_millis(u64::from(*timeout_ms)),
            )
            .await,
        ),
    }
}

/// Milliseconds with a tenth of a millisecond kept, as reports show them.
pub(crate) fn elapsed_ms(since: std::time::Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 10_000.0).round() / 10.0
}
