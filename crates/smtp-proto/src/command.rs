//! Client commands (RFC 5321 §4.1 and the extensions the front end offers).
//!
//! `MAIL`, `RCPT` and `BDAT` lines are parsed by Stalwart's `smtp-proto`
//! (`Request::parse`); the verb, `EHLO`/`HELO`, `AUTH` and the commands
//! without arguments are parsed here, and every value `smtp-proto` returns
//! is checked again before it becomes a [`Command`] (see the README for
//! why). A line that is not a valid command becomes the [`Reply`] to send.
//!
//! ```text
//! mail = "MAIL FROM:" Reverse-path [SP Mail-parameters] CRLF
//! rcpt = "RCPT TO:" ( "<Postmaster@" Domain ">" / "<Postmaster>" /
//!        Forward-path ) [SP Rcpt-parameters] CRLF
//! bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ] CR LF   ; RFC 3030
//! auth = "AUTH" SP sasl-mech [SP initial-response] CRLF    ; RFC 4954
//! ```

use std::fmt::Write as _;

use portcullis_popbeforesmtp::relay::xclient::xtext_encode;
use smtp_proto::Request;
use zeroize::Zeroizing;

use crate::domain;
use crate::reply::{self, Reply};

/// The longest address (RFC 5321 §4.5.3.1.3: a path of 256 octets).
pub const MAX_ADDRESS: usize = 254;

/// `BODY=` (RFC 6152 8BITMIME; 7BIT from RFC 1652).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Body {
    /// `BODY=7BIT`.
    SevenBit,
    /// `BODY=8BITMIME`.
    EightBitMime,
}

/// `RET=` (RFC 3461 DSN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ret {
    /// `RET=FULL`.
    Full,
    /// `RET=HDRS`.
    Headers,
}

/// `NOTIFY=` (RFC 3461 DSN).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Notify {
    /// `NEVER` (exclusive of the others).
    pub never: bool,
    /// `SUCCESS`.
    pub success: bool,
    /// `FAILURE`.
    pub failure: bool,
    /// `DELAY`.
    pub delay: bool,
}

/// A checked `MAIL FROM`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MailFrom {
    /// The reverse-path without angle brackets; empty for the null sender
    /// `<>`.
    pub address: String,
    /// `SIZE=` (RFC 1870), the client's estimate.
    pub size: Option<u64>,
    /// `BODY=`.
    pub body: Option<Body>,
    /// `SMTPUTF8` (RFC 6531).
    pub smtputf8: bool,
    /// `RET=`.
    pub ret: Option<Ret>,
    /// `ENVID=`, decoded from xtext.
    pub envid: Option<String>,
}

impl MailFrom {
    /// The command line toward the relay, without CRLF, built from the
    /// checked values only (nothing the client wrote is copied verbatim).
    #[must_use]
    pub fn to_line(&self) -> String {
        let mut s = format!("MAIL FROM:<{}>", self.address);
        if let Some(n) = self.size {
            let _ = write!(s, " SIZE={n}");
        }
        match self.body {
            Some(Body::SevenBit) => s.push_str(" BODY=7BIT"),
            Some(Body::EightBitMime) => s.push_str(" BODY=8BITMIME"),
            None => {}
        }
        if self.smtputf8 {
            s.push_str(" SMTPUTF8");
        }
        match self.ret {
            Some(Ret::Full) => s.push_str(" RET=FULL"),
            Some(Ret::Headers) => s.push_str(" RET=HDRS"),
            None => {}
        }
        if let Some(e) = &self.envid {
            let _ = write!(s, " ENVID={}", xtext_encode(e.as_bytes()));
        }
        s
    }
}

/// A checked `RCPT TO`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RcptTo {
    /// The forward-path without angle brackets.
    pub address: String,
    /// `NOTIFY=`.
    pub notify: Option<Notify>,
    /// `ORCPT=rfc822;`, decoded from xtext.
    pub orcpt: Option<String>,
}

impl RcptTo {
    /// The command line toward the relay, without CRLF, built from the
    /// checked values only.
    #[must_use]
    pub fn to_line(&self) -> String {
        let mut s = format!("RCPT TO:<{}>", self.address);
        if let Some(n) = self.notify {
            if n.never {
                s.push_str(" NOTIFY=NEVER");
            } else {
                let words: Vec<&str> = [
                    (n.success, "SUCCESS"),
                    (n.failure, "FAILURE"),
                    (n.delay, "DELAY"),
                ]
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, w)| *w)
                .collect();
                if !words.is_empty() {
                    let _ = write!(s, " NOTIFY={}", words.join(","));
                }
            }
        }
        if let Some(o) = &self.orcpt {
            let _ = write!(s, " ORCPT=rfc822;{}", xtext_encode(o.as_bytes()));
        }
        s
    }
}

