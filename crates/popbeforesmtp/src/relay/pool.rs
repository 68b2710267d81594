//! `SmtpRelays`: round robin over relays, failover, and the session with
//! the chosen relay.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::ehlo::{self, EhloFilter};
use super::lookup::{ReverseResolver, confirmed_name};
use super::reply::{Reply, ReplyParser};
use super::xclient::{self, ClientInfo};
use super::{proxy, tls, validate};
use crate::Error;
use crate::cache::AUDIT_TARGET;

/// The capability a relay lacks when it cannot take a client's login:
/// XCLIENT without `LOGIN`, or a PROXY protocol hand-off.
pub const LOGIN_HANDOFF: &str = "a login hand-off (XCLIENT LOGIN)";

/// The time source of the pool (injectable so tests can skip minutes).
pub trait Clock: fmt::Debug + Send + Sync {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The real monotonic clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock {
    base: Instant,
    offset: Mutex<Duration>,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl ManualClock {
    /// A clock starting at the current instant.
    #[must_use]
    pub fn new() -> Self {
        Self {
            base: Instant::now(),
            offset: Mutex::new(Duration::ZERO),
        }
    }

    /// Move the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut off = self.offset.lock().unwrap_or_else(PoisonError::into_inner);
        *off += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.base + *self.offset.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How the real client is handed to a relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Handoff {
    /// `XCLIENT NAME= ADDR= PORT= PROTO= HELO= LOGIN=` after EHLO.
    #[default]
    Xclient,
    /// A PROXY protocol version 1 header before the greeting.
    ProxyV1,
    /// A PROXY protocol version 2 header before the greeting.
    ProxyV2,
}

impl FromStr for Handoff {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "xclient" => Ok(Self::Xclient),
            "proxy" | "proxyv1" | "proxy-v1" => Ok(Self::ProxyV1),
            "proxyv2" | "proxy-v2" => Ok(Self::ProxyV2),
            _ => Err(Error::InvalidSetting {
                name: "mmp.relayhandoff",
                reason: format!("{s:?} is not xclient, proxy-v1 or proxy-v2"),
            }),
        }
    }
}

/// TLS towards a relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TlsPolicy {
    /// Never STARTTLS.
    #[default]
    Plain,
    /// `maytls` (Postfix's "may" level): STARTTLS when the relay offers
    /// it. A certificate that does not verify is logged and the session
    /// continues over TLS, unverified, on a fresh connection; any other TLS
    /// failure counts as a relay failure. Plain text only when the relay
    /// offers no STARTTLS.
    May,
    /// `musttls`: STARTTLS or this relay counts as failed.
    Must,
}

impl FromStr for TlsPolicy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "" | "no" | "none" | "plain" => Ok(Self::Plain),
            "maytls" | "may" => Ok(Self::May),
            "musttls" | "must" => Ok(Self::Must),
            _ => Err(Error::InvalidSetting {
                name: "mmp.relaytls",
                reason: format!("{s:?} is not maytls or musttls"),
            }),
        }
    }
}

/// One `SmtpRelays` entry: `host[:port]` (`[v6]:port` for IPv6 with a port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayAddr {
    host: String,
    port: u16,
}

impl RelayAddr {
    /// `host` on `port`.
    #[must_use]
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
        }
    }

    /// The host name or address.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port (default 25).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl fmt::Display for RelayAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl FromStr for RelayAddr {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::InvalidSetting {
            name: "mmp.smtprelays",
            reason: format!("{s:?}: {why}"),
        };
        let port_of = |p: &str| {
            p.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| bad("bad port"))
        };
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or_else(|| bad("missing ]"))?;
            match after {
                "" => (host, 25),
                p => (
                    host,
                    port_of(p.strip_prefix(':').ok_or_else(|| bad("junk after ]"))?)?,
                ),
            }
        } else if s.matches(':').count() > 1 {
            (s, 25)
        } else if let Some((h, p)) = s.split_once(':') {
            (h, port_of(p)?)
        } else {
            (s, 25)
        };
        let ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'));
        if !ok {
            return Err(bad("bad host"));
        }
        Ok(Self::new(host, port))
    }
}

