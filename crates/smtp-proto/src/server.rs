//! The server side: the whole SMTP conversation with a submission client.
//!
//! The session answers what needs no one else (EHLO/HELO, NOOP, RSET,
//! QUIT, VRFY, EXPN, HELP, syntax errors, sequence errors, limits) and
//! hands the rest to the caller as [`Event`]s. While an answer is due it
//! reads nothing more, so pipelined commands (RFC 2920) are answered in
//! order. The caller answers with [`ServerSession::answer`] (MAIL, RCPT,
//! DATA, the end of the data), [`ServerSession::data_ok`],
//! [`ServerSession::auth_challenge`] / [`ServerSession::auth_ok`] /
//! [`ServerSession::auth_fail`], [`ServerSession::starttls_ok`] or
//! [`ServerSession::reject`].

use std::collections::VecDeque;

use portcullis_sasl::Authenticated;
use portcullis_sasl::framing::{self, Failure, Protocol};
use zeroize::Zeroizing;

use crate::command::{Command, MailFrom, RcptTo};
use crate::data::{BareNewline, DataScanner, Framing, Limits, MAX_TEXT_LINE, Violation};
use crate::reply::{self, Reply};
use crate::{Error, domain};

/// The longest command line, CR LF included (RFC 5321 §4.5.3.1.4).
pub const MAX_COMMAND_LINE: usize = 512;

/// How a server session behaves.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The name in the greeting and the EHLO reply.
    pub hostname: String,
    /// TLS is already active (implicit TLS port, or after STARTTLS).
    pub tls_active: bool,
    /// STARTTLS may be offered (a TLS configuration exists).
    pub starttls_available: bool,
    /// SASL mechanisms to advertise (from `portcullis_sasl::Policy`).
    pub sasl_mechanisms: Vec<String>,
    /// AUTH is refused (`538 5.7.11`) and not advertised without TLS. On by
    /// default.
    pub auth_requires_tls: bool,
    /// The largest message in octets (EHLO `SIZE`, MAIL `SIZE=`, the
    /// content itself); 0 means no limit.
    pub max_message_size: u64,
    /// Recipients accepted per message.
    pub max_recipients: usize,
    /// Messages accepted per connection.
    pub max_messages: u32,
    /// Errors (bad commands, failed logins) before the connection is closed.
    pub max_errors: u32,
    /// What a bare LF or CR in a command or message gets.
    pub bare_newline: BareNewline,
    /// Offer SMTPUTF8 (RFC 6531).
    pub smtputf8: bool,
    /// Offer CHUNKING (RFC 3030 BDAT).
    pub chunking: bool,
    /// Offer DSN (RFC 3461: RET, ENVID, NOTIFY, ORCPT).
    pub dsn: bool,
    /// The longest command line other than AUTH, CR LF included.
    pub max_command_line: usize,
    /// The longest message line, CR LF included.
    pub max_text_line: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            hostname: "localhost".to_owned(),
            tls_active: false,
            starttls_available: false,
            sasl_mechanisms: Vec::new(),
            auth_requires_tls: true,
            max_message_size: 10 * 1024 * 1024,
            max_recipients: 100,
            max_messages: 100,
            max_errors: 10,
            bare_newline: BareNewline::Reject,
            smtputf8: true,
            chunking: true,
            dsn: false,
            max_command_line: MAX_COMMAND_LINE,
            max_text_line: MAX_TEXT_LINE,
        }
    }
}

/// The configuration parameters [`ServerConfig::apply_parameters`] reads.
pub const SERVER_PARAMETERS: [&str; 5] = [
    "service.smtp.barenewline",
    "service.smtp.maxmessagesize",
    "service.smtp.maxrecipients",
    "service.smtp.maxmessages",
    "service.smtp.maxerrors",
];

impl ServerConfig {
    /// Offers only what the relay can take: SMTPUTF8 and DSN when the
    /// relay's EHLO reply has them and `filter` (`mmp.ehlokeywords` on top
    /// of the default set) shows them, and a message size no larger than the
    /// relay's `SIZE`. CHUNKING, PIPELINING and ENHANCEDSTATUSCODES are the
    /// front end's own (BDAT goes on as DATA when the relay lacks it).
    /// Other keywords of the relay are not shown: their parameters would be
    /// refused here, and nothing unchecked goes on to the relay.
    pub fn follow_relay(
        &mut self,
        relay_ehlo: &Reply,
        filter: &portcullis_popbeforesmtp::relay::EhloFilter,
    ) {
        use portcullis_popbeforesmtp::relay::ehlo;
        let shown = filter.filter(relay_ehlo);
        self.smtputf8 = self.smtputf8 && ehlo::offers(&shown, "SMTPUTF8");
        self.dsn = ehlo::offers(&shown, "DSN");
        let relay_size = ehlo::extension(relay_ehlo, "SIZE")
            .and_then(|l| ehlo::params(l).first().and_then(|n| n.parse::<u64>().ok()))
            .filter(|n| *n > 0);
        if let Some(n) = relay_size
            && (self.max_message_size == 0 || n < self.max_message_size)
        {
            self.max_message_size = n;
        }
    }

