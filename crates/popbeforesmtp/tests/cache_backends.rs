//! The cache suite, run once per backend: in memory and against a real
//! Redis (the test-support fixture), plus Redis restarts and outages.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use portcullis_popbeforesmtp::cache::PopAuthStore;
use portcullis_popbeforesmtp::{
    AddressGrouping, AuthCache, CacheSettings, Error, Lookup, MemoryStore, RedisStore, Secret,
    Timestamp, redis,
};
use portcullis_test_support::redis::Redis;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

const T0: Timestamp = Timestamp::from_unix_secs(1_700_000_000);

fn user_of(l: &Lookup) -> Option<&str> {
    l.authorization().map(|a| &*a.user)
}

// ---- the suite: each function gets a fresh cache with TTL 900 ----

async fn ttl_boundaries(cache: AuthCache) {
    let a = ip("192.0.2.10");
    assert_eq!(cache.lookup(a, T0).await, Lookup::Deny);
    cache.record(a, "alice", T0).await.expect("record");
    assert_eq!(user_of(&cache.lookup(a, T0).await), Some("alice"));
    assert_eq!(
        user_of(&cache.lookup(a, T0.plus_secs(899)).await),
        Some("alice")
    );
    let l = cache.lookup(a, T0.plus_secs(899)).await;
    assert_eq!(
        l.authorization().map(|a| a.expires),
        Some(T0.plus_secs(900))
    );
    assert_eq!(cache.lookup(a, T0.plus_secs(900)).await, Lookup::Deny);
    assert_eq!(cache.lookup(a, T0.plus_secs(901)).await, Lookup::Deny);
    // Another address is not authorized by alice's login.
    assert_eq!(cache.lookup(ip("192.0.2.11"), T0).await, Lookup::Deny);
}

async fn rerecord_extends_and_replaces(cache: AuthCache) {
    let a = ip("198.51.100.7");
    cache.record(a, "alice", T0).await.expect("record");
    cache
        .record(a, "bob", T0.plus_secs(600))
        .await
        .expect("record");
    assert_eq!(
        user_of(&cache.lookup(a, T0.plus_secs(1000)).await),
        Some("bob")
    );
    assert_eq!(
        user_of(&cache.lookup(a, T0.plus_secs(1499)).await),
        Some("bob")
    );
    assert_eq!(cache.lookup(a, T0.plus_secs(1500)).await, Lookup::Deny);
}

async fn ipv6_grouping(cache: AuthCache) {
    // Default /64: privacy addresses in the same /64 share the login.
    cache
        .record(ip("2001:db8:1:2:aaaa:bbbb:cccc:1"), "carol", T0)
        .await
        .expect("record");
    assert_eq!(
        user_of(
            &cache
                .lookup(ip("2001:db8:1:2:1234::99"), T0.plus_secs(5))
                .await
        ),
        Some("carol")
    );
    assert_eq!(cache.lookup(ip("2001:db8:1:3::1"), T0).await, Lookup::Deny);
    // IPv4-mapped IPv6 is the IPv4 address.
    cache
        .record(ip("::ffff:203.0.113.9"), "dave", T0)
        .await
        .expect("record");
    assert_eq!(
        user_of(&cache.lookup(ip("203.0.113.9"), T0).await),
        Some("dave")
    );
    cache
        .record(ip("203.0.113.10"), "erin", T0)
        .await
        .expect("record");
    assert_eq!(
        user_of(&cache.lookup(ip("::ffff:203.0.113.10"), T0).await),
        Some("erin")
    );
}

async fn exact_ipv6_when_prefix_is_128(cache: AuthCache) {
    cache
        .record(ip("2001:db8::1"), "frank", T0)
        .await
        .expect("record");
    assert_eq!(
        user_of(&cache.lookup(ip("2001:db8::1"), T0).await),
        Some("frank")
    );
    assert_eq!(cache.lookup(ip("2001:db8::2"), T0).await, Lookup::Deny);
}

