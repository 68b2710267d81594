//! `userPassword` storage schemes (RFC 2307 `{SCHEME}` prefixes): local
//! verification, and generation for auto-transition.
//!
//! | prefix | body |
//! |---|---|
//! | none, `{CLEARTEXT}` | the password |
//! | `{SHA}` `{SHA256}` `{SHA512}` `{MD5}` | base64(H(pw)) |
//! | `{SSHA}` `{SSHA256}` `{SSHA512}` `{SMD5}` | base64(H(pw ‖ salt) ‖ salt) |
//! | `{CRYPT}` | `$6$` sha512-crypt, `$5$` sha256-crypt, `$1$` md5-crypt, `$2a$`/`$2b$`/`$2y$` bcrypt |
//! | `{PBKDF2-SHA256}` `{PBKDF2-SHA512}` `{PBKDF2-SHA1}` `{PBKDF2}` | `iterations$salt$hash`, adapted base64 (389-DS / OpenLDAP pw-pbkdf2) |
//! | `{PBKDF2_SHA256}` | base64(iterations(4, BE) ‖ salt(64) ‖ hash(256)) (older 389-DS) |
//! | `{ARGON2}` | PHC string `$argon2id$v=19$m=…,t=…,p=…$salt$hash` |
//! | `{SCRAM-SHA-256}` `{SCRAM-SHA-1}` | `iterations:salt$StoredKey:ServerKey` (RFC 5803 without the scheme) |
//!
//! Every comparison of derived values is constant-time.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::md5crypt;

/// Why a stored value could not be checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchemeError {
    /// The `{SCHEME}` is not one this crate verifies.
    #[error("unsupported password scheme `{0}`")]
    Unsupported(String),
    /// The scheme is known but the stored value is malformed.
    #[error("malformed `{0}` value")]
    Malformed(&'static str),
    /// The stored value asks for more work than [`limits`] allow: a hostile
    /// or mistaken entry must not pin a core for seconds.
    #[error("`{0}` value asks for more work than allowed ({1})")]
    TooExpensive(&'static str, String),
    /// The system random source failed.
    #[error("no randomness available")]
    Random,
}

/// The most work a stored value may ask for at each login. Values above
/// are refused (the entry then has no usable password) instead of being
/// computed.
pub mod limits {
    /// PBKDF2 and SCRAM iterations (389-DS uses 10,000; OWASP suggests
    /// 600,000 for PBKDF2-SHA256).
    pub const MAX_PBKDF2_ITERATIONS: u32 = 1_000_000;
    /// sha256-crypt / sha512-crypt rounds (glibc's default is 5,000).
    pub const MAX_SHA_CRYPT_ROUNDS: u32 = 500_000;
    /// bcrypt cost (2^cost rounds; 10-12 is usual).
    pub const MAX_BCRYPT_COST: u32 = 13;
    /// Argon2 memory (KiB) times passes: 1 GiB-pass, e.g. 64 MiB × 16 or
    /// the default 19 MiB × 2 with much room.
    pub const MAX_ARGON2_KIB_PASSES: u64 = 1_048_576;
    /// Argon2 lanes.
    pub const MAX_ARGON2_LANES: u32 = 16;
}

fn too_expensive(what: &'static str, detail: impl Into<String>) -> SchemeError {
    SchemeError::TooExpensive(what, detail.into())
}

/// A recognised storage scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheme {
    /// No prefix or `{CLEARTEXT}`.
    Cleartext,
    /// `{SHA}`.
    Sha1,
    /// `{SSHA}`.
    SaltedSha1,
    /// `{SHA256}`.
    Sha256,
    /// `{SSHA256}`.
    SaltedSha256,
    /// `{SHA512}`.
    Sha512,
    /// `{SSHA512}`.
    SaltedSha512,
    /// `{MD5}`.
    Md5,
    /// `{SMD5}`.
    SaltedMd5,
    /// `{CRYPT}` (sha512-, sha256-, md5-crypt, bcrypt).
    Crypt,
    /// `{PBKDF2}` / `{PBKDF2-SHA1}`.
    Pbkdf2Sha1,
    /// `{PBKDF2-SHA256}`.
    Pbkdf2Sha256,
    /// `{PBKDF2-SHA512}`.
    Pbkdf2Sha512,
    /// `{PBKDF2_SHA256}` (older 389-DS binary form).
    Pbkdf2Sha256Binary,
    /// `{ARGON2}`.
    Argon2,
    /// `{SCRAM-SHA-1}`.
    ScramSha1,
    /// `{SCRAM-SHA-256}`.
    ScramSha256,
}

