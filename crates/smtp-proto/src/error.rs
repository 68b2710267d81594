//! The crate's error type.

/// What went wrong in the SMTP core.
///
/// Client input never produces an `Error`: the server session answers bad
/// client input with a reply. Errors come from a relay's replies and from
/// calls the current state does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The relay sent bytes that are not an SMTP reply.
    #[error("malformed reply from the relay: {0}")]
    Reply(#[from] portcullis_popbeforesmtp::relay::ReplyError),
    /// The relay sent a reply when none was expected.
    #[error("reply from the relay when none was expected")]
    UnexpectedReply,
    /// A value the caller passed cannot go on the wire (never caused by
    /// client data the server session parsed).
    #[error("invalid value: {0}")]
    InvalidValue(&'static str),
    /// The caller called a method the current state does not allow (never
    /// caused by peer data).
    #[error("API misuse: {0}")]
    ApiMisuse(&'static str),
}
