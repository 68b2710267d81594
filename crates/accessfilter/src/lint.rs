//! Checks a filter set for likely mistakes (what `filtercheck` reports).

use std::fmt;
use std::net::IpAddr;

use crate::KNOWN_SERVICES;
use crate::ast::{Action, ClientSpec, Filter, HostPattern, List, ServiceSpec, Word};
use crate::eval::{addr_prefix_net, prefix_mask_v4, prefix_mask_v6};
use crate::set::FilterSet;

pub use crate::checker::{Checker, EXIT_ERRORS, EXIT_WARNINGS};

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Probably a mistake, but the set works as written.
    Warning,
    /// The filter cannot work as written.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// How serious.
    pub severity: Severity,
    /// The source (file or parameter) of the filter concerned; empty for
    /// findings about the whole set.
    pub source: String,
    /// 1-based line (0 for the whole set).
    pub line: u32,
    /// 1-based column (0 for the whole set).
    pub column: u32,
    /// The token concerned (may be empty).
    pub token: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}:{}: ", self.source, self.line, self.column)?;
        }
        write!(f, "{}: {}", self.severity, self.message)?;
        if !self.token.is_empty() {
            write!(f, " at `{}`", self.token)?;
        }
        Ok(())
    }
}

/// Above this many filters, the shadowing check only compares against
/// earlier catch-all filters (the full check is quadratic).
const FULL_SHADOW_LIMIT: usize = 2000;

/// Checks a set: unknown service names, patterns and filters that can never
/// match, filters shadowed by an earlier one, netgroups without a provider,
/// and allow-only sets (the implicit deny).
pub fn check(set: &FilterSet) -> Vec<Diagnostic> {
    let rules: Vec<(&Filter, &str)> = set.filters_with_sources().collect();
    let mut out = Vec::new();
    let diag = |f: &Filter, src: &str, sev: Severity, token: String, message: String| Diagnostic {
        severity: sev,
        source: src.to_owned(),
        line: f.origin.line,
        column: f.origin.column,
        token,
        message,
    };
    for &(f, src) in &rules {
        for s in all_items(&f.services) {
            if let Word::Literal(name) = &s.daemon
                && !KNOWN_SERVICES.contains(&name.as_str())
            {
                out.push(diag(
                    f,
                    src,
                    Severity::Warning,
                    name.clone(),
                    format!(
                        "unknown service name (known: {})",
                        KNOWN_SERVICES.join(", ")
                    ),
                ));
            }
            if let Some(h) = &s.server {
                pattern_checks(f, src, h, set.has_netgroups(), &mut out);
            }
        }
        for c in all_items(&f.clients) {
            pattern_checks(f, src, &c.host, set.has_netgroups(), &mut out);
        }
        let services_dead = f
            .services
            .items
            .iter()
            .all(|s| s.server.as_ref().is_some_and(never_matches_pattern))
            || excepts_all(&f.services, |s| s.daemon == Word::All && s.server.is_none());
        let clients_dead = f.clients.items.iter().all(|c| {
            never_matches_pattern(&c.host)
                || (!set.has_netgroups() && matches!(c.host, HostPattern::Netgroup(_)))
        }) || excepts_all(&f.clients, |c| {
            c.host == HostPattern::All && c.user.as_ref().is_none_or(|u| *u == Word::All)
        });
        if services_dead || clients_dead {
            out.push(diag(
                f,
                src,
                Severity::Warning,
                f.to_string(),
                "filter can never match".into(),
            ));
        }
    }
    // Shadowing.
    let catch_all: Vec<usize> = (0..rules.len())
        .filter(|&i| {
            let f = rules[i].0;
            f.services.except.is_none()
                && f.clients.except.is_none()
                && f.services
                    .items
                    .iter()
                    .any(|s| s.daemon == Word::All && s.server.is_none())
                && f.clients.items.iter().any(|c| {
                    c.host == HostPattern::All && c.user.as_ref().is_none_or(|u| *u == Word::All)
                })
        })
        .collect();
    for j in 1..rules.len() {
        let (later, src) = rules[j];
        let earlier: Box<dyn Iterator<Item = usize>> = if rules.len() <= FULL_SHADOW_LIMIT {
            Box::new(0..j)
        } else {
            Box::new(catch_all.iter().copied().take_while(|&i| i < j))
        };
        for i in earlier {
            let (first, first_src) = rules[i];
            if covers_filter(first, later) {
                let what = if first.action == later.action {
                    "is redundant"
                } else {
                    "never takes effect"
                };
                out.push(diag(
                    later,
                    src,
                    Severity::Warning,
                    later.to_string(),
                    format!(
                        "filter {what}: shadowed by the earlier {} filter at {}:{} (rule {})",
                        first.action, first_src, first.origin.line, first.origin.rule
                    ),
                ));
                break;
            }
        }
    }
    // Allow-only is decided per base service (an `imaps` filter applies to
    // IMAP).
    let mut services: Vec<String> = Vec::new();
    let literals = rules.iter().flat_map(|&(f, _)| {
        all_items(&f.services)
            .into_iter()
            .filter_map(|s| match &s.daemon {
                Word::Literal(l) => Some(l.as_str()),
                _ => None,
            })
    });
    for name in KNOWN_SERVICES.iter().copied().chain(literals) {
        let base = crate::query::base_service(name).0;
        if !services.iter().any(|s| s == base) {
            services.push(base.to_owned());
        }
    }
    let implicit: Vec<String> = services
        .into_iter()
        .filter(|s| set.is_allow_only_for(s))
        .collect();
    if !implicit.is_empty() {
        let mut sources: Vec<&str> = Vec::new();
        for &(f, src) in &rules {
            if f.action == Action::Allow && !sources.contains(&src) {
                sources.push(src);
            }
        }
        let allow_src = sources.join(", ");
        out.push(Diagnostic {
            severity: Severity::Warning,
            source: allow_src.clone(),
            line: 0,
            column: 0,
            token: String::new(),
            message: format!(
                "{allow_src}: only Allow filters apply to {}: a client that matches none of them is denied (implicit deny)",
                implicit.join(", ")
            ),
        });
    }
    out
}

