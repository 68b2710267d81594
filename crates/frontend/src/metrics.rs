//! Counters of what the front ends do, served in the Prometheus text
//! format (OpenMetrics) at `GET /metrics` on `local.metrics.listenaddr`
//! (`local.<service>.metrics.listenaddr` per daemon).
//!
//! ```text
//! run ─► Metrics::new() (one per process; survives every reload)
//!     ─► Metrics::service("imap") ─► ServiceMetrics, held by the Authenticator
//!           accept loop:  connection_accepted / connection_refused(reason)
//!           session:      handshake(ok), relay(bytes), store_error(kind)
//!           auth:         login(mechanism, result), penalty()
//!           smtp:         message(result, bytes)
//!     ─► metrics::serve(listener): hyper HTTP/1.1, GET /metrics, else 404
//! ```
//!
//! | metric | labels |
//! |---|---|
//! | `portcullis_connections_accepted_total` | `service` |
//! | `portcullis_connections_refused_total` | `service`, `reason` (`maxclients`, `connlimits`, `proxy`, `filter`, `filter_tempfail`) |
//! | `portcullis_logins_total` | `service`, `mechanism` (`PLAIN`, `CRAM-MD5`, `APOP`, …, `unknown`), `result` (`success`, `failure`, `denied`, `tempfail`) |
//! | `portcullis_tls_handshakes_total` | `service`, `result` (`ok`, `failed`) |
//! | `portcullis_penalties_total` | `service` |
//! | `portcullis_store_errors_total` | `service`, `kind` (`unavailable`, `refused`) |
//! | `portcullis_relay_bytes_total` | `service`, `direction` (`client_to_store`, `store_to_client`) |
//! | `portcullis_reloads_total` | `service`, `result` (`ok`, `refused`) |
//! | `portcullis_messages_total` | `service`, `result` (`relayed`, `refused`, `failed`) |
//! | `portcullis_message_bytes_total` | `service` (bytes of relayed messages) |
//!
//! Label values come from fixed sets (a mechanism name a client sends is
//! counted as `unknown` unless it is one the SASL crate knows), so no
//! client can grow the number of series. Relay bytes are added when a
//! relayed session ends.

use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use portcullis_config::{Config, Param, params};
use portcullis_sasl::Mechanism;
use portcullis_tlsconf::Service;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::Error;

/// The content type of the OpenMetrics text the endpoint serves.
pub const CONTENT_TYPE_OPENMETRICS: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Scrapes served at once; more wait for a slot.
const MAX_SCRAPES: usize = 8;

/// How long one scrape connection may stay open.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabel {
    service: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    service: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoginLabels {
    service: &'static str,
    mechanism: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    service: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    service: &'static str,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    service: &'static str,
    direction: &'static str,
}

#[derive(Debug, Default)]
struct Families {
    accepted: Family<ServiceLabel, Counter>,
    refused: Family<ReasonLabels, Counter>,
    logins: Family<LoginLabels, Counter>,
    handshakes: Family<ResultLabels, Counter>,
    penalties: Family<ServiceLabel, Counter>,
    store_errors: Family<KindLabels, Counter>,
    relay_bytes: Family<DirectionLabels, Counter>,
    reloads: Family<ResultLabels, Counter>,
    messages: Family<ResultLabels, Counter>,
    message_bytes: Family<ServiceLabel, Counter>,
}

struct Inner {
    families: Families,
    registry: Registry,
}

