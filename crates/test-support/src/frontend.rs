//! One of the mail front ends (`imapd`, `popd`) under test, set up against
//! the shared fixtures: the slapd test directory as the user source, the
//! Dovecot fixture as the message store, a fresh test CA for the
//! front end's certificate.
//!
//! [`FrontendDaemon::start`] writes a configuration directory (a
//! certificate database with the server certificate, the CA files, the
//! configuration file), starts the binary and waits for its `listening on`
//! lines; [`run_client`] runs a scenario of a test's client script and
//! collects the `key=value` lines it prints ([`Fields`]).
//!
//! What a test adds goes into [`Setup`]: lines for the `[local]`,
//! `[service]`, `[service.<protocol>]` and `[mmp]` tables, more tables at
//! the end, extra files in the configuration directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use portcullis_certdb::{CertDb, KdfParams, Password, PrivateKey, TrustFlags};

use crate::FixtureError;
use crate::ca::TestCa;
use crate::daemon::{Daemon, LOG_WAIT};
use crate::dovecot::Dovecot;
use crate::free_port;
use crate::slapd::Slapd;

/// Which front end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// `imapd`: `[service.imap]`, Dovecot's IMAP port.
    Imap,
    /// `popd`: `[service.pop]`, Dovecot's POP3 port.
    Pop,
}

impl Protocol {
    /// The service name in the configuration and the logs (`imap`, `pop`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Imap => "imap",
            Self::Pop => "pop",
        }
    }

    /// The store port of the Dovecot fixture for this protocol (STARTTLS
    /// available).
    #[must_use]
    pub fn store_port(self, dovecot: &Dovecot) -> u16 {
        match self {
            Self::Imap => dovecot.imap_port(),
            Self::Pop => dovecot.pop3_port(),
        }
    }
}

/// What a test adds to the generated configuration. Naming `storehosts`
/// in [`Setup::mmp`] replaces the default store (the Dovecot fixture),
/// naming `authfailuredelay` there the default delay of one second;
/// naming `defaultdomain` in [`Setup::service`] replaces the default
/// domain (`example.com`).
#[derive(Debug, Default, Clone, Copy)]
pub struct Setup<'a> {
    /// Lines for `[local]`.
    pub local: &'a str,
    /// Lines for `[service]`.
    pub service: &'a str,
    /// Lines for `[service.imap]` / `[service.pop]`.
    pub protocol: &'a str,
    /// Lines for `[mmp]`.
    pub mmp: &'a str,
    /// Further tables, appended at the end.
    pub tail: &'a str,
    /// Files (name, content) written into the configuration directory.
    pub files: &'a [(&'a str, &'a str)],
    /// Trust the test CA for client authentication too (`CT,,`): the
    /// front end then asks for client certificates and offers EXTERNAL.
    /// The client certificates `alice-client.{pem,key}` (mapping to
    /// alice) and `stranger-client.{pem,key}` (the same subject from an
    /// unknown CA) are written next to the configuration.
    pub client_certs: bool,
    /// `NOTIFY_SOCKET` for the daemon.
    pub notify: Option<&'a Path>,
}

/// A running front end, stopped (by its PID) when dropped.
#[derive(Debug)]
pub struct FrontendDaemon {
    /// The process and its log.
    pub daemon: Daemon,
    /// The STARTTLS port.
    pub port: u16,
    /// The implicit-TLS port.
    pub sslport: u16,
    protocol: Protocol,
    dir: tempfile::TempDir,
}

impl std::ops::Deref for FrontendDaemon {
    type Target = Daemon;
    fn deref(&self) -> &Daemon {
        &self.daemon
    }
}

fn fail(what: &str, detail: impl std::fmt::Display) -> FixtureError {
    FixtureError::Command {
        what: what.to_owned(),
        detail: detail.to_string(),
    }
}

