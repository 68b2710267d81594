//! Stored SCRAM secrets (RFC 5803) and their derivation for provisioning.

use std::fmt;
use std::str::FromStr;

use crate::secret::SecretBytes;
use crate::util::{b64_decode, b64_encode, hash, hi, hmac, random_bytes, saslprep};
use crate::{Error, Password, ScramAlgorithm};

/// The smallest iteration count accepted for a *new* secret (RFC 7677 §4
/// recommends at least 4096).
pub const MIN_ITERATIONS: u32 = 4096;

/// Salt length used by [`ScramSecret::generate`].
pub const SALT_LEN: usize = 16;

/// A user's stored SCRAM keys: what the server keeps instead of the password.
///
/// Written and parsed in the RFC 5803 form
/// `SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>`:
///
/// ```text
/// authPassword = scheme "$" iter ":" salt "$" stored-key ":" server-key
/// ```
///
/// Verifying a login from a `ScramSecret` costs a few HMACs and one hash; the
/// expensive PBKDF2 runs only in [`ScramSecret::derive`], at provisioning
/// time. `Debug` redacts the keys; they are zeroized on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramSecret {
    algorithm: ScramAlgorithm,
    iterations: u32,
    salt: Vec<u8>,
    stored_key: SecretBytes,
    server_key: SecretBytes,
}

impl fmt::Debug for ScramSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramSecret")
            .field("algorithm", &self.algorithm)
            .field("iterations", &self.iterations)
            .field("salt_len", &self.salt.len())
            .field("keys", &"<redacted>")
            .finish()
    }
}

impl ScramSecret {
    /// Assembles a secret from its parts (e.g. read from a directory).
    ///
    /// # Errors
    ///
    /// [`Error::ScramSecret`] when the keys do not have the hash's length, the
    /// salt is empty or the iteration count is zero. Counts below
    /// [`MIN_ITERATIONS`] are accepted here (existing secrets keep working).
    pub fn new(
        algorithm: ScramAlgorithm,
        iterations: u32,
        salt: Vec<u8>,
        stored_key: Vec<u8>,
        server_key: Vec<u8>,
    ) -> Result<Self, Error> {
        if iterations == 0 {
            return Err(Error::ScramSecret("iteration count is zero"));
        }
        if salt.is_empty() {
            return Err(Error::ScramSecret("empty salt"));
        }
        if stored_key.len() != algorithm.output_len() || server_key.len() != algorithm.output_len()
        {
            return Err(Error::ScramSecret("key length does not match the hash"));
        }
        Ok(Self {
            algorithm,
            iterations,
            salt,
            stored_key: SecretBytes(stored_key),
            server_key: SecretBytes(server_key),
        })
    }

    /// Derives the stored keys from a password (provisioning, password
    /// change). The password is SASLprep-normalised first (RFC 5802 §2.2).
    ///
    /// # Errors
    ///
    /// [`Error::ScramSecret`] if `iterations` < [`MIN_ITERATIONS`] or the salt
    /// is empty; [`Error::Saslprep`] if the password is not a valid SASLprep
    /// string.
    pub fn derive(
        algorithm: ScramAlgorithm,
        password: &Password,
        salt: &[u8],
        iterations: u32,
    ) -> Result<Self, Error> {
        if iterations < MIN_ITERATIONS {
            return Err(Error::ScramSecret("iteration count below 4096"));
        }
        Self::derive_unchecked(algorithm, password, salt, iterations)
    }

    /// Like [`ScramSecret::derive`] with a fresh random salt of
    /// [`SALT_LEN`] bytes.
    ///
    /// # Errors
    ///
    /// As [`ScramSecret::derive`], plus [`Error::Random`].
    pub fn generate(
        algorithm: ScramAlgorithm,
        password: &Password,
        iterations: u32,
    ) -> Result<Self, Error> {
        let salt = random_bytes(SALT_LEN)?;
        Self::derive(algorithm, password, &salt, iterations)
    }

