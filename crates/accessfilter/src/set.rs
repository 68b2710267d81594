//! A compiled set of Allow and Deny filters, and the levels a server
//! combines.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::ast::{Action, Filter};
use crate::error::Error;
use crate::eval::{
    Ctx, Decision, NetgroupProvider, Outcome, RuleBook, Verdict, applies_to, decide_over,
};
use crate::index::Index;
use crate::lookup::{Lookups, lookup_name};
use crate::parse::{parse_file, parse_ldap};
use crate::query::{NameLookup, Need, Query, UserLookup};

/// The Allow and Deny filters of one level (a service's
/// `domainallowed`/`domainnotallowed`, a domain's or a user's attribute),
/// compiled into an index.
///
/// Allow filters are checked before Deny filters, each list in order; the
/// first match decides. When nothing matches, access is granted — except
/// when the set has Allow filters and no Deny filters: then it is denied.
pub struct FilterSet {
    /// Allow filters, then Deny filters.
    rules: Vec<Filter>,
    allow_count: usize,
    sources: [Arc<str>; 2],
    netgroups: Option<Arc<dyn NetgroupProvider>>,
    index: Index,
}

impl fmt::Debug for FilterSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FilterSet")
            .field("allow", &self.allow().len())
            .field("deny", &self.deny().len())
            .field("sources", &self.sources)
            .finish_non_exhaustive()
    }
}

/// Builds a [`FilterSet`].
#[derive(Debug, Default)]
pub struct FilterSetBuilder {
    allow: Vec<Filter>,
    deny: Vec<Filter>,
    sources: [Option<Arc<str>>; 2],
    netgroups: Option<Arc<dyn NetgroupProvider>>,
}

impl FilterSetBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        FilterSetBuilder::default()
    }

    /// Adds Allow filters from `source` (their actions are set to Allow).
    #[must_use]
    pub fn allow(mut self, source: &str, filters: Vec<Filter>) -> Self {
        self.sources[0].get_or_insert_with(|| source.into());
        self.allow.extend(filters.into_iter().map(|mut f| {
            f.action = Action::Allow;
            f
        }));
        self
    }

    /// Adds Deny filters from `source` (their actions are set to Deny).
    #[must_use]
    pub fn deny(mut self, source: &str, filters: Vec<Filter>) -> Self {
        self.sources[1].get_or_insert_with(|| source.into());
        self.deny.extend(filters.into_iter().map(|mut f| {
            f.action = Action::Deny;
            f
        }));
        self
    }

    /// Adds filters that carry their own action (the LDAP form).
    #[must_use]
    pub fn filters(mut self, source: &str, filters: Vec<Filter>) -> Self {
        for f in filters {
            let slot = usize::from(f.action == Action::Deny);
            self.sources[slot].get_or_insert_with(|| source.into());
            match f.action {
                Action::Allow => self.allow.push(f),
                Action::Deny => self.deny.push(f),
            }
        }
        self
    }

    /// Sets the netgroup provider for `@netgroup` patterns.
    #[must_use]
    pub fn netgroups(mut self, provider: Arc<dyn NetgroupProvider>) -> Self {
        self.netgroups = Some(provider);
        self
    }

    /// Compiles the set.
    pub fn build(self) -> FilterSet {
        let allow_count = self.allow.len();
        let mut rules = self.allow;
        rules.extend(self.deny);
        let index = Index::build(&rules);
        let [a, d] = self.sources;
        FilterSet {
            rules,
            allow_count,
            sources: [
                a.unwrap_or_else(|| "allow".into()),
                d.unwrap_or_else(|| "deny".into()),
            ],
            netgroups: self.netgroups,
            index,
        }
    }
}

impl FilterSet {
    /// A builder.
    pub fn builder() -> FilterSetBuilder {
        FilterSetBuilder::new()
    }

