//! Client access filters: decisions per second with 1,000 and 100,000
//! address rules over 100,000 queries, and parse / index build time of
//! 100,000 rules. `benches/scripts/accessfilter-vs-libwrap.sh` runs
//! libwrap's `hosts_ctl` on the same kind of rules and queries.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation
)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use portcullis_accessfilter::{Action, FilterSet, Outcome, Query, parse_file};

/// A small deterministic generator (no dependency on rand).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
}

/// `n` address-only allow rules: a mix of single addresses, /24 and /16
/// CIDR nets, net/masks and address prefixes.
fn rules(n: usize, seed: u64) -> String {
    let mut g = Lcg(seed);
    let mut s = String::with_capacity(n * 32);
    for i in 0..n {
        let (a, b, c, d) = (
            g.next() % 223 + 1,
            g.next() % 256,
            g.next() % 256,
            g.next() % 254 + 1,
        );
        let svc = ["imap", "pop", "imap, pop", "ALL"][i % 4];
        let pat = match i % 5 {
            0 | 1 => format!("{a}.{b}.{c}.{d}"),
            2 => format!("{a}.{b}.{c}.0/24"),
            3 => format!("{a}.{b}.{c}.0/255.255.255.0"),
            _ => format!("{a}.{b}.{c}."),
        };
        s.push_str(&format!("{svc}: {pat}\n"));
    }
    s
}

fn queries(n: usize, seed: u64) -> Vec<Query> {
    let mut g = Lcg(seed);
    (0..n)
        .map(|_| {
            let a = Ipv4Addr::from(g.next());
            Query::for_connection(
                "imap",
                SocketAddr::new(IpAddr::V4(a), 40000),
                SocketAddr::from(([192, 0, 2, 254], 143)),
            )
        })
        .collect()
}

fn set(n: usize) -> FilterSet {
    FilterSet::builder()
        .filters("allow", parse_file(&rules(n, 7), Action::Allow).unwrap())
        .filters("deny", parse_file("ALL: ALL\n", Action::Deny).unwrap())
        .build()
}

fn decisions(c: &mut Criterion) {
    let qs = queries(100_000, 11);
    let mut group = c.benchmark_group("accessfilter_decide");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(qs.len() as u64));
    for n in [1_000usize, 100_000] {
        let s = set(n);
        // Sanity: every query is decided without a lookup.
        assert!(
            qs.iter()
                .take(100)
                .all(|q| matches!(s.evaluate(q), Outcome::Done(_)))
        );
        group.bench_function(format!("{n}_rules_100000_queries"), |b| {
            b.iter(|| {
                let mut granted = 0usize;
                for q in &qs {
                    if let Outcome::Done(d) = s.evaluate(black_box(q)) {
                        granted +=
                            usize::from(d.verdict == portcullis_accessfilter::Verdict::Allow);
                    }
                }
                granted
            })
        });
    }
    // The naive scan, for comparison, on 1,000 rules and 1,000 queries.
    let s = set(1_000);
    group.throughput(Throughput::Elements(1_000));
    group.bench_function("naive_1000_rules_1000_queries", |b| {
        b.iter(|| {
            qs[..1_000]
                .iter()
                .filter(|q| matches!(s.evaluate_naive(q), Outcome::Done(_)))
                .count()
        })
    });
    group.finish();
}

fn parsing(c: &mut Criterion) {
    let text = rules(100_000, 7);
    let mut group = c.benchmark_group("accessfilter_parse");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(100_000));
    group.bench_function("parse_100000_rules", |b| {
        b.iter(|| parse_file(black_box(&text), Action::Allow).unwrap().len())
    });
    group.bench_function("parse_and_index_100000_rules", |b| {
        b.iter_batched(
            || text.clone(),
            |t| {
                FilterSet::builder()
                    .filters("allow", parse_file(&t, Action::Allow).unwrap())
                    .build()
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, decisions, parsing);
criterion_main!(benches);
