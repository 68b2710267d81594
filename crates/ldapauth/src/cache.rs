//! Optional positive/negative login cache with a TTL.
//!
//! Keys are HMAC-SHA-256 over the login and password under a random
//! per-process key, so the cache never holds a password or a hash an
//! attacker could test guesses against offline without that key.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::{Error, User};

/// Entries kept at most; past that, expired entries are dropped, then all.
const MAX_ENTRIES: usize = 100_000;

type Key = [u8; 32];
type Slot = (Instant, Result<User, Error>);

pub(crate) struct Cache {
    key: zeroize::Zeroizing<[u8; 32]>,
    ttl: Duration,
    map: Mutex<HashMap<Key, Slot>>,
}

impl Cache {
    pub(crate) fn new(ttl: Duration) -> Result<Self, Error> {
        let mut key = zeroize::Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut *key)
            .map_err(|_| Error::Config("no randomness for the cache key".into()))?;
        Ok(Self {
            key,
            ttl,
            map: Mutex::new(HashMap::new()),
        })
    }

    pub(crate) fn key(&self, login: &str, password: &str) -> Key {
        // HMAC accepts keys of any length: this cannot fail.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&*self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(&(login.len() as u64).to_be_bytes());
        mac.update(login.as_bytes());
        mac.update(password.as_bytes());
        mac.finalize().into_bytes().into()
    }

    pub(crate) fn get(&self, key: &Key) -> Option<Result<User, Error>> {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        match map.get(key) {
            Some((expires, v)) if Instant::now() < *expires => Some(v.clone()),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    pub(crate) fn put(&self, key: Key, value: Result<User, Error>) {
        // Only final answers are cached: never a temporary failure.
        if matches!(&value, Err(e) if !matches!(e, Error::Rejected(_))) {
            return;
        }
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, (t, _)| *t > now);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert(key, (now + self.ttl, value));
    }
}
