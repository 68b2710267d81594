//! The POP3 front end: one admitted connection from the greeting to the
//! end of the relay.
//!
//! ```text
//! Admitted ─► (implicit TLS handshake) ─► service-level filter ─► greeting
//!    ─► pop3-proto ServerSession: CAPA, STLS (guarded upgrade), USER/PASS,
//!       APOP (the greeting's timestamp), AUTH (sasl framing)
//!    ─► auth::Authenticator (penalty, account filters)
//!    ─► Backend::open_pop3 (mailHost or mmp.storehosts, XCLIENT, login)
//!    ─► "+OK" ─► relay until a close or mmp.timeout
//! ```
//!
//! Everything before the login runs within `mmp.preauthtimeout`. One log
//! line per connection end (target `portcullis::connection`) gives the
//! client, TLS version and suite, the canonical user, the mechanism, the
//! store, the bytes each way, the duration and the result; never a
//! password.

use std::sync::Arc;
use std::time::Instant;

use portcullis_accessfilter::Verdict;
use portcullis_pop3_proto::{Event, Response, ResponseCode, ServerConfig, ServerSession};
use portcullis_sasl::framing::{self, Protocol};
use portcullis_sasl::{Authenticated, Mechanism, Salt, ServerContext};
use portcullis_tlsconf::TlsServer;
use portcullis_tlsconf::starttls::{PipelinedInput, StartTls};
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use zeroize::Zeroizing;

use crate::Error;
use crate::auth::{Authenticator, Peer};
use crate::backend::{Backend, StoreSession};
use crate::limits::Limits;
use crate::listen::{Admitted, TlsMode};
use crate::session::{
    self, ClientStream, Concluded, ConnLog, LAST_WORDS, Login, Progress, Refused,
};

/// Everything a POP3 connection needs, shared by all of them.
#[derive(Debug)]
#[non_exhaustive]
pub struct Pop3Frontend {
    /// Authentication, penalty and access filters.
    pub auth: Authenticator,
    /// The message stores.
    pub backend: Backend,
    /// The service's TLS (`None`: no STLS, no implicit-TLS listener).
    pub tls: Option<Arc<TlsServer>>,
    /// Timeouts and attempt limits.
    pub limits: Limits,
    /// The host name for SASL and the APOP timestamp.
    pub hostname: String,
    /// With `mmp.preauth`: the POP-before-SMTP cache every successful
    /// login is recorded in.
    pub preauth: Option<portcullis_popbeforesmtp::AuthCache>,
}

/// Which answer a pending login wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    /// PASS or APOP.
    Login,
    /// AUTH.
    Auth,
}

/// One connection's state before the relay.
struct Conn {
    stream: Option<ClientStream>,
    session: ServerSession,
    ctx: ServerContext,
    salt: Option<Salt>,
    starttls: StartTls,
    login: Login,
    peer: Peer,
    store: Option<StoreSession>,
    log: ConnLog,
}

impl Conn {
    fn stream(&mut self) -> std::io::Result<&mut ClientStream> {
        self.stream
            .as_mut()
            .ok_or_else(|| std::io::Error::other("connection lost in the TLS upgrade"))
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        let out = self.session.take_output();
        if !out.is_empty() {
            let s = self.stream()?;
            s.write_all(&out).await?;
            s.flush().await?;
        }
        Ok(())
    }

    /// Writes what is left, within [`LAST_WORDS`], ignoring errors.
    async fn last_words(&mut self) {
        let _ = tokio::time::timeout(LAST_WORDS, self.flush()).await;
        if let Some(s) = self.stream.as_mut() {
            let _ = tokio::time::timeout(LAST_WORDS, s.shutdown()).await;
        }
    }
}

/// The POP3 reply code and text of a framing failure reply (the one
/// mapping from outcomes to replies lives in `portcullis_sasl::framing`).
fn reply_parts(reply: &[u8]) -> (Option<ResponseCode>, String) {
    let line = reply.strip_suffix(b"\r\n").unwrap_or(reply);
    match Response::parse(line) {
        Ok(r) => (r.code, r.text),
        Err(_) => (None, "Authentication failed".to_owned()),
    }
}

