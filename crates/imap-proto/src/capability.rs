//! Capability lists as strings, converted to and from imap-codec's form.

use imap_codec::imap_types::core::Vec1;
use imap_codec::imap_types::response::Capability;

/// The capabilities as imap-codec values, leaving out names that are not
/// atoms; `None` when none is left.
pub(crate) fn to_codec(capabilities: &[String]) -> Option<Vec1<Capability<'static>>> {
    let caps: Vec<Capability<'static>> = capabilities
        .iter()
        .filter_map(|c| Capability::try_from(c.clone()).ok())
        .collect();
    Vec1::try_from(caps).ok()
}

/// Whether `capabilities` holds `name` (case-insensitive).
pub(crate) fn has(capabilities: &[String], name: &str) -> bool {
    capabilities.iter().any(|c| c.eq_ignore_ascii_case(name))
}
