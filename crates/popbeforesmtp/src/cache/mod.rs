//! The recent-POP-login cache: which client addresses logged in over POP
//! within `AuthServiceTTL` seconds, and as whom.
//!
//! [`AuthCache`] is what front ends use: it normalises addresses
//! ([`AddressGrouping`]), computes expiry, emits audit events and turns
//! backend failures into a closed door. The storage sits behind the
//! [`PopAuthStore`] trait: [`MemoryStore`] for one process, [`RedisStore`]
//! for several front ends sharing one view.

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Error;
use crate::key::{AddressGrouping, ClientKey};
use crate::time::Timestamp;

pub mod memory;
pub mod redis;
mod user;

pub use memory::{MemoryStore, MemoryStoreBuilder};
pub use redis::{RedisStore, RedisStoreBuilder};
pub use user::UserName;

/// The tracing target of audit events (one per record, one per successful use).
pub const AUDIT_TARGET: &str = "portcullis::audit";

/// Longest user name the cache records, in bytes.
pub const MAX_USER_LEN: usize = 512;

/// A boxed future, as the object-safe [`PopAuthStore`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a store holds for one client key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAuth {
    /// The user who logged in over POP.
    pub user: UserName,
    /// The first second at which the entry no longer counts.
    pub expires: Timestamp,
}

/// A storage backend for the cache.
///
/// Implementations keep entries at least until `expires` and must never
/// report an entry whose `expires <= now` as present.
pub trait PopAuthStore: fmt::Debug + Send + Sync {
    /// Remember that `key` logged in as `user`, valid until `expires`
    /// (exclusive). A later record for the same key replaces the earlier one.
    fn record<'a>(
        &'a self,
        key: ClientKey,
        user: &'a str,
        now: Timestamp,
        expires: Timestamp,
    ) -> BoxFuture<'a, Result<(), Error>>;

    /// The live entry for `key` at `now`, if any.
    fn lookup(
        &self,
        key: ClientKey,
        now: Timestamp,
    ) -> BoxFuture<'_, Result<Option<StoredAuth>, Error>>;

    /// Several lookups at once (Redis sends them as one pipeline).
    fn lookup_many<'a>(
        &'a self,
        keys: &'a [ClientKey],
        now: Timestamp,
    ) -> BoxFuture<'a, Result<Vec<Option<StoredAuth>>, Error>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                out.push(self.lookup(*key, now).await?);
            }
            Ok(out)
        })
    }

    /// Remove up to `budget` expired entries; returns how many were removed.
    /// Stores whose entries expire by themselves (Redis) do nothing.
    fn sweep(&self, _now: Timestamp, _budget: usize) -> usize {
        0
    }
}

/// The answer to "may this address relay because of a recent POP login?".
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lookup {
    /// The address logged in over POP within the TTL.
    Authorize(Authorization),
    /// No live POP login for this address.
    Deny,
    /// The backend could not be asked. Treat as [`Lookup::Deny`] (fail
    /// closed); the client can still use SMTP AUTH.
    Unavailable,
}

impl Lookup {
    /// The authorization, if any (`Unavailable` gives none: fail closed).
    #[must_use]
    pub fn authorization(&self) -> Option<&Authorization> {
        match self {
            Self::Authorize(a) => Some(a),
            _ => None,
        }
    }
}

/// Proof of a recent POP login, handed to the relay as XCLIENT `LOGIN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// Who logged in.
    pub user: UserName,
    /// The first second at which the authorization lapses.
    pub expires: Timestamp,
}

/// Settings of the cache itself (the backend has its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheSettings {
    /// `AuthServiceTTL`: seconds a POP login authorizes relaying (default 900).
    pub ttl_secs: u32,
    /// How IPv6 clients are grouped (default /64).
    pub grouping: AddressGrouping,
    /// Backend failures are logged at most once per this many seconds (default 60).
    pub failure_log_interval_secs: u32,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            ttl_secs: 900,
            grouping: AddressGrouping::default(),
            failure_log_interval_secs: 60,
        }
    }
}

impl CacheSettings {
    /// Settings with the given TTL and the other defaults.
    #[must_use]
    pub fn with_ttl(ttl_secs: u32) -> Self {
        Self {
            ttl_secs,
            ..Self::default()
        }
    }
}

/// The POP-before-SMTP authorization cache.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use portcullis_popbeforesmtp::{AuthCache, CacheSettings, Lookup, MemoryStore, Timestamp};
/// let cache = AuthCache::new(MemoryStore::builder().build(), CacheSettings::with_ttl(900));
/// let t0 = Timestamp::from_unix_secs(1_000_000);
/// let ip = "192.0.2.10".parse().unwrap();
/// cache.record(ip, "alice", t0).await.unwrap();
/// assert!(cache.lookup(ip, t0.plus_secs(899)).await.authorization().is_some());
/// assert_eq!(cache.lookup(ip, t0.plus_secs(900)).await, Lookup::Deny);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct AuthCache {
    store: Arc<dyn PopAuthStore>,
    settings: CacheSettings,
    last_failure_log: Arc<AtomicU64>,
}

