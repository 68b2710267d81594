//! Self-signed certificates and PKCS#10 requests, signed by any
//! [`Signer`](crate::Signer) (rcgen builds the DER).

use std::str::FromStr;

use der::{Decode, Tag, Tagged};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, DnValue, ExtendedKeyUsagePurpose, IsCa, SanType,
    SerialNumber,
};
use time::{Date, OffsetDateTime};
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::Name;

use crate::error::{Error, Result};
use crate::signer::{RcgenSigner, Signer};

/// The PEM label `request-cert -F ascii` writes (as the original did).
pub const CSR_PEM_LABEL: &str = "NEW CERTIFICATE REQUEST";

/// A certificate subject: distinguished name plus DNS names for the
/// subjectAltName extension.
#[derive(Clone, Debug)]
pub struct Subject {
    dn: DistinguishedName,
    /// DNS names (subjectAltName).
    pub dns_names: Vec<String>,
    text: String,
}

/// The `--name/--org/--org-unit/--city/--state/--country` options.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct SubjectFields {
    /// Common name (CN).
    pub name: String,
    /// Organization (O).
    pub org: Option<String>,
    /// Organizational unit (OU).
    pub org_unit: Option<String>,
    /// Locality (L).
    pub city: Option<String>,
    /// State or province (ST).
    pub state: Option<String>,
    /// Two-letter country code (C).
    pub country: Option<String>,
}

impl SubjectFields {
    /// Only a common name.
    pub fn new(name: impl Into<String>) -> Self {
        SubjectFields {
            name: name.into(),
            ..SubjectFields::default()
        }
    }
}

fn looks_like_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

fn country_value(c: &str) -> Result<DnValue> {
    if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(Error::BadName(
            c.to_owned(),
            "country must be a two-letter code".into(),
        ));
    }
    let p = rcgen::string::PrintableString::try_from(c.to_owned())
        .map_err(|e| Error::BadName(c.to_owned(), e.to_string()))?;
    Ok(DnValue::PrintableString(p))
}

impl Subject {
    /// From the individual fields; the CN also becomes a DNS name when it
    /// looks like a host name.
    ///
    /// # Errors
    /// Empty name, bad country code.
    pub fn from_fields(f: &SubjectFields) -> Result<Self> {
        if f.name.trim().is_empty() {
            return Err(Error::BadName(
                f.name.clone(),
                "the name (CN) is empty".into(),
            ));
        }
        let mut dn = DistinguishedName::new();
        let mut text = Vec::new();
        if let Some(c) = &f.country {
            dn.push(DnType::CountryName, country_value(c)?);
        }
        for (ty, val) in [
            (DnType::StateOrProvinceName, &f.state),
            (DnType::LocalityName, &f.city),
            (DnType::OrganizationName, &f.org),
            (DnType::OrganizationalUnitName, &f.org_unit),
        ] {
            if let Some(v) = val {
                dn.push(ty, v.as_str());
            }
        }
        dn.push(DnType::CommonName, f.name.as_str());
        text.push(format!("CN={}", f.name));
        for (k, v) in [
            ("OU", &f.org_unit),
            ("O", &f.org),
            ("L", &f.city),
            ("ST", &f.state),
            ("C", &f.country),
        ] {
            if let Some(v) = v {
                text.push(format!("{k}={v}"));
            }
        }
        let dns_names = if looks_like_hostname(&f.name) {
            vec![f.name.to_ascii_lowercase()]
        } else {
            Vec::new()
        };
        Ok(Subject {
            dn,
            dns_names,
            text: text.join(","),
        })
    }

    /// From an RFC 4514 string such as `CN=aqua,OU=Messaging,O=siroe,C=us`
    /// (`-S DN`).
    ///
    /// # Errors
    /// [`Error::BadName`].
    pub fn from_dn(s: &str) -> Result<Self> {
        let name = Name::from_str(s).map_err(|e| Error::BadName(s.to_owned(), e.to_string()))?;
        if name.is_empty() {
            return Err(Error::BadName(s.to_owned(), "empty".into()));
        }
        let mut subject = Self::from_name(&name)?;
        subject.text = name.to_string();
        Ok(subject)
    }

