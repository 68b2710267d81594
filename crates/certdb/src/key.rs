//! Private keys of the internal token: generation, PKCS#8 parsing and
//! encryption at rest (PKCS#8 PBES2: scrypt + AES-256-CBC).

use std::fmt;
use std::str::FromStr;

use der::asn1::{BitString, ObjectIdentifier, UintRef};
use der::{Decode, Encode};
use pkcs8::pkcs5::pbes2;
use pkcs8::pkcs5::scrypt;
use ring::rand::SystemRandom;
use ring::signature::{self as rsig, EcdsaKeyPair, KeyPair as _, RsaKeyPair};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

const OID_EC_PUBLIC_KEY: ObjectIdentifier = const_oid::db::rfc5753::ID_EC_PUBLIC_KEY;
const OID_P256: ObjectIdentifier = const_oid::db::rfc5912::SECP_256_R_1;
const OID_RSA: ObjectIdentifier = const_oid::db::rfc5912::RSA_ENCRYPTION;

/// The kind of key to generate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyType {
    /// ECDSA on NIST P-256 (the default).
    #[default]
    EcP256,
    /// RSA, 2048-bit modulus.
    Rsa2048,
    /// RSA, 3072-bit modulus.
    Rsa3072,
}

impl KeyType {
    /// RSA modulus size, if RSA.
    pub const fn rsa_bits(self) -> Option<usize> {
        match self {
            KeyType::EcP256 => None,
            KeyType::Rsa2048 => Some(2048),
            KeyType::Rsa3072 => Some(3072),
        }
    }
}

impl FromStr for KeyType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "ec" | "ecdsa" | "p256" | "ec-p256" | "ecdsa-p256" => Ok(KeyType::EcP256),
            "rsa" | "rsa2048" | "rsa-2048" => Ok(KeyType::Rsa2048),
            "rsa3072" | "rsa-3072" => Ok(KeyType::Rsa3072),
            _ => Err(Error::Unsupported(format!(
                "key type {s:?} (use ec-p256, rsa-2048 or rsa-3072)"
            ))),
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyType::EcP256 => "ec-p256",
            KeyType::Rsa2048 => "rsa-2048",
            KeyType::Rsa3072 => "rsa-3072",
        })
    }
}

/// The algorithm of an existing key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// ECDSA on P-256.
    EcP256,
    /// RSA with this modulus size in bits.
    Rsa {
        /// Modulus size.
        bits: usize,
    },
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyAlgorithm::EcP256 => f.write_str("ec-p256"),
            KeyAlgorithm::Rsa { bits } => write!(f, "rsa-{bits}"),
        }
    }
}

/// scrypt cost of the database's key encryption and password check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    /// log₂ N.
    pub log_n: u8,
    /// Block size r.
    pub r: u32,
    /// Parallelism p.
    pub p: u32,
}

impl KdfParams {
    /// The default: N = 2¹⁷, r = 8, p = 1 (OWASP's scrypt recommendation).
    pub const DEFAULT: KdfParams = KdfParams {
        log_n: 17,
        r: 8,
        p: 1,
    };

    /// N = 2¹⁰: weak, only for tests that create many databases.
    pub const INSECURE_FAST: KdfParams = KdfParams {
        log_n: 10,
        r: 8,
        p: 1,
    };

    pub(crate) fn scrypt(self) -> Result<scrypt::Params> {
        if !(10..=22).contains(&self.log_n)
            || self.r == 0
            || self.r > 32
            || self.p == 0
            || self.p > 16
        {
            return Err(Error::Corrupt(format!(
                "scrypt parameters out of range: {self:?}"
            )));
        }
        scrypt::Params::new(self.log_n, self.r, self.p)
            .map_err(|e| Error::Corrupt(format!("scrypt parameters: {e}")))
    }

    /// Derives 32 bytes from a password.
    pub(crate) fn derive(self, password: &[u8], salt: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
        let mut out = Zeroizing::new([0u8; 32]);
        scrypt::scrypt(password, salt, &self.scrypt()?, out.as_mut())
            .map_err(|e| Error::Crypto(format!("scrypt: {e}")))?;
        Ok(out)
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The system RNG in the `rand_core` 0.10 shape the `rsa` crate wants.
struct OsRng;

#[derive(Debug)]
struct RngError(getrandom::Error);

impl fmt::Display for RngError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "system random number generator: {}", self.0)
    }
}

impl std::error::Error for RngError {}

impl rsa::rand_core::TryRng for OsRng {
    type Error = RngError;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        getrandom::u32().map_err(RngError)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        getrandom::u64().map_err(RngError)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        getrandom::fill(dst).map_err(RngError)
    }
}

impl rsa::rand_core::TryCryptoRng for OsRng {}