impl Scheme {
    fn from_tag(tag: &str) -> Option<Self> {
        Some(match tag.to_ascii_uppercase().as_str() {
            "CLEARTEXT" => Self::Cleartext,
            "SHA" | "SHA1" => Self::Sha1,
            "SSHA" | "SSHA1" => Self::SaltedSha1,
            "SHA256" => Self::Sha256,
            "SSHA256" => Self::SaltedSha256,
            "SHA512" => Self::Sha512,
            "SSHA512" => Self::SaltedSha512,
            "MD5" => Self::Md5,
            "SMD5" => Self::SaltedMd5,
            "CRYPT" => Self::Crypt,
            "PBKDF2" | "PBKDF2-SHA1" => Self::Pbkdf2Sha1,
            "PBKDF2-SHA256" => Self::Pbkdf2Sha256,
            "PBKDF2-SHA512" => Self::Pbkdf2Sha512,
            "PBKDF2_SHA256" => Self::Pbkdf2Sha256Binary,
            "ARGON2" => Self::Argon2,
            "SCRAM-SHA-1" => Self::ScramSha1,
            "SCRAM-SHA-256" => Self::ScramSha256,
            _ => return None,
        })
    }

    /// True for SCRAM stored keys, which are kept beside the password hash
    /// rather than instead of it.
    #[must_use]
    pub fn is_scram(self) -> bool {
        matches!(self, Self::ScramSha1 | Self::ScramSha256)
    }
}

/// A `userPassword` value split into scheme and body.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredPassword<'a> {
    /// The scheme, or the unknown tag.
    pub scheme: Result<Scheme, &'a str>,
    /// The text after the `{TAG}`.
    pub body: &'a [u8],
}

impl fmt::Debug for StoredPassword<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredPassword")
            .field("scheme", &self.scheme)
            .field("body", &"<redacted>")
            .finish()
    }
}

impl<'a> StoredPassword<'a> {
    /// Splits a stored value. A value not starting with `{TAG}` is
    /// cleartext.
    #[must_use]
    pub fn parse(value: &'a [u8]) -> Self {
        if value.first() == Some(&b'{')
            && let Some(end) = value.iter().position(|&b| b == b'}')
            && let Ok(tag) = std::str::from_utf8(&value[1..end])
            && !tag.is_empty()
            && tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Self {
                scheme: Scheme::from_tag(tag).ok_or(tag),
                body: &value[end + 1..],
            };
        }
        Self {
            scheme: Ok(Scheme::Cleartext),
            body: value,
        }
    }
}

