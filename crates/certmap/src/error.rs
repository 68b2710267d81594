//! The crate's one error type.

/// Everything that can go wrong while reading `certmap.conf` or mapping a
/// certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A line of `certmap.conf` could not be understood.
    #[error("certmap.conf line {line}: {message}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        message: String,
    },
    /// A directive that loads a plug-in (`library`, `InitFn`): Portcullis
    /// never loads code named by a configuration file.
    #[error(
        "certmap.conf line {line}: `{map}:{directive}` is not supported \
         (certificate-mapping plug-ins cannot be loaded)"
    )]
    Unsupported {
        /// 1-based line number.
        line: usize,
        /// The map the directive belongs to.
        map: String,
        /// The directive as written.
        directive: String,
    },
    /// The file has no `certmap default default` line.
    #[error("certmap.conf: the required `certmap default default` line is missing")]
    MissingDefault,
    /// A distinguished name string is malformed (RFC 4514).
    #[error("malformed distinguished name: {0}")]
    Dn(String),
    /// The certificate could not be parsed.
    #[error("malformed certificate: {0}")]
    Certificate(String),
    /// The certificate lacks what the chosen map needs to build a search.
    #[error("certificate cannot be mapped by map `{map}`: {reason}")]
    Unmappable {
        /// The map that was chosen.
        map: String,
        /// What is missing.
        reason: String,
    },
}
