//! Search-filter templates (`%U`, `%D`, `%o`) and a structural RFC 4515
//! parser used to validate them.
//!
//! RFC 4515 §3:
//!
//! ```text
//! filter         = LPAREN filtercomp RPAREN
//! filtercomp     = and / or / not / item
//! and            = AMPERSAND filterlist
//! or             = VERTBAR filterlist
//! not            = EXCLAMATION filter
//! item           = simple / present / substring / extensible
//! simple         = attr filtertype assertionvalue
//! filtertype     = equal / approx / greaterorequal / lessorequal
//! ```

use portcullis_certmap::escape::filter_value;

use crate::Error;

/// Longest filter accepted.
const MAX_FILTER: usize = 16 * 1024;

/// The structure of a parsed filter, with assertion values unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Filter {
    /// `(&…)`.
    And(Vec<Filter>),
    /// `(|…)`.
    Or(Vec<Filter>),
    /// `(!…)`.
    Not(Box<Filter>),
    /// `(attr=value)`.
    Equal(String, Vec<u8>),
    /// `(attr~=value)`.
    Approx(String, Vec<u8>),
    /// `(attr>=value)`.
    GreaterOrEqual(String, Vec<u8>),
    /// `(attr<=value)`.
    LessOrEqual(String, Vec<u8>),
    /// `(attr=*)`.
    Present(String),
    /// `(attr=a*b*c)`: the pieces between the stars.
    Substring(String, Vec<Vec<u8>>),
    /// `(attr:rule:=value)` and other extensible matches, kept as text.
    Extensible(String, Vec<u8>),
}

/// Parses an RFC 4515 filter string.
///
/// # Errors
/// [`Error::Filter`] with the byte position of the fault.
pub fn parse_filter(s: &str) -> Result<Filter, Error> {
    if s.len() > MAX_FILTER {
        return Err(Error::Filter("filter too long".into()));
    }
    let mut p = P {
        s: s.as_bytes(),
        i: 0,
        depth: 0,
    };
    let f = p.filter()?;
    if p.i != p.s.len() {
        return Err(p.err("trailing characters"));
    }
    Ok(f)
}

struct P<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

impl P<'_> {
    fn err(&self, what: &str) -> Error {
        Error::Filter(format!("{what} at byte {}", self.i))
    }

    fn expect(&mut self, c: u8) -> Result<(), Error> {
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected `{}`", char::from(c))))
        }
    }

    fn filter(&mut self) -> Result<Filter, Error> {
        self.depth += 1;
        if self.depth > 64 {
            return Err(self.err("nested too deeply"));
        }
        self.expect(b'(')?;
        let f = match self.s.get(self.i) {
            Some(b'&') => {
                self.i += 1;
                Filter::And(self.list()?)
            }
            Some(b'|') => {
                self.i += 1;
                Filter::Or(self.list()?)
            }
            Some(b'!') => {
                self.i += 1;
                Filter::Not(Box::new(self.filter()?))
            }
            _ => self.item()?,
        };
        self.expect(b')')?;
        self.depth -= 1;
        Ok(f)
    }

    fn list(&mut self) -> Result<Vec<Filter>, Error> {
        let mut v = Vec::new();
        while self.s.get(self.i) == Some(&b'(') {
            v.push(self.filter()?);
        }
        if v.is_empty() {
            return Err(self.err("empty filter list"));
        }
        Ok(v)
    }

    /// Reads an assertion value up to `)`; returns unescaped pieces split
    /// at unescaped `*`.
    fn value(&mut self) -> Result<Vec<Vec<u8>>, Error> {
        let mut pieces = vec![Vec::new()];
        loop {
            match self.s.get(self.i) {
                None => return Err(self.err("unterminated value")),
                Some(b')') => break,
                Some(b'(') => return Err(self.err("unescaped `(` in value")),
                Some(b'*') => {
                    self.i += 1;
                    pieces.push(Vec::new());
                }
                Some(b'\\') => {
                    let hex = |c: Option<&u8>| c.and_then(|&c| char::from(c).to_digit(16));
                    let (Some(h), Some(l)) =
                        (hex(self.s.get(self.i + 1)), hex(self.s.get(self.i + 2)))
                    else {
                        return Err(self.err("bad escape"));
                    };
                    self.i += 3;
                    let b = u8::try_from(h * 16 + l).map_err(|_| self.err("bad escape"))?;
                    if let Some(last) = pieces.last_mut() {
                        last.push(b);
                    }
                }
                Some(&0) => return Err(self.err("NUL in value")),
                Some(&c) => {
                    self.i += 1;
                    if let Some(last) = pieces.last_mut() {
                        last.push(c);
                    }
                }
            }
        }
        Ok(pieces)
    }

    fn item(&mut self) -> Result<Filter, Error> {
        let start = self.i;
        while let Some(&c) = self.s.get(self.i) {
            if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b';' | b':') {
                self.i += 1;
            } else {
                break;
            }
        }
        let attr = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
        if attr.is_empty() {
            return Err(self.err("missing attribute"));
        }
        let op = match self.s.get(self.i) {
            Some(b'=') if attr.ends_with(':') => {
                self.i += 1;
                let v = self.value()?;
                if v.len() != 1 {
                    return Err(self.err("`*` in extensible match"));
                }
                return Ok(Filter::Extensible(attr, v.concat()));
            }
            Some(b'=') => {
                self.i += 1;
                b'='
            }
            Some(&c @ (b'~' | b'>' | b'<')) => {
                self.i += 1;
                self.expect(b'=')?;
                c
            }
            _ => return Err(self.err("expected a filter type")),
        };
        if attr.contains(':') {
            return Err(self.err("`:` in attribute description"));
        }
        let mut v = self.value()?;
        if op != b'=' {
            if v.len() != 1 {
                return Err(self.err("`*` in ordering or approximate match"));
            }
            let val = v.pop().unwrap_or_default();
            return Ok(match op {
                b'~' => Filter::Approx(attr, val),
                b'>' => Filter::GreaterOrEqual(attr, val),
                _ => Filter::LessOrEqual(attr, val),
            });
        }
        Ok(match v.len() {
            1 => Filter::Equal(attr, v.pop().unwrap_or_default()),
            2 if v[0].is_empty() && v[1].is_empty() => Filter::Present(attr),
            _ => {
                if v[1..v.len() - 1].iter().any(Vec::is_empty) {
                    return Err(self.err("`**` in substring"));
                }
                Filter::Substring(attr, v)
            }
        })
    }
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    User,
    Domain,
    Login,
}

