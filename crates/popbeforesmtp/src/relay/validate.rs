//! Checks on every value a client contributes to a hand-off, made before
//! any relay sees it, so that no client can make a relay refuse the
//! proxy's own commands (which would take the relay out of service).
//!
//! RFC 5321 §4.1.1.1 and §4.1.2:
//!
//! ```text
//! ehlo            = "EHLO" SP ( Domain / address-literal ) CRLF
//! Domain          = sub-domain *("." sub-domain)
//! sub-domain      = Let-dig [Ldh-str]
//! Ldh-str         = *( ALPHA / DIGIT / "-" ) Let-dig
//! address-literal = "[" ( IPv4-address-literal / IPv6-address-literal /
//!                         General-address-literal ) "]"
//! General-address-literal = Standardized-tag ":" 1*dcontent
//! dcontent        = %d33-90 / %d94-126
//! ```
//!
//! A domain is at most 255 octets (§4.5.3.1.2), a label at most 63
//! (RFC 1035 §2.3.4). RFC 6531 §3.3 adds U-labels (`sub-domain =/
//! U-label`) for a relay that offers SMTPUTF8; without it a HELO name is
//! ASCII. XCLIENT values are xtext (RFC 3461 §4), so a non-ASCII login
//! travels encoded; its encoded form is bounded like every XCLIENT value.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::xclient::xtext_encode;

/// Longest domain (RFC 5321 §4.5.3.1.2).
pub const MAX_DOMAIN: usize = 255;
/// Longest label (RFC 1035 §2.3.4).
pub const MAX_LABEL: usize = 63;

/// Longest xtext-encoded value of one XCLIENT attribute. Postfix refuses
/// longer ones ("501 5.5.4 Error: attribute value too long"); 255 is also
/// the longest domain, and any attribute this long fits a command line.
pub const MAX_ATTRIBUTE_VALUE: usize = 255;

/// Why a client value cannot be handed to a relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Invalid {
    /// The value is empty.
    Empty,
    /// The value is longer than its limit.
    TooLong,
    /// The value contains a control character (CR, LF, NUL, DEL...).
    Control,
    /// Non-ASCII where the relay does not offer SMTPUTF8.
    NonAscii,
    /// Not an RFC 5321 domain or address literal.
    Syntax,
    /// A value XCLIENT reserves (`[UNAVAILABLE]`, `[TEMPUNAVAIL]`).
    Reserved,
}

impl Invalid {
    /// A short explanation for logs and errors.
    #[must_use]
    pub fn reason(self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::TooLong => "too long",
            Self::Control => "contains a control character",
            Self::NonAscii => "non-ASCII, and the relay does not offer SMTPUTF8",
            Self::Syntax => "not a domain or address literal (RFC 5321)",
            Self::Reserved => "a value XCLIENT reserves",
        }
    }
}

