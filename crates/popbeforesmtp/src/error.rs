//! The crate's one error type.

use std::io;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting has a value this crate cannot use (caller fault).
    #[error("invalid setting {name}: {reason}")]
    InvalidSetting {
        /// The option name, as in the configuration (`SmtpRelays`, ...).
        name: &'static str,
        /// Why the value was refused.
        reason: String,
    },
    /// The cache backend (Redis) could not be reached or answered badly.
    #[error("cache backend unavailable: {0}")]
    CacheUnavailable(String),
    /// The cache backend returned a value this crate did not write.
    #[error("cache backend returned a malformed entry")]
    CacheCorrupt,
    /// A user name that cannot be recorded (empty, too long, control characters).
    #[error("invalid user name for the POP-before-SMTP cache")]
    InvalidUser,
    /// Every relay is down or is being skipped after a recent failure.
    /// Map it to `421 4.3.0` (see [`Error::smtp_reply`]).
    #[error("no SMTP relay available")]
    AllRelaysDown,
    /// A relay did not answer within the failover timeout.
    #[error("relay {relay} timed out")]
    RelayTimeout {
        /// The relay, `host:port`.
        relay: String,
    },
    /// A relay answered with a reply we did not expect at that point.
    #[error("relay {relay} answered {code}: {text}")]
    RelayRefused {
        /// The relay, `host:port`.
        relay: String,
        /// The relay's reply code.
        code: u16,
        /// The relay's reply text (first line).
        text: String,
    },
    /// A relay refused the client's own data in the hand-off (an XCLIENT
    /// 5xx reply about its HELO name, host name or login). The relay itself
    /// works, so it is not skipped.
    #[error("relay {relay} refused the client: {code} {text}")]
    ClientRefused {
        /// The relay, `host:port`.
        relay: String,
        /// The relay's reply code (5xx).
        code: u16,
        /// The relay's reply text (first line).
        text: String,
    },
    /// A value the client gave (HELO name, login) that cannot be handed to
    /// a relay; refused before any relay sees it, so no relay is marked
    /// failed because of it.
    #[error("client {field} refused: {reason}")]
    InvalidClient {
        /// The attribute: `HELO`, `LOGIN`, ...
        field: &'static str,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A relay lacks a capability the configuration requires
    /// (STARTTLS under `musttls`, XCLIENT for the XCLIENT hand-off).
    #[error("relay {relay} does not offer {capability}")]
    RelayLacks {
        /// The relay, `host:port`.
        relay: String,
        /// The missing capability.
        capability: &'static str,
    },
    /// The relay sent bytes that are not an SMTP reply.
    #[error("malformed reply from relay: {0}")]
    MalformedReply(#[from] crate::relay::reply::ReplyError),
    /// The relay closed the connection.
    #[error("relay closed the connection")]
    RelayClosed,
    /// The TLS handshake with a relay failed.
    #[error("TLS with relay failed: {0}")]
    Tls(io::Error),
    /// A socket error.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The caller used the API in a way it does not allow; never caused by
    /// the values of untrusted data (e.g. XCLIENT inside a mail transaction).
    #[error("API misuse: {0}")]
    ApiMisuse(&'static str),
}

impl Error {
    /// The SMTP reply a front end sends its client for this error, when one
    /// applies: relay trouble is a temporary failure, `421 4.3.0`.
    #[must_use]
    pub fn smtp_reply(&self) -> Option<&'static str> {
        match self {
            Self::AllRelaysDown
            | Self::RelayTimeout { .. }
            | Self::RelayRefused { .. }
            | Self::RelayLacks { .. }
            | Self::MalformedReply(_)
            | Self::RelayClosed
            | Self::Tls(_)
            | Self::Io(_) => Some("421 4.3.0 Mail relay temporarily unavailable, try again later"),
            Self::ClientRefused { .. } => Some("550 5.7.1 Client refused by the mail relay"),
            Self::InvalidClient { field: "HELO", .. } => {
                Some("501 5.5.4 Syntax error in HELO/EHLO domain (RFC 5321)")
            }
            Self::InvalidClient { .. } => Some("550 5.7.1 Client refused by the mail relay"),
            _ => None,
        }
    }
}
