//! SASL framing for IMAP AUTHENTICATE (RFC 9051/3501, SASL-IR RFC 4959),
//! POP3 AUTH (RFC 5034) and SMTP AUTH (RFC 4954), and the one mapping from
//! outcomes to replies.
//!
//! ```text
//! IMAP:  C: a1 AUTHENTICATE PLAIN [initial-response]     S: + <base64>
//! POP3:  C: AUTH PLAIN [initial-response]                S: + <base64>
//! SMTP:  C: AUTH PLAIN [initial-response]                S: 334 <base64>
//!        initial-response = base64 / "="                 ; "=" is empty
//!        client line      = base64 / "*"                 ; "*" aborts
//! ```
//!
//! [`AuthExchange`] drives a [`ServerSession`] from protocol lines: create a
//! fresh one for every AUTH command, feed it each client line, answer its
//! requests, and write what it returns. The mechanism name the client sent is
//! never echoed back.

use crate::backend::{Answer, Request};
use zeroize::Zeroizing;

use crate::util::{b64_decode, b64_decode_secret, b64_encode};
use crate::{Authenticated, Error, Mechanism, Policy, ServerContext, ServerSession, Step};

/// The longest client line accepted during an exchange, without its line
/// ending: the base64 form of [`crate::MAX_CLIENT_MESSAGE`] bytes.
pub const MAX_LINE: usize = crate::MAX_CLIENT_MESSAGE.div_ceil(3) * 4;

/// The protocol whose framing and replies to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// IMAP `AUTHENTICATE`.
    Imap,
    /// POP3 `AUTH` (and `APOP`).
    Pop3,
    /// SMTP `AUTH`.
    Smtp,
}

/// One decoded client line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientLine {
    /// A response (possibly empty), in a buffer wiped when dropped: it may
    /// hold a password.
    Response(Zeroizing<Vec<u8>>),
    /// `*`: the client cancels the exchange.
    Abort,
}

fn strip_line_ending(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Decodes a client line: strict base64 (standard alphabet, padding, no
/// spaces), or `*`. One trailing CRLF or LF is ignored.
///
/// # Errors
///
/// [`Error::TooLong`] beyond [`MAX_LINE`], [`Error::Base64`] otherwise.
pub fn decode_line(line: &[u8]) -> Result<ClientLine, Error> {
    let line = strip_line_ending(line);
    if line.len() > MAX_LINE {
        return Err(Error::TooLong);
    }
    if line == b"*" {
        return Ok(ClientLine::Abort);
    }
    b64_decode_secret(line).map(ClientLine::Response)
}

/// Decodes the optional initial-response argument of an AUTH command:
/// absent is `None`, `=` is an empty response, otherwise strict base64
/// (in a buffer wiped when dropped: it may hold a password).
///
/// # Errors
///
/// [`Error::TooLong`] or [`Error::Base64`].
pub fn decode_initial_response(
    argument: Option<&[u8]>,
) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
    match argument {
        None => Ok(None),
        Some(a) if a.len() > MAX_LINE => Err(Error::TooLong),
        Some(b"=") => Ok(Some(Zeroizing::new(Vec::new()))),
        // An empty argument is not "=": RFC 4959 and RFC 4954 require "=".
        Some([]) => Err(Error::Base64),
        Some(a) => b64_decode_secret(a).map(Some),
    }
}

/// Encodes an initial response for an AUTH command (client side): `=` when
/// empty.
pub fn encode_initial_response(data: &[u8]) -> String {
    if data.is_empty() {
        "=".to_owned()
    } else {
        b64_encode(data)
    }
}

/// Encodes a client line (client side): base64, empty for an empty
/// response, with CRLF.
pub fn encode_response(data: &[u8]) -> Vec<u8> {
    let mut out = b64_encode(data).into_bytes();
    out.extend_from_slice(b"\r\n");
    out
}

/// Decodes a server challenge line (client side): `+ <base64>` for IMAP and
/// POP3, `334 <base64>` for SMTP.
///
/// # Errors
///
/// [`Error::Base64`] when the line is not a challenge or does not decode.
pub fn decode_challenge(protocol: Protocol, line: &[u8]) -> Result<Vec<u8>, Error> {
    let line = strip_line_ending(line);
    let rest = match protocol {
        Protocol::Imap | Protocol::Pop3 => line.strip_prefix(b"+"),
        Protocol::Smtp => line.strip_prefix(b"334"),
    }
    .ok_or(Error::Base64)?;
    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
    if rest.len() > MAX_LINE {
        return Err(Error::TooLong);
    }
    b64_decode(rest)
}

/// Encodes a server challenge with CRLF: `+ <base64>` (IMAP, POP3) or
/// `334 <base64>` (SMTP).
pub fn encode_challenge(protocol: Protocol, data: &[u8]) -> Vec<u8> {
    let prefix = match protocol {
        Protocol::Imap | Protocol::Pop3 => "+ ",
        Protocol::Smtp => "334 ",
    };
    format!("{prefix}{}\r\n", b64_encode(data)).into_bytes()
}

/// Why an exchange failed, as far as the reply is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// Wrong credentials, unknown user, or a failed check (wrong proof,
    /// nonce or channel binding).
    BadCredentials,
    /// The user may not act as the requested authzid.
    AuthorizationFailed,
    /// The directory is temporarily unavailable (or an internal error).
    Unavailable,
    /// The client sent `*`.
    Aborted,
    /// Undecodable or malformed client data.
    Malformed,
    /// A line or message over the size bound.
    TooLong,
    /// The mechanism needs TLS.
    EncryptionRequired,
    /// Unknown, unimplemented or disabled mechanism.
    MechanismUnavailable,
    /// AUTH on a connection that has already authenticated (RFC 4954 §4:
    /// `503`; RFC 9051: AUTHENTICATE is only valid before authentication).
    /// The protocol core sends it without starting an exchange.
    AlreadyAuthenticated,
}

