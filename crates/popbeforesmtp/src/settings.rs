//! The one configuration reader: registry parameters in, typed settings,
//! the cache and the relay pool out.
//!
//! [`Settings::from_parameters`] is the only place configuration
//! parameters become POP-before-SMTP settings; [`Settings::auth_cache`]
//! and [`Settings::relay_pool`] build from what it read.
//!
//! | Parameter | Field | Default |
//! |---|---|---|
//! | `mmp.preauth` | [`Settings::pre_auth`] | `false` |
//! | `mmp.authservicettl` | [`Settings::auth_service_ttl`] | `900` (seconds) |
//! | `mmp.smtprelays` | [`Settings::smtp_relays`] | none (needed for a relay pool) |
//! | `mmp.smtpproxypassword` | refused when set (see below) | empty |
//! | `mmp.ehlokeywords` | [`Settings::ehlo_keywords`] | empty |
//! | `mmp.popbeforesmtpkludgechannel` | [`Settings::pop_before_smtp_kludge_channel`] | empty |
//! | `mmp.clientlookup` | [`Settings::client_lookup`] | `false` |
//! | `mmp.failovertimeout` | [`Settings::failover_timeout`] | `10` (seconds; skip = minutes) |
//! | `mmp.ipv6prefix` | [`Settings::ipv6_prefix`] | `64` |
//! | `mmp.authcachemaxentries` | [`Settings::cache_max_entries`] | `1000000` |
//! | `mmp.relayhandoff` | [`Settings::relay_handoff`] | `xclient` |
//! | `mmp.relaytls` | [`Settings::relay_tls`] | `maytls` |
//! | `local.redisurl` | [`Settings::redis_urls`] | empty: in memory |
//!
//! Refused at load, with the reason:
//!
//! * `mmp.smtpproxypassword` set: XCLIENT and PROXY relays authorize the
//!   proxy by its address (Postfix `smtpd_authorized_xclient_hosts`), so
//!   there is nothing to send the password in; accepting it would suggest
//!   a protection that does not exist.
//! * `mmp.preauth` with `mmp.relayhandoff` `proxy-v1`/`proxy-v2`: a PROXY
//!   header cannot carry the POP-before-SMTP user.

use std::sync::Arc;

use rustls::ClientConfig;

use crate::Error;
use crate::cache::{AuthCache, CacheSettings, MemoryStore, RedisStore};
use crate::key::AddressGrouping;
use crate::relay::{
    EhloFilter, Handoff, RelayAddr, RelayPool, RelaySpec, SystemResolver, TlsPolicy, parse_relays,
};

/// Every registry parameter [`Settings::from_parameters`] reads.
pub const PARAMETERS: [&str; 13] = [
    "mmp.preauth",
    "mmp.authservicettl",
    "mmp.smtprelays",
    "mmp.smtpproxypassword",
    "mmp.ehlokeywords",
    "mmp.popbeforesmtpkludgechannel",
    "mmp.clientlookup",
    "mmp.failovertimeout",
    "mmp.ipv6prefix",
    "mmp.authcachemaxentries",
    "mmp.relayhandoff",
    "mmp.relaytls",
    "local.redisurl",
];

/// POP-before-SMTP and SMTP relay settings, as read from the parameters.
///
/// ```
/// use portcullis_popbeforesmtp::Settings;
/// let params = [
///     ("mmp.smtprelays", "manatee:485 gonzo mothra"),
///     ("mmp.preauth", "true"),
///     ("mmp.ehlokeywords", "TURN"),
/// ];
/// let get = |name: &str| params.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string());
/// let s = Settings::from_parameters(get).unwrap();
/// assert_eq!(s.smtp_relays.len(), 3);
/// assert_eq!(s.smtp_relays[0].port(), 485);
/// assert!(s.ehlo_filter().allows("turn"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Settings {
    /// `mmp.preauth`: record successful POP logins; relays must take the user.
    pub pre_auth: bool,
    /// `mmp.authservicettl`: seconds a POP login authorizes relaying.
    pub auth_service_ttl: u32,
    /// `mmp.smtprelays`: relays used round robin.
    pub smtp_relays: Vec<RelayAddr>,
    /// `mmp.ehlokeywords`: extra EHLO keywords passed through to clients.
    pub ehlo_keywords: Vec<String>,
    /// `mmp.popbeforesmtpkludgechannel`: the chapter's relay switched
    /// POP-authorized clients to this MTA channel; here XCLIENT `LOGIN`
    /// carries the user, and each such hand-off is logged with the channel.
    pub pop_before_smtp_kludge_channel: Option<String>,
    /// `mmp.clientlookup`: reverse-resolve clients (forward-confirmed) and
    /// pass the name as `NAME`.
    pub client_lookup: bool,
    /// `mmp.failovertimeout`: seconds per relay attempt; a failed relay is
    /// skipped for this many minutes.
    pub failover_timeout: u32,
    /// `mmp.ipv6prefix`: IPv6 clients grouped by this prefix length.
    pub ipv6_prefix: u8,
    /// `mmp.authcachemaxentries`: bound of the in-memory cache.
    pub cache_max_entries: usize,
    /// `mmp.relayhandoff`: how clients are handed to relays.
    pub relay_handoff: Handoff,
    /// `mmp.relaytls`: STARTTLS towards relays.
    pub relay_tls: TlsPolicy,
    /// `local.redisurl`: no URL keeps the cache in memory, one is a Redis
    /// server, several are the nodes of a Redis Cluster.
    pub redis_urls: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            pre_auth: false,
            auth_service_ttl: 900,
            smtp_relays: Vec::new(),
            ehlo_keywords: Vec::new(),
            pop_before_smtp_kludge_channel: None,
            client_lookup: false,
            failover_timeout: 10,
            ipv6_prefix: 64,
            cache_max_entries: 1_000_000,
            relay_handoff: Handoff::Xclient,
            relay_tls: TlsPolicy::May,
            redis_urls: Vec::new(),
        }
    }
}

