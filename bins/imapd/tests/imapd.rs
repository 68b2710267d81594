//! imapd end to end: the binary started with a configuration written for
//! the test, the slapd test directory as the user source, the Dovecot
//! fixture as the message store; Python's imaplib, curl and openssl
//! s_client as the clients.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use portcullis_test_support::ca::TestCa;
use portcullis_test_support::daemon::{Daemon, LOG_WAIT};
use portcullis_test_support::dovecot::Dovecot;
use portcullis_test_support::free_port;
use portcullis_test_support::slapd::Slapd;
use portcullis_tlsconf::certdb::certdb::{CertDb, KdfParams, Password, PrivateKey, TrustFlags};

/// A running imapd, stopped (by its PID) when dropped.
struct Imapd {
    daemon: Daemon,
    port: u16,
    sslport: u16,
    ca: PathBuf,
    _dir: tempfile::TempDir,
}

/// What a test adds to the generated configuration.
#[derive(Default, Clone, Copy)]
struct Setup<'a> {
    /// Lines for `[service.imap]`.
    imap: &'a str,
    /// Lines for `[mmp]` (naming `storehosts` replaces the default store).
    mmp: &'a str,
    /// `NOTIFY_SOCKET`.
    notify: Option<&'a Path>,
}

/// The configuration directory: a certificate database with the server
/// certificate, the CA files, the configuration file.
fn configure(dir: &Path, port: u16, sslport: u16, setup: Setup<'_>) -> PathBuf {
    let slapd = Slapd::shared();
    let dovecot = Dovecot::shared();
    let ca = TestCa::new("imapd test CA").unwrap();
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
    std::fs::write(dir.join("ldap-ca.pem"), slapd.ca_pem()).unwrap();
    std::fs::write(dir.join("store-ca.pem"), dovecot.ca_pem()).unwrap();
    let (admin, admin_pw) = dovecot.master_user();
    let stores = if setup.mmp.contains("storehosts") {
        String::new()
    } else {
        format!("storehosts = [\"127.0.0.1:{}\"]\n", dovecot.imap_port())
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
         [service]\n\
         defaultdomain = \"example.com\"\n\
         listenaddr = \"127.0.0.1\"\n\
         [service.imap]\n\
         port = {port}\n\
         sslport = {sslport}\n\
         {imap}\n\
         [sasl.default.ldap]\n\
         has_plain_passwords = true\n\
         [mmp]\n\
         {stores}\
         backsidetls = \"starttls\"\n\
         backsidecafile = \"store-ca.pem\"\n\
         storeadmin = {admin:?}\n\
         storepassword = {admin_pw:?}\n\
         authfailuredelay = 1\n\
         {mmp}",
        ldap = slapd.port(),
        bind_dn = slapd.service_dn(),
        bind_pw = slapd.service_password(),
        base = slapd.base_dn(),
        imap = setup.imap,
        mmp = setup.mmp,
    );
    let path = dir.join("portcullis.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn start(setup: Setup<'_>) -> Imapd {
    let dir = tempfile::tempdir().unwrap();
    let (port, sslport) = (free_port(), free_port());
    let config = configure(dir.path(), port, sslport, setup);
    let envs: Vec<(&str, &std::ffi::OsStr)> = setup
        .notify
        .map(|p| ("NOTIFY_SOCKET", p.as_os_str()))
        .into_iter()
        .collect();
    let daemon = Daemon::spawn(Path::new(env!("CARGO_BIN_EXE_imapd")), &config, &envs).unwrap();
    let text = daemon.log().wait_for("listening on", 2);
    for (p, mode) in [(port, "starttls"), (sslport, "tls")] {
        let line = format!("listening on 127.0.0.1:{p} (imap, {mode})");
        assert!(text.contains(&line), "{text}");
    }
    Imapd {
        daemon,
        port,
        sslport,
        ca: dir.path().join("client-ca.pem"),
        _dir: dir,
    }
}

/// The `key=value` lines of a client run.
struct Fields(Vec<(String, String)>);

impl Fields {
    fn get(&self, key: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {key} in {:?}", self.0))
    }

    fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A hex-encoded value's bytes.
    fn bytes(&self, key: &str) -> Vec<u8> {
        let text = self.get(key);
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }
}

/// Runs a client scenario of `imap_client.py` from `source`.
fn client(
    imapd: &Imapd,
    scenario: &str,
    port: u16,
    user: &str,
    password: &str,
    source: &str,
) -> Fields {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/imap_client.py");
    let out = Command::new("timeout")
        .args(["120", "python3"])
        .arg(script)
        .args([scenario, "127.0.0.1", &port.to_string()])
        .arg(&imapd.ca)
        .args([user, password, source])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{scenario}: {stdout}\n{}\nimapd:\n{}",
        String::from_utf8_lossy(&out.stderr),
        imapd.daemon.log().text()
    );
    Fields(
        stdout
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    )
}