/// Parse `SmtpRelays`: a space-separated list of `host[:port]`.
///
/// # Errors
/// [`Error::InvalidSetting`] for an empty list or a bad entry.
pub fn parse_relays(value: &str) -> Result<Vec<RelayAddr>, Error> {
    let relays = value
        .split_ascii_whitespace()
        .map(RelayAddr::from_str)
        .collect::<Result<Vec<_>, _>>()?;
    if relays.is_empty() {
        return Err(Error::InvalidSetting {
            name: "mmp.smtprelays",
            reason: "no relay listed".to_owned(),
        });
    }
    Ok(relays)
}

/// A relay with its hand-off method and TLS policy.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RelaySpec {
    /// Where the relay listens.
    pub addr: RelayAddr,
    /// How the client is handed over.
    pub handoff: Handoff,
    /// STARTTLS towards it.
    pub tls: TlsPolicy,
}

impl RelaySpec {
    /// A relay at `addr`.
    #[must_use]
    pub fn new(addr: RelayAddr, handoff: Handoff, tls: TlsPolicy) -> Self {
        Self { addr, handoff, tls }
    }
}

#[derive(Debug)]
struct RelayEntry {
    spec: RelaySpec,
    down_until: Mutex<Option<Instant>>,
}

impl RelayEntry {
    fn skipped(&self, now: Instant) -> bool {
        let mut down = self
            .down_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match *down {
            Some(until) if now < until => true,
            Some(_) => {
                *down = None;
                tracing::info!(relay = %self.spec.addr, "retrying relay after its failover pause");
                false
            }
            None => false,
        }
    }

    fn mark_down(&self, until: Instant) {
        *self
            .down_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(until);
    }
}

/// Builder for [`RelayPool`].
#[derive(Debug)]
#[must_use]
pub struct RelayPoolBuilder {
    relays: Vec<RelaySpec>,
    failover_timeout_secs: u32,
    clock: Arc<dyn Clock>,
    tls: Option<Arc<ClientConfig>>,
    helo_name: String,
    resolver: Option<Arc<dyn ReverseResolver>>,
    pop_before_smtp: bool,
    kludge_channel: Option<String>,
}

impl RelayPoolBuilder {
    /// `mmp.preauth`: clients are handed over with the user of their POP
    /// login, so every relay must take a login. [`RelayPoolBuilder::build`]
    /// refuses PROXY protocol relays then (a PROXY header cannot carry the
    /// user).
    pub fn pop_before_smtp(mut self, on: bool) -> Self {
        self.pop_before_smtp = on;
        self
    }

    /// `mmp.popbeforesmtpkludgechannel`: logged with each hand-off of a
    /// POP-authorized client ([`ClientInfo::pop_authorized`]) as the
    /// channel the relay is to treat it as (the relay's own rules for
    /// authenticated clients do the switching; XCLIENT `LOGIN` carries the
    /// user).
    pub fn kludge_channel(mut self, channel: Option<String>) -> Self {
        self.kludge_channel = channel.filter(|c| !c.trim().is_empty());
        self
    }

    /// `ClientLookup yes`: before handing a client over, look its address
    /// up once with `resolver` and pass the forward-confirmed result as
    /// XCLIENT `NAME` (see [`confirmed_name`]; `[UNAVAILABLE]` /
    /// `[TEMPUNAVAIL]` otherwise). Clients whose [`ClientInfo::name`] is
    /// already set are not looked up again.
    pub fn client_lookup(mut self, resolver: Arc<dyn ReverseResolver>) -> Self {
        self.resolver = Some(resolver);
        self
    }

