//! Failed-login penalties: a client address that keeps failing to log in
//! waits longer and longer before each failure reply.
//!
//! Modelled on Dovecot's anvil penalty:
//!
//! - counted per client address, IPv6 by /64 ([`ClientKey`]);
//! - the first failure costs `mmp.authfailuredelay` (2 s), each further one
//!   doubles it, up to `mmp.authfailuremaxdelay` (15 s): 2, 4, 8, 15, 15 …;
//! - trying the same user and password again (a client with a stale saved
//!   password) does not raise it: only a keyed hash of the pair is kept
//!   (HMAC-SHA-256 with `mmp.authfailuresecret`, or a random key of the
//!   process), never the password;
//! - `mmp.trustednetworks` are exempt;
//! - a successful login does **not** reset the count, as in Dovecot before
//!   2.3: a client that owns one account must not be able to wipe its
//!   address's penalty between guesses at others. Counts expire instead,
//!   [`DEFAULT_EXPIRY`] after the address's last failure;
//! - [`Penalty::wait`] is a Tokio sleep: it holds no worker thread and
//!   delays no other client.
//!
//! The counts live in memory (bounded, entries expire) or, with
//! `local.redisurl`, in Redis, shared by every front end (keys expire
//! there too). When Redis cannot be reached the process counts in memory
//! until it is back, so an outage never lifts the penalty entirely.
//!
//! A configuration reload builds a new `Penalty` with
//! [`PenaltyBuilder::keep_counts_of`] the old one: delays and exempt
//! networks change, the counts (and the process's random hash key) stay,
//! unless `local.redisurl` itself changed.

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hashbrown::HashMap;
use hmac::{Hmac, KeyInit, Mac};
use portcullis_config::{Config, params};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisError};
use sha2::Sha256;
use tokio::time::Instant;
use zeroize::Zeroizing;

use crate::Error;
use crate::net::{ClientKey, NetworkList};
use crate::proxy_protocol::seconds;

/// How long an address's count lives after its last failure.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(60 * 60);
/// Addresses the in-memory store keeps at most.
pub const DEFAULT_CAPACITY: usize = 100_000;
/// Prefix of the Redis keys.
pub const DEFAULT_KEY_PREFIX: &str = "portcullis:penalty:";

/// The hash of one user+password pair: 16 bytes of HMAC-SHA-256.
type Fingerprint = [u8; 16];

/// The penalty of one address, for the memory store.
#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: Fingerprint,
    expires: Instant,
}

/// Counts in this process: at most `capacity` addresses.
#[derive(Debug)]
struct MemoryStore {
    capacity: usize,
    inner: Mutex<MemoryInner>,
}

#[derive(Debug)]
struct MemoryInner {
    map: HashMap<ClientKey, Entry>,
    last_purge: Instant,
}

impl MemoryStore {
    fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::new(MemoryInner {
                map: HashMap::new(),
                last_purge: Instant::now(),
            }),
        }
    }

    fn failures(&self, key: ClientKey) -> u32 {
        let now = Instant::now();
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner
            .map
            .get(&key)
            .filter(|e| e.expires > now)
            .map_or(0, |e| e.failures)
    }

    fn record(&self, key: ClientKey, fp: Fingerprint, expiry: Duration) -> u32 {
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if !inner.map.contains_key(&key) && inner.map.len() >= self.capacity {
            Self::make_room(&mut inner, now, self.capacity);
        }
        let entry = inner.map.entry(key).or_insert(Entry {
            failures: 0,
            last: [0; 16],
            expires: now,
        });
        if entry.expires <= now {
            entry.failures = 0;
        }
        if entry.failures == 0 || entry.last != fp {
            entry.failures = entry.failures.saturating_add(1);
            entry.last = fp;
        }
        entry.expires = now + expiry;
        entry.failures
    }

    /// Drops expired entries (at most once a second: the scan is linear),
    /// else one arbitrary entry, so a flood of addresses cannot grow the map.
    fn make_room(inner: &mut MemoryInner, now: Instant, capacity: usize) {
        if now.duration_since(inner.last_purge) >= Duration::from_secs(1) {
            inner.last_purge = now;
            inner.map.retain(|_, e| e.expires > now);
        }
        if inner.map.len() >= capacity
            && let Some(key) = inner.map.keys().next().copied()
        {
            inner.map.remove(&key);
        }
    }

    fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map
            .len()
    }
}

