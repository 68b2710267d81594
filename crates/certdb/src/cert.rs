//! Reading certificates (PEM or DER) and describing them.

use crate::text::terminal_safe;
use std::fmt::Write as _;

use der::{Decode, Encode};
use sha1::Digest as _;
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAltName};

use crate::error::{Error, Result};
use crate::fsutil::hex;
use crate::trust::{TrustFlags, TrustSet};

/// Largest certificate input accepted (PEM or DER).
pub const MAX_CERT_INPUT: usize = 1024 * 1024;

/// Decodes one or more certificates from PEM (`CERTIFICATE` blocks; other
/// blocks are skipped) or a single DER certificate. Each certificate is
/// checked to be a well-formed X.509 certificate with no trailing bytes.
///
/// # Errors
/// [`Error::BadCertificate`] for anything else, including empty input.
pub fn decode_certificates(input: &[u8]) -> Result<Vec<Vec<u8>>> {
    if input.len() > MAX_CERT_INPUT {
        return Err(Error::TooLarge(input.len()));
    }
    let looks_pem = input.windows(11).any(|w| w == b"-----BEGIN ");
    let ders: Vec<Vec<u8>> = if looks_pem {
        let blocks =
            pem::parse_many(input).map_err(|e| Error::BadCertificate(format!("PEM: {e}")))?;
        blocks
            .into_iter()
            .filter(|b| matches!(b.tag(), "CERTIFICATE" | "X509 CERTIFICATE"))
            .map(pem::Pem::into_contents)
            .collect()
    } else {
        vec![input.to_vec()]
    };
    if ders.is_empty() {
        return Err(Error::BadCertificate(
            "no CERTIFICATE block in PEM input".into(),
        ));
    }
    for d in &ders {
        CertInfo::parse(d)?;
    }
    Ok(ders)
}

/// What the database shows about a certificate.
#[derive(Clone, Debug)]
pub struct CertInfo {
    /// The DER encoding.
    pub der: Vec<u8>,
    /// Subject DN, RFC 4514 string.
    pub subject: String,
    /// Issuer DN, RFC 4514 string.
    pub issuer: String,
    /// Subject DN, DER.
    pub subject_der: Vec<u8>,
    /// Issuer DN, DER.
    pub issuer_der: Vec<u8>,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// Serial number bytes (big-endian).
    pub serial: Vec<u8>,
    /// SubjectPublicKeyInfo, DER.
    pub spki: Vec<u8>,
    /// Issuer DN equals subject DN.
    pub self_signed: bool,
    /// basicConstraints cA.
    pub is_ca: bool,
    /// SHA-1 fingerprint.
    pub sha1: [u8; 20],
    /// SHA-256 fingerprint.
    pub sha256: [u8; 32],
}

fn to_odt(t: &x509_cert::time::Time) -> Result<OffsetDateTime> {
    let secs = t.to_unix_duration().as_secs();
    let secs =
        i64::try_from(secs).map_err(|_| Error::BadCertificate("date out of range".into()))?;
    OffsetDateTime::from_unix_timestamp(secs)
        .map_err(|_| Error::BadCertificate("date out of range".into()))
}

impl CertInfo {
    /// Parses a DER certificate.
    ///
    /// # Errors
    /// [`Error::BadCertificate`] when it is not one.
    pub fn parse(der: &[u8]) -> Result<Self> {
        let c = Certificate::from_der(der).map_err(|e| Error::BadCertificate(e.to_string()))?;
        Self::from_parsed(der, &c)
    }

    fn from_parsed(der: &[u8], c: &Certificate) -> Result<Self> {
        let tbs = c.tbs_certificate();
        let bad = |e: der::Error| Error::BadCertificate(e.to_string());
        let subject_der = tbs.subject().to_der().map_err(bad)?;
        let issuer_der = tbs.issuer().to_der().map_err(bad)?;
        let is_ca = tbs
            .get_extension::<BasicConstraints>()
            .ok()
            .flatten()
            .is_some_and(|(_, bc)| bc.ca);
        Ok(CertInfo {
            der: der.to_vec(),
            subject: tbs.subject().to_string(),
            issuer: tbs.issuer().to_string(),
            self_signed: subject_der == issuer_der,
            subject_der,
            issuer_der,
            not_before: to_odt(&tbs.validity().not_before)?,
            not_after: to_odt(&tbs.validity().not_after)?,
            serial: tbs.serial_number().as_bytes().to_vec(),
            spki: tbs.subject_public_key_info().to_der().map_err(bad)?,
            is_ca,
            sha1: sha1::Sha1::digest(der).into(),
            sha256: sha2::Sha256::digest(der).into(),
        })
    }

    /// Whether `now` is past the end of validity.
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        now > self.not_after
    }
}

/// Colon-separated upper-case hex, as certutil prints fingerprints.
pub fn colon_hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 3);
    for (i, x) in b.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        let _ = write!(s, "{x:02X}");
    }
    s
}

