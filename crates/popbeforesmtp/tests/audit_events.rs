//! Audit events (one per record, one per use) and the once-per-interval
//! logging of backend failures, seen through a real tracing subscriber.
//! Its own test binary: one global subscriber collects everything.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use portcullis_popbeforesmtp::cache::AUDIT_TARGET;
use portcullis_popbeforesmtp::{
    AuthCache, CacheSettings, Lookup, MemoryStore, RedisStore, Timestamp,
};
use portcullis_test_support::redis::Redis;

const T0: Timestamp = Timestamp::from_unix_secs(1_700_000_000);

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn ttl900() -> CacheSettings {
    CacheSettings::with_ttl(900)
}

// ---- audit events and failure logging ----

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("capture lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("capture lock")).into_owned()
    }
}

fn capture() -> Capture {
    static CAP: OnceLock<Capture> = OnceLock::new();
    CAP.get_or_init(|| {
        let cap = Capture::default();
        let writer = cap.clone();
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_target(true)
            .with_max_level(tracing::Level::INFO)
            .init();
        cap
    })
    .clone()
}

#[tokio::test]
async fn audit_event_per_record_and_per_use() {
    let cap = capture();
    let cache = AuthCache::new(MemoryStore::default(), ttl900());
    let a = ip("192.0.2.60");
    cache.record(a, "alice", T0).await.expect("record");
    assert!(
        cache
            .lookup(a, T0.plus_secs(1))
            .await
            .authorization()
            .is_some()
    );
    assert!(
        cache
            .lookup(a, T0.plus_secs(2))
            .await
            .authorization()
            .is_some()
    );
    assert_eq!(cache.lookup(a, T0.plus_secs(900)).await, Lookup::Deny);
    let text: String = cap
        .text()
        .lines()
        .filter(|l| l.contains("192.0.2.60"))
        .map(|l| format!("{l}\n"))
        .collect();
    let records: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("popbeforesmtp.record"))
        .collect();
    let uses: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("popbeforesmtp.use"))
        .collect();
    assert_eq!(records.len(), 1, "{text}");
    assert_eq!(uses.len(), 2, "{text}");
    for line in records.iter().chain(&uses) {
        assert!(line.contains(AUDIT_TARGET), "{line}");
        assert!(
            line.contains("user=\"alice\"") || line.contains("user=alice"),
            "{line}"
        );
        assert!(line.contains("client=192.0.2.60"), "{line}");
    }
    assert!(records[0].contains(&format!("at={}", T0.unix_secs())));
    assert!(uses[1].contains(&format!("at={}", T0.unix_secs() + 2)));
}

#[tokio::test]
async fn outage_logged_once_per_interval() {
    let cap = capture();
    let mut server = Redis::start().expect("redis");
    let url = server.url();
    server.stop();
    let mut settings = ttl900();
    settings.failure_log_interval_secs = 60;
    let store = RedisStore::builder(url)
        .op_timeout(Duration::from_millis(700))
        .connect_timeout(Duration::from_millis(300))
        .build()
        .expect("store");
    let cache = AuthCache::new(store, settings);
    let a = ip("192.0.2.61");
    for s in 0..5 {
        assert_eq!(cache.lookup(a, T0.plus_secs(s)).await, Lookup::Unavailable);
    }
    assert_eq!(cache.lookup(a, T0.plus_secs(60)).await, Lookup::Unavailable);
    assert_eq!(cache.lookup(a, T0.plus_secs(61)).await, Lookup::Unavailable);
    let n = cap.text().matches("cache backend failed").count();
    assert_eq!(n, 2, "{}", cap.text());
}

#[tokio::test]
async fn pop_authorized_hand_off_logged_with_the_kludge_channel() {
    use portcullis_popbeforesmtp::Settings;
    use portcullis_popbeforesmtp::relay::ClientInfo;
    use portcullis_test_support::postfix::Postfix;

    let cap = capture();
    let pf = Postfix::start().expect("Postfix fixture");
    // The pool as the configuration reader builds it.
    let relays = format!("127.0.0.1:{}", pf.smtp_port());
    let params = [
        ("mmp.preauth", "true"),
        ("mmp.smtprelays", relays.as_str()),
        ("mmp.popbeforesmtpkludgechannel", "tcp_intranet"),
        ("mmp.relaytls", "none"),
    ];
    let settings = Settings::from_parameters(|name| {
        params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| (*v).to_owned())
    })
    .expect("settings");
    let cache = settings
        .auth_cache()
        .expect("cache")
        .expect("mmp.preauth is on");
    let pool = settings.relay_pool(None).expect("pool");
    let a = ip("192.0.2.70");
    cache.record(a, "kludge-user", T0).await.expect("record");
    let Lookup::Authorize(authorization) = cache.lookup(a, T0.plus_secs(1)).await else {
        panic!("recorded a moment ago");
    };
    let mut client = ClientInfo::new(
        "192.0.2.70:41000".parse().expect("addr"),
        "127.0.0.1:25".parse().expect("addr"),
    );
    client.helo = Some("pc.example".to_owned());
    client.authorize_by_pop(&authorization);
    let mut session = pool.connect(&client).await.expect("hand-off");
    // Postfix relays for the POP-authorized user.
    let mail = session
        .command("MAIL FROM:<kludge-user@client.example>")
        .await
        .expect("MAIL");
    assert_eq!(mail.code(), 250, "{mail}");
    let rcpt = session
        .command("RCPT TO:<someone@elsewhere.example>")
        .await
        .expect("RCPT");
    assert_eq!(rcpt.code(), 250, "{rcpt}");
    session.command("RSET").await.expect("RSET");
    session.quit().await.expect("quit");
    // A client with a login of its own (SMTP AUTH) is not logged as POP-authorized.
    let mut other = ClientInfo::new(
        "192.0.2.71:41001".parse().expect("addr"),
        "127.0.0.1:25".parse().expect("addr"),
    );
    other.login = Some("smtp-auth-user".to_owned());
    pool.connect(&other)
        .await
        .expect("hand-off")
        .quit()
        .await
        .expect("quit");

    let text = cap.text();
    let handoffs: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("popbeforesmtp.handoff"))
        .collect();
    assert_eq!(handoffs.len(), 1, "{text}");
    let line = handoffs[0];
    assert!(line.contains(AUDIT_TARGET), "{line}");
    assert!(line.contains("tcp_intranet"), "{line}");
    assert!(line.contains("kludge-user"), "{line}");
    assert!(line.contains("client=192.0.2.70"), "{line}");
    assert!(
        pf.wait_for_log(&["sasl_username=kludge-user"], Duration::from_secs(20))
            .is_some(),
        "{}",
        pf.maillog()
    );
}
