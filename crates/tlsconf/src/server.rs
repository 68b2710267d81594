//! Building the rustls server configuration from typed settings.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;

use crate::client_auth::{self, ClientAuth, TrustDigest};
use crate::resolver::{KeySet, ServerCertResolver};
use crate::source::CertificateSource;
use crate::suites::{CipherSuites, TlsVersion, VersionRange, suite_version};
use crate::tickets::{Resumption, ResumptionState};
use crate::{Error, Nickname, Service};

/// ALPN settings (RFC 7301).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Alpn {
    /// The protocol IDs this server speaks, most preferred first. Empty:
    /// no ALPN.
    pub protocols: Vec<Vec<u8>>,
    /// Refuse a client that offers ALPN but none of `protocols`, with the
    /// `no_application_protocol` alert (the ALPACA countermeasure). When
    /// off, such a client continues without ALPN. Clients that offer no
    /// ALPN at all are accepted either way.
    pub strict: bool,
}

impl Alpn {
    /// The registered IDs of `service`, strict.
    pub fn for_service(service: Service) -> Self {
        Self {
            protocols: service.alpn_ids(),
            strict: true,
        }
    }
}

/// One SNI map entry: host names served with their own certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SniEntry {
    /// Host names (`mail.example.com`, `*.example.com`).
    pub names: Vec<String>,
    /// The certificates for them, at most one per key type.
    pub nicknames: Vec<Nickname>,
}

impl SniEntry {
    /// An entry.
    pub fn new(names: Vec<String>, nicknames: Vec<Nickname>) -> Self {
        Self { names, nicknames }
    }
}

/// Everything a server's TLS needs, as typed values (the configuration
/// crate maps the parameters onto these).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ServerSettings {
    /// The default certificates (see [`Service::nicknames`]); may be empty
    /// when `sni` covers every name and `sni_strict` is set.
    pub nicknames: Vec<Nickname>,
    /// Certificates chosen by server name.
    pub sni: Vec<SniEntry>,
    /// Refuse clients naming a host that neither `sni` nor the default
    /// certificate covers.
    pub sni_strict: bool,
    /// Enabled versions.
    pub versions: VersionRange,
    /// Enabled suites, most preferred first.
    pub cipher_suites: CipherSuites,
    /// Choose the suite by this server's order instead of the client's.
    pub prefer_server_order: bool,
    /// Client certificates.
    pub client_auth: ClientAuth,
    /// Application protocol negotiation.
    pub alpn: Alpn,
    /// Session resumption.
    pub resumption: Resumption,
    /// How long [`crate::TlsServer::accept`] waits for a handshake to
    /// finish before giving up with [`std::io::ErrorKind::TimedOut`].
    pub handshake_timeout: Duration,
}

/// The handshake timeout of [`ServerSettings::new`].
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

impl ServerSettings {
    /// Settings serving `nicknames` with the defaults: TLS 1.2–1.3, all
    /// suites, client certificates asked for when a CA is trusted for it,
    /// no ALPN, tickets on, a 30 s handshake timeout.
    pub fn new(nicknames: Vec<Nickname>) -> Self {
        Self {
            nicknames,
            sni: Vec::new(),
            sni_strict: false,
            versions: VersionRange::default(),
            cipher_suites: CipherSuites::default(),
            prefer_server_order: true,
            client_auth: ClientAuth::default(),
            alpn: Alpn::default(),
            resumption: Resumption::default(),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }

    /// Settings for `service`: its nicknames and its strict ALPN IDs.
    pub fn for_service(service: Service, nicknames: Vec<Nickname>) -> Self {
        Self {
            alpn: Alpn::for_service(service),
            ..Self::new(nicknames)
        }
    }
}

/// The ring provider restricted to the chosen suites.
pub(crate) fn provider(
    suites: &CipherSuites,
    versions: &VersionRange,
) -> Result<Arc<CryptoProvider>, Error> {
    let mut p = rustls::crypto::ring::default_provider();
    p.cipher_suites = suites.for_versions(versions)?;
    Ok(Arc::new(p))
}

/// A built server configuration: the strict one, and the lenient ALPN
/// fallback when ALPN is not strict.
#[derive(Debug, Clone)]
pub(crate) struct Built {
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) without_alpn: Option<Arc<ServerConfig>>,
    pub(crate) trust: TrustDigest,
    pub(crate) handshake_timeout: Duration,
}

impl Built {
    /// The same configuration with other ticket keys and session cache.
    pub(crate) fn with_resumption(&self, resumption: &ResumptionState) -> Self {
        let swap = |c: &Arc<ServerConfig>| {
            let mut c = ServerConfig::clone(c);
            resumption.apply(&mut c);
            Arc::new(c)
        };
        Self {
            config: swap(&self.config),
            without_alpn: self.without_alpn.as_ref().map(swap),
            trust: self.trust.clone(),
            handshake_timeout: self.handshake_timeout,
        }
    }
}

