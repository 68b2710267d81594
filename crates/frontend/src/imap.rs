//! The IMAP front end: one admitted connection from the greeting to the
//! end of the relay.
//!
//! ```text
//! Admitted ─► (implicit TLS handshake) ─► service-level filter ─► greeting
//!    ─► imap-proto ServerSession: CAPABILITY, NOOP, ID, LOGOUT (answered
//!       there), STARTTLS (guarded upgrade), LOGIN, AUTHENTICATE (sasl framing)
//!    ─► auth::Authenticator (penalty, account filters)
//!    ─► Backend::open_imap (mailHost or mmp.storehosts, ID with the
//!       client's address, LOGIN replay or master-user AUTHENTICATE PLAIN)
//!    ─► "tag OK [CAPABILITY <the store's>] Logged in" ─► relay until a
//!       close or mmp.timeout (at least 30 minutes, RFC 9051 §5.4)
//! ```
//!
//! Everything before the login runs within `mmp.preauthtimeout`; a
//! client that has not logged in hears `* BYE` when that passes or the
//! daemon shuts down. One log line per connection end (target
//! `portcullis::connection`), as for POP3; never a password.

use std::sync::Arc;
use std::time::Instant;

use portcullis_accessfilter::Verdict;
use portcullis_imap_proto::{Event, ResponseCode, ServerConfig, ServerSession};
use portcullis_sasl::framing::{self, Protocol};
use portcullis_sasl::{Authenticated, Mechanism, Password, ServerContext};
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

/// Everything an IMAP connection needs, shared by all of them.
#[derive(Debug)]
#[non_exhaustive]
pub struct ImapFrontend {
    /// Authentication, penalty and access filters.
    pub auth: Authenticator,
    /// The message stores.
    pub backend: Backend,
    /// The service's TLS (`None`: no STARTTLS, no implicit-TLS listener).
    pub tls: Option<Arc<TlsServer>>,
    /// Timeouts and attempt limits.
    pub limits: Limits,
    /// The host name for SASL.
    pub hostname: String,
}

/// One connection's state before the relay.
struct Conn {
    stream: Option<ClientStream>,
    session: ServerSession,
    ctx: ServerContext,
    starttls: StartTls,
    login: Login,
    /// The tag of the LOGIN or AUTHENTICATE being answered.
    tag: String,
    peer: Peer,
    /// The client's own ID fields (its last ID command), for the store
    /// when `mmp.forwardclientid` is on.
    client_id: portcullis_imap_proto::command::IdParameters,
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

/// What a client hears when the store cannot take its login.
fn store_refusal(e: &Error) -> (Option<ResponseCode>, &'static str) {
    if e.is_temporary() {
        return (
            Some(ResponseCode::Unavailable),
            "Message store temporarily unavailable",
        );
    }
    let code = match e {
        Error::StoreRefused {
            code: Some(code), ..
        } => match ResponseCode::parse(code) {
            // Only the store's RFC 5530 codes are passed on.
            Ok(ResponseCode::Other(_) | ResponseCode::Capability(_)) | Err(_) => {
                ResponseCode::AuthenticationFailed
            }
            Ok(code) => code,
        },
        Error::StoreRefused { .. } => ResponseCode::AuthenticationFailed,
        _ => ResponseCode::ServerBug,
    };
    (Some(code), "The message store refused the login")
}

impl ImapFrontend {
    fn context(&self) -> ServerContext {
        ServerContext::new(portcullis_sasl::Service::Imap, self.hostname.clone())
    }

    fn mechanisms(&self, ctx: &ServerContext) -> Vec<String> {
        session::mechanism_names(&self.auth.policy, ctx)
    }

