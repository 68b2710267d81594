//! The crate's error type.

use std::fmt;

/// Everything that can go wrong in this crate: filter text that does not
/// parse. (Lookups never fail with an error: their outcome is part of the
/// decision, see [`crate::Verdict::Tempfail`].)
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The filter text is malformed.
    #[error("{line}:{column}: {kind} at `{token}`")]
    Syntax {
        /// 1-based line.
        line: u32,
        /// 1-based column, in characters.
        column: u32,
        /// The offending token (empty at the end of the input).
        token: String,
        /// What is wrong.
        kind: SyntaxErrorKind,
    },
    /// A DNS resolver could not be set up (feature `tokio`).
    #[error("DNS resolver setup: {0}")]
    Resolver(String),
}

impl Error {
    /// The 1-based `(line, column)` of the error.
    pub fn position(&self) -> (u32, u32) {
        match self {
            Error::Syntax { line, column, .. } => (*line, *column),
            Error::Resolver(_) => (0, 0),
        }
    }

    /// The offending token.
    pub fn token(&self) -> &str {
        match self {
            Error::Syntax { token, .. } => token,
            Error::Resolver(_) => "",
        }
    }
}

/// The kinds of syntax error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyntaxErrorKind {
    /// A filter without the `:` between service list and client list.
    MissingColon,
    /// A second `:` (tcp_wrappers' shell command / option field).
    ExtraColon,
    /// An empty service list.
    EmptyServiceList,
    /// An empty client list.
    EmptyClientList,
    /// `EXCEPT` with nothing before it.
    ExceptWithoutList,
    /// `EXCEPT` with nothing after it.
    EmptyExceptList,
    /// `EXCEPT` nested more deeply than the limit.
    TooDeep,
    /// An LDAP-form rule that does not start with `+` or `-`.
    MissingSign,
    /// An empty `$`-separated rule.
    EmptyRule,
    /// A character that has no place in a pattern.
    BadCharacter,
    /// A malformed IPv4 address, prefix, net/mask or prefix length.
    BadAddress,
    /// A malformed `[IPv6]` address or `[net]/len`.
    BadIpv6,
    /// `@netgroup` used as a user or service name, or an empty netgroup.
    BadNetgroup,
    /// `*`/`?` combined with a leading or trailing dot or a net/mask.
    BadGlob,
    /// An empty name, user or service.
    EmptyName,
    /// A host wildcard (`LOCAL`, `DNSSPOOFER`, …) used as a service or
    /// user name.
    MisplacedWildcard,
    /// `/file` host tables (tcp_wrappers) are not supported.
    FilePattern,
    /// A bracket that is not closed.
    UnbalancedBracket,
    /// The input is larger than the parser accepts.
    TooLong,
}

impl fmt::Display for SyntaxErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SyntaxErrorKind::MissingColon => "missing `:` between service list and client list",
            SyntaxErrorKind::ExtraColon => {
                "unexpected second `:` (option fields are not supported)"
            }
            SyntaxErrorKind::EmptyServiceList => "empty service list",
            SyntaxErrorKind::EmptyClientList => "empty client list",
            SyntaxErrorKind::ExceptWithoutList => "EXCEPT without a list before it",
            SyntaxErrorKind::EmptyExceptList => "EXCEPT without a list after it",
            SyntaxErrorKind::TooDeep => "EXCEPT nested too deeply",
            SyntaxErrorKind::MissingSign => "rule must start with `+` (allow) or `-` (deny)",
            SyntaxErrorKind::EmptyRule => "empty rule",
            SyntaxErrorKind::BadCharacter => "invalid character in pattern",
            SyntaxErrorKind::BadAddress => "malformed IPv4 address, prefix or net/mask",
            SyntaxErrorKind::BadIpv6 => "malformed [IPv6] address or [net]/len",
            SyntaxErrorKind::BadNetgroup => "misplaced or empty @netgroup",
            SyntaxErrorKind::BadGlob => {
                "wildcards * and ? cannot be combined with a leading or trailing dot or a net/mask"
            }
            SyntaxErrorKind::EmptyName => "empty name",
            SyntaxErrorKind::MisplacedWildcard => "host wildcard used as a service or user name",
            SyntaxErrorKind::FilePattern => "/file host patterns are not supported",
            SyntaxErrorKind::UnbalancedBracket => "unbalanced `[`/`]`",
            SyntaxErrorKind::TooLong => "input too long",
        })
    }
}