fn oid_name(oid: &der::asn1::ObjectIdentifier) -> String {
    let known = match oid.to_string().as_str() {
        "1.2.840.10045.4.3.2" => Some("X9.62 ECDSA signature with SHA-256"),
        "1.2.840.10045.4.3.3" => Some("X9.62 ECDSA signature with SHA-384"),
        "1.2.840.113549.1.1.11" => Some("PKCS #1 SHA-256 With RSA Encryption"),
        "1.2.840.113549.1.1.12" => Some("PKCS #1 SHA-384 With RSA Encryption"),
        "1.2.840.113549.1.1.13" => Some("PKCS #1 SHA-512 With RSA Encryption"),
        "1.2.840.113549.1.1.5" => Some("PKCS #1 SHA-1 With RSA Encryption"),
        "1.2.840.113549.1.1.4" => Some("PKCS #1 MD5 With RSA Encryption"),
        "1.2.840.113549.1.1.10" => Some("PKCS #1 RSA-PSS Signature"),
        "1.2.840.113549.1.1.1" => Some("PKCS #1 RSA Encryption"),
        "1.2.840.10045.2.1" => Some("X9.62 elliptic curve public key"),
        "1.3.101.112" => Some("Ed25519"),
        _ => None,
    };
    match known {
        Some(n) => n.to_owned(),
        None => const_oid::db::DB
            .by_oid(oid)
            .map_or_else(|| oid.to_string(), |n| format!("{n} ({oid})")),
    }
}

fn fmt_time(t: OffsetDateTime) -> String {
    let f = time::macros::format_description!(
        "[weekday repr:short] [month repr:short] [day] [hour]:[minute]:[second] [year] UTC"
    );
    t.format(&f).unwrap_or_else(|_| t.to_string())
}

fn general_name(n: &GeneralName) -> String {
    match n {
        GeneralName::DnsName(s) => format!("DNS name: \"{}\"", s.as_str()),
        GeneralName::Rfc822Name(s) => format!("RFC822 name: \"{}\"", s.as_str()),
        GeneralName::UniformResourceIdentifier(s) => format!("URI: \"{}\"", s.as_str()),
        GeneralName::DirectoryName(n) => format!("Directory name: \"{n}\""),
        GeneralName::IpAddress(o) => {
            let b = o.as_bytes();
            match b.len() {
                4 => format!("IP Address: {}.{}.{}.{}", b[0], b[1], b[2], b[3]),
                16 => {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(b);
                    format!("IP Address: {}", std::net::Ipv6Addr::from(a))
                }
                _ => format!("IP Address: {}", hex(b)),
            }
        }
        other => format!("{other:?}"),
    }
}

fn wrap_hex(out: &mut String, indent: &str, b: &[u8]) {
    for chunk in b.chunks(16) {
        let _ = writeln!(out, "{indent}{}", colon_hex(chunk).to_lowercase());
    }
}

