//! A daemon's whole life: configuration in, listeners up, connections
//! served until shutdown.
//!
//! ```text
//! check(service, path)  ── the configuration builds (nothing bound)
//! run(service, path, shutdown)
//!    ─► build: policy, users (directory or file), penalty, filters, stores, TLS, limits, PROXY policy
//!    ─► bind every listener ("listening on ADDR (pop|imap, tls|starttls)")
//!    ─► ready() callback (systemd notification in the binaries)
//!    ─► accept ─► listen::admit ─► the protocol's front end (Frontend), one task each
//!    ─► shutdown: stop accepting, unauthenticated clients hear -ERR/BYE,
//!       proxied sessions get up to SHUTDOWN_GRACE to end
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use portcullis_config::Config;
use portcullis_imap_proto::{ResponseCode, refusal_greeting};
use portcullis_ldapauth::UserSource;
use portcullis_popbeforesmtp::{AuthCache, Settings};
use portcullis_sasl::{Policy, PolicyConfig};
use portcullis_tlsconf::{Service, TlsServer};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch};

use crate::Error;
use crate::auth::{AccessFilters, Authenticator};
use crate::backend::Backend;
use crate::imap::ImapFrontend;
use crate::limits::Limits;
use crate::listen::{self, Admission, Admitted, ListenerSpec, TlsMode};
use crate::penalty::Penalty;
use crate::pop3::Pop3Frontend;
use crate::proxy_protocol::ProxyPolicy;
use crate::smtp::SmtpFrontend;

/// How long sessions may go on after shutdown was asked for.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// The pause after a failed accept (EMFILE and the like).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The protocol front end a service runs: what it serves on an admitted
/// connection, and how it turns away a connection the limits refused.
#[derive(Debug)]
enum Frontend {
    /// POP3 (`popd`).
    Pop(Pop3Frontend),
    /// IMAP (`imapd`).
    Imap(ImapFrontend),
    /// SMTP submission (`smtpd`).
    Smtp(Box<SmtpFrontend>),
}

impl Frontend {
    /// The short service name in logs (`pop`, `imap`).
    fn name(&self) -> &'static str {
        match self {
            Self::Pop(_) => "pop",
            Self::Imap(_) => "imap",
            Self::Smtp(_) => "smtp",
        }
    }

    /// Serves one admitted connection to its end; `stop` turning true
    /// ends a connection that has not logged in yet.
    async fn serve(&self, conn: Admitted, mode: TlsMode, stop: watch::Receiver<bool>) {
        match self {
            Self::Pop(f) => f.serve(conn, mode, stop).await,
            Self::Imap(f) => f.serve(conn, mode, stop).await,
            Self::Smtp(f) => f.serve(conn, mode, stop).await,
        }
    }

    /// The protocol's refusal of a connection the limits turned away,
    /// written on a plaintext listener before the greeting would be.
    fn refusal_line(&self, reason: &str) -> Vec<u8> {
        match self {
            Self::Pop(_) => format!("-ERR [SYS/TEMP] {reason}\r\n").into_bytes(),
            Self::Imap(_) => refusal_greeting(Some(&ResponseCode::Unavailable), reason),
            Self::Smtp(_) => format!("421 4.7.0 {reason}\r\n").into_bytes(),
        }
    }
}

/// Everything a service needs, built from the configuration.
#[derive(Debug)]
struct Built {
    frontend: Arc<Frontend>,
    listeners: Vec<ListenerSpec>,
    limits: Limits,
    proxy: ProxyPolicy,
}

/// The machine's host name (for SASL and the APOP timestamp), `localhost`
/// when it cannot be read.
fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| {
            std::fs::read_to_string(p)
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "localhost".to_owned())
}

/// The POP-before-SMTP cache when `mmp.preauth` is on: in Redis when
/// `local.redisurl` is set (where smtpd finds it), else in this process's
/// memory; entries live `mmp.authservicettl` seconds.
fn preauth_cache(config: &Config) -> Result<Option<AuthCache>, Error> {
    // The POP-before-SMTP crate's one configuration reader.
    Settings::from_parameters(|name| config.string(name).ok())
        .and_then(|s| s.auth_cache())
        .map_err(|e| match e {
            portcullis_popbeforesmtp::Error::InvalidSetting { name, reason } => {
                Error::InvalidSetting { name, reason }
            }
            other => Error::InvalidSetting {
                name: "mmp.preauth",
                reason: other.to_string(),
            },
        })
}

