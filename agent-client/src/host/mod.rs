//! Host checks and fixes: what the agent reads and changes on the machine it runs on.
//!
//! - [`report`] and [`fix`]: the typed requests, reports, fix records and approvals shared
//!   with the server and the portal (always compiled, serde only).
//! - [`platform`]: the trait through which everything is read and changed, with the
//!   Windows implementation ([`windows`], fixed programs, parsers tested on Linux against
//!   recorded outputs), the Linux one for xrdp hosts ([`linux`]) and a fake ([`fake`]).
//! - [`checks`]: the host checks (feature `checks`).
//! - [`approval`]: signing and verifying downgrade approvals (feature `signing`).
//! - [`fixes`], [`journal`], [`service`]: fixes with snapshot, verification and rollback,
//!   the on-disk journal, approvals, idempotency and auto-revert (feature `agent`).

pub mod fix;
pub mod report;

#[cfg(feature = "signing")]
pub mod approval;

#[cfg(feature = "checks")]
pub mod checks;
#[cfg(feature = "checks")]
pub mod exec;
#[cfg(feature = "checks")]
pub mod fake;
#[cfg(feature = "checks")]
pub mod linux;
#[cfg(feature = "checks")]
pub mod platform;
#[cfg(feature = "checks")]
pub mod windows;

#[cfg(feature = "agent")]
pub mod cli;
#[cfg(feature = "agent")]
pub mod fixes;
#[cfg(feature = "agent")]
pub mod journal;
#[cfg(feature = "agent")]
pub mod service;

/// This machine's name, for matching a certificate's names against it.
#[cfg(feature = "checks")]
pub(crate) fn this_host_name() -> String {
    if let Ok(name) = std::env::var("COMPUTERNAME") {
        return name;
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|n| n.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned())
}