    /// Sets the policy fields from configuration parameters
    /// ([`SERVER_PARAMETERS`]): `get` returns a parameter's value as text,
    /// or `None` (or an empty string) when it is unset, for example
    /// `|name| config.string(name).ok()` over the Portcullis configuration
    /// file. Unset parameters keep the current values.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidValue`] for a bare newline policy other than
    /// `reject` or `normalize`, or a limit that is not a positive integer
    /// (the size may be 0: no limit).
    pub fn apply_parameters(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), Error> {
        let value = |name: &str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let number = |name: &str, zero_ok: bool| -> Result<Option<u64>, Error> {
            value(name)
                .map(|v| match v.parse::<u64>() {
                    Ok(n) if n > 0 || zero_ok => Ok(n),
                    _ => Err(Error::InvalidValue("SMTP limits must be positive integers")),
                })
                .transpose()
        };
        if let Some(v) = value("service.smtp.barenewline") {
            self.bare_newline = v.parse()?;
        }
        if let Some(n) = number("service.smtp.maxmessagesize", true)? {
            self.max_message_size = n;
        }
        if let Some(n) = number("service.smtp.maxrecipients", false)? {
            self.max_recipients = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(n) = number("service.smtp.maxmessages", false)? {
            self.max_messages = u32::try_from(n).unwrap_or(u32::MAX);
        }
        if let Some(n) = number("service.smtp.maxerrors", false)? {
            self.max_errors = u32::try_from(n).unwrap_or(u32::MAX);
        }
        Ok(())
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
    /// EHLO or HELO was answered (no answer due); the name is for the
    /// relay hand-off (XCLIENT HELO).
    Greeted {
        /// The checked domain or address literal.
        domain: String,
        /// EHLO rather than HELO.
        extended: bool,
    },
    /// STARTTLS: answer [`ServerSession::starttls_ok`] and start the TLS
    /// handshake, or [`ServerSession::reject`].
    StartTls,
    /// AUTH: start a `portcullis_sasl::framing::AuthExchange` with
    /// `Protocol::Smtp` and these.
    Auth {
        /// The mechanism name as sent.
        mechanism: Vec<u8>,
        /// The initial response as sent (base64 or `=`), if any.
        initial_response: Option<Zeroizing<Vec<u8>>>,
    },
    /// A client line during AUTH, after [`ServerSession::auth_challenge`]:
    /// pass it to `AuthExchange::line` (`*` cancels there).
    AuthResponse {
        /// The line without CR LF.
        line: Zeroizing<Vec<u8>>,
    },
    /// MAIL FROM, checked against syntax, sequence and limits: decide who
    /// may send (AUTH, POP-before-SMTP, sender check), send
    /// [`MailFrom::to_line`] to the relay, then [`ServerSession::answer`].
    Mail(MailFrom),
    /// RCPT TO, checked against sequence and the recipient limit: send
    /// [`RcptTo::to_line`] to the relay, then [`ServerSession::answer`].
    Rcpt(RcptTo),
    /// The client wants to send the message (DATA, or the first BDAT
    /// chunk): open the relay's body, then [`ServerSession::data_ok`] (or
    /// [`ServerSession::answer`] with a refusal).
    Data {
        /// BDAT rather than DATA.
        chunked: bool,
    },
    /// Message content (dot-unstuffed, every line ending CR LF, no bare CR
    /// or LF): send it on to the relay.
    Body(Vec<u8>),
    /// The message is complete: end it at the relay, then
    /// [`ServerSession::answer`] with the relay's reply.
    EndOfData {
        /// Octets of content.
        size: u64,
    },
    /// The message broke a rule: abandon it at the relay (RSET after BDAT
    /// chunks; a DATA in progress cannot be reset, close that relay
    /// connection) and never end it there. The session reads on to the end
    /// of the data and answers the client itself; no answer is due.
    BodyAborted(Violation),
    /// The mail transaction is gone (RSET, EHLO, HELO or STARTTLS): RSET
    /// the relay if it had one open (`Transaction::rset` says when only
    /// closing the relay connection will do). No answer due.
    Reset,
    /// QUIT: write the output, then close.
    Quit,
    /// Write the output, then close (too many errors, bare newline under
    /// the reject policy, a 421 answer, or [`ServerSession::close`]).
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaiting {
    Mail,
    Rcpt,
    Data { chunk: Option<(u64, bool)> },
    Auth,
    StartTls,
    EndOfData,
}

#[derive(Debug, Clone)]
enum State {
    Command,
    Awaiting(Awaiting),
    AuthLine,
    Body,
    Chunk { left: u64, last: bool },
    Skip { left: u64, reply: Reply },
    Closed,
}

#[derive(Debug, Clone)]
struct Transaction {
    smtputf8: bool,
    recipients: usize,
    scanner: Option<DataScanner>,
}

enum Line {
    Complete {
        line: Zeroizing<Vec<u8>>,
        bare_lf: bool,
    },
    TooLong,
    Incomplete,
}

/// An SMTP server session.
#[derive(Debug)]
pub struct ServerSession {
    config: ServerConfig,
    state: State,
    input: Zeroizing<Vec<u8>>,
    /// Octets of `input` already consumed (dropped at the next feed, so
    /// taking a line never copies the rest of the buffer).
    read: usize,
    skipping_line: bool,
    output: Vec<u8>,
    queued: VecDeque<Event>,
    helo: Option<String>,
    authenticated: bool,
    txn: Option<Transaction>,
    pending_utf8: bool,
    errors: u32,
    messages: u32,
    discarded: usize,
}

fn valid_hostname(h: &str) -> bool {
    domain::is_valid(h)
}

impl ServerSession {
    /// Starts a session; the greeting (`220 hostname ESMTP`) is the first
    /// output.
    ///
    /// # Errors
    ///
    /// [`Error::ApiMisuse`] for a hostname that is not a domain or address
    /// literal, a command line limit below 64 octets, or a text line limit
    /// below 80.
    pub fn new(config: ServerConfig) -> Result<Self, Error> {
        if !valid_hostname(&config.hostname) {
            return Err(Error::ApiMisuse(
                "hostname must be a domain or address literal",
            ));
        }
        if config.max_command_line < 64 {
            return Err(Error::ApiMisuse("command line limit below 64 octets"));
        }
        if config.max_text_line < 80 {
            return Err(Error::ApiMisuse("text line limit below 80 octets"));
        }
        let mut output = Vec::new();
        reply::push(
            &mut output,
            220,
            &format!("{} ESMTP ready", config.hostname),
        );
        Ok(Self {
            config,
            state: State::Command,
            input: Zeroizing::new(Vec::new()),
            read: 0,
            skipping_line: false,
            output,
            queued: VecDeque::new(),
            helo: None,
            authenticated: false,
            txn: None,
            pending_utf8: false,
            errors: 0,
            messages: 0,
            discarded: 0,
        })
    }

    /// Replaces the SASL mechanisms EHLO advertises, e.g. after the TLS
    /// handshake that followed [`Self::starttls_ok`].
    pub fn set_sasl_mechanisms(&mut self, mechanisms: Vec<String>) {
        self.config.sasl_mechanisms = mechanisms;
    }

    /// Adds bytes read from the client.
    pub fn feed(&mut self, data: &[u8]) {
        if !matches!(self.state, State::Closed) {
            if self.read > 0 {
                self.input.drain(..self.read);
                self.read = 0;
            }
            self.input.extend_from_slice(data);
        }
    }

    /// Takes the bytes to write to the client.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    /// Whether TLS is active (implicit, or after [`Self::starttls_ok`]).
    #[must_use]
    pub fn tls_active(&self) -> bool {
        self.config.tls_active
    }

    /// Whether AUTH succeeded on this connection (since the last STARTTLS).
    #[must_use]
    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    /// The EHLO/HELO name, once greeted.
    #[must_use]
    pub fn helo(&self) -> Option<&str> {
        self.helo.as_deref()
    }

    /// Whether a mail transaction (MAIL accepted, not yet ended) is open.
    #[must_use]
    pub fn in_transaction(&self) -> bool {
        self.txn.is_some()
    }

    /// Plaintext octets discarded at STARTTLS so far (they were pipelined
    /// after the STARTTLS command, CVE-2011-0411).
    #[must_use]
    pub fn discarded_after_starttls(&self) -> usize {
        self.discarded
    }

    fn push_reply(&mut self, r: &Reply) {
        self.output.extend_from_slice(&r.encode());
    }

    fn error(&mut self, r: &Reply) -> Option<Event> {
        self.push_reply(r);
        self.count_error()
    }

    fn count_error(&mut self) -> Option<Event> {
        self.errors = self.errors.saturating_add(1);
        if self.errors >= self.config.max_errors {
            reply::push(
                &mut self.output,
                421,
                "4.7.0 Too many errors, closing connection",
            );
            self.state = State::Closed;
            return Some(Event::Close);
        }
        None
    }

    fn close_with(&mut self, code: u16, text: &str) -> Event {
        reply::push(&mut self.output, code, text);
        self.state = State::Closed;
        Event::Close
    }

    fn next_line(&mut self, limit: usize) -> Line {
        loop {
            let avail = &self.input[self.read..];
            let Some(lf) = avail.iter().position(|&b| b == b'\n') else {
                if avail.len() > limit.saturating_add(1) {
                    self.input.clear();
                    self.read = 0;
                    if !self.skipping_line {
                        self.skipping_line = true;
                        return Line::TooLong;
                    }
                }
                return Line::Incomplete;
            };
            let start = self.read;
            self.read += lf + 1;
            if self.skipping_line {
                self.skipping_line = false;
                continue;
            }
            let body = &self.input[start..start + lf];
            let (body, bare_lf) = match body.strip_suffix(b"\r") {
                Some(b) => (b, false),
                None => (body, true),
            };
            if body.len() > limit {
                return Line::TooLong;
            }
            return Line::Complete {
                line: Zeroizing::new(body.to_vec()),
                bare_lf,
            };
        }
    }

    fn limits(&self) -> Limits {
        Limits {
            max_size: self.config.max_message_size,
            max_line: self.config.max_text_line,
        }
    }

    /// The next event.
    pub fn poll(&mut self) -> Event {
        loop {
            if let Some(e) = self.queued.pop_front() {
                return e;
            }
            match &self.state {
                State::Closed => return Event::Close,
                State::Awaiting(_) => return Event::Waiting,
                State::AuthLine => match self.next_line(framing::MAX_LINE) {
                    Line::Incomplete => return Event::NeedMoreInput,
                    Line::TooLong => {
                        self.state = State::Command;
                        let r = framing::failure_reply(Protocol::Smtp, None, Failure::TooLong);
                        self.output.extend_from_slice(&r);
                        if let Some(e) = self.count_error() {
                            return e;
                        }
                    }
                    Line::Complete { line, .. } => {
                        self.state = State::Awaiting(Awaiting::Auth);
                        return Event::AuthResponse { line };
                    }
                },
                State::Body => {
                    if let Some(e) = self.body() {
                        return e;
                    }
                }
                State::Chunk { .. } => {
                    if let Some(e) = self.chunk() {
                        return e;
                    }
                }
                State::Skip { .. } => {
                    if let Some(e) = self.skip() {
                        return e;
                    }
                }
                State::Command => {
                    let limit = self.config.max_command_line.max(framing::MAX_LINE + 32);
                    match self.next_line(limit) {
                        Line::Incomplete => return Event::NeedMoreInput,
                        Line::TooLong => {
                            if let Some(e) = self.error(&reply::line(500, "5.5.6 Line too long")) {
                                return e;
                            }
                        }
                        Line::Complete { line, bare_lf } => {
                            if let Some(e) = self.command(&line, bare_lf) {
                                return e;
                            }
                        }
                    }
                }
            }
        }
    }

    /// DATA content: scan what is buffered.
    fn body(&mut self) -> Option<Event> {
        let State::Body = self.state else {
            return None;
        };
        let Some(scanner) = self.txn.as_mut().and_then(|t| t.scanner.as_mut()) else {
            self.state = State::Command;
            return None;
        };
        if self.read >= self.input.len() {
            return Some(Event::NeedMoreInput);
        }
        let before = scanner.violation();
        let mut out = Vec::new();
        let n = scanner.scan(&self.input[self.read..], &mut out);
        self.read += n;
        let after = scanner.violation();
        let ended = scanner.is_ended();
        let size = scanner.size();
        self.scanned(out, before, after);
        if ended {
            self.end_of_body(after, size);
        }
        if self.queued.is_empty() {
            return Some(Event::NeedMoreInput);
        }
        None
    }

    /// Queues the content scanned, and the abort if this scan found the
    /// first violation.
    fn scanned(&mut self, out: Vec<u8>, before: Option<Violation>, after: Option<Violation>) {
        if !out.is_empty() {
            self.queued.push_back(Event::Body(out));
        }
        if before.is_none()
            && let Some(v) = after
        {
            self.queued.push_back(Event::BodyAborted(v));
        }
    }

    fn end_of_body(&mut self, violation: Option<Violation>, size: u64) {
        if let Some(v) = violation {
            self.txn = None;
            self.state = State::Command;
            self.push_reply(&v.reply());
        } else {
            self.state = State::Awaiting(Awaiting::EndOfData);
            self.queued.push_back(Event::EndOfData { size });
        }
    }

    /// A BDAT chunk: scan up to its end.
    fn chunk(&mut self) -> Option<Event> {
        let State::Chunk { left, last } = self.state else {
            return None;
        };
        let Some(scanner) = self.txn.as_mut().and_then(|t| t.scanner.as_mut()) else {
            self.state = State::Command;
            return None;
        };
        let take = usize::try_from(left)
            .unwrap_or(usize::MAX)
            .min(self.input.len() - self.read);
        if take == 0 && left > 0 {
            return Some(Event::NeedMoreInput);
        }
        let before = scanner.violation();
        let mut out = Vec::new();
        scanner.scan(&self.input[self.read..self.read + take], &mut out);
        self.read += take;
        let left = left - u64::try_from(take).unwrap_or(left);
        if left == 0 && last {
            scanner.finish(&mut out);
        }
        let after = scanner.violation();
        let size = scanner.size();
        self.scanned(out, before, after);
        if left > 0 {
            self.state = State::Chunk { left, last };
        } else if last {
            self.end_of_body(after, size);
        } else if let Some(v) = after {
            self.end_of_body(Some(v), size);
        } else {
            self.state = State::Command;
            reply::push(
                &mut self.output,
                250,
                &format!("2.0.0 {size} octets received"),
            );
        }
        if self.queued.is_empty() && left > 0 {
            return Some(Event::NeedMoreInput);
        }
        None
    }

    /// BDAT octets read and dropped, then the reply.
    fn skip(&mut self) -> Option<Event> {
        let State::Skip { left, reply } = &self.state else {
            return None;
        };
        let take = usize::try_from(*left)
            .unwrap_or(usize::MAX)
            .min(self.input.len() - self.read);
        let left = left - u64::try_from(take).unwrap_or(*left);
        self.read += take;
        if left > 0 {
            if let State::Skip { left: l, .. } = &mut self.state {
                *l = left;
            }
            return Some(Event::NeedMoreInput);
        }
        let reply = reply.clone();
        self.state = State::Command;
        self.error(&reply)
    }

    fn reset(&mut self) {
        if self.txn.take().is_some() {
            self.queued.push_back(Event::Reset);
        }
    }

    fn ehlo_reply(&self) -> Reply {
        let c = &self.config;
        let mut lines = vec![c.hostname.clone(), "PIPELINING".to_owned()];
        if c.max_message_size > 0 {
            lines.push(format!("SIZE {}", c.max_message_size));
        } else {
            lines.push("SIZE".to_owned());
        }
        lines.push("8BITMIME".to_owned());
        lines.push("ENHANCEDSTATUSCODES".to_owned());
        if c.smtputf8 {
            lines.push("SMTPUTF8".to_owned());
        }
        if c.chunking {
            lines.push("CHUNKING".to_owned());
        }
        if c.dsn {
            lines.push("DSN".to_owned());
        }
        if c.starttls_available && !c.tls_active {
            lines.push("STARTTLS".to_owned());
        }
        if self.auth_allowed() && !c.sasl_mechanisms.is_empty() {
            let mechs: Vec<String> = c
                .sasl_mechanisms
                .iter()
                .map(|m| reply::clean(m).replace(' ', ""))
                .collect();
            lines.push(format!("AUTH {}", mechs.join(" ")));
        }
        lines.push("HELP".to_owned());
        reply::multi(250, lines)
    }

    fn auth_allowed(&self) -> bool {
        self.config.tls_active || !self.config.auth_requires_tls
    }

    fn command(&mut self, line: &[u8], bare_lf: bool) -> Option<Event> {
        let reject = self.config.bare_newline == BareNewline::Reject;
        if reject && bare_lf {
            return Some(self.close_with(500, "5.5.2 Error: bare <LF> received"));
        }
        if reject && line.contains(&b'\r') {
            return Some(self.close_with(500, "5.5.2 Error: bare <CR> received"));
        }
        let is_auth = line.len() >= 5 && line[..5].eq_ignore_ascii_case(b"AUTH ");
        if line.len() > self.config.max_command_line.saturating_sub(2) && !is_auth {
            return self.error(&reply::line(500, "5.5.6 Line too long"));
        }
        let command = match Command::parse(line) {
            Ok(c) => c,
            Err(r) => return self.error(&r),
        };
        #[cfg(feature = "tracing")]
        if !matches!(command, Command::Auth { .. }) {
            tracing::trace!(?command, "smtp command");
        }
        let seq = |text: &str| reply::line(503, &format!("5.5.1 {text}"));
        match command {
            Command::Ehlo(domain) => {
                self.reset();
                let r = self.ehlo_reply();
                self.push_reply(&r);
                self.helo = Some(domain.clone());
                self.queued.push_back(Event::Greeted {
                    domain,
                    extended: true,
                });
                None
            }
            Command::Helo(domain) => {
                self.reset();
                let r = reply::line(250, &self.config.hostname.clone());
                self.push_reply(&r);
                self.helo = Some(domain.clone());
                self.queued.push_back(Event::Greeted {
                    domain,
                    extended: false,
                });
                None
            }
            Command::StartTls => {
                if self.config.tls_active {
                    self.error(&seq("TLS already active"))
                } else if !self.config.starttls_available {
                    self.error(&reply::line(454, "4.7.0 TLS not available"))
                } else {
                    self.state = State::Awaiting(Awaiting::StartTls);
                    Some(Event::StartTls)
                }
            }
            Command::Auth {
                mechanism,
                initial_response,
            } => {
                let fail = |f| framing::failure_reply(Protocol::Smtp, None, f);
                let refusal = if self.authenticated {
                    Some(fail(Failure::AlreadyAuthenticated))
                } else if self.helo.is_none() {
                    Some(seq("Send EHLO first").encode())
                } else if self.txn.is_some() {
                    Some(seq("AUTH not permitted during a mail transaction").encode())
                } else if !self.auth_allowed() {
                    Some(fail(Failure::EncryptionRequired))
                } else if self.config.sasl_mechanisms.is_empty() {
                    Some(fail(Failure::MechanismUnavailable))
                } else {
                    None
                };
                if let Some(r) = refusal {
                    self.output.extend_from_slice(&r);
                    return self.count_error();
                }
                self.state = State::Awaiting(Awaiting::Auth);
                Some(Event::Auth {
                    mechanism,
                    initial_response,
                })
            }
            Command::Mail(m) => {
                let c = &self.config;
                let refusal = if self.helo.is_none() {
                    Some(seq("Send EHLO or HELO first"))
                } else if self.txn.is_some() {
                    Some(seq("Nested MAIL command"))
                } else if self.messages >= c.max_messages {
                    return Some(self.close_with(
                        421,
                        "4.7.0 Too many messages in this session, closing connection",
                    ));
                } else if c.max_message_size > 0 && m.size.is_some_and(|s| s > c.max_message_size) {
                    Some(reply::line(
                        552,
                        "5.3.4 Message size exceeds fixed maximum message size",
                    ))
                } else if m.smtputf8 && !c.smtputf8 {
                    Some(reply::line(555, "5.5.4 SMTPUTF8 not offered"))
                } else if (m.ret.is_some() || m.envid.is_some()) && !c.dsn {
                    Some(reply::line(555, "5.5.4 DSN not offered"))
                } else {
                    None
                };
                if let Some(r) = refusal {
                    return self.error(&r);
                }
                self.pending_utf8 = m.smtputf8;
                self.state = State::Awaiting(Awaiting::Mail);
                Some(Event::Mail(m))
            }
            Command::Rcpt(r) => {
                let refusal = match &self.txn {
                    None => Some(seq("Need MAIL command")),
                    Some(t) if t.recipients >= self.config.max_recipients => {
                        Some(reply::line(452, "4.5.3 Too many recipients"))
                    }
                    Some(t) if !t.smtputf8 && !r.address.is_ascii() => Some(reply::line(
                        553,
                        "5.6.7 Non-ASCII address requires SMTPUTF8",
                    )),
                    Some(_) if (r.notify.is_some() || r.orcpt.is_some()) && !self.config.dsn => {
                        Some(reply::line(555, "5.5.4 DSN not offered"))
                    }
                    Some(t) if t.scanner.is_some() => Some(seq("RCPT after BDAT")),
                    Some(_) => None,
                };
                if let Some(rep) = refusal {
                    return self.error(&rep);
                }
                self.state = State::Awaiting(Awaiting::Rcpt);
                Some(Event::Rcpt(r))
            }
            Command::Data => {
                let refusal = match &self.txn {
                    None => Some(seq("Need MAIL command")),
                    Some(t) if t.recipients == 0 => {
                        Some(reply::line(554, "5.5.1 No valid recipients"))
                    }
                    Some(t) if t.scanner.is_some() => Some(seq("DATA after BDAT")),
                    Some(_) => None,
                };
                if let Some(r) = refusal {
                    return self.error(&r);
                }
                self.state = State::Awaiting(Awaiting::Data { chunk: None });
                Some(Event::Data { chunked: false })
            }
            Command::Bdat { size, last } => self.bdat(size, last),
            Command::Rset => {
                self.reset();
                reply::push(&mut self.output, 250, "2.0.0 Ok");
                None
            }
            Command::Noop => {
                reply::push(&mut self.output, 250, "2.0.0 Ok");
                None
            }
            Command::Quit => {
                reply::push(&mut self.output, 221, "2.0.0 Bye");
                self.state = State::Closed;
                Some(Event::Quit)
            }
            Command::Vrfy => {
                reply::push(
                    &mut self.output,
                    252,
                    "2.1.5 Cannot VRFY user, but will accept message and attempt delivery",
                );
                None
            }
            Command::Expn => self.error(&reply::line(502, "5.5.1 EXPN not available")),
            Command::Help => {
                reply::push(&mut self.output, 214, "2.0.0 See RFC 5321");
                None
            }
            Command::Impersonation => self.error(&reply::line(550, "5.7.0 Command refused")),
        }
    }

    fn bdat(&mut self, size: u64, last: bool) -> Option<Event> {
        let c = &self.config;
        let skip = |code, text: &str| State::Skip {
            left: size,
            reply: reply::line(code, text),
        };
        let refusal = if !c.chunking {
            Some(skip(502, "5.5.1 CHUNKING not offered"))
        } else {
            match &self.txn {
                None => Some(skip(503, "5.5.1 Need MAIL command")),
                Some(t) if t.recipients == 0 => Some(skip(554, "5.5.1 No valid recipients")),
                Some(t)
                    if c.max_message_size > 0
                        && t.scanner
                            .as_ref()
                            .map_or(0, DataScanner::size)
                            .saturating_add(size)
                            > c.max_message_size.saturating_add(2) =>
                {
                    Some(skip(
                        552,
                        "5.3.4 Message size exceeds fixed maximum message size",
                    ))
                }
                Some(_) => None,
            }
        };
        if let Some(s) = refusal {
            if self.txn.as_ref().is_some_and(|t| t.scanner.is_some()) {
                self.queued.push_back(Event::BodyAborted(Violation::TooBig));
            }
            if matches!(s, State::Skip { ref reply, .. } if reply.code() == 552) {
                self.txn = None;
            }
            self.state = s;
            return None;
        }
        if self.txn.as_ref().is_some_and(|t| t.scanner.is_some()) {
            self.state = State::Chunk { left: size, last };
            return None;
        }
        self.state = State::Awaiting(Awaiting::Data {
            chunk: Some((size, last)),
        });
        Some(Event::Data { chunked: true })
    }

    fn awaiting(&self, ok: &[fn(&Awaiting) -> bool]) -> Result<Awaiting, Error> {
        match &self.state {
            State::Awaiting(a) if ok.iter().any(|f| f(a)) => Ok(*a),
            _ => Err(Error::ApiMisuse("no such answer is due")),
        }
    }

    /// Answers the pending MAIL, RCPT, DATA/BDAT (a refusal) or end of
    /// data with `reply` (the front end's own, or the relay's as received).
    /// A positive reply to MAIL opens the transaction, to RCPT counts the
    /// recipient, to DATA/BDAT is [`Self::data_ok`]; any reply to the end
    /// of data ends the transaction. A `421` closes the session.
    ///
    /// # Errors
    ///
    /// [`Error::ApiMisuse`] when no such answer is due.
    pub fn answer(&mut self, reply: &Reply) -> Result<(), Error> {
        let a = self.awaiting(&[
            |a| matches!(a, Awaiting::Mail | Awaiting::Rcpt | Awaiting::EndOfData),
            |a| matches!(a, Awaiting::Data { .. }),
        ])?;
        let positive = reply.is_positive();
        match a {
            Awaiting::Data { .. } if positive || reply.code() == 354 => return self.data_ok(),
            Awaiting::Data {
                chunk: Some((size, _)),
            } => {
                // The chunk's octets are read and dropped before the reply.
                self.txn = None;
                self.state = State::Skip {
                    left: size,
                    reply: reply.clone(),
                };
                return Ok(());
            }
            Awaiting::Mail if positive => {
                self.txn = Some(Transaction {
                    smtputf8: self.pending_utf8,
                    recipients: 0,
                    scanner: None,
                });
                self.messages = self.messages.saturating_add(1);
            }
            Awaiting::Rcpt if positive => {
                if let Some(t) = &mut self.txn {
                    t.recipients = t.recipients.saturating_add(1);
                }
            }
            Awaiting::EndOfData | Awaiting::Data { .. } => self.txn = None,
            _ => {}
        }
        self.push_reply(reply);
        self.state = State::Command;
        if reply.code() == 421 {
            self.state = State::Closed;
            self.queued.push_back(Event::Close);
        }
        Ok(())
    }

    /// The relay takes the message: DATA gets `354`, a BDAT chunk is read.
    ///
    /// # Errors
    ///
    /// [`Error::ApiMisuse`] when no DATA or BDAT is pending.
    pub fn data_ok(&mut self) -> Result<(), Error> {
        let Awaiting::Data { chunk } = self.awaiting(&[|a| matches!(a, Awaiting::Data { .. })])?
        else {
            return Err(Error::ApiMisuse("no DATA or BDAT is pending"));
        };
        let policy = self.config.bare_newline;
        let limits = self.limits();
        let Some(t) = &mut self.txn else {
            return Err(Error::ApiMisuse("no transaction"));
        };
        match chunk {
            None => {
                t.scanner = Some(DataScanner::new(Framing::Dot, policy, limits));
                reply::push(&mut self.output, 354, "End data with <CR><LF>.<CR><LF>");
                self.state = State::Body;
            }
            Some((left, last)) => {
                t.scanner = Some(DataScanner::new(Framing::Chunked, policy, limits));
                self.state = State::Chunk { left, last };
            }
        }
        Ok(())
    }

    /// Writes an AUTH challenge (`Event::Send` from `AuthExchange`) and
    /// reads the client's next line as [`Event::AuthResponse`].
    ///
    /// # Errors
    ///
    /// [`Error::ApiMisuse`] when no AUTH is pending.
    pub fn auth_challenge(&mut self, challenge: &[u8]) -> Result<(), Error> {
        self.awaiting(&[|a| *a == Awaiting::Auth])?;
        if !challenge.starts_with(b"334 ") || !challenge.ends_with(b"\r\n") {
            return Err(Error::ApiMisuse("not an SMTP AUTH challenge"));
        }
        self.output.extend_from_slice(challenge);
        self.state = State::AuthLine;
        Ok(())
    }

    /// AUTH succeeded (only a successful mechanism yields the
    /// [`Authenticated`] proof): `235 2.7.0`.
    ///
    /// # Errors
    ///
    /// [`Error::ApiMisuse`] when no AUTH is pending.
    pub fn auth_ok(&mut self, proof: &Authenticated) -> Result<(), Error> {
        self.awaiting(&[|a| *a == Awaiting::Auth])?;
        let _ = proof;
        self.output
            .extend_from_slice(&framing::success_reply(Protocol::Smtp, None));
        self.authenticated = true;
        self.state = State::Command;
        Ok(())
    }

    /// AUTH failed with this reply (`Event::Failure` from `AuthExchange`);
    /// failed logins count as errors.
    ///
    /// # Errors
    ///
    /// [`Error::ApiMisuse`] when no AUTH is pending.
    pub fn auth_fail(&mut self, reply: &[u8]) -> Result<(), Error> {
        self.awaiting(&[|a| *a == Awaiting::Auth])?;
        self.state = State::Command;
        self.output.extend_from_slice(reply);
        if let Some(e) = self.count_error() {
            self.queued.push_back(e);
        }
        Ok(())
    }

    /// Accepts STARTTLS: writes `220 2.0.0`, discards the plaintext read
    /// after the STARTTLS line (CVE-2011-0411) and returns how many octets
    /// that was. Everything learnt before is forgotten (RFC 3207 §4.2):
    /// EHLO is required again, and the transaction and any AUTH are gone.
    /// Write the output, then start the TLS handshake.
    ///
    /// # Errors
    ///
    /// [`Error::ApiMisuse`] when no STARTTLS is pending.
    pub fn starttls_ok(&mut self) -> Result<usize, Error> {
        self.awaiting(&[|a| *a == Awaiting::StartTls])?;
        reply::push(&mut self.output, 220, "2.0.0 Ready to start TLS");
        let n = self.input.len() - self.read;
        self.input.clear();
        self.read = 0;
        self.skipping_line = false;
        self.discarded = self.discarded.saturating_add(n);
        self.config.tls_active = true;
        self.helo = None;
        self.authenticated = false;
        self.state = State::Command;
        self.reset();
        #[cfg(feature = "tracing")]
        if n > 0 {
            tracing::warn!(discarded = n, "plaintext pipelined after STARTTLS dropped");
        }
        Ok(n)
    }

    /// Refuses a pending STARTTLS, AUTH, MAIL, RCPT or DATA with `reply`.
    ///
    /// # Errors
    ///
    /// [`Error::ApiMisuse`] when nothing is pending.
    pub fn reject(&mut self, reply: &Reply) -> Result<(), Error> {
        let a = self
            .awaiting(&[|a| matches!(a, Awaiting::StartTls | Awaiting::Auth)])
            .or_else(|_| {
                self.awaiting(&[|a| {
                    matches!(
                        a,
                        Awaiting::Mail
                            | Awaiting::Rcpt
                            | Awaiting::Data { .. }
                            | Awaiting::EndOfData
                    )
                }])
            })?;
        if reply.is_positive() {
            return Err(Error::ApiMisuse("reject needs a negative reply"));
        }
        match a {
            Awaiting::StartTls | Awaiting::Auth => {
                self.push_reply(reply);
                self.state = State::Command;
                if reply.code() == 421 {
                    self.state = State::Closed;
                    self.queued.push_back(Event::Close);
                }
                Ok(())
            }
            _ => self.answer(reply),
        }
    }

    /// Ends the session with `reply` (shutdown, timeout, no relay);
    /// [`Self::poll`] then says [`Event::Close`].
    pub fn close(&mut self, reply: &Reply) {
        if !matches!(self.state, State::Closed) {
            self.push_reply(reply);
            self.state = State::Closed;
        }
    }
}