/// A search-filter template such as `(&(uid=%U)(objectclass=inetmailuser))`.
///
/// Tokens: `%U` the local part of the login, `%D` the domain, `%o` the
/// login as typed, `%%` a percent sign. Every substituted value is escaped
/// per RFC 4515, so it cannot change the filter's structure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterTemplate {
    source: String,
    pieces: Vec<Piece>,
}

impl FilterTemplate {
    /// Parses and validates a template: unknown tokens and templates that
    /// are not a valid filter once expanded are refused.
    ///
    /// # Errors
    /// [`Error::Filter`].
    pub fn parse(template: &str) -> Result<Self, Error> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut chars = template.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                text.push(c);
                continue;
            }
            let piece = match chars.next() {
                Some('%') => {
                    text.push('%');
                    continue;
                }
                Some('U') => Piece::User,
                Some('D') => Piece::Domain,
                Some('o') => Piece::Login,
                Some(other) => {
                    return Err(Error::Filter(format!(
                        "unknown token `%{other}` in filter template `{template}`"
                    )));
                }
                None => {
                    return Err(Error::Filter(format!(
                        "dangling `%` in filter template `{template}`"
                    )));
                }
            };
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(piece);
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        let t = Self {
            source: template.to_owned(),
            pieces,
        };
        parse_filter(&t.expand("u", "d", "o"))
            .map_err(|e| Error::Filter(format!("filter template `{template}`: {e}")))?;
        Ok(t)
    }

    /// The template as written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Expands the template with escaped values.
    #[must_use]
    pub fn expand(&self, user: &str, domain: &str, login: &str) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::User => out.push_str(&filter_value(user)),
                Piece::Domain => out.push_str(&filter_value(domain)),
                Piece::Login => out.push_str(&filter_value(login)),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let f = parse_filter("(&(uid=al\\2ace)(objectclass=inetmailuser)(!(mail=*))(cn=a*b*))")
            .unwrap();
        assert_eq!(
            f,
            Filter::And(vec![
                Filter::Equal("uid".into(), b"al*ce".to_vec()),
                Filter::Equal("objectclass".into(), b"inetmailuser".to_vec()),
                Filter::Not(Box::new(Filter::Present("mail".into()))),
                Filter::Substring("cn".into(), vec![b"a".to_vec(), b"b".to_vec(), vec![]]),
            ])
        );
        for bad in [
            "",
            "(",
            "()",
            "(uid=a",
            "(uid=a))",
            "(&)",
            "(uid=(x))",
            "(uid=\\zz)",
            "(=a)",
            "(uid~=a*)",
        ] {
            assert!(parse_filter(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn templates() {
        let t = FilterTemplate::parse("(&(uid=%U)(mail=%o)(dc=%D)(x=100%%))").unwrap();
        assert_eq!(
            t.expand("a*", "b(", "a*@b("),
            "(&(uid=a\\2a)(mail=a\\2a@b\\28)(dc=b\\28)(x=100%))"
        );
        assert!(FilterTemplate::parse("(uid=%x)").is_err());
        assert!(FilterTemplate::parse("(uid=%").is_err());
        assert!(FilterTemplate::parse("uid=%U").is_err());
        assert!(FilterTemplate::parse("(&(uid=%U)").is_err());
    }
}
