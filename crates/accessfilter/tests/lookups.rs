//! Lazy lookups through the `Resolver` and `IdentLookup` traits, the
//! forward-confirmed name lookup, the RFC 1413 client against a local
//! identd, and the hickory resolver's timeouts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use portcullis_accessfilter::net::{DnsResolver, IdentClient};
use portcullis_accessfilter::{
    BoxFuture, DnsAnswer, Endpoint, Family, FilterSet, Lookups, NameLookup, Query, Resolver,
    UserLookup, Verdict, lookup_name,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, UdpSocket};

#[derive(Debug, Default)]
struct FakeDns {
    ptr: HashMap<IpAddr, DnsAnswer<Vec<String>>>,
    /// Addresses of a name; the answer of the family asked is the
    /// addresses of that family, `NotFound` when there are none.
    addrs: HashMap<String, DnsAnswer<Vec<IpAddr>>>,
    /// Per-family answers that override `addrs` (a timeout in one family).
    family_answers: HashMap<(String, Family), DnsAnswer<Vec<IpAddr>>>,
    calls: Mutex<Vec<String>>,
}

impl Resolver for FakeDns {
    fn reverse(&self, addr: IpAddr) -> BoxFuture<'_, DnsAnswer<Vec<String>>> {
        self.calls.lock().unwrap().push(format!("PTR {addr}"));
        let a = self.ptr.get(&addr).cloned().unwrap_or(DnsAnswer::NotFound);
        Box::pin(async move { a })
    }
    fn forward<'a>(
        &'a self,
        name: &'a str,
        family: Family,
    ) -> BoxFuture<'a, DnsAnswer<Vec<IpAddr>>> {
        let kind = match family {
            Family::V4 => "A",
            Family::V6 => "AAAA",
        };
        self.calls.lock().unwrap().push(format!("{kind} {name}"));
        let a = match self.family_answers.get(&(name.to_owned(), family)) {
            Some(a) => a.clone(),
            None => match self.addrs.get(name) {
                Some(DnsAnswer::Found(all)) => {
                    let mine: Vec<IpAddr> = all
                        .iter()
                        .copied()
                        .filter(|a| Family::of(*a) == family)
                        .collect();
                    if mine.is_empty() {
                        DnsAnswer::NotFound
                    } else {
                        DnsAnswer::Found(mine)
                    }
                }
                Some(other) => other.clone(),
                None => DnsAnswer::NotFound,
            },
        };
        Box::pin(async move { a })
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A query whose server end is unknown (what-if, as filtertest asks).
fn query(service: &str, addr: &str) -> Query {
    Query::with_endpoints(service, Endpoint::new(ip(addr)), Endpoint::unknown())
}

fn dns() -> FakeDns {
    let mut d = FakeDns::default();
    // (address, its PTR name, the name's addresses)
    let names: [(&str, &str, &[&str]); 5] = [
        ("192.0.2.1", "Mail.Example.COM.", &["192.0.2.1"]),
        ("192.0.2.2", "bank.example.", &["198.51.100.7"]),
        // A dual-stack name whose A query times out (below) while AAAA
        // answers.
        ("192.0.2.5", "dual.example", &["2001:db8::5"]),
        ("2001:db8::5", "dual.example", &["2001:db8::5"]),
        // A name with only an IPv6 address, asked for an IPv4 client:
        // NODATA in the client's family is a definite mismatch.
        ("192.0.2.6", "v6only.example", &["2001:db8::6"]),
    ];
    for (addr, name, addrs) in names {
        d.ptr
            .insert(ip(addr), DnsAnswer::Found(vec![name.to_owned()]));
        let key = name.trim_end_matches('.').to_ascii_lowercase();
        d.addrs
            .insert(key, DnsAnswer::Found(addrs.iter().map(|a| ip(a)).collect()));
    }
    d.family_answers
        .insert(("dual.example".into(), Family::V4), DnsAnswer::Tempfail);
    d.ptr.insert(ip("192.0.2.3"), DnsAnswer::Tempfail);
    d.ptr.insert(
        ip("192.0.2.4"),
        DnsAnswer::Found(vec!["slow.example".into()]),
    );
    d.addrs.insert("slow.example".into(), DnsAnswer::Tempfail);
    d
}

