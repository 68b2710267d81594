//! A throwaway Postfix on loopback high ports, with an `smtp-sink` behind it.
//!
//! The instance has its own scratch `main.cf`/`master.cf`, queue, data
//! directory and log file, and two `smtpd` listeners on `127.0.0.1`:
//!
//! * [`Postfix::smtp_port`]: plain SMTP; `smtpd_authorized_xclient_hosts =
//!   127.0.0.0/8`, so a proxy on loopback may use XCLIENT;
//! * [`Postfix::proxy_port`]: the same with `smtpd_upstream_proxy_protocol =
//!   haproxy` (the PROXY v1/v2 header is required there).
//!
//! Relaying is refused unless the client is authenticated
//! (`permit_sasl_authenticated, reject_unauth_destination`, `mynetworks =
//! 127.0.0.1/32`); XCLIENT `LOGIN=` counts as authenticated. Everything
//! Postfix delivers goes to an `smtp-sink` whose dump file
//! [`Postfix::sink_dump`] returns, and the mail log is
//! [`Postfix::maillog`].
//!
//! Traps handled here: Postfix exits silently unless `maillog_file_prefixes`
//! allows the log path; `data_directory` must belong to `postfix`; every
//! service runs with chroot `n`; `master -d` runs in the foreground, so the
//! guard can stop it by PID; `smtp-sink` refuses to run as root without `-u`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{FixtureError, Guarded, free_port, require, run, wait_for_port};

/// Options for [`Postfix::start_with`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct PostfixOptions {
    /// PEM certificate chain and key: offer STARTTLS (`smtpd_tls_security_level = may`).
    pub tls: Option<(String, String)>,
}

impl PostfixOptions {
    /// Offer STARTTLS with this certificate chain and key (PEM).
    #[must_use]
    pub fn with_tls(cert_pem: &str, key_pem: &str) -> Self {
        Self {
            tls: Some((cert_pem.to_owned(), key_pem.to_owned())),
        }
    }
}

/// A running Postfix instance (stopped on drop).
#[derive(Debug)]
pub struct Postfix {
    master: Option<Guarded>,
    sink: Option<Guarded>,
    smtp_port: u16,
    proxy_port: u16,
    sink_port: u16,
    dir: tempfile::TempDir,
}

fn chown_postfix(path: &Path) -> Result<(), FixtureError> {
    run(
        Command::new("chown").arg("postfix:postfix").arg(path),
        "chown postfix data directory",
    )
    .map(|_| ())
}

impl Postfix {
    /// A plain instance (no TLS).
    ///
    /// # Errors
    /// When Postfix or smtp-sink is missing or does not come up.
    pub fn start() -> Result<Self, FixtureError> {
        Self::start_with(&PostfixOptions::default())
    }

