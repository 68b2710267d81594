//! Listeners from the configuration, and the admission of each new
//! connection before the protocol speaks.
//!
//! ```text
//! service.listenaddr / service.<svc>.listenaddr ─┐
//! service.<svc>.port (STARTTLS) ─────────────────┼─► ListenerSpec ─► bind() ─► Listener
//! service.<svc>.sslport (implicit TLS) ──────────┘     (0 = off; service.<svc>.enable)
//!
//! accept ─► TCP_NODELAY ─► ConnectionGate::admit (mmp.maxclients, before any TLS work)
//!        ─► PROXY header (only from mmp.trustedproxies) ─► Permit::bind_client (mmp.connlimits)
//!        ─► Admission::Admitted { client, local, buffered, .. }
//! ```
//!
//! Each listener logs `listening on ADDR (service, tls|starttls)` once,
//! when it is bound.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use portcullis_config::{Config, Param, params};
use portcullis_tlsconf::Service;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::Error;
use crate::limits::{ConnectionGate, Permit, Refusal};
use crate::proxy_protocol::ProxyPolicy;
use crate::relay::RelayStream;

/// How a listener starts its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsMode {
    /// Plaintext first; the client may upgrade (STARTTLS, STLS).
    StartTls,
    /// TLS from the first byte (ports 993, 995).
    Implicit,
}

impl fmt::Display for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::StartTls => "starttls",
            Self::Implicit => "tls",
        })
    }
}

/// One address to listen on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListenerSpec {
    /// The service it serves.
    pub service: Service,
    /// Where to bind.
    pub address: SocketAddr,
    /// STARTTLS or implicit TLS.
    pub tls: TlsMode,
}

/// The short name of a service in logs and parameter names (`imap`, `pop`).
#[must_use]
pub fn service_name(service: Service) -> &'static str {
    match service {
        Service::Imap => "imap",
        Service::Pop => "pop",
        Service::Smtp => "smtp",
        _ => "http",
    }
}

/// The parameters that describe a service's listeners.
struct ListenParams {
    enable: Param<bool>,
    listenaddr: Param<String>,
    port: Param<i64>,
    sslport: Param<i64>,
}

fn listen_params(service: Service) -> Result<ListenParams, Error> {
    use params::*;
    match service {
        Service::Imap => Ok(ListenParams {
            enable: SERVICE_IMAP_ENABLE,
            listenaddr: SERVICE_IMAP_LISTENADDR,
            port: SERVICE_IMAP_PORT,
            sslport: SERVICE_IMAP_SSLPORT,
        }),
        Service::Pop => Ok(ListenParams {
            enable: SERVICE_POP_ENABLE,
            listenaddr: SERVICE_POP_LISTENADDR,
            port: SERVICE_POP_PORT,
            sslport: SERVICE_POP_SSLPORT,
        }),
        Service::Smtp => Ok(ListenParams {
            enable: SERVICE_SMTP_ENABLE,
            listenaddr: SERVICE_SMTP_LISTENADDR,
            port: SERVICE_SMTP_PORT,
            sslport: SERVICE_SMTP_SSLPORT,
        }),
        _ => Err(Error::InvalidSetting {
            name: "service",
            reason: "only IMAP, POP3 and SMTP listeners are read here".to_owned(),
        }),
    }
}

/// Parses one listen address: an IPv4 address, an IPv6 address, or an
/// IPv6 address in brackets.
fn parse_address(text: &str, setting: &'static str) -> Result<IpAddr, Error> {
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    bare.parse().map_err(|_| Error::InvalidSetting {
        name: setting,
        reason: format!("{text:?} is not an IP address"),
    })
}

