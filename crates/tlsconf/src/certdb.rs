//! The certificate database as a [`CertificateSource`].
//!
//! Nicknames resolve through `CertDb::load_identity` (`alias` in the
//! directory, `module:alias` on a PKCS#11 token, PINs and the database
//! password from `sslpassword.conf`); client-authentication roots are the
//! CAs with `T` in their SSL trust flags, server-authentication roots those
//! with `C`. The database is opened afresh on every build, so
//! [`crate::TlsServer::reload`] (or a watch on [`CertDbSource`]'s index
//! file) picks up `msgcert` changes.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use portcullis_certdb::{CaUsage, CertDb, INDEX_FILE, KeyAlgorithm, KeyLocation, PASSWORD_FILE};
use rustls::sign::{Signer, SigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};
use rustls_pki_types::{CertificateDer, SubjectPublicKeyInfoDer};

pub use portcullis_certdb as certdb;

use crate::blocking::off_async_workers;
use crate::source::{CertificateSource, Credential};
use crate::{Error, Nickname};

/// A certificate database directory.
#[derive(Debug, Clone)]
pub struct CertDbSource {
    dir: PathBuf,
}

impl CertDbSource {
    /// The database in `dir` (opened when the configuration is built).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn open(&self) -> Result<CertDb, Error> {
        CertDb::open(&self.dir).map_err(source_error)
    }
}

fn source_error(e: portcullis_certdb::Error) -> Error {
    Error::Source(e.to_string())
}

fn ders(v: Vec<Vec<u8>>) -> Vec<CertificateDer<'static>> {
    v.into_iter().map(CertificateDer::from).collect()
}

impl CertificateSource for CertDbSource {
    fn credential(&self, nickname: &Nickname) -> Result<Credential, Error> {
        let db = self.open()?;
        let passwords = db.password_file().map_err(source_error)?;
        let identity = db
            .load_identity(&nickname.to_string(), &passwords)
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
            self.open()?
                .trusted_cas(CaUsage::ClientAuth)
                .map_err(source_error)?,
        ))
    }

    fn server_auth_roots(&self) -> Result<Vec<CertificateDer<'static>>, Error> {
        Ok(ders(
            self.open()?
                .trusted_cas(CaUsage::ServerAuth)
                .map_err(source_error)?,
        ))
    }

    fn watched_paths(&self) -> Vec<PathBuf> {
        vec![self.dir.join(INDEX_FILE), self.dir.join(PASSWORD_FILE)]
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
