//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong reading or changing the configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file is not valid TOML.
    #[error("syntax error at line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the TOML parser said.
        message: String,
    },
    /// A name the registry does not know.
    #[error("unknown parameter `{name}`{}", suggestion.map(|s| format!("; did you mean `{s}`?")).unwrap_or_default())]
    UnknownParameter {
        /// The name as given.
        name: String,
        /// The closest known name, if one is close.
        suggestion: Option<&'static str>,
    },
    /// A value that does not fit the parameter's type.
    #[error("invalid value for `{name}`: {reason}")]
    InvalidValue {
        /// The parameter.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A parameter given twice (e.g. as `a.b` and in a `[a]` table).
    #[error("parameter `{name}` is set more than once")]
    Duplicate {
        /// The parameter as spelled the second time.
        name: String,
    },
    /// A typed accessor was used on a parameter of another type (a caller
    /// mistake, never caused by the file's contents).
    #[error("parameter `{name}` is not of type {expected}")]
    WrongType {
        /// The parameter.
        name: String,
        /// The type the accessor reads.
        expected: &'static str,
    },
    /// A service name that no filter parameters govern (see
    /// [`crate::Config::service_filters`]).
    #[error(
        "unknown service `{service}`: no filter parameters govern it (known: {})",
        crate::filter::known_service_names()
    )]
    UnknownService {
        /// The name as given.
        service: String,
    },
    /// An edit was refused because the document it would produce does not
    /// read back as intended (it would not parse, would name a parameter
    /// twice, or would hold other values). Nothing was changed.
    #[error("edit refused, the file would not read back as intended: {reason}")]
    EditRefused {
        /// What reading the edited document back found.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Marks an invalid value as coming from the built-in default (a bug).
    pub(crate) fn in_default(self) -> Self {
        match self {
            Self::InvalidValue { name, reason } => Self::InvalidValue {
                name,
                reason: format!("built-in default is invalid: {reason}"),
            },
            other => other,
        }
    }
}
