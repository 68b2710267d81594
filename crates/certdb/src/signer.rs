//! Signing keys, wherever they live: the internal (software) token or a
//! PKCS#11 token.

use std::fmt;
use std::sync::Arc;

use ring::rand::SystemRandom;
use ring::signature::{self as rsig, EcdsaKeyPair, RsaKeyPair};

use crate::error::{Error, Result};
use crate::key::{KeyAlgorithm, PrivateKey, spki_algorithm};

/// A signature algorithm, named as in TLS (RFC 8446 §4.2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureScheme {
    /// `ecdsa_secp256r1_sha256`: ECDSA P-256 with SHA-256; the signature is
    /// the DER `Ecdsa-Sig-Value`.
    EcdsaP256Sha256,
    /// `rsa_pkcs1_sha256`.
    RsaPkcs1Sha256,
    /// `rsa_pkcs1_sha384`.
    RsaPkcs1Sha384,
    /// `rsa_pkcs1_sha512`.
    RsaPkcs1Sha512,
    /// `rsa_pss_rsae_sha256`.
    RsaPssSha256,
    /// `rsa_pss_rsae_sha384`.
    RsaPssSha384,
    /// `rsa_pss_rsae_sha512`.
    RsaPssSha512,
}

const EC_SCHEMES: &[SignatureScheme] = &[SignatureScheme::EcdsaP256Sha256];
const RSA_SCHEMES: &[SignatureScheme] = &[
    SignatureScheme::RsaPssSha256,
    SignatureScheme::RsaPssSha384,
    SignatureScheme::RsaPssSha512,
    SignatureScheme::RsaPkcs1Sha256,
    SignatureScheme::RsaPkcs1Sha384,
    SignatureScheme::RsaPkcs1Sha512,
];

impl SignatureScheme {
    /// The schemes a key of this algorithm can produce, preferred first.
    pub fn for_algorithm(alg: KeyAlgorithm) -> &'static [SignatureScheme] {
        match alg {
            KeyAlgorithm::EcP256 => EC_SCHEMES,
            KeyAlgorithm::Rsa { .. } => RSA_SCHEMES,
        }
    }
}

/// Where a signing key lives.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyLocation {
    /// The database's own encrypted key store.
    Internal,
    /// A PKCS#11 token.
    Token {
        /// The module name (as in `module:alias`).
        module: String,
        /// The key's `CKA_LABEL`.
        label: String,
    },
}

/// A private key that can sign: an internal key or a key that never leaves
/// a PKCS#11 token. Used for self-signed certificates, PKCS#10 requests and
/// TLS handshakes.
///
/// Token signing blocks on the device: async callers should sign on a
/// blocking thread (for tokio, `spawn_blocking`), never on a worker.
pub trait Signer: fmt::Debug + Send + Sync {
    /// The key's algorithm.
    fn algorithm(&self) -> KeyAlgorithm;

    /// The public key, DER SubjectPublicKeyInfo.
    fn public_key_info(&self) -> &[u8];

    /// Where the key lives.
    fn location(&self) -> KeyLocation;

    /// The schemes this key supports, preferred first.
    fn schemes(&self) -> &'static [SignatureScheme] {
        SignatureScheme::for_algorithm(self.algorithm())
    }

    /// Signs `message` (the whole message, not a digest).
    ///
    /// # Errors
    /// The scheme does not fit the key, or the key store failed.
    fn sign(&self, scheme: SignatureScheme, message: &[u8]) -> Result<Vec<u8>>;
}

enum SoftKey {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// A [`Signer`] over an internal (software) key, using ring.
pub struct SoftwareSigner {
    key: SoftKey,
    algorithm: KeyAlgorithm,
    spki: Vec<u8>,
    rng: SystemRandom,
}

impl fmt::Debug for SoftwareSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftwareSigner")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl SoftwareSigner {
    /// Wraps a plaintext key.
    ///
    /// # Errors
    /// ring refuses the key.
    pub fn new(key: &PrivateKey) -> Result<Self> {
        let rng = SystemRandom::new();
        let soft = match key.algorithm() {
            KeyAlgorithm::EcP256 => SoftKey::Ec(
                EcdsaKeyPair::from_pkcs8(
                    &rsig::ECDSA_P256_SHA256_ASN1_SIGNING,
                    key.pkcs8_der(),
                    &rng,
                )
                .map_err(|e| Error::BadKey(e.to_string()))?,
            ),
            KeyAlgorithm::Rsa { .. } => SoftKey::Rsa(
                RsaKeyPair::from_pkcs8(key.pkcs8_der())
                    .map_err(|e| Error::BadKey(e.to_string()))?,
            ),
        };
        Ok(SoftwareSigner {
            key: soft,
            algorithm: key.algorithm(),
            spki: key.public_key_info().to_vec(),
            rng,
        })
    }
}

impl Signer for SoftwareSigner {
    fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    fn public_key_info(&self) -> &[u8] {
        &self.spki
    }

    fn location(&self) -> KeyLocation {
        KeyLocation::Internal
    }

