//! The client side: logging in to the message store on the user's behalf.
//!
//! ```text
//! S: * OK [CAPABILITY ...] ready      C: P1 CAPABILITY   (when the greeting has none)
//! S: * CAPABILITY ... / P1 OK         C: P2 STARTTLS     (when asked for)
//! S: P2 OK                            (caller upgrades to TLS; CAPABILITY again)
//!                                     C: P4 ID ("x-originating-ip" "192.0.2.1" ...)
//! S: * ID (...) / P4 OK               C: P5 LOGIN user password, or
//!                                     C: P5 AUTHENTICATE PLAIN <base64(user\0admin\0pw)>
//! S: P5 OK [CAPABILITY ...]           -> ClientEvent::LoggedIn
//! ```

use std::collections::VecDeque;

use imap_codec::decode::{Decoder, GreetingDecodeError, ResponseDecodeError};
use imap_codec::imap_types::auth::AuthMechanism;
use imap_codec::imap_types::command::{Command as CodecCommand, CommandBody};
use imap_codec::imap_types::core::{IString, NString};
use imap_codec::imap_types::response::{
    Code, Data, GreetingKind, Response, Status as CodecStatus, StatusBody, StatusKind as CodecKind,
};
use imap_codec::{GreetingCodec, ResponseCodec};
use portcullis_sasl::Password;
use portcullis_sasl::framing;
use zeroize::Zeroizing;

use crate::reader::{Frame, MessageReader};
use crate::wire::{self, Piece};
use crate::{Error, ResponseCode, Status, StatusKind};

/// The longest line accepted from the store, without CRLF.
pub const MAX_STORE_LINE: usize = 65536;

/// The longest response (lines and literals) accepted from the store
/// before login.
pub const MAX_STORE_RESPONSE: usize = 262_144;

/// How to log in to the store.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Login {
    /// `LOGIN user password` (the client's own password); a literal is used
    /// when a value needs one.
    Login {
        /// The user name.
        user: String,
        /// The password.
        password: Password,
    },
    /// `AUTHENTICATE PLAIN` (RFC 4616), with an initial response when the
    /// store offers SASL-IR: the master-user form has `authzid` = the user,
    /// `authcid` = the admin.
    Plain {
        /// Whom to act as.
        authzid: String,
        /// Who authenticates.
        authcid: String,
        /// The authcid's password.
        password: Password,
    },
}

/// The client's identity as the store should see it, sent with ID
/// (the fields Dovecot believes from its `login_trusted_networks`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyId {
    /// The client's address and port (`x-originating-ip`/`-port`).
    pub originating: std::net::SocketAddr,
    /// The address and port the client connected to (`x-connected-ip`/`-port`).
    pub connected: std::net::SocketAddr,
    /// Our session id (`x-session-id`), shown in the store's logs.
    pub session_id: String,
    /// How many more proxies may forward the session (`x-proxy-ttl`).
    pub ttl: u8,
}

