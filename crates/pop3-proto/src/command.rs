//! POP3 commands of the AUTHORIZATION state, parsed and encoded.
//!
//! ```text
//! command  = keyword *(SP argument) CRLF     ; RFC 1939 §3, RFC 2449 §3
//! keyword  = 3*4VCHAR                        ; case-insensitive
//! USER name | PASS string | APOP name digest | QUIT | CAPA | STLS | NOOP
//! AUTH mechanism [SP initial-response]       ; RFC 5034 §4
//! XCLIENT attribute=value *(SP attribute=value)   ; Dovecot
//! ```
//!
//! PASS takes the rest of the line as its argument (RFC 1939 §7: the
//! password may contain spaces).

use std::fmt;

use portcullis_sasl::Password;

use crate::Error;

/// One client command.
#[derive(Clone)]
#[non_exhaustive]
pub enum Command {
    /// `USER name`.
    User(String),
    /// `PASS string`.
    Pass(Password),
    /// `APOP name digest`: the digest is 32 lowercase hex digits.
    Apop {
        /// The mailbox name.
        user: String,
        /// MD5 of timestamp and secret, lowercase hex.
        digest: String,
    },
    /// `AUTH [mechanism [initial-response]]`; without a mechanism the
    /// client asks for the list (RFC 1734 form, answered like CAPA's SASL).
    Auth {
        /// The mechanism name, upper-cased.
        mechanism: Option<String>,
        /// The initial response argument as sent (base64 or `=`).
        initial_response: Option<String>,
    },
    /// `STLS` (RFC 2595 §4).
    Stls,
    /// `CAPA` (RFC 2449 §5).
    Capa,
    /// `QUIT`.
    Quit,
    /// `NOOP` (a TRANSACTION command).
    Noop,
    /// `XCLIENT attr=value ...` (sent to the message store; values in xtext).
    Xclient(Vec<(String, String)>),
    /// Any other keyword (upper-cased), arguments dropped.
    Other(String),
}

impl PartialEq for Command {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::User(a), Self::User(b)) | (Self::Other(a), Self::Other(b)) => a == b,
            (Self::Pass(a), Self::Pass(b)) => a.ct_eq(b),
            (
                Self::Apop { user, digest },
                Self::Apop {
                    user: u2,
                    digest: d2,
                },
            ) => user == u2 && digest == d2,
            (
                Self::Auth {
                    mechanism,
                    initial_response,
                },
                Self::Auth {
                    mechanism: m2,
                    initial_response: i2,
                },
            ) => mechanism == m2 && initial_response == i2,
            (Self::Xclient(a), Self::Xclient(b)) => a == b,
            (Self::Stls, Self::Stls)
            | (Self::Capa, Self::Capa)
            | (Self::Quit, Self::Quit)
            | (Self::Noop, Self::Noop) => true,
            _ => false,
        }
    }
}

impl Eq for Command {}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(u) => f.debug_tuple("User").field(u).finish(),
            Self::Pass(_) => f.write_str("Pass(<redacted>)"),
            Self::Apop { user, .. } => f
                .debug_struct("Apop")
                .field("user", user)
                .finish_non_exhaustive(),
            Self::Auth {
                mechanism,
                initial_response,
            } => f
                .debug_struct("Auth")
                .field("mechanism", mechanism)
                .field(
                    "initial_response",
                    &initial_response.as_ref().map(|_| "<redacted>"),
                )
                .finish(),
            Self::Stls => f.write_str("Stls"),
            Self::Capa => f.write_str("Capa"),
            Self::Quit => f.write_str("Quit"),
            Self::Noop => f.write_str("Noop"),
            Self::Xclient(a) => f.debug_tuple("Xclient").field(a).finish(),
            Self::Other(k) => f.debug_tuple("Other").field(k).finish(),
        }
    }
}

fn is_arg(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() || b >= 0x80)
}