fn words(text: &str) -> Vec<String> {
    text.split([' ', '[', ']', '(', ')'])
        .map(str::to_ascii_uppercase)
        .collect()
}

/// Dovecot's login line for `user` from `rip`.
fn dovecot_login(user: &str, rip: &str) -> String {
    let dovecot = Dovecot::shared();
    let needle = format!("user=<{user}>");
    dovecot
        .wait_for_log(&needle, LOG_WAIT)
        .unwrap_or_else(|| panic!("Dovecot logged no {needle}:\n{}", dovecot.log()));
    let rip = format!("rip={rip}");
    dovecot
        .log()
        .lines()
        .find(|l| l.contains("imap-login") && l.contains(&needle) && l.contains(&rip))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no {needle} with {rip}:\n{}", dovecot.log()))
}

#[test]
fn starttls_login_fetches_the_message_and_the_store_sees_the_real_client() {
    let imapd = start(Setup::default());
    let r = client(
        &imapd,
        "starttls-fetch",
        imapd.port,
        "alice",
        "alice-pw",
        "127.0.0.2",
    );
    assert!(
        r.get("greeting").starts_with("* OK"),
        "{}",
        r.get("greeting")
    );
    // No cleartext login before TLS (the default).
    let plain = words(r.get("caps_plain"));
    assert!(plain.contains(&"STARTTLS".into()), "{plain:?}");
    assert!(plain.contains(&"LOGINDISABLED".into()), "{plain:?}");
    assert!(
        r.get("plain_login").starts_with("NO [PRIVACYREQUIRED]"),
        "{}",
        r.get("plain_login")
    );
    let tls = words(r.get("caps_tls"));
    assert!(
        !tls.contains(&"LOGINDISABLED".into()) && !tls.contains(&"STARTTLS".into()),
        "{tls:?}"
    );
    assert!(tls.contains(&"AUTH=PLAIN".into()), "{tls:?}");
    // The tagged OK carries the store's post-login capabilities.
    let login = r.get("login");
    assert!(login.starts_with("OK [CAPABILITY "), "{login}");
    assert!(words(login).contains(&"IDLE".into()), "{login}");
    assert!(
        !words(login).iter().any(|w| w.starts_with("AUTH=")),
        "{login}"
    );
    // The message as the maildir holds it.
    let message = r.bytes("message");
    assert!(
        Dovecot::shared()
            .messages("alice")
            .contains(&message.as_slice()),
        "{}",
        String::from_utf8_lossy(&message)
    );
    // STARTTLS after login: the session is the store's, which refuses.
    assert!(
        r.get("starttls_after_login").starts_with("BAD"),
        "{}",
        r.get("starttls_after_login")
    );
    // Dovecot believed the ID: the user, and the client's own address.
    dovecot_login("alice", "127.0.0.2");
    // One connection line, with the canonical user and the TLS version,
    // and never the password.
    let log = imapd.daemon.log().wait_for("connection closed", 1);
    let closed = log
        .lines()
        .find(|l| l.contains("connection closed") && l.contains("user=alice"))
        .unwrap_or_else(|| panic!("{log}"));
    for part in [
        "service=\"imap\"",
        "client=127.0.0.2:",
        "tls=TLSv1_3",
        "store=127.0.0.1:",
    ] {
        assert!(closed.contains(part), "{part}: {closed}");
    }
    assert!(!log.contains("alice-pw"), "{log}");
}

#[test]
fn sasl_logins_over_implicit_tls_fetch_from_the_store() {
    let imapd = start(Setup::default());
    // (scenario, user, password): PLAIN, CRAM-MD5 (SCRAM needs SCRAM
    // secrets in the directory, which the test directory does not hold).
    let cases = [
        ("ssl-auth-plain", "bob", "bob-pw"),
        ("ssl-cram-md5", "carol", "carol-pw"),
    ];
    for (scenario, user, password) in cases {
        let r = client(&imapd, scenario, imapd.sslport, user, password, "127.0.0.1");
        let caps = words(r.get("caps"));
        assert!(!caps.contains(&"STARTTLS".into()), "{scenario}: {caps:?}");
        assert!(
            r.get("login").starts_with("OK [CAPABILITY "),
            "{scenario}: {}",
            r.get("login")
        );
        let message = r.bytes("message");
        assert!(
            Dovecot::shared()
                .messages(user)
                .contains(&message.as_slice()),
            "{scenario}: {}",
            String::from_utf8_lossy(&message)
        );
        if scenario == "ssl-auth-plain" {
            // STARTTLS on the implicit-TLS port.
            assert!(
                r.get("starttls").starts_with("BAD"),
                "{}",
                r.get("starttls")
            );
        }
    }
    // Neither AUTHENTICATE PLAIN nor CRAM-MD5 left a password to replay:
    // the store login was the master user's, acting for carol.
    let dovecot = Dovecot::shared();
    dovecot
        .wait_for_log("Master user logging in as carol", LOG_WAIT)
        .unwrap_or_else(|| panic!("no master-user login for carol:\n{}", dovecot.log()));
    let log = imapd.daemon.log().wait_for("connection closed", 2);
    for mechanism in ["mechanism=PLAIN", "mechanism=CRAM-MD5"] {
        assert!(log.contains(mechanism), "{mechanism}: {log}");
    }
}

