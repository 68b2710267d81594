//! Store selection, connection and login: the proxy's side toward the
//! message stores.
//!
//! ```text
//! mailHost (directory) ─┐
//! mmp.storehosts ───────┴─► candidates ─► TCP connect (mmp.storeconnecttimeout each,
//!                                          next on failure; all failing: Error::NoStore)
//!                          ─► TLS: none | starttls | tls   (mmp.backsidetls,
//!                                verified against mmp.backsidecafile / the certificate
//!                                database unless mmp.backsideverify = 0)
//!                          ─► login driver (POP3: pop3-proto's ClientSession; IMAP:
//!                                imap-proto's client side) within mmp.storelogintimeout
//!                          ─► StoreSession: a logged-in stream for the relay
//! ```
//!
//! How the proxy logs in ([`StoreLogin`], `mmp.storelogin`): with the
//! client's own password when the client logged in with a cleartext
//! mechanism (USER/PASS, LOGIN, PLAIN), otherwise (CRAM-MD5, SCRAM, APOP,
//! EXTERNAL, …: the proxy never saw a password) in the master-user form,
//! SASL PLAIN with `mmp.storeadmin` / `mmp.storepassword` as
//! authentication identity and the user as authorization identity.
//!
//! The client's identity travels to the store as POP3 `XCLIENT ADDR= PORT=
//! SESSION= TTL=` or IMAP `ID ("x-originating-ip" …)`, which a store
//! believes from its trusted networks (Dovecot's `login_trusted_networks`),
//! or, with `mmp.backsideproxyprotocol = 1`, as a PROXY protocol v2 header
//! before the first byte (Dovecot's `haproxy = yes` listeners).
//!
//! The protocol conversation itself is sans-I/O: a [`LoginDriver`] is fed
//! the store's bytes and says what to write, when to start TLS and when it
//! is logged in; `drive_login` is the one async loop (read → feed → poll
//! → write) for every protocol.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use portcullis_config::{Config, params};
use portcullis_imap_proto as imap;
use portcullis_pop3_proto as pop3;
use portcullis_pop3_proto::Password;
use portcullis_tlsconf::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use portcullis_tlsconf::rustls::crypto::{CryptoProvider, ring};
use portcullis_tlsconf::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use portcullis_tlsconf::rustls::{self, DigitallySignedStruct, SignatureScheme};
use portcullis_tlsconf::tokio_rustls::{TlsConnector, client::TlsStream};
use portcullis_tlsconf::{ClientSettings, MaybeTls, PemFileSource, TlsClient, TlsRequirement};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zeroize::Zeroizing;

use crate::Error;
use crate::proxy_protocol::ProxyHeader;

/// The protocol spoken to the store (it picks the default port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// IMAP4rev1/rev2: `mmp.imap.backsideport`.
    Imap,
    /// POP3: `mmp.pop.backsideport`.
    Pop3,
}

/// TLS toward the store (`mmp.backsidetls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StoreTls {
    /// Plaintext.
    None,
    /// STARTTLS (IMAP) / STLS (POP3) on the plain port; the login fails
    /// when the store does not offer it.
    #[default]
    StartTls,
    /// Implicit TLS from the first byte.
    Tls,
}

impl StoreTls {
    /// Parses `none`, `starttls` or `tls` (case-insensitive).
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] for anything else.
    pub fn parse(value: &str) -> Result<Self, Error> {
        match value.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(Self::None),
            "starttls" => Ok(Self::StartTls),
            "tls" => Ok(Self::Tls),
            other => Err(Error::InvalidSetting {
                name: "mmp.backsidetls",
                reason: format!("{other:?} is not one of none, starttls, tls"),
            }),
        }
    }
}

/// How the proxy logs in to the store (`mmp.storelogin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StoreLogin {
    /// The client's password after a cleartext login, else the master-user
    /// form.
    #[default]
    Auto,
    /// Always the client's password; a login that carried none fails.
    Replay,
    /// Always the master-user form.
    Master,
}

impl StoreLogin {
    /// Parses `auto`, `replay` or `master` (case-insensitive).
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] for anything else.
    pub fn parse(value: &str) -> Result<Self, Error> {
        match value.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "replay" => Ok(Self::Replay),
            "master" => Ok(Self::Master),
            other => Err(Error::InvalidSetting {
                name: "mmp.storelogin",
                reason: format!("{other:?} is not one of auto, replay, master"),
            }),
        }
    }
}

