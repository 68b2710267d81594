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
    BoxFuture, DnsAnswer, Endpoint, FilterSet, Lookups, NameLookup, Query, Resolver, UserLookup,
    Verdict, lookup_name,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, UdpSocket};

#[derive(Debug, Default)]
struct FakeDns {
    ptr: HashMap<IpAddr, DnsAnswer<Vec<String>>>,
    addrs: HashMap<String, DnsAnswer<Vec<IpAddr>>>,
    calls: Mutex<Vec<String>>,
}

impl Resolver for FakeDns {
    fn reverse(&self, addr: IpAddr) -> BoxFuture<'_, DnsAnswer<Vec<String>>> {
        self.calls.lock().unwrap().push(format!("PTR {addr}"));
        let a = self.ptr.get(&addr).cloned().unwrap_or(DnsAnswer::NotFound);
        Box::pin(async move { a })
    }
    fn forward<'a>(&'a self, name: &'a str) -> BoxFuture<'a, DnsAnswer<Vec<IpAddr>>> {
        self.calls.lock().unwrap().push(format!("A {name}"));
        let a = self.addrs.get(name).cloned().unwrap_or(DnsAnswer::NotFound);
        Box::pin(async move { a })
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn dns() -> FakeDns {
    let mut d = FakeDns::default();
    d.ptr.insert(
        ip("192.0.2.1"),
        DnsAnswer::Found(vec!["Mail.Example.COM.".into()]),
    );
    d.addrs.insert(
        "mail.example.com".into(),
        DnsAnswer::Found(vec![ip("192.0.2.1")]),
    );
    d.ptr.insert(
        ip("192.0.2.2"),
        DnsAnswer::Found(vec!["bank.example.".into()]),
    );
    d.addrs.insert(
        "bank.example".into(),
        DnsAnswer::Found(vec![ip("198.51.100.7")]),
    );
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
    let mut q = Query::new("imap", ip("10.1.2.3"));
    assert_eq!(set.decide(&mut q, &lookups).await.verdict, Verdict::Allow);
    assert!(d.calls.lock().unwrap().is_empty());
    // Needs the name.
    let mut q = Query::new("imap", ip("192.0.2.1"));
    assert_eq!(set.decide(&mut q, &lookups).await.verdict, Verdict::Allow);
    assert_eq!(
        q.client().name(),
        &NameLookup::Verified("mail.example.com".into())
    );
    assert_eq!(d.calls.lock().unwrap().len(), 2);
    let mut q = Query::new("pop", ip("192.0.2.2"));
    assert_eq!(set.decide(&mut q, &lookups).await.verdict, Verdict::Deny);
    let mut q = Query::new("pop", ip("192.0.2.3"));
    assert_eq!(
        set.decide(&mut q, &lookups).await.verdict,
        Verdict::Tempfail
    );
    // No resolver: unknown, never a silent grant through DNSSPOOFER.
    let mut q = Query::new("pop", ip("192.0.2.2"));
    assert_eq!(
        set.decide(&mut q, &Lookups::default()).await.verdict,
        Verdict::Allow
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
    Query::with_client(service, client).server_endpoint(server)
}

#[tokio::test]
async fn ident_client_against_a_local_identd() {
    let set = FilterSet::from_files(
        Some(("allow", "imap: alice@ALL\n")),
        Some(("deny", "ALL: ALL\n")),
    )
    .unwrap();
    let port = identd(Some("USERID : UNIX : alice")).await;
    let ident = IdentClient::new()
        .with_port(port)
        .with_timeout(Duration::from_secs(60));
    let lookups = Lookups {
        resolver: None,
        ident: Some(&ident),
    };
    let mut q = ident_query("imap");
    assert_eq!(set.decide(&mut q, &lookups).await.verdict, Verdict::Allow);
    assert_eq!(q.user(), &UserLookup::Known("alice".into()));

    let port = identd(Some("ERROR : NO-USER")).await;
    let ident = IdentClient::new()
        .with_port(port)
        .with_timeout(Duration::from_secs(60));
    let mut q = ident_query("imap");
    let lookups = Lookups {
        resolver: None,
        ident: Some(&ident),
    };
    assert_eq!(set.decide(&mut q, &lookups).await.verdict, Verdict::Deny);
    assert_eq!(q.user(), &UserLookup::Unknown);

    // Silent identd: the timeout makes the user unknown (or tempfail when
    // configured so).
    let port = identd(None).await;
    let mut ident = IdentClient::new()
        .with_port(port)
        .with_timeout(Duration::from_millis(300));
    ident.timeout_is_tempfail = true;
    let mut q = ident_query("imap");
    let lookups = Lookups {
        resolver: None,
        ident: Some(&ident),
    };
    assert_eq!(
        set.decide(&mut q, &lookups).await.verdict,
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
    let mut q = Query::new("imap", ip("192.0.2.1"));
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