impl Pop3Frontend {
    fn context(&self) -> ServerContext {
        ServerContext::new(portcullis_sasl::Service::Pop, self.hostname.clone())
    }

    fn mechanisms(&self, ctx: &ServerContext) -> Vec<String> {
        session::mechanism_names(&self.auth.policy, ctx)
    }

    /// Serves one admitted connection to its end; `shutdown` turning true
    /// ends a connection that has not logged in yet (with `-ERR
    /// [SYS/TEMP]`).
    pub async fn serve(&self, conn: Admitted, mode: TlsMode, mut shutdown: watch::Receiver<bool>) {
        let started = Instant::now();
        let client = conn.client;
        let mut log = ConnLog::default();
        let outcome = self
            .serve_inner(conn, mode, &mut shutdown, &mut log, started)
            .await;
        log.finish(outcome, "pop", client, started);
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
        let peer = opened.peer;
        let mut config = ServerConfig::default();
        config.tls_active = tls_active;
        config.stls_available = self.tls.is_some() && !tls_active;
        config.plaintext_allowed = self.auth.policy.plaintext_login_allowed(&ctx);
        config.sasl_mechanisms = self.mechanisms(&ctx);
        config.max_bad_commands = 10;
        let salt = if self.auth.policy.apop_enabled(&ctx) {
            Some(Salt::for_greeting(&ctx)?)
        } else {
            None
        };
        config.apop_timestamp = salt.as_ref().map(|s| s.as_str().to_owned());
        let session = ServerSession::new(config)
            .map_err(|e| Error::Io(std::io::Error::other(format!("POP3 session: {e}"))))?;
        let mut c = Conn {
            stream: Some(stream),
            session,
            ctx,
            salt,
            starttls: if tls_active {
                StartTls::already_tls()
            } else {
                StartTls::new(PipelinedInput::Discard)
            },
            login: Login::new(self.limits.auth_attempts()),
            peer,
            store: None,
            log: std::mem::take(log),
        };
        let outcome = self.connected(&mut c, buffered, deadline, shutdown).await;
        *log = std::mem::take(&mut c.log);
        outcome
    }

    async fn connected(
        &self,
        c: &mut Conn,
        buffered: Vec<u8>,
        deadline: Instant,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), Error> {
        // The service-level filter, before the greeting.
        match self.auth.at_connect(&c.peer).await {
            Verdict::Allow => {}
            verdict => {
                let _ = c.session.take_output();
                let (code, text, result) = if verdict == Verdict::Deny {
                    (None, "Access denied", "denied by the service access filter")
                } else {
                    (
                        Some(ResponseCode::SysTemp),
                        "Access check failed temporarily, try again later",
                        "tempfail in the service access filter",
                    )
                };
                c.session.close(code, text);
                c.last_words().await;
                c.log.result = result.to_owned();
                return Ok(());
            }
        }
        c.session.feed(&buffered);
        let phase = {
            let work = tokio::time::timeout_at(deadline.into(), self.authorization(c));
            tokio::select! {
                r = work => Some(r),
                _ = shutdown.wait_for(|stop| *stop) => None,
            }
        };
        let logged_in = match phase {
            None => {
                c.session
                    .close(Some(ResponseCode::SysTemp), "Server shutting down");
                c.last_words().await;
                c.log.result = "shutdown before login".to_owned();
                return Ok(());
            }
            Some(Err(_elapsed)) => {
                c.session.close(None, "Autologout; no login in time");
                c.last_words().await;
                c.log.result = "pre-login timeout".to_owned();
                return Ok(());
            }
            Some(Ok(r)) => r?,
        };
        if !logged_in {
            c.last_words().await;
            return Ok(());
        }
        let Some(mut store) = c.store.take() else {
            c.log.result = "logged in without a store session".to_owned();
            return Ok(());
        };
        let pending = c.session.take_pending_input();
        let idle = self.limits.idle_timeout;
        let Some(stream) = c.stream.as_mut() else {
            return Err(Error::Io(std::io::Error::other(
                "connection lost in the TLS upgrade",
            )));
        };
        session::relay_to_store(
            &self.auth.metrics,
            stream,
            &mut store,
            &pending,
            idle,
            &mut c.log,
        )
        .await
    }