/// A store's host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreAddress {
    /// Host name or IP address (without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl StoreAddress {
    /// Parses `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6
    /// address; `default_port` when none is given.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] (named `setting`) for an empty host, a bad
    /// port or unbalanced brackets.
    pub fn parse(text: &str, default_port: u16, setting: &'static str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::InvalidSetting {
            name: setting,
            reason: format!("{text:?}: {reason}"),
        };
        let text = text.trim();
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or_else(|| bad("no closing ]"))?;
            match after {
                "" => (host, None),
                p => (
                    host,
                    Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ]"))?),
                ),
            }
        } else if text.matches(':').count() == 1 {
            let (h, p) = text.split_once(':').ok_or_else(|| bad("no port"))?;
            (h, Some(p))
        } else {
            // A host name, or an IPv6 address without a port.
            (text, None)
        };
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(bad("no usable host"));
        }
        let port = match port {
            None => default_port,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => n,
                _ => return Err(bad("the port is not 1..65535")),
            },
        };
        Ok(Self {
            host: host.to_owned(),
            port,
        })
    }

    fn is_loopback(&self) -> bool {
        self.host.eq_ignore_ascii_case("localhost")
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for StoreAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Who the client is, as the store should see it (POP3 XCLIENT, IMAP ID).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientIdentity {
    /// The client's address (from the PROXY header when there was one).
    pub client: SocketAddr,
    /// The address the client connected to, when known.
    pub local: Option<SocketAddr>,
    /// A session id for log correlation.
    pub session: Option<String>,
    /// Hops left before a proxy loop is assumed.
    pub ttl: Option<u8>,
    /// The IMAP client's own ID fields ([`ClientIdentity::with_client_id`]),
    /// sent after the proxy's when `mmp.forwardclientid` is on.
    pub client_id: Vec<(String, String)>,
}

/// RFC 2971 §3.3: at most 30 fields, names of at most 30 octets, values of
/// at most 1024.
const ID_MAX_FIELDS: usize = 30;
const ID_MAX_NAME: usize = 30;
const ID_MAX_VALUE: usize = 1024;

impl ClientIdentity {
    /// The client's address only.
    #[must_use]
    pub fn new(client: SocketAddr) -> Self {
        Self {
            client,
            local: None,
            session: None,
            ttl: None,
            client_id: Vec::new(),
        }
    }

    /// Adds the client's own ID fields (its `ID` command's parameters),
    /// keeping only what may reach the store beside the proxy's fields:
    /// no name starting with `x-` (the store believes `x-originating-ip`
    /// and the like from the proxy, and Dovecot takes `x-forward-*` as
    /// passdb fields), no NIL value, no name the proxy sends itself or
    /// the client repeats, and within RFC 2971's limits (30 fields, names
    /// of 30 octets, values of 1024).
    #[must_use]
    pub fn with_client_id(mut self, fields: &[(String, Option<String>)]) -> Self {
        let mut kept: Vec<(String, String)> = Vec::new();
        for (name, value) in fields {
            let Some(value) = value else { continue };
            let lower = name.to_ascii_lowercase();
            let forbidden = lower.starts_with("x-")
                || lower.is_empty()
                || name.len() > ID_MAX_NAME
                || value.len() > ID_MAX_VALUE
                || kept.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
            if !forbidden && kept.len() < ID_MAX_FIELDS - 6 {
                kept.push((name.clone(), value.clone()));
            }
        }
        self.client_id = kept;
        self
    }

    /// IMAP ID fields (RFC 2971) that Dovecot believes from its trusted
    /// networks: `x-originating-ip`/`-port`, then `x-connected-ip`/`-port`,
    /// `x-session-id` and `x-proxy-ttl` when known.
    #[must_use]
    pub fn imap_id_fields(&self) -> Vec<(String, String)> {
        let mut fields = vec![
            ("x-originating-ip".to_owned(), self.client.ip().to_string()),
            (
                "x-originating-port".to_owned(),
                self.client.port().to_string(),
            ),
        ];
        if let Some(local) = self.local {
            fields.push(("x-connected-ip".to_owned(), local.ip().to_string()));
            fields.push(("x-connected-port".to_owned(), local.port().to_string()));
        }
        if let Some(s) = &self.session {
            fields.push(("x-session-id".to_owned(), s.clone()));
        }
        if let Some(t) = self.ttl {
            fields.push(("x-proxy-ttl".to_owned(), t.to_string()));
        }
        fields.extend(self.client_id.iter().cloned());
        fields
    }

    /// POP3 XCLIENT attributes (Dovecot: ADDR, PORT, SESSION, TTL).
    #[must_use]
    pub fn xclient_attributes(&self) -> Vec<(String, String)> {
        let mut attrs = vec![
            ("ADDR".to_owned(), self.client.ip().to_string()),
            ("PORT".to_owned(), self.client.port().to_string()),
        ];
        if let Some(s) = &self.session {
            attrs.push(("SESSION".to_owned(), s.clone()));
        }
        if let Some(t) = self.ttl {
            attrs.push(("TTL".to_owned(), t.to_string()));
        }
        attrs
    }
}

/// What the proxy presents to the store for one user.
#[derive(Clone)]
#[non_exhaustive]
pub enum StoreCredentials {
    /// The user's own name and password.
    Replay {
        /// The user (mailbox) name.
        user: String,
        /// The client's password.
        password: Password,
    },
    /// SASL PLAIN: `admin` authenticates, acting as `user`.
    Master {
        /// The authorization identity: the user.
        user: String,
        /// The authentication identity: `mmp.storeadmin`.
        admin: String,
        /// `mmp.storepassword`.
        password: Password,
    },
}

impl fmt::Debug for StoreCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Replay { user, .. } => f
                .debug_struct("Replay")
                .field("user", user)
                .finish_non_exhaustive(),
            Self::Master { user, admin, .. } => f
                .debug_struct("Master")
                .field("user", user)
                .field("admin", admin)
                .finish_non_exhaustive(),
        }
    }
}

