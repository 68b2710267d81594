//! The relay pool against a real Postfix (started from a scratch
//! configuration by the test-support fixture): XCLIENT hand-off with LOGIN,
//! delivery through the pool, PROXY v1/v2, failover, STARTTLS, and the
//! EHLO filter on Postfix's real EHLO reply. What counts is Postfix's
//! behaviour and its mail log, not our own claims.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use portcullis_popbeforesmtp::cache::BoxFuture;
use portcullis_popbeforesmtp::relay::pool::LOGIN_HANDOFF;
use portcullis_popbeforesmtp::relay::{
    ClientInfo, ClientName, EhloFilter, ForwardLookup, Handoff, ManualClock, RelayAddr, RelayPool,
    RelaySession, RelaySpec, ReverseResolver, TlsPolicy,
};
use portcullis_popbeforesmtp::{Error, Settings, rustls};
use portcullis_test_support::ca::TestCa;
use portcullis_test_support::postfix::{Postfix, PostfixOptions};

const LOG_WAIT: Duration = Duration::from_secs(20);

fn relay(port: u16, handoff: Handoff) -> RelaySpec {
    RelaySpec::new(RelayAddr::new("127.0.0.1", port), handoff, TlsPolicy::Plain)
}

fn client(addr: &str) -> ClientInfo {
    let mut c = ClientInfo::new(
        addr.parse().expect("client address"),
        "127.0.0.1:25".parse().expect("local address"),
    );
    c.helo = Some("pc.client.example".to_owned());
    c
}

fn postfix() -> Postfix {
    Postfix::start().unwrap_or_else(|e| panic!("Postfix fixture: {e}"))
}

/// Bounded: no test step may hang.
async fn bounded<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), fut)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than 30 s"))
}

async fn send(session: &mut RelaySession, rcpt: &str, marker: &str) -> (u16, u16) {
    let mail = session
        .command("MAIL FROM:<sender@client.example>")
        .await
        .expect("MAIL");
    assert_eq!(mail.code(), 250, "{mail}");
    let rcpt_reply = session
        .command(&format!("RCPT TO:<{rcpt}>"))
        .await
        .expect("RCPT");
    if rcpt_reply.code() != 250 {
        session.command("RSET").await.expect("RSET");
        return (rcpt_reply.code(), 0);
    }
    let body = format!(
        "From: sender@client.example\r\nTo: {rcpt}\r\nSubject: {marker}\r\n\r\nbody {marker}\r\n.leading dot line\r\n"
    );
    let done = session.data(body.as_bytes()).await.expect("DATA");
    (250, done.code())
}

#[tokio::test]
async fn xclient_login_lets_postfix_relay_and_the_message_arrives() {
    let pf = postfix();
    let pool = RelayPool::builder(vec![relay(pf.smtp_port(), Handoff::Xclient)])
        .build()
        .expect("pool");
    let mut c = client("192.0.2.10:40000");
    c.login = Some("alice".to_owned());
    let mut s = bounded("connect", pool.connect(&c)).await.expect("connect");
    let (rcpt, data) = bounded(
        "send",
        send(&mut s, "bob@elsewhere.example", "xclient-login-7f3a"),
    )
    .await;
    assert_eq!((rcpt, data), (250, 250));
    bounded("quit", s.quit()).await.expect("quit");

    // Postfix saw the real client and the login, and relayed the message.
    let line = pf
        .wait_for_log(&["sasl_method=XCLIENT", "sasl_username=alice"], LOG_WAIT)
        .unwrap_or_else(|| panic!("no XCLIENT login in the log:\n{}", pf.maillog()));
    assert!(line.contains("[192.0.2.10]"), "{line}");
    assert!(
        pf.wait_for_delivery("xclient-login-7f3a", LOG_WAIT),
        "not delivered:\n{}",
        pf.maillog()
    );
    let dump = pf.sink_dump();
    assert!(dump.contains("bob@elsewhere.example"), "{dump}");
    assert!(
        dump.contains("..leading dot line") || dump.contains(".leading dot line"),
        "{dump}"
    );
    assert!(
        pf.wait_for_log(&["to=<bob@elsewhere.example>", "status=sent"], LOG_WAIT)
            .is_some()
    );
}

