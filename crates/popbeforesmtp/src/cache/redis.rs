//! The Redis store: several front ends share one view of recent POP logins.
//!
//! Each entry is one string key, written with
//! `SET <prefix><client> "<expires> <user>" EX <ttl>`: Redis drops the key
//! after the TTL, and the expiry second stored in the value keeps lookups
//! exact to the second against the caller's clock (Redis's own expiry runs
//! on the server's clock and is only the garbage collector). Lookups are
//! `GET`; [`PopAuthStore::lookup_many`] sends them as one pipeline. The
//! connection is a [`redis::aio::ConnectionManager`], which reconnects after
//! Redis restarts; every operation has a deadline, so an unreachable Redis
//! yields an error quickly and [`crate::AuthCache`] fails closed.
//!
//! A Redis Cluster ([`RedisStore::cluster_builder`], several URLs in
//! `local.redisurl`) stores the same keys; each key lives on the node of
//! its hash slot, so [`PopAuthStore::lookup_many`] sends one `GET` per key
//! there instead of one pipeline.

use std::fmt;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{
    Client, Cmd, IntoConnectionInfo, Pipeline, RedisError, RedisFuture, TlsCertificates, Value,
};

use super::{BoxFuture, PopAuthStore, StoredAuth, UserName};
use crate::Error;
use crate::key::ClientKey;
use crate::secret::Secret;
use crate::time::Timestamp;

/// The Redis [`PopAuthStore`].
pub struct RedisStore {
    conn: Conn,
    prefix: String,
    op_timeout: Duration,
}

/// One server (reconnecting manager) or a cluster (slot-routing connection).
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Conn {
    fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("cluster", &self.conn.is_cluster())
            .field("prefix", &self.prefix)
            .field("op_timeout", &self.op_timeout)
            .finish_non_exhaustive()
    }
}

/// Builder for [`RedisStore`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisStoreBuilder {
    url: String,
    cluster_nodes: Vec<String>,
    prefix: String,
    username: Option<String>,
    password: Option<Secret>,
    tls_root_pem: Option<Vec<u8>>,
    op_timeout: Duration,
    connect_timeout: Duration,
}

impl RedisStoreBuilder {
    /// Connect to `url` (`redis://host:port/db`, or `rediss://` for TLS).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            cluster_nodes: Vec::new(),
            prefix: "portcullis:popauth:".to_owned(),
            username: None,
            password: None,
            tls_root_pem: None,
            op_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(1),
        }
    }

    /// Prefix of every key (default `portcullis:popauth:`), so several
    /// deployments can share one Redis.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Authenticate with `AUTH [username] password` (overrides the URL's).
    pub fn auth(mut self, username: Option<&str>, password: Secret) -> Self {
        self.username = username.map(str::to_owned);
        self.password = Some(password);
        self
    }

    /// Trust these PEM roots for a `rediss://` URL instead of the system store.
    pub fn tls_roots_pem(mut self, pem: Vec<u8>) -> Self {
        self.tls_root_pem = Some(pem);
        self
    }

    /// Deadline of one operation, reconnection included (default 2 s).
    pub fn op_timeout(mut self, timeout: Duration) -> Self {
        self.op_timeout = timeout;
        self
    }

    /// Deadline of one connection attempt (default 1 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The store. It connects lazily: a Redis that is down now makes
    /// lookups fail (closed) until it is back. Call it inside a Tokio runtime.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] for a URL or TLS roots the client refuses.
    pub fn build(self) -> Result<RedisStore, Error> {
        let invalid = |e: RedisError| Error::InvalidSetting {
            name: "local.redisurl",
            reason: e.to_string(),
        };
        if !self.cluster_nodes.is_empty() {
            return self.build_cluster();
        }
        let mut info = self.url.as_str().into_connection_info().map_err(invalid)?;
        if let Some(pw) = &self.password {
            let mut settings = info.redis_settings().clone().set_password(pw.expose());
            if let Some(user) = &self.username {
                settings = settings.set_username(user);
            }
            info = info.set_redis_settings(settings);
        }
        let client = match self.tls_root_pem {
            Some(pem) => Client::build_with_tls(
                info,
                TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                },
            ),
            None => Client::open(info),
        }
        .map_err(invalid)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.op_timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(invalid)?;
        Ok(RedisStore {
            conn: Conn::Single(conn),
            prefix: self.prefix,
            op_timeout: self.op_timeout,
        })
    }

    fn build_cluster(self) -> Result<RedisStore, Error> {
        let invalid = |e: RedisError| Error::InvalidSetting {
            name: "local.redisurl",
            reason: e.to_string(),
        };
        let mut builder = ClusterClientBuilder::new(self.cluster_nodes.iter().map(String::as_str))
            .connection_timeout(self.connect_timeout)
            .response_timeout(self.op_timeout)
            .retries(1);
        if let Some(pw) = &self.password {
            builder = builder.password(pw.expose());
        }
        if let Some(user) = &self.username {
            builder = builder.username(user);
        }
        if let Some(pem) = self.tls_root_pem {
            builder = builder.certs(TlsCertificates {
                client_tls: None,
                root_cert: Some(pem),
            });
        }
        let client = builder.build().map_err(invalid)?;
        let config = ClusterConfig::new()
            .set_connection_timeout(self.connect_timeout)
            .set_response_timeout(self.op_timeout);
        // Connects in the background: a cluster that is down now makes
        // lookups fail (closed) until it is back.
        let conn = client.get_pending_async_connection_with_config(config);
        Ok(RedisStore {
            conn: Conn::Cluster(conn),
            prefix: self.prefix,
            op_timeout: self.op_timeout,
        })
    }
}

