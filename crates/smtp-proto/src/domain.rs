//! The EHLO/HELO argument: a domain or an address literal.
//!
//! RFC 5321 §4.1.2 and §4.1.3:
//!
//! ```text
//! Domain          = sub-domain *("." sub-domain)
//! sub-domain      = Let-dig [Ldh-str]
//! Let-dig         = ALPHA / DIGIT
//! Ldh-str         = *( ALPHA / DIGIT / "-" ) Let-dig
//! address-literal = "[" ( IPv4-address-literal /
//!                   IPv6-address-literal /
//!                   General-address-literal ) "]"
//! IPv6-address-literal = "IPv6:" IPv6-addr
//! ```
//!
//! General address literals (`tag:content`) are refused: nothing standard
//! uses them.

use std::net::{Ipv4Addr, Ipv6Addr};

/// The longest domain (RFC 5321 §4.5.3.1.2).
pub const MAX_DOMAIN: usize = 255;
/// The longest label (RFC 1035 §2.3.4).
const MAX_LABEL: usize = 63;

/// Whether `s` is a domain or an address literal as RFC 5321 defines them.
///
/// ```
/// use portcullis_smtp_proto::domain::is_valid;
/// assert!(is_valid("mail.example.org"));
/// assert!(is_valid("[192.0.2.1]"));
/// assert!(is_valid("[IPv6:2001:db8::1]"));
/// assert!(!is_valid("-bad.example"));
/// assert!(!is_valid("bad..example"));
/// assert!(!is_valid("[300.0.0.1]"));
/// ```
#[must_use]
pub fn is_valid(s: &str) -> bool {
    if let Some(inner) = s.strip_prefix('[') {
        let Some(inner) = inner.strip_suffix(']') else {
            return false;
        };
        return is_address_literal(inner);
    }
    is_domain(s)
}

fn is_address_literal(inner: &str) -> bool {
    if let Some(v6) = inner
        .get(..5)
        .filter(|p| p.eq_ignore_ascii_case("IPv6:"))
        .and_then(|_| inner.get(5..))
    {
        return v6.parse::<Ipv6Addr>().is_ok();
    }
    // std accepts only the dotted-quad form RFC 5321 requires.
    inner.parse::<Ipv4Addr>().is_ok()
}

fn is_domain(s: &str) -> bool {
    if s.is_empty() || s.len() > MAX_DOMAIN {
        return false;
    }
    s.split('.').all(|label| {
        let b = label.as_bytes();
        !b.is_empty()
            && b.len() <= MAX_LABEL
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            && b.first().is_some_and(u8::is_ascii_alphanumeric)
            && b.last().is_some_and(u8::is_ascii_alphanumeric)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: &[(&str, bool)] = &[
            ("localhost", true),
            ("a", true),
            ("1.example", true),
            ("xn--bcher-kva.example", true),
            ("a-b.c-d", true),
            ("", false),
            (".", false),
            ("a.", false),
            (".a", false),
            ("a-.b", false),
            ("a_b.example", false),
            ("a b", false),
            ("bücher.example", false),
            ("[127.0.0.1]", true),
            ("[ipv6:::1]", true),
            ("[IPv6:2001:db8::1]", true),
            ("[127.0.0.1", false),
            ("[127.1]", false),
            ("[::1]", false),
            ("[IPv6:127.0.0.1]", false),
            ("[tag:content]", false),
        ];
        for (input, want) in cases {
            assert_eq!(is_valid(input), *want, "{input:?}");
        }
        let long_label = "a".repeat(64);
        assert!(!is_valid(&long_label));
        let long = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(63),
        ]
        .join(".");
        assert_eq!(long.len(), 255);
        assert!(is_valid(&long));
        assert!(!is_valid(&format!("{long}x")));
    }
}