impl AuthCache {
    /// A cache over `store`.
    pub fn new(store: impl PopAuthStore + 'static, settings: CacheSettings) -> Self {
        Self::from_arc(Arc::new(store), settings)
    }

    /// A cache over a shared store.
    #[must_use]
    pub fn from_arc(store: Arc<dyn PopAuthStore>, settings: CacheSettings) -> Self {
        Self {
            store,
            settings,
            last_failure_log: Arc::new(AtomicU64::new(u64::MAX)),
        }
    }

    /// The settings in force.
    #[must_use]
    pub fn settings(&self) -> CacheSettings {
        self.settings
    }

    /// The backend.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn PopAuthStore> {
        &self.store
    }

    /// The key `ip` is filed under.
    #[must_use]
    pub fn key(&self, ip: IpAddr) -> ClientKey {
        self.settings.grouping.key(ip)
    }

    /// Record a successful POP login of `user` from `client_ip` at `now`.
    /// The authorization holds for `now .. now + ttl` (the last valid second
    /// is `now + ttl - 1`).
    ///
    /// # Errors
    /// [`Error::InvalidUser`] for an empty, over-long or control-character
    /// name; [`Error::CacheUnavailable`] when the backend cannot be reached
    /// (logged at most once per interval).
    pub async fn record(&self, client_ip: IpAddr, user: &str, now: Timestamp) -> Result<(), Error> {
        validate_user(user)?;
        let key = self.key(client_ip);
        let expires = now.plus_secs(u64::from(self.settings.ttl_secs));
        match self.store.record(key, user, now, expires).await {
            Ok(()) => {
                tracing::info!(
                    target: AUDIT_TARGET,
                    event = "popbeforesmtp.record",
                    user,
                    client = %client_ip,
                    key = %key,
                    at = now.unix_secs(),
                    expires = expires.unix_secs(),
                    "POP login recorded for relay authorization"
                );
                Ok(())
            }
            Err(e) => {
                self.log_failure(now, &e);
                Err(e)
            }
        }
    }

    /// Whether `client_ip` logged in over POP within the TTL, as of `now`.
    /// Backend failures give [`Lookup::Unavailable`] (fail closed).
    pub async fn lookup(&self, client_ip: IpAddr, now: Timestamp) -> Lookup {
        let key = self.key(client_ip);
        match self.store.lookup(key, now).await {
            Ok(Some(found)) if found.expires > now => {
                self.audit_use(client_ip, key, &found, now);
                Lookup::Authorize(Authorization {
                    user: found.user,
                    expires: found.expires,
                })
            }
            Ok(_) => Lookup::Deny,
            Err(e) => {
                self.log_failure(now, &e);
                Lookup::Unavailable
            }
        }
    }

    /// Lookups for several addresses in one backend round trip.
    pub async fn lookup_many(&self, client_ips: &[IpAddr], now: Timestamp) -> Vec<Lookup> {
        let keys: Vec<ClientKey> = client_ips.iter().map(|ip| self.key(*ip)).collect();
        match self.store.lookup_many(&keys, now).await {
            Ok(found) => found
                .into_iter()
                .zip(client_ips.iter().zip(keys.iter()))
                .map(|(f, (ip, key))| match f {
                    Some(f) if f.expires > now => {
                        self.audit_use(*ip, *key, &f, now);
                        Lookup::Authorize(Authorization {
                            user: f.user,
                            expires: f.expires,
                        })
                    }
                    _ => Lookup::Deny,
                })
                .collect(),
            Err(e) => {
                self.log_failure(now, &e);
                vec![Lookup::Unavailable; client_ips.len()]
            }
        }
    }

    /// Remove up to `budget` expired entries (a no-op for Redis). Call it
    /// from a periodic task; each call locks one shard at a time.
    pub fn sweep(&self, now: Timestamp, budget: usize) -> usize {
        self.store.sweep(now, budget)
    }

    fn audit_use(&self, client_ip: IpAddr, key: ClientKey, found: &StoredAuth, now: Timestamp) {
        tracing::info!(
            target: AUDIT_TARGET,
            event = "popbeforesmtp.use",
            user = found.user.as_str(),
            client = %client_ip,
            key = %key,
            at = now.unix_secs(),
            expires = found.expires.unix_secs(),
            "relay authorized by recent POP login"
        );
    }

    /// Log a backend failure unless one was logged less than the interval ago.
    fn log_failure(&self, now: Timestamp, error: &Error) {
        let now_s = now.unix_secs();
        let interval = u64::from(self.settings.failure_log_interval_secs);
        let last = self.last_failure_log.load(Ordering::Relaxed);
        let due = last == u64::MAX || now_s >= last.saturating_add(interval) || now_s < last;
        if due
            && self
                .last_failure_log
                .compare_exchange(last, now_s, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::error!(
                error = %error,
                "POP-before-SMTP cache backend failed; relay authorization by POP login is refused until it recovers"
            );
        }
    }
}

pub(crate) fn validate_user(user: &str) -> Result<(), Error> {
    if user.is_empty() || user.len() > MAX_USER_LEN || user.chars().any(char::is_control) {
        return Err(Error::InvalidUser);
    }
    Ok(())
}
