//! Distinguished names: RFC 4514 strings and X.509 `Name`s, with a
//! normalised form for comparison.
//!
//! RFC 4514 §3:
//!
//! ```text
//! distinguishedName = [ relativeDistinguishedName
//!     *( COMMA relativeDistinguishedName ) ]
//! relativeDistinguishedName = attributeTypeAndValue
//!     *( PLUS attributeTypeAndValue )
//! attributeTypeAndValue = attributeType EQUALS attributeValue
//! ```
//!
//! Comparison follows the matching rules of the common naming attributes
//! (caseIgnoreMatch with insignificant-space handling): attribute types are
//! compared by OID, values with surrounding spaces removed, inner runs of
//! spaces collapsed and case folded; the values of a multi-valued RDN are
//! compared as a set.

use std::fmt;

use const_oid::ObjectIdentifier;
use der::{Encode, Tag, Tagged};
use x509_cert::name::Name;

use crate::Error;

/// Longest DN string accepted.
const MAX_DN_LEN: usize = 8192;

/// Known attribute types: (OID, canonical lower-case short name, string
/// form used when writing a DN, other accepted names).
const ATTRS: &[(&str, &str, &str, &[&str])] = &[
    ("2.5.4.3", "cn", "CN", &["commonname"]),
    ("2.5.4.4", "sn", "SN", &["surname"]),
    ("2.5.4.5", "serialnumber", "serialNumber", &[]),
    ("2.5.4.6", "c", "C", &["countryname"]),
    ("2.5.4.7", "l", "L", &["localityname"]),
    ("2.5.4.8", "st", "ST", &["stateorprovincename", "s"]),
    ("2.5.4.9", "street", "STREET", &["streetaddress"]),
    ("2.5.4.10", "o", "O", &["organizationname"]),
    ("2.5.4.11", "ou", "OU", &["organizationalunitname"]),
    ("2.5.4.12", "title", "title", &[]),
    ("2.5.4.42", "givenname", "givenName", &["gn"]),
    ("2.5.4.43", "initials", "initials", &[]),
    ("2.5.4.46", "dnqualifier", "dnQualifier", &[]),
    (
        "0.9.2342.19200300.100.1.25",
        "dc",
        "DC",
        &["domaincomponent"],
    ),
    ("0.9.2342.19200300.100.1.1", "uid", "UID", &["userid"]),
    (
        "0.9.2342.19200300.100.1.3",
        "mail",
        "mail",
        &["rfc822mailbox"],
    ),
    ("1.2.840.113549.1.9.1", "e", "E", &["email", "emailaddress"]),
];

/// Canonical lower-case name of an attribute type written in a DN or a
/// certmap.conf component list (`CN`, `commonName`, `2.5.4.3` → `cn`).
/// Unknown names are returned lower-cased; unknown OIDs as dotted strings.
///
/// # Errors
/// When `name` is neither a descriptor (RFC 4512 `keystring`) nor a
/// numeric OID.
pub fn canonical_attr(name: &str) -> Result<String, Error> {
    let lower = name.trim().to_ascii_lowercase();
    let lower = lower.strip_prefix("oid.").unwrap_or(&lower).to_owned();
    if lower.is_empty() {
        return Err(Error::Dn("empty attribute type".into()));
    }
    let first = lower.as_bytes()[0];
    if first.is_ascii_digit() {
        if ObjectIdentifier::new(&lower).is_err() {
            return Err(Error::Dn(format!("bad attribute OID `{name}`")));
        }
        return Ok(ATTRS
            .iter()
            .find(|a| a.0 == lower)
            .map_or(lower.clone(), |a| a.1.to_owned()));
    }
    if !first.is_ascii_alphabetic()
        || !lower
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(Error::Dn(format!("bad attribute type `{name}`")));
    }
    Ok(ATTRS
        .iter()
        .find(|a| a.1 == lower || a.3.contains(&lower.as_str()))
        .map_or(lower.clone(), |a| a.1.to_owned()))
}

fn display_attr(canonical: &str) -> &str {
    ATTRS
        .iter()
        .find(|a| a.1 == canonical)
        .map_or(canonical, |a| a.2)
}