/// A plaintext PKCS#8 private key (zeroed on drop, redacted `Debug`).
#[derive(Clone)]
pub struct PrivateKey {
    pkcs8: Zeroizing<Vec<u8>>,
    algorithm: KeyAlgorithm,
    spki: Vec<u8>,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

pub(crate) fn spki_der(
    alg: ObjectIdentifier,
    params: Option<ObjectIdentifier>,
    key: &[u8],
) -> Result<Vec<u8>> {
    let parameters = match params {
        Some(p) => Some(der::Any::encode_from(&p).map_err(|e| Error::Crypto(e.to_string()))?),
        None => Some(der::Any::null()),
    };
    let spki = SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: alg,
            parameters,
        },
        subject_public_key: BitString::from_bytes(key).map_err(|e| Error::Crypto(e.to_string()))?,
    };
    spki.to_der().map_err(|e| Error::Crypto(e.to_string()))
}

/// SPKI of a P-256 public point.
pub(crate) fn ec_p256_spki(point: &[u8]) -> Result<Vec<u8>> {
    spki_der(OID_EC_PUBLIC_KEY, Some(OID_P256), point)
}

/// SPKI of an RSAPublicKey DER.
pub(crate) fn rsa_spki(rsa_public_key: &[u8]) -> Result<Vec<u8>> {
    spki_der(OID_RSA, None, rsa_public_key)
}

#[derive(der::Sequence)]
struct RsaPublicKeyAsn1<'a> {
    n: UintRef<'a>,
    e: UintRef<'a>,
}

/// Modulus and exponent (big-endian, no leading zeros) of an RSAPublicKey.
pub(crate) fn rsa_public_parts(der: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    let k = RsaPublicKeyAsn1::from_der(der).map_err(|e| Error::BadKey(e.to_string()))?;
    Ok((k.n.as_bytes().to_vec(), k.e.as_bytes().to_vec()))
}

/// Encodes an RSAPublicKey from modulus and exponent (what a PKCS#11
/// token reports as separate attributes).
#[cfg_attr(not(feature = "pkcs11"), allow(dead_code))]
pub(crate) fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Result<Vec<u8>> {
    let k = RsaPublicKeyAsn1 {
        n: UintRef::new(n).map_err(|e| Error::BadKey(e.to_string()))?,
        e: UintRef::new(e).map_err(|e| Error::BadKey(e.to_string()))?,
    };
    k.to_der().map_err(|e| Error::BadKey(e.to_string()))
}

/// The algorithm and raw public key bits of an SPKI.
pub(crate) fn spki_algorithm(spki: &[u8]) -> Result<(KeyAlgorithm, Vec<u8>)> {
    let s =
        spki::SubjectPublicKeyInfoRef::from_der(spki).map_err(|e| Error::BadKey(e.to_string()))?;
    let raw = s.subject_public_key.raw_bytes().to_vec();
    if s.algorithm.oid == OID_RSA {
        let (n, _) = rsa_public_parts(&raw)?;
        let bits = n.len() * 8;
        Ok((KeyAlgorithm::Rsa { bits }, raw))
    } else if s.algorithm.oid == OID_EC_PUBLIC_KEY
        && s.algorithm
            .parameters
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
            == Some(OID_P256)
    {
        Ok((KeyAlgorithm::EcP256, raw))
    } else {
        Err(Error::Unsupported(format!(
            "public key algorithm {}",
            s.algorithm.oid
        )))
    }
}

impl PrivateKey {
    /// Generates a key in memory.
    ///
    /// # Errors
    /// The random number generator or key generation failed.
    pub fn generate(kind: KeyType) -> Result<Self> {
        match kind.rsa_bits() {
            None => {
                let doc = EcdsaKeyPair::generate_pkcs8(
                    &rsig::ECDSA_P256_SHA256_ASN1_SIGNING,
                    &SystemRandom::new(),
                )
                .map_err(|_| Error::Crypto("ECDSA key generation".into()))?;
                Self::from_pkcs8_der(doc.as_ref())
            }
            Some(bits) => {
                use rsa::pkcs8::EncodePrivateKey;
                let k = rsa::PrivateKey::new(&mut OsRng, bits)
                    .map_err(|e| Error::Crypto(format!("RSA key generation: {e}")))?;
                let doc = k
                    .to_pkcs8_der()
                    .map_err(|e| Error::Crypto(format!("RSA key encoding: {e}")))?;
                Self::from_pkcs8_der(doc.as_bytes())
            }
        }
    }