impl From<&Error> for Failure {
    fn from(e: &Error) -> Self {
        match e {
            Error::BadCredentials
            | Error::Protocol { .. }
            | Error::ChannelBinding { .. }
            | Error::Saslprep => Self::BadCredentials,
            Error::AuthorizationFailed => Self::AuthorizationFailed,
            Error::Unavailable
            | Error::Random
            | Error::ApiMisuse(_)
            | Error::ScramSecret(_)
            | Error::Policy(_)
            | Error::ServerAuthentication => Self::Unavailable,
            Error::Aborted => Self::Aborted,
            Error::Malformed { .. } | Error::Base64 => Self::Malformed,
            Error::TooLong => Self::TooLong,
            Error::EncryptionRequired => Self::EncryptionRequired,
            Error::MechanismUnavailable => Self::MechanismUnavailable,
        }
    }
}

/// An IMAP tag safe to echo (no spaces or control characters), else `*`.
fn safe_tag(tag: Option<&str>) -> &str {
    match tag {
        Some(t)
            if !t.is_empty()
                && t.len() <= 64
                && t.bytes().all(|b| b.is_ascii_graphic() && b != b'+') =>
        {
            t
        }
        _ => "*",
    }
}

/// The reply for a failed exchange, with CRLF. `tag` is the IMAP tag
/// (ignored by POP3 and SMTP).
///
/// | failure | IMAP | POP3 | SMTP |
/// |---|---|---|---|
/// | bad credentials | `NO [AUTHENTICATIONFAILED]` | `-ERR [AUTH]` | `535 5.7.8` |
/// | authorization | `NO [AUTHORIZATIONFAILED]` | `-ERR [AUTH]` | `535 5.7.8` |
/// | unavailable | `NO [UNAVAILABLE]` | `-ERR [SYS/TEMP]` | `454 4.7.0` |
/// | aborted | `BAD` | `-ERR` | `501 5.0.0` |
/// | malformed | `BAD` | `-ERR` | `501 5.5.2` |
/// | too long | `BAD` | `-ERR` | `500 5.5.6` |
/// | encryption required | `NO [PRIVACYREQUIRED]` | `-ERR [AUTH]` | `538 5.7.11` |
/// | mechanism unavailable | `NO` | `-ERR` | `504 5.5.4` |
/// | already authenticated | `BAD` | `-ERR` | `503 5.5.1` |
pub fn failure_reply(protocol: Protocol, tag: Option<&str>, failure: Failure) -> Vec<u8> {
    let text = match protocol {
        Protocol::Imap => {
            let tag = safe_tag(tag);
            let rest = match failure {
                Failure::BadCredentials => "NO [AUTHENTICATIONFAILED] Authentication failed",
                Failure::AuthorizationFailed => "NO [AUTHORIZATIONFAILED] Authorization failed",
                Failure::Unavailable => "NO [UNAVAILABLE] Authentication temporarily unavailable",
                Failure::Aborted => "BAD Authentication aborted",
                Failure::Malformed => "BAD Invalid authentication data",
                Failure::TooLong => "BAD Authentication line too long",
                Failure::EncryptionRequired => {
                    "NO [PRIVACYREQUIRED] Encryption required for this mechanism"
                }
                Failure::MechanismUnavailable => "NO Unsupported authentication mechanism",
                Failure::AlreadyAuthenticated => "BAD Already authenticated",
            };
            format!("{tag} {rest}")
        }
        Protocol::Pop3 => match failure {
            Failure::BadCredentials => "-ERR [AUTH] Authentication failed",
            Failure::AuthorizationFailed => "-ERR [AUTH] Authorization failed",
            Failure::Unavailable => "-ERR [SYS/TEMP] Authentication temporarily unavailable",
            Failure::Aborted => "-ERR Authentication aborted",
            Failure::Malformed => "-ERR Invalid authentication data",
            Failure::TooLong => "-ERR Authentication line too long",
            Failure::EncryptionRequired => "-ERR [AUTH] Encryption required for this mechanism",
            Failure::MechanismUnavailable => "-ERR Unsupported authentication mechanism",
            Failure::AlreadyAuthenticated => "-ERR Already authenticated",
        }
        .to_owned(),
        Protocol::Smtp => match failure {
            Failure::BadCredentials | Failure::AuthorizationFailed => {
                "535 5.7.8 Authentication credentials invalid"
            }
            Failure::Unavailable => "454 4.7.0 Temporary authentication failure",
            Failure::Aborted => "501 5.0.0 Authentication aborted",
            Failure::Malformed => "501 5.5.2 Cannot decode response",
            Failure::TooLong => "500 5.5.6 Authentication Exchange line is too long",
            Failure::EncryptionRequired => {
                "538 5.7.11 Encryption required for requested authentication mechanism"
            }
            Failure::MechanismUnavailable => "504 5.5.4 Unrecognized authentication type",
            Failure::AlreadyAuthenticated => "503 5.5.1 Already authenticated",
        }
        .to_owned(),
    };
    let mut out = text.into_bytes();
    out.extend_from_slice(b"\r\n");
    out
}