fn invalid(name: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidSetting {
        name,
        reason: reason.into(),
    }
}

/// `true`/`false`, `yes`/`no`, `1`/`0`, `on`/`off`.
fn parse_bool(name: &'static str, value: &str) -> Result<bool, Error> {
    match value.trim().to_ascii_lowercase().as_str() {
        "yes" | "1" | "true" | "on" => Ok(true),
        "no" | "0" | "false" | "off" => Ok(false),
        _ => Err(invalid(name, format!("{value:?} is not true or false"))),
    }
}

fn parse_num<T: std::str::FromStr>(name: &'static str, value: &str) -> Result<T, Error> {
    value
        .trim()
        .parse()
        .map_err(|_| invalid(name, format!("{value:?} is not a number in range")))
}

impl Settings {
    /// Reads [`PARAMETERS`] through `get`, which returns a parameter's
    /// value as text, or `None` (or an empty string) when it is unset: for
    /// example `|name| config.string(name).ok()` over the Portcullis
    /// configuration file. Unset parameters keep their defaults.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] naming the parameter with a bad value, a
    /// set `mmp.smtpproxypassword`, or `mmp.preauth` with a PROXY hand-off.
    pub fn from_parameters(get: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let value = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let mut s = Self::default();
        if let Some(v) = value("mmp.preauth") {
            s.pre_auth = parse_bool("mmp.preauth", &v)?;
        }
        if let Some(v) = value("mmp.authservicettl") {
            s.auth_service_ttl = parse_num("mmp.authservicettl", &v)?;
            if s.auth_service_ttl == 0 {
                return Err(invalid("mmp.authservicettl", "must be at least 1 second"));
            }
        }
        if let Some(v) = value("mmp.smtprelays") {
            s.smtp_relays = parse_relays(&v)?;
        }
        if value("mmp.smtpproxypassword").is_some() {
            return Err(invalid(
                "mmp.smtpproxypassword",
                "not used: XCLIENT and PROXY protocol relays authorize the proxy by its \
                 address (Postfix: smtpd_authorized_xclient_hosts), so there is nothing to \
                 send a password in; remove it and list the proxy's address at the relays",
            ));
        }
        if let Some(v) = value("mmp.ehlokeywords") {
            s.ehlo_keywords = v
                .split([' ', ',', '\t'])
                .filter(|k| !k.is_empty())
                .map(str::to_ascii_uppercase)
                .collect();
        }
        s.pop_before_smtp_kludge_channel =
            value("mmp.popbeforesmtpkludgechannel").map(|v| v.trim().to_owned());
        if let Some(v) = value("mmp.clientlookup") {
            s.client_lookup = parse_bool("mmp.clientlookup", &v)?;
        }
        if let Some(v) = value("mmp.failovertimeout") {
            s.failover_timeout = parse_num("mmp.failovertimeout", &v)?;
            if s.failover_timeout == 0 {
                return Err(invalid("mmp.failovertimeout", "must be at least 1 second"));
            }
        }
        if let Some(v) = value("mmp.ipv6prefix") {
            s.ipv6_prefix = parse_num("mmp.ipv6prefix", &v)?;
            AddressGrouping::ipv6_prefix(s.ipv6_prefix)?;
        }
        if let Some(v) = value("mmp.authcachemaxentries") {
            s.cache_max_entries = parse_num("mmp.authcachemaxentries", &v)?;
            if s.cache_max_entries == 0 || s.cache_max_entries > MAX_CACHE_ENTRIES {
                return Err(invalid(
                    "mmp.authcachemaxentries",
                    format!("must be in 1..={MAX_CACHE_ENTRIES}"),
                ));
            }
        }
        if let Some(v) = value("mmp.relayhandoff") {
            s.relay_handoff = v.trim().parse()?;
        }
        if let Some(v) = value("mmp.relaytls") {
            s.relay_tls = v.trim().parse()?;
        }
        if let Some(v) = value("local.redisurl") {
            s.redis_urls = v
                .split([' ', ',', '\t', '\n'])
                .filter(|u| !u.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if s.pre_auth && s.relay_handoff != Handoff::Xclient {
            return Err(invalid(
                "mmp.relayhandoff",
                "a PROXY protocol header cannot carry the POP-before-SMTP user (mmp.preauth \
                 is on): POP-authorized clients would silently lose their authorization; \
                 use xclient",
            ));
        }
        Ok(s)
    }

    /// The cache settings these options describe.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] for a bad IPv6 prefix.
    pub fn cache_settings(&self) -> Result<CacheSettings, Error> {
        let mut s = CacheSettings::with_ttl(self.auth_service_ttl);
        s.grouping = AddressGrouping::ipv6_prefix(self.ipv6_prefix)?;
        Ok(s)
    }

    /// The POP-before-SMTP cache, or `None` when `mmp.preauth` is off: in
    /// memory (bounded by `mmp.authcachemaxentries`) without
    /// `local.redisurl`, else in Redis (a Redis Cluster for several URLs).
    /// Call it inside a Tokio runtime; Redis is connected lazily.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] for a bad IPv6 prefix or Redis URL.
    pub fn auth_cache(&self) -> Result<Option<AuthCache>, Error> {
        if !self.pre_auth {
            return Ok(None);
        }
        let settings = self.cache_settings()?;
        let cache = match self.redis_urls.as_slice() {
            [] => AuthCache::new(
                MemoryStore::builder()
                    .max_entries(self.cache_max_entries)
                    .build(),
                settings,
            ),
            [url] => AuthCache::new(RedisStore::builder(url).build()?, settings),
            nodes => AuthCache::new(
                RedisStore::cluster_builder(nodes.to_vec()).build()?,
                settings,
            ),
        };
        Ok(Some(cache))
    }

    /// The EHLO filter (default set plus `mmp.ehlokeywords`).
    #[must_use]
    pub fn ehlo_filter(&self) -> EhloFilter {
        EhloFilter::new(&self.ehlo_keywords)
    }

    /// Each relay with the configured hand-off and TLS policy.
    #[must_use]
    pub fn relay_specs(&self) -> Vec<RelaySpec> {
        self.smtp_relays
            .iter()
            .map(|a| RelaySpec::new(a.clone(), self.relay_handoff, self.relay_tls))
            .collect()
    }

    /// The relay pool: `mmp.smtprelays` with the configured hand-off and
    /// TLS, `mmp.failovertimeout`, `mmp.clientlookup` (the system
    /// resolver), logins required under `mmp.preauth`, and the kludge
    /// channel logged. `tls` holds the trusted roots for `maytls` and
    /// `musttls`; without it, `maytls` encrypts unverified (Postfix's
    /// "may") and `musttls` is refused.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] without relays, or `musttls` without `tls`.
    pub fn relay_pool(&self, tls: Option<Arc<ClientConfig>>) -> Result<RelayPool, Error> {
        if self.smtp_relays.is_empty() {
            return Err(invalid("mmp.smtprelays", "no relay listed"));
        }
        let tls = match (tls, self.relay_tls) {
            (Some(t), _) => Some(t),
            (None, TlsPolicy::Must) => {
                return Err(invalid(
                    "mmp.relaytls",
                    "musttls needs the CA certificates that sign the relays' certificates",
                ));
            }
            (None, TlsPolicy::May) => Some(no_roots()?),
            (None, _) => None,
        };
        let mut builder = RelayPool::builder(self.relay_specs())
            .failover_timeout_secs(self.failover_timeout)
            .pop_before_smtp(self.pre_auth)
            .kludge_channel(self.pop_before_smtp_kludge_channel.clone());
        if let Some(tls) = tls {
            builder = builder.tls_config(tls);
        }
        if self.client_lookup {
            builder = builder.client_lookup(Arc::new(SystemResolver::default()));
        }
        builder.build()
    }
}

/// Largest `mmp.authcachemaxentries` (the memory store's own limit).
pub const MAX_CACHE_ENTRIES: usize = (u32::MAX / 2) as usize;

/// A client configuration that trusts nothing: under `maytls` every relay
/// certificate fails verification, so sessions are encrypted unverified.
fn no_roots() -> Result<Arc<ClientConfig>, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("mmp.relaytls", e.to_string()))?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(params: &[(&str, &str)]) -> Result<Settings, Error> {
        Settings::from_parameters(|name| {
            assert!(PARAMETERS.contains(&name), "{name} read but not listed");
            params
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn chapter_examples() {
        let s = read(&[
            ("mmp.smtprelays", "manatee:485 gonzo mothra"),
            ("mmp.ehlokeywords", "TURN"),
            ("mmp.popbeforesmtpkludgechannel", "tcp_intranet"),
            ("mmp.clientlookup", "yes"),
            ("mmp.preauth", "true"),
            ("mmp.authservicettl", "900"),
            ("mmp.failovertimeout", "10"),
        ])
        .expect("valid");
        assert_eq!(
            s.smtp_relays,
            vec![
                RelayAddr::new("manatee", 485),
                RelayAddr::new("gonzo", 25),
                RelayAddr::new("mothra", 25)
            ]
        );
        assert_eq!(s.ehlo_keywords, vec!["TURN"]);
        assert_eq!(
            s.pop_before_smtp_kludge_channel.as_deref(),
            Some("tcp_intranet")
        );
        assert!(s.client_lookup && s.pre_auth);
        assert_eq!(s.cache_settings().expect("valid").ttl_secs, 900);
        assert_eq!(s.relay_tls, TlsPolicy::May);
        assert!(s.redis_urls.is_empty());
    }

    #[test]
    fn everything_parsed_is_used_or_refused() {
        // The proxy password has nowhere to go: refused, with the reason.
        let e = read(&[("mmp.smtpproxypassword", "A_Password")]).expect_err("refused");
        match e {
            Error::InvalidSetting { name, reason } => {
                assert_eq!(name, "mmp.smtpproxypassword");
                assert!(
                    reason.contains("smtpd_authorized_xclient_hosts"),
                    "{reason}"
                );
                assert!(!reason.contains("A_Password"));
            }
            other => panic!("{other:?}"),
        }
        // POP-before-SMTP through PROXY-only relays would lose the user.
        for handoff in ["proxy-v1", "proxy-v2"] {
            let e =
                read(&[("mmp.preauth", "1"), ("mmp.relayhandoff", handoff)]).expect_err("refused");
            assert!(
                matches!(&e, Error::InvalidSetting { name: "mmp.relayhandoff", reason } if reason.contains("PROXY")),
                "{e:?}"
            );
            // Without POP-before-SMTP a PROXY relay is fine.
            read(&[("mmp.relayhandoff", handoff)]).expect("valid");
        }
    }

    #[test]
    fn bad_values() {
        for (name, value) in [
            ("mmp.smtprelays", "a:0"),
            ("mmp.smtprelays", "a:99999"),
            ("mmp.smtprelays", "[::1"),
            ("mmp.preauth", "maybe"),
            ("mmp.failovertimeout", "0"),
            ("mmp.authservicettl", "0"),
            ("mmp.ipv6prefix", "200"),
            ("mmp.ipv6prefix", "0"),
            ("mmp.authcachemaxentries", "0"),
            ("mmp.authcachemaxentries", "x"),
            ("mmp.relaytls", "sometimes"),
            ("mmp.relayhandoff", "carrier-pigeon"),
        ] {
            match read(&[(name, value)]) {
                Err(Error::InvalidSetting { name: got, .. }) => {
                    assert_eq!(got, name, "{name} = {value}");
                }
                other => panic!("{name} = {value}: {other:?}"),
            }
        }
        let s = read(&[("mmp.smtprelays", "[2001:db8::1]:2525 ::1 10.0.0.1")]).expect("valid");
        assert_eq!(s.smtp_relays[0], RelayAddr::new("2001:db8::1", 2525));
        assert_eq!(s.smtp_relays[1], RelayAddr::new("::1", 25));
        assert_eq!(s.smtp_relays[0].to_string(), "[2001:db8::1]:2525");
    }

    #[test]
    fn pool_needs_relays_and_musttls_needs_roots() {
        let s = read(&[]).expect("defaults");
        assert!(matches!(
            s.relay_pool(None),
            Err(Error::InvalidSetting {
                name: "mmp.smtprelays",
                ..
            })
        ));
        let s =
            read(&[("mmp.smtprelays", "127.0.0.1"), ("mmp.relaytls", "musttls")]).expect("valid");
        assert!(matches!(
            s.relay_pool(None),
            Err(Error::InvalidSetting {
                name: "mmp.relaytls",
                ..
            })
        ));
        let s = read(&[("mmp.smtprelays", "127.0.0.1")]).expect("valid");
        s.relay_pool(None)
            .expect("maytls without roots encrypts unverified");
        // POP-before-SMTP off: no cache.
        assert!(s.auth_cache().expect("valid").is_none());
    }
}
