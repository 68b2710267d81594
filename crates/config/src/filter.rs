//! Validation of access filter values, and the mapping from service names
//! to their filter parameters.

use portcullis_accessfilter::{Action, Filter, parse_filter_list};

use crate::{Config, Error};

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

/// The service-level filter parameters of a service, in evaluation order,
/// with the action a rule in the file form gets (a value in the LDAP form,
/// `+imap:ALL$-imap:bad.example`, carries each rule's own).
const SERVICE_FILTERS: [(&str, Action); 2] = [
    ("domainallowed", Action::Allow),
    ("domainnotallowed", Action::Deny),
];

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

impl Config {
    /// The service-level access filters of `service`:
    /// `service.<base>.domainallowed` (Allow) and
    /// `service.<base>.domainnotallowed` (Deny), in that order, each parsed
    /// in whichever form it is written. The one mapping from parameters to
    /// filters.
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
        let base = parameter_service(service).ok_or_else(|| Error::UnknownService {
            service: service.to_owned(),
        })?;
        SERVICE_FILTERS
            .iter()
            .map(|(suffix, action)| {
                let parameter = format!("service.{base}.{suffix}");
                let value = self.string(&parameter)?;
                let filters = parse_filter_list(&value, *action);
                Ok(ServiceFilters { parameter, filters })
            })
            .collect()
    }
}