    /// An instance with `options`.
    ///
    /// # Errors
    /// When Postfix or smtp-sink is missing or does not come up.
    pub fn start_with(options: &PostfixOptions) -> Result<Self, FixtureError> {
        let postfix = require("postfix", "Debian package postfix")?;
        let sink_bin = require("smtp-sink", "Debian package postfix")?;
        let daemon_dir = run(
            Command::new(require("postconf", "Debian package postfix")?)
                // The compiled-in default: a fresh install (debconf "No
                // configuration") has no /etc/postfix/main.cf to read.
                .args(["-d", "-h", "daemon_directory"]),
            "postconf -d -h daemon_directory",
        )?;
        let master_bin = PathBuf::from(daemon_dir.trim()).join("master");

        let dir = tempfile::Builder::new()
            .prefix("portcullis-postfix-")
            .tempdir()?;
        // Postfix refuses group/other-writable parents of its queue.
        run(
            Command::new("chmod").arg("755").arg(dir.path()),
            "chmod scratch folder",
        )?;
        let etc = dir.path().join("etc");
        let data = dir.path().join("data");
        let sink_dir = dir.path().join("sink");
        for d in [&etc, &data, &sink_dir, &dir.path().join("queue")] {
            std::fs::create_dir_all(d)?;
        }
        chown_postfix(&data)?;
        chown_postfix(&sink_dir)?;

        let (smtp_port, proxy_port, sink_port) = distinct_ports();
        let root = dir.path().display().to_string();
        let mut main_cf = format!(
            "compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
mail_owner = postfix
setgid_group = postdrop
myhostname = relay.portcullis.test
mydomain = portcullis.test
myorigin = $myhostname
mydestination = $myhostname, localhost
inet_interfaces = 127.0.0.1
inet_protocols = all
mynetworks = 127.0.0.1/32
smtpd_authorized_xclient_hosts = 127.0.0.0/8
smtpd_sasl_auth_enable = yes
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
default_transport = smtp:[127.0.0.1]:{sink_port}
relay_transport = smtp:[127.0.0.1]:{sink_port}
local_transport = smtp:[127.0.0.1]:{sink_port}
smtp_dns_support_level = disabled
smtp_host_lookup = native
smtpd_peername_lookup = no
biff = no
alias_maps =
alias_database =
local_recipient_maps =
smtpd_banner = $myhostname ESMTP portcullis-test
smtpd_upstream_proxy_timeout = 5s
"
        );
        if let Some((cert, key)) = &options.tls {
            let cert_path = etc.join("smtpd.crt");
            let key_path = etc.join("smtpd.key");
            std::fs::write(&cert_path, cert)?;
            std::fs::write(&key_path, key)?;
            main_cf.push_str(&format!(
                "smtpd_tls_security_level = may
smtpd_tls_chain_files = {key}, {cert}
smtpd_tls_session_cache_database =
smtpd_tls_loglevel = 1
",
                key = key_path.display(),
                cert = cert_path.display()
            ));
        }
        std::fs::write(etc.join("main.cf"), main_cf)?;
        std::fs::write(
            etc.join("master.cf"),
            format!(
                "127.0.0.1:{smtp_port} inet n - n - - smtpd
127.0.0.1:{proxy_port} inet n - n - - smtpd -o smtpd_upstream_proxy_protocol=haproxy
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
tlsmgr unix - - n 1000? 1 tlsmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"
            ),
        )?;
        // Creates the queue subdirectories with the right owners.
        run(
            Command::new("timeout")
                .arg("60")
                .arg(&postfix)
                .arg("-c")
                .arg(&etc)
                .arg("check"),
            "postfix check",
        )?;

        let sink = Guarded::spawn(
            "smtp-sink",
            &sink_bin,
            &[
                "-u",
                "postfix",
                "-D",
                &format!("{}/dump", sink_dir.display()),
                &format!("127.0.0.1:{sink_port}"),
                "50",
            ],
            &[],
            &dir.path().join("sink.log"),
        )?;
        let etc_s = etc.display().to_string();
        let master = Guarded::spawn(
            "postfix master",
            &master_bin,
            &["-c", &etc_s, "-d"],
            &[("MAIL_CONFIG", &etc_s)],
            &dir.path().join("master.log"),
        )?;
        let mut me = Self {
            master: Some(master),
            sink: Some(sink),
            smtp_port,
            proxy_port,
            sink_port,
            dir,
        };
        for port in [smtp_port, proxy_port, sink_port] {
            if !wait_for_port(port, crate::START_WAIT) {
                let log = format!(
                    "{}\n{}\n{}",
                    me.master
                        .as_ref()
                        .map(Guarded::log_tail)
                        .unwrap_or_default(),
                    me.sink.as_ref().map(Guarded::log_tail).unwrap_or_default(),
                    me.maillog()
                );
                me.stop();
                return Err(FixtureError::NotReady {
                    what: format!("postfix (port {port})"),
                    secs: crate::START_WAIT.as_secs(),
                    log,
                });
            }
        }
        Ok(me)
    }

    /// The plain listener (XCLIENT allowed from loopback).
    #[must_use]
    pub fn smtp_port(&self) -> u16 {
        self.smtp_port
    }

    /// The listener that expects a PROXY protocol header.
    #[must_use]
    pub fn proxy_port(&self) -> u16 {
        self.proxy_port
    }

    /// The smtp-sink port Postfix delivers to.
    #[must_use]
    pub fn sink_port(&self) -> u16 {
        self.sink_port
    }

    /// The scratch configuration directory (`postfix -c` argument).
    #[must_use]
    pub fn config_dir(&self) -> PathBuf {
        self.dir.path().join("etc")
    }

    /// The master's PID, while it runs.
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.master.as_ref().map(Guarded::pid)
    }

    /// The smtp-sink's PID, while it runs.
    #[must_use]
    pub fn sink_pid(&self) -> Option<u32> {
        self.sink.as_ref().map(Guarded::pid)
    }

    /// The mail log so far.
    #[must_use]
    pub fn maillog(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }

    /// Everything smtp-sink received so far.
    #[must_use]
    pub fn sink_dump(&self) -> String {
        std::fs::read(self.dir.path().join("sink/dump"))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Waits until a mail-log line contains every one of `needles`; returns it.
    #[must_use]
    pub fn wait_for_log(&self, needles: &[&str], timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self
                .maillog()
                .lines()
                .find(|l| needles.iter().all(|n| l.contains(n)))
            {
                return Some(line.to_owned());
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the sink has received a message containing `needle`.
    #[must_use]
    pub fn wait_for_delivery(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.sink_dump().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops Postfix (`postfix -c DIR stop`, then by PID) and the sink. Idempotent.
    pub fn stop(&mut self) {
        if self.master.is_some()
            && let Some(postfix) = crate::which("postfix")
        {
            let _ = Command::new("timeout")
                .arg("20")
                .arg(postfix)
                .arg("-c")
                .arg(self.config_dir())
                .arg("stop")
                .output();
        }
        if let Some(mut m) = self.master.take() {
            m.stop();
        }
        if let Some(mut s) = self.sink.take() {
            s.stop();
        }
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Three different free ports.
fn distinct_ports() -> (u16, u16, u16) {
    let a = free_port();
    let mut b = free_port();
    while b == a {
        b = free_port();
    }
    let mut c = free_port();
    while c == a || c == b {
        c = free_port();
    }
    (a, b, c)
}
