//! Validation of access filter values.

/// Checks that an access filter value (`service.*.domainallowed` and
/// friends) parses, in the file form or the LDAP `+svc:clients$-...` form.
pub(crate) fn validate(raw: &str) -> Result<(), String> {
    portcullis_accessfilter::validate_filter_value(raw).map_err(|e| e.to_string())
}
