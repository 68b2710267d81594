//! The compiled index: per service, the filters that can match a client,
//! found by address prefix (binary tries), by hashed domain suffix and by
//! hashed name, instead of scanning every filter.
//!
//! The index only proposes candidates: a superset of the filters that can
//! match (or "maybe" match). Candidates are then checked in order by the
//! same matcher the naive evaluator uses, so both give the same results.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::ast::{Action, Filter, HostPattern, Word};
use crate::eval::{addr_prefix_net, applies_to, prefix_mask_v4, prefix_mask_v6, service_may_match};
use crate::query::base_service;
use crate::query::{NameLookup, Query};

/// A binary trie over address bits; each node lists the filters whose
/// prefix ends there.
#[derive(Debug, Default)]
struct Trie {
    /// Per node, the child node indexes (0 = none; node 0 is the root,
    /// never a child).
    children: Vec<[u32; 2]>,
    /// Per node, the range of `ids` with filters ending there.
    spans: Vec<(u32, u32)>,
    ids: Vec<u32>,
    /// (node, filter id) pairs, filled while building; `freeze` turns them
    /// into `spans` and `ids`.
    pending: Vec<(u32, u32)>,
}

impl Trie {
    fn insert(&mut self, key: u128, len: u8, width: u8, id: u32) {
        if self.children.is_empty() {
            self.children.push([0, 0]);
        }
        let mut node = 0usize;
        for bit in 0..len.min(width) {
            let b = usize::from((key >> (width - 1 - bit)) & 1 == 1);
            let next = self.children[node][b];
            node = if next == 0 {
                let new = u32::try_from(self.children.len()).unwrap_or(u32::MAX);
                self.children.push([0, 0]);
                self.children[node][b] = new;
                new as usize
            } else {
                next as usize
            };
        }
        self.pending
            .push((u32::try_from(node).unwrap_or(u32::MAX), id));
    }

    fn freeze(&mut self) {
        let mut pending = std::mem::take(&mut self.pending);
        pending.sort_unstable();
        self.spans = vec![(0, 0); self.children.len()];
        self.ids = Vec::with_capacity(pending.len());
        let mut i = 0;
        while i < pending.len() {
            let node = pending[i].0;
            let start = u32::try_from(self.ids.len()).unwrap_or(u32::MAX);
            while i < pending.len() && pending[i].0 == node {
                self.ids.push(pending[i].1);
                i += 1;
            }
            let end = u32::try_from(self.ids.len()).unwrap_or(u32::MAX);
            if let Some(span) = self.spans.get_mut(node as usize) {
                *span = (start, end);
            }
        }
    }

    fn collect(&self, key: u128, width: u8, out: &mut Vec<u32>) {
        if self.children.is_empty() {
            return;
        }
        let mut node = 0usize;
        let mut bit = 0u8;
        loop {
            if let Some(&(s, e)) = self.spans.get(node)
                && s != e
            {
                out.extend_from_slice(&self.ids[s as usize..e as usize]);
            }
            if bit == width {
                return;
            }
            let b = usize::from((key >> (width - 1 - bit)) & 1 == 1);
            let next = self.children[node][b];
            if next == 0 {
                return;
            }
            node = next as usize;
            bit += 1;
        }
    }
}

/// The candidates for one service.
#[derive(Debug, Default)]
pub(crate) struct ClientIndex {
    /// Filters with a top-level client pattern that is checked on every
    /// query (wildcards, globs, netgroups, odd masks).
    always: Vec<u32>,
    /// Filters with a top-level name (or suffix) pattern, for when the
    /// name is not known yet.
    name_keyed: Vec<u32>,
    v4: Trie,
    v6: Trie,
    suffixes: HashMap<Box<str>, Vec<u32>>,
    names: HashMap<Box<str>, Vec<u32>>,
    /// For a named service: whether only Allow filters apply to it.
    allow_only: Option<bool>,
}

impl ClientIndex {
    fn add(&mut self, id: u32, f: &Filter) {
        let mut name_keyed = false;
        let mut always = false;
        for c in &f.clients.items {
            match &c.host {
                HostPattern::Addr(IpAddr::V4(a)) => {
                    self.v4.insert(u128::from(u32::from(*a)), 32, 32, id)
                }
                HostPattern::Addr(IpAddr::V6(a)) => self.v6.insert(u128::from(*a), 128, 128, id),
                HostPattern::Net {
                    net: IpAddr::V4(n),
                    len,
                } => {
                    let n = u32::from(*n);
                    // A net with bits outside its prefix never matches.
                    if n & prefix_mask_v4(*len) == n {
                        self.v4.insert(u128::from(n), *len, 32, id);
                    }
                }
                HostPattern::Net {
                    net: IpAddr::V6(n),
                    len,
                } => {
                    let n = u128::from(*n);
                    if n & prefix_mask_v6(*len) == n {
                        self.v6.insert(n, *len, 128, id);
                    }
                }
                HostPattern::NetMask { net, mask } => {
                    let (n, m) = (u32::from(*net), u32::from(*mask));
                    let len = m.leading_ones();
                    if m.checked_shl(len).unwrap_or(0) == 0 {
                        // Contiguous mask.
                        if n & m == n {
                            let len = u8::try_from(len).unwrap_or(32);
                            self.v4.insert(u128::from(n), len, 32, id);
                        }
                    } else {
                        always = true;
                    }
                }
                HostPattern::AddrPrefix(p) => {
                    let (net, len) = addr_prefix_net(p);
                    self.v4.insert(u128::from(u32::from(net)), len, 32, id);
                }
                HostPattern::Suffix(s) => {
                    self.suffixes.entry(s.as_str().into()).or_default().push(id);
                    name_keyed = true;
                }
                HostPattern::Name(n) => {
                    self.names.entry(n.as_str().into()).or_default().push(id);
                    name_keyed = true;
                }
                HostPattern::All
                | HostPattern::Known
                | HostPattern::Unknown
                | HostPattern::Local
                | HostPattern::DnsSpoofer
                | HostPattern::Netgroup(_)
                | HostPattern::NamePrefix(_)
                | HostPattern::Glob(_) => always = true,
            }
        }
        if always {
            self.always.push(id);
        }
        if name_keyed {
            self.name_keyed.push(id);
        }
    }