#[tokio::test]
async fn without_login_postfix_refuses_to_relay_for_the_client() {
    let pf = postfix();
    let pool = RelayPool::builder(vec![relay(pf.smtp_port(), Handoff::Xclient)])
        .build()
        .expect("pool");
    let c = client("192.0.2.11:40001");
    let mut s = bounded("connect", pool.connect(&c)).await.expect("connect");
    let (rcpt, _) = bounded("send", send(&mut s, "bob@elsewhere.example", "nologin")).await;
    assert_eq!(rcpt, 554, "relay must be denied without LOGIN");
    // A local recipient is still fine for an unauthenticated client.
    let (rcpt, data) = bounded(
        "send",
        send(&mut s, "postmaster@relay.portcullis.test", "local-9b1"),
    )
    .await;
    assert_eq!((rcpt, data), (250, 250));
    s.quit().await.expect("quit");
    let line = pf
        .wait_for_log(&["Relay access denied", "192.0.2.11"], LOG_WAIT)
        .unwrap_or_else(|| panic!("no refusal in the log:\n{}", pf.maillog()));
    // The refusal names the client's address (from XCLIENT), not the proxy's,
    // and no proxy host name leaks in as the client's name.
    assert!(line.contains("unknown[192.0.2.11]"), "{line}");
}

/// The client's reverse name as the test's resolver answers it.
const CLIENT_NAME: &str = "client.portcullis.test";

/// A resolver the test controls, counting its reverse lookups: the test
/// asks nothing of the machine (no `/etc/hosts` entry, no DNS). Every
/// address has the reverse name `name`; that name resolves to `forward`.
#[derive(Debug)]
struct Counting {
    reverse_calls: AtomicUsize,
    name: String,
    forward: ForwardLookup,
}

impl Counting {
    fn new(name: &str, forward: ForwardLookup) -> Self {
        Self {
            reverse_calls: AtomicUsize::new(0),
            name: name.to_owned(),
            forward,
        }
    }

    fn confirming(name: &str, addr: &str) -> Self {
        Self::new(
            name,
            ForwardLookup::Addresses(vec![addr.parse().expect("address")]),
        )
    }

    fn calls(&self) -> usize {
        self.reverse_calls.load(Ordering::SeqCst)
    }
}

impl ReverseResolver for Counting {
    fn reverse(&self, _ip: std::net::IpAddr) -> BoxFuture<'_, ClientName> {
        self.reverse_calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(std::future::ready(ClientName::Name(self.name.clone())))
    }

    fn forward<'a>(&'a self, name: &'a str) -> BoxFuture<'a, ForwardLookup> {
        assert_eq!(name, self.name, "forward lookup of the reverse name");
        Box::pin(std::future::ready(self.forward.clone()))
    }
}

#[tokio::test]
async fn xclient_name_from_client_lookup() {
    let pf = postfix();
    // ClientLookup yes: the pool asks its resolver for the client's name once
    // and passes it as NAME. Without the lookup Postfix would log
    // `unknown[127.0.0.1]` (NAME=[UNAVAILABLE]).
    let resolver = Arc::new(Counting::confirming(CLIENT_NAME, "127.0.0.1"));
    let n = CLIENT_NAME;
    let pool = RelayPool::builder(vec![relay(pf.smtp_port(), Handoff::Xclient)])
        .client_lookup(resolver.clone())
        .build()
        .expect("pool");
    let mut c = client("127.0.0.1:40002");
    c.login = Some("carol".to_owned());
    let mut s = bounded("connect", pool.connect(&c)).await.expect("connect");
    let (rcpt, data) = bounded("send", send(&mut s, "x@elsewhere.example", "named")).await;
    assert_eq!((rcpt, data), (250, 250));
    s.quit().await.expect("quit");
    assert!(
        pf.wait_for_log(
            &[&format!("client={n}[127.0.0.1]"), "sasl_username=carol"],
            LOG_WAIT
        )
        .is_some(),
        "{}",
        pf.maillog()
    );
    assert_eq!(resolver.calls(), 1);

    // [TEMPUNAVAIL] is passed as such; Postfix accepts it. A name the
    // caller already has is not looked up again.
    let mut c = client("192.0.2.13:40003");
    c.name = Some(ClientName::TempUnavail);
    let s = bounded("connect", pool.connect(&c)).await.expect("connect");
    s.quit().await.expect("quit");
    assert_eq!(resolver.calls(), 1);
    assert!(
        pf.wait_for_log(&["disconnect from unknown[192.0.2.13]"], LOG_WAIT)
            .is_some(),
        "{}",
        pf.maillog()
    );
}

