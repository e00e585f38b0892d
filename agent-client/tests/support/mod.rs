//! Real RDP servers for the probe tests, on loopback only: xrdp with a temporary ini, and
//! FreeRDP's shadow server under a private Xvfb display (optionally with a clock set off by
//! libfaketime); certificates made per test with the `openssl` command. Everything a test
//! starts is stopped when its handle drops.
//!
//! Missing programs or privileges make the test fail with a message naming the package;
//! they never make it pass silently.

#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use agent_client::target::CheckTarget;

/// The Debian packages these tests need (CI installs them).
pub const PACKAGES: &str = "xrdp freerdp2-shadow-x11 xvfb openssl faketime";

/// Fails the test unless `program` is on the PATH.
pub fn require_program(program: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{program}` is not installed: this test needs the Debian package `{package}` \
         (apt-get install -y {PACKAGES})"
    );
}

/// Fails the test unless it runs as root (xrdp runs in a private mount namespace).
pub fn require_root() {
    let out = Command::new("id").arg("-u").output().expect("`id` runs");
    let uid = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(
        uid, "0",
        "this test must run as root: it starts xrdp in a private mount namespace (unshare -m)"
    );
}

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path =
            std::env::temp_dir().join(format!("rdp-doctor-{label}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("temporary directory");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A loopback port nothing listens on (at the time of asking).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

pub fn target(host: &str, port: u16) -> CheckTarget {
    CheckTarget::parse(&format!("{host}:{port}")).expect("valid target")
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?} did not start: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// ---------------------------------------------------------------------------------------
// Certificates

/// The kind of key to make.
#[derive(Debug, Clone, Copy)]
pub enum KeyKind {
    Rsa(u32),
    EcP256,
}

/// When the certificate is valid.
#[derive(Debug, Clone, Copy)]
pub enum Dates {
    /// From now for this many days.
    Days(u32),
    /// Between two `YYYYMMDDHHMMSSZ` times.
    Range(&'static str, &'static str),
}

#[derive(Debug, Clone, Copy)]
pub enum Issuer {
    SelfSigned,
    /// The test CA of the same [`Pki`].
    TestCa,
}

#[derive(Debug, Clone)]
pub struct CertSpec {
    pub common_name: String,
    /// Entries for subjectAltName, e.g. `DNS:localhost`, `IP:127.0.0.1`.
    pub alt_names: Vec<String>,
    pub key: KeyKind,
    pub dates: Dates,
    pub issuer: Issuer,
    /// Further extension lines in OpenSSL's syntax, e.g.
    /// `crlDistributionPoints = URI:http://127.0.0.1:8080/ca.crl`.
    pub extensions: Vec<String>,
}

impl CertSpec {
    /// A certificate for `localhost` and 127.0.0.1, valid for 30 days, issued by the test CA.
    pub fn good() -> CertSpec {
        CertSpec {
            common_name: "localhost".to_owned(),
            alt_names: vec!["DNS:localhost".to_owned(), "IP:127.0.0.1".to_owned()],
            key: KeyKind::Rsa(2048),
            dates: Dates::Days(30),
            issuer: Issuer::TestCa,
            extensions: Vec::new(),
        }
    }
}

/// Paths of a certificate and its key.
#[derive(Debug, Clone)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl CertFiles {
    /// SHA-1 fingerprint as `openssl x509 -fingerprint` prints it, without colons.
    pub fn openssl_sha1(&self) -> String {
        openssl_sha1(&self.cert)
    }
}

pub fn openssl_sha1(cert: &Path) -> String {
    let out = run(Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha1", "-in"])
        .arg(cert));
    out.trim()
        .rsplit('=')
        .next()
        .unwrap_or_default()
        .replace(':', "")
        .to_ascii_uppercase()
}

/// A little PKI in a temporary directory: a test CA and the certificates a test asks for.
pub struct Pki {
    dir: TempDir,
    count: u32,
}

