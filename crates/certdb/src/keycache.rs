//! Decrypted internal keys shared between identity loads.
//!
//! Decrypting a database key costs one scrypt run (at the default cost
//! about half a second and 128 MiB). A server process that loads the same
//! nickname for several services, and again on every reload, hands one
//! [`KeyCache`] to [`crate::CertDb::load_identity_cached`]: each encrypted
//! key file is then decrypted once, and again only when the file or the
//! password changes.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::password::Password;
use crate::signer::SoftwareSigner;

/// Decrypted keys by the SHA-256 of their encrypted file (as the index
/// names it), each with the password that opened it.
#[derive(Default)]
pub struct KeyCache {
    keys: Mutex<HashMap<String, (Password, Arc<SoftwareSigner>)>>,
    decryptions: AtomicU64,
}

impl fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyCache")
            .field("keys", &self.lock().len())
            .field("decryptions", &self.decryptions())
            .finish()
    }
}

impl KeyCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many keys were decrypted through this cache (cache misses).
    pub fn decryptions(&self) -> u64 {
        self.decryptions.load(Ordering::SeqCst)
    }

    /// How many decrypted keys the cache holds.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the cache holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, (Password, Arc<SoftwareSigner>)>> {
        // Entries are inserted whole, so a poisoned map is still consistent.
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn get(
        &self,
        file_sha256: &str,
        password: &Password,
    ) -> Option<Arc<SoftwareSigner>> {
        self.lock()
            .get(file_sha256)
            .filter(|(pw, _)| pw.ct_eq(password))
            .map(|(_, s)| Arc::clone(s))
    }

    pub(crate) fn insert(
        &self,
        file_sha256: &str,
        password: &Password,
        signer: Arc<SoftwareSigner>,
    ) {
        self.decryptions.fetch_add(1, Ordering::SeqCst);
        self.lock()
            .insert(file_sha256.to_owned(), (password.clone(), signer));
    }

    /// Drops the keys whose file is not among `files` (SHA-256 hex of the
    /// encrypted key files still in use).
    pub(crate) fn retain(&self, files: &[&str]) {
        self.lock().retain(|k, _| files.contains(&k.as_str()));
    }
}
