//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong while building or reloading a TLS configuration.
///
/// None of these is caused by a peer: handshake failures are rustls errors and
/// reach the caller through the I/O error of the accept or connect call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A legacy protocol version or cipher was named in the configuration.
    /// `why` says what is wrong with it and `instead` what to configure.
    #[error("refused legacy TLS setting {name:?}: {why}; use {instead} instead")]
    Legacy {
        /// The name as configured.
        name: String,
        /// Why it is refused.
        why: &'static str,
        /// What to configure instead.
        instead: &'static str,
    },
    /// A cipher suite name that is neither an IANA nor an OpenSSL name of a
    /// supported suite.
    #[error("unknown cipher suite {name:?}; supported: {supported}")]
    UnknownCipherSuite {
        /// The name as configured.
        name: String,
        /// Comma list of the supported names.
        supported: String,
    },
    /// A protocol version name that is not understood.
    #[error("unknown TLS version {0:?}; use TLSv1.2 or TLSv1.3")]
    UnknownVersion(String),
    /// A nickname that is empty or malformed.
    #[error("invalid certificate nickname {0:?}: expected [module:]alias")]
    InvalidNickname(String),
    /// The certificate source has no certificate under this nickname.
    #[error("no certificate with nickname {0:?}")]
    UnknownNickname(String),
    /// Two nicknames of one list have the same key type.
    #[error(
        "nicknames {first:?} and {second:?} both hold a {key_type} key; a list may name at most one certificate per key type"
    )]
    DuplicateKeyType {
        /// The first nickname.
        first: String,
        /// The second nickname.
        second: String,
        /// The key type both hold.
        key_type: String,
    },
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// PEM or DER material could not be parsed.
    #[error("bad {what} in {origin}: {detail}")]
    BadMaterial {
        /// What was being read (certificate, private key, CRL).
        what: &'static str,
        /// Where it came from (a path or a nickname).
        origin: String,
        /// What went wrong.
        detail: String,
    },
    /// The settings contradict each other or are incomplete.
    #[error("invalid TLS configuration: {0}")]
    Config(String),
    /// A PKCS#11 token operation failed.
    #[error("PKCS#11: {0}")]
    Token(String),
    /// The certificate source (for example the certdb) failed.
    #[error("certificate source: {0}")]
    Source(String),
    /// A configuration parameter's value is refused; `source` says why.
    #[error("{parameter}: {source}")]
    Parameter {
        /// The parameter's name (`local.sslminversion`, ...).
        parameter: &'static str,
        /// What is wrong with its value.
        source: Box<Error>,
    },
    /// rustls refused the configuration.
    #[error("rustls: {0}")]
    Rustls(#[from] rustls::Error),
    /// rustls refused the client certificate verifier settings.
    #[error("client certificate verification: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// Wraps `self` as the error of `parameter`.
    pub(crate) fn in_parameter(self, parameter: &'static str) -> Self {
        Self::Parameter {
            parameter,
            source: Box::new(self),
        }
    }

    pub(crate) fn material(
        what: &'static str,
        origin: impl Into<String>,
        detail: impl ToString,
    ) -> Self {
        Self::BadMaterial {
            what,
            origin: origin.into(),
            detail: detail.to_string(),
        }
    }
}
