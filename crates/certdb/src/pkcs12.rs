//! PKCS#12 files: export a certificate with its key and chain, import what
//! OpenSSL (3 default or `-legacy`), NSS `pk12util` or Java write.

use p12_keystore::{KeyStore, KeyStoreEntry, Pkcs12ImportPolicy, PrivateKeyChain};
use sha1::Digest as _;

use crate::cert::CertInfo;
use crate::error::{Error, Result};
use crate::key::PrivateKey;
use crate::password::Password;

/// Largest PKCS#12 input accepted.
pub const MAX_PKCS12_INPUT: usize = 4 * 1024 * 1024;

/// One key with its certificates, from a PKCS#12 file.
#[derive(Debug)]
pub struct Pkcs12Entry {
    /// The key's friendly name, when the file has one.
    pub friendly_name: Option<String>,
    /// The private key.
    pub key: PrivateKey,
    /// DER certificates, leaf first.
    pub chain: Vec<Vec<u8>>,
}

/// Reads a PKCS#12 file: every private key that has its certificate.
///
/// # Errors
/// [`Error::WrongFilePassword`] when the MAC or decryption fails,
/// [`Error::BadPkcs12`] for malformed input or a file with no usable key.
pub fn parse_pkcs12(data: &[u8], password: &Password) -> Result<Vec<Pkcs12Entry>> {
    if data.len() > MAX_PKCS12_INPUT {
        return Err(Error::TooLarge(data.len()));
    }
    let store = KeyStore::from_pkcs12(data, password.expose(), Pkcs12ImportPolicy::Strict)
        .map_err(|e| match e {
            p12_keystore::error::Error::MacError(_) | p12_keystore::error::Error::UnpadError => {
                Error::WrongFilePassword("the PKCS#12 file")
            }
            other => Error::BadPkcs12(other.to_string()),
        })?;
    let mut out = Vec::new();
    for (alias, entry) in store.entries() {
        if let KeyStoreEntry::PrivateKeyChain(chain) = entry {
            let key = PrivateKey::from_pkcs8_der(chain.key().as_der())?;
            let certs: Vec<Vec<u8>> = chain.certs().iter().map(|c| c.as_der().to_vec()).collect();
            let Some(leaf) = certs.first() else { continue };
            let info = CertInfo::parse(leaf)?;
            if info.spki != key.public_key_info() {
                return Err(Error::BadPkcs12(
                    "the private key does not match its certificate".into(),
                ));
            }
            for c in &certs[1..] {
                CertInfo::parse(c)?;
            }
            out.push(Pkcs12Entry {
                friendly_name: Some(alias.clone()).filter(|a| !a.is_empty()),
                key,
                chain: certs,
            });
        }
    }
    if out.is_empty() {
        return Err(Error::BadPkcs12(
            "no private key with its certificate".into(),
        ));
    }
    Ok(out)
}

/// Writes a PKCS#12 file (PBES2 AES-256-CBC, HMAC-SHA-256 MAC) holding the
/// key, the leaf (friendly name `alias`) and the issuers in `chain[1..]`.
///
/// # Errors
/// Encoding failed.
pub fn build_pkcs12(
    alias: &str,
    key: &PrivateKey,
    chain: &[Vec<u8>],
    password: &Password,
) -> Result<Vec<u8>> {
    let leaf = chain
        .first()
        .ok_or_else(|| Error::BadCertificate("empty chain".into()))?;
    let local_key_id = sha1::Sha1::digest(leaf).to_vec();
    let certs = chain
        .iter()
        .map(|c| {
            p12_keystore::Certificate::from_der(c).map_err(|e| Error::BadCertificate(e.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    let pk = p12_keystore::PrivateKey::from_der(key.pkcs8_der())
        .map_err(|e| Error::BadKey(e.to_string()))?;
    let mut store = KeyStore::new();
    store.add_entry(
        alias,
        KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(local_key_id, pk, certs)),
    );
    store
        .writer(password.expose())
        .write()
        .map_err(|e| Error::Crypto(format!("PKCS#12 encoding: {e}")))
}