    fn from_name(name: &Name) -> Result<Self> {
        let mut dn = DistinguishedName::new();
        let mut cn = None;
        for atv in name.iter() {
            let arcs: Vec<u64> = atv.oid.arcs().map(u64::from).collect();
            let ty = DnType::from_oid(&arcs);
            let bytes = atv.value.value();
            let s = std::str::from_utf8(bytes)
                .map_err(|_| Error::BadName(name.to_string(), "attribute is not text".into()))?
                .to_owned();
            let value = match atv.value.tag() {
                Tag::PrintableString => DnValue::PrintableString(
                    rcgen::string::PrintableString::try_from(s.clone())
                        .map_err(|e| Error::BadName(s.clone(), e.to_string()))?,
                ),
                Tag::Ia5String => DnValue::Ia5String(
                    rcgen::string::Ia5String::try_from(s.clone())
                        .map_err(|e| Error::BadName(s.clone(), e.to_string()))?,
                ),
                _ if ty == DnType::CountryName => country_value(&s)?,
                _ => DnValue::Utf8String(s.clone()),
            };
            if ty == DnType::CommonName {
                cn = Some(s);
            }
            dn.push(ty, value);
        }
        let dns_names = cn
            .filter(|c| looks_like_hostname(c))
            .map(|c| vec![c.to_ascii_lowercase()])
            .unwrap_or_default();
        Ok(Subject {
            dn,
            dns_names,
            text: name.to_string(),
        })
    }

    /// The RFC 4514 text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// A validity period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    /// Start.
    pub not_before: OffsetDateTime,
    /// End.
    pub not_after: OffsetDateTime,
}

/// 9999-12-31T23:59:59Z, the last time a certificate can express
/// (RFC 5280 §4.1.2.5: GeneralizedTime, four-digit years).
#[must_use]
pub fn latest_not_after() -> OffsetDateTime {
    Date::from_calendar_date(9999, time::Month::December, 31)
        .ok()
        .and_then(|d| d.with_hms(23, 59, 59).ok())
        .map_or(
            OffsetDateTime::UNIX_EPOCH,
            time::PrimitiveDateTime::assume_utc,
        )
}

/// `t` plus `days`, never past [`latest_not_after`] (no overflow, whatever
/// `days` is).
#[must_use]
pub fn add_days(t: OffsetDateTime, days: u32) -> OffsetDateTime {
    let latest = latest_not_after();
    t.checked_add(time::Duration::days(i64::from(days)))
        .map_or(latest, |end| end.min(latest))
}

/// Adds calendar months, clamping the day (Jan 31 + 1 month = Feb 28/29).
pub fn add_months(t: OffsetDateTime, months: u32) -> OffsetDateTime {
    let total = i64::from(t.month() as u8) - 1 + i64::from(months);
    let year = t.year() + i32::try_from(total / 12).unwrap_or(0);
    let month = time::Month::try_from(u8::try_from(total % 12 + 1).unwrap_or(1))
        .unwrap_or(time::Month::January);
    let mut day = t.day();
    loop {
        if let Ok(d) = Date::from_calendar_date(year, month, day) {
            return t.replace_date(d);
        }
        if day <= 28 {
            return t;
        }
        day -= 1;
    }
}

impl Validity {
    /// From `now` (truncated to seconds) for `days` days, ending at the
    /// latest at [`latest_not_after`] (X.509's last representable time).
    pub fn days(now: OffsetDateTime, days: u32) -> Self {
        let start = now.replace_nanosecond(0).unwrap_or(now);
        Validity {
            not_before: start,
            not_after: add_days(start, days),
        }
    }

    /// From `now` for `months` calendar months (the default: three).
    pub fn months(now: OffsetDateTime, months: u32) -> Self {
        let start = now.replace_nanosecond(0).unwrap_or(now);
        Validity {
            not_before: start,
            not_after: add_months(start, months),
        }
    }
}

