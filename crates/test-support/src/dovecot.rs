//! A throwaway Dovecot message store on loopback.
//!
//! The instance has its own scratch folder (configuration written from
//! scratch, nothing included from `/etc/dovecot`, its own `base_dir`, log
//! file and maildirs) and six listeners on `127.0.0.1`:
//!
//! * [`Dovecot::imap_port`]: IMAP with STARTTLS; [`Dovecot::imaps_port`]:
//!   IMAP over implicit TLS;
//! * [`Dovecot::pop3_port`]: POP3 with STLS; [`Dovecot::pop3s_port`]: POP3
//!   over implicit TLS;
//! * [`Dovecot::imap_haproxy_port`], [`Dovecot::pop3_haproxy_port`]: the
//!   same as the plain ports behind a required PROXY protocol header.
//!
//! The certificate is issued at start by a fresh [`TestCa`] for `127.0.0.1`
//! and `localhost` ([`Dovecot::ca_pem`]). The users are those of the slapd
//! test directory with the same passwords ([`USERS`]); each has a maildir
//! with a few messages ([`Dovecot::messages`], [`Dovecot::add_message`]).
//! A master user ([`MASTER_USER`]) may log in as anyone, either as
//! `user*master` with its own password (`auth_master_user_separator`) or
//! with SASL PLAIN, the user as authorization identity.
//!
//! `login_trusted_networks = 127.0.0.0/8`, so Dovecot believes a proxy on
//! loopback that passes the client's address (IMAP `ID x-originating-ip`,
//! POP3 `XCLIENT ADDR=`); its log ([`Dovecot::log`]) shows what it believed
//! in `Login: user=<…>, method=…, rip=…, rport=…, …, auth_user=<…>` lines
//! (`auth_user` is the authentication identity: the user itself, or the
//! master user when it logged in for the user). The POP3 greeting of a
//! trusted client carries `[XCLIENT]`. With
//! [`DovecotOptions::log_client_id`] the IMAP ID fields a client sent are
//! logged too (`imap_id_log = *`: `ID sent: name=…, …: user=<>, rip=…`).
//!
//! Traps handled here: the master keeps its caller's descriptors open (the
//! guard redirects all of them); the login processes run chrooted as an
//! unprivileged user, so the scratch folder must be world-searchable; mail
//! is never accessed as root (as root the maildirs belong to `nobody`);
//! `auth_failure_delay = 0`, or failed logins take seconds.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::ca::TestCa;
use crate::{FixtureError, Guarded, free_port, require, run, wait_for_port_of};

/// The test users and their passwords: the same as in the slapd test
/// directory.
pub const USERS: &[(&str, &str)] = &[
    ("alice", "alice-pw"),
    ("bob", "bob-pw"),
    ("carol", "carol-pw"),
    ("dave", "dave-pw"),
    ("admin", "admin-pw"),
    ("erin", "erin-pw"),
];

/// The master user, which may log in as any user.
pub const MASTER_USER: &str = "mmpadmin";
/// Its password.
pub const MASTER_PASSWORD: &str = "mmpadmin-secret";
/// `auth_master_user_separator`: `alice*mmpadmin` logs in as alice with the
/// master user's password.
pub const MASTER_SEPARATOR: char = '*';

/// How many messages each user's maildir holds at start.
pub const MESSAGES_PER_USER: usize = 2;

/// Options for [`Dovecot::start_with`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct DovecotOptions {
    /// High-performance mode: the login services handle many clients per
    /// process (`service_count = 0`, `process_min_avail` = the number of
    /// CPUs), as Dovecot's documentation recommends for large sites.
    pub high_performance: bool,
    /// Users are checked against this directory (an LDAP passdb binding as
    /// the user, `auth_bind = yes`) instead of the passwd-file; the master
    /// user stays in its file.
    pub ldap: Option<LdapPassdb>,
    /// Clients one login process serves at once (`client_limit`, and the
    /// limits around it sized to match), for load runs that hold
    /// thousands of connections. The caller raises the descriptor limit
    /// Dovecot inherits.
    pub client_limit: Option<u32>,
    /// Log the IMAP ID fields clients send (`imap_id_log = *`): an `ID
    /// sent: …` line per ID command, which also carries `rip=`.
    pub log_client_id: bool,
}

