//! Turning a client certificate into a directory search (sans I/O).

use std::borrow::Cow;

use der::{Decode, DecodePem};
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use crate::Error;
use crate::conf::{CertMap, CertMapConfig, Component, Comps};
use crate::dn::{AttributeType, AttributeValue, Dn, Spelling, value_string};
use crate::escape::filter_value;

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
    /// The parts of a client certificate the TLS handshake verified: what
    /// certificate logins (SASL EXTERNAL, `portcullis-ldapauth`) map.
    ///
    /// # Errors
    /// [`Error::Certificate`] when it is not a valid X.509 certificate
    /// (the TLS verifier accepted it, but this parser is stricter).
    pub fn from_verified(cert: &portcullis_sasl::VerifiedCertificate) -> Result<Self, Error> {
        Self::from_der(cert.end_entity())
    }

    /// Parses a DER certificate, for offline tools that show what a
    /// certificate file would map to. Logins map only what a handshake
    /// verified: [`ClientCert::from_verified`].
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
        let dn = |name| Dn::from_x509(name).map_err(|e| Error::Certificate(e.to_string()));
        let issuer = dn(tbs.issuer())?;
        let subject = dn(tbs.subject())?;
        let mut emails: Vec<String> = subject
            .values(AttributeType::EMAIL)
            .filter_map(AttributeValue::as_text)
            .map(Cow::into_owned)
            .collect();
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

/// `CmapLdapAttr`: the entry attribute that holds the certificate's
/// subject DN, and that subject.
///
/// The plan's filter asks the directory for the spellings of the subject
/// that tools commonly write (RFC 4514 / OpenSSL `-nameopt RFC2253`, with
/// `,` or `, ` between RDNs, `emailAddress` or `E`, non-ASCII characters
/// raw or as `\XX` escapes); with the usual caseIgnoreMatch equality the
/// directory ignores case. An attribute with DN syntax
/// (distinguishedNameMatch) is compared as a DN by the directory itself.
/// Each entry found must then pass [`SubjectAttr::matches`], a DN-aware
/// comparison, so a value that merely looks alike never maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectAttr {
    /// The attribute (`CmapLdapAttr`'s value).
    pub attr: String,
    /// The certificate's subject.
    pub subject: Dn,
}

impl SubjectAttr {
    /// True when `stored`, a value of the attribute, is a DN equal to the
    /// subject (types by OID, values by caseIgnoreMatch rules). A value
    /// that is not UTF-8 or not a DN never matches.
    #[must_use]
    pub fn matches(&self, stored: &[u8]) -> bool {
        std::str::from_utf8(stored)
            .ok()
            .and_then(|s| Dn::parse(s).ok())
            .is_some_and(|dn| dn == self.subject)
    }

    /// The filter: one equality assertion per spelling of the subject.
    fn filter(&self) -> String {
        let mut spellings: Vec<String> = Vec::new();
        for separator in [",", ", "] {
            for email in ["emailAddress", "E"] {
                for escape_non_ascii in [false, true] {
                    let s = self.subject.spell(Spelling {
                        separator,
                        email,
                        escape_non_ascii,
                    });
                    if !spellings.iter().any(|t| t.eq_ignore_ascii_case(&s)) {
                        spellings.push(s);
                    }
                }
            }
        }
        let v: Vec<&str> = spellings.iter().map(String::as_str).collect();
        // The subject is not empty (checked by the caller), so there is
        // at least one spelling.
        any_of(&self.attr, &v).unwrap_or_default()
    }
}

/// What the directory side must do to find the certificate's entry. The
/// caller searches; when `subject_attr` is set keeps only entries whose
/// attribute [matches](SubjectAttr::matches); requires exactly one entry;
/// and when `verify_cert` is set requires the entry's
/// `userCertificate;binary` to hold those bytes.
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
    /// `CmapLdapAttr`: the entry attribute that must hold the subject DN.
    pub subject_attr: Option<SubjectAttr>,
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

/// The string values of `attr` in the subject (for the e-mail address,
/// the SAN rfc822Names when the subject has none).
///
/// # Errors
/// [`Error::Unmappable`] when a value is not a string: leaving it out
/// would widen the filter.
fn subject_values(
    map: &CertMap,
    cert: &ClientCert,
    attr: AttributeType,
) -> Result<Vec<String>, Error> {
    let mut v = Vec::new();
    for value in cert.subject.values(attr) {
        match value.as_text() {
            Some(t) => v.push(t.into_owned()),
            None => {
                return Err(unmappable(
                    map,
                    format!("the subject's {attr} value is not a string"),
                ));
            }
        }
    }
    if v.is_empty() && attr == AttributeType::EMAIL {
        v.clone_from(&cert.emails);
    }
    Ok(v)
}

fn filter_from_comps(
    map: &CertMap,
    comps: &[Component],
    cert: &ClientCert,
) -> Result<String, Error> {
    let mut parts = Vec::new();
    for c in comps {
        let values = subject_values(map, cert, c.from)?;
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        parts.extend(any_of(&c.to, &values));
    }
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
                    .map(|c| format!("{}={}", c.to, value_string(&ava.value, false)))
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
    /// - `CmapLdapAttr ATTR`: `(|(ATTR=<subject DN>)…)` over the common
    ///   spellings of the subject DN, ANDed with the `FilterComps` filter if
    ///   that is a list; entries found must also pass the DN-aware
    ///   [`SubjectAttr::matches`] (see [`MappingPlan::subject_attr`]).
    ///
    /// # Errors
    /// [`Error::Unmappable`] when the certificate lacks what the map needs.
    pub fn plan(&self, cert: &ClientCert) -> Result<MappingPlan, Error> {
        let map = self.select(&cert.issuer);
        let comps_filter = match &map.filter_comps {
            Comps::List(c) => Some(filter_from_comps(map, c, cert)?),
            Comps::Absent | Comps::Empty => None,
        };
        let subject_attr = match &map.cmap_ldap_attr {
            Some(_) if cert.subject.is_empty() => {
                return Err(unmappable(map, "the subject DN is empty"));
            }
            Some(attr) => Some(SubjectAttr {
                attr: attr.clone(),
                subject: cert.subject.clone(),
            }),
            None => None,
        };
        let attr_filter = subject_attr.as_ref().map(SubjectAttr::filter);
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
                (SearchBase::Dn(cert.subject.to_string()), Scope::Base)
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
            subject_attr,
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
        subject_attr: None,
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
