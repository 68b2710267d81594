//! popd's metrics and reload: the counters scraped with curl move with a
//! good and a bad POP3 login through popd to the Dovecot fixture; after a
//! SIGHUP that sets a per-address limit of one, a session opened before
//! still counts (the connection gate's counts survive the reload) and a
//! second connection is refused, while the open session goes on.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use portcullis_test_support::ca::TestCa;
use portcullis_test_support::daemon::{Daemon, LOG_WAIT};
use portcullis_test_support::dovecot::Dovecot;
use portcullis_test_support::free_port;
use portcullis_test_support::frontend_config::{FrontendConfig, http, metric};
use portcullis_tlsconf::certdb::certdb::{CertDb, KdfParams, Password, PrivateKey, TrustFlags};

struct Popd {
    daemon: Daemon,
    port: u16,
    sslport: u16,
    metrics_port: u16,
    dir: tempfile::TempDir,
}

/// The configuration: metrics on `metrics_port`, `mmp` lines in `[mmp]`.
fn configure(dir: &Path, port: u16, sslport: u16, metrics_port: u16, mmp: &str) -> PathBuf {
    let tail = format!("[local.pop.metrics]\nlistenaddr = \"127.0.0.1:{metrics_port}\"\n");
    let mut config = FrontendConfig::new("pop", port, sslport);
    config.mmp = mmp;
    config.tail = &tail;
    config.write(dir).unwrap()
}

impl Popd {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("popd metrics test CA").unwrap();
        let server = ca.issue_server(&["127.0.0.1"]).unwrap();
        let pw = Password::new("db-password");
        let mut db =
            CertDb::create(dir.path().join("certdb"), &pw, KdfParams::INSECURE_FAST).unwrap();
        let key = PrivateKey::from_pkcs8_der(&server.key_der).unwrap();
        db.add_with_key(
            &pw,
            "Server-Cert",
            &server.cert_der,
            &key,
            TrustFlags::default(),
            &[],
        )
        .unwrap();
        std::fs::write(dir.path().join("server-ca.pem"), ca.cert_pem()).unwrap();
        let (port, sslport, metrics_port) = (free_port(), free_port(), free_port());
        let config = configure(dir.path(), port, sslport, metrics_port, "");
        let daemon = Daemon::spawn(Path::new(env!("CARGO_BIN_EXE_popd")), &config, &[]).unwrap();
        daemon.log().wait_for("listening on", 2);
        Self {
            daemon,
            port,
            sslport,
            metrics_port,
            dir,
        }
    }

    fn configure(&self, mmp: &str) -> PathBuf {
        configure(
            self.dir.path(),
            self.port,
            self.sslport,
            self.metrics_port,
            mmp,
        )
    }

    fn client(&self, mode: &str, user: &str, password: &str) -> Command {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pop3_session.py");
        let mut command = Command::new("timeout");
        command
            .args(["120", "python3"])
            .arg(script)
            .args([mode, &self.sslport.to_string()])
            .arg(self.dir.path().join("server-ca.pem"))
            .args([user, password]);
        command
    }

    fn session(&self, mode: &str, user: &str, password: &str) -> String {
        let out = self.client(mode, user, password).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{mode}: {stdout}\n{}\npopd:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.daemon.log().text()
        );
        stdout
    }

    fn scrape(&self) -> String {
        let (status, body) = http(self.metrics_port, "GET", "/metrics");
        assert_eq!(status, 200, "{body}");
        body
    }
}

fn field<'a>(output: &'a str, key: &str) -> &'a str {
    output
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key} in {output}"))
}

fn login(result: &str) -> String {
    format!("portcullis_logins_total{{service=\"pop\",mechanism=\"PLAIN\",result=\"{result}\"}}")
}

#[test]
fn pop_logins_are_counted_and_the_gate_keeps_its_counts_over_a_reload() {
    let popd = Popd::start();
    let before = popd.scrape();
    assert_eq!(metric(&before, &login("success")), 0.0, "{before}");

    let bad = popd.session("bad", "alice", "wrong");
    assert!(field(&bad, "login").starts_with("-ERR"), "{bad}");
    let good = popd.session("retr", "alice", "alice-pw");
    assert!(field(&good, "login").starts_with("+OK"), "{good}");
    let text = popd.scrape();
    assert_eq!(metric(&text, &login("failure")), 1.0, "{text}");
    assert_eq!(metric(&text, &login("success")), 1.0, "{text}");
    assert_eq!(
        metric(&text, "portcullis_penalties_total{service=\"pop\"}"),
        1.0,
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "portcullis_tls_handshakes_total{service=\"pop\",result=\"ok\"}"
        ),
        2.0,
        "{text}"
    );

    // A session held open, then one connection per address.
    let mut held = popd
        .client("hold", "bob", "bob-pw")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(held.stdout.take().unwrap());
    let mut line = String::new();
    while line.trim() != "ready=1" {
        line.clear();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "held session ended"
        );
    }
    popd.configure("connlimits = \"0|0:1\"");
    popd.daemon.signal("HUP").unwrap();
    let log = popd
        .daemon
        .log()
        .wait_for("portcullis_frontend::reload: configuration reload", 1);
    assert!(log.contains("configuration reloaded"), "{log}");

    // The held session still counts against the new limit: a second
    // connection from 127.0.0.1 is refused with the protocol's refusal.
    let conn = std::net::TcpStream::connect(("127.0.0.1", popd.port)).unwrap();
    conn.set_read_timeout(Some(LOG_WAIT)).unwrap();
    let mut refusal = String::new();
    BufReader::new(conn).read_line(&mut refusal).unwrap();
    assert!(refusal.starts_with("-ERR [SYS/TEMP]"), "{refusal}");
    let text = popd.scrape();
    assert_eq!(
        metric(
            &text,
            "portcullis_connections_refused_total{service=\"pop\",reason=\"connlimits\"}"
        ),
        1.0,
        "{text}"
    );

    // The held session goes on: RETR through popd from Dovecot.
    let mut stdin = held.stdin.take().unwrap();
    stdin.write_all(b"go\n").unwrap();
    drop(stdin);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert!(held.wait().unwrap().success(), "{rest}");
    let message: Vec<u8> = {
        let hex = field(&rest, "message");
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    };
    assert!(
        Dovecot::shared()
            .messages("bob")
            .iter()
            .any(|m| message.starts_with(&m[..m.len().min(40)])),
        "{}",
        String::from_utf8_lossy(&message)
    );
    assert!(field(&rest, "quit").starts_with("+OK"), "{rest}");
}
