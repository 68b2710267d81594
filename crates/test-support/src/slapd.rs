//! A throwaway OpenLDAP `slapd` with the Portcullis test directory.
//!
//! Listens on `ldap://127.0.0.1:PORT` (StartTLS available) and
//! `ldaps://127.0.0.1:PORT2`, with a server certificate issued at start by a
//! fresh [`TestCa`] for `127.0.0.1` and `localhost`. The directory is
//! `data/base.ldif` of this crate, over `data/portcullis.schema`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::ca::TestCa;
use crate::{FixtureError, Guarded, free_port, require, run, wait_for_port_of};

const SCHEMA: &str = include_str!("../data/portcullis.schema");
const BASE_LDIF: &str = include_str!("../data/base.ldif");

/// An extra domain for [`Slapd::add_ldif`]: `example.net`, whose entry
/// denies IMAP and POP (`mailDomainAllowedServiceAccess: -imap,pop:ALL`),
/// with `henry@example.net` (password `henry-pw`), whose own entry allows
/// both. Not in the base directory: a test that needs it adds it.
pub const DENYING_DOMAIN_LDIF: &str = include_str!("../data/example-net.ldif");

/// An extra user for [`Slapd::add_ldif`]: `judy` (password `judy-pw`), an
/// active example.com user the Dovecot fixture does not know, so the
/// directory accepts her login and the store refuses it.
pub const STORELESS_USER_LDIF: &str = "dn: uid=judy,ou=People,o=example.com,o=example\n\
    objectClass: inetOrgPerson\nobjectClass: inetMailUser\nobjectClass: inetUser\n\
    uid: judy\ncn: Judy Example\nsn: Example\nmail: judy@example.com\n\
    mailUserStatus: active\nuserPassword: judy-pw\n";

/// Base DN of the test directory.
pub const BASE_DN: &str = "o=example";
/// The root DN, which may write anything.
pub const ADMIN_DN: &str = "cn=admin,o=example";
/// Its password.
pub const ADMIN_PASSWORD: &str = "admin-secret";
/// The service account, which may read and write `userPassword`.
pub const SERVICE_DN: &str = "cn=portcullis,ou=services,o=example";
/// Its password.
pub const SERVICE_PASSWORD: &str = "service-secret";
/// The administrators group (`groupOfNames`).
pub const ADMINS_GROUP_DN: &str = "cn=Service Administrators,ou=groups,o=example";

/// A running slapd.
#[derive(Debug)]
pub struct Slapd {
    process: Guarded,
    port: u16,
    ldaps_port: u16,
    dir: PathBuf,
    ca_pem: String,
    // Owned instances remove their folder when dropped; the shared one is
    // removed by its guard when the test process exits.
    _tmp: Option<tempfile::TempDir>,
}

