//! HAProxy PROXY protocol headers (versions 1 and 2), sent by the proxy to
//! a relay before anything else so the relay sees the real client address.
//!
//! ```text
//! v1: "PROXY" SP ("TCP4" | "TCP6") SP src SP dst SP sport SP dport CRLF
//! v2: \x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A  (signature)
//!     0x21 (version 2, PROXY)  0x11 | 0x21 (TCP over IPv4 | IPv6)
//!     length (u16, big endian)  src addr, dst addr, src port, dst port
//! ```

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// The 12-byte signature that starts every v2 header.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// Both addresses in one family: if they differ, IPv4 is written IPv4-mapped.
fn same_family(src: SocketAddr, dst: SocketAddr) -> (SocketAddr, SocketAddr) {
    let unmap = |a: SocketAddr| match a.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), a.port()),
            None => a,
        },
        IpAddr::V4(_) => a,
    };
    let (src, dst) = (unmap(src), unmap(dst));
    let map = |a: SocketAddr| match a.ip() {
        IpAddr::V4(v4) => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), a.port()),
        IpAddr::V6(_) => a,
    };
    if src.is_ipv4() == dst.is_ipv4() {
        (src, dst)
    } else {
        (map(src), map(dst))
    }
}

/// A version 1 (text) header for a TCP connection from `src` to `dst`.
#[must_use]
pub fn v1_header(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let (src, dst) = same_family(src, dst);
    let fam = if src.is_ipv4() { "TCP4" } else { "TCP6" };
    format!(
        "PROXY {fam} {} {} {} {}\r\n",
        src.ip(),
        dst.ip(),
        src.port(),
        dst.port()
    )
    .into_bytes()
}

/// A version 2 (binary) header for a TCP connection from `src` to `dst`.
#[must_use]
pub fn v2_header(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let (src, dst) = same_family(src, dst);
    let mut out = Vec::with_capacity(16 + 36);
    out.extend_from_slice(&V2_SIGNATURE);
    out.push(0x21);
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            out.push(0x11);
            out.extend_from_slice(&12u16.to_be_bytes());
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
        }
        (s, d) => {
            let v6 = |ip: IpAddr| match ip {
                IpAddr::V6(v6) => v6,
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            };
            let (s, d): (Ipv6Addr, Ipv6Addr) = (v6(s), v6(d));
            out.push(0x21);
            out.extend_from_slice(&36u16.to_be_bytes());
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
        }
    }
    out.extend_from_slice(&src.port().to_be_bytes());
    out.extend_from_slice(&dst.port().to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1() {
        let h = v1_header(
            "192.0.2.1:5000".parse().expect("addr"),
            "198.51.100.2:25".parse().expect("addr"),
        );
        assert_eq!(h, b"PROXY TCP4 192.0.2.1 198.51.100.2 5000 25\r\n");
        let h = v1_header(
            "[2001:db8::1]:5000".parse().expect("addr"),
            "198.51.100.2:25".parse().expect("addr"),
        );
        assert_eq!(h, b"PROXY TCP6 2001:db8::1 ::ffff:198.51.100.2 5000 25\r\n");
    }

    #[test]
    fn v2() {
        let h = v2_header(
            "192.0.2.1:5000".parse().expect("addr"),
            "198.51.100.2:25".parse().expect("addr"),
        );
        assert_eq!(&h[..12], &V2_SIGNATURE);
        assert_eq!(&h[12..16], &[0x21, 0x11, 0, 12]);
        assert_eq!(&h[16..24], &[192, 0, 2, 1, 198, 51, 100, 2]);
        assert_eq!(&h[24..], &[0x13, 0x88, 0, 25]);
        let h = v2_header(
            "[2001:db8::1]:1".parse().expect("addr"),
            "[2001:db8::2]:2".parse().expect("addr"),
        );
        assert_eq!(h.len(), 16 + 36);
        assert_eq!(&h[13..16], &[0x21, 0, 36]);
    }
}
