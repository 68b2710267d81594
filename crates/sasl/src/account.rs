//! The directory entry a login ends with.

use std::collections::BTreeMap;

/// What the credential store knows about the user a login authenticated:
/// the canonical name and the routing and policy data a daemon needs next
/// (which message store, which service-access filters).
///
/// The backends build one (ldapauth from the directory entry, the users
/// file from its line) and every accepting answer carries it, so the data
/// is there after every mechanism — PLAIN and LOGIN as well as CRAM-MD5,
/// DIGEST-MD5, APOP, SCRAM and EXTERNAL — without a second lookup.
///
/// ```
/// use portcullis_sasl::Account;
/// let mut a = Account::new("alice@example.com");
/// a.mail_host = Some("store1.example.com".into());
/// a.set_attribute("preferredLanguage", vec!["fr".into()]);
/// assert_eq!(a.name, "alice@example.com");
/// assert_eq!(a.attribute("preferredlanguage"), Some(&["fr".to_owned()][..]));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Account {
    /// The canonical identity (`uid@domain`, or the configured form): what
    /// logs, XCLIENT `LOGIN` and IMAP `ID` receive, whatever the client
    /// typed.
    pub name: String,
    /// The entry's distinguished name, when the store is a directory.
    pub dn: Option<String>,
    /// The user's domain.
    pub domain: Option<String>,
    /// `mailHost`: the user's message store.
    pub mail_host: Option<String>,
    /// `mailAllowedServiceAccess`: the user-level access filter.
    pub allowed_service_access: Option<String>,
    /// `mailDomainAllowedServiceAccess`: the domain-level access filter.
    pub domain_allowed_service_access: Option<String>,
    /// Further attributes the store was asked to return (names in lower
    /// case).
    attributes: BTreeMap<String, Vec<String>>,
}

impl Account {
    /// An account with only a name.
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// The values of a further attribute (case-insensitive name).
    pub fn attribute(&self, name: &str) -> Option<&[String]> {
        self.attributes
            .get(&name.to_ascii_lowercase())
            .map(Vec::as_slice)
    }

    /// Every further attribute, names in lower case.
    pub fn attributes(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.attributes
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// Sets a further attribute (replacing earlier values).
    pub fn set_attribute(&mut self, name: &str, values: Vec<String>) {
        self.attributes.insert(name.to_ascii_lowercase(), values);
    }
}
