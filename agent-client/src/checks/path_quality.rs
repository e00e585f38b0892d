//! `path-quality`: is the path to the host's Remote Desktop port losing packets? A series of
//! TCP connections spread over a window (30 connections in 30 seconds unless asked
//! otherwise), each timed. On a clean path every connection takes about one round trip; a
//! lost SYN or SYN-ACK is sent again only after the retransmission timeout (at least one
//! second, RFC 6298), so a connection that takes that much longer than the fastest one, or
//! one that gets no answer while others do, is loss on the path (the cause `vpn-unstable`: a tunnel that drops or
//! reconnects).
//!
//! Each connection is closed as soon as it is made, before any Remote Desktop byte is sent.
//! Large packets being dropped (an MTU black hole) is not measured: a connection carries
//! only small packets.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::elapsed_ms;
use super::tcp_connect::{connect, resolve};
use crate::target::CheckTarget;
use crate::wire::{ConnectAttempt, PathQualityReport, PathVerdict, PortState};

/// The most connections one run makes, and the longest window, whatever is asked.
pub const MAX_PROBES: u32 = 120;
pub const MAX_DURATION_MS: u32 = 120_000;

/// A connection counts as retransmitted when it takes this much longer than the fastest one
/// (the path's round trip): the smallest retransmission timeout (one second) less a margin.
/// Judging against the fastest and not the median keeps a path that loses more than half
/// its handshakes from looking normal.
const RETRANSMISSION_MS: f64 = 900.0;

/// Runs `path-quality`: `probes` connections to `target` started evenly over `duration_ms`,
/// each allowed `timeout`. Asks beyond [`MAX_PROBES`] or [`MAX_DURATION_MS`] are capped.
pub async fn run(
    target: &CheckTarget,
    timeout: Duration,
    duration_ms: u32,
    probes: u32,
) -> PathQualityReport {
    let started = Instant::now();
    let probes = probes.clamp(1, MAX_PROBES);
    let duration = Duration::from_millis(u64::from(duration_ms.min(MAX_DURATION_MS)));
    let resolution = resolve(&target.host, timeout).await;
    let mut report = PathQualityReport {
        target: target.clone(),
        resolution_error: resolution.error.clone(),
        address: None,
        attempts: Vec::new(),
        median_ms: None,
        retransmitted: 0,
        lost: 0,
        verdict: PathVerdict::NotResolved,
        elapsed_ms: 0.0,
    };
    let Some(ip) = resolution.addresses.first().copied() else {
        report.elapsed_ms = elapsed_ms(started);
        return report;
    };
    let address = SocketAddr::new(ip, target.port);
    report.address = Some(address);
    // Each connection starts on its own schedule, whatever the earlier ones are waiting for,
    // so a run takes the window plus one timeout at most, even on a path that carries nothing.
    let interval = duration / probes;
    let first = tokio::time::Instant::now();
    let mut running = tokio::task::JoinSet::new();
    for n in 0..probes {
        running.spawn(async move {
            tokio::time::sleep_until(first + interval * n).await;
            (n, connect(address, timeout).await)
        });
    }
    let mut attempts: Vec<(u32, ConnectAttempt)> = running.join_all().await;
    attempts.sort_by_key(|(n, _)| *n);
    report.attempts = attempts.into_iter().map(|(_, attempt)| attempt).collect();
    let judged = judge(&report.attempts);
    report.median_ms = judged.median_ms;
    report.retransmitted = judged.retransmitted;
    report.lost = judged.lost;
    report.verdict = judged.verdict;
    report.elapsed_ms = elapsed_ms(started);
    report
}

/// What a series of connections says about the path.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    pub median_ms: Option<f64>,
    pub retransmitted: u32,
    pub lost: u32,
    pub verdict: PathVerdict,
}

/// Judges a series: with no connection made the path cannot be judged (`unreachable`);
/// otherwise any connection that took a retransmission, or got no answer while others
/// were answered, makes it `lossy`. A refused connection is the host's answer, not loss.
pub fn judge(attempts: &[ConnectAttempt]) -> Judged {
    let mut open: Vec<f64> = attempts
        .iter()
        .filter(|a| a.state == PortState::Open)
        .map(|a| a.elapsed_ms)
        .collect();
    open.sort_by(f64::total_cmp);
    let Some(median) = open.get(open.len() / 2).copied() else {
        return Judged {
            median_ms: None,
            retransmitted: 0,
            lost: 0,
            verdict: PathVerdict::Unreachable,
        };
    };
    let slow_after = open[0] + RETRANSMISSION_MS;
    let retransmitted = open.iter().filter(|ms| **ms >= slow_after).count() as u32;
    let lost = attempts
        .iter()
        .filter(|a| {
            matches!(
                a.state,
                PortState::NoAnswer | PortState::Unreachable | PortState::Error
            )
        })
        .count() as u32;
    Judged {
        median_ms: Some(median),
        retransmitted,
        lost,
        verdict: if retransmitted + lost > 0 {
            PathVerdict::Lossy
        } else {
            PathVerdict::Stable
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(state: PortState, elapsed_ms: f64) -> ConnectAttempt {
        ConnectAttempt {
            address: "192.0.2.1:3389".parse().unwrap(),
            state,
            elapsed_ms,
            detail: None,
        }
    }

    #[test]
    fn a_retransmitted_or_unanswered_connection_is_loss_and_a_refusal_is_not() {
        let quick = |ms| attempt(PortState::Open, ms);
        let clean = [quick(0.4), quick(0.5), quick(0.3)];
        assert_eq!(judge(&clean).verdict, PathVerdict::Stable);
        assert_eq!(judge(&clean).median_ms, Some(0.4));

        let retransmitted = [quick(0.4), quick(1003.0), quick(0.3)];
        let judged = judge(&retransmitted);
        assert_eq!(
            (judged.verdict, judged.retransmitted),
            (PathVerdict::Lossy, 1)
        );

        let unanswered = [quick(0.4), attempt(PortState::NoAnswer, 3000.0)];
        let judged = judge(&unanswered);
        assert_eq!((judged.verdict, judged.lost), (PathVerdict::Lossy, 1));

        let refused = [quick(0.4), attempt(PortState::Refused, 0.2)];
        assert_eq!(judge(&refused).verdict, PathVerdict::Stable);

        let nothing = [attempt(PortState::NoAnswer, 3000.0)];
        assert_eq!(judge(&nothing).verdict, PathVerdict::Unreachable);
    }

    #[test]
    fn a_long_path_is_judged_against_its_own_round_trip() {
        // A satellite link: 600 ms is its round trip, not a retransmission.
        let slow_path: Vec<_> = [600.0, 620.0, 610.0, 640.0]
            .into_iter()
            .map(|ms| attempt(PortState::Open, ms))
            .collect();
        assert_eq!(judge(&slow_path).verdict, PathVerdict::Stable);
        let mut with_loss = slow_path.clone();
        with_loss.push(attempt(PortState::Open, 1600.0));
        assert_eq!(judge(&with_loss).verdict, PathVerdict::Lossy);
    }

    #[test]
    fn a_path_that_loses_most_handshakes_is_still_lossy() {
        // More than half the connections retransmitted: the median is one of them.
        let mostly_lost: Vec<_> = [0.3, 1023.0, 1024.0, 0.2, 2048.0]
            .into_iter()
            .map(|ms| attempt(PortState::Open, ms))
            .collect();
        let judged = judge(&mostly_lost);
        assert_eq!(judged.median_ms, Some(1023.0));
        assert_eq!(
            (judged.verdict, judged.retransmitted),
            (PathVerdict::Lossy, 3)
        );
    }
}
