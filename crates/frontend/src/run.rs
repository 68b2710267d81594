//! A daemon's whole life: configuration in, listeners up, connections
//! served until shutdown, the configuration reloaded on request.
//!
//! ```text
//! check(service, path)  ── the configuration builds (nothing bound)
//! run(service, path, ready, shutdown, reloads)
//!    ─► build: policy, users (directory or file), penalty, filters, stores, TLS, limits, PROXY policy
//!    ─► bind every listener ("listening on ADDR (pop|imap, tls|starttls)"), the metrics listener
//!    ─► ready() callback (systemd notification in the binaries)
//!    ─► accept ─► listen::admit ─► the protocol's front end (Frontend), one task each
//!    ─► reload (SIGHUP): see the `reload` module
//!    ─► shutdown: stop accepting, unauthenticated clients hear -ERR/BYE,
//!       proxied sessions get up to SHUTDOWN_GRACE to end
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use portcullis_config::Config;
use portcullis_imap_proto::{ResponseCode, refusal_greeting};
use portcullis_ldapauth::UserSource;
use portcullis_popbeforesmtp::{AuthCache, Settings};
use portcullis_sasl::{Policy, PolicyConfig};
use portcullis_tlsconf::{Service, TlsServer};
use tokio::sync::watch;

use crate::Error;
use crate::auth::{AccessFilters, Authenticator};
use crate::backend::Backend;
use crate::imap::ImapFrontend;
use crate::limits::Limits;
use crate::listen::{self, Admitted, ListenerSpec, TlsMode};
use crate::metrics::{self, Metrics, ServiceMetrics};
use crate::penalty::Penalty;
use crate::pop3::Pop3Frontend;
use crate::proxy_protocol::ProxyPolicy;
use crate::reload::{Reloads, Server};
use crate::smtp::SmtpFrontend;

/// How long sessions may go on after shutdown was asked for.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// The protocol front end a service runs: what it serves on an admitted
/// connection, and how it turns away a connection the limits refused.
#[derive(Debug)]
pub(crate) enum Frontend {
    /// POP3 (`popd`).
    Pop(Pop3Frontend),
    /// IMAP (`imapd`).
    Imap(ImapFrontend),
    /// SMTP submission (`smtpd`).
    Smtp(Box<SmtpFrontend>),
}

impl Frontend {
    /// The short service name in logs (`pop`, `imap`).
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Pop(_) => "pop",
            Self::Imap(_) => "imap",
            Self::Smtp(_) => "smtp",
        }
    }

    /// Serves one admitted connection to its end; `stop` turning true
    /// ends a connection that has not logged in yet.
    pub(crate) async fn serve(&self, conn: Admitted, mode: TlsMode, stop: watch::Receiver<bool>) {
        match self {
            Self::Pop(f) => f.serve(conn, mode, stop).await,
            Self::Imap(f) => f.serve(conn, mode, stop).await,
            Self::Smtp(f) => f.serve(conn, mode, stop).await,
        }
    }

    /// The protocol's refusal of a connection the limits turned away,
    /// written on a plaintext listener before the greeting would be.
    pub(crate) fn refusal_line(&self, reason: &str) -> Vec<u8> {
        match self {
            Self::Pop(_) => format!("-ERR [SYS/TEMP] {reason}\r\n").into_bytes(),
            Self::Imap(_) => refusal_greeting(Some(&ResponseCode::Unavailable), reason),
            Self::Smtp(_) => format!("421 4.7.0 {reason}\r\n").into_bytes(),
        }
    }

    /// Authentication, penalty, filters and counters.
    pub(crate) fn auth(&self) -> &Authenticator {
        match self {
            Self::Pop(f) => &f.auth,
            Self::Imap(f) => &f.auth,
            Self::Smtp(f) => &f.auth,
        }
    }

    /// The service's TLS server.
    fn tls(&self) -> Option<&Arc<TlsServer>> {
        match self {
            Self::Pop(f) => f.tls.as_ref(),
            Self::Imap(f) => f.tls.as_ref(),
            Self::Smtp(f) => f.tls.as_ref(),
        }
    }

    /// The POP-before-SMTP cache, where the front end records logins (a
    /// reload keeps it; smtpd only reads it, and builds its own).
    fn preauth(&self) -> Option<&AuthCache> {
        match self {
            Self::Pop(f) => f.preauth.as_ref(),
            Self::Imap(_) | Self::Smtp(_) => None,
        }
    }
}

/// Everything a service needs, built from the configuration: one
/// generation. Connections keep the generation they were accepted in.
#[derive(Debug)]
pub(crate) struct Built {
    pub(crate) frontend: Arc<Frontend>,
    pub(crate) listeners: Vec<ListenerSpec>,
    pub(crate) limits: Limits,
    pub(crate) proxy: ProxyPolicy,
    /// Where the metrics are served (`None`: off).
    pub(crate) metrics_address: Option<std::net::SocketAddr>,
    /// The certificate database the TLS server reads.
    certdb: PathBuf,
    /// The POP-before-SMTP settings the cache was made from.
    preauth_settings: Option<Settings>,
}

