//! The SMTP submission front end: one admitted connection from the
//! greeting to QUIT, its messages relayed through the relay pool.
//!
//! ```text
//! Admitted ─► (implicit TLS handshake) ─► service-level filter ─► 220
//!    ─► smtp-proto ServerSession: EHLO/HELO, STARTTLS (guarded upgrade),
//!       AUTH (sasl framing, the shared Login: penalty, account filters)
//!    ─► MAIL FROM: who may send (AUTH, or a POP login within
//!       mmp.authservicettl: popbeforesmtp cache), sender check
//!       (service.smtp.sendercheck), relay from the pool (round robin,
//!       failover, XCLIENT ADDR PORT NAME HELO PROTO LOGIN)
//!    ─► RCPT, DATA/BDAT: smtp-proto Transaction toward the relay, the
//!       message scanned (bare CR/LF refused) and streamed as it arrives;
//!       a violation RSETs the relay; the relay's replies go back as sent
//!    ─► one log line per message (target `portcullis::message`) and per
//!       connection (`portcullis::connection`)
//! ```
//!
//! Replies to pipelined commands are written together when the client's
//! input is used up, and what goes to the relay is written once per batch
//! (with `TCP_NODELAY` on both sockets): no small-write stalls.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use portcullis_accessfilter::Verdict;
use portcullis_config::{Config, params};
use portcullis_ldapauth::UserSource;
use portcullis_popbeforesmtp::relay::{ClientInfo, EhloFilter, Proto, RelayPool, RelayStream};
use portcullis_popbeforesmtp::{AuthCache, Lookup, Settings, Timestamp};
use portcullis_sasl::framing::{self, Protocol};
use portcullis_sasl::{Account, Authenticated, ServerContext};
use portcullis_smtp_proto::client::Abort;
use portcullis_smtp_proto::reply::{self, Standard};
use portcullis_smtp_proto::{
    Event, Reply, Sent, ServerConfig, ServerSession, Transaction, queue_id,
};
use portcullis_tlsconf::TlsServer;
use portcullis_tlsconf::starttls::{PipelinedInput, StartTls};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use crate::Error;
use crate::auth::{Authenticator, Peer};
use crate::limits::Limits;
use crate::listen::{Admitted, TlsMode};
use crate::metrics::MessageResult;
use crate::session::{
    self, ClientStream, Concluded, ConnLog, LAST_WORDS, Login, Progress, Refused,
};

/// The client read buffer: large enough that a message arrives in few
/// reads.
const READ_BUFFER: usize = 64 * 1024;

/// Message content is sent to a CHUNKING relay in BDAT chunks of at least
/// this size (the end of the message excepted): few chunk replies to
/// read, and still streamed.
const CHUNK: usize = 64 * 1024;

/// `550 5.7.1`: the account's access filters deny SMTP.
const ACCESS_DENIED: &[u8] = b"550 5.7.1 Access denied\r\n";

/// `454 4.7.0`: an access filter lookup failed temporarily.
const ACCESS_TEMPFAIL: &[u8] = b"454 4.7.0 Access check failed temporarily, try again later\r\n";

/// The sender of a message: who may send, and which addresses are theirs.
#[derive(Debug, Clone)]
struct Sender {
    /// The canonical user (XCLIENT `LOGIN`, the logs).
    user: String,
    /// `mail` and `mailAlternateAddress` (or the users file's fields).
    addresses: Vec<String>,
    /// Authorized by a recent POP login rather than SMTP AUTH.
    pop: bool,
}

