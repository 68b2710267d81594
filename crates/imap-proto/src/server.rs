//! The server side: the not-authenticated state toward an IMAP client.
//!
//! The session answers CAPABILITY, NOOP, ID, LOGOUT, literals and malformed
//! or out-of-state commands itself; it hands LOGIN, AUTHENTICATE and
//! STARTTLS to the caller as [`Event`]s and waits (keeping any pipelined
//! input) until the caller answers with one of [`ServerSession::login_ok`],
//! [`ServerSession::login_no`], [`ServerSession::login_fail`],
//! [`ServerSession::auth_challenge`], [`ServerSession::auth_fail`], [`ServerSession::starttls_ok`] or
//! [`ServerSession::reject`].
//!
//! ```text
//! S: * OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED ...] ready
//! C: a1 LOGIN {5}            S: + Ready for literal data
//! C: alice "secret"          -> Event::Login          <- login_ok(caps)
//! S: a1 OK [CAPABILITY ...] Logged in                 -> Event::LoggedIn
//! ```

use imap_codec::imap_types::core::Tag;
use portcullis_sasl::Password;
use portcullis_sasl::framing::{self, Failure, Protocol};
use zeroize::Zeroizing;

use crate::reader::{Frame, LiteralMode, MessageReader};
use crate::wire::{self, tag_of};
use crate::{Command, Error, ResponseCode, StatusKind};

/// The default line bound: room for the longest SASL response line of
/// `portcullis_sasl::framing` plus a tag and the command name.
pub const DEFAULT_MAX_LINE: usize = framing::MAX_LINE + 256;

/// The default literal bound (enough for a LOGIN name or password).
pub const DEFAULT_MAX_LITERAL: u32 = 4096;

/// The largest non-synchronizing literal LITERAL- allows (RFC 7888 §5).
pub const LITERAL_MINUS_MAX: u64 = 4096;

/// How a server session behaves.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// TLS is already active (implicit TLS port, or after STARTTLS).
    pub tls_active: bool,
    /// STARTTLS may be offered (a TLS configuration exists).
    pub starttls_available: bool,
    /// LOGIN is accepted without TLS. Off by default (RFC 9051 §6.2.3:
    /// without TLS the server advertises LOGINDISABLED).
    pub plaintext_allowed: bool,
    /// SASL mechanisms to advertise as `AUTH=` (from
    /// `portcullis_sasl::Policy` for the connection's state).
    pub sasl_mechanisms: Vec<String>,
    /// Our answer to ID (RFC 2971), e.g. `[("name", "Portcullis")]`; empty
    /// answers `* ID NIL`.
    pub id: Vec<(String, String)>,
    /// The greeting text.
    pub greeting: String,
    /// Advertise LITERAL+ (any non-synchronizing literal up to
    /// `max_literal`) instead of LITERAL- (up to 4096 octets).
    pub literal_plus: bool,
    /// The longest line (without CRLF).
    pub max_line: usize,
    /// The longest literal.
    pub max_literal: u32,
    /// The longest command (lines and literals).
    pub max_command: usize,
    /// Bad commands and failed logins tolerated before the session ends.
    pub max_bad_commands: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            tls_active: false,
            starttls_available: false,
            plaintext_allowed: false,
            sasl_mechanisms: Vec::new(),
            id: Vec::new(),
            greeting: "IMAP4rev1 proxy ready".to_owned(),
            literal_plus: false,
            max_line: DEFAULT_MAX_LINE,
            max_literal: DEFAULT_MAX_LITERAL,
            max_command: DEFAULT_MAX_LINE + 2 * (DEFAULT_MAX_LITERAL as usize),
            max_bad_commands: 10,
        }
    }
}

