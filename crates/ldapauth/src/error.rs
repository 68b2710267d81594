//! The crate's error type and the reasons a login is refused.

use crate::scheme::SchemeError;

/// Why a login (or lookup) was refused. Callers must not tell the client
/// which one; the reason is for logs and policy.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reject {
    /// The password was empty: refused before any bind (RFC 4513 §5.1.2).
    EmptyPassword,
    /// No entry matched the login.
    UnknownUser,
    /// More than one entry matched the login or certificate.
    Ambiguous,
    /// The domain of the login is not in the directory.
    UnknownDomain,
    /// The password is wrong.
    BadPassword,
    /// No stored password this crate can check (or cleartext / SCRAM keys
    /// were asked for and the entry has none).
    NoUsablePassword,
    /// The account's `inetUserStatus` / `mailUserStatus` refuses login.
    AccountStatus {
        /// The attribute.
        attribute: &'static str,
        /// Its value (`inactive`, `deleted`, `hold`, …).
        value: String,
    },
    /// The domain's `inetDomainStatus` / `mailDomainStatus` refuses login.
    DomainStatus {
        /// The attribute.
        attribute: &'static str,
        /// Its value.
        value: String,
    },
    /// The certificate cannot be mapped (see the message).
    Unmappable(String),
    /// `verifycert on` and the entry does not hold the presented
    /// certificate.
    CertificateMismatch,
    /// Cleartext retrieval is off (`sasl.default.ldap.has_plain_passwords`).
    PlainPasswordsDisabled,
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::EmptyPassword => f.write_str("empty password"),
            Self::UnknownUser => f.write_str("no such user"),
            Self::Ambiguous => f.write_str("more than one entry matches"),
            Self::UnknownDomain => f.write_str("no such domain"),
            Self::BadPassword => f.write_str("wrong password"),
            Self::NoUsablePassword => f.write_str("no usable stored password"),
            Self::AccountStatus { attribute, value } => {
                write!(f, "account {attribute} is `{value}`")
            }
            Self::DomainStatus { attribute, value } => write!(f, "domain {attribute} is `{value}`"),
            Self::Unmappable(why) => write!(f, "certificate cannot be mapped: {why}"),
            Self::CertificateMismatch => f.write_str("the entry does not hold this certificate"),
            Self::PlainPasswordsDisabled => f.write_str("cleartext passwords are not available"),
        }
    }
}

/// Everything that can go wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Refused: bad credentials, unknown user, account state… (permanent).
    #[error("refused: {0}")]
    Rejected(Reject),
    /// No directory server could answer in time: a *temporary* failure.
    #[error("directory unavailable: {0}")]
    Unavailable(String),
    /// The directory answered something unexpected (an LDAP error code, a
    /// malformed `inetDomainSearchFilter`…).
    #[error("directory error: {0}")]
    Directory(String),
    /// The settings are unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// A filter or filter template is malformed.
    #[error("filter: {0}")]
    Filter(String),
    /// A stored password could not be checked.
    #[error(transparent)]
    Scheme(#[from] SchemeError),
    /// certmap trouble.
    #[error(transparent)]
    Certmap(#[from] portcullis_certmap::Error),
}

impl Error {
    /// True when the client may retry later (directory down or timed out).
    #[must_use]
    pub fn is_temporary(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }

    /// The refusal reason, when this is a refusal.
    #[must_use]
    pub fn reject(&self) -> Option<&Reject> {
        match self {
            Self::Rejected(r) => Some(r),
            _ => None,
        }
    }
}

impl From<Reject> for Error {
    fn from(r: Reject) -> Self {
        Self::Rejected(r)
    }
}
