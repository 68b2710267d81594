//! The client side: logging in to the message store on the user's behalf.
//!
//! ```text
//! S: +OK ready [<timestamp>]          C: CAPA
//! S: +OK ... STLS ... XCLIENT ... .   C: STLS        (when asked for)
//!    (XCLIENT is offered in CAPA, or as Dovecot does, by an `[XCLIENT]`
//!    code in the greeting)
//! S: +OK                              (caller upgrades to TLS; CAPA again)
//!                                     C: XCLIENT ADDR=192.0.2.1 PORT=51000
//! S: +OK                              C: USER u / PASS p, or
//!                                     C: AUTH PLAIN <base64(user\0admin\0pw)>
//! S: +OK                              -> ClientEvent::LoggedIn
//! ```

use portcullis_sasl::Password;
use portcullis_sasl::framing;
use zeroize::Zeroizing;

use crate::line::{Line, LineBuffer};
use crate::{Command, Error, Response};

/// The longest line accepted from the store, without CRLF.
pub const MAX_STORE_LINE: usize = 1024;

/// How to log in to the store.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Login {
    /// `USER user` / `PASS password` (the client's own password).
    UserPass {
        /// The mailbox name.
        user: String,
        /// The password.
        password: Password,
    },
    /// `AUTH PLAIN` with an initial response (RFC 5034, RFC 4616): the
    /// master-user form has `authzid` = the user, `authcid` = the admin.
    Plain {
        /// Whom to act as.
        authzid: String,
        /// Who authenticates.
        authcid: String,
        /// The authcid's password.
        password: Password,
    },
}

/// How a client session logs in.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Use STLS; the login fails when the store does not offer it.
    pub stls: bool,
    /// TLS is already active (implicit TLS to the store).
    pub tls_active: bool,
    /// XCLIENT attributes (ADDR, PORT, SESSION, TTL, FORWARD), sent when
    /// non-empty; the login fails when the store does not offer XCLIENT.
    pub xclient: Vec<(String, String)>,
    /// The login.
    pub login: Login,
}

impl ClientConfig {
    /// A configuration without TLS or XCLIENT.
    pub fn new(login: Login) -> Self {
        Self {
            stls: false,
            tls_active: false,
            xclient: Vec::new(),
            login,
        }
    }
}

/// What the caller must do next.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// Write the output, feed more input.
    NeedMoreInput,
    /// The store said `+OK` to STLS: start TLS, then call
    /// [`ClientSession::tls_established`]. `discarded` octets read after
    /// the `+OK` were dropped.
    StartTls {
        /// Plaintext octets dropped.
        discarded: usize,
    },
    /// Logged in; relay [`ClientSession::take_pending_input`] and all
    /// further bytes to the client.
    LoggedIn,
    /// The store refused (greeting, XCLIENT or login): pass the code on.
    Refused(Response),
    /// The store spoke out of protocol; close the connection.
    Failed(Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Greeting,
    Capa { in_list: bool },
    Stls,
    AwaitTls,
    Xclient,
    User,
    Pass,
    Auth,
    Done,
}

/// A POP3 client session toward the message store.
#[derive(Debug)]
pub struct ClientSession {
    config: ClientConfig,
    state: State,
    input: LineBuffer,
    output: Zeroizing<Vec<u8>>,
    capabilities: Vec<String>,
    apop_timestamp: Option<String>,
    /// The greeting carried `[XCLIENT]` (Dovecot offers XCLIENT to trusted
    /// networks there, not in CAPA).
    greeting_xclient: bool,
    outcome: Option<ClientEvent>,
}

impl ClientSession {
    /// Starts a session; nothing is written before the greeting.
    pub fn new(config: ClientConfig) -> Self {
        Self {
            config,
            state: State::Greeting,
            input: LineBuffer::new(MAX_STORE_LINE),
            output: Zeroizing::new(Vec::new()),
            capabilities: Vec::new(),
            apop_timestamp: None,
            greeting_xclient: false,
            outcome: None,
        }
    }

    /// Adds bytes read from the store.
    pub fn feed(&mut self, data: &[u8]) {
        self.input.feed(data);
    }

    /// Takes the bytes to write to the store (wiped on drop: they may hold
    /// a password).
    pub fn take_output(&mut self) -> Zeroizing<Vec<u8>> {
        std::mem::replace(&mut self.output, Zeroizing::new(Vec::new()))
    }

    /// After [`ClientEvent::LoggedIn`]: store bytes already read.
    pub fn take_pending_input(&mut self) -> Zeroizing<Vec<u8>> {
        if self.outcome == Some(ClientEvent::LoggedIn) {
            self.input.take_all()
        } else {
            Zeroizing::new(Vec::new())
        }
    }

    /// The store's capabilities (CAPA keywords and arguments, as sent).
    pub fn capabilities(&self) -> &[String] {
        &self.capabilities
    }

    /// The APOP timestamp of the store's greeting, if any.
    pub fn apop_timestamp(&self) -> Option<&str> {
        self.apop_timestamp.as_deref()
    }

    fn has_capability(&self, name: &str) -> bool {
        self.capabilities.iter().any(|c| {
            c.split(' ')
                .next()
                .is_some_and(|k| k.eq_ignore_ascii_case(name))
        })
    }

