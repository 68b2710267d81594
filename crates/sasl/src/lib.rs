#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod account;
mod authenticated;
mod backend;
mod channel_binding;
mod client;
mod context;
#[cfg(feature = "danger")]
pub mod danger;
mod error;
pub mod framing;
mod mech;
mod mechanism;
mod memory;
mod policy;
mod protocol_login;
#[cfg(feature = "rustls")]
mod rustls_state;
mod scram_secret;
mod secret;
mod server;
mod unknown_user;
mod util;
mod verified;

pub use account::Account;
pub use authenticated::Authenticated;
pub use backend::{
    Answer, Authorize, Backends, BoxFuture, CredentialVerifier, FetchPassword, FetchScramSecret,
    IdentityMapper, MapIdentity, NoProxy, ProxyAuthorizer, Request, Verdict, VerifyPassword,
    WithAccount,
};
pub use client::ClientSession;
pub use context::{
    ChannelBindingType, ClientContext, Credentials, ExternalIdentity, ServerContext, Service,
    TlsState, TlsVersion,
};
pub use error::Error;
pub use mechanism::{Mechanism, ScramAlgorithm};
pub use memory::MemoryBackend;
pub use policy::{POLICY_PARAMETERS, PlaintextRule, Policy, PolicyConfig};
pub use protocol_login::Salt;
pub use scram_secret::{MIN_ITERATIONS, SALT_LEN, ScramSecret};
pub use secret::Password;
pub use server::{MAX_CLIENT_MESSAGE, ServerSession, Step};
pub use unknown_user::{UNKNOWN_USER_SECRET_LEN, UnknownUserSecret};
pub use verified::VerifiedCertificate;
/// Re-exported: [`TlsState::tls_exporter`] holds a [`zeroize::Zeroizing`].
pub use zeroize;

/// `tls-server-end-point` channel-binding data (RFC 5929 §4.1) for a server
/// certificate (DER): its hash with the certificate signature's hash
/// function, SHA-256 when that is MD5 or SHA-1.
///
/// # Errors
///
/// [`Error::ChannelBinding`] when the certificate cannot be parsed or its
/// signature algorithm has no defined hash (e.g. Ed25519).
pub fn tls_server_end_point(certificate_der: &[u8]) -> Result<Vec<u8>, Error> {
    channel_binding::tls_server_end_point(certificate_der)
}