    /// Serves one admitted connection to its end; `shutdown` turning true
    /// ends a connection that has not logged in yet (with `* BYE
    /// [UNAVAILABLE]`).
    pub async fn serve(&self, conn: Admitted, mode: TlsMode, mut shutdown: watch::Receiver<bool>) {
        let started = Instant::now();
        let client = conn.client;
        let mut log = ConnLog::default();
        let outcome = self
            .serve_inner(conn, mode, &mut shutdown, &mut log, started)
            .await;
        log.finish(outcome, "imap", client, started);
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
        let mut config = ServerConfig::default();
        config.tls_active = tls_active;
        config.starttls_available = self.tls.is_some() && !tls_active;
        config.plaintext_allowed = self.auth.policy.plaintext_login_allowed(&ctx);
        config.sasl_mechanisms = self.mechanisms(&ctx);
        config.id = vec![("name".to_owned(), "Portcullis".to_owned())];
        let session = ServerSession::new(config)
            .map_err(|e| Error::Io(std::io::Error::other(format!("IMAP session: {e}"))))?;
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
            tag: String::new(),
            peer: opened.peer,
            client_id: Vec::new(),
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
        // The service-level filter, before the greeting: `* BYE` instead.
        match self.auth.at_connect(&c.peer).await {
            Verdict::Allow => {}
            verdict => {
                let _ = c.session.take_output();
                if verdict == Verdict::Deny {
                    c.session.bye("Access denied");
                    c.log.result = "denied by the service access filter".to_owned();
                } else {
                    c.session.bye_with_code(
                        Some(ResponseCode::Unavailable),
                        "Access check failed temporarily, try again later",
                    );
                    c.log.result = "tempfail in the service access filter".to_owned();
                }
                c.last_words().await;
                return Ok(());
            }
        }
        c.session.feed(&buffered);
        let phase = {
            let work = tokio::time::timeout_at(deadline.into(), self.not_authenticated(c));
            tokio::select! {
                r = work => Some(r),
                _ = shutdown.wait_for(|stop| *stop) => None,
            }
        };
        let logged_in = match phase {
            None => {
                c.session
                    .bye_with_code(Some(ResponseCode::Unavailable), "Server shutting down");
                c.last_words().await;
                c.log.result = "shutdown before login".to_owned();
                return Ok(());
            }
            Some(Err(_elapsed)) => {
                c.session.bye("Autologout; no login in time");
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
        let idle = self.limits.imap_idle_timeout();
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

    /// The not-authenticated state: `Ok(true)` once logged in (store
    /// session in `c.store`), `Ok(false)` when the connection is to end.
    async fn not_authenticated(&self, c: &mut Conn) -> Result<bool, Error> {
        loop {
            c.flush().await?;
            match c.session.poll() {
                Event::NeedMoreInput => {
                    // poll may have answered commands it handled itself.
                    c.flush().await?;
                    let read = session::read_some(c.stream()?).await?;
                    if read.is_empty() {
                        c.log.result = "client closed before login".to_owned();
                        return Ok(false);
                    }
                    c.session.feed(&read);
                }
                Event::Login {
                    tag,
                    user,
                    password,
                } => {
                    c.tag = tag;
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
                    self.conclude(c, concluded, Some(password)).await;
                }
                Event::Authenticate {
                    tag,
                    mechanism,
                    initial_response,
                } => {
                    c.tag = tag;
                    let progress = c
                        .login
                        .start(
                            &self.auth,
                            Protocol::Imap,
                            Some(c.tag.as_str()),
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
                Event::StartTls { .. } => self.starttls(c).await?,
                // Answered by the session; the client's fields are kept
                // for the store (passed on only with mmp.forwardclientid).
                Event::Id { parameters, .. } => c.client_id = parameters.unwrap_or_default(),
                Event::Logout => {
                    c.log.result = "logout before login".to_owned();
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
                    c.session.bye("Authentication state error");
                }
            }
            Progress::Concluded(concluded) => self.conclude(c, concluded, None).await,
            Progress::StateError => c
                .session
                .bye_with_code(Some(ResponseCode::ServerBug), "Authentication state error"),
        }
    }

    /// Answers a finished login (penalty, filters and attempt count done
    /// by [`Login`]): the store, then `tag OK [CAPABILITY ...]` or `tag NO
    /// [code]`.
    async fn conclude(&self, c: &mut Conn, concluded: Concluded, cleartext: Option<Password>) {
        let (why, close) = match concluded {
            Concluded::Granted(auth) => {
                match self.open_store(c, &auth, cleartext).await {
                    Ok(capabilities) => {
                        let _ = c.session.login_ok(&capabilities);
                    }
                    Err((code, text)) => {
                        let _ = c.session.login_no(code, text);
                    }
                }
                return;
            }
            Concluded::Refused { why, close } => (why, close),
        };
        match why {
            Refused::Failed(failure) => {
                let reply = framing::failure_reply(Protocol::Imap, Some(&c.tag), failure);
                let _ = c.session.login_fail(&reply);
            }
            Refused::Denied => {
                let _ = c
                    .session
                    .login_no(Some(ResponseCode::ContactAdmin), "Access denied");
            }
            Refused::TempFail => {
                let _ = c.session.login_no(
                    Some(ResponseCode::Unavailable),
                    "Access check failed temporarily, try again later",
                );
            }
        }
        if close {
            c.session.bye("Too many failed logins, closing connection");
        }
    }

    /// Opens the user's store session; the store's post-login
    /// capabilities, or the reply code and text of the refusal.
    async fn open_store(
        &self,
        c: &mut Conn,
        auth: &Authenticated,
        cleartext: Option<Password>,
    ) -> Result<Vec<String>, (Option<ResponseCode>, &'static str)> {
        let user = auth.identity().to_owned();
        let mail_host = auth.account().and_then(|a| a.mail_host.clone());
        let identity = session::client_identity(&c.peer).with_client_id(&c.client_id);
        // The cleartext password of LOGIN, or the one the exchange handed
        // on (AUTHENTICATE PLAIN / LOGIN), is replayed; everything else
        // uses the master-user form.
        let cleartext = cleartext
            .filter(|_| auth.mechanism().is_plaintext())
            .or_else(|| auth.password().cloned());
        match self
            .backend
            .open_imap(
                mail_host.as_deref(),
                &user,
                cleartext.as_ref(),
                Some(&identity),
            )
            .await
        {
            Ok(store) => {
                c.log.store = Some(store.address.to_string());
                let capabilities = store.capabilities.clone();
                c.store = Some(store);
                Ok(capabilities)
            }
            Err(e) => {
                tracing::warn!(%user, error = %e, "store login failed");
                self.auth.metrics.store_error(e.is_temporary());
                c.log.result = format!("store: {e}");
                Err(store_refusal(&e))
            }
        }
    }

    /// STARTTLS: the guard's proof, `tag OK` (the session drops what was
    /// pipelined after the command), the handshake, the TLS context.
    async fn starttls(&self, c: &mut Conn) -> Result<(), Error> {
        let Some(tls) = &self.tls else {
            let _ = c.session.reject(None, "STARTTLS not available");
            return Ok(());
        };
        // The session holds every byte read so far and discards what
        // followed STARTTLS itself; nothing is buffered outside it.
        let proof = match c.starttls.begin(false, &mut Vec::<u8>::new()) {
            Ok(p) => p,
            Err(refusal) => {
                let _ = c.session.reject(None, &refusal.to_string());
                return Ok(());
            }
        };
        if c.session.starttls_ok().is_err() {
            c.starttls.failed(proof);
            c.session.bye("STARTTLS state error");
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
