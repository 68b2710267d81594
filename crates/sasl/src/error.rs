//! The crate's one error type.

use crate::Mechanism;

/// Everything that can go wrong in an exchange, in the policy or in framing.
///
/// Errors fall in three families, which the framing layer maps to different
/// replies (see [`crate::framing::Failure`]):
///
/// * *peer faults*: the client sent something malformed or inconsistent
///   ([`Error::Malformed`], [`Error::ChannelBinding`], ...);
/// * *outcomes*: the credentials were wrong ([`Error::BadCredentials`]) or the
///   directory was down ([`Error::Unavailable`]);
/// * *caller faults*: [`Error::ApiMisuse`], never caused by untrusted data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The client's message does not follow the mechanism's syntax.
    #[error("malformed {mechanism} message: {reason}")]
    Malformed {
        /// Mechanism whose syntax was broken.
        mechanism: Mechanism,
        /// What was wrong (never contains secrets or client-supplied text).
        reason: &'static str,
    },
    /// The peer's message was well formed but violates the protocol's rules
    /// (wrong nonce, wrong `nc`, wrong digest-uri, unsupported `qop`, ...).
    #[error("{mechanism} protocol violation: {reason}")]
    Protocol {
        /// Mechanism whose rules were broken.
        mechanism: Mechanism,
        /// What was wrong.
        reason: &'static str,
    },
    /// Channel binding failed: wrong flag, unknown or unavailable binding type,
    /// a `y` flag while -PLUS was advertised, or mismatching binding data.
    #[error("{mechanism} channel binding failure: {reason}")]
    ChannelBinding {
        /// Mechanism whose channel binding failed.
        mechanism: Mechanism,
        /// What was wrong.
        reason: &'static str,
    },
    /// The credentials were wrong, the user is unknown, or the identity could
    /// not be mapped: the exchange is over.
    #[error("authentication failed")]
    BadCredentials,
    /// The authenticated identity may not act as the requested authorization
    /// identity.
    #[error("authorization failed")]
    AuthorizationFailed,
    /// The credential store is temporarily unavailable (directory down, ...).
    /// Distinct from [`Error::BadCredentials`]; the client may retry later.
    #[error("authentication temporarily unavailable")]
    Unavailable,
    /// The client cancelled the exchange (`*`).
    #[error("authentication aborted by the client")]
    Aborted,
    /// The mechanism is unknown, not implemented, or not permitted here.
    /// Never carries the name the client sent.
    #[error("mechanism not available")]
    MechanismUnavailable,
    /// The mechanism needs an encrypted connection (PLAIN and LOGIN when
    /// `service.plaintextmincipher` > 0).
    #[error("encryption required for this mechanism")]
    EncryptionRequired,
    /// A message or line exceeds its size bound.
    #[error("message too long")]
    TooLong,
    /// Base64 framing was invalid (wrong alphabet, padding, or spaces).
    #[error("invalid base64")]
    Base64,
    /// A user name or password was rejected by SASLprep (RFC 4013).
    #[error("string rejected by SASLprep")]
    Saslprep,
    /// A stored SCRAM secret (RFC 5803) could not be parsed, or a new one
    /// would be too weak.
    #[error("invalid SCRAM secret: {0}")]
    ScramSecret(&'static str),
    /// A policy value could not be used (unknown mechanism name in
    /// `sasl.default.mech_list`, ...).
    #[error("invalid policy: {0}")]
    Policy(String),
    /// The operating system's random number generator failed.
    #[error("random number generator failed")]
    Random,
    /// The server's final message did not prove knowledge of the password
    /// (client side: SCRAM `v=`, DIGEST-MD5 `rspauth`), or carried an error.
    #[error("server authentication failed")]
    ServerAuthentication,
    /// The calling code used the API incorrectly (an answer of the wrong kind,
    /// a step after the end). Never caused by the values of untrusted data.
    #[error("API misuse: {0}")]
    ApiMisuse(&'static str),
}

impl Error {
    pub(crate) fn malformed(mechanism: Mechanism, reason: &'static str) -> Self {
        Self::Malformed { mechanism, reason }
    }

    pub(crate) fn protocol(mechanism: Mechanism, reason: &'static str) -> Self {
        Self::Protocol { mechanism, reason }
    }

    pub(crate) fn cb(mechanism: Mechanism, reason: &'static str) -> Self {
        Self::ChannelBinding { mechanism, reason }
    }
}
