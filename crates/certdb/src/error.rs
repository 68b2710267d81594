//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong in the certificate database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The directory holds no certificate database.
    #[error("no certificate database in {0} (run `msgcert generate-certDB` first)")]
    NoDatabase(PathBuf),
    /// A database already exists where one was to be created.
    #[error("a certificate database already exists in {0}")]
    AlreadyExists(PathBuf),
    /// The database files are damaged or of an unknown version.
    #[error("certificate database is damaged: {0}")]
    Corrupt(String),
    /// The database password did not match.
    #[error("wrong certificate database password")]
    WrongPassword,
    /// A PKCS#12 or key file password did not match.
    #[error("wrong password for {0}")]
    WrongFilePassword(&'static str),
    /// No certificate carries this alias.
    #[error("no certificate with alias {0:?}")]
    UnknownAlias(String),
    /// The alias is taken.
    #[error("alias {0:?} is already in use")]
    AliasInUse(String),
    /// The alias cannot be used.
    #[error("invalid alias {0:?}: {1}")]
    InvalidAlias(String, &'static str),
    /// The same certificate is already stored under another alias.
    #[error("this certificate is already in the database as {0:?}")]
    DuplicateCertificate(String),
    /// The input is not a certificate (PEM or DER).
    #[error("not a valid certificate: {0}")]
    BadCertificate(String),
    /// The input is not a PKCS#12 file, or holds nothing usable.
    #[error("not a valid PKCS#12 file: {0}")]
    BadPkcs12(String),
    /// A private key could not be parsed or used.
    #[error("unusable private key: {0}")]
    BadKey(String),
    /// Trust flags not in NSS syntax.
    #[error("invalid trust flags {0:?}: {1}")]
    BadTrust(String, &'static str),
    /// A distinguished name could not be parsed.
    #[error("invalid distinguished name {0:?}: {1}")]
    BadName(String, String),
    /// A certificate has no private key here.
    #[error("certificate {0:?} has no private key in this database")]
    NoPrivateKey(String),
    /// A renewal does not fit the certificate it replaces.
    #[error("cannot renew {alias:?}: {reason}")]
    RenewMismatch {
        /// The certificate being renewed.
        alias: String,
        /// Why not.
        reason: &'static str,
    },
    /// No such PKCS#11 module is configured.
    #[error("no PKCS#11 module named {0:?} (see `msgcert list-modules`)")]
    UnknownModule(String),
    /// A module of that name is configured already.
    #[error("a PKCS#11 module named {0:?} is already configured")]
    ModuleExists(String),
    /// A PKCS#11 operation failed.
    #[error("PKCS#11 module {module:?}: {message}")]
    Pkcs11 {
        /// The module name.
        module: String,
        /// What went wrong, in words.
        message: String,
    },
    /// The PKCS#11 token's PIN was refused.
    #[error("wrong PIN for token in module {0:?}")]
    WrongPin(String),
    /// No token is present in the module's slots.
    #[error("no token present in module {0:?}")]
    TokenNotPresent(String),
    /// No PIN is known for a token that needs one.
    #[error("no password for module {0:?} in sslpassword.conf")]
    NoPin(String),
    /// The operation is not possible for this kind of key or entry.
    #[error("not supported: {0}")]
    Unsupported(String),
    /// Creating or signing a certificate or request failed.
    #[error("cannot create certificate: {0}")]
    Generate(String),
    /// A cryptographic primitive failed.
    #[error("cryptographic operation failed: {0}")]
    Crypto(String),
    /// `sslpassword.conf` is malformed.
    #[error("sslpassword.conf line {line}: {reason}")]
    BadPasswordFile {
        /// One-based line number.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A file was replaced but the directory holding it could not be synced,
    /// so after a crash the old content may come back. The change may or
    /// may not be in effect; nothing either version refers to was removed.
    #[error("{} was written but may not survive a crash: {source}", path.display())]
    NotDurable {
        /// The file that was replaced.
        path: PathBuf,
        /// Why the directory sync failed.
        source: Box<Error>,
    },
    /// The input is larger than this crate accepts.
    #[error("input too large ({0} bytes)")]
    TooLarge(usize),
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
