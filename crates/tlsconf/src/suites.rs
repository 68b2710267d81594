//! Protocol versions and cipher suites by name, with the legacy names refused.
//!
//! Only TLS 1.2 and TLS 1.3 exist here, with the AEAD suites of the ring
//! provider. Every suite has three accepted spellings: the IANA name
//! (`TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`), the OpenSSL name
//! (`ECDHE-RSA-AES128-GCM-SHA256`) and rustls's name
//! (`TLS13_AES_128_GCM_SHA256`). Matching ignores ASCII case.
//!
//! The ciphers the original product offered (its Table 23-2: RC4, DES,
//! triple DES, RC2, 40-bit export ciphers, NULL encryption with MD5) and the
//! SSL 2.0/3.0 and TLS 1.0/1.1 versions are refused with
//! [`Error::Legacy`], which says why and what to use instead.

use std::fmt;
use std::str::FromStr;

use rustls::SupportedCipherSuite;
use rustls::crypto::ring::cipher_suite as cs;

use crate::Error;

/// A protocol version this crate can enable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum TlsVersion {
    /// TLS 1.2 (RFC 5246).
    Tls12,
    /// TLS 1.3 (RFC 8446).
    Tls13,
}

impl TlsVersion {
    pub(crate) fn rustls(self) -> &'static rustls::SupportedProtocolVersion {
        match self {
            Self::Tls12 => &rustls::version::TLS12,
            Self::Tls13 => &rustls::version::TLS13,
        }
    }

    /// The version as rustls reports it for a connection.
    pub fn from_rustls(v: rustls::ProtocolVersion) -> Option<Self> {
        match v {
            rustls::ProtocolVersion::TLSv1_2 => Some(Self::Tls12),
            rustls::ProtocolVersion::TLSv1_3 => Some(Self::Tls13),
            _ => None,
        }
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tls12 => "TLSv1.2",
            Self::Tls13 => "TLSv1.3",
        })
    }
}

impl FromStr for TlsVersion {
    type Err = Error;

    /// Accepts `TLSv1.2`, `TLS1.2`, `TLS 1.2`, `tls1_2`, `1.2` (and the same
    /// for 1.3). SSL 2.0/3.0 and TLS 1.0/1.1 give [`Error::Legacy`].
    fn from_str(s: &str) -> Result<Self, Error> {
        let norm: String = s
            .chars()
            .filter(|c| !matches!(c, ' ' | 'v' | 'V' | '_' | '.' | '-'))
            .collect::<String>()
            .to_ascii_uppercase();
        let norm = norm.strip_prefix("TLS").unwrap_or(&norm);
        match norm {
            "12" => Ok(Self::Tls12),
            "13" => Ok(Self::Tls13),
            "10" | "1" | "11" | "TLS1" => Err(Error::Legacy {
                name: s.to_owned(),
                why: "TLS 1.0 and 1.1 are deprecated (RFC 8996): SHA-1/MD5 handshake hashes, CBC-only suites",
                instead: "TLSv1.2 or TLSv1.3",
            }),
            _ if norm.starts_with("SSL") => Err(Error::Legacy {
                name: s.to_owned(),
                why: "SSL 2.0 and 3.0 are broken (RFC 6176, RFC 7568: POODLE, no AEAD)",
                instead: "TLSv1.2 or TLSv1.3",
            }),
            _ => Err(Error::UnknownVersion(s.to_owned())),
        }
    }
}

/// The range of enabled versions, `min..=max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionRange {
    /// The oldest version accepted.
    pub min: TlsVersion,
    /// The newest version accepted.
    pub max: TlsVersion,
}

impl Default for VersionRange {
    fn default() -> Self {
        Self {
            min: TlsVersion::Tls12,
            max: TlsVersion::Tls13,
        }
    }
}

impl VersionRange {
    /// A range from its two ends.
    ///
    /// # Errors
    /// [`Error::Config`] when `min` is newer than `max`.
    pub fn new(min: TlsVersion, max: TlsVersion) -> Result<Self, Error> {
        if min > max {
            return Err(Error::Config(format!(
                "minimum version {min} is newer than maximum {max}"
            )));
        }
        Ok(Self { min, max })
    }

    /// Whether `v` is enabled.
    pub fn contains(&self, v: TlsVersion) -> bool {
        self.min <= v && v <= self.max
    }

