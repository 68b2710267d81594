//! `tls-server-end-point` channel-binding data (RFC 5929 §4.1): the hash
//! of the server certificate with the hash function of its signature, or
//! SHA-256 when that is MD5 or SHA-1.
//!
//! The certificate is parsed with x509-cert and the signature algorithm
//! looked up by its object identifier (const-oid's database), so every
//! algorithm with a defined hash is covered: RSA PKCS #1 v1.5, ECDSA, DSA,
//! and RSASSA-PSS, whose hash is in the algorithm's parameters.

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912 as oid;
use der::Decode as _;
use sha2::Digest as _;

use crate::{Error, Mechanism};

const M: Mechanism = Mechanism::ScramSha256Plus;

/// ecdsa-with-SHA1 (RFC 3279), which const-oid's database does not list.
const ECDSA_WITH_SHA_1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.1");

/// The hash functions RFC 5929 can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hash {
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

/// The hash of a hash algorithm's identifier (SHA-1 and MD5 become
/// SHA-256, as RFC 5929 §4.1 says).
fn hash_of_digest(digest: &ObjectIdentifier) -> Option<Hash> {
    Some(match *digest {
        oid::ID_MD_5 | oid::ID_SHA_1 | oid::ID_SHA_256 => Hash::Sha256,
        oid::ID_SHA_224 => Hash::Sha224,
        oid::ID_SHA_384 => Hash::Sha384,
        oid::ID_SHA_512 => Hash::Sha512,
        _ => return None,
    })
}

/// The hash for a signature algorithm, `None` when it has no defined one
/// (Ed25519, Ed448, unknown algorithms).
fn hash_of_signature(alg: &x509_cert::spki::AlgorithmIdentifierOwned) -> Result<Hash, Error> {
    let none = || {
        Error::cb(
            M,
            "no tls-server-end-point hash for this signature algorithm",
        )
    };
    let hash = match alg.oid {
        oid::MD_2_WITH_RSA_ENCRYPTION
        | oid::MD_5_WITH_RSA_ENCRYPTION
        | oid::SHA_1_WITH_RSA_ENCRYPTION
        | oid::SHA_256_WITH_RSA_ENCRYPTION
        | ECDSA_WITH_SHA_1
        | oid::ECDSA_WITH_SHA_256
        | oid::DSA_WITH_SHA_1
        | oid::DSA_WITH_SHA_256 => Hash::Sha256,
        oid::SHA_224_WITH_RSA_ENCRYPTION | oid::ECDSA_WITH_SHA_224 | oid::DSA_WITH_SHA_224 => {
            Hash::Sha224
        }
        oid::SHA_384_WITH_RSA_ENCRYPTION | oid::ECDSA_WITH_SHA_384 => Hash::Sha384,
        oid::SHA_512_WITH_RSA_ENCRYPTION | oid::ECDSA_WITH_SHA_512 => Hash::Sha512,
        oid::ID_RSASSA_PSS => {
            // RSASSA-PSS-params: the hash is a parameter (SHA-1 when
            // absent, which RFC 5929 turns into SHA-256).
            let params = alg
                .parameters
                .as_ref()
                .ok_or_else(|| Error::cb(M, "RSASSA-PSS without parameters"))?;
            let der = der::Encode::to_der(params)
                .map_err(|_| Error::cb(M, "cannot read the RSASSA-PSS parameters"))?;
            let pss = pkcs1::RsaPssParams::<der::Any>::from_der(&der)
                .map_err(|_| Error::cb(M, "cannot read the RSASSA-PSS parameters"))?;
            hash_of_digest(&pss.hash.oid).ok_or_else(none)?
        }
        _ => return Err(none()),
    };
    Ok(hash)
}

/// `tls-server-end-point` data for a server certificate (DER).
pub(crate) fn tls_server_end_point(certificate_der: &[u8]) -> Result<Vec<u8>, Error> {
    let cert = x509_cert::Certificate::from_der(certificate_der)
        .map_err(|_| Error::cb(M, "cannot parse the server certificate"))?;
    Ok(match hash_of_signature(cert.signature_algorithm())? {
        Hash::Sha224 => sha2::Sha224::digest(certificate_der).to_vec(),
        Hash::Sha256 => sha2::Sha256::digest(certificate_der).to_vec(),
        Hash::Sha384 => sha2::Sha384::digest(certificate_der).to_vec(),
        Hash::Sha512 => sha2::Sha512::digest(certificate_der).to_vec(),
    })
}