    /// Derivation without the iteration floor (test vectors use 4096, but
    /// the client side must follow whatever count the server sends).
    pub(crate) fn derive_unchecked(
        algorithm: ScramAlgorithm,
        password: &Password,
        salt: &[u8],
        iterations: u32,
    ) -> Result<Self, Error> {
        if salt.is_empty() {
            return Err(Error::ScramSecret("empty salt"));
        }
        if iterations == 0 {
            return Err(Error::ScramSecret("iteration count is zero"));
        }
        let normalized = zeroize::Zeroizing::new(saslprep(password.expose())?);
        let salted = hi(algorithm, normalized.as_bytes(), salt, iterations);
        let (stored_key, server_key) = keys_from_salted(algorithm, &salted);
        Ok(Self {
            algorithm,
            iterations,
            salt: salt.to_vec(),
            stored_key: SecretBytes(stored_key),
            server_key: SecretBytes(server_key),
        })
    }

    /// Parses the RFC 5803 form (whitespace around `$` is allowed, as in
    /// RFC 3112 `authPassword` values).
    ///
    /// # Errors
    ///
    /// [`Error::ScramSecret`] on any syntax error, unknown scheme, bad base64
    /// or wrong key length.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let mut parts = s.trim().split('$').map(str::trim);
        let (Some(scheme), Some(info), Some(value), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::ScramSecret(
                "expected scheme$iterations:salt$storedkey:serverkey",
            ));
        };
        let algorithm = match scheme.to_ascii_uppercase().as_str() {
            "SCRAM-SHA-1" => ScramAlgorithm::Sha1,
            "SCRAM-SHA-256" => ScramAlgorithm::Sha256,
            _ => return Err(Error::ScramSecret("unknown scheme")),
        };
        let (iter, salt) = info
            .split_once(':')
            .ok_or(Error::ScramSecret("missing ':' in iterations:salt"))?;
        if iter.is_empty() || !iter.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::ScramSecret("bad iteration count"));
        }
        let iterations: u32 = iter
            .parse()
            .map_err(|_| Error::ScramSecret("bad iteration count"))?;
        let (stored, server) = value
            .split_once(':')
            .ok_or(Error::ScramSecret("missing ':' in storedkey:serverkey"))?;
        let bad = |_| Error::ScramSecret("bad base64");
        Self::new(
            algorithm,
            iterations,
            b64_decode(salt.as_bytes()).map_err(bad)?,
            b64_decode(stored.as_bytes()).map_err(bad)?,
            b64_decode(server.as_bytes()).map_err(bad)?,
        )
    }

    /// The RFC 5803 form. Contains no password, but the keys allow
    /// impersonating the *server*: store it like a password hash.
    pub fn to_rfc5803(&self) -> String {
        format!(
            "{}${}:{}${}:{}",
            self.algorithm.name(),
            self.iterations,
            b64_encode(&self.salt),
            b64_encode(&self.stored_key.0),
            b64_encode(&self.server_key.0)
        )
    }

    /// The hash algorithm.
    pub fn algorithm(&self) -> ScramAlgorithm {
        self.algorithm
    }

    /// The PBKDF2 iteration count.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// The salt.
    pub fn salt(&self) -> &[u8] {
        &self.salt
    }

    /// StoredKey = H(HMAC(SaltedPassword, "Client Key")).
    pub fn stored_key(&self) -> &[u8] {
        &self.stored_key.0
    }

    /// ServerKey = HMAC(SaltedPassword, "Server Key").
    pub fn server_key(&self) -> &[u8] {
        &self.server_key.0
    }
}

impl FromStr for ScramSecret {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

/// StoredKey and ServerKey from SaltedPassword.
pub(crate) fn keys_from_salted(algorithm: ScramAlgorithm, salted: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let client_key = zeroize::Zeroizing::new(hmac(algorithm, salted, &[b"Client Key"]));
    let stored_key = hash(algorithm, &client_key);
    let server_key = hmac(algorithm, salted, &[b"Server Key"]);
    (stored_key, server_key)
}