    /// `FailoverTimeout` in seconds (default 10): the deadline of one
    /// connection attempt (connect, greeting, EHLO, TLS and hand-off); a
    /// relay that misses it is skipped for that many **minutes**.
    pub fn failover_timeout_secs(mut self, secs: u32) -> Self {
        self.failover_timeout_secs = secs.max(1);
        self
    }

    /// The clock that times the skip period (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The rustls client configuration for `maytls` / `musttls` relays.
    pub fn tls_config(mut self, config: Arc<ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// The name the proxy gives in its own EHLO (default `localhost`).
    pub fn helo_name(mut self, name: impl Into<String>) -> Self {
        self.helo_name = name.into();
        self
    }

    /// The pool.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] with no relays, a TLS relay but no TLS
    /// configuration, or a PROXY protocol relay under
    /// [`RelayPoolBuilder::pop_before_smtp`].
    pub fn build(self) -> Result<RelayPool, Error> {
        if self.relays.is_empty() {
            return Err(Error::InvalidSetting {
                name: "mmp.smtprelays",
                reason: "no relay listed".to_owned(),
            });
        }
        if self.tls.is_none() && self.relays.iter().any(|r| r.tls != TlsPolicy::Plain) {
            return Err(Error::InvalidSetting {
                name: "mmp.relaytls",
                reason: "maytls/musttls needs a TLS client configuration".to_owned(),
            });
        }
        if self.pop_before_smtp
            && let Some(r) = self.relays.iter().find(|r| r.handoff != Handoff::Xclient)
        {
            return Err(proxy_without_login(&r.addr));
        }
        let timeout = Duration::from_secs(u64::from(self.failover_timeout_secs));
        Ok(RelayPool {
            relays: self
                .relays
                .into_iter()
                .map(|spec| RelayEntry {
                    spec,
                    down_until: Mutex::new(None),
                })
                .collect(),
            next: AtomicUsize::new(0),
            attempt_timeout: timeout,
            skip_for: timeout * 60,
            clock: self.clock,
            tls_unverified: self
                .tls
                .as_deref()
                .map(|c| TlsConnector::from(tls::dangerous_unverified(c))),
            tls: self.tls.map(TlsConnector::from),
            helo_name: self.helo_name,
            resolver: self.resolver,
            kludge_channel: self.kludge_channel,
        })
    }
}

/// Round robin over `SmtpRelays` with failover.
///
/// Each [`RelayPool::connect`] starts at the next relay in turn. A relay that
/// fails (refused, or not ready within `FailoverTimeout` seconds) is skipped
/// for `FailoverTimeout` minutes and then tried again; if no relay is left,
/// the caller gets [`Error::AllRelaysDown`] (`421 4.3.0`).
pub struct RelayPool {
    relays: Vec<RelayEntry>,
    next: AtomicUsize,
    attempt_timeout: Duration,
    skip_for: Duration,
    clock: Arc<dyn Clock>,
    tls: Option<TlsConnector>,
    tls_unverified: Option<TlsConnector>,
    helo_name: String,
    resolver: Option<Arc<dyn ReverseResolver>>,
    kludge_channel: Option<String>,
}

/// The load-time refusal of a PROXY relay when clients carry a login.
fn proxy_without_login(relay: &RelayAddr) -> Error {
    Error::InvalidSetting {
        name: "mmp.relayhandoff",
        reason: format!(
            "relay {relay} is reached with the PROXY protocol, which cannot carry the \
             POP-before-SMTP user (mmp.preauth): POP-authorized clients would silently \
             lose their authorization; use xclient"
        ),
    }
}

/// How a failed attempt counts.
enum Fault {
    /// Caused by the client's data (or the caller): returned at once, no
    /// relay is marked failed.
    Client,
    /// This relay cannot serve this client (e.g. no XCLIENT LOGIN): the
    /// next relay is tried, this one stays in service.
    Unsuitable,
    /// The relay failed: it is skipped for the failover pause.
    Relay,
}

impl Fault {
    fn of(error: &Error) -> Self {
        match error {
            Error::ClientRefused { .. } | Error::InvalidClient { .. } | Error::ApiMisuse(_) => {
                Self::Client
            }
            Error::RelayLacks { capability, .. } if *capability == LOGIN_HANDOFF => {
                Self::Unsuitable
            }
            _ => Self::Relay,
        }
    }
}

/// Checks the client's own values before any relay sees them.
fn check_client(client: &ClientInfo) -> Result<(), Error> {
    if let Some(helo) = &client.helo {
        // Non-ASCII is checked again per relay, against its SMTPUTF8.
        validate::check_helo(helo, true).map_err(|e| Error::InvalidClient {
            field: "HELO",
            reason: e.reason(),
        })?;
    }
    if let Some(login) = &client.login {
        validate::check_login(login).map_err(|e| Error::InvalidClient {
            field: "LOGIN",
            reason: e.reason(),
        })?;
    }
    Ok(())
}

impl fmt::Debug for RelayPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelayPool")
            .field("relays", &self.relays)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("skip_for", &self.skip_for)
            .field("tls", &self.tls.is_some())
            .field("client_lookup", &self.resolver)
            .finish_non_exhaustive()
    }
}