    /// Parses an allow file and a deny file (file form), either of which
    /// may be absent: `(source name, text)`.
    ///
    /// # Errors
    ///
    /// The first syntax error (prefix it with the source name to report it).
    pub fn from_files(
        allow: Option<(&str, &str)>,
        deny: Option<(&str, &str)>,
    ) -> Result<Self, Error> {
        let mut b = FilterSetBuilder::new();
        if let Some((name, text)) = allow {
            b = b.allow(name, parse_file(text, Action::Allow)?);
        }
        if let Some((name, text)) = deny {
            b = b.deny(name, parse_file(text, Action::Deny)?);
        }
        Ok(b.build())
    }

    /// Parses an LDAP attribute value (`+imap:ALL$-pop:*`).
    ///
    /// # Errors
    ///
    /// The first syntax error.
    pub fn from_ldap(source: &str, value: &str) -> Result<Self, Error> {
        Ok(FilterSetBuilder::new()
            .filters(source, parse_ldap(value)?)
            .build())
    }

    /// The Allow filters, in order.
    pub fn allow(&self) -> &[Filter] {
        &self.rules[..self.allow_count]
    }

    /// The Deny filters, in order.
    pub fn deny(&self) -> &[Filter] {
        &self.rules[self.allow_count..]
    }

    /// Source names of the Allow and Deny lists.
    pub fn sources(&self) -> (&str, &str) {
        (&self.sources[0], &self.sources[1])
    }

    /// Whether the set has Allow filters but no Deny filters at all (then
    /// every service it names has the implicit deny).
    pub fn is_allow_only(&self) -> bool {
        self.allow_count > 0 && self.rules.len() == self.allow_count
    }

    /// Whether the set has no filters at all (everything is granted).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether a netgroup provider is set.
    pub fn has_netgroups(&self) -> bool {
        self.netgroups.is_some()
    }

    fn book(&self) -> RuleBook<'_> {
        RuleBook {
            rules: &self.rules,
            sources: [&self.sources[0], &self.sources[1]],
            ctx: Ctx {
                netgroups: self.netgroups.as_deref(),
            },
        }
    }

    /// Evaluates the query with the compiled index: a decision, or the
    /// lookup needed first.
    pub fn evaluate(&self, q: &Query) -> Outcome {
        thread_local! {
            // Reused candidate buffer: no allocation per decision.
            static IDS: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let index = self.index.for_service(q.service());
        let allow_only = match index.allow_only() {
            Some(a) => a,
            // A service no filter names: only wildcard and glob filters can
            // apply.
            None => self.allow_only_among(self.index.unnamed_rules(), q.service()),
        };
        IDS.with(|cell| match cell.try_borrow_mut() {
            Ok(mut ids) => {
                index.candidates(q, &mut ids);
                decide_over(&self.book(), ids.iter().map(|&i| i as usize), q, allow_only)
            }
            // Re-entered (a netgroup provider evaluating filters): use a
            // fresh buffer.
            Err(_) => {
                let mut ids = Vec::new();
                index.candidates(q, &mut ids);
                decide_over(&self.book(), ids.iter().map(|&i| i as usize), q, allow_only)
            }
        })
    }

    /// Evaluates the query by checking every filter in order (the reference
    /// the index is tested against).
    pub fn evaluate_naive(&self, q: &Query) -> Outcome {
        let allow_only = self.allow_only_among(0..self.rules.len(), q.service());
        decide_over(&self.book(), 0..self.rules.len(), q, allow_only)
    }

    /// Whether, among the given filters, Allow filters but no Deny filters
    /// apply to `service`.
    fn allow_only_among(&self, ids: impl Iterator<Item = usize>, service: &str) -> bool {
        let (mut allow, mut deny) = (false, false);
        for i in ids {
            let Some(f) = self.rules.get(i) else { continue };
            if (f.action == Action::Allow && allow) || (f.action == Action::Deny && deny) {
                continue;
            }
            if applies_to(f, service) {
                match f.action {
                    Action::Allow => allow = true,
                    Action::Deny => deny = true,
                }
            }
        }
        allow && !deny
    }

    /// Whether only Allow filters (and at least one) apply to `service`,
    /// so that a client matching none is denied.
    pub fn is_allow_only_for(&self, service: &str) -> bool {
        self.allow_only_among(0..self.rules.len(), &service.to_ascii_lowercase())
    }

    /// Decides without any lookup: lookups not done count as unknown.
    pub fn decide_offline(&self, q: &Query) -> Decision {
        let mut q = q.clone();
        q.without_lookups();
        match self.evaluate(&q) {
            Outcome::Done(d) => d,
            // Unreachable: every lookup is recorded. Fail closed anyway.
            Outcome::Need(n) => Decision {
                verdict: Verdict::Tempfail,
                reason: crate::eval::Reason::LookupFailed(vec![n]),
            },
        }
    }

    /// Decides, doing the lookups the decision needs (and only those) with
    /// the given providers, and records them in the query (so another level
    /// evaluated with the same query reuses them).
    pub async fn decide(&self, q: &mut Query, lookups: &Lookups<'_>) -> Decision {
        // Each round records one lookup that was not done, so this ends
        // after at most three rounds.
        for _ in 0..4 {
            match self.evaluate(q) {
                Outcome::Done(d) => return d,
                Outcome::Need(need) => perform(need, q, lookups).await,
            }
        }
        self.decide_offline(q)
    }
}

