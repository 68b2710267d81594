//! Authentication orchestration, the same for every protocol: run a SASL
//! exchange (or a protocol's own login) against the backends, apply the
//! failed-login penalty before a failure reply, and the user's and
//! domain's access filters after a success.
//!
//! ```text
//! protocol core ─► sasl ServerSession / AuthExchange ─► Step::Verify ─► Backends (ldapauth)
//!                                   │
//!            failure ◄──────────────┴──────────────► success (Authenticated + Account)
//!               │                                       │
//!   Penalty::record_failure, wait                AccessFilters::after_login
//!   (then the failure reply)                     (user and domain level, any deny wins)
//! ```
//!
//! The service-level filters run at connect ([`AccessFilters::at_connect`]);
//! account status is the backends' business (a disabled account never
//! authenticates).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use portcullis_accessfilter::net::DnsResolver;
use portcullis_accessfilter::{Combined, FilterSet, Level, Lookups, Query, Verdict, combine};
use portcullis_config::{Config, params};
use portcullis_sasl::framing::Failure;
use portcullis_sasl::{Account, Authenticated, Backends, Mechanism, Policy, ServerSession, Step};

use crate::Error;
use crate::metrics::{LoginResult, RefusedBy, ServiceMetrics};
use crate::penalty::Penalty;

/// How long one DNS query of the access filters may take.
const DNS_TIMEOUT: Duration = Duration::from_secs(5);

/// The facts about a connection the filters and the penalty look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Peer {
    /// The client (from the PROXY header when there is one).
    pub client: SocketAddr,
    /// The address the client connected to.
    pub local: SocketAddr,
    /// Whether the connection is TLS-protected now.
    pub tls: bool,
}

impl Peer {
    /// A peer.
    #[must_use]
    pub fn new(client: SocketAddr, local: SocketAddr, tls: bool) -> Self {
        Self { client, local, tls }
    }
}

/// The access filters of one service: the service level from the
/// configuration (through the config crate's one mapping,
/// [`Config::service_filters`]), the user and domain levels from the
/// account (`mailAllowedServiceAccess`, `mailDomainAllowedServiceAccess`).
#[derive(Debug)]
pub struct AccessFilters {
    service: String,
    set: FilterSet,
    resolver: Option<Arc<DnsResolver>>,
}

impl AccessFilters {
    /// The filters of `service` (`imap`, `pop`, …).
    ///
    /// # Errors
    /// [`Error::Config`] for an unknown service; [`Error::Filter`] naming
    /// the parameter whose value does not parse.
    pub fn from_config(config: &Config, service: &str) -> Result<Self, Error> {
        let mut builder = FilterSet::builder();
        for sf in config.service_filters(service)? {
            let filters = sf.filters.map_err(|source| Error::Filter {
                parameter: sf.parameter.clone(),
                source,
            })?;
            builder = builder.filters(&sf.parameter, filters);
        }
        let servers = name_servers(&config.get(params::LOCAL_DNSSERVERS)?)?;
        let resolver = if servers.is_empty() {
            DnsResolver::from_system(DNS_TIMEOUT)
        } else {
            DnsResolver::with_servers(&servers, DNS_TIMEOUT)
        };
        let resolver = match resolver {
            Ok(r) => Some(Arc::new(r)),
            Err(e) => {
                tracing::warn!(error = %e, "no DNS resolver: filters that need host names tempfail");
                None
            }
        };
        Ok(Self {
            service: service.to_owned(),
            set: builder.build(),
            resolver,
        })
    }

    fn query(&self, peer: &Peer) -> Query {
        Query::for_connection(&self.service, peer.client, peer.local).tls(peer.tls)
    }

    fn lookups(&self) -> Lookups<'_> {
        Lookups {
            resolver: self
                .resolver
                .as_deref()
                .map(|r| r as &dyn portcullis_accessfilter::Resolver),
            ident: None,
        }
    }

    /// The service-level decision for a new connection, before the
    /// greeting: `Deny` → the protocol's refusal and close; `Tempfail`
    /// (DNS trouble) → a temporary refusal, never a grant.
    pub async fn at_connect(&self, peer: &Peer) -> Verdict {
        let mut q = self.query(peer);
        let decision = self.set.decide(&mut q, &self.lookups()).await;
        if decision.verdict != Verdict::Allow {
            tracing::info!(client = %peer.client, service = %self.service, %decision, "service-level access filter");
        }
        decision.verdict
    }

    /// The user- and domain-level decision once `account` has logged in:
    /// any deny wins, then any temporary failure. An attribute that does
    /// not parse denies (it must never read as "no filter").
    pub async fn after_login(&self, account: &Account, peer: &Peer) -> Combined {
        let mut q = self.query(peer);
        let mut levels = Vec::new();
        for (level, attribute, value) in [
            (
                Level::Domain,
                "mailDomainAllowedServiceAccess",
                account.domain_allowed_service_access.as_deref(),
            ),
            (
                Level::User,
                "mailAllowedServiceAccess",
                account.allowed_service_access.as_deref(),
            ),
        ] {
            let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
                continue;
            };
            let set = match FilterSet::from_ldap(attribute, value) {
                Ok(set) => set,
                Err(e) => {
                    tracing::warn!(user = %account.name, attribute, error = %e, "access filter attribute does not parse; denying");
                    FilterSet::from_ldap(attribute, &format!("-{}:ALL", self.service))
                        .unwrap_or_else(|_| FilterSet::builder().build())
                }
            };
            levels.push((level, set.decide(&mut q, &self.lookups()).await));
        }
        let combined = combine(levels);
        if combined.verdict != Verdict::Allow {
            tracing::info!(user = %account.name, client = %peer.client, decision = %combined, "account-level access filter");
        }
        combined
    }
}

