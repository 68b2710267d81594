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
use crate::query::{NameLookup, Need, Query, UserLookup, base_service};

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
    /// The source of each rule (same order): a file, a parameter, an
    /// attribute, named in explanations.
    rule_sources: Vec<Arc<str>>,
    allow_count: usize,
    netgroups: Option<Arc<dyn NetgroupProvider>>,
    /// Every netgroup a pattern names (what to ask the provider about).
    netgroup_names: Vec<String>,
    index: Index,
}

impl fmt::Debug for FilterSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FilterSet")
            .field("allow", &self.allow().len())
            .field("deny", &self.deny().len())
            .finish_non_exhaustive()
    }
}

/// Builds a [`FilterSet`] from filters that each carry their own action
/// and the name of their source.
///
/// There is one way in, [`FilterSetBuilder::filters`]: a filter keeps the
/// action it was parsed with (the default action of a file-form list, or
/// the `+`/`-` of each LDAP-form rule), so a `-imap:bad.example` rule in a
/// parameter that is mostly allows stays a deny.
#[derive(Debug, Default)]
pub struct FilterSetBuilder {
    allow: Vec<(Filter, Arc<str>)>,
    deny: Vec<(Filter, Arc<str>)>,
    netgroups: Option<Arc<dyn NetgroupProvider>>,
}

impl FilterSetBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        FilterSetBuilder::default()
    }

    /// Adds filters from `source` (a file name, a parameter, an
    /// attribute), each with its own action: Allow filters go to the Allow
    /// list, Deny filters to the Deny list, each list keeping the order
    /// filters were added in.
    #[must_use]
    pub fn filters(mut self, source: &str, filters: Vec<Filter>) -> Self {
        let source: Arc<str> = source.into();
        for f in filters {
            match f.action {
                Action::Allow => self.allow.push((f, Arc::clone(&source))),
                Action::Deny => self.deny.push((f, Arc::clone(&source))),
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
        let (rules, rule_sources): (Vec<Filter>, Vec<Arc<str>>) =
            self.allow.into_iter().chain(self.deny).unzip();
        let index = Index::build(&rules);
        let mut netgroup_names: Vec<String> = Vec::new();
        for f in &rules {
            crate::eval::netgroups_named(f, &mut netgroup_names);
        }
        FilterSet {
            rules,
            rule_sources,
            allow_count,
            netgroups: self.netgroups,
            netgroup_names,
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
            b = b.filters(name, parse_file(text, Action::Allow)?);
        }
        if let Some((name, text)) = deny {
            b = b.filters(name, parse_file(text, Action::Deny)?);
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

    /// Every filter with the name of its source: the Allow list, then the
    /// Deny list, each in order.
    pub fn filters_with_sources(&self) -> impl Iterator<Item = (&Filter, &str)> {
        self.rules
            .iter()
            .zip(self.rule_sources.iter().map(|s| &**s))
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

    /// Whether some filter may need a host name (client or server) to
    /// decide: a server that has no resolver should refuse such a set at
    /// start-up, since every decision that depends on a name would be a
    /// temporary failure.
    pub fn needs_names(&self) -> bool {
        self.rules.iter().any(crate::eval::needs_names)
    }

    /// Whether some filter may need the client's user name (RFC 1413).
    pub fn needs_user(&self) -> bool {
        self.rules.iter().any(crate::eval::needs_user)
    }

    /// Whether a netgroup provider is set.
    pub fn has_netgroups(&self) -> bool {
        self.netgroups.is_some()
    }

    fn book(&self) -> RuleBook<'_> {
        RuleBook {
            rules: &self.rules,
            sources: &self.rule_sources,
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
        let service = service.to_ascii_lowercase();
        self.allow_only_among(0..self.rules.len(), base_service(&service).0)
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
        for _ in 0..5 {
            match self.evaluate(q) {
                Outcome::Done(d) => return d,
                Outcome::Need(Need::Netgroups) => self.ask_netgroups(q).await,
                Outcome::Need(need) => perform(need, q, lookups).await,
            }
        }
        self.decide_offline(q)
    }

    /// Asks the provider about every netgroup the set names, for each
    /// verified host name of the query not asked about yet, and records
    /// the answers.
    async fn ask_netgroups(&self, q: &mut Query) {
        let Some(provider) = &self.netgroups else {
            return;
        };
        let hosts = q.verified_names();
        for group in &self.netgroup_names {
            for host in &hosts {
                if q.netgroup_answer(group, host).is_none() {
                    tracing::debug!(netgroup = %group, %host, "netgroup lookup");
                    let member = provider.contains(group, host).await;
                    q.record_netgroup(group, host, member);
                }
            }
        }
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
                // Nothing to look up: the address is unknown.
                (_, None) => NameLookup::Unknown,
                // A name is needed and nothing can ask for it: that is a
                // failure to look up, never a definite "no name".
                (None, Some(_)) => {
                    tracing::warn!(%need, "access filter needs DNS but no resolver is configured");
                    NameLookup::Tempfail
                }
            };
            if need == Need::ClientName {
                q.client_mut().set_name(result);
            } else {
                q.server_mut().set_name(result);
            }
        }
        // The set holds the netgroup provider: FilterSet::decide asks it.
        // Here the membership cannot be asked, which is a temporary failure.
        Need::Netgroups => {
            tracing::warn!("netgroup membership needed outside FilterSet::decide");
            q.fail_netgroups();
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
                (None, Some(_), Some(_), Some(_), Some(_)) => {
                    tracing::warn!("access filter needs ident but no ident client is configured");
                    UserLookup::Tempfail
                }
                // Endpoints without ports: there is no connection to ask
                // about.
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
