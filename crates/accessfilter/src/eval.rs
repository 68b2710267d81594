//! Matching with three-valued logic, and the first-match decision.
//!
//! A pattern whose answer depends on a lookup not done yet (or one that
//! failed temporarily) matches "maybe". A decision is made when every
//! possible answer of the maybes leads to the same verdict; otherwise the
//! evaluator asks for a lookup ([`Outcome::Need`]) or, when the lookups
//! failed temporarily, decides [`Verdict::Tempfail`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use crate::ast::{Action, ClientSpec, Filter, HostPattern, List, Origin, ServiceSpec, Word};
use crate::lookup::BoxFuture;
use crate::query::{Endpoint, NameLookup, Need, Query, UserLookup, tls_name_of};

/// Looks up NIS-style netgroup membership for `@netgroup` patterns.
///
/// Asked like DNS: the evaluator does no I/O, it reports
/// [`Need::Netgroups`] and [`crate::FilterSet::decide`] asks the provider
/// and records the answers in the [`Query`]. An implementation bounds its
/// own time (as a [`crate::Resolver`] does) and answers `None` for a
/// timeout or another temporary failure, which never flips a decision
/// ([`Verdict::Tempfail`] when the verdict depends on it).
///
/// Without a provider, `@netgroup` patterns never match (and
/// [`crate::lint`] warns about them).
pub trait NetgroupProvider: fmt::Debug + Send + Sync {
    /// Whether `host` (a verified, lower-case name) is a host member of
    /// `netgroup` (case-sensitive). `None` means a temporary failure.
    fn contains<'a>(&'a self, netgroup: &'a str, host: &'a str) -> BoxFuture<'a, Option<bool>>;
}

/// The verdict of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Grant access (`granted`).
    Allow,
    /// Deny access (`denied`).
    Deny,
    /// A lookup failed temporarily and the verdict depends on it: answer
    /// with a temporary error (`tempfail`).
    Tempfail,
}

impl Verdict {
    /// The word `filtertest` prints: `granted`, `denied` or `tempfail`.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Allow => "granted",
            Verdict::Deny => "denied",
            Verdict::Tempfail => "tempfail",
        }
    }

    fn of(action: Action) -> Self {
        match action {
            Action::Allow => Verdict::Allow,
            Action::Deny => Verdict::Deny,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// A decision and why it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Allow, deny or try again later.
    pub verdict: Verdict,
    /// Why.
    pub reason: Reason,
}

/// Why a decision was made.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// A filter matched.
    Matched(Box<Match>),
    /// No filter matched: the default applies (granted, or denied when
    /// Allow filters but no Deny filters apply to the service).
    NoMatch {
        /// Whether only Allow filters apply to the service (the implicit
        /// deny).
        allow_only: bool,
    },
    /// The verdict depends on lookups that failed temporarily.
    LookupFailed(Vec<Need>),
}

/// The filter that decided, and what in it matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// The list it is in (the Allow list or the Deny list).
    pub list: Action,
    /// The source of the filter (a file name, a parameter, an attribute).
    pub source: Arc<str>,
    /// Line, column and rule number in that source.
    pub origin: Origin,
    /// The filter, in file form.
    pub filter: String,
    /// The service pattern that matched.
    pub service_pattern: String,
    /// The client pattern that matched.
    pub client_pattern: String,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reason {
            Reason::Matched(m) => write!(
                f,
                "{}: matched {} filter at {} line {} (rule {}): `{}` (service pattern `{}`, client pattern `{}`)",
                self.verdict,
                m.list,
                m.source,
                m.origin.line,
                m.origin.rule,
                m.filter,
                m.service_pattern,
                m.client_pattern
            ),
            Reason::NoMatch { allow_only: true } => write!(
                f,
                "{}: no filter matched; only Allow filters apply to this service, so no match denies",
                self.verdict
            ),
            Reason::NoMatch { allow_only: false } => {
                write!(f, "{}: no filter matched; no match grants", self.verdict)
            }
            Reason::LookupFailed(needs) => {
                write!(
                    f,
                    "{}: the decision depends on a lookup that failed temporarily:",
                    self.verdict
                )?;
                for n in needs {
                    write!(f, " {n};")?;
                }
                Ok(())
            }
        }
    }
}

/// The result of one evaluation step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Decided.
    Done(Decision),
    /// Do this lookup, record it in the [`Query`], and evaluate again.
    Need(Need),
}

// ---------------------------------------------------------------------------
// Three-valued matching.