/// Builds a server configuration.
///
/// # Errors
/// Any certificate, key, CA, CRL or settings error; nothing is half-built.
pub fn build_server_config(
    settings: &ServerSettings,
    source: &dyn CertificateSource,
) -> Result<Arc<ServerConfig>, Error> {
    let state = ResumptionState::new(&settings.resumption)?;
    Ok(build(settings, source, &state)?.config)
}

/// How often a build is made again when the source changed under it.
const BUILD_ATTEMPTS: usize = 5;

pub(crate) fn build(
    settings: &ServerSettings,
    source: &dyn CertificateSource,
    resumption: &ResumptionState,
) -> Result<Built, Error> {
    for attempt in 1..=BUILD_ATTEMPTS {
        let snapshot = source.snapshot()?;
        let view = snapshot.as_deref().unwrap_or(source);
        // A build that read a store changing underneath may also have
        // failed because of it (a file removed between two reads): either
        // way it is made again from a fresh view.
        let built = build_from(settings, view, resumption);
        if view.is_current()? {
            return built;
        }
        tracing::debug!(
            attempt,
            "the certificate source changed during the build; building again"
        );
    }
    Err(Error::Source(format!(
        "the certificate source changed during each of {BUILD_ATTEMPTS} builds"
    )))
}

fn build_from(
    settings: &ServerSettings,
    source: &dyn CertificateSource,
    resumption: &ResumptionState,
) -> Result<Built, Error> {
    let provider = provider(&settings.cipher_suites, &settings.versions)?;
    let default = if settings.nicknames.is_empty() {
        if settings.sni.is_empty() {
            return Err(Error::Config(
                "no server certificate nickname configured".into(),
            ));
        }
        None
    } else {
        Some(KeySet::load(source, &settings.nicknames)?)
    };
    let mut by_name = HashMap::new();
    for entry in &settings.sni {
        let set = KeySet::load(source, &entry.nicknames)?;
        for name in &entry.names {
            if by_name
                .insert(name.to_ascii_lowercase(), set.clone())
                .is_some()
            {
                return Err(Error::Config(format!(
                    "server name {name:?} appears twice in the SNI map"
                )));
            }
        }
    }
    check_key_types(
        &provider,
        &settings.versions,
        default.iter().chain(by_name.values()),
    )?;
    let resolver = Arc::new(ServerCertResolver::new(
        default,
        by_name,
        settings.sni_strict,
    ));

    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&settings.versions.rustls())?;
    let (verifier, trust) = client_auth::verifier(&settings.client_auth, source, &provider)?;
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(resolver);
    config.ignore_client_order = settings.prefer_server_order;
    // TLS 1.2 without the extended master secret (RFC 7627) is refused:
    // without it a man in the middle can make two sessions share keys (the
    // triple handshake), which breaks tls-exporter and tls-unique channel
    // bindings (RFC 9266 §3).
    config.require_ems = true;
    config.alpn_protocols = settings.alpn.protocols.clone();
    if settings.alpn.strict && config.alpn_protocols.is_empty() {
        // A service with no registered ALPN ID (SMTP) in strict mode: a
        // client that offers any protocol was meant for another service.
        // With a server list no client offers, rustls refuses it with
        // `no_application_protocol` and still accepts clients that offer
        // no ALPN.
        config.alpn_protocols = vec![NO_PROTOCOL.to_vec()];
    }
    resumption.apply(&mut config);

    let without_alpn = if !settings.alpn.strict && !config.alpn_protocols.is_empty() {
        let mut lenient = config.clone();
        lenient.alpn_protocols.clear();
        Some(Arc::new(lenient))
    } else {
        None
    };
    Ok(Built {
        config: Arc::new(config),
        without_alpn,
        trust,
        handshake_timeout: settings.handshake_timeout,
    })
}

/// The ALPN ID a strict server without protocols lists: not registered,
/// and never offered by a client for a real protocol.
const NO_PROTOCOL: &[u8] = b"x-portcullis-no-alpn";

/// Refuses a TLS 1.2-only configuration in which a certificate set has no
/// certificate that any enabled suite can use; warns about single
/// certificates that can never be served.
fn check_key_types<'a>(
    provider: &CryptoProvider,
    versions: &VersionRange,
    sets: impl Iterator<Item = &'a KeySet>,
) -> Result<(), Error> {
    if versions.contains(TlsVersion::Tls13) {
        return Ok(());
    }
    for set in sets {
        let mut any = false;
        let mut unusable = Vec::new();
        for (nick, key) in set.keys() {
            let alg = key.key.algorithm();
            let usable = provider.cipher_suites.iter().any(|s| {
                suite_version(*s) == TlsVersion::Tls12 && s.usable_for_signature_algorithm(alg)
            });
            if usable {
                any = true;
            } else {
                tracing::warn!(nickname = %nick, ?alg, "no enabled TLS 1.2 suite can use this certificate");
                unusable.push(format!("{nick} ({alg:?})"));
            }
        }
        if !any {
            return Err(Error::Config(format!(
                "no enabled TLS 1.2 suite can use certificate {}: enable a matching ECDHE-RSA-* / ECDHE-ECDSA-* suite or TLS 1.3",
                unusable.join(", ")
            )));
        }
    }
    Ok(())
}