/// Checks the filters of one parameter whose file-form rules get the
/// `default` action (`service.*.domainallowed`: Allow;
/// `domainnotallowed`: Deny): an LDAP-form rule with the other action is
/// legal and kept as written, but a `+` rule in a parameter of denials
/// grants access where the parameter's name promises the opposite, so it
/// is reported (and a `-` rule in a parameter of grants, likewise).
pub fn check_parameter_actions(
    source: &str,
    default: Action,
    filters: &[Filter],
) -> Vec<Diagnostic> {
    filters
        .iter()
        .filter(|f| f.action != default)
        .map(|f| Diagnostic {
            severity: Severity::Warning,
            source: source.to_owned(),
            line: f.origin.line,
            column: f.origin.column,
            token: f.to_string(),
            message: match f.action {
                Action::Allow => "an Allow (`+`) rule in a parameter of Deny filters grants access; put it in the Allow parameter if that is meant".to_owned(),
                Action::Deny => "a Deny (`-`) rule in a parameter of Allow filters denies access; put it in the Deny parameter if that is meant".to_owned(),
            },
        })
        .collect()
}

fn all_items<T>(list: &List<T>) -> Vec<&T> {
    let mut out: Vec<&T> = list.items.iter().collect();
    let mut l = list;
    while let Some(e) = &l.except {
        out.extend(e.items.iter());
        l = e;
    }
    out
}

/// `X EXCEPT <everything>`.
fn excepts_all<T>(list: &List<T>, is_all: impl Fn(&T) -> bool) -> bool {
    list.except
        .as_ref()
        .is_some_and(|e| e.except.is_none() && e.items.iter().any(is_all))
}

fn never_matches_pattern(h: &HostPattern) -> bool {
    match h {
        HostPattern::Net {
            net: IpAddr::V4(n),
            len,
        } => {
            let n = u32::from(*n);
            n & prefix_mask_v4(*len) != n
        }
        HostPattern::Net {
            net: IpAddr::V6(n),
            len,
        } => {
            let n = u128::from(*n);
            n & prefix_mask_v6(*len) != n
        }
        HostPattern::NetMask { net, mask } => u32::from(*net) & u32::from(*mask) != u32::from(*net),
        _ => false,
    }
}