fn ct(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

fn b64(body: &[u8], what: &'static str) -> Result<Vec<u8>, SchemeError> {
    let trimmed: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    STANDARD
        .decode(&trimmed)
        .or_else(|_| STANDARD_NO_PAD.decode(&trimmed))
        .map_err(|_| SchemeError::Malformed(what))
}

/// Adapted base64 of passlib / pw-pbkdf2: `.` for `+`, no padding.
fn ab64(s: &str, what: &'static str) -> Result<Vec<u8>, SchemeError> {
    let std = s.replace('.', "+");
    let std = std.trim_end_matches('=');
    STANDARD_NO_PAD
        .decode(std)
        .map_err(|_| SchemeError::Malformed(what))
}

fn ab64_encode(b: &[u8]) -> String {
    STANDARD_NO_PAD.encode(b).replace('+', ".")
}

fn digest_check<D: Digest>(
    password: &[u8],
    body: &[u8],
    salted: bool,
    what: &'static str,
) -> Result<bool, SchemeError> {
    let raw = b64(body, what)?;
    let n = <D as Digest>::output_size();
    if raw.len() < n || (!salted && raw.len() != n) {
        return Err(SchemeError::Malformed(what));
    }
    let (hash, salt) = raw.split_at(n);
    let mut d = D::new();
    d.update(password);
    d.update(salt);
    Ok(ct(&d.finalize(), hash))
}

fn pbkdf2_check<D>(password: &[u8], body: &[u8], what: &'static str) -> Result<bool, SchemeError>
where
    D: hmac::EagerHash,
    <D as hmac::EagerHash>::Core: Sync,
{
    let s = std::str::from_utf8(body).map_err(|_| SchemeError::Malformed(what))?;
    let mut parts = s.trim().split('$');
    let (Some(iter), Some(salt), Some(hash), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SchemeError::Malformed(what));
    };
    let iter: u32 = iter.parse().map_err(|_| SchemeError::Malformed(what))?;
    if iter == 0 {
        return Err(SchemeError::Malformed(what));
    }
    if iter > limits::MAX_PBKDF2_ITERATIONS {
        return Err(too_expensive(what, format!("{iter} iterations")));
    }
    let salt = ab64(salt, what)?;
    let hash = ab64(hash, what)?;
    if hash.is_empty() || hash.len() > 1024 {
        return Err(SchemeError::Malformed(what));
    }
    let mut out = Zeroizing::new(vec![0u8; hash.len()]);
    pbkdf2::pbkdf2_hmac::<D>(password, &salt, iter, &mut out);
    Ok(ct(&out, &hash))
}

fn pbkdf2_binary_check(password: &[u8], body: &[u8]) -> Result<bool, SchemeError> {
    const WHAT: &str = "PBKDF2_SHA256";
    let raw = b64(body, WHAT)?;
    if raw.len() != 4 + 64 + 256 {
        return Err(SchemeError::Malformed(WHAT));
    }
    let iter = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
    if iter == 0 {
        return Err(SchemeError::Malformed(WHAT));
    }
    if iter > limits::MAX_PBKDF2_ITERATIONS {
        return Err(too_expensive(WHAT, format!("{iter} iterations")));
    }
    let mut out = Zeroizing::new(vec![0u8; 256]);
    pbkdf2::pbkdf2_hmac::<Sha256>(password, &raw[4..68], iter, &mut out);
    Ok(ct(&out, &raw[68..]))
}

fn crypt_check(password: &[u8], body: &[u8]) -> Result<bool, SchemeError> {
    use sha_crypt::PasswordVerifier as _;
    let s = std::str::from_utf8(body).map_err(|_| SchemeError::Malformed("CRYPT"))?;
    if s.starts_with("$6$") || s.starts_with("$5$") {
        // `$6$rounds=N$salt$hash`: refuse a count above the limit before
        // computing anything.
        if let Some(rounds) = s[3..]
            .strip_prefix("rounds=")
            .and_then(|r| r.split('$').next())
        {
            let n: u64 = rounds
                .parse()
                .map_err(|_| SchemeError::Malformed("CRYPT"))?;
            if n > u64::from(limits::MAX_SHA_CRYPT_ROUNDS) {
                return Err(too_expensive("CRYPT", format!("{n} rounds")));
            }
        }
        let algo = if s.starts_with("$6$") {
            sha_crypt::ShaCrypt::SHA512
        } else {
            sha_crypt::ShaCrypt::SHA256
        };
        return match algo.verify_password(password, s) {
            Ok(()) => Ok(true),
            Err(sha_crypt::password_hash::Error::PasswordInvalid) => Ok(false),
            Err(_) => Err(SchemeError::Malformed("CRYPT")),
        };
    }
    if s.starts_with("$1$") {
        return md5crypt::verify(password, s).ok_or(SchemeError::Malformed("CRYPT"));
    }
    if s.starts_with("$2a$")
        || s.starts_with("$2b$")
        || s.starts_with("$2y$")
        || s.starts_with("$2x$")
    {
        // `$2b$NN$...`: the cost is the two digits after the id.
        let cost: u32 = s
            .get(4..6)
            .and_then(|c| c.parse().ok())
            .ok_or(SchemeError::Malformed("CRYPT"))?;
        if cost > limits::MAX_BCRYPT_COST {
            return Err(too_expensive("CRYPT", format!("bcrypt cost {cost}")));
        }
        return bcrypt::verify(password, s).map_err(|_| SchemeError::Malformed("CRYPT"));
    }
    Err(SchemeError::Unsupported(format!(
        "CRYPT ({})",
        if s.starts_with('$') {
            "unknown $id$"
        } else {
            "traditional DES"
        }
    )))
}

fn argon2_check(password: &[u8], body: &[u8]) -> Result<bool, SchemeError> {
    use argon2::PasswordVerifier as _;
    let s = std::str::from_utf8(body).map_err(|_| SchemeError::Malformed("ARGON2"))?;
    // `$argon2id$v=19$m=19456,t=2,p=1$salt$hash`: check the cost first.
    let params = s
        .trim()
        .split('$')
        .find(|part| part.starts_with("m="))
        .ok_or(SchemeError::Malformed("ARGON2"))?;
    let (mut m, mut t, mut p) = (None, None, None);
    for kv in params.split(',') {
        let (k, v) = kv.split_once('=').ok_or(SchemeError::Malformed("ARGON2"))?;
        let v: u64 = v.parse().map_err(|_| SchemeError::Malformed("ARGON2"))?;
        match k {
            "m" => m = Some(v),
            "t" => t = Some(v),
            "p" => p = Some(v),
            _ => {}
        }
    }
    let (Some(m), Some(t), Some(p)) = (m, t, p) else {
        return Err(SchemeError::Malformed("ARGON2"));
    };
    if m.saturating_mul(t) > limits::MAX_ARGON2_KIB_PASSES
        || p > u64::from(limits::MAX_ARGON2_LANES)
    {
        return Err(too_expensive("ARGON2", format!("m={m},t={t},p={p}")));
    }
    match argon2::Argon2::default().verify_password(password, s.trim()) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
        Err(_) => Err(SchemeError::Malformed("ARGON2")),
    }
}

