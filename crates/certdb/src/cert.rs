//! Reading certificates (PEM or DER) and describing them.

use crate::text::terminal_safe;
use std::fmt::Write as _;

use const_oid::ObjectIdentifier;
use const_oid::db::{rfc5280, rfc5753, rfc5912, rfc8410};
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
    let hex = base16ct::upper::encode_string(b);
    // Invariant: base16ct writes ASCII only, so every 2-byte chunk is a
    // `str`; the fallback is never taken.
    hex.as_bytes()
        .chunks(2)
        .map(|pair| std::str::from_utf8(pair).unwrap_or("??"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Names for the algorithms certutil names its own way; anything else
/// gets const-oid's database name and the dotted form.
const OID_NAMES: &[(ObjectIdentifier, &str)] = &[
    (
        rfc5912::ECDSA_WITH_SHA_256,
        "X9.62 ECDSA signature with SHA-256",
    ),
    (
        rfc5912::ECDSA_WITH_SHA_384,
        "X9.62 ECDSA signature with SHA-384",
    ),
    (
        rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
        "PKCS #1 SHA-256 With RSA Encryption",
    ),
    (
        rfc5912::SHA_384_WITH_RSA_ENCRYPTION,
        "PKCS #1 SHA-384 With RSA Encryption",
    ),
    (
        rfc5912::SHA_512_WITH_RSA_ENCRYPTION,
        "PKCS #1 SHA-512 With RSA Encryption",
    ),
    (
        rfc5912::SHA_1_WITH_RSA_ENCRYPTION,
        "PKCS #1 SHA-1 With RSA Encryption",
    ),
    (
        rfc5912::MD_5_WITH_RSA_ENCRYPTION,
        "PKCS #1 MD5 With RSA Encryption",
    ),
    (rfc5912::ID_RSASSA_PSS, "PKCS #1 RSA-PSS Signature"),
    (rfc5912::RSA_ENCRYPTION, "PKCS #1 RSA Encryption"),
    (rfc5753::ID_EC_PUBLIC_KEY, "X9.62 elliptic curve public key"),
    (rfc8410::ID_ED_25519, "Ed25519"),
];

/// The lines `show-cert` prints for the extensions it knows; `None`
/// prints the raw value.
fn extension_text(id: &ObjectIdentifier, val: &[u8]) -> Option<Vec<String>> {
    if *id == rfc5280::ID_CE_BASIC_CONSTRAINTS {
        BasicConstraints::from_der(val).ok().map(|bc| {
            let mut v = vec![format!("Is a CA: {}", if bc.ca { "Yes" } else { "No" })];
            if let Some(p) = bc.path_len_constraint {
                v.push(format!("Path length constraint: {p}"));
            }
            v
        })
    } else if *id == rfc5280::ID_CE_KEY_USAGE {
        KeyUsage::from_der(val)
            .ok()
            .map(|ku| ku.0.into_iter().map(|u| format!("{u:?}")).collect())
    } else if *id == rfc5280::ID_CE_EXT_KEY_USAGE {
        ExtendedKeyUsage::from_der(val)
            .ok()
            .map(|eku| eku.0.iter().map(oid_name).collect())
    } else if *id == rfc5280::ID_CE_SUBJECT_ALT_NAME {
        SubjectAltName::from_der(val)
            .ok()
            .map(|san| san.0.iter().map(general_name).collect())
    } else if *id == rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER {
        der::asn1::OctetString::from_der(val)
            .ok()
            .map(|k| vec![colon_hex(k.as_bytes()).to_lowercase()])
    } else {
        None
    }
}

fn oid_name(oid: &ObjectIdentifier) -> String {
    match OID_NAMES.iter().find(|(o, _)| o == oid) {
        Some((_, n)) => (*n).to_owned(),
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
    let key_oid = spki.algorithm.oid;
    if key_oid == rfc5912::RSA_ENCRYPTION {
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
    } else if key_oid == rfc5753::ID_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
            .map_or_else(
                || "unknown".to_owned(),
                |c| {
                    if c == rfc5912::SECP_256_R_1 {
                        "ANSI X9.62 elliptic curve prime256v1 (aka secp256r1, NIST P-256)"
                            .to_owned()
                    } else if c == rfc5912::SECP_384_R_1 {
                        "SECG elliptic curve secp384r1 (aka NIST P-384)".to_owned()
                    } else {
                        oid_name(&c)
                    }
                },
            );
        let _ = writeln!(o, "            EC Public Key:");
        let _ = writeln!(o, "                PublicValue:");
        wrap_hex(&mut o, "                    ", key_bits);
        let _ = writeln!(o, "                Curve: {curve}");
    } else {
        let _ = writeln!(o, "            Public Key:");
        wrap_hex(&mut o, "                ", key_bits);
    }
    if let Some(exts) = tbs.extensions() {
        let _ = writeln!(o, "        Signed Extensions:");
        for ext in exts {
            let _ = writeln!(o, "            Name: {}", oid_name(&ext.extn_id));
            if ext.critical {
                let _ = writeln!(o, "            Critical: True");
            }
            let val = ext.extn_value.as_bytes();
            let text = extension_text(&ext.extn_id, val);
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

#[cfg(test)]
mod tests {
    use super::{colon_hex, oid_name};

    #[test]
    fn fingerprints_are_colon_separated_upper_case() {
        assert_eq!(colon_hex(&[]), "");
        assert_eq!(colon_hex(&[0x0a]), "0A");
        assert_eq!(colon_hex(&[0x0a, 0xbc, 0xff]), "0A:BC:FF");
    }

    #[test]
    fn algorithm_names_come_from_the_oid_database() {
        use const_oid::db::{rfc5280, rfc5912};
        assert_eq!(
            oid_name(&rfc5912::ECDSA_WITH_SHA_256),
            "X9.62 ECDSA signature with SHA-256"
        );
        // Not in certutil's list: const-oid's name and the dotted form.
        assert_eq!(
            oid_name(&rfc5280::ID_CE_KEY_USAGE),
            "id-ce-keyUsage (2.5.29.15)"
        );
    }
}
