//! What the protocol front ends (`pop3`, `imap`) share around their
//! protocol cores: the connection's log record, the implicit-TLS
//! handshake, the STARTTLS upgrade through the tlsconf guard, the client
//! identity handed to the store, and the relay after login.
//!
//! ```text
//! Admitted ─► open_client (implicit TLS within mmp.preauthtimeout)
//!          ─► protocol core (pop3-proto / imap-proto) ─► upgrade (STLS / STARTTLS)
//!          ─► Login (exchange, penalty, account filters, attempt count)
//!          ─► Backend::open_* (client_identity) ─► relay_to_store (POP, IMAP)
//!          ─► ConnLog::emit: one line per connection end
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_sasl::framing::{self, AuthExchange, Failure, Protocol};
use portcullis_sasl::{Authenticated, Mechanism, Policy, ServerContext};
use portcullis_tlsconf::starttls::{StartTls, Upgrade};
use portcullis_tlsconf::{MaybeTls, TlsServer};
use tokio::io::{AsyncRead, AsyncWriteExt};
use tokio::net::TcpStream;
use zeroize::Zeroizing;

use crate::Error;
use crate::auth::{Authenticator, LoginOutcome, Peer};
use crate::backend::{ClientIdentity, StoreSession};
use crate::limits::AuthAttempts;
use crate::listen::{Admitted, Prefixed, TlsMode};
use crate::metrics::ServiceMetrics;
use crate::relay::{RelayOutcome, relay};

/// How long the last words to a client (a refusal, a timeout notice) may
/// take to leave.
pub(crate) const LAST_WORDS: Duration = Duration::from_secs(5);

/// The read buffer of the phase before login.
pub(crate) const READ_CHUNK: usize = 4096;

/// The client's transport: the socket, behind what came with the PROXY
/// header.
pub(crate) type Client = Prefixed<TcpStream>;

/// The client's connection: plaintext or TLS.
pub(crate) type ClientStream = MaybeTls<Client>;

/// The connection's log record.
#[derive(Debug, Default)]
pub(crate) struct ConnLog {
    pub(crate) tls_version: Option<String>,
    pub(crate) tls_suite: Option<String>,
    pub(crate) user: Option<String>,
    pub(crate) mechanism: Option<&'static str>,
    pub(crate) store: Option<String>,
    pub(crate) client_bytes: u64,
    pub(crate) store_bytes: u64,
    pub(crate) result: String,
}

impl ConnLog {
    pub(crate) fn tls_from(&mut self, conn: &portcullis_tlsconf::rustls::ServerConnection) {
        self.tls_version = conn.protocol_version().map(|v| format!("{v:?}"));
        self.tls_suite = conn
            .negotiated_cipher_suite()
            .map(portcullis_tlsconf::suites::iana_name)
            .map(str::to_owned);
    }

    /// The one line per connection end (target `portcullis::connection`).
    pub(crate) fn emit(&self, service: &'static str, client: SocketAddr, started: Instant) {
        tracing::info!(
            target: "portcullis::connection",
            service,
            %client,
            tls = %self.tls_version.as_deref().unwrap_or("none"),
            suite = %self.tls_suite.as_deref().unwrap_or("-"),
            user = %self.user.as_deref().unwrap_or("-"),
            mechanism = %self.mechanism.unwrap_or("-"),
            store = %self.store.as_deref().unwrap_or("-"),
            client_bytes = self.client_bytes,
            store_bytes = self.store_bytes,
            duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            result = %self.result,
            "connection closed"
        );
    }
}

impl ConnLog {
    /// Ends the connection's record: an error becomes the result, then
    /// the one line ([`ConnLog::emit`]).
    pub(crate) fn finish(
        mut self,
        outcome: Result<(), Error>,
        service: &'static str,
        client: SocketAddr,
        started: Instant,
    ) {
        if let Err(e) = outcome {
            self.result = format!("error: {e}");
        }
        self.emit(service, client, started);
    }
}

/// An admitted connection, opened for its protocol.
pub(crate) struct Opened {
    /// Plaintext, or TLS after the implicit-TLS handshake.
    pub(crate) stream: ClientStream,
    /// The client, the address it reached, whether TLS is on.
    pub(crate) peer: Peer,
    /// Client bytes that came with the PROXY header (none after an
    /// implicit-TLS handshake, which took them).
    pub(crate) buffered: Vec<u8>,
    /// The end of the time before login (`mmp.preauthtimeout`).
    pub(crate) deadline: Instant,
    /// The connection's slot, held to the end.
    pub(crate) _permit: crate::limits::Permit,
}

