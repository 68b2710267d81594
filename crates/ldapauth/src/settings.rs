//! Typed settings, mirroring the configuration parameters.

use std::path::PathBuf;
use std::time::Duration;

use portcullis_certmap::CertMapConfig;
use portcullis_sasl::Password;

use crate::Error;
use crate::scheme::NewScheme;

mod parameters;

/// How a password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum VerifyMode {
    /// Bind to the directory as the user (default): the server checks.
    #[default]
    Bind,
    /// Read `userPassword` with the service account and check it here.
    LocalHash,
}

/// Settings for [`crate::Directory`]. Each field names the configuration
/// parameter it mirrors; [`Settings::from_parameters`] reads them all.
///
/// ```
/// use portcullis_ldapauth::Settings;
/// let mut s = Settings::new("ldap1.example.com ldap2.example.com:1389", "o=example");
/// s.bind_dn = "cn=portcullis,ou=services,o=example".into();
/// s.bind_password = "secret".into();
/// assert_eq!(s.servers().unwrap(), [
///     "ldap://ldap1.example.com:389".to_owned(),
///     "ldap://ldap2.example.com:1389".to_owned(),
/// ]);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Settings {
    /// `local.ugldaphost`: one or more `host[:port]`, separated by spaces
    /// or commas, tried in order.
    pub hosts: String,
    /// `local.ugldapport`: port for hosts without one (default 389, or
    /// 636 with `use_ssl`).
    pub port: Option<u16>,
    /// `local.ugldapusessl`: connect with LDAPS.
    pub use_ssl: bool,
    /// `local.ugldapstarttls`: upgrade plain connections with StartTLS
    /// (ignored with `use_ssl`).
    pub starttls: bool,
    /// `local.ugldapcafile`: PEM file of trust roots for LDAPS / StartTLS.
    pub ca_file: Option<PathBuf>,
    /// More trust roots (DER), e.g. from the certificate database (not a
    /// parameter: the daemon adds them).
    pub ca_certs: Vec<Vec<u8>>,
    /// `local.ugldapbinddn`: the service account.
    pub bind_dn: String,
    /// `local.ugldapbindcred`: its password.
    pub bind_password: Password,
    /// `local.ugldapbasedn`: the user/group tree.
    pub base_dn: String,
    /// `sasl.default.ldap.searchfilter`.
    pub search_filter: String,
    /// `sasl.default.ldap.searchfordomain` (default true).
    pub search_for_domain: bool,
    /// `service.defaultdomain`: the domain for logins without `@domain`.
    pub default_domain: Option<String>,
    /// `sasl.default.ldap.domainfilter`: filter that finds a domain entry
    /// (`%D` is the domain).
    pub domain_filter: String,
    /// `sasl.default.ldap.has_plain_passwords`: cleartext may be fetched
    /// for CRAM-MD5 / DIGEST-MD5 / APOP.
    pub has_plain_passwords: bool,
    /// `sasl.default.auto_transition`: rewrite `userPassword` in
    /// `transition_scheme` after a successful plaintext login.
    pub auto_transition: bool,
    /// `sasl.default.transition_scheme`: the directory's default storage
    /// scheme (auto-transition target).
    pub transition_scheme: NewScheme,
    /// `sasl.default.transition_scram`: with auto-transition, also store
    /// SCRAM-SHA-256 keys (as a
    /// `{SCRAM-SHA-256}` `userPassword` value).
    pub transition_scram: bool,
    /// `sasl.default.scram.iterations`: PBKDF2 iterations for new SCRAM
    /// keys.
    pub scram_iterations: u32,
    /// `sasl.default.ldap.verify`: how passwords are checked.
    pub verify: VerifyMode,
    /// `sasl.default.ldap.admingroupdn`: members of this group may act as
    /// other users (proxy authorization).
    pub admin_group_dn: Option<String>,
    /// `local.ugldapconnecttimeout`: TCP + TLS connection timeout (always
    /// set).
    pub connect_timeout: Duration,
    /// `local.ugldapoperationtimeout`: timeout of each LDAP operation
    /// (always set).
    pub operation_timeout: Duration,
    /// `local.ugldappoolsize`: connections kept per server.
    pub pool_size: usize,
    /// `local.ugldapfailoverhold`: how long a failed server is skipped.
    pub failover_hold: Duration,
    /// `service.authcachettl`: result cache lifetime; `None` (default, or
    /// 0 seconds) disables the cache.
    pub cache_ttl: Option<Duration>,
    /// `sasl.default.ldap.certmapfile`, parsed; `None` uses the built-in
    /// e-mail mapping.
    pub certmap: Option<CertMapConfig>,
    /// `sasl.default.ldap.certmapbasedn`: search base for certificate
    /// mapping (default `base_dn`).
    pub certmap_base_dn: Option<String>,
    /// `local.ugldapidlecheck`: a pooled connection idle at least this long
    /// gets a cheap liveness
    /// check (a WhoAmI request, RFC 4532) before it is reused; one that
    /// fails it is dropped and a fresh connection is made instead. Zero
    /// checks every reuse.
    pub idle_check_after: Duration,
    /// `local.ugldapextraattrs`: attributes returned with the user's entry
    /// besides those the login needs, for the daemon's routing and policy
    /// (e.g. `mailHost`). Default empty.
    pub extra_attributes: Vec<String>,
    /// `local.ugldapcanonicalform`: the template of the canonical login
    /// identity, the name logs and back ends receive instead of what the
    /// client typed. `%u` is the entry's `uid`, `%d` the login's domain
    /// (or the default domain), `%m` the entry's `mail`, `%%` a `%`.
    /// Default [`Settings::DEFAULT_CANONICAL_FORM`] (`%u@%d`).
    pub canonical_form: String,
}

