//! `ClientLookup yes`: one reverse lookup at the proxy, confirmed by a
//! forward lookup, passed as `NAME`.
//!
//! Postfix treats XCLIENT `NAME` as a verified name (its own lookups would
//! have confirmed it), so a name is passed only when a forward lookup of
//! the reverse name returns the client's address ("forward-confirmed
//! reverse DNS"); otherwise `[UNAVAILABLE]`, or `[TEMPUNAVAIL]` when either
//! lookup failed for now. Anyone controlling the reverse zone of their
//! address can claim any name; only the forward zone ties it back.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use super::xclient::ClientName;
use crate::cache::BoxFuture;

/// The answer to a forward lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ForwardLookup {
    /// The name's addresses.
    Addresses(Vec<IpAddr>),
    /// The name does not exist or has no addresses.
    NotFound,
    /// The lookup failed for now.
    TempFail,
}

/// Reverse and forward DNS for client addresses.
pub trait ReverseResolver: fmt::Debug + Send + Sync {
    /// The name of `ip`: a name, `Unavailable` (none), or `TempUnavail`.
    fn reverse(&self, ip: IpAddr) -> BoxFuture<'_, ClientName>;

    /// The addresses of `name`, to confirm a reverse answer.
    fn forward<'a>(&'a self, name: &'a str) -> BoxFuture<'a, ForwardLookup>;
}

fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// The forward-confirmed name of `ip`: the reverse name when its forward
/// lookup contains `ip`, `[UNAVAILABLE]` when it does not (or there is no
/// name), `[TEMPUNAVAIL]` when a lookup failed for now.
pub async fn confirmed_name(resolver: &dyn ReverseResolver, ip: IpAddr) -> ClientName {
    let ip = unmapped(ip);
    let name = match resolver.reverse(ip).await {
        ClientName::Name(name) => name,
        other => return other,
    };
    match resolver.forward(&name).await {
        ForwardLookup::Addresses(addrs) if addrs.iter().any(|a| unmapped(*a) == ip) => {
            ClientName::Name(name)
        }
        ForwardLookup::Addresses(_) | ForwardLookup::NotFound => {
            tracing::info!(
                client = %ip,
                name = %name.escape_debug(),
                "client's reverse name does not resolve back to it; NAME=[UNAVAILABLE]"
            );
            ClientName::Unavailable
        }
        ForwardLookup::TempFail => ClientName::TempUnavail,
    }
}

/// The system resolver (`getnameinfo` with `NI_NAMEREQD`, on a blocking
/// thread), with a deadline after which the answer is `[TEMPUNAVAIL]`.
#[derive(Debug, Clone)]
pub struct SystemResolver {
    timeout: Duration,
}

impl Default for SystemResolver {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
        }
    }
}

impl SystemResolver {
    /// A resolver giving up after `timeout`.
    #[must_use]
    pub fn with_timeout(timeout: Duration) -> Self {
        Self { timeout }
    }
}

impl ReverseResolver for SystemResolver {
    fn reverse(&self, ip: IpAddr) -> BoxFuture<'_, ClientName> {
        Box::pin(async move {
            let job = tokio::task::spawn_blocking(move || dns_lookup::lookup_addr(&ip));
            match tokio::time::timeout(self.timeout, job).await {
                Ok(Ok(Ok(name))) => {
                    let name = name.trim_end_matches('.').to_owned();
                    if super::validate::valid_host_name(&name) {
                        ClientName::Name(name)
                    } else {
                        ClientName::Unavailable
                    }
                }
                Ok(Ok(Err(e))) => match e.kind() {
                    dns_lookup::LookupErrorKind::Again => ClientName::TempUnavail,
                    dns_lookup::LookupErrorKind::NoName | dns_lookup::LookupErrorKind::NoData => {
                        ClientName::Unavailable
                    }
                    _ => ClientName::TempUnavail,
                },
                Ok(Err(_)) | Err(_) => ClientName::TempUnavail,
            }
        })
    }

    fn forward<'a>(&'a self, name: &'a str) -> BoxFuture<'a, ForwardLookup> {
        Box::pin(async move {
            let owned = name.to_owned();
            let job = tokio::task::spawn_blocking(move || {
                dns_lookup::lookup_host(&owned).map(Iterator::collect::<Vec<IpAddr>>)
            });
            match tokio::time::timeout(self.timeout, job).await {
                Ok(Ok(Ok(addrs))) if !addrs.is_empty() => ForwardLookup::Addresses(addrs),
                Ok(Ok(Ok(_))) => ForwardLookup::NotFound,
                Ok(Ok(Err(e))) => match e.kind() {
                    dns_lookup::LookupErrorKind::NoName | dns_lookup::LookupErrorKind::NoData => {
                        ForwardLookup::NotFound
                    }
                    _ => ForwardLookup::TempFail,
                },
                Ok(Err(_)) | Err(_) => ForwardLookup::TempFail,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A resolver with fixed answers.
    #[derive(Debug)]
    struct Fixed(ClientName, ForwardLookup);

    impl ReverseResolver for Fixed {
        fn reverse(&self, _ip: IpAddr) -> BoxFuture<'_, ClientName> {
            Box::pin(std::future::ready(self.0.clone()))
        }
        fn forward<'a>(&'a self, _name: &'a str) -> BoxFuture<'a, ForwardLookup> {
            Box::pin(std::future::ready(self.1.clone()))
        }
    }

    fn confirm(r: Fixed, ip: &str) -> ClientName {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(confirmed_name(&r, ip.parse().expect("addr")))
    }

    #[test]
    fn forward_confirmation() {
        let name = || ClientName::Name("pc.example".into());
        let at = |a: &str| ForwardLookup::Addresses(vec![a.parse().expect("addr")]);
        assert_eq!(confirm(Fixed(name(), at("192.0.2.1")), "192.0.2.1"), name());
        // IPv4-mapped on either side is the IPv4 address.
        assert_eq!(
            confirm(Fixed(name(), at("::ffff:192.0.2.1")), "192.0.2.1"),
            name()
        );
        assert_eq!(
            confirm(Fixed(name(), at("192.0.2.1")), "::ffff:192.0.2.1"),
            name()
        );
        assert_eq!(
            confirm(Fixed(name(), at("192.0.2.9")), "192.0.2.1"),
            ClientName::Unavailable
        );
        assert_eq!(
            confirm(Fixed(name(), ForwardLookup::NotFound), "192.0.2.1"),
            ClientName::Unavailable
        );
        assert_eq!(
            confirm(Fixed(name(), ForwardLookup::TempFail), "192.0.2.1"),
            ClientName::TempUnavail
        );
        assert_eq!(
            confirm(Fixed(ClientName::TempUnavail, at("192.0.2.1")), "192.0.2.1"),
            ClientName::TempUnavail
        );
    }
}
