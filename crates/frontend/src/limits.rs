//! Connection limits: how many clients a daemon serves, how many from one
//! address, how long they may take to log in and stay idle, and how many
//! failed logins one connection may have.
//!
//! ```text
//! accept ──► ConnectionGate::admit()        mmp.maxclients, before any TLS work
//!              │ Permit (released on drop)
//!              ▼
//!          PROXY header (if from a trusted proxy)
//!              ▼
//!          Permit::bind_client(client)     mmp.connlimits, the most specific realm
//!              ▼
//!          TLS + login within mmp.preauthtimeout; AuthAttempts counts
//!          mmp.maxauthattempts; idle after login: mmp.timeout
//! ```
//!
//! A refusal is a [`Refusal`]; the protocol crate turns it into its own
//! reply (`* BYE`, `-ERR`, `421`) before closing.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use hashbrown::HashMap;
use ipnet::IpNet;
use portcullis_config::{Config, params};

use crate::Error;
use crate::net::{ClientKey, canonical};
use crate::proxy_protocol::seconds;

/// The least idle timeout an IMAP server may use after login: RFC 9051
/// §5.4 says at least 30 minutes.
pub const IMAP_MIN_IDLE: Duration = Duration::from_secs(30 * 60);

/// One `IP|MASK:NUM` realm of `mmp.connlimits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Realm {
    net: IpNet,
    max: u32,
}

impl Realm {
    /// The network the realm covers.
    #[must_use]
    pub fn network(&self) -> IpNet {
        self.net
    }

    /// The most connections one client of the realm may have.
    #[must_use]
    pub fn max(&self) -> u32 {
        self.max
    }
}

impl fmt::Display for Realm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}|{}:{}",
            self.net.network(),
            self.net.netmask(),
            self.max
        )
    }
}

/// The per-address limits of `mmp.connlimits`: `IP|MASK:NUM` realms,
/// comma-separated, for example `0.0.0.0|0.0.0.0:20,10.0.0.0|255.0.0.0:200`.
///
/// - `IP` is an IPv4 or IPv6 address (`0` alone is short for `0.0.0.0`);
///   bits outside the mask are ignored.
/// - `MASK` is a netmask of the same family (contiguous: `255.255.0.0`,
///   `ffff:ffff::`) or a prefix length (`16`, `/48`).
/// - `NUM` is the most connections one client of the realm may have at a
///   time (0 refuses the realm).
///
/// The realm with the longest mask that contains the client applies (so
/// `10.1.0.0|255.255.0.0:5` beats `10.0.0.0|255.0.0.0:200` for 10.1.2.3).
/// The zero IPv4 realm `0.0.0.0|0.0.0.0` is the default for every client,
/// IPv6 ones too unless an IPv6 realm contains them; without any matching
/// realm a client has no per-address limit. Clients are counted one IPv4
/// address, or one IPv6 /64, at a time (see [`ClientKey`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnLimits {
    realms: Vec<Realm>,
}

impl ConnLimits {
    /// No per-address limit.
    #[must_use]
    pub fn unlimited() -> Self {
        Self::default()
    }

    /// Parses the list's entries (each may itself hold comma-separated
    /// realms).
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] for `mmp.connlimits`, naming the realm and
    /// what is wrong with it.
    pub fn parse<S: AsRef<str>>(entries: impl IntoIterator<Item = S>) -> Result<Self, Error> {
        let mut realms: Vec<Realm> = Vec::new();
        for entry in entries {
            for text in entry
                .as_ref()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                let realm = parse_realm(text).map_err(|reason| Error::InvalidSetting {
                    name: "mmp.connlimits",
                    reason: format!("realm {text:?}: {reason}"),
                })?;
                if realms.iter().any(|r| r.net == realm.net) {
                    return Err(Error::InvalidSetting {
                        name: "mmp.connlimits",
                        reason: format!("realm {text:?}: the network is listed twice"),
                    });
                }
                realms.push(realm);
            }
        }
        Ok(Self { realms })
    }

    /// The realms, as listed.
    #[must_use]
    pub fn realms(&self) -> &[Realm] {
        &self.realms
    }

    /// The realm that applies to `client`, if any.
    #[must_use]
    pub fn realm_for(&self, client: IpAddr) -> Option<&Realm> {
        let client = canonical(client);
        let same_family = self
            .realms
            .iter()
            .filter(|r| r.net.contains(&client))
            .max_by_key(|r| r.net.prefix_len());
        same_family.or_else(|| {
            // The IPv4 default realm is everyone's default.
            self.realms
                .iter()
                .find(|r| matches!(r.net, IpNet::V4(n) if n.prefix_len() == 0))
        })
    }

    /// The most connections `client` may have, `None` for no limit.
    #[must_use]
    pub fn limit_for(&self, client: IpAddr) -> Option<u32> {
        self.realm_for(client).map(Realm::max)
    }
}

