//! The server side: the AUTHORIZATION state toward a POP3 client.
//!
//! The session answers CAPA, AUTH without arguments, NOOP, unknown and
//! malformed commands itself; it hands logins and STLS to the caller as
//! [`Event`]s and waits (keeping any pipelined input) until the caller
//! answers with one of [`ServerSession::login_ok`],
//! [`ServerSession::login_err`], [`ServerSession::auth_challenge`],
//! [`ServerSession::stls_ok`] or [`ServerSession::reject`].

use portcullis_sasl::Password;
use portcullis_sasl::framing::{self, Protocol};
use zeroize::Zeroizing;

use crate::line::{Line, LineBuffer};
use crate::{Command, Error, Response, ResponseCode};

/// The longest command line, without CRLF (RFC 2449 §4: 255 octets).
pub const MAX_COMMAND_LINE: usize = 253;

/// How a server session behaves.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// TLS is already active (implicit TLS port, or after STLS).
    pub tls_active: bool,
    /// STLS may be offered (a TLS configuration exists).
    pub stls_available: bool,
    /// USER/PASS is accepted without TLS. Off by default (RFC 2595 §2.3).
    pub plaintext_allowed: bool,
    /// The APOP timestamp (`<pid.clock.random@hostname>`), made unique by
    /// the caller; `None` disables APOP.
    pub apop_timestamp: Option<String>,
    /// SASL mechanisms to advertise (from `portcullis_sasl::Policy`).
    pub sasl_mechanisms: Vec<String>,
    /// The CAPA IMPLEMENTATION string, if any.
    pub implementation: Option<String>,
    /// The longest command line other than AUTH (without CRLF).
    pub max_line: usize,
    /// Bad commands tolerated before the connection is closed.
    pub max_bad_commands: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            tls_active: false,
            stls_available: false,
            plaintext_allowed: false,
            apop_timestamp: None,
            sasl_mechanisms: Vec::new(),
            implementation: None,
            max_line: MAX_COMMAND_LINE,
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
    /// An answer to the last event is due; nothing more is read until then.
    Waiting,
    /// USER was accepted (the session already said `+OK`; no answer due).
    User {
        /// The name given.
        user: String,
    },
    /// USER/PASS login: check it, log in to the store, then answer.
    Pass {
        /// The name from USER.
        user: String,
        /// The password (wiped on drop, redacted in `Debug`).
        password: Password,
    },
    /// APOP login: verify with the greeting's timestamp, then answer.
    Apop {
        /// The name given.
        user: String,
        /// The lowercase hex digest.
        digest: String,
    },
    /// AUTH: start a `portcullis_sasl::framing::AuthExchange` with these.
    Auth {
        /// The mechanism name, upper-cased.
        mechanism: String,
        /// The initial response as sent (base64 or `=`), if any.
        initial_response: Option<Zeroizing<Vec<u8>>>,
    },
    /// A client line during AUTH, after [`ServerSession::auth_challenge`]:
    /// pass it to `AuthExchange::line` (`*` cancels there).
    AuthResponse {
        /// The line without CRLF.
        line: Zeroizing<Vec<u8>>,
    },
    /// STLS: answer [`ServerSession::stls_ok`] and start TLS, or
    /// [`ServerSession::reject`].
    Stls,
    /// QUIT: write the output, then close.
    Quit,
    /// Write the output, then close (too many bad commands, or
    /// [`ServerSession::close`]).
    Close,
    /// Logged in: write the output, relay
    /// [`ServerSession::take_pending_input`] and all further bytes to the
    /// store.
    LoggedIn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Command,
    /// Waiting for the caller's answer to a login or STLS.
    Awaiting(Awaiting),
    /// Waiting for the client's next AUTH line.
    AuthLine,
    LoggedIn,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaiting {
    Login,
    Auth,
    Stls,
}

/// A POP3 server session in the AUTHORIZATION state.
#[derive(Debug)]
pub struct ServerSession {
    config: ServerConfig,
    state: State,
    input: LineBuffer,
    output: Vec<u8>,
    user: Option<String>,
    bad_commands: u32,
    discarded: usize,
}