/// The reply for a successful exchange, with CRLF.
pub fn success_reply(protocol: Protocol, tag: Option<&str>) -> Vec<u8> {
    match protocol {
        Protocol::Imap => {
            format!("{} OK Authentication successful\r\n", safe_tag(tag)).into_bytes()
        }
        Protocol::Pop3 => b"+OK Authentication successful\r\n".to_vec(),
        Protocol::Smtp => b"235 2.7.0 Authentication successful\r\n".to_vec(),
    }
}

/// What the protocol layer must do next.
#[derive(Debug)]
#[must_use]
#[non_exhaustive]
pub enum Event {
    /// Write these bytes (a challenge) and feed the next client line to
    /// [`AuthExchange::line`].
    Send(Vec<u8>),
    /// Look this up and pass the answer to [`AuthExchange::answer`].
    Verify(Request),
    /// Authenticated: write `reply` and move the session to the
    /// authenticated state.
    Success {
        /// The success reply.
        reply: Vec<u8>,
        /// Who logged in.
        auth: Authenticated,
    },
    /// The exchange failed: write `reply`; the session stays
    /// unauthenticated (a new AUTH starts from scratch).
    Failure {
        /// The failure reply.
        reply: Vec<u8>,
        /// The cause, for the log (never sent to the client).
        error: Error,
    },
}