impl Pki {
    pub fn new() -> Pki {
        require_program("openssl", "openssl");
        let dir = TempDir::new("pki");
        let d = dir.path();
        fs::write(d.join("index.txt"), "").unwrap();
        fs::write(d.join("index.txt.attr"), "unique_subject = no\n").unwrap();
        fs::write(d.join("serial"), "1000\n").unwrap();
        fs::write(
            d.join("ca.cnf"),
            format!(
                "[ca]\ndefault_ca = test_ca\n[test_ca]\ndir = {0}\ndatabase = {0}/index.txt\n\
                 new_certs_dir = {0}\nserial = {0}/serial\ndefault_md = sha256\npolicy = any\n\
                 email_in_dn = no\ncopy_extensions = none\n[any]\ncommonName = supplied\n",
                d.display()
            ),
        )
        .unwrap();
        run(Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
            ])
            .args(["-subj", "/CN=RDP Doctor Test CA"])
            .arg("-keyout")
            .arg(d.join("ca.key"))
            .arg("-out")
            .arg(d.join("ca.pem")));
        Pki { dir, count: 0 }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A new private key file.
    pub fn key(&mut self, kind: KeyKind) -> PathBuf {
        self.count += 1;
        let path = self.dir().join(format!("key{}.pem", self.count));
        let mut cmd = Command::new("openssl");
        cmd.args(["genpkey", "-out"]).arg(&path);
        match kind {
            KeyKind::Rsa(bits) => cmd.args([
                "-algorithm",
                "RSA",
                "-pkeyopt",
                &format!("rsa_keygen_bits:{bits}"),
            ]),
            KeyKind::EcP256 => {
                cmd.args(["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])
            }
        };
        run(&mut cmd);
        path
    }

    /// A certificate made to `spec`, with its key.
    pub fn cert(&mut self, spec: &CertSpec) -> CertFiles {
        let key = self.key(spec.key);
        let n = self.count;
        let d = self.dir().to_owned();
        let csr = d.join(format!("req{n}.csr"));
        let cert = d.join(format!("cert{n}.pem"));
        let ext = d.join(format!("ext{n}.cnf"));
        let mut ext_text = String::from(
            "[ext]\nbasicConstraints = critical,CA:FALSE\nextendedKeyUsage = serverAuth\n",
        );
        if !spec.alt_names.is_empty() {
            ext_text.push_str(&format!("subjectAltName = {}\n", spec.alt_names.join(",")));
        }
        for line in &spec.extensions {
            ext_text.push_str(line);
            ext_text.push('\n');
        }
        fs::write(&ext, ext_text).unwrap();
        run(Command::new("openssl")
            .args(["req", "-new", "-key"])
            .arg(&key)
            .args(["-subj", &format!("/CN={}", spec.common_name), "-out"])
            .arg(&csr));
        let mut cmd = Command::new("openssl");
        cmd.args(["ca", "-batch", "-notext", "-config"])
            .arg(d.join("ca.cnf"))
            .arg("-in")
            .arg(&csr)
            .arg("-out")
            .arg(&cert)
            .arg("-extfile")
            .arg(&ext)
            .args(["-extensions", "ext"]);
        match spec.issuer {
            Issuer::SelfSigned => cmd.arg("-selfsign").arg("-keyfile").arg(&key),
            Issuer::TestCa => cmd
                .arg("-cert")
                .arg(d.join("ca.pem"))
                .arg("-keyfile")
                .arg(d.join("ca.key")),
        };
        match spec.dates {
            Dates::Days(days) => cmd.args(["-days", &days.to_string()]),
            Dates::Range(start, end) => cmd.args(["-startdate", start, "-enddate", end]),
        };
        run(&mut cmd);
        CertFiles { cert, key }
    }
}

// ---------------------------------------------------------------------------------------
// xrdp

/// The settings a test changes in xrdp's `[Globals]`.
#[derive(Debug, Clone)]
pub struct XrdpConfig {
    /// `rdp`, `tls` or `negotiate`.
    pub security_layer: &'static str,
    /// Certificate and key files; a path that does not exist stands for a missing one.
    pub certificate: PathBuf,
    pub key_file: PathBuf,
    pub ssl_protocols: &'static str,
    pub tls_ciphers: Option<&'static str>,
}

impl XrdpConfig {
    pub fn new(security_layer: &'static str, files: &CertFiles) -> XrdpConfig {
        XrdpConfig {
            security_layer,
            certificate: files.cert.clone(),
            key_file: files.key.clone(),
            ssl_protocols: "TLSv1.2, TLSv1.3",
            tls_ciphers: None,
        }
    }
}

/// A running xrdp on a loopback port; killed on drop.
pub struct Xrdp {
    pub port: u16,
    child: Child,
    dir: TempDir,
}

impl Xrdp {
    /// Starts `xrdp --nodaemon` with a copy of `/etc/xrdp/xrdp.ini` changed as `config` says.
    ///
    /// xrdp refuses to start while `/var/run/xrdp/xrdp.pid` exists (it checks the file even
    /// with `--nodaemon`, which does not write it). So xrdp runs in a private mount namespace
    /// with an empty tmpfs over `/run/xrdp`: a stale or live pid file of the machine's own
    /// xrdp is neither seen nor touched, and several test servers run side by side.
    pub fn start(config: &XrdpConfig) -> Xrdp {
        require_root();
        require_program("xrdp", "xrdp");
        require_program("unshare", "util-linux");
        let system_ini = fs::read_to_string("/etc/xrdp/xrdp.ini")
            .expect("/etc/xrdp/xrdp.ini is readable (Debian package xrdp)");
        let mut last_error = String::new();
        for _ in 0..3 {
            let dir = TempDir::new("xrdp");
            let port = free_port();
            let ini = dir.path().join("xrdp.ini");
            let log = dir.path().join("xrdp.log");
            let mut globals = vec![
                ("port", format!("tcp://127.0.0.1:{port}")),
                ("fork", "false".to_owned()),
                ("security_layer", config.security_layer.to_owned()),
                ("certificate", config.certificate.display().to_string()),
                ("key_file", config.key_file.display().to_string()),
                ("ssl_protocols", config.ssl_protocols.to_owned()),
                ("crypt_level", "high".to_owned()),
            ];
            if let Some(ciphers) = config.tls_ciphers {
                globals.push(("tls_ciphers", ciphers.to_owned()));
            }
            let logging = vec![
                ("LogFile", log.display().to_string()),
                ("LogLevel", "DEBUG".to_owned()),
                ("EnableSyslog", "false".to_owned()),
                ("EnableConsole", "false".to_owned()),
            ];
            fs::write(
                &ini,
                override_ini(&system_ini, &[("Globals", &globals), ("Logging", &logging)]),
            )
            .unwrap();
            let script = "mkdir -p /run/xrdp && mount -t tmpfs rdp-doctor-test /run/xrdp && exec xrdp --nodaemon --config \"$0\"";
            let stderr = dir.path().join("stderr.log");
            let child = Command::new("unshare")
                .args([
                    "--mount",
                    "--propagation",
                    "private",
                    "--",
                    "sh",
                    "-c",
                    script,
                ])
                .arg(&ini)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(fs::File::create(&stderr).expect("stderr file"))
                .spawn()
                .expect("unshare starts");
            let mut xrdp = Xrdp { port, child, dir };
            match wait_for_port(&mut xrdp.child, port, &stderr, Duration::from_secs(10)) {
                Ok(()) => return xrdp,
                Err(e) => last_error = format!("{e}\nlog:\n{}", xrdp.log()),
            }
        }
        panic!("xrdp did not start: {last_error}");
    }

    pub fn target(&self) -> CheckTarget {
        target("127.0.0.1", self.port)
    }

    /// xrdp's log so far, for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("xrdp.log")).unwrap_or_default()
    }
}

