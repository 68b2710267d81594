//! Mechanism names.

use std::fmt;

/// A SASL mechanism (or APOP, which the POP3 layer treats like one).
///
/// Names are matched case-insensitively ([`Mechanism::from_name`]); an
/// unknown name gives `None`, and callers must not echo it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Mechanism {
    /// `PLAIN` (RFC 4616).
    Plain,
    /// `LOGIN` (draft-murchison-sasl-login).
    Login,
    /// `CRAM-MD5` (RFC 2195).
    CramMd5,
    /// `DIGEST-MD5` (RFC 2831), authentication only.
    DigestMd5,
    /// POP3 `APOP` (RFC 1939 section 7). Not SASL, but the same shape.
    Apop,
    /// `ANONYMOUS` (RFC 4505).
    Anonymous,
    /// `EXTERNAL` (RFC 4422 appendix A).
    External,
    /// `SCRAM-SHA-1` (RFC 5802).
    ScramSha1,
    /// `SCRAM-SHA-1-PLUS` (RFC 5802 with channel binding).
    ScramSha1Plus,
    /// `SCRAM-SHA-256` (RFC 7677).
    ScramSha256,
    /// `SCRAM-SHA-256-PLUS` (RFC 7677 with channel binding).
    ScramSha256Plus,
}

/// The hash function of a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ScramAlgorithm {
    /// SHA-1 (`SCRAM-SHA-1`).
    Sha1,
    /// SHA-256 (`SCRAM-SHA-256`).
    Sha256,
}

impl ScramAlgorithm {
    /// The RFC 5803 scheme name: `SCRAM-SHA-1` or `SCRAM-SHA-256`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "SCRAM-SHA-1",
            Self::Sha256 => "SCRAM-SHA-256",
        }
    }

    /// Output length of the hash in bytes.
    pub const fn output_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
        }
    }
}

impl fmt::Display for ScramAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Mechanism {
    /// Every mechanism this crate implements, strongest first (the order used
    /// when advertising).
    pub const ALL: [Self; 11] = [
        Self::ScramSha256Plus,
        Self::ScramSha256,
        Self::ScramSha1Plus,
        Self::ScramSha1,
        Self::DigestMd5,
        Self::CramMd5,
        Self::Apop,
        Self::External,
        Self::Plain,
        Self::Login,
        Self::Anonymous,
    ];

    /// The registered (upper-case) name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::Login => "LOGIN",
            Self::CramMd5 => "CRAM-MD5",
            Self::DigestMd5 => "DIGEST-MD5",
            Self::Apop => "APOP",
            Self::Anonymous => "ANONYMOUS",
            Self::External => "EXTERNAL",
            Self::ScramSha1 => "SCRAM-SHA-1",
            Self::ScramSha1Plus => "SCRAM-SHA-1-PLUS",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha256Plus => "SCRAM-SHA-256-PLUS",
        }
    }

    /// Looks a name up, ignoring ASCII case. Returns `None` for anything
    /// unknown (do not reflect the name back to the client).
    pub fn from_name(name: &[u8]) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.name().as_bytes().eq_ignore_ascii_case(name))
    }

    /// PLAIN and LOGIN, which carry the password in the clear and fall under
    /// `service.plaintextmincipher`.
    pub const fn is_plaintext(self) -> bool {
        matches!(self, Self::Plain | Self::Login)
    }

    /// CRAM-MD5, DIGEST-MD5 and APOP, which need the cleartext password from
    /// the directory (`sasl.default.ldap.has_plain_passwords`).
    pub const fn needs_cleartext_password(self) -> bool {
        matches!(self, Self::CramMd5 | Self::DigestMd5 | Self::Apop)
    }

    /// The SCRAM hash, if this is a SCRAM mechanism.
    pub const fn scram_algorithm(self) -> Option<ScramAlgorithm> {
        match self {
            Self::ScramSha1 | Self::ScramSha1Plus => Some(ScramAlgorithm::Sha1),
            Self::ScramSha256 | Self::ScramSha256Plus => Some(ScramAlgorithm::Sha256),
            _ => None,
        }
    }

    /// A `-PLUS` (channel-binding) variant.
    pub const fn is_plus(self) -> bool {
        matches!(self, Self::ScramSha1Plus | Self::ScramSha256Plus)
    }

    /// Whether the server speaks first (no initial response allowed).
    pub const fn is_server_first(self) -> bool {
        matches!(self, Self::CramMd5 | Self::DigestMd5 | Self::Apop)
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
