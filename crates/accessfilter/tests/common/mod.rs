//! Generators shared by the property tests: rule text over a small universe
//! of names and addresses, and queries over the same universe.
#![allow(dead_code, unreachable_pub)]

use std::net::IpAddr;

use portcullis_accessfilter::{
    BoxFuture, Endpoint, NameLookup, NetgroupProvider, Query, UserLookup,
};
use proptest::prelude::*;

pub const SERVICES: &[&str] = &["imap", "pop", "http", "smtp"];
pub const USERS: &[&str] = &["alice", "bob"];

/// Client addresses of the universe.
pub fn addrs() -> Vec<String> {
    let mut v = Vec::new();
    for a in 0..3 {
        for b in 0..3 {
            for c in 1..4 {
                v.push(format!("10.{a}.{b}.{c}"));
            }
        }
    }
    v.extend(["192.168.1.5", "2001:db8::1", "2001:db8::2", "2001:db8:1::1"].map(String::from));
    v
}

/// Verified names of the universe: `hN.dM.test`, and local names `hN`.
pub fn names() -> Vec<String> {
    let mut v = Vec::new();
    for h in 0..4 {
        for d in 0..3 {
            v.push(format!("h{h}.d{d}.test"));
        }
        v.push(format!("h{h}"));
    }
    v
}

fn upper_sometimes(s: String) -> BoxedStrategy<String> {
    let up = s.to_ascii_uppercase();
    prop_oneof![3 => Just(s), 1 => Just(up)].boxed()
}

fn keyword(k: &'static str) -> BoxedStrategy<String> {
    prop_oneof![4 => Just(k.to_owned()), 1 => Just(k.to_ascii_lowercase())].boxed()
}

/// A host pattern of the language tcp_wrappers shares (`full` adds ours).
pub fn host_pattern(full: bool) -> BoxedStrategy<String> {
    let shared = prop_oneof![
        keyword("ALL"),
        Just("*".to_owned()),
        keyword("KNOWN"),
        keyword("UNKNOWN"),
        keyword("LOCAL"),
        keyword("PARANOID"),
        (0..3u8).prop_flat_map(|d| upper_sometimes(format!(".d{d}.test"))),
        Just(".test".to_owned()),
        (0..4u8, 0..3u8).prop_flat_map(|(h, d)| upper_sometimes(format!("h{h}.d{d}.test"))),
        (0..4u8).prop_map(|h| format!("h{h}")),
        (0..4u8).prop_flat_map(|h| upper_sometimes(format!("h{h}."))),
        (0..3u8).prop_map(|a| format!("10.{a}.")),
        (0..3u8, 0..3u8).prop_map(|(a, b)| format!("10.{a}.{b}.")),
        (0..3u8, 0..3u8, 1..4u8).prop_map(|(a, b, c)| format!("10.{a}.{b}.{c}")),
        (0..3u8).prop_map(|a| format!("10.{a}.0.0/255.255.0.0")),
        (0..3u8, 0..3u8).prop_map(|(a, b)| format!("10.{a}.{b}.0/255.255.255.0")),
        (0..3u8, 0..3u8).prop_map(|(a, b)| format!("10.{a}.{b}.1/255.255.255.0")),
        (0..3u8, 0..3u8, 1..4u8).prop_map(|(a, b, c)| format!("10.{a}.{b}.{c}/255.255.255.254")),
        (0..3u8).prop_map(|a| format!("10.{a}.0.0/16")),
        (0..3u8, 0..3u8).prop_map(|(a, b)| format!("10.{a}.{b}.0/24")),
        (0..3u8, 0..3u8, 0..4u8).prop_map(|(a, b, c)| format!("10.{a}.{b}.{c}/31")),
        Just("10.0.0.0/8".to_owned()),
        Just("0.0.0.0/0.0.0.0".to_owned()),
        Just("[2001:db8::1]".to_owned()),
        Just("[2001:db8::]/32".to_owned()),
        Just("[2001:db8:1::]/48".to_owned()),
        Just("[2001:db8::]/126".to_owned()),
        (0..3u8).prop_map(|d| format!("h?.d{d}.test")),
        (0..3u8).prop_map(|d| format!("*.d{d}.test")),
        (0..3u8).prop_map(|a| format!("10.{a}.*")),
        (0..3u8).prop_map(|c| format!("10.?.?.{c}")),
        Just("h*".to_owned()),
    ];
    if !full {
        return shared.boxed();
    }
    prop_oneof![
        6 => shared,
        1 => keyword("DNSSPOOFER"),
        1 => (0..2u8).prop_map(|g| format!("@group{g}")),
        1 => (0..3u8).prop_map(|a| format!("10.{a}.1.")),
    ]
    .boxed()
}

