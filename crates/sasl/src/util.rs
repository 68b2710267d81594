//! Crypto and encoding helpers shared by the mechanisms.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{EagerHash, Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use sha1::Sha1;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::{Error, ScramAlgorithm};

/// Constant-time equality (lengths are not secret).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

fn hmac_generic<D: EagerHash>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this never fails.
    let mut mac = match <Hmac<D> as KeyInit>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable_hmac(),
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

#[cold]
fn unreachable_hmac() -> ! {
    // Invariant: HMAC's KeyInit accepts every key length (long keys are
    // hashed, short keys padded), so `new_from_slice` cannot fail.
    unreachable!("HMAC accepts keys of any length")
}

/// HMAC with the SCRAM hash.
pub(crate) fn hmac(alg: ScramAlgorithm, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    match alg {
        ScramAlgorithm::Sha1 => hmac_generic::<Sha1>(key, parts),
        ScramAlgorithm::Sha256 => hmac_generic::<Sha256>(key, parts),
    }
}

/// The SCRAM hash H().
pub(crate) fn hash(alg: ScramAlgorithm, data: &[u8]) -> Vec<u8> {
    match alg {
        ScramAlgorithm::Sha1 => Sha1::digest(data).to_vec(),
        ScramAlgorithm::Sha256 => Sha256::digest(data).to_vec(),
    }
}

/// PBKDF2 with HMAC of the SCRAM hash (Hi() of RFC 5802).
pub(crate) fn hi(
    alg: ScramAlgorithm,
    password: &[u8],
    salt: &[u8],
    iterations: u32,
) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(vec![0u8; alg.output_len()]);
    match alg {
        ScramAlgorithm::Sha1 => pbkdf2::pbkdf2_hmac::<Sha1>(password, salt, iterations, &mut out),
        ScramAlgorithm::Sha256 => {
            pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
        }
    }
    out
}

/// HMAC-MD5 (CRAM-MD5).
pub(crate) fn hmac_md5(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac_generic::<Md5>(key, &[data])
}

/// MD5 of the concatenation of `parts`.
pub(crate) fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// Fills a buffer from the operating system's CSPRNG.
pub(crate) fn random_bytes(n: usize) -> Result<Vec<u8>, Error> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).map_err(|_| Error::Random)?;
    Ok(buf)
}

/// A fresh nonce: 18 random bytes in base64 (24 printable characters, no
/// `,` or `"`), from the OS CSPRNG.
pub(crate) fn random_nonce() -> Result<String, Error> {
    Ok(STANDARD.encode(random_bytes(18)?))
}

/// Strict standard base64 (padding required, no whitespace).
pub(crate) fn b64_decode(data: &[u8]) -> Result<Vec<u8>, Error> {
    STANDARD.decode(data).map_err(|_| Error::Base64)
}

/// Strict standard base64 into a buffer wiped on drop (client responses
/// carry passwords), sized up front so no copy is left behind by growth.
pub(crate) fn b64_decode_secret(data: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
    let mut out = Zeroizing::new(Vec::with_capacity(data.len() / 4 * 3 + 3));
    STANDARD
        .decode_vec(data, &mut out)
        .map_err(|_| Error::Base64)?;
    Ok(out)
}

/// Standard base64 with padding.
pub(crate) fn b64_encode(data: &[u8]) -> String {
    STANDARD.encode(data)
}

/// XOR of two equal-length byte strings.
pub(crate) fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

/// SASLprep (RFC 4013) of a user name or password.
pub(crate) fn saslprep(s: &str) -> Result<String, Error> {
    stringprep::saslprep(s)
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| Error::Saslprep)
}