const N_SERVER: u8 = 1;
const N_CLIENT: u8 = 2;
const N_USER: u8 = 4;
const T_SERVER: u8 = 8;
const T_CLIENT: u8 = 16;
const T_USER: u8 = 32;
const N_NETGROUP: u8 = 64;
const T_NETGROUP: u8 = 128;

/// Yes, no, or maybe (with the lookups the answer depends on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tri {
    Yes,
    No,
    Maybe(u8),
}

impl Tri {
    fn from_bool(b: bool) -> Self {
        if b { Tri::Yes } else { Tri::No }
    }

    fn and(self, other: impl FnOnce() -> Tri) -> Tri {
        match self {
            Tri::No => Tri::No,
            Tri::Yes => other(),
            Tri::Maybe(a) => match other() {
                Tri::No => Tri::No,
                Tri::Yes => Tri::Maybe(a),
                Tri::Maybe(b) => Tri::Maybe(a | b),
            },
        }
    }

    fn not(self) -> Tri {
        match self {
            Tri::Yes => Tri::No,
            Tri::No => Tri::Yes,
            m => m,
        }
    }
}

/// What the matcher needs besides the query.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub(crate) netgroups: Option<&'a dyn NetgroupProvider>,
}

#[derive(Clone, Copy)]
enum Side {
    Client,
    Server,
}

fn name_state<T>(
    name: &NameLookup,
    side: Side,
    verified: impl FnOnce(&str) -> T,
    otherwise: T,
) -> Result<T, Tri> {
    let (need, fail) = match side {
        Side::Client => (N_CLIENT, T_CLIENT),
        Side::Server => (N_SERVER, T_SERVER),
    };
    match name {
        NameLookup::Verified(n) => Ok(verified(n)),
        NameLookup::Mismatch(_) | NameLookup::Unknown => Ok(otherwise),
        NameLookup::NotDone => Err(Tri::Maybe(need)),
        NameLookup::Tempfail => Err(Tri::Maybe(fail)),
    }
}

fn by_name(ep: &Endpoint, side: Side, f: impl FnOnce(&str) -> bool) -> Tri {
    match name_state(ep.name(), side, f, false) {
        Ok(b) => Tri::from_bool(b),
        Err(t) => t,
    }
}

/// `ipv4 & mask == net` for IPv4 addresses.
fn v4_masked(addr: Option<IpAddr>, net: Ipv4Addr, mask: Ipv4Addr) -> bool {
    match addr {
        Some(IpAddr::V4(a)) => u32::from(a) & u32::from(mask) == u32::from(net),
        _ => false,
    }
}

pub(crate) fn prefix_mask_v4(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    }
}

pub(crate) fn prefix_mask_v6(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len.min(128)))
    }
}

fn net_match(addr: Option<IpAddr>, net: IpAddr, len: u8) -> bool {
    match (addr, net) {
        (Some(IpAddr::V4(a)), IpAddr::V4(n)) => u32::from(a) & prefix_mask_v4(len) == u32::from(n),
        (Some(IpAddr::V6(a)), IpAddr::V6(n)) => {
            u128::from(a) & prefix_mask_v6(len) == u128::from(n)
        }
        _ => false,
    }
}

/// The network of a numeric prefix like `192.168.`: (net, prefix length).
pub(crate) fn addr_prefix_net(prefix: &str) -> (Ipv4Addr, u8) {
    let mut octets = [0u8; 4];
    let mut n = 0u8;
    for part in prefix.trim_end_matches('.').split('.') {
        if let (Some(slot), Ok(v)) = (octets.get_mut(usize::from(n)), part.parse::<u8>()) {
            *slot = v;
        }
        n += 1;
    }
    (Ipv4Addr::from(octets), n.saturating_mul(8).min(32))
}

/// Matches `*` and `?` globs (both sides lower-case).
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let p = pattern.as_bytes();
    let t = text.as_bytes();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == b'?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