impl RelayPool {
    /// A builder over `relays`.
    pub fn builder(relays: Vec<RelaySpec>) -> RelayPoolBuilder {
        RelayPoolBuilder {
            relays,
            failover_timeout_secs: 10,
            clock: Arc::new(SystemClock),
            tls: None,
            helo_name: "localhost".to_owned(),
            resolver: None,
            pop_before_smtp: false,
            kludge_channel: None,
        }
    }

    /// Each relay and whether it is being skipped now.
    #[must_use]
    pub fn status(&self) -> Vec<(RelayAddr, bool)> {
        let now = self.clock.now();
        self.relays
            .iter()
            .map(|r| {
                let down = r
                    .down_until
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .is_some_and(|until| now < until);
                (r.spec.addr.clone(), down)
            })
            .collect()
    }

    /// Open a session for `client` on the next available relay, handing the
    /// client over as that relay is configured to expect.
    ///
    /// The client's HELO name and login are checked first
    /// ([`validate`]); a bad one is [`Error::InvalidClient`] and no relay is
    /// contacted. A relay refusing what the client sent
    /// ([`Error::ClientRefused`]) stays in service, as does one that cannot
    /// take the client's login (XCLIENT without `LOGIN`, or PROXY): the next
    /// relay is tried, and if none can, the answer is [`Error::RelayLacks`].
    /// Only connection failures, timeouts and refusals of the proxy's own
    /// commands mark a relay failed.
    ///
    /// # Errors
    /// As above; [`Error::AllRelaysDown`] when every relay failed or is
    /// being skipped.
    pub async fn connect(&self, client: &ClientInfo) -> Result<RelaySession, Error> {
        check_client(client)?;
        let looked_up;
        let client = match (&self.resolver, &client.name) {
            (Some(resolver), None) => {
                let mut c = client.clone();
                c.name = Some(confirmed_name(resolver.as_ref(), client.addr.ip()).await);
                looked_up = c;
                &looked_up
            }
            _ => client,
        };
        let n = self.relays.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let mut unsuitable = None;
        for i in 0..n {
            let entry = &self.relays[(start + i) % n];
            if entry.skipped(self.clock.now()) {
                tracing::debug!(relay = %entry.spec.addr, "relay skipped after a recent failure");
                continue;
            }
            let attempt =
                tokio::time::timeout(self.attempt_timeout, self.attempt(&entry.spec, client)).await;
            let error = match attempt {
                Ok(Ok(session)) => {
                    self.log_handoff(&session, client);
                    return Ok(session);
                }
                Ok(Err(e)) => match Fault::of(&e) {
                    Fault::Client => {
                        // Another relay would refuse the same client data, and
                        // one client must not take relays out of service.
                        tracing::info!(relay = %entry.spec.addr, error = %e, "client refused");
                        return Err(e);
                    }
                    Fault::Unsuitable => {
                        tracing::warn!(
                            relay = %entry.spec.addr,
                            error = %e,
                            "relay cannot take this client's login; trying the next one"
                        );
                        unsuitable = Some(e);
                        continue;
                    }
                    Fault::Relay => e,
                },
                Err(_) => Error::RelayTimeout {
                    relay: entry.spec.addr.to_string(),
                },
            };
            tracing::warn!(
                relay = %entry.spec.addr,
                %error,
                skip_secs = self.skip_for.as_secs(),
                "SMTP relay failed; trying the next one"
            );
            entry.mark_down(self.clock.now() + self.skip_for);
        }
        if let Some(e) = unsuitable {
            tracing::error!(error = %e, "no SMTP relay can take this client's login");
            return Err(e);
        }
        tracing::error!("no SMTP relay available");
        Err(Error::AllRelaysDown)
    }

