//! What the server (or client) knows about the connection: service, host
//! name, TLS state, channel bindings and the client certificate.

use std::fmt;

use zeroize::Zeroizing;

use crate::Password;

/// The protocol service an exchange belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Service {
    /// IMAP (`service.imap`).
    Imap,
    /// POP3 (`service.pop`).
    Pop,
    /// SMTP submission / relay (`service.smtp`).
    Smtp,
    /// HTTP (`service.http`): plaintext password only.
    Http,
}

impl Service {
    /// The GSSAPI service name used in DIGEST-MD5's `digest-uri`
    /// (`imap`, `pop`, `smtp`, `http`).
    pub const fn digest_uri_service(self) -> &'static str {
        match self {
            Self::Imap => "imap",
            Self::Pop => "pop",
            Self::Smtp => "smtp",
            Self::Http => "http",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.digest_uri_service())
    }
}

/// Negotiated TLS protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

/// A channel-binding type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ChannelBindingType {
    /// `tls-exporter` (RFC 9266): 32 bytes exported with label
    /// `EXPORTER-Channel-Binding` and an empty context. Only usable with
    /// TLS 1.3 or TLS 1.2 with the extended master secret.
    TlsExporter,
    /// `tls-server-end-point` (RFC 5929): hash of the server certificate.
    TlsServerEndPoint,
}

impl ChannelBindingType {
    /// The registered name (`tls-exporter`, `tls-server-end-point`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::TlsExporter => "tls-exporter",
            Self::TlsServerEndPoint => "tls-server-end-point",
        }
    }

    /// Looks up a registered name (exact, case-sensitive as in RFC 5056).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "tls-exporter" => Some(Self::TlsExporter),
            "tls-server-end-point" => Some(Self::TlsServerEndPoint),
            _ => None,
        }
    }
}

impl fmt::Display for ChannelBindingType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The TLS state of the connection, as the caller's TLS stack reports it.
///
/// `tls_exporter` is the output of `export_keying_material(32,
/// "EXPORTER-Channel-Binding", Some(&[]))`; `tls_server_end_point` is
/// [`crate::tls_server_end_point`] of the server certificate. Both are
/// optional: without them the -PLUS mechanisms are not offered.
#[derive(Clone)]
#[non_exhaustive]
pub struct TlsState {
    /// Negotiated version.
    pub version: TlsVersion,
    /// Whether TLS 1.2 negotiated the extended master secret (RFC 7627).
    /// Ignored for TLS 1.3.
    pub extended_master_secret: bool,
    /// `tls-exporter` channel-binding data.
    pub tls_exporter: Option<Zeroizing<Vec<u8>>>,
    /// `tls-server-end-point` channel-binding data.
    pub tls_server_end_point: Option<Vec<u8>>,
}

impl fmt::Debug for TlsState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsState")
            .field("version", &self.version)
            .field("extended_master_secret", &self.extended_master_secret)
            .field(
                "tls_exporter",
                &self.tls_exporter.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "tls_server_end_point",
                &self.tls_server_end_point.as_ref().map(|_| "<present>"),
            )
            .finish()
    }
}

impl TlsState {
    /// A TLS state without channel-binding data.
    pub fn new(version: TlsVersion, extended_master_secret: bool) -> Self {
        Self {
            version,
            extended_master_secret,
            tls_exporter: None,
            tls_server_end_point: None,
        }
    }

    /// Adds `tls-exporter` data (RFC 9266).
    #[must_use]
    pub fn with_tls_exporter(mut self, data: Vec<u8>) -> Self {
        self.tls_exporter = Some(Zeroizing::new(data));
        self
    }

    /// Adds `tls-server-end-point` data (RFC 5929).
    #[must_use]
    pub fn with_tls_server_end_point(mut self, data: Vec<u8>) -> Self {
        self.tls_server_end_point = Some(data);
        self
    }

    /// The binding data of `kind`, if available *and safe*: `tls-exporter`
    /// only under TLS 1.3 or with the extended master secret (RFC 9266 §3).
    pub fn channel_binding(&self, kind: ChannelBindingType) -> Option<&[u8]> {
        match kind {
            ChannelBindingType::TlsExporter => {
                let safe = self.version == TlsVersion::Tls13 || self.extended_master_secret;
                if safe {
                    self.tls_exporter.as_deref().map(Vec::as_slice)
                } else {
                    None
                }
            }
            ChannelBindingType::TlsServerEndPoint => self.tls_server_end_point.as_deref(),
        }
    }

    /// The preferred usable binding type: `tls-exporter` when safe, else
    /// `tls-server-end-point`.
    pub fn preferred_channel_binding(&self) -> Option<ChannelBindingType> {
        [
            ChannelBindingType::TlsExporter,
            ChannelBindingType::TlsServerEndPoint,
        ]
        .into_iter()
        .find(|k| self.channel_binding(*k).is_some())
    }
}

/// An identity established outside SASL, for EXTERNAL.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExternalIdentity {
    /// The client certificate the TLS handshake verified.
    Certificate(crate::VerifiedCertificate),
    /// A name the lower layer already established (e.g. a local socket's
    /// peer user).
    Name(String),
}

impl fmt::Debug for ExternalIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Certificate(cert) => f.debug_tuple("Certificate").field(cert).finish(),
            Self::Name(n) => f.debug_tuple("Name").field(n).finish(),
        }
    }
}