/// A client pattern: host, or user@host.
pub fn client_pattern(full: bool) -> BoxedStrategy<String> {
    let user = prop_oneof![
        Just("alice".to_owned()),
        Just("ALICE".to_owned()),
        Just("bob".to_owned()),
        keyword("KNOWN"),
        keyword("UNKNOWN"),
        keyword("ALL"),
        Just("a*".to_owned()),
    ];
    prop_oneof![
        4 => host_pattern(full),
        1 => (user, host_pattern(full)).prop_map(|(u, h)| format!("{u}@{h}")),
    ]
    .boxed()
}

/// A service pattern (servers are unknown in the oracle, so `@` forms are
/// limited to what an unknown server decides).
pub fn service_pattern(full: bool) -> BoxedStrategy<String> {
    let shared = prop_oneof![
        4 => prop::sample::select(SERVICES).prop_map(str::to_owned),
        2 => keyword("ALL"),
        1 => Just("IMAP".to_owned()),
        1 => Just("im*".to_owned()),
        1 => Just("?op".to_owned()),
        1 => prop::sample::select(vec!["imap@ALL", "pop@UNKNOWN", "imap@10.0.0.1", "http@KNOWN", "ALL@LOCAL", "smtp@10.0."]).prop_map(str::to_owned),
    ];
    if !full {
        return shared.boxed();
    }
    prop_oneof![
        4 => shared,
        1 => prop::sample::select(vec!["imap@10.9.9.9", "ALL@.srv.test", "pop@10.9.", "http@[2001:db8::9]", "imap@mail.srv.test"]).prop_map(str::to_owned),
    ]
    .boxed()
}

fn sep() -> BoxedStrategy<&'static str> {
    prop::sample::select(vec![", ", " ", ",", " ,\t"]).boxed()
}

/// A list with up to two EXCEPT levels.
pub fn list(item: BoxedStrategy<String>) -> BoxedStrategy<String> {
    let level = prop::collection::vec((item, sep()), 1..4).prop_map(|items| {
        let mut s = String::new();
        for (i, (it, sp)) in items.iter().enumerate() {
            if i > 0 {
                s.push_str(sp);
            }
            s.push_str(it);
        }
        s
    });
    prop::collection::vec(level, 1..4)
        .prop_flat_map(|levels| {
            let n = levels.len();
            (Just(levels), prop::collection::vec(keyword("EXCEPT"), n))
        })
        .prop_map(|(levels, excepts)| {
            let mut s = String::new();
            for (i, l) in levels.iter().enumerate() {
                if i > 0 {
                    s.push(' ');
                    s.push_str(&excepts[i]);
                    s.push(' ');
                }
                s.push_str(l);
            }
            s
        })
        .boxed()
}

/// One filter line `services: clients` (no trailing newline).
pub fn filter_line(full: bool) -> BoxedStrategy<String> {
    (
        list(service_pattern(full)),
        list(client_pattern(full)),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(s, c, continued)| {
            if continued {
                // A continuation after a separator.
                format!("{s}: \\\n  {c}")
            } else {
                format!("{s}: {c}")
            }
        })
        .boxed()
}

/// A file: filter lines, sometimes with comments and blank lines, ending in
/// a newline.
pub fn file(full: bool, min: usize, max: usize) -> BoxedStrategy<String> {
    prop::collection::vec(
        prop_oneof![10 => filter_line(full), 1 => Just("# a comment".to_owned()), 1 => Just(String::new())],
        min..max,
    )
    .prop_map(|lines| {
        let mut s = String::new();
        for l in lines {
            s.push_str(&l);
            s.push('\n');
        }
        s
    })
    .boxed()
}

/// A query of the shared universe, in libwrap terms: (service, name,
/// address, user) where the name is a verified name, "unknown" or
/// "paranoid", and the user is a name or "unknown".
#[derive(Debug, Clone)]
pub struct WrapQuery {
    pub service: String,
    pub name: String,
    pub addr: String,
    pub user: String,
}