/// The name servers of `local.dnsservers`: `ip`, `ip:port`, `[v6]` or
/// `[v6]:port` (port 53 when none is given).
fn name_servers(values: &[String]) -> Result<Vec<SocketAddr>, Error> {
    values
        .iter()
        .map(|v| {
            let v = v.trim();
            v.parse::<SocketAddr>()
                .ok()
                .or_else(|| {
                    let ip = v.strip_prefix('[').and_then(|r| r.strip_suffix(']'));
                    ip.unwrap_or(v)
                        .parse::<IpAddr>()
                        .ok()
                        .map(|ip| SocketAddr::new(ip, 53))
                })
                .ok_or_else(|| Error::InvalidSetting {
                    name: "local.dnsservers",
                    reason: format!("{v:?} is not an ip[:port] address"),
                })
        })
        .collect()
}

/// How a login ended, as the protocol must answer it.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoginOutcome {
    /// Authenticated and allowed by the account's filters.
    Granted(Box<Authenticated>),
    /// The exchange failed (the penalty's delay, if any, has passed):
    /// answer with the protocol's reply for `failure`.
    Failed {
        /// The reply class.
        failure: Failure,
        /// The cause, for the log.
        error: portcullis_sasl::Error,
    },
    /// Authenticated, but the account's access filters deny the service.
    Denied,
    /// Authenticated, but a filter lookup failed temporarily.
    TempFail,
}

/// The authentication side of a front end: mechanism policy, backends,
/// penalty, access filters, and the service's counters.
#[derive(Debug)]
pub struct Authenticator {
    /// Which mechanisms run where.
    pub policy: Policy,
    /// Who answers the exchanges' requests.
    pub backends: Backends,
    /// Failed-login delays.
    pub penalty: Penalty,
    /// The service's access filters.
    pub filters: AccessFilters,
    /// The service's counters (logins, penalties, and what the front end
    /// counts around them).
    pub metrics: ServiceMetrics,
}

impl Authenticator {
    /// [`AccessFilters::at_connect`], counting a refusal.
    pub async fn at_connect(&self, peer: &Peer) -> Verdict {
        let verdict = self.filters.at_connect(peer).await;
        match verdict {
            Verdict::Allow => {}
            Verdict::Deny => self.metrics.connection_refused(RefusedBy::Filter),
            Verdict::Tempfail => self.metrics.connection_refused(RefusedBy::FilterTempfail),
        }
        verdict
    }

    /// Runs an exchange that needs no more client input (a protocol's own
    /// login: `password_login`, `salted_login`) to its end, answering each
    /// request from the backends.
    ///
    /// # Errors
    /// The exchange's error; [`portcullis_sasl::Error::ApiMisuse`] when it
    /// asks for more client input.
    pub async fn complete(
        &self,
        started: Result<(ServerSession, Step), portcullis_sasl::Error>,
    ) -> Result<Authenticated, portcullis_sasl::Error> {
        let (mut session, mut step) = started?;
        // Each round answers one request; a login needs at most a few.
        for _ in 0..8 {
            step = match step {
                Step::Verify(request) => {
                    let answer = self.backends.resolve(&request).await;
                    session.answer(answer)?
                }
                Step::Done(auth) => return Ok(auth),
                _ => break,
            };
        }
        Err(portcullis_sasl::Error::ApiMisuse(
            "a one-shot login asked for more input",
        ))
    }

