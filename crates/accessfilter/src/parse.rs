//! Parsers for the file form and the LDAP attribute form.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::ast::{Action, ClientSpec, Filter, HostPattern, List, Origin, ServiceSpec, Word};
use crate::error::{Error, SyntaxErrorKind as K};

/// The deepest `EXCEPT` nesting accepted (deeper input is an error, so no
/// input can exhaust the stack).
pub const MAX_EXCEPT_DEPTH: usize = 32;

/// The largest input accepted, in bytes (64 MiB).
pub const MAX_INPUT: usize = 64 << 20;

/// Parses the file form: one filter per line, `#` comments, `\` at the end
/// of a line continues the filter on the next line. Every filter gets
/// `action` (the file is either the allow file or the deny file).
///
/// A line whose first non-blank character is `#` is a comment; so is the
/// rest of a line from a `#` that starts a token. A backslash-newline joins
/// two lines with a blank in between.
///
/// # Errors
///
/// [`Error::Syntax`] with the line, column and token of the first error.
pub fn parse_file(text: &str, action: Action) -> Result<Vec<Filter>, Error> {
    if text.len() > MAX_INPUT {
        return Err(too_long());
    }
    let mut filters = Vec::new();
    let mut lines = text.split('\n').enumerate().peekable();
    while let Some((n, raw)) = lines.next() {
        let Some(first) = strip_comment(raw) else {
            continue;
        };
        let mut segs = vec![Seg::new(n, raw, first)];
        // Continuation lines.
        while segs.last().is_some_and(|s| s.continues) {
            let Some((n, raw)) = lines.next() else {
                break;
            };
            let body = strip_comment(raw).unwrap_or("");
            segs.push(Seg::new(n, raw, body));
        }
        let logical = Logical::join(segs);
        if logical.text.trim_matches(is_sep).is_empty() {
            continue;
        }
        let rule = u32::try_from(filters.len() + 1).unwrap_or(u32::MAX);
        filters.push(parse_body(&logical, 0, logical.text.len(), action, rule)?);
    }
    Ok(filters)
}

/// Parses the LDAP attribute form used by `mailAllowedServiceAccess` and
/// `mailDomainAllowedServiceAccess`: `$`-separated rules, each starting
/// with `+` (allow) or `-` (deny), e.g.
/// `+imap,pop:ALL$-http:*$-ALL:ALL EXCEPT server1.example.com`.
/// An empty (or blank) value has no rules.
///
/// # Errors
///
/// [`Error::Syntax`] with the line, column and token of the first error.
pub fn parse_ldap(text: &str) -> Result<Vec<Filter>, Error> {
    if text.len() > MAX_INPUT {
        return Err(too_long());
    }
    let logical = Logical::whole(text);
    if text.trim_matches(is_sep).is_empty() {
        return Ok(Vec::new());
    }
    let mut filters = Vec::new();
    let mut start = 0;
    for end in split_outside_brackets(text, '$').chain(std::iter::once(text.len())) {
        let piece = &text[start..end];
        let lead = piece.len() - piece.trim_start_matches(is_sep).len();
        let body_start = start + lead;
        let trimmed = piece.trim_matches(is_sep);
        let rule = u32::try_from(filters.len() + 1).unwrap_or(u32::MAX);
        let action = match trimmed.chars().next() {
            Some('+') => Action::Allow,
            Some('-') => Action::Deny,
            None => return Err(logical.error(body_start, "$", K::EmptyRule)),
            Some(_) => return Err(logical.error(body_start, first_token(trimmed), K::MissingSign)),
        };
        let mut filter = parse_body(&logical, body_start + 1, end, action, rule)?;
        let (line, column) = logical.position(body_start);
        filter.origin.line = line;
        filter.origin.column = column;
        filters.push(filter);
        start = end + 1;
    }
    Ok(filters)
}

