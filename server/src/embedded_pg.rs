//! A private PostgreSQL cluster owned by this process: created with the system's `initdb` on
//! first use, started as a child process, reachable only through a Unix socket in its own
//! 0700 data directory, and stopped with the server.
//!
//! PostgreSQL refuses to run as root, so when the server is root the cluster runs as an
//! unprivileged account (`postgres` when it exists, else `nobody`). The child is started with
//! `setpriv --pdeathsig`, from a thread that lives as long as the process, so even a server
//! killed with SIGKILL does not leave a PostgreSQL behind.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

/// The database the server uses inside its private cluster.
pub const DATABASE_NAME: &str = "rdp_doctor";

/// The account the cluster runs as, when the server itself runs as root.
#[derive(Debug, Clone)]
struct OsUser {
    name: String,
    uid: u32,
    gid: u32,
}

/// A running private cluster.
#[derive(Debug)]
pub struct PrivatePostgres {
    data_dir: PathBuf,
    run_as: Option<OsUser>,
    /// The PostgreSQL role to connect as (the account that ran initdb).
    role: String,
    /// Our child, unless we adopted a cluster that was already running.
    child: std::sync::Mutex<Option<Child>>,
}

/// Whether closing the database should stop a cluster this process did not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// The server: it stops the cluster when it stops, even one it adopted.
    Owner,
    /// A one-shot command: it stops only a cluster it started itself.
    Guest,
}

impl PrivatePostgres {
    /// Creates the cluster under `dir` if needed and starts it (or adopts it if it is
    /// already running). Blocking: call it from `spawn_blocking` in async code.
    pub fn start(dir: &Path) -> Result<Self> {
        let run_as = if process_is_root() {
            Some(unprivileged_user()?)
        } else {
            None
        };
        let role = match &run_as {
            Some(user) => user.name.clone(),
            None => current_user_name(),
        };
        fs::create_dir_all(dir).with_context(|| format!("Failed to create {}", dir.display()))?;
        let data_dir = fs::canonicalize(dir)?;
        if let Some(user) = &run_as {
            std::os::unix::fs::chown(&data_dir, Some(user.uid), Some(user.gid)).with_context(
                || format!("Failed to hand {} to {}", data_dir.display(), user.name),
            )?;
            if !run_as_user(user, "test", &["-r".as_ref(), data_dir.as_os_str()])?.success() {
                bail!(
                    "PostgreSQL runs as the unprivileged user {}, which cannot enter {}; \
                     choose a state directory it can reach (e.g. under /var/lib or /tmp)",
                    user.name,
                    data_dir.display()
                );
            }
        }
        fs::set_permissions(&data_dir, fs::Permissions::from_mode(0o700))?;
        let pg = PrivatePostgres {
            data_dir,
            run_as,
            role,
            child: std::sync::Mutex::new(None),
        };
        if !pg.data_dir.join("PG_VERSION").exists() {
            pg.initdb()?;
        }
        if pg.is_running() {
            tracing::info!(data_dir = %pg.data_dir.display(), "adopting the private PostgreSQL that is already running");
        }
        pg.wait_until_ready(Duration::from_secs(60))?;
        Ok(pg)
    }

