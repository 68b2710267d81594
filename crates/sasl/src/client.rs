//! The client side of an exchange (for the proxies and the tests).

use crate::mech;
use crate::{Error, Mechanism, Password, Service, TlsState};

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

/// The client half of one mechanism.
pub(crate) trait ClientMech: Send + Sync + std::fmt::Debug {
    /// The initial response, `None` when the mechanism waits for the server.
    fn initial(&mut self) -> Result<Option<Vec<u8>>, Error>;
    /// The response to a server challenge.
    fn step(&mut self, challenge: &[u8]) -> Result<Vec<u8>, Error>;
    /// Whether the server has proved itself / nothing more is expected.
    fn is_complete(&self) -> bool;
}

/// One client-side authentication exchange.
#[derive(Debug)]
pub struct ClientSession {
    mechanism: Mechanism,
    mech: Box<dyn ClientMech>,
    started: bool,
}

impl ClientSession {
    /// Prepares a client exchange.
    ///
    /// # Errors
    ///
    /// [`Error::MechanismUnavailable`] for -PLUS without channel-binding data;
    /// [`Error::Saslprep`] for user names or passwords SASLprep rejects;
    /// [`Error::Random`] if no nonce could be drawn.
    pub fn new(
        mechanism: Mechanism,
        credentials: Credentials,
        context: &ClientContext,
    ) -> Result<Self, Error> {
        Ok(Self {
            mechanism,
            mech: mech::client(mechanism, credentials, context)?,
            started: false,
        })
    }

    /// The mechanism of this exchange.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The initial response to send with the AUTH command, or `None` for
    /// server-first mechanisms (CRAM-MD5, DIGEST-MD5, APOP).
    ///
    /// # Errors
    ///
    /// [`Error::ApiMisuse`] when called twice.
    pub fn initial_response(&mut self) -> Result<Option<Vec<u8>>, Error> {
        if self.started {
            return Err(Error::ApiMisuse("initial_response() called twice"));
        }
        self.started = true;
        self.mech.initial()
    }

    /// Answers a server challenge. For SCRAM and DIGEST-MD5 the last
    /// challenge carries the server's proof: it is checked, and an empty
    /// response is returned.
    ///
    /// # Errors
    ///
    /// [`Error::Malformed`]/[`Error::Protocol`] for a bad challenge,
    /// [`Error::ServerAuthentication`] when the server's proof is wrong.
    pub fn step(&mut self, challenge: &[u8]) -> Result<Vec<u8>, Error> {
        self.started = true;
        self.mech.step(challenge)
    }

    /// Whether the exchange completed on the client side (for SCRAM and
    /// DIGEST-MD5: the server proved knowledge of the password). Check this
    /// when the server reports success.
    pub fn is_complete(&self) -> bool {
        self.mech.is_complete()
    }
}