/// What a server exchange needs to know about its connection.
///
/// Build one per connection (and update it after STARTTLS); every AUTH
/// command starts a fresh [`crate::ServerSession`] from it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServerContext {
    /// The protocol service.
    pub service: Service,
    /// The server's host name, for DIGEST-MD5's `digest-uri` and realm and
    /// the CRAM-MD5 / APOP challenges.
    pub hostname: String,
    /// The DIGEST-MD5 realm offered (defaults to `hostname`).
    pub realm: Option<String>,
    /// TLS state, `None` on a plaintext connection.
    pub tls: Option<TlsState>,
    /// Identity for EXTERNAL (the client certificate).
    pub external: Option<ExternalIdentity>,
    /// Whether the server advertised any -PLUS mechanism on this connection;
    /// a SCRAM client sending the `y` flag is then refused (downgrade).
    /// Set only from what was advertised: [`crate::Policy::context`] or
    /// [`ServerContext::advertising`].
    pub(crate) plus_advertised: bool,
    pub(crate) fixed_nonce: Option<String>,
    /// The secret behind SCRAM's answers for unknown users.
    pub(crate) unknown_user: Option<std::sync::Arc<crate::UnknownUserSecret>>,
}

impl ServerContext {
    /// A context for `service` on a plaintext connection.
    pub fn new(service: Service, hostname: impl Into<String>) -> Self {
        Self {
            service,
            hostname: hostname.into(),
            realm: None,
            tls: None,
            external: None,
            plus_advertised: false,
            fixed_nonce: None,
            unknown_user: None,
        }
    }

    /// The server secret (and iteration count) SCRAM uses to answer for
    /// users who do not exist, as a real user with a wrong password would
    /// be answered. Share one persistent secret across restarts and front
    /// ends ([`crate::UnknownUserSecret::load_or_create`]); without it a
    /// per-process secret and 4096 iterations are used.
    #[must_use]
    pub fn with_unknown_user_secret(
        mut self,
        secret: std::sync::Arc<crate::UnknownUserSecret>,
    ) -> Self {
        self.unknown_user = Some(secret);
        self
    }

    /// Sets the TLS state. What is advertised on the connection (and so
    /// whether a SCRAM `y` flag is a downgrade) is set apart, from the list
    /// actually sent: [`crate::Policy::context`] or
    /// [`ServerContext::advertising`].
    #[must_use]
    pub fn with_tls(mut self, tls: TlsState) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Records the mechanisms advertised on this connection (for a server
    /// that builds its list without [`crate::Policy`]): a SCRAM client's
    /// `y` flag is refused when a -PLUS mechanism is among them and
    /// channel binding is usable here.
    #[must_use]
    pub fn advertising(mut self, advertised: &[crate::Mechanism]) -> Self {
        self.plus_advertised = advertised.iter().any(|m| m.is_plus())
            && self
                .tls
                .as_ref()
                .is_some_and(|t| t.preferred_channel_binding().is_some());
        self
    }

    /// Whether a -PLUS mechanism was advertised on this connection.
    pub fn plus_advertised(&self) -> bool {
        self.plus_advertised
    }

    /// Sets the identity for EXTERNAL.
    #[must_use]
    pub fn with_external(mut self, identity: ExternalIdentity) -> Self {
        self.external = Some(identity);
        self
    }

    pub(crate) fn channel_binding(&self, kind: ChannelBindingType) -> Option<&[u8]> {
        self.tls.as_ref().and_then(|t| t.channel_binding(kind))
    }

    pub(crate) fn realm(&self) -> &str {
        self.realm.as_deref().unwrap_or(&self.hostname)
    }
}

/// What the client authenticates with.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Credentials {
    /// Authentication identity (user name).
    pub authcid: String,
    /// Authorization identity to request (proxying), if any.
    pub authzid: Option<String>,
    /// The password.
    pub password: Password,
    /// The ANONYMOUS trace (an e-mail address or token).
    pub anonymous_trace: Option<String>,
}

impl Credentials {
    /// A user name and password.
    pub fn new(authcid: impl Into<String>, password: impl Into<Password>) -> Self {
        Self {
            authcid: authcid.into(),
            password: password.into(),
            ..Self::default()
        }
    }

    /// Requests an authorization identity.
    #[must_use]
    pub fn with_authzid(mut self, authzid: impl Into<String>) -> Self {
        self.authzid = Some(authzid.into());
        self
    }

    /// Credentials for ANONYMOUS.
    pub fn anonymous(trace: impl Into<String>) -> Self {
        Self {
            anonymous_trace: Some(trace.into()),
            ..Self::default()
        }
    }

    /// Credentials for EXTERNAL: only an optional authzid.
    pub fn external(authzid: Option<String>) -> Self {
        Self {
            authzid,
            ..Self::default()
        }
    }
}

/// What a client exchange needs to know about its connection.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientContext {
    /// The protocol service (DIGEST-MD5 `digest-uri`).
    pub service: Service,
    /// The server's host name (DIGEST-MD5 `digest-uri`).
    pub hostname: String,
    /// TLS state, for SCRAM channel binding.
    pub tls: Option<TlsState>,
    /// Whether the server advertised a -PLUS mechanism (decides SCRAM's
    /// `y` versus `n` flag when binding is possible but not used).
    pub server_offers_plus: bool,
    pub(crate) fixed_nonce: Option<String>,
}

impl ClientContext {
    /// A context for `service` at `hostname`.
    pub fn new(service: Service, hostname: impl Into<String>) -> Self {
        Self {
            service,
            hostname: hostname.into(),
            tls: None,
            server_offers_plus: false,
            fixed_nonce: None,
        }
    }

    /// Sets the TLS state.
    #[must_use]
    pub fn with_tls(mut self, tls: TlsState) -> Self {
        self.tls = Some(tls);
        self
    }
}