/// Counts in Redis: `<prefix><client>:n` (failures, `INCR`) and
/// `<prefix><client>:h` (last fingerprint, `SET … GET`), both with `EX`.
struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    op_timeout: Duration,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("op_timeout", &self.op_timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A lazily connecting store, as `portcullis-popbeforesmtp` does it: a
    /// [`ConnectionManager`] that reconnects after Redis restarts.
    fn connect(url: &str, prefix: String) -> Result<Self, Error> {
        let invalid = |e: RedisError| Error::InvalidSetting {
            name: "local.redisurl",
            reason: e.to_string(),
        };
        let client = Client::open(url).map_err(invalid)?;
        let op_timeout = Duration::from_secs(2);
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(op_timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(invalid)?;
        Ok(Self {
            conn,
            prefix,
            op_timeout,
        })
    }

    async fn deadline<T>(
        &self,
        fut: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, Error> {
        match tokio::time::timeout(self.op_timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Error::StoreUnavailable(e.to_string())),
            Err(_) => Err(Error::StoreUnavailable(
                "Redis operation timed out".to_owned(),
            )),
        }
    }

    async fn failures(&self, key: ClientKey) -> Result<u32, Error> {
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("GET");
        cmd.arg(format!("{}{key}:n", self.prefix));
        let n: Option<u32> = self.deadline(cmd.query_async(&mut conn)).await?;
        Ok(n.unwrap_or(0))
    }

    async fn record(
        &self,
        key: ClientKey,
        fp: Fingerprint,
        expiry: Duration,
    ) -> Result<u32, Error> {
        let ttl = expiry.as_secs().max(1);
        let (n_key, h_key) = (
            format!("{}{key}:n", self.prefix),
            format!("{}{key}:h", self.prefix),
        );
        let fp = hex(&fp);
        let mut conn = self.conn.clone();
        // SET … GET swaps the fingerprint atomically: of two front ends
        // recording the same pair at once, only one sees a change.
        let mut swap = redis::cmd("SET");
        swap.arg(&h_key).arg(&fp).arg("GET").arg("EX").arg(ttl);
        let previous: Option<String> = self.deadline(swap.query_async(&mut conn)).await?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        if previous.as_deref() == Some(fp.as_str()) {
            pipe.cmd("SET")
                .arg(&n_key)
                .arg(1)
                .arg("NX")
                .arg("EX")
                .arg(ttl)
                .ignore();
            pipe.cmd("EXPIRE").arg(&n_key).arg(ttl).ignore();
            pipe.cmd("GET").arg(&n_key);
        } else {
            pipe.cmd("INCR").arg(&n_key);
            pipe.cmd("EXPIRE").arg(&n_key).arg(ttl).ignore();
        }
        let (n,): (u32,) = self.deadline(pipe.query_async(&mut conn)).await?;
        Ok(n)
    }
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[derive(Debug)]
enum Store {
    Memory(MemoryStore),
    Redis {
        redis: RedisStore,
        /// Counts while Redis is unreachable.
        fallback: MemoryStore,
    },
}

/// The key of the user+password hash; zeroized when dropped.
struct HashKey(Zeroizing<Vec<u8>>);

impl fmt::Debug for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HashKey(..)")
    }
}

impl HashKey {
    fn fingerprint(&self, user: &str, password: &[u8]) -> Fingerprint {
        // Any key length is accepted by HMAC, so this never fails.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(&u64::try_from(user.len()).unwrap_or(u64::MAX).to_be_bytes());
        mac.update(user.as_bytes());
        mac.update(password);
        let full = mac.finalize().into_bytes();
        let mut fp = [0u8; 16];
        fp.copy_from_slice(&full[..16]);
        fp
    }
}

/// Builder for [`Penalty`].
#[derive(Debug)]
#[must_use]
pub struct PenaltyBuilder {
    base: Duration,
    max: Duration,
    expiry: Duration,
    capacity: usize,
    trusted: NetworkList,
    secret: Option<Zeroizing<Vec<u8>>>,
    redis_url: Option<String>,
    key_prefix: String,
    previous: Option<Carried>,
}

/// What a rebuilt [`Penalty`] takes over from the one it replaces.
#[derive(Debug)]
struct Carried {
    store: Arc<Store>,
    redis_url: Option<String>,
    random_key: Option<Arc<HashKey>>,
}