impl Command {
    /// Parses one command line (with or without CRLF).
    ///
    /// # Errors
    ///
    /// [`Error::Syntax`] for a missing or malformed argument, a keyword
    /// that is not 3 or 4 printable characters, or text that is not UTF-8
    /// (passwords and names are compared as UTF-8 by the SASL layer).
    pub fn parse(line: &[u8]) -> Result<Self, Error> {
        let line = crate::line::strip_crlf(line);
        let line = std::str::from_utf8(line).map_err(|_| Error::Syntax("not UTF-8"))?;
        let (keyword, rest) = match line.split_once(' ') {
            Some((k, r)) => (k, Some(r)),
            None => (line, None),
        };
        if !(3..=7).contains(&keyword.len()) || !keyword.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(Error::Syntax("keyword"));
        }
        let keyword = keyword.to_ascii_uppercase();
        let mut args = rest.unwrap_or("").split(' ');
        let one = |args: &mut std::str::Split<'_, char>| -> Result<String, Error> {
            match (args.next(), args.next()) {
                (Some(a), None) if is_arg(a) => Ok(a.to_owned()),
                _ => Err(Error::Syntax("expected one argument")),
            }
        };
        let none = |rest: Option<&str>| match rest {
            None => Ok(()),
            Some(_) => Err(Error::Syntax("no arguments expected")),
        };
        Ok(match keyword.as_str() {
            "USER" => Self::User(one(&mut args)?),
            "PASS" => match rest {
                Some(p) if !p.is_empty() => Self::Pass(Password::new(p)),
                _ => return Err(Error::Syntax("PASS needs an argument")),
            },
            "APOP" => {
                let (Some(user), Some(digest), None) = (args.next(), args.next(), args.next())
                else {
                    return Err(Error::Syntax("APOP name digest"));
                };
                if !is_arg(user)
                    || digest.len() != 32
                    || !digest.bytes().all(|b| b.is_ascii_hexdigit())
                {
                    return Err(Error::Syntax("APOP name digest"));
                }
                Self::Apop {
                    user: user.to_owned(),
                    digest: digest.to_ascii_lowercase(),
                }
            }
            "AUTH" => match rest {
                None => Self::Auth {
                    mechanism: None,
                    initial_response: None,
                },
                Some(_) => {
                    let mech = args.next().filter(|m| is_arg(m));
                    let ir = args.next();
                    if mech.is_none() || args.next().is_some() || ir.is_some_and(|i| !is_arg(i)) {
                        return Err(Error::Syntax("AUTH mechanism [initial-response]"));
                    }
                    Self::Auth {
                        mechanism: mech.map(str::to_ascii_uppercase),
                        initial_response: ir.map(str::to_owned),
                    }
                }
            },
            "STLS" => none(rest).map(|()| Self::Stls)?,
            "CAPA" => none(rest).map(|()| Self::Capa)?,
            "QUIT" => none(rest).map(|()| Self::Quit)?,
            "NOOP" => none(rest).map(|()| Self::Noop)?,
            "XCLIENT" => {
                let mut attrs = Vec::new();
                for a in args {
                    let (k, v) = a
                        .split_once('=')
                        .filter(|(k, v)| is_arg(k) && (v.is_empty() || is_arg(v)))
                        .ok_or(Error::Syntax("XCLIENT attribute=value"))?;
                    attrs.push((k.to_ascii_uppercase(), xtext_decode(v)?));
                }
                if attrs.is_empty() {
                    return Err(Error::Syntax("XCLIENT attribute=value"));
                }
                Self::Xclient(attrs)
            }
            _ if keyword.len() <= 4 => Self::Other(keyword),
            _ => return Err(Error::Syntax("keyword")),
        })
    }

    /// Encodes the command with CRLF. The password of PASS is in the
    /// result: send it, then drop the buffer (it is wiped).
    ///
    /// # Errors
    ///
    /// [`Error::ApiMisuse`] for arguments that would not parse back (empty,
    /// with spaces or control characters; a password with CR or LF).
    pub fn encode(&self) -> Result<zeroize::Zeroizing<Vec<u8>>, Error> {
        let check = |s: &str| {
            if is_arg(s) {
                Ok(())
            } else {
                Err(Error::ApiMisuse(
                    "argument empty or with spaces or controls",
                ))
            }
        };
        let text = match self {
            Self::User(u) => {
                check(u)?;
                format!("USER {u}")
            }
            Self::Pass(p) => {
                let p = p.expose();
                if p.is_empty() || p.contains(['\r', '\n']) {
                    return Err(Error::ApiMisuse("password empty or with CR/LF"));
                }
                format!("PASS {p}")
            }
            Self::Apop { user, digest } => {
                check(user)?;
                check(digest)?;
                format!("APOP {user} {digest}")
            }
            Self::Auth {
                mechanism: None, ..
            } => "AUTH".to_owned(),
            Self::Auth {
                mechanism: Some(m),
                initial_response,
            } => {
                check(m)?;
                match initial_response {
                    Some(ir) => {
                        check(ir)?;
                        format!("AUTH {m} {ir}")
                    }
                    None => format!("AUTH {m}"),
                }
            }
            Self::Stls => "STLS".to_owned(),
            Self::Capa => "CAPA".to_owned(),
            Self::Quit => "QUIT".to_owned(),
            Self::Noop => "NOOP".to_owned(),
            Self::Xclient(attrs) => {
                let mut s = String::from("XCLIENT");
                if attrs.is_empty() {
                    return Err(Error::ApiMisuse("XCLIENT without attributes"));
                }
                for (k, v) in attrs {
                    check(k)?;
                    if k.contains('=') {
                        return Err(Error::ApiMisuse("XCLIENT attribute name with ="));
                    }
                    s.push(' ');
                    s.push_str(k);
                    s.push('=');
                    s.push_str(&xtext_encode(v));
                }
                s
            }
            Self::Other(k) => {
                check(k)?;
                k.clone()
            }
        };
        let mut out = zeroize::Zeroizing::new(text.into_bytes());
        out.extend_from_slice(b"\r\n");
        Ok(out)
    }
}

/// Encodes a value as xtext (RFC 3461 §4): `+XX` for `+`, `=`, and octets
/// outside `!`..`~`.
pub fn xtext_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

/// Decodes xtext (RFC 3461 §4).
///
/// # Errors
///
/// [`Error::Syntax`] for a bad `+XX` escape or a result that is not UTF-8.
pub fn xtext_decode(value: &str) -> Result<String, Error> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'+' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(Error::Syntax("xtext escape"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| Error::Syntax("xtext not UTF-8"))
}
