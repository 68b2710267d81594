//! Which cache entry a client address belongs to.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// How client addresses are grouped into cache entries.
///
/// IPv4 addresses (and IPv4-mapped IPv6 addresses, `::ffff:a.b.c.d`, which
/// are treated as the IPv4 address) are always exact. IPv6 addresses are
/// grouped by their first `ipv6_prefix` bits (default 64), so a client whose
/// privacy extensions (RFC 8981) rotate the interface identifier keeps its
/// authorization. `ipv6_prefix = 128` disables grouping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressGrouping {
    ipv6_prefix: u8,
}

impl Default for AddressGrouping {
    fn default() -> Self {
        Self { ipv6_prefix: 64 }
    }
}

impl AddressGrouping {
    /// Group IPv6 clients by their first `prefix` bits.
    ///
    /// # Errors
    /// [`crate::Error::InvalidSetting`] when `prefix` is 0 or above 128.
    pub fn ipv6_prefix(prefix: u8) -> Result<Self, crate::Error> {
        if prefix == 0 || prefix > 128 {
            return Err(crate::Error::InvalidSetting {
                name: "mmp.ipv6prefix",
                reason: format!("{prefix} is not in 1..=128"),
            });
        }
        Ok(Self {
            ipv6_prefix: prefix,
        })
    }

    /// The configured IPv6 prefix length.
    #[must_use]
    pub const fn prefix(self) -> u8 {
        self.ipv6_prefix
    }

    /// The cache key for `ip`.
    #[must_use]
    pub fn key(self, ip: IpAddr) -> ClientKey {
        match ip {
            IpAddr::V4(v4) => ClientKey::v4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey::v4(v4),
                None => {
                    let bits = u128::from(v6);
                    let mask = if self.ipv6_prefix >= 128 {
                        u128::MAX
                    } else {
                        !(u128::MAX >> self.ipv6_prefix)
                    };
                    ClientKey {
                        bits: bits & mask,
                        prefix: self.ipv6_prefix,
                        v4: false,
                    }
                }
            },
        }
    }
}

/// A normalised client address: an IPv4 address, or an IPv6 network.
///
/// Two clients share an authorization exactly when their keys are equal.
/// `Display` gives the form used in Redis keys: `192.0.2.1`,
/// `2001:db8:1:2::/64`, or a full IPv6 address when the prefix is 128.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey {
    bits: u128,
    prefix: u8,
    v4: bool,
}

impl ClientKey {
    fn v4(v4: Ipv4Addr) -> Self {
        // IPv4 keys live in the IPv4-mapped range, which IPv6 keys never
        // use (mapped addresses are converted to IPv4 first).
        Self {
            bits: u128::from(v4.to_ipv6_mapped()),
            prefix: 32,
            v4: true,
        }
    }

    /// The key as 128 bits (IPv4 keys in the IPv4-mapped range).
    #[must_use]
    pub const fn bits(self) -> u128 {
        self.bits
    }

    /// The key rebuilt from [`ClientKey::bits`] (for stores that keep only the bits).
    #[must_use]
    pub fn from_bits(bits: u128, grouping: AddressGrouping) -> Self {
        grouping.key(IpAddr::V6(Ipv6Addr::from(bits)))
    }
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v6 = Ipv6Addr::from(self.bits);
        if self.v4 {
            match v6.to_ipv4_mapped() {
                Some(v4) => write!(f, "{v4}"),
                None => write!(f, "{v6}"),
            }
        } else if self.prefix >= 128 {
            write!(f, "{v6}")
        } else {
            write!(f, "{v6}/{}", self.prefix)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> String {
        AddressGrouping::default()
            .key(s.parse().expect("test address"))
            .to_string()
    }

    #[test]
    fn v4_and_mapped_are_the_same_key() {
        let g = AddressGrouping::default();
        let a = g.key("192.0.2.7".parse().expect("addr"));
        let b = g.key("::ffff:192.0.2.7".parse().expect("addr"));
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "192.0.2.7");
    }

    #[test]
    fn v6_grouped_by_prefix() {
        assert_eq!(key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:bbbb::9"), "2001:db8:1:2::/64");
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
        let g = AddressGrouping::ipv6_prefix(128).expect("valid");
        assert_eq!(
            g.key("2001:db8::1".parse().expect("addr")).to_string(),
            "2001:db8::1"
        );
        let g = AddressGrouping::ipv6_prefix(48).expect("valid");
        assert_eq!(
            g.key("2001:db8:1:2::1".parse().expect("addr")).to_string(),
            "2001:db8:1::/48"
        );
        assert!(AddressGrouping::ipv6_prefix(0).is_err());
        assert!(AddressGrouping::ipv6_prefix(129).is_err());
    }

    #[test]
    fn v6_key_never_equals_a_v4_key() {
        let g = AddressGrouping::ipv6_prefix(128).expect("valid");
        let v4 = g.key("10.0.0.1".parse().expect("addr"));
        let v6 = g.key("::a00:1".parse().expect("addr"));
        assert_ne!(v4, v6);
    }
}