impl Default for PenaltyBuilder {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(2),
            max: Duration::from_secs(15),
            expiry: DEFAULT_EXPIRY,
            capacity: DEFAULT_CAPACITY,
            trusted: NetworkList::default(),
            secret: None,
            redis_url: None,
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            previous: None,
        }
    }
}

impl PenaltyBuilder {
    /// The delay after the first failure (default 2 s; zero turns the
    /// penalty off).
    pub fn base_delay(mut self, delay: Duration) -> Self {
        self.base = delay;
        self
    }

    /// The longest delay (default 15 s).
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max = delay;
        self
    }

    /// How long a count lives after the address's last failure (default
    /// one hour).
    pub fn expiry(mut self, expiry: Duration) -> Self {
        self.expiry = expiry;
        self
    }

    /// Addresses the memory store keeps at most (default 100 000).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Exempt networks.
    pub fn trusted(mut self, networks: NetworkList) -> Self {
        self.trusted = networks;
        self
    }

    /// The key of the user+password hash; share it between front ends that
    /// share Redis (default: random, per process).
    pub fn secret(mut self, secret: &[u8]) -> Self {
        self.secret = Some(Zeroizing::new(secret.to_vec()));
        self
    }

    /// Count in Redis at `url` (`redis://…`, `rediss://…`).
    pub fn redis(mut self, url: impl Into<String>) -> Self {
        self.redis_url = Some(url.into());
        self
    }

    /// Prefix of the Redis keys (default `portcullis:penalty:`).
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Takes over `previous`'s counts (a configuration reload): its store
    /// when the Redis URL is the same (both unset included), and its
    /// random hash key when no secret is configured, so a repeated pair is
    /// still recognised.
    pub fn keep_counts_of(mut self, previous: &Penalty) -> Self {
        self.previous = Some(Carried {
            store: Arc::clone(&previous.store),
            redis_url: previous.redis_url.clone(),
            random_key: previous.random_key.then(|| Arc::clone(&previous.key)),
        });
        self
    }

    /// The penalty. With Redis it connects lazily: call it inside a Tokio
    /// runtime.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] for a Redis URL the client refuses, or when
    /// no random key can be drawn.
    pub fn build(self) -> Result<Penalty, Error> {
        let previous = self.previous;
        let (key, random_key) = match self.secret {
            Some(secret) if !secret.is_empty() => (Arc::new(HashKey(secret)), false),
            _ => match previous.as_ref().and_then(|p| p.random_key.clone()) {
                Some(key) => (key, true),
                None => {
                    let mut key = Zeroizing::new(vec![0u8; 32]);
                    getrandom::fill(&mut key).map_err(|e| Error::InvalidSetting {
                        name: "mmp.authfailuresecret",
                        reason: format!("no random key available: {e}"),
                    })?;
                    (Arc::new(HashKey(key)), true)
                }
            },
        };
        let redis_url = self.redis_url.filter(|u| !u.is_empty());
        let store = match previous {
            Some(p) if p.redis_url == redis_url => p.store,
            other => {
                if other.is_some() {
                    tracing::warn!("local.redisurl changed: failed-login counts start afresh");
                }
                let memory = MemoryStore::new(self.capacity);
                Arc::new(match &redis_url {
                    Some(url) => Store::Redis {
                        redis: RedisStore::connect(url, self.key_prefix)?,
                        fallback: memory,
                    },
                    None => Store::Memory(memory),
                })
            }
        };
        Ok(Penalty {
            store,
            redis_url,
            trusted: self.trusted,
            base: self.base,
            max: self.max.max(self.base),
            expiry: self.expiry.max(Duration::from_secs(1)),
            key,
            random_key,
        })
    }
}

/// Failed-login penalties (see the [module docs](self)).
#[derive(Debug)]
pub struct Penalty {
    store: Arc<Store>,
    redis_url: Option<String>,
    trusted: NetworkList,
    base: Duration,
    max: Duration,
    expiry: Duration,
    key: Arc<HashKey>,
    random_key: bool,
}

impl Penalty {
    /// A builder with the defaults (2 s doubling to 15 s, in memory).
    pub fn builder() -> PenaltyBuilder {
        PenaltyBuilder::default()
    }

