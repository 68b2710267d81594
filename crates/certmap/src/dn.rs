//! Distinguished names: RFC 4514 strings and X.509 `Name`s, with typed
//! attribute values and a DN-aware comparison.
//!
//! RFC 4514 §3:
//!
//! ```text
//! distinguishedName = [ relativeDistinguishedName
//!     *( COMMA relativeDistinguishedName ) ]
//! relativeDistinguishedName = attributeTypeAndValue
//!     *( PLUS attributeTypeAndValue )
//! attributeTypeAndValue = attributeType EQUALS attributeValue
//! attributeValue = string / hexstring
//! hexstring = SHARP 1*hexpair
//! ```
//!
//! A value is either a string or the BER encoding of a value (the
//! `#hexstring` form), and the two are different types
//! ([`AttributeValue::Text`], [`AttributeValue::Ber`]): the string `#41`
//! is written back as `\#41`, never as hex.
//!
//! Attribute types are OIDs. Names are looked up in const-oid's database
//! (which holds the IANA LDAP descriptors and the RFC 5280 names), plus
//! `E`, the certificate tools' name for the PKCS#9 e-mail address. When
//! writing, the RFC 4514 §3 short names (`CN`, `L`, `ST`, `O`, `OU`, `C`,
//! `STREET`, `DC`, `UID`) and `emailAddress` are used, then the database's
//! name, and an OID without a name is written in dotted form.
//!
//! Comparison follows the matching rules of the common naming attributes
//! (caseIgnoreMatch with insignificant-space handling): attribute types are
//! compared by OID, values with surrounding spaces removed, inner runs of
//! spaces collapsed and case folded; the values of a multi-valued RDN are
//! compared as a set. A `#hex` value that encodes a directory string
//! compares as that string.

use std::borrow::Cow;
use std::fmt;

use const_oid::ObjectIdentifier;
use const_oid::db::{DB, rfc3280, rfc4519};
use der::{Decode, Encode, Tag, Tagged};
use x509_cert::name::Name;

use crate::Error;

/// Longest DN string [`Dn::parse`] accepts (bytes). Writing a DN escapes
/// its values, so a DN read from a string this long or from a certificate
/// may be written longer than this.
pub const MAX_DN_LEN: usize = 8192;

/// RFC 4514 §3 names, written in upper case, and `emailAddress` (the name
/// OpenLDAP's core schema, 389-DS and OpenSSL use for the PKCS#9 address).
const PREFERRED_NAMES: &[(ObjectIdentifier, &str)] = &[
    (rfc4519::CN, "CN"),
    (rfc4519::L, "L"),
    (rfc4519::ST, "ST"),
    (rfc4519::O, "O"),
    (rfc4519::OU, "OU"),
    (rfc4519::C, "C"),
    (rfc4519::STREET, "STREET"),
    (rfc4519::DC, "DC"),
    (rfc4519::UID, "UID"),
    (rfc3280::EMAIL_ADDRESS, EMAIL_NAME),
];

/// How the PKCS#9 e-mail address attribute is written, everywhere.
const EMAIL_NAME: &str = "emailAddress";

/// An attribute type, identified by its OID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttributeType(ObjectIdentifier);

impl AttributeType {
    /// `commonName` (2.5.4.3).
    pub const CN: Self = Self(rfc4519::CN);
    /// `organizationName` (2.5.4.10).
    pub const O: Self = Self(rfc4519::O);
    /// `organizationalUnitName` (2.5.4.11).
    pub const OU: Self = Self(rfc4519::OU);
    /// `userId` (0.9.2342.19200300.100.1.1).
    pub const UID: Self = Self(rfc4519::UID);
    /// The PKCS#9 e-mail address (1.2.840.113549.1.9.1), written
    /// `emailAddress`; `E` and `email` are accepted when reading.
    pub const EMAIL: Self = Self(rfc3280::EMAIL_ADDRESS);

    /// The type with this OID.
    #[must_use]
    pub const fn new(oid: ObjectIdentifier) -> Self {
        Self(oid)
    }