    /// Connection options for `database` over the cluster's Unix socket.
    pub fn connect_options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(&self.data_dir)
            .username(&self.role)
            .database(database)
    }

    /// Creates `database` unless it exists.
    pub async fn ensure_database(&self, database: &str) -> Result<()> {
        let mut conn = self.connect_options("postgres").connect().await?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(database)
                .fetch_one(&mut conn)
                .await?;
        if !exists {
            // Identifiers cannot be bound as parameters; the names used here are ours, and
            // quoting keeps them literal.
            sqlx::query(&format!(
                "CREATE DATABASE \"{}\"",
                database.replace('"', "\"\"")
            ))
            .execute(&mut conn)
            .await
            .with_context(|| format!("Failed to create the database {database}"))?;
        }
        conn.close().await?;
        Ok(())
    }

    /// Whether this process started the cluster (rather than adopting a running one).
    pub fn started_here(&self) -> bool {
        self.child
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Stops the cluster (fast shutdown: open sessions are ended, data is flushed).
    pub fn stop(&self) -> Result<()> {
        let status = self
            .pg_command("pg_ctl")?
            .args(["stop", "-w", "-m", "fast", "-D"])
            .arg(&self.data_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("Failed to run pg_ctl stop")?;
        if let Some(mut child) = self.child.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = child.wait();
        }
        if !status.success() && self.is_running() {
            bail!(
                "pg_ctl could not stop the private PostgreSQL in {}",
                self.data_dir.display()
            );
        }
        Ok(())
    }

    fn initdb(&self) -> Result<()> {
        tracing::info!(data_dir = %self.data_dir.display(), "creating a private PostgreSQL cluster");
        let output = self
            .pg_command("initdb")?
            .args([
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--username",
            ])
            .arg(&self.role)
            .arg("-D")
            .arg(&self.data_dir)
            .output()
            .context("Failed to run initdb")?;
        if !output.status.success() {
            bail!(
                "initdb failed: {}",
                String::from_utf8_lossy(&output.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            );
        }
        Ok(())
    }

    fn is_running(&self) -> bool {
        self.pg_command("pg_ctl")
            .and_then(|mut cmd| {
                Ok(cmd
                    .arg("status")
                    .arg("-D")
                    .arg(&self.data_dir)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()?)
            })
            .is_ok_and(|s| s.success())
    }

    fn spawn_postmaster(&self) -> Result<()> {
        let postgres = find_pg_binary("postgres")?;
        let log_path = self.data_dir.join("server.log");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        if let Some(user) = &self.run_as {
            std::os::unix::fs::chown(&log_path, Some(user.uid), Some(user.gid))?;
        }
        let mut cmd = Command::new("setpriv");
        if let Some(user) = &self.run_as {
            cmd.arg(format!("--reuid={}", user.uid))
                .arg(format!("--regid={}", user.gid))
                .arg("--clear-groups");
        }
        // SIGINT is PostgreSQL's fast shutdown: end the sessions, checkpoint, exit.
        cmd.args(["--pdeathsig", "INT", "--"])
            .arg(postgres)
            .arg("-D")
            .arg(&self.data_dir)
            .arg("-k")
            .arg(&self.data_dir)
            .args([
                "-c",
                "listen_addresses=",
                "-c",
                "unix_socket_permissions=0700",
            ])
            .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // fsync is off because this cluster serves a single node's tool, and cases are cheap
        // to recreate; an operator who needs durability points DATABASE_URL at a real server.
        let (sender, receiver) = std::sync::mpsc::channel();
        // PR_SET_PDEATHSIG fires when the *thread* that forked exits, so fork from a thread
        // that never ends.
        std::thread::Builder::new()
            .name("postgres-parent".into())
            .spawn(move || {
                let _ = sender.send(cmd.spawn());
                loop {
                    std::thread::park();
                }
            })?;
        let child = receiver
            .recv()
            .context("the PostgreSQL launcher thread died")?
            .context("Failed to start postgres (is setpriv from util-linux installed?)")?;
        *self.child.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
        Ok(())
    }

    /// Waits until the cluster accepts connections, starting it when nothing runs (a cluster
    /// we adopted may be one that is shutting down: then we start it again).
    fn wait_until_ready(&self, limit: Duration) -> Result<()> {
        let started = Instant::now();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let log = self.data_dir.join("server.log");
        loop {
            let attempt = runtime.block_on(async {
                let conn = self.connect_options("postgres").connect().await?;
                conn.close().await
            });
            let error = match attempt {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if started.elapsed() > limit {
                bail!(
                    "the private PostgreSQL did not accept connections within {limit:?} ({error}); see {}",
                    log.display()
                );
            }
            let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
            match child.as_mut().map(Child::try_wait) {
                Some(Ok(Some(status))) => {
                    bail!("postgres exited at start ({status}); see {}", log.display())
                }
                Some(_) => {}
                None if !self.is_running() => {
                    drop(child);
                    self.spawn_postmaster()?;
                }
                None => {}
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A PostgreSQL program run as the cluster's account.
    fn pg_command(&self, program: &str) -> Result<Command> {
        let binary = find_pg_binary(program)?;
        let mut cmd = Command::new(binary);
        if let Some(user) = &self.run_as {
            use std::os::unix::process::CommandExt;
            cmd.uid(user.uid).gid(user.gid);
        }
        cmd.current_dir(&self.data_dir);
        Ok(cmd)
    }
}

fn run_as_user(
    user: &OsUser,
    program: &str,
    args: &[&std::ffi::OsStr],
) -> Result<std::process::ExitStatus> {
    use std::os::unix::process::CommandExt;
    Ok(Command::new(program)
        .args(args)
        .uid(user.uid)
        .gid(user.gid)
        .status()?)
}

/// Finds a PostgreSQL program on PATH or in Debian's versioned directories (newest first).
fn find_pg_binary(program: &str) -> Result<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join(program))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let mut debian: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .map(|dirs| {
            dirs.filter_map(|d| d.ok())
                .map(|d| d.path().join("bin").join(program))
                .collect()
        })
        .unwrap_or_default();
    debian.sort();
    debian.reverse();
    on_path
        .into_iter()
        .chain(debian)
        .find(|p| p.is_file())
        .with_context(|| format!("PostgreSQL's {program} was not found on PATH or in /usr/lib/postgresql/*/bin; install PostgreSQL 15 or set DATABASE_URL"))
}

fn process_is_root() -> bool {
    // /proc/self belongs to the process's effective user.
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn current_user_name() -> String {
    std::env::var("USER").unwrap_or_else(|_| "postgres".to_owned())
}

/// The account to run PostgreSQL as when we are root.
fn unprivileged_user() -> Result<OsUser> {
    let passwd = fs::read_to_string("/etc/passwd").context("Failed to read /etc/passwd")?;
    let entry = |wanted: &str| {
        passwd.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.len() > 3 && fields[0] == wanted).then(|| OsUser {
                name: fields[0].to_owned(),
                uid: fields[2].parse().unwrap_or(u32::MAX),
                gid: fields[3].parse().unwrap_or(u32::MAX),
            })
        })
    };
    entry("postgres")
        .or_else(|| entry("nobody"))
        .filter(|u| u.uid != u32::MAX && u.uid != 0)
        .context("running as root, and neither a postgres nor a nobody account exists to run PostgreSQL as")
}
