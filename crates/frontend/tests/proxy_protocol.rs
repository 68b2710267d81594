//! PROXY protocol: specification examples, round trips, every split, and
//! the Tokio edge.

#![allow(clippy::unwrap_used)] // test helpers: a failure is a test failure

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use portcullis_frontend::proxy_protocol::{
    Addresses, Command, Decoded, Decoder, ProxyHeader, ProxyPolicy, Tlv, decode, read_header,
    starts_like_header,
};
use portcullis_frontend::{Error, NetworkList};
use proptest::prelude::*;
use tokio::io::AsyncWriteExt;

const CASES: &str = include_str!("data/proxy_headers.txt");

fn unescape(s: &str) -> Vec<u8> {
    s.replace("\\r", "\r").replace("\\n", "\n").into_bytes()
}

fn cases() -> Vec<(Vec<u8>, String)> {
    CASES
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let parts: Vec<&str> = l.split(" | ").collect();
            assert_eq!(parts.len(), 3, "bad case line {l:?}");
            let input = match parts[0] {
                "text" => unescape(parts[1]),
                "hex" => {
                    let h: String = parts[1].split_whitespace().collect();
                    (0..h.len())
                        .step_by(2)
                        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                        .collect()
                }
                other => panic!("unknown form {other}"),
            };
            (input, parts[2].trim().to_owned())
        })
        .collect()
}

fn describe(header: &ProxyHeader) -> String {
    match (header.command, header.addresses) {
        (Command::Local, _) => "local".to_owned(),
        (_, Addresses::Unknown) => "unknown".to_owned(),
        (
            _,
            Addresses::Tcp {
                source,
                destination,
            },
        ) => format!("{source} {destination}"),
        _ => "other".to_owned(),
    }
}

#[test]
fn specification_cases() {
    let all = cases();
    assert!(all.len() > 30);
    for (input, expected) in all {
        let mut with_data = input.clone();
        with_data.extend_from_slice(b"A1 LOGIN");
        match decode(&with_data) {
            Ok(Decoded::Complete { header, consumed }) => {
                assert_eq!(
                    describe(&header),
                    expected,
                    "{:?}",
                    String::from_utf8_lossy(&input)
                );
                assert_eq!(consumed, input.len());
            }
            Ok(other) => panic!("{other:?}: {:?}", String::from_utf8_lossy(&input)),
            Err(e) => {
                assert_eq!(
                    expected,
                    "error",
                    "{:?}: {e}",
                    String::from_utf8_lossy(&input)
                );
                assert!(matches!(e, Error::ProxyHeader { .. }));
            }
        }
    }
}

#[test]
fn every_split_gives_the_same_answer() {
    for (input, expected) in cases() {
        let mut whole = input.clone();
        whole.extend_from_slice(b"client data");
        let reference = decode(&whole).map_err(|e| e.to_string());
        for cut in 0..=whole.len() {
            let mut d = Decoder::new();
            let first = d.push(&whole[..cut]);
            let got = match first {
                Ok(Some(done)) => {
                    let mut rest = done.rest;
                    rest.extend_from_slice(&whole[cut..]);
                    Ok((done.header, rest))
                }
                Ok(None) => match d.push(&whole[cut..]) {
                    Ok(Some(done)) => Ok((done.header, done.rest)),
                    Ok(None) => panic!("never complete: {expected}"),
                    Err(e) => Err(e.to_string()),
                },
                Err(e) => Err(e.to_string()),
            };
            match (&reference, got) {
                (Ok(Decoded::Complete { header, consumed }), Ok((h, rest))) => {
                    assert_eq!(&h, header);
                    assert_eq!(rest, &whole[*consumed..]);
                }
                (Err(_), Err(_)) => {}
                (Ok(Decoded::Incomplete), _) => panic!("reference incomplete"),
                (r, g) => panic!("cut {cut} of {expected}: {r:?} vs {g:?}"),
            }
        }
    }
}