/// One client command.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// `EHLO domain` (checked: a domain or an address literal).
    Ehlo(String),
    /// `HELO domain`.
    Helo(String),
    /// `MAIL FROM`.
    Mail(MailFrom),
    /// `RCPT TO`.
    Rcpt(RcptTo),
    /// `DATA`.
    Data,
    /// `BDAT size [LAST]` (RFC 3030).
    Bdat {
        /// The chunk size in octets.
        size: u64,
        /// `LAST`.
        last: bool,
    },
    /// `AUTH mechanism [initial-response]` (RFC 4954); the response is as
    /// sent (base64 or `=`), for `portcullis_sasl::framing`.
    Auth {
        /// The mechanism name as sent (the sasl crate checks it).
        mechanism: Vec<u8>,
        /// The initial response, in a buffer wiped when dropped.
        initial_response: Option<Zeroizing<Vec<u8>>>,
    },
    /// `STARTTLS` (RFC 3207).
    StartTls,
    /// `RSET`.
    Rset,
    /// `NOOP [string]`.
    Noop,
    /// `QUIT`.
    Quit,
    /// `VRFY string`.
    Vrfy,
    /// `EXPN string`.
    Expn,
    /// `HELP [string]`.
    Help,
    /// `XCLIENT`, `XFORWARD` or `PROXY`: a client claiming another
    /// client's identity. Always refused.
    Impersonation,
}

fn syntax(expected: &str) -> Reply {
    reply::line(501, &format!("5.5.2 Syntax error, expected: {expected}"))
}

fn no_args(verb: &str, rest: &[u8]) -> Result<(), Reply> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(reply::line(
            501,
            &format!("5.5.4 Syntax error, {verb} takes no parameters"),
        ))
    }
}

/// Whether an address is acceptable: no controls, spaces, brackets, quotes
/// or backslashes (quoted local parts are not relayed), at most
/// [`MAX_ADDRESS`] octets, non-ASCII only with `SMTPUTF8`.
fn check_address(a: &str, utf8: bool, sender: bool) -> Result<(), Reply> {
    let bad = if sender {
        reply::line(553, "5.1.7 Bad sender address syntax")
    } else {
        reply::line(553, "5.1.3 Bad recipient address syntax")
    };
    if a.len() > MAX_ADDRESS
        || a.chars()
            .any(|c| c.is_control() || matches!(c, ' ' | '<' | '>' | '"' | '\\'))
    {
        return Err(bad);
    }
    if !a.is_ascii() && !utf8 {
        return Err(reply::line(
            553,
            "5.6.7 Non-ASCII address requires SMTPUTF8",
        ));
    }
    if let Some((local, dom)) = a.rsplit_once('@') {
        // The domain part: a domain, an address literal, or (SMTPUTF8) a
        // U-label domain, which is checked only for its structure.
        let dom_ok = domain::is_valid(dom)
            || (utf8 && !dom.is_ascii() && dom.split('.').all(|l| !l.is_empty()));
        if local.is_empty() || !dom_ok {
            return Err(bad);
        }
    } else if !a.is_empty() {
        return Err(bad);
    }
    Ok(())
}

fn map_proto_error(e: &smtp_proto::Error, sender: bool) -> Reply {
    use smtp_proto::Error as E;
    match e {
        E::SyntaxError { syntax: s } => syntax(s),
        E::InvalidSenderAddress => reply::line(553, "5.1.7 Bad sender address syntax"),
        E::InvalidRecipientAddress => reply::line(553, "5.1.3 Bad recipient address syntax"),
        E::InvalidParameter { param } => {
            reply::line(501, &format!("5.5.4 Invalid {param} parameter"))
        }
        E::UnsupportedParameter { param } => {
            let p: String = param
                .chars()
                .filter(char::is_ascii_graphic)
                .take(32)
                .collect();
            reply::line(555, &format!("5.5.4 Unsupported parameter {p}"))
        }
        _ if sender => syntax("MAIL FROM:<reverse-path> [parameters]"),
        _ => syntax("RCPT TO:<forward-path> [parameters]"),
    }
}

