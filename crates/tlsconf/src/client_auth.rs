//! Client certificates: when to ask, how to verify, what the caller gets.
//!
//! Chapter 23.5.3: "as long as there is at least one trusted CA in the
//! server's database, the server requests a client certificate from each
//! connecting client", and password login keeps working. So by default
//! ([`ClientAuthMode::Auto`]) a certificate is requested, not required,
//! whenever the source lists a CA trusted for client authentication.
//!
//! Outcomes, for a server that requests a certificate:
//!
//! | client sends            | result                                                   |
//! |-------------------------|----------------------------------------------------------|
//! | nothing                 | handshake succeeds, no `VerifiedCertificate` (password login) — refused with `certificate_required` when required |
//! | a valid chain           | handshake succeeds, `VerifiedCertificate` holds the chain |
//! | a chain from another CA | handshake refused (`unknown_ca`)                         |
//! | an expired certificate  | handshake refused (`certificate_expired`)                |
//! | a revoked certificate   | handshake refused (`certificate_revoked`)                |
//! | any, CRL past nextUpdate| handshake refused (`bad_certificate`): expired CRLs are not trusted |

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};

use crate::Error;
use crate::source::{CertificateSource, read};

/// When to ask for a client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ClientAuthMode {
    /// Never ask.
    Off,
    /// Ask (without requiring) when at least one CA is trusted for client
    /// authentication; otherwise do not ask.
    #[default]
    Auto,
    /// Ask (without requiring) on every connection; building fails when no
    /// CA is trusted for client authentication, as nothing could be
    /// verified then.
    Requested,
    /// Require a valid client certificate; building fails when no CA is
    /// trusted for client authentication.
    Required,
}

/// Client certificate settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientAuth {
    /// When to ask.
    pub mode: ClientAuthMode,
    /// CRL files (PEM or DER) or directories of them (every regular file
    /// is read). A CRL past its nextUpdate makes verification fail.
    pub crls: Vec<PathBuf>,
    /// Accept certificates whose issuer has no CRL here. Off by default:
    /// once CRLs are configured, every CA must have one.
    pub allow_unknown_revocation_status: bool,
}

/// Reads the CRLs from files and directories.
///
/// # Errors
/// [`Error::Io`] and [`Error::BadMaterial`].
pub fn load_crls(paths: &[PathBuf]) -> Result<Vec<CertificateRevocationListDer<'static>>, Error> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| Error::io(p, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.is_file())
                .collect();
            files.sort();
            for f in files {
                out.extend(crls_from_file(&f)?);
            }
        } else {
            out.extend(crls_from_file(p)?);
        }
    }
    Ok(out)
}

fn crls_from_file(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, Error> {
    let data = read(path)?;
    if data.starts_with(b"-----") || data.iter().take(64).all(u8::is_ascii) {
        let crls = CertificateRevocationListDer::pem_slice_iter(&data)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::material("CRL", path.display().to_string(), e))?;
        if crls.is_empty() {
            return Err(Error::material(
                "CRL",
                path.display().to_string(),
                "no X509 CRL block",
            ));
        }
        Ok(crls)
    } else {
        Ok(vec![CertificateRevocationListDer::from(data)])
    }
}

/// Files whose change matters for client authentication (CRL files and the
/// files in CRL directories, plus the directories themselves).
pub(crate) fn watched_crl_paths(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        out.push(p.clone());
        if let Ok(rd) = std::fs::read_dir(p) {
            out.extend(rd.filter_map(|e| e.ok().map(|e| e.path())));
        }
    }
    out
}

/// A digest of everything that decides which client certificates are
/// accepted, to tell whether a reload changed it.
pub(crate) type TrustDigest = Option<Vec<u8>>;

fn trust_digest(
    settings: &ClientAuth,
    cas: &[CertificateDer<'_>],
    crls: &[CertificateRevocationListDer<'_>],
) -> Vec<u8> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(
        format!(
            "{:?}/{}",
            settings.mode, settings.allow_unknown_revocation_status
        )
        .as_bytes(),
    );
    for item in cas
        .iter()
        .map(|c| c.as_ref())
        .chain(crls.iter().map(|c| c.as_ref()))
    {
        ctx.update(&(item.len() as u64).to_be_bytes());
        ctx.update(item);
    }
    ctx.finish().as_ref().to_vec()
}

/// Builds the verifier, or `None` when no certificate is to be asked for,
/// with the digest of the trust settings it embodies.
pub(crate) fn verifier(
    settings: &ClientAuth,
    source: &dyn CertificateSource,
    provider: &Arc<rustls::crypto::CryptoProvider>,
) -> Result<(Option<Arc<dyn ClientCertVerifier>>, TrustDigest), Error> {
    if settings.mode == ClientAuthMode::Off {
        return Ok((None, None));
    }
    let cas = source.client_auth_roots()?;
    if cas.is_empty() {
        match settings.mode {
            ClientAuthMode::Required => return Err(Error::Config(
                "client certificates are required but no CA is trusted for client authentication (flag T)".into(),
            )),
            ClientAuthMode::Requested => return Err(Error::Config(
                "client certificates are requested but no CA is trusted for client authentication (flag T)".into(),
            )),
            _ => {}
        }
        return Ok((None, None));
    }
    let crls = load_crls(&settings.crls)?;
    let digest = trust_digest(settings, &cas, &crls);
    let mut roots = RootCertStore::empty();
    for ca in cas {
        roots
            .add(ca)
            .map_err(|e| Error::material("CA certificate", "client-auth roots", e))?;
    }
    let mut b = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider));
    if !crls.is_empty() {
        b = b.with_crls(crls).enforce_revocation_expiration();
        if settings.allow_unknown_revocation_status {
            b = b.allow_unknown_revocation_status();
        }
    }
    if matches!(
        settings.mode,
        ClientAuthMode::Auto | ClientAuthMode::Requested
    ) {
        b = b.allow_unauthenticated();
    }
    Ok((Some(b.build()?), Some(digest)))
}