#[tokio::test]
async fn ipv6_client_through_xclient() {
    let pf = postfix();
    let pool = RelayPool::builder(vec![relay(pf.smtp_port(), Handoff::Xclient)])
        .build()
        .expect("pool");
    let mut c = client("[2001:db8::77]:40004");
    c.login = Some("dave".to_owned());
    let mut s = bounded("connect", pool.connect(&c)).await.expect("connect");
    let (rcpt, data) = bounded("send", send(&mut s, "y@elsewhere.example", "v6")).await;
    assert_eq!((rcpt, data), (250, 250));
    s.quit().await.expect("quit");
    assert!(
        pf.wait_for_log(&["[2001:db8::77]", "sasl_username=dave"], LOG_WAIT)
            .is_some(),
        "{}",
        pf.maillog()
    );
}

#[tokio::test]
async fn xclient_refused_inside_a_transaction() {
    let pf = postfix();
    let pool = RelayPool::builder(vec![relay(pf.smtp_port(), Handoff::Xclient)])
        .build()
        .expect("pool");
    let c = client("192.0.2.14:40005");
    let mut s = bounded("connect", pool.connect(&c)).await.expect("connect");
    assert!(!s.in_transaction());
    s.command("MAIL FROM:<a@client.example>")
        .await
        .expect("MAIL");
    assert!(s.in_transaction());
    assert!(matches!(s.xclient(&c).await, Err(Error::ApiMisuse(_))));
    s.command("RSET").await.expect("RSET");
    assert!(!s.in_transaction());
    // Outside the transaction the request goes through to the rules of the
    // relay: after the hand-off Postfix treats the session as the client's,
    // which may not use XCLIENT, and no longer offers it.
    assert!(matches!(s.xclient(&c).await, Err(Error::RelayLacks { .. })));
    s.quit().await.expect("quit");
    assert!(
        pf.wait_for_log(&["disconnect from unknown[192.0.2.14]"], LOG_WAIT)
            .is_some()
    );
}

#[tokio::test]
async fn proxy_v1_and_v2_headers_accepted_by_postfix() {
    let pf = postfix();
    for (handoff, addr, marker) in [
        (Handoff::ProxyV1, "192.0.2.21:41001", "proxy-v1-c2d"),
        (Handoff::ProxyV2, "192.0.2.22:41002", "proxy-v2-e5f"),
        (Handoff::ProxyV2, "[2001:db8::22]:41003", "proxy-v2-v6-a1b"),
    ] {
        let pool = RelayPool::builder(vec![relay(pf.proxy_port(), handoff)])
            .build()
            .expect("pool");
        let c = client(addr);
        let mut s = bounded("connect", pool.connect(&c)).await.expect("connect");
        let (rcpt, data) = bounded(
            "send",
            send(&mut s, "postmaster@relay.portcullis.test", marker),
        )
        .await;
        assert_eq!((rcpt, data), (250, 250), "{handoff:?}");
        // The PROXY header carries no login: relaying stays refused.
        let (rcpt, _) = bounded("send", send(&mut s, "z@elsewhere.example", marker)).await;
        assert_eq!(rcpt, 554, "{handoff:?}");
        s.quit().await.expect("quit");
        let ip = c.addr.ip().to_string();
        assert!(
            pf.wait_for_log(&["connect from", &format!("[{ip}]")], LOG_WAIT)
                .is_some(),
            "{handoff:?}: {}",
            pf.maillog()
        );
        assert!(pf.wait_for_delivery(marker, LOG_WAIT), "{}", pf.maillog());
    }
    // Without a header, the PROXY listener does not talk SMTP to us.
    let pool = RelayPool::builder(vec![relay(pf.proxy_port(), Handoff::Xclient)])
        .failover_timeout_secs(6)
        .build()
        .expect("pool");
    let got = bounded("connect", pool.connect(&client("192.0.2.23:1"))).await;
    assert!(matches!(got, Err(Error::AllRelaysDown)), "{got:?}");
}