fn valid_timestamp(t: &str) -> bool {
    t.len() >= 3
        && t.len() <= 200
        && t.starts_with('<')
        && t.ends_with('>')
        && t[1..t.len() - 1]
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>')
}

impl ServerSession {
    /// Starts a session; the greeting is the first output.
    ///
    /// # Errors
    ///
    /// [`Error::ApiMisuse`] for an APOP timestamp not of the form
    /// `<printable>` or a limit below 16 octets.
    pub fn new(config: ServerConfig) -> Result<Self, Error> {
        if config
            .apop_timestamp
            .as_deref()
            .is_some_and(|t| !valid_timestamp(t))
        {
            return Err(Error::ApiMisuse("APOP timestamp must be <printable>"));
        }
        if config.max_line < 16 {
            return Err(Error::ApiMisuse("line limit below 16 octets"));
        }
        let mut greeting = String::from("+OK POP3 server ready");
        if let Some(t) = &config.apop_timestamp {
            greeting.push(' ');
            greeting.push_str(t);
        }
        greeting.push_str("\r\n");
        Ok(Self {
            input: LineBuffer::new(config.max_line.max(framing::MAX_LINE + 32)),
            config,
            state: State::Command,
            output: greeting.into_bytes(),
            user: None,
            bad_commands: 0,
            discarded: 0,
        })
    }

    /// Replaces the SASL mechanisms CAPA advertises, e.g. after the TLS
    /// handshake that followed [`Self::stls_ok`] (the policy offers more
    /// over TLS).
    pub fn set_sasl_mechanisms(&mut self, mechanisms: Vec<String>) {
        self.config.sasl_mechanisms = mechanisms;
    }

    /// Adds bytes read from the client.
    pub fn feed(&mut self, data: &[u8]) {
        if matches!(self.state, State::Closed) {
            return;
        }
        self.input.feed(data);
    }

    /// Takes the bytes to write to the client.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    /// After [`Event::LoggedIn`]: the client bytes already read, to relay
    /// to the store (wiped on drop).
    pub fn take_pending_input(&mut self) -> Zeroizing<Vec<u8>> {
        if self.state == State::LoggedIn {
            self.input.take_all()
        } else {
            Zeroizing::new(Vec::new())
        }
    }

    /// Whether TLS is active (implicit, or after [`Self::stls_ok`]).
    pub fn tls_active(&self) -> bool {
        self.config.tls_active
    }

    /// Plaintext octets discarded at STLS so far (they were pipelined
    /// after the STLS command, CVE-2011-0411).
    pub fn discarded_after_stls(&self) -> usize {
        self.discarded
    }

    fn reply(&mut self, ok: bool, code: Option<ResponseCode>, text: &str) {
        let r = Response {
            ok,
            code,
            text: text.to_owned(),
        };
        self.output.extend_from_slice(&r.encode());
    }

    fn bad(&mut self, text: &str) -> Option<Event> {
        self.bad_commands = self.bad_commands.saturating_add(1);
        self.reply(false, None, text);
        if self.bad_commands >= self.config.max_bad_commands {
            self.reply(false, None, "Too many bad commands, closing connection");
            self.state = State::Closed;
            return Some(Event::Close);
        }
        None
    }

    fn user_allowed(&self) -> bool {
        self.config.tls_active || self.config.plaintext_allowed
    }

    /// The next event.
    pub fn poll(&mut self) -> Event {
        loop {
            match self.state {
                State::Closed => return Event::Close,
                State::LoggedIn => return Event::LoggedIn,
                State::Awaiting(_) => return Event::Waiting,
                State::AuthLine => {
                    return match self.input.next_line() {
                        Line::Incomplete => Event::NeedMoreInput,
                        Line::TooLong => {
                            self.output.extend_from_slice(&framing::failure_reply(
                                Protocol::Pop3,
                                None,
                                framing::Failure::TooLong,
                            ));
                            self.state = State::Command;
                            continue;
                        }
                        Line::Complete(line) => {
                            self.state = State::Awaiting(Awaiting::Auth);
                            Event::AuthResponse { line }
                        }
                    };
                }
                State::Command => {}
            }
            let line = match self.input.next_line() {
                Line::Incomplete => return Event::NeedMoreInput,
                Line::TooLong => {
                    if let Some(e) = self.bad("Line too long") {
                        return e;
                    }
                    continue;
                }
                Line::Complete(line) => line,
            };
            let is_auth = line.len() >= 5 && line[..5].eq_ignore_ascii_case(b"AUTH ");
            if line.len() > self.config.max_line && !is_auth {
                if let Some(e) = self.bad("Line too long") {
                    return e;
                }
                continue;
            }
            if let Some(e) = self.command(&line) {
                return e;
            }
        }
    }