fn host_match(p: &HostPattern, ep: &Endpoint, side: Side, q: &Query, ctx: Ctx<'_>) -> Tri {
    let addr = ep.addr();
    match p {
        HostPattern::All => Tri::Yes,
        HostPattern::Known => {
            if addr.is_none() {
                Tri::No
            } else {
                match name_state(ep.name(), side, |_| true, false) {
                    Ok(b) => Tri::from_bool(b),
                    Err(t) => t,
                }
            }
        }
        HostPattern::Unknown => {
            if addr.is_none() {
                Tri::Yes
            } else {
                match ep.name() {
                    NameLookup::Unknown => Tri::Yes,
                    other => match name_state(other, side, |_| false, false) {
                        Ok(b) => Tri::from_bool(b),
                        Err(t) => t,
                    },
                }
            }
        }
        HostPattern::Local => by_name(ep, side, |n| !n.contains('.')),
        HostPattern::DnsSpoofer => match ep.name() {
            NameLookup::Mismatch(_) => Tri::Yes,
            other => match name_state(other, side, |_| false, false) {
                Ok(b) => Tri::from_bool(b),
                Err(t) => t,
            },
        },
        HostPattern::Netgroup(group) => {
            if ctx.netgroups.is_none() {
                return Tri::No;
            }
            match name_state(
                ep.name(),
                side,
                |n| q.netgroup_answer(group, n),
                Some(Some(false)),
            ) {
                Ok(Some(Some(b))) => Tri::from_bool(b),
                Ok(Some(None)) => Tri::Maybe(T_NETGROUP),
                // Not asked yet: it can no longer be asked, or without
                // lookups, not a member.
                Ok(None) if q.netgroups_failed() => Tri::Maybe(T_NETGROUP),
                Ok(None) if q.lookups_off() => Tri::No,
                Ok(None) => Tri::Maybe(N_NETGROUP),
                Err(t) => t,
            }
        }
        HostPattern::Suffix(s) => {
            by_name(ep, side, |n| n.len() > s.len() && n.ends_with(s.as_str()))
        }
        HostPattern::NamePrefix(s) => by_name(ep, side, |n| n.starts_with(s.as_str())),
        HostPattern::Name(s) => by_name(ep, side, |n| n == s),
        HostPattern::AddrPrefix(s) => {
            let (net, len) = addr_prefix_net(s);
            Tri::from_bool(net_match(addr, IpAddr::V4(net), len))
        }
        HostPattern::NetMask { net, mask } => Tri::from_bool(v4_masked(addr, *net, *mask)),
        HostPattern::Net { net, len } => Tri::from_bool(net_match(addr, *net, *len)),
        HostPattern::Addr(a) => Tri::from_bool(addr == Some(*a)),
        HostPattern::Glob(g) => {
            if addr.is_some() && glob(g, ep.addr_text()) {
                Tri::Yes
            } else {
                by_name(ep, side, |n| glob(g, n))
            }
        }
    }
}

fn user_match(w: &Word, user: &UserLookup) -> Tri {
    match (w, user) {
        (Word::All, _) => Tri::Yes,
        (_, UserLookup::NotDone) => Tri::Maybe(N_USER),
        (_, UserLookup::Tempfail) => Tri::Maybe(T_USER),
        (Word::Known, u) => Tri::from_bool(matches!(u, UserLookup::Known(_))),
        (Word::Unknown, u) => Tri::from_bool(matches!(u, UserLookup::Unknown)),
        (Word::Glob(g), UserLookup::Known(u)) => Tri::from_bool(glob(g, u)),
        (Word::Literal(l), UserLookup::Known(u)) => Tri::from_bool(l == u),
        (_, UserLookup::Unknown) => Tri::No,
    }
}

/// Whether a daemon pattern matches a connection to `service` (a base
/// name, see [`crate::SERVICE_NAMES`]): the base name matches every such
/// connection, the TLS name (`imaps`) only a TLS-protected one.
fn daemon_match(w: &Word, service: &str, tls: bool) -> bool {
    let tls_name = if tls { tls_name_of(service) } else { None };
    match w {
        Word::All => true,
        Word::Glob(g) => glob(g, service) || tls_name.is_some_and(|t| glob(g, t)),
        Word::Literal(l) => l == service || tls_name.is_some_and(|t| l == t),
        Word::Known | Word::Unknown => false,
    }
}

/// Whether a daemon pattern matches some connection to `service`, with or
/// without TLS.
fn daemon_may_match(w: &Word, service: &str) -> bool {
    daemon_match(w, service, false) || daemon_match(w, service, true)
}

fn service_item(s: &ServiceSpec, q: &Query, ctx: Ctx<'_>) -> Tri {
    Tri::from_bool(daemon_match(&s.daemon, q.service(), q.is_tls())).and(|| match &s.server {
        None => Tri::Yes,
        Some(h) => host_match(h, q.server(), Side::Server, q, ctx),
    })
}

fn client_item(c: &ClientSpec, q: &Query, ctx: Ctx<'_>) -> Tri {
    host_match(&c.host, q.client(), Side::Client, q, ctx).and(|| match &c.user {
        None => Tri::Yes,
        Some(u) => user_match(u, q.user()),
    })
}