/// A random positive 16-byte serial number.
///
/// # Errors
/// The random number generator failed.
pub fn random_serial() -> Result<Vec<u8>> {
    let mut s = [0u8; 16];
    getrandom::fill(&mut s).map_err(|e| Error::Crypto(format!("random: {e}")))?;
    s[0] &= 0x7f;
    s[0] |= 0x01; // never a leading zero byte, never negative
    Ok(s.to_vec())
}

fn params(subject: &Subject, validity: Validity) -> Result<CertificateParams> {
    let mut p = CertificateParams::default();
    p.distinguished_name = subject.dn.clone();
    p.not_before = validity.not_before;
    p.not_after = validity.not_after;
    p.serial_number = Some(SerialNumber::from_slice(&random_serial()?));
    p.subject_alt_names = subject
        .dns_names
        .iter()
        .map(|n| {
            rcgen::string::Ia5String::try_from(n.clone())
                .map(SanType::DnsName)
                .map_err(|e| Error::BadName(n.clone(), e.to_string()))
        })
        .collect::<Result<_>>()?;
    Ok(p)
}

/// A self-signed TLS server/client certificate: basicConstraints cA=false,
/// extendedKeyUsage serverAuth + clientAuth, a random serial.
///
/// # Errors
/// Signing failed.
pub fn self_signed(signer: &dyn Signer, subject: &Subject, validity: Validity) -> Result<Vec<u8>> {
    let mut p = params(subject, validity)?;
    p.is_ca = IsCa::ExplicitNoCa;
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = RcgenSigner::new(signer)?;
    let cert = p
        .self_signed(&key)
        .map_err(|e| Error::Generate(e.to_string()))?;
    Ok(cert.der().to_vec())
}

/// A PKCS#10 certificate request (DER).
///
/// # Errors
/// Signing failed.
pub fn certificate_request(signer: &dyn Signer, subject: &Subject) -> Result<Vec<u8>> {
    let now = OffsetDateTime::now_utc();
    let mut p = params(subject, Validity::days(now, 1))?;
    // rcgen would put no serial in a request, but keep it explicit.
    p.serial_number = None;
    let key = RcgenSigner::new(signer)?;
    let csr = p
        .serialize_request(&key)
        .map_err(|e| Error::Generate(e.to_string()))?;
    Ok(csr.der().to_vec())
}

/// PEM text of a request with the `NEW CERTIFICATE REQUEST` label, LF line
/// endings.
pub fn request_pem(der: &[u8]) -> String {
    pem_lf(CSR_PEM_LABEL, der)
}

/// PEM text of a public key (SubjectPublicKeyInfo DER) with the `PUBLIC
/// KEY` label, LF line endings, as `openssl pkey -pubout` writes it.
pub fn public_key_pem(spki: &[u8]) -> String {
    pem_lf("PUBLIC KEY", spki)
}