/// SCRAM stored keys `iterations:salt$StoredKey:ServerKey` for `H`.
pub(crate) struct ScramBody {
    pub(crate) iterations: u32,
    pub(crate) salt: Vec<u8>,
    pub(crate) stored_key: Vec<u8>,
    pub(crate) server_key: Vec<u8>,
}

pub(crate) fn parse_scram(body: &[u8], len: usize) -> Result<ScramBody, SchemeError> {
    const WHAT: &str = "SCRAM";
    let s = std::str::from_utf8(body).map_err(|_| SchemeError::Malformed(WHAT))?;
    let (info, keys) = s
        .trim()
        .split_once('$')
        .ok_or(SchemeError::Malformed(WHAT))?;
    let (iter, salt) = info.split_once(':').ok_or(SchemeError::Malformed(WHAT))?;
    let (stored, server) = keys.split_once(':').ok_or(SchemeError::Malformed(WHAT))?;
    let iterations: u32 = iter
        .trim()
        .parse()
        .map_err(|_| SchemeError::Malformed(WHAT))?;
    let out = ScramBody {
        iterations,
        salt: b64(salt.trim().as_bytes(), WHAT)?,
        stored_key: b64(stored.trim().as_bytes(), WHAT)?,
        server_key: b64(server.trim().as_bytes(), WHAT)?,
    };
    if iterations == 0
        || iterations > 10_000_000
        || out.salt.is_empty()
        || out.stored_key.len() != len
        || out.server_key.len() != len
    {
        return Err(SchemeError::Malformed(WHAT));
    }
    Ok(out)
}