/// The directory an LDAP passdb ([`DovecotOptions::ldap`]) reads.
#[derive(Debug, Clone)]
pub struct LdapPassdb {
    /// `ldap://127.0.0.1:PORT`.
    pub uri: String,
    /// Search base of the users.
    pub base: String,
    /// The service account that searches for the user's entry.
    pub bind_dn: String,
    /// Its password.
    pub bind_password: String,
}

impl DovecotOptions {
    /// The high-performance mode (see [`DovecotOptions::high_performance`]).
    #[must_use]
    pub fn high_performance() -> Self {
        Self {
            high_performance: true,
            ..Self::default()
        }
    }

    /// Logging the clients' ID fields (see
    /// [`DovecotOptions::log_client_id`]).
    #[must_use]
    pub fn log_client_id() -> Self {
        Self {
            log_client_id: true,
            ..Self::default()
        }
    }

    /// Users checked against `ldap` (see [`DovecotOptions::ldap`]).
    #[must_use]
    pub fn with_ldap(mut self, ldap: LdapPassdb) -> Self {
        self.ldap = Some(ldap);
        self
    }

    /// Login processes serving `n` clients each (see
    /// [`DovecotOptions::client_limit`]).
    #[must_use]
    pub fn with_client_limit(mut self, n: u32) -> Self {
        self.client_limit = Some(n);
        self
    }
}

/// A running Dovecot (stopped when dropped, by the master's PID).
#[derive(Debug)]
pub struct Dovecot {
    process: Guarded,
    imap_port: u16,
    imaps_port: u16,
    pop3_port: u16,
    pop3s_port: u16,
    imap_haproxy_port: u16,
    pop3_haproxy_port: u16,
    dir: PathBuf,
    ca_pem: String,
    mail_owner: Option<(u32, u32)>,
    messages: Vec<(String, Vec<u8>)>,
    _tmp: Option<tempfile::TempDir>,
}

/// Who runs what, as Dovecot wants it.
struct Accounts {
    /// `default_internal_user` and `default_login_user`.
    internal: String,
    login: String,
    /// uid/gid of mail access.
    mail_uid: u32,
    mail_gid: u32,
    /// Whether files we write must be given to `mail_uid`.
    chown: bool,
}

/// `/etc/passwd` entries: name, uid, gid.
fn passwd() -> Vec<(String, u32, u32)> {
    std::fs::read_to_string("/etc/passwd")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?.to_owned();
            let _pw = f.next()?;
            let uid = f.next()?.parse().ok()?;
            let gid = f.next()?.parse().ok()?;
            Some((name, uid, gid))
        })
        .collect()
}

/// The real uid and gid of this process (from `/proc/self/status`).
fn current_ids() -> Option<(u32, u32)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u32> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    Some((field("Uid:")?, field("Gid:")?))
}

fn accounts() -> Result<Accounts, FixtureError> {
    let users = passwd();
    let (uid, gid) = current_ids().ok_or_else(|| FixtureError::Command {
        what: "reading this process's uid".to_owned(),
        detail: "/proc/self/status has no Uid/Gid".to_owned(),
    })?;
    let find = |name: &str| users.iter().find(|(n, _, _)| n == name);
    if uid == 0 {
        // Dovecot refuses mail access as root; the login processes run as
        // the packaged unprivileged users when they exist.
        let nobody = find("nobody").ok_or_else(|| FixtureError::Command {
            what: "finding the nobody user".to_owned(),
            detail: "no nobody entry in /etc/passwd".to_owned(),
        })?;
        let pick = |want: &str| {
            find(want)
                .map(|(n, _, _)| n.clone())
                .unwrap_or_else(|| nobody.0.clone())
        };
        Ok(Accounts {
            internal: pick("dovecot"),
            login: pick("dovenull"),
            mail_uid: nobody.1,
            mail_gid: nobody.2,
            chown: true,
        })
    } else {
        // Unprivileged: everything runs as the current user.
        let me = users
            .iter()
            .find(|(_, u, _)| *u == uid)
            .map(|(n, _, _)| n.clone())
            .ok_or_else(|| FixtureError::Command {
                what: "finding the current user".to_owned(),
                detail: format!("no /etc/passwd entry for uid {uid}"),
            })?;
        Ok(Accounts {
            internal: me.clone(),
            login: me,
            mail_uid: uid,
            mail_gid: gid,
            chown: false,
        })
    }
}

