//! Validation of access filter values, and the mapping from service names
//! to their filter parameters.

use portcullis_accessfilter::{Action, Filter, parse_filter_list};

use crate::{Config, Error, Param, Value};

/// Checks that an access filter value (`service.*.domainallowed` and
/// friends) parses, in the file form or the LDAP `+svc:clients$-...` form.
pub(crate) fn validate(raw: &str) -> Result<(), String> {
    portcullis_accessfilter::validate_filter_value(raw).map_err(|e| e.to_string())
}

/// The service names [`Config::service_filters`] accepts, each with the
/// base service whose `service.<base>.*` parameters govern it. The TLS
/// names (implicit TLS on its own port) share the parameters of the plain
/// service, as they did in the original server.
pub const SERVICE_PARAMETER_NAMES: &[(&str, &str)] = &[
    ("imap", "imap"),
    ("imaps", "imap"),
    ("pop", "pop"),
    ("pop3", "pop"),
    ("pops", "pop"),
    ("pop3s", "pop"),
    ("smtp", "smtp"),
    ("smtps", "smtp"),
    ("submissions", "smtp"),
    ("http", "http"),
    ("https", "http"),
];

/// The base service whose parameters govern `service` (ASCII case
/// ignored), or `None` for a name without filter parameters.
#[must_use]
pub fn parameter_service(service: &str) -> Option<&'static str> {
    SERVICE_PARAMETER_NAMES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(service))
        .map(|(_, base)| *base)
}

/// The accepted service names, for messages.
pub(crate) fn known_service_names() -> String {
    let names: Vec<&str> = SERVICE_PARAMETER_NAMES.iter().map(|(n, _)| *n).collect();
    names.join(", ")
}

/// The value of an access filter parameter, as entries: a TOML string is
/// one entry, an array of strings one entry per item.
///
/// Each entry is in the file form (one filter per line, every filter with
/// the parameter's action) or the LDAP form (`+svc:clients$-svc:clients`,
/// each rule with its own sign). So a parameter can hold several filters
/// as a multi-line string (`'''`, one per line) or as an array:
///
/// ```toml
/// [service.imap]
/// domainnotallowed = ["ALL: ALL"]
/// domainallowed = '''
/// imap: .example.com
/// imap: 192.168.1.
/// '''
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterValue {
    entries: Vec<String>,
}

impl FilterValue {
    pub(crate) fn from_value(value: Option<&Value>) -> Self {
        let entries = match value {
            Some(Value::List(l)) => l.clone(),
            Some(v) => vec![v.to_config_string()],
            None => Vec::new(),
        };
        // A blank entry holds no filters (an unset parameter's default is
        // the empty string).
        let entries = entries
            .into_iter()
            .filter(|e| !e.trim().is_empty())
            .collect();
        Self { entries }
    }

    /// The entries, in order.
    #[must_use]
    pub fn entries(&self) -> &[String] {
        &self.entries
    }

    /// Parses every entry (see
    /// [`portcullis_accessfilter::parse_filter_list`]); a filter in the
    /// file form gets `default` as its action.
    ///
    /// Positions count as if the entries were lines of one text: with
    /// one-line entries, line *n* is the *n*th array item; rule numbers
    /// run on across entries.
    ///
    /// # Errors
    /// The first syntax error, its line counted as above.
    pub fn parse(&self, default: Action) -> Result<Vec<Filter>, portcullis_accessfilter::Error> {
        let mut filters = Vec::new();
        let mut line_offset: u32 = 0;
        for entry in &self.entries {
            let rule_offset = u32::try_from(filters.len()).unwrap_or(u32::MAX);
            let parsed = parse_filter_list(entry, default).map_err(|mut e| {
                if let portcullis_accessfilter::Error::Syntax { line, .. } = &mut e {
                    *line = line.saturating_add(line_offset);
                }
                e
            })?;
            filters.extend(parsed.into_iter().map(|mut f| {
                f.origin.line = f.origin.line.saturating_add(line_offset);
                f.origin.rule = f.origin.rule.saturating_add(rule_offset);
                f
            }));
            let lines = u32::try_from(entry.split('\n').count()).unwrap_or(u32::MAX);
            line_offset = line_offset.saturating_add(lines);
        }
        Ok(filters)
    }
}

