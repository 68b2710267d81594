#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod accept;
#[cfg(any(feature = "certdb", feature = "pkcs11"))]
mod blocking;
#[cfg(feature = "certdb")]
pub mod certdb;
mod client;
mod client_auth;
mod convert;
mod error;
mod nickname;
pub mod params;
#[cfg(feature = "pkcs11")]
pub mod pkcs11;
mod reload;
mod resolver;
mod server;
mod source;
pub mod starttls;
pub mod suites;
mod tickets;

#[cfg(feature = "sasl")]
pub use portcullis_sasl as sasl;
/// The client certificate a handshake verified ([`Accepted::client_certificate`]).
#[cfg(feature = "sasl")]
pub use portcullis_sasl::VerifiedCertificate;
pub use rustls;
pub use rustls_pki_types as pki_types;
pub use tokio_rustls;

pub use accept::{Accepted, MaybeTls, TlsInfo};
pub use client::{ClientAction, ClientSettings, TlsClient, TlsRequirement};
pub use client_auth::{ClientAuth, ClientAuthMode, load_crls};
pub use error::Error;
pub use nickname::{Nickname, Service, parse_nickname_list};
pub use reload::{TlsServer, Watch};
pub use resolver::{KeySet, ServerCertResolver};
pub use server::{Alpn, DEFAULT_HANDSHAKE_TIMEOUT, ServerSettings, SniEntry, build_server_config};
pub use source::{
    CertificateSource, Credential, MemorySource, PemFileSource, certificates_from_pem,
};
pub use suites::{CipherSuites, TlsVersion, VersionRange};
pub use tickets::Resumption;
