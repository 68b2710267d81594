//! What the protocol front ends (`pop3`, `imap`) share around their
//! protocol cores: the connection's log record, the implicit-TLS
//! handshake, the STARTTLS upgrade through the tlsconf guard, the client
//! identity handed to the store, and the relay after login.
//!
//! ```text
//! Admitted ─► open_client (implicit TLS within mmp.preauthtimeout)
//!          ─► protocol core (pop3-proto / imap-proto) ─► upgrade (STLS / STARTTLS)
//!          ─► login ─► Backend::open_* (client_identity) ─► relay_to_store
//!          ─► ConnLog::emit: one line per connection end
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_sasl::ServerContext;
use portcullis_tlsconf::starttls::{StartTls, Upgrade};
use portcullis_tlsconf::{MaybeTls, TlsServer};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::Error;
use crate::auth::Peer;
use crate::backend::{ClientIdentity, StoreSession};
use crate::listen::{Prefixed, TlsMode};
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