/// One attribute type and value of an RDN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ava {
    /// Canonical lower-case attribute type (see [`canonical_attr`]).
    pub attr: String,
    /// The value, unescaped. A value that is not a string (RFC 4514 `#hex`
    /// form) is kept as `#` followed by lower-case hex.
    pub value: String,
}

/// A distinguished name in LDAP order (most specific RDN first).
#[derive(Debug, Clone, Default)]
pub struct Dn {
    rdns: Vec<Vec<Ava>>,
}

/// Normalised value: trimmed, inner space runs collapsed, case-folded.
fn normalise_value(v: &str) -> String {
    if v.starts_with('#') {
        return v.to_ascii_lowercase();
    }
    let mut out = String::with_capacity(v.len());
    for word in v.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
    out
}

impl Dn {
    /// Parses an RFC 4514 string (RFC 1779 `;` separators and quoted
    /// values are accepted too).
    ///
    /// # Errors
    /// [`Error::Dn`] when the string is malformed.
    pub fn parse(s: &str) -> Result<Self, Error> {
        if s.len() > MAX_DN_LEN {
            return Err(Error::Dn("too long".into()));
        }
        if s.trim().is_empty() {
            return Ok(Self::default());
        }
        let mut rdns = Vec::new();
        let mut rdn = Vec::new();
        let mut p = Parser {
            s: s.as_bytes(),
            i: 0,
        };
        loop {
            p.skip_spaces();
            let attr = p.attr_type()?;
            p.skip_spaces();
            if !p.eat(b'=') {
                return Err(Error::Dn(format!("expected `=` after `{attr}` in `{s}`")));
            }
            let value = p.value()?;
            rdn.push(Ava {
                attr: canonical_attr(&attr)?,
                value,
            });
            match p.next_byte() {
                None => {
                    rdns.push(std::mem::take(&mut rdn));
                    break;
                }
                Some(b'+') => {}
                Some(b',' | b';') => rdns.push(std::mem::take(&mut rdn)),
                Some(c) => {
                    return Err(Error::Dn(format!(
                        "unexpected `{}` in `{s}`",
                        char::from(c).escape_default()
                    )));
                }
            }
        }
        Ok(Self { rdns })
    }

    /// Converts an X.509 `Name` (DER order: least specific first) into LDAP
    /// order. String types are decoded; other values keep their DER as hex.
    #[must_use]
    pub fn from_x509(name: &Name) -> Self {
        let mut rdns: Vec<Vec<Ava>> = name
            .iter_rdn()
            .map(|rdn| {
                rdn.iter()
                    .map(|atv| {
                        let oid = atv.oid.to_string();
                        let attr = ATTRS
                            .iter()
                            .find(|a| a.0 == oid)
                            .map_or(oid.clone(), |a| a.1.to_owned());
                        let value = decode_string(atv.value.tag(), atv.value.value())
                            .unwrap_or_else(|| {
                                let der = atv.value.to_der().unwrap_or_default();
                                let mut s = String::from("#");
                                for b in der {
                                    s.push_str(&format!("{b:02x}"));
                                }
                                s
                            });
                        Ava { attr, value }
                    })
                    .collect()
            })
            .collect();
        rdns.reverse();
        Self { rdns }
    }

    /// The RDNs, most specific first.
    #[must_use]
    pub fn rdns(&self) -> &[Vec<Ava>] {
        &self.rdns
    }

    /// True for the empty (root) DN.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rdns.is_empty()
    }

    /// Every value of attribute `attr` (canonical name), most specific
    /// first.
    pub fn values<'a>(&'a self, attr: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.rdns
            .iter()
            .flatten()
            .filter(move |a| a.attr == attr)
            .map(|a| a.value.as_str())
    }

    /// The comparison key: per RDN, sorted (type, normalised value) pairs.
    fn key(&self) -> Vec<Vec<(&str, String)>> {
        self.rdns
            .iter()
            .map(|rdn| {
                let mut v: Vec<(&str, String)> = rdn
                    .iter()
                    .map(|a| (a.attr.as_str(), normalise_value(&a.value)))
                    .collect();
                v.sort();
                v
            })
            .collect()
    }

    /// A normalised string form, equal for equal DNs.
    #[must_use]
    pub fn normalised(&self) -> String {
        let dn = Self {
            rdns: self
                .key()
                .into_iter()
                .map(|rdn| {
                    rdn.into_iter()
                        .map(|(a, v)| Ava {
                            attr: a.to_owned(),
                            value: v,
                        })
                        .collect()
                })
                .collect(),
        };
        dn.to_string().to_ascii_lowercase()
    }
}

