//! The certificate database as a [`CertificateSource`].
//!
//! Nicknames resolve through `CertDb::load_identity_cached` (`alias` in the
//! directory, `module:alias` on a PKCS#11 token, PINs and the database
//! password from `sslpassword.conf`); client-authentication roots are the
//! CAs with `T` in their SSL trust flags, server-authentication roots those
//! with `C`.
//!
//! Each build opens the database once ([`CertificateSource::snapshot`]) and
//! is made again when a commit landed meanwhile, so a configuration always
//! comes from one database generation. Decrypted internal keys are kept in
//! a [`KeyCache`] shared by every service of the process that uses the same
//! database ([`CertDbSource::shared`]): one scrypt run per key, repeated
//! only when the key file or the password changes. A watch
//! ([`crate::TlsServer::watch`]) sees the index, `sslpassword.conf` and the
//! certificates on the database's tokens.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use portcullis_certdb::{
    CaUsage, CertDb, INDEX_FILE, KeyAlgorithm, KeyCache, KeyLocation, PASSWORD_FILE, PasswordFile,
};
use rustls::sign::{Signer, SigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};
use rustls_pki_types::{CertificateDer, SubjectPublicKeyInfoDer};

pub use portcullis_certdb as certdb;

use crate::blocking::off_async_workers;
use crate::source::{CertificateSource, Credential};
use crate::{Error, Nickname};

/// A certificate database directory.
#[derive(Debug)]
pub struct CertDbSource {
    dir: PathBuf,
    keys: Arc<KeyCache>,
}

type Registry = Mutex<HashMap<PathBuf, Weak<CertDbSource>>>;

fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(|| Mutex::new(HashMap::new()))
}

impl CertDbSource {
    /// The database in `dir` (opened when the configuration is built), with
    /// a key cache of its own.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            keys: Arc::new(KeyCache::new()),
        }
    }

    /// The process's source for the database in `dir`: every caller naming
    /// the same directory (as long as one still holds it) gets the same
    /// source, so services sharing a database share its decrypted keys.
    /// [`crate::TlsServer::from_parameters`] uses it.
    pub fn shared(dir: impl Into<PathBuf>) -> Arc<Self> {
        let dir = dir.into();
        let key = std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone());
        let mut map = registry()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.retain(|_, w| w.strong_count() > 0);
        if let Some(s) = map.get(&key).and_then(Weak::upgrade) {
            return s;
        }
        let s = Arc::new(Self::new(dir));
        map.insert(key, Arc::downgrade(&s));
        s
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many internal keys were decrypted for this source so far (each
    /// costs one scrypt run).
    pub fn key_decryptions(&self) -> u64 {
        self.keys.decryptions()
    }

    fn open(&self) -> Result<CertDb, Error> {
        CertDb::open(&self.dir).map_err(source_error)
    }

    fn view(&self) -> Result<CertDbView<'_>, Error> {
        let db = self.open()?;
        let passwords = db.password_file().map_err(source_error)?;
        db.prune_key_cache(&self.keys);
        Ok(CertDbView {
            source: self,
            db,
            passwords,
        })
    }
}

fn source_error(e: portcullis_certdb::Error) -> Error {
    Error::Source(e.to_string())
}

fn ders(v: Vec<Vec<u8>>) -> Vec<CertificateDer<'static>> {
    v.into_iter().map(CertificateDer::from).collect()
}

/// One opened generation of the database, for one build.
struct CertDbView<'a> {
    source: &'a CertDbSource,
    db: CertDb,
    passwords: PasswordFile,
}

impl fmt::Debug for CertDbView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertDbView")
            .field("dir", &self.source.dir)
            .field("generation", &self.db.generation())
            .finish_non_exhaustive()
    }
}

impl CertificateSource for CertDbView<'_> {
    fn credential(&self, nickname: &Nickname) -> Result<Credential, Error> {
        let identity = self
            .db
            .load_identity_cached(
                &portcullis_certdb::Nickname::from(nickname).to_string(),
                &self.passwords,
                &self.source.keys,
            )
            .map_err(|e| match e {
                portcullis_certdb::Error::UnknownAlias(_) => {
                    Error::UnknownNickname(nickname.to_string())
                }
                other => source_error(other),
            })?;
        Ok(Credential {
            chain: ders(identity.chain),
            key: Arc::new(CertDbKey(identity.signer)),
        })
    }

    fn client_auth_roots(&self) -> Result<Vec<CertificateDer<'static>>, Error> {
        Ok(ders(
            self.db
                .trusted_cas(CaUsage::ClientAuth)
                .map_err(source_error)?,
        ))
    }

    fn server_auth_roots(&self) -> Result<Vec<CertificateDer<'static>>, Error> {
        Ok(ders(
            self.db
                .trusted_cas(CaUsage::ServerAuth)
                .map_err(source_error)?,
        ))
    }

    fn is_current(&self) -> Result<bool, Error> {
        Ok(self.source.open()?.generation() == self.db.generation())
    }
}

