//! TLS handshakes in memory (no sockets), for tests that need what only a
//! finished handshake yields, such as a verified client certificate.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};

use crate::FixtureError;
use crate::ca::{Issued, TestCa};

/// The most TLS flights a handshake of this module exchanges before it is
/// called stuck (a full TLS 1.3 handshake with client authentication takes
/// three).
const MAX_FLIGHTS: usize = 16;

fn failed(detail: impl std::fmt::Display) -> FixtureError {
    FixtureError::Command {
        what: "in-memory TLS handshake".into(),
        detail: detail.to_string(),
    }
}

/// Runs a TLS handshake in memory in which the client presents `client`
/// and the server verifies it with rustls's WebPKI client verifier against
/// its issuing CA; returns the server's side once the handshake is
/// complete.
///
/// # Errors
/// As [`client_auth_handshake_trusting`].
pub fn client_auth_handshake(client: &Issued) -> Result<ServerConnection, FixtureError> {
    client_auth_handshake_trusting(&client.issuer_der, client)
}

/// As [`client_auth_handshake`], with the server trusting only the CA
/// certificate `trusted_ca` (DER) for client certificates.
///
/// # Errors
/// When the certificates are unusable or the handshake fails (e.g. the
/// verifier refuses `client`).
pub fn client_auth_handshake_trusting(
    trusted_ca: &[u8],
    client: &Issued,
) -> Result<ServerConnection, FixtureError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let root_store = |der: Vec<u8>| {
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from(der)).map_err(failed)?;
        Ok::<_, FixtureError>(Arc::new(roots))
    };
    // The server's own certificate comes from a CA of its own.
    let server_ca = TestCa::new("In-memory server CA")?;
    let server_cert = server_ca.issue_server(&["localhost"])?;
    let client_roots = root_store(trusted_ca.to_vec())?;
    let key =
        |issued: &Issued| PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(issued.key_der.clone()));
    let verifier = WebPkiClientVerifier::builder_with_provider(client_roots, provider.clone())
        .build()
        .map_err(failed)?;
    let server_config = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(failed)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from(server_cert.cert_der.clone())],
            key(&server_cert),
        )
        .map_err(failed)?;
    let client_config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(failed)?
        .with_root_certificates(root_store(server_ca.cert_der())?)
        .with_client_auth_cert(
            vec![CertificateDer::from(client.cert_der.clone())],
            key(client),
        )
        .map_err(failed)?;
    let name = ServerName::try_from("localhost").map_err(failed)?;
    let mut c = ClientConnection::new(Arc::new(client_config), name).map_err(failed)?;
    let mut s = ServerConnection::new(Arc::new(server_config)).map_err(failed)?;
    for _ in 0..MAX_FLIGHTS {
        let mut moved = false;
        while c.wants_write() {
            let mut buf = Vec::new();
            c.write_tls(&mut buf)?;
            s.read_tls(&mut buf.as_slice())?;
            s.process_new_packets().map_err(failed)?;
            moved = true;
        }
        while s.wants_write() {
            let mut buf = Vec::new();
            s.write_tls(&mut buf)?;
            c.read_tls(&mut buf.as_slice())?;
            c.process_new_packets().map_err(failed)?;
            moved = true;
        }
        if !s.is_handshaking() && !c.is_handshaking() {
            return Ok(s);
        }
        if !moved {
            break;
        }
    }
    Err(failed("the handshake did not complete"))
}