    /// From `mmp.authfailuredelay`, `mmp.authfailuremaxdelay`,
    /// `mmp.trustednetworks`, `mmp.authfailuresecret` and `local.redisurl`.
    /// With a Redis URL, call it inside a Tokio runtime.
    ///
    /// # Errors
    /// [`Error::Config`], or [`Error::InvalidSetting`] for a bad network
    /// list or Redis URL.
    pub fn from_config(config: &Config) -> Result<Self, Error> {
        Self::builder_from_config(config)?.build()
    }

    /// [`Penalty::from_config`] for a configuration reload: the counts
    /// of `previous` carry over (see [`PenaltyBuilder::keep_counts_of`]).
    ///
    /// # Errors
    /// As [`Penalty::from_config`].
    pub fn from_config_after(config: &Config, previous: &Penalty) -> Result<Self, Error> {
        Self::builder_from_config(config)?
            .keep_counts_of(previous)
            .build()
    }

    fn builder_from_config(config: &Config) -> Result<PenaltyBuilder, Error> {
        let trusted = NetworkList::parse(
            "mmp.trustednetworks",
            config.get(params::MMP_TRUSTEDNETWORKS)?,
        )?;
        let secret = Zeroizing::new(config.get(params::MMP_AUTHFAILURESECRET)?);
        let builder = Self::builder()
            .base_delay(seconds(config.get(params::MMP_AUTHFAILUREDELAY)?))
            .max_delay(seconds(config.get(params::MMP_AUTHFAILUREMAXDELAY)?))
            .trusted(trusted)
            .secret(secret.as_bytes())
            .redis(config.get(params::LOCAL_REDISURL)?);
        Ok(builder)
    }

    /// Whether `addr` is in `mmp.trustednetworks`.
    #[must_use]
    pub fn is_exempt(&self, addr: IpAddr) -> bool {
        self.trusted.contains(addr)
    }

    /// The delay after `failures` failures: none, then the base doubling
    /// up to the maximum.
    #[must_use]
    pub fn delay_after(&self, failures: u32) -> Duration {
        if failures == 0 || self.base.is_zero() {
            return Duration::ZERO;
        }
        let factor = 1u32.checked_shl(failures - 1).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// How long to wait before telling `addr` its login failed.
    pub async fn delay_for(&self, addr: IpAddr) -> Duration {
        if self.is_exempt(addr) {
            return Duration::ZERO;
        }
        let key = ClientKey::of(addr);
        let failures = match self.store.as_ref() {
            Store::Memory(m) => m.failures(key),
            Store::Redis { redis, fallback } => match redis.failures(key).await {
                Ok(n) => n.max(fallback.failures(key)),
                Err(e) => {
                    tracing::warn!(error = %e, "penalty store unreachable; counting in memory");
                    fallback.failures(key)
                }
            },
        };
        self.delay_after(failures)
    }

    /// Records a failed login of `user` with `password` from `addr`;
    /// returns the delay now due. The same pair as the address's previous
    /// failure does not raise it.
    pub async fn record_failure(&self, addr: IpAddr, user: &str, password: &[u8]) -> Duration {
        if self.is_exempt(addr) {
            return Duration::ZERO;
        }
        let key = ClientKey::of(addr);
        let fp = self.key.fingerprint(user, password);
        let failures = match self.store.as_ref() {
            Store::Memory(m) => m.record(key, fp, self.expiry),
            Store::Redis { redis, fallback } => match redis.record(key, fp, self.expiry).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "penalty store unreachable; counting in memory");
                    fallback.record(key, fp, self.expiry)
                }
            },
        };
        let delay = self.delay_after(failures);
        tracing::info!(client = %key, failures, ?delay, "failed login penalised");
        delay
    }

    /// Records a successful login from `addr`. It does not reset the
    /// address's count (see the [module docs](self)); it is logged.
    pub async fn record_success(&self, addr: IpAddr) {
        if !self.is_exempt(addr) {
            tracing::debug!(client = %ClientKey::of(addr), "login succeeded; penalty kept until it expires");
        }
    }

    /// Waits out `addr`'s delay: call it before sending a failure reply.
    /// A Tokio sleep, so other connections are not held up.
    pub async fn wait(&self, addr: IpAddr) {
        let delay = self.delay_for(addr).await;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }

    /// Addresses the memory store holds now (with Redis: those counted
    /// while it was unreachable).
    #[must_use]
    pub fn local_entries(&self) -> usize {
        match self.store.as_ref() {
            Store::Memory(m) | Store::Redis { fallback: m, .. } => m.len(),
        }
    }
}
