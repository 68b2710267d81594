//! Failed-login penalties: computed delays (never wall time), repetition,
//! trusted networks, IPv6 grouping, and counters shared through Redis.

#![allow(clippy::unwrap_used)] // test helpers: a failure is a test failure

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use portcullis_config::Config;
use portcullis_frontend::NetworkList;
use portcullis_frontend::penalty::Penalty;
use portcullis_test_support::redis::Redis;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[tokio::test]
async fn delays_double_up_to_the_maximum_per_address() {
    let p = Penalty::builder().build().unwrap();
    let (bad, other) = (ip("127.0.0.2"), ip("127.0.0.3"));
    for (i, want) in [2, 4, 8, 15, 15].into_iter().enumerate() {
        let got = p
            .record_failure(bad, "alice", format!("guess{i}").as_bytes())
            .await;
        assert_eq!(got, secs(want));
        assert_eq!(p.delay_for(bad).await, secs(want));
        assert_eq!(p.delay_for(other).await, Duration::ZERO);
    }
}

#[tokio::test]
async fn the_same_user_and_password_do_not_raise_it() {
    let p = Penalty::builder().build().unwrap();
    let a = ip("192.0.2.1");
    assert_eq!(p.record_failure(a, "bob", b"old-password").await, secs(2));
    for _ in 0..5 {
        assert_eq!(p.record_failure(a, "bob", b"old-password").await, secs(2));
    }
    assert_eq!(p.record_failure(a, "bob", b"other").await, secs(4));
    // Another user with the same password is another try.
    assert_eq!(p.record_failure(a, "carol", b"other").await, secs(8));
    // A success does not reset it.
    p.record_success(a).await;
    assert_eq!(p.delay_for(a).await, secs(8));
}

#[tokio::test]
async fn trusted_networks_are_exempt() {
    let p = Penalty::builder()
        .trusted(NetworkList::parse("mmp.trustednetworks", ["10.0.0.0/8"]).unwrap())
        .build()
        .unwrap();
    let t = ip("10.1.2.3");
    for i in 0..5 {
        assert_eq!(p.record_failure(t, "x", &[i]).await, Duration::ZERO);
    }
    assert_eq!(p.delay_for(t).await, Duration::ZERO);
    assert_eq!(p.local_entries(), 0);
}