    /// The AUTHORIZATION phase: `Ok(true)` once logged in (store session
    /// in `c.store`), `Ok(false)` when the connection is to end.
    async fn authorization(&self, c: &mut Conn) -> Result<bool, Error> {
        loop {
            c.flush().await?;
            match c.session.poll() {
                Event::NeedMoreInput => {
                    // poll may have answered lines it handled itself.
                    c.flush().await?;
                    let read = session::read_some(c.stream()?).await?;
                    if read.is_empty() {
                        c.log.result = "client closed before login".to_owned();
                        return Ok(false);
                    }
                    c.session.feed(&read);
                }
                Event::User { .. } => {}
                Event::Pass { user, password } => {
                    let started = portcullis_sasl::ServerSession::password_login(
                        &self.auth.policy,
                        &c.ctx,
                        &user,
                        &password,
                    );
                    let secret = Zeroizing::new(password.as_bytes().to_vec());
                    let concluded = c
                        .login
                        .one_shot(
                            &self.auth,
                            Mechanism::Plain,
                            started,
                            &c.peer,
                            &user,
                            &secret,
                            &mut c.log,
                        )
                        .await;
                    self.conclude(c, concluded, Pending::Login).await;
                }
                Event::Apop { user, digest } => {
                    let started = match &c.salt {
                        Some(salt) => {
                            let response = format!("{user} {digest}");
                            portcullis_sasl::ServerSession::salted_login(
                                &self.auth.policy,
                                &c.ctx,
                                Mechanism::Apop,
                                salt,
                                response.as_bytes(),
                            )
                        }
                        None => Err(portcullis_sasl::Error::MechanismUnavailable),
                    };
                    let concluded = c
                        .login
                        .one_shot(
                            &self.auth,
                            Mechanism::Apop,
                            started,
                            &c.peer,
                            &user,
                            digest.as_bytes(),
                            &mut c.log,
                        )
                        .await;
                    self.conclude(c, concluded, Pending::Login).await;
                }
                Event::Auth {
                    mechanism,
                    initial_response,
                } => {
                    let progress = c
                        .login
                        .start(
                            &self.auth,
                            Protocol::Pop3,
                            None,
                            mechanism.as_bytes(),
                            initial_response.as_ref().map(|r| r.as_slice()),
                            &c.ctx,
                            &c.peer,
                            &mut c.log,
                        )
                        .await;
                    self.auth_progress(c, progress).await;
                }
                Event::AuthResponse { line } => {
                    let progress = c.login.line(&self.auth, &line, &c.peer, &mut c.log).await;
                    self.auth_progress(c, progress).await;
                }
                Event::Stls => self.stls(c).await?,
                Event::Quit => {
                    c.log.result = "quit before login".to_owned();
                    return Ok(false);
                }
                Event::Close => {
                    if c.log.result.is_empty() {
                        c.log.result = "closed before login".to_owned();
                    }
                    return Ok(false);
                }
                Event::LoggedIn => {
                    c.flush().await?;
                    return Ok(true);
                }
                _ => {
                    c.log.result = "protocol state error".to_owned();
                    return Ok(false);
                }
            }
        }
    }

    async fn auth_progress(&self, c: &mut Conn, progress: Progress) {
        match progress {
            Progress::Challenge(challenge) => {
                if c.session.auth_challenge(&challenge).is_err() {
                    c.session.close(None, "Authentication state error");
                }
            }
            Progress::Concluded(concluded) => self.conclude(c, concluded, Pending::Auth).await,
            Progress::StateError => c
                .session
                .close(Some(ResponseCode::SysTemp), "Authentication state error"),
        }
    }