fn unavailable(e: &RedisError) -> Error {
    Error::CacheUnavailable(e.to_string())
}

impl RedisStore {
    /// A builder for `url`.
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder::new(url)
    }

    /// A builder for a Redis Cluster reached through `nodes` (URLs of some
    /// or all of its nodes; the others are discovered). One URL is a
    /// cluster too: use [`RedisStore::builder`] for a single server.
    pub fn cluster_builder(nodes: Vec<String>) -> RedisStoreBuilder {
        let mut b = RedisStoreBuilder::new(nodes.first().cloned().unwrap_or_default());
        b.cluster_nodes = nodes;
        b
    }

    fn redis_key(&self, key: ClientKey) -> String {
        format!("{}{key}", self.prefix)
    }

    async fn deadline<T>(
        &self,
        fut: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, Error> {
        match tokio::time::timeout(self.op_timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(unavailable(&e)),
            Err(_) => Err(Error::CacheUnavailable(
                "Redis operation timed out".to_owned(),
            )),
        }
    }
}

/// The value stored for an entry: `"<expires> <user>"`.
#[must_use]
pub fn encode_value(expires: Timestamp, user: &str) -> String {
    format!("{} {user}", expires.unix_secs())
}

/// `"<expires> <user>"` back to an entry, checked as a value written is:
/// the expiry plain decimal digits without leading zeros, the user a name
/// [`crate::AuthCache::record`] would have accepted (not empty, at most
/// [`super::MAX_USER_LEN`] bytes, no control characters). Anything else
/// was not written by this crate and authorizes nobody.
///
/// # Errors
/// [`Error::CacheCorrupt`] for anything [`encode_value`] does not produce.
pub fn decode_value(value: &str) -> Result<StoredAuth, Error> {
    let (expires, user) = value.split_once(' ').ok_or(Error::CacheCorrupt)?;
    let digits = !expires.is_empty() && expires.bytes().all(|b| b.is_ascii_digit());
    if !digits || (expires.len() > 1 && expires.starts_with('0')) {
        return Err(Error::CacheCorrupt);
    }
    let expires: u64 = expires.parse().map_err(|_| Error::CacheCorrupt)?;
    super::validate_user(user).map_err(|_| Error::CacheCorrupt)?;
    Ok(StoredAuth {
        user: UserName::from(user),
        expires: Timestamp::from_unix_secs(expires),
    })
}

fn live(value: Option<String>, now: Timestamp) -> Result<Option<StoredAuth>, Error> {
    match value {
        None => Ok(None),
        Some(v) => {
            let found = decode_value(&v)?;
            Ok((found.expires > now).then_some(found))
        }
    }
}

impl PopAuthStore for RedisStore {
    fn record<'a>(
        &'a self,
        key: ClientKey,
        user: &'a str,
        now: Timestamp,
        expires: Timestamp,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let ttl = expires.unix_secs().saturating_sub(now.unix_secs()).max(1);
            let value = encode_value(expires, user);
            let mut conn = self.conn.clone();
            let mut cmd = redis::cmd("SET");
            cmd.arg(self.redis_key(key)).arg(value).arg("EX").arg(ttl);
            self.deadline(cmd.query_async::<()>(&mut conn)).await
        })
    }

    fn lookup(
        &self,
        key: ClientKey,
        now: Timestamp,
    ) -> BoxFuture<'_, Result<Option<StoredAuth>, Error>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let mut cmd = redis::cmd("GET");
            cmd.arg(self.redis_key(key));
            let value: Option<String> = self.deadline(cmd.query_async(&mut conn)).await?;
            live(value, now)
        })
    }

    fn lookup_many<'a>(
        &'a self,
        keys: &'a [ClientKey],
        now: Timestamp,
    ) -> BoxFuture<'a, Result<Vec<Option<StoredAuth>>, Error>> {
        Box::pin(async move {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            if self.conn.is_cluster() {
                // Keys live on the nodes of their slots: one GET each.
                let mut out = Vec::with_capacity(keys.len());
                for key in keys {
                    out.push(self.lookup(*key, now).await?);
                }
                return Ok(out);
            }
            let mut pipe = redis::pipe();
            for key in keys {
                pipe.cmd("GET").arg(self.redis_key(*key));
            }
            let mut conn = self.conn.clone();
            let values: Vec<Option<String>> = self.deadline(pipe.query_async(&mut conn)).await?;
            values.into_iter().map(|v| live(v, now)).collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_values() {
        let decode = decode_value;
        let got = decode("1900 alice@example.com").expect("valid");
        assert_eq!(&*got.user, "alice@example.com");
        assert_eq!(got.expires, Timestamp::from_unix_secs(1900));
        assert_eq!(&*decode("5 a b").expect("valid").user, "a b");
        assert!(decode("alice").is_err());
        assert!(decode("x alice").is_err());
        assert!(decode("12 ").is_err());
        // Values nobody could have recorded are refused on the way back.
        assert!(decode("+12 alice").is_err());
        assert!(decode("12 ali\rce").is_err());
        assert!(decode("12 ali\u{7f}ce").is_err());
        assert!(decode(&format!("12 {}", "a".repeat(513))).is_err());
        assert!(decode(&format!("12 {}", "a".repeat(512))).is_ok());
        assert!(decode("99999999999999999999999 alice").is_err());
        assert!(decode("0012 alice").is_err());
        assert_eq!(
            decode(&encode_value(Timestamp::from_unix_secs(0), "a"))
                .ok()
                .map(|e| e.expires),
            Some(Timestamp::from_unix_secs(0))
        );
    }
}