/// The process's metrics: one registry, shared by every service and
/// every configuration generation. Clone it freely.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Empty counters, registered under the `portcullis_` prefix.
    #[must_use]
    pub fn new() -> Self {
        let families = Families::default();
        let mut registry = Registry::with_prefix("portcullis");
        let f = &families;
        registry.register(
            "connections_accepted",
            "Connections admitted past the connection limits and the PROXY header",
            f.accepted.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections turned away, by reason",
            f.refused.clone(),
        );
        registry.register(
            "logins",
            "Login attempts by mechanism and result",
            f.logins.clone(),
        );
        registry.register(
            "tls_handshakes",
            "TLS handshakes (implicit TLS and STARTTLS) by result",
            f.handshakes.clone(),
        );
        registry.register(
            "penalties",
            "Failed logins answered after a penalty delay",
            f.penalties.clone(),
        );
        registry.register(
            "store_errors",
            "Message store connections or logins that failed",
            f.store_errors.clone(),
        );
        registry.register(
            "relay_bytes",
            "Bytes relayed between clients and stores, added when a session ends",
            f.relay_bytes.clone(),
        );
        registry.register(
            "reloads",
            "Configuration reloads (SIGHUP) by result",
            f.reloads.clone(),
        );
        registry.register(
            "messages",
            "Messages (SMTP transactions that reached the end of their data) by result",
            f.messages.clone(),
        );
        registry.register(
            "message_bytes",
            "Bytes of the messages the relay accepted",
            f.message_bytes.clone(),
        );
        Self {
            inner: Arc::new(Inner { families, registry }),
        }
    }

    /// The counters of one service (`imap`, `pop`, …).
    #[must_use]
    pub fn service(&self, service: &'static str) -> ServiceMetrics {
        let f = &self.inner.families;
        let handshake = |result| {
            f.handshakes
                .get_or_create(&ResultLabels { service, result })
                .clone()
        };
        let direction = |direction| {
            f.relay_bytes
                .get_or_create(&DirectionLabels { service, direction })
                .clone()
        };
        ServiceMetrics {
            service,
            accepted: f.accepted.get_or_create(&ServiceLabel { service }).clone(),
            penalties: f.penalties.get_or_create(&ServiceLabel { service }).clone(),
            handshake_ok: handshake("ok"),
            handshake_failed: handshake("failed"),
            to_store: direction("client_to_store"),
            to_client: direction("store_to_client"),
            metrics: self.clone(),
        }
    }

    /// Everything in the text format, ending with `# EOF`.
    #[must_use]
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry);
        out
    }
}

/// Why a connection was refused, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefusedBy {
    /// `mmp.maxclients`.
    MaxClients,
    /// `mmp.connlimits`.
    ConnLimits,
    /// A PROXY header missing, malformed, late, or from an untrusted peer.
    Proxy,
    /// The service-level access filter denied it.
    Filter,
    /// The service-level access filter could not decide (DNS trouble).
    FilterTempfail,
}

impl RefusedBy {
    fn label(self) -> &'static str {
        match self {
            Self::MaxClients => "maxclients",
            Self::ConnLimits => "connlimits",
            Self::Proxy => "proxy",
            Self::Filter => "filter",
            Self::FilterTempfail => "filter_tempfail",
        }
    }
}

/// How a login ended, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginResult {
    /// Authenticated and allowed.
    Success,
    /// The credentials (or the exchange) failed.
    Failure,
    /// Authenticated, but the account's access filter denied it.
    Denied,
    /// Authenticated, but an access filter lookup failed temporarily.
    Tempfail,
}

impl LoginResult {
    fn label(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Denied => "denied",
            Self::Tempfail => "tempfail",
        }
    }
}

/// How a message ended, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageResult {
    /// The relay accepted it (a 2xx reply to the end of its data).
    Relayed,
    /// Refused: by the relay (4xx/5xx) or by the front end (bare LF or
    /// CR, size, a violation in the data).
    Refused,
    /// The relay was lost or failed before it answered.
    Failed,
}

impl MessageResult {
    fn label(self) -> &'static str {
        match self {
            Self::Relayed => "relayed",
            Self::Refused => "refused",
            Self::Failed => "failed",
        }
    }
}

/// The counters of one service. Cheap to clone; the counters are shared.
#[derive(Clone)]
pub struct ServiceMetrics {
    service: &'static str,
    accepted: Counter,
    penalties: Counter,
    handshake_ok: Counter,
    handshake_failed: Counter,
    to_store: Counter,
    to_client: Counter,
    metrics: Metrics,
}