/// Parses a configuration value (`service.*.domainallowed` /
/// `domainnotallowed`): the LDAP form when the first non-blank character
/// is `+` or `-`, otherwise the file form with `default` as the action of
/// every filter.
///
/// # Errors
///
/// [`Error::Syntax`] with the line, column and token of the first error.
pub fn parse_filter_list(value: &str, default: Action) -> Result<Vec<Filter>, Error> {
    match value.trim_start_matches(is_sep).chars().next() {
        Some('+' | '-') => parse_ldap(value),
        _ => parse_file(value, default),
    }
}

/// Checks that a configuration value parses (see [`parse_filter_list`]);
/// for `configutil` and other validators.
///
/// # Errors
///
/// [`Error::Syntax`] with the line, column and token of the first error.
pub fn validate_filter_value(value: &str) -> Result<(), Error> {
    parse_filter_list(value, Action::Allow).map(drop)
}

fn too_long() -> Error {
    Error::Syntax {
        line: 1,
        column: 1,
        token: String::new(),
        kind: K::TooLong,
    }
}

pub(crate) fn is_sep(c: char) -> bool {
    matches!(c, ' ' | '\t' | ',' | '\r' | '\n')
}

fn first_token(s: &str) -> &str {
    s.split(is_sep).next().unwrap_or("")
}

/// Returns the part of a physical line before any comment, or `None` for a
/// comment line.
fn strip_comment(raw: &str) -> Option<&str> {
    let trimmed = raw.trim_start_matches([' ', '\t', '\r']);
    if trimmed.starts_with('#') {
        return None;
    }
    // A `#` that starts a token begins a trailing comment.
    let bytes = raw.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'#' && (i == 0 || is_sep(char::from(bytes[i - 1]))) {
            return Some(&raw[..i]);
        }
    }
    Some(raw)
}

/// One physical line's contribution to a logical line.
struct Seg<'a> {
    line: u32,
    raw: &'a str,
    body: &'a str,
    continues: bool,
}

impl<'a> Seg<'a> {
    fn new(n: usize, raw: &'a str, body: &'a str) -> Self {
        // Only a backslash that ends the line continues it (not one before
        // a trailing comment).
        let no_comment = body.len() == raw.len();
        let (body, continues) = match body.trim_end_matches('\r').strip_suffix('\\') {
            Some(b) if no_comment => (b, true),
            _ => (body, false),
        };
        Seg {
            line: u32::try_from(n + 1).unwrap_or(u32::MAX),
            raw,
            body,
            continues,
        }
    }
}

/// A logical line (or a whole LDAP value) with the map back to physical
/// positions.
pub(crate) struct Logical<'a> {
    pub(crate) text: Cow<'a, str>,
    /// (offset in `text`, line, byte offset of that point in `raw`, raw).
    map: Vec<(usize, u32, usize, &'a str)>,
}

impl<'a> Logical<'a> {
    fn join(segs: Vec<Seg<'a>>) -> Self {
        if let [seg] = segs.as_slice() {
            return Logical {
                text: Cow::Borrowed(seg.body),
                map: vec![(0, seg.line, 0, seg.raw)],
            };
        }
        let mut text = String::new();
        let mut map = Vec::with_capacity(segs.len());
        for seg in &segs {
            if !text.is_empty() {
                text.push(' ');
            }
            map.push((text.len(), seg.line, 0, seg.raw));
            text.push_str(seg.body);
        }
        Logical {
            text: Cow::Owned(text),
            map,
        }
    }

    fn whole(text: &'a str) -> Self {
        let mut map = Vec::new();
        let mut off = 0;
        for (n, line) in text.split('\n').enumerate() {
            map.push((off, u32::try_from(n + 1).unwrap_or(u32::MAX), 0, line));
            off += line.len() + 1;
        }
        Logical {
            text: Cow::Borrowed(text),
            map,
        }
    }

