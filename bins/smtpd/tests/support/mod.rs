//! What the smtpd tests share: smtpd started with a configuration
//! written for the test (the slapd test directory as the user source, the
//! Postfix fixture as the relay), the smtplib scenarios, Postfix's log.
#![allow(
    dead_code,
    unused_imports,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::missing_panics_doc
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use portcullis_test_support::ca::TestCa;
use portcullis_test_support::daemon::{Daemon, LOG_WAIT};
use portcullis_test_support::postfix::Postfix;
use portcullis_test_support::slapd::Slapd;
use portcullis_test_support::{free_port, key_values};
use portcullis_tlsconf::certdb::certdb::{CertDb, KdfParams, Password, PrivateKey, TrustFlags};

/// A running smtpd, stopped (by its PID) when dropped.
pub struct Smtpd {
    pub daemon: Daemon,
    pub port: u16,
    pub sslport: u16,
    pub ca: PathBuf,
    pub dir: tempfile::TempDir,
}

impl std::ops::Deref for Smtpd {
    type Target = Daemon;
    fn deref(&self) -> &Daemon {
        &self.daemon
    }
}

/// The Postfix every test of this binary relays to (marks in the
/// addresses keep the tests apart).
pub fn postfix() -> &'static Postfix {
    static PF: OnceLock<Postfix> = OnceLock::new();
    PF.get_or_init(|| Postfix::start().unwrap_or_else(|e| panic!("Postfix fixture: {e}")))
}

/// The server certificate in a certificate database, the CA for clients.
pub fn certificates(dir: &Path) {
    let ca = TestCa::new("smtpd test CA").unwrap();
    let server = ca.issue_server(&["127.0.0.1", "localhost"]).unwrap();
    let pw = Password::new("db-password");
    let mut db = CertDb::create(dir.join("certdb"), &pw, KdfParams::INSECURE_FAST).unwrap();
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
    std::fs::write(dir.join("client-ca.pem"), ca.cert_pem()).unwrap();
}

/// The configuration: the slapd directory (or what `local` says), the
/// SMTP listeners with `smtp` added, the relays and `mmp` settings.
pub fn configure(
    dir: &Path,
    port: u16,
    sslport: u16,
    local: &str,
    smtp: &str,
    mmp: &str,
) -> PathBuf {
    let slapd = Slapd::shared();
    certificates(dir);
    std::fs::write(dir.join("ldap-ca.pem"), slapd.ca_pem()).unwrap();
    let relays = if mmp.contains("smtprelays") {
        String::new()
    } else {
        format!("smtprelays = \"127.0.0.1:{}\"\n", postfix().smtp_port())
    };
    let text = format!(
        "[local]\n\
         ugldaphost = \"127.0.0.1\"\n\
         ugldapport = {ldap}\n\
         ugldapstarttls = 1\n\
         ugldapcafile = \"ldap-ca.pem\"\n\
         ugldapbinddn = {bind_dn:?}\n\
         ugldapbindcred = {bind_pw:?}\n\
         ugldapbasedn = {base:?}\n\
         ugldapcanonicalform = \"%u\"\n\
         {local}\n\
         [service]\n\
         defaultdomain = \"example.com\"\n\
         listenaddr = \"127.0.0.1\"\n\
         [service.smtp]\n\
         port = {port}\n\
         sslport = {sslport}\n\
         {smtp}\n\
         [mmp]\n\
         {relays}\
         authfailuredelay = 1\n\
         {mmp}",
        ldap = slapd.port(),
        bind_dn = slapd.service_dn(),
        bind_pw = slapd.service_password(),
        base = slapd.base_dn(),
    );
    let path = dir.join("portcullis.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// smtpd with `smtp` and `mmp` added to its `[service.smtp]` and `[mmp]`
/// tables.
pub fn start(smtp: &str, mmp: &str) -> Smtpd {
    start_with("", smtp, mmp)
}

/// [`start`], with `local` added to `[local]`.
pub fn start_with(local: &str, smtp: &str, mmp: &str) -> Smtpd {
    start_in(tempfile::tempdir().unwrap(), local, smtp, mmp)
}

/// [`start_with`] in `dir` (which may hold a users file already).
pub fn start_in(dir: tempfile::TempDir, local: &str, smtp: &str, mmp: &str) -> Smtpd {
    let (port, sslport) = (free_port(), free_port());
    let config = configure(dir.path(), port, sslport, local, smtp, mmp);
    let daemon = Daemon::spawn(Path::new(env!("CARGO_BIN_EXE_smtpd")), &config, &[]).unwrap();
    let smtpd = Smtpd {
        daemon,
        port,
        sslport,
        ca: dir.path().join("client-ca.pem"),
        dir,
    };
    let text = smtpd.log().wait_for("listening on", 2);
    assert!(
        text.contains(&format!("listening on 127.0.0.1:{port} (smtp, starttls)")),
        "{text}"
    );
    assert!(
        text.contains(&format!("listening on 127.0.0.1:{sslport} (smtp, tls)")),
        "{text}"
    );
    smtpd
}

/// The arguments of one smtplib scenario.
pub struct Scenario<'a> {
    pub name: &'a str,
    pub port: u16,
    pub user: &'a str,
    pub password: &'a str,
    pub from: &'a str,
    pub rcpt: &'a str,
    pub mark: &'a str,
    pub source: &'a str,
}

/// Runs an smtplib scenario (`tests/smtp_client.py`); its `key=value`
/// lines.
pub fn smtplib(smtpd: &Smtpd, s: &Scenario<'_>) -> Vec<(String, String)> {
    smtplib_with(smtpd, s, "")
}

/// [`smtplib`] with the scenario's extra argument.
pub fn smtplib_with(smtpd: &Smtpd, s: &Scenario<'_>, extra: &str) -> Vec<(String, String)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_client.py");
    let out = Command::new("timeout")
        .args(["90", "python3"])
        .arg(script)
        .args([s.name, &s.port.to_string()])
        .arg(&smtpd.ca)
        .args([s.user, s.password, s.from, s.rcpt, s.mark, s.source, extra])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}: {stdout}\n{}\nsmtpd:\n{}",
        s.name,
        String::from_utf8_lossy(&out.stderr),
        smtpd.log().text()
    );
    key_values(&stdout)
}

/// Waits for Postfix to log a line with every needle.
pub fn postfix_line(needles: &[&str]) -> String {
    let pf = postfix();
    pf.wait_for_log(needles, LOG_WAIT)
        .unwrap_or_else(|| panic!("no Postfix log line with {needles:?}:\n{}", pf.maillog()))
}

/// Postfix's queue id of the message to `rcpt`, once delivered to the
/// sink; then the `client=` line of that queue id.
pub fn postfix_client_line(rcpt: &str) -> String {
    let sent = postfix_line(&[&format!("to=<{rcpt}>"), "status=sent"]);
    let id = sent
        .split_whitespace()
        .find(|w| {
            w.ends_with(':')
                && w.len() > 6
                && w.chars().all(|c| c.is_ascii_alphanumeric() || c == ':')
        })
        .unwrap_or_else(|| panic!("no queue id in {sent}"))
        .trim_end_matches(':')
        .to_owned();
    postfix_line(&[&format!("{id}: client="), "postfix/smtpd"])
}

pub fn alice<'a>(name: &'a str, port: u16, rcpt: &'a str, mark: &'a str) -> Scenario<'a> {
    Scenario {
        name,
        port,
        user: "alice",
        password: "alice-pw",
        from: "alice@example.com",
        rcpt,
        mark,
        source: "127.0.0.2",
    }
}
