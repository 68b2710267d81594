//! Lookups on tokio: DNS through hickory-resolver, and an RFC 1413 ident
//! client. (Feature `tokio`, on by default.)

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::rr::RData;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};

use crate::error::Error;
use crate::lookup::{BoxFuture, DnsAnswer, Family, IdentLookup, Resolver};
use crate::query::UserLookup;

/// The default time limit of one DNS question.
pub const DEFAULT_DNS_TIMEOUT: Duration = Duration::from_secs(5);

/// The default time limit of an ident lookup (RFC 1413 suggests 30 s;
/// mail clients should not wait that long).
pub const DEFAULT_IDENT_TIMEOUT: Duration = Duration::from_secs(10);

/// A [`Resolver`] on hickory-resolver.
#[derive(Clone)]
pub struct DnsResolver {
    inner: TokioResolver,
    timeout: Duration,
}

impl std::fmt::Debug for DnsResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsResolver")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl DnsResolver {
    /// Uses the system configuration (`/etc/resolv.conf`); `timeout`
    /// limits each lookup as a whole (timeouts answer "try again later").
    ///
    /// # Errors
    ///
    /// [`Error::Resolver`] when the system configuration cannot be read.
    pub fn from_system(timeout: Duration) -> Result<Self, Error> {
        let mut builder =
            TokioResolver::builder_tokio().map_err(|e| Error::Resolver(e.to_string()))?;
        builder.options_mut().timeout = timeout;
        builder.options_mut().attempts = 1;
        let inner = builder
            .build()
            .map_err(|e| Error::Resolver(e.to_string()))?;
        Ok(DnsResolver { inner, timeout })
    }

    /// Uses the given name servers (UDP, then TCP) on their ports.
    ///
    /// # Errors
    ///
    /// [`Error::Resolver`] when the resolver cannot be built.
    pub fn with_servers(servers: &[SocketAddr], timeout: Duration) -> Result<Self, Error> {
        let configs = servers
            .iter()
            .map(|s| {
                let mut udp = ConnectionConfig::udp();
                udp.port = s.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = s.port();
                let mut ns = NameServerConfig::udp_and_tcp(s.ip());
                ns.connections = vec![udp, tcp];
                ns
            })
            .collect();
        let mut builder = TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(configs),
            TokioRuntimeProvider::default(),
        );
        builder.options_mut().timeout = timeout;
        builder.options_mut().attempts = 1;
        let inner = builder
            .build()
            .map_err(|e| Error::Resolver(e.to_string()))?;
        Ok(DnsResolver { inner, timeout })
    }
}

fn classify<T>(
    result: Result<Result<T, NetError>, tokio::time::error::Elapsed>,
) -> Result<T, DnsAnswer<T>> {
    match result {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(NetError::Dns(DnsError::NoRecordsFound(_)))) => Err(DnsAnswer::NotFound),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "DNS lookup failed");
            Err(DnsAnswer::Tempfail)
        }
        Err(_) => Err(DnsAnswer::Tempfail),
    }
}

impl Resolver for DnsResolver {
    fn reverse(&self, addr: IpAddr) -> BoxFuture<'_, DnsAnswer<Vec<String>>> {
        Box::pin(async move {
            let r = tokio::time::timeout(self.timeout * 2, self.inner.reverse_lookup(addr)).await;
            match classify(r) {
                Ok(lookup) => {
                    let names: Vec<String> = lookup
                        .answers()
                        .iter()
                        .filter_map(|rec| match &rec.data {
                            RData::PTR(p) => Some(p.0.to_utf8()),
                            _ => None,
                        })
                        .collect();
                    if names.is_empty() {
                        DnsAnswer::NotFound
                    } else {
                        DnsAnswer::Found(names)
                    }
                }
                Err(a) => match a {
                    DnsAnswer::NotFound => DnsAnswer::NotFound,
                    _ => DnsAnswer::Tempfail,
                },
            }
        })
    }

    fn forward<'a>(
        &'a self,
        name: &'a str,
        family: Family,
    ) -> BoxFuture<'a, DnsAnswer<Vec<IpAddr>>> {
        Box::pin(async move {
            let fqdn = format!("{}.", name.trim_end_matches('.'));
            let limit = self.timeout * 2;
            let r = match family {
                Family::V4 => {
                    tokio::time::timeout(limit, self.inner.ipv4_lookup(fqdn.as_str())).await
                }
                Family::V6 => {
                    tokio::time::timeout(limit, self.inner.ipv6_lookup(fqdn.as_str())).await
                }
            };
            match classify(r) {
                Ok(lookup) => {
                    let addrs: Vec<IpAddr> = lookup
                        .answers()
                        .iter()
                        .filter_map(|rec| match &rec.data {
                            RData::A(a) if family == Family::V4 => Some(IpAddr::V4(a.0)),
                            RData::AAAA(a) if family == Family::V6 => Some(IpAddr::V6(a.0)),
                            _ => None,
                        })
                        .collect();
                    if addrs.is_empty() {
                        DnsAnswer::NotFound
                    } else {
                        DnsAnswer::Found(addrs)
                    }
                }
                Err(a) => match a {
                    DnsAnswer::NotFound => DnsAnswer::NotFound,
                    _ => DnsAnswer::Tempfail,
                },
            }
        })
    }
}

