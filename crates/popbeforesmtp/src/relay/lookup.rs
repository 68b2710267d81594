//! `ClientLookup yes`: one reverse lookup at the proxy, passed as `NAME`.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use super::xclient::ClientName;
use crate::cache::BoxFuture;

/// Reverse DNS for client addresses.
pub trait ReverseResolver: fmt::Debug + Send + Sync {
    /// The name of `ip`: a name, `Unavailable` (none), or `TempUnavail`.
    fn reverse(&self, ip: IpAddr) -> BoxFuture<'_, ClientName>;
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

/// Whether `name` looks like a DNS host name (so it is safe to pass on).
fn plausible_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

impl ReverseResolver for SystemResolver {
    fn reverse(&self, ip: IpAddr) -> BoxFuture<'_, ClientName> {
        Box::pin(async move {
            let job = tokio::task::spawn_blocking(move || dns_lookup::lookup_addr(&ip));
            match tokio::time::timeout(self.timeout, job).await {
                Ok(Ok(Ok(name))) => {
                    let name = name.trim_end_matches('.').to_owned();
                    if plausible_hostname(&name) {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames() {
        assert!(plausible_hostname("mail.example.com"));
        assert!(plausible_hostname("localhost"));
        assert!(!plausible_hostname("a b"));
        assert!(!plausible_hostname("x..y"));
        assert!(!plausible_hostname(""));
    }
}