#[tokio::test]
async fn one_ipv6_64_is_one_client() {
    let p = Penalty::builder().build().unwrap();
    p.record_failure(ip("2001:db8:1:2::1"), "u", b"a").await;
    assert_eq!(
        p.record_failure(ip("2001:db8:1:2:dead:beef::9"), "u", b"b")
            .await,
        secs(4)
    );
    assert_eq!(p.delay_for(ip("2001:db8:1:2::77")).await, secs(4));
    assert_eq!(p.delay_for(ip("2001:db8:1:3::1")).await, Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn counts_expire_and_the_store_is_bounded() {
    let p = Penalty::builder()
        .expiry(secs(60))
        .capacity(3)
        .build()
        .unwrap();
    let a = ip("192.0.2.1");
    p.record_failure(a, "u", b"a").await;
    tokio::time::advance(secs(59)).await;
    assert_eq!(p.delay_for(a).await, secs(2));
    tokio::time::advance(secs(2)).await;
    assert_eq!(p.delay_for(a).await, Duration::ZERO);
    for i in 0..10u8 {
        p.record_failure(IpAddr::from([198, 51, 100, i]), "u", b"p")
            .await;
    }
    assert!(p.local_entries() <= 3);
}

#[tokio::test(start_paused = true)]
async fn wait_sleeps_the_delay_without_blocking_others() {
    let p = Arc::new(Penalty::builder().build().unwrap());
    let a = ip("192.0.2.1");
    p.record_failure(a, "u", b"x").await;
    let done = Arc::new(AtomicBool::new(false));
    let task = {
        let (p, done) = (Arc::clone(&p), Arc::clone(&done));
        tokio::spawn(async move {
            p.wait(a).await;
            done.store(true, Ordering::SeqCst);
        })
    };
    // Another client is not delayed while the first one waits.
    tokio::time::timeout(Duration::from_millis(1), p.wait(ip("192.0.2.2")))
        .await
        .expect("an address without failures waits for nothing");
    tokio::time::advance(Duration::from_millis(1900)).await;
    tokio::task::yield_now().await;
    assert!(!done.load(Ordering::SeqCst));
    tokio::time::advance(Duration::from_millis(200)).await;
    task.await.unwrap();
    assert!(done.load(Ordering::SeqCst));
}

#[tokio::test]
async fn from_config_reads_the_parameters() {
    let c = Config::parse(
        "mmp.authfailuredelay = 1\nmmp.authfailuremaxdelay = 3\nmmp.trustednetworks = \"192.0.2.0/24\"\n",
    )
    .unwrap();
    let p = Penalty::from_config(&c).unwrap();
    let a = ip("198.51.100.1");
    assert_eq!(p.record_failure(a, "u", b"1").await, secs(1));
    assert_eq!(p.record_failure(a, "u", b"2").await, secs(2));
    assert_eq!(p.record_failure(a, "u", b"3").await, secs(3));
    assert!(p.is_exempt(ip("192.0.2.200")));
    let off = Penalty::from_config(&Config::parse("mmp.authfailuredelay = 0\n").unwrap()).unwrap();
    assert_eq!(off.record_failure(a, "u", b"1").await, Duration::ZERO);
}

#[tokio::test]
async fn two_front_ends_share_counters_through_redis() {
    let redis = Redis::shared();
    let prefix = format!("test:penalty:{}:", std::process::id());
    let make = || {
        Penalty::builder()
            .redis(redis.url())
            .key_prefix(prefix.clone())
            .secret(b"shared secret of both front ends")
            .build()
            .unwrap()
    };
    let (one, two) = (make(), make());
    let a = ip("127.0.0.2");
    assert_eq!(one.record_failure(a, "alice", b"p1").await, secs(2));
    assert_eq!(two.delay_for(a).await, secs(2));
    assert_eq!(two.record_failure(a, "alice", b"p2").await, secs(4));
    // The same pair through the other front end is still the same pair.
    assert_eq!(one.record_failure(a, "alice", b"p2").await, secs(4));
    assert_eq!(one.record_failure(a, "alice", b"p3").await, secs(8));
    assert_eq!(two.delay_for(a).await, secs(8));
    assert_eq!(one.delay_for(ip("127.0.0.3")).await, Duration::ZERO);
    // Nothing was counted in memory: Redis answered every time.
    assert_eq!(one.local_entries() + two.local_entries(), 0);
    // The keys expire and hold no password.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("{prefix}127.0.0.2:n"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 0);
    let h: String = redis::cmd("GET")
        .arg(format!("{prefix}127.0.0.2:h"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(h.len(), 32);
    assert!(!h.contains("p3"));
}

#[tokio::test]
async fn an_unreachable_redis_falls_back_to_memory() {
    let mut redis = Redis::start().unwrap();
    let url = redis.url();
    redis.stop();
    let p = Penalty::builder().redis(url).build().unwrap();
    let a = ip("127.0.0.2");
    assert_eq!(p.record_failure(a, "u", b"1").await, secs(2));
    assert_eq!(p.record_failure(a, "u", b"2").await, secs(4));
    assert_eq!(p.delay_for(a).await, secs(4));
}

#[tokio::test]
async fn a_reload_keeps_the_counts_and_applies_the_new_settings() {
    let config = |text: &str| Config::parse(text).unwrap();
    let before = Penalty::from_config(&config("[mmp]\nauthfailuredelay = 2\n")).unwrap();
    let a = ip("192.0.2.7");
    assert_eq!(before.record_failure(a, "alice", b"one").await, secs(2));
    assert_eq!(before.record_failure(a, "alice", b"two").await, secs(4));

    // A new base delay and a trusted network; the two failures stay
    // counted, and the random hash key too (the same pair again does not
    // raise the count).
    let after = Penalty::from_config_after(
        &config("[mmp]\nauthfailuredelay = 1\ntrustednetworks = \"10.0.0.0/8\"\n"),
        &before,
    )
    .unwrap();
    assert_eq!(after.delay_for(a).await, secs(2));
    assert_eq!(after.record_failure(a, "alice", b"two").await, secs(2));
    assert_eq!(after.record_failure(a, "alice", b"three").await, secs(4));
    assert!(after.is_exempt(ip("10.1.1.1")));
    // The old generation (still held by open sessions) sees the same counts.
    assert_eq!(before.delay_for(a).await, secs(8));
}
