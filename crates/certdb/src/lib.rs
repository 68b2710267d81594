#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cert;
mod db;
mod error;
mod fsutil;
mod key;
mod keycache;
mod ops;
mod password;
#[cfg(feature = "pkcs11")]
mod pkcs11;
mod pkcs12;
mod report;
mod signer;
mod text;
mod trust;
mod x509gen;

pub use cert::{CertInfo, MAX_CERT_INPUT, colon_hex, decode_certificates, describe};
pub use db::{
    CaUsage, CertDb, CertEntry, INDEX_FILE, IntegrityReport, MAX_ALIAS, Module, Nickname,
    check_alias, expiring,
};
pub use error::{Error, Result};
pub use key::{KdfParams, KeyAlgorithm, KeyType, PrivateKey};
pub use keycache::KeyCache;
pub use ops::{
    DEFAULT_SERVER_CERT, MAX_INPUT_FILE, SOON_DAYS, format_list, host_name, read_input,
    write_private_file,
};
pub use password::{INTERNAL_TOKEN, PASSWORD_FILE, Password, PasswordFile};
#[cfg(feature = "pkcs11")]
pub use pkcs11::{Token, TokenDescription, TokenSigner, list_tokens};
pub use pkcs12::{MAX_PKCS12_INPUT, Pkcs12Entry, build_pkcs12, parse_pkcs12};
pub use report::Report;
pub use signer::{Identity, KeyLocation, SignatureScheme, Signer, SoftwareSigner, verify};
pub use text::terminal_safe;
pub use trust::{TrustFlags, TrustSet};
pub use x509gen::{
    CSR_PEM_LABEL, Subject, SubjectFields, Validity, add_days, add_months, certificate_request,
    latest_not_after, public_key_pem, random_serial, renew_self_signed, request_pem, self_signed,
};
