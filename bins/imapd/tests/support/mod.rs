//! What the reload and metrics tests share: imapd started from a
//! configuration they can rewrite, the certificate database they can
//! change, a held IMAP session, `openssl` fingerprints and `curl` scrapes.
#![allow(
    dead_code,
    unused_imports,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::missing_panics_doc
)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use portcullis_test_support::ca::TestCa;
use portcullis_test_support::daemon::Daemon;
use portcullis_test_support::free_port;
use portcullis_test_support::frontend_config::FrontendConfig;
pub use portcullis_test_support::frontend_config::{http, metric as value};
use portcullis_tlsconf::certdb::certdb::{CertDb, KdfParams, Password, PrivateKey, TrustFlags};

/// The nickname the configuration's default (`encryption.rsa.nssslpersonalityssl`)
/// names.
const NICKNAME: &str = "Server-Cert";

/// The certificate database's password.
const DB_PASSWORD: &str = "db-password";

/// A running imapd, stopped (by its PID) when dropped.
pub struct Imapd {
    pub daemon: Daemon,
    pub port: u16,
    pub sslport: u16,
    /// The CA of the server certificates.
    pub ca: TestCa,
    /// `ca` as a PEM file, for the clients.
    pub ca_file: PathBuf,
    pub dir: tempfile::TempDir,
}

/// Issues a server certificate for 127.0.0.1 from `ca` and stores it
/// under [`NICKNAME`] in `dir/certdb` (replacing the one there); its PEM.
pub fn install_server_certificate(dir: &Path, ca: &TestCa) -> String {
    let server = ca.issue_server(&["127.0.0.1", "localhost"]).unwrap();
    let pw = Password::new(DB_PASSWORD);
    let path = dir.join("certdb");
    let mut db = if path.exists() {
        let mut db = CertDb::open(&path).unwrap();
        db.remove(NICKNAME).unwrap();
        db
    } else {
        CertDb::create(&path, &pw, KdfParams::INSECURE_FAST).unwrap()
    };
    let key = PrivateKey::from_pkcs8_der(&server.key_der).unwrap();
    db.add_with_key(
        &pw,
        NICKNAME,
        &server.cert_der,
        &key,
        TrustFlags::default(),
        &[],
    )
    .unwrap();
    server.cert_pem
}

fn write_config(
    dir: &Path,
    port: u16,
    sslport: u16,
    service_lines: &str,
    mmp: &str,
    tail: &str,
) -> PathBuf {
    let mut config = FrontendConfig::new("imap", port, sslport);
    config.service_lines = service_lines;
    config.mmp = mmp;
    config.tail = tail;
    config.write(dir).unwrap()
}

impl Imapd {
    /// imapd with `service_lines` in `[service.imap]` and `tail` at the
    /// end of the configuration.
    pub fn start(service_lines: &str, tail: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("imapd reload test CA").unwrap();
        install_server_certificate(dir.path(), &ca);
        let ca_file = dir.path().join("server-ca.pem");
        std::fs::write(&ca_file, ca.cert_pem()).unwrap();
        let (port, sslport) = (free_port(), free_port());
        let config = write_config(dir.path(), port, sslport, service_lines, "", tail);
        let daemon = Daemon::spawn(Path::new(env!("CARGO_BIN_EXE_imapd")), &config, &[]).unwrap();
        daemon.log().wait_for("listening on", 2);
        Self {
            daemon,
            port,
            sslport,
            ca,
            ca_file,
            dir,
        }
    }

    /// Writes the configuration again with `service_lines` and `tail`.
    pub fn rewrite(&self, service_lines: &str, tail: &str) -> PathBuf {
        self.rewrite_with_mmp(service_lines, "", tail)
    }

    /// [`Imapd::rewrite`] with `mmp` lines in `[mmp]` too.
    pub fn rewrite_with_mmp(&self, service_lines: &str, mmp: &str, tail: &str) -> PathBuf {
        let dir = self.dir.path();
        write_config(dir, self.port, self.sslport, service_lines, mmp, tail)
    }

    /// Writes `text` as the configuration file.
    pub fn write_raw(&self, text: &str) {
        std::fs::write(self.dir.path().join("portcullis.toml"), text).unwrap();
    }