impl ProxyId {
    /// The ID fields, in the order above.
    pub fn fields(&self) -> Vec<(String, String)> {
        [
            ("x-originating-ip", self.originating.ip().to_string()),
            ("x-originating-port", self.originating.port().to_string()),
            ("x-connected-ip", self.connected.ip().to_string()),
            ("x-connected-port", self.connected.port().to_string()),
            ("x-session-id", self.session_id.clone()),
            ("x-proxy-ttl", self.ttl.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

/// How a client session logs in.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Use STARTTLS; the login fails when the store does not offer it
    /// (never a silent fallback to plaintext).
    pub starttls: bool,
    /// TLS is already active (implicit TLS to the store).
    pub tls_active: bool,
    /// ID fields sent before the login (`x-originating-ip`,
    /// `x-originating-port`, `x-connected-ip`, `x-connected-port`,
    /// `x-session-id`, `x-proxy-ttl`, ...), when non-empty; the login fails
    /// when the store does not offer ID.
    pub id: Vec<(String, String)>,
    /// The login.
    pub login: Login,
}

impl ClientConfig {
    /// A configuration without TLS or ID.
    pub fn new(login: Login) -> Self {
        Self {
            starttls: false,
            tls_active: false,
            id: Vec::new(),
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
    /// The store said OK to STARTTLS: start TLS, then call
    /// [`ClientSession::tls_established`]. `discarded` octets read after
    /// the OK were dropped.
    StartTls {
        /// Plaintext octets dropped.
        discarded: usize,
    },
    /// Logged in; [`ClientSession::capabilities`] holds the store's
    /// post-login capabilities. Relay [`ClientSession::take_pending_input`]
    /// and all further bytes to the client.
    LoggedIn,
    /// The store refused (BYE greeting, NO/BAD to a command, BYE): pass the
    /// code on.
    Refused(Status),
    /// The store spoke out of protocol; close the connection.
    Failed(Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Greeting,
    Capability,
    StartTls,
    AwaitTls,
    Id,
    Login,
    PostLoginCapability,
    Done,
}

/// An IMAP client session toward the message store.
#[derive(Debug)]
pub struct ClientSession {
    config: ClientConfig,
    state: State,
    reader: MessageReader,
    output: Zeroizing<Vec<u8>>,
    capabilities: Vec<String>,
    /// Pieces of the current command still to send after a continuation.
    pending: VecDeque<Piece>,
    /// A SASL response to send on the next continuation request.
    auth_response: Option<Zeroizing<Vec<u8>>>,
    next_tag: u32,
    tag: String,
    outcome: Option<ClientEvent>,
}

fn status_of(kind: StatusKind, body_code: Option<&Code<'_>>, text: &str) -> Status {
    Status {
        kind,
        code: body_code.and_then(ResponseCode::from_codec),
        text: text.to_owned(),
    }
}

fn kind_of(kind: CodecKind) -> StatusKind {
    match kind {
        CodecKind::Ok => StatusKind::Ok,
        CodecKind::No => StatusKind::No,
        CodecKind::Bad => StatusKind::Bad,
    }
}

impl ClientSession {
    /// Starts a session; nothing is written before the greeting.
    pub fn new(config: ClientConfig) -> Self {
        Self {
            config,
            state: State::Greeting,
            reader: MessageReader::new(MAX_STORE_LINE, MAX_STORE_RESPONSE),
            output: Zeroizing::new(Vec::new()),
            capabilities: Vec::new(),
            pending: VecDeque::new(),
            auth_response: None,
            next_tag: 1,
            tag: String::new(),
            outcome: None,
        }
    }

    /// Adds bytes read from the store. Before login, unread input is
    /// bounded (twice [`MAX_STORE_RESPONSE`]); beyond it the login fails.
    pub fn feed(&mut self, data: &[u8]) {
        self.reader.feed(data);
        if self.outcome.is_none() && self.reader.unread() > 2 * MAX_STORE_RESPONSE {
            self.reader.discard();
            self.fail("more input than any answer before login");
        }
    }

    /// Takes the bytes to write to the store (wiped on drop: they may hold
    /// a password).
    pub fn take_output(&mut self) -> Zeroizing<Vec<u8>> {
        std::mem::replace(&mut self.output, Zeroizing::new(Vec::new()))
    }

    /// After [`ClientEvent::LoggedIn`]: store bytes already read.
    pub fn take_pending_input(&mut self) -> Zeroizing<Vec<u8>> {
        if self.outcome == Some(ClientEvent::LoggedIn) {
            self.reader.take_all()
        } else {
            Zeroizing::new(Vec::new())
        }
    }

    /// The store's latest capabilities (after login: the post-login ones).
    pub fn capabilities(&self) -> &[String] {
        &self.capabilities
    }

    /// The TLS handshake after [`ClientEvent::StartTls`] succeeded.
    ///
    /// # Errors
    ///
    /// [`Error::ApiMisuse`] when no STARTTLS was pending.
    pub fn tls_established(&mut self) -> Result<(), Error> {
        if self.state != State::AwaitTls {
            return Err(Error::ApiMisuse("no STARTTLS pending"));
        }
        self.config.tls_active = true;
        self.capabilities.clear();
        self.send(CommandBody::Capability);
        self.state = State::Capability;
        Ok(())
    }

    fn send(&mut self, body: CommandBody<'static>) {
        self.tag = format!("P{}", self.next_tag);
        self.next_tag = self.next_tag.saturating_add(1);
        let command = match CodecCommand::new(self.tag.clone(), body) {
            Ok(c) => c,
            Err(_) => {
                self.finish(ClientEvent::Failed(Error::Encode("tag")));
                return;
            }
        };
        self.pending = wire::command_pieces(&command).into();
        self.flush_pieces(false);
    }

    /// Sends pieces up to the next synchronizing literal; with
    /// `continued`, the first piece is that literal.
    fn flush_pieces(&mut self, mut continued: bool) {
        while let Some(piece) = self.pending.front() {
            if let Piece::Literal { sync: true, .. } = piece
                && !continued
            {
                return;
            }
            continued = false;
            match self.pending.pop_front() {
                Some(Piece::Line(l)) => self.output.extend_from_slice(&l),
                Some(Piece::Literal { data, .. }) => self.output.extend_from_slice(&data),
                None => return,
            }
        }
    }

    fn finish(&mut self, event: ClientEvent) {
        self.state = State::Done;
        if self.outcome.is_none() {
            self.outcome = Some(event);
        }
    }

    fn fail(&mut self, what: &'static str) {
        self.finish(ClientEvent::Failed(Error::UnexpectedReply(what)));
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
            match self.reader.next() {
                Frame::Incomplete => return ClientEvent::NeedMoreInput,
                Frame::Literal { length, .. } => {
                    // Server-to-client literals need no continuation, but
                    // are bounded like everything the store sends.
                    if self.reader.fits(length) {
                        self.reader.accept_literal();
                    } else {
                        self.finish(ClientEvent::Failed(Error::TooBig {
                            length,
                            limit: MAX_STORE_RESPONSE as u64,
                        }));
                    }
                }
                Frame::BadLine { too_long: true, .. } | Frame::TooBig { .. } => {
                    self.finish(ClientEvent::Failed(Error::LineTooLong {
                        limit: MAX_STORE_LINE,
                    }));
                }
                Frame::BadLine { .. } | Frame::SkippedLiteral => {
                    self.fail("a line not ending in CRLF");
                }
                Frame::Message(m) => {
                    if let Some(e) = self.message(&m) {
                        return e;
                    }
                }
            }
        }
    }

    fn message(&mut self, m: &[u8]) -> Option<ClientEvent> {
        if self.state == State::Greeting {
            self.greeting(m);
            return None;
        }
        let response = match ResponseCodec::default().decode(m) {
            Ok(([], r)) => r,
            Ok(_)
            | Err(ResponseDecodeError::Incomplete | ResponseDecodeError::LiteralFound { .. }) => {
                self.fail("an incomplete response");
                return None;
            }
            Err(ResponseDecodeError::Failed) => {
                // Untagged data this parser does not know is skipped.
                if !m.starts_with(b"* ") {
                    self.fail("an undecodable response");
                }
                return None;
            }
        };
        match response {
            Response::CommandContinuationRequest(_) => self.continuation(),
            Response::Data(Data::Capability(caps)) => {
                self.capabilities = caps.as_ref().iter().map(ToString::to_string).collect();
            }
            Response::Data(_) => {}
            Response::Status(CodecStatus::Bye(bye)) => {
                let s = status_of(StatusKind::Bye, bye.code.as_ref(), bye.text.inner());
                self.finish(ClientEvent::Refused(s));
            }
            Response::Status(CodecStatus::Untagged(_)) => {}
            Response::Status(CodecStatus::Tagged(t)) => {
                if t.tag.inner() != self.tag {
                    self.fail("a tagged response to no command");
                    return None;
                }
                return self.tagged(&t.body);
            }
        }
        None
    }

    fn greeting(&mut self, m: &[u8]) {
        let greeting = match GreetingCodec::default().decode(m) {
            Ok(([], g)) => g,
            Ok(_) | Err(GreetingDecodeError::Incomplete | GreetingDecodeError::Failed) => {
                self.fail("an invalid greeting");
                return;
            }
        };
        match greeting.kind {
            GreetingKind::Ok => {}
            GreetingKind::Bye => {
                let s = status_of(
                    StatusKind::Bye,
                    greeting.code.as_ref(),
                    greeting.text.inner(),
                );
                self.finish(ClientEvent::Refused(s));
                return;
            }
            GreetingKind::PreAuth => {
                self.fail("a PREAUTH greeting");
                return;
            }
        }
        if let Some(Code::Capability(caps)) = &greeting.code {
            self.capabilities = caps.as_ref().iter().map(ToString::to_string).collect();
            self.after_capability();
        } else {
            self.send(CommandBody::Capability);
            self.state = State::Capability;
        }
    }

    fn continuation(&mut self) {
        if self.state != State::Login {
            self.fail("a continuation request to no literal");
            return;
        }
        if let Some(response) = self.auth_response.take() {
            let line = Zeroizing::new(framing::encode_response(&response));
            self.output.extend_from_slice(&line);
        } else if matches!(self.pending.front(), Some(Piece::Literal { .. })) {
            self.flush_pieces(true);
        } else {
            // A second challenge to PLAIN, or a "+" to no literal.
            self.fail("a continuation request to no literal");
        }
    }

    fn tagged(&mut self, body: &StatusBody<'_>) -> Option<ClientEvent> {
        let kind = kind_of(body.kind);
        if kind != StatusKind::Ok {
            let s = status_of(kind, body.code.as_ref(), body.text.inner());
            self.finish(ClientEvent::Refused(s));
            return None;
        }
        if let Some(Code::Capability(caps)) = &body.code {
            self.capabilities = caps.as_ref().iter().map(ToString::to_string).collect();
        }
        match self.state {
            State::Capability => self.after_capability(),
            State::StartTls => {
                let discarded = self.reader.discard();
                self.state = State::AwaitTls;
                return Some(ClientEvent::StartTls { discarded });
            }
            State::Id => self.login(),
            State::Login => {
                self.pending.clear();
                self.auth_response = None;
                // Capabilities from the OK's code or an untagged
                // CAPABILITY sent with the login's answer.
                if !self.capabilities.is_empty() {
                    self.finish(ClientEvent::LoggedIn);
                } else {
                    self.capabilities.clear();
                    self.send(CommandBody::Capability);
                    self.state = State::PostLoginCapability;
                }
            }
            State::PostLoginCapability => self.finish(ClientEvent::LoggedIn),
            State::Greeting | State::AwaitTls | State::Done => {}
        }
        None
    }

    fn has(&self, name: &str) -> bool {
        crate::capability::has(&self.capabilities, name)
    }

    fn after_capability(&mut self) {
        if self.config.starttls && !self.config.tls_active {
            if !self.has("STARTTLS") {
                self.fail("the store does not offer STARTTLS");
                return;
            }
            self.send(CommandBody::StartTLS);
            self.state = State::StartTls;
            return;
        }
        if !self.config.id.is_empty() {
            if !self.has("ID") {
                self.fail("the store does not offer ID");
                return;
            }
            let parameters: Result<Vec<_>, Error> = self
                .config
                .id
                .iter()
                .map(|(k, v)| {
                    let k = IString::try_from(k.clone()).map_err(|_| Error::Encode("ID field"))?;
                    let v = IString::try_from(v.clone()).map_err(|_| Error::Encode("ID value"))?;
                    Ok((k, NString(Some(v))))
                })
                .collect();
            match parameters {
                Ok(p) => {
                    self.send(CommandBody::Id {
                        parameters: Some(p),
                    });
                    self.state = State::Id;
                }
                Err(e) => self.finish(ClientEvent::Failed(e)),
            }
            return;
        }
        self.login();
    }

    fn login(&mut self) {
        let body = match &self.config.login {
            Login::Login { user, password } => {
                if self.has("LOGINDISABLED") {
                    self.fail("the store disables LOGIN");
                    return;
                }
                match CommandBody::login(user.clone(), password.expose().to_owned()) {
                    Ok(b) => b,
                    Err(_) => {
                        self.finish(ClientEvent::Failed(Error::Encode(
                            "LOGIN user name or password",
                        )));
                        return;
                    }
                }
            }
            Login::Plain {
                authzid,
                authcid,
                password,
            } => {
                if [authzid.as_bytes(), authcid.as_bytes(), password.as_bytes()]
                    .iter()
                    .any(|v| v.contains(&0))
                {
                    self.finish(ClientEvent::Failed(Error::Encode(
                        "NUL in a PLAIN identity",
                    )));
                    return;
                }
                let mut msg = Zeroizing::new(Vec::new());
                msg.extend_from_slice(authzid.as_bytes());
                msg.push(0);
                msg.extend_from_slice(authcid.as_bytes());
                msg.push(0);
                msg.extend_from_slice(password.as_bytes());
                if self.has("SASL-IR") {
                    CommandBody::authenticate_with_ir(AuthMechanism::Plain, msg.to_vec())
                } else {
                    self.auth_response = Some(msg);
                    CommandBody::authenticate(AuthMechanism::Plain)
                }
            }
        };
        self.send(body);
        self.state = State::Login;
        // What the store says after the login replaces these.
        self.capabilities.clear();
    }
}