fn scram_check<D>(password: &[u8], body: &[u8]) -> Result<bool, SchemeError>
where
    D: hmac::EagerHash + Digest,
    <D as hmac::EagerHash>::Core: Sync,
{
    let n = <D as Digest>::output_size();
    let b = parse_scram(body, n)?;
    if b.iterations > limits::MAX_PBKDF2_ITERATIONS {
        return Err(too_expensive(
            "SCRAM",
            format!("{} iterations", b.iterations),
        ));
    }
    let mut salted = Zeroizing::new(vec![0u8; n]);
    pbkdf2::pbkdf2_hmac::<D>(password, &b.salt, b.iterations, &mut salted);
    let mut mac = <Hmac<D> as KeyInit>::new_from_slice(&salted)
        .map_err(|_| SchemeError::Malformed("SCRAM"))?;
    mac.update(b"Client Key");
    let client_key = Zeroizing::new(mac.finalize().into_bytes().to_vec());
    let stored = D::digest(&*client_key);
    Ok(ct(&stored, &b.stored_key))
}

/// Checks `password` against one stored `userPassword` value.
///
/// Returns `Ok(false)` for a wrong password.
///
/// # Errors
/// [`SchemeError::Unsupported`] for an unknown scheme (or DES crypt),
/// [`SchemeError::Malformed`] when the stored value is broken,
/// [`SchemeError::TooExpensive`] when it asks for more work than
/// [`limits`] allow.
pub fn verify(stored: &[u8], password: &[u8]) -> Result<bool, SchemeError> {
    let sp = StoredPassword::parse(stored);
    let body = sp.body;
    match sp.scheme {
        Err(tag) => Err(SchemeError::Unsupported(tag.to_owned())),
        Ok(Scheme::Cleartext) => Ok(ct(body, password)),
        Ok(Scheme::Sha1) => digest_check::<Sha1>(password, body, false, "SHA"),
        Ok(Scheme::SaltedSha1) => digest_check::<Sha1>(password, body, true, "SSHA"),
        Ok(Scheme::Sha256) => digest_check::<Sha256>(password, body, false, "SHA256"),
        Ok(Scheme::SaltedSha256) => digest_check::<Sha256>(password, body, true, "SSHA256"),
        Ok(Scheme::Sha512) => digest_check::<Sha512>(password, body, false, "SHA512"),
        Ok(Scheme::SaltedSha512) => digest_check::<Sha512>(password, body, true, "SSHA512"),
        Ok(Scheme::Md5) => digest_check::<Md5>(password, body, false, "MD5"),
        Ok(Scheme::SaltedMd5) => digest_check::<Md5>(password, body, true, "SMD5"),
        Ok(Scheme::Crypt) => crypt_check(password, body),
        Ok(Scheme::Pbkdf2Sha1) => pbkdf2_check::<Sha1>(password, body, "PBKDF2-SHA1"),
        Ok(Scheme::Pbkdf2Sha256) => pbkdf2_check::<Sha256>(password, body, "PBKDF2-SHA256"),
        Ok(Scheme::Pbkdf2Sha512) => pbkdf2_check::<Sha512>(password, body, "PBKDF2-SHA512"),
        Ok(Scheme::Pbkdf2Sha256Binary) => pbkdf2_binary_check(password, body),
        Ok(Scheme::Argon2) => argon2_check(password, body),
        Ok(Scheme::ScramSha1) => scram_check::<Sha1>(password, body),
        Ok(Scheme::ScramSha256) => scram_check::<Sha256>(password, body),
    }
}

