//! TLS for outgoing connections (LDAPS, SMTP relays).
//!
//! The channel keywords: `maytls` uses TLS when the peer offers it and goes
//! on in plaintext otherwise; `musttls` refuses to go on without TLS. When
//! TLS is used the server is always verified: a chain to a CA trusted for
//! server authentication (flag `C`) and the host name.

use std::fmt;
use std::sync::Arc;

use rustls::client::ResolvesClientCert;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, SignatureScheme};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::client::TlsStream;

use crate::server::provider;
use crate::source::CertificateSource;
use crate::suites::{CipherSuites, VersionRange};
use crate::{Error, Nickname};

/// Whether a connection may continue without TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TlsRequirement {
    /// `maytls`: use TLS when offered, else continue in plaintext.
    #[default]
    May,
    /// `musttls`: refuse to continue without TLS.
    Must,
}

/// What to do with a peer, given whether it offers TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAction {
    /// Start TLS (send STARTTLS, or connect with TLS).
    Upgrade,
    /// Continue in plaintext (`maytls` and the peer offers no TLS).
    Plain,
}

/// Client settings.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ClientSettings {
    /// `maytls` or `musttls`.
    pub requirement: TlsRequirement,
    /// Enabled versions.
    pub versions: VersionRange,
    /// Enabled suites.
    pub cipher_suites: CipherSuites,
    /// A certificate to present when the server asks.
    pub client_certificate: Option<Nickname>,
    /// ALPN IDs to offer.
    pub alpn: Vec<Vec<u8>>,
}

impl ClientSettings {
    /// Defaults: TLS 1.2–1.3, all suites, no client certificate.
    pub fn new(requirement: TlsRequirement) -> Self {
        Self {
            requirement,
            versions: VersionRange::default(),
            cipher_suites: CipherSuites::default(),
            client_certificate: None,
            alpn: Vec::new(),
        }
    }
}

/// A client TLS configuration with its `maytls`/`musttls` policy.
#[derive(Debug, Clone)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
    requirement: TlsRequirement,
}

impl TlsClient {
    /// Builds the configuration: roots from the source's CAs trusted for
    /// server authentication, and the client certificate if named.
    ///
    /// # Errors
    /// [`Error::Config`] when no CA is trusted for server authentication;
    /// any error of the source or the settings.
    pub fn new(source: &dyn CertificateSource, settings: &ClientSettings) -> Result<Self, Error> {
        let provider = provider(&settings.cipher_suites, &settings.versions)?;
        let mut roots = RootCertStore::empty();
        for ca in source.server_auth_roots()? {
            roots
                .add(ca)
                .map_err(|e| Error::material("CA certificate", "server-auth roots", e))?;
        }
        if roots.is_empty() {
            return Err(Error::Config(
                "no CA is trusted for server authentication (flag C)".into(),
            ));
        }
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&settings.versions.rustls())?;
        let builder = builder.with_root_certificates(roots);
        let mut config = match &settings.client_certificate {
            Some(n) => {
                let key = source.credential(n)?.certified_key(&n.to_string())?;
                builder.with_client_cert_resolver(Arc::new(ClientCert(key)))
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = settings.alpn.clone();
        Ok(Self {
            config: Arc::new(config),
            requirement: settings.requirement,
        })
    }

    /// The rustls configuration.
    pub fn config(&self) -> Arc<ClientConfig> {
        Arc::clone(&self.config)
    }

    /// The policy.
    pub fn requirement(&self) -> TlsRequirement {
        self.requirement
    }

    /// Decides, once the peer's capabilities are known (EHLO lists
    /// STARTTLS, or a TLS port), whether to upgrade.
    ///
    /// # Errors
    /// [`Error::Config`] ("TLS required") under `musttls` when the peer
    /// offers no TLS.
    pub fn decide(&self, peer_offers_tls: bool) -> Result<ClientAction, Error> {
        match (peer_offers_tls, self.requirement) {
            (true, _) => Ok(ClientAction::Upgrade),
            (false, TlsRequirement::May) => Ok(ClientAction::Plain),
            (false, TlsRequirement::Must) => Err(Error::Config(
                "TLS required (musttls) but the peer does not offer it".into(),
            )),
        }
    }

    /// Runs the handshake, verifying the chain and that it names `host`.
    ///
    /// # Errors
    /// `InvalidInput` for a bad host name; the handshake's I/O or TLS error.
    pub async fn connect<IO>(&self, host: &str, io: IO) -> std::io::Result<TlsStream<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        tokio_rustls::TlsConnector::from(Arc::clone(&self.config))
            .connect(name, io)
            .await
    }
}

/// Always offers the one configured certificate when its key fits.
struct ClientCert(Arc<CertifiedKey>);

impl fmt::Debug for ClientCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientCert")
    }
}

impl ResolvesClientCert for ClientCert {
    fn resolve(&self, _hints: &[&[u8]], schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        self.0
            .key
            .choose_scheme(schemes)
            .map(|_| Arc::clone(&self.0))
    }
    fn has_certs(&self) -> bool {
        true
    }
}
