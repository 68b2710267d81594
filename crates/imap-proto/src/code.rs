//! Response codes (RFC 9051 §7.1, RFC 5530, RFC 7888) and status
//! responses.
//!
//! ```text
//! resp-cond-state = ("OK" / "NO" / "BAD") SP resp-text   ; RFC 9051 §9
//! resp-text       = ["[" resp-text-code "]" SP] [text]
//! ```

use std::fmt;

use imap_codec::imap_types::response::{Code, CodeOther};

/// A response code, as sent in `[...]` before the human-readable text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResponseCode {
    /// `[ALERT]`: show the text to the user (RFC 9051 §7.1).
    Alert,
    /// `[AUTHENTICATIONFAILED]`: wrong credentials (RFC 5530 §3).
    AuthenticationFailed,
    /// `[AUTHORIZATIONFAILED]`: may not act as that identity (RFC 5530 §3).
    AuthorizationFailed,
    /// `[UNAVAILABLE]`: a temporary failure, try later (RFC 5530 §3).
    Unavailable,
    /// `[EXPIRED]`: the credentials have expired (RFC 5530 §3).
    Expired,
    /// `[PRIVACYREQUIRED]`: the operation needs TLS (RFC 5530 §3).
    PrivacyRequired,
    /// `[CONTACTADMIN]`: the account needs the administrator (RFC 5530 §3).
    ContactAdmin,
    /// `[LIMIT]`: a resource limit was reached (RFC 5530 §3).
    Limit,
    /// `[SERVERBUG]`: the server failed (RFC 5530 §3).
    ServerBug,
    /// `[TOOBIG]`: a literal too large (RFC 7888 §4, RFC 4469).
    TooBig,
    /// `[CAPABILITY ...]`: the capabilities, as sent.
    Capability(Vec<String>),
    /// Any other code, as sent (without brackets).
    Other(String),
}

impl ResponseCode {
    /// Parses a code's text (without brackets); the name is
    /// case-insensitive.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Syntax`] when empty, or not printable ASCII without
    /// `]` (spaces only between a name and its arguments).
    pub fn parse(text: &str) -> Result<Self, crate::Error> {
        if text.is_empty()
            || text.starts_with(' ')
            || !text
                .bytes()
                .all(|b| (b' '..=b'~').contains(&b) && b != b']')
        {
            return Err(crate::Error::Syntax("response code"));
        }
        let (name, args) = text.split_once(' ').unwrap_or((text, ""));
        Ok(match name.to_ascii_uppercase().as_str() {
            "ALERT" if args.is_empty() => Self::Alert,
            "AUTHENTICATIONFAILED" if args.is_empty() => Self::AuthenticationFailed,
            "AUTHORIZATIONFAILED" if args.is_empty() => Self::AuthorizationFailed,
            "UNAVAILABLE" if args.is_empty() => Self::Unavailable,
            "EXPIRED" if args.is_empty() => Self::Expired,
            "PRIVACYREQUIRED" if args.is_empty() => Self::PrivacyRequired,
            "CONTACTADMIN" if args.is_empty() => Self::ContactAdmin,
            "LIMIT" if args.is_empty() => Self::Limit,
            "SERVERBUG" if args.is_empty() => Self::ServerBug,
            "TOOBIG" if args.is_empty() => Self::TooBig,
            "CAPABILITY" => Self::Capability(args.split_whitespace().map(str::to_owned).collect()),
            _ => Self::Other(text.to_owned()),
        })
    }

    /// The code as written between the brackets.
    pub fn to_text(&self) -> String {
        match self {
            Self::Alert => "ALERT".into(),
            Self::AuthenticationFailed => "AUTHENTICATIONFAILED".into(),
            Self::AuthorizationFailed => "AUTHORIZATIONFAILED".into(),
            Self::Unavailable => "UNAVAILABLE".into(),
            Self::Expired => "EXPIRED".into(),
            Self::PrivacyRequired => "PRIVACYREQUIRED".into(),
            Self::ContactAdmin => "CONTACTADMIN".into(),
            Self::Limit => "LIMIT".into(),
            Self::ServerBug => "SERVERBUG".into(),
            Self::TooBig => "TOOBIG".into(),
            Self::Capability(c) => {
                let mut s = String::from("CAPABILITY");
                for cap in c {
                    s.push(' ');
                    s.push_str(cap);
                }
                s
            }
            Self::Other(s) => s.clone(),
        }
    }

    /// The imap-codec form, for encoding. `None` when the code cannot be
    /// encoded (an empty capability list, or text [`Self::parse`] would
    /// refuse).
    pub(crate) fn to_codec(&self) -> Option<Code<'static>> {
        match self {
            Self::Alert => Some(Code::Alert),
            Self::TooBig => Some(Code::TooBig),
            Self::Capability(caps) => crate::capability::to_codec(caps).map(Code::Capability),
            other => {
                let text = other.to_text();
                Self::parse(&text).ok()?;
                Some(Code::Other(CodeOther::unvalidated(text.into_bytes())))
            }
        }
    }

    /// Reads imap-codec's form.
    pub(crate) fn from_codec(code: &Code<'_>) -> Option<Self> {
        match code {
            Code::Alert => Some(Self::Alert),
            Code::TooBig => Some(Self::TooBig),
            Code::Capability(caps) => Some(Self::Capability(
                caps.as_ref().iter().map(ToString::to_string).collect(),
            )),
            Code::Other(other) => Self::parse(&String::from_utf8_lossy(other.inner())).ok(),
            _ => None,
        }
    }
}

impl fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]", self.to_text())
    }
}

/// The status of a tagged or untagged response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StatusKind {
    /// `OK`.
    Ok,
    /// `NO`: the command failed.
    No,
    /// `BAD`: the command was not understood.
    Bad,
    /// `BYE`: the server closes the connection.
    Bye,
}

/// A status response from the store: kind, optional code, text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// OK, NO, BAD or BYE.
    pub kind: StatusKind,
    /// The response code, if any.
    pub code: Option<ResponseCode>,
    /// The human-readable text.
    pub text: String,
}