/// The scheme new password values are written in (auto-transition).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NewScheme {
    /// `{CLEARTEXT}` (only for directories that must serve CRAM-MD5/APOP).
    Cleartext,
    /// `{SSHA}`.
    SaltedSha1,
    /// `{SSHA256}`.
    SaltedSha256,
    /// `{SSHA512}`.
    SaltedSha512,
    /// `{CRYPT}$6$` with this many rounds (glibc default 5000).
    Sha512Crypt {
        /// sha512-crypt rounds (1000 ..= 999 999 999).
        rounds: u32,
    },
    /// `{CRYPT}$5$`.
    Sha256Crypt {
        /// sha256-crypt rounds.
        rounds: u32,
    },
    /// `{PBKDF2-SHA256}iterations$salt$hash`.
    Pbkdf2Sha256 {
        /// PBKDF2 iteration count.
        iterations: u32,
    },
    /// `{ARGON2}` argon2id with the crate's default parameters.
    Argon2id,
}

impl Default for NewScheme {
    /// `{CRYPT}` sha512-crypt, 5000 rounds: strong, and verified by slapd
    /// without extra modules.
    fn default() -> Self {
        Self::Sha512Crypt { rounds: 5000 }
    }
}

fn random(n: usize) -> Result<Vec<u8>, SchemeError> {
    let mut v = vec![0u8; n];
    getrandom::fill(&mut v).map_err(|_| SchemeError::Random)?;
    Ok(v)
}

fn salted<D: Digest>(tag: &str, password: &[u8]) -> Result<String, SchemeError> {
    let salt = random(8)?;
    let mut d = D::new();
    d.update(password);
    d.update(&salt);
    let mut raw = d.finalize().to_vec();
    raw.extend_from_slice(&salt);
    Ok(format!("{{{tag}}}{}", STANDARD.encode(raw)))
}

impl NewScheme {
    /// Hashes `password` with a fresh salt; the result is a complete
    /// `userPassword` value.
    ///
    /// # Errors
    /// [`SchemeError::Random`] when no randomness is available, or
    /// [`SchemeError::Malformed`] for out-of-range parameters.
    pub fn hash(self, password: &[u8]) -> Result<String, SchemeError> {
        match self {
            Self::Cleartext => Ok(format!(
                "{{CLEARTEXT}}{}",
                std::str::from_utf8(password).map_err(|_| SchemeError::Malformed("CLEARTEXT"))?
            )),
            Self::SaltedSha1 => salted::<Sha1>("SSHA", password),
            Self::SaltedSha256 => salted::<Sha256>("SSHA256", password),
            Self::SaltedSha512 => salted::<Sha512>("SSHA512", password),
            Self::Sha512Crypt { rounds } | Self::Sha256Crypt { rounds } => {
                use sha_crypt::PasswordHasher as _;
                let params =
                    sha_crypt::Params::new(rounds).map_err(|_| SchemeError::Malformed("CRYPT"))?;
                let algo = if matches!(self, Self::Sha512Crypt { .. }) {
                    sha_crypt::Algorithm::Sha512Crypt
                } else {
                    sha_crypt::Algorithm::Sha256Crypt
                };
                let h = sha_crypt::ShaCrypt::new(algo, params)
                    .hash_password_with_salt(password, &random(12)?)
                    .map_err(|_| SchemeError::Malformed("CRYPT"))?;
                Ok(format!("{{CRYPT}}{h}"))
            }
            Self::Pbkdf2Sha256 { iterations } => {
                if iterations == 0 {
                    return Err(SchemeError::Malformed("PBKDF2-SHA256"));
                }
                let salt = random(16)?;
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, &salt, iterations, &mut out);
                Ok(format!(
                    "{{PBKDF2-SHA256}}{iterations}${}${}",
                    ab64_encode(&salt),
                    ab64_encode(&out)
                ))
            }
            Self::Argon2id => {
                use argon2::PasswordHasher as _;
                let h = argon2::Argon2::default()
                    .hash_password_with_salt(password, &random(16)?)
                    .map_err(|_| SchemeError::Malformed("ARGON2"))?;
                Ok(format!("{{ARGON2}}{h}"))
            }
        }
    }

    /// Whether `stored` is already in this scheme (no transition needed).
    #[must_use]
    pub fn is_current(self, stored: &[u8]) -> bool {
        let sp = StoredPassword::parse(stored);
        match (self, sp.scheme) {
            (Self::Cleartext, Ok(Scheme::Cleartext))
            | (Self::SaltedSha1, Ok(Scheme::SaltedSha1))
            | (Self::SaltedSha256, Ok(Scheme::SaltedSha256))
            | (Self::SaltedSha512, Ok(Scheme::SaltedSha512))
            | (Self::Pbkdf2Sha256 { .. }, Ok(Scheme::Pbkdf2Sha256))
            | (Self::Argon2id, Ok(Scheme::Argon2)) => true,
            (Self::Sha512Crypt { .. }, Ok(Scheme::Crypt)) => sp.body.starts_with(b"$6$"),
            (Self::Sha256Crypt { .. }, Ok(Scheme::Crypt)) => sp.body.starts_with(b"$5$"),
            _ => false,
        }
    }
}