    fn log_handoff(&self, session: &RelaySession, client: &ClientInfo) {
        if !client.pop_authorized {
            return;
        }
        let login = client.login.as_deref().unwrap_or("");
        match &self.kludge_channel {
            Some(channel) => tracing::info!(
                target: AUDIT_TARGET,
                event = "popbeforesmtp.handoff",
                user = login,
                client = %client.addr.ip(),
                relay = session.relay(),
                channel = channel.as_str(),
                "POP-authorized client handed to relay as channel {channel}"
            ),
            None => tracing::info!(
                target: AUDIT_TARGET,
                event = "popbeforesmtp.handoff",
                user = login,
                client = %client.addr.ip(),
                relay = session.relay(),
                "POP-authorized client handed to relay"
            ),
        }
    }

    /// One attempt on one relay. Under `maytls`, a certificate that does
    /// not verify is retried on a fresh connection with TLS unverified.
    async fn attempt(&self, spec: &RelaySpec, client: &ClientInfo) -> Result<RelaySession, Error> {
        match self.open(spec, true, client).await {
            Err(Error::Tls(e)) if spec.tls == TlsPolicy::May && tls::is_certificate_error(&e) => {
                tracing::warn!(
                    relay = %spec.addr,
                    error = %e,
                    "relay certificate not verified; continuing over unverified TLS (maytls)"
                );
                self.open(spec, false, client).await
            }
            other => other,
        }
    }

    async fn open(
        &self,
        spec: &RelaySpec,
        verify: bool,
        client: &ClientInfo,
    ) -> Result<RelaySession, Error> {
        let relay = spec.addr.to_string();
        if spec.handoff != Handoff::Xclient && client.login.is_some() {
            // A PROXY header has no room for the user: never drop it silently.
            return Err(Error::RelayLacks {
                relay,
                capability: LOGIN_HANDOFF,
            });
        }
        let tcp = TcpStream::connect((spec.addr.host(), spec.addr.port())).await?;
        tcp.set_nodelay(true)?;
        let mut s = RelaySession::new(RelayStream::Plain(tcp), relay.clone());
        s.helo_name.clone_from(&self.helo_name);
        match spec.handoff {
            Handoff::ProxyV1 => {
                s.write_raw(&proxy::v1_header(client.addr, client.local))
                    .await?
            }
            Handoff::ProxyV2 => {
                s.write_raw(&proxy::v2_header(client.addr, client.local))
                    .await?
            }
            Handoff::Xclient => {}
        }
        let greeting = s.read_reply().await?;
        s.expect(&greeting, 220)?;
        let mut ehlo = s.ehlo(&self.helo_name).await?;
        if spec.tls != TlsPolicy::Plain {
            if ehlo::offers(&ehlo, "STARTTLS") {
                let connector = if verify {
                    self.tls.as_ref()
                } else {
                    self.tls_unverified.as_ref()
                }
                .ok_or(Error::ApiMisuse("TLS relay without TLS configuration"))?;
                s.starttls(connector, spec.addr.host()).await?;
                s.tls_verified = verify;
                ehlo = s.ehlo(&self.helo_name).await?;
            } else if spec.tls == TlsPolicy::Must {
                return Err(Error::RelayLacks {
                    relay,
                    capability: "STARTTLS",
                });
            }
        }
        if let Some(helo) = &client.helo
            && !helo.is_ascii()
            && !ehlo::offers(&ehlo, "SMTPUTF8")
        {
            return Err(Error::InvalidClient {
                field: "HELO",
                reason: validate::Invalid::NonAscii.reason(),
            });
        }
        s.proxy_ehlo = Some(ehlo.clone());
        s.ehlo = Some(ehlo);
        if spec.handoff == Handoff::Xclient {
            s.xclient(client).await?;
        }
        Ok(s)
    }
}

