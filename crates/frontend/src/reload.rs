//! The running service: one acceptor per listener, the current
//! configuration generation, reloads, shutdown.
//!
//! ```text
//! Reloads (SIGHUP) ─► prepare (blocking pool: file, policy, users, penalty, filters, stores, limits)
//!                  ─► bind the listeners that are new (nothing announced yet)
//!                  ─► TLS (blocking pool): the running TlsServer reconfigured in place
//!                     (or a new one when local.ssldbpath changed)
//!                  ─► commit: limits onto the gate, removed listeners closed,
//!                     the new generation swapped in, new listeners announced
//!                  ─► "configuration reloaded"
//!          any error ─► "configuration reload refused: <reason, naming the parameter>";
//!                     nothing changed, the old generation stays
//! ```
//!
//! What a reload changes: everything read from the configuration file for
//! new connections (filters, SASL policy, users source, stores, limits,
//! timeouts, PROXY policy, certificates and TLS settings, listeners).
//! Connections already accepted keep the generation they started in until
//! they end; a STARTTLS after the reload uses the new certificate.
//!
//! What survives a reload: the connection gate's counts (new limits apply
//! to newcomers), the failed-login counts (unless `local.redisurl`
//! changed), the POP-before-SMTP cache (unless its settings changed), TLS
//! session ticket keys (unless the client-certificate trust changed), the
//! metrics.
//!
//! Listeners: an address that appears is bound, one that disappears is
//! closed (its sessions go on), a changed TLS mode on the same address
//! applies at once. The metrics listener follows
//! `local.metrics.listenaddr` the same way. A listener that cannot be
//! bound refuses the whole reload.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use portcullis_tlsconf::Service;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::Error;
use crate::limits::{ConnectionGate, Refusal};
use crate::listen::{self, Admission, Listener, TlsMode};
use crate::metrics::{self, Metrics, RefusedBy};
use crate::run::{self, Built, SHUTDOWN_GRACE};

/// The pause after a failed accept (EMFILE and the like).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How long the refusal of a connection the limits turned away may take.
const REFUSAL_WRITE: Duration = Duration::from_secs(5);

/// Requests to reload the configuration, as [`crate::run`] takes them.
#[derive(Debug)]
pub struct Reloads {
    requests: Option<mpsc::Receiver<()>>,
}

impl Reloads {
    /// Never: the configuration is read once.
    #[must_use]
    pub fn none() -> Self {
        Self { requests: None }
    }

    /// Reloads on request: each message on the sender asks for one (send
    /// with `try_send`: requests made while one is pending coalesce).
    #[must_use]
    pub fn channel() -> (mpsc::Sender<()>, Self) {
        let (tx, rx) = mpsc::channel(1);
        (tx, Self { requests: Some(rx) })
    }

    /// The next request; pending forever once the senders are gone.
    async fn next(&mut self) {
        if let Some(rx) = self.requests.as_mut()
            && rx.recv().await.is_some()
        {
            return;
        }
        self.requests = None;
        std::future::pending::<()>().await;
    }
}

/// One listener's accept loop.
#[derive(Debug)]
struct Acceptor {
    /// The configured address (the key across reloads).
    address: SocketAddr,
    close: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// A service running from its configuration.
#[derive(Debug)]
pub(crate) struct Server {
    service: Service,
    config_path: PathBuf,
    metrics: Metrics,
    current: watch::Sender<Arc<Built>>,
    gate: ConnectionGate,
    stop_tx: watch::Sender<bool>,
    stop: watch::Receiver<bool>,
    /// Every connection task holds a clone; when all are gone, the
    /// receiver's `recv()` ends.
    drain: mpsc::Sender<()>,
    drained: mpsc::Receiver<()>,
    acceptors: Vec<Acceptor>,
    /// The metrics endpoint, when one is configured.
    metrics_server: Option<MetricsServer>,
}

/// The metrics endpoint's task.
#[derive(Debug)]
struct MetricsServer {
    address: SocketAddr,
    close: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl MetricsServer {
    /// Serves `metrics` on `listener` until closed or shut down.
    fn spawn(
        listener: tokio::net::TcpListener,
        address: SocketAddr,
        metrics: Metrics,
        mut stop: watch::Receiver<bool>,
    ) -> Self {
        let (close, mut closed) = watch::channel(false);
        let task = tokio::spawn(async move {
            let (tx, rx) = watch::channel(false);
            let serving = metrics::serve(listener, metrics, rx);
            tokio::pin!(serving);
            tokio::select! {
                () = &mut serving => return,
                _ = stop.wait_for(|s| *s) => {},
                _ = closed.wait_for(|c| *c) => {},
            }
            let _ = tx.send(true);
            serving.await;
        });
        Self {
            address,
            close,
            task,
        }
    }

    /// Stops serving; the socket is closed when this returns.
    async fn close(self) {
        let _ = self.close.send(true);
        let _ = self.task.await;
    }
}

/// Runs `f` on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        Error::Io(std::io::Error::other(format!(
            "the reload task failed: {e}"
        )))
    })?
}