/// Matches a list; on `Yes`, also the index of the first top-level item
/// that matched.
fn list_match<T>(list: &List<T>, item: &impl Fn(&T) -> Tri) -> (Tri, Option<usize>) {
    let mut maybe = 0u8;
    let mut any_maybe = false;
    let mut hit = None;
    for (i, it) in list.items.iter().enumerate() {
        match item(it) {
            Tri::Yes => {
                hit = Some(i);
                break;
            }
            Tri::Maybe(m) => {
                any_maybe = true;
                maybe |= m;
            }
            Tri::No => {}
        }
    }
    let head = match (hit, any_maybe) {
        (Some(_), _) => Tri::Yes,
        (None, true) => Tri::Maybe(maybe),
        (None, false) => Tri::No,
    };
    let Some(except) = &list.except else {
        return (head, hit);
    };
    if head == Tri::No {
        return (Tri::No, None);
    }
    let result = head.and(|| list_match(except, item).0.not());
    (result, if result == Tri::Yes { hit } else { None })
}

pub(crate) struct RuleMatch {
    pub(crate) tri: Tri,
    service: Option<usize>,
    client: Option<usize>,
}

pub(crate) fn rule_match(f: &Filter, q: &Query, ctx: Ctx<'_>) -> RuleMatch {
    let (s, si) = list_match(&f.services, &|s| service_item(s, q, ctx));
    if s == Tri::No {
        return RuleMatch {
            tri: Tri::No,
            service: None,
            client: None,
        };
    }
    let (c, ci) = list_match(&f.clients, &|c| client_item(c, q, ctx));
    RuleMatch {
        tri: s.and(|| c),
        service: si,
        client: ci,
    }
}

/// Whether the filter applies to `service`: its service list matches the
/// service for some server endpoint (`service@host` items count as
/// possibly matching). The implicit deny of allow-only sets is decided per
/// service with this.
pub(crate) fn applies_to(f: &Filter, service: &str) -> bool {
    fn go(list: &List<ServiceSpec>, service: &str, tls: bool) -> Tri {
        let mut head = Tri::No;
        for it in &list.items {
            if daemon_match(&it.daemon, service, tls) {
                if it.server.is_none() {
                    head = Tri::Yes;
                    break;
                }
                head = Tri::Maybe(0);
            }
        }
        match &list.except {
            Some(e) if head != Tri::No => head.and(|| go(e, service, tls).not()),
            _ => head,
        }
    }
    // A filter naming `imaps` applies to the IMAP service (to its TLS
    // connections), so `+imaps:ALL` alone makes IMAP allow-only: plain IMAP
    // is denied, as "TLS only" intends.
    go(&f.services, service, false) != Tri::No || go(&f.services, service, true) != Tri::No
}

/// Whether the filter's service list can match `service` (for some server
/// endpoint); used to build per-service indexes. Only the top level counts:
/// exceptions can only remove matches.
pub(crate) fn service_may_match(f: &Filter, service: &str) -> bool {
    f.services
        .items
        .iter()
        .any(|s| daemon_may_match(&s.daemon, service))
}

fn pattern_needs_name(p: &HostPattern) -> bool {
    matches!(
        p,
        HostPattern::Known
            | HostPattern::Unknown
            | HostPattern::Local
            | HostPattern::DnsSpoofer
            | HostPattern::Netgroup(_)
            | HostPattern::Suffix(_)
            | HostPattern::NamePrefix(_)
            | HostPattern::Name(_)
            | HostPattern::Glob(_)
    )
}

fn any_item<T>(list: &List<T>, pred: &impl Fn(&T) -> bool) -> bool {
    list.items.iter().any(pred) || list.except.as_ref().is_some_and(|e| any_item(e, pred))
}

/// Whether a filter may need a host name (of the client, or of the server
/// in `service@host`).
pub(crate) fn needs_names(f: &Filter) -> bool {
    any_item(&f.services, &|s: &ServiceSpec| {
        s.server.as_ref().is_some_and(pattern_needs_name)
    }) || any_item(&f.clients, &|c: &ClientSpec| pattern_needs_name(&c.host))
}

/// Adds the netgroups `f` names (client and server patterns) to `out`.
pub(crate) fn netgroups_named(f: &Filter, out: &mut Vec<String>) {
    fn add(p: &HostPattern, out: &mut Vec<String>) {
        if let HostPattern::Netgroup(g) = p
            && !out.contains(g)
        {
            out.push(g.clone());
        }
    }
    fn walk<T>(list: &List<T>, f: &impl Fn(&T) -> Option<&HostPattern>, out: &mut Vec<String>) {
        for it in &list.items {
            if let Some(p) = f(it) {
                add(p, out);
            }
        }
        if let Some(e) = &list.except {
            walk(e, f, out);
        }
    }
    walk(&f.services, &|s: &ServiceSpec| s.server.as_ref(), out);
    walk(&f.clients, &|c: &ClientSpec| Some(&c.host), out);
}