impl PartialEq for Dn {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Dn {}

impl Dn {
    /// The DN as a directory server takes it: like [`Display`](fmt::Display)
    /// but with `emailAddress` for the PKCS#9 e-mail address, a name
    /// OpenLDAP's core schema and 389-DS know (`E` is a certificate tools'
    /// spelling that directories refuse as an invalid DN).
    #[must_use]
    pub fn to_directory_string(&self) -> String {
        struct Directory<'a>(&'a Dn);
        impl fmt::Display for Directory<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.write(f, "emailAddress")
            }
        }
        Directory(self).to_string()
    }

    fn write(&self, f: &mut fmt::Formatter<'_>, email: &str) -> fmt::Result {
        for (i, rdn) in self.rdns.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            for (j, ava) in rdn.iter().enumerate() {
                if j > 0 {
                    f.write_str("+")?;
                }
                if ava.attr == "e" {
                    f.write_str(email)?;
                } else {
                    f.write_str(display_attr(&ava.attr))?;
                }
                f.write_str("=")?;
                if ava.value.starts_with('#') && is_hex_form(&ava.value) {
                    f.write_str(&ava.value)?;
                } else {
                    f.write_str(&crate::escape::dn_value(&ava.value))?;
                }
            }
        }
        Ok(())
    }
}

impl fmt::Display for Dn {
    /// RFC 4514 §2 string form, with `E` for the PKCS#9 e-mail address as
    /// certificate tools write it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, "E")
    }
}

fn is_hex_form(v: &str) -> bool {
    let h = &v[1..];
    !h.is_empty() && h.len().is_multiple_of(2) && h.bytes().all(|b| b.is_ascii_hexdigit())
}