impl Server {
    /// Binds the listeners of `built` (and its metrics listener) and
    /// starts accepting.
    ///
    /// # Errors
    /// [`Error::Listen`] naming an address that cannot be bound.
    pub(crate) async fn start(
        service: Service,
        config_path: PathBuf,
        metrics: Metrics,
        built: Built,
    ) -> Result<Self, Error> {
        let name = listen::service_name(service);
        if built.listeners.is_empty() {
            tracing::warn!(
                service = name,
                "no listeners configured (disabled, or every port is 0)"
            );
        }
        let bound = listen::bind(&built.listeners).await?;
        let metrics_listener = match built.metrics_address {
            Some(address) => Some(metrics::bind(address).await?),
            None => None,
        };
        let (stop_tx, stop) = watch::channel(false);
        let (drain, drained) = mpsc::channel(1);
        let gate = built.limits.gate();
        let metrics_server = match (metrics_listener, built.metrics_address) {
            (Some(listener), Some(address)) => Some(MetricsServer::spawn(
                listener,
                address,
                metrics.clone(),
                stop.clone(),
            )),
            _ => None,
        };
        let (current, _) = watch::channel(Arc::new(built));
        let mut server = Self {
            service,
            config_path,
            metrics,
            current,
            gate,
            stop_tx,
            stop,
            drain,
            drained,
            acceptors: Vec::new(),
            metrics_server,
        };
        for listener in bound {
            server.spawn_acceptor(listener);
        }
        Ok(server)
    }