/// A relay that accepts TCP connections and never says anything.
async fn silent_relay() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(sock);
        }
    });
    (addr, accepted)
}

#[tokio::test]
async fn failover_skips_a_dead_relay_for_failover_minutes() {
    let pf = postfix();
    let (silent, attempts) = silent_relay().await;
    let clock = Arc::new(ManualClock::new());
    let pool = RelayPool::builder(vec![
        relay(silent.port(), Handoff::Xclient),
        relay(pf.smtp_port(), Handoff::Xclient),
    ])
    .failover_timeout_secs(1)
    .clock(clock.clone())
    .build()
    .expect("pool");
    let c = client("192.0.2.30:40010");

    // First attempt starts at the silent relay: after 1 s it moves on.
    let started = std::time::Instant::now();
    let s = bounded("connect", pool.connect(&c))
        .await
        .expect("failover to Postfix");
    // It waited out the FailoverTimeout on the silent relay first.
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(s.relay(), format!("127.0.0.1:{}", pf.smtp_port()));
    s.quit().await.expect("quit");
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
    assert_eq!(
        pool.status()[0],
        (RelayAddr::new("127.0.0.1", silent.port()), true)
    );

    // For the next FailoverTimeout minutes (here 1) it is not tried at all.
    for _ in 0..4 {
        let s = bounded("connect", pool.connect(&c)).await.expect("connect");
        assert_eq!(s.relay(), format!("127.0.0.1:{}", pf.smtp_port()));
        s.quit().await.expect("quit");
    }
    clock.advance(Duration::from_secs(59));
    let s = bounded("connect", pool.connect(&c)).await.expect("connect");
    s.quit().await.expect("quit");
    assert_eq!(attempts.load(Ordering::SeqCst), 1, "skipped for a minute");

    // After the minute it is tried again (and fails again).
    clock.advance(Duration::from_secs(1));
    for _ in 0..2 {
        let s = bounded("connect", pool.connect(&c)).await.expect("connect");
        s.quit().await.expect("quit");
    }
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        2,
        "retried after the pause"
    );
}

#[tokio::test]
async fn relays_are_used_round_robin() {
    let (a, b) = (postfix(), postfix());
    let pool = RelayPool::builder(vec![
        relay(a.smtp_port(), Handoff::Xclient),
        relay(b.smtp_port(), Handoff::Xclient),
    ])
    .build()
    .expect("pool");
    let c = client("192.0.2.32:40012");
    let mut used = Vec::new();
    for _ in 0..6 {
        let s = bounded("connect", pool.connect(&c)).await.expect("connect");
        used.push(s.relay().to_owned());
        s.quit().await.expect("quit");
    }
    let (pa, pb) = (
        format!("127.0.0.1:{}", a.smtp_port()),
        format!("127.0.0.1:{}", b.smtp_port()),
    );
    for pair in used.windows(2) {
        assert_ne!(pair[0], pair[1], "consecutive sessions alternate: {used:?}");
    }
    assert_eq!(used.iter().filter(|r| **r == pa).count(), 3, "{used:?}");
    assert_eq!(used.iter().filter(|r| **r == pb).count(), 3, "{used:?}");
}

/// Whether any relay of `pool` is being skipped.
fn any_down(pool: &RelayPool) -> bool {
    pool.status().iter().any(|(_, down)| *down)
}

