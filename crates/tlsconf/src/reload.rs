//! The server handle: the current configuration, swapped atomically.
//!
//! ```text
//!   reload() ──build──▶ Ok(new) ──swap──▶ current ◀──load── accept()
//!                  └──▶ Err(e): current untouched, e returned
//! ```
//!
//! A build reads keys (an internal key costs one scrypt run) and may wait
//! on a token: [`TlsServer::reload_async`] and
//! [`TlsServer::reconfigure_async`] run it on tokio's blocking pool, so a
//! SIGHUP handler on the runtime never stalls the workers that serve
//! connections; [`TlsServer::watch`] builds on a thread of its own.
//!
//! `accept` takes a snapshot (an `Arc<ServerConfig>`) when the ClientHello
//! arrives; the handshake runs on it to the end, so handshakes in flight
//! finish with the old certificate while new ones get the new one.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::server::ClientHello;

use crate::Error;
use crate::client_auth::watched_crl_paths;
use crate::server::{Built, ServerSettings, build};
use crate::source::CertificateSource;
use crate::tickets::ResumptionState;

struct Inputs {
    settings: ServerSettings,
    resumption: ResumptionState,
}

/// A server's TLS configuration that can be rebuilt and swapped while
/// connections are being accepted.
pub struct TlsServer {
    current: ArcSwap<Built>,
    generation: AtomicU64,
    refused: AtomicU64,
    last_refusal: Mutex<Option<String>>,
    source: Arc<dyn CertificateSource>,
    inputs: Mutex<Inputs>,
}

