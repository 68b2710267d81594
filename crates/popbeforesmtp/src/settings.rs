//! The chapter's options as one typed struct (the configuration crate maps
//! the config file to it).
//!
//! | Option | Field | Default |
//! |---|---|---|
//! | `PreAuth` | [`Settings::pre_auth`] | `no` |
//! | `AuthServiceTTL` | [`Settings::auth_service_ttl`] | `900` (seconds) |
//! | `SmtpRelays` | [`Settings::smtp_relays`] | none (mandatory) |
//! | `SmtpProxyPassword` | [`Settings::smtp_proxy_password`] | none |
//! | `EhloKeywords` | [`Settings::ehlo_keywords`] | empty |
//! | `PopBeforeSmtpKludgeChannel` | [`Settings::pop_before_smtp_kludge_channel`] | empty |
//! | `ClientLookup` | [`Settings::client_lookup`] | `no` |
//! | `FailoverTimeout` | [`Settings::failover_timeout`] | `10` (seconds; skip = minutes) |
//!
//! Portcullis additions: `Ipv6Prefix` (64), `AuthCacheMaxEntries`
//! (1,000,000), `RelayHandoff` (`xclient` | `proxy-v1` | `proxy-v2`),
//! `RelayTls` (`plain` | `maytls` | `musttls`).

use crate::Error;
use crate::cache::CacheSettings;
use crate::key::AddressGrouping;
use crate::relay::{EhloFilter, Handoff, RelayAddr, RelaySpec, TlsPolicy, parse_relays};
use crate::secret::Secret;

/// POP-before-SMTP and SMTP proxy settings.
///
/// ```
/// use portcullis_popbeforesmtp::Settings;
/// let mut s = Settings::default();
/// s.set("SmtpRelays", "manatee:485 gonzo mothra").unwrap();
/// s.set("PreAuth", "yes").unwrap();
/// s.set("EhloKeywords", "TURN").unwrap();
/// assert_eq!(s.smtp_relays.len(), 3);
/// assert_eq!(s.smtp_relays[0].port(), 485);
/// assert!(s.ehlo_filter().allows("turn"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Settings {
    /// `PreAuth`: record successful POP logins in the cache.
    pub pre_auth: bool,
    /// `AuthServiceTTL`: seconds a POP login authorizes relaying.
    pub auth_service_ttl: u32,
    /// `SmtpRelays`: relays used round robin.
    pub smtp_relays: Vec<RelayAddr>,
    /// `SmtpProxyPassword`. XCLIENT and PROXY relays authorize the proxy by
    /// its address (Postfix: `smtpd_authorized_xclient_hosts`), so the value
    /// is kept for configuration compatibility and never sent.
    pub smtp_proxy_password: Option<Secret>,
    /// `EhloKeywords`: extra EHLO keywords passed through to clients.
    pub ehlo_keywords: Vec<String>,
    /// `PopBeforeSmtpKludgeChannel`: the chapter switched POP-authorized
    /// clients to this MTA channel; here XCLIENT `LOGIN` does that job,
    /// and the name is kept for logs.
    pub pop_before_smtp_kludge_channel: Option<String>,
    /// `ClientLookup`: reverse-resolve clients and pass the name as `NAME`.
    pub client_lookup: bool,
    /// `FailoverTimeout`: seconds per relay attempt; a failed relay is
    /// skipped for this many minutes.
    pub failover_timeout: u32,
    /// `Ipv6Prefix`: IPv6 clients grouped by this prefix length.
    pub ipv6_prefix: u8,
    /// `AuthCacheMaxEntries`: bound of the in-memory cache.
    pub cache_max_entries: usize,
    /// `RelayHandoff`: how clients are handed to relays.
    pub relay_handoff: Handoff,
    /// `RelayTls`: STARTTLS towards relays.
    pub relay_tls: TlsPolicy,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            pre_auth: false,
            auth_service_ttl: 900,
            smtp_relays: Vec::new(),
            smtp_proxy_password: None,
            ehlo_keywords: Vec::new(),
            pop_before_smtp_kludge_channel: None,
            client_lookup: false,
            failover_timeout: 10,
            ipv6_prefix: 64,
            cache_max_entries: 1_000_000,
            relay_handoff: Handoff::Xclient,
            relay_tls: TlsPolicy::Plain,
        }
    }
}

/// `yes`/`no`, `1`/`0`, `true`/`false`, `on`/`off`.
///
/// # Errors
/// [`Error::InvalidSetting`] for anything else.
pub fn parse_bool(name: &'static str, value: &str) -> Result<bool, Error> {
    match value.trim().to_ascii_lowercase().as_str() {
        "yes" | "1" | "true" | "on" => Ok(true),
        "no" | "0" | "false" | "off" | "" => Ok(false),
        _ => Err(Error::InvalidSetting {
            name,
            reason: format!("{value:?} is not yes or no"),
        }),
    }
}

