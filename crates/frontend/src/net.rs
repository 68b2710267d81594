//! Address helpers shared by the modules: CIDR lists and client grouping.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use crate::Error;

/// `ip` with an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) turned back
/// into the IPv4 address it carries, so that one client is one address
/// whatever socket family accepted it.
#[must_use]
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// A list of networks (`10.0.0.0/8`, `2001:db8::/32`, or a bare address
/// for one host), as `mmp.trustedproxies` and `mmp.trustednetworks` hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkList {
    nets: Vec<IpNet>,
}

impl NetworkList {
    /// Parses the entries of parameter `name` (blank- or comma-separated
    /// entries are accepted within each item).
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] naming the first entry that is neither a
    /// network nor an address.
    pub fn parse<S: AsRef<str>>(
        name: &'static str,
        entries: impl IntoIterator<Item = S>,
    ) -> Result<Self, Error> {
        let mut nets = Vec::new();
        for item in entries {
            for word in item
                .as_ref()
                .split(|c: char| c == ',' || c.is_ascii_whitespace())
                .filter(|w| !w.is_empty())
            {
                nets.push(parse_net(word).ok_or_else(|| Error::InvalidSetting {
                    name,
                    reason: format!("{word:?} is not an address or a network (a.b.c.d/n, x::/n)"),
                })?);
            }
        }
        Ok(Self { nets })
    }

    /// Whether the list has no entry.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// Whether `ip` (IPv4-mapped addresses as IPv4) is in one of the networks.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|n| n.contains(&ip))
    }
}

fn parse_net(word: &str) -> Option<IpNet> {
    if let Ok(net) = word.parse::<IpNet>() {
        // `10.1.2.3/8` is taken as the network 10.0.0.0/8.
        return Some(net.trunc());
    }
    word.parse::<IpAddr>().ok().map(IpNet::from)
}

/// How failed logins and connections are counted per client: an IPv4
/// address exactly, an IPv6 address by its /64 (one subscriber's privacy
/// addresses, RFC 8981, are one client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// One IPv4 address.
    V4(Ipv4Addr),
    /// The first 64 bits of an IPv6 address.
    V6(u64),
}

impl ClientKey {
    /// The key of `ip`.
    #[must_use]
    pub fn of(ip: IpAddr) -> Self {
        match canonical(ip) {
            IpAddr::V4(v4) => Self::V4(v4),
            IpAddr::V6(v6) => Self::V6(prefix64(v6)),
        }
    }
}

fn prefix64(v6: Ipv6Addr) -> u64 {
    // The shift leaves 64 significant bits, so the conversion never fails.
    u64::try_from(u128::from(v6) >> 64).unwrap_or(u64::MAX)
}

impl fmt::Display for ClientKey {
    /// `192.0.2.1` or `2001:db8:1:2::/64`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::V4(v4) => write!(f, "{v4}"),
            Self::V6(hi) => write!(f, "{}/64", Ipv6Addr::from(u128::from(*hi) << 64)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_match() {
        let l = NetworkList::parse("x", ["10.0.0.0/8, 192.0.2.7", "2001:db8::/32"]).unwrap();
        assert!(l.contains("10.9.8.7".parse().unwrap()));
        assert!(l.contains("::ffff:10.1.1.1".parse().unwrap()));
        assert!(l.contains("192.0.2.7".parse().unwrap()));
        assert!(!l.contains("192.0.2.8".parse().unwrap()));
        assert!(l.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(!l.contains("2001:db9::1".parse().unwrap()));
        assert!(NetworkList::parse("x", [""]).unwrap().is_empty());
        for bad in [
            "10.0.0.0/33",
            "host.example",
            "10.0.0",
            "::/129",
            "10.0.0.0/",
        ] {
            let e = NetworkList::parse("mmp.trustedproxies", [bad]).unwrap_err();
            assert!(e.to_string().contains("mmp.trustedproxies"), "{bad}: {e}");
        }
    }

    #[test]
    fn keys_group_ipv6_by_64() {
        let a = ClientKey::of("2001:db8:1:2::1".parse().unwrap());
        let b = ClientKey::of("2001:db8:1:2:ffff:1:2:3".parse().unwrap());
        let c = ClientKey::of("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
        assert_eq!(
            ClientKey::of("::ffff:192.0.2.1".parse().unwrap()),
            ClientKey::of("192.0.2.1".parse().unwrap())
        );
        assert_eq!(
            ClientKey::of("192.0.2.1".parse().unwrap()).to_string(),
            "192.0.2.1"
        );
    }
}