/// Writes the configuration directory `dir` for `protocol` listening on
/// `port` (STARTTLS) and `sslport` (implicit TLS); the configuration
/// file's path.
///
/// # Errors
/// When a certificate cannot be issued or a file cannot be written.
pub fn configure(
    dir: &Path,
    protocol: Protocol,
    port: u16,
    sslport: u16,
    setup: &Setup<'_>,
) -> Result<PathBuf, FixtureError> {
    let slapd = Slapd::shared();
    let dovecot = Dovecot::shared();
    let ca = TestCa::new(&format!("{} test CA", protocol.name()))?;
    let server = ca.issue_server(&["127.0.0.1", "localhost"])?;
    let pw = Password::new("db-password");
    let mut db = CertDb::create(dir.join("certdb"), &pw, KdfParams::INSECURE_FAST)
        .map_err(|e| fail("creating the certificate database", e))?;
    let key = PrivateKey::from_pkcs8_der(&server.key_der)
        .map_err(|e| fail("reading the server key", e))?;
    db.add_with_key(
        &pw,
        "Server-Cert",
        &server.cert_der,
        &key,
        TrustFlags::default(),
        &[],
    )
    .map_err(|e| fail("adding the server certificate", e))?;
    if setup.client_certs {
        db.add_certificate("Test-CA", &ca.cert_der(), TrustFlags::trusted_ca())
            .map_err(|e| fail("trusting the test CA", e))?;
        let alice = ca.issue_client("Alice", Some("alice@example.com"))?;
        std::fs::write(dir.join("alice-client.pem"), &alice.cert_pem)?;
        std::fs::write(dir.join("alice-client.key"), &alice.key_pem)?;
        let stranger =
            TestCa::new("unknown CA")?.issue_client("Alice", Some("alice@example.com"))?;
        std::fs::write(dir.join("stranger-client.pem"), &stranger.cert_pem)?;
        std::fs::write(dir.join("stranger-client.key"), &stranger.key_pem)?;
    }
    std::fs::write(dir.join("client-ca.pem"), ca.cert_pem())?;
    std::fs::write(dir.join("ldap-ca.pem"), slapd.ca_pem())?;
    std::fs::write(dir.join("store-ca.pem"), dovecot.ca_pem())?;
    for (name, content) in setup.files {
        std::fs::write(dir.join(name), content)?;
    }
    let (admin, admin_pw) = dovecot.master_user();
    let stores = if setup.mmp.contains("storehosts") {
        String::new()
    } else {
        format!(
            "storehosts = [\"127.0.0.1:{}\"]\n",
            protocol.store_port(dovecot)
        )
    };
    let delay = if setup.mmp.contains("authfailuredelay") {
        ""
    } else {
        "authfailuredelay = 1\n"
    };
    let domain = if setup.service.contains("defaultdomain") {
        ""
    } else {
        "defaultdomain = \"example.com\"\n"
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
         {domain}\
         listenaddr = \"127.0.0.1\"\n\
         {service}\n\
         [service.{name}]\n\
         port = {port}\n\
         sslport = {sslport}\n\
         {protocol_lines}\n\
         [sasl.default.ldap]\n\
         has_plain_passwords = true\n\
         [mmp]\n\
         {stores}\
         backsidetls = \"starttls\"\n\
         backsidecafile = \"store-ca.pem\"\n\
         storeadmin = {admin:?}\n\
         storepassword = {admin_pw:?}\n\
         {delay}\
         {mmp}\n\
         {tail}",
        ldap = slapd.port(),
        bind_dn = slapd.service_dn(),
        bind_pw = slapd.service_password(),
        base = slapd.base_dn(),
        local = setup.local,
        service = setup.service,
        name = protocol.name(),
        protocol_lines = setup.protocol,
        mmp = setup.mmp,
        tail = setup.tail,
    );
    let path = dir.join("portcullis.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

impl FrontendDaemon {
    /// Configures and starts `program` (the front end's binary) for
    /// `protocol` on two free ports; returns once it logged both
    /// `listening on` lines.
    ///
    /// # Panics
    /// When the configuration cannot be written, the program cannot start
    /// or does not listen (the message shows its log).
    #[must_use]
    pub fn start(program: &Path, protocol: Protocol, setup: &Setup<'_>) -> Self {
        let dir = tempfile::tempdir().expect("a scratch folder");
        let (port, sslport) = (free_port(), free_port());
        let config = configure(dir.path(), protocol, port, sslport, setup)
            .unwrap_or_else(|e| panic!("configuring {}: {e}", protocol.name()));
        let envs: Vec<(&str, &std::ffi::OsStr)> = setup
            .notify
            .map(|p| ("NOTIFY_SOCKET", p.as_os_str()))
            .into_iter()
            .collect();
        let daemon = Daemon::spawn(program, &config, &envs)
            .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
        let text = daemon.log().wait_for("listening on", 2);
        for (p, mode) in [(port, "starttls"), (sslport, "tls")] {
            let line = format!("listening on 127.0.0.1:{p} ({}, {mode})", protocol.name());
            assert!(text.contains(&line), "{text}");
        }
        Self {
            daemon,
            port,
            sslport,
            protocol,
            dir,
        }
    }

    /// The PEM file of the CA that issued the front end's certificate.
    #[must_use]
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("client-ca.pem")
    }

    /// The configuration directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The configuration file.
    #[must_use]
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("portcullis.toml")
    }

    /// Which front end this is.
    #[must_use]
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The client certificate and key files (PEM) named `name`
    /// (`alice`, `stranger`; see [`Setup::client_certs`]).
    #[must_use]
    pub fn client_cert(&self, name: &str) -> (String, String) {
        let path = |ext: &str| {
            self.dir
                .path()
                .join(format!("{name}-client.{ext}"))
                .to_string_lossy()
                .into_owned()
        };
        (path("pem"), path("key"))
    }
}