/// The byte stream to a relay: plain TCP, or TLS after STARTTLS.
#[derive(Debug)]
#[non_exhaustive]
pub enum RelayStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
    /// Mid-upgrade (never seen by callers).
    Closed,
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "relay stream closed")
}

impl AsyncRead for RelayStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Self::Closed => Poll::Ready(Err(closed())),
        }
    }
}

impl AsyncWrite for RelayStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Self::Closed => Poll::Ready(Err(closed())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Self::Closed => Poll::Ready(Err(closed())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Self::Closed => Poll::Ready(Ok(())),
        }
    }
}

/// An SMTP session with one relay, ready for the client's commands.
#[derive(Debug)]
pub struct RelaySession {
    stream: RelayStream,
    parser: ReplyParser,
    relay: String,
    ehlo: Option<Reply>,
    proxy_ehlo: Option<Reply>,
    in_transaction: bool,
    tls_verified: bool,
    helo_name: String,
    buf: Vec<u8>,
}

impl RelaySession {
    fn new(stream: RelayStream, relay: String) -> Self {
        Self {
            stream,
            parser: ReplyParser::new(),
            relay,
            ehlo: None,
            proxy_ehlo: None,
            in_transaction: false,
            tls_verified: false,
            helo_name: "localhost".to_owned(),
            buf: vec![0; 4096],
        }
    }

    /// The relay, `host:port`.
    #[must_use]
    pub fn relay(&self) -> &str {
        &self.relay
    }

    /// Whether the session runs over TLS.
    #[must_use]
    pub fn is_tls(&self) -> bool {
        matches!(self.stream, RelayStream::Tls(_))
    }

    /// Whether the session runs over TLS with the relay's certificate
    /// verified (`false` in plain text, and under `maytls` after a
    /// certificate that did not verify).
    #[must_use]
    pub fn tls_verified(&self) -> bool {
        self.is_tls() && self.tls_verified
    }

    /// The relay's latest EHLO reply, unfiltered.
    #[must_use]
    pub fn ehlo_reply(&self) -> Option<&Reply> {
        self.ehlo.as_ref()
    }

    /// The relay's EHLO reply to the proxy itself, before any XCLIENT
    /// hand-off (it lists XCLIENT; the reply after the hand-off, which is
    /// for the client's address, does not).
    #[must_use]
    pub fn proxy_ehlo_reply(&self) -> Option<&Reply> {
        self.proxy_ehlo.as_ref()
    }

    /// The relay's latest EHLO reply as the client may see it.
    #[must_use]
    pub fn client_ehlo(&self, filter: &EhloFilter) -> Option<Reply> {
        self.ehlo.as_ref().map(|r| filter.filter(r))
    }

    /// Whether a mail transaction (MAIL accepted, not yet ended) is open.
    #[must_use]
    pub fn in_transaction(&self) -> bool {
        self.in_transaction
    }

    async fn write_raw(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await?;
        Ok(())
    }