    pub(crate) fn rustls(&self) -> Vec<&'static rustls::SupportedProtocolVersion> {
        [TlsVersion::Tls13, TlsVersion::Tls12]
            .into_iter()
            .filter(|v| self.contains(*v))
            .map(TlsVersion::rustls)
            .collect()
    }
}

/// The supported suites: (IANA name, OpenSSL name, suite), in default preference order.
const SUITES: &[(&str, &str, SupportedCipherSuite)] = &[
    (
        "TLS_AES_256_GCM_SHA384",
        "TLS_AES_256_GCM_SHA384",
        cs::TLS13_AES_256_GCM_SHA384,
    ),
    (
        "TLS_AES_128_GCM_SHA256",
        "TLS_AES_128_GCM_SHA256",
        cs::TLS13_AES_128_GCM_SHA256,
    ),
    (
        "TLS_CHACHA20_POLY1305_SHA256",
        "TLS_CHACHA20_POLY1305_SHA256",
        cs::TLS13_CHACHA20_POLY1305_SHA256,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        "ECDHE-RSA-CHACHA20-POLY1305",
        cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
];

/// The IANA name of a suite, as openssl and curl print for TLS 1.3.
pub fn iana_name(suite: SupportedCipherSuite) -> &'static str {
    SUITES
        .iter()
        .find(|(_, _, s)| s.suite() == suite.suite())
        .map_or("unknown", |(i, _, _)| i)
}

/// The OpenSSL name of a suite, as `openssl s_client` and curl print it.
pub fn openssl_name(suite: SupportedCipherSuite) -> &'static str {
    SUITES
        .iter()
        .find(|(_, _, s)| s.suite() == suite.suite())
        .map_or("unknown", |(_, o, _)| o)
}

/// An ordered, non-empty list of cipher suites (first is most preferred).
#[derive(Clone, PartialEq)]
pub struct CipherSuites(Vec<SupportedCipherSuite>);

impl fmt::Debug for CipherSuites {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|s| iana_name(*s)))
            .finish()
    }
}

impl Default for CipherSuites {
    fn default() -> Self {
        Self(SUITES.iter().map(|(_, _, s)| *s).collect())
    }
}

impl CipherSuites {
    /// Parses a list of suite names separated by commas, colons or
    /// whitespace (OpenSSL writes colons, NSS-style lists commas).
    ///
    /// # Errors
    /// [`Error::Legacy`] for a legacy cipher, [`Error::UnknownCipherSuite`]
    /// for any other unknown name, [`Error::Config`] for an empty list.
    pub fn parse(list: &str) -> Result<Self, Error> {
        let mut out: Vec<SupportedCipherSuite> = Vec::new();
        for name in list
            .split([',', ':', ' ', '\t', '\n'])
            .filter(|n| !n.is_empty())
        {
            let suite = parse_suite(name)?;
            if !out.iter().any(|s| s.suite() == suite.suite()) {
                out.push(suite);
            }
        }
        if out.is_empty() {
            return Err(Error::Config("the cipher suite list is empty".into()));
        }
        Ok(Self(out))
    }

    /// The suites, most preferred first.
    pub fn as_slice(&self) -> &[SupportedCipherSuite] {
        &self.0
    }

    /// Whether any suite of this list belongs to `v`.
    pub fn has_version(&self, v: TlsVersion) -> bool {
        self.0.iter().any(|s| suite_version(*s) == v)
    }

    /// Keeps the suites of the enabled versions, refusing a list that leaves
    /// an enabled version without a suite (never silently dropping it).
    pub(crate) fn for_versions(
        &self,
        versions: &VersionRange,
    ) -> Result<Vec<SupportedCipherSuite>, Error> {
        for v in [TlsVersion::Tls12, TlsVersion::Tls13] {
            if versions.contains(v) && !self.has_version(v) {
                let names: Vec<&str> = SUITES
                    .iter()
                    .filter(|(_, _, s)| suite_version(*s) == v)
                    .map(|(i, _, _)| *i)
                    .collect();
                return Err(Error::Config(format!(
                    "{v} is enabled but the cipher list names no {v} suite: add one of {} or change the version range",
                    names.join(", ")
                )));
            }
        }
        Ok(self
            .0
            .iter()
            .copied()
            .filter(|s| versions.contains(suite_version(*s)))
            .collect())
    }
}