    /// Sends SIGHUP and waits for the reload's outcome (the `n`-th one
    /// since the start); its log line.
    pub fn reload(&self, n: usize) -> String {
        // The front end's outcome line, not tlsconf's "TLS configuration
        // reloaded".
        const OUTCOME: &str = "portcullis_frontend::reload: configuration reload";
        self.daemon.signal("HUP").unwrap();
        let log = self.daemon.log().wait_for(OUTCOME, n);
        log.lines()
            .filter(|l| l.contains(OUTCOME))
            .nth(n - 1)
            .unwrap()
            .to_owned()
    }

    /// A one-shot session of `session_client.py`.
    pub fn session(&self, mode: &str, user: &str, password: &str) -> Fields {
        let out = self
            .client(mode, user, password)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{mode}: {stdout}\n{}\nimapd:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.daemon.log().text()
        );
        Fields::parse(&stdout)
    }

    /// A session that logs in, then waits for [`Held::finish`].
    pub fn hold(&self, user: &str, password: &str) -> Held {
        let mut child = self
            .client("hold", user, password)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut seen = String::new();
        loop {
            let mut line = String::new();
            let n = stdout.read_line(&mut line).unwrap();
            assert!(n > 0, "the held session ended early: {seen}");
            seen.push_str(&line);
            if line.trim() == "ready=1" {
                break;
            }
        }
        Held {
            child,
            stdin: Some(stdin),
            stdout,
            seen,
        }
    }

    fn client(&self, mode: &str, user: &str, password: &str) -> Command {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/session_client.py");
        let mut command = Command::new("timeout");
        command
            .args(["120", "python3"])
            .arg(script)
            .args([mode, &self.sslport.to_string()])
            .arg(&self.ca_file)
            .args([user, password]);
        command
    }

    /// The first line a new plaintext connection hears.
    pub fn greeting(&self) -> String {
        let conn = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        conn.set_read_timeout(Some(portcullis_test_support::daemon::LOG_WAIT))
            .unwrap();
        let mut line = String::new();
        BufReader::new(conn).read_line(&mut line).unwrap();
        line
    }
}

/// A session of `session_client.py hold`, logged in and waiting.
pub struct Held {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    seen: String,
}

impl Held {
    /// Lets it fetch and log out; what it printed.
    pub fn finish(mut self) -> Fields {
        let mut stdin = self.stdin.take().unwrap();
        stdin.write_all(b"go\n").unwrap();
        drop(stdin);
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut self.stdout, &mut rest).unwrap();
        let status = self.child.wait().unwrap();
        let all = format!("{}{rest}", self.seen);
        assert!(status.success(), "held session: {all}");
        Fields::parse(&all)
    }
}

/// The `key=value` lines of a client run.
pub struct Fields(Vec<(String, String)>);

impl Fields {
    fn parse(text: &str) -> Self {
        Self(
            text.lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {key} in {:?}", self.0))
    }

    /// A hex-encoded value's bytes.
    pub fn bytes(&self, key: &str) -> Vec<u8> {
        let text = self.get(key);
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }
}

/// The SHA-256 fingerprint `openssl x509` gives a PEM certificate.
pub fn fingerprint(pem: &str) -> String {
    let mut child = Command::new("timeout")
        .args(["30", "openssl", "x509", "-noout", "-fingerprint", "-sha256"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(pem.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "openssl x509: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The fingerprint of the certificate a new connection to `port` is
/// served (`openssl s_client`, with `-starttls imap` when asked).
pub fn served_fingerprint(port: u16, starttls: bool) -> String {
    let mut command = Command::new("timeout");
    command.args(["30", "openssl", "s_client", "-connect"]);
    command.arg(format!("127.0.0.1:{port}"));
    if starttls {
        command.args(["-starttls", "imap"]);
    }
    let out = command
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let begin = text
        .find("-----BEGIN CERTIFICATE-----")
        .unwrap_or_else(|| panic!("no certificate from port {port}: {text}"));
    let end = text[begin..]
        .find("-----END CERTIFICATE-----")
        .map(|e| begin + e + "-----END CERTIFICATE-----".len())
        .unwrap();
    fingerprint(&text[begin..end])
}
