//! The agent program: its identity on disk, enrollment, the signed API the server calls,
//! heartbeats, and the command line that ties them together.

pub mod api;
pub mod cli;
pub mod config;
pub mod enroll;
pub mod heartbeat;
pub mod windows_service;

/// This machine's host name, as reported to the server (COMPUTERNAME on Windows, the
/// kernel's name on Linux).
pub fn hostname() -> String {
    if let Ok(name) = std::env::var("COMPUTERNAME") {
        return name;
    }
    if let Ok(name) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        return name.trim().to_owned();
    }
    "unknown".to_owned()
}

/// The operating system, as reported to the server.
pub fn os_description() -> String {
    format!("{} {}", std::env::consts::OS, std::env::consts::ARCH)
}