#[tokio::test]
async fn no_client_value_takes_a_relay_out_of_service() {
    let (a, b) = (postfix(), postfix());
    let pool = RelayPool::builder(vec![
        relay(a.smtp_port(), Handoff::Xclient),
        relay(b.smtp_port(), Handoff::Xclient),
    ])
    .build()
    .expect("pool");
    let long = format!("{}.example", "h".repeat(300));
    let bad_helos = ["", &long, "pc\r\nRSET", "pc\0x", "two words", "my_pc"];
    let bad_logins = [
        String::new(),
        "l".repeat(600),
        "al\r\nice".to_owned(),
        "[UNAVAILABLE]".to_owned(),
    ];
    for (i, helo) in bad_helos.iter().enumerate() {
        let mut c = client(&format!("192.0.2.33:{}", 40100 + i));
        c.helo = Some((*helo).to_owned());
        let err = bounded("connect", pool.connect(&c))
            .await
            .expect_err("an invalid HELO name is refused");
        assert!(
            matches!(err, Error::InvalidClient { field: "HELO", .. }),
            "{helo:?}: {err:?}"
        );
        assert_eq!(err.smtp_reply().map(|r| &r[..9]), Some("501 5.5.4"));
        assert!(!any_down(&pool), "{helo:?} took a relay out of service");
    }
    for (i, login) in bad_logins.iter().enumerate() {
        let mut c = client(&format!("192.0.2.34:{}", 40200 + i));
        c.login = Some(login.clone());
        let err = bounded("connect", pool.connect(&c))
            .await
            .expect_err("an invalid login is refused");
        assert!(
            matches!(err, Error::InvalidClient { field: "LOGIN", .. }),
            "{login:?}: {err:?}"
        );
        assert!(!any_down(&pool), "{login:?} took a relay out of service");
    }
    // Non-ASCII: a U-label HELO name goes to a relay that offers SMTPUTF8
    // (Postfix does), and a non-ASCII login travels xtext-encoded.
    let mut c = client("192.0.2.35:40300");
    c.helo = Some("bücher.example".to_owned());
    c.login = Some("jürgen".to_owned());
    let mut s = bounded("connect", pool.connect(&c))
        .await
        .expect("non-ASCII HELO and login are handed over");
    let (rcpt, data) = bounded(
        "send",
        send(&mut s, "u@elsewhere.example", "utf8-login-3c9"),
    )
    .await;
    assert_eq!((rcpt, data), (250, 250), "the login authorized relaying");
    s.quit().await.expect("quit");
    assert!(!any_down(&pool));
    // Every relay still serves everybody else.
    for port in [40400, 40401] {
        let s = bounded(
            "connect",
            pool.connect(&client(&format!("192.0.2.36:{port}"))),
        )
        .await
        .expect("the relays still serve other clients");
        s.quit().await.expect("quit");
    }
    assert!(!any_down(&pool));
    let logs = format!("{}{}", a.maillog(), b.maillog());
    assert!(logs.contains("sasl_username=j"), "{logs}");
}

#[tokio::test]
async fn long_name_and_non_ascii_login_split_with_name_and_addr_last() {
    let pf = postfix();
    // A 247-octet PTR name (forward-confirmed) and a login whose xtext form
    // is 186 characters: the attributes need two XCLIENT commands. Postfix
    // only accepts the second while the proxy's address is still the one
    // it sees, so NAME and ADDR come last, and it resets the login on a
    // command without LOGIN, so LOGIN comes with them.
    let label = |c: char| std::iter::repeat_n(c, 60).collect::<String>();
    let long_name = format!(
        "{}.{}.{}.{}.example",
        label('a'),
        label('b'),
        label('c'),
        label('d')
    );
    assert!(long_name.len() > 240 && long_name.len() <= 255);
    let resolver = Arc::new(Counting::confirming(&long_name, "192.0.2.60"));
    let pool = RelayPool::builder(vec![relay(pf.smtp_port(), Handoff::Xclient)])
        .client_lookup(resolver)
        .build()
        .expect("pool");
    let login = format!("split-{}", "ü".repeat(30));
    let mut c = client("192.0.2.60:40500");
    c.login = Some(login.clone());
    let mut s = bounded("connect", pool.connect(&c))
        .await
        .expect("split XCLIENT accepted");
    let (rcpt, data) = bounded(
        "send",
        send(&mut s, "v@elsewhere.example", "split-xclient-5e1"),
    )
    .await;
    assert_eq!((rcpt, data), (250, 250), "{}", pf.maillog());
    s.quit().await.expect("quit");
    let line = pf
        .wait_for_log(&["sasl_method=XCLIENT", "sasl_username=split-"], LOG_WAIT)
        .unwrap_or_else(|| panic!("no XCLIENT login:\n{}", pf.maillog()));
    assert!(
        line.contains(&format!("client={long_name}[192.0.2.60]")),
        "{line}"
    );
    assert!(
        pf.wait_for_delivery("split-xclient-5e1", LOG_WAIT),
        "{}",
        pf.maillog()
    );
}