impl FrontendDaemon {
    /// Runs a scenario of the protocol-neutral [`line_client`] against
    /// this front end.
    #[must_use]
    pub fn line(&self, scenario: &str, port: u16, arg1: &str, arg2: &str, source: &str) -> Fields {
        run_client(&line_client(), self, scenario, port, arg1, arg2, source)
    }

    /// The first line each listener sends a client from `source` (the
    /// STARTTLS port, then the implicit-TLS port after the handshake).
    #[must_use]
    pub fn greetings(&self, source: &str) -> [String; 2] {
        [(self.port, "connections"), (self.sslport, "ssl-greeting")].map(|(port, scenario)| {
            self.line(scenario, port, source, "-", source)
                .get("greeting")
                .to_owned()
        })
    }

    /// The first line each listener sends behind a PROXY v1 header that
    /// names `client` (the front end must trust loopback proxies).
    #[must_use]
    pub fn proxied_greetings(&self, client: &str) -> [String; 2] {
        [(self.port, "plain"), (self.sslport, "tls")].map(|(port, mode)| {
            self.line("proxied-greeting", port, client, mode, "127.0.0.1")
                .get("greeting")
                .to_owned()
        })
    }

    /// What `curl -u USER_PASSWORD --login-options AUTH=PLAIN URL`
    /// fetched, trusting the front end's CA (bounded by `timeout 60`).
    ///
    /// # Panics
    /// When curl cannot be started or fails (the message shows the front
    /// end's log).
    #[must_use]
    pub fn curl(&self, user_password: &str, url: &str) -> Vec<u8> {
        let out = Command::new("timeout")
            .args(["60", "curl", "-sS", "--cacert"])
            .arg(self.ca())
            .args(["-u", user_password, "--login-options", "AUTH=PLAIN"])
            .arg(url)
            .output()
            .expect("curl runs");
        assert!(
            out.status.success(),
            "curl {url}: {out:?}\n{}",
            self.log().text()
        );
        out.stdout
    }

    /// `openssl s_client -starttls imap|pop3` to the STARTTLS port, with
    /// `input` as its standard input (one command a line); its output
    /// once the server or the input ended (bounded by `timeout 60`).
    ///
    /// # Panics
    /// When openssl cannot be started.
    #[must_use]
    pub fn s_client_starttls(&self, input: &[u8]) -> std::process::Output {
        use std::io::Write as _;
        use std::process::Stdio;
        let starttls = match self.protocol {
            Protocol::Imap => "imap",
            Protocol::Pop => "pop3",
        };
        let mut child = Command::new("timeout")
            .args(["60", "openssl", "s_client", "-quiet", "-ign_eof", "-crlf"])
            .args(["-starttls", starttls])
            .args(["-connect", &format!("127.0.0.1:{}", self.port), "-CAfile"])
            .arg(self.ca())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("openssl runs");
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(input).expect("openssl reads its input");
        }
        child.wait_with_output().expect("openssl ends")
    }
}

/// Asserts that `message` is one of the messages the shared Dovecot
/// fixture put in `user`'s maildir.
///
/// # Panics
/// When it is not (the message shows what came).
pub fn assert_stored(user: &str, message: &[u8]) {
    assert!(
        Dovecot::shared().messages(user).contains(&message),
        "not a message of {user}: {}",
        String::from_utf8_lossy(message)
    );
}

/// Connection limits, as `program` answers them: with `mmp.connlimits`
/// allowing one connection per address, a second one from 127.0.0.4 is
/// refused with a line starting with `refusal` while 127.0.0.5 is greeted
/// with `ok`; with `mmp.maxclients = 2`, a third connection is refused.
/// Each refusal is logged.
///
/// # Panics
/// When the front end does otherwise.
pub fn assert_connection_limits(program: &Path, protocol: Protocol, ok: &str, refusal: &str) {
    let cases = [
        (
            "connlimits = \"0.0.0.0|0.0.0.0:1\"\n",
            "127.0.0.4,127.0.0.4,127.0.0.5",
            [ok, refusal, ok],
            "connection refused: mmp.connlimits reached",
        ),
        (
            "maxclients = 2\n",
            "127.0.0.4,127.0.0.5,127.0.0.6",
            [ok, ok, refusal],
            "connection refused: mmp.maxclients reached",
        ),
    ];
    for (mmp, sources, expected, logged) in cases {
        let daemon = FrontendDaemon::start(
            program,
            protocol,
            &Setup {
                mmp,
                ..Setup::default()
            },
        );
        let r = daemon.line("connections", daemon.port, sources, "-", "127.0.0.1");
        let greetings = r.all("greeting");
        assert_eq!(greetings.len(), expected.len(), "{mmp}: {greetings:?}");
        for (greeting, start) in greetings.iter().zip(expected) {
            assert!(greeting.starts_with(start), "{mmp}: {greetings:?}");
        }
        daemon.log().wait_for(logged, 1);
    }
}