async fn bad_user_names_are_refused(cache: AuthCache) {
    let a = ip("192.0.2.99");
    assert!(matches!(
        cache.record(a, "", T0).await,
        Err(Error::InvalidUser)
    ));
    assert!(matches!(
        cache.record(a, "a\r\nb", T0).await,
        Err(Error::InvalidUser)
    ));
    assert!(matches!(
        cache.record(a, &"x".repeat(600), T0).await,
        Err(Error::InvalidUser)
    ));
    // Spaces and non-ASCII survive storage.
    cache
        .record(a, "Zoë Smith@example.com", T0)
        .await
        .expect("record");
    assert_eq!(
        user_of(&cache.lookup(a, T0).await),
        Some("Zoë Smith@example.com")
    );
}

async fn lookup_many_matches_lookup(cache: AuthCache) {
    let ips: Vec<IpAddr> = (1..=20u8).map(|i| IpAddr::from([10, 9, 8, i])).collect();
    for (i, a) in ips.iter().enumerate().step_by(2) {
        cache
            .record(*a, &format!("user{i}"), T0)
            .await
            .expect("record");
    }
    let many = cache.lookup_many(&ips, T0.plus_secs(1)).await;
    for (i, (a, got)) in ips.iter().zip(&many).enumerate() {
        assert_eq!(got, &cache.lookup(*a, T0.plus_secs(1)).await);
        if i % 2 == 0 {
            assert_eq!(user_of(got), Some(format!("user{i}").as_str()));
        } else {
            assert_eq!(got, &Lookup::Deny);
        }
    }
    assert!(cache.lookup_many(&[], T0).await.is_empty());
}