/// One AUTH command, from the mechanism name to the final reply.
#[derive(Debug)]
pub struct AuthExchange {
    protocol: Protocol,
    tag: Option<String>,
    session: Option<ServerSession>,
    mechanism: Option<Mechanism>,
}

impl AuthExchange {
    /// Starts an exchange for `AUTH <mechanism_name> [initial_response]`.
    /// `tag` is the IMAP command tag. The policy is checked here; an
    /// unknown or refused mechanism ends at once, without echoing its name.
    pub fn start(
        protocol: Protocol,
        tag: Option<&str>,
        mechanism_name: &[u8],
        initial_response: Option<&[u8]>,
        policy: &Policy,
        ctx: &ServerContext,
    ) -> (Self, Event) {
        let mut this = Self {
            protocol,
            tag: tag.map(str::to_owned),
            session: None,
            mechanism: None,
        };
        let event = match this.begin(mechanism_name, initial_response, policy, ctx) {
            Ok(step) => this.event(Ok(step)),
            Err(e) => this.event(Err(e)),
        };
        (this, event)
    }

    fn begin(
        &mut self,
        name: &[u8],
        initial: Option<&[u8]>,
        policy: &Policy,
        ctx: &ServerContext,
    ) -> Result<Step, Error> {
        let mechanism = Mechanism::from_name(name)
            .filter(|m| *m != Mechanism::Apop)
            .ok_or(Error::MechanismUnavailable)?;
        self.mechanism = Some(mechanism);
        policy.check(mechanism, ctx)?;
        let initial = decode_initial_response(initial)?;
        let mut session = ServerSession::new(mechanism, &policy.context(ctx))?;
        let step = session.start(initial.as_ref().map(|r| r.as_slice()));
        self.session = Some(session);
        step
    }

    /// Feeds one client line (with or without its CRLF).
    pub fn line(&mut self, line: &[u8]) -> Event {
        let result = match decode_line(line) {
            Ok(ClientLine::Abort) => Err(Error::Aborted),
            Ok(ClientLine::Response(r)) => match &mut self.session {
                Some(s) => s.step(&r),
                None => Err(Error::ApiMisuse("exchange already over")),
            },
            Err(e) => Err(e),
        };
        self.event(result)
    }

    /// Passes the answer to the last [`Event::Verify`].
    pub fn answer(&mut self, answer: Answer) -> Event {
        let result = match &mut self.session {
            Some(s) => s.answer(answer),
            None => Err(Error::ApiMisuse("exchange already over")),
        };
        self.event(result)
    }

    /// The mechanism the client asked for, when it is one this crate
    /// knows (whether or not the policy allowed it); `None` for an
    /// unknown name. A bounded value, fit for a metric label.
    pub fn mechanism(&self) -> Option<Mechanism> {
        self.mechanism
    }

    /// Whether the exchange is over.
    pub fn is_finished(&self) -> bool {
        self.session.is_none()
    }

    fn event(&mut self, result: Result<Step, Error>) -> Event {
        match result {
            Ok(Step::Challenge(c)) => Event::Send(encode_challenge(self.protocol, &c)),
            Ok(Step::Verify(r)) => Event::Verify(r),
            Ok(Step::Done(auth)) => {
                self.session = None;
                Event::Success {
                    reply: success_reply(self.protocol, self.tag.as_deref()),
                    auth,
                }
            }
            Err(error) => {
                self.session = None;
                Event::Failure {
                    reply: failure_reply(self.protocol, self.tag.as_deref(), Failure::from(&error)),
                    error,
                }
            }
        }
    }
}