#[test]
fn other_protocols_are_refused_at_once() {
    for start in [
        &b"A1 CAPABILITY\r\n"[..],
        b"USER x",
        b"EHLO",
        b"\r\nQUIT",
        b"PROXZ",
    ] {
        assert!(decode(start).is_err(), "{start:?}");
    }
    assert!(starts_like_header(b"PROX"));
    assert!(starts_like_header(b"\r\n\r\n\0"));
    assert!(!starts_like_header(b"A1 LOGIN"));
    assert!(!starts_like_header(b""));
}

#[test]
fn v1_longer_than_107_bytes_is_refused_without_crlf() {
    let mut long = b"PROXY UNKNOWN ".to_vec();
    long.resize(107, b'x');
    assert!(matches!(
        decode(&long),
        Err(Error::ProxyHeader { position: 107, .. })
    ));
    assert_eq!(decode(&long[..106]).unwrap(), Decoded::Incomplete);
}

#[test]
fn mixed_families_are_encoded_as_ipv6() {
    let h = ProxyHeader::tcp(
        "192.0.2.1:1000".parse().unwrap(),
        "[2001:db8::1]:993".parse().unwrap(),
    );
    let bytes = h.encode_v2().unwrap();
    let Decoded::Complete { header, .. } = decode(&bytes).unwrap() else {
        panic!()
    };
    assert_eq!(
        header.source(),
        Some(SocketAddr::new(
            IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped()),
            1000
        ))
    );
    let mut big = ProxyHeader::local();
    big.tlvs.push(Tlv {
        kind: 0xe0,
        value: vec![0; 70_000],
    });
    assert!(matches!(big.encode_v2(), Err(Error::ProxyEncode(_))));
}

fn socket() -> impl Strategy<Value = (SocketAddr, SocketAddr)> {
    prop_oneof![
        (
            any::<[u8; 4]>(),
            any::<[u8; 4]>(),
            any::<u16>(),
            any::<u16>()
        )
            .prop_map(|(a, b, p, q)| {
                (
                    SocketAddr::new(Ipv4Addr::from(a).into(), p),
                    SocketAddr::new(Ipv4Addr::from(b).into(), q),
                )
            }),
        (any::<u128>(), any::<u128>(), any::<u16>(), any::<u16>()).prop_map(|(a, b, p, q)| {
            (
                SocketAddr::new(Ipv6Addr::from(a).into(), p),
                SocketAddr::new(Ipv6Addr::from(b).into(), q),
            )
        }),
    ]
}

fn header() -> impl Strategy<Value = ProxyHeader> {
    let tlvs = prop::collection::vec(
        (any::<u8>(), prop::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(kind, value)| Tlv { kind, value }),
        0..4,
    );
    (prop::option::of(socket()), any::<bool>(), tlvs).prop_map(|(addrs, local, tlvs)| {
        let mut h = match (addrs, local) {
            (_, true) => ProxyHeader::local(),
            (Some((s, d)), false) => ProxyHeader::tcp(s, d),
            (None, false) => {
                let mut h =
                    ProxyHeader::tcp("0.0.0.0:0".parse().unwrap(), "0.0.0.0:0".parse().unwrap());
                h.addresses = Addresses::Unknown;
                h
            }
        };
        h.tlvs = tlvs;
        h
    })
}