    /// Reads an unencrypted PKCS#8 key (ECDSA P-256 or RSA).
    ///
    /// # Errors
    /// [`Error::BadKey`] for anything else.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self> {
        let info =
            pkcs8::PrivateKeyInfoRef::from_der(der).map_err(|e| Error::BadKey(e.to_string()))?;
        let oid = info.algorithm.oid;
        let (algorithm, spki) = if oid == OID_EC_PUBLIC_KEY {
            let kp = EcdsaKeyPair::from_pkcs8(
                &rsig::ECDSA_P256_SHA256_ASN1_SIGNING,
                der,
                &SystemRandom::new(),
            )
            .map_err(|e| Error::BadKey(format!("EC key (only P-256 is supported): {e}")))?;
            (
                KeyAlgorithm::EcP256,
                ec_p256_spki(kp.public_key().as_ref())?,
            )
        } else if oid == OID_RSA {
            let kp =
                RsaKeyPair::from_pkcs8(der).map_err(|e| Error::BadKey(format!("RSA key: {e}")))?;
            let bits = kp.public().modulus_len() * 8;
            (KeyAlgorithm::Rsa { bits }, rsa_spki(kp.public().as_ref())?)
        } else {
            return Err(Error::BadKey(format!("unsupported key algorithm {oid}")));
        };
        Ok(PrivateKey {
            pkcs8: Zeroizing::new(der.to_vec()),
            algorithm,
            spki,
        })
    }

    /// The PKCS#8 DER.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The public key as SubjectPublicKeyInfo DER.
    pub fn public_key_info(&self) -> &[u8] {
        &self.spki
    }

    /// Encrypts the key as PKCS#8 `EncryptedPrivateKeyInfo` (PBES2: scrypt
    /// with `kdf`, AES-256-CBC), DER.
    ///
    /// # Errors
    /// Encryption failed.
    pub fn encrypt(&self, password: &[u8], kdf: KdfParams) -> Result<Vec<u8>> {
        let mut salt = [0u8; 16];
        let mut iv = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| Error::Crypto(format!("random: {e}")))?;
        getrandom::fill(&mut iv).map_err(|e| Error::Crypto(format!("random: {e}")))?;
        let params = pbes2::Parameters::generate_scrypt_aes256cbc(kdf.scrypt()?, &salt, iv)
            .map_err(|e| Error::Crypto(format!("PBES2 parameters: {e}")))?;
        let info = pkcs8::PrivateKeyInfoRef::from_der(&self.pkcs8)
            .map_err(|e| Error::BadKey(e.to_string()))?;
        let doc = info
            .encrypt_with_params(params, password)
            .map_err(|e| Error::Crypto(format!("PKCS#8 encryption: {e}")))?;
        Ok(doc.as_bytes().to_vec())
    }

    /// Decrypts an `EncryptedPrivateKeyInfo` (DER).
    ///
    /// # Errors
    /// `wrong` when the password does not fit, [`Error::BadKey`] when the
    /// data is not an encrypted key.
    pub fn decrypt(encrypted: &[u8], password: &[u8], wrong: fn() -> Error) -> Result<Self> {
        let enc = pkcs8::EncryptedPrivateKeyInfoRef::from_der(encrypted)
            .map_err(|e| Error::BadKey(format!("encrypted key: {e}")))?;
        let doc = enc.decrypt(password).map_err(|_| wrong())?;
        // A wrong password passes the CBC padding check now and then; the
        // garbage then fails to parse.
        Self::from_pkcs8_der(doc.as_bytes()).map_err(|_| wrong())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_roundtrip_encrypted() {
        let k = PrivateKey::generate(KeyType::EcP256).unwrap();
        assert_eq!(k.algorithm(), KeyAlgorithm::EcP256);
        let enc = k.encrypt(b"pw", KdfParams::INSECURE_FAST).unwrap();
        let back = PrivateKey::decrypt(&enc, b"pw", || Error::WrongPassword).unwrap();
        assert_eq!(back.pkcs8_der(), k.pkcs8_der());
        assert!(matches!(
            PrivateKey::decrypt(&enc, b"nope", || Error::WrongPassword),
            Err(Error::WrongPassword)
        ));
        let (alg, _) = spki_algorithm(k.public_key_info()).unwrap();
        assert_eq!(alg, KeyAlgorithm::EcP256);
    }

    #[test]
    fn rsa_generation() {
        let k = PrivateKey::generate(KeyType::Rsa2048).unwrap();
        assert_eq!(k.algorithm(), KeyAlgorithm::Rsa { bits: 2048 });
        let (alg, raw) = spki_algorithm(k.public_key_info()).unwrap();
        assert_eq!(alg, KeyAlgorithm::Rsa { bits: 2048 });
        let (n, e) = rsa_public_parts(&raw).unwrap();
        assert_eq!(rsa_public_key_der(&n, &e).unwrap(), raw);
    }

    #[test]
    fn key_type_names() {
        for t in [KeyType::EcP256, KeyType::Rsa2048, KeyType::Rsa3072] {
            assert_eq!(t.to_string().parse::<KeyType>().unwrap(), t);
        }
        assert!("dsa".parse::<KeyType>().is_err());
    }
}