/// What the caller must do next.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// Feed more input (after writing [`ServerSession::take_output`]).
    NeedMoreInput,
    /// An answer to the last event is due; nothing more is read until then
    /// (the edge should stop reading from the client meanwhile).
    Waiting,
    /// LOGIN: check the password, log in to the store, then answer.
    Login {
        /// The command's tag.
        tag: String,
        /// The user name.
        user: String,
        /// The password (wiped on drop, redacted in `Debug`).
        password: Password,
    },
    /// AUTHENTICATE: start a `portcullis_sasl::framing::AuthExchange` with
    /// `Protocol::Imap`, the tag and these.
    Authenticate {
        /// The command's tag.
        tag: String,
        /// The mechanism name, upper-cased.
        mechanism: String,
        /// The initial response as sent (base64 or `=`), if any (RFC 4959).
        initial_response: Option<Zeroizing<Vec<u8>>>,
    },
    /// A client line during AUTHENTICATE, after
    /// [`ServerSession::auth_challenge`]: pass it to `AuthExchange::line`
    /// (`*` cancels there).
    AuthResponse {
        /// The line without CRLF.
        line: Zeroizing<Vec<u8>>,
    },
    /// STARTTLS: answer [`ServerSession::starttls_ok`] and start TLS, or
    /// [`ServerSession::reject`].
    StartTls {
        /// The command's tag.
        tag: String,
    },
    /// The client's ID (already answered with ours; no answer due).
    Id {
        /// The command's tag.
        tag: String,
        /// The client's fields, `None` for `ID NIL`.
        parameters: Option<crate::command::IdParameters>,
    },
    /// LOGOUT: write the output, then close.
    Logout,
    /// Write the output, then close (too many bad commands, a literal
    /// refused that cannot be skipped, or [`ServerSession::bye`]).
    Close,
    /// Logged in: write the output, relay
    /// [`ServerSession::take_pending_input`] and all further bytes to the
    /// store.
    LoggedIn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Command,
    Awaiting(Awaiting),
    /// Waiting for the client's next AUTHENTICATE line.
    AuthLine,
    LoggedIn,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaiting {
    Login,
    Auth,
    StartTls,
}

/// An IMAP server session in the not-authenticated state.
#[derive(Debug)]
pub struct ServerSession {
    config: ServerConfig,
    state: State,
    reader: MessageReader,
    output: Vec<u8>,
    /// The tag of the command awaiting an answer.
    tag: Option<Tag<'static>>,
    bad_commands: u32,
    discarded: usize,
}

/// A greeting that refuses the connection (`* BYE [code] text`), for a
/// client turned away before any session starts (access filter, limits).
pub fn refusal_greeting(code: Option<&ResponseCode>, text: &str) -> Vec<u8> {
    wire::greeting(false, code, text)
}

