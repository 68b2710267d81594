//! The crate's error type.

/// What went wrong while reading POP3 protocol data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A line longer than the configured bound.
    #[error("line too long (limit {limit} octets)")]
    LineTooLong {
        /// The bound that was exceeded.
        limit: usize,
    },
    /// A command or response that does not follow the grammar.
    #[error("syntax error: {0}")]
    Syntax(&'static str),
    /// The message store answered something the login cannot continue from.
    #[error("unexpected reply from the message store: {0}")]
    UnexpectedReply(&'static str),
    /// The caller called a method the current state does not allow (never
    /// caused by peer data).
    #[error("API misuse: {0}")]
    ApiMisuse(&'static str),
}