impl FromStr for CipherSuites {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

pub(crate) fn suite_version(s: SupportedCipherSuite) -> TlsVersion {
    match s {
        SupportedCipherSuite::Tls13(_) => TlsVersion::Tls13,
        SupportedCipherSuite::Tls12(_) => TlsVersion::Tls12,
    }
}

fn parse_suite(name: &str) -> Result<SupportedCipherSuite, Error> {
    let upper = name.to_ascii_uppercase();
    for (iana, openssl, suite) in SUITES {
        let rustls_name = format!("{:?}", suite.suite());
        if upper == *iana || upper == *openssl || upper == rustls_name {
            return Ok(*suite);
        }
    }
    if let Some((why, instead)) = legacy_reason(&upper) {
        return Err(Error::Legacy {
            name: name.to_owned(),
            why,
            instead,
        });
    }
    let supported = SUITES
        .iter()
        .map(|(i, o, _)| format!("{i} ({o})"))
        .collect::<Vec<_>>()
        .join(", ");
    Err(Error::UnknownCipherSuite {
        name: name.to_owned(),
        supported,
    })
}

const USE_AEAD: &str = "an AEAD suite such as TLS_AES_128_GCM_SHA256 (TLS 1.3) or ECDHE-RSA-AES128-GCM-SHA256 / ECDHE-ECDSA-AES128-GCM-SHA256 (TLS 1.2)";

/// Why a cipher name is legacy, if it is. `upper` is upper case.
///
/// Covers IANA (`TLS_RSA_WITH_RC4_128_MD5`), OpenSSL (`RC4-MD5`,
/// `DES-CBC3-SHA`, `EXP-RC2-CBC-MD5`) and the NSS-style names of the
/// original product (`rsa_rc4_128_md5`, `rsa_3des_sha`, `fips_des_sha`,
/// `rsa_rc2_40_md5`, `rsa_null_md5`).
fn legacy_reason(upper: &str) -> Option<(&'static str, &'static str)> {
    let words: Vec<&str> = upper.split(['_', '-']).collect();
    let has = |w: &str| words.contains(&w);
    let has_prefix = |p: &str| words.iter().any(|x| x.starts_with(p));
    if upper.starts_with("SSL2") || upper.starts_with("SSL3") || upper.starts_with("SSL_") {
        return Some((
            "SSL 2.0/3.0 cipher suites are broken (RFC 6176, RFC 7568)",
            USE_AEAD,
        ));
    }
    if has("NULL") || has("ENULL") || has("ANULL") {
        return Some((
            "NULL suites send data unencrypted or unauthenticated",
            USE_AEAD,
        ));
    }
    if has("EXPORT") || has("EXP") || has_prefix("EXPORT") || has("40") || has("56") {
        return Some((
            "40/56-bit export ciphers are breakable in hours (FREAK, Logjam)",
            USE_AEAD,
        ));
    }
    if words.iter().any(|w| w.starts_with("RC4")) {
        return Some((
            "RC4 has exploitable keystream biases and is prohibited by RFC 7465",
            USE_AEAD,
        ));
    }
    if words.iter().any(|w| w.starts_with("RC2")) {
        return Some(("RC2 is a weak 64-bit block cipher", USE_AEAD));
    }
    if has("3DES")
        || has("DES3")
        || has("CBC3")
        || upper.contains("DES_EDE")
        || upper.contains("DES-EDE")
    {
        return Some((
            "triple DES has a 64-bit block (Sweet32, CVE-2016-2183)",
            USE_AEAD,
        ));
    }
    if has("DES") {
        return Some((
            "single DES has a 56-bit key, brute-forced since 1998",
            USE_AEAD,
        ));
    }
    if has("MD5") {
        return Some((
            "MD5 message authentication is broken and only legacy suites use it",
            USE_AEAD,
        ));
    }
    if has("CBC") || upper.ends_with("-SHA") || upper.ends_with("_SHA") {
        return Some((
            "CBC-mode MAC-then-encrypt suites invite padding oracles (Lucky13) and are not offered",
            USE_AEAD,
        ));
    }
    if upper.starts_with("TLS_RSA_")
        || upper.starts_with("AES")
        || upper.starts_with("TLS_DHE_")
        || upper.starts_with("DHE-")
    {
        return Some((
            "static-RSA and finite-field DHE suites lack forward secrecy or are not offered",
            USE_AEAD,
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        for (s, v) in [
            ("TLSv1.2", TlsVersion::Tls12),
            ("tls1_3", TlsVersion::Tls13),
            ("1.3", TlsVersion::Tls13),
            ("TLS 1.2", TlsVersion::Tls12),
        ] {
            assert_eq!(s.parse::<TlsVersion>().unwrap(), v, "{s}");
        }
        for s in [
            "SSLv3", "SSL3.0", "sslv2", "TLSv1", "TLSv1.0", "TLSv1.1", "tls1_1",
        ] {
            let e = s.parse::<TlsVersion>().unwrap_err();
            assert!(matches!(e, Error::Legacy { .. }), "{s}: {e}");
            assert!(e.to_string().contains("use TLSv1.2 or TLSv1.3"), "{e}");
        }
        assert!(matches!(
            "TLSv9".parse::<TlsVersion>(),
            Err(Error::UnknownVersion(_))
        ));
        assert!(VersionRange::new(TlsVersion::Tls13, TlsVersion::Tls12).is_err());
    }

    #[test]
    fn suite_names() {
        let l = CipherSuites::parse("ECDHE-RSA-AES128-GCM-SHA256:TLS_AES_256_GCM_SHA384, tls13_chacha20_poly1305_sha256 TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384").unwrap();
        let names: Vec<_> = l.as_slice().iter().map(|s| iana_name(*s)).collect();
        assert_eq!(
            names,
            [
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                "TLS_AES_256_GCM_SHA384",
                "TLS_CHACHA20_POLY1305_SHA256",
                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
            ]
        );
    }

    #[test]
    fn legacy_suites_refused_with_reason() {
        let cases = [
            ("rsa_rc4_128_md5", "RC4"),
            ("RC4-SHA", "RC4"),
            ("TLS_RSA_WITH_RC4_128_MD5", "RC4"),
            ("rsa_3des_sha", "triple DES"),
            ("DES-CBC3-SHA", "triple DES"),
            ("TLS_RSA_WITH_3DES_EDE_CBC_SHA", "triple DES"),
            ("fips_3des_sha", "triple DES"),
            ("rsa_des_sha", "single DES"),
            ("DES-CBC-SHA", "single DES"),
            ("rsa_rc4_40_md5", "export"),
            ("EXP-RC4-MD5", "export"),
            ("rsa_rc2_40_md5", "export"),
            ("RC2-CBC-MD5", "RC2"),
            ("rsa_null_md5", "NULL"),
            ("NULL-MD5", "NULL"),
            ("TLS_RSA_WITH_NULL_SHA256", "NULL"),
            ("ECDHE-RSA-AES128-SHA", "CBC"),
            ("AES128-GCM-SHA256", "forward secrecy"),
        ];
        for (name, why) in cases {
            match CipherSuites::parse(name) {
                Err(e @ Error::Legacy { .. }) => {
                    let m = e.to_string();
                    assert!(m.contains(why), "{name}: {m}");
                    assert!(m.contains("use an AEAD suite"), "{name}: {m}");
                }
                other => panic!("{name}: {other:?}"),
            }
        }
        assert!(matches!(
            CipherSuites::parse("FOO-BAR"),
            Err(Error::UnknownCipherSuite { .. })
        ));
        assert!(matches!(CipherSuites::parse(" , "), Err(Error::Config(_))));
    }

    #[test]
    fn enabled_version_needs_a_suite() {
        let only12 = CipherSuites::parse("ECDHE-RSA-AES128-GCM-SHA256").unwrap();
        let e = only12.for_versions(&VersionRange::default()).unwrap_err();
        assert!(e.to_string().contains("TLSv1.3 is enabled"), "{e}");
        let r = VersionRange::new(TlsVersion::Tls12, TlsVersion::Tls12).unwrap();
        assert_eq!(only12.for_versions(&r).unwrap().len(), 1);
        // Suites of disabled versions are dropped.
        let all = CipherSuites::default();
        assert_eq!(all.for_versions(&r).unwrap().len(), 6);
    }
}
