//! What a relay's EHLO reply offers, and which of it the client may see.

use super::reply::Reply;

/// Keywords always passed through to clients (the chapter's default set).
pub const DEFAULT_EHLO_KEYWORDS: [&str; 11] = [
    "8BITMIME",
    "PIPELINING",
    "DSN",
    "ENHANCEDSTATUSCODES",
    "EXPN",
    "HELP",
    "XLOOP",
    "ETRN",
    "SIZE",
    "STARTTLS",
    "AUTH",
];

/// Keywords never shown to clients, whatever `EhloKeywords` says: they
/// let the sender assert another client's identity.
pub const NEVER_SHOWN: [&str; 2] = ["XCLIENT", "XFORWARD"];

/// The keyword of an EHLO line: up to the first SP or `=` (the latter for
/// the old `AUTH=LOGIN` form), upper-cased.
#[must_use]
pub fn keyword(line: &str) -> String {
    line.split([' ', '='])
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase()
}

/// The parameters after an EHLO line's keyword.
#[must_use]
pub fn params(line: &str) -> Vec<&str> {
    line.split(' ').skip(1).filter(|p| !p.is_empty()).collect()
}

/// Whether the EHLO reply offers `kw` (case-insensitive).
#[must_use]
pub fn offers(ehlo: &Reply, kw: &str) -> bool {
    extension(ehlo, kw).is_some()
}

/// The EHLO line of extension `kw`, if offered.
#[must_use]
pub fn extension<'a>(ehlo: &'a Reply, kw: &str) -> Option<&'a str> {
    ehlo.lines()
        .iter()
        .skip(1)
        .map(String::as_str)
        .find(|l| keyword(l).eq_ignore_ascii_case(kw))
}

/// `EhloKeywords`: keeps the default set plus configured keywords.
///
/// ```
/// use portcullis_popbeforesmtp::relay::{EhloFilter, Reply};
/// let relay = Reply::new(250, vec![
///     "relay.example".into(), "PIPELINING".into(), "XCLIENT NAME ADDR".into(),
///     "VRFY".into(), "TURN".into(),
/// ]).unwrap();
/// let shown = EhloFilter::new(["TURN"]).filter(&relay);
/// assert_eq!(shown.lines(), ["relay.example", "PIPELINING", "TURN"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EhloFilter {
    allowed: Vec<String>,
}

impl Default for EhloFilter {
    fn default() -> Self {
        Self::new(std::iter::empty::<&str>())
    }
}

impl EhloFilter {
    /// The default set plus `extra` keywords (case-insensitive).
    pub fn new<I, S>(extra: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut allowed: Vec<String> = DEFAULT_EHLO_KEYWORDS
            .iter()
            .map(|k| (*k).to_owned())
            .collect();
        for k in extra {
            let k = k.as_ref().trim().to_ascii_uppercase();
            if !k.is_empty() && !allowed.contains(&k) {
                allowed.push(k);
            }
        }
        Self { allowed }
    }

    /// Whether `kw` is passed through.
    #[must_use]
    pub fn allows(&self, kw: &str) -> bool {
        let kw = kw.to_ascii_uppercase();
        !NEVER_SHOWN.contains(&kw.as_str()) && self.allowed.contains(&kw)
    }

    /// The reply to show the client: the greeting line, then only allowed
    /// extension lines.
    #[must_use]
    pub fn filter(&self, ehlo: &Reply) -> Reply {
        let clean = |l: &&String| !l.contains(['\r', '\n']);
        let mut lines = ehlo.lines().iter();
        // A greeting with a stray CR is replaced rather than passed on.
        let greeting = lines
            .next()
            .filter(clean)
            .cloned()
            .unwrap_or_else(|| "relay".to_owned());
        let mut kept = vec![greeting];
        kept.extend(
            lines
                .filter(clean)
                .filter(|l| self.allows(&keyword(l)))
                .cloned(),
        );
        // Every kept line is free of CR and LF, and the code came from a
        // parsed reply, so this cannot fail; should it ever, the client gets
        // a bare greeting and never the unfiltered extension list.
        Reply::new(ehlo.code(), kept).unwrap_or_else(|_| Reply::bare(ehlo.code()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::ReplyParser;

    fn parse(wire: &[u8]) -> Reply {
        let mut p = ReplyParser::new();
        p.feed(wire);
        p.next_reply().expect("valid").expect("complete")
    }

    #[test]
    fn keeps_defaults_and_extras_drops_the_rest() {
        let ehlo = parse(
            b"250-relay.example\r\n250-PIPELINING\r\n250-XCLIENT NAME ADDR\r\n\
              250-XFORWARD NAME\r\n250-CHUNKING\r\n250-X-CUSTOM 1\r\n250 SIZE 10\r\n",
        );
        let shown = EhloFilter::new(["x-custom", "xclient"]).filter(&ehlo);
        assert_eq!(
            shown.lines(),
            ["relay.example", "PIPELINING", "X-CUSTOM 1", "SIZE 10"]
        );
        assert_eq!(shown.code(), 250);
    }

    #[test]
    fn lines_with_cr_are_never_passed_on() {
        // The parser refuses them; a reply built by hand is filtered too.
        let raw = Reply {
            code: 250,
            lines: vec!["relay\rX".into(), "SIZE\rXCLIENT".into(), "DSN".into()],
        };
        let shown = EhloFilter::default().filter(&raw);
        assert_eq!(shown.lines(), ["relay", "DSN"]);
    }
}
