//! Where certificates, keys and trust anchors come from.
//!
//! [`CertificateSource`] is the seam between this crate and the certificate
//! database: it resolves a [`Nickname`] to a chain and a signing key, and
//! lists the CAs trusted for client authentication (NSS flag `T`) and for
//! server authentication (flag `C`). [`MemorySource`] holds material given
//! in memory; [`PemFileSource`] reads PEM files on every build, so a reload
//! picks up replaced files.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::SignatureAlgorithm;
use rustls::sign::{CertifiedKey, SigningKey};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::{Error, Nickname};

/// A certificate chain (leaf first) with the key that signs for the leaf.
#[derive(Clone)]
pub struct Credential {
    /// Leaf first, then intermediates; the root may be left out.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key: in memory, or a handle on a token.
    pub key: Arc<dyn SigningKey>,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("chain_len", &self.chain.len())
            .field("algorithm", &self.key.algorithm())
            .finish()
    }
}

impl Credential {
    /// A credential from DER chain and an in-memory private key (PKCS#8,
    /// PKCS#1 or SEC1), signed with ring.
    ///
    /// # Errors
    /// [`Error::BadMaterial`] when the key type is unsupported.
    pub fn from_der(
        chain: Vec<CertificateDer<'static>>,
        key: &PrivateKeyDer<'_>,
    ) -> Result<Self, Error> {
        let key = rustls::crypto::ring::sign::any_supported_type(key)
            .map_err(|e| Error::material("private key", "memory", e))?;
        Ok(Self { chain, key })
    }

    /// A credential from PEM text: certificates (leaf first) and a private key.
    ///
    /// # Errors
    /// [`Error::BadMaterial`] when either cannot be parsed.
    pub fn from_pem(origin: &str, chain_pem: &[u8], key_pem: &[u8]) -> Result<Self, Error> {
        let chain = certificates_from_pem(origin, chain_pem)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| Error::material("private key", origin, e))?;
        Self::from_der(chain, &key)
    }

    /// The key type, as rustls names it.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.key.algorithm()
    }

    pub(crate) fn certified_key(&self, origin: &str) -> Result<Arc<CertifiedKey>, Error> {
        if self.chain.is_empty() {
            return Err(Error::material("certificate", origin, "empty chain"));
        }
        let ck = CertifiedKey::new(self.chain.clone(), Arc::clone(&self.key));
        // Only keys that can tell their public half are checked; token keys
        // that cannot are trusted to match.
        match ck.keys_match() {
            Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
                Ok(Arc::new(ck))
            }
            Err(e) => Err(Error::material(
                "certificate",
                origin,
                format!("key does not match certificate: {e}"),
            )),
        }
    }
}

/// Parses every `CERTIFICATE` block of a PEM text.
///
/// # Errors
/// [`Error::BadMaterial`] when the text is malformed or holds none.
pub fn certificates_from_pem(
    origin: &str,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::material("certificate", origin, e))?;
    if certs.is_empty() {
        return Err(Error::material(
            "certificate",
            origin,
            "no CERTIFICATE block",
        ));
    }
    Ok(certs)
}

/// Certificates, keys and trust anchors for TLS, by nickname.
///
/// Implemented by [`MemorySource`], [`PemFileSource`] and the certificate
/// database. Every method is called again on each (re)build, so an
/// implementation that re-reads its store gives reload for free.
pub trait CertificateSource: fmt::Debug + Send + Sync {
    /// The chain and signing key under `nickname` (`[module:]alias`).
    ///
    /// # Errors
    /// [`Error::UnknownNickname`] when there is none; others when the
    /// material cannot be read.
    fn credential(&self, nickname: &Nickname) -> Result<Credential, Error>;

    /// CA certificates trusted to issue client certificates (NSS flag `T`).
    /// When this is not empty, servers request a client certificate.
    ///
    /// # Errors
    /// When the store cannot be read.
    fn client_auth_roots(&self) -> Result<Vec<CertificateDer<'static>>, Error>;

    /// CA certificates trusted to issue server certificates (NSS flag `C`),
    /// the roots of outgoing connections.
    ///
    /// # Errors
    /// When the store cannot be read.
    fn server_auth_roots(&self) -> Result<Vec<CertificateDer<'static>>, Error>;

    /// Files whose change should trigger a reload when watched.
    fn watched_paths(&self) -> Vec<PathBuf> {
        Vec::new()
    }

    /// State outside files whose change should trigger a reload when
    /// watched (for the certificate database: the certificates on its
    /// PKCS#11 tokens), as bytes compared between polls.
    fn watched_state(&self) -> Vec<u8> {
        Vec::new()
    }