fn sample_message(user: &str, n: usize) -> Vec<u8> {
    format!(
        "Return-Path: <sender@example.net>\r\n\
         From: Sender <sender@example.net>\r\n\
         To: {user} <{user}@example.com>\r\n\
         Subject: Test message {n} for {user}\r\n\
         Date: Thu, 03 Dec 2026 08:00:0{n} +0000\r\n\
         Message-ID: <{n}.{user}@portcullis.test>\r\n\
         \r\n\
         Hello {user}, this is message {n}.\r\n\
         .A line that starts with a dot.\r\n"
    )
    .into_bytes()
}

impl Dovecot {
    /// The instance shared by every test of this test binary (plain
    /// options), started on first use and stopped when the process exits.
    ///
    /// # Panics
    /// When Dovecot cannot start: tests that need it fail, they do not skip.
    pub fn shared() -> &'static Dovecot {
        static SHARED: OnceLock<Dovecot> = OnceLock::new();
        SHARED.get_or_init(|| {
            Self::launch(&DovecotOptions::default(), true)
                .unwrap_or_else(|e| panic!("the Dovecot test fixture cannot start: {e}"))
        })
    }

    /// An instance of its own with default options, stopped when dropped.
    ///
    /// # Errors
    /// When Dovecot is not installed or does not come up.
    pub fn start() -> Result<Self, FixtureError> {
        Self::launch(&DovecotOptions::default(), false)
    }

    /// An instance of its own with `options`, stopped when dropped.
    ///
    /// # Errors
    /// When Dovecot is not installed or does not come up.
    pub fn start_with(options: &DovecotOptions) -> Result<Self, FixtureError> {
        Self::launch(options, false)
    }

    fn launch(options: &DovecotOptions, shared: bool) -> Result<Self, FixtureError> {
        let dovecot = require("dovecot", "Debian packages dovecot-imapd and dovecot-pop3d")?;
        let accounts = accounts()?;
        let tmp = tempfile::Builder::new()
            .prefix("portcullis-dovecot-")
            .tempdir()?;
        let dir = tmp.path().to_owned();
        // The login processes (an unprivileged user, chrooted under
        // base_dir) must be able to reach base_dir.
        run(
            Command::new("chmod").arg("755").arg(&dir),
            "chmod scratch folder",
        )?;
        let mail_owner = accounts
            .chown
            .then_some((accounts.mail_uid, accounts.mail_gid));
        for sub in ["run", "state", "mail", "home"] {
            std::fs::create_dir(dir.join(sub))?;
        }

        // A name of its own per instance: a client that trusts two
        // instances' CAs must not mistake one for the other (same subject,
        // other key: a bad signature).
        let ca = TestCa::new(&format!(
            "Portcullis Dovecot test CA {}.{}",
            std::process::id(),
            crate::unique()
        ))?;
        let server = ca.issue_server(&["127.0.0.1", "localhost"])?;
        std::fs::write(dir.join("ca.pem"), ca.cert_pem())?;
        std::fs::write(dir.join("server.pem"), &server.cert_pem)?;
        std::fs::write(dir.join("server.key"), &server.key_pem)?;

        let users: String = USERS
            .iter()
            .map(|(u, p)| format!("{u}:{{PLAIN}}{p}\n"))
            .collect();
        std::fs::write(dir.join("users"), users)?;
        std::fs::write(
            dir.join("master-users"),
            format!("{MASTER_USER}:{{PLAIN}}{MASTER_PASSWORD}\n"),
        )?;
        if let Some(ldap) = &options.ldap {
            // The search finds the user's entry with the service account,
            // then Dovecot binds as that entry with the given password.
            std::fs::write(
                dir.join("dovecot-ldap.conf.ext"),
                format!(
                    "uris = {}\ndn = {}\ndnpass = {}\nauth_bind = yes\nbase = {}\n\
                     scope = subtree\npass_filter = (&(objectClass=inetOrgPerson)(uid=%n))\n",
                    ldap.uri, ldap.bind_dn, ldap.bind_password, ldap.base
                ),
            )?;
        }

        let mut messages = Vec::new();
        for (user, _) in USERS {
            let home = dir.join("home").join(user);
            std::fs::create_dir(&home)?;
            give(mail_owner, &home)?;
            for n in 1..=MESSAGES_PER_USER {
                let bytes = sample_message(user, n);
                deliver(&dir, mail_owner, user, &bytes)?;
                messages.push(((*user).to_owned(), bytes));
            }
        }

        let dovecot_args = |conf: &Path| vec!["-F".to_owned(), "-c".to_owned(), path_str(conf)];
        let mut last_log = String::new();
        for attempt in 0..5 {
            let ports = [
                free_port(),
                free_port(),
                free_port(),
                free_port(),
                free_port(),
                free_port(),
            ];
            let conf = config(&dir, &accounts, options, ports);
            let conf_path = dir.join(format!("dovecot-{attempt}.conf"));
            std::fs::write(&conf_path, conf)?;
            let dir_arg = path_str(&dir);
            let cleanup: &[(&str, &str)] = if shared {
                &[("PORTCULLIS_FIXTURE_CLEANUP", dir_arg.as_str())]
            } else {
                &[]
            };
            let args = dovecot_args(&conf_path);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let process = Guarded::spawn(
                "dovecot",
                &dovecot,
                &args,
                cleanup,
                &dir.join(format!("dovecot-{attempt}.out")),
            )?;
            let listening = ports.iter().all(|p| wait_for_port_of(*p, &process));
            if listening && greeting(ports[0], "* OK").is_ok() && greeting(ports[2], "+OK").is_ok()
            {
                let tmp = if shared {
                    crate::process::arm_cleanup(&dir)?;
                    let _ = tmp.keep();
                    None
                } else {
                    Some(tmp)
                };
                let [
                    imap_port,
                    imaps_port,
                    pop3_port,
                    pop3s_port,
                    imap_haproxy_port,
                    pop3_haproxy_port,
                ] = ports;
                return Ok(Self {
                    process,
                    imap_port,
                    imaps_port,
                    pop3_port,
                    pop3s_port,
                    imap_haproxy_port,
                    pop3_haproxy_port,
                    dir,
                    ca_pem: ca.cert_pem(),
                    mail_owner,
                    messages,
                    _tmp: tmp,
                });
            }
            last_log = format!(
                "{}\n{}",
                process.log_tail(),
                std::fs::read_to_string(dir.join("dovecot.log")).unwrap_or_default()
            );
        }
        Err(FixtureError::NotReady {
            what: "dovecot".to_owned(),
            secs: crate::START_WAIT.as_secs(),
            log: last_log,
        })
    }

    /// The IMAP port (STARTTLS available).
    #[must_use]
    pub fn imap_port(&self) -> u16 {
        self.imap_port
    }

    /// The IMAP port with implicit TLS.
    #[must_use]
    pub fn imaps_port(&self) -> u16 {
        self.imaps_port
    }

    /// The POP3 port (STLS available).
    #[must_use]
    pub fn pop3_port(&self) -> u16 {
        self.pop3_port
    }

    /// The POP3 port with implicit TLS.
    #[must_use]
    pub fn pop3s_port(&self) -> u16 {
        self.pop3s_port
    }

    /// IMAP (STARTTLS available) behind a required PROXY protocol header
    /// (`haproxy = yes`; loopback is in `haproxy_trusted_networks`).
    #[must_use]
    pub fn imap_haproxy_port(&self) -> u16 {
        self.imap_haproxy_port
    }

    /// POP3 (STLS available) behind a required PROXY protocol header.
    #[must_use]
    pub fn pop3_haproxy_port(&self) -> u16 {
        self.pop3_haproxy_port
    }

    /// The test users and their passwords ([`USERS`]).
    #[must_use]
    pub fn users(&self) -> &'static [(&'static str, &'static str)] {
        USERS
    }

    /// The master user's name and password.
    #[must_use]
    pub fn master_user(&self) -> (&'static str, &'static str) {
        (MASTER_USER, MASTER_PASSWORD)
    }

    /// The master user separator ([`MASTER_SEPARATOR`]).
    #[must_use]
    pub fn master_separator(&self) -> char {
        MASTER_SEPARATOR
    }

    /// Dovecot's log so far (`log_path`): logins, disconnects, errors.
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dovecot.log")).unwrap_or_default()
    }

    /// Waits until a line of the log contains `needle` and returns that line.
    ///
    /// Dovecot's log process writes a login's line shortly after the login
    /// itself, so a test that has just seen `+OK` may read the log before
    /// the line is there; this waits for it, up to `timeout` (a hang
    /// guard), and gives `None` when it never comes.
    #[must_use]
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(line) = self.log().lines().find(|l| l.contains(needle)) {
                return Some(line.to_owned());
            }
            if std::time::Instant::now() >= deadline || !self.is_running() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The CA certificate (PEM) that signed the store's certificate.
    #[must_use]
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The same CA certificate as a PEM file.
    #[must_use]
    pub fn ca_pem_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The scratch folder (configuration, log, maildirs).
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The maildir of `user` (its `new`, `cur` and `tmp` folders).
    #[must_use]
    pub fn maildir(&self, user: &str) -> PathBuf {
        self.dir.join("mail").join(user)
    }

    /// The messages the fixture put in every maildir at start, in delivery
    /// order: POP3 message *n* of `user` is the *n*-th of these.
    #[must_use]
    pub fn messages(&self, user: &str) -> Vec<&[u8]> {
        self.messages
            .iter()
            .filter(|(u, _)| u == user)
            .map(|(_, m)| m.as_slice())
            .collect()
    }

    /// Delivers a message (RFC 5322 bytes, CRLF line ends) into `user`'s
    /// maildir `new/` folder; returns the file written. Dovecot sees it at
    /// its next mailbox sync.
    ///
    /// # Errors
    /// When the user name has a path separator or the file cannot be written.
    pub fn add_message(&self, user: &str, message: &[u8]) -> Result<PathBuf, FixtureError> {
        deliver(&self.dir, self.mail_owner, user, message)
    }

    /// An LDIF change for the slapd test directory ([`crate::slapd::Slapd::modify_ldif`])
    /// that gives every test user `mailHost: 127.0.0.1`, this store's host
    /// (the port comes from `mmp.imap.backsideport` / `mmp.pop.backsideport`,
    /// set to [`Dovecot::imap_port`] / [`Dovecot::pop3_port`]).
    #[must_use]
    pub fn mail_host_ldif(&self) -> String {
        USERS
            .iter()
            .map(|(user, _)| {
                let domain = if *user == "erin" {
                    "example.org"
                } else {
                    "example.com"
                };
                format!(
                    "dn: uid={user},ou=People,o={domain},{base}\n\
                     changetype: modify\n\
                     replace: mailHost\n\
                     mailHost: 127.0.0.1\n\n",
                    base = crate::slapd::BASE_DN
                )
            })
            .collect()
    }

    /// The master process's PID.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Whether Dovecot is running.
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.process.is_running()
    }

    /// Stops Dovecot (by the master's PID) and waits until it is gone.
    pub fn stop(&mut self) {
        self.process.stop();
    }
}