/// Opens an admitted connection: the implicit-TLS handshake within
/// `preauth` of `started` (see [`open_client`]). `None` when the
/// connection is over (the reason is in `log`).
pub(crate) async fn open(
    metrics: &ServiceMetrics,
    conn: Admitted,
    tls: Option<&Arc<TlsServer>>,
    mode: TlsMode,
    (started, preauth): (Instant, Duration),
    ctx: &mut ServerContext,
    log: &mut ConnLog,
) -> Option<Opened> {
    let Admitted {
        stream,
        client,
        local,
        mut buffered,
        permit,
        ..
    } = conn;
    let deadline = started + preauth;
    let stream = open_client(
        metrics,
        tls,
        mode,
        stream,
        &mut buffered,
        deadline,
        ctx,
        log,
    )
    .await?;
    let tls_active = stream.is_tls();
    Some(Opened {
        stream,
        peer: Peer::new(client, local, tls_active),
        buffered,
        deadline,
        _permit: permit,
    })
}

/// The client's stream as the protocol starts on it: on an implicit-TLS
/// listener after the handshake (within what is left until `deadline`;
/// bytes that came with the PROXY header start it), with `ctx` learning
/// the TLS state and `metrics` counting the handshake. `None` when the
/// connection is over (the reason is in `log`).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn open_client(
    metrics: &ServiceMetrics,
    tls: Option<&Arc<TlsServer>>,
    mode: TlsMode,
    stream: TcpStream,
    buffered: &mut Vec<u8>,
    deadline: Instant,
    ctx: &mut ServerContext,
    log: &mut ConnLog,
) -> Option<ClientStream> {
    if mode != TlsMode::Implicit {
        return Some(MaybeTls::Plain(Prefixed::new(Vec::new(), stream)));
    }
    let Some(tls) = tls else {
        log.result = "no TLS configured for the implicit-TLS port".to_owned();
        return None;
    };
    let stream = Prefixed::new(std::mem::take(buffered), stream);
    let remaining = deadline.saturating_duration_since(Instant::now());
    let accepted = match tls.accept_with_timeout(stream, remaining).await {
        Ok(a) => a,
        Err(e) => {
            metrics.handshake(false);
            log.result = format!("TLS handshake failed: {e}");
            return None;
        }
    };
    metrics.handshake(true);
    log.tls_from(accepted.connection());
    // TLS state for channel binding, and a verified client certificate
    // for EXTERNAL.
    *ctx = accepted.sasl_context(ctx.clone());
    Some(MaybeTls::Tls(Box::new(accepted.stream)))
}

/// The TLS handshake after the protocol said yes to STLS/STARTTLS (and its
/// answer was written): `stream` becomes TLS, `ctx`, `peer` and `log`
/// learn it, the guard records the outcome, `metrics` counts it.
///
/// # Errors
/// A failed handshake, or a stream that is not plaintext (the connection
/// is over either way).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn upgrade(
    metrics: &ServiceMetrics,
    tls: &TlsServer,
    guard: &mut StartTls,
    proof: Upgrade,
    stream: &mut Option<ClientStream>,
    ctx: &mut ServerContext,
    peer: &mut Peer,
    log: &mut ConnLog,
) -> Result<(), Error> {
    let Some(MaybeTls::Plain(tcp)) = stream.take() else {
        guard.failed(proof);
        return Err(Error::Io(std::io::Error::other("STARTTLS on a TLS stream")));
    };
    match tls.accept_starttls(tcp, &proof).await {
        Ok(accepted) => {
            metrics.handshake(true);
            guard.established(proof);
            log.tls_from(accepted.connection());
            *ctx = accepted.sasl_context(ctx.clone());
            peer.tls = true;
            *stream = Some(MaybeTls::Tls(Box::new(accepted.stream)));
            Ok(())
        }
        Err(e) => {
            metrics.handshake(false);
            guard.failed(proof);
            Err(Error::Io(std::io::Error::new(
                e.kind(),
                format!("STARTTLS handshake failed: {e}"),
            )))
        }
    }
}