    pub(crate) fn position(&self, off: usize) -> (u32, u32) {
        let i = match self.map.binary_search_by(|m| m.0.cmp(&off)) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let Some(&(start, line, raw_off, raw)) = self.map.get(i) else {
            return (1, 1);
        };
        let within = (off - start.min(off)) + raw_off;
        let prefix = raw.get(..within.min(raw.len())).unwrap_or(raw);
        let col = prefix.chars().count() + 1 + within.saturating_sub(raw.len());
        (line, u32::try_from(col).unwrap_or(u32::MAX))
    }

    fn error(&self, off: usize, token: &str, kind: K) -> Error {
        let (line, column) = self.position(off);
        Error::Syntax {
            line,
            column,
            token: token.to_owned(),
            kind,
        }
    }
}

/// Byte offsets of `delim` outside `[...]`.
fn split_outside_brackets(text: &str, delim: char) -> impl Iterator<Item = usize> + '_ {
    let mut depth = 0usize;
    text.char_indices().filter_map(move |(i, c)| {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            c if c == delim && depth == 0 => return Some(i),
            _ => {}
        }
        None
    })
}

/// Parses `serviceList: clientList` in `logical.text[start..end]`.
fn parse_body(
    logical: &Logical<'_>,
    start: usize,
    end: usize,
    action: Action,
    rule: u32,
) -> Result<Filter, Error> {
    let text = &logical.text[start..end];
    let lead = text.len() - text.trim_start_matches(is_sep).len();
    let mut colons = split_outside_brackets(text, ':');
    let Some(colon) = colons.next() else {
        let tok = first_token(&text[lead..]);
        return Err(logical.error(start + lead, tok, K::MissingColon));
    };
    if let Some(extra) = colons.next() {
        return Err(logical.error(start + extra, ":", K::ExtraColon));
    }
    let services = parse_list(
        logical,
        start,
        start + colon,
        parse_service,
        K::EmptyServiceList,
    )?;
    let clients = parse_list(
        logical,
        start + colon + 1,
        end,
        parse_client,
        K::EmptyClientList,
    )?;
    let (line, column) = logical.position(start + lead);
    Ok(Filter {
        action,
        services,
        clients,
        origin: Origin { line, column, rule },
    })
}

type ItemParser<T> = fn(&str) -> Result<T, (K, usize)>;

/// Parses a list with `EXCEPT` (right-nested) from `text[start..end]`.
fn parse_list<T>(
    logical: &Logical<'_>,
    start: usize,
    end: usize,
    item: ItemParser<T>,
    empty: K,
) -> Result<List<T>, Error> {
    let text = &logical.text[start..end];
    // Tokens with their offsets.
    let mut levels: Vec<Vec<T>> = vec![Vec::new()];
    let mut last_except: Option<usize> = None;
    let mut off = 0;
    for tok in text.split(is_sep) {
        let here = off;
        off += tok.len() + 1;
        if tok.is_empty() {
            continue;
        }
        let abs = start + here;
        if tok.eq_ignore_ascii_case("EXCEPT") {
            if levels.last().is_some_and(Vec::is_empty) {
                return Err(logical.error(abs, tok, K::ExceptWithoutList));
            }
            if levels.len() > MAX_EXCEPT_DEPTH {
                return Err(logical.error(abs, tok, K::TooDeep));
            }
            levels.push(Vec::new());
            last_except = Some(abs);
            continue;
        }
        match item(tok) {
            Ok(v) => {
                if let Some(level) = levels.last_mut() {
                    level.push(v);
                }
            }
            Err((kind, _)) => return Err(logical.error(abs, tok, kind)),
        }
    }
    if levels.last().is_some_and(Vec::is_empty) {
        return Err(match last_except {
            Some(at) => logical.error(at, "EXCEPT", K::EmptyExceptList),
            None => {
                let (line, column) = logical.position(end);
                let tok = logical.text[end..]
                    .chars()
                    .next()
                    .map(String::from)
                    .unwrap_or_default();
                Error::Syntax {
                    line,
                    column,
                    token: tok,
                    kind: empty,
                }
            }
        });
    }
    let mut list: Option<List<T>> = None;
    while let Some(items) = levels.pop() {
        list = Some(List {
            items,
            except: list.map(Box::new),
        });
    }
    // `levels` started non-empty, so `list` is set.
    list.ok_or_else(|| logical.error(start, "", empty))
}

