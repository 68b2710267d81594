//! Text taken from certificates, made safe for a terminal.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `s` with every control character (C0, DEL, C1) and every Unicode
/// bidirectional or invisible formatting character escaped as `\xNN` or
/// `\u{NNNN}`, so a certificate's subject, SAN or alias cannot move the
/// cursor, recolour, retitle or reorder the terminal it is printed on.
/// Borrows when nothing needs escaping (the usual case).
///
/// ```
/// use portcullis_certdb::terminal_safe;
/// assert_eq!(terminal_safe("CN=mail.example.com"), "CN=mail.example.com");
/// assert_eq!(terminal_safe("a\u{1b}[31mb"), "a\\x1b[31mb");
/// assert_eq!(terminal_safe("x\u{202e}y"), "x\\u{202e}y");
/// ```
#[must_use]
pub fn terminal_safe(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !needs_escape(c) {
            out.push(c);
        } else if u32::from(c) < 0x100 {
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        } else {
            let _ = write!(out, "\\u{{{:04x}}}", u32::from(c));
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // Bidirectional controls (the "Trojan Source" set) and marks.
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
            // Zero-width and invisible formatting characters.
            | '\u{200b}'..='\u{200d}' | '\u{2028}' | '\u{2029}' | '\u{2060}'..='\u{2064}' | '\u{feff}'
        )
}

#[cfg(test)]
mod tests {
    use super::terminal_safe;

    #[test]
    fn every_control_character_is_escaped() {
        for c in (0u32..0x20).chain(0x7f..0xa0).filter_map(char::from_u32) {
            let s = format!("a{c}b");
            let safe = terminal_safe(&s);
            assert!(!safe.chars().any(char::is_control), "{c:?} -> {safe:?}");
        }
        assert_eq!(terminal_safe("tab\there"), "tab\\x09here");
        assert_eq!(terminal_safe("é ü 日本"), "é ü 日本");
    }
}
