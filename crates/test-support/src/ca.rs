//! A throwaway certificate authority for tests.

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use crate::FixtureError;

/// A certificate and its private key, as issued by [`TestCa`].
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The private key, PKCS#8 PEM.
    pub key_pem: String,
    /// The private key, PKCS#8 DER.
    pub key_der: Vec<u8>,
    /// The certificate of the CA that issued it, DER.
    pub issuer_der: Vec<u8>,
}

/// A self-signed CA (ECDSA P-256) that issues server and client certificates.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

fn serial() -> SerialNumber {
    // Unique enough for tests: time-based plus a process-wide counter.
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let t = OffsetDateTime::now_utc().unix_timestamp_nanos();
    let mut bytes = Vec::with_capacity(17);
    bytes.push(0x01);
    bytes.extend_from_slice(&t.to_be_bytes()[8..]);
    bytes.extend_from_slice(&n.to_be_bytes());
    SerialNumber::from_slice(&bytes)
}

fn validity(params: &mut CertificateParams) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(30);
}

impl TestCa {
    /// A new CA whose subject is `CN=<name>, O=Portcullis Tests`.
    ///
    /// # Errors
    /// When rcgen fails.
    pub fn new(name: &str) -> Result<Self, FixtureError> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        dn.push(DnType::OrganizationName, "Portcullis Tests");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.serial_number = Some(serial());
        validity(&mut params);
        let key = KeyPair::generate()?;
        Ok(Self {
            issuer: CertifiedIssuer::self_signed(params, key)?,
        })
    }

    /// The CA certificate, PEM.
    #[must_use]
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// The CA certificate, DER.
    #[must_use]
    pub fn cert_der(&self) -> Vec<u8> {
        self.issuer.der().to_vec()
    }

    /// A server certificate for `names` (DNS names or IP addresses).
    ///
    /// # Errors
    /// When rcgen fails.
    pub fn issue_server(&self, names: &[&str]) -> Result<Issued, FixtureError> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("server"),
        );
        params.distinguished_name = dn;
        params.subject_alt_names = names
            .iter()
            .map(|n| match n.parse::<IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => Ok(SanType::DnsName((*n).try_into()?)),
            })
            .collect::<Result<_, rcgen::Error>>()?;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params)
    }

    /// A client certificate with subject `CN=<common_name>` (plus
    /// `E=<email>` and a SAN rfc822Name when `email` is given).
    ///
    /// # Errors
    /// When rcgen fails.
    pub fn issue_client(
        &self,
        common_name: &str,
        email: Option<&str>,
    ) -> Result<Issued, FixtureError> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        dn.push(DnType::OrganizationName, "Portcullis Tests");
        if let Some(email) = email {
            dn.push(
                DnType::CustomDnType(vec![1, 2, 840, 113_549, 1, 9, 1]),
                rcgen::DnValue::Ia5String(email.try_into()?),
            );
            params.subject_alt_names = vec![SanType::Rfc822Name(email.try_into()?)];
        }
        params.distinguished_name = dn;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params)
    }

    /// Issues a certificate from parameters the caller prepared (a fresh
    /// serial and a 30-day validity are filled in when absent).
    ///
    /// # Errors
    /// When rcgen fails.
    pub fn issue(&self, mut params: CertificateParams) -> Result<Issued, FixtureError> {
        if params.serial_number.is_none() {
            params.serial_number = Some(serial());
        }
        if params.not_before == CertificateParams::default().not_before {
            validity(&mut params);
        }
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key_pem: key.serialize_pem(),
            key_der: key.serialize_der(),
            issuer_der: self.cert_der(),
        })
    }
}
