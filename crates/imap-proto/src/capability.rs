//! Capability lists as strings, converted to and from imap-codec's form.

use imap_codec::imap_types::core::Vec1;
use imap_codec::imap_types::response::Capability;

/// The capabilities as imap-codec values; `None` when the list is empty or
/// a name is not an atom.
pub(crate) fn to_codec(capabilities: &[String]) -> Option<Vec1<Capability<'static>>> {
    let caps: Option<Vec<Capability<'static>>> = capabilities
        .iter()
        .map(|c| Capability::try_from(c.clone()).ok())
        .collect();
    Vec1::try_from(caps?).ok()
}

/// Whether `capabilities` holds `name` (case-insensitive).
pub(crate) fn has(capabilities: &[String], name: &str) -> bool {
    capabilities.iter().any(|c| c.eq_ignore_ascii_case(name))
}