/// Whether a filter may need the client's user name.
pub(crate) fn needs_user(f: &Filter) -> bool {
    any_item(&f.clients, &|c: &ClientSpec| {
        c.user.as_ref().is_some_and(|u| *u != Word::All)
    })
}

/// The rules of a set, in evaluation order, and what a decision reports.
pub(crate) struct RuleBook<'a> {
    pub(crate) rules: &'a [Filter],
    /// The source of each rule.
    pub(crate) sources: &'a [Arc<str>],
    pub(crate) ctx: Ctx<'a>,
}

/// First-match decision over `ids` (ascending indexes into the rule book);
/// rules not listed must not match (answer "no").
pub(crate) fn decide_over(
    book: &RuleBook<'_>,
    ids: impl Iterator<Item = usize>,
    q: &Query,
    allow_only: bool,
) -> Outcome {
    let mut possible_allow = false;
    let mut possible_deny = false;
    let mut maybes = 0u8;
    let mut decided: Option<(usize, RuleMatch)> = None;
    for id in ids {
        let Some(f) = book.rules.get(id) else {
            continue;
        };
        let m = rule_match(f, q, book.ctx);
        match m.tri {
            Tri::No => continue,
            Tri::Yes => {
                match f.action {
                    Action::Allow => possible_allow = true,
                    Action::Deny => possible_deny = true,
                }
                decided = Some((id, m));
                break;
            }
            Tri::Maybe(bits) => {
                maybes |= bits;
                match f.action {
                    Action::Allow => possible_allow = true,
                    Action::Deny => possible_deny = true,
                }
                if possible_allow && possible_deny {
                    break;
                }
            }
        }
    }
    if decided.is_none() && !(possible_allow && possible_deny) {
        if allow_only {
            possible_deny = true;
        } else {
            possible_allow = true;
        }
    }
    if possible_allow && possible_deny {
        // Ask for the first missing lookup, server name first (cheap and
        // often decisive), then the client name, netgroup membership, and
        // ident (slowest) last.
        for (bit, need) in [
            (N_SERVER, Need::ServerName),
            (N_CLIENT, Need::ClientName),
            // Netgroups before ident: members are decided without the
            // slow lookup.
            (N_NETGROUP, Need::Netgroups),
            (N_USER, Need::User),
        ] {
            if maybes & bit != 0 {
                return Outcome::Need(need);
            }
        }
        let failed = [
            (T_SERVER, Need::ServerName),
            (T_CLIENT, Need::ClientName),
            (T_USER, Need::User),
            (T_NETGROUP, Need::Netgroups),
        ]
        .into_iter()
        .filter(|(bit, _)| maybes & bit != 0)
        .map(|(_, n)| n)
        .collect();
        return Outcome::Done(Decision {
            verdict: Verdict::Tempfail,
            reason: Reason::LookupFailed(failed),
        });
    }
    let verdict = if possible_allow {
        Verdict::Allow
    } else {
        Verdict::Deny
    };
    let reason = match decided {
        Some((id, m))
            if book
                .rules
                .get(id)
                .is_some_and(|f| Verdict::of(f.action) == verdict) =>
        {
            let f = &book.rules[id];
            Reason::Matched(Box::new(Match {
                list: f.action,
                source: book
                    .sources
                    .get(id)
                    .map_or_else(|| Arc::from(""), Arc::clone),
                origin: f.origin,
                filter: f.to_string(),
                service_pattern: m
                    .service
                    .and_then(|i| f.services.items.get(i))
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                client_pattern: m
                    .client
                    .and_then(|i| f.clients.items.get(i))
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            }))
        }
        _ => Reason::NoMatch { allow_only },
    };
    Outcome::Done(Decision { verdict, reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("*.example.com", "a.example.com"));
        assert!(!glob("*.example.com", "example.com"));
        assert!(glob("h?st*", "host1"));
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b*c", "axxbyy"));
        assert!(glob("192.168.1.*", "192.168.1.77"));
    }

    #[test]
    fn prefixes() {
        assert_eq!(
            addr_prefix_net("192.168."),
            (Ipv4Addr::new(192, 168, 0, 0), 16)
        );
        assert_eq!(addr_prefix_net("10."), (Ipv4Addr::new(10, 0, 0, 0), 8));
        assert_eq!(prefix_mask_v4(0), 0);
        assert_eq!(prefix_mask_v4(32), u32::MAX);
        assert_eq!(prefix_mask_v6(128), u128::MAX);
    }
}