fn is_keyword(tok: &str, kw: &str) -> bool {
    tok.eq_ignore_ascii_case(kw)
}

/// Splits `tok` at the first `@` after its first character (outside
/// brackets), like tcp_wrappers.
fn split_at_user(tok: &str) -> Option<(&str, &str)> {
    let mut depth = 0usize;
    for (i, c) in tok.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            '@' if i > 0 && depth == 0 => return Some((&tok[..i], &tok[i + 1..])),
            _ => {}
        }
    }
    None
}

fn parse_service(tok: &str) -> Result<ServiceSpec, (K, usize)> {
    let (daemon, server) = match split_at_user(tok) {
        Some((d, h)) => (d, Some(parse_host(h)?)),
        None => (tok, None),
    };
    Ok(ServiceSpec {
        daemon: parse_word(daemon, false)?,
        server,
    })
}

fn parse_client(tok: &str) -> Result<ClientSpec, (K, usize)> {
    if let Some(rest) = tok.strip_prefix('@') {
        if rest.contains('@') {
            return Err((K::BadNetgroup, 0));
        }
        return Ok(ClientSpec {
            user: None,
            host: parse_host(tok)?,
        });
    }
    match split_at_user(tok) {
        Some((user, host)) => Ok(ClientSpec {
            user: Some(parse_word(user, true)?),
            host: parse_host(host)?,
        }),
        None => Ok(ClientSpec {
            user: None,
            host: parse_host(tok)?,
        }),
    }
}

fn is_host_wildcard(tok: &str) -> bool {
    ["LOCAL", "DNSSPOOFER", "PARANOID"]
        .iter()
        .any(|k| is_keyword(tok, k))
}