    /// Answers a finished login (penalty, filters and attempt count done
    /// by [`Login`]): the store, then `+OK` or `-ERR`.
    async fn conclude(&self, c: &mut Conn, concluded: Concluded, pending: Pending) {
        let (why, close) = match concluded {
            Concluded::Granted(auth) => {
                match self.open_store(c, &auth).await {
                    Ok(()) => {
                        let _ = c.session.login_ok();
                    }
                    Err((code, text)) => self.answer_err(c, pending, code, &text),
                }
                return;
            }
            Concluded::Refused { why, close } => (why, close),
        };
        match why {
            Refused::Failed(failure) => {
                let reply = framing::failure_reply(Protocol::Pop3, None, failure);
                match pending {
                    Pending::Auth => {
                        let _ = c.session.auth_fail(&reply);
                    }
                    Pending::Login => {
                        let (code, text) = reply_parts(&reply);
                        let _ = c.session.login_err(code, &text);
                    }
                }
            }
            Refused::Denied => {
                self.answer_err(c, pending, Some(ResponseCode::Auth), "Access denied");
            }
            Refused::TempFail => self.answer_err(
                c,
                pending,
                Some(ResponseCode::SysTemp),
                "Access check failed temporarily, try again later",
            ),
        }
        if close {
            c.session
                .close(None, "Too many failed logins, closing connection");
        }
    }

    /// A refusal after the exchange itself succeeded: the same `-ERR` for
    /// PASS, APOP and AUTH.
    fn answer_err(&self, c: &mut Conn, _pending: Pending, code: Option<ResponseCode>, text: &str) {
        let _ = c.session.login_err(code, text);
    }

    /// Opens the user's store session; on failure the reply code and text.
    async fn open_store(
        &self,
        c: &mut Conn,
        auth: &Authenticated,
    ) -> Result<(), (Option<ResponseCode>, String)> {
        let user = auth.identity().to_owned();
        let mail_host = auth.account().and_then(|a| a.mail_host.clone());
        let identity = session::client_identity(&c.peer);
        // The exchange hands on the password of a cleartext login (USER/
        // PASS, AUTH PLAIN, AUTH LOGIN) for mmp.storelogin = auto or replay;
        // CRAM-MD5, SCRAM, APOP and EXTERNAL have none: the master-user
        // form.
        match self
            .backend
            .open_pop3(
                mail_host.as_deref(),
                &user,
                auth.password(),
                Some(&identity),
            )
            .await
        {
            Ok(store) => {
                c.log.store = Some(store.address.to_string());
                c.store = Some(store);
                if let Some(cache) = &self.preauth {
                    let now = portcullis_popbeforesmtp::Timestamp::now();
                    if let Err(e) = cache.record(c.peer.client.ip(), &user, now).await {
                        tracing::warn!(%user, error = %e, "POP-before-SMTP login not recorded");
                    }
                }
                Ok(())
            }
            Err(e) => {
                tracing::warn!(%user, error = %e, "store login failed");
                self.auth.metrics.store_error(e.is_temporary());
                c.log.result = format!("store: {e}");
                if e.is_temporary() {
                    return Err((
                        Some(ResponseCode::SysTemp),
                        "Message store temporarily unavailable".to_owned(),
                    ));
                }
                let code = match &e {
                    Error::StoreRefused {
                        code: Some(code), ..
                    } => ResponseCode::parse(code).ok(),
                    Error::StoreRefused { .. } => Some(ResponseCode::Auth),
                    _ => Some(ResponseCode::SysPerm),
                };
                Err((code, "The message store refused the login".to_owned()))
            }
        }
    }

    /// STLS: the guard's proof, `+OK` (the session drops what was
    /// pipelined after the command), the handshake, the TLS context.
    async fn stls(&self, c: &mut Conn) -> Result<(), Error> {
        let Some(tls) = &self.tls else {
            let _ = c.session.reject(None, "STLS not available");
            return Ok(());
        };
        // The session holds every byte read so far and discards what
        // followed STLS itself; nothing is buffered outside it.
        let proof = match c.starttls.begin(false, &mut Vec::<u8>::new()) {
            Ok(p) => p,
            Err(refusal) => {
                let _ = c.session.reject(None, &refusal.to_string());
                return Ok(());
            }
        };
        if c.session.stls_ok().is_err() {
            c.starttls.failed(proof);
            c.session.close(None, "STLS state error");
            return Ok(());
        }
        c.flush().await?;
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
        let mechanisms = self.mechanisms(&c.ctx);
        c.session.set_sasl_mechanisms(mechanisms);
        Ok(())
    }
}