/// Reads what the client has sent (at most [`READ_CHUNK`] bytes; empty at
/// end of file) without holding a buffer while the client is silent: a
/// read is tried at once (TLS may hold decrypted bytes), and when it would
/// wait, the buffer is given back and the socket waited on instead. An
/// idle connection before login then holds no read buffer of its own.
///
/// # Errors
/// The stream's read error; a TLS client that closes without
/// close_notify reads as end of file.
pub(crate) async fn read_some(stream: &mut ClientStream) -> std::io::Result<Zeroizing<Vec<u8>>> {
    use crate::relay::RelayStream;
    loop {
        let mut buf = Zeroizing::new(vec![0u8; READ_CHUNK]);
        let tried = std::future::poll_fn(|cx| {
            let mut read = tokio::io::ReadBuf::new(&mut buf[..]);
            match std::pin::Pin::new(&mut *stream).poll_read(cx, &mut read) {
                std::task::Poll::Pending => std::task::Poll::Ready(None),
                std::task::Poll::Ready(r) => {
                    std::task::Poll::Ready(Some(r.map(|()| read.filled().len())))
                }
            }
        })
        .await;
        match tried {
            Some(Ok(n)) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Some(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Ok(Zeroizing::new(Vec::new()));
            }
            Some(Err(e)) => return Err(e),
            None => {
                drop(buf);
                std::future::poll_fn(|cx| stream.poll_read_ready(cx)).await?;
            }
        }
    }
}

/// Who the client is, as the store is told (XCLIENT, ID, PROXY v2).
pub(crate) fn client_identity(peer: &Peer) -> ClientIdentity {
    let mut identity = ClientIdentity::new(peer.client);
    identity.local = Some(peer.local);
    identity
}

/// After login: the client bytes read past the login go to the store,
/// then bytes flow both ways until a close or `idle` passes; the byte
/// counts and the end go into `log` and `metrics`.
///
/// # Errors
/// Writing the pending bytes to the store failed.
pub(crate) async fn relay_to_store(
    metrics: &ServiceMetrics,
    stream: &mut ClientStream,
    store: &mut StoreSession,
    pending: &[u8],
    idle: Duration,
    log: &mut ConnLog,
) -> Result<(), Error> {
    if !pending.is_empty() {
        store.stream.write_all(pending).await?;
    }
    let outcome: RelayOutcome = match stream {
        MaybeTls::Plain(t) => relay(t, &mut store.stream, &store.pending, idle).await,
        MaybeTls::Tls(t) => relay(t.as_mut(), &mut store.stream, &store.pending, idle).await,
    };
    log.client_bytes = outcome
        .client_to_store
        .saturating_add(u64::try_from(pending.len()).unwrap_or(0));
    log.store_bytes = outcome.store_to_client;
    metrics.relayed(log.client_bytes, log.store_bytes);
    log.result = format!("relayed, {:?}", outcome.end);
    Ok(())
}

/// Why a login was refused, for the protocol's own reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The exchange failed (the penalty's delay has passed): the sasl
    /// framing's reply for this failure.
    Failed(Failure),
    /// The account's access filters deny the service.
    Denied,
    /// An access filter lookup failed temporarily (not counted as a
    /// failed attempt).
    TempFail,
}

/// How a login ended.
#[derive(Debug)]
pub(crate) enum Concluded {
    /// Authenticated and allowed; the log has the user and mechanism.
    Granted(Box<Authenticated>),
    /// Refused; with `close`, the attempt limit is reached and the
    /// connection is to end after the reply.
    Refused { why: Refused, close: bool },
}

/// Where a SASL exchange is after [`Login::advance`].
#[derive(Debug)]
pub(crate) enum Progress {
    /// Write this challenge; the client's next line goes to
    /// [`Login::line`].
    Challenge(Vec<u8>),
    /// The exchange is over.
    Concluded(Concluded),
    /// The exchange misbehaved (no exchange open, too many rounds).
    StateError,
}

/// The login orchestration every protocol front end shares: the SASL
/// exchange in progress, the backends answering its requests, the
/// penalty and the account filters ([`Authenticator::conclude`]), the
/// attempt count (`mmp.maxauthattempts`) and the log record.
pub(crate) struct Login {
    attempts: AuthAttempts,
    exchange: Option<AuthExchange>,
    /// The client's last response: the penalty keeps only a keyed
    /// fingerprint of it.
    last_response: Zeroizing<Vec<u8>>,
}

impl Login {
    pub(crate) fn new(attempts: AuthAttempts) -> Self {
        Self {
            attempts,
            exchange: None,
            last_response: Zeroizing::new(Vec::new()),
        }
    }