    /// Read one reply.
    ///
    /// # Errors
    /// [`Error::MalformedReply`], [`Error::RelayClosed`] or [`Error::Io`].
    pub async fn read_reply(&mut self) -> Result<Reply, Error> {
        loop {
            if let Some(reply) = self.parser.next_reply()? {
                return Ok(reply);
            }
            let n = self.stream.read(&mut self.buf).await?;
            if n == 0 {
                return Err(Error::RelayClosed);
            }
            self.parser.feed(&self.buf[..n]);
        }
    }

    fn expect(&self, reply: &Reply, code: u16) -> Result<(), Error> {
        if reply.code() == code {
            Ok(())
        } else {
            Err(Error::RelayRefused {
                relay: self.relay.clone(),
                code: reply.code(),
                text: reply.text().to_owned(),
            })
        }
    }

    /// Send one command line (without CRLF) and read the reply. Tracks the
    /// mail transaction: a 2xx to `MAIL` opens it, a 2xx to `RSET` closes it.
    ///
    /// # Errors
    /// [`Error::ApiMisuse`] for a line with CR or LF, or I/O and reply errors.
    pub async fn command(&mut self, line: &str) -> Result<Reply, Error> {
        if line.contains(['\r', '\n']) {
            return Err(Error::ApiMisuse("command line contains CR or LF"));
        }
        let mut wire = Vec::with_capacity(line.len() + 2);
        wire.extend_from_slice(line.as_bytes());
        wire.extend_from_slice(b"\r\n");
        self.write_raw(&wire).await?;
        let reply = self.read_reply().await?;
        let verb = line
            .split(' ')
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        if reply.is_positive() {
            match verb.as_str() {
                "MAIL" => self.in_transaction = true,
                "RSET" | "EHLO" | "HELO" => self.in_transaction = false,
                _ => {}
            }
        }
        Ok(reply)
    }

    /// `DATA`, then `message` dot-stuffed and terminated; returns the final
    /// reply (the transaction ends either way).
    ///
    /// # Errors
    /// [`Error::RelayRefused`] when DATA is not answered with 354, or I/O errors.
    pub async fn data(&mut self, message: &[u8]) -> Result<Reply, Error> {
        let go = self.command("DATA").await?;
        self.expect(&go, 354)?;
        let mut wire = Vec::with_capacity(message.len() + 16);
        let mut at_line_start = true;
        for &b in message {
            if at_line_start && b == b'.' {
                wire.push(b'.');
            }
            wire.push(b);
            at_line_start = b == b'\n';
        }
        if !wire.ends_with(b"\r\n") {
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b".\r\n");
        self.write_raw(&wire).await?;
        let reply = self.read_reply().await;
        self.in_transaction = false;
        reply
    }

    async fn ehlo(&mut self, name: &str) -> Result<Reply, Error> {
        let reply = self.command(&format!("EHLO {name}")).await?;
        self.expect(&reply, 250)?;
        Ok(reply)
    }