fn pattern_checks(
    f: &Filter,
    src: &str,
    h: &HostPattern,
    netgroups: bool,
    out: &mut Vec<Diagnostic>,
) {
    let mk = |message: String| Diagnostic {
        severity: Severity::Warning,
        source: src.to_owned(),
        line: f.origin.line,
        column: f.origin.column,
        token: h.to_string(),
        message,
    };
    if never_matches_pattern(h) {
        out.push(mk(
            "network has bits set outside its mask: it can never match".into(),
        ));
    }
    if let HostPattern::Netgroup(_) = h
        && !netgroups
    {
        out.push(mk(
            "netgroup without a netgroup provider: it never matches".into()
        ));
    }
}

fn covers_filter(a: &Filter, b: &Filter) -> bool {
    a.services.except.is_none()
        && a.clients.except.is_none()
        && b.services
            .items
            .iter()
            .all(|s| a.services.items.iter().any(|t| covers_service(t, s)))
        && b.clients
            .items
            .iter()
            .all(|c| a.clients.items.iter().any(|t| covers_client(t, c)))
}

fn covers_service(a: &ServiceSpec, b: &ServiceSpec) -> bool {
    if a == b {
        return true;
    }
    a.server.is_none()
        && match (&a.daemon, &b.daemon) {
            (Word::All, _) => true,
            (Word::Literal(x), Word::Literal(y)) => x == y,
            _ => false,
        }
}

fn covers_client(a: &ClientSpec, b: &ClientSpec) -> bool {
    if a == b {
        return true;
    }
    let user_ok = match (&a.user, &b.user) {
        (None | Some(Word::All), _) => true,
        (Some(x), Some(y)) => x == y,
        (Some(_), None) => false,
    };
    user_ok && covers_host(&a.host, &b.host)
}

/// The address range a pattern matches, as (net, len) on 128 bits with a
/// family tag, when it is a plain prefix.
fn range(h: &HostPattern) -> Option<(bool, u128, u8)> {
    match h {
        HostPattern::Addr(IpAddr::V4(a)) => Some((true, u128::from(u32::from(*a)), 32)),
        HostPattern::Addr(IpAddr::V6(a)) => Some((false, u128::from(*a), 128)),
        HostPattern::Net {
            net: IpAddr::V4(n),
            len,
        } => Some((true, u128::from(u32::from(*n)), *len)),
        HostPattern::Net {
            net: IpAddr::V6(n),
            len,
        } => Some((false, u128::from(*n), *len)),
        HostPattern::AddrPrefix(p) => {
            let (n, len) = addr_prefix_net(p);
            Some((true, u128::from(u32::from(n)), len))
        }
        HostPattern::NetMask { net, mask } => {
            let m = u32::from(*mask);
            let len = m.leading_ones();
            (m.checked_shl(len).unwrap_or(0) == 0).then(|| {
                (
                    true,
                    u128::from(u32::from(*net)),
                    u8::try_from(len).unwrap_or(32),
                )
            })
        }
        _ => None,
    }
}

fn covers_host(a: &HostPattern, b: &HostPattern) -> bool {
    if a == b || *a == HostPattern::All {
        return true;
    }
    if let (Some((va, na, la)), Some((vb, nb, lb))) = (range(a), range(b)) {
        if never_matches_pattern(a) {
            return false;
        }
        let width = if va { 32 } else { 128 };
        let mask = |len: u8| -> u128 {
            if len == 0 {
                0
            } else {
                (u128::MAX << (128 - u32::from(len))) >> (128 - width)
            }
        };
        return va == vb && la <= lb && (nb & mask(la)) == na;
    }
    match (a, b) {
        (HostPattern::Suffix(s), HostPattern::Suffix(t)) => t.ends_with(s.as_str()),
        (HostPattern::Suffix(s), HostPattern::Name(n)) => {
            n.len() > s.len() && n.ends_with(s.as_str())
        }
        _ => false,
    }
}

/// Convenience: whether any finding is an error.
pub fn has_errors(diags: &[Diagnostic]) -> bool {
    diags.iter().any(|d| d.severity == Severity::Error)
}

/// The action list name used in messages.
pub fn list_name(action: Action) -> &'static str {
    match action {
        Action::Allow => "allow",
        Action::Deny => "deny",
    }
}