    /// Reads a type as written in a DN or a `certmap.conf` component list:
    /// a name (any case: `CN`, `commonName`, `E`, `emailAddress`) or an
    /// OID (`2.5.4.3`, `OID.2.5.4.3`).
    ///
    /// # Errors
    /// [`Error::Dn`] for a malformed OID, something that is not an RFC 4512
    /// descriptor, or a name the database does not know.
    pub fn from_name(name: &str) -> Result<Self, Error> {
        let name = name.trim();
        let bare = match name.get(..4) {
            Some(p) if p.eq_ignore_ascii_case("oid.") => &name[4..],
            _ => name,
        };
        let Some(&first) = bare.as_bytes().first() else {
            return Err(Error::Dn("empty attribute type".into()));
        };
        if first.is_ascii_digit() {
            return ObjectIdentifier::new(bare)
                .map(Self)
                .map_err(|_| Error::Dn(format!("bad attribute OID `{name}`")));
        }
        if !first.is_ascii_alphabetic()
            || !bare.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(Error::Dn(format!("bad attribute type `{name}`")));
        }
        if bare.eq_ignore_ascii_case("e") {
            return Ok(Self::EMAIL);
        }
        DB.by_name(bare)
            .map(|oid| Self(*oid))
            .ok_or_else(|| Error::Dn(format!("unknown attribute type `{name}` (write its OID)")))
    }

    /// The OID.
    #[must_use]
    pub const fn oid(&self) -> ObjectIdentifier {
        self.0
    }

    /// The name written in DNs, or `None` when the type is written as a
    /// dotted OID.
    #[must_use]
    pub fn name(&self) -> Option<&'static str> {
        PREFERRED_NAMES
            .iter()
            .find(|(oid, _)| *oid == self.0)
            .map(|(_, n)| *n)
            // A database name is used only when it reads back as this OID.
            .or_else(|| {
                DB.by_oid(&self.0)
                    .filter(|n| is_descriptor(n) && DB.by_name(n) == Some(&self.0))
            })
    }
}

impl fmt::Display for AttributeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "{}", self.0),
        }
    }
}

/// RFC 4512 `descr`: ALPHA *( ALPHA / DIGIT / HYPHEN ).
fn is_descriptor(s: &str) -> bool {
    s.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// An attribute value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AttributeValue {
    /// A string (RFC 4514 `string`), unescaped.
    Text(String),
    /// The BER (DER) encoding of a value that is not a string, or that
    /// was written in the RFC 4514 `#hexstring` form.
    Ber(Vec<u8>),
}

impl AttributeValue {
    /// A BER value, checked to be exactly one DER TLV.
    ///
    /// # Errors
    /// [`Error::Dn`] when `der` is not one complete DER element.
    pub fn ber(der: Vec<u8>) -> Result<Self, Error> {
        der::Any::from_der(&der).map_err(|e| Error::Dn(format!("bad #hex value: {e}")))?;
        Ok(Self::Ber(der))
    }

    /// The value as a string: a [`Text`](Self::Text) value, or a
    /// [`Ber`](Self::Ber) value that encodes a directory string type.
    #[must_use]
    pub fn as_text(&self) -> Option<Cow<'_, str>> {
        match self {
            Self::Text(s) => Some(Cow::Borrowed(s)),
            Self::Ber(b) => {
                let any = der::Any::from_der(b).ok()?;
                decode_string(any.tag(), any.value()).map(Cow::Owned)
            }
        }
    }

    /// The comparison key.
    fn key(&self) -> Key {
        match self {
            Self::Text(s) => Key::Text(normalise_text(s)),
            Self::Ber(b) => match self.as_text() {
                Some(t) => Key::Text(normalise_text(&t)),
                None => Key::Ber(b.clone()),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Text(String),
    Ber(Vec<u8>),
}

/// One attribute type and value of an RDN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ava {
    /// The attribute type.
    pub attr: AttributeType,
    /// The value.
    pub value: AttributeValue,
}

/// A distinguished name in LDAP order (most specific RDN first).
#[derive(Debug, Clone, Default)]
pub struct Dn {
    rdns: Vec<Vec<Ava>>,
}

/// Normalised string: trimmed, inner space runs collapsed, case-folded.
fn normalise_text(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for word in v.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
    out
}

/// Choices that change how a DN is spelt without changing the DN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Spelling {
    /// Between RDNs: `,` or `, `.
    pub(crate) separator: &'static str,
    /// Name of the PKCS#9 e-mail address: `emailAddress` or `E`.
    pub(crate) email: &'static str,
    /// Write non-ASCII characters as `\XX` UTF-8 escapes, as OpenSSL does.
    pub(crate) escape_non_ascii: bool,
}