/// The service-level filter parameters of each base service, in
/// evaluation order, with the action a rule in the file form gets (a value
/// in the LDAP form, `+imap:ALL$-imap:bad.example`, carries each rule's
/// own).
fn filter_parameters(base: &str) -> Option<[(Param<FilterValue>, Action); 2]> {
    use crate::params::*;
    let [allowed, notallowed] = match base {
        "imap" => [SERVICE_IMAP_DOMAINALLOWED, SERVICE_IMAP_DOMAINNOTALLOWED],
        "pop" => [SERVICE_POP_DOMAINALLOWED, SERVICE_POP_DOMAINNOTALLOWED],
        "smtp" => [SERVICE_SMTP_DOMAINALLOWED, SERVICE_SMTP_DOMAINNOTALLOWED],
        "http" => [SERVICE_HTTP_DOMAINALLOWED, SERVICE_HTTP_DOMAINNOTALLOWED],
        _ => return None,
    };
    Some([(allowed, Action::Allow), (notallowed, Action::Deny)])
}

/// One service-level filter parameter, parsed.
#[derive(Debug)]
#[non_exhaustive]
pub struct ServiceFilters {
    /// The parameter's name (`service.imap.domainallowed`), which names the
    /// source of these filters in explanations and diagnostics.
    pub parameter: String,
    /// Its filters, each with its own action, or why the value does not
    /// parse.
    pub filters: Result<Vec<Filter>, portcullis_accessfilter::Error>,
}

/// The proxy authentication filter parameter of each base service that
/// has one.
fn proxy_auth_parameter(base: &str) -> Option<Param<FilterValue>> {
    match base {
        "http" => Some(crate::params::SERVICE_HTTP_PROXYDOMAINALLOWED),
        _ => None,
    }
}

impl Config {
    /// The service-level access filters of `service`:
    /// `service.<base>.domainallowed` (Allow) and
    /// `service.<base>.domainnotallowed` (Deny), in that order, each parsed
    /// in whichever form it is written (see [`FilterValue`]: one string or
    /// an array, the file form or the LDAP form). The one mapping from
    /// parameters to filters.
    ///
    /// `<base>` is the service whose parameters govern `service` (ASCII
    /// case ignored):
    ///
    /// | `service`                      | parameters       |
    /// |--------------------------------|------------------|
    /// | `imap`, `imaps`                | `service.imap.*` |
    /// | `pop`, `pop3`, `pops`, `pop3s` | `service.pop.*`  |
    /// | `smtp`, `smtps`, `submissions` | `service.smtp.*` |
    /// | `http`, `https`                | `service.http.*` |
    ///
    /// An unset parameter holds no filters (so a service with neither set
    /// grants everyone).
    ///
    /// # Errors
    /// [`Error::UnknownService`] for any other name: a service without
    /// filter parameters must not read as one that grants everyone.
    pub fn service_filters(&self, service: &str) -> Result<Vec<ServiceFilters>, Error> {
        let params = parameter_service(service)
            .and_then(filter_parameters)
            .ok_or_else(|| Error::UnknownService {
                service: service.to_owned(),
            })?;
        params
            .into_iter()
            .map(|(key, action)| {
                Ok(ServiceFilters {
                    parameter: key.name().to_owned(),
                    filters: self.get(key)?.parse(action),
                })
            })
            .collect()
    }

    /// The proxy authentication filters of `service`
    /// (`service.<base>.proxydomainallowed`, Allow rules, `<base>` as for
    /// [`Config::service_filters`]): the hosts, such as a portal's login
    /// server, that may log in on behalf of users. Only HTTP has the
    /// parameter; `Ok(None)` for a known service without it.
    ///
    /// These are not access filters of the service and are not part of
    /// [`Config::service_filters`]: they answer a second question, asked
    /// only when a client logs in for another user. Unlike the access
    /// filters, an empty list grants nobody: no host may authenticate on
    /// behalf of users.
    ///
    /// # Errors
    /// [`Error::UnknownService`] for a name no parameters govern.
    pub fn proxy_auth_filters(&self, service: &str) -> Result<Option<ServiceFilters>, Error> {
        let base = parameter_service(service).ok_or_else(|| Error::UnknownService {
            service: service.to_owned(),
        })?;
        proxy_auth_parameter(base)
            .map(|key| {
                Ok(ServiceFilters {
                    parameter: key.name().to_owned(),
                    filters: self.get(key)?.parse(Action::Allow),
                })
            })
            .transpose()
    }
}