    fn freeze(&mut self) {
        self.v4.freeze();
        self.v6.freeze();
    }

    /// For a named service, whether only Allow filters apply to it (`None`
    /// for the index of unnamed services, where it depends on the name).
    pub(crate) fn allow_only(&self) -> Option<bool> {
        self.allow_only
    }

    /// Candidate filter ids (ascending, no duplicates) for the query.
    pub(crate) fn candidates(&self, q: &Query, out: &mut Vec<u32>) {
        out.clear();
        out.extend_from_slice(&self.always);
        match q.client().addr() {
            Some(IpAddr::V4(a)) => self.v4.collect(u128::from(u32::from(a)), 32, out),
            Some(IpAddr::V6(a)) => self.v6.collect(u128::from(a), 128, out),
            None => {}
        }
        match q.client().name() {
            NameLookup::Verified(n) => {
                if let Some(ids) = self.names.get(n.as_str()) {
                    out.extend_from_slice(ids);
                }
                if !self.suffixes.is_empty() {
                    for (i, _) in n.match_indices('.').filter(|&(i, _)| i > 0) {
                        if let Some(ids) = self.suffixes.get(&n[i..]) {
                            out.extend_from_slice(ids);
                        }
                    }
                }
            }
            NameLookup::NotDone | NameLookup::Tempfail => out.extend_from_slice(&self.name_keyed),
            NameLookup::Mismatch(_) | NameLookup::Unknown => {}
        }
        out.sort_unstable();
        out.dedup();
    }
}

/// Per-service indexes, plus one for services no filter names.
#[derive(Debug, Default)]
pub(crate) struct Index {
    per_service: HashMap<Box<str>, ClientIndex>,
    other: ClientIndex,
    /// Filters with a wildcard or glob daemon (the only ones that can
    /// apply to a service no filter names).
    unnamed: Vec<usize>,
}

impl Index {
    pub(crate) fn build(rules: &[Filter]) -> Self {
        let mut names: Vec<&str> = rules
            .iter()
            .flat_map(|f| f.services.items.iter())
            .filter_map(|s| match &s.daemon {
                Word::Literal(l) => Some(base_service(l).0),
                _ => None,
            })
            .collect();
        names.sort_unstable();
        names.dedup();
        let mut per_service: HashMap<Box<str>, ClientIndex> = names
            .iter()
            .map(|n| (Box::from(*n), ClientIndex::default()))
            .collect();
        let mut other = ClientIndex::default();
        let mut unnamed = Vec::new();
        for (i, f) in rules.iter().enumerate() {
            let id = u32::try_from(i).unwrap_or(u32::MAX);
            let literal_only = f
                .services
                .items
                .iter()
                .all(|s| matches!(s.daemon, Word::Literal(_)));
            if literal_only {
                let mut seen: Vec<&str> = Vec::new();
                for s in &f.services.items {
                    if let Word::Literal(l) = &s.daemon {
                        // Queries carry base names: `imaps` rules are
                        // candidates for IMAP connections.
                        let l = base_service(l).0;
                        if seen.contains(&l) {
                            continue;
                        }
                        seen.push(l);
                        if let Some(index) = per_service.get_mut(l) {
                            index.add(id, f);
                        }
                    }
                }
            } else {
                unnamed.push(i);
                for (name, index) in &mut per_service {
                    if service_may_match(f, name) {
                        index.add(id, f);
                    }
                }
                // Services not named anywhere: only wildcards and globs match.
                other.add(id, f);
            }
        }
        let mut flags: HashMap<&str, (bool, bool)> = HashMap::new();
        for f in rules {
            let literal_only = f
                .services
                .items
                .iter()
                .all(|s| matches!(s.daemon, Word::Literal(_)));
            let targets: Vec<&str> = if literal_only {
                f.services
                    .items
                    .iter()
                    .filter_map(|s| match &s.daemon {
                        Word::Literal(l) => Some(base_service(l).0),
                        _ => None,
                    })
                    .collect()
            } else {
                names.clone()
            };
            for name in targets {
                if applies_to(f, name) {
                    let e = flags.entry(name).or_default();
                    match f.action {
                        Action::Allow => e.0 = true,
                        Action::Deny => e.1 = true,
                    }
                }
            }
        }
        for (name, index) in &mut per_service {
            let (a, d) = flags.get(&**name).copied().unwrap_or_default();
            index.allow_only = Some(a && !d);
            index.freeze();
        }
        other.freeze();
        Index {
            per_service,
            other,
            unnamed,
        }
    }

    pub(crate) fn unnamed_rules(&self) -> impl Iterator<Item = usize> + '_ {
        self.unnamed.iter().copied()
    }

    pub(crate) fn for_service(&self, service: &str) -> &ClientIndex {
        self.per_service.get(service).unwrap_or(&self.other)
    }
}