#[tokio::test]
async fn forward_confirmed_names() {
    let d = dns();
    assert_eq!(
        lookup_name(&d, ip("192.0.2.1")).await,
        NameLookup::Verified("mail.example.com".into())
    );
    assert_eq!(
        lookup_name(&d, ip("192.0.2.2")).await,
        NameLookup::Mismatch("bank.example".into())
    );
    assert_eq!(lookup_name(&d, ip("192.0.2.3")).await, NameLookup::Tempfail);
    assert_eq!(lookup_name(&d, ip("192.0.2.4")).await, NameLookup::Tempfail);
    assert_eq!(lookup_name(&d, ip("192.0.2.99")).await, NameLookup::Unknown);
}

#[tokio::test]
async fn forward_lookup_asks_only_the_clients_family() {
    let d = dns();
    // IPv4 client: only A is asked; its timeout is a temporary failure,
    // whatever AAAA would say, so DNSSPOOFER cannot match on it.
    assert_eq!(lookup_name(&d, ip("192.0.2.5")).await, NameLookup::Tempfail);
    assert_eq!(
        d.calls.lock().unwrap().clone(),
        vec!["PTR 192.0.2.5".to_owned(), "A dual.example".to_owned()]
    );
    let set = FilterSet::from_files(None, Some(("deny", "ALL: DNSSPOOFER\n"))).unwrap();
    let lookups = Lookups {
        resolver: Some(&d),
        ident: None,
    };
    let mut q = query("imap", "192.0.2.5");
    assert_eq!(
        set.decide(&mut q, &lookups).await.verdict,
        Verdict::Tempfail
    );
    // IPv6 client of the same name: AAAA answers, the name is verified.
    d.calls.lock().unwrap().clear();
    assert_eq!(
        lookup_name(&d, ip("2001:db8::5")).await,
        NameLookup::Verified("dual.example".into())
    );
    assert_eq!(
        d.calls.lock().unwrap().clone(),
        vec!["PTR 2001:db8::5".to_owned(), "AAAA dual.example".to_owned()]
    );
    // NODATA in the client's family is a definite mismatch.
    assert_eq!(
        lookup_name(&d, ip("192.0.2.6")).await,
        NameLookup::Mismatch("v6only.example".into())
    );
    // An IPv4-mapped client is an IPv4 client.
    assert_eq!(Family::of(ip("::ffff:192.0.2.5")), Family::V4);
}

#[tokio::test]
async fn lookups_happen_only_when_needed() {
    let set = FilterSet::from_files(
        Some(("allow", "imap: 10.0.0.0/8\nimap: .example.com\n")),
        Some(("deny", "ALL: DNSSPOOFER\nimap: ALL\n")),
    )
    .unwrap();
    let d = dns();
    let lookups = Lookups {
        resolver: Some(&d),
        ident: None,
    };
    // Decided by address: no DNS.
    let mut q = query("imap", "10.1.2.3");
    assert_eq!(set.decide(&mut q, &lookups).await.verdict, Verdict::Allow);
    assert!(d.calls.lock().unwrap().is_empty());
    // Needs the name.
    let mut q = query("imap", "192.0.2.1");
    assert_eq!(set.decide(&mut q, &lookups).await.verdict, Verdict::Allow);
    assert_eq!(
        q.client().name(),
        &NameLookup::Verified("mail.example.com".into())
    );
    assert_eq!(d.calls.lock().unwrap().len(), 2);
    let mut q = query("pop", "192.0.2.2");
    assert_eq!(set.decide(&mut q, &lookups).await.verdict, Verdict::Deny);
    let mut q = query("pop", "192.0.2.3");
    assert_eq!(
        set.decide(&mut q, &lookups).await.verdict,
        Verdict::Tempfail
    );
    // No resolver: the name cannot be looked up, which is a temporary
    // failure, never a silent grant through the DNSSPOOFER deny.
    assert!(set.needs_names());
    let mut q = query("pop", "192.0.2.2");
    assert_eq!(
        set.decide(&mut q, &Lookups::default()).await.verdict,
        Verdict::Tempfail
    );
    assert_eq!(q.client().name(), &NameLookup::Tempfail);
    // A set decided by addresses alone needs no resolver.
    let by_addr = FilterSet::from_files(None, Some(("deny", "ALL: 192.0.2.0/24\n"))).unwrap();
    assert!(!by_addr.needs_names());
    let mut q = query("pop", "192.0.2.2");
    assert_eq!(
        by_addr.decide(&mut q, &Lookups::default()).await.verdict,
        Verdict::Deny
    );
}