impl StoreCredentials {
    /// The user the session is for.
    #[must_use]
    pub fn user(&self) -> &str {
        match self {
            Self::Replay { user, .. } | Self::Master { user, .. } => user,
        }
    }

    /// The POP3 form: USER/PASS, or AUTH PLAIN with the user as authzid.
    #[must_use]
    pub fn pop3_login(&self) -> pop3::Login {
        match self.clone() {
            Self::Replay { user, password } => pop3::Login::UserPass { user, password },
            Self::Master {
                user,
                admin,
                password,
            } => pop3::Login::Plain {
                authzid: user,
                authcid: admin,
                password,
            },
        }
    }
}

impl StoreCredentials {
    /// The IMAP form: LOGIN, or AUTHENTICATE PLAIN with the user as authzid.
    #[must_use]
    pub fn imap_login(&self) -> imap::Login {
        match self.clone() {
            Self::Replay { user, password } => imap::Login::Login { user, password },
            Self::Master {
                user,
                admin,
                password,
            } => imap::Login::Plain {
                authzid: user,
                authcid: admin,
                password,
            },
        }
    }
}

/// How the login driver starts: what TLS it must ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DriverSetup {
    /// Ask for STARTTLS/STLS; fail when the store does not offer it.
    pub starttls: bool,
    /// The connection is already TLS (implicit TLS).
    pub tls_active: bool,
}

/// What a [`LoginDriver`] wants next.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DriverEvent {
    /// Write the output, then read and feed more.
    NeedMoreInput,
    /// The store agreed to STARTTLS: run the handshake, then call
    /// [`LoginDriver::tls_established`].
    StartTls,
    /// Logged in: what follows belongs to the relay.
    LoggedIn,
    /// The store refused (the greeting, TLS, the client identity or the
    /// login), with its response code if it gave one.
    Refused {
        /// The code (`AUTH`, `SYS/TEMP`, `AUTHENTICATIONFAILED`, …).
        code: Option<String>,
        /// The store's text.
        text: String,
    },
    /// The store spoke out of protocol.
    Failed(String),
}

/// A sans-I/O login conversation with a store: one per protocol.
///
/// The POP3 one is [`Pop3Driver`]; the IMAP one wraps imap-proto's client
/// side the same way.
pub trait LoginDriver: Send {
    /// Bytes read from the store.
    fn feed(&mut self, input: &[u8]);
    /// The next step. Call [`LoginDriver::take_output`] after each poll.
    fn poll(&mut self) -> DriverEvent;
    /// Bytes to write to the store (wiped on drop: they may hold a
    /// password).
    fn take_output(&mut self) -> Zeroizing<Vec<u8>>;
    /// The TLS handshake after [`DriverEvent::StartTls`] succeeded.
    ///
    /// # Errors
    /// When no STARTTLS was pending.
    fn tls_established(&mut self) -> Result<(), Error>;
    /// After [`DriverEvent::LoggedIn`]: store bytes read past the login
    /// reply, which belong to the client.
    fn take_pending_input(&mut self) -> Zeroizing<Vec<u8>>;
    /// The store's capabilities as last announced (after
    /// [`DriverEvent::LoggedIn`]: the post-login ones, which the client
    /// is shown).
    fn capabilities(&self) -> &[String] {
        &[]
    }
}

/// [`LoginDriver`] for POP3 over pop3-proto's [`pop3::ClientSession`].
#[derive(Debug)]
pub struct Pop3Driver(pop3::ClientSession);

impl Pop3Driver {
    /// A POP3 login as `credentials`, passing `identity` by XCLIENT.
    #[must_use]
    pub fn new(
        setup: DriverSetup,
        credentials: &StoreCredentials,
        identity: Option<&ClientIdentity>,
    ) -> Self {
        let mut config = pop3::ClientConfig::new(credentials.pop3_login());
        config.stls = setup.starttls;
        config.tls_active = setup.tls_active;
        config.xclient = identity
            .map(ClientIdentity::xclient_attributes)
            .unwrap_or_default();
        Self(pop3::ClientSession::new(config))
    }

    /// The store's CAPA keywords (after the login: as the store sent them).
    #[must_use]
    pub fn capabilities(&self) -> &[String] {
        self.0.capabilities()
    }
}

impl LoginDriver for Pop3Driver {
    fn feed(&mut self, input: &[u8]) {
        self.0.feed(input);
    }

    fn poll(&mut self) -> DriverEvent {
        match self.0.poll() {
            pop3::ClientEvent::NeedMoreInput => DriverEvent::NeedMoreInput,
            pop3::ClientEvent::StartTls { .. } => DriverEvent::StartTls,
            pop3::ClientEvent::LoggedIn => DriverEvent::LoggedIn,
            pop3::ClientEvent::Refused(r) => DriverEvent::Refused {
                code: r.code.map(|c| c.as_str().to_owned()),
                text: r.text,
            },
            pop3::ClientEvent::Failed(e) => DriverEvent::Failed(e.to_string()),
            other => DriverEvent::Failed(format!("unexpected POP3 client event {other:?}")),
        }
    }

    fn take_output(&mut self) -> Zeroizing<Vec<u8>> {
        self.0.take_output()
    }

