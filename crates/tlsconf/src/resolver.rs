//! Choosing the server certificate for a ClientHello.
//!
//! A [`KeySet`] holds at most one certificate per key type (RSA, ECDSA,
//! Ed25519). The [`ServerCertResolver`] picks a set by SNI name, then the
//! first certificate of the set whose key can sign with one of the schemes
//! the client offers. rustls has already narrowed those schemes to what the
//! common cipher suites allow, so a TLS 1.2 client offering only
//! `ECDHE-RSA-*` suites gets the RSA certificate.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::server::{ClientHello, ParsedCertificate, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::ServerName;

use crate::source::CertificateSource;
use crate::{Error, Nickname};

/// Certificates served together, at most one per key type, in preference order.
#[derive(Debug, Clone)]
pub struct KeySet {
    keys: Vec<(Nickname, Arc<CertifiedKey>)>,
}

impl KeySet {
    /// Loads the nicknames from `source`.
    ///
    /// # Errors
    /// [`Error::DuplicateKeyType`] when two nicknames hold the same key
    /// type; [`Error::Config`] for an empty list; any error of the source.
    pub fn load(source: &dyn CertificateSource, nicknames: &[Nickname]) -> Result<Self, Error> {
        if nicknames.is_empty() {
            return Err(Error::Config("a certificate list is empty".into()));
        }
        let mut keys: Vec<(Nickname, Arc<CertifiedKey>)> = Vec::new();
        for n in nicknames {
            let cred = source.credential(n)?;
            let alg = cred.algorithm();
            if let Some((first, _)) = keys.iter().find(|(_, k)| k.key.algorithm() == alg) {
                return Err(Error::DuplicateKeyType {
                    first: first.to_string(),
                    second: n.to_string(),
                    key_type: format!("{alg:?}"),
                });
            }
            keys.push((n.clone(), cred.certified_key(&n.to_string())?));
        }
        Ok(Self { keys })
    }

    /// The certificates, in preference order.
    pub fn keys(&self) -> impl Iterator<Item = (&Nickname, &Arc<CertifiedKey>)> {
        self.keys.iter().map(|(n, k)| (n, k))
    }

    fn choose(&self, hello: &ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let schemes = hello.signature_schemes();
        self.keys
            .iter()
            .find(|(_, k)| k.key.choose_scheme(schemes).is_some())
            .map(|(_, k)| Arc::clone(k))
    }

    fn valid_for(&self, name: &ServerName<'_>) -> bool {
        self.keys.iter().any(|(_, k)| {
            k.end_entity_cert()
                .ok()
                .and_then(|c| ParsedCertificate::try_from(c).ok())
                .is_some_and(|p| rustls::client::verify_server_name(&p, name).is_ok())
        })
    }
}

/// Chooses a certificate by SNI name and signature scheme.
#[derive(Debug)]
pub struct ServerCertResolver {
    default: Option<KeySet>,
    by_name: HashMap<String, KeySet>,
    strict: bool,
}

impl ServerCertResolver {
    /// A resolver serving `default` to every client, plus `by_name`
    /// (lower-case host names; `*.example.com` matches one label). In
    /// `strict` mode a client naming a host that neither the map nor the
    /// default certificate covers is refused.
    pub fn new(default: Option<KeySet>, by_name: HashMap<String, KeySet>, strict: bool) -> Self {
        let by_name = by_name
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        Self {
            default,
            by_name,
            strict,
        }
    }

    fn set_for(&self, sni: Option<&str>) -> Option<&KeySet> {
        let Some(name) = sni else {
            return self.default.as_ref();
        };
        let name = name.to_ascii_lowercase();
        if let Some(set) = self.by_name.get(&name) {
            return Some(set);
        }
        if let Some((_, parent)) = name.split_once('.')
            && let Some(set) = self.by_name.get(&format!("*.{parent}"))
        {
            return Some(set);
        }
        let default = self.default.as_ref()?;
        if self.strict {
            let server_name = ServerName::try_from(name.as_str()).ok()?;
            if !default.valid_for(&server_name) {
                tracing::debug!(sni = %name, "strict SNI: unknown server name refused");
                return None;
            }
        }
        Some(default)
    }
}

impl ResolvesServerCert for ServerCertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let chosen = self.set_for(hello.server_name())?.choose(&hello);
        if chosen.is_none() {
            tracing::debug!(schemes = ?hello.signature_schemes(), "no certificate matches the client's signature schemes");
        }
        chosen
    }
}