/// `sasl.default.ldap.searchfilter`'s default.
pub const DEFAULT_SEARCH_FILTER: &str = "(&(uid=%U)(objectclass=inetmailuser))";

impl Settings {
    /// `local.ugldapcanonicalform`'s default: `uid@domain`.
    pub const DEFAULT_CANONICAL_FORM: &str = "%u@%d";

    /// Defaults for everything but the servers and the base DN.
    #[must_use]
    pub fn new(hosts: impl Into<String>, base_dn: impl Into<String>) -> Self {
        Self {
            hosts: hosts.into(),
            port: None,
            use_ssl: false,
            starttls: false,
            ca_file: None,
            ca_certs: Vec::new(),
            bind_dn: String::new(),
            bind_password: Password::default(),
            base_dn: base_dn.into(),
            search_filter: DEFAULT_SEARCH_FILTER.to_owned(),
            search_for_domain: true,
            default_domain: None,
            domain_filter: "(associatedDomain=%D)".to_owned(),
            has_plain_passwords: false,
            auto_transition: false,
            transition_scheme: NewScheme::default(),
            transition_scram: false,
            scram_iterations: 4096,
            verify: VerifyMode::Bind,
            admin_group_dn: None,
            connect_timeout: Duration::from_secs(5),
            operation_timeout: Duration::from_secs(10),
            pool_size: 8,
            failover_hold: Duration::from_secs(60),
            cache_ttl: None,
            certmap: None,
            certmap_base_dn: None,
            idle_check_after: Duration::from_secs(5),
            extra_attributes: Vec::new(),
            canonical_form: Self::DEFAULT_CANONICAL_FORM.to_owned(),
        }
    }

    /// The LDAP URLs of `hosts`, in order.
    ///
    /// # Errors
    /// [`Error::Config`] for an empty list or a bad `host[:port]`.
    pub fn servers(&self) -> Result<Vec<String>, Error> {
        let default_port = self.port.unwrap_or(if self.use_ssl { 636 } else { 389 });
        let scheme = if self.use_ssl { "ldaps" } else { "ldap" };
        let mut out = Vec::new();
        for item in self
            .hosts
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
        {
            let bad = || Error::Config(format!("bad LDAP host `{item}`"));
            let (host, port) = if let Some(rest) = item.strip_prefix('[') {
                let (h, after) = rest.split_once(']').ok_or_else(bad)?;
                let port = match after.strip_prefix(':') {
                    Some(p) => p.parse::<u16>().map_err(|_| bad())?,
                    None if after.is_empty() => default_port,
                    None => return Err(bad()),
                };
                (format!("[{h}]"), port)
            } else {
                match item.split_once(':') {
                    Some((h, p)) => (h.to_owned(), p.parse::<u16>().map_err(|_| bad())?),
                    None => (item.to_owned(), default_port),
                }
            };
            if host.is_empty()
                || port == 0
                || !host.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':')
                })
            {
                return Err(bad());
            }
            out.push(format!("{scheme}://{host}:{port}"));
        }
        if out.is_empty() {
            return Err(Error::Config("local.ugldaphost lists no server".into()));
        }
        Ok(out)
    }
}