    fn command(&mut self, line: &[u8]) -> Option<Event> {
        let command = match Command::parse(line) {
            Ok(c) => c,
            Err(_) => return self.bad("Syntax error"),
        };
        #[cfg(feature = "tracing")]
        tracing::debug!(?command, "pop3 command");
        // Anything but PASS after USER forgets the name (RFC 1939 §7).
        let user = self.user.take();
        match command {
            Command::Capa => {
                self.capa();
                None
            }
            Command::Quit => {
                self.reply(true, None, "Bye");
                self.state = State::Closed;
                Some(Event::Quit)
            }
            Command::User(name) => {
                if !self.user_allowed() {
                    self.reply(
                        false,
                        Some(ResponseCode::Auth),
                        "Plaintext authentication disallowed without TLS",
                    );
                    return None;
                }
                self.reply(true, None, "");
                self.user = Some(name.clone());
                Some(Event::User { user: name })
            }
            Command::Pass(password) => {
                let Some(user) = user else {
                    return self.bad("No USER given");
                };
                if !self.user_allowed() {
                    self.reply(
                        false,
                        Some(ResponseCode::Auth),
                        "Plaintext authentication disallowed without TLS",
                    );
                    return None;
                }
                self.state = State::Awaiting(Awaiting::Login);
                Some(Event::Pass { user, password })
            }
            Command::Apop { user, digest } => {
                if self.config.apop_timestamp.is_none() {
                    return self.bad("APOP not available");
                }
                self.state = State::Awaiting(Awaiting::Login);
                Some(Event::Apop { user, digest })
            }
            Command::Auth {
                mechanism: None, ..
            } => {
                self.reply(true, None, "Supported mechanisms follow");
                let list: Vec<u8> = self
                    .config
                    .sasl_mechanisms
                    .iter()
                    .flat_map(|m| format!("{m}\r\n").into_bytes())
                    .collect();
                self.output.extend_from_slice(&list);
                self.output.extend_from_slice(b".\r\n");
                None
            }
            Command::Auth {
                mechanism: Some(mechanism),
                initial_response,
            } => {
                self.state = State::Awaiting(Awaiting::Auth);
                Some(Event::Auth {
                    mechanism,
                    initial_response: initial_response.map(|s| Zeroizing::new(s.into_bytes())),
                })
            }
            Command::Stls => {
                if self.config.tls_active {
                    self.reply(false, None, "TLS already active");
                    None
                } else if !self.config.stls_available {
                    self.reply(false, None, "STLS not available");
                    None
                } else {
                    self.state = State::Awaiting(Awaiting::Stls);
                    Some(Event::Stls)
                }
            }
            Command::Noop => self.bad("Not logged in"),
            _ => self.bad("Unknown command"),
        }
    }

    fn capa(&mut self) {
        self.reply(true, None, "Capability list follows");
        let mut lines = Vec::new();
        if self.user_allowed() {
            lines.push("USER".to_owned());
        }
        if !self.config.sasl_mechanisms.is_empty() {
            lines.push(format!("SASL {}", self.config.sasl_mechanisms.join(" ")));
        }
        if self.config.stls_available && !self.config.tls_active {
            lines.push("STLS".to_owned());
        }
        lines.extend(["RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"].map(str::to_owned));
        if let Some(i) = &self.config.implementation {
            lines.push(format!("IMPLEMENTATION {i}"));
        }
        for l in lines {
            let l: String = l.chars().filter(|c| !c.is_control()).collect();
            // Dot-stuffing (RFC 1939 §3).
            if l.starts_with('.') {
                self.output.push(b'.');
            }
            self.output.extend_from_slice(l.as_bytes());
            self.output.extend_from_slice(b"\r\n");
        }
        self.output.extend_from_slice(b".\r\n");
    }