fn parse_num<T: std::str::FromStr>(name: &'static str, value: &str) -> Result<T, Error> {
    value.trim().parse().map_err(|_| Error::InvalidSetting {
        name,
        reason: format!("{value:?} is not a number in range"),
    })
}

impl Settings {
    /// Set one option by its configuration name (case-insensitive).
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] for an unknown name or a bad value.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), Error> {
        match name.to_ascii_lowercase().as_str() {
            "preauth" => self.pre_auth = parse_bool("PreAuth", value)?,
            "authservicettl" => {
                self.auth_service_ttl = parse_num("AuthServiceTTL", value)?;
                if self.auth_service_ttl == 0 {
                    return Err(Error::InvalidSetting {
                        name: "AuthServiceTTL",
                        reason: "must be at least 1 second".to_owned(),
                    });
                }
            }
            "smtprelays" => self.smtp_relays = parse_relays(value)?,
            "smtpproxypassword" => {
                self.smtp_proxy_password = (!value.is_empty()).then(|| Secret::new(value));
            }
            "ehlokeywords" => {
                self.ehlo_keywords = value
                    .split([' ', ','])
                    .filter(|k| !k.is_empty())
                    .map(str::to_ascii_uppercase)
                    .collect();
            }
            "popbeforesmtpkludgechannel" => {
                let v = value.trim();
                self.pop_before_smtp_kludge_channel = (!v.is_empty()).then(|| v.to_owned());
            }
            "clientlookup" => self.client_lookup = parse_bool("ClientLookup", value)?,
            "failovertimeout" => {
                self.failover_timeout = parse_num("FailoverTimeout", value)?;
                if self.failover_timeout == 0 {
                    return Err(Error::InvalidSetting {
                        name: "FailoverTimeout",
                        reason: "must be at least 1 second".to_owned(),
                    });
                }
            }
            "ipv6prefix" => {
                self.ipv6_prefix = parse_num("Ipv6Prefix", value)?;
                AddressGrouping::ipv6_prefix(self.ipv6_prefix)?;
            }
            "authcachemaxentries" => {
                self.cache_max_entries = parse_num("AuthCacheMaxEntries", value)?
            }
            "relayhandoff" => self.relay_handoff = value.trim().parse()?,
            "relaytls" => self.relay_tls = value.trim().parse()?,
            _ => {
                return Err(Error::InvalidSetting {
                    name: "(unknown)",
                    reason: format!("{name} is not a POP-before-SMTP option"),
                });
            }
        }
        Ok(())
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

    /// The EHLO filter (default set plus `EhloKeywords`).
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chapter_examples() {
        let mut s = Settings::default();
        s.set("SmtpRelays", "manatee:485 gonzo mothra")
            .expect("valid");
        s.set("SmtpProxyPassword", "A_Password").expect("valid");
        s.set("EhloKeywords", "TURN").expect("valid");
        s.set("PopBeforeSmtpKludgeChannel", "tcp_intranet")
            .expect("valid");
        s.set("ClientLookup", "yes").expect("valid");
        s.set("PreAuth", "yes").expect("valid");
        s.set("AuthServiceTTL", "900").expect("valid");
        s.set("FailoverTimeout", "10").expect("valid");
        assert_eq!(
            s.smtp_relays,
            vec![
                RelayAddr::new("manatee", 485),
                RelayAddr::new("gonzo", 25),
                RelayAddr::new("mothra", 25)
            ]
        );
        assert_eq!(
            s.smtp_proxy_password.as_ref().map(Secret::expose),
            Some("A_Password")
        );
        assert!(!format!("{s:?}").contains("A_Password"));
        assert_eq!(s.ehlo_keywords, vec!["TURN"]);
        assert_eq!(
            s.pop_before_smtp_kludge_channel.as_deref(),
            Some("tcp_intranet")
        );
        assert!(s.client_lookup && s.pre_auth);
        assert_eq!(s.cache_settings().expect("valid").ttl_secs, 900);
    }

    #[test]
    fn bad_values() {
        let mut s = Settings::default();
        assert!(s.set("SmtpRelays", "").is_err());
        assert!(s.set("SmtpRelays", "a:0").is_err());
        assert!(s.set("SmtpRelays", "a:99999").is_err());
        assert!(s.set("SmtpRelays", "[::1").is_err());
        assert!(s.set("PreAuth", "maybe").is_err());
        assert!(s.set("FailoverTimeout", "0").is_err());
        assert!(s.set("Ipv6Prefix", "200").is_err());
        assert!(s.set("NoSuchOption", "1").is_err());
        s.set("SmtpRelays", "[2001:db8::1]:2525 ::1 10.0.0.1")
            .expect("valid");
        assert_eq!(s.smtp_relays[0], RelayAddr::new("2001:db8::1", 2525));
        assert_eq!(s.smtp_relays[1], RelayAddr::new("::1", 25));
        assert_eq!(s.smtp_relays[0].to_string(), "[2001:db8::1]:2525");
    }
}