/// The `userPassword` value holding SCRAM-SHA-256 stored keys for
/// `password` (RFC 5802 §3 key derivation; the password must already be
/// SASLprep-normalised).
///
/// # Errors
/// [`SchemeError::Random`] when no randomness is available;
/// [`SchemeError::Malformed`] for a zero iteration count.
pub fn scram_sha256_value(password: &[u8], iterations: u32) -> Result<String, SchemeError> {
    if iterations == 0 {
        return Err(SchemeError::Malformed("SCRAM"));
    }
    let salt = random(16)?;
    let mut salted = Zeroizing::new([0u8; 32]);
    pbkdf2::pbkdf2_hmac::<Sha256>(password, &salt, iterations, &mut *salted);
    let key = |label: &[u8]| -> Result<Vec<u8>, SchemeError> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&*salted)
            .map_err(|_| SchemeError::Malformed("SCRAM"))?;
        mac.update(label);
        Ok(mac.finalize().into_bytes().to_vec())
    };
    let client_key = Zeroizing::new(key(b"Client Key")?);
    let stored_key = Sha256::digest(&*client_key);
    let server_key = key(b"Server Key")?;
    Ok(format!(
        "{{SCRAM-SHA-256}}{iterations}:{}${}:{}",
        STANDARD.encode(&salt),
        STANDARD.encode(stored_key),
        STANDARD.encode(server_key)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values that would pin a core for seconds (or hours) are refused
    /// before any hashing; values within the limits still verify.
    #[test]
    fn hostile_costs_are_refused_before_hashing() {
        let key = STANDARD.encode([7u8; 32]);
        let hostile: [(&str, String); 6] = [
            (
                "sha512-crypt",
                "{CRYPT}$6$rounds=999999999$saltsalt$0000000000000000000000".to_owned(),
            ),
            (
                "sha256-crypt",
                "{CRYPT}$5$rounds=600000$saltsalt$0000000000000000000000".to_owned(),
            ),
            (
                "bcrypt",
                "{CRYPT}$2b$31$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui".to_owned(),
            ),
            (
                "argon2",
                "{ARGON2}$argon2id$v=19$m=4194304,t=10,p=1$c2FsdHNhbHQ$aGFzaGhhc2g".to_owned(),
            ),
            ("pbkdf2", "{PBKDF2-SHA256}5000000$c2FsdA$aGFzaA".to_owned()),
            (
                "scram",
                format!("{{SCRAM-SHA-256}}5000000:c2FsdHNhbHQ=${key}:{key}"),
            ),
        ];
        for (what, value) in hostile {
            assert!(
                matches!(
                    verify(value.as_bytes(), b"pw"),
                    Err(SchemeError::TooExpensive(..))
                ),
                "{what}: {:?}",
                verify(value.as_bytes(), b"pw")
            );
        }
        // At the limits' edge a value is computed as usual.
        let ok = NewScheme::Pbkdf2Sha256 { iterations: 1000 }
            .hash(b"pw")
            .unwrap();
        assert_eq!(verify(ok.as_bytes(), b"pw"), Ok(true));
        let crypt = NewScheme::Sha512Crypt { rounds: 5000 }.hash(b"pw").unwrap();
        assert_eq!(verify(crypt.as_bytes(), b"pw"), Ok(true));
    }

    #[test]
    fn split() {
        assert_eq!(
            StoredPassword::parse(b"plain").scheme,
            Ok(Scheme::Cleartext)
        );
        assert_eq!(
            StoredPassword::parse(b"{ssha}x").scheme,
            Ok(Scheme::SaltedSha1)
        );
        assert_eq!(StoredPassword::parse(b"{NOPE}x").scheme, Err("NOPE"));
        assert_eq!(
            StoredPassword::parse(b"{not a tag}x").scheme,
            Ok(Scheme::Cleartext)
        );
        assert_eq!(StoredPassword::parse(b"{}x").scheme, Ok(Scheme::Cleartext));
    }

    #[test]
    fn generated_values_verify() {
        let schemes = [
            NewScheme::Cleartext,
            NewScheme::SaltedSha1,
            NewScheme::SaltedSha256,
            NewScheme::SaltedSha512,
            NewScheme::Sha512Crypt { rounds: 5000 },
            NewScheme::Sha256Crypt { rounds: 5000 },
            NewScheme::Pbkdf2Sha256 { iterations: 1000 },
            NewScheme::Argon2id,
        ];
        for s in schemes {
            let v = s.hash(b"s3cret pw").unwrap();
            assert!(s.is_current(v.as_bytes()), "{s:?}");
            assert_eq!(verify(v.as_bytes(), b"s3cret pw"), Ok(true), "{s:?} {v}");
            assert_eq!(verify(v.as_bytes(), b"s3cret pW"), Ok(false), "{s:?}");
            assert_eq!(verify(v.as_bytes(), b""), Ok(false), "{s:?}");
        }
        let v = scram_sha256_value(b"pencil", 4096).unwrap();
        assert_eq!(verify(v.as_bytes(), b"pencil"), Ok(true));
        assert_eq!(verify(v.as_bytes(), b"pencil2"), Ok(false));
    }

    #[test]
    fn malformed_and_unknown() {
        assert!(matches!(
            verify(b"{SSHA}!!!", b"x"),
            Err(SchemeError::Malformed(_))
        ));
        assert!(matches!(
            verify(b"{SHA}AAAA", b"x"),
            Err(SchemeError::Malformed(_))
        ));
        assert!(matches!(
            verify(b"{FOO}x", b"x"),
            Err(SchemeError::Unsupported(_))
        ));
        assert!(matches!(
            verify(b"{CRYPT}abJnggxhB/yWI", b"x"),
            Err(SchemeError::Unsupported(_))
        ));
        assert!(matches!(
            verify(b"{PBKDF2-SHA256}0$AA$AA", b"x"),
            Err(SchemeError::Malformed(_))
        ));
        assert!(matches!(
            verify(b"{SCRAM-SHA-256}4096:AA==$AA==:AA==", b"x"),
            Err(SchemeError::Malformed(_))
        ));
        assert!(matches!(
            verify(b"{ARGON2}$argon2id$junk", b"x"),
            Err(SchemeError::Malformed(_))
        ));
    }
}
