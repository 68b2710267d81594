//! smtpd end to end: the binary started with a configuration written for
//! the test, the slapd test directory as the user source, the Postfix
//! fixture as the relay (XCLIENT allowed from loopback), real clients
//! (Python's smtplib, swaks, curl, raw sockets). What counts is what
//! Postfix logged and delivered to its sink.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use portcullis_test_support::ca::TestCa;
use portcullis_test_support::daemon::{Daemon, LOG_WAIT};
use portcullis_test_support::free_port;
use portcullis_test_support::postfix::Postfix;
use portcullis_test_support::slapd::Slapd;
use portcullis_tlsconf::certdb::certdb::{CertDb, KdfParams, Password, PrivateKey, TrustFlags};

/// A running smtpd, stopped (by its PID) when dropped.
struct Smtpd {
    daemon: Daemon,
    port: u16,
    sslport: u16,
    ca: PathBuf,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Smtpd {
    type Target = Daemon;
    fn deref(&self) -> &Daemon {
        &self.daemon
    }
}

/// The Postfix every test of this binary relays to (marks in the
/// addresses keep the tests apart).
fn postfix() -> &'static Postfix {
    static PF: OnceLock<Postfix> = OnceLock::new();
    PF.get_or_init(|| Postfix::start().unwrap_or_else(|e| panic!("Postfix fixture: {e}")))
}

/// The server certificate in a certificate database, the CA for clients.
fn certificates(dir: &Path) {
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
fn configure(dir: &Path, port: u16, sslport: u16, local: &str, smtp: &str, mmp: &str) -> PathBuf {
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
         [sasl.default.ldap]\n\
         has_plain_passwords = true\n\
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
fn start(smtp: &str, mmp: &str) -> Smtpd {
    start_with("", smtp, mmp)
}

/// [`start`], with `local` added to `[local]`.
fn start_with(local: &str, smtp: &str, mmp: &str) -> Smtpd {
    let dir = tempfile::tempdir().unwrap();
    let (port, sslport) = (free_port(), free_port());
    let config = configure(dir.path(), port, sslport, local, smtp, mmp);
    let daemon = Daemon::spawn(Path::new(env!("CARGO_BIN_EXE_smtpd")), &config, &[]).unwrap();
    let smtpd = Smtpd {
        daemon,
        port,
        sslport,
        ca: dir.path().join("client-ca.pem"),
        _dir: dir,
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
struct Scenario<'a> {
    name: &'a str,
    port: u16,
    user: &'a str,
    password: &'a str,
    from: &'a str,
    rcpt: &'a str,
    mark: &'a str,
    source: &'a str,
}

/// Runs an smtplib scenario (`tests/smtp_client.py`); its `key=value`
/// lines.
fn smtplib(smtpd: &Smtpd, s: &Scenario<'_>) -> Vec<(String, String)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_client.py");
    let out = Command::new("timeout")
        .args(["90", "python3"])
        .arg(script)
        .args([s.name, &s.port.to_string()])
        .arg(&smtpd.ca)
        .args([s.user, s.password, s.from, s.rcpt, s.mark, s.source])
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
    stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], key: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {key} in {fields:?}"))
}

/// Waits for Postfix to log a line with every needle.
fn postfix_line(needles: &[&str]) -> String {
    let pf = postfix();
    pf.wait_for_log(needles, LOG_WAIT)
        .unwrap_or_else(|| panic!("no Postfix log line with {needles:?}:\n{}", pf.maillog()))
}

/// Postfix's queue id of the message to `rcpt`, once delivered to the
/// sink; then the `client=` line of that queue id.
fn postfix_client_line(rcpt: &str) -> String {
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

fn alice<'a>(name: &'a str, port: u16, rcpt: &'a str, mark: &'a str) -> Scenario<'a> {
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

#[test]
fn smtplib_starttls_auth_plain_and_login_and_implicit_tls_arrive_with_the_client_and_user() {
    let smtpd = start("", "");
    for (scenario, port) in [
        ("starttls-plain", smtpd.port),
        ("starttls-login", smtpd.port),
        ("implicit-tls", smtpd.sslport),
    ] {
        let mark = format!("smtplib-{scenario}-7f1");
        let rcpt = format!("{mark}@elsewhere.example");
        let r = smtplib(&smtpd, &alice(scenario, port, &rcpt, &mark));
        assert!(field(&r, "auth").starts_with("ok"), "{scenario}: {r:?}");
        assert!(
            field(&r, "send").starts_with("ok"),
            "{scenario}: {r:?}\n{}",
            smtpd.log().text()
        );
        if scenario == "starttls-plain" {
            // AUTH only after STARTTLS (the default).
            let plain = field(&r, "features_plain");
            assert!(
                plain.contains("starttls") && !plain.contains("auth"),
                "{plain}"
            );
            let tls = field(&r, "features_tls");
            assert!(tls.contains("auth") && !tls.contains("starttls"), "{tls}");
            // The relay's XCLIENT is never shown.
            assert!(!tls.contains("xclient"), "{tls}");
        }
        // Postfix believed the hand-off: the real client and the user.
        let line = postfix_client_line(&rcpt);
        assert!(line.contains("[127.0.0.2]"), "{line}");
        assert!(line.contains("sasl_username=alice"), "{line}");
        assert!(postfix().wait_for_delivery(&format!("body of {mark}"), LOG_WAIT));
    }
    // One line per message with the relay's queue id.
    let log = smtpd.log().wait_for("message", 3);
    let line = log
        .lines()
        .find(|l| {
            l.contains("smtplib-implicit-tls-7f1")
                || (l.contains("portcullis::message") && l.contains("queue_id"))
        })
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains("user=alice"), "{line}");
    assert!(!log.contains("alice-pw"), "the password is never logged");
}