fn unsupported(param: &str) -> Reply {
    reply::line(555, &format!("5.5.4 Unsupported parameter {param}"))
}

fn mail_from(f: smtp_proto::MailFrom<String>) -> Result<MailFrom, Reply> {
    use smtp_proto as sp;
    let known = sp::MAIL_BODY_7BIT
        | sp::MAIL_BODY_8BITMIME
        | sp::MAIL_SMTPUTF8
        | sp::MAIL_RET_FULL
        | sp::MAIL_RET_HDRS;
    if f.flags & sp::MAIL_BODY_BINARYMIME != 0 {
        return Err(unsupported("BODY=BINARYMIME"));
    }
    if f.flags & !known != 0
        || f.trans_id.is_some()
        || f.by != 0
        || f.solicit.is_some()
        || f.mtrk.is_some()
        || f.hold_for != 0
        || f.hold_until != 0
        || f.mt_priority != 0
    {
        return Err(unsupported("(extension not offered)"));
    }
    // `AUTH=` (RFC 4954 §5) is accepted and dropped: the relay learns the
    // user from XCLIENT LOGIN, never from the client.
    let smtputf8 = f.flags & sp::MAIL_SMTPUTF8 != 0;
    check_address(&f.address, smtputf8, true)?;
    let envid = match f.env_id {
        Some(e) if e.is_empty() || e.len() > 100 || !e.chars().all(|c| c.is_ascii_graphic()) => {
            return Err(reply::line(501, "5.5.4 Invalid ENVID parameter"));
        }
        e => e,
    };
    Ok(MailFrom {
        address: f.address,
        size: (f.size > 0).then(|| u64::try_from(f.size).unwrap_or(u64::MAX)),
        body: if f.flags & sp::MAIL_BODY_8BITMIME != 0 {
            Some(Body::EightBitMime)
        } else if f.flags & sp::MAIL_BODY_7BIT != 0 {
            Some(Body::SevenBit)
        } else {
            None
        },
        smtputf8,
        ret: if f.flags & sp::MAIL_RET_FULL != 0 {
            Some(Ret::Full)
        } else if f.flags & sp::MAIL_RET_HDRS != 0 {
            Some(Ret::Headers)
        } else {
            None
        },
        envid,
    })
}

fn rcpt_to(t: smtp_proto::RcptTo<String>) -> Result<RcptTo, Reply> {
    use smtp_proto as sp;
    let notify_bits = sp::RCPT_NOTIFY_NEVER
        | sp::RCPT_NOTIFY_SUCCESS
        | sp::RCPT_NOTIFY_FAILURE
        | sp::RCPT_NOTIFY_DELAY;
    if t.flags & !notify_bits != 0 || t.rrvs != 0 {
        return Err(unsupported("(extension not offered)"));
    }
    // Non-ASCII recipients are checked against the transaction's SMTPUTF8
    // by the session; here they only have to be well formed.
    check_address(&t.address, true, false)?;
    if t.address.is_empty() {
        return Err(reply::line(553, "5.1.3 Bad recipient address syntax"));
    }
    let orcpt = match t.orcpt {
        // smtp-proto decodes xtext octets as Latin-1 characters: anything
        // outside printable ASCII would not re-encode to the same octets
        // (RFC 3461 ORCPT addresses are ASCII; RFC 6533 is not offered).
        Some(o) if o.is_empty() || !o.chars().all(|c| c.is_ascii() && !c.is_ascii_control()) => {
            return Err(reply::line(501, "5.5.4 Invalid ORCPT parameter"));
        }
        o => o,
    };
    let notify = (t.flags & notify_bits != 0).then_some(Notify {
        never: t.flags & sp::RCPT_NOTIFY_NEVER != 0,
        success: t.flags & sp::RCPT_NOTIFY_SUCCESS != 0,
        failure: t.flags & sp::RCPT_NOTIFY_FAILURE != 0,
        delay: t.flags & sp::RCPT_NOTIFY_DELAY != 0,
    });
    Ok(RcptTo {
        address: t.address,
        notify,
        orcpt,
    })
}