impl Built {
    /// The service's counters.
    pub(crate) fn metrics(&self) -> &ServiceMetrics {
        &self.frontend.auth().metrics
    }
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

/// Maps an error of the POP-before-SMTP crate to ours, naming the
/// parameter.
fn preauth_error(e: portcullis_popbeforesmtp::Error) -> Error {
    match e {
        portcullis_popbeforesmtp::Error::InvalidSetting { name, reason } => {
            Error::InvalidSetting { name, reason }
        }
        other => Error::InvalidSetting {
            name: "mmp.preauth",
            reason: other.to_string(),
        },
    }
}

/// The POP-before-SMTP cache when `mmp.preauth` is on: in Redis when
/// `local.redisurl` is set (where smtpd finds it), else in this process's
/// memory; entries live `mmp.authservicettl` seconds. After a reload that
/// left its settings alone, the previous generation's cache (`previous`:
/// its settings and cache; its entries in memory survive).
fn preauth_cache(
    settings: &Settings,
    previous: Option<(&Settings, Option<&AuthCache>)>,
) -> Result<Option<AuthCache>, Error> {
    if let Some((before, cache)) = previous
        && before == settings
    {
        return Ok(cache.cloned());
    }
    settings.auth_cache().map_err(preauth_error)
}

/// A generation before its TLS step: everything but the TLS server. A
/// reload builds this first (nothing running changes), binds the new
/// listeners, and only then touches TLS, which changes the running server
/// in place.
pub(crate) struct Parts {
    service: Service,
    config: Config,
    dir: PathBuf,
    certdb: PathBuf,
    protocol: ProtocolParts,
    limits: Limits,
    pub(crate) listeners: Vec<ListenerSpec>,
    proxy: ProxyPolicy,
    pub(crate) metrics_address: Option<std::net::SocketAddr>,
}

/// The protocol's own part of a generation before its TLS step.
enum ProtocolParts {
    Pop {
        auth: Authenticator,
        backend: Backend,
        /// The POP-before-SMTP settings and the cache made from them.
        preauth: (Settings, Option<AuthCache>),
    },
    Imap {
        auth: Authenticator,
        backend: Backend,
    },
    /// Everything but the TLS server (set in [`Parts::finish`]).
    Smtp(Box<SmtpFrontend>),
}

/// Reads the configuration at `config_path` and builds everything but
/// TLS. With `previous` (a reload), the failed-login counts and the
/// POP-before-SMTP cache carry over. Blocking: the file is read, and a
/// DNS resolver set up.
pub(crate) fn prepare(
    service: Service,
    config_path: &Path,
    metrics: &Metrics,
    previous: Option<&Built>,
) -> Result<Parts, Error> {
    let config = Config::load(config_path)?;
    let dir = config_path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."))
        .to_path_buf();
    let get = |name: &str| config.string(name).ok();
    let policy = Policy::new(&PolicyConfig::from_parameters(get)?)?;
    // The directory, or the users file when `local.userfile` is set.
    let backends = UserSource::from_parameters(get, &dir)?.backends();
    let limits = Limits::from_config(&config)?;
    let penalty = match previous {
        Some(prev) => Penalty::from_config_after(&config, &prev.frontend.auth().penalty)?,
        None => Penalty::from_config(&config)?,
    };
    let name = listen::service_name(service);
    let auth = Authenticator {
        policy,
        backends,
        penalty,
        filters: AccessFilters::from_config(&config, name)?,
        metrics: metrics.service(name),
    };
    let protocol = match service {
        Service::Pop => {
            // The POP-before-SMTP crate's one configuration reader.
            let settings = Settings::from_parameters(get).map_err(preauth_error)?;
            let before = previous.and_then(|p| {
                let settings = p.preauth_settings.as_ref()?;
                Some((settings, p.frontend.preauth()))
            });
            let cache = preauth_cache(&settings, before)?;
            ProtocolParts::Pop {
                auth,
                backend: Backend::from_config(&config, &dir)?,
                preauth: (settings, cache),
            }
        }
        Service::Imap => ProtocolParts::Imap {
            auth,
            backend: Backend::from_config(&config, &dir)?,
        },
        Service::Smtp => ProtocolParts::Smtp(Box::new(SmtpFrontend::from_config(
            &config,
            &dir,
            auth,
            None,
            limits.clone(),
            hostname(),
        )?)),
        _ => {
            return Err(Error::InvalidSetting {
                name: "service",
                reason: format!("no front end for {name} here"),
            });
        }
    };
    Ok(Parts {
        service,
        certdb: portcullis_tlsconf::params::certificate_database(get, &dir),
        listeners: listen::listeners(&config, service)?,
        proxy: ProxyPolicy::from_config(&config)?,
        metrics_address: metrics::listen_address(&config, service)?,
        protocol,
        limits,
        config,
        dir,
    })
}

impl Parts {
    /// The service's TLS server: on a reload over the same certificate
    /// database, the running one reconfigured in place (keys stay
    /// decrypted, session tickets keep working; handshakes under way
    /// finish on the old configuration); otherwise a new one. Blocking.
    pub(crate) fn tls(&self, previous: Option<&Built>) -> Result<Arc<TlsServer>, Error> {
        let get = |name: &str| self.config.string(name).ok();
        if let Some(tls) = previous
            .filter(|p| p.certdb == self.certdb)
            .and_then(|p| p.frontend.tls())
        {
            tls.reconfigure_from_parameters(self.service, get, &self.dir)?;
            return Ok(Arc::clone(tls));
        }
        Ok(Arc::new(TlsServer::from_parameters(
            self.service,
            get,
            &self.dir,
        )?))
    }

