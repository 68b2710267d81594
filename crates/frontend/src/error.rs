//! The crate's one error type.

use std::io;

/// Everything that can go wrong in this crate.
///
/// Peer faults (a malformed or missing PROXY header) are kept apart from
/// caller faults (a setting this crate cannot use) and from the environment
/// (I/O, an unreachable Redis).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting has a value this crate cannot use (caller fault).
    #[error("invalid setting {name}: {reason}")]
    InvalidSetting {
        /// The parameter name, as in the configuration (`mmp.connlimits`, ...).
        name: &'static str,
        /// Why the value was refused.
        reason: String,
    },
    /// Reading a parameter from the configuration failed.
    #[error(transparent)]
    Config(#[from] portcullis_config::Error),
    /// A PROXY protocol header is malformed (peer fault).
    #[error("malformed PROXY protocol header at byte {position}: {reason}")]
    ProxyHeader {
        /// Offset of the offending byte from the start of the header.
        position: usize,
        /// What was wrong there.
        reason: &'static str,
    },
    /// A trusted proxy did not send its whole PROXY header in time.
    #[error("no complete PROXY protocol header within {0:?}")]
    ProxyHeaderTimeout(std::time::Duration),
    /// The connection closed before the PROXY header was complete.
    #[error("connection closed inside the PROXY protocol header")]
    ProxyHeaderTruncated,
    /// A value cannot be written as a PROXY v2 header (caller fault).
    #[error("cannot encode PROXY v2 header: {0}")]
    ProxyEncode(&'static str),
    /// The penalty store (Redis) could not be reached or answered badly.
    #[error("penalty store unavailable: {0}")]
    StoreUnavailable(String),
    /// No message store accepted a connection (a temporary refusal to the
    /// client).
    #[error("no message store reachable ({tried})")]
    NoStore {
        /// Each store tried and why it failed.
        tried: String,
    },
    /// TLS to the store failed, its certificate not verifying included.
    #[error("TLS to the store {store} failed: {source}")]
    StoreTls {
        /// The store (`host:port`).
        store: String,
        /// The handshake's error.
        source: io::Error,
    },
    /// The store refused the greeting, TLS, the client identity or the
    /// login.
    #[error("the store {store} refused: {}{text}", code.as_ref().map(|c| format!("[{c}] ")).unwrap_or_default())]
    StoreRefused {
        /// The store (`host:port`).
        store: String,
        /// Its response code (`AUTH`, `SYS/TEMP`, `AUTHENTICATIONFAILED`, …).
        code: Option<String>,
        /// Its text.
        text: String,
    },
    /// The store spoke out of protocol or closed during the login.
    #[error("the store {store} misbehaved: {reason}")]
    StoreProtocol {
        /// The store (`host:port`).
        store: String,
        /// What went wrong.
        reason: String,
    },
    /// The store did not finish the login in time.
    #[error("the store {store} did not finish the login within {after:?}")]
    StoreTimeout {
        /// The store (`host:port`).
        store: String,
        /// How long it had.
        after: std::time::Duration,
    },
    /// There is nothing to log in to the store with (caller or
    /// configuration fault).
    #[error("cannot log in to the store: {0}")]
    StoreCredentials(&'static str),
    /// A TLS setting or certificate cannot be used.
    #[error(transparent)]
    Tls(#[from] portcullis_tlsconf::Error),
    /// A listener could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address.
        address: std::net::SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// An access filter parameter does not parse.
    #[error("{parameter}: {source}")]
    Filter {
        /// The parameter.
        parameter: String,
        /// The syntax error.
        source: portcullis_accessfilter::Error,
    },
    /// The SASL policy cannot be built from the configuration.
    #[error("SASL policy: {0}")]
    Sasl(#[from] portcullis_sasl::Error),
    /// The user directory cannot be set up from the configuration.
    #[error("user directory: {0}")]
    Directory(#[from] portcullis_ldapauth::Error),
    /// Reading from or writing to the connection failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The SMTP relay pool or the POP-before-SMTP cache.
    #[error("SMTP relay: {0}")]
    Relay(portcullis_popbeforesmtp::Error),
}

impl Error {
    /// Whether the client should hear a temporary refusal (`[UNAVAILABLE]`,
    /// `[SYS/TEMP]`, `421`): the store side is down or misbehaving, or it
    /// said so itself. A store's refusal of the user's credentials or a
    /// configuration fault is not temporary.
    #[must_use]
    pub fn is_temporary(&self) -> bool {
        match self {
            Self::NoStore { .. }
            | Self::StoreTls { .. }
            | Self::StoreProtocol { .. }
            | Self::StoreTimeout { .. }
            | Self::StoreUnavailable(_)
            | Self::Io(_) => true,
            Self::StoreRefused { code, .. } => code.as_deref().is_some_and(|c| {
                ["SYS/TEMP", "IN-USE", "LOGIN-DELAY", "UNAVAILABLE", "INUSE"]
                    .iter()
                    .any(|t| c.eq_ignore_ascii_case(t))
            }),
            _ => false,
        }
    }
}

/// Shorthand for a `ProxyHeader` error.
pub(crate) const fn malformed(position: usize, reason: &'static str) -> Error {
    Error::ProxyHeader { position, reason }
}

impl From<portcullis_popbeforesmtp::Error> for Error {
    /// A setting popbeforesmtp refuses keeps its parameter's name.
    fn from(e: portcullis_popbeforesmtp::Error) -> Self {
        match e {
            portcullis_popbeforesmtp::Error::InvalidSetting { name, reason } => {
                Self::InvalidSetting { name, reason }
            }
            other => Self::Relay(other),
        }
    }
}