/// Gives a path to the mail user (when running as root).
fn give(owner: Option<(u32, u32)>, path: &Path) -> Result<(), FixtureError> {
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
    }
    Ok(())
}

/// Writes a message into `user`'s maildir under `dir/mail` the way a
/// delivery agent does (tmp/, then a rename into new/).
fn deliver(
    dir: &Path,
    owner: Option<(u32, u32)>,
    user: &str,
    message: &[u8],
) -> Result<PathBuf, FixtureError> {
    if user.is_empty() || user.contains(['/', '\0']) || user.starts_with('.') {
        return Err(FixtureError::Command {
            what: "adding a message".to_owned(),
            detail: format!("{user:?} is not a usable user name"),
        });
    }
    let maildir = dir.join("mail").join(user);
    for d in [
        maildir.clone(),
        maildir.join("new"),
        maildir.join("cur"),
        maildir.join("tmp"),
    ] {
        if !d.exists() {
            std::fs::create_dir(&d)?;
            give(owner, &d)?;
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let name = format!(
        "{}.M{}P{}Q{}.portcullis-test,S={}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        crate::unique(),
        message.len()
    );
    let tmp = maildir.join("tmp").join(&name);
    std::fs::write(&tmp, message)?;
    give(owner, &tmp)?;
    let new = maildir.join("new").join(&name);
    std::fs::rename(&tmp, &new)?;
    Ok(new)
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Reads the first line a listener sends and checks how it starts.
fn greeting(port: u16, expect: &str) -> Result<String, FixtureError> {
    let fail = |detail: String| FixtureError::Command {
        what: format!("reading the greeting on port {port}"),
        detail,
    };
    let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    // A hang guard, not synchronisation: the greeting comes at once.
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    if line.starts_with(expect) {
        Ok(line)
    } else {
        Err(fail(format!("got {line:?}")))
    }
}

fn config(dir: &Path, accounts: &Accounts, options: &DovecotOptions, ports: [u16; 6]) -> String {
    let d = dir.display();
    let [imap, imaps, pop3, pop3s, imap_haproxy, pop3_haproxy] = ports;
    let mut login_tuning = if options.high_performance {
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        format!("  service_count = 0\n  process_min_avail = {cpus}\n")
    } else {
        String::new()
    };
    let mut limits = String::new();
    if let Some(n) = options.client_limit {
        // Every client of a login process is a descriptor there and, once
        // logged in, one imap process; the TLS state of thousands of
        // clients outgrows the default 256 MB address space.
        login_tuning.push_str(&format!("  client_limit = {n}\n  vsz_limit = 2G\n"));
        limits = format!(
            "default_client_limit = {n}\ndefault_process_limit = {n}\n\
             mail_max_userip_connections = {n}\n"
        );
    }
    let passdb = match &options.ldap {
        Some(_) => format!("driver = ldap\n  args = {d}/dovecot-ldap.conf.ext"),
        None => format!("driver = passwd-file\n  args = {d}/users"),
    };
    format!(
        r#"# Written by portcullis-test-support; nothing is read from /etc/dovecot.
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
shutdown_clients = yes
default_internal_user = {internal}
default_login_user = {login}
first_valid_uid = 1
first_valid_gid = 1

ssl = yes
ssl_cert = <{d}/server.pem
ssl_key = <{d}/server.key
ssl_require_crl = no

disable_plaintext_auth = no
auth_mechanisms = plain login
auth_master_user_separator = {MASTER_SEPARATOR}
auth_verbose = yes
auth_failure_delay = 0
login_trusted_networks = 127.0.0.0/8
haproxy_trusted_networks = 127.0.0.0/8
{id_log}login_log_format_elements = user=<%u> method=%m rip=%r rport=%{{rport}} lip=%l mpid=%e %c session=<%{{session}}> auth_user=<%{{auth_user}}>

{limits}mail_location = maildir:{d}/mail/%u
mail_uid = {mail_uid}
mail_gid = {mail_gid}

passdb {{
  driver = passwd-file
  args = {d}/master-users
  master = yes
  pass = yes
}}
passdb {{
  {passdb}
}}
userdb {{
  driver = static
  args = uid={mail_uid} gid={mail_gid} home={d}/home/%u
}}

service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps}
    ssl = yes
  }}
  inet_listener imap-haproxy {{
    address = 127.0.0.1
    port = {imap_haproxy}
    haproxy = yes
  }}
{login_tuning}}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop3}
  }}
  inet_listener pop3s {{
    address = 127.0.0.1
    port = {pop3s}
    ssl = yes
  }}
  inet_listener pop3-haproxy {{
    address = 127.0.0.1
    port = {pop3_haproxy}
    haproxy = yes
  }}
{login_tuning}}}
"#,
        id_log = if options.log_client_id {
            "imap_id_log = *\n"
        } else {
            ""
        },
        internal = accounts.internal,
        login = accounts.login,
        mail_uid = accounts.mail_uid,
        mail_gid = accounts.mail_gid,
    )
}