impl FromStr for ConnLimits {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse([s])
    }
}

fn parse_realm(text: &str) -> Result<Realm, String> {
    let (net, num) = text
        .rsplit_once(':')
        .ok_or("expected IP|MASK:NUM (no ':NUM')")?;
    let (ip, mask) = net
        .split_once('|')
        .ok_or("expected IP|MASK:NUM (no '|' between address and mask)")?;
    let max = parse_decimal(num.trim()).ok_or_else(|| format!("{num:?} is not a count"))?;
    let ip = match ip.trim() {
        "0" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        other => other
            .parse::<IpAddr>()
            .map_err(|_| format!("{other:?} is not an IPv4 or IPv6 address"))?,
    };
    let prefix = parse_mask(mask.trim(), ip)?;
    let net = IpNet::new(ip, prefix)
        .map_err(|_| format!("prefix length {prefix} is too long for {ip}"))?
        .trunc();
    Ok(Realm { net, max })
}

/// A decimal number without sign.
fn parse_decimal<T: FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_mask(mask: &str, ip: IpAddr) -> Result<u8, String> {
    let bits = if ip.is_ipv4() { 32 } else { 128 };
    if let Some(len) = parse_decimal::<u8>(mask.strip_prefix('/').unwrap_or(mask)) {
        if mask.contains('.') || len > bits {
            return Err(format!("prefix length {len} is above {bits}"));
        }
        return Ok(len);
    }
    let value = match (mask.parse::<IpAddr>(), ip) {
        (Ok(IpAddr::V4(m)), IpAddr::V4(_)) => u128::from(u32::from(m)) << 96,
        (Ok(IpAddr::V6(m)), IpAddr::V6(_)) => u128::from(m),
        (Ok(_), _) => return Err(format!("mask {mask:?} is not of the address's family")),
        (Err(_), _) => return Err(format!("{mask:?} is not a netmask or a prefix length")),
    };
    let ones = value.leading_ones();
    if value.checked_shl(ones).unwrap_or(0) != 0 {
        return Err(format!("mask {mask:?} is not contiguous"));
    }
    u8::try_from(ones).map_err(|_| format!("mask {mask:?} is too long"))
}

/// Why a connection is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The daemon serves `mmp.maxclients` connections already.
    ServerFull {
        /// The limit.
        max: usize,
    },
    /// This client has as many connections as its realm of
    /// `mmp.connlimits` allows.
    AddressFull {
        /// The client, as counted.
        client: ClientKey,
        /// The realm's limit.
        max: u32,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ServerFull { max } => write!(f, "server full ({max} connections)"),
            Self::AddressFull { client, max } => {
                write!(f, "too many connections from {client} (limit {max})")
            }
        }
    }
}

const SHARDS: usize = 16;

#[derive(Debug)]
struct GateInner {
    max_clients: AtomicUsize,
    active: AtomicUsize,
    limits: RwLock<ConnLimits>,
    shards: [Mutex<HashMap<ClientKey, u32>>; SHARDS],
}

impl GateInner {
    fn shard(&self, key: ClientKey) -> &Mutex<HashMap<ClientKey, u32>> {
        let h = match key {
            ClientKey::V4(v4) => u64::from(u32::from(v4)),
            ClientKey::V6(hi) => hi ^ (hi >> 29),
        };
        let h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 60;
        // `h` is below 16 after the shift.
        &self.shards[usize::try_from(h).unwrap_or(0) % SHARDS]
    }
}