    async fn starttls(&mut self, connector: &TlsConnector, host: &str) -> Result<(), Error> {
        let reply = self.command("STARTTLS").await?;
        self.expect(&reply, 220)?;
        if self.parser.buffered() > 0 {
            // Bytes after the 220 were sent before TLS: never trust them.
            return Err(Error::Tls(io::Error::new(
                io::ErrorKind::InvalidData,
                "relay sent data after 220 to STARTTLS",
            )));
        }
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| Error::Tls(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
        let RelayStream::Plain(tcp) = std::mem::replace(&mut self.stream, RelayStream::Closed)
        else {
            return Err(Error::ApiMisuse(
                "STARTTLS on a stream that is not plain TCP",
            ));
        };
        let tls = connector.connect(name, tcp).await.map_err(Error::Tls)?;
        self.stream = RelayStream::Tls(Box::new(tls));
        self.parser = ReplyParser::new();
        Ok(())
    }

    /// Hand `client` over with XCLIENT (attributes limited to those the
    /// relay offers; `NAME` and `ADDR` in the last command, see
    /// [`xclient::command_lines`]), then greet the relay again with the
    /// client's HELO name (the proxy's own when the client has not greeted);
    /// the new EHLO reply replaces [`RelaySession::ehlo_reply`].
    ///
    /// # Errors
    /// [`Error::ApiMisuse`] inside a mail transaction; [`Error::RelayLacks`]
    /// if the relay does not offer XCLIENT, or not `LOGIN` for a client
    /// with a login; [`Error::ClientRefused`] when the relay refuses a value
    /// of the client's (`501` to XCLIENT, `5xx` to its EHLO);
    /// [`Error::RelayRefused`] when it refuses the command itself.
    pub async fn xclient(&mut self, client: &ClientInfo) -> Result<(), Error> {
        if self.in_transaction {
            return Err(Error::ApiMisuse(
                "XCLIENT is only allowed outside a mail transaction",
            ));
        }
        let line = self
            .ehlo
            .as_ref()
            .and_then(|e| ehlo::extension(e, "XCLIENT"))
            .ok_or_else(|| Error::RelayLacks {
                relay: self.relay.clone(),
                capability: "XCLIENT",
            })?
            .to_owned();
        let supported = ehlo::params(&line);
        if client.login.is_some() && !supported.iter().any(|a| a.eq_ignore_ascii_case("LOGIN")) {
            return Err(Error::RelayLacks {
                relay: self.relay.clone(),
                capability: LOGIN_HANDOFF,
            });
        }
        let attrs = xclient::attributes(client, &supported);
        let lines = xclient::command_lines(&attrs).map_err(|field| Error::InvalidClient {
            field,
            reason: "too long for an XCLIENT command",
        })?;
        for cmd in lines {
            let reply = self.command(&cmd).await?;
            if reply.code() == 501 {
                // Postfix: "501 5.5.4 Bad ... syntax", a value of the client's.
                return Err(self.client_refused(&reply));
            }
            if !reply.is_positive() {
                // Our own command refused (550 insufficient authorization,
                // 421 ...): a fault of the relay or its configuration.
                return Err(Error::RelayRefused {
                    relay: self.relay.clone(),
                    code: reply.code(),
                    text: reply.text().to_owned(),
                });
            }
        }
        tracing::debug!(
            relay = %self.relay,
            client = %client.addr,
            login = client.login.as_deref().unwrap_or(""),
            "client handed to relay with XCLIENT"
        );
        let helo = client.helo.as_deref().unwrap_or(&self.helo_name).to_owned();
        let reply = self.command(&format!("EHLO {helo}")).await?;
        if reply.code() >= 500 {
            // The EHLO carries the client's name.
            return Err(self.client_refused(&reply));
        }
        self.expect(&reply, 250)?;
        self.ehlo = Some(reply);
        Ok(())
    }

    fn client_refused(&self, reply: &Reply) -> Error {
        Error::ClientRefused {
            relay: self.relay.clone(),
            code: reply.code(),
            text: reply.text().to_owned(),
        }
    }

    /// `QUIT` and close.
    ///
    /// # Errors
    /// I/O errors while saying goodbye.
    pub async fn quit(mut self) -> Result<(), Error> {
        let _ = self.command("QUIT").await?;
        self.stream.shutdown().await?;
        Ok(())
    }

    /// The stream and any bytes already read but not parsed, for a front
    /// end that relays bytes from here on.
    #[must_use]
    pub fn into_parts(mut self) -> (RelayStream, Vec<u8>) {
        let rest = self.parser.take_buffered();
        (self.stream, rest)
    }

    /// The relay's address as connected.
    ///
    /// # Errors
    /// I/O errors from the socket.
    pub fn peer_addr(&self) -> Result<SocketAddr, Error> {
        match &self.stream {
            RelayStream::Plain(s) => Ok(s.peer_addr()?),
            RelayStream::Tls(s) => Ok(s.get_ref().0.peer_addr()?),
            RelayStream::Closed => Err(Error::Io(closed())),
        }
    }
}