impl Slapd {
    /// The instance shared by every test of this test binary.
    ///
    /// # Panics
    /// When slapd cannot start: tests that need it fail, they do not skip.
    pub fn shared() -> &'static Slapd {
        static SHARED: OnceLock<Slapd> = OnceLock::new();
        SHARED.get_or_init(|| {
            Self::launch(true)
                .unwrap_or_else(|e| panic!("the slapd test fixture cannot start: {e}"))
        })
    }

    /// A new instance of its own, stopped when dropped.
    ///
    /// # Errors
    /// When slapd is not installed or does not start.
    pub fn start() -> Result<Self, FixtureError> {
        Self::launch(false)
    }

    fn launch(shared: bool) -> Result<Self, FixtureError> {
        let slapd = require("slapd", "Debian package slapd")?;
        let slapadd = require("slapadd", "Debian package slapd")?;
        let tmp = tempfile::Builder::new()
            .prefix("portcullis-slapd-")
            .tempdir()?;
        let dir = tmp.path().to_owned();
        std::fs::create_dir(dir.join("db"))?;
        std::fs::write(dir.join("portcullis.schema"), SCHEMA)?;
        std::fs::write(dir.join("base.ldif"), BASE_LDIF)?;

        let ca = TestCa::new("Portcullis slapd test CA")?;
        let server = ca.issue_server(&["127.0.0.1", "localhost"])?;
        std::fs::write(dir.join("ca.pem"), ca.cert_pem())?;
        std::fs::write(dir.join("server.pem"), &server.cert_pem)?;
        std::fs::write(dir.join("server.key"), &server.key_pem)?;

        let d = dir.display();
        let conf = format!(
            r#"include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
include {d}/portcullis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {d}/slapd.pid
argsfile {d}/slapd.args
TLSCACertificateFile {d}/ca.pem
TLSCertificateFile {d}/server.pem
TLSCertificateKeyFile {d}/server.key
password-hash {{SSHA}}
sizelimit unlimited

database mdb
maxsize 67108864
suffix "{BASE_DN}"
rootdn "{ADMIN_DN}"
rootpw {ADMIN_PASSWORD}
directory {d}/db
index objectClass eq
index uid,mail,associatedDomain eq

access to attrs=userPassword
  by dn.exact="{SERVICE_DN}" write
  by self write
  by anonymous auth
  by * none
access to *
  by dn.exact="{SERVICE_DN}" write
  by * read
"#
        );
        let conf_path = dir.join("slapd.conf");
        std::fs::write(&conf_path, conf)?;
        run(
            Command::new(&slapadd)
                .arg("-q")
                .arg("-f")
                .arg(&conf_path)
                .arg("-l")
                .arg(dir.join("base.ldif")),
            "slapadd of the test directory",
        )?;

        // Ports can be taken between free_port() and bind: retry a few times.
        let mut last_log = String::new();
        for _ in 0..5 {
            let port = free_port();
            let ldaps_port = free_port();
            let urls = format!("ldap://127.0.0.1:{port}/ ldaps://127.0.0.1:{ldaps_port}/");
            let conf_arg = conf_path.to_string_lossy().into_owned();
            let dir_arg = dir.to_string_lossy().into_owned();
            let cleanup: &[(&str, &str)] = if shared {
                &[("PORTCULLIS_FIXTURE_CLEANUP", dir_arg.as_str())]
            } else {
                &[]
            };
            let process = Guarded::spawn(
                "slapd",
                &slapd,
                &["-d", "0", "-h", &urls, "-f", &conf_arg],
                cleanup,
                &dir.join("slapd.log"),
            )?;
            if wait_for_port_of(port, &process) && wait_for_port_of(ldaps_port, &process) {
                // The shared instance's guard removes the folder at exit.
                let tmp = if shared {
                    crate::process::arm_cleanup(&dir)?;
                    let _ = tmp.keep();
                    None
                } else {
                    Some(tmp)
                };
                return Ok(Self {
                    process,
                    port,
                    ldaps_port,
                    dir,
                    ca_pem: ca.cert_pem(),
                    _tmp: tmp,
                });
            }
            last_log = process.log_tail();
        }
        Err(FixtureError::NotReady {
            what: "slapd".to_owned(),
            secs: crate::START_WAIT.as_secs(),
            log: last_log,
        })
    }

    /// `ldap://127.0.0.1:PORT` (StartTLS is available there).
    #[must_use]
    pub fn ldap_url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// `ldaps://127.0.0.1:PORT`.
    #[must_use]
    pub fn ldaps_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.ldaps_port)
    }

    /// The plain LDAP port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The LDAPS port.
    #[must_use]
    pub fn ldaps_port(&self) -> u16 {
        self.ldaps_port
    }

    /// The CA certificate (PEM file) that signed slapd's certificate.
    #[must_use]
    pub fn ca_pem_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The CA certificate, PEM.
    #[must_use]
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The scratch folder (configuration, database, log).
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Base DN of the test directory.
    #[must_use]
    pub fn base_dn(&self) -> &'static str {
        BASE_DN
    }

    /// The root DN.
    #[must_use]
    pub fn admin_dn(&self) -> &'static str {
        ADMIN_DN
    }

    /// The root DN's password.
    #[must_use]
    pub fn admin_password(&self) -> &'static str {
        ADMIN_PASSWORD
    }

    /// The service account's DN.
    #[must_use]
    pub fn service_dn(&self) -> &'static str {
        SERVICE_DN
    }

    /// The service account's password.
    #[must_use]
    pub fn service_password(&self) -> &'static str {
        SERVICE_PASSWORD
    }

    /// The administrators group.
    #[must_use]
    pub fn admins_group_dn(&self) -> &'static str {
        ADMINS_GROUP_DN
    }

    /// slapd's PID (for `kill -STOP` and friends).
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Whether slapd is running.
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.process.is_running()
    }

    /// Stops slapd and waits until it is gone.
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// Stops slapd (if it runs) and starts it again on the same ports over
    /// the same database, as an administrator's restart does: clients'
    /// connections are cut, the entries stay.
    ///
    /// # Errors
    /// For the [`Slapd::shared`] instance (stopping it removes its folder),
    /// or when slapd does not listen on its ports again.
    pub fn restart(&mut self) -> Result<(), FixtureError> {
        if self._tmp.is_none() {
            return Err(FixtureError::Command {
                what: "restarting slapd".to_owned(),
                detail: "only an instance of its own (Slapd::start) can be restarted".to_owned(),
            });
        }
        self.process.stop();
        let slapd = require("slapd", "Debian package slapd")?;
        let urls = format!(
            "ldap://127.0.0.1:{}/ ldaps://127.0.0.1:{}/",
            self.port, self.ldaps_port
        );
        let conf = self.dir.join("slapd.conf").to_string_lossy().into_owned();
        let process = Guarded::spawn(
            "slapd",
            &slapd,
            &["-d", "0", "-h", &urls, "-f", &conf],
            &[],
            &self.dir.join("slapd.log"),
        )?;
        if !(wait_for_port_of(self.port, &process) && wait_for_port_of(self.ldaps_port, &process)) {
            return Err(FixtureError::NotReady {
                what: "slapd (restarted)".to_owned(),
                secs: crate::START_WAIT.as_secs(),
                log: process.log_tail(),
            });
        }
        self.process = process;
        Ok(())
    }

    /// Adds entries with `ldapadd`, bound as the root DN.
    ///
    /// # Errors
    /// When `ldapadd` fails (its output is in the error).
    pub fn add_ldif(&self, ldif: &str) -> Result<(), FixtureError> {
        self.ldap_tool("ldapadd", ldif)
    }

    /// Applies changes with `ldapmodify`, bound as the root DN.
    ///
    /// # Errors
    /// When `ldapmodify` fails (its output is in the error).
    pub fn modify_ldif(&self, ldif: &str) -> Result<(), FixtureError> {
        self.ldap_tool("ldapmodify", ldif)
    }

    fn ldap_tool(&self, tool: &str, ldif: &str) -> Result<(), FixtureError> {
        let program = require(tool, "Debian package ldap-utils")?;
        let file = self.dir.join(format!("change-{}.ldif", crate::unique()));
        std::fs::write(&file, ldif)?;
        let result = run(
            Command::new("timeout")
                .arg("20")
                .arg(program)
                .args([
                    "-x",
                    "-H",
                    &self.ldap_url(),
                    "-D",
                    ADMIN_DN,
                    "-w",
                    ADMIN_PASSWORD,
                    "-f",
                ])
                .arg(&file),
            tool,
        );
        let _ = std::fs::remove_file(&file);
        result.map(|_| ())
    }
}