/// Does one lookup and records it in the query.
pub async fn perform(need: Need, q: &mut Query, lookups: &Lookups<'_>) {
    tracing::debug!(%need, "access filter lookup");
    match need {
        Need::ClientName | Need::ServerName => {
            let ep = if need == Need::ClientName {
                q.client()
            } else {
                q.server()
            };
            let result = match (lookups.resolver, ep.addr()) {
                (Some(r), Some(addr)) => lookup_name(r, addr).await,
                _ => NameLookup::Unknown,
            };
            if need == Need::ClientName {
                q.client_mut().set_name(result);
            } else {
                q.server_mut().set_name(result);
            }
        }
        Need::User => {
            let c = q.client();
            let s = q.server();
            let result = match (lookups.ident, c.addr(), c.port(), s.addr(), s.port()) {
                (Some(ident), Some(ca), Some(cp), Some(sa), Some(sp)) => {
                    ident
                        .user(SocketAddr::new(ca, cp), SocketAddr::new(sa, sp))
                        .await
                }
                _ => UserLookup::Unknown,
            };
            q.set_user(result);
        }
    }
}

/// The level a filter set applies at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    /// `service.X.domainallowed` / `domainnotallowed`: when the connection
    /// arrives.
    Service,
    /// The domain's `mailDomainAllowedServiceAccess`: once the user's
    /// domain is known.
    Domain,
    /// The user's `mailAllowedServiceAccess`: once the user is known.
    User,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Service => "service",
            Level::Domain => "domain",
            Level::User => "user",
        })
    }
}

/// The decisions of several levels, combined: any Deny wins, then any
/// Tempfail, otherwise Allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Combined {
    /// The combined verdict.
    pub verdict: Verdict,
    /// Index into `levels` of the level that decided (the first Deny, or the
    /// first Tempfail); `None` when every level granted.
    pub decided_by: Option<usize>,
    /// Every level's decision, in the order given.
    pub levels: Vec<(Level, Decision)>,
}

/// Combines level decisions: any Deny wins, then any Tempfail; otherwise
/// (including no levels at all) Allow.
pub fn combine(levels: Vec<(Level, Decision)>) -> Combined {
    let pick = |v: Verdict| levels.iter().position(|(_, d)| d.verdict == v);
    let (verdict, decided_by) = match (pick(Verdict::Deny), pick(Verdict::Tempfail)) {
        (Some(i), _) => (Verdict::Deny, Some(i)),
        (None, Some(i)) => (Verdict::Tempfail, Some(i)),
        (None, None) => (Verdict::Allow, None),
    };
    Combined {
        verdict,
        decided_by,
        levels,
    }
}

impl fmt::Display for Combined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.verdict)?;
        for (i, (level, d)) in self.levels.iter().enumerate() {
            let mark = if Some(i) == self.decided_by {
                " (decisive)"
            } else {
                ""
            };
            write!(f, "\n  {level} level{mark}: {d}")?;
        }
        Ok(())
    }
}
