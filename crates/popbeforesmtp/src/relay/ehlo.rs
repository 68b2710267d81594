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
        let mut lines = ehlo.lines().iter();
        let mut kept: Vec<String> = lines.next().cloned().into_iter().collect();
        kept.extend(lines.filter(|l| self.allows(&keyword(l))).cloned());
        // The lines came from a valid reply, so they are still valid.
        Reply::new(ehlo.code(), kept).unwrap_or_else(|_| ehlo.clone())
    }
}