async fn concurrent_tasks(cache: AuthCache) {
    let mut tasks = Vec::new();
    for t in 0..16u8 {
        let cache = cache.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..50u8 {
                let a = IpAddr::from([10, 77, t, i]);
                let user = format!("u{t}-{i}");
                cache.record(a, &user, T0).await.expect("record");
                let got = cache.lookup(a, T0.plus_secs(10)).await;
                assert_eq!(user_of(&got), Some(user.as_str()));
                // Another task's address: either not yet or the right user.
                let other = IpAddr::from([10, 77, (t + 1) % 16, i]);
                if let Some(u) = user_of(&cache.lookup(other, T0.plus_secs(10)).await) {
                    assert_eq!(u, format!("u{}-{i}", (t + 1) % 16));
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    for t in 0..16u8 {
        for i in 0..50u8 {
            let got = cache
                .lookup(IpAddr::from([10, 77, t, i]), T0.plus_secs(899))
                .await;
            assert_eq!(user_of(&got), Some(format!("u{t}-{i}").as_str()));
        }
    }
}

// ---- the backends ----

fn memory(settings: CacheSettings) -> AuthCache {
    AuthCache::new(MemoryStore::builder().max_entries(10_000).build(), settings)
}

fn unique_prefix(test: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "test:{}:{}:{}:",
        std::process::id(),
        test,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn redis_cache(settings: CacheSettings, test: &str) -> AuthCache {
    let store = RedisStore::builder(Redis::shared().url())
        .key_prefix(unique_prefix(test))
        .build()
        .expect("redis store");
    AuthCache::new(store, settings)
}

fn ttl900() -> CacheSettings {
    CacheSettings::with_ttl(900)
}

fn exact_v6() -> CacheSettings {
    let mut s = ttl900();
    s.grouping = AddressGrouping::ipv6_prefix(128).expect("valid");
    s
}

macro_rules! suite {
    ($backend:ident, $make:expr) => {
        mod $backend {
            use super::*;

            #[tokio::test]
            async fn ttl_boundaries() {
                super::ttl_boundaries($make(ttl900(), "ttl")).await;
            }
            #[tokio::test]
            async fn rerecord_extends_and_replaces() {
                super::rerecord_extends_and_replaces($make(ttl900(), "rerecord")).await;
            }
            #[tokio::test]
            async fn ipv6_grouping() {
                super::ipv6_grouping($make(ttl900(), "v6")).await;
            }
            #[tokio::test]
            async fn exact_ipv6_when_prefix_is_128() {
                super::exact_ipv6_when_prefix_is_128($make(exact_v6(), "v6exact")).await;
            }
            #[tokio::test]
            async fn bad_user_names_are_refused() {
                super::bad_user_names_are_refused($make(ttl900(), "users")).await;
            }
            #[tokio::test]
            async fn lookup_many_matches_lookup() {
                super::lookup_many_matches_lookup($make(ttl900(), "many")).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_tasks() {
                super::concurrent_tasks($make(ttl900(), "concurrent")).await;
            }
        }
    };
}

suite!(in_memory, |s, _name| memory(s));
suite!(in_redis, redis_cache);

// ---- memory only: the bound ----

#[tokio::test]
async fn memory_eviction_under_the_bound() {
    let cache = AuthCache::new(
        MemoryStore::builder().max_entries(100).shards(1).build(),
        ttl900(),
    );
    for i in 0..150u8 {
        cache
            .record(IpAddr::from([10, 1, 0, i]), "u", T0.plus_secs(u64::from(i)))
            .await
            .expect("record");
    }
    let now = T0.plus_secs(200);
    for i in 0..50u8 {
        assert_eq!(
            cache.lookup(IpAddr::from([10, 1, 0, i]), now).await,
            Lookup::Deny,
            "{i} evicted"
        );
    }
    for i in 50..150u8 {
        assert!(
            cache
                .lookup(IpAddr::from([10, 1, 0, i]), now)
                .await
                .authorization()
                .is_some(),
            "{i} kept"
        );
    }
}

#[tokio::test]
async fn memory_sweep_through_the_cache() {
    let store = Arc::new(MemoryStore::builder().max_entries(1000).build());
    let cache = AuthCache::from_arc(store.clone(), ttl900());
    for i in 0..200u8 {
        cache
            .record(IpAddr::from([10, 2, 0, i]), "u", T0)
            .await
            .expect("record");
    }
    assert_eq!(store.len(), 200);
    assert_eq!(cache.sweep(T0.plus_secs(899), 1000), 0);
    let mut removed = 0;
    for _ in 0..100 {
        removed += cache.sweep(T0.plus_secs(900), 10);
    }
    assert_eq!(removed, 200);
    assert!(store.is_empty());
}

// ---- Redis only: restarts, outages, AUTH ----

fn fast_redis(url: String, prefix: &str) -> RedisStore {
    RedisStore::builder(url)
        .key_prefix(unique_prefix(prefix))
        .op_timeout(Duration::from_millis(700))
        .connect_timeout(Duration::from_millis(300))
        .build()
        .expect("redis store")
}

/// Retries `f` until it gives `Ok` (the connection manager reconnects
/// in the background after the first failure). The bound (~60 s) is a
/// hang guard, not a speed check.
async fn eventually<F, Fut>(mut f: F) -> Result<(), Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    let mut last = Ok(());
    for _ in 0..300 {
        last = f().await;
        if last.is_ok() {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    last
}

#[tokio::test]
async fn redis_restarted_mid_test() {
    let mut server = Redis::start().expect("redis");
    let cache = AuthCache::new(fast_redis(server.url(), "restart"), ttl900());
    let a = ip("192.0.2.50");
    cache.record(a, "alice", T0).await.expect("record");
    assert_eq!(user_of(&cache.lookup(a, T0).await), Some("alice"));

    server.restart().expect("restart");
    // The fixture keeps no data across restarts; once reconnected, the
    // cache answers again (Deny, since the entry is gone), never a stale yes.
    let l = cache.lookup(a, T0).await;
    assert!(matches!(l, Lookup::Deny | Lookup::Unavailable), "{l:?}");
    eventually(|| cache.record(a, "alice2", T0))
        .await
        .expect("record after restart");
    assert_eq!(user_of(&cache.lookup(a, T0).await), Some("alice2"));
}

#[tokio::test]
async fn redis_down_fails_closed_and_recovers() {
    let mut server = Redis::start().expect("redis");
    let cache = AuthCache::new(fast_redis(server.url(), "down"), ttl900());
    let a = ip("192.0.2.51");
    cache.record(a, "alice", T0).await.expect("record");
    server.stop();
    for _ in 0..3 {
        assert_eq!(cache.lookup(a, T0).await, Lookup::Unavailable);
    }
    assert!(cache.lookup(a, T0).await.authorization().is_none());
    assert!(matches!(
        cache.record(a, "alice", T0).await,
        Err(Error::CacheUnavailable(_))
    ));
    assert_eq!(
        cache.lookup_many(&[a, a], T0).await,
        vec![Lookup::Unavailable; 2]
    );

    server.restart().expect("start again");
    eventually(|| cache.record(a, "bob", T0))
        .await
        .expect("record after outage");
    assert_eq!(user_of(&cache.lookup(a, T0).await), Some("bob"));
}

#[tokio::test]
async fn redis_down_from_the_start() {
    let mut server = Redis::start().expect("redis");
    let url = server.url();
    server.stop();
    let cache = AuthCache::new(fast_redis(url, "never"), ttl900());
    assert_eq!(
        cache.lookup(ip("192.0.2.52"), T0).await,
        Lookup::Unavailable
    );
}

#[tokio::test]
async fn redis_auth() {
    let server = Redis::start_with_password("s3cret-pw").expect("redis");
    let plain_url = format!("redis://127.0.0.1:{}/", server.port());
    let good = RedisStore::builder(plain_url.clone())
        .auth(None, Secret::new("s3cret-pw"))
        .key_prefix(unique_prefix("auth"))
        .build()
        .expect("store");
    let cache = AuthCache::new(good, ttl900());
    let a = ip("192.0.2.53");
    cache
        .record(a, "alice", T0)
        .await
        .expect("record with AUTH");
    assert_eq!(user_of(&cache.lookup(a, T0).await), Some("alice"));

    let bad = RedisStore::builder(plain_url)
        .auth(None, Secret::new("wrong"))
        .op_timeout(Duration::from_millis(700))
        .build()
        .expect("store");
    let cache = AuthCache::new(bad, ttl900());
    assert_eq!(cache.lookup(a, T0).await, Lookup::Unavailable);
    let none = fast_redis(format!("redis://127.0.0.1:{}/", server.port()), "noauth");
    assert!(
        none.lookup(AddressGrouping::default().key(a), T0)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn redis_entries_written_as_documented() {
    let prefix = unique_prefix("wire");
    let store = RedisStore::builder(Redis::shared().url())
        .key_prefix(prefix.clone())
        .build()
        .expect("store");
    let cache = AuthCache::new(store, ttl900());
    let now = Timestamp::now();
    cache
        .record(ip("2001:db8:5:6::1"), "alice", now)
        .await
        .expect("record");
    // Read it back with a plain client: the key, the value and the TTL.
    let client = redis::Client::open(Redis::shared().url()).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let key = format!("{prefix}2001:db8:5:6::/64");
    let value: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .expect("GET");
    assert_eq!(value, Some(format!("{} alice", now.unix_secs() + 900)));
    let ttl: i64 = redis::cmd("TTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .expect("TTL");
    // The expiry is absolute (`now` + 900 s), so the TTL Redis reports has
    // shrunk by however long this test took since `now`, and no more.
    let taken = Timestamp::now().unix_secs() - now.unix_secs();
    assert!(
        (900 - i64::try_from(taken).unwrap() - 1..=900).contains(&ttl),
        "ttl {ttl}, {taken} s after recording"
    );
}

/// A redis-server speaking only TLS, with a certificate from a test CA.
#[tokio::test]
async fn redis_over_tls() {
    use portcullis_test_support::ca::TestCa;
    use portcullis_test_support::{Guarded, free_port, which};

    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new("redis test CA").expect("CA");
    let server = ca.issue_server(&["localhost", "127.0.0.1"]).expect("cert");
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        p.display().to_string()
    };
    let cert = write("server.crt", &server.cert_pem);
    let key = write("server.key", &server.key_pem);
    let ca_file = write("ca.crt", &ca.cert_pem());
    let port = free_port();
    let port_s = port.to_string();
    let dir_s = dir.path().display().to_string();
    let bin = which("redis-server").expect("redis-server is installed");
    let mut process = Guarded::spawn(
        "redis-server (TLS)",
        &bin,
        &[
            "--port",
            "0",
            "--tls-port",
            &port_s,
            "--bind",
            "127.0.0.1",
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &ca_file,
            "--tls-auth-clients",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &dir_s,
        ],
        &[],
        &dir.path().join("redis.log"),
    )
    .expect("start redis-server with TLS");
    // A hang guard of 60 s, not a speed check.
    let mut up = false;
    for _ in 0..2400 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            up = true;
            break;
        }
        if !process.is_running() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(up, "TLS redis did not start: {}", process.log_tail());

    let store = RedisStore::builder(format!("rediss://127.0.0.1:{port}/"))
        .tls_roots_pem(ca.cert_pem().into_bytes())
        .key_prefix(unique_prefix("tls"))
        .build()
        .expect("store");
    let cache = AuthCache::new(store, ttl900());
    let a = ip("192.0.2.70");
    cache.record(a, "alice", T0).await.expect("record over TLS");
    assert_eq!(user_of(&cache.lookup(a, T0).await), Some("alice"));

    // Plain text to the TLS port gets nowhere: fail closed.
    let plain = fast_redis(format!("redis://127.0.0.1:{port}/"), "tls-plain");
    assert!(
        plain
            .lookup(AddressGrouping::default().key(a), T0)
            .await
            .is_err()
    );
    // Roots from another CA: refused.
    let other = TestCa::new("other CA").expect("CA");
    let wrong = RedisStore::builder(format!("rediss://127.0.0.1:{port}/"))
        .tls_roots_pem(other.cert_pem().into_bytes())
        .op_timeout(Duration::from_millis(700))
        .build()
        .expect("store");
    assert_eq!(
        AuthCache::new(wrong, ttl900()).lookup(a, T0).await,
        Lookup::Unavailable
    );
    process.stop();
}

/// The cache as the configuration reader builds it from `params`.
fn cache_from(params: &[(&str, &str)]) -> AuthCache {
    portcullis_popbeforesmtp::Settings::from_parameters(|name| {
        params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| (*v).to_owned())
    })
    .expect("settings")
    .auth_cache()
    .expect("cache")
    .expect("mmp.preauth is on")
}

#[tokio::test]
async fn values_read_back_from_redis_are_validated_like_values_written() {
    let prefix = unique_prefix("readback");
    let store = RedisStore::builder(Redis::shared().url())
        .key_prefix(prefix.clone())
        .build()
        .expect("store");
    let cache = AuthCache::new(store, ttl900());
    let client = redis::Client::open(Redis::shared().url()).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let expires = T0.unix_secs() + 900;
    // Values `record` refuses to write (control characters, over-long
    // names, a signed expiry) authorize nobody when found in Redis.
    let long = "a".repeat(513);
    let planted = [
        ("192.0.2.201", format!("{expires} root\r\nX")),
        ("192.0.2.202", format!("{expires} {long}")),
        ("192.0.2.203", format!("+{expires} alice")),
        ("192.0.2.204", format!("{expires} ali\u{1b}[2Jce")),
    ];
    for (addr, value) in &planted {
        let _: () = redis::cmd("SET")
            .arg(format!("{prefix}{addr}"))
            .arg(value)
            .query_async(&mut conn)
            .await
            .expect("SET");
        assert_eq!(
            cache.lookup(ip(addr), T0).await,
            Lookup::Unavailable,
            "{value:?}"
        );
    }
    // A value as `record` writes it is accepted.
    let _: () = redis::cmd("SET")
        .arg(format!("{prefix}192.0.2.205"))
        .arg(format!("{expires} alice"))
        .query_async(&mut conn)
        .await
        .expect("SET");
    assert_eq!(
        user_of(&cache.lookup(ip("192.0.2.205"), T0).await),
        Some("alice")
    );
}

#[tokio::test]
async fn the_configuration_reader_shares_state_through_local_redisurl() {
    let url = Redis::shared().url();
    let params = [
        ("mmp.preauth", "true"),
        ("mmp.authservicettl", "600"),
        ("mmp.ipv6prefix", "48"),
        ("local.redisurl", url.as_str()),
    ];
    // Two front ends built from the same parameters share one view.
    let (a, b) = (cache_from(&params), cache_from(&params));
    assert_eq!(a.settings().ttl_secs, 600);
    assert_eq!(a.settings().grouping.prefix(), 48);
    a.record(ip("2001:db8:77:1::1"), "shared-user", T0)
        .await
        .expect("record");
    // Another /64 in the same /48, through the other front end.
    assert_eq!(
        user_of(&b.lookup(ip("2001:db8:77:2::9"), T0.plus_secs(599)).await),
        Some("shared-user")
    );
    assert_eq!(
        b.lookup(ip("2001:db8:77:2::9"), T0.plus_secs(600)).await,
        Lookup::Deny
    );
    // And it is in Redis, not in memory.
    let client = redis::Client::open(url).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let value: Option<String> = redis::cmd("GET")
        .arg("portcullis:popauth:2001:db8:77::/48")
        .query_async(&mut conn)
        .await
        .expect("GET");
    assert_eq!(value, Some(format!("{} shared-user", T0.unix_secs() + 600)));
}

#[tokio::test]
async fn the_configuration_reader_bounds_the_memory_store() {
    let cache = cache_from(&[("mmp.preauth", "1"), ("mmp.authcachemaxentries", "100")]);
    for i in 0..100u8 {
        cache
            .record(ip(&format!("10.9.0.{i}")), "u", T0)
            .await
            .expect("record");
    }
    // All 100 kept (the bound is global), the 101st evicts one.
    for i in 0..100u8 {
        assert!(
            cache
                .lookup(ip(&format!("10.9.0.{i}")), T0)
                .await
                .authorization()
                .is_some()
        );
    }
    cache.record(ip("10.9.1.1"), "u", T0).await.expect("record");
    let mut kept = 0;
    for i in 0..100u8 {
        if cache
            .lookup(ip(&format!("10.9.0.{i}")), T0)
            .await
            .authorization()
            .is_some()
        {
            kept += 1;
        }
    }
    assert_eq!(kept, 99);
}

#[tokio::test]
async fn several_redis_urls_are_a_redis_cluster() {
    use portcullis_test_support::redis::RedisCluster;
    let cluster = tokio::task::spawn_blocking(|| RedisCluster::start(3))
        .await
        .expect("join")
        .expect("Redis Cluster fixture");
    let urls = cluster.urls().join(" ");
    let params = [("mmp.preauth", "true"), ("local.redisurl", urls.as_str())];
    let (a, b) = (cache_from(&params), cache_from(&params));
    // Many keys: they fall into hash slots on every node.
    let ips: Vec<IpAddr> = (0..60u8).map(|i| ip(&format!("198.18.0.{i}"))).collect();
    for (i, addr) in ips.iter().enumerate() {
        a.record(*addr, &format!("user{i}"), T0)
            .await
            .expect("record");
    }
    for (i, addr) in ips.iter().enumerate() {
        let want = format!("user{i}");
        assert_eq!(
            user_of(&b.lookup(*addr, T0.plus_secs(1)).await),
            Some(want.as_str())
        );
    }
    let many = b.lookup_many(&ips, T0.plus_secs(1)).await;
    assert!(many.iter().all(|l| l.authorization().is_some()), "{many:?}");
    // The keys are spread over the nodes (each node holds some).
    for node in cluster.nodes() {
        let client = redis::Client::open(node.url()).expect("client");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect");
        let n: i64 = redis::cmd("DBSIZE")
            .query_async(&mut conn)
            .await
            .expect("DBSIZE");
        assert!(n > 0, "node {} holds no key", node.port());
    }
}