impl CertificateSource for CertDbSource {
    fn credential(&self, nickname: &Nickname) -> Result<Credential, Error> {
        self.view()?.credential(nickname)
    }

    fn client_auth_roots(&self) -> Result<Vec<CertificateDer<'static>>, Error> {
        self.view()?.client_auth_roots()
    }

    fn server_auth_roots(&self) -> Result<Vec<CertificateDer<'static>>, Error> {
        self.view()?.server_auth_roots()
    }

    fn watched_paths(&self) -> Vec<PathBuf> {
        vec![self.dir.join(INDEX_FILE), self.dir.join(PASSWORD_FILE)]
    }

    /// The certificates on each module's token (label and DER), or why the
    /// token could not be read: a certificate renewed on a token, or a
    /// token that comes back, triggers a reload.
    fn watched_state(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let Ok(db) = self.open() else {
            return out;
        };
        // certdb reads every module's token (or says why it could not, or
        // that this build has no PKCS#11 support).
        let (certs, problems) = db.token_certificates();
        for c in certs {
            out.extend_from_slice(c.nickname.as_bytes());
            out.push(u8::from(c.has_key));
            out.extend_from_slice(&c.info.der);
            out.push(0);
        }
        for p in problems {
            out.extend_from_slice(p.as_bytes());
            out.push(0);
        }
        out
    }

    fn snapshot(&self) -> Result<Option<Box<dyn CertificateSource + '_>>, Error> {
        Ok(Some(Box::new(self.view()?)))
    }
}

/// A certdb signer (internal key or token key) as a rustls signing key.
pub struct CertDbKey(pub Arc<dyn portcullis_certdb::Signer>);

impl fmt::Debug for CertDbKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CertDbKey").field(&self.0).finish()
    }
}

fn to_rustls(s: portcullis_certdb::SignatureScheme) -> Option<SignatureScheme> {
    use portcullis_certdb::SignatureScheme as C;
    Some(match s {
        C::EcdsaP256Sha256 => SignatureScheme::ECDSA_NISTP256_SHA256,
        C::RsaPkcs1Sha256 => SignatureScheme::RSA_PKCS1_SHA256,
        C::RsaPkcs1Sha384 => SignatureScheme::RSA_PKCS1_SHA384,
        C::RsaPkcs1Sha512 => SignatureScheme::RSA_PKCS1_SHA512,
        C::RsaPssSha256 => SignatureScheme::RSA_PSS_SHA256,
        C::RsaPssSha384 => SignatureScheme::RSA_PSS_SHA384,
        C::RsaPssSha512 => SignatureScheme::RSA_PSS_SHA512,
        _ => return None,
    })
}

impl SigningKey for CertDbKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        self.0.schemes().iter().find_map(|ours| {
            let theirs = to_rustls(*ours)?;
            offered.contains(&theirs).then(|| {
                Box::new(CertDbSigner {
                    signer: Arc::clone(&self.0),
                    ours: *ours,
                    theirs,
                }) as Box<dyn Signer>
            })
        })
    }

    fn public_key(&self) -> Option<SubjectPublicKeyInfoDer<'_>> {
        Some(SubjectPublicKeyInfoDer::from(self.0.public_key_info()))
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        match self.0.algorithm() {
            KeyAlgorithm::EcP256 => SignatureAlgorithm::ECDSA,
            KeyAlgorithm::Rsa { .. } => SignatureAlgorithm::RSA,
            _ => SignatureAlgorithm::Unknown(0),
        }
    }
}

struct CertDbSigner {
    signer: Arc<dyn portcullis_certdb::Signer>,
    ours: portcullis_certdb::SignatureScheme,
    theirs: SignatureScheme,
}

impl fmt::Debug for CertDbSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertDbSigner")
            .field("scheme", &self.theirs)
            .finish()
    }
}

impl Signer for CertDbSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        let sign = || self.signer.sign(self.ours, message);
        let result = match self.signer.location() {
            KeyLocation::Internal => sign(),
            _ => off_async_workers(sign),
        };
        result.map_err(|e| {
            tracing::warn!(error = %e, "certificate database signature failed");
            rustls::Error::General(e.to_string())
        })
    }

    fn scheme(&self) -> SignatureScheme {
        self.theirs
    }
}