/// The listeners `service` should have: none when `service.<svc>.enable`
/// is off; otherwise each address of `service.<svc>.listenaddr` (or, when
/// that is blank, `service.listenaddr`) with the STARTTLS port and the
/// implicit-TLS port, each unless 0.
///
/// # Errors
/// [`Error::Config`] for an unreadable parameter; [`Error::InvalidSetting`]
/// for an address that does not parse, no address at all while a port is
/// on, or a service without listener parameters.
pub fn listeners(config: &Config, service: Service) -> Result<Vec<ListenerSpec>, Error> {
    let p = listen_params(service)?;
    if !config.get(p.enable)? {
        return Ok(Vec::new());
    }
    let own = config.get(p.listenaddr)?;
    let (text, setting) = if own.trim().is_empty() {
        (
            config.get(params::SERVICE_LISTENADDR)?,
            "service.listenaddr",
        )
    } else {
        (own, p.listenaddr.name())
    };
    let addresses = text
        .split_whitespace()
        .map(|a| parse_address(a, setting))
        .collect::<Result<Vec<_>, _>>()?;
    let ports = [
        (config.get(p.port)?, TlsMode::StartTls),
        (config.get(p.sslport)?, TlsMode::Implicit),
    ];
    let mut specs = Vec::new();
    for (port, tls) in ports {
        let Ok(port) = u16::try_from(port) else {
            continue;
        };
        if port == 0 {
            continue;
        }
        if addresses.is_empty() {
            return Err(Error::InvalidSetting {
                name: setting,
                reason: "no address to listen on".to_owned(),
            });
        }
        for ip in &addresses {
            specs.push(ListenerSpec {
                service,
                address: SocketAddr::new(*ip, port),
                tls,
            });
        }
    }
    Ok(specs)
}

/// A bound listener.
#[derive(Debug)]
pub struct Listener {
    /// What it was bound from.
    pub spec: ListenerSpec,
    /// The socket.
    pub socket: TcpListener,
}

impl Listener {
    /// The address actually bound (the port chosen when the spec said 0).
    ///
    /// # Errors
    /// The socket's error.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }
}

/// Binds every listener and logs `listening on ADDR (service, mode)` for
/// each.
///
/// # Errors
/// [`Error::Listen`] naming the address that could not be bound.
pub async fn bind(specs: &[ListenerSpec]) -> Result<Vec<Listener>, Error> {
    let mut bound = Vec::with_capacity(specs.len());
    for spec in specs {
        let listener = Listener::bind(spec).await?;
        listener.announce();
        bound.push(listener);
    }
    Ok(bound)
}

impl Listener {
    /// Binds one listener without a word (a reload binds first and
    /// announces once it is sure to keep it).
    ///
    /// # Errors
    /// [`Error::Listen`] naming the address.
    pub async fn bind(spec: &ListenerSpec) -> Result<Self, Error> {
        let socket = TcpListener::bind(spec.address)
            .await
            .map_err(|source| Error::Listen {
                address: spec.address,
                source,
            })?;
        Ok(Self {
            spec: spec.clone(),
            socket,
        })
    }

    /// Logs `listening on ADDR (service, tls|starttls)`.
    pub fn announce(&self) {
        let address = self.local_addr().unwrap_or(self.spec.address);
        tracing::info!(
            "listening on {address} ({}, {})",
            service_name(self.spec.service),
            self.spec.tls
        );
    }
}

/// A connection past admission: counted, its real client known.
#[derive(Debug)]
#[non_exhaustive]
pub struct Admitted {
    /// The socket (`TCP_NODELAY` set).
    pub stream: TcpStream,
    /// The client: from the PROXY header, else the TCP peer.
    pub client: SocketAddr,
    /// The address the client connected to.
    pub local: SocketAddr,
    /// The TCP peer (the proxy, when there is a PROXY header).
    pub peer: SocketAddr,
    /// Client bytes read together with the PROXY header: feed them to the
    /// protocol first.
    pub buffered: Vec<u8>,
    /// The connection's slot; dropping it releases it.
    pub permit: Permit,
}

/// What admission decided.
#[derive(Debug)]
#[non_exhaustive]
pub enum Admission {
    /// Go on with the protocol.
    Admitted(Admitted),
    /// A limit refused the connection: answer with the protocol's
    /// temporary refusal on `stream`, then close.
    Refused {
        /// The socket, for the refusal.
        stream: TcpStream,
        /// The client as far as it is known.
        client: SocketAddr,
        /// Which limit.
        refusal: Refusal,
    },
    /// A trusted proxy sent no valid PROXY header: close without a word.
    Dropped {
        /// The TCP peer.
        peer: SocketAddr,
        /// What was wrong.
        error: Error,
    },
}