#[tokio::test]
async fn client_name_only_when_forward_confirmed() {
    let pf = postfix();
    // The reverse zone claims a name whose forward zone does not point back
    // (anyone controlling their reverse zone can claim any name).
    for (addr, forward) in [
        (
            "192.0.2.61:40600",
            ForwardLookup::Addresses(vec!["198.51.100.1".parse().expect("address")]),
        ),
        ("192.0.2.62:40601", ForwardLookup::NotFound),
        ("192.0.2.63:40602", ForwardLookup::TempFail),
    ] {
        let resolver = Arc::new(Counting::new("bank.example", forward));
        let pool = RelayPool::builder(vec![relay(pf.smtp_port(), Handoff::Xclient)])
            .client_lookup(resolver)
            .build()
            .expect("pool");
        let s = bounded("connect", pool.connect(&client(addr)))
            .await
            .expect("connect");
        s.quit().await.expect("quit");
        let ip = addr.split(':').next().expect("ip");
        let line = pf
            .wait_for_log(&["disconnect from", &format!("[{ip}]")], LOG_WAIT)
            .unwrap_or_else(|| panic!("{}", pf.maillog()));
        assert!(line.contains(&format!("unknown[{ip}]")), "{line}");
    }
    assert!(!pf.maillog().contains("bank.example"), "{}", pf.maillog());
}

#[tokio::test]
async fn logins_never_silently_dropped_by_proxy_relays() {
    let pf = postfix();
    // A PROXY header cannot carry the user: a client with a login is
    // refused there (the relay stays in service), never handed over without it.
    let pool = RelayPool::builder(vec![relay(pf.proxy_port(), Handoff::ProxyV2)])
        .build()
        .expect("pool");
    let mut c = client("192.0.2.64:40700");
    c.login = Some("mallory".to_owned());
    let err = bounded("connect", pool.connect(&c))
        .await
        .expect_err("no login hand-off over PROXY");
    assert!(
        matches!(err, Error::RelayLacks { capability, .. } if capability == LOGIN_HANDOFF),
        "{err:?}"
    );
    assert!(!any_down(&pool));
    let s = bounded("connect", pool.connect(&client("192.0.2.65:40701")))
        .await
        .expect("clients without a login still go through");
    s.quit().await.expect("quit");
    // With a PROXY relay listed first, a client with a login goes to the
    // XCLIENT relay, and nothing is marked down.
    let pool = RelayPool::builder(vec![
        relay(pf.proxy_port(), Handoff::ProxyV1),
        relay(pf.smtp_port(), Handoff::Xclient),
    ])
    .build()
    .expect("pool");
    for _ in 0..2 {
        let s = bounded("connect", pool.connect(&c)).await.expect("connect");
        assert_eq!(s.relay(), format!("127.0.0.1:{}", pf.smtp_port()));
        s.quit().await.expect("quit");
    }
    assert!(!any_down(&pool));
    // Configured for POP-before-SMTP, a PROXY relay is refused at load.
    let err = RelayPool::builder(vec![relay(pf.proxy_port(), Handoff::ProxyV2)])
        .pop_before_smtp(true)
        .build()
        .expect_err("refused at load");
    assert!(
        matches!(&err, Error::InvalidSetting { name: "mmp.relayhandoff", reason } if reason.contains("PROXY")),
        "{err:?}"
    );
}

#[tokio::test]
async fn refused_relay_fails_over_and_all_down_is_421() {
    let pf = postfix();
    // A port that is bound but not listening: connections are refused,
    // and no other process can take it during the test.
    let reserved = tokio::net::TcpSocket::new_v4().expect("socket");
    reserved
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let closed = reserved.local_addr().expect("addr").port();
    let clock = Arc::new(ManualClock::new());
    let pool = RelayPool::builder(vec![
        relay(closed, Handoff::Xclient),
        relay(pf.smtp_port(), Handoff::Xclient),
    ])
    .failover_timeout_secs(2)
    .clock(clock.clone())
    .build()
    .expect("pool");
    let c = client("192.0.2.31:40011");
    for _ in 0..3 {
        let s = bounded("connect", pool.connect(&c)).await.expect("connect");
        assert_eq!(s.relay(), format!("127.0.0.1:{}", pf.smtp_port()));
        s.quit().await.expect("quit");
    }
    // Both down: the live one stops, so both are skipped.
    let mut pf = pf;
    pf.stop();
    let err = bounded("connect", pool.connect(&c))
        .await
        .expect_err("all down");
    assert!(matches!(err, Error::AllRelaysDown), "{err:?}");
    assert_eq!(err.smtp_reply().map(|r| &r[..9]), Some("421 4.3.0"));
    // Still skipped: fails at once, without touching the network.
    assert!(matches!(pool.connect(&c).await, Err(Error::AllRelaysDown)));
    assert!(pool.status().iter().all(|(_, down)| *down));
}

