//! The client side of an exchange (for the proxies and the tests).

use crate::mech::{self, ClientMech};
use crate::{ClientContext, Credentials, Error, Mechanism};

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