/// Admits a freshly accepted connection: `TCP_NODELAY`, the global slot
/// (before any TLS work), the PROXY step, then the client's slot.
pub async fn admit(
    mut stream: TcpStream,
    peer: SocketAddr,
    gate: &ConnectionGate,
    proxy: &ProxyPolicy,
) -> Admission {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "TCP_NODELAY not set");
    }
    let local = match stream.local_addr() {
        Ok(a) => a,
        Err(error) => {
            return Admission::Dropped {
                peer,
                error: error.into(),
            };
        }
    };
    let mut permit = match gate.admit() {
        Ok(p) => p,
        Err(refusal) => {
            return Admission::Refused {
                stream,
                client: peer,
                refusal,
            };
        }
    };
    let accepted = match proxy.accept(&mut stream, peer, local).await {
        Ok(a) => a,
        Err(error) => return Admission::Dropped { peer, error },
    };
    if let Err(refusal) = permit.bind_client(accepted.client.ip()) {
        return Admission::Refused {
            stream,
            client: accepted.client,
            refusal,
        };
    }
    Admission::Admitted(Admitted {
        stream,
        client: accepted.client,
        local: accepted.local,
        peer,
        buffered: accepted.buffered,
        permit,
    })
}

/// A stream with bytes already read in front of it: the client data that
/// came with a PROXY header, so an implicit-TLS handshake sees its
/// ClientHello whole. The prefix is freed once read.
#[derive(Debug)]
pub struct Prefixed<S> {
    prefix: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    /// `inner`, read after `prefix`.
    pub fn new(prefix: Vec<u8>, inner: S) -> Self {
        Self {
            prefix,
            pos: 0,
            inner,
        }
    }

    /// The stream underneath.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.pos < this.prefix.len() {
            let rest = &this.prefix[this.pos..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.pos += n;
            if this.pos == this.prefix.len() {
                this.prefix = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl<S: RelayStream> RelayStream for Prefixed<S> {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.pos < self.prefix.len() {
            Poll::Ready(Ok(()))
        } else {
            self.inner.poll_read_ready(cx)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(text: &str, service: Service) -> Result<Vec<(String, TlsMode)>, Error> {
        let config = Config::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        Ok(listeners(&config, service)?
            .into_iter()
            .map(|s| (s.address.to_string(), s.tls))
            .collect())
    }

    #[test]
    fn defaults_are_the_standard_ports_on_every_ipv4_address() {
        assert_eq!(
            specs("", Service::Pop).unwrap(),
            [
                ("0.0.0.0:110".to_owned(), TlsMode::StartTls),
                ("0.0.0.0:995".to_owned(), TlsMode::Implicit)
            ]
        );
        assert_eq!(
            specs("", Service::Imap).unwrap(),
            [
                ("0.0.0.0:143".to_owned(), TlsMode::StartTls),
                ("0.0.0.0:993".to_owned(), TlsMode::Implicit)
            ]
        );
    }

    #[test]
    fn per_service_addresses_override_and_zero_turns_a_port_off() {
        let text = "[service]\nlistenaddr = \"192.0.2.1\"\n\
                    [service.pop]\nlistenaddr = \"127.0.0.1 [::1]\"\nport = 0\nsslport = 9950\n";
        assert_eq!(
            specs(text, Service::Pop).unwrap(),
            [
                ("127.0.0.1:9950".to_owned(), TlsMode::Implicit),
                ("[::1]:9950".to_owned(), TlsMode::Implicit)
            ]
        );
        assert_eq!(
            specs(text, Service::Imap).unwrap(),
            [
                ("192.0.2.1:143".to_owned(), TlsMode::StartTls),
                ("192.0.2.1:993".to_owned(), TlsMode::Implicit)
            ]
        );
    }

    #[test]
    fn a_disabled_service_has_no_listeners_and_bad_addresses_are_named() {
        assert!(
            specs("[service.pop]\nenable = false\n", Service::Pop)
                .unwrap()
                .is_empty()
        );
        let e = specs(
            "[service]\nlistenaddr = \"mail.example.com\"\n",
            Service::Pop,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("service.listenaddr"), "{e}");
        let e = specs("[service]\nlistenaddr = \" \"\n", Service::Pop)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no address"), "{e}");
    }

    #[tokio::test]
    async fn a_prefixed_stream_reads_the_prefix_first() {
        use tokio::io::AsyncReadExt;
        let (client, mut server) = tokio::io::duplex(64);
        let mut p = Prefixed::new(b"hello ".to_vec(), client);
        tokio::io::AsyncWriteExt::write_all(&mut server, b"world")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        drop(server);
        let mut all = String::new();
        p.read_to_string(&mut all)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(all, "hello world");
    }
}