/// Daemon (`user == false`) or user name patterns.
fn parse_word(tok: &str, user: bool) -> Result<Word, (K, usize)> {
    if tok.is_empty() {
        return Err((K::EmptyName, 0));
    }
    if tok == "*" || is_keyword(tok, "ALL") {
        return Ok(Word::All);
    }
    if user && is_keyword(tok, "KNOWN") {
        return Ok(Word::Known);
    }
    if user && is_keyword(tok, "UNKNOWN") {
        return Ok(Word::Unknown);
    }
    if is_host_wildcard(tok) || is_keyword(tok, "KNOWN") || is_keyword(tok, "UNKNOWN") {
        return Err((K::MisplacedWildcard, 0));
    }
    if tok.starts_with('@') {
        return Err((K::BadNetgroup, 0));
    }
    let ok = |c: char| {
        if user {
            !c.is_control() && !matches!(c, '@' | ':' | '$' | '[' | ']' | '#' | '\\' | '/')
        } else {
            c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '*' | '?' | '+')
        }
    };
    if let Some(i) = tok.find(|c| !ok(c)) {
        return Err((K::BadCharacter, i));
    }
    let lower = tok.to_ascii_lowercase();
    if lower.contains(['*', '?']) {
        Ok(Word::Glob(lower))
    } else {
        Ok(Word::Literal(lower))
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// Parses a host pattern (client host or server host).
pub(crate) fn parse_host(tok: &str) -> Result<HostPattern, (K, usize)> {
    if tok.is_empty() {
        return Err((K::EmptyName, 0));
    }
    if tok == "*" || is_keyword(tok, "ALL") {
        return Ok(HostPattern::All);
    }
    if is_keyword(tok, "KNOWN") {
        return Ok(HostPattern::Known);
    }
    if is_keyword(tok, "UNKNOWN") {
        return Ok(HostPattern::Unknown);
    }
    if is_keyword(tok, "LOCAL") {
        return Ok(HostPattern::Local);
    }
    if is_keyword(tok, "DNSSPOOFER") || is_keyword(tok, "PARANOID") {
        return Ok(HostPattern::DnsSpoofer);
    }
    if let Some(group) = tok.strip_prefix('@') {
        if group.is_empty() || !group.chars().all(is_name_char) {
            return Err((K::BadNetgroup, 0));
        }
        return Ok(HostPattern::Netgroup(group.to_owned()));
    }
    if tok.starts_with('/') {
        return Err((K::FilePattern, 0));
    }
    if tok.starts_with('[') {
        return parse_v6(tok);
    }
    if tok.contains(['[', ']']) {
        return Err((K::UnbalancedBracket, 0));
    }
    let globby = tok.contains(['*', '?']);
    if let Some((net, mask)) = tok.split_once('/') {
        if globby {
            return Err((K::BadGlob, 0));
        }
        let net = parse_v4(net).ok_or((K::BadAddress, 0))?;
        if mask.contains('.') {
            let mask = parse_v4(mask).ok_or((K::BadAddress, 0))?;
            return Ok(HostPattern::NetMask { net, mask });
        }
        let len = parse_len(mask, 32).ok_or((K::BadAddress, 0))?;
        return Ok(HostPattern::Net {
            net: IpAddr::V4(net),
            len,
        });
    }
    if let Some(i) = tok.find(|c: char| !(is_name_char(c) || c == '*' || c == '?')) {
        return Err((K::BadCharacter, i));
    }
    if !globby && is_numeric(tok) && !tok.ends_with('.') && !tok.starts_with('.') {
        return parse_v4(tok)
            .map(|a| HostPattern::Addr(IpAddr::V4(a)))
            .ok_or((K::BadAddress, 0));
    }
    let lower = tok.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix('.') {
        if globby {
            return Err((K::BadGlob, 0));
        }
        if rest.is_empty() || rest.starts_with('.') {
            return Err((K::EmptyName, 0));
        }
        return Ok(HostPattern::Suffix(lower));
    }
    if lower.ends_with('.') {
        if globby {
            return Err((K::BadGlob, 0));
        }
        if is_numeric(&lower) {
            return if valid_addr_prefix(&lower) {
                Ok(HostPattern::AddrPrefix(lower))
            } else {
                Err((K::BadAddress, 0))
            };
        }
        return Ok(HostPattern::NamePrefix(lower));
    }
    if globby {
        if lower == "*" {
            return Ok(HostPattern::All);
        }
        return Ok(HostPattern::Glob(lower));
    }
    if is_numeric(&lower) {
        return parse_v4(&lower)
            .map(|a| HostPattern::Addr(IpAddr::V4(a)))
            .ok_or((K::BadAddress, 0));
    }
    if lower.contains("..") {
        return Err((K::EmptyName, 0));
    }
    Ok(HostPattern::Name(lower))
}

fn is_numeric(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_digit() || c == '.')
}

/// A strict dotted quad (four decimal parts 0–255, no leading zeros).
fn parse_v4(s: &str) -> Option<Ipv4Addr> {
    let mut parts = [0u8; 4];
    let mut n = 0;
    for part in s.split('.') {
        if n == 4 {
            return None;
        }
        parts[n] = parse_octet(part)?;
        n += 1;
    }
    (n == 4).then(|| Ipv4Addr::from(parts))
}

fn parse_octet(part: &str) -> Option<u8> {
    if part.is_empty() || part.len() > 3 || (part.len() > 1 && part.starts_with('0')) {
        return None;
    }
    if !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    part.parse().ok()
}

/// `1.`, `1.2.`, `1.2.3.`: up to three octets followed by a dot.
fn valid_addr_prefix(s: &str) -> bool {
    let Some(body) = s.strip_suffix('.') else {
        return false;
    };
    let parts: Vec<&str> = body.split('.').collect();
    (1..=3).contains(&parts.len()) && parts.iter().all(|p| parse_octet(p).is_some())
}

fn parse_len(s: &str, max: u8) -> Option<u8> {
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    let n: u8 = s.parse().ok()?;
    (n <= max).then_some(n)
}

