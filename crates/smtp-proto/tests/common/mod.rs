//! A scripted daemon around `ServerSession`: it answers every event the way
//! a front end would (AUTH through the real sasl crate with an in-memory
//! user base; MAIL, RCPT and the end of data accepted unless told
//! otherwise), and records events, output and message content.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use portcullis_sasl::framing::{self, AuthExchange, Protocol};
use portcullis_sasl::{
    MemoryBackend, Policy, PolicyConfig, ServerContext, Service, TlsState, TlsVersion,
};
use portcullis_smtp_proto::reply::{self, Reply};
use portcullis_smtp_proto::{BareNewline, Event, ServerConfig, ServerSession};

pub struct Daemon {
    pub session: ServerSession,
    pub events: Vec<String>,
    pub out: Vec<u8>,
    /// Content of every message, each ended by a `<END>` or `<ABORT>` mark.
    pub body: Vec<u8>,
    pub reject_rcpt: Vec<String>,
    pub refuse_data: Option<Reply>,
    pub closed: bool,
    policy: Policy,
    backend: &'static MemoryBackend,
    exchange: Option<AuthExchange>,
    queue: u32,
}

pub fn config_from(text: &str) -> ServerConfig {
    let mut c = ServerConfig::default();
    for line in text.lines() {
        let Some(opts) = line.strip_prefix("# config:") else {
            continue;
        };
        for o in opts.split_whitespace() {
            match o.split_once('=') {
                None if o == "tls" => c.tls_active = true,
                None if o == "starttls" => c.starttls_available = true,
                None if o == "dsn" => c.dsn = true,
                None if o == "normalize" => c.bare_newline = BareNewline::Normalize,
                None if o == "nochunking" => c.chunking = false,
                Some(("hostname", v)) => c.hostname = v.to_owned(),
                Some(("sasl", v)) => {
                    c.sasl_mechanisms = v.split(',').map(str::to_owned).collect();
                }
                Some(("size", v)) => c.max_message_size = v.parse().unwrap(),
                Some(("rcpts", v)) => c.max_recipients = v.parse().unwrap(),
                Some(("messages", v)) => c.max_messages = v.parse().unwrap(),
                Some(("errors", v)) => c.max_errors = v.parse().unwrap(),
                _ => panic!("unknown option {o}"),
            }
        }
    }
    c
}

pub fn describe(e: &Event) -> String {
    match e {
        Event::Greeted { domain, extended } => {
            format!("{} {domain}", if *extended { "Ehlo" } else { "Helo" })
        }
        Event::Auth { mechanism, .. } => format!("Auth {}", String::from_utf8_lossy(mechanism)),
        Event::AuthResponse { .. } => "AuthResponse".to_owned(),
        Event::Mail(m) => format!("Mail <{}>", m.address),
        Event::Rcpt(r) => format!("Rcpt <{}>", r.address),
        Event::Data { chunked } => format!("Data chunked={chunked}"),
        Event::EndOfData { size } => format!("EndOfData {size}"),
        Event::BodyAborted(v) => format!("BodyAborted {v:?}"),
        other => format!("{other:?}"),
    }
}

/// One user base for every test (deriving SCRAM secrets is slow).
fn backend() -> &'static MemoryBackend {
    static BACKEND: std::sync::OnceLock<MemoryBackend> = std::sync::OnceLock::new();
    BACKEND.get_or_init(|| {
        MemoryBackend::new()
            .with_user("test", "1234")
            .unwrap()
            .with_user("alice", "alice-pw")
            .unwrap()
    })
}

impl Daemon {
    pub fn new(config: ServerConfig) -> Self {
        let pc = PolicyConfig::default().with_mech_list("PLAIN LOGIN");
        Self {
            session: ServerSession::new(config).expect("session"),
            events: Vec::new(),
            out: Vec::new(),
            body: Vec::new(),
            reject_rcpt: Vec::new(),
            refuse_data: None,
            closed: false,
            policy: Policy::new(&pc).expect("policy"),
            backend: backend(),
            exchange: None,
            queue: 0,
        }
    }

    pub fn from_text(text: &str) -> Self {
        let mut d = Self::new(config_from(text));
        for line in text.lines() {
            if let Some(r) = line.strip_prefix("# reject-rcpt:") {
                d.reject_rcpt.push(r.trim().to_owned());
            }
        }
        d
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        if self.closed {
            return;
        }
        self.session.feed(bytes);
        self.drive();
    }