impl Sender {
    fn from_account(user: &str, account: Option<&Account>, pop: bool) -> Self {
        let addresses = account
            .map(|a| {
                ["mail", "mailalternateaddress"]
                    .iter()
                    .filter_map(|n| a.attribute(n))
                    .flatten()
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Self {
            user: user.to_owned(),
            addresses,
            pop,
        }
    }

    /// Whether `address` (a MAIL FROM path) is one of the user's. The null
    /// sender is no one's and is allowed (bounces); addresses compare
    /// without regard to ASCII case, as Postfix's sender login maps do.
    fn owns(&self, address: &str) -> bool {
        address.is_empty()
            || self
                .addresses
                .iter()
                .any(|a| a.eq_ignore_ascii_case(address))
    }
}

/// The relay connection of a client session.
struct Relay {
    stream: RelayStream,
    txn: Transaction,
    /// `host:port`, for the logs.
    name: String,
    /// The client's HELO and the login it was handed over with.
    helo: Option<String>,
    login: Option<String>,
    /// Content not yet sent as a BDAT chunk.
    pending: Vec<u8>,
    buf: Vec<u8>,
}

impl Relay {
    /// Writes what the transaction has for the relay.
    async fn flush(&mut self) -> Result<(), Error> {
        let out = self.txn.take_output();
        if !out.is_empty() {
            self.stream.write_all(&out).await?;
            self.stream.flush().await?;
        }
        Ok(())
    }

    /// Reads replies until the one to `target` (the replies to chunks and
    /// RSETs on the way are consumed), within `timeout`.
    async fn wait(&mut self, target: Sent, timeout: Duration) -> Result<Reply, Error> {
        let relay = self.name.clone();
        let work = async {
            loop {
                while let Some(ev) = self.txn.poll().map_err(relay_protocol)? {
                    self.flush().await?;
                    if ev.sent == target {
                        return Ok(ev.reply);
                    }
                }
                self.flush().await?;
                let n = self.stream.read(&mut self.buf).await?;
                if n == 0 {
                    return Err(Error::Relay(portcullis_popbeforesmtp::Error::RelayClosed));
                }
                self.txn.feed(&self.buf[..n]);
            }
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| Error::Relay(portcullis_popbeforesmtp::Error::RelayTimeout { relay }))?
    }

    /// Message content toward the relay: buffered into chunks for BDAT,
    /// dot-stuffed at once for DATA (written at the next flush).
    async fn body(&mut self, content: &[u8]) -> Result<(), Error> {
        if self.txn.chunking() {
            self.pending.extend_from_slice(content);
            if self.pending.len() >= CHUNK {
                self.send_pending()?;
                self.flush().await?;
            }
            Ok(())
        } else {
            self.txn.body(content).map_err(relay_protocol)
        }
    }

    fn send_pending(&mut self) -> Result<(), Error> {
        let pending = std::mem::take(&mut self.pending);
        self.txn.body(&pending).map_err(relay_protocol)
    }

    /// Gives up the message or the transaction: `false` when only closing
    /// the connection drops it (DATA content already sent).
    async fn reset(&mut self, timeout: Duration) -> Result<bool, Error> {
        self.pending.clear();
        match self.txn.rset() {
            Abort::Rset => {
                self.flush().await?;
                self.wait(Sent::Rset, timeout).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// `QUIT`, without waiting long for the goodbye.
    async fn quit(mut self) {
        let _ = tokio::time::timeout(LAST_WORDS, async {
            self.stream.write_all(b"QUIT\r\n").await?;
            self.stream.flush().await?;
            let _ = self.stream.read(&mut self.buf).await?;
            self.stream.shutdown().await
        })
        .await;
    }
}

fn relay_protocol(e: portcullis_smtp_proto::Error) -> Error {
    Error::Io(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("relay: {e}"),
    ))
}

/// The message being received, for its log line.
#[derive(Debug, Default)]
struct MessageLog {
    sender: String,
    recipients: usize,
}

/// Everything an SMTP connection needs, shared by all of them.
#[derive(Debug)]
#[non_exhaustive]
pub struct SmtpFrontend {
    /// Authentication, penalty and access filters.
    pub auth: Authenticator,
    /// The user source, for the accounts of POP-before-SMTP users.
    pub users: UserSource,
    /// The service's TLS (`None`: no STARTTLS, no implicit-TLS listener).
    pub tls: Option<Arc<TlsServer>>,
    /// Timeouts and attempt limits.
    pub limits: Limits,
    /// The session's policy (limits, bare newlines), the host name in it.
    pub server: ServerConfig,
    /// The relays.
    pub relays: RelayPool,
    /// Which relay EHLO keywords clients see (`mmp.ehlokeywords`).
    pub ehlo_filter: EhloFilter,
    /// With `mmp.preauth`: the POP-before-SMTP cache.
    pub preauth: Option<AuthCache>,
    /// `service.smtp.sendercheck`.
    pub sender_check: bool,
    /// The latest EHLO reply of a relay (after the hand-off): what new
    /// sessions offer follows it ([`ServerConfig::follow_relay`]).
    relay_ehlo: Mutex<Option<Reply>>,
}

/// One connection's state.
struct Conn {
    stream: Option<ClientStream>,
    session: ServerSession,
    ctx: ServerContext,
    starttls: StartTls,
    login: Login,
    peer: Peer,
    log: ConnLog,
    /// The SMTP AUTH user.
    user: Option<Sender>,
    /// The client's greeting: the name, and EHLO rather than HELO.
    helo: Option<(String, bool)>,
    relay: Option<Relay>,
    message: Option<MessageLog>,
    messages: u32,
    /// The end of the time an unauthorized client has
    /// (`mmp.preauthtimeout`): until it authenticates or has a relay
    /// open for it, no read waits past this.
    deadline: Instant,
}

impl Conn {
    fn stream(&mut self) -> std::io::Result<&mut ClientStream> {
        self.stream
            .as_mut()
            .ok_or_else(|| std::io::Error::other("connection lost in the TLS upgrade"))
    }

    /// Writes the replies gathered so far, in one write.
    async fn flush(&mut self) -> std::io::Result<()> {
        let out = self.session.take_output();
        if !out.is_empty() {
            let s = self.stream()?;
            s.write_all(&out).await?;
            s.flush().await?;
            self.log.store_bytes = self
                .log
                .store_bytes
                .saturating_add(u64::try_from(out.len()).unwrap_or(u64::MAX));
        }
        Ok(())
    }

    /// Writes what is left, within [`LAST_WORDS`], ignoring errors.
    async fn last_words(&mut self) {
        let _ = tokio::time::timeout(LAST_WORDS, self.flush()).await;
        if let Some(s) = self.stream.as_mut() {
            let _ = tokio::time::timeout(LAST_WORDS, s.shutdown()).await;
        }
        if let Some(relay) = self.relay.take() {
            relay.quit().await;
        }
    }

    /// Answers the pending command with `reply`; a state error (nothing
    /// due) closes the session.
    fn answer(&mut self, reply: &Reply) {
        if self.session.answer(reply).is_err() {
            self.session.close(&reply::standard(reply::RELAY_FAILED));
        }
    }

    fn refuse(&mut self, standard: Standard) {
        self.answer(&reply::standard(standard));
    }
}

fn invalid(name: &'static str, reason: impl ToString) -> Error {
    Error::InvalidSetting {
        name,
        reason: reason.to_string(),
    }
}

impl SmtpFrontend {
    /// The SMTP front end from the configuration: the session policy
    /// (`service.smtp.*`), the relay pool and the POP-before-SMTP cache
    /// (`mmp.*`, through popbeforesmtp's one reader), the sender check.
    ///
    /// # Errors
    /// The parameter to blame for an unusable value; no relays.
    pub fn from_config(
        config: &Config,
        config_dir: &std::path::Path,
        auth: Authenticator,
        tls: Option<Arc<TlsServer>>,
        limits: Limits,
        hostname: String,
    ) -> Result<Self, Error> {
        let get = |name: &str| config.string(name).ok();
        let mut server = ServerConfig::default();
        server
            .apply_parameters(get)
            .map_err(|e| invalid("service.smtp", e))?;
        server.hostname = if portcullis_smtp_proto::domain::is_valid(&hostname) {
            hostname
        } else {
            "localhost".to_owned()
        };
        let settings = Settings::from_parameters(get)?;
        let relays = settings.relay_pool(None)?;
        Ok(Self {
            auth,
            users: UserSource::from_parameters(get, config_dir)?,
            tls,
            limits,
            server,
            relays,
            ehlo_filter: settings.ehlo_filter(),
            preauth: settings.auth_cache()?,
            sender_check: config.get(params::SERVICE_SMTP_SENDERCHECK)?,
            relay_ehlo: Mutex::new(None),
        })
    }

    fn context(&self) -> ServerContext {
        ServerContext::new(portcullis_sasl::Service::Smtp, self.server.hostname.clone())
    }

    /// Serves one admitted connection to its end; `shutdown` turning true
    /// ends it (`421 4.3.2`) outside a mail transaction.
    pub async fn serve(&self, conn: Admitted, mode: TlsMode, mut shutdown: watch::Receiver<bool>) {
        let started = Instant::now();
        let client = conn.client;
        let mut log = ConnLog::default();
        let outcome = self
            .serve_inner(conn, mode, &mut shutdown, &mut log, started)
            .await;
        log.finish(outcome, "smtp", client, started);
    }

    async fn serve_inner(
        &self,
        conn: Admitted,
        mode: TlsMode,
        shutdown: &mut watch::Receiver<bool>,
        log: &mut ConnLog,
        started: Instant,
    ) -> Result<(), Error> {
        let mut ctx = self.context();
        let timing = (started, self.limits.preauth_timeout);
        let Some(opened) = session::open(
            &self.auth.metrics,
            conn,
            self.tls.as_ref(),
            mode,
            timing,
            &mut ctx,
            log,
        )
        .await
        else {
            return Ok(());
        };
        let (stream, buffered, deadline) = (opened.stream, opened.buffered, opened.deadline);
        let tls_active = opened.peer.tls;
        let mut config = self.server.clone();
        if let Some(ehlo) = self
            .relay_ehlo
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            config.follow_relay(ehlo, &self.ehlo_filter);
        }
        config.tls_active = tls_active;
        config.starttls_available = self.tls.is_some() && !tls_active;
        // AUTH without TLS only where cleartext passwords are allowed
        // (service.plaintextmincipher = 0).
        config.auth_requires_tls = !self.auth.policy.plaintext_login_allowed(&ctx);
        config.sasl_mechanisms = session::mechanism_names(&self.auth.policy, &ctx);
        let session = ServerSession::new(config)
            .map_err(|e| Error::Io(std::io::Error::other(format!("SMTP session: {e}"))))?;
        let mut c = Conn {
            stream: Some(stream),
            session,
            ctx,
            starttls: if tls_active {
                StartTls::already_tls()
            } else {
                StartTls::new(PipelinedInput::Discard)
            },
            login: Login::new(self.limits.auth_attempts()),
            peer: opened.peer,
            log: std::mem::take(log),
            user: None,
            helo: None,
            relay: None,
            message: None,
            messages: 0,
            deadline,
        };
        let outcome = self.connected(&mut c, buffered, shutdown).await;
        if outcome.is_err()
            && let Some(relay) = c.relay.take()
        {
            relay.quit().await;
        }
        *log = std::mem::take(&mut c.log);
        outcome
    }

    async fn connected(
        &self,
        c: &mut Conn,
        buffered: Vec<u8>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), Error> {
        // The service-level filter, instead of the greeting.
        match self.auth.at_connect(&c.peer).await {
            Verdict::Allow => {}
            verdict => {
                let _ = c.session.take_output();
                if verdict == Verdict::Deny {
                    c.session.close(&reply::line(554, "5.7.1 Access denied"));
                    c.log.result = "denied by the service access filter".to_owned();
                } else {
                    c.session.close(&reply::line(
                        421,
                        "4.7.0 Access check failed temporarily, try again later",
                    ));
                    c.log.result = "tempfail in the service access filter".to_owned();
                }
                c.last_words().await;
                return Ok(());
            }
        }
        c.session.feed(&buffered);
        c.log.client_bytes = u64::try_from(buffered.len()).unwrap_or(0);
        let ended = self.conversation(c, shutdown).await;
        c.last_words().await;
        if c.log.result.is_empty() {
            c.log.result = format!("closed, {} messages", c.messages);
        }
        ended
    }

    /// The whole conversation; returns when the connection is to end.
    async fn conversation(
        &self,
        c: &mut Conn,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), Error> {
        let mut buf = zeroize::Zeroizing::new(vec![0u8; READ_BUFFER]);
        let idle = self.limits.idle_timeout;
        loop {
            match c.session.poll() {
                Event::NeedMoreInput => {
                    // Everything pipelined so far is answered: one write
                    // each way.
                    if let Some(relay) = c.relay.as_mut()
                        && let Err(e) = relay.flush().await
                    {
                        self.relay_lost(c, &e);
                    }
                    c.flush().await?;
                    let in_transaction = c.session.in_transaction();
                    // An unauthorized client (no AUTH, no relay opened for
                    // it yet) has until mmp.preauthtimeout, however often
                    // it talks; then the idle timeout alone.
                    let authorized = c.user.is_some() || c.relay.is_some() || c.messages > 0;
                    let wait = if authorized {
                        idle
                    } else {
                        idle.min(c.deadline.saturating_duration_since(Instant::now()))
                    };
                    let read = {
                        let stream = c.stream()?;
                        tokio::select! {
                            r = tokio::time::timeout(wait, stream.read(&mut buf[..])) => Some(r),
                            _ = shutdown.wait_for(|stop| *stop), if !in_transaction => None,
                        }
                    };
                    let n = match read {
                        None => {
                            c.session.close(&reply::standard(reply::SHUTDOWN));
                            c.log.result = "shutdown".to_owned();
                            return Ok(());
                        }
                        Some(Err(_elapsed)) => {
                            c.session.close(&reply::standard(reply::TIMEOUT));
                            c.log.result = if authorized {
                                "timeout".to_owned()
                            } else {
                                "no authentication within mmp.preauthtimeout".to_owned()
                            };
                            return Ok(());
                        }
                        Some(Ok(Ok(n))) => n,
                        // A TLS client that closes without close_notify.
                        Some(Ok(Err(e))) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
                        Some(Ok(Err(e))) => return Err(e.into()),
                    };
                    if n == 0 {
                        c.log.result = format!("client closed, {} messages", c.messages);
                        return Ok(());
                    }
                    c.log.client_bytes = c
                        .log
                        .client_bytes
                        .saturating_add(u64::try_from(n).unwrap_or(0));
                    c.session.feed(&buf[..n]);
                }
                Event::Greeted { domain, extended } => c.helo = Some((domain, extended)),
                Event::StartTls => self.starttls(c).await?,
                Event::Auth {
                    mechanism,
                    initial_response,
                } => {
                    let progress = c
                        .login
                        .start(
                            &self.auth,
                            Protocol::Smtp,
                            None,
                            &mechanism,
                            initial_response.as_ref().map(|r| r.as_slice()),
                            &c.ctx,
                            &c.peer,
                            &mut c.log,
                        )
                        .await;
                    self.auth_progress(c, progress);
                }
                Event::AuthResponse { line } => {
                    let progress = c.login.line(&self.auth, &line, &c.peer, &mut c.log).await;
                    self.auth_progress(c, progress);
                }
                Event::Mail(from) => self.mail(c, from).await,
                Event::Rcpt(to) => {
                    let reply = match c.relay.as_mut() {
                        Some(relay) => match relay.txn.rcpt(&to) {
                            Ok(()) => match self.relay_reply(relay, Sent::Rcpt).await {
                                Ok(r) => Ok(r),
                                Err(e) => Err(Some(e)),
                            },
                            Err(_) => Ok(reply::line(501, "5.5.4 Invalid recipient")),
                        },
                        None => Err(None),
                    };
                    match reply {
                        Ok(r) => {
                            if r.is_positive()
                                && let Some(m) = c.message.as_mut()
                            {
                                m.recipients += 1;
                            }
                            c.answer(&r);
                        }
                        Err(e) => self.relay_failed(c, e.as_ref()),
                    }
                }
                Event::Data { .. } => self.data(c).await,
                Event::Body(content) => {
                    if let Some(relay) = c.relay.as_mut()
                        && let Err(e) = relay.body(&content).await
                    {
                        self.relay_lost(c, &e);
                    }
                }
                Event::BodyAborted(violation) => {
                    // The relay drops what it has of the message: RSET
                    // after BDAT chunks, closing after DATA content.
                    self.abandon_relay_transaction(c).await;
                    self.log_message(
                        c,
                        0,
                        None,
                        MessageResult::Refused,
                        &format!("refused: {violation:?}"),
                    );
                }
                Event::EndOfData { size } => self.end_of_data(c, size).await,
                Event::Reset => {
                    if c.relay
                        .as_ref()
                        .is_some_and(|r| r.txn.replies_due() > 0 || c.message.is_some())
                    {
                        self.abandon_relay_transaction(c).await;
                    }
                    c.message = None;
                }
                Event::Quit => {
                    c.log.result = format!("quit, {} messages", c.messages);
                    return Ok(());
                }
                Event::Close => {
                    if c.log.result.is_empty() {
                        c.log.result = format!("closed by the server, {} messages", c.messages);
                    }
                    return Ok(());
                }
                Event::Waiting => {
                    c.log.result = "protocol state error".to_owned();
                    c.session.close(&reply::standard(reply::RELAY_FAILED));
                }
                _ => {
                    c.log.result = "protocol state error".to_owned();
                    return Ok(());
                }
            }
        }
    }

    fn auth_progress(&self, c: &mut Conn, progress: Progress) {
        let concluded = match progress {
            Progress::Challenge(challenge) => {
                if c.session.auth_challenge(&challenge).is_err() {
                    c.session.close(&reply::standard(reply::RELAY_FAILED));
                }
                return;
            }
            Progress::StateError => {
                c.session
                    .close(&reply::line(421, "4.3.0 Authentication state error"));
                return;
            }
            Progress::Concluded(concluded) => concluded,
        };
        match concluded {
            Concluded::Granted(auth) => {
                c.user = Some(sender_of(&auth));
                if c.session.auth_ok(&auth).is_err() {
                    c.session.close(&reply::standard(reply::RELAY_FAILED));
                }
            }
            Concluded::Refused { why, close } => {
                let reply = match why {
                    Refused::Failed(failure) => {
                        framing::failure_reply(Protocol::Smtp, None, failure)
                    }
                    Refused::Denied => ACCESS_DENIED.to_vec(),
                    Refused::TempFail => ACCESS_TEMPFAIL.to_vec(),
                };
                let _ = c.session.auth_fail(&reply);
                if close {
                    c.session.close(&reply::line(
                        421,
                        "4.7.0 Too many failed logins, closing connection",
                    ));
                }
            }
        }
    }

    /// Who may send now: the AUTH user, else a client whose address logged
    /// in to POP within the TTL. `Err` is the refusal.
    async fn sender(&self, c: &Conn) -> Result<Sender, Standard> {
        if c.session.is_authenticated()
            && let Some(user) = &c.user
        {
            return Ok(user.clone());
        }
        let Some(cache) = &self.preauth else {
            return Err(reply::AUTH_REQUIRED);
        };
        let authorization = match cache.lookup(c.peer.client.ip(), Timestamp::now()).await {
            Lookup::Authorize(a) => a,
            _ => return Err(reply::AUTH_REQUIRED),
        };
        let user = authorization.user.as_str().to_owned();
        if !self.sender_check {
            return Ok(Sender::from_account(&user, None, true));
        }
        match self.users.account(&user).await {
            Ok(account) => Ok(Sender::from_account(&user, Some(&account), true)),
            Err(e) if e.is_temporary() => {
                tracing::warn!(%user, error = %e, "POP-before-SMTP user's addresses unavailable");
                Err((
                    451,
                    "4.3.0 Sender check failed temporarily, try again later",
                ))
            }
            Err(e) => {
                tracing::info!(%user, error = %e, "POP-before-SMTP user not found");
                Err(reply::AUTH_REQUIRED)
            }
        }
    }

    async fn mail(&self, c: &mut Conn, from: portcullis_smtp_proto::MailFrom) {
        let sender = match self.sender(c).await {
            Ok(s) => s,
            Err(refusal) => {
                tracing::info!(client = %c.peer.client, from = %from.address, reply = refusal.1, "MAIL FROM refused");
                c.refuse(refusal);
                return;
            }
        };
        if self.sender_check && !sender.owns(&from.address) {
            tracing::info!(client = %c.peer.client, user = %sender.user, from = %from.address, "sender address not owned by the user");
            c.refuse(reply::SENDER_MISMATCH);
            return;
        }
        if let Err(refusal) = self.ensure_relay(c, &sender).await {
            c.answer(&refusal);
            return;
        }
        let Some(relay) = c.relay.as_mut() else {
            c.refuse(reply::RELAY_FAILED);
            return;
        };
        if relay.txn.mail(&from).is_err() {
            c.answer(&reply::line(501, "5.5.4 Invalid sender"));
            return;
        }
        match self.relay_reply(relay, Sent::Mail).await {
            Ok(r) => {
                if r.is_positive() {
                    c.message = Some(MessageLog {
                        sender: from.address.clone(),
                        recipients: 0,
                    });
                    c.log.user = Some(sender.user.clone());
                    if sender.pop && c.log.mechanism.is_none() {
                        c.log.mechanism = Some("POP-before-SMTP");
                    }
                }
                c.answer(&r);
            }
            Err(e) => self.relay_failed(c, Some(&e)),
        }
    }

    /// A relay session for `sender` with the client's greeting: the one
    /// open when it was handed over the same way, else a new one from the
    /// pool. `Err` is the reply for the client.
    async fn ensure_relay(&self, c: &mut Conn, sender: &Sender) -> Result<(), Reply> {
        let helo = c.helo.as_ref().map(|(d, _)| d.clone());
        if let Some(relay) = &c.relay
            && relay.helo == helo
            && relay.login.as_deref() == Some(sender.user.as_str())
        {
            return Ok(());
        }
        if let Some(old) = c.relay.take() {
            old.quit().await;
        }
        let mut client = ClientInfo::new(c.peer.client, c.peer.local);
        client.helo.clone_from(&helo);
        client.proto = match c.helo {
            Some((_, false)) => Proto::Smtp,
            _ => Proto::Esmtp,
        };
        client.login = Some(sender.user.clone());
        client.pop_authorized = sender.pop;
        let session = match self.relays.connect(&client).await {
            Ok(s) => s,
            Err(e) => return Err(self.connect_refusal(c, &e)),
        };
        let name = session.relay().to_owned();
        let Some(ehlo) = session.ehlo_reply().cloned() else {
            return Err(reply::standard(reply::RELAY_FAILED));
        };
        *self
            .relay_ehlo
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(ehlo.clone());
        let (stream, rest) = session.into_parts();
        let mut txn = Transaction::new(&ehlo);
        txn.feed(&rest);
        c.log.store = Some(name.clone());
        c.relay = Some(Relay {
            stream,
            txn,
            name,
            helo,
            login: client.login,
            pending: Vec::new(),
            buf: vec![0; 4096],
        });
        Ok(())
    }

    /// The client's reply when no relay session could be opened.
    fn connect_refusal(&self, c: &Conn, e: &portcullis_popbeforesmtp::Error) -> Reply {
        use portcullis_popbeforesmtp::Error as E;
        tracing::warn!(client = %c.peer.client, error = %e, "no relay session");
        match e {
            E::AllRelaysDown => reply::standard(reply::RELAY_UNAVAILABLE),
            E::InvalidClient { field, reason } => {
                reply::line(550, &format!("5.7.1 Refused: {field} {reason}"))
            }
            E::ClientRefused { code, text, .. } => reply::line(*code, text),
            _ => reply::standard(reply::RELAY_FAILED),
        }
    }

    /// Sends what the transaction queued and waits for the reply to
    /// `target`.
    async fn relay_reply(&self, relay: &mut Relay, target: Sent) -> Result<Reply, Error> {
        relay.flush().await?;
        relay.wait(target, self.limits.idle_timeout).await
    }

    /// The relay failed while a command waits for its answer: `451` to the
    /// client, the relay session dropped (the next MAIL opens another).
    fn relay_failed(&self, c: &mut Conn, e: Option<&Error>) {
        match e {
            Some(e) => self.relay_lost(c, e),
            None => c.relay = None,
        }
        c.message = None;
        c.refuse(reply::RELAY_FAILED);
    }

    fn relay_lost(&self, c: &mut Conn, e: &Error) {
        if let Some(relay) = c.relay.take() {
            tracing::warn!(client = %c.peer.client, relay = %relay.name, error = %e, "relay session failed");
        }
    }

    async fn data(&self, c: &mut Conn) {
        let Some(relay) = c.relay.as_mut() else {
            self.relay_failed(c, None);
            return;
        };
        if relay.txn.data().is_err() {
            c.refuse(reply::RELAY_FAILED);
            return;
        }
        if relay.txn.chunking() {
            if c.session.data_ok().is_err() {
                c.session.close(&reply::standard(reply::RELAY_FAILED));
            }
            return;
        }
        match self.relay_reply(relay, Sent::Data).await {
            Ok(r) if r.code() == 354 => {
                if c.session.data_ok().is_err() {
                    c.session.close(&reply::standard(reply::RELAY_FAILED));
                }
            }
            Ok(r) => c.answer(&r),
            Err(e) => self.relay_failed(c, Some(&e)),
        }
    }

    async fn end_of_data(&self, c: &mut Conn, size: u64) {
        let Some(relay) = c.relay.as_mut() else {
            self.log_message(c, size, None, MessageResult::Failed, "relay lost");
            self.relay_failed(c, None);
            return;
        };
        let ended = async {
            if relay.txn.chunking() {
                relay.send_pending()?;
            }
            relay.txn.end().map_err(relay_protocol)?;
            self.relay_reply(relay, Sent::EndOfData).await
        }
        .await;
        match ended {
            Ok(r) => {
                let result = format!(
                    "{} {}",
                    r.code(),
                    r.lines().last().map_or("", String::as_str)
                );
                let counted = if r.is_positive() {
                    MessageResult::Relayed
                } else {
                    MessageResult::Refused
                };
                self.log_message(c, size, Some(&r), counted, &result);
                if r.is_positive() {
                    c.messages = c.messages.saturating_add(1);
                }
                c.answer(&r);
            }
            Err(e) => {
                self.log_message(
                    c,
                    size,
                    None,
                    MessageResult::Failed,
                    &format!("relay failed: {e}"),
                );
                self.relay_failed(c, Some(&e));
            }
        }
    }

    /// Abandons the relay's transaction (RSET; closing when DATA content
    /// was already sent).
    async fn abandon_relay_transaction(&self, c: &mut Conn) {
        let Some(relay) = c.relay.as_mut() else {
            return;
        };
        match relay.reset(self.limits.idle_timeout).await {
            Ok(true) => {}
            Ok(false) => {
                if let Some(relay) = c.relay.take() {
                    tracing::debug!(relay = %relay.name, "DATA content sent: relay connection closed to drop it");
                }
            }
            Err(e) => self.relay_lost(c, &e),
        }
    }

    /// The one line per message (target `portcullis::message`), and its
    /// count in the metrics.
    fn log_message(
        &self,
        c: &mut Conn,
        size: u64,
        reply: Option<&Reply>,
        counted: MessageResult,
        result: &str,
    ) {
        self.auth.metrics.message(counted, size);
        let message = c.message.take().unwrap_or_default();
        tracing::info!(
            target: "portcullis::message",
            client = %c.peer.client,
            user = %c.log.user.as_deref().unwrap_or("-"),
            sender = %message.sender,
            recipients = message.recipients,
            size,
            relay = %c.relay.as_ref().map_or("-", |r| r.name.as_str()),
            queue_id = %reply.and_then(queue_id).as_deref().unwrap_or("-"),
            result = %result,
            "message"
        );
    }

    /// STARTTLS: the guard's proof, `220` (the session drops what was
    /// pipelined after the command), the handshake, the TLS context. The
    /// relay session (if any) is closed: everything is learnt again.
    async fn starttls(&self, c: &mut Conn) -> Result<(), Error> {
        let Some(tls) = &self.tls else {
            let _ = c
                .session
                .reject(&reply::line(454, "4.7.0 TLS not available"));
            return Ok(());
        };
        let proof = match c.starttls.begin(false, &mut Vec::<u8>::new()) {
            Ok(p) => p,
            Err(refusal) => {
                let _ = c
                    .session
                    .reject(&reply::line(454, &format!("4.7.0 {refusal}")));
                return Ok(());
            }
        };
        if c.session.starttls_ok().is_err() {
            c.starttls.failed(proof);
            c.session.close(&reply::standard(reply::RELAY_FAILED));
            return Ok(());
        }
        c.flush().await?;
        if let Some(relay) = c.relay.take() {
            relay.quit().await;
        }
        c.user = None;
        c.helo = None;
        c.message = None;
        session::upgrade(
            &self.auth.metrics,
            tls,
            &mut c.starttls,
            proof,
            &mut c.stream,
            &mut c.ctx,
            &mut c.peer,
            &mut c.log,
        )
        .await?;
        c.session
            .set_sasl_mechanisms(session::mechanism_names(&self.auth.policy, &c.ctx));
        Ok(())
    }
}

/// The sender an AUTH login makes.
fn sender_of(auth: &Authenticated) -> Sender {
    Sender::from_account(auth.identity(), auth.account(), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender(addresses: &[&str]) -> Sender {
        let mut a = Account::new("alice");
        a.set_attribute("mail", vec![addresses[0].to_owned()]);
        a.set_attribute(
            "mailAlternateAddress",
            addresses[1..].iter().map(|s| (*s).to_owned()).collect(),
        );
        Sender::from_account("alice", Some(&a), false)
    }

    #[test]
    fn a_user_owns_mail_and_alternate_addresses_only() {
        let s = sender(&["alice@example.com", "al@example.org", " a@example.net "]);
        assert!(s.owns("alice@example.com"));
        assert!(s.owns("Alice@EXAMPLE.com"));
        assert!(s.owns("al@example.org"));
        assert!(s.owns("a@example.net"));
        assert!(s.owns(""), "the null sender");
        assert!(!s.owns("bob@example.com"));
        assert!(!s.owns("alice@example.com.evil"));
        assert!(!s.owns("alice"));
        let nobody = Sender::from_account("carol", None, true);
        assert!(!nobody.owns("carol@example.com"));
    }
}