fn parse_v6(tok: &str) -> Result<HostPattern, (K, usize)> {
    let Some(close) = tok.find(']') else {
        return Err((K::UnbalancedBracket, 0));
    };
    let inner = &tok[1..close];
    let rest = &tok[close + 1..];
    if inner.contains(['*', '?']) {
        return Err((K::BadGlob, 0));
    }
    let addr: Ipv6Addr = inner.parse().map_err(|_| (K::BadIpv6, 0))?;
    // An IPv4-mapped address (`[::ffff:192.0.2.1]`) denotes the IPv4 client
    // (queries see mapped clients as IPv4), so it is kept in that form.
    let mapped = addr.to_ipv4_mapped();
    if rest.is_empty() {
        return Ok(HostPattern::Addr(
            mapped.map_or(IpAddr::V6(addr), IpAddr::V4),
        ));
    }
    let len = rest
        .strip_prefix('/')
        .and_then(|l| parse_len(l, 128))
        .ok_or((K::BadIpv6, 0))?;
    if let Some(v4) = mapped
        && len >= 96
    {
        // Host bits are kept, as for an IPv4 net, so `filtercheck` can
        // point them out.
        return Ok(HostPattern::Net {
            net: IpAddr::V4(v4),
            len: len - 96,
        });
    }
    Ok(HostPattern::Net {
        net: IpAddr::V6(addr),
        len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(s: &str) -> HostPattern {
        parse_host(s).unwrap()
    }

    #[test]
    fn host_patterns() {
        assert_eq!(host("ALL"), HostPattern::All);
        assert_eq!(host("*"), HostPattern::All);
        assert_eq!(host("paranoid"), HostPattern::DnsSpoofer);
        assert_eq!(host(".Siroe.COM"), HostPattern::Suffix(".siroe.com".into()));
        assert_eq!(host("192.168."), HostPattern::AddrPrefix("192.168.".into()));
        assert_eq!(host("mail."), HostPattern::NamePrefix("mail.".into()));
        assert_eq!(
            host("10.0.0.0/255.0.0.0"),
            HostPattern::NetMask {
                net: Ipv4Addr::new(10, 0, 0, 0),
                mask: Ipv4Addr::new(255, 0, 0, 0)
            }
        );
        assert_eq!(
            host("10.0.0.0/8"),
            HostPattern::Net {
                net: "10.0.0.0".parse().unwrap(),
                len: 8
            }
        );
        assert_eq!(
            host("[2001:db8::]/32"),
            HostPattern::Net {
                net: "2001:db8::".parse().unwrap(),
                len: 32
            }
        );
        assert_eq!(host("[::1]"), HostPattern::Addr("::1".parse().unwrap()));
        // IPv4-mapped patterns denote the IPv4 client.
        assert_eq!(
            host("[::ffff:192.0.2.1]"),
            HostPattern::Addr("192.0.2.1".parse().unwrap())
        );
        assert_eq!(
            host("[::ffff:192.0.2.0]/120"),
            HostPattern::Net {
                net: "192.0.2.0".parse().unwrap(),
                len: 24
            }
        );
        assert_eq!(
            host("1.2.3.4"),
            HostPattern::Addr("1.2.3.4".parse().unwrap())
        );
        assert_eq!(
            host("*.example.com"),
            HostPattern::Glob("*.example.com".into())
        );
        assert_eq!(host("192.168.1.?"), HostPattern::Glob("192.168.1.?".into()));
        assert_eq!(host("@Group1"), HostPattern::Netgroup("Group1".into()));
        for bad in [
            "1.2.3",
            "1.2.3.256",
            "1.2.3.4/33",
            "01.2.3.4",
            "[zz]",
            "[::1",
            "/etc/hosts",
            ".ex*",
            "1.2.*.",
            "a..b",
            "1.2.3.4.5.",
            "x$y",
            "[::1]/129",
            "1.2.3.0/1.2",
        ] {
            assert!(parse_host(bad).is_err(), "{bad} should not parse");
        }
    }
}
