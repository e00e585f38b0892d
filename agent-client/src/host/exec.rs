//! Running a fixed program with typed arguments: never a shell, never a command string. A
//! [`CommandLine`] is a program, a list of arguments and extra environment variables, each
//! passed to the operating system as it is; [`CommandRunner`] runs one with a time limit.
//! Tests substitute a runner that answers with recorded outputs.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A program and its arguments, exactly as they will be passed to the operating system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    pub program: String,
    pub args: Vec<String>,
    /// Extra environment variables: how values reach a fixed PowerShell script without ever
    /// becoming part of its text.
    pub env: Vec<(String, String)>,
    /// The program starts a daemon: its standard streams go to /dev/null and only the
    /// program's own exit is awaited.
    pub detach: bool,
}

impl CommandLine {
    pub fn new(program: &str, args: &[&str]) -> Self {
        CommandLine {
            program: program.to_owned(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            env: Vec::new(),
            detach: false,
        }
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn env(mut self, name: &str, value: impl Into<String>) -> Self {
        self.env.push((name.to_owned(), value.into()));
        self
    }

    /// The arguments after the program, joined with spaces, for logs and test matching
    /// only (never executed as a string).
    pub fn display(&self) -> String {
        let mut out = self.program.clone();
        for arg in &self.args {
            out.push(' ');
            out.push_str(arg);
        }
        out
    }
}

/// What a program printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProgramOutput {
    /// The exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl ProgramOutput {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    pub fn ok(stdout: &str) -> Self {
        ProgramOutput {
            code: Some(0),
            stdout: stdout.to_owned(),
            stderr: String::new(),
        }
    }

    pub fn failed(code: i32, stdout: &str, stderr: &str) -> Self {
        ProgramOutput {
            code: Some(code),
            stdout: stdout.to_owned(),
            stderr: stderr.to_owned(),
        }
    }
}

/// Why a program could not be run to the end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    #[error("{program} could not be started: {reason}")]
    NotStarted { program: String, reason: String },
    #[error("{program} did not finish within {timeout:?} and was stopped")]
    TimedOut { program: String, timeout: Duration },
}

/// Runs command lines. The real one is [`SystemRunner`]; tests answer from recordings.
pub trait CommandRunner: Send + Sync {
    fn run(&self, command: &CommandLine, timeout: Duration) -> Result<ProgramOutput, ExecError>;
}

/// Runs programs on this machine with `std::process`, killing them at the time limit.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemRunner;

impl CommandRunner for SystemRunner {
    fn run(&self, command: &CommandLine, timeout: Duration) -> Result<ProgramOutput, ExecError> {
        let mut cmd = Command::new(&command.program);
        cmd.args(&command.args).stdin(Stdio::null());
        for (name, value) in &command.env {
            cmd.env(name, value);
        }
        if command.detach {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        } else {
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        let mut child = cmd.spawn().map_err(|e| ExecError::NotStarted {
            program: command.program.clone(),
            reason: e.to_string(),
        })?;
        // Read both pipes on their own threads so a chatty program cannot fill a pipe and
        // stall while this thread waits for it to exit.
        let reader = |pipe: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                if let Some(mut pipe) = pipe {
                    let _ = pipe.read_to_end(&mut bytes);
                }
                bytes
            })
        };
        let stdout = reader(
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let stderr = reader(
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if started.elapsed() >= timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(ExecError::TimedOut {
                        program: command.program.clone(),
                        timeout,
                    });
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => {
                    return Err(ExecError::NotStarted {
                        program: command.program.clone(),
                        reason: e.to_string(),
                    })
                }
            }
        };
        let text = |handle: std::thread::JoinHandle<Vec<u8>>| {
            String::from_utf8_lossy(&handle.join().unwrap_or_default()).into_owned()
        };
        Ok(ProgramOutput {
            code: status.code(),
            stdout: text(stdout),
            stderr: text(stderr),
        })
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn arguments_reach_the_program_verbatim_without_a_shell() {
        let tricky = "a b; echo injected $(id) `id` | cat";
        let out = SystemRunner
            .run(
                &CommandLine::new("printf", &["%s"]).arg(tricky),
                Duration::from_secs(5),
            )
            .unwrap();
        assert!(out.success());
        assert_eq!(out.stdout, tricky);
    }

    #[test]
    fn environment_values_reach_the_program() {
        let out = SystemRunner
            .run(
                &CommandLine::new("printenv", &["RDPD_TEST_VALUE"])
                    .env("RDPD_TEST_VALUE", "x'y\"z"),
                Duration::from_secs(5),
            )
            .unwrap();
        assert_eq!(out.stdout.trim_end(), "x'y\"z");
    }

    #[test]
    fn a_program_past_its_time_limit_is_stopped() {
        let started = Instant::now();
        let err = SystemRunner
            .run(
                &CommandLine::new("sleep", &["10"]),
                Duration::from_millis(200),
            )
            .unwrap_err();
        assert!(matches!(err, ExecError::TimedOut { .. }));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_missing_program_is_an_error_not_a_panic() {
        let err = SystemRunner
            .run(
                &CommandLine::new("/nonexistent/rdpd-program", &[]),
                Duration::from_secs(1),
            )
            .unwrap_err();
        assert!(matches!(err, ExecError::NotStarted { .. }));
    }
}
