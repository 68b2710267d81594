//! Turning a client certificate into a directory search (sans I/O).

use der::{Decode, DecodePem};
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use crate::Error;
use crate::conf::{CertMap, CertMapConfig, Component, Comps};
use crate::dn::Dn;
use crate::escape::{dn_value, filter_value};

/// Name of the pseudo-map used when there is no `certmap.conf`.
pub const BUILTIN_MAP: &str = "(built-in e-mail mapping)";

/// A client certificate with the parts mapping needs.
#[derive(Debug, Clone)]
pub struct ClientCert {
    der: Vec<u8>,
    issuer: Dn,
    subject: Dn,
    emails: Vec<String>,
}

impl ClientCert {
    /// Parses a DER certificate.
    ///
    /// # Errors
    /// [`Error::Certificate`] when it is not a valid X.509 certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, Error> {
        let cert = Certificate::from_der(der).map_err(|e| Error::Certificate(e.to_string()))?;
        Self::from_parsed(&cert, der.to_vec())
    }

    /// Parses a PEM certificate.
    ///
    /// # Errors
    /// [`Error::Certificate`] when it is not a valid PEM X.509 certificate.
    pub fn from_pem(pem: &[u8]) -> Result<Self, Error> {
        let cert = Certificate::from_pem(pem).map_err(|e| Error::Certificate(e.to_string()))?;
        let der = der::Encode::to_der(&cert).map_err(|e| Error::Certificate(e.to_string()))?;
        Self::from_parsed(&cert, der)
    }

    fn from_parsed(cert: &Certificate, der: Vec<u8>) -> Result<Self, Error> {
        let tbs = cert.tbs_certificate();
        let issuer = Dn::from_x509(tbs.issuer());
        let subject = Dn::from_x509(tbs.subject());
        let mut emails: Vec<String> = subject.values("e").map(str::to_owned).collect();
        let san = tbs
            .get_extension::<SubjectAltName>()
            .map_err(|e| Error::Certificate(format!("subjectAltName: {e}")))?;
        if let Some((_, san)) = san {
            for name in &san.0 {
                if let GeneralName::Rfc822Name(m) = name {
                    emails.push(m.as_str().to_owned());
                }
            }
        }
        let mut uniq: Vec<String> = Vec::new();
        for e in emails {
            if !uniq.iter().any(|u| u.eq_ignore_ascii_case(&e)) {
                uniq.push(e);
            }
        }
        Ok(Self {
            der,
            issuer,
            subject,
            emails: uniq,
        })
    }

    /// The certificate's DER bytes.
    #[must_use]
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Issuer DN.
    #[must_use]
    pub fn issuer(&self) -> &Dn {
        &self.issuer
    }

    /// Subject DN.
    #[must_use]
    pub fn subject(&self) -> &Dn {
        &self.subject
    }

    /// E-mail addresses: subject `E=` values, then SAN rfc822Names,
    /// duplicates removed.
    #[must_use]
    pub fn emails(&self) -> &[String] {
        &self.emails
    }
}

/// Where the search starts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SearchBase {
    /// The caller's configured base (the user tree, e.g. `local.ugldapbasedn`).
    Configured,
    /// This DN (an RFC 4514 string).
    Dn(String),
}

/// Search scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scope {
    /// Only the base entry itself.
    Base,
    /// The base and everything below it.
    Subtree,
}

/// What the directory side must do to find the certificate's entry. The
/// caller searches, requires exactly one entry, and when `verify_cert` is
/// set requires the entry's `userCertificate;binary` to hold those bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingPlan {
    /// Name of the map that was chosen.
    pub map: String,
    /// Search base.
    pub base: SearchBase,
    /// Search scope.
    pub scope: Scope,
    /// RFC 4515 filter; every certificate value in it is escaped.
    pub filter: String,
    /// DER of the certificate that must be present in the entry.
    pub verify_cert: Option<Vec<u8>>,
}

/// `(attr=v)` or `(|(attr=v1)(attr=v2)…)`.
fn any_of(attr: &str, values: &[&str]) -> Option<String> {
    match values {
        [] => None,
        [v] => Some(format!("({attr}={})", filter_value(v))),
        vs => {
            let mut s = String::from("(|");
            for v in vs {
                s.push_str(&format!("({attr}={})", filter_value(v)));
            }
            s.push(')');
            Some(s)
        }
    }
}

fn all_of(parts: Vec<String>) -> Option<String> {
    match parts.len() {
        0 => None,
        1 => parts.into_iter().next(),
        _ => Some(format!("(&{})", parts.concat())),
    }
}

fn unmappable(map: &CertMap, reason: impl Into<String>) -> Error {
    Error::Unmappable {
        map: map.name.clone(),
        reason: reason.into(),
    }
}

fn subject_values<'a>(cert: &'a ClientCert, attr: &'a str) -> Vec<&'a str> {
    let mut v: Vec<&str> = cert.subject.values(attr).collect();
    if v.is_empty() && attr == "e" {
        v = cert.emails.iter().map(String::as_str).collect();
    }
    v
}