impl WrapQuery {
    pub fn to_query(&self) -> Query {
        let addr: IpAddr = self.addr.parse().expect("universe address");
        let name = match self.name.as_str() {
            "unknown" => NameLookup::Unknown,
            "paranoid" => NameLookup::Mismatch("h9.spoof.test".into()),
            n => NameLookup::Verified(n.into()),
        };
        Query::with_endpoints(&self.service, Endpoint::new(addr), Endpoint::unknown())
            .client_name(name)
            .user_lookup(UserLookup::given(&self.user))
    }
}

pub fn wrap_query() -> BoxedStrategy<WrapQuery> {
    let name = prop_oneof![
        6 => prop::sample::select(names()),
        1 => Just("unknown".to_owned()),
        1 => Just("paranoid".to_owned()),
    ];
    let user = prop_oneof![
        3 => prop::sample::select(USERS).prop_map(str::to_owned),
        1 => Just("unknown".to_owned()),
    ];
    (
        prop::sample::select(SERVICES),
        name,
        prop::sample::select(addrs()),
        user,
    )
        .prop_map(|(s, n, a, u)| WrapQuery {
            service: s.to_owned(),
            name: n,
            addr: a,
            user: u,
        })
        .boxed()
}

/// Queries over our whole model: lookups not done, failed, server
/// endpoints.
pub fn full_query() -> BoxedStrategy<Query> {
    let name = prop_oneof![
        6 => prop::sample::select(names()).prop_map(NameLookup::Verified),
        1 => Just(NameLookup::Unknown),
        1 => Just(NameLookup::Mismatch("h9.spoof.test".into())),
        1 => Just(NameLookup::NotDone),
        1 => Just(NameLookup::Tempfail),
    ];
    let user = prop_oneof![
        3 => prop::sample::select(USERS).prop_map(|u| UserLookup::Known(u.to_owned())),
        1 => Just(UserLookup::Unknown),
        1 => Just(UserLookup::NotDone),
        1 => Just(UserLookup::Tempfail),
    ];
    let server = prop_oneof![
        2 => Just(Endpoint::unknown()),
        1 => prop::sample::select(vec!["10.9.9.9", "10.0.0.1", "2001:db8::9"]).prop_flat_map(|a| {
            let a: IpAddr = a.parse().expect("address");
            prop_oneof![
                Just(NameLookup::NotDone),
                Just(NameLookup::Verified("mail.srv.test".into())),
                Just(NameLookup::Tempfail),
                Just(NameLookup::Unknown),
            ]
            .prop_map(move |n| {
                let mut e = Endpoint::new(a);
                e.set_name(n);
                e
            })
        }),
    ];
    let service = prop_oneof![
        6 => prop::sample::select(SERVICES).prop_map(str::to_owned),
        1 => Just("smime".to_owned()),
        1 => Just("imaps".to_owned()),
    ];
    let client = prop_oneof![
        8 => prop::sample::select(addrs()).prop_map(|a| Endpoint::new(a.parse().expect("address"))),
        1 => Just(Endpoint::unknown()),
    ];
    (service, client, name, user, server)
        .prop_map(|(s, c, n, u, srv)| {
            let has_addr = c.addr().is_some();
            let q = Query::with_endpoints(&s, c, srv).user_lookup(u);
            if has_addr { q.client_name(n) } else { q }
        })
        .boxed()
}

/// A netgroup provider: `group0` holds the `d0.test` hosts, `group1`
/// fails temporarily.
#[derive(Debug)]
pub struct TestNetgroups;

impl TestNetgroups {
    /// The answer, without the future.
    pub fn answer(netgroup: &str, host: &str) -> Option<bool> {
        match netgroup {
            "group0" => Some(host.ends_with(".d0.test")),
            "group1" => None,
            _ => Some(false),
        }
    }

    /// Records in `q` the answers for the netgroups of the universe and
    /// the query's verified names, as `FilterSet::decide` would.
    pub fn record_all(q: &mut Query) {
        let hosts = q.verified_names();
        for group in ["group0", "group1", "group2"] {
            for host in &hosts {
                q.record_netgroup(group, host, Self::answer(group, host));
            }
        }
    }
}

impl NetgroupProvider for TestNetgroups {
    fn contains<'a>(&'a self, netgroup: &'a str, host: &'a str) -> BoxFuture<'a, Option<bool>> {
        let a = Self::answer(netgroup, host);
        Box::pin(async move { a })
    }
}