#[test]
fn curl_and_openssl_s_client_work_through_the_proxy() {
    let imapd = start(Setup::default());
    // curl over implicit TLS fetches the first message of alice's INBOX.
    let out = Command::new("timeout")
        .args(["60", "curl", "-sS", "--cacert"])
        .arg(&imapd.ca)
        .args(["-u", "alice:alice-pw", "--login-options", "AUTH=PLAIN"])
        .arg(format!(
            "imaps://127.0.0.1:{}/INBOX;MAILINDEX=1",
            imapd.sslport
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl: {out:?}\n{}",
        imapd.daemon.log().text()
    );
    assert!(
        Dovecot::shared()
            .messages("alice")
            .contains(&out.stdout.as_slice()),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // openssl s_client does STARTTLS itself, then our commands run.
    let mut child = Command::new("timeout")
        .args([
            "60",
            "openssl",
            "s_client",
            "-quiet",
            "-ign_eof",
            "-crlf",
            "-starttls",
            "imap",
        ])
        .args(["-connect", &format!("127.0.0.1:{}", imapd.port), "-CAfile"])
        .arg(&imapd.ca)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a1 CAPABILITY\na2 LOGIN alice alice-pw\na3 LOGOUT\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("a1 OK"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let caps = text
        .lines()
        .find(|l| l.starts_with("* CAPABILITY"))
        .unwrap_or_default();
    assert!(
        !caps.contains("LOGINDISABLED") && caps.contains("AUTH=PLAIN"),
        "{caps}"
    );
    assert!(text.contains("a2 OK [CAPABILITY "), "{text}");
    assert!(text.contains("a3 OK"), "{text}");
}

#[test]
fn starttls_discards_pipelined_commands_and_is_refused_twice() {
    let imapd = start(Setup::default());
    let r = client(
        &imapd,
        "pipelined-starttls",
        imapd.port,
        "-",
        "-",
        "127.0.0.1",
    );
    assert!(
        r.get("starttls").starts_with("a OK"),
        "{}",
        r.get("starttls")
    );
    // `b CAPABILITY` came with STARTTLS in plaintext: never answered.
    let after = r.get("after_tls");
    assert!(
        after.contains("c OK") && !after.contains("b OK") && !after.contains("* CAPABILITY"),
        "{after}"
    );
    assert!(
        r.get("starttls_again").starts_with("d BAD"),
        "{}",
        r.get("starttls_again")
    );
}

#[test]
fn access_filters_refuse_at_connect_and_after_login() {
    // frank's own access list denies IMAP.
    let frank = "dn: uid=frank,ou=People,o=example.com,o=example\n\
                 objectClass: inetOrgPerson\nobjectClass: inetMailUser\nobjectClass: inetUser\n\
                 uid: frank\ncn: Frank Example\nsn: Example\nmail: frank@example.com\n\
                 mailUserStatus: active\nmailAllowedServiceAccess: -imap:ALL\n\
                 userPassword: frank-pw\n";
    Slapd::shared().add_ldif(frank).unwrap();
    let imapd = start(Setup {
        imap: "domainnotallowed = \"imap: 127.0.0.2\"",
        ..Setup::default()
    });
    let denied = client(&imapd, "greeting", imapd.port, "-", "-", "127.0.0.2");
    assert!(
        denied.get("greeting").starts_with("* BYE"),
        "{}",
        denied.get("greeting")
    );
    let allowed = client(&imapd, "greeting", imapd.port, "-", "-", "127.0.0.3");
    assert!(
        allowed.get("greeting").starts_with("* OK"),
        "{}",
        allowed.get("greeting")
    );
    let log = imapd
        .daemon
        .log()
        .wait_for("denied by the service access filter", 1);
    assert!(log.contains("client=127.0.0.2:"), "{log}");
    let r = client(
        &imapd,
        "starttls-login",
        imapd.port,
        "frank",
        "frank-pw",
        "127.0.0.3",
    );
    assert!(
        r.get("login").starts_with("NO [CONTACTADMIN]"),
        "{}",
        r.get("login")
    );
    imapd
        .daemon
        .log()
        .wait_for("account-level access filter user=frank", 1);
}

#[test]
fn a_dead_store_fails_over_and_no_live_store_is_unavailable() {
    // Nothing listens on `dead`: its connection is refused at once.
    let dead = free_port();
    let live = Dovecot::shared().imap_port();
    let both = format!("storehosts = [\"127.0.0.1:{dead}\", \"127.0.0.1:{live}\"]\n");
    let only_dead = format!("storehosts = [\"127.0.0.1:{dead}\"]\n");
    for (mmp, expected) in [
        (both.as_str(), "OK [CAPABILITY "),
        (only_dead.as_str(), "NO [UNAVAILABLE]"),
    ] {
        let imapd = start(Setup {
            mmp,
            ..Setup::default()
        });
        let r = client(
            &imapd,
            "starttls-login",
            imapd.port,
            "alice",
            "alice-pw",
            "127.0.0.1",
        );
        assert!(
            r.get("login").starts_with(expected),
            "{mmp}: {}",
            r.get("login")
        );
    }
}

#[test]
fn literals_over_the_bound_are_refused_without_reading_them() {
    let imapd = start(Setup::default());
    let r = client(&imapd, "huge-literal", imapd.sslport, "-", "-", "127.0.0.1");
    assert!(
        r.get("sync").starts_with("a NO [TOOBIG]"),
        "{}",
        r.get("sync")
    );
    assert!(
        r.get("nonsync").starts_with("b BAD [TOOBIG]"),
        "{}",
        r.get("nonsync")
    );
    let after = r.get("after");
    assert!(
        after.starts_with("* BYE") && after.ends_with("closed"),
        "{after}"
    );
}

#[test]
fn wrong_passwords_are_refused_and_the_connection_closes_after_mmp_maxauthattempts() {
    // Trusted networks skip the penalty, so the test does not wait it out.
    let imapd = start(Setup {
        mmp: "trustednetworks = \"127.0.0.0/8\"\nmaxauthattempts = 2\n",
        ..Setup::default()
    });
    let r = client(&imapd, "attempts", imapd.port, "erin", "wrong", "127.0.0.1");
    let refusals = r.all("attempt");
    assert_eq!(refusals.len(), 2, "{refusals:?}");
    assert!(
        refusals
            .iter()
            .all(|a| a.contains("[AUTHENTICATIONFAILED]")),
        "{refusals:?}"
    );
    assert_eq!(r.get("closed"), "yes");
    let log = imapd.daemon.log().wait_for("connection closed", 1);
    assert!(!log.contains("wrong\""), "{log}");
}

#[test]
fn check_accepts_a_good_configuration_and_refuses_a_broken_one_with_2() {
    let dir = tempfile::tempdir().unwrap();
    let good = configure(dir.path(), free_port(), free_port(), Setup::default());
    let check = |config: &Path| {
        Command::new(env!("CARGO_BIN_EXE_imapd"))
            .args(["--check", "--config"])
            .arg(config)
            .output()
            .unwrap()
    };
    let ok = check(&good);
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "[mmp]\nconnlimits = [\"not a limit\"]\n").unwrap();
    let bad = check(&broken);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("connlimits"),
        "{bad:?}"
    );
    let version = Command::new(env!("CARGO_BIN_EXE_imapd"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&version.stdout).starts_with("imapd "),
        "{version:?}"
    );
}

#[test]
fn readiness_is_notified_and_sigterm_ends_unauthenticated_sessions_with_bye() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    let mut imapd = start(Setup {
        notify: Some(&socket_path),
        ..Setup::default()
    });
    let mut ready = [0u8; 64];
    let n = notify.recv(&mut ready).unwrap();
    assert_eq!(&ready[..n], b"READY=1");

    let mut conn = std::net::TcpStream::connect(("127.0.0.1", imapd.port)).unwrap();
    conn.set_read_timeout(Some(LOG_WAIT)).unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("* OK"), "{line}");
    conn.write_all(b"a NOOP\r\n").unwrap();
    line.clear();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("a OK"), "{line}");
    let status = Command::new("kill")
        .args(["-TERM", &imapd.daemon.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    assert!(rest.starts_with("* BYE [UNAVAILABLE]"), "{rest:?}");
    let exit = imapd.daemon.wait().unwrap();
    assert!(exit.success(), "{exit:?}\n{}", imapd.daemon.log().text());
}