    /// Serves until `shutdown` completes, reloading on each request; then
    /// stops accepting and lets the sessions drain (up to
    /// [`SHUTDOWN_GRACE`]).
    pub(crate) async fn serve(mut self, shutdown: impl Future<Output = ()>, mut reloads: Reloads) {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                () = reloads.next() => self.reload().await,
            }
        }
        tracing::info!("shutting down: no new connections");
        let _ = self.stop_tx.send(true);
        for a in self.acceptors.drain(..) {
            let _ = a.task.await;
        }
        if let Some(m) = self.metrics_server.take() {
            m.close().await;
        }
        drop(self.drain);
        if tokio::time::timeout(SHUTDOWN_GRACE, self.drained.recv())
            .await
            .is_err()
        {
            tracing::warn!(grace = ?SHUTDOWN_GRACE, "sessions still open at the end of the grace period");
        }
    }

    fn spawn_acceptor(&mut self, listener: Listener) {
        let address = listener.spec.address;
        let (close, mut closed) = watch::channel(false);
        let current = self.current.subscribe();
        let gate = self.gate.clone();
        let mut stop = self.stop.clone();
        let drain = self.drain.clone();
        let task = tokio::spawn(async move {
            let socket = listener.socket;
            loop {
                let accepted = tokio::select! {
                    r = socket.accept() => r,
                    _ = stop.wait_for(|s| *s) => break,
                    _ = closed.wait_for(|c| *c) => break,
                };
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors or memory: back off a little
                        // rather than spin on the same error.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                };
                // The connection keeps this generation to its end.
                let built = Arc::clone(&current.borrow());
                let Some(mode) = built
                    .listeners
                    .iter()
                    .find(|s| s.address == address)
                    .map(|s| s.tls)
                else {
                    // Removed by a reload a moment ago.
                    continue;
                };
                tokio::spawn(connection(
                    built,
                    mode,
                    stream,
                    peer,
                    gate.clone(),
                    stop.clone(),
                    drain.clone(),
                ));
            }
        });
        self.acceptors.push(Acceptor {
            address,
            close,
            task,
        });
    }

    /// Reloads the configuration; logs and counts the outcome.
    async fn reload(&mut self) {
        let service = listen::service_name(self.service);
        let counters = self.current.borrow().metrics().clone();
        tracing::info!(service, path = %self.config_path.display(), "reloading the configuration");
        match self.try_reload().await {
            Ok(()) => {
                counters.reload(true);
                tracing::info!(service, "configuration reloaded");
            }
            Err(e) => {
                counters.reload(false);
                tracing::error!(
                    service,
                    "configuration reload refused: {e}; the previous configuration stays"
                );
            }
        }
    }

    async fn try_reload(&mut self) -> Result<(), Error> {
        let previous = Arc::clone(&self.current.borrow());
        let (service, path, metrics) =
            (self.service, self.config_path.clone(), self.metrics.clone());
        let prev = Arc::clone(&previous);
        let parts =
            blocking(move || run::prepare(service, &path, &metrics, Some(prev.as_ref()))).await?;
        // New addresses are bound before anything changes, so a busy one
        // refuses the reload as a whole.
        let mut bound = Vec::new();
        for spec in &parts.listeners {
            if !self.acceptors.iter().any(|a| a.address == spec.address) {
                bound.push(Listener::bind(spec).await?);
            }
        }
        let running = self.metrics_server.as_ref().map(|m| m.address);
        let metrics_listener = match parts.metrics_address {
            Some(address) if Some(address) != running => {
                Some(metrics::bind_quietly(address).await?)
            }
            _ => None,
        };
        // TLS last: it reconfigures the running server in place.
        let prev = Arc::clone(&previous);
        let built = blocking(move || {
            let tls = parts.tls(Some(prev.as_ref()))?;
            Ok(parts.finish(tls))
        })
        .await?;
        // Commit.
        built.limits.apply_to(&self.gate);
        if built.metrics_address != running
            && let Some(old) = self.metrics_server.take()
        {
            let address = old.address;
            old.close().await;
            tracing::info!("no more metrics on http://{address}/metrics");
        }
        if let (Some(listener), Some(address)) = (metrics_listener, built.metrics_address) {
            metrics::announce(&listener);
            self.metrics_server = Some(MetricsServer::spawn(
                listener,
                address,
                self.metrics.clone(),
                self.stop.clone(),
            ));
        }
        let name = listen::service_name(self.service);
        let (kept, removed): (Vec<Acceptor>, Vec<Acceptor>) = std::mem::take(&mut self.acceptors)
            .into_iter()
            .partition(|a| built.listeners.iter().any(|s| s.address == a.address));
        self.acceptors = kept;
        self.current.send_replace(Arc::new(built));
        // Closed once its loop ends (promptly: it waits on the close).
        for a in removed {
            let _ = a.close.send(true);
            let _ = a.task.await;
            tracing::info!("no longer listening on {} ({name})", a.address);
        }
        for listener in bound {
            listener.announce();
            self.spawn_acceptor(listener);
        }
        Ok(())
    }
}

/// One accepted connection: admission, then the generation's front end.
async fn connection(
    built: Arc<Built>,
    mode: TlsMode,
    stream: TcpStream,
    peer: SocketAddr,
    gate: ConnectionGate,
    stop: watch::Receiver<bool>,
    drain: mpsc::Sender<()>,
) {
    let _drain = drain;
    let frontend = &built.frontend;
    let counters = built.metrics();
    let service = frontend.name();
    match listen::admit(stream, peer, &gate, &built.proxy).await {
        Admission::Admitted(conn) => {
            counters.connection_accepted();
            frontend.serve(conn, mode, stop).await;
        }
        Admission::Refused {
            mut stream,
            client,
            refusal,
        } => {
            counters.connection_refused(match refusal {
                Refusal::ServerFull { .. } => RefusedBy::MaxClients,
                Refusal::AddressFull { .. } => RefusedBy::ConnLimits,
            });
            tracing::info!(
                target: "portcullis::connection",
                service,
                %client,
                result = %refusal,
                "connection refused"
            );
            // Only a plaintext listener can carry the refusal; an
            // implicit-TLS one closes at once (no TLS work before the
            // limits).
            if mode == TlsMode::StartTls {
                let line = frontend.refusal_line(&refusal.to_string());
                let _ = tokio::time::timeout(REFUSAL_WRITE, stream.write_all(&line)).await;
            }
        }
        Admission::Dropped { peer, error } => {
            counters.connection_refused(RefusedBy::Proxy);
            tracing::info!(target: "portcullis::connection", %peer, %error, "connection dropped");
        }
    }
}