    fn tls_established(&mut self) -> Result<(), Error> {
        self.0.tls_established().map_err(|e| Error::StoreProtocol {
            store: String::new(),
            reason: e.to_string(),
        })
    }

    fn take_pending_input(&mut self) -> Zeroizing<Vec<u8>> {
        self.0.take_pending_input()
    }

    fn capabilities(&self) -> &[String] {
        self.0.capabilities()
    }
}

/// [`LoginDriver`] for IMAP over imap-proto's [`imap::ClientSession`].
#[derive(Debug)]
pub struct ImapDriver(imap::ClientSession);

impl ImapDriver {
    /// An IMAP login as `credentials`, passing `identity` by ID
    /// (`x-originating-ip`/`-port`, and `x-connected-*`, `x-session-id`,
    /// `x-proxy-ttl` when known).
    #[must_use]
    pub fn new(
        setup: DriverSetup,
        credentials: &StoreCredentials,
        identity: Option<&ClientIdentity>,
    ) -> Self {
        let mut config = imap::ClientConfig::new(credentials.imap_login());
        config.starttls = setup.starttls;
        config.tls_active = setup.tls_active;
        config.id = identity
            .map(ClientIdentity::imap_id_fields)
            .unwrap_or_default();
        Self(imap::ClientSession::new(config))
    }

    /// The store's capabilities (after the login: the post-login ones).
    #[must_use]
    pub fn capabilities(&self) -> &[String] {
        self.0.capabilities()
    }
}

impl LoginDriver for ImapDriver {
    fn feed(&mut self, input: &[u8]) {
        self.0.feed(input);
    }

    fn poll(&mut self) -> DriverEvent {
        match self.0.poll() {
            imap::ClientEvent::NeedMoreInput => DriverEvent::NeedMoreInput,
            imap::ClientEvent::StartTls { .. } => DriverEvent::StartTls,
            imap::ClientEvent::LoggedIn => DriverEvent::LoggedIn,
            imap::ClientEvent::Refused(status) => DriverEvent::Refused {
                code: status.code.map(|c| c.to_text()),
                text: status.text,
            },
            imap::ClientEvent::Failed(e) => DriverEvent::Failed(e.to_string()),
            other => DriverEvent::Failed(format!("unexpected IMAP client event {other:?}")),
        }
    }

    fn take_output(&mut self) -> Zeroizing<Vec<u8>> {
        self.0.take_output()
    }

    fn tls_established(&mut self) -> Result<(), Error> {
        self.0.tls_established().map_err(|e| Error::StoreProtocol {
            store: String::new(),
            reason: e.to_string(),
        })
    }

    fn take_pending_input(&mut self) -> Zeroizing<Vec<u8>> {
        self.0.take_pending_input()
    }

    fn capabilities(&self) -> &[String] {
        self.0.capabilities()
    }
}

/// A connection to a store: plaintext, or TLS (implicit, or after
/// STARTTLS). The same type as the daemons' client connections, with the
/// client side of TLS; [`MaybeTls::transport`] is the TCP socket.
pub type StoreStream = MaybeTls<TcpStream, TlsStream<TcpStream>>;

/// A logged-in store connection, ready for [`crate::relay::relay`].
#[derive(Debug)]
#[non_exhaustive]
pub struct StoreSession {
    /// The connection.
    pub stream: StoreStream,
    /// Which store it is.
    pub address: StoreAddress,
    /// Store bytes read past the login reply: send them to the client
    /// first (wiped on drop).
    pub pending: Zeroizing<Vec<u8>>,
    /// The store's capabilities after the login (IMAP: what the tagged
    /// OK announced; POP3: its CAPA keywords).
    pub capabilities: Vec<String>,
}

/// The TLS client toward the stores: verifying, or (`mmp.backsideverify =
/// 0`) not.
#[derive(Clone)]
struct StoreTlsConfig {
    config: Arc<rustls::ClientConfig>,
    verified: bool,
}

impl fmt::Debug for StoreTlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreTlsConfig")
            .field("verified", &self.verified)
            .finish_non_exhaustive()
    }
}

/// Store selection and login settings, from `mmp.storehosts`,
/// `mmp.*.backsideport`, `mmp.backsidetls`, `mmp.backsideverify`,
/// `mmp.backsidecafile`, `mmp.storelogin`, `mmp.storeadmin`,
/// `mmp.storepassword`, `mmp.storeconnecttimeout` and
/// `mmp.storelogintimeout`.
#[derive(Debug, Clone)]
pub struct Backend {
    store_hosts: Vec<String>,
    imap_port: u16,
    pop_port: u16,
    tls: StoreTls,
    tls_config: Option<StoreTlsConfig>,
    login: StoreLogin,
    admin: Option<(String, Password)>,
    connect_timeout: Duration,
    login_timeout: Duration,
    proxy_header: bool,
    forward_client_id: bool,
}

fn port(config: &Config, key: portcullis_config::Param<i64>) -> Result<u16, Error> {
    let value = config.get(key)?;
    u16::try_from(value).map_err(|_| Error::InvalidSetting {
        name: key.name(),
        reason: format!("{value} is not a port"),
    })
}