/// Hands out connection permits: one global count (`mmp.maxclients`) kept
/// in an atomic, per-client counts (`mmp.connlimits`) in sharded maps. Clone
/// it freely; clones share the counts. [`ConnectionGate::set_limits`]
/// changes the limits (a configuration reload) and keeps the counts.
#[derive(Debug, Clone)]
pub struct ConnectionGate {
    inner: Arc<GateInner>,
}

impl ConnectionGate {
    /// A gate for at most `max_clients` connections, `limits` per client.
    #[must_use]
    pub fn new(max_clients: usize, limits: ConnLimits) -> Self {
        Self {
            inner: Arc::new(GateInner {
                max_clients: AtomicUsize::new(max_clients),
                active: AtomicUsize::new(0),
                limits: RwLock::new(limits),
                shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
            }),
        }
    }

    /// Takes a global slot for a new connection: call it right after
    /// accept, before any TLS work.
    ///
    /// # Errors
    /// [`Refusal::ServerFull`].
    pub fn admit(&self) -> Result<Permit, Refusal> {
        let max = self.inner.max_clients.load(Ordering::Acquire);
        let taken = self
            .inner
            .active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            });
        match taken {
            Ok(_) => Ok(Permit {
                gate: Arc::clone(&self.inner),
                client: None,
            }),
            Err(_) => {
                tracing::warn!(max, "connection refused: mmp.maxclients reached");
                Err(Refusal::ServerFull { max })
            }
        }
    }

    /// [`Self::admit`] and [`Permit::bind_client`] in one, when the client
    /// address is known at accept (no PROXY protocol).
    ///
    /// # Errors
    /// Either refusal.
    pub fn try_admit(&self, client: IpAddr) -> Result<Permit, Refusal> {
        let mut permit = self.admit()?;
        permit.bind_client(client)?;
        Ok(permit)
    }

    /// Applies new limits to the connections admitted from now on; those
    /// already admitted stay counted (a lower limit refuses newcomers until
    /// enough of them have gone).
    pub fn set_limits(&self, max_clients: usize, limits: ConnLimits) {
        self.inner.max_clients.store(max_clients, Ordering::Release);
        *self
            .inner
            .limits
            .write()
            .unwrap_or_else(PoisonError::into_inner) = limits;
    }

    /// Connections holding a permit now.
    #[must_use]
    pub fn active(&self) -> usize {
        self.inner.active.load(Ordering::Acquire)
    }

    /// Connections counted for `client` now.
    #[must_use]
    pub fn active_for(&self, client: IpAddr) -> u32 {
        let key = ClientKey::of(client);
        let map = self
            .inner
            .shard(key)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        map.get(&key).copied().unwrap_or(0)
    }
}

/// A connection's admission: it holds a global slot and, once bound, a
/// slot of its client. Dropping it releases both.
#[derive(Debug)]
#[must_use = "the connection is admitted only while the permit lives"]
pub struct Permit {
    gate: Arc<GateInner>,
    client: Option<ClientKey>,
}

impl Permit {
    /// Counts the connection for `client` (the address from the PROXY
    /// header when there is one). Binding a second time moves the count.
    ///
    /// # Errors
    /// [`Refusal::AddressFull`]: answer with the protocol's refusal and drop
    /// the permit.
    pub fn bind_client(&mut self, client: IpAddr) -> Result<(), Refusal> {
        self.unbind();
        // Counted even without a limit, so a reload that sets one finds
        // the connections already open.
        let max = self
            .gate
            .limits
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .limit_for(client)
            .unwrap_or(u32::MAX);
        let key = ClientKey::of(client);
        let mut map = self
            .gate
            .shard(key)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let count = map.entry(key).or_insert(0);
        if *count >= max {
            if *count == 0 {
                map.remove(&key);
            }
            drop(map);
            tracing::warn!(%client, max, "connection refused: mmp.connlimits reached");
            return Err(Refusal::AddressFull { client: key, max });
        }
        *count += 1;
        self.client = Some(key);
        Ok(())
    }