    /// Starts an exchange (`AUTH`, `AUTHENTICATE`) and runs it as far as
    /// it goes without client input.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn start(
        &mut self,
        auth: &Authenticator,
        protocol: Protocol,
        tag: Option<&str>,
        mechanism: &[u8],
        initial_response: Option<&[u8]>,
        ctx: &ServerContext,
        peer: &Peer,
        log: &mut ConnLog,
    ) -> Progress {
        self.last_response = Zeroizing::new(initial_response.unwrap_or_default().to_vec());
        let (exchange, event) = AuthExchange::start(
            protocol,
            tag,
            mechanism,
            initial_response,
            &auth.policy,
            ctx,
        );
        self.exchange = Some(exchange);
        self.advance(auth, event, peer, log).await
    }

    /// A client line during the exchange.
    pub(crate) async fn line(
        &mut self,
        auth: &Authenticator,
        line: &[u8],
        peer: &Peer,
        log: &mut ConnLog,
    ) -> Progress {
        self.last_response = Zeroizing::new(line.to_vec());
        let Some(exchange) = self.exchange.as_mut() else {
            return Progress::StateError;
        };
        let event = exchange.line(line);
        self.advance(auth, event, peer, log).await
    }

    async fn advance(
        &mut self,
        auth: &Authenticator,
        mut event: framing::Event,
        peer: &Peer,
        log: &mut ConnLog,
    ) -> Progress {
        // Each round answers one backend request; a mechanism needs few.
        let mut outcome = None;
        for _ in 0..8 {
            match event {
                framing::Event::Send(challenge) => return Progress::Challenge(challenge),
                framing::Event::Verify(request) => {
                    let answer = auth.backends.resolve(&request).await;
                    event = match self.exchange.as_mut() {
                        Some(ex) => ex.answer(answer),
                        None => break,
                    };
                }
                framing::Event::Success { auth, .. } => {
                    outcome = Some(Ok(auth));
                    break;
                }
                framing::Event::Failure { error, .. } => {
                    outcome = Some(Err(error));
                    break;
                }
                _ => break,
            }
        }
        let mechanism = self.exchange.as_ref().and_then(AuthExchange::mechanism);
        self.exchange = None;
        let Some(outcome) = outcome else {
            return Progress::StateError;
        };
        let secret = std::mem::take(&mut self.last_response);
        let concluded = self
            .conclude(auth, mechanism, outcome, peer, "", &secret, log)
            .await;
        Progress::Concluded(concluded)
    }

    /// A protocol's own password login (`USER`/`PASS`, `LOGIN`, `APOP`),
    /// `started` by the sasl crate: run to its end and concluded
    /// (`mechanism` is what the metrics count it as).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn one_shot(
        &mut self,
        auth: &Authenticator,
        mechanism: Mechanism,
        started: Result<
            (portcullis_sasl::ServerSession, portcullis_sasl::Step),
            portcullis_sasl::Error,
        >,
        peer: &Peer,
        user: &str,
        secret: &[u8],
        log: &mut ConnLog,
    ) -> Concluded {
        let outcome = auth.complete(started).await;
        self.conclude(auth, Some(mechanism), outcome, peer, user, secret, log)
            .await
    }

    /// The penalty and the filters through the authenticator, the log
    /// record, the attempt count.
    #[allow(clippy::too_many_arguments)]
    async fn conclude(
        &mut self,
        auth: &Authenticator,
        mechanism: Option<Mechanism>,
        outcome: Result<Authenticated, portcullis_sasl::Error>,
        peer: &Peer,
        user: &str,
        secret: &[u8],
        log: &mut ConnLog,
    ) -> Concluded {
        let (why, counts) = match auth.conclude(mechanism, outcome, peer, user, secret).await {
            LoginOutcome::Granted(a) => {
                log.user = Some(a.identity().to_owned());
                log.mechanism = Some(a.mechanism().name());
                return Concluded::Granted(a);
            }
            LoginOutcome::Failed { failure, error } => {
                tracing::debug!(client = %peer.client, %error, "login failed");
                log.result = format!("login failed: {error}");
                (Refused::Failed(failure), true)
            }
            LoginOutcome::Denied => {
                log.result = "denied by the account's access filter".to_owned();
                (Refused::Denied, true)
            }
            LoginOutcome::TempFail => {
                log.result = "tempfail in the account's access filter".to_owned();
                (Refused::TempFail, false)
            }
        };
        let close = counts && !self.attempts.record_failure();
        Concluded::Refused { why, close }
    }
}

/// The mechanisms `policy` advertises in `ctx`, by name.
pub(crate) fn mechanism_names(policy: &Policy, ctx: &ServerContext) -> Vec<String> {
    policy
        .advertised(ctx)
        .iter()
        .map(|m| m.name().to_owned())
        .collect()
}