impl fmt::Debug for ServiceMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceMetrics")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl ServiceMetrics {
    /// A connection was admitted.
    pub fn connection_accepted(&self) {
        self.accepted.inc();
    }

    /// A connection was turned away.
    pub fn connection_refused(&self, reason: RefusedBy) {
        self.families()
            .refused
            .get_or_create(&ReasonLabels {
                service: self.service,
                reason: reason.label(),
            })
            .inc();
    }

    /// A login ended; `mechanism` is `None` for a name no mechanism has.
    pub fn login(&self, mechanism: Option<Mechanism>, result: LoginResult) {
        self.families()
            .logins
            .get_or_create(&LoginLabels {
                service: self.service,
                mechanism: mechanism.map_or("unknown", Mechanism::name),
                result: result.label(),
            })
            .inc();
    }

    /// A TLS handshake ended.
    pub fn handshake(&self, ok: bool) {
        if ok {
            self.handshake_ok.inc();
        } else {
            self.handshake_failed.inc();
        }
    }

    /// A failed login was answered after a penalty delay.
    pub fn penalty(&self) {
        self.penalties.inc();
    }

    /// A store could not be reached (`temporary`) or refused the login.
    pub fn store_error(&self, temporary: bool) {
        self.families()
            .store_errors
            .get_or_create(&KindLabels {
                service: self.service,
                kind: if temporary { "unavailable" } else { "refused" },
            })
            .inc();
    }

    /// A relayed session ended with these byte counts.
    pub fn relayed(&self, client_to_store: u64, store_to_client: u64) {
        self.to_store.inc_by(client_to_store);
        self.to_client.inc_by(store_to_client);
    }

    /// A message ended; `bytes` are added to the relayed bytes when the
    /// relay accepted it.
    pub fn message(&self, result: MessageResult, bytes: u64) {
        let f = self.families();
        f.messages
            .get_or_create(&ResultLabels {
                service: self.service,
                result: result.label(),
            })
            .inc();
        if result == MessageResult::Relayed {
            f.message_bytes
                .get_or_create(&ServiceLabel {
                    service: self.service,
                })
                .inc_by(bytes);
        }
    }

    /// A reload was applied (`true`) or refused.
    pub fn reload(&self, ok: bool) {
        self.families()
            .reloads
            .get_or_create(&ResultLabels {
                service: self.service,
                result: if ok { "ok" } else { "refused" },
            })
            .inc();
    }

    fn families(&self) -> &Families {
        &self.metrics.inner.families
    }
}

/// The parameter that names `service`'s own metrics address.
fn service_parameter(service: Service) -> Option<Param<String>> {
    match service {
        Service::Imap => Some(params::LOCAL_IMAP_METRICS_LISTENADDR),
        Service::Pop => Some(params::LOCAL_POP_METRICS_LISTENADDR),
        Service::Smtp => Some(params::LOCAL_SMTP_METRICS_LISTENADDR),
        _ => None,
    }
}

/// Where `service` serves its metrics: `local.<service>.metrics.listenaddr`,
/// else `local.metrics.listenaddr`; `None` when both are empty.
///
/// # Errors
/// [`Error::Config`] for an unreadable parameter, [`Error::InvalidSetting`]
/// naming the parameter whose value is not `ADDRESS:PORT`.
pub fn listen_address(config: &Config, service: Service) -> Result<Option<SocketAddr>, Error> {
    let mut candidates = Vec::with_capacity(2);
    if let Some(own) = service_parameter(service) {
        candidates.push(own);
    }
    candidates.push(params::LOCAL_METRICS_LISTENADDR);
    for param in candidates {
        let text = config.get(param)?;
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        return text
            .parse::<SocketAddr>()
            .map(Some)
            .map_err(|_| Error::InvalidSetting {
                name: param.name(),
                reason: format!("{text:?} is not ADDRESS:PORT (e.g. 127.0.0.1:9110 or [::1]:9110)"),
            });
    }
    Ok(None)
}

/// Binds the metrics listener and logs `metrics on http://ADDR/metrics`.
///
/// # Errors
/// [`Error::Listen`] naming the address.
pub async fn bind(address: SocketAddr) -> Result<TcpListener, Error> {
    let listener = bind_quietly(address).await?;
    announce(&listener);
    Ok(listener)
}

/// Binds the metrics listener without a word (a reload announces it
/// once it is sure to keep it).
///
/// # Errors
/// [`Error::Listen`] naming the address.
pub async fn bind_quietly(address: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(address)
        .await
        .map_err(|source| Error::Listen { address, source })
}

/// Logs `metrics on http://ADDR/metrics`.
pub fn announce(listener: &TcpListener) {
    if let Ok(address) = listener.local_addr() {
        tracing::info!("metrics on http://{address}/metrics");
    }
}