/// An RFC 1413 (ident) client.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct IdentClient {
    /// Time limit of the whole exchange (default 10 s).
    pub timeout: Duration,
    /// The identd port on the client host (113).
    pub port: u16,
    /// Whether a timeout means "try again later" (the default) rather than
    /// "unknown user" (tcp_wrappers' behaviour). A client without identd
    /// usually refuses the connection at once, which is a definite
    /// "unknown"; a timeout says nothing about the user, so by default it
    /// never decides a `KNOWN`/`UNKNOWN` rule.
    pub timeout_is_tempfail: bool,
}

impl Default for IdentClient {
    fn default() -> Self {
        IdentClient {
            timeout: DEFAULT_IDENT_TIMEOUT,
            port: 113,
            timeout_is_tempfail: true,
        }
    }
}

/// The longest ident reply line read.
const MAX_IDENT_REPLY: u64 = 1024;

impl IdentClient {
    /// A client with the defaults.
    pub fn new() -> Self {
        IdentClient::default()
    }

    /// Sets the time limit.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// tcp_wrappers' behaviour: a timeout makes the user unknown.
    #[must_use]
    pub fn timeout_means_unknown(mut self) -> Self {
        self.timeout_is_tempfail = false;
        self
    }

    /// Sets the identd port (for tests; the standard port is 113).
    #[must_use]
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    async fn exchange(
        &self,
        client: SocketAddr,
        server: SocketAddr,
    ) -> std::io::Result<UserLookup> {
        let target = SocketAddr::new(client.ip(), self.port);
        // Connect from the server's address, so the client's identd sees the
        // connection come from the host the client connected to.
        let socket = if target.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        let stream = if socket.bind(SocketAddr::new(server.ip(), 0)).is_ok() {
            socket.connect(target).await?
        } else {
            TcpStream::connect(target).await?
        };
        let mut stream = BufReader::new(stream);
        let query = format!("{} , {}\r\n", client.port(), server.port());
        stream.get_mut().write_all(query.as_bytes()).await?;
        let mut line = Vec::new();
        (&mut stream)
            .take(MAX_IDENT_REPLY)
            .read_until(b'\n', &mut line)
            .await?;
        Ok(parse_ident_reply(
            &String::from_utf8_lossy(&line),
            client.port(),
            server.port(),
        ))
    }
}

use tokio::io::AsyncReadExt as _;

/// Parses `<port> , <port> : USERID : <os> : <user>`; anything else
/// (`ERROR`, a port mismatch, garbage) is an unknown user.
pub fn parse_ident_reply(line: &str, client_port: u16, server_port: u16) -> UserLookup {
    let line = line.trim_end_matches(['\r', '\n']);
    let mut parts = line.splitn(4, ':');
    let (Some(ports), Some(kind), Some(_os), Some(user)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return UserLookup::Unknown;
    };
    let mut p = ports.split(',').map(|s| s.trim().parse::<u16>());
    if !matches!((p.next(), p.next()), (Some(Ok(a)), Some(Ok(b))) if a == client_port && b == server_port)
    {
        return UserLookup::Unknown;
    }
    if !kind.trim().eq_ignore_ascii_case("USERID") {
        return UserLookup::Unknown;
    }
    let user = user.trim();
    if user.is_empty() || user.len() > 512 {
        UserLookup::Unknown
    } else {
        UserLookup::Known(user.to_ascii_lowercase())
    }
}

impl IdentLookup for IdentClient {
    fn user(&self, client: SocketAddr, server: SocketAddr) -> BoxFuture<'_, UserLookup> {
        Box::pin(async move {
            match tokio::time::timeout(self.timeout, self.exchange(client, server)).await {
                Ok(Ok(user)) => user,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, %client, "ident lookup failed");
                    UserLookup::Unknown
                }
                Err(_) if self.timeout_is_tempfail => UserLookup::Tempfail,
                Err(_) => UserLookup::Unknown,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ident_replies() {
        assert_eq!(
            parse_ident_reply("6193, 23 : USERID : UNIX : StJohns\r\n", 6193, 23),
            UserLookup::Known("stjohns".into())
        );
        assert_eq!(
            parse_ident_reply("6193, 23 : ERROR : NO-USER\r\n", 6193, 23),
            UserLookup::Unknown
        );
        assert_eq!(
            parse_ident_reply("1, 2 : USERID : UNIX : x\r\n", 6193, 23),
            UserLookup::Unknown
        );
        assert_eq!(parse_ident_reply("garbage", 1, 2), UserLookup::Unknown);
    }
}
