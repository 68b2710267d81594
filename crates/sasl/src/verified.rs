//! [`VerifiedCertificate`]: the client certificate a TLS handshake verified.

use std::fmt;

/// A client certificate chain (leaf first, DER) that the TLS layer verified
/// during a completed handshake: the only certificate SASL EXTERNAL and the
/// certificate mappings (`portcullis-certmap`, `portcullis-ldapauth`) take.
///
/// There is no constructor from bytes. The one way to make a value is
/// `VerifiedCertificate::from_rustls` (feature `rustls`), which reads the
/// peer chain of a finished rustls server connection: rustls records a
/// client's chain only after the configured client-certificate verifier
/// accepted it and the client proved possession of the key
/// (CertificateVerify), or, on resumption, after it did so in the original
/// handshake. `portcullis-tlsconf` hands it on with
/// `Accepted::client_certificate` and `Accepted::sasl_context`.
///
/// Raw DER can therefore not be passed where a verified certificate is
/// expected:
///
/// ```compile_fail,E0308
/// use portcullis_sasl::ExternalIdentity;
/// // error[E0308]: expected `VerifiedCertificate`, found `Vec<u8>`
/// let identity = ExternalIdentity::Certificate(vec![0x30, 0x00]);
/// ```
///
/// nor can one be assembled by hand:
///
/// ```compile_fail,E0451
/// use portcullis_sasl::VerifiedCertificate;
/// // error[E0451]: field `chain` of struct `VerifiedCertificate` is private
/// let cert = VerifiedCertificate { chain: vec![vec![0x30, 0x00]] };
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct VerifiedCertificate {
    /// Never empty: the end-entity certificate comes first.
    chain: Vec<Vec<u8>>,
}

impl VerifiedCertificate {
    /// The verified client chain of a rustls server connection whose
    /// handshake is complete; `None` while it is still running or when the
    /// client sent no certificate.
    ///
    /// Only as trustworthy as the connection's client-certificate
    /// verifier: configurations built by `portcullis-tlsconf` verify
    /// against the CAs the certificate database trusts for clients (and
    /// the CRLs configured); one made with rustls's `dangerous()` API
    /// could accept anything.
    #[cfg(feature = "rustls")]
    pub fn from_rustls(conn: &rustls::ServerConnection) -> Option<Self> {
        if conn.is_handshaking() {
            return None;
        }
        let chain: Vec<Vec<u8>> = conn
            .peer_certificates()?
            .iter()
            .map(|c| c.as_ref().to_vec())
            .collect();
        (!chain.is_empty()).then_some(Self { chain })
    }

    /// The client's own (end-entity) certificate, DER.
    pub fn end_entity(&self) -> &[u8] {
        // Invariant: the only constructor never builds an empty chain.
        &self.chain[0]
    }

    /// The whole chain as the client sent it, leaf first (DER).
    pub fn chain(&self) -> impl ExactSizeIterator<Item = &[u8]> {
        self.chain.iter().map(Vec::as_slice)
    }
}

impl fmt::Debug for VerifiedCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "VerifiedCertificate({} certificates, end entity {} bytes)",
            self.chain.len(),
            self.end_entity().len()
        )
    }
}