/// A one-shot identd on 127.0.0.1 that answers `reply` (with the ports of
/// the query) or stays silent.
async fn identd(reply: Option<&'static str>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let mut stream = BufReader::new(stream);
        let mut line = String::new();
        if stream.read_line(&mut line).await.is_err() {
            return;
        }
        match reply {
            Some(r) => {
                let ports = line.trim_end().to_owned();
                let _ = stream
                    .get_mut()
                    .write_all(format!("{ports} : {r}\r\n").as_bytes())
                    .await;
            }
            // Silent: hold the connection open until the test ends, so the
            // client can only time out, however long it takes to notice.
            None => std::future::pending::<()>().await,
        }
    });
    port
}

fn ident_query(service: &str) -> Query {
    let mut client = Endpoint::new(ip("127.0.0.1"));
    client.set_port(40000);
    client.set_name(NameLookup::Verified("localhost".into()));
    let mut server = Endpoint::new(ip("127.0.0.1"));
    server.set_port(143);
    Query::with_endpoints(service, client, server)
}

#[tokio::test]
async fn ident_client_against_a_local_identd() {
    let set = FilterSet::from_files(
        Some(("allow", "imap: alice@ALL\n")),
        Some(("deny", "ALL: ALL\n")),
    )
    .unwrap();
    // The verdict for a fresh query with this ident client, and what the
    // lookup recorded.
    let decide = |ident: IdentClient| {
        let set = &set;
        async move {
            let mut q = ident_query("imap");
            let lookups = Lookups {
                resolver: None,
                ident: Some(&ident),
            };
            let verdict = set.decide(&mut q, &lookups).await.verdict;
            (verdict, q.user().clone())
        }
    };
    let answering = |port| {
        IdentClient::new()
            .with_port(port)
            .with_timeout(Duration::from_secs(60))
    };
    let silent = |port| {
        IdentClient::new()
            .with_port(port)
            .with_timeout(Duration::from_millis(300))
    };

    let port = identd(Some("USERID : UNIX : alice")).await;
    assert_eq!(
        decide(answering(port)).await,
        (Verdict::Allow, UserLookup::Known("alice".into()))
    );
    let port = identd(Some("ERROR : NO-USER")).await;
    assert_eq!(
        decide(answering(port)).await,
        (Verdict::Deny, UserLookup::Unknown)
    );
    // Silent identd: by default the timeout is a temporary failure (it
    // says nothing about the user), so the deny of unknown users does not
    // apply on it.
    let port = identd(None).await;
    assert!(silent(port).timeout_is_tempfail);
    assert_eq!(
        decide(silent(port)).await,
        (Verdict::Tempfail, UserLookup::Tempfail)
    );
    // tcp_wrappers' behaviour on request: the timeout makes the user unknown.
    let port = identd(None).await;
    assert_eq!(
        decide(silent(port).timeout_means_unknown()).await,
        (Verdict::Deny, UserLookup::Unknown)
    );
    // A set that needs the user and no ident client: a temporary failure.
    assert!(set.needs_user());
    let mut q = ident_query("imap");
    assert_eq!(
        set.decide(&mut q, &Lookups::default()).await.verdict,
        Verdict::Tempfail
    );
    assert_eq!(IdentClient::new().timeout, Duration::from_secs(10));
}

#[tokio::test]
async fn hickory_resolver_timeouts_are_tempfail() {
    // A name server that never answers.
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = silent.local_addr().unwrap();
    let r = DnsResolver::with_servers(&[addr], Duration::from_millis(300)).unwrap();
    assert_eq!(r.reverse(ip("192.0.2.1")).await, DnsAnswer::Tempfail);
    assert_eq!(lookup_name(&r, ip("192.0.2.1")).await, NameLookup::Tempfail);
    let set = FilterSet::from_files(None, Some(("deny", "ALL: DNSSPOOFER\n"))).unwrap();
    let mut q = query("imap", "192.0.2.1");
    let lookups = Lookups {
        resolver: Some(&r),
        ident: None,
    };
    assert_eq!(
        set.decide(&mut q, &lookups).await.verdict,
        Verdict::Tempfail
    );
    drop(silent);
}