fn seconds(value: i64) -> Duration {
    Duration::from_secs(u64::try_from(value).unwrap_or(0))
}

impl Backend {
    /// Reads the settings. `config_dir` is where a relative
    /// `mmp.backsidecafile` is found.
    ///
    /// With TLS to the store and verification on, the trust roots are
    /// `mmp.backsidecafile`; when it is empty, give the certificate
    /// database's client with [`Backend::with_tls_client`] before
    /// connecting.
    ///
    /// Logs a warning for each store of `mmp.storehosts` that would be
    /// reached in plaintext off loopback, and when verification is off.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] for a bad value or a store address that
    /// does not parse; [`Error::Tls`] when the CA file cannot be used.
    pub fn from_config(config: &Config, config_dir: &Path) -> Result<Self, Error> {
        let store_hosts = config.get(params::MMP_STOREHOSTS)?;
        let imap_port = port(config, params::MMP_IMAP_BACKSIDEPORT)?;
        let pop_port = port(config, params::MMP_POP_BACKSIDEPORT)?;
        for h in &store_hosts {
            StoreAddress::parse(h, imap_port, "mmp.storehosts")?;
        }
        let tls = StoreTls::parse(&config.get(params::MMP_BACKSIDETLS)?)?;
        let verify = config.get(params::MMP_BACKSIDEVERIFY)?;
        let ca_file = config.get(params::MMP_BACKSIDECAFILE)?;
        let tls_config = match tls {
            StoreTls::None => None,
            _ if !verify => {
                tracing::warn!("mmp.backsideverify = 0: the stores' certificates are not verified");
                Some(unverified_tls()?)
            }
            _ if ca_file.trim().is_empty() => None,
            _ => {
                let source =
                    PemFileSource::new().with_server_auth_roots(config_dir.join(ca_file.trim()));
                let client = TlsClient::new(&source, &ClientSettings::new(TlsRequirement::Must))?;
                Some(StoreTlsConfig {
                    config: client.config(),
                    verified: true,
                })
            }
        };
        if tls == StoreTls::None {
            for h in &store_hosts {
                let a = StoreAddress::parse(h, imap_port, "mmp.storehosts")?;
                if !a.is_loopback() {
                    tracing::warn!(store = %a, "mmp.backsidetls = none: the store is reached in plaintext");
                }
            }
        }
        let admin = config.get(params::MMP_STOREADMIN)?;
        let admin = if admin.trim().is_empty() {
            None
        } else {
            let password = Zeroizing::new(config.get(params::MMP_STOREPASSWORD)?);
            Some((admin.trim().to_owned(), Password::new(password.as_str())))
        };
        Ok(Self {
            store_hosts,
            imap_port,
            pop_port,
            tls,
            tls_config,
            login: StoreLogin::parse(&config.get(params::MMP_STORELOGIN)?)?,
            admin,
            connect_timeout: seconds(config.get(params::MMP_STORECONNECTTIMEOUT)?),
            login_timeout: seconds(config.get(params::MMP_STORELOGINTIMEOUT)?),
            proxy_header: config.get(params::MMP_BACKSIDEPROXYPROTOCOL)?,
            forward_client_id: config.get(params::MMP_FORWARDCLIENTID)?,
        })
    }

    /// Verifies the stores' certificates with `client` (for instance one
    /// built from the certificate database's CAs trusted for server
    /// authentication). Ignored when `mmp.backsideverify = 0`.
    #[must_use]
    pub fn with_tls_client(mut self, client: &TlsClient) -> Self {
        if self.tls_config.as_ref().is_none_or(|c| c.verified) {
            self.tls_config = Some(StoreTlsConfig {
                config: client.config(),
                verified: true,
            });
        }
        self
    }

