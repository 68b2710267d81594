//! The configuration file a front end daemon (imapd, popd) runs with in
//! tests: the shared slapd as its directory (STARTTLS, the service bind),
//! the shared Dovecot as its store (STARTTLS, verified, the master user),
//! listeners on `127.0.0.1`. The certificate database (`certdb` beside
//! the file) is the caller's: it holds the server certificate.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::FixtureError;
use crate::dovecot::Dovecot;
use crate::slapd::Slapd;

/// What goes into the configuration; each `&str` is TOML lines added to
/// a table.
#[derive(Debug, Clone, Copy)]
pub struct FrontendConfig<'a> {
    /// `imap` or `pop`.
    pub service: &'a str,
    /// The STARTTLS port.
    pub port: u16,
    /// The implicit-TLS port.
    pub sslport: u16,
    /// Lines for `[local]`.
    pub local: &'a str,
    /// Lines for `[service.<service>]`.
    pub service_lines: &'a str,
    /// Lines for `[mmp]` (naming `storehosts` replaces the Dovecot store).
    pub mmp: &'a str,
    /// Tables appended at the end (`[local.metrics]`, …).
    pub tail: &'a str,
}

impl<'a> FrontendConfig<'a> {
    /// The configuration of `service` on `port` and `sslport`, nothing
    /// added.
    #[must_use]
    pub fn new(service: &'a str, port: u16, sslport: u16) -> Self {
        Self {
            service,
            port,
            sslport,
            local: "",
            service_lines: "",
            mmp: "",
            tail: "",
        }
    }

    /// The text of the configuration file, with the CA files it names
    /// (`ldap-ca.pem`, `store-ca.pem`) written into `dir`.
    ///
    /// # Errors
    /// When a file cannot be written.
    pub fn text(&self, dir: &Path) -> Result<String, FixtureError> {
        let slapd = Slapd::shared();
        let dovecot = Dovecot::shared();
        std::fs::write(dir.join("ldap-ca.pem"), slapd.ca_pem())?;
        std::fs::write(dir.join("store-ca.pem"), dovecot.ca_pem())?;
        let (admin, admin_pw) = dovecot.master_user();
        let store_port = if self.service == "pop" {
            dovecot.pop3_port()
        } else {
            dovecot.imap_port()
        };
        let stores = if self.mmp.contains("storehosts") {
            String::new()
        } else {
            format!("storehosts = [\"127.0.0.1:{store_port}\"]\n")
        };
        Ok(format!(
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
             [service.{service}]\n\
             port = {port}\n\
             sslport = {sslport}\n\
             {service_lines}\n\
             [sasl.default.ldap]\n\
             has_plain_passwords = true\n\
             [mmp]\n\
             {stores}\
             backsidetls = \"starttls\"\n\
             backsidecafile = \"store-ca.pem\"\n\
             storeadmin = {admin:?}\n\
             storepassword = {admin_pw:?}\n\
             authfailuredelay = 1\n\
             {mmp}\n\
             {tail}\n",
            ldap = slapd.port(),
            bind_dn = slapd.service_dn(),
            bind_pw = slapd.service_password(),
            base = slapd.base_dn(),
            local = self.local,
            service = self.service,
            port = self.port,
            sslport = self.sslport,
            service_lines = self.service_lines,
            mmp = self.mmp,
            tail = self.tail,
        ))
    }

    /// Writes [`FrontendConfig::text`] to `dir/portcullis.toml`; its path.
    ///
    /// # Errors
    /// When a file cannot be written.
    pub fn write(&self, dir: &Path) -> Result<PathBuf, FixtureError> {
        let path = dir.join("portcullis.toml");
        std::fs::write(&path, self.text(dir)?)?;
        Ok(path)
    }
}

/// `curl` on a daemon's metrics listener (`127.0.0.1:port`): the HTTP
/// status and the body.
///
/// # Panics
/// When curl cannot run or fails to connect.
#[must_use]
pub fn http(port: u16, method: &str, path: &str) -> (u16, String) {
    let out = Command::new("timeout")
        .args(["30", "curl", "-sS", "-X", method, "-w", "\n%{http_code}"])
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .unwrap_or_else(|e| panic!("curl: {e}"));
    assert!(out.status.success(), "curl: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text
        .rsplit_once('\n')
        .unwrap_or_else(|| panic!("curl printed no status: {text}"));
    let status = status
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("status {status:?}: {e}"));
    (status, body.to_owned())
}

/// The value of one series (`name{labels}`, exactly as exposed) in a
/// scrape; 0 when absent (a counter not touched yet).
///
/// # Panics
/// When the value is not a number.
#[must_use]
pub fn metric(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| {
            v.trim()
                .parse()
                .unwrap_or_else(|e| panic!("{series} = {v:?}: {e}"))
        })
}

/// `GET /metrics` on `127.0.0.1:port`: the scrape, checked to be a
/// complete one (status 200, ending with `# EOF`).
///
/// # Panics
/// When curl fails, the status is not 200 or the text is cut short.
#[must_use]
pub fn scrape(port: u16) -> String {
    let (status, body) = http(port, "GET", "/metrics");
    assert_eq!(status, 200, "{body}");
    assert!(body.ends_with("# EOF\n"), "{body}");
    body
}

/// Scrapes until `series` reaches at least `min` (counters a session
/// moves as the server finishes it, just after its client is done);
/// polls up to [`crate::daemon::LOG_WAIT`].
///
/// # Panics
/// When the series is still below `min` after the last poll.
#[must_use]
pub fn scrape_until(port: u16, series: &str, min: f64) -> String {
    // A bounded number of polls, 50 ms apart (about LOG_WAIT in all).
    let polls = crate::daemon::LOG_WAIT.as_millis() / 50;
    let mut text = String::new();
    for _ in 0..polls {
        text = scrape(port);
        if metric(&text, series) >= min {
            return text;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{series} below {min} after {polls} scrapes:\n{text}");
}