/// Runs `smtp-proto`'s parser on one line (LF appended: it needs one).
fn stalwart(line: &[u8]) -> Result<Request<String>, smtp_proto::Error> {
    let mut wire = Vec::with_capacity(line.len() + 1);
    wire.extend_from_slice(line);
    wire.push(b'\n');
    Request::parse(&mut wire.iter()).map(Request::into_owned)
}

impl Command {
    /// Parses one command line, without its line ending. The line must not
    /// contain CR or LF (the session refuses such lines before parsing).
    ///
    /// # Errors
    ///
    /// The reply to send for an unknown or malformed command.
    pub fn parse(line: &[u8]) -> Result<Self, Reply> {
        if line.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(reply::line(
                500,
                "5.5.2 Syntax error, control characters in command",
            ));
        }
        let (verb, rest) = match line.iter().position(|&b| b == b' ') {
            Some(sp) => (&line[..sp], &line[sp + 1..]),
            None => (line, &line[line.len()..]),
        };
        let verb = verb.to_ascii_uppercase();
        match verb.as_slice() {
            b"EHLO" | b"HELO" => {
                let arg = std::str::from_utf8(rest).unwrap_or("");
                // Anything after the domain is ignored (RFC 5321 allows
                // none, clients send none; some old ones add a comment).
                let dom = arg.split(' ').next().unwrap_or("");
                if !domain::is_valid(dom) {
                    return Err(reply::line(
                        501,
                        "5.5.2 Syntax error, expected: EHLO domain or address literal",
                    ));
                }
                Ok(if verb == b"EHLO" {
                    Self::Ehlo(dom.to_owned())
                } else {
                    Self::Helo(dom.to_owned())
                })
            }
            b"MAIL" => match stalwart(line) {
                Ok(Request::Mail { from }) => mail_from(from).map(Self::Mail),
                Ok(_) => Err(syntax("MAIL FROM:<reverse-path> [parameters]")),
                Err(e) => Err(map_proto_error(&e, true)),
            },
            b"RCPT" => match stalwart(line) {
                Ok(Request::Rcpt { to }) => rcpt_to(to).map(Self::Rcpt),
                Ok(_) => Err(syntax("RCPT TO:<forward-path> [parameters]")),
                Err(e) => Err(map_proto_error(&e, false)),
            },
            b"BDAT" => {
                // smtp-proto reads "BDAT 10 junk" as a non-last chunk: only
                // digits and an optional LAST are accepted here.
                let mut words = rest.split(|&b| b == b' ');
                let size_ok = words.next().is_some_and(|w| {
                    !w.is_empty() && w.len() <= 18 && w.iter().all(u8::is_ascii_digit)
                });
                let tail_ok = match (words.next(), words.next()) {
                    (None, None) => true,
                    (Some(w), None) => w.eq_ignore_ascii_case(b"LAST"),
                    _ => false,
                };
                match stalwart(line) {
                    Ok(Request::Bdat {
                        chunk_size,
                        is_last,
                    }) if size_ok && tail_ok => Ok(Self::Bdat {
                        size: u64::try_from(chunk_size).unwrap_or(u64::MAX),
                        last: is_last,
                    }),
                    _ => Err(syntax("BDAT chunk-size [LAST]")),
                }
            }
            b"AUTH" => {
                let mut words = rest.split(|&b| b == b' ');
                let mechanism = words.next().filter(|m| !m.is_empty());
                let initial = words.next();
                match (mechanism, initial, words.next()) {
                    (Some(m), ir, None) if ir.is_none_or(|r| !r.is_empty()) => Ok(Self::Auth {
                        mechanism: m.to_vec(),
                        initial_response: ir.map(|r| Zeroizing::new(r.to_vec())),
                    }),
                    _ => Err(syntax("AUTH mechanism [initial-response]")),
                }
            }
            b"DATA" => no_args("DATA", rest).map(|()| Self::Data),
            b"RSET" => no_args("RSET", rest).map(|()| Self::Rset),
            b"QUIT" => no_args("QUIT", rest).map(|()| Self::Quit),
            b"STARTTLS" => no_args("STARTTLS", rest).map(|()| Self::StartTls),
            b"NOOP" => Ok(Self::Noop),
            b"HELP" => Ok(Self::Help),
            b"VRFY" if !rest.is_empty() => Ok(Self::Vrfy),
            b"VRFY" => Err(syntax("VRFY string")),
            b"EXPN" if !rest.is_empty() => Ok(Self::Expn),
            b"EXPN" => Err(syntax("EXPN string")),
            b"XCLIENT" | b"XFORWARD" | b"PROXY" => Ok(Self::Impersonation),
            _ => Err(reply::line(500, "5.5.2 Command unrecognized")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(line: &str) -> u16 {
        match Command::parse(line.as_bytes()) {
            Ok(_) => 0,
            Err(r) => r.code(),
        }
    }

    #[test]
    fn table() {
        let cases: &[(&str, u16)] = &[
            ("EHLO client.example", 0),
            ("ehlo [192.0.2.1]", 0),
            ("EHLO", 501),
            ("EHLO -x", 501),
            ("HELO a_b", 501),
            ("MAIL FROM:<a@example.org>", 0),
            ("MAIL FROM:<>", 0),
            ("mail from:<a@example.org> SIZE=100 BODY=8BITMIME", 0),
            ("MAIL FROM:<a@example.org> BODY=BINARYMIME", 555),
            ("MAIL FROM:<a@example.org> FOO=bar", 555),
            ("MAIL FROM:<a@example.org> REQUIRETLS", 555),
            ("MAIL FROM:<a@example.org> SIZE=x", 501),
            ("MAIL FROM:a@example.org", 501),
            ("MAIL FROM:<a@-x>", 553),
            ("MAIL FROM:<jö@example.org>", 553),
            ("MAIL FROM:<jö@example.org> SMTPUTF8", 0),
            ("RCPT TO:<b@example.org>", 0),
            // smtp-proto reads a path without "@" as empty: refused.
            ("RCPT TO:<Postmaster>", 553),
            ("RCPT TO:<postmaster@example.org>", 0),
            ("MAIL FROM:<\"a b\"@example.org>", 553),
            ("RCPT TO:<>", 553),
            (
                "RCPT TO:<b@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@example.org",
                0,
            ),
            ("RCPT TO:<b@example.org> RRVS=2024-01-01T00:00:00Z", 555),
            (
                "RCPT TO:<b@example.org> ORCPT=rfc822;+C3+B6@example.org",
                501,
            ),
            (
                "RCPT TO:<b@example.org> ORCPT=rfc822;a+0Ab@example.org",
                501,
            ),
            ("RCPT TO:<b>", 553),
            ("BDAT 100", 0),
            ("BDAT 0 LAST", 0),
            ("BDAT 10 junk", 501),
            ("BDAT x", 501),
            ("BDAT 10 LAST more", 501),
            ("AUTH PLAIN", 0),
            ("AUTH PLAIN =", 0),
            ("AUTH PLAIN AGFsaWNlAHNlY3JldA==", 0),
            ("AUTH", 501),
            ("AUTH PLAIN a b", 501),
            ("DATA", 0),
            ("DATA x", 501),
            ("STARTTLS", 0),
            ("STARTTLS now", 501),
            ("NOOP whatever", 0),
            ("VRFY x", 0),
            ("VRFY", 501),
            ("XCLIENT ADDR=1.2.3.4", 0),
            ("PROXY TCP4 1.2.3.4 5.6.7.8 1 2", 0),
            ("TURN", 500),
            ("", 500),
        ];
        for (line, want) in cases {
            assert_eq!(code(line), *want, "{line:?}");
        }
    }

    #[test]
    fn parameters_survive_and_are_reencoded() {
        let Ok(Command::Mail(m)) = Command::parse(
            b"MAIL FROM:<a@example.org> SIZE=1000 BODY=8BITMIME RET=HDRS ENVID=QQ314159 AUTH=<>",
        ) else {
            panic!("MAIL not parsed")
        };
        assert_eq!(m.size, Some(1000));
        assert_eq!(
            m.to_line(),
            "MAIL FROM:<a@example.org> SIZE=1000 BODY=8BITMIME RET=HDRS ENVID=QQ314159"
        );
        let Ok(Command::Rcpt(r)) = Command::parse(
            b"RCPT TO:<b@example.org> NOTIFY=FAILURE,DELAY ORCPT=rfc822;b+2Bx@example.org",
        ) else {
            panic!("RCPT not parsed")
        };
        assert_eq!(r.orcpt.as_deref(), Some("b+x@example.org"));
        assert_eq!(
            r.to_line(),
            "RCPT TO:<b@example.org> NOTIFY=FAILURE,DELAY ORCPT=rfc822;b+2Bx@example.org"
        );
    }
}