    fn ctx(&self) -> ServerContext {
        let ctx = ServerContext::new(Service::Smtp, "mx.example");
        if self.session.tls_active() {
            ctx.with_tls(TlsState::new(TlsVersion::Tls13, false))
        } else {
            ctx
        }
    }

    fn auth_event(&mut self, ev: framing::Event) {
        let mut ev = ev;
        loop {
            ev = match ev {
                framing::Event::Send(c) => {
                    self.session.auth_challenge(&c).unwrap();
                    return;
                }
                framing::Event::Verify(r) => {
                    let answer = self.backend.answer(&r);
                    self.exchange.as_mut().unwrap().answer(answer)
                }
                framing::Event::Success { auth, .. } => {
                    self.events
                        .push(format!("Authenticated {}", auth.identity()));
                    self.session.auth_ok(&auth).unwrap();
                    self.exchange = None;
                    return;
                }
                framing::Event::Failure { reply, .. } => {
                    self.session.auth_fail(&reply).unwrap();
                    self.exchange = None;
                    return;
                }
                _ => panic!("unknown sasl event"),
            };
        }
    }

    pub fn drive(&mut self) {
        loop {
            let e = self.session.poll();
            match &e {
                Event::NeedMoreInput => break,
                Event::Waiting => panic!("an answer is due but the daemon gave none"),
                Event::Close | Event::Quit => {
                    self.events.push(describe(&e));
                    self.closed = true;
                    break;
                }
                Event::Body(b) => {
                    self.body.extend_from_slice(b);
                    continue;
                }
                _ => self.events.push(describe(&e)),
            }
            match e {
                Event::StartTls => {
                    self.session.starttls_ok().unwrap();
                }
                Event::Auth {
                    mechanism,
                    initial_response,
                } => {
                    let (ex, ev) = AuthExchange::start(
                        Protocol::Smtp,
                        None,
                        &mechanism,
                        initial_response.as_ref().map(|r| r.as_slice()),
                        &self.policy,
                        &self.ctx(),
                    );
                    self.exchange = Some(ex);
                    self.auth_event(ev);
                }
                Event::AuthResponse { line } => {
                    let ev = self.exchange.as_mut().unwrap().line(&line);
                    self.auth_event(ev);
                }
                Event::Mail(_) => self
                    .session
                    .answer(&reply::standard(reply::SENDER_OK))
                    .unwrap(),
                Event::Rcpt(r) => {
                    let answer = if self.reject_rcpt.iter().any(|x| x == &r.address) {
                        reply::line(550, "5.1.1 No such user here")
                    } else {
                        reply::standard(reply::RECIPIENT_OK)
                    };
                    self.session.answer(&answer).unwrap();
                }
                Event::Data { .. } => match self.refuse_data.clone() {
                    Some(r) => self.session.answer(&r).unwrap(),
                    None => self.session.data_ok().unwrap(),
                },
                Event::EndOfData { .. } => {
                    self.body.extend_from_slice(b"<END>");
                    self.queue += 1;
                    let r = reply::line(250, &format!("2.0.0 Ok: queued as Q{}", self.queue));
                    self.session.answer(&r).unwrap();
                }
                Event::BodyAborted(_) => self.body.extend_from_slice(b"<ABORT>"),
                _ => {}
            }
        }
        self.out.extend_from_slice(&self.session.take_output());
    }

    pub fn out_str(&self) -> String {
        String::from_utf8_lossy(&self.out).into_owned()
    }
}

/// What a transcript says: the client's bytes (one entry per `C:` line,
/// CR LF appended) and the server's expected bytes.
pub fn transcript(text: &str) -> (Vec<Vec<u8>>, Vec<u8>) {
    let mut client = Vec::new();
    let mut server = Vec::new();
    for line in text.lines() {
        if let Some(c) = line.strip_prefix("C: ") {
            client.push(format!("{c}\r\n").into_bytes());
        } else if line == "C:" {
            client.push(b"\r\n".to_vec());
        } else if let Some(s) = line.strip_prefix("S: ") {
            server.extend_from_slice(s.as_bytes());
            server.extend_from_slice(b"\r\n");
        }
    }
    (client, server)
}

/// Runs `text` feeding each client line through `split` (which cuts one
/// line into pieces); returns the daemon.
pub fn run_with(text: &str, split: impl Fn(&[u8]) -> Vec<Vec<u8>>) -> Daemon {
    let (client, _) = transcript(text);
    let mut d = Daemon::from_text(text);
    d.drive();
    for line in client {
        for piece in split(&line) {
            d.feed(&piece);
        }
    }
    d
}