fn filter_from_comps(
    map: &CertMap,
    comps: &[Component],
    cert: &ClientCert,
) -> Result<String, Error> {
    let parts: Vec<String> = comps
        .iter()
        .filter_map(|c| any_of(&c.to, &subject_values(cert, &c.from)))
        .collect();
    all_of(parts)
        .ok_or_else(|| unmappable(map, "the subject holds none of the FilterComps attributes"))
}

fn base_from_comps(map: &CertMap, comps: &[Component], cert: &ClientCert) -> Result<String, Error> {
    let mut rdns = Vec::new();
    for rdn in cert.subject.rdns() {
        let avas: Vec<String> = rdn
            .iter()
            .filter_map(|ava| {
                comps
                    .iter()
                    .find(|c| c.from == ava.attr)
                    .map(|c| format!("{}={}", c.to, dn_value(&ava.value)))
            })
            .collect();
        if !avas.is_empty() {
            rdns.push(avas.join("+"));
        }
    }
    if rdns.is_empty() {
        return Err(unmappable(
            map,
            "the subject holds none of the DNComps attributes",
        ));
    }
    Ok(rdns.join(","))
}

impl CertMapConfig {
    /// Chooses the map by the certificate's issuer and builds the search.
    ///
    /// - `DNComps` absent: the subject DN is the entry's DN (base-scope
    ///   search), unless `CmapLdapAttr` is set (then the configured base).
    /// - `DNComps` empty: search the subtree of the configured base.
    /// - `DNComps` list: base DN from those subject components, in the
    ///   subject's order, renamed by `FROM=TO`.
    /// - `FilterComps` absent or empty: `(objectclass=*)`; a list: AND of
    ///   the components present in the subject (several values of one
    ///   component are ORed).
    /// - `CmapLdapAttr ATTR`: `(ATTR=<subject DN>)`, ANDed with the
    ///   `FilterComps` filter if that is a list.
    ///
    /// # Errors
    /// [`Error::Unmappable`] when the certificate lacks what the map needs.
    pub fn plan(&self, cert: &ClientCert) -> Result<MappingPlan, Error> {
        let map = self.select(&cert.issuer);
        let subject = cert.subject.to_string();
        let comps_filter = match &map.filter_comps {
            Comps::List(c) => Some(filter_from_comps(map, c, cert)?),
            Comps::Absent | Comps::Empty => None,
        };
        let attr_filter = map
            .cmap_ldap_attr
            .as_ref()
            .map(|a| format!("({a}={})", filter_value(&subject)));
        let filter = all_of(attr_filter.into_iter().chain(comps_filter).collect())
            .unwrap_or_else(|| "(objectclass=*)".to_owned());
        let (base, scope) = match &map.dn_comps {
            Comps::Absent if map.cmap_ldap_attr.is_some() => {
                (SearchBase::Configured, Scope::Subtree)
            }
            Comps::Absent => {
                if cert.subject.is_empty() {
                    return Err(unmappable(map, "the subject DN is empty"));
                }
                (
                    SearchBase::Dn(cert.subject.to_directory_string()),
                    Scope::Base,
                )
            }
            Comps::Empty => (SearchBase::Configured, Scope::Subtree),
            Comps::List(c) => (
                SearchBase::Dn(base_from_comps(map, c, cert)?),
                Scope::Subtree,
            ),
        };
        tracing::debug!(map = %map.name, ?base, ?scope, %filter, "certificate mapping");
        Ok(MappingPlan {
            map: map.name.clone(),
            base,
            scope,
            filter,
            verify_cert: map.verify_cert.then(|| cert.der.clone()),
        })
    }
}

/// The mapping used when there is no `certmap.conf`: the certificate's
/// e-mail address (subject `E=` or SAN rfc822Name) matched against `mail`
/// under the configured base.
///
/// # Errors
/// [`Error::Unmappable`] when the certificate carries no e-mail address.
pub fn default_plan(cert: &ClientCert) -> Result<MappingPlan, Error> {
    let emails: Vec<&str> = cert.emails.iter().map(String::as_str).collect();
    let filter = any_of("mail", &emails).ok_or_else(|| Error::Unmappable {
        map: BUILTIN_MAP.to_owned(),
        reason: "the certificate carries no e-mail address".into(),
    })?;
    Ok(MappingPlan {
        map: BUILTIN_MAP.to_owned(),
        base: SearchBase::Configured,
        scope: Scope::Subtree,
        filter,
        verify_cert: None,
    })
}

/// [`CertMapConfig::plan`] when a configuration is given, else
/// [`default_plan`].
///
/// # Errors
/// As those functions.
pub fn plan(config: Option<&CertMapConfig>, cert: &ClientCert) -> Result<MappingPlan, Error> {
    match config {
        Some(c) => c.plan(cert),
        None => default_plan(cert),
    }
}