fn capitalized(text: &str) -> String {
    let mut c = text.chars();
    c.next()
        .map(|first| first.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

impl ServerSession {
    /// Starts a session; the greeting is the first output.
    ///
    /// # Errors
    ///
    /// [`Error::ApiMisuse`] for a line bound below 64 octets, a command
    /// bound below the line bound, or an ID field IMAP cannot carry.
    pub fn new(config: ServerConfig) -> Result<Self, Error> {
        if config.max_line < 64 || config.max_command < config.max_line {
            return Err(Error::ApiMisuse("line or command bound too small"));
        }
        if config.id.len() > crate::command::MAX_ID_PAIRS
            || config.id.iter().any(|(k, v)| {
                k.is_empty()
                    || k.len() > crate::command::MAX_ID_FIELD
                    || v.len() > crate::command::MAX_ID_VALUE
                    || k.chars().chain(v.chars()).any(char::is_control)
            })
        {
            return Err(Error::ApiMisuse("ID fields out of RFC 2971 bounds"));
        }
        let mut s = Self {
            reader: MessageReader::new(config.max_line, config.max_command),
            config,
            state: State::Command,
            output: Vec::new(),
            tag: None,
            bad_commands: 0,
            discarded: 0,
        };
        let caps = ResponseCode::Capability(s.capabilities());
        s.output = wire::greeting(true, Some(&caps), &s.config.greeting);
        Ok(s)
    }

    /// The capabilities advertised now (they change with TLS).
    pub fn capabilities(&self) -> Vec<String> {
        let mut caps = vec!["IMAP4rev1".to_owned()];
        if self.config.starttls_available && !self.config.tls_active {
            caps.push("STARTTLS".to_owned());
        }
        if !self.login_allowed() {
            caps.push("LOGINDISABLED".to_owned());
        }
        caps.extend(
            self.config
                .sasl_mechanisms
                .iter()
                .filter(|m| {
                    !m.is_empty()
                        && m.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                })
                .map(|m| format!("AUTH={}", m.to_ascii_uppercase())),
        );
        caps.push("SASL-IR".to_owned());
        caps.push(
            if self.config.literal_plus {
                "LITERAL+"
            } else {
                "LITERAL-"
            }
            .to_owned(),
        );
        caps.push("ID".to_owned());
        caps
    }

    /// Replaces the SASL mechanisms to advertise, e.g. after the TLS
    /// handshake that followed [`Self::starttls_ok`] (the policy offers
    /// more over TLS).
    pub fn set_sasl_mechanisms(&mut self, mechanisms: Vec<String>) {
        self.config.sasl_mechanisms = mechanisms;
    }

    /// Adds bytes read from the client. Before login, unread input is
    /// bounded ([`Self::max_unread`]): a client that sends more than that
    /// ahead of the answers gets `* BYE` and [`Event::Close`].
    pub fn feed(&mut self, data: &[u8]) {
        if self.state == State::Closed {
            return;
        }
        self.reader.feed(data);
        if self.state != State::LoggedIn && self.reader.unread() > self.max_unread() {
            self.bye("Too much input ahead of the answers");
        }
    }

    /// The bound on input fed before login and not yet read: four whole
    /// commands and 64 KiB for the edge's read buffer.
    pub fn max_unread(&self) -> usize {
        self.config
            .max_command
            .saturating_mul(4)
            .saturating_add(65536)
    }

    /// Takes the bytes to write to the client.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    /// After [`Event::LoggedIn`]: the client bytes already read, to relay
    /// to the store (wiped on drop).
    pub fn take_pending_input(&mut self) -> Zeroizing<Vec<u8>> {
        if self.state == State::LoggedIn {
            self.reader.take_all()
        } else {
            Zeroizing::new(Vec::new())
        }
    }

    /// Whether TLS is active (implicit, or after [`Self::starttls_ok`]).
    pub fn tls_active(&self) -> bool {
        self.config.tls_active
    }

    /// Plaintext octets discarded at STARTTLS so far (they were pipelined
    /// after the STARTTLS command, CVE-2011-0411).
    pub fn discarded_after_starttls(&self) -> usize {
        self.discarded
    }

    fn login_allowed(&self) -> bool {
        self.config.tls_active || self.config.plaintext_allowed
    }

    fn status(
        &mut self,
        tag: Option<&Tag<'_>>,
        kind: StatusKind,
        code: Option<&ResponseCode>,
        text: &str,
    ) {
        let bytes = wire::status(tag, kind, code, text);
        self.output.extend_from_slice(&bytes);
    }

    /// Counts a bad command or failed login; ends the session at the bound.
    fn count_bad(&mut self) -> Option<Event> {
        self.bad_commands = self.bad_commands.saturating_add(1);
        if self.bad_commands >= self.config.max_bad_commands {
            self.status(None, StatusKind::Bye, None, "Too many invalid commands");
            self.state = State::Closed;
            return Some(Event::Close);
        }
        None
    }

    fn bad(
        &mut self,
        tag: Option<&Tag<'_>>,
        code: Option<&ResponseCode>,
        text: &str,
    ) -> Option<Event> {
        self.status(tag, StatusKind::Bad, code, text);
        self.count_bad()
    }

    /// The next event.
    pub fn poll(&mut self) -> Event {
        loop {
            match self.state {
                State::Closed => return Event::Close,
                State::LoggedIn => return Event::LoggedIn,
                State::Awaiting(_) => return Event::Waiting,
                State::AuthLine => {
                    if let Some(e) = self.auth_line() {
                        return e;
                    }
                    continue;
                }
                State::Command => {}
            }
            let frame = self.reader.next();
            if let Some(e) = self.frame(frame) {
                return e;
            }
        }
    }

    fn auth_line(&mut self) -> Option<Event> {
        let failure = match self.reader.next() {
            Frame::Incomplete => return Some(Event::NeedMoreInput),
            Frame::Message(line) => {
                let body = line.strip_suffix(b"\r\n").unwrap_or(&line);
                let line = Zeroizing::new(body.to_vec());
                self.state = State::Awaiting(Awaiting::Auth);
                return Some(Event::AuthResponse { line });
            }
            Frame::BadLine { too_long: true, .. } | Frame::TooBig { .. } => Failure::TooLong,
            // A bare LF, or (lines only) nothing else.
            Frame::BadLine { .. } | Frame::Literal { .. } | Frame::SkippedLiteral => {
                Failure::Malformed
            }
        };
        let tag = self.tag.take();
        let reply = framing::failure_reply(Protocol::Imap, tag.as_ref().map(Tag::inner), failure);
        self.output.extend_from_slice(&reply);
        self.back_to_commands();
        self.count_bad()
    }

    fn back_to_commands(&mut self) {
        self.state = State::Command;
        self.tag = None;
        self.reader.set_lines_only(false);
    }

    fn frame(&mut self, frame: Frame) -> Option<Event> {
        match frame {
            Frame::Incomplete => Some(Event::NeedMoreInput),
            Frame::SkippedLiteral => Some(self.refuse_unread(None)),
            Frame::BadLine {
                announced: Some(LiteralMode::NonSync),
                head,
                ..
            } => {
                let tag = tag_of(&head);
                Some(self.refuse_unread(tag.as_ref()))
            }
            Frame::BadLine { head, too_long, .. } => {
                let tag = tag_of(&head);
                let text = if too_long {
                    "Line too long"
                } else {
                    "Lines must end with CRLF"
                };
                self.bad(tag.as_ref(), None, text)
            }
            Frame::TooBig { head, announced } => {
                let tag = tag_of(&head);
                if announced == Some(LiteralMode::NonSync) {
                    // Its literal is on the way and is not read.
                    return Some(self.refuse_unread(tag.as_ref()));
                }
                self.bad(
                    tag.as_ref(),
                    Some(&ResponseCode::TooBig),
                    "Command too long",
                )
            }
            Frame::Literal { length, mode } => self.literal(length, mode),
            Frame::Message(message) => self.message(&message),
        }
    }

    /// An announced literal: accept it or refuse it without reading it.
    fn literal(&mut self, length: u64, mode: LiteralMode) -> Option<Event> {
        let tag = tag_of(&self.reader.message_head());
        let within_cap = length <= u64::from(self.config.max_literal) && self.reader.fits(length);
        match mode {
            LiteralMode::Sync if within_cap => {
                self.reader.accept_literal();
                let c = wire::continuation("Ready for literal data");
                self.output.extend_from_slice(&c);
                None
            }
            LiteralMode::Sync => {
                // RFC 9051 §7.5: instead of "+", a tagged NO; the client
                // does not send the octets.
                self.reader.refuse_literal();
                self.status(
                    tag.as_ref(),
                    StatusKind::No,
                    Some(&ResponseCode::TooBig),
                    "Literal too large",
                );
                self.count_bad()
            }
            LiteralMode::NonSync
                if within_cap && (self.config.literal_plus || length <= LITERAL_MINUS_MAX) =>
            {
                self.reader.accept_literal();
                None
            }
            LiteralMode::NonSync => Some(self.refuse_unread(tag.as_ref())),
        }
    }

    /// Refuses a non-synchronizing literal over the bounds. RFC 7888 §4: a
    /// tagged BAD. The octets are on their way and are not read: the
    /// connection ends.
    fn refuse_unread(&mut self, tag: Option<&Tag<'_>>) -> Event {
        self.status(
            tag,
            StatusKind::Bad,
            Some(&ResponseCode::TooBig),
            "Literal too large",
        );
        self.status(None, StatusKind::Bye, None, "Literal too large, closing");
        self.reader.discard();
        self.state = State::Closed;
        Event::Close
    }

    fn message(&mut self, message: &[u8]) -> Option<Event> {
        let (tag, command) = match Command::parse(message) {
            Ok(ok) => ok,
            Err(e) => {
                let tag = tag_of(message);
                let text = match e {
                    Error::Syntax(what) => capitalized(what),
                    _ => "Syntax error".to_owned(),
                };
                #[cfg(feature = "tracing")]
                tracing::debug!(error = %e, "imap command refused");
                return self.bad(tag.as_ref(), None, &text);
            }
        };
        #[cfg(feature = "tracing")]
        tracing::debug!(?command, "imap command");
        // The tag was validated by the parser.
        let Ok(codec_tag) = Tag::try_from(tag.clone()) else {
            return self.bad(None, None, "Invalid tag");
        };
        let t = Some(&codec_tag);
        match command {
            Command::Capability => {
                let caps = wire::capability_data(&self.capabilities());
                self.output.extend_from_slice(&caps);
                self.status(t, StatusKind::Ok, None, "CAPABILITY completed");
                None
            }
            Command::Noop => {
                self.status(t, StatusKind::Ok, None, "NOOP completed");
                None
            }
            Command::Logout => {
                self.status(None, StatusKind::Bye, None, "Logging out");
                self.status(t, StatusKind::Ok, None, "LOGOUT completed");
                self.state = State::Closed;
                Some(Event::Logout)
            }
            Command::Id(parameters) => {
                let id = wire::id_data(&self.config.id);
                self.output.extend_from_slice(&id);
                self.status(t, StatusKind::Ok, None, "ID completed");
                Some(Event::Id { tag, parameters })
            }
            Command::StartTls => {
                if self.config.tls_active {
                    self.bad(t, None, "TLS already active")
                } else if !self.config.starttls_available {
                    self.bad(t, None, "STARTTLS not available")
                } else {
                    self.tag = Some(codec_tag);
                    self.state = State::Awaiting(Awaiting::StartTls);
                    Some(Event::StartTls { tag })
                }
            }
            Command::Login { user, password } => {
                if !self.login_allowed() {
                    self.status(
                        t,
                        StatusKind::No,
                        Some(&ResponseCode::PrivacyRequired),
                        "Plaintext authentication disallowed without TLS",
                    );
                    return self.count_bad();
                }
                self.tag = Some(codec_tag);
                self.state = State::Awaiting(Awaiting::Login);
                Some(Event::Login {
                    tag,
                    user,
                    password,
                })
            }
            Command::Authenticate {
                mechanism,
                initial_response,
            } => {
                self.tag = Some(codec_tag);
                self.state = State::Awaiting(Awaiting::Auth);
                Some(Event::Authenticate {
                    tag,
                    mechanism,
                    initial_response: initial_response
                        .map(|ir| Zeroizing::new(ir.as_bytes().to_vec())),
                })
            }
            Command::Other(_) => self.bad(t, None, "Command not valid before login"),
        }
    }

    fn expect(&self, ok: &[Awaiting]) -> Result<Awaiting, Error> {
        match self.state {
            State::Awaiting(a) if ok.contains(&a) => Ok(a),
            _ => Err(Error::ApiMisuse("no such answer is due")),
        }
    }

    /// The login (LOGIN or AUTHENTICATE) succeeded and the store session
    /// is up: `tag OK [CAPABILITY ...] Logged in`, with the store's
    /// post-login capabilities (no code when empty), and hand over.
    ///
    /// # Errors
    ///
    /// [`Error::ApiMisuse`] when no login is pending.
    pub fn login_ok(&mut self, capabilities: &[String]) -> Result<(), Error> {
        self.expect(&[Awaiting::Login, Awaiting::Auth])?;
        let tag = self.tag.take();
        let code =
            (!capabilities.is_empty()).then(|| ResponseCode::Capability(capabilities.to_vec()));
        self.status(tag.as_ref(), StatusKind::Ok, code.as_ref(), "Logged in");
        self.reader.set_lines_only(false);
        self.state = State::LoggedIn;
        Ok(())
    }

    /// The login failed: `tag NO [code] text`; the session stays in the
    /// not-authenticated state. Failed logins count as bad commands.
    ///
    /// # Errors
    ///
    /// [`Error::ApiMisuse`] when no login is pending.
    pub fn login_no(&mut self, code: Option<ResponseCode>, text: &str) -> Result<(), Error> {
        self.expect(&[Awaiting::Login, Awaiting::Auth])?;
        let tag = self.tag.take();
        self.status(tag.as_ref(), StatusKind::No, code.as_ref(), text);
        self.back_to_commands();
        let _ = self.count_bad();
        Ok(())
    }

    /// Writes an AUTHENTICATE challenge (`Event::Send` from
    /// `AuthExchange`, already `+ base64` CRLF) and reads the client's
    /// next line as [`Event::AuthResponse`].
    ///
    /// # Errors
    ///
    /// [`Error::ApiMisuse`] when no AUTHENTICATE is pending.
    pub fn auth_challenge(&mut self, challenge: &[u8]) -> Result<(), Error> {
        self.expect(&[Awaiting::Auth])?;
        self.output.extend_from_slice(challenge);
        self.reader.set_lines_only(true);
        self.state = State::AuthLine;
        Ok(())
    }

    /// AUTHENTICATE failed with this reply from `AuthExchange`
    /// (`Event::Failure`, already tagged). Counts as a bad command.
    ///
    /// # Errors
    ///
    /// [`Error::ApiMisuse`] when no AUTHENTICATE is pending.
    pub fn auth_fail(&mut self, reply: &[u8]) -> Result<(), Error> {
        self.expect(&[Awaiting::Auth])?;
        self.fail_with(reply);
        Ok(())
    }

    /// LOGIN or AUTHENTICATE failed with this reply from
    /// `portcullis_sasl::framing::failure_reply`, tagged with the pending
    /// command's tag (the one mapping from SASL outcomes to replies lives
    /// there). Counts as a bad command.
    ///
    /// # Errors
    ///
    /// [`Error::ApiMisuse`] when no login is pending.
    pub fn login_fail(&mut self, reply: &[u8]) -> Result<(), Error> {
        self.expect(&[Awaiting::Login, Awaiting::Auth])?;
        self.fail_with(reply);
        Ok(())
    }

    fn fail_with(&mut self, reply: &[u8]) {
        self.output.extend_from_slice(reply);
        self.back_to_commands();
        let _ = self.count_bad();
    }

    /// Accepts STARTTLS: writes `tag OK`, discards the plaintext read after
    /// the STARTTLS line (CVE-2011-0411) and returns how many octets that
    /// was. Write the output, then start the TLS handshake.
    ///
    /// # Errors
    ///
    /// [`Error::ApiMisuse`] when no STARTTLS is pending.
    pub fn starttls_ok(&mut self) -> Result<usize, Error> {
        self.expect(&[Awaiting::StartTls])?;
        let tag = self.tag.take();
        self.status(
            tag.as_ref(),
            StatusKind::Ok,
            None,
            "Begin TLS negotiation now",
        );
        let n = self.reader.discard();
        self.discarded = self.discarded.saturating_add(n);
        self.config.tls_active = true;
        self.back_to_commands();
        #[cfg(feature = "tracing")]
        if n > 0 {
            tracing::warn!(discarded = n, "plaintext pipelined after STARTTLS dropped");
        }
        Ok(n)
    }

    /// Refuses a pending STARTTLS or login with `tag NO [code] text`
    /// (not counted as a bad command).
    ///
    /// # Errors
    ///
    /// [`Error::ApiMisuse`] when nothing is pending.
    pub fn reject(&mut self, code: Option<ResponseCode>, text: &str) -> Result<(), Error> {
        self.expect(&[Awaiting::Login, Awaiting::Auth, Awaiting::StartTls])?;
        let tag = self.tag.take();
        self.status(tag.as_ref(), StatusKind::No, code.as_ref(), text);
        self.back_to_commands();
        Ok(())
    }

    /// Ends the session with `* BYE text` (timeout, shutdown); [`Self::poll`]
    /// then says [`Event::Close`].
    pub fn bye(&mut self, text: &str) {
        self.bye_with_code(None, text);
    }

    /// Ends the session with `* BYE [code] text` (e.g. `[UNAVAILABLE]` when
    /// no store can be reached).
    pub fn bye_with_code(&mut self, code: Option<ResponseCode>, text: &str) {
        if self.state != State::Closed {
            self.status(None, StatusKind::Bye, code.as_ref(), text);
            self.reader.discard();
            self.state = State::Closed;
        }
    }
}