    /// The generation, with its TLS server.
    pub(crate) fn finish(self, tls: Arc<TlsServer>) -> Built {
        let mut preauth_settings = None;
        let frontend = match self.protocol {
            ProtocolParts::Pop {
                auth,
                backend,
                preauth: (settings, preauth),
            } => {
                preauth_settings = Some(settings);
                Frontend::Pop(Pop3Frontend {
                    auth,
                    backend,
                    tls: Some(tls),
                    limits: self.limits.clone(),
                    hostname: hostname(),
                    preauth,
                })
            }
            ProtocolParts::Imap { auth, backend } => Frontend::Imap(ImapFrontend {
                auth,
                backend,
                tls: Some(tls),
                limits: self.limits.clone(),
                hostname: hostname(),
            }),
            ProtocolParts::Smtp(mut smtp) => {
                smtp.tls = Some(tls);
                Frontend::Smtp(smtp)
            }
        };
        Built {
            frontend: Arc::new(frontend),
            listeners: self.listeners,
            limits: self.limits,
            proxy: self.proxy,
            metrics_address: self.metrics_address,
            certdb: self.certdb,
            preauth_settings,
        }
    }
}

fn build(service: Service, config_path: &Path, metrics: &Metrics) -> Result<Built, Error> {
    let parts = prepare(service, config_path, metrics, None)?;
    let tls = parts.tls(None)?;
    Ok(parts.finish(tls))
}

/// Validates the configuration at `config_path` for `service` as [`run`]
/// would use it, binding nothing.
///
/// # Errors
/// Whatever makes the configuration unusable, naming the parameter where
/// one is to blame.
pub fn check(service: Service, config_path: &Path) -> Result<(), Error> {
    build(service, config_path, &Metrics::new()).map(|_| ())
}

/// Runs `service` from the configuration at `config_path` until
/// `shutdown` completes. `ready` is called once every listener is bound;
/// each item of `reloads` (SIGHUP in the daemons: [`crate::cli::hangups`])
/// reloads the configuration (see the `reload` module).
///
/// # Errors
/// A configuration that cannot be used, or a listener that cannot be
/// bound; once running, connection failures and refused reloads are
/// logged, not returned.
pub async fn run(
    service: Service,
    config_path: &Path,
    ready: impl FnOnce(),
    shutdown: impl Future<Output = ()>,
    reloads: Reloads,
) -> Result<(), Error> {
    let metrics = Metrics::new();
    let built = build(service, config_path, &metrics)?;
    let server = Server::start(service, config_path.to_path_buf(), metrics, built).await?;
    ready();
    server.serve(shutdown, reloads).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use portcullis_popbeforesmtp::{Lookup, Timestamp};

    use super::*;

    fn settings(text: &str) -> Settings {
        let config = Config::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        Settings::from_parameters(|name| config.string(name).ok())
            .unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[tokio::test]
    async fn the_pop_before_smtp_cache_survives_a_reload_that_leaves_it_alone() {
        let on = settings("[mmp]\npreauth = 1\n");
        let Ok(Some(first)) = preauth_cache(&on, None) else {
            panic!("mmp.preauth = 1 makes a cache")
        };
        let client: IpAddr = [192, 0, 2, 9].into();
        let now = Timestamp::now();
        first
            .record(client, "alice", now)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        // The same settings: the same entries.
        let Ok(Some(kept)) = preauth_cache(&on, Some((&on, Some(&first)))) else {
            panic!("a cache")
        };
        assert!(matches!(
            kept.lookup(client, now).await,
            Lookup::Authorize(_)
        ));
        // Other settings: a new cache; off: none.
        let longer = settings("[mmp]\npreauth = 1\nauthservicettl = 60\n");
        let Ok(Some(fresh)) = preauth_cache(&longer, Some((&on, Some(&first)))) else {
            panic!("a cache")
        };
        assert!(matches!(fresh.lookup(client, now).await, Lookup::Deny));
        let off = settings("");
        assert!(matches!(
            preauth_cache(&off, Some((&on, Some(&first)))),
            Ok(None)
        ));
    }
}