    /// The TLS handshake after [`ClientEvent::StartTls`] succeeded.
    ///
    /// # Errors
    ///
    /// [`Error::ApiMisuse`] when no STLS was pending.
    pub fn tls_established(&mut self) -> Result<(), Error> {
        if self.state != State::AwaitTls {
            return Err(Error::ApiMisuse("no STLS pending"));
        }
        self.config.tls_active = true;
        self.capabilities.clear();
        self.send(&Command::Capa);
        self.state = State::Capa { in_list: false };
        Ok(())
    }

    fn send(&mut self, command: &Command) {
        match command.encode() {
            Ok(bytes) => self.output.extend_from_slice(&bytes),
            Err(e) => self.finish(ClientEvent::Failed(e)),
        }
    }

    fn finish(&mut self, event: ClientEvent) {
        self.state = State::Done;
        if self.outcome.is_none() {
            self.outcome = Some(event);
        }
    }

    /// The next event.
    pub fn poll(&mut self) -> ClientEvent {
        loop {
            if let Some(o) = &self.outcome {
                return match o {
                    ClientEvent::LoggedIn => ClientEvent::LoggedIn,
                    ClientEvent::Refused(r) => ClientEvent::Refused(r.clone()),
                    ClientEvent::Failed(e) => ClientEvent::Failed(e.clone()),
                    _ => ClientEvent::Failed(Error::ApiMisuse("finished")),
                };
            }
            if self.state == State::AwaitTls {
                return ClientEvent::NeedMoreInput;
            }
            let line = match self.input.next_line() {
                Line::Incomplete => return ClientEvent::NeedMoreInput,
                Line::TooLong => {
                    self.finish(ClientEvent::Failed(Error::LineTooLong {
                        limit: MAX_STORE_LINE,
                    }));
                    continue;
                }
                Line::Complete(l) => l,
            };
            if let Some(e) = self.line(&line) {
                return e;
            }
        }
    }

    fn line(&mut self, line: &[u8]) -> Option<ClientEvent> {
        if let State::Capa { in_list: true } = self.state {
            if line == b"." {
                return self.after_capa();
            }
            // Dot-stuffing (RFC 1939 §3).
            let l = line.strip_prefix(b".").unwrap_or(line);
            if self.capabilities.len() < 64 {
                self.capabilities
                    .push(String::from_utf8_lossy(l).into_owned());
            }
            return None;
        }
        let response = match Response::parse(line) {
            Ok(r) => r,
            Err(e) => {
                self.finish(ClientEvent::Failed(e));
                return None;
            }
        };
        if !response.ok {
            if let State::Capa { .. } = self.state {
                // No CAPA: carry on without capabilities.
                return self.after_capa();
            }
            self.finish(ClientEvent::Refused(response));
            return None;
        }
        match self.state {
            State::Greeting => {
                self.apop_timestamp = timestamp(&response.text);
                self.greeting_xclient = matches!(
                    &response.code,
                    Some(crate::ResponseCode::Other(c)) if c.eq_ignore_ascii_case("XCLIENT")
                );
                self.send(&Command::Capa);
                self.state = State::Capa { in_list: false };
            }
            State::Capa { .. } => self.state = State::Capa { in_list: true },
            State::Stls => {
                let discarded = self.input.discard();
                self.state = State::AwaitTls;
                return Some(ClientEvent::StartTls { discarded });
            }
            State::Xclient => self.login(),
            State::User => {
                if let Login::UserPass { password, .. } = &self.config.login {
                    let c = Command::Pass(password.clone());
                    self.send(&c);
                }
                self.state = State::Pass;
            }
            State::Pass | State::Auth => self.finish(ClientEvent::LoggedIn),
            State::AwaitTls | State::Done => {}
        }
        None
    }

    fn after_capa(&mut self) -> Option<ClientEvent> {
        if self.config.stls && !self.config.tls_active {
            if !self.has_capability("STLS") {
                self.finish(ClientEvent::Failed(Error::UnexpectedReply(
                    "the store does not offer STLS",
                )));
                return None;
            }
            self.send(&Command::Stls);
            self.state = State::Stls;
            return None;
        }
        if !self.config.xclient.is_empty() {
            if !self.greeting_xclient && !self.has_capability("XCLIENT") {
                self.finish(ClientEvent::Failed(Error::UnexpectedReply(
                    "the store does not offer XCLIENT",
                )));
                return None;
            }
            let c = Command::Xclient(self.config.xclient.clone());
            self.send(&c);
            self.state = State::Xclient;
            return None;
        }
        self.login();
        None
    }

    fn login(&mut self) {
        match &self.config.login {
            Login::UserPass { user, .. } => {
                let c = Command::User(user.clone());
                self.send(&c);
                self.state = State::User;
            }
            Login::Plain {
                authzid,
                authcid,
                password,
            } => {
                let mut msg = Zeroizing::new(Vec::new());
                msg.extend_from_slice(authzid.as_bytes());
                msg.push(0);
                msg.extend_from_slice(authcid.as_bytes());
                msg.push(0);
                msg.extend_from_slice(password.as_bytes());
                let ir = Zeroizing::new(framing::encode_initial_response(&msg));
                let c = Command::Auth {
                    mechanism: Some("PLAIN".to_owned()),
                    initial_response: Some(ir.to_string()),
                };
                self.send(&c);
                self.state = State::Auth;
            }
        }
    }
}

/// The `<...>` timestamp in a greeting text (RFC 1939 §7).
fn timestamp(text: &str) -> Option<String> {
    let start = text.find('<')?;
    let end = start + text[start..].find('>')?;
    let t = &text[start..=end];
    t.bytes()
        .all(|b| b.is_ascii_graphic())
        .then(|| t.to_owned())
}
