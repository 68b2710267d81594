//! Validation of access filter values.

/// Checks that an access filter value (`service.*.domainallowed` and
/// friends) parses, in the file form or the LDAP `+svc:clients$-...` form.
pub(crate) fn validate(raw: &str) -> Result<(), String> {
    portcullis_accessfilter::validate_filter_value(raw).map_err(|e| e.to_string())
}

use portcullis_accessfilter::{Action, Filter, parse_filter_list};

use crate::Config;

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
    /// The service-level access filters of `service` (`imap`, `pop`,
    /// `smtp`, `http`): `service.<service>.domainallowed` and
    /// `service.<service>.domainnotallowed`, in that order, each parsed in
    /// whichever form it is written. The one mapping from parameters to
    /// filters. An unset parameter holds no filters; a service the registry
    /// has no such parameters for gets none.
    #[must_use]
    pub fn service_filters(&self, service: &str) -> Vec<ServiceFilters> {
        SERVICE_FILTERS
            .iter()
            .filter_map(|(suffix, action)| {
                let parameter = format!("service.{service}.{suffix}");
                let value = self.string(&parameter).ok()?;
                let filters = parse_filter_list(&value, *action);
                Some(ServiceFilters { parameter, filters })
            })
            .collect()
    }
}
