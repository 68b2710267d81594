//! POP-before-SMTP cache: in-memory record + lookup rates and bytes per
//! entry at 1,000,000 entries; Redis lookups per second, one round trip
//! each versus pipelined (against a redis-server the fixture starts).
//!
//! Besides criterion's single-thread figures, the memory bench prints the
//! resident memory per entry and a lookup rate with one thread per core.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use portcullis_popbeforesmtp::cache::PopAuthStore;
use portcullis_popbeforesmtp::{AddressGrouping, ClientKey, MemoryStore, RedisStore, Timestamp};
use portcullis_test_support::redis::Redis;

const N: usize = 1_000_000;
const BATCH: usize = 1024;

fn key(i: usize) -> ClientKey {
    // Spread over 10.0.0.0/8 and beyond, in no particular order.
    let x = u32::try_from(i).unwrap().wrapping_mul(2_654_435_761);
    AddressGrouping::default().key(IpAddr::V4(Ipv4Addr::from(x)))
}

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn memory(c: &mut Criterion) {
    let keys: Vec<ClientKey> = (0..N).map(key).collect();
    let t = Timestamp::from_unix_secs(1_700_000_000);
    let exp = t.plus_secs(900);
    let mut stores = Vec::new();

    // Resident memory of a full store, for two name lengths: 28 bytes
    // (kept inside the entry, up to 30) and 37 bytes (one shared
    // allocation each).
    // The first store stays alive while the second fills, so the second's
    // growth is never served from memory the first gave back.
    for (label, width) in [("28-byte", 28usize), ("37-byte", 37usize)] {
        let rss0 = rss_bytes();
        // The bound is split per shard: leave headroom so no shard evicts.
        let store = MemoryStore::builder().max_entries(N + N / 10).build();
        let mut user = String::new();
        let start = Instant::now();
        for (i, k) in keys.iter().enumerate() {
            user.clear();
            if width == 28 {
                write!(user, "user{i:07}@mail.example.com").unwrap();
            } else {
                write!(user, "firstname.lastname{i:07}@example.com").unwrap();
            }
            store.record_now(*k, &user, t, exp);
        }
        let fill = start.elapsed();
        let rss1 = rss_bytes();
        assert_eq!(store.len(), N);
        eprintln!(
            "popbeforesmtp memory: {N} entries, {label} user names: filled in {:.2} s \
             ({:.2} M records/s); resident {:.1} MB = {} bytes/entry; own heap estimate {} bytes/entry",
            fill.as_secs_f64(),
            N as f64 / fill.as_secs_f64() / 1e6,
            rss1.saturating_sub(rss0) as f64 / 1e6,
            rss1.saturating_sub(rss0) / N,
            store.heap_bytes() / N,
        );
        if width == 28 {
            stores.push(store);
        }
    }
    let store = stores.pop().unwrap();

    // One thread per core, each doing lookups over the whole key set. The
    // key is computed from the index, as a server has the client address
    // at hand: reading it from a 16 MB array would add a cache miss the
    // store does not cause.
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let per_thread = 4_000_000;
    let start = Instant::now();
    let hits: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t_no| {
                let store = &store;
                s.spawn(move || {
                    let mut hits = 0;
                    let mut i = t_no * 7919;
                    for _ in 0..per_thread {
                        i = (i + 104_729) % N;
                        hits += usize::from(store.lookup_now(key(i), t).is_some());
                    }
                    hits
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let el = start.elapsed();
    assert_eq!(hits, threads * per_thread);
    eprintln!(
        "popbeforesmtp memory: {threads} threads, {:.2} M lookups/s (user name returned) at {N} entries",
        (threads * per_thread) as f64 / el.as_secs_f64() / 1e6
    );

    let mut g = c.benchmark_group("popbeforesmtp_memory_1m");
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut i = 0usize;
    g.bench_function("lookup_hit", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                i = (i + 104_729) % N;
                black_box(store.lookup_now(key(i), t));
            }
        });
    });
    g.bench_function("contains_hit", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                i = (i + 104_729) % N;
                black_box(store.contains(key(i), t));
            }
        });
    });
    let misses: Vec<ClientKey> = (N..N + BATCH).map(key).collect();
    g.bench_function("lookup_miss", |b| {
        b.iter(|| {
            for k in &misses {
                black_box(store.lookup_now(*k, t));
            }
        });
    });
    g.bench_function("record_then_lookup", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                i = (i + 104_729) % N;
                store.record_now(key(i), "u0000000@example.com", t, exp);
                black_box(store.lookup_now(key(i), t));
            }
        });
    });
    g.finish();
    assert!(store.len() <= N + N / 10);
}

fn redis(c: &mut Criterion) {
    let server = Redis::start().expect("redis-server");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    const M: usize = 100;
    let keys: Vec<ClientKey> = (0..M).map(key).collect();
    let t = Timestamp::now();
    let store = rt.block_on(async {
        let store = RedisStore::builder(server.url())
            .key_prefix("bench:")
            .build()
            .unwrap();
        for (i, k) in keys.iter().enumerate() {
            store
                .record(*k, &format!("user{i}"), t, t.plus_secs(900))
                .await
                .unwrap();
        }
        store
    });
    let store = std::sync::Arc::new(store);
    let mut g = c.benchmark_group("popbeforesmtp_redis");
    g.throughput(Throughput::Elements(M as u64));
    g.bench_function("lookup_one_round_trip_each", |b| {
        b.iter(|| {
            rt.block_on(async {
                for k in &keys {
                    assert!(store.lookup(*k, t).await.unwrap().is_some());
                }
            });
        });
    });
    g.bench_function("lookup_pipelined", |b| {
        b.iter(|| {
            rt.block_on(async {
                let got = store.lookup_many(&keys, t).await.unwrap();
                assert!(got.iter().all(Option::is_some));
            });
        });
    });
    g.bench_function("lookup_concurrent_tasks", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut set = tokio::task::JoinSet::new();
                for k in keys.clone() {
                    let store = store.clone();
                    set.spawn(async move { store.lookup(k, t).await.unwrap().is_some() });
                }
                while let Some(r) = set.join_next().await {
                    assert!(r.unwrap());
                }
            });
        });
    });
    g.finish();
}

criterion_group!(benches, memory, redis);
criterion_main!(benches);