    /// A consistent view for one build: every lookup of a build goes to it,
    /// so a configuration never mixes two versions of a store that changes
    /// underneath (the certificate database opens one generation). `None`
    /// (the default) builds from `self`.
    ///
    /// # Errors
    /// When the store cannot be opened.
    fn snapshot(&self) -> Result<Option<Box<dyn CertificateSource + '_>>, Error> {
        Ok(None)
    }

    /// Asked of a [`CertificateSource::snapshot`] after a build from it:
    /// whether the store still is what the view showed. When not, the
    /// build is made again from a fresh view.
    ///
    /// # Errors
    /// When the store cannot be read.
    fn is_current(&self) -> Result<bool, Error> {
        Ok(true)
    }
}

/// Material held in memory.
#[derive(Debug, Default, Clone)]
pub struct MemorySource {
    credentials: HashMap<Nickname, Credential>,
    client_roots: Vec<CertificateDer<'static>>,
    server_roots: Vec<CertificateDer<'static>>,
}

impl MemorySource {
    /// An empty source.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the credential under `nickname`.
    pub fn with_credential(mut self, nickname: Nickname, credential: Credential) -> Self {
        self.credentials.insert(nickname, credential);
        self
    }

    /// Adds a CA trusted for client authentication (flag `T`).
    pub fn with_client_auth_root(mut self, ca: CertificateDer<'static>) -> Self {
        self.client_roots.push(ca);
        self
    }

    /// Adds a CA trusted for server authentication (flag `C`).
    pub fn with_server_auth_root(mut self, ca: CertificateDer<'static>) -> Self {
        self.server_roots.push(ca);
        self
    }
}

impl CertificateSource for MemorySource {
    fn credential(&self, nickname: &Nickname) -> Result<Credential, Error> {
        self.credentials
            .get(nickname)
            .cloned()
            .ok_or_else(|| Error::UnknownNickname(nickname.to_string()))
    }
    fn client_auth_roots(&self) -> Result<Vec<CertificateDer<'static>>, Error> {
        Ok(self.client_roots.clone())
    }
    fn server_auth_roots(&self) -> Result<Vec<CertificateDer<'static>>, Error> {
        Ok(self.server_roots.clone())
    }
}

/// Material in PEM files, read again on every build.
#[derive(Debug, Default, Clone)]
pub struct PemFileSource {
    credentials: HashMap<Nickname, (PathBuf, PathBuf)>,
    tokens: HashMap<Nickname, (PathBuf, Arc<dyn SigningKey>)>,
    client_roots: Vec<PathBuf>,
    server_roots: Vec<PathBuf>,
}

impl PemFileSource {
    /// An empty source.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `chain` (PEM, leaf first) with the private key in `key` (PEM)
    /// under `nickname`.
    pub fn with_credential(
        mut self,
        nickname: Nickname,
        chain: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Self {
        self.credentials
            .insert(nickname, (chain.into(), key.into()));
        self
    }

    /// Serves `chain` (PEM) with a key that stays elsewhere, such as a
    /// key from [`crate::pkcs11::token_key`].
    pub fn with_external_key(
        mut self,
        nickname: Nickname,
        chain: impl Into<PathBuf>,
        key: Arc<dyn SigningKey>,
    ) -> Self {
        self.tokens.insert(nickname, (chain.into(), key));
        self
    }

    /// Adds a PEM file of CAs trusted for client authentication.
    pub fn with_client_auth_roots(mut self, file: impl Into<PathBuf>) -> Self {
        self.client_roots.push(file.into());
        self
    }

    /// Adds a PEM file of CAs trusted for server authentication.
    pub fn with_server_auth_roots(mut self, file: impl Into<PathBuf>) -> Self {
        self.server_roots.push(file.into());
        self
    }
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

fn read_roots(files: &[PathBuf]) -> Result<Vec<CertificateDer<'static>>, Error> {
    let mut out = Vec::new();
    for f in files {
        out.extend(certificates_from_pem(&f.display().to_string(), &read(f)?)?);
    }
    Ok(out)
}

impl CertificateSource for PemFileSource {
    fn credential(&self, nickname: &Nickname) -> Result<Credential, Error> {
        if let Some((chain, key)) = self.credentials.get(nickname) {
            return Credential::from_pem(&chain.display().to_string(), &read(chain)?, &read(key)?);
        }
        if let Some((chain, key)) = self.tokens.get(nickname) {
            let chain = certificates_from_pem(&chain.display().to_string(), &read(chain)?)?;
            return Ok(Credential {
                chain,
                key: Arc::clone(key),
            });
        }
        Err(Error::UnknownNickname(nickname.to_string()))
    }
    fn client_auth_roots(&self) -> Result<Vec<CertificateDer<'static>>, Error> {
        read_roots(&self.client_roots)
    }
    fn server_auth_roots(&self) -> Result<Vec<CertificateDer<'static>>, Error> {
        read_roots(&self.server_roots)
    }
    fn watched_paths(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = self
            .credentials
            .values()
            .flat_map(|(c, k)| [c.clone(), k.clone()])
            .collect();
        v.extend(self.tokens.values().map(|(c, _)| c.clone()));
        v.extend(self.client_roots.iter().cloned());
        v.extend(self.server_roots.iter().cloned());
        v
    }
}