fn build(service: Service, config_path: &Path) -> Result<Built, Error> {
    let config = Config::load(config_path)?;
    let dir = config_path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    let get = |name: &str| config.string(name).ok();
    let policy = Policy::new(&PolicyConfig::from_parameters(get)?)?;
    // The directory, or the users file when `local.userfile` is set.
    let backends = UserSource::from_parameters(get, dir)?.backends();
    let limits = Limits::from_config(&config)?;
    let auth = Authenticator {
        policy,
        backends,
        penalty: Penalty::from_config(&config)?,
        filters: AccessFilters::from_config(&config, listen::service_name(service))?,
    };
    let backend = Backend::from_config(&config, dir)?;
    let tls = Some(Arc::new(TlsServer::from_parameters(service, get, dir)?));
    let frontend = match service {
        Service::Pop => Frontend::Pop(Pop3Frontend {
            auth,
            backend,
            tls,
            limits: limits.clone(),
            hostname: hostname(),
            preauth: preauth_cache(&config)?,
        }),
        Service::Imap => Frontend::Imap(ImapFrontend {
            auth,
            backend,
            tls,
            limits: limits.clone(),
            hostname: hostname(),
        }),
        Service::Smtp => Frontend::Smtp(Box::new(SmtpFrontend::from_config(
            &config,
            dir,
            auth,
            tls,
            limits.clone(),
            hostname(),
        )?)),
        _ => {
            return Err(Error::InvalidSetting {
                name: "service",
                reason: format!("no front end for {} here", listen::service_name(service)),
            });
        }
    };
    Ok(Built {
        frontend: Arc::new(frontend),
        listeners: listen::listeners(&config, service)?,
        limits,
        proxy: ProxyPolicy::from_config(&config)?,
    })
}

/// Validates the configuration at `config_path` for `service` as [`run`]
/// would use it, binding nothing.
///
/// # Errors
/// Whatever makes the configuration unusable, naming the parameter where
/// one is to blame.
pub fn check(service: Service, config_path: &Path) -> Result<(), Error> {
    build(service, config_path).map(|_| ())
}

/// Runs `service` from the configuration at `config_path` until
/// `shutdown` completes. `ready` is called once every listener is bound.
///
/// # Errors
/// A configuration that cannot be used, or a listener that cannot be
/// bound; once running, connection failures are logged, not returned.
pub async fn run(
    service: Service,
    config_path: &Path,
    ready: impl FnOnce(),
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let built = build(service, config_path)?;
    if built.listeners.is_empty() {
        tracing::warn!(
            service = listen::service_name(service),
            "no listeners configured (disabled, or every port is 0)"
        );
    }
    let bound = listen::bind(&built.listeners).await?;
    ready();
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection task holds a clone; when all are gone, recv() ends.
    let (drain_tx, mut drain_rx) = mpsc::channel::<()>(1);
    let gate = built.limits.gate();
    let mut acceptors = Vec::new();
    for listener in bound {
        let frontend = Arc::clone(&built.frontend);
        let proxy = built.proxy.clone();
        let gate = gate.clone();
        let mut stop = stop_rx.clone();
        let drain = drain_tx.clone();
        acceptors.push(tokio::spawn(async move {
            let mode = listener.spec.tls;
            let service = frontend.name();
            loop {
                let accepted = tokio::select! {
                    r = listener.socket.accept() => r,
                    _ = stop.wait_for(|s| *s) => break,
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
                let frontend = Arc::clone(&frontend);
                let proxy = proxy.clone();
                let gate = gate.clone();
                let stop = stop.clone();
                let drain = drain.clone();
                tokio::spawn(async move {
                    let _drain = drain;
                    match listen::admit(stream, peer, &gate, &proxy).await {
                        Admission::Admitted(conn) => frontend.serve(conn, mode, stop).await,
                        Admission::Refused {
                            mut stream,
                            client,
                            refusal,
                        } => {
                            tracing::info!(
                                target: "portcullis::connection",
                                service,
                                %client,
                                result = %refusal,
                                "connection refused"
                            );
                            // Only a plaintext listener can carry the
                            // refusal; an implicit-TLS one closes at once
                            // (no TLS work before the limits).
                            if mode == TlsMode::StartTls {
                                let line = frontend.refusal_line(&refusal.to_string());
                                let _ = tokio::time::timeout(
                                    Duration::from_secs(5),
                                    stream.write_all(&line),
                                )
                                .await;
                            }
                        }
                        Admission::Dropped { peer, error } => {
                            tracing::info!(target: "portcullis::connection", %peer, %error, "connection dropped");
                        }
                    }
                });
            }
        }));
    }
    drop(drain_tx);
    shutdown.await;
    tracing::info!("shutting down: no new connections");
    let _ = stop_tx.send(true);
    for a in acceptors {
        let _ = a.await;
    }
    if tokio::time::timeout(SHUTDOWN_GRACE, drain_rx.recv())
        .await
        .is_err()
    {
        tracing::warn!(grace = ?SHUTDOWN_GRACE, "sessions still open at the end of the grace period");
    }
    Ok(())
}
