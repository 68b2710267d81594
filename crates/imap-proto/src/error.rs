//! The crate's error type.

/// What went wrong while reading or writing IMAP protocol data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A line longer than the configured bound.
    #[error("line too long (limit {limit} octets)")]
    LineTooLong {
        /// The bound that was exceeded.
        limit: usize,
    },
    /// A literal or message larger than the configured bound.
    #[error("literal or message too large ({length} octets, limit {limit})")]
    TooBig {
        /// The announced or accumulated length.
        length: u64,
        /// The bound that was exceeded.
        limit: u64,
    },
    /// A command or response that does not follow the grammar.
    #[error("syntax error: {0}")]
    Syntax(&'static str),
    /// The message store answered something the login cannot continue from.
    #[error("unexpected reply from the message store: {0}")]
    UnexpectedReply(&'static str),
    /// A value that cannot be sent (e.g. a NUL in a user name).
    #[error("cannot encode: {0}")]
    Encode(&'static str),
    /// The caller called a method the current state does not allow (never
    /// caused by peer data).
    #[error("API misuse: {0}")]
    ApiMisuse(&'static str),
}