fn let_dig(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

fn ascii_label(label: &str) -> bool {
    let b = label.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_LABEL
        && let_dig(b[0])
        && let_dig(b[b.len() - 1])
        && b.iter().all(|&c| let_dig(c) || c == b'-')
}

/// A U-label as RFC 6531 allows it: letters and digits of any script and
/// hyphens, not at either end, at most 63 octets.
fn u_label(label: &str) -> bool {
    let alnum = |c: char| c.is_alphanumeric();
    !label.is_empty()
        && label.len() <= MAX_LABEL
        && label.chars().next().is_some_and(alnum)
        && label.chars().last().is_some_and(alnum)
        && label.chars().all(|c| alnum(c) || c == '-')
}

/// `Domain` of RFC 5321 (with U-labels when `utf8`).
fn domain(name: &str, utf8: bool) -> Result<(), Invalid> {
    if name.len() > MAX_DOMAIN {
        return Err(Invalid::TooLong);
    }
    let ok = name.split('.').all(|l| {
        if l.is_ascii() {
            ascii_label(l)
        } else {
            utf8 && u_label(l)
        }
    });
    if ok {
        Ok(())
    } else if !utf8 && !name.is_ascii() {
        Err(Invalid::NonAscii)
    } else {
        Err(Invalid::Syntax)
    }
}

/// `address-literal` of RFC 5321, brackets included.
fn address_literal(lit: &str) -> bool {
    let Some(inner) = lit.strip_prefix('[').and_then(|s| s.strip_suffix(']')) else {
        return false;
    };
    if let Some(v6) = inner
        .strip_prefix("IPv6:")
        .or_else(|| inner.strip_prefix("ipv6:"))
    {
        return v6.parse::<Ipv6Addr>().is_ok();
    }
    if inner.parse::<Ipv4Addr>().is_ok() {
        return true;
    }
    // General-address-literal: Standardized-tag ":" 1*dcontent.
    match inner.split_once(':') {
        Some((tag, content)) => {
            let tag_ok = !tag.is_empty()
                && tag.bytes().all(|b| let_dig(b) || b == b'-')
                && tag.bytes().last().is_some_and(let_dig);
            tag_ok
                && !content.is_empty()
                && content.bytes().all(|b| matches!(b, 33..=90 | 94..=126))
        }
        None => false,
    }
}

fn no_controls(value: &str) -> Result<(), Invalid> {
    if value.chars().any(char::is_control) {
        Err(Invalid::Control)
    } else {
        Ok(())
    }
}

/// A HELO/EHLO argument: an RFC 5321 domain or address literal; non-ASCII
/// (U-labels) only when the relay offers SMTPUTF8 (`smtputf8`); its xtext
/// form at most [`MAX_ATTRIBUTE_VALUE`] characters (XCLIENT `HELO`).
///
/// ```
/// use portcullis_popbeforesmtp::relay::validate::{check_helo, Invalid};
/// assert_eq!(check_helo("pc.example.com", false), Ok(()));
/// assert_eq!(check_helo("[192.0.2.1]", false), Ok(()));
/// assert_eq!(check_helo("[IPv6:2001:db8::1]", false), Ok(()));
/// assert_eq!(check_helo("", false), Err(Invalid::Empty));
/// assert_eq!(check_helo("pc\r\nRSET", false), Err(Invalid::Control));
/// assert_eq!(check_helo("bücher.example", false), Err(Invalid::NonAscii));
/// assert_eq!(check_helo("bücher.example", true), Ok(()));
/// assert_eq!(check_helo("two words", false), Err(Invalid::Syntax));
/// ```
///
/// # Errors
/// The first rule the value breaks.
pub fn check_helo(helo: &str, smtputf8: bool) -> Result<(), Invalid> {
    if helo.is_empty() {
        return Err(Invalid::Empty);
    }
    no_controls(helo)?;
    if xtext_encode(helo.as_bytes()).len() > MAX_ATTRIBUTE_VALUE {
        return Err(Invalid::TooLong);
    }
    if helo.starts_with('[') {
        return if address_literal(helo) {
            Ok(())
        } else {
            Err(Invalid::Syntax)
        };
    }
    domain(helo, smtputf8)
}

/// A login to assert with XCLIENT `LOGIN`: not empty, no control
/// characters, not a reserved value, and its xtext form at most
/// [`MAX_ATTRIBUTE_VALUE`] characters. Non-ASCII is fine (xtext encodes it).
///
/// # Errors
/// The first rule the value breaks.
pub fn check_login(login: &str) -> Result<(), Invalid> {
    if login.is_empty() {
        return Err(Invalid::Empty);
    }
    no_controls(login)?;
    if matches!(login, "[UNAVAILABLE]" | "[TEMPUNAVAIL]") {
        return Err(Invalid::Reserved);
    }
    if xtext_encode(login.as_bytes()).len() > MAX_ATTRIBUTE_VALUE {
        return Err(Invalid::TooLong);
    }
    Ok(())
}

/// Whether `name` can be passed as XCLIENT `NAME`: an ASCII host name
/// (letters, digits, hyphens; labels of 1 to 63 octets; at most 255).
#[must_use]
pub fn valid_host_name(name: &str) -> bool {
    name.is_ascii() && domain(name, false).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helo_table() {
        let long_label = "a".repeat(64);
        let long_domain = format!("{}.example", ["abcdefghij"; 25].join("."));
        let cases: &[(&str, bool, Result<(), Invalid>)] = &[
            ("mail.example.com", false, Ok(())),
            ("localhost", false, Ok(())),
            ("a-b.c", false, Ok(())),
            ("1.2.3.4.example", false, Ok(())),
            ("[10.0.0.1]", false, Ok(())),
            ("[IPv6:::1]", false, Ok(())),
            ("[x-tag:some.content]", false, Ok(())),
            ("", false, Err(Invalid::Empty)),
            ("a\0b", false, Err(Invalid::Control)),
            ("a\tb", false, Err(Invalid::Control)),
            ("a\u{7f}", false, Err(Invalid::Control)),
            ("a b", false, Err(Invalid::Syntax)),
            ("-a.example", false, Err(Invalid::Syntax)),
            ("a-.example", false, Err(Invalid::Syntax)),
            ("a..b", false, Err(Invalid::Syntax)),
            ("example.", false, Err(Invalid::Syntax)),
            ("my_pc", false, Err(Invalid::Syntax)),
            ("[10.0.0.256]", false, Err(Invalid::Syntax)),
            ("[IPv6:nothex]", false, Err(Invalid::Syntax)),
            ("[UNAVAILABLE]", false, Err(Invalid::Syntax)),
            ("[10.0.0.1", false, Err(Invalid::Syntax)),
            (&long_label, false, Err(Invalid::Syntax)),
            (&long_domain, false, Err(Invalid::TooLong)),
            ("日本.example", false, Err(Invalid::NonAscii)),
            ("日本.example", true, Ok(())),
            ("日本 .example", true, Err(Invalid::Syntax)),
        ];
        for (helo, utf8, want) in cases {
            assert_eq!(check_helo(helo, *utf8), *want, "{helo:?}");
        }
        // The xtext form of a long U-label name no longer fits a line.
        let wide = ["äöüäöüäöüäöüäöüäöüäö"; 6].join(".");
        assert!(wide.len() <= MAX_DOMAIN);
        assert_eq!(check_helo(&wide, true), Err(Invalid::TooLong));
    }

    #[test]
    fn login_table() {
        assert_eq!(check_login("alice"), Ok(()));
        assert_eq!(check_login("alice smith@example.com"), Ok(()));
        assert_eq!(check_login("jürgen"), Ok(()));
        assert_eq!(check_login(""), Err(Invalid::Empty));
        assert_eq!(check_login("a\r\nRSET"), Err(Invalid::Control));
        assert_eq!(check_login("[UNAVAILABLE]"), Err(Invalid::Reserved));
        let max = MAX_ATTRIBUTE_VALUE;
        assert_eq!(check_login(&"x".repeat(max)), Ok(()));
        assert_eq!(check_login(&"x".repeat(max + 1)), Err(Invalid::TooLong));
        // Each "é" is two octets, six xtext characters.
        assert_eq!(check_login(&"é".repeat(max / 6)), Ok(()));
        assert_eq!(check_login(&"é".repeat(max / 6 + 1)), Err(Invalid::TooLong));
    }

    #[test]
    fn host_names() {
        assert!(valid_host_name("client.example.net"));
        assert!(!valid_host_name("bad name"));
        assert!(!valid_host_name("bücher.example"));
        assert!(!valid_host_name(""));
        assert!(!valid_host_name(&"a".repeat(256)));
    }
}