impl Spelling {
    /// RFC 4514 as [`Dn`]'s `Display` writes it.
    pub(crate) const CANONICAL: Self = Self {
        separator: ",",
        email: EMAIL_NAME,
        escape_non_ascii: false,
    };
}

impl Dn {
    /// Parses an RFC 4514 string (RFC 1779 `;` separators, quoted values
    /// and spaces around separators are accepted too).
    ///
    /// # Errors
    /// [`Error::Dn`] when the string is malformed or names an attribute
    /// type that is not known (write unknown types as OIDs).
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
                attr: AttributeType::from_name(&attr)?,
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

    /// A DN from RDNs in LDAP order (most specific first).
    ///
    /// # Errors
    /// [`Error::Dn`] for an empty RDN or a [`AttributeValue::Ber`] value
    /// that is not one DER element.
    pub fn from_rdns(rdns: Vec<Vec<Ava>>) -> Result<Self, Error> {
        for rdn in &rdns {
            if rdn.is_empty() {
                return Err(Error::Dn("empty RDN".into()));
            }
            for ava in rdn {
                if let AttributeValue::Ber(b) = &ava.value {
                    AttributeValue::ber(b.clone())?;
                }
            }
        }
        Ok(Self { rdns })
    }

    /// Converts an X.509 `Name` (DER order: least specific first) into LDAP
    /// order. Directory string types become [`AttributeValue::Text`];
    /// other values keep their DER as [`AttributeValue::Ber`].
    ///
    /// # Errors
    /// [`Error::Dn`] when an attribute type's OID is not in its one DER
    /// encoding (a padded arc): read as the OID it resembles, it could
    /// pass for a name the CA never meant, and it has no string form.
    pub fn from_x509(name: &Name) -> Result<Self, Error> {
        let mut rdns = Vec::new();
        for rdn in name.iter_rdn() {
            let mut avas = Vec::new();
            for atv in rdn.iter() {
                let canonical = ObjectIdentifier::new(&atv.oid.to_string()).ok();
                if canonical != Some(atv.oid) {
                    return Err(Error::Dn(format!(
                        "attribute type {} is not DER-encoded",
                        atv.oid
                    )));
                }
                let value = match decode_string(atv.value.tag(), atv.value.value()) {
                    Some(s) => AttributeValue::Text(s),
                    // A decoded `Any` re-encodes; an empty vector would
                    // only compare unequal to everything.
                    None => AttributeValue::Ber(atv.value.to_der().unwrap_or_default()),
                };
                avas.push(Ava {
                    attr: AttributeType(atv.oid),
                    value,
                });
            }
            rdns.push(avas);
        }
        rdns.reverse();
        Ok(Self { rdns })
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

    /// Every value of attribute `attr`, most specific first.
    pub fn values(&self, attr: AttributeType) -> impl Iterator<Item = &AttributeValue> + '_ {
        self.rdns
            .iter()
            .flatten()
            .filter(move |a| a.attr == attr)
            .map(|a| &a.value)
    }

    /// The comparison key: per RDN, sorted (type, normalised value) pairs.
    fn key(&self) -> Vec<Vec<(AttributeType, Key)>> {
        self.rdns
            .iter()
            .map(|rdn| {
                let mut v: Vec<(AttributeType, Key)> =
                    rdn.iter().map(|a| (a.attr, a.value.key())).collect();
                v.sort();
                v
            })
            .collect()
    }

    /// Writes the DN with the given spelling.
    pub(crate) fn spell(&self, how: Spelling) -> String {
        let mut out = String::new();
        for (i, rdn) in self.rdns.iter().enumerate() {
            if i > 0 {
                out.push_str(how.separator);
            }
            for (j, ava) in rdn.iter().enumerate() {
                if j > 0 {
                    out.push('+');
                }
                if ava.attr == AttributeType::EMAIL {
                    out.push_str(how.email);
                } else {
                    out.push_str(&ava.attr.to_string());
                }
                out.push('=');
                out.push_str(&value_string(&ava.value, how.escape_non_ascii));
            }
        }
        out
    }
}