/// A service-level filter that needs the client's host name, with the
/// only name server a loopback port nothing listens on: both listeners
/// refuse with a line starting with `refusal` (never a grant) and log the
/// temporary failure. The client comes from a documentation address
/// through a trusted PROXY header, since resolvers answer reverse lookups
/// of loopback addresses themselves.
///
/// # Panics
/// When the front end does otherwise.
pub fn assert_dns_failure_is_temporary(program: &Path, protocol: Protocol, refusal: &str) {
    let dns = format!("dnsservers = \"127.0.0.1:{}\"\n", free_port());
    let filter = format!("domainnotallowed = \"{}: .example.net\"\n", protocol.name());
    let daemon = FrontendDaemon::start(
        program,
        protocol,
        &Setup {
            local: &dns,
            protocol: &filter,
            mmp: "trustedproxies = \"127.0.0.0/8\"\n",
            ..Setup::default()
        },
    );
    for greeting in daemon.proxied_greetings("192.0.2.16") {
        assert!(greeting.starts_with(refusal), "{greeting}");
    }
    let log = daemon
        .log()
        .wait_for("tempfail in the service access filter", 2);
    assert!(log.contains("client=192.0.2.16:40077"), "{log}");
}

/// The `key=value` lines of a client run.
#[derive(Debug, Clone, Default)]
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    /// The value of the first `key` line.
    ///
    /// # Panics
    /// When there is none (the message shows every line).
    #[must_use]
    pub fn get(&self, key: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {key} in {:?}", self.0))
    }

    /// Whether a `key` line was printed.
    #[must_use]
    pub fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    /// The values of every `key` line, in order.
    #[must_use]
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The keys in the order they were printed.
    #[must_use]
    pub fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_str()).collect()
    }

    /// A hex-encoded value's bytes.
    ///
    /// # Panics
    /// When there is no such line or it is not hex.
    #[must_use]
    pub fn bytes(&self, key: &str) -> Vec<u8> {
        unhex(self.get(key))
    }

    /// Parses `key=value` lines (lines without `=` are skipped).
    #[must_use]
    pub fn parse(text: &str) -> Self {
        Self(
            text.lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }
}

/// Hex text's bytes.
///
/// # Panics
/// When the text is not hex.
#[must_use]
pub fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Runs `python3 SCRIPT SCENARIO 127.0.0.1 PORT CAFILE USER PASSWORD
/// SOURCE` (bounded by `timeout 120`) against `frontend`; its lines.
///
/// # Panics
/// When the script fails (the message shows its output and the front
/// end's log).
#[must_use]
pub fn run_client(
    script: &Path,
    frontend: &FrontendDaemon,
    scenario: &str,
    port: u16,
    user: &str,
    password: &str,
    source: &str,
) -> Fields {
    let out = Command::new("timeout")
        .args(["120", "python3"])
        .arg(script)
        .args([scenario, "127.0.0.1", &port.to_string()])
        .arg(frontend.ca())
        .args([user, password, source])
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{scenario}: {stdout}\n{}\n{}:\n{}",
        String::from_utf8_lossy(&out.stderr),
        frontend.protocol.name(),
        frontend.log().text()
    );
    Fields::parse(&stdout)
}

/// The protocol-neutral client script (`data/line_client.py` of this
/// crate): scenarios `connections` (one connection per address of a
/// comma-separated list, each first line), `idle` (the greeting, then
/// what comes before the close), `overlong` (a 100,000-octet line after a
/// head, then a follow-up command), `ssl-greeting` and `proxied-greeting`
/// (behind a PROXY v1 header naming another client address, plaintext or
/// TLS).
#[must_use]
pub fn line_client() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/line_client.py")
}

/// Dovecot's login line (`imap-login` or `pop3-login`) for `user` from
/// client address `rip`, waited for.
///
/// # Panics
/// When Dovecot logs none within [`LOG_WAIT`].
#[must_use]
pub fn store_login(dovecot: &Dovecot, protocol: Protocol, user: &str, rip: &str) -> String {
    let process = match protocol {
        Protocol::Imap => "imap-login",
        Protocol::Pop => "pop3-login",
    };
    let needle = format!("user=<{user}>");
    let rip = format!("rip={rip},");
    let deadline = std::time::Instant::now() + LOG_WAIT;
    loop {
        let log = dovecot.log();
        if let Some(line) = log
            .lines()
            .find(|l| l.contains(process) && l.contains(&needle) && l.contains(&rip))
        {
            return line.to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline && dovecot.is_running(),
            "Dovecot logged no {process} {needle} with {rip}:\n{log}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