fn pem_lf(label: &str, der: &[u8]) -> String {
    let p = pem::Pem::new(label, der.to_vec());
    pem::encode_config(
        &p,
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// A renewal of a self-signed certificate: same subject, same
/// subjectAltNames, same key (`signer`), a new random serial and `validity`.
///
/// # Errors
/// The old certificate is not self-signed, or the signer's key is not its
/// key.
pub fn renew_self_signed(signer: &dyn Signer, old: &[u8], validity: Validity) -> Result<Vec<u8>> {
    let c = Certificate::from_der(old).map_err(|e| Error::BadCertificate(e.to_string()))?;
    let tbs = c.tbs_certificate();
    if tbs.subject() != tbs.issuer() {
        return Err(Error::Unsupported(
            "the certificate is not self-signed: use renew-cert".into(),
        ));
    }
    let old_spki = der::Encode::to_der(tbs.subject_public_key_info())
        .map_err(|e| Error::BadCertificate(e.to_string()))?;
    if old_spki != signer.public_key_info() {
        return Err(Error::BadKey(
            "the key does not belong to this certificate".into(),
        ));
    }
    let mut subject = Subject::from_name(tbs.subject())?;
    subject.dns_names.clear();
    let mut sans = Vec::new();
    if let Ok(Some((_, san))) = tbs.get_extension::<SubjectAltName>() {
        for n in san.0 {
            match n {
                GeneralName::DnsName(s) => subject.dns_names.push(s.to_string()),
                GeneralName::Rfc822Name(s) => sans.push(SanType::Rfc822Name(
                    rcgen::string::Ia5String::try_from(s.to_string())
                        .map_err(|e| Error::BadName(s.to_string(), e.to_string()))?,
                )),
                GeneralName::IpAddress(o) => {
                    let b = o.as_bytes();
                    if let Ok(a) = <[u8; 4]>::try_from(b) {
                        sans.push(SanType::IpAddress(std::net::IpAddr::from(a)));
                    } else if let Ok(a) = <[u8; 16]>::try_from(b) {
                        sans.push(SanType::IpAddress(std::net::IpAddr::from(a)));
                    }
                }
                _ => {}
            }
        }
    }
    let mut p = params(&subject, validity)?;
    p.subject_alt_names.extend(sans);
    p.is_ca = IsCa::ExplicitNoCa;
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = RcgenSigner::new(signer)?;
    let cert = p
        .self_signed(&key)
        .map_err(|e| Error::Generate(e.to_string()))?;
    Ok(cert.der().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::CertInfo;
    use crate::key::{KeyType, PrivateKey};
    use crate::signer::SoftwareSigner;

    #[test]
    fn three_calendar_months() {
        let t = time::macros::datetime!(2006-07-28 12:58 UTC);
        assert_eq!(
            add_months(t, 3),
            time::macros::datetime!(2006-10-28 12:58 UTC)
        );
        let t = time::macros::datetime!(2023-11-30 00:00 UTC);
        assert_eq!(
            add_months(t, 3),
            time::macros::datetime!(2024-02-29 00:00 UTC)
        );
        let t = time::macros::datetime!(2023-12-31 00:00 UTC);
        assert_eq!(
            add_months(t, 14),
            time::macros::datetime!(2025-02-28 00:00 UTC)
        );
    }

    #[test]
    fn subject_forms() {
        let mut f = SubjectFields::new("mail.example.com");
        f.org = Some("siroe".into());
        f.country = Some("us".into());
        let s = Subject::from_fields(&f).unwrap();
        assert_eq!(s.as_str(), "CN=mail.example.com,O=siroe,C=us");
        assert_eq!(s.dns_names, ["mail.example.com"]);
        let d = Subject::from_dn("CN=aqua,OU=Messaging,O=siroe,C=us").unwrap();
        assert_eq!(d.as_str(), "CN=aqua,OU=Messaging,O=siroe,C=us");
        assert!(Subject::from_dn("nonsense").is_err());
        f.country = Some("usa".into());
        assert!(Subject::from_fields(&f).is_err());
    }

    #[test]
    fn self_signed_and_renewal() {
        let key = PrivateKey::generate(KeyType::EcP256).unwrap();
        let signer = SoftwareSigner::new(&key).unwrap();
        let subj = Subject::from_dn("CN=host.example,O=Test,C=DE").unwrap();
        let now = OffsetDateTime::now_utc();
        let der = self_signed(&signer, &subj, Validity::months(now, 3)).unwrap();
        let info = CertInfo::parse(&der).unwrap();
        assert!(info.self_signed);
        assert_eq!(info.subject, "CN=host.example,O=Test,C=DE");
        assert_eq!(info.spki, key.public_key_info());
        let renewed = renew_self_signed(&signer, &der, Validity::days(now, 30)).unwrap();
        let r = CertInfo::parse(&renewed).unwrap();
        assert_eq!(r.subject_der, info.subject_der);
        assert_eq!(r.spki, info.spki);
        assert_ne!(r.serial, info.serial);
        let other = SoftwareSigner::new(&PrivateKey::generate(KeyType::EcP256).unwrap()).unwrap();
        assert!(renew_self_signed(&other, &der, Validity::days(now, 30)).is_err());
    }
}