proptest! {
    #[test]
    fn encode_then_decode_round_trips(h in header(), data in prop::collection::vec(any::<u8>(), 0..20)) {
        let mut bytes = h.encode_v2().unwrap();
        let len = bytes.len();
        bytes.extend_from_slice(&data);
        let Decoded::Complete { header, consumed } = decode(&bytes).unwrap() else {
            panic!("incomplete")
        };
        prop_assert_eq!(header, h);
        prop_assert_eq!(consumed, len);
        for cut in 0..len {
            prop_assert_eq!(decode(&bytes[..cut]).unwrap(), Decoded::Incomplete);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode(&bytes);
        let mut v2 = portcullis_frontend::proxy_protocol::V2_SIGNATURE.to_vec();
        v2.extend_from_slice(&bytes);
        let _ = decode(&v2);
        let mut v1 = b"PROXY ".to_vec();
        v1.extend_from_slice(&bytes);
        let _ = decode(&v1);
    }
}

#[tokio::test]
async fn read_header_keeps_the_client_data() {
    let (mut client, mut server) = tokio::io::duplex(64);
    let writer = tokio::spawn(async move {
        for chunk in [
            &b"PROXY TCP4 198.51.100.1 "[..],
            b"192.0.2.2 4000 143\r\nA1 CAP",
            b"ABILITY\r\n",
        ] {
            client.write_all(chunk).await.unwrap();
        }
        client
    });
    let done = read_header(&mut server, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        done.header.source(),
        Some("198.51.100.1:4000".parse().unwrap())
    );
    assert!(b"A1 CAPABILITY\r\n".starts_with(&done.rest));
    drop(writer.await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn read_header_times_out() {
    let (mut client, mut server) = tokio::io::duplex(64);
    client.write_all(b"PROXY TCP4").await.unwrap();
    let e = read_header(&mut server, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::ProxyHeaderTimeout(_)), "{e}");
    drop(client);
}

#[tokio::test]
async fn read_header_sees_a_closed_connection() {
    let (mut client, mut server) = tokio::io::duplex(64);
    client.write_all(b"PROXY TCP4").await.unwrap();
    drop(client);
    let e = read_header(&mut server, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::ProxyHeaderTruncated), "{e}");
}

#[tokio::test]
async fn policy_requires_headers_from_trusted_proxies_only() {
    let policy = ProxyPolicy::new(
        NetworkList::parse("mmp.trustedproxies", ["127.0.0.0/8"]).unwrap(),
        Duration::from_secs(5),
    );
    assert!(policy.is_enabled());
    let proxy: SocketAddr = "127.0.0.1:5555".parse().unwrap();
    let local: SocketAddr = "127.0.0.1:143".parse().unwrap();

    // A trusted proxy: the client comes from the header.
    let (mut c, mut s) = tokio::io::duplex(256);
    let h = ProxyHeader::tcp(
        "203.0.113.9:7000".parse().unwrap(),
        "192.0.2.1:143".parse().unwrap(),
    );
    let mut bytes = h.encode_v2().unwrap();
    bytes.extend_from_slice(b"A1 NOOP\r\n");
    c.write_all(&bytes).await.unwrap();
    let a = policy.accept(&mut s, proxy, local).await.unwrap();
    assert_eq!(a.client, "203.0.113.9:7000".parse().unwrap());
    assert_eq!(a.local, "192.0.2.1:143".parse().unwrap());
    assert_eq!(a.peer, proxy);
    assert_eq!(a.buffered, b"A1 NOOP\r\n");

    // A trusted proxy without a header is refused.
    let (mut c, mut s) = tokio::io::duplex(256);
    c.write_all(b"A1 NOOP\r\n").await.unwrap();
    assert!(policy.accept(&mut s, proxy, local).await.is_err());

    // Anyone else: nothing is read, the header stays client data.
    let other: SocketAddr = "198.51.100.4:999".parse().unwrap();
    let (mut c, mut s) = tokio::io::duplex(256);
    c.write_all(&bytes).await.unwrap();
    let a = policy.accept(&mut s, other, local).await.unwrap();
    assert_eq!(a.client, other);
    assert!(a.header.is_none() && a.buffered.is_empty());

    // LOCAL: the peer stands.
    let (mut c, mut s) = tokio::io::duplex(256);
    c.write_all(&ProxyHeader::local().encode_v2().unwrap())
        .await
        .unwrap();
    let a = policy.accept(&mut s, proxy, local).await.unwrap();
    assert_eq!(a.client, proxy);
}

#[test]
fn policy_from_config() {
    let c = portcullis_config::Config::parse("mmp.trustedproxies = \"10.0.0.0/8, ::1\"\n").unwrap();
    let p = ProxyPolicy::from_config(&c).unwrap();
    assert!(p.requires_header("10.2.3.4".parse().unwrap()));
    assert!(p.requires_header("::1".parse().unwrap()));
    assert!(!p.requires_header("192.0.2.1".parse().unwrap()));
    let off = ProxyPolicy::from_config(&portcullis_config::Config::parse("").unwrap()).unwrap();
    assert!(!off.is_enabled());
    let bad = portcullis_config::Config::parse("mmp.trustedproxies = \"10.0.0.0/40\"\n").unwrap();
    assert!(ProxyPolicy::from_config(&bad).is_err());
}