    /// Concludes a login: on failure records it for the penalty and waits
    /// out the delay (so the failure reply comes late; a Tokio sleep, no
    /// other client waits); on success checks the account's filters.
    /// `user` and `secret` are what the client sent (the penalty keeps
    /// only a keyed fingerprint, so a repeated try of the same pair does
    /// not raise the delay). `mechanism` is what the client used (`None`
    /// for a name no mechanism has), for the login counter.
    pub async fn conclude(
        &self,
        mechanism: Option<Mechanism>,
        outcome: Result<Authenticated, portcullis_sasl::Error>,
        peer: &Peer,
        user: &str,
        secret: &[u8],
    ) -> LoginOutcome {
        let auth = match outcome {
            Ok(auth) => auth,
            Err(error) => {
                self.metrics.login(mechanism, LoginResult::Failure);
                let failure = Failure::from(&error);
                if matches!(
                    failure,
                    Failure::BadCredentials | Failure::AuthorizationFailed
                ) {
                    let delay = self
                        .penalty
                        .record_failure(peer.client.ip(), user, secret)
                        .await;
                    if !delay.is_zero() {
                        self.metrics.penalty();
                        tokio::time::sleep(delay).await;
                    }
                }
                return LoginOutcome::Failed { failure, error };
            }
        };
        let mechanism = Some(auth.mechanism());
        self.penalty.record_success(peer.client.ip()).await;
        let verdict = match auth.account() {
            Some(account) => self.filters.after_login(account, peer).await.verdict,
            None => Verdict::Allow,
        };
        let (outcome, result) = match verdict {
            Verdict::Allow => (LoginOutcome::Granted(Box::new(auth)), LoginResult::Success),
            Verdict::Deny => (LoginOutcome::Denied, LoginResult::Denied),
            Verdict::Tempfail => (LoginOutcome::TempFail, LoginResult::Tempfail),
        };
        self.metrics.login(mechanism, result);
        outcome
    }
}

#[cfg(test)]
mod tests {
    use portcullis_accessfilter::Verdict;

    use super::*;

    fn filters(text: &str) -> AccessFilters {
        let config = Config::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        AccessFilters::from_config(&config, "pop").unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn peer(client: &str, tls: bool) -> Peer {
        Peer::new(
            client.parse().unwrap_or_else(|e| panic!("{client}: {e}")),
            "192.0.2.1:110".parse().unwrap_or_else(|e| panic!("{e}")),
            tls,
        )
    }

    fn account(user: Option<&str>, domain: Option<&str>) -> Account {
        let mut a = Account::new("alice@example.com");
        a.allowed_service_access = user.map(str::to_owned);
        a.domain_allowed_service_access = domain.map(str::to_owned);
        a
    }

    #[tokio::test]
    async fn service_filters_decide_at_connect_tls_names_included() {
        let f = filters(
            "[service.pop]\ndomainallowed = \"pops: ALL\"\ndomainnotallowed = \"pop: 198.51.100.\"\n",
        );
        assert_eq!(
            f.at_connect(&peer("203.0.113.5:4000", true)).await,
            Verdict::Allow
        );
        assert_eq!(
            f.at_connect(&peer("198.51.100.7:4000", false)).await,
            Verdict::Deny
        );
        // Plaintext from elsewhere matches neither list: granted.
        assert_eq!(
            f.at_connect(&peer("203.0.113.5:4001", false)).await,
            Verdict::Allow
        );
        assert_eq!(
            filters("")
                .at_connect(&peer("203.0.113.5:4000", false))
                .await,
            Verdict::Allow
        );
    }

    #[test]
    fn name_servers_take_an_optional_port_and_refuse_host_names() {
        let parsed = name_servers(&[
            "127.0.0.1".to_owned(),
            "127.0.0.1:5353".to_owned(),
            "[::1]".to_owned(),
            "[::1]:5353".to_owned(),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let expected: Vec<SocketAddr> =
            ["127.0.0.1:53", "127.0.0.1:5353", "[::1]:53", "[::1]:5353"]
                .iter()
                .map(|a| a.parse().unwrap_or_else(|e| panic!("{a}: {e}")))
                .collect();
        assert_eq!(parsed, expected);
        let e = name_servers(&["ns.example.com".to_owned()]).unwrap_err();
        assert!(e.to_string().contains("local.dnsservers"), "{e}");
    }

    #[test]
    fn a_filter_parameter_that_does_not_parse_is_named() {
        let config = Config::parse("[service.pop]\ndomainallowed = [\"pop ALL\"]\n");
        // The configuration file itself may already refuse the value.
        let e = match config {
            Err(e) => e.to_string(),
            Ok(c) => AccessFilters::from_config(&c, "pop")
                .map(|_| ())
                .unwrap_err()
                .to_string(),
        };
        assert!(e.contains("service.pop.domainallowed"), "{e}");
    }

    #[tokio::test]
    async fn account_filters_any_deny_wins_and_garbage_denies() {
        let f = filters("");
        let p = peer("203.0.113.5:4000", true);
        let verdict = |a: Account| {
            let f = &f;
            async move { f.after_login(&a, &p).await.verdict }
        };
        assert_eq!(verdict(account(None, None)).await, Verdict::Allow);
        assert_eq!(
            verdict(account(Some("+pop:ALL"), None)).await,
            Verdict::Allow
        );
        assert_eq!(
            verdict(account(Some("-pop:ALL"), None)).await,
            Verdict::Deny
        );
        assert_eq!(
            verdict(account(Some("+pop:ALL"), Some("-pop:203.0.113."))).await,
            Verdict::Deny
        );
        // Allow rules only for the service, none matching: the implicit
        // deny.
        assert_eq!(
            verdict(account(Some("+pop:198.51.100."), None)).await,
            Verdict::Deny
        );
        assert_eq!(
            verdict(account(Some("+pop:ALL$nonsense"), None)).await,
            Verdict::Deny
        );
    }
}