    /// The identity to pass inside the protocol (XCLIENT, ID): none when a
    /// PROXY header carries it, since the store then sees the client's
    /// address as the peer, which is not one of its trusted networks.
    fn in_band<'a>(&self, identity: Option<&'a ClientIdentity>) -> Option<&'a ClientIdentity> {
        if self.proxy_header { None } else { identity }
    }

    /// The TLS mode toward the stores.
    #[must_use]
    pub fn tls(&self) -> StoreTls {
        self.tls
    }

    /// The stores to try for a user, in order: the user's `mailHost` when
    /// it has one, else `mmp.storehosts`; the protocol's backside port for
    /// entries that name none.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] for a `mailHost` that does not parse.
    pub fn candidates(
        &self,
        protocol: Protocol,
        mail_host: Option<&str>,
    ) -> Result<Vec<StoreAddress>, Error> {
        let default_port = match protocol {
            Protocol::Imap => self.imap_port,
            Protocol::Pop3 => self.pop_port,
        };
        match mail_host.map(str::trim).filter(|h| !h.is_empty()) {
            Some(h) => Ok(vec![StoreAddress::parse(h, default_port, "mailHost")?]),
            None => self
                .store_hosts
                .iter()
                .map(|h| StoreAddress::parse(h, default_port, "mmp.storehosts"))
                .collect(),
        }
    }

    /// What to present to the store for `user`, who logged in with
    /// `cleartext` when its mechanism carried a password.
    ///
    /// # Errors
    /// [`Error::StoreCredentials`] when the setting asks for a replay and
    /// there is no password, or for the master-user form and
    /// `mmp.storeadmin` is empty.
    pub fn credentials(
        &self,
        user: &str,
        cleartext: Option<&Password>,
    ) -> Result<StoreCredentials, Error> {
        let master = || {
            self.admin
                .as_ref()
                .map(|(admin, password)| StoreCredentials::Master {
                    user: user.to_owned(),
                    admin: admin.clone(),
                    password: password.clone(),
                })
                .ok_or(Error::StoreCredentials(
                    "the master-user login needs mmp.storeadmin and mmp.storepassword",
                ))
        };
        let replay = |password: &Password| StoreCredentials::Replay {
            user: user.to_owned(),
            password: password.clone(),
        };
        match (self.login, cleartext) {
            (StoreLogin::Master, _) | (StoreLogin::Auto, None) => master(),
            (StoreLogin::Replay | StoreLogin::Auto, Some(p)) => Ok(replay(p)),
            (StoreLogin::Replay, None) => Err(Error::StoreCredentials(
                "mmp.storelogin = replay, but the client's mechanism carried no password",
            )),
        }
    }

    /// Connects to the first store of `candidates` that accepts a TCP
    /// connection within `mmp.storeconnecttimeout`, trying them in order.
    /// The socket has `TCP_NODELAY` set.
    ///
    /// # Errors
    /// [`Error::NoStore`] when none does (a temporary refusal to the
    /// client).
    pub async fn connect(
        &self,
        candidates: &[StoreAddress],
    ) -> Result<(TcpStream, StoreAddress), Error> {
        let mut tried = Vec::new();
        for address in candidates {
            let attempt = tokio::time::timeout(
                self.connect_timeout,
                TcpStream::connect((address.host.as_str(), address.port)),
            )
            .await;
            let failure = match attempt {
                Ok(Ok(stream)) => {
                    stream.set_nodelay(true)?;
                    tracing::debug!(store = %address, "connected to the store");
                    return Ok((stream, address.clone()));
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no connection within {:?}", self.connect_timeout),
            };
            tracing::warn!(store = %address, error = %failure, "store unreachable, trying the next");
            tried.push(format!("{address}: {failure}"));
        }
        Err(Error::NoStore {
            tried: if tried.is_empty() {
                "no store configured".to_owned()
            } else {
                tried.join("; ")
            },
        })
    }

    /// Connects (with failover), sends a PROXY protocol v2 header with
    /// `identity` first when `mmp.backsideproxyprotocol = 1` (a LOCAL
    /// header without one), sets up TLS as configured, and logs in
    /// with the driver `make_driver` builds, all within
    /// `mmp.storelogintimeout` after the connection.
    ///
    /// # Errors
    /// [`Error::NoStore`] when no store can be reached;
    /// [`Error::StoreTls`] when the TLS handshake (or the certificate's
    /// verification) fails; [`Error::StoreRefused`] when the store refuses;
    /// [`Error::StoreProtocol`] and [`Error::StoreTimeout`] for a store that
    /// misbehaves; [`Error::InvalidSetting`] when TLS is on and no trust
    /// roots were configured.
    pub async fn open<D, F>(
        &self,
        candidates: &[StoreAddress],
        identity: Option<&ClientIdentity>,
        make_driver: F,
    ) -> Result<StoreSession, Error>
    where
        D: LoginDriver,
        F: FnOnce(DriverSetup) -> D,
    {
        let tls = match self.tls {
            StoreTls::None => None,
            _ => Some(
                self.tls_config.clone().ok_or(Error::InvalidSetting {
                    name: "mmp.backsidecafile",
                    reason: "TLS to the store needs trust roots: set mmp.backsidecafile or use \
                         the certificate database"
                        .to_owned(),
                })?,
            ),
        };
        let (mut tcp, address) = self.connect(candidates).await?;
        if self.proxy_header {
            let header = match identity {
                Some(id) => {
                    let destination = match id.local {
                        Some(local) => local,
                        None => tcp.local_addr()?,
                    };
                    ProxyHeader::tcp(id.client, destination)
                }
                None => ProxyHeader::local(),
            };
            tcp.write_all(&header.encode_v2()?).await?;
        }
        let setup = DriverSetup {
            starttls: self.tls == StoreTls::StartTls,
            tls_active: self.tls == StoreTls::Tls,
        };
        let mut driver = make_driver(setup);
        let work = async {
            let stream = match (&tls, self.tls) {
                (Some(t), StoreTls::Tls) => {
                    StoreStream::Tls(Box::new(handshake(t, &address, tcp).await?))
                }
                _ => StoreStream::Plain(tcp),
            };
            drive_login(stream, &mut driver, &address, tls.as_ref()).await
        };
        let (stream, pending) = tokio::time::timeout(self.login_timeout, work)
            .await
            .map_err(|_| Error::StoreTimeout {
                store: address.to_string(),
                after: self.login_timeout,
            })??;
        tracing::debug!(store = %address, tls = stream.is_tls(), "logged in to the store");
        Ok(StoreSession {
            stream,
            address,
            pending,
            capabilities: driver.capabilities().to_vec(),
        })
    }

    /// [`Backend::open`] for POP3: the stores for `mail_host`, the
    /// credentials for `user` ([`Backend::credentials`]) and XCLIENT with
    /// `identity`.
    ///
    /// # Errors
    /// As [`Backend::candidates`], [`Backend::credentials`] and
    /// [`Backend::open`].
    pub async fn open_pop3(
        &self,
        mail_host: Option<&str>,
        user: &str,
        cleartext: Option<&Password>,
        identity: Option<&ClientIdentity>,
    ) -> Result<StoreSession, Error> {
        let candidates = self.candidates(Protocol::Pop3, mail_host)?;
        let credentials = self.credentials(user, cleartext)?;
        self.open(&candidates, identity, |setup| {
            Pop3Driver::new(setup, &credentials, self.in_band(identity))
        })
        .await
    }
}