fn decode_string(tag: Tag, bytes: &[u8]) -> Option<String> {
    match tag {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::VisibleString => {
            String::from_utf8(bytes.to_vec()).ok()
        }
        // Teletex: in practice Latin-1.
        Tag::TeletexString => Some(bytes.iter().map(|&b| char::from(b)).collect()),
        Tag::BmpString => {
            if !bytes.len().is_multiple_of(2) {
                return None;
            }
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn skip_spaces(&mut self) {
        while self.s.get(self.i) == Some(&b' ') {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn next_byte(&mut self) -> Option<u8> {
        let c = self.s.get(self.i).copied();
        if c.is_some() {
            self.i += 1;
        }
        c
    }

    fn attr_type(&mut self) -> Result<String, Error> {
        let start = self.i;
        while let Some(&c) = self.s.get(self.i) {
            if c.is_ascii_alphanumeric() || c == b'-' || c == b'.' {
                self.i += 1;
            } else {
                break;
            }
        }
        if start == self.i {
            return Err(Error::Dn(format!("missing attribute type at byte {start}")));
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn hex_digit(&mut self) -> Result<u8, Error> {
        let c = self
            .next_byte()
            .ok_or_else(|| Error::Dn("truncated hex escape".into()))?;
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
            .ok_or_else(|| Error::Dn(format!("bad hex digit at byte {}", self.i - 1)))
    }

    /// Reads an attribute value up to (not including) an unescaped
    /// separator; leaves the cursor on the separator.
    fn value(&mut self) -> Result<String, Error> {
        self.skip_spaces();
        if self.eat(b'#') {
            let mut out = String::from("#");
            while let Some(&c) = self.s.get(self.i) {
                if c.is_ascii_hexdigit() {
                    out.push(char::from(c.to_ascii_lowercase()));
                    self.i += 1;
                } else {
                    break;
                }
            }
            if out.len() < 3 || out.len().is_multiple_of(2) {
                return Err(Error::Dn("bad #hex value".into()));
            }
            self.skip_spaces();
            return Ok(out);
        }
        if self.eat(b'"') {
            let mut bytes = Vec::new();
            loop {
                match self.next_byte() {
                    None => return Err(Error::Dn("unterminated quoted value".into())),
                    Some(b'"') => break,
                    Some(b'\\') => {
                        let c = self
                            .next_byte()
                            .ok_or_else(|| Error::Dn("truncated escape".into()))?;
                        bytes.push(c);
                    }
                    Some(c) => bytes.push(c),
                }
            }
            self.skip_spaces();
            return String::from_utf8(bytes).map_err(|_| Error::Dn("value is not UTF-8".into()));
        }
        let mut bytes = Vec::new();
        // Length of `bytes` up to and including the last escaped or
        // non-space byte: trailing unescaped spaces are dropped.
        let mut keep = 0;
        while let Some(&c) = self.s.get(self.i) {
            match c {
                b',' | b';' | b'+' => break,
                b'\\' => {
                    self.i += 1;
                    let n = *self
                        .s
                        .get(self.i)
                        .ok_or_else(|| Error::Dn("truncated escape".into()))?;
                    if n.is_ascii_hexdigit() {
                        let hi = self.hex_digit()?;
                        let lo = self.hex_digit()?;
                        bytes.push(hi << 4 | lo);
                    } else {
                        self.i += 1;
                        bytes.push(n);
                    }
                    keep = bytes.len();
                }
                b'"' | b'<' | b'>' | 0 => {
                    return Err(Error::Dn(format!(
                        "unescaped `{}` in value",
                        char::from(c).escape_default()
                    )));
                }
                _ => {
                    self.i += 1;
                    bytes.push(c);
                    if c != b' ' {
                        keep = bytes.len();
                    }
                }
            }
        }
        bytes.truncate(keep);
        String::from_utf8(bytes).map_err(|_| Error::Dn("value is not UTF-8".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_compare() {
        let cases = [
            (
                "CN=Test CA, O=Example, C=US",
                "cn=test ca,o=example,c=us",
                true,
            ),
            (
                "cn=Test  CA,o=EXAMPLE,c=us",
                "CN=test ca, O=example, C=US",
                true,
            ),
            (
                "2.5.4.3=Test CA,o=Example,c=US",
                "CN=Test CA,O=Example,C=US",
                true,
            ),
            ("CN=Test CA;O=Example", "CN=Test CA,O=Example", true),
            ("cn=a+ou=b,o=c", "ou=B+cn=A,o=c", true),
            ("cn=a,o=c", "cn=a,o=d", false),
            ("cn=a,o=c", "o=c,cn=a", false),
            ("cn=a\\,b,o=c", "cn=\"a,b\",o=c", true),
            ("cn=\\41b,o=c", "cn=Ab,o=c", true),
            ("e=a@b.c", "emailAddress=A@B.C", true),
            ("cn=x\\ ", "cn=x", true),
            ("cn=x y", "cn=xy", false),
        ];
        for (a, b, eq) in cases {
            let da = Dn::parse(a).unwrap();
            let db = Dn::parse(b).unwrap();
            assert_eq!(da == db, eq, "{a} vs {b}");
        }
    }

    #[test]
    fn bad_dns() {
        for s in [
            "cn", "=x", "cn=a,", "cn=\"a", "cn=a\\", "cn=a\\4", "c n=x", "cn=#4",
        ] {
            assert!(Dn::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn display_round_trip() {
        for s in [
            "CN=a\\,b\\+c\\\"\\\\\\<\\>\\;,O=x",
            "CN=\\ lead,O=trail\\ ",
            "CN=\\#hash,O=y",
            "UID=alice,OU=People,O=example.com,O=example",
            "CN=#04024869,O=x",
        ] {
            let d = Dn::parse(s).unwrap();
            let again = Dn::parse(&d.to_string()).unwrap();
            assert_eq!(d, again, "{s} -> {d}");
        }
    }
}