    fn expect(&self, ok: &[Awaiting]) -> Result<Awaiting, Error> {
        match self.state {
            State::Awaiting(a) if ok.contains(&a) => Ok(a),
            _ => Err(Error::ApiMisuse("no such answer is due")),
        }
    }

    /// The login (PASS, APOP or AUTH) succeeded and the store session is
    /// up: say `+OK` and hand over.
    ///
    /// # Errors
    ///
    /// [`Error::ApiMisuse`] when no login is pending.
    pub fn login_ok(&mut self) -> Result<(), Error> {
        self.expect(&[Awaiting::Login, Awaiting::Auth])?;
        self.reply(true, None, "Logged in");
        self.state = State::LoggedIn;
        Ok(())
    }

    /// The login failed: `-ERR [code] text`; the session stays in
    /// AUTHORIZATION. Failed logins count as bad commands.
    ///
    /// # Errors
    ///
    /// [`Error::ApiMisuse`] when no login is pending.
    pub fn login_err(&mut self, code: Option<ResponseCode>, text: &str) -> Result<(), Error> {
        self.expect(&[Awaiting::Login, Awaiting::Auth])?;
        self.state = State::Command;
        self.reply(false, code, text);
        self.count_failure();
        Ok(())
    }

    /// AUTH failed with this reply from `AuthExchange` (`Event::Failure`).
    ///
    /// # Errors
    ///
    /// [`Error::ApiMisuse`] when no AUTH is pending.
    pub fn auth_fail(&mut self, reply: &[u8]) -> Result<(), Error> {
        self.expect(&[Awaiting::Auth])?;
        self.state = State::Command;
        self.output.extend_from_slice(reply);
        self.count_failure();
        Ok(())
    }

    fn count_failure(&mut self) {
        self.bad_commands = self.bad_commands.saturating_add(1);
        if self.bad_commands >= self.config.max_bad_commands {
            self.reply(false, None, "Too many bad commands, closing connection");
            self.state = State::Closed;
        }
    }

    /// Writes an AUTH challenge (`Event::Send` from `AuthExchange`) and
    /// reads the client's next line as [`Event::AuthResponse`].
    ///
    /// # Errors
    ///
    /// [`Error::ApiMisuse`] when no AUTH is pending.
    pub fn auth_challenge(&mut self, challenge: &[u8]) -> Result<(), Error> {
        self.expect(&[Awaiting::Auth])?;
        self.output.extend_from_slice(challenge);
        self.state = State::AuthLine;
        Ok(())
    }

    /// Accepts STLS: writes `+OK`, discards the plaintext read after the
    /// STLS line (CVE-2011-0411) and returns how many octets that was.
    /// Write the output, then start the TLS handshake.
    ///
    /// # Errors
    ///
    /// [`Error::ApiMisuse`] when no STLS is pending.
    pub fn stls_ok(&mut self) -> Result<usize, Error> {
        self.expect(&[Awaiting::Stls])?;
        self.reply(true, None, "Begin TLS negotiation");
        let n = self.input.discard();
        self.discarded = self.discarded.saturating_add(n);
        self.config.tls_active = true;
        self.user = None;
        self.state = State::Command;
        #[cfg(feature = "tracing")]
        if n > 0 {
            tracing::warn!(discarded = n, "plaintext pipelined after STLS dropped");
        }
        Ok(n)
    }

    /// Refuses a pending STLS or login with `-ERR [code] text`.
    ///
    /// # Errors
    ///
    /// [`Error::ApiMisuse`] when nothing is pending.
    pub fn reject(&mut self, code: Option<ResponseCode>, text: &str) -> Result<(), Error> {
        self.expect(&[Awaiting::Login, Awaiting::Auth, Awaiting::Stls])?;
        self.state = State::Command;
        self.reply(false, code, text);
        Ok(())
    }

    /// Ends the session with `-ERR [code] text` (shutdown, timeout, store
    /// unreachable); [`Self::poll`] then says [`Event::Close`].
    pub fn close(&mut self, code: Option<ResponseCode>, text: &str) {
        if self.state != State::Closed {
            self.reply(false, code, text);
            self.state = State::Closed;
        }
    }
}