/// An attribute value in RFC 4514 form: an escaped string or `#hex`.
pub(crate) fn value_string(value: &AttributeValue, escape_non_ascii: bool) -> String {
    match value {
        AttributeValue::Text(t) => {
            let s = crate::escape::dn_value(t);
            if escape_non_ascii && !s.is_ascii() {
                let mut out = String::with_capacity(s.len() * 3);
                for c in s.chars() {
                    if c.is_ascii() {
                        out.push(c);
                    } else {
                        let mut buf = [0; 4];
                        for b in c.encode_utf8(&mut buf).bytes() {
                            out.push_str(&format!("\\{b:02X}"));
                        }
                    }
                }
                out
            } else {
                s
            }
        }
        AttributeValue::Ber(b) => {
            let mut s = String::with_capacity(1 + 2 * b.len());
            s.push('#');
            for byte in b {
                s.push_str(&format!("{byte:02x}"));
            }
            s
        }
    }
}

impl PartialEq for Dn {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Dn {}

impl fmt::Display for Dn {
    /// RFC 4514 §2 string form. The PKCS#9 e-mail address is written
    /// `emailAddress` (as OpenSSL prints it and directory schemas name it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.spell(Spelling::CANONICAL))
    }
}

fn decode_string(tag: Tag, bytes: &[u8]) -> Option<String> {
    match tag {
        Tag::Utf8String
        | Tag::PrintableString
        | Tag::NumericString
        | Tag::Ia5String
        | Tag::VisibleString => String::from_utf8(bytes.to_vec()).ok(),
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
    fn value(&mut self) -> Result<AttributeValue, Error> {
        self.skip_spaces();
        if self.eat(b'#') {
            let mut der = Vec::new();
            while self.s.get(self.i).is_some_and(u8::is_ascii_hexdigit) {
                let hi = self.hex_digit()?;
                let lo = self.hex_digit()?;
                der.push(hi << 4 | lo);
            }
            if der.is_empty() {
                return Err(Error::Dn("bad #hex value".into()));
            }
            self.skip_spaces();
            return AttributeValue::ber(der);
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
            return text(bytes);
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
        text(bytes)
    }
}

fn text(bytes: Vec<u8>) -> Result<AttributeValue, Error> {
    String::from_utf8(bytes)
        .map(AttributeValue::Text)
        .map_err(|_| Error::Dn("value is not UTF-8".into()))
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
            ("commonName=x,OID.2.5.4.10=y", "CN=x,O=y", true),
            ("CN=Test CA;O=Example", "CN=Test CA,O=Example", true),
            ("cn=a+ou=b,o=c", "ou=B+cn=A,o=c", true),
            ("cn=a,o=c", "cn=a,o=d", false),
            ("cn=a,o=c", "o=c,cn=a", false),
            ("cn=a\\,b,o=c", "cn=\"a,b\",o=c", true),
            ("cn=\\41b,o=c", "cn=Ab,o=c", true),
            ("e=a@b.c", "emailAddress=A@B.C", true),
            ("E=a@b.c", "email=a@b.c", true),
            ("cn=x\\ ", "cn=x", true),
            ("cn=x y", "cn=xy", false),
            // A #hex UTF8String is that string; an OCTET STRING is not.
            ("cn=#0c024869", "cn=hi", true),
            ("cn=#04024869", "cn=Hi", false),
            // The string "#41" is not the value whose BER is 0x41.
            ("cn=\\#0c0141", "cn=#0c0141", false),
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
            "cn",
            "=x",
            "cn=a,",
            "cn=\"a",
            "cn=a\\",
            "cn=a\\4",
            "c n=x",
            "cn=#4",
            "cn=#",
            "cn=#0c05ab",   // not a complete DER element
            "cn=#0c0141ff", // trailing bytes
            "nosuchattr=x",
            "1.2..3=x",
        ] {
            assert!(Dn::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn values_are_typed() {
        let d = Dn::parse("CN=\\#41,O=#0c024869,OU=#04024869").unwrap();
        assert_eq!(
            d.rdns()[0][0].value,
            AttributeValue::Text("#41".into()),
            "an escaped # is a string"
        );
        assert_eq!(
            d.rdns()[1][0].value,
            AttributeValue::Ber(vec![0x0c, 2, b'H', b'i'])
        );
        assert_eq!(d.rdns()[1][0].value.as_text().as_deref(), Some("Hi"));
        assert_eq!(d.rdns()[2][0].value.as_text(), None);
        assert_eq!(d.to_string(), "CN=\\#41,O=#0c024869,OU=#04024869");
        // A string that looks like hex stays a string when written.
        let s = Dn::from_rdns(vec![vec![Ava {
            attr: AttributeType::CN,
            value: AttributeValue::Text("#41".into()),
        }]])
        .unwrap();
        assert_eq!(s.to_string(), "CN=\\#41");
        assert!(
            Dn::from_rdns(vec![vec![Ava {
                attr: AttributeType::CN,
                value: AttributeValue::Ber(vec![0x41]),
            }]])
            .is_err()
        );
        assert!(Dn::from_rdns(vec![vec![]]).is_err());
    }

    #[test]
    fn attribute_names() {
        let cases = [
            ("CN", "2.5.4.3", "CN"),
            ("commonName", "2.5.4.3", "CN"),
            ("l", "2.5.4.7", "L"),
            ("st", "2.5.4.8", "ST"),
            ("o", "2.5.4.10", "O"),
            ("ou", "2.5.4.11", "OU"),
            ("c", "2.5.4.6", "C"),
            ("street", "2.5.4.9", "STREET"),
            ("dc", "0.9.2342.19200300.100.1.25", "DC"),
            ("uid", "0.9.2342.19200300.100.1.1", "UID"),
            ("userid", "0.9.2342.19200300.100.1.1", "UID"),
            ("E", "1.2.840.113549.1.9.1", "emailAddress"),
            ("emailAddress", "1.2.840.113549.1.9.1", "emailAddress"),
            ("email", "1.2.840.113549.1.9.1", "emailAddress"),
            ("serialNumber", "2.5.4.5", "serialNumber"),
            ("SN", "2.5.4.4", "sn"),
            ("title", "2.5.4.12", "title"),
            (
                "1.3.6.1.4.1.32473.9",
                "1.3.6.1.4.1.32473.9",
                "1.3.6.1.4.1.32473.9",
            ),
        ];
        for (name, oid, shown) in cases {
            let t = AttributeType::from_name(name).unwrap();
            assert_eq!(t.oid().to_string(), oid, "{name}");
            assert_eq!(t.to_string(), shown, "{name}");
        }
    }

    #[test]
    fn email_is_spelt_one_way() {
        for s in [
            "E=a@b.c,O=x",
            "emailAddress=a@b.c,O=x",
            "1.2.840.113549.1.9.1=a@b.c,O=x",
        ] {
            assert_eq!(Dn::parse(s).unwrap().to_string(), "emailAddress=a@b.c,O=x");
        }
    }

    #[test]
    fn every_spelling_is_the_same_dn() {
        for s in [
            "emailAddress=a@b.c,CN=Zo\u{eb} \\#1\\, x,O=#04024869+OU=q,DC=example",
            "CN=\\ lead,O=trail\\ ",
        ] {
            let d = Dn::parse(s).unwrap();
            for separator in [",", ", "] {
                for email in ["emailAddress", "E"] {
                    for escape_non_ascii in [false, true] {
                        let spelt = d.spell(Spelling {
                            separator,
                            email,
                            escape_non_ascii,
                        });
                        assert!(spelt.is_ascii() || !escape_non_ascii, "{spelt}");
                        assert_eq!(Dn::parse(&spelt).unwrap().rdns(), d.rdns(), "{spelt}");
                    }
                }
            }
        }
    }

    #[test]
    fn x509_names() {
        // SEQUENCE { SET { SEQUENCE { OID, UTF8String "x" } } } with OID
        // 2.5.4.3 (CN), then the same with the last arc padded (80 03).
        let good = [
            0x30, 0x0c, 0x31, 0x0a, 0x30, 0x08, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x01, b'x',
        ];
        let dn = Dn::from_x509(&Name::from_der(&good).unwrap()).unwrap();
        assert_eq!(dn.to_string(), "CN=x");
        let padded = [
            0x30, 0x0d, 0x31, 0x0b, 0x30, 0x09, 0x06, 0x04, 0x55, 0x04, 0x80, 0x03, 0x0c, 0x01,
            b'x',
        ];
        // der reads the padded OID; the DN refuses it.
        let name = Name::from_der(&padded).unwrap();
        assert!(Dn::from_x509(&name).is_err());
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
            assert_eq!(d.rdns(), again.rdns(), "{s} -> {d}");
        }
    }
}
