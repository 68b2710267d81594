//! `maytls` towards relays: Postfix's "may" level. A relay that offers
//! STARTTLS but whose certificate does not verify is still spoken to over
//! TLS, unauthenticated, rather than in plain text.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// Accepts any certificate, but still checks that the peer holds its key
/// (the handshake signatures), so the session is encrypted to whoever
/// presented it. Only used after a verified handshake failed on the
/// certificate under `maytls`.
#[derive(Debug)]
struct DangerUnverifiedCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for DangerUnverifiedCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `config` with certificate verification turned off (see
/// [`DangerUnverifiedCertificate`]).
pub(super) fn dangerous_unverified(config: &ClientConfig) -> Arc<ClientConfig> {
    let mut config = config.clone();
    let provider = Arc::clone(config.crypto_provider());
    config
        .dangerous()
        .set_certificate_verifier(Arc::new(DangerUnverifiedCertificate(provider)));
    Arc::new(config)
}

/// Whether a failed TLS handshake failed on the relay's certificate (as
/// opposed to the connection or the protocol).
pub(super) fn is_certificate_error(error: &std::io::Error) -> bool {
    error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
        .is_some_and(|e| {
            matches!(
                e,
                rustls::Error::InvalidCertificate(_)
                    | rustls::Error::NoCertificatesPresented
                    | rustls::Error::UnsupportedNameType
            )
        })
}