#[tokio::test]
async fn ehlo_filter_on_real_postfix_reply() {
    let pf = postfix();
    let pool = RelayPool::builder(vec![relay(pf.smtp_port(), Handoff::Xclient)])
        .build()
        .expect("pool");
    let s = bounded("connect", pool.connect(&client("192.0.2.40:1")))
        .await
        .expect("connect");
    let raw = s.proxy_ehlo_reply().expect("EHLO reply").clone();
    let keywords: Vec<String> = raw.lines()[1..]
        .iter()
        .map(|l| portcullis_popbeforesmtp::relay::ehlo::keyword(l))
        .collect();
    for k in [
        "PIPELINING",
        "SIZE",
        "VRFY",
        "ETRN",
        "AUTH",
        "XCLIENT",
        "8BITMIME",
        "DSN",
        "CHUNKING",
    ] {
        assert!(
            keywords.iter().any(|x| x == k),
            "Postfix offers {k}: {keywords:?}"
        );
    }
    // Postfix's reply to the client (after the hand-off) and to the proxy,
    // filtered: XCLIENT is in neither.
    let after = s.ehlo_reply().expect("EHLO after hand-off");
    assert!(!portcullis_popbeforesmtp::relay::ehlo::offers(
        after, "XCLIENT"
    ));
    let shown = EhloFilter::default().filter(&raw);
    assert_eq!(
        shown.lines()[1..],
        EhloFilter::default().filter(after).lines()[1..]
    );
    assert_eq!(shown.code(), 250);
    assert_eq!(shown.lines()[0], raw.lines()[0]);
    let shown_kw: Vec<String> = shown.lines()[1..]
        .iter()
        .map(|l| portcullis_popbeforesmtp::relay::ehlo::keyword(l))
        .collect();
    for k in [
        "PIPELINING",
        "SIZE",
        "ETRN",
        "AUTH",
        "ENHANCEDSTATUSCODES",
        "8BITMIME",
        "DSN",
    ] {
        assert!(shown_kw.iter().any(|x| x == k), "{k} kept: {shown_kw:?}");
    }
    for k in ["XCLIENT", "VRFY", "CHUNKING", "SMTPUTF8"] {
        assert!(
            !shown_kw.iter().any(|x| x == k),
            "{k} dropped: {shown_kw:?}"
        );
    }
    // Parameters survive: SIZE keeps Postfix's limit.
    assert!(
        shown.lines().iter().any(|l| l.starts_with("SIZE 10240000")),
        "{shown:?}"
    );
    // mmp.ehlokeywords adds to the default set; XCLIENT can never be added.
    let settings = Settings::from_parameters(|name| {
        (name == "mmp.ehlokeywords").then(|| "CHUNKING XCLIENT".to_owned())
    })
    .expect("valid");
    let shown = settings.ehlo_filter().filter(&raw);
    assert!(shown.lines().iter().any(|l| l == "CHUNKING"));
    let to_client = s.client_ehlo(&settings.ehlo_filter()).expect("filtered");
    assert!(to_client.lines().iter().any(|l| l == "CHUNKING"));
    assert!(!shown.lines().iter().any(|l| l.starts_with("XCLIENT")));
    s.quit().await.expect("quit");
}

