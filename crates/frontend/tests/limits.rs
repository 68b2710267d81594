//! Connection limits: the connlimits syntax, the most specific realm, and
//! permits under concurrency.

#![allow(clippy::unwrap_used)] // test helpers: a failure is a test failure

use std::net::IpAddr;
use std::sync::{Arc, Barrier};

use portcullis_config::Config;
use portcullis_frontend::limits::{ConnLimits, ConnectionGate, IMAP_MIN_IDLE, Limits, Refusal};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn connlimits_syntax() {
    let l: ConnLimits = "0|0:20,10.0.0.0|255.0.0.0:200".parse().unwrap();
    assert_eq!(l.realms().len(), 2);
    assert_eq!(l.realms()[1].to_string(), "10.0.0.0|255.0.0.0:200");
    let l: ConnLimits =
        "0.0.0.0|0.0.0.0:20, 2001:db8::|ffff:ffff:::5, 2001:db8:1::|/48:7, 192.0.2.0|24:1"
            .parse()
            .unwrap();
    assert_eq!(l.realms().len(), 4);
    assert!("".parse::<ConnLimits>().unwrap().realms().is_empty());
    for (bad, says) in [
        ("10.0.0.0|255.0.0.0", "IP|MASK:NUM"),
        ("10.0.0.0:5", "'|'"),
        ("10.0.0.0|255.0.255.0:5", "not contiguous"),
        ("10.0.0.0|ffff::0:5", "family"),
        ("10.0.0.0|33:5", "above 32"),
        ("10.0.0.300|8:5", "not an IPv4 or IPv6 address"),
        ("10.0.0.0|8:-1", "not a count"),
        ("10.0.0.0|8:x", "not a count"),
        ("10.0.0.0|8:5,10.1.0.0|8:6", "twice"),
        ("host|8:5", "not an IPv4"),
    ] {
        let e = bad.parse::<ConnLimits>().unwrap_err().to_string();
        assert!(
            e.contains("mmp.connlimits") && e.contains(says),
            "{bad}: {e}"
        );
    }
}

#[test]
fn the_most_specific_realm_applies() {
    let l: ConnLimits =
        "0.0.0.0|0.0.0.0:20,10.0.0.0|255.0.0.0:200,10.1.0.0|255.255.0.0:5,2001:db8::|32:3"
            .parse()
            .unwrap();
    assert_eq!(l.limit_for(ip("192.0.2.1")), Some(20));
    assert_eq!(l.limit_for(ip("10.9.9.9")), Some(200));
    assert_eq!(l.limit_for(ip("10.1.2.3")), Some(5));
    assert_eq!(l.limit_for(ip("::ffff:10.1.2.3")), Some(5));
    assert_eq!(l.limit_for(ip("2001:db8:5::1")), Some(3));
    // IPv6 outside every IPv6 realm: the IPv4 default realm.
    assert_eq!(l.limit_for(ip("2001:db9::1")), Some(20));
    let only_v6: ConnLimits = "2001:db8::|32:3".parse().unwrap();
    assert_eq!(only_v6.limit_for(ip("192.0.2.1")), None);
}

#[test]
fn permits_count_and_release() {
    let gate = ConnectionGate::new(3, "0|0:2".parse().unwrap());
    let a = gate.try_admit(ip("192.0.2.1")).unwrap();
    let b = gate.try_admit(ip("192.0.2.1")).unwrap();
    assert_eq!(
        gate.try_admit(ip("192.0.2.1")).unwrap_err(),
        Refusal::AddressFull {
            client: portcullis_frontend::ClientKey::of(ip("192.0.2.1")),
            max: 2
        }
    );
    // The refused attempt released its global slot.
    assert_eq!(gate.active(), 2);
    let c = gate.try_admit(ip("2001:db8::1")).unwrap();
    assert_eq!(gate.admit().unwrap_err(), Refusal::ServerFull { max: 3 });
    drop(a);
    assert_eq!(gate.active_for(ip("192.0.2.1")), 1);
    // One /64 is one client.
    let mut d = gate.admit().unwrap();
    d.bind_client(ip("2001:db8::2")).unwrap();
    assert_eq!(gate.active_for(ip("2001:db8::ffff")), 2);
    drop((b, c, d));
    assert_eq!(gate.active(), 0);
    assert_eq!(gate.active_for(ip("192.0.2.1")), 0);
}

