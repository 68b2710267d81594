//! What SCRAM answers for a user who does not exist: a made-up salt and
//! keys, derived from a server secret, so the exchange looks and costs the
//! same as for a real user with a wrong password.
//!
//! The secret should persist (a file in the server's state directory) and
//! be shared by every front end of a site: the made-up salt of a name is
//! then the same across restarts and machines, as a real user's salt is.
//! Without one, a random secret per process is used, which a client that
//! sees two front ends, or one restart, could tell from a real salt.

use std::io::Write as _;
use std::path::Path;

use zeroize::Zeroizing;

use crate::util::{hmac, random_bytes};
use crate::{Error, MIN_ITERATIONS, SALT_LEN, ScramAlgorithm, ScramSecret};

/// The length of the secret, in bytes.
pub const UNKNOWN_USER_SECRET_LEN: usize = 32;

/// The server secret behind the made-up SCRAM answers for unknown users,
/// and the iteration count they announce (set it to the directory's usual
/// count, so unknown users do not stand out by it).
#[derive(Clone)]
pub struct UnknownUserSecret {
    key: Zeroizing<Vec<u8>>,
    iterations: u32,
}

impl std::fmt::Debug for UnknownUserSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnknownUserSecret")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl UnknownUserSecret {
    /// A secret from its bytes.
    ///
    /// # Errors
    /// [`Error::ScramSecret`] when the key is shorter than
    /// [`UNKNOWN_USER_SECRET_LEN`] or `iterations` is below
    /// [`MIN_ITERATIONS`].
    pub fn new(key: &[u8], iterations: u32) -> Result<Self, Error> {
        if key.len() < UNKNOWN_USER_SECRET_LEN {
            return Err(Error::ScramSecret(
                "unknown-user secret shorter than 32 bytes",
            ));
        }
        if iterations < MIN_ITERATIONS {
            return Err(Error::ScramSecret("iteration count below 4096"));
        }
        Ok(Self {
            key: Zeroizing::new(key.to_vec()),
            iterations,
        })
    }

    /// A fresh random secret (for one process, or to be saved).
    ///
    /// # Errors
    /// [`Error::Random`], or as [`UnknownUserSecret::new`].
    pub fn random(iterations: u32) -> Result<Self, Error> {
        let key = Zeroizing::new(random_bytes(UNKNOWN_USER_SECRET_LEN)?);
        Self::new(&key, iterations)
    }

    /// Reads the secret from `path` (base64, one line), or, when the file does
    /// not exist, makes one and writes it there (mode 0600, written to a
    /// temporary file and renamed, so a crash never leaves half a secret).
    ///
    /// # Errors
    /// [`Error::Policy`] naming the file when it cannot be read, holds
    /// something else than a base64 secret, or cannot be written.
    pub fn load_or_create(path: &Path, iterations: u32) -> Result<Self, Error> {
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            Error::Policy(format!("{}: {what}: {e}", path.display()))
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let key = crate::util::b64_decode_secret(text.trim().as_bytes())
                    .map_err(|_| fail("not a base64 secret", &"bad content"))?;
                Self::new(&key, iterations)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let secret = Self::random(iterations)?;
                let tmp = path.with_extension("tmp");
                let mut open = std::fs::OpenOptions::new();
                open.write(true).create(true).truncate(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt as _;
                    open.mode(0o600);
                }
                let mut file = open.open(&tmp).map_err(|e| fail("cannot write", &e))?;
                let text = Zeroizing::new(crate::util::b64_encode(&secret.key));
                file.write_all(text.as_bytes())
                    .and_then(|()| file.write_all(b"\n"))
                    .and_then(|()| file.sync_all())
                    .map_err(|e| fail("cannot write", &e))?;
                std::fs::rename(&tmp, path).map_err(|e| fail("cannot write", &e))?;
                Ok(secret)
            }
            Err(e) => Err(fail("cannot read", &e)),
        }
    }

    /// The secret the configuration names: `sasl.default.scram.unknownusersecret`
    /// (a file, relative to `config_dir`), or `scram-unknown-user.secret` in
    /// `local.statedir` (relative to `config_dir`; `config_dir` itself when
    /// unset), made there on first start; announced with
    /// `sasl.default.scram.iterations` (4096 when unset). `get` returns a
    /// parameter's value as text, e.g. `|name| config.string(name).ok()`.
    ///
    /// # Errors
    /// [`Error::Policy`] for a count that is not a number, or as
    /// [`UnknownUserSecret::load_or_create`].
    pub fn from_parameters(
        get: impl Fn(&str) -> Option<String>,
        config_dir: &Path,
    ) -> Result<Self, Error> {
        let value = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let iterations = match value("sasl.default.scram.iterations") {
            Some(v) => v.trim().parse::<u32>().map_err(|_| {
                Error::Policy("sasl.default.scram.iterations: not a number".to_owned())
            })?,
            None => MIN_ITERATIONS,
        };
        let path = match value("sasl.default.scram.unknownusersecret") {
            Some(file) => config_dir.join(file.trim()),
            None => {
                let state = value("local.statedir")
                    .map_or_else(|| config_dir.to_path_buf(), |d| config_dir.join(d.trim()));
                state.join("scram-unknown-user.secret")
            }
        };
        Self::load_or_create(&path, iterations)
    }

    /// The iteration count announced for unknown users.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// The made-up secret of `user`: salt and keys derived from the server
    /// secret and the name, the same every time.
    pub(crate) fn decoy(&self, alg: ScramAlgorithm, user: &str) -> Result<ScramSecret, Error> {
        // One HMAC: the salt and the keys are cut from it. The keys only
        // ever fail the proof, so the server key may equal the stored key;
        // what matters is that the work at the proof is a real user's.
        let out = Zeroizing::new(hmac(
            ScramAlgorithm::Sha256,
            &self.key,
            &[alg.name().as_bytes(), b"\0", user.as_bytes()],
        ));
        let key = out[..alg.output_len()].to_vec();
        ScramSecret::new(
            alg,
            self.iterations,
            out[..SALT_LEN].to_vec(),
            key.clone(),
            key,
        )
    }
}

/// The per-process secret used when the server set none.
pub(crate) fn process_secret() -> Result<&'static UnknownUserSecret, Error> {
    static SECRET: std::sync::OnceLock<UnknownUserSecret> = std::sync::OnceLock::new();
    if let Some(s) = SECRET.get() {
        return Ok(s);
    }
    let fresh = UnknownUserSecret::random(MIN_ITERATIONS)?;
    Ok(SECRET.get_or_init(|| fresh))
}