/// The `show-cert` text: version, serial, signature algorithm, issuer,
/// validity, subject, public key, extensions, SHA-1 and SHA-256
/// fingerprints and trust flags.
///
/// # Errors
/// [`Error::BadCertificate`] when `der` is not a certificate.
pub fn describe(alias: &str, der: &[u8], trust: TrustFlags) -> Result<String> {
    let c = Certificate::from_der(der).map_err(|e| Error::BadCertificate(e.to_string()))?;
    let info = CertInfo::from_parsed(der, &c)?;
    let tbs = c.tbs_certificate();
    let mut o = String::new();
    let _ = writeln!(o, "Certificate: {}", terminal_safe(alias));
    let _ = writeln!(o, "    Data:");
    let v = match tbs.version() {
        x509_cert::certificate::Version::V1 => 0,
        x509_cert::certificate::Version::V2 => 1,
        x509_cert::certificate::Version::V3 => 2,
    };
    let _ = writeln!(o, "        Version: {} (0x{v:x})", v + 1);
    let _ = writeln!(o, "        Serial Number:");
    wrap_hex(&mut o, "            ", &info.serial);
    let _ = writeln!(
        o,
        "        Signature Algorithm: {}",
        oid_name(&tbs.signature().oid)
    );
    let _ = writeln!(o, "        Issuer: \"{}\"", terminal_safe(&info.issuer));
    let _ = writeln!(o, "        Validity:");
    let _ = writeln!(o, "            Not Before: {}", fmt_time(info.not_before));
    let _ = writeln!(o, "            Not After : {}", fmt_time(info.not_after));
    let _ = writeln!(o, "        Subject: \"{}\"", terminal_safe(&info.subject));
    let _ = writeln!(o, "        Subject Public Key Info:");
    let spki = tbs.subject_public_key_info();
    let _ = writeln!(
        o,
        "            Public Key Algorithm: {}",
        oid_name(&spki.algorithm.oid)
    );
    let key_bits = spki.subject_public_key.raw_bytes();
    match spki.algorithm.oid.to_string().as_str() {
        "1.2.840.113549.1.1.1" => {
            if let Ok((n, e)) = crate::key::rsa_public_parts(key_bits) {
                let _ = writeln!(o, "            RSA Public Key:");
                let _ = writeln!(o, "                Modulus ({} bits):", n.len() * 8);
                wrap_hex(&mut o, "                    ", &n);
                let mut ev = 0u64;
                for b in &e {
                    ev = ev.wrapping_shl(8) | u64::from(*b);
                }
                let _ = writeln!(o, "                Exponent: {ev} (0x{ev:x})");
            }
        }
        "1.2.840.10045.2.1" => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<der::asn1::ObjectIdentifier>().ok())
                .map_or_else(
                    || "unknown".to_owned(),
                    |c| match c.to_string().as_str() {
                        "1.2.840.10045.3.1.7" => {
                            "ANSI X9.62 elliptic curve prime256v1 (aka secp256r1, NIST P-256)"
                                .to_owned()
                        }
                        "1.3.132.0.34" => {
                            "SECG elliptic curve secp384r1 (aka NIST P-384)".to_owned()
                        }
                        _ => oid_name(&c),
                    },
                );
            let _ = writeln!(o, "            EC Public Key:");
            let _ = writeln!(o, "                PublicValue:");
            wrap_hex(&mut o, "                    ", key_bits);
            let _ = writeln!(o, "                Curve: {curve}");
        }
        _ => {
            let _ = writeln!(o, "            Public Key:");
            wrap_hex(&mut o, "                ", key_bits);
        }
    }
    if let Some(exts) = tbs.extensions() {
        let _ = writeln!(o, "        Signed Extensions:");
        for ext in exts {
            let _ = writeln!(o, "            Name: {}", oid_name(&ext.extn_id));
            if ext.critical {
                let _ = writeln!(o, "            Critical: True");
            }
            let val = ext.extn_value.as_bytes();
            let id = ext.extn_id.to_string();
            let text: Option<Vec<String>> = match id.as_str() {
                "2.5.29.19" => BasicConstraints::from_der(val).ok().map(|bc| {
                    let mut v = vec![format!("Is a CA: {}", if bc.ca { "Yes" } else { "No" })];
                    if let Some(p) = bc.path_len_constraint {
                        v.push(format!("Path length constraint: {p}"));
                    }
                    v
                }),
                "2.5.29.15" => KeyUsage::from_der(val)
                    .ok()
                    .map(|ku| ku.0.into_iter().map(|u| format!("{u:?}")).collect()),
                "2.5.29.37" => ExtendedKeyUsage::from_der(val)
                    .ok()
                    .map(|eku| eku.0.iter().map(oid_name).collect()),
                "2.5.29.17" => SubjectAltName::from_der(val)
                    .ok()
                    .map(|san| san.0.iter().map(general_name).collect()),
                "2.5.29.14" => der::asn1::OctetString::from_der(val)
                    .ok()
                    .map(|k| vec![colon_hex(k.as_bytes()).to_lowercase()]),
                _ => None,
            };
            match text {
                Some(lines) => {
                    for l in lines {
                        let _ = writeln!(o, "                {}", terminal_safe(&l));
                    }
                }
                None => {
                    let _ = writeln!(o, "                Data:");
                    wrap_hex(&mut o, "                    ", val);
                }
            }
        }
    }
    let _ = writeln!(
        o,
        "    Signature Algorithm: {}",
        oid_name(&c.signature_algorithm().oid)
    );
    let _ = writeln!(o, "    Signature:");
    wrap_hex(&mut o, "        ", c.signature().raw_bytes());
    let _ = writeln!(o, "    Fingerprint (SHA-256):");
    let _ = writeln!(o, "        {}", colon_hex(&info.sha256));
    let _ = writeln!(o, "    Fingerprint (SHA1):");
    let _ = writeln!(o, "        {}", colon_hex(&info.sha1));
    let _ = writeln!(o);
    let _ = writeln!(o, "    Certificate Trust Flags ({trust}):");
    for (name, set) in [
        ("SSL Flags", trust.ssl),
        ("Email Flags", trust.email),
        ("Object Signing Flags", trust.objsign),
    ] {
        let _ = writeln!(o, "        {name}:");
        for (bit, words) in [
            (TrustSet::VALID_PEER, "Valid Peer"),
            (TrustSet::TRUSTED_PEER, "Trusted"),
            (TrustSet::VALID_CA, "Valid CA"),
            (TrustSet::TRUSTED_CA, "Trusted CA"),
            (TrustSet::TRUSTED_CLIENT_CA, "Trusted Client CA"),
            (TrustSet::USER, "User"),
            (TrustSet::WARN, "Warning when sending"),
        ] {
            if set.contains(bit) {
                let _ = writeln!(o, "            {words}");
            }
        }
    }
    Ok(o)
}