fn tls_client_config(ca_pem: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types_pem(ca_pem) {
        roots.add(cert).expect("CA certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

fn rustls_pki_types_pem(pem: &str) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("PEM certificates")
}

#[tokio::test]
async fn musttls_and_maytls_against_postfix() {
    let ca = TestCa::new("popbeforesmtp test CA").expect("CA");
    let server = ca
        .issue_server(&["localhost", "127.0.0.1"])
        .expect("server cert");
    let chain = format!("{}{}", server.cert_pem, ca.cert_pem());
    let pf = Postfix::start_with(&PostfixOptions::with_tls(&chain, &server.key_pem))
        .unwrap_or_else(|e| panic!("Postfix fixture: {e}"));
    let tls = tls_client_config(&ca.cert_pem());
    let spec = RelaySpec::new(
        RelayAddr::new("127.0.0.1", pf.smtp_port()),
        Handoff::Xclient,
        TlsPolicy::Must,
    );
    let pool = RelayPool::builder(vec![spec])
        .tls_config(tls.clone())
        .build()
        .expect("pool");
    let mut c = client("192.0.2.50:40020");
    c.login = Some("erin".to_owned());
    let mut s = bounded("connect", pool.connect(&c))
        .await
        .expect("TLS connect");
    assert!(s.is_tls() && s.tls_verified());
    // STARTTLS is not offered again inside TLS, and the hand-off happened.
    assert!(!portcullis_popbeforesmtp::relay::ehlo::offers(
        s.ehlo_reply().expect("ehlo"),
        "STARTTLS"
    ));
    let (rcpt, data) = bounded("send", send(&mut s, "w@elsewhere.example", "tls-relay-4d2")).await;
    assert_eq!((rcpt, data), (250, 250));
    s.quit().await.expect("quit");
    assert!(
        pf.wait_for_log(&["TLS connection established from"], LOG_WAIT)
            .is_some(),
        "{}",
        pf.maillog()
    );
    assert!(pf.wait_for_log(&["sasl_username=erin"], LOG_WAIT).is_some());
    assert!(pf.wait_for_delivery("tls-relay-4d2", LOG_WAIT));

    // musttls towards a relay without STARTTLS: that relay counts as down.
    let plain = postfix();
    let spec = RelaySpec::new(
        RelayAddr::new("127.0.0.1", plain.smtp_port()),
        Handoff::Xclient,
        TlsPolicy::Must,
    );
    let pool = RelayPool::builder(vec![spec])
        .tls_config(tls.clone())
        .build()
        .expect("pool");
    assert!(matches!(pool.connect(&c).await, Err(Error::AllRelaysDown)));
    // maytls towards the same relay: plain text is fine.
    let spec = RelaySpec::new(
        RelayAddr::new("127.0.0.1", plain.smtp_port()),
        Handoff::Xclient,
        TlsPolicy::May,
    );
    let pool = RelayPool::builder(vec![spec])
        .tls_config(tls.clone())
        .build()
        .expect("pool");
    let s = bounded("connect", pool.connect(&c))
        .await
        .expect("maytls plain");
    assert!(!s.is_tls());
    s.quit().await.expect("quit");

    // A certificate from another CA is refused under musttls.
    let other = TestCa::new("someone else").expect("CA");
    let spec = RelaySpec::new(
        RelayAddr::new("127.0.0.1", pf.smtp_port()),
        Handoff::Xclient,
        TlsPolicy::Must,
    );
    let pool = RelayPool::builder(vec![spec])
        .tls_config(tls_client_config(&other.cert_pem()))
        .build()
        .expect("pool");
    assert!(matches!(pool.connect(&c).await, Err(Error::AllRelaysDown)));
    // Under maytls the same failure is logged and the session continues
    // over TLS, unverified (Postfix's "may"), never in plain text; the
    // relay stays in service.
    let spec = RelaySpec::new(
        RelayAddr::new("127.0.0.1", pf.smtp_port()),
        Handoff::Xclient,
        TlsPolicy::May,
    );
    let pool = RelayPool::builder(vec![spec])
        .tls_config(tls_client_config(&other.cert_pem()))
        .build()
        .expect("pool");
    let mut s = bounded("connect", pool.connect(&c))
        .await
        .expect("maytls continues unverified");
    assert!(s.is_tls(), "maytls must not fall back to plain text");
    assert!(!s.tls_verified());
    let (rcpt, data) = bounded(
        "send",
        send(&mut s, "w@elsewhere.example", "maytls-fallback-8c1"),
    )
    .await;
    assert_eq!((rcpt, data), (250, 250));
    s.quit().await.expect("quit");
    assert!(pool.status().iter().all(|(_, down)| !*down));
    assert!(pf.wait_for_delivery("maytls-fallback-8c1", LOG_WAIT));
    // Postfix saw TLS for that session too (two TLS sessions in all).
    let log = pf.maillog();
    assert_eq!(
        log.matches("TLS connection established from").count(),
        2,
        "{log}"
    );
}
