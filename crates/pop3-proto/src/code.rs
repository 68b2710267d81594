//! RFC 3206 / RFC 2449 extended response codes and status lines.
//!
//! ```text
//! single-line  = status [SP [resp-code SP] text] CRLF      ; RFC 2449 §8
//! status       = "+OK" / "-ERR"
//! resp-code    = "[" resp-level *("/" resp-level) "]"
//! ```

use std::fmt;

/// An extended response code (RFC 2449 §8, RFC 3206).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResponseCode {
    /// `[AUTH]`: the credentials were refused (RFC 3206 §5).
    Auth,
    /// `[SYS/TEMP]`: a temporary system failure (RFC 3206 §4).
    SysTemp,
    /// `[SYS/PERM]`: a permanent system failure (RFC 3206 §4).
    SysPerm,
    /// `[IN-USE]`: the maildrop is locked (RFC 2449 §8.1.1).
    InUse,
    /// `[LOGIN-DELAY]`: logged in too recently (RFC 2449 §8.1.2).
    LoginDelay,
    /// Any other code, as sent (without brackets; printable ASCII, no `]`).
    Other(String),
}

impl ResponseCode {
    /// Parses a code's text (without brackets); case-insensitive.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Syntax`] when empty or not printable ASCII without
    /// `]` and spaces.
    pub fn parse(text: &str) -> Result<Self, crate::Error> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_graphic() && b != b']') {
            return Err(crate::Error::Syntax("response code"));
        }
        Ok(match text.to_ascii_uppercase().as_str() {
            "AUTH" => Self::Auth,
            "SYS/TEMP" => Self::SysTemp,
            "SYS/PERM" => Self::SysPerm,
            "IN-USE" => Self::InUse,
            "LOGIN-DELAY" => Self::LoginDelay,
            _ => Self::Other(text.to_owned()),
        })
    }

    /// The code as written between the brackets.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Auth => "AUTH",
            Self::SysTemp => "SYS/TEMP",
            Self::SysPerm => "SYS/PERM",
            Self::InUse => "IN-USE",
            Self::LoginDelay => "LOGIN-DELAY",
            Self::Other(s) => s,
        }
    }
}

impl fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]", self.as_str())
    }
}

/// A single-line status response: `+OK` or `-ERR`, an optional code and
/// text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// `+OK` (true) or `-ERR` (false).
    pub ok: bool,
    /// The extended response code, if any.
    pub code: Option<ResponseCode>,
    /// The human-readable text (may be empty).
    pub text: String,
}

impl Response {
    /// Parses one status line (with or without CRLF). Text that is not
    /// UTF-8 is kept lossily: it is only ever shown to people.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Syntax`] when the line starts with neither `+OK` nor
    /// `-ERR`.
    pub fn parse(line: &[u8]) -> Result<Self, crate::Error> {
        let line = crate::line::strip_crlf(line);
        let (ok, rest) = if let Some(rest) = strip_keyword(line, b"+OK") {
            (true, rest)
        } else if let Some(rest) = strip_keyword(line, b"-ERR") {
            (false, rest)
        } else {
            return Err(crate::Error::Syntax("status indicator"));
        };
        let rest = String::from_utf8_lossy(rest).into_owned();
        let mut code = None;
        let mut text = rest.as_str();
        if let Some(after) = text.strip_prefix('[')
            && let Some(end) = after.find(']')
            && let Ok(c) = ResponseCode::parse(&after[..end])
        {
            code = Some(c);
            text = after[end + 1..].trim_start_matches(' ');
        }
        Ok(Self {
            ok,
            code,
            text: text.to_owned(),
        })
    }

    /// Encodes the response with CRLF. Control characters in the text are
    /// replaced by spaces, so the text can never end the line early.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = String::from(if self.ok { "+OK" } else { "-ERR" });
        if let Some(code) = &self.code {
            out.push(' ');
            out.push_str(&code.to_string());
        }
        if !self.text.is_empty() {
            out.push(' ');
            out.extend(
                self.text
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c }),
            );
        }
        out.push_str("\r\n");
        out.into_bytes()
    }
}

/// `line` without `keyword` and the following space, if it starts with it
/// (case-insensitive) and the keyword ends there.
fn strip_keyword<'a>(line: &'a [u8], keyword: &[u8]) -> Option<&'a [u8]> {
    if line.len() < keyword.len() || !line[..keyword.len()].eq_ignore_ascii_case(keyword) {
        return None;
    }
    match &line[keyword.len()..] {
        [] => Some(&[]),
        [b' ', rest @ ..] => Some(rest),
        _ => None,
    }
}