impl Backend {
    /// [`Backend::open`] for IMAP: the stores for `mail_host`, the
    /// credentials for `user` ([`Backend::credentials`]) and ID with
    /// `identity`.
    ///
    /// # Errors
    /// As [`Backend::candidates`], [`Backend::credentials`] and
    /// [`Backend::open`].
    pub async fn open_imap(
        &self,
        mail_host: Option<&str>,
        user: &str,
        cleartext: Option<&Password>,
        identity: Option<&ClientIdentity>,
    ) -> Result<StoreSession, Error> {
        let candidates = self.candidates(Protocol::Imap, mail_host)?;
        let credentials = self.credentials(user, cleartext)?;
        // The client's own ID fields go on only when configured.
        let own;
        let identity = match identity {
            Some(i) if !self.forward_client_id && !i.client_id.is_empty() => {
                own = ClientIdentity {
                    client_id: Vec::new(),
                    ..i.clone()
                };
                Some(&own)
            }
            other => other,
        };
        self.open(&candidates, identity, |setup| {
            ImapDriver::new(setup, &credentials, self.in_band(identity))
        })
        .await
    }
}

async fn handshake(
    tls: &StoreTlsConfig,
    address: &StoreAddress,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>, Error> {
    let store_tls = |source: io::Error| Error::StoreTls {
        store: address.to_string(),
        source,
    };
    let name = ServerName::try_from(address.host.clone())
        .map_err(|e| store_tls(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
    TlsConnector::from(Arc::clone(&tls.config))
        .connect(name, tcp)
        .await
        .map_err(store_tls)
}

/// The longest the store's side of a login may be: a hang guard against a
/// store that talks without end (the drivers bound their lines too).
const MAX_LOGIN_INPUT: usize = 64 * 1024;

/// Runs a login conversation over `stream`: read → feed → poll → write,
/// with the TLS upgrade in the middle when the driver asks for it.
/// Returns the (possibly upgraded) stream and the store bytes read past the
/// login.
///
/// # Errors
/// [`Error::StoreRefused`], [`Error::StoreProtocol`], [`Error::StoreTls`],
/// [`Error::Io`].
async fn drive_login<D: LoginDriver + ?Sized>(
    mut stream: StoreStream,
    driver: &mut D,
    address: &StoreAddress,
    tls: Option<&StoreTlsConfig>,
) -> Result<(StoreStream, Zeroizing<Vec<u8>>), Error> {
    let protocol_error = |reason: String| Error::StoreProtocol {
        store: address.to_string(),
        reason,
    };
    let mut buf = Zeroizing::new(vec![0u8; 4096]);
    let mut read_total = 0usize;
    loop {
        let event = driver.poll();
        let out = driver.take_output();
        if !out.is_empty() {
            stream.write_all(&out).await?;
            stream.flush().await?;
        }
        match event {
            DriverEvent::NeedMoreInput => {
                let n = stream.read(&mut buf).await?;
                if n == 0 {
                    return Err(protocol_error("the store closed the connection".to_owned()));
                }
                read_total = read_total.saturating_add(n);
                if read_total > MAX_LOGIN_INPUT {
                    return Err(protocol_error(format!(
                        "more than {MAX_LOGIN_INPUT} bytes before the login ended"
                    )));
                }
                driver.feed(&buf[..n]);
            }
            DriverEvent::StartTls => {
                let tls = tls.ok_or_else(|| {
                    protocol_error("STARTTLS without a TLS configuration".to_owned())
                })?;
                stream = match stream {
                    StoreStream::Plain(tcp) => {
                        StoreStream::Tls(Box::new(handshake(tls, address, tcp).await?))
                    }
                    StoreStream::Tls(_) => {
                        return Err(protocol_error("STARTTLS inside TLS".to_owned()));
                    }
                };
                driver
                    .tls_established()
                    .map_err(|e| protocol_error(e.to_string()))?;
            }
            DriverEvent::LoggedIn => {
                let pending = driver.take_pending_input();
                return Ok((stream, pending));
            }
            DriverEvent::Refused { code, text } => {
                return Err(Error::StoreRefused {
                    store: address.to_string(),
                    code,
                    text,
                });
            }
            DriverEvent::Failed(reason) => return Err(protocol_error(reason)),
        }
    }
}

/// A client configuration that accepts any certificate but still checks
/// the handshake signatures (`mmp.backsideverify = 0`).
fn unverified_tls() -> Result<StoreTlsConfig, Error> {
    let provider = Arc::new(ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::InvalidSetting {
            name: "mmp.backsideverify",
            reason: e.to_string(),
        })?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(danger::AnyCertificate(provider)))
        .with_no_client_auth();
    Ok(StoreTlsConfig {
        config: Arc::new(config),
        verified: false,
    })
}

/// What weakens security: a verifier that trusts any certificate.
mod danger {
    use super::{
        CertificateDer, CryptoProvider, DigitallySignedStruct, HandshakeSignatureValid,
        ServerCertVerified, ServerCertVerifier, ServerName, SignatureScheme, UnixTime, rustls,
    };
    use std::sync::Arc;

    /// Accepts every certificate (`mmp.backsideverify = 0`); the
    /// handshake signatures are still checked, so the session is at least
    /// bound to the key the store presented.
    #[derive(Debug)]
    pub(super) struct AnyCertificate(pub(super) Arc<CryptoProvider>);

    impl ServerCertVerifier for AnyCertificate {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_addresses() {
        let ok = |text: &str, host: &str, port: u16| {
            assert_eq!(
                StoreAddress::parse(text, 110, "mmp.storehosts").unwrap(),
                StoreAddress {
                    host: host.into(),
                    port
                },
                "{text}"
            );
        };
        ok("mailstore", "mailstore", 110);
        ok("mailstore:1110", "mailstore", 1110);
        ok(" 192.0.2.1:995 ", "192.0.2.1", 995);
        ok("[2001:db8::1]:143", "2001:db8::1", 143);
        ok("[2001:db8::1]", "2001:db8::1", 110);
        ok("2001:db8::1", "2001:db8::1", 110);
        for bad in [
            "",
            ":110",
            "store:",
            "store:0",
            "store:65536",
            "store:x",
            "[::1",
            "[::1]x",
            "[]:1",
            "a b",
        ] {
            assert!(
                StoreAddress::parse(bad, 110, "mmp.storehosts").is_err(),
                "{bad:?}"
            );
        }
        let a = StoreAddress::parse("[::1]:1", 110, "x").unwrap();
        assert_eq!(a.to_string(), "[::1]:1");
        assert!(a.is_loopback());
        assert!(
            !StoreAddress::parse("192.0.2.1", 1, "x")
                .unwrap()
                .is_loopback()
        );
    }

    #[test]
    fn login_choice() {
        let config =
            Config::parse("mmp.storeadmin = \"admin\"\nmmp.storepassword = \"s3cret\"\n").unwrap();
        let b = Backend::from_config(&config, Path::new(".")).unwrap();
        let pw = Password::new("pw");
        assert!(matches!(
            b.credentials("u", Some(&pw)).unwrap(),
            StoreCredentials::Replay { .. }
        ));
        assert!(matches!(
            b.credentials("u", None).unwrap(),
            StoreCredentials::Master { .. }
        ));
        let debug = format!("{:?}", b.credentials("u", None).unwrap());
        assert!(!debug.contains("s3cret"), "{debug}");
        assert_eq!(StoreLogin::parse("MASTER").unwrap(), StoreLogin::Master);
        assert_eq!(StoreTls::parse("Tls").unwrap(), StoreTls::Tls);
    }

    #[test]
    fn a_clients_own_id_follows_ours_and_never_names_x_fields() {
        let own = |pairs: &[(&str, Option<&str>)]| -> Vec<(String, Option<String>)> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned)))
                .collect()
        };
        let id = ClientIdentity::new("192.0.2.7:5000".parse().unwrap()).with_client_id(&own(&[
            ("name", Some("Mailer")),
            ("X-Originating-IP", Some("203.0.113.66")),
            ("x-forward-master", Some("yes")),
            ("version", None),
            ("NAME", Some("again")),
            ("os", Some(&"y".repeat(1025))),
            (&"n".repeat(31), Some("long name")),
            ("vendor", Some("Example")),
        ]));
        assert_eq!(
            id.imap_id_fields(),
            vec![
                ("x-originating-ip".to_owned(), "192.0.2.7".to_owned()),
                ("x-originating-port".to_owned(), "5000".to_owned()),
                ("name".to_owned(), "Mailer".to_owned()),
                ("vendor".to_owned(), "Example".to_owned()),
            ]
        );
        // At most 30 fields in all.
        let many: Vec<(String, Option<String>)> = (0..40)
            .map(|i| (format!("f{i}"), Some("v".to_owned())))
            .collect();
        let id = ClientIdentity::new("192.0.2.7:5000".parse().unwrap()).with_client_id(&many);
        assert!(id.imap_id_fields().len() <= 30);
    }

    #[test]
    fn xclient_attributes() {
        let mut id = ClientIdentity::new("[2001:db8::7]:5000".parse().unwrap());
        id.session = Some("abc".into());
        id.ttl = Some(4);
        assert_eq!(
            id.xclient_attributes(),
            vec![
                ("ADDR".to_owned(), "2001:db8::7".to_owned()),
                ("PORT".to_owned(), "5000".to_owned()),
                ("SESSION".to_owned(), "abc".to_owned()),
                ("TTL".to_owned(), "4".to_owned()),
            ]
        );
    }
}