#[test]
fn zero_refuses_a_realm() {
    let gate = ConnectionGate::new(10, "0|0:5,192.0.2.0|24:0".parse().unwrap());
    assert!(matches!(
        gate.try_admit(ip("192.0.2.7")),
        Err(Refusal::AddressFull { max: 0, .. })
    ));
    assert!(gate.try_admit(ip("198.51.100.7")).is_ok());
}

#[test]
fn concurrent_admissions_never_exceed_the_limits() {
    const THREADS: usize = 16;
    let gate = ConnectionGate::new(10, "0|0:3".parse().unwrap());
    for _round in 0..20 {
        let barrier = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let gate = gate.clone();
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    // Four addresses, four threads each.
                    let client: IpAddr = format!("192.0.2.{}", i % 4).parse().unwrap();
                    barrier.wait();
                    gate.try_admit(client).ok()
                })
            })
            .collect();
        let permits: Vec<_> = handles
            .into_iter()
            .filter_map(|h| h.join().unwrap())
            .collect();
        // 10 global slots, at most 3 per address. A thread its address
        // refuses held a global slot for a moment (the global slot comes
        // first: `mmp.maxclients` is checked before the PROXY header names
        // the client), so a racing thread may have been refused globally:
        // never more than 10, and every permit counted.
        assert!(permits.len() <= 10, "{} admitted", permits.len());
        assert_eq!(gate.active(), permits.len());
        for a in 0..4 {
            assert!(gate.active_for(format!("192.0.2.{a}").parse().unwrap()) <= 3);
        }
        drop(permits);
        assert_eq!(gate.active(), 0);
        for a in 0..4 {
            assert_eq!(gate.active_for(format!("192.0.2.{a}").parse().unwrap()), 0);
        }
    }
    // Once the races are over, the gate fills to exactly its limits.
    let held: Vec<_> = (0..THREADS)
        .filter_map(|i| {
            gate.try_admit(format!("192.0.2.{}", i % 4).parse().unwrap())
                .ok()
        })
        .collect();
    assert_eq!(held.len(), 10);
    assert_eq!(gate.active(), 10);
}

#[test]
fn limits_from_config() {
    let l = Limits::from_config(&Config::parse("").unwrap()).unwrap();
    assert_eq!(l.conn_limits.limit_for(ip("192.0.2.1")), Some(20));
    assert_eq!(l.preauth_timeout.as_secs(), 60);
    assert_eq!(l.idle_timeout, IMAP_MIN_IDLE);
    let mut attempts = l.auth_attempts();
    assert!(attempts.record_failure());
    assert!(attempts.record_failure());
    assert!(!attempts.record_failure());
    let c = Config::parse("mmp.timeout = 600\nmmp.maxclients = 5\n").unwrap();
    let l = Limits::from_config(&c).unwrap();
    assert_eq!(l.imap_idle_timeout(), IMAP_MIN_IDLE);
    assert_eq!(l.gate().admit().map(|_| ()), Ok(()));
    let bad = Config::parse("mmp.connlimits = \"10.0.0.0|8\"\n").unwrap();
    assert!(Limits::from_config(&bad).is_err());
}

#[test]
fn new_limits_apply_to_newcomers_and_the_counts_stay() {
    let gate = ConnectionGate::new(10, ConnLimits::unlimited());
    let a = ip("198.51.100.7");
    let first = gate.try_admit(a).unwrap();
    let second = gate.try_admit(a).unwrap();
    // A reload lowers the per-address limit to one and the global one to
    // two: both connections stay, newcomers are refused.
    gate.set_limits(2, "0|0:1".parse().unwrap());
    assert_eq!(gate.active(), 2);
    assert!(matches!(gate.admit(), Err(Refusal::ServerFull { max: 2 })));
    drop(second);
    assert!(matches!(
        gate.try_admit(a),
        Err(Refusal::AddressFull { max: 1, .. })
    ));
    // Another address fits in the freed global slot.
    let other = gate.try_admit(ip("198.51.100.8")).unwrap();
    drop((first, other));
    assert_eq!(gate.active(), 0);
    assert!(gate.try_admit(a).is_ok());
}