    fn unbind(&mut self) {
        let Some(key) = self.client.take() else {
            return;
        };
        let mut map = self
            .gate
            .shard(key)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = map.get_mut(&key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                map.remove(&key);
            }
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.unbind();
        self.gate.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Counts failed logins on one connection (`mmp.maxauthattempts`).
#[derive(Debug, Clone)]
pub struct AuthAttempts {
    max: u32,
    failures: u32,
}

impl AuthAttempts {
    /// Allow `max` failures.
    #[must_use]
    pub fn new(max: u32) -> Self {
        Self { max, failures: 0 }
    }

    /// Records a failure; `true` while the client may try again, `false`
    /// when the connection must be closed (with the protocol's reply).
    pub fn record_failure(&mut self) -> bool {
        self.failures = self.failures.saturating_add(1);
        self.failures < self.max
    }

    /// Failures so far.
    #[must_use]
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// Every limit of the multiplexor, read from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// `mmp.maxclients`.
    pub max_clients: usize,
    /// `mmp.connlimits`.
    pub conn_limits: ConnLimits,
    /// `mmp.preauthtimeout`: connection to successful login, TLS handshake
    /// included.
    pub preauth_timeout: Duration,
    /// `mmp.timeout`: idle time allowed after login.
    pub idle_timeout: Duration,
    /// `mmp.maxauthattempts`.
    pub max_auth_attempts: u32,
}

impl Limits {
    /// From `mmp.maxclients`, `mmp.connlimits`, `mmp.preauthtimeout`,
    /// `mmp.timeout` and `mmp.maxauthattempts`.
    ///
    /// # Errors
    /// [`Error::Config`], or [`Error::InvalidSetting`] for a bad
    /// `mmp.connlimits`.
    pub fn from_config(config: &Config) -> Result<Self, Error> {
        let max_clients = config.get(params::MMP_MAXCLIENTS)?;
        let attempts = config.get(params::MMP_MAXAUTHATTEMPTS)?;
        Ok(Self {
            max_clients: usize::try_from(max_clients).map_err(|_| Error::InvalidSetting {
                name: "mmp.maxclients",
                reason: format!("{max_clients} is out of range"),
            })?,
            conn_limits: ConnLimits::parse(config.get(params::MMP_CONNLIMITS)?)?,
            preauth_timeout: seconds(config.get(params::MMP_PREAUTHTIMEOUT)?),
            idle_timeout: seconds(config.get(params::MMP_TIMEOUT)?),
            max_auth_attempts: u32::try_from(attempts).map_err(|_| Error::InvalidSetting {
                name: "mmp.maxauthattempts",
                reason: format!("{attempts} is out of range"),
            })?,
        })
    }

    /// A gate enforcing `max_clients` and `conn_limits`.
    #[must_use]
    pub fn gate(&self) -> ConnectionGate {
        ConnectionGate::new(self.max_clients, self.conn_limits.clone())
    }

    /// Applies `max_clients` and `conn_limits` to an existing gate (a
    /// reload), keeping its counts.
    pub fn apply_to(&self, gate: &ConnectionGate) {
        gate.set_limits(self.max_clients, self.conn_limits.clone());
    }

    /// A fresh failed-login counter for one connection.
    #[must_use]
    pub fn auth_attempts(&self) -> AuthAttempts {
        AuthAttempts::new(self.max_auth_attempts)
    }

    /// The idle timeout for IMAP: `idle_timeout`, raised to 30 minutes
    /// when set lower (RFC 9051 §5.4).
    #[must_use]
    pub fn imap_idle_timeout(&self) -> Duration {
        if self.idle_timeout < IMAP_MIN_IDLE {
            tracing::warn!(
                configured = ?self.idle_timeout,
                "mmp.timeout is below the 30 minutes IMAP requires; using 30 minutes"
            );
            IMAP_MIN_IDLE
        } else {
            self.idle_timeout
        }
    }
}