fn respond(metrics: &Metrics, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let mut response = if request.method() == Method::GET && request.uri().path() == "/metrics" {
        let mut r = Response::new(Full::new(Bytes::from(metrics.encode())));
        r.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static(CONTENT_TYPE_OPENMETRICS),
        );
        r
    } else {
        let mut r = Response::new(Full::new(Bytes::from_static(b"not found\n")));
        *r.status_mut() = StatusCode::NOT_FOUND;
        r
    };
    if response.status() == StatusCode::NOT_FOUND {
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    }
    response
}

/// Serves `GET /metrics` on `listener` until `stop` turns true; every
/// other request gets 404. At most a few scrapes at once, each connection
/// bounded in time.
pub async fn serve(listener: TcpListener, metrics: Metrics, mut stop: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(MAX_SCRAPES));
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.wait_for(|s| *s) => break,
        };
        let (stream, _) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "metrics accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            break;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = service_fn(move |request: Request<Incoming>| {
                let response = respond(&metrics, &request);
                async move { Ok::<_, Infallible>(response) }
            });
            let conn = http1::Builder::new()
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(SCRAPE_TIMEOUT, conn).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(error = %e, "metrics connection failed"),
                Err(_) => tracing::debug!("metrics connection timed out"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
        text.lines().find(|l| l.starts_with(prefix))
    }

    #[test]
    fn counters_are_labelled_by_service_and_bounded_values() {
        let m = Metrics::new();
        let imap = m.service("imap");
        let pop = m.service("pop");
        imap.connection_accepted();
        imap.connection_accepted();
        pop.connection_refused(RefusedBy::ConnLimits);
        imap.login(Some(Mechanism::Plain), LoginResult::Failure);
        imap.login(None, LoginResult::Failure);
        imap.handshake(false);
        imap.relayed(10, 2000);
        let smtp = m.service("smtp");
        smtp.message(MessageResult::Relayed, 1234);
        smtp.message(MessageResult::Refused, 99);
        smtp.message(MessageResult::Failed, 5);
        let text = m.encode();
        for result in ["relayed", "refused", "failed"] {
            assert!(
                text.contains(&format!(
                    "portcullis_messages_total{{service=\"smtp\",result=\"{result}\"}} 1"
                )),
                "{text}"
            );
        }
        assert!(
            text.contains("portcullis_message_bytes_total{service=\"smtp\"} 1234"),
            "{text}"
        );
        assert_eq!(
            line(
                &text,
                "portcullis_connections_accepted_total{service=\"imap\"}"
            ),
            Some("portcullis_connections_accepted_total{service=\"imap\"} 2"),
            "{text}"
        );
        assert!(
            text.contains(
                "portcullis_connections_refused_total{service=\"pop\",reason=\"connlimits\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "portcullis_logins_total{service=\"imap\",mechanism=\"PLAIN\",result=\"failure\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "portcullis_logins_total{service=\"imap\",mechanism=\"unknown\",result=\"failure\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("portcullis_tls_handshakes_total{service=\"imap\",result=\"failed\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "portcullis_relay_bytes_total{service=\"imap\",direction=\"store_to_client\"} 2000"
            ),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn the_address_comes_from_the_service_then_the_shared_parameter() {
        let config = |text: &str| Config::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(listen_address(&config(""), Service::Imap).ok(), Some(None));
        let shared = config("[local.metrics]\nlistenaddr = \"127.0.0.1:9110\"\n");
        assert_eq!(
            listen_address(&shared, Service::Pop).ok().flatten(),
            "127.0.0.1:9110".parse().ok()
        );
        let own = config(
            "[local.metrics]\nlistenaddr = \"127.0.0.1:9110\"\n\
             [local.imap.metrics]\nlistenaddr = \"[::1]:9111\"\n",
        );
        assert_eq!(
            listen_address(&own, Service::Imap).ok().flatten(),
            "[::1]:9111".parse().ok()
        );
        let bad = config("[local.pop.metrics]\nlistenaddr = \"localhost\"\n");
        let e = listen_address(&bad, Service::Pop)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(e.contains("local.pop.metrics.listenaddr"), "{e}");
    }
}
