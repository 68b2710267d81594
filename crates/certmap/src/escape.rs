//! Escaping of values placed into LDAP search filters (RFC 4515) and
//! distinguished names (RFC 4514).

/// Escapes `value` for an RFC 4515 filter assertion value.
///
/// RFC 4515 §3: `*`, `(`, `)`, `\` and NUL must be written as `\2a`,
/// `\28`, `\29`, `\5c` and `\00`. Other control bytes are escaped too, so a
/// filter never carries raw control characters; other UTF-8 passes as is.
///
/// ```
/// use portcullis_certmap::escape::filter_value;
/// assert_eq!(filter_value("a*b(c)\\\0"), "a\\2ab\\28c\\29\\5c\\00");
/// ```
#[must_use]
pub fn filter_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '*' | '(' | ')' | '\\' | '\0'..='\x1f' | '\x7f' => {
                out.push_str(&format!("\\{:02x}", u32::from(c)));
            }
            _ => out.push(c),
        }
    }
    out
}

/// Escapes `value` for an RFC 4514 attribute value in a DN string.
///
/// RFC 4514 §2.4: `"`, `+`, `,`, `;`, `<`, `>`, `\` anywhere, `#` or
/// space at the start, space at the end, and NUL (as `\00`).
///
/// ```
/// use portcullis_certmap::escape::dn_value;
/// assert_eq!(dn_value(" a,b "), "\\ a\\,b\\ ");
/// ```
#[must_use]
pub fn dn_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    let n = value.chars().count();
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i + 1 == n => out.push_str("\\ "),
            '\0'..='\x1f' | '\x7f' => out.push_str(&format!("\\{:02x}", u32::from(c))),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_specials() {
        let cases = [
            ("plain", "plain"),
            ("*", "\\2a"),
            ("(", "\\28"),
            (")", "\\29"),
            ("\\", "\\5c"),
            ("\0", "\\00"),
            ("a\nb", "a\\0ab"),
            ("ünï", "ünï"),
            ("*)(uid=*", "\\2a\\29\\28uid=\\2a"),
        ];
        for (i, o) in cases {
            assert_eq!(filter_value(i), o);
        }
    }

    #[test]
    fn dn_specials() {
        assert_eq!(dn_value("#x"), "\\#x");
        assert_eq!(dn_value("x#"), "x#");
        assert_eq!(dn_value(" "), "\\ ");
        assert_eq!(dn_value("a\0"), "a\\00");
        assert_eq!(dn_value("a=b"), "a=b");
    }
}