impl Drop for Xrdp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Rewrites an ini file: in each named section, the given keys replace any existing ones.
pub fn override_ini(source: &str, sections: &[(&str, &[(&str, String)])]) -> String {
    let mut out = String::new();
    let mut current: Option<&[(&str, String)]> = None;
    for line in source.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') && trimmed.ends_with(']') {
            let name = &trimmed[1..trimmed.len() - 1];
            current = sections.iter().find(|(s, _)| *s == name).map(|(_, kv)| *kv);
            out.push_str(line);
            out.push('\n');
            for (k, v) in current.unwrap_or_default() {
                out.push_str(&format!("{k}={v}\n"));
            }
            continue;
        }
        if let (Some(kv), Some((key, _))) = (current, trimmed.split_once('=')) {
            if kv.iter().any(|(k, _)| *k == key.trim()) {
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Waits until something accepts TCP connections on the loopback port, or the process
/// exits, or `limit` passes.
fn wait_for_port(
    child: &mut Child,
    port: u16,
    stderr: &Path,
    limit: Duration,
) -> Result<(), String> {
    let started = Instant::now();
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let stderr = fs::read_to_string(stderr).unwrap_or_default();
            return Err(format!("exited with {status}: {stderr}"));
        }
        if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("nothing listened on port {port} after {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

// ---------------------------------------------------------------------------------------
// FreeRDP shadow server

/// A private X display; killed on drop.
pub struct Xvfb {
    pub display: u32,
    child: Child,
}

impl Xvfb {
    pub fn start() -> Xvfb {
        require_program("Xvfb", "xvfb");
        // -displayfd: Xvfb picks a free display and writes its number when it is ready.
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1024x768x24",
                "-nolisten",
                "tcp",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb starts");
        let mut line = String::new();
        let read =
            BufReader::new(child.stdout.take().expect("stdout is piped")).read_line(&mut line);
        let display = match (read, line.trim().parse::<u32>()) {
            (Ok(_), Ok(n)) => n,
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("Xvfb did not report a display: {line:?}");
            }
        };
        Xvfb { display, child }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// FreeRDP's shadow server on a loopback port; killed on drop.
pub struct Shadow {
    pub port: u16,
    child: Child,
    home: TempDir,
    _xvfb: Xvfb,
}

impl Shadow {
    /// `freerdp-shadow-cli /bind-address:127.0.0.1 /port:P /sec:SEC` on its own display. It
    /// sometimes fails once with "failed to open display": retried.
    pub fn start(sec: &str) -> Shadow {
        Shadow::start_with_env(sec, &[])
    }

    /// The shadow server with its wall clock moved by `offset` (libfaketime's relative
    /// format, e.g. `-15m`), preloaded into the server itself (not through the `faketime`
    /// wrapper, which would stay the child this handle kills and leave the server behind).
    /// The monotonic clock is left alone so that the server's timers run normally.
    pub fn start_with_clock_offset(sec: &str, offset: &str) -> Shadow {
        let library = libfaketime();
        Shadow::start_with_env(
            sec,
            &[
                ("LD_PRELOAD", library.display().to_string()),
                ("FAKETIME", offset.to_owned()),
                ("DONT_FAKE_MONOTONIC", "1".to_owned()),
            ],
        )
    }

    /// The shadow server with extra environment variables.
    pub fn start_with_env(sec: &str, env: &[(&str, String)]) -> Shadow {
        require_program("freerdp-shadow-cli", "freerdp2-shadow-x11");
        let xvfb = Xvfb::start();
        let mut last_error = String::new();
        for _ in 0..4 {
            let home = TempDir::new("shadow-home");
            let port = free_port();
            let stderr = home.path().join("stderr.log");
            let mut child = Command::new("freerdp-shadow-cli")
                .arg("/bind-address:127.0.0.1")
                .arg(format!("/port:{port}"))
                .arg(format!("/sec:{sec}"))
                .env("DISPLAY", format!(":{}", xvfb.display))
                .env("HOME", home.path())
                .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(fs::File::create(&stderr).expect("stderr file"))
                .spawn()
                .expect("freerdp-shadow-cli starts");
            match wait_for_port(&mut child, port, &stderr, Duration::from_secs(15)) {
                Ok(()) => {
                    return Shadow {
                        port,
                        child,
                        home,
                        _xvfb: xvfb,
                    }
                }
                Err(e) => {
                    last_error = e;
                    std::thread::sleep(Duration::from_millis(300));
                }
            }
        }
        panic!("freerdp-shadow-cli did not start: {last_error}");
    }

    pub fn target(&self) -> CheckTarget {
        target("127.0.0.1", self.port)
    }

    /// The certificate the shadow server made for itself.
    pub fn certificate(&self) -> PathBuf {
        self.home.path().join(".config/freerdp/shadow/shadow.crt")
    }
}

/// libfaketime's library (Debian package `faketime`, which pulls in `libfaketime`), in the
/// multiarch directory Debian puts it in or a few usual others.
pub fn libfaketime() -> PathBuf {
    require_program("faketime", "faketime");
    let mut candidates: Vec<PathBuf> = ["/usr/lib", "/usr/lib64", "/usr/local/lib"]
        .iter()
        .map(|dir| Path::new(dir).join("faketime/libfaketime.so.1"))
        .collect();
    if let Ok(entries) = fs::read_dir("/usr/lib") {
        for entry in entries.flatten() {
            candidates.push(entry.path().join("faketime/libfaketime.so.1"));
        }
    }
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "libfaketime.so.1 not found: this test needs the Debian package `faketime` \
                 (apt-get install -y {PACKAGES})"
            )
        })
}

impl Drop for Shadow {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
