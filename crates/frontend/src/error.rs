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
    /// Reading from or writing to the connection failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Shorthand for a `ProxyHeader` error.
pub(crate) const fn malformed(position: usize, reason: &'static str) -> Error {
    Error::ProxyHeader { position, reason }
}