impl fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsServer")
            .field("generation", &self.generation())
            .field("refused", &self.refused_reloads())
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl TlsServer {
    /// Builds the first configuration.
    ///
    /// # Errors
    /// Any error of [`crate::build_server_config`].
    pub fn new(
        source: Arc<dyn CertificateSource>,
        settings: ServerSettings,
    ) -> Result<Self, Error> {
        let resumption = ResumptionState::new(&settings.resumption)?;
        let built = build(&settings, source.as_ref(), &resumption)?;
        Ok(Self {
            current: ArcSwap::from_pointee(built),
            generation: AtomicU64::new(1),
            refused: AtomicU64::new(0),
            last_refusal: Mutex::new(None),
            source,
            inputs: Mutex::new(Inputs {
                settings,
                resumption,
            }),
        })
    }

    /// The current configuration (strict ALPN).
    pub fn config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.current.load().config)
    }

    /// The configuration for this ClientHello: the current one, or its
    /// no-ALPN twin when ALPN is not strict and the client offered only
    /// other protocols.
    pub fn config_for(&self, hello: &ClientHello<'_>) -> Arc<ServerConfig> {
        let built = self.current.load();
        if let (Some(lenient), Some(mut offered)) = (&built.without_alpn, hello.alpn()) {
            let ours = &built.config.alpn_protocols;
            if !offered.any(|p| ours.iter().any(|o| o.as_slice() == p)) {
                return Arc::clone(lenient);
            }
        }
        Arc::clone(&built.config)
    }

    /// The handshake timeout of the current settings.
    pub(crate) fn handshake_timeout(&self) -> Duration {
        self.current.load().handshake_timeout
    }

    /// How many configurations have been installed (1 after `new`).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// How many reloads or reconfigurations were refused (the previous
    /// configuration stayed), whether asked for directly or by a watch.
    pub fn refused_reloads(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }

    /// Why the last refused reload or reconfiguration was refused (`None`
    /// when none was, or the latest one succeeded).
    pub fn last_refusal(&self) -> Option<String> {
        self.last_refusal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set_last_refusal(&self, why: Option<String>) {
        *self
            .last_refusal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = why;
    }

    /// [`TlsServer::reload`] on tokio's blocking pool: the entry point for a
    /// daemon's SIGHUP handler. The runtime's workers keep serving while
    /// keys are decrypted and tokens answer; handshakes keep the old
    /// configuration until the new one is swapped in.
    ///
    /// # Errors
    /// The build error (the current configuration stays), or
    /// [`Error::Config`] when the blocking task could not run.
    pub async fn reload_async(self: &Arc<Self>) -> Result<u64, Error> {
        let server = Arc::clone(self);
        tokio::task::spawn_blocking(move || server.reload())
            .await
            .map_err(|e| Error::Config(format!("the reload task failed: {e}")))?
    }

    /// [`TlsServer::reconfigure`] on tokio's blocking pool (see
    /// [`TlsServer::reload_async`]).
    ///
    /// # Errors
    /// As [`TlsServer::reload_async`].
    pub async fn reconfigure_async(
        self: &Arc<Self>,
        settings: ServerSettings,
    ) -> Result<u64, Error> {
        let server = Arc::clone(self);
        tokio::task::spawn_blocking(move || server.reconfigure(settings))
            .await
            .map_err(|e| Error::Config(format!("the reconfiguration task failed: {e}")))?
    }

    fn lock(&self) -> MutexGuard<'_, Inputs> {
        // A panic while holding the lock cannot leave the inputs half
        // changed (they are replaced whole), so a poisoned lock is usable.
        self.inputs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Rebuilds from the source with the same settings (new certificates,
    /// CAs, CRLs) and swaps it in. On error the current configuration stays.
    ///
    /// # Errors
    /// The build error; nothing is changed then.
    pub fn reload(&self) -> Result<u64, Error> {
        let mut inputs = self.lock();
        let settings = inputs.settings.clone();
        self.install(&mut inputs, settings)
    }

    /// Replaces the settings and swaps in the configuration built from
    /// them. On error the current configuration and settings stay.
    ///
    /// # Errors
    /// The build error; nothing is changed then.
    pub fn reconfigure(&self, settings: ServerSettings) -> Result<u64, Error> {
        let mut inputs = self.lock();
        self.install(&mut inputs, settings)
    }

    fn install(&self, inputs: &mut Inputs, settings: ServerSettings) -> Result<u64, Error> {
        // Ticket keys and the session cache survive a reload, so clients
        // keep resuming, unless the client-certificate trust changed (a CA
        // removed, a CRL added): a session resumed into the new settings
        // would keep an identity they might refuse.
        let same_settings = inputs.resumption.settings == settings.resumption;
        let resumption = if same_settings {
            inputs.resumption.clone()
        } else {
            ResumptionState::new(&settings.resumption)?
        };
        let result = build(&settings, self.source.as_ref(), &resumption).and_then(|built| {
            if built.trust == self.current.load().trust {
                Ok((built, resumption))
            } else {
                let fresh = ResumptionState::new(&settings.resumption)?;
                Ok((built.with_resumption(&fresh), fresh))
            }
        });
        match result {
            Ok((built, resumption)) => {
                self.current.store(Arc::new(built));
                inputs.settings = settings;
                inputs.resumption = resumption;
                let g = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
                self.set_last_refusal(None);
                tracing::info!(generation = g, "TLS configuration reloaded");
                Ok(g)
            }
            Err(e) => {
                self.refused.fetch_add(1, Ordering::SeqCst);
                self.set_last_refusal(Some(e.to_string()));
                tracing::warn!(error = %e, "TLS reload refused; the previous configuration stays");
                Err(e)
            }
        }
    }

    /// The files a watcher looks at: the source's files and the CRLs.
    pub fn watched_paths(&self) -> Vec<PathBuf> {
        let mut v = self.source.watched_paths();
        v.extend(watched_crl_paths(&self.lock().settings.client_auth.crls));
        v
    }

    fn fingerprint(&self) -> (Fingerprint, Vec<u8>) {
        let state = self.source.watched_state();
        let digest = ring::digest::digest(&ring::digest::SHA256, &state);
        (fingerprint(&self.watched_paths()), digest.as_ref().to_vec())
    }

    /// Polls the watched files (and the source's other state, such as the
    /// certificates on tokens) every `interval` on a thread of its own and
    /// reloads when one changes (content, appearance or disappearance). A failed reload is logged and retried only after the
    /// next change. The watch stops when the returned guard is dropped.
    pub fn watch(self: &Arc<Self>, interval: Duration) -> Watch {
        let stop = Arc::new(AtomicBool::new(false));
        let server = Arc::clone(self);
        let stop2 = Arc::clone(&stop);
        let mut last = self.fingerprint();
        let thread = std::thread::Builder::new()
            .name("tlsconf-watch".into())
            .spawn(move || {
                while !stop2.load(Ordering::SeqCst) {
                    std::thread::park_timeout(interval);
                    if stop2.load(Ordering::SeqCst) {
                        break;
                    }
                    let now = server.fingerprint();
                    if now != last {
                        last = now;
                        // Errors are logged inside; the old configuration stays.
                        let _ = server.reload();
                    }
                }
            })
            .ok();
        Watch { stop, thread }
    }
}

/// Each path with a digest of its content (`None` when unreadable, as a
/// directory is). Content, not timestamps: a file replaced within one tick
/// of the file system clock by one of the same size is still seen.
type Fingerprint = Vec<(PathBuf, Option<Vec<u8>>)>;

fn fingerprint(paths: &[PathBuf]) -> Fingerprint {
    let mut v: Fingerprint = paths
        .iter()
        .map(|p| {
            let content = std::fs::read(p).ok();
            let digest = content.map(|d| {
                ring::digest::digest(&ring::digest::SHA256, &d)
                    .as_ref()
                    .to_vec()
            });
            (p.clone(), digest)
        })
        .collect();
    v.sort();
    v
}

/// Stops the file watch of [`TlsServer::watch`] when dropped.
#[derive(Debug)]
pub struct Watch {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}