    fn sign(&self, scheme: SignatureScheme, message: &[u8]) -> Result<Vec<u8>> {
        match (&self.key, scheme) {
            (SoftKey::Ec(k), SignatureScheme::EcdsaP256Sha256) => k
                .sign(&self.rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| Error::Crypto("ECDSA signing".into())),
            (SoftKey::Rsa(k), s) => {
                let pad: &'static dyn rsig::RsaEncoding = match s {
                    SignatureScheme::RsaPkcs1Sha256 => &rsig::RSA_PKCS1_SHA256,
                    SignatureScheme::RsaPkcs1Sha384 => &rsig::RSA_PKCS1_SHA384,
                    SignatureScheme::RsaPkcs1Sha512 => &rsig::RSA_PKCS1_SHA512,
                    SignatureScheme::RsaPssSha256 => &rsig::RSA_PSS_SHA256,
                    SignatureScheme::RsaPssSha384 => &rsig::RSA_PSS_SHA384,
                    SignatureScheme::RsaPssSha512 => &rsig::RSA_PSS_SHA512,
                    SignatureScheme::EcdsaP256Sha256 => {
                        return Err(Error::Unsupported("ECDSA with an RSA key".into()));
                    }
                };
                let mut sig = vec![0u8; k.public().modulus_len()];
                k.sign(pad, &self.rng, message, &mut sig)
                    .map_err(|_| Error::Crypto("RSA signing".into()))?;
                Ok(sig)
            }
            (SoftKey::Ec(_), s) => Err(Error::Unsupported(format!("{s:?} with an EC key"))),
        }
    }
}

/// Adapts a [`Signer`] to rcgen, which builds certificates and requests.
pub(crate) struct RcgenSigner<'a> {
    signer: &'a dyn Signer,
    raw_public: Vec<u8>,
}

impl<'a> RcgenSigner<'a> {
    pub(crate) fn new(signer: &'a dyn Signer) -> Result<Self> {
        let (_, raw_public) = spki_algorithm(signer.public_key_info())?;
        Ok(RcgenSigner { signer, raw_public })
    }
}

impl rcgen::PublicKeyData for RcgenSigner<'_> {
    fn der_bytes(&self) -> &[u8] {
        &self.raw_public
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        match self.signer.algorithm() {
            KeyAlgorithm::EcP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyAlgorithm::Rsa { .. } => &rcgen::PKCS_RSA_SHA256,
        }
    }
}

impl rcgen::SigningKey for RcgenSigner<'_> {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let scheme = match self.signer.algorithm() {
            KeyAlgorithm::EcP256 => SignatureScheme::EcdsaP256Sha256,
            KeyAlgorithm::Rsa { .. } => SignatureScheme::RsaPkcs1Sha256,
        };
        self.signer.sign(scheme, msg).map_err(|e| {
            tracing::warn!(error = %e, "signing failed");
            rcgen::Error::RemoteKeyError
        })
    }
}

/// A certificate chain and the signer for its leaf's key: what a TLS server
/// needs for one nickname.
#[derive(Clone, Debug)]
pub struct Identity {
    /// DER certificates, leaf first, then issuers found in the database
    /// (the root included when present).
    pub chain: Vec<Vec<u8>>,
    /// The leaf's private key.
    pub signer: Arc<dyn Signer>,
}

/// Checks a signature made by `signer` with ring's verifiers (used by the
/// tests and as a self-check after token key generation).
///
/// # Errors
/// The signature does not verify.
pub fn verify(
    spki: &[u8],
    scheme: SignatureScheme,
    message: &[u8],
    signature: &[u8],
) -> Result<()> {
    let (_, raw) = spki_algorithm(spki)?;
    let alg: &dyn rsig::VerificationAlgorithm = match scheme {
        SignatureScheme::EcdsaP256Sha256 => &rsig::ECDSA_P256_SHA256_ASN1,
        SignatureScheme::RsaPkcs1Sha256 => &rsig::RSA_PKCS1_2048_8192_SHA256,
        SignatureScheme::RsaPkcs1Sha384 => &rsig::RSA_PKCS1_2048_8192_SHA384,
        SignatureScheme::RsaPkcs1Sha512 => &rsig::RSA_PKCS1_2048_8192_SHA512,
        SignatureScheme::RsaPssSha256 => &rsig::RSA_PSS_2048_8192_SHA256,
        SignatureScheme::RsaPssSha384 => &rsig::RSA_PSS_2048_8192_SHA384,
        SignatureScheme::RsaPssSha512 => &rsig::RSA_PSS_2048_8192_SHA512,
    };
    rsig::UnparsedPublicKey::new(alg, &raw)
        .verify(message, signature)
        .map_err(|_| Error::Crypto("signature does not verify".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::KeyType;

    #[test]
    fn software_signatures_verify() {
        for kt in [KeyType::EcP256, KeyType::Rsa2048] {
            let k = PrivateKey::generate(kt).unwrap();
            let s = SoftwareSigner::new(&k).unwrap();
            for &scheme in s.schemes() {
                let sig = s.sign(scheme, b"hello").unwrap();
                verify(s.public_key_info(), scheme, b"hello", &sig).unwrap();
                assert!(verify(s.public_key_info(), scheme, b"hellO", &sig).is_err());
            }
        }
    }
}
