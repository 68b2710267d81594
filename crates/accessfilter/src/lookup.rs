//! The lookups a decision may need, as runtime-independent traits.
//!
//! The matcher itself does no I/O: it returns [`crate::Outcome::Need`]. These
//! traits let [`crate::FilterSet::decide`] do the lookups for you; the
//! `tokio` feature provides implementations (hickory-resolver DNS and an
//! RFC 1413 client).

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;

use crate::query::{NameLookup, UserLookup};

/// A boxed, sendable future (so the traits stay object safe).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The answer to one DNS question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsAnswer<T> {
    /// The records.
    Found(T),
    /// No such name or no records (a definite answer).
    NotFound,
    /// Timeout, server failure or similar: try again later.
    Tempfail,
}

/// An address family: which forward records to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// A records.
    V4,
    /// AAAA records.
    V6,
}

impl Family {
    /// The family of an address (an IPv4-mapped IPv6 address is IPv4).
    pub fn of(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

/// Reverse and forward DNS.
pub trait Resolver: fmt::Debug + Send + Sync {
    /// PTR names of an address.
    fn reverse(&self, addr: IpAddr) -> BoxFuture<'_, DnsAnswer<Vec<String>>>;
    /// The addresses of a name in one family (A or AAAA records only).
    ///
    /// The forward-confirming lookup asks only the client's family, so a
    /// failure in the other family can never turn into a mismatch: with
    /// both asked, a timeout for AAAA plus NODATA for A would look like
    /// "the name does not lead back", which `DNSSPOOFER` matches.
    fn forward<'a>(
        &'a self,
        name: &'a str,
        family: Family,
    ) -> BoxFuture<'a, DnsAnswer<Vec<IpAddr>>>;
}

/// RFC 1413 user lookups.
pub trait IdentLookup: fmt::Debug + Send + Sync {
    /// The user owning the connection from `client` to `server`.
    fn user(&self, client: SocketAddr, server: SocketAddr) -> BoxFuture<'_, UserLookup>;
}

/// Looks up an address's name the way the filters need it: reverse DNS,
/// then forward DNS of the name, which must lead back to the address
/// (otherwise [`NameLookup::Mismatch`], what `DNSSPOOFER` matches).
pub async fn lookup_name(resolver: &dyn Resolver, addr: IpAddr) -> NameLookup {
    let names = match resolver.reverse(addr).await {
        DnsAnswer::Found(names) => names,
        DnsAnswer::NotFound => return NameLookup::Unknown,
        DnsAnswer::Tempfail => return NameLookup::Tempfail,
    };
    let Some(name) = names
        .into_iter()
        .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
        .find(|n| !n.is_empty())
    else {
        return NameLookup::Unknown;
    };
    match resolver.forward(&name, Family::of(addr)).await {
        DnsAnswer::Found(addrs) if addrs.iter().any(|a| same_addr(*a, addr)) => {
            NameLookup::Verified(name)
        }
        DnsAnswer::Found(_) | DnsAnswer::NotFound => NameLookup::Mismatch(name),
        DnsAnswer::Tempfail => NameLookup::Tempfail,
    }
}

fn same_addr(a: IpAddr, b: IpAddr) -> bool {
    let norm = |x: IpAddr| match x {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(x, IpAddr::V4),
        v4 => v4,
    };
    norm(a) == norm(b)
}

/// The lookup providers [`crate::FilterSet::decide`] uses.
///
/// A decision that needs a lookup whose provider is missing is a temporary
/// failure ([`crate::Verdict::Tempfail`] when the verdict depends on it),
/// never a silent "unknown": a server configured without DNS cannot grant
/// through a `DNSSPOOFER` deny, nor deny through `KNOWN`. Use
/// [`crate::FilterSet::needs_names`] at start-up to refuse such a
/// configuration early, or [`crate::FilterSet::decide_offline`] to ask
/// "what if nothing can be looked up".
#[derive(Debug, Clone, Copy, Default)]
pub struct Lookups<'a> {
    /// DNS.
    pub resolver: Option<&'a dyn Resolver>,
    /// Ident.
    pub ident: Option<&'a dyn IdentLookup>,
}
