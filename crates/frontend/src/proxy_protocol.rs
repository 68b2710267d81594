//! Inbound PROXY protocol (HAProxy's, versions 1 and 2) and the v2 encoder
//! for the store side.
//!
//! A load balancer in `mmp.trustedproxies` opens every connection with a
//! header naming the real client; that address is what access filters,
//! penalties, logs and the store see. Hosts outside the list never get a
//! header parsed: their bytes are client data.
//!
//! ```text
//! v1: "PROXY" SP ("TCP4" | "TCP6") SP src SP dst SP sport SP dport CRLF
//!     "PROXY" SP "UNKNOWN" [anything but CRLF] CRLF          (at most 107 bytes)
//! v2: \x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A       (12-byte signature)
//!     ver_cmd (0x20 LOCAL | 0x21 PROXY)
//!     fam     (0x00 UNSPEC, 0x11 TCP4, 0x21 TCP6, 0x3_ UNIX; 0x_2 UDP refused)
//!     len     (u16, big endian: bytes that follow)
//!     addresses (TCP4 12, TCP6 36, UNIX 216 bytes), then TLVs:
//!     type (u8) length (u16, big endian) value
//! ```
//!
//! The parser ([`decode`], [`Decoder`]) does no I/O: give it the bytes read
//! so far and it answers [`Decoded::Incomplete`], the header with how many
//! bytes it took (the rest is the client's first data and must be kept), or
//! an error as soon as the bytes cannot start a header. [`read_header`] and
//! [`ProxyPolicy::accept`] are the Tokio edge.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use portcullis_config::{Config, params};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::Error;
use crate::error::malformed;
use crate::net::NetworkList;

/// The 12 bytes that start every v2 header.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Longest v1 header, CRLF included.
pub const V1_MAX_LEN: usize = 107;
/// Longest v2 header: the 16 fixed bytes and a 16-bit length.
pub const V2_MAX_LEN: usize = 16 + u16::MAX as usize;

const V1_PREFIX: &[u8] = b"PROXY ";
const V2_FIXED: usize = 16;
const INET_BLOCK: usize = 12;
const INET6_BLOCK: usize = 36;
const UNIX_BLOCK: usize = 216;

/// Well-known TLV types (HAProxy spec §2.2.1 ff.); others are kept as they
/// come.
pub mod tlv_type {
    /// Application-Layer Protocol Negotiation.
    pub const ALPN: u8 = 0x01;
    /// The host name the client asked for (SNI or Host).
    pub const AUTHORITY: u8 = 0x02;
    /// CRC-32c of the header (kept, not verified).
    pub const CRC32C: u8 = 0x03;
    /// Padding, to be ignored.
    pub const NOOP: u8 = 0x04;
    /// An opaque connection identifier.
    pub const UNIQUE_ID: u8 = 0x05;
    /// TLS facts of the client connection (with sub-TLVs).
    pub const SSL: u8 = 0x20;
    /// The network namespace.
    pub const NETNS: u8 = 0x30;
}

/// Which version of the protocol a header used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Version {
    /// The text form.
    V1,
    /// The binary form.
    V2,
}

/// What the proxy says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// The proxy's own connection (a health check): use the real peer.
    Local,
    /// Relayed on behalf of the client named in the header.
    Proxy,
}

/// The client and server addresses a header names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Addresses {
    /// None usable: v1 `UNKNOWN`, v2 `LOCAL`, `AF_UNSPEC` or `AF_UNIX`.
    /// The connection's own peer address stands.
    Unknown,
    /// A TCP connection from `source` (the client) to `destination`.
    Tcp {
        /// The client.
        source: SocketAddr,
        /// The address the client connected to.
        destination: SocketAddr,
    },
}

/// One v2 type-length-value extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlv {
    /// The type (see [`tlv_type`]).
    pub kind: u8,
    /// The value (at most 65535 bytes).
    pub value: Vec<u8>,
}

/// A decoded PROXY protocol header.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxyHeader {
    /// The version it came in.
    pub version: Version,
    /// `LOCAL` or `PROXY` (v1 is always `PROXY`).
    pub command: Command,
    /// The addresses it names.
    pub addresses: Addresses,
    /// v2 extensions, in order (none for v1).
    pub tlvs: Vec<Tlv>,
}

impl ProxyHeader {
    /// A v2 `PROXY` header for a TCP connection from `source` to
    /// `destination`, without extensions.
    #[must_use]
    pub fn tcp(source: SocketAddr, destination: SocketAddr) -> Self {
        Self {
            version: Version::V2,
            command: Command::Proxy,
            addresses: Addresses::Tcp {
                source,
                destination,
            },
            tlvs: Vec::new(),
        }
    }

    /// A v2 `LOCAL` header (the sender's own connection).
    #[must_use]
    pub fn local() -> Self {
        Self {
            version: Version::V2,
            command: Command::Local,
            addresses: Addresses::Unknown,
            tlvs: Vec::new(),
        }
    }

    /// The client the header names, if it names one.
    #[must_use]
    pub fn source(&self) -> Option<SocketAddr> {
        match (self.command, self.addresses) {
            (Command::Proxy, Addresses::Tcp { source, .. }) => Some(source),
            _ => None,
        }
    }

    /// The address the client connected to, if the header names one.
    #[must_use]
    pub fn destination(&self) -> Option<SocketAddr> {
        match (self.command, self.addresses) {
            (Command::Proxy, Addresses::Tcp { destination, .. }) => Some(destination),
            _ => None,
        }
    }

    /// The first extension of type `kind`.
    #[must_use]
    pub fn tlv(&self, kind: u8) -> Option<&[u8]> {
        self.tlvs
            .iter()
            .find(|t| t.kind == kind)
            .map(|t| t.value.as_slice())
    }

    /// The header in the v2 binary form (whatever [`Self::version`] says),
    /// as the daemons send it to a store that expects one. Addresses of
    /// different families are both written as IPv6 (the IPv4 one
    /// IPv4-mapped).
    ///
    /// # Errors
    /// [`Error::ProxyEncode`] when the extensions do not fit the 16-bit
    /// length.
    pub fn encode_v2(&self) -> Result<Vec<u8>, Error> {
        let mut body = Vec::new();
        let fam = match (self.command, self.addresses) {
            (Command::Local, _) | (Command::Proxy, Addresses::Unknown) => 0x00,
            (
                Command::Proxy,
                Addresses::Tcp {
                    source,
                    destination,
                },
            ) => {
                let fam = match (source.ip(), destination.ip()) {
                    (IpAddr::V4(s), IpAddr::V4(d)) => {
                        body.extend_from_slice(&s.octets());
                        body.extend_from_slice(&d.octets());
                        0x11
                    }
                    (s, d) => {
                        body.extend_from_slice(&as_v6(s).octets());
                        body.extend_from_slice(&as_v6(d).octets());
                        0x21
                    }
                };
                body.extend_from_slice(&source.port().to_be_bytes());
                body.extend_from_slice(&destination.port().to_be_bytes());
                fam
            }
        };
        for tlv in &self.tlvs {
            let len = u16::try_from(tlv.value.len())
                .map_err(|_| Error::ProxyEncode("a TLV value is longer than 65535 bytes"))?;
            body.push(tlv.kind);
            body.extend_from_slice(&len.to_be_bytes());
            body.extend_from_slice(&tlv.value);
        }
        let len = u16::try_from(body.len())
            .map_err(|_| Error::ProxyEncode("addresses and TLVs exceed 65535 bytes"))?;
        let ver_cmd = match self.command {
            Command::Local => 0x20,
            Command::Proxy => 0x21,
        };
        let mut out = Vec::with_capacity(V2_FIXED + body.len());
        out.extend_from_slice(&V2_SIGNATURE);
        out.push(ver_cmd);
        out.push(fam);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&body);
        Ok(out)
    }
}

fn as_v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// What [`decode`] made of the bytes so far.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decoded {
    /// A header may follow: read more bytes and try again.
    Incomplete,
    /// A whole header, taken from the first `consumed` bytes.
    Complete {
        /// The header.
        header: ProxyHeader,
        /// How many bytes it took; the rest is client data.
        consumed: usize,
    },
}

/// Whether `buf` could be the start of a PROXY header (either version), as
/// far as it goes. A service whose port is not behind a trusted proxy can
/// use it to refuse, and log, a client that sends one.
#[must_use]
pub fn starts_like_header(buf: &[u8]) -> bool {
    let n = buf.len().min(V1_PREFIX.len());
    let m = buf.len().min(V2_SIGNATURE.len());
    !buf.is_empty() && (buf[..n] == V1_PREFIX[..n] || buf[..m] == V2_SIGNATURE[..m])
}

/// Decodes the header at the start of `buf`.
///
/// It fails as soon as the bytes cannot start a header, so a peer that
/// speaks something else is refused without waiting for more.
///
/// # Errors
/// [`Error::ProxyHeader`] with the offset of the first bad byte.
pub fn decode(buf: &[u8]) -> Result<Decoded, Error> {
    let Some(&first) = buf.first() else {
        return Ok(Decoded::Incomplete);
    };
    if first == b'P' {
        decode_v1(buf)
    } else if first == V2_SIGNATURE[0] {
        decode_v2(buf)
    } else {
        Err(malformed(0, "neither a v1 (\"PROXY \") nor a v2 signature"))
    }
}

fn decode_v1(buf: &[u8]) -> Result<Decoded, Error> {
    let n = buf.len().min(V1_PREFIX.len());
    if let Some(i) = (0..n).find(|&i| buf[i] != V1_PREFIX[i]) {
        return Err(malformed(i, "v1 header must start with \"PROXY \""));
    }
    // Find the CRLF within the first 107 bytes; refuse a stray CR or LF or
    // a byte that is not printable ASCII on the way.
    let window = &buf[..buf.len().min(V1_MAX_LEN)];
    let mut end = None;
    for (i, &b) in window.iter().enumerate() {
        match b {
            b'\r' => match window.get(i + 1) {
                Some(b'\n') => {
                    end = Some(i);
                    break;
                }
                Some(_) => return Err(malformed(i, "CR not followed by LF in v1 header")),
                None => {}
            },
            b'\n' => return Err(malformed(i, "LF without CR in v1 header")),
            0x20..=0x7e => {}
            _ => {
                return Err(malformed(
                    i,
                    "v1 header holds a byte that is not printable ASCII",
                ));
            }
        }
    }
    let Some(end) = end else {
        return if buf.len() >= V1_MAX_LEN {
            Err(malformed(V1_MAX_LEN, "v1 header longer than 107 bytes"))
        } else {
            Ok(Decoded::Incomplete)
        };
    };
    let line = &buf[V1_PREFIX.len()..end];
    let addresses = v1_addresses(line)?;
    Ok(Decoded::Complete {
        header: ProxyHeader {
            version: Version::V1,
            command: Command::Proxy,
            addresses,
            tlvs: Vec::new(),
        },
        consumed: end + 2,
    })
}

/// The part after `"PROXY "` and before CRLF (printable ASCII, checked).
fn v1_addresses(line: &[u8]) -> Result<Addresses, Error> {
    let at = |offset: usize| V1_PREFIX.len() + offset;
    if line == b"UNKNOWN" || line.starts_with(b"UNKNOWN ") {
        // The spec: anything up to CRLF after UNKNOWN is to be ignored.
        return Ok(Addresses::Unknown);
    }
    // Only printable ASCII is left, so the line is valid UTF-8.
    let text = std::str::from_utf8(line).map_err(|_| malformed(at(0), "not ASCII"))?;
    let mut fields = Vec::with_capacity(5);
    let mut offset = 0;
    for field in text.split(' ') {
        if field.is_empty() {
            return Err(malformed(
                at(offset),
                "v1 fields are separated by exactly one space",
            ));
        }
        fields.push((offset, field));
        offset += field.len() + 1;
    }
    let [
        (_, proto),
        (so, src),
        (dso, dst),
        (spo, sport),
        (dpo, dport),
    ] = fields[..]
    else {
        return Err(malformed(
            at(0),
            "v1 header needs TCP4|TCP6 src dst sport dport, or UNKNOWN",
        ));
    };
    let (source, destination): (IpAddr, IpAddr) = match proto {
        "TCP4" => (
            IpAddr::V4(
                src.parse::<Ipv4Addr>()
                    .map_err(|_| malformed(at(so), "bad IPv4 source"))?,
            ),
            IpAddr::V4(
                dst.parse::<Ipv4Addr>()
                    .map_err(|_| malformed(at(dso), "bad IPv4 destination"))?,
            ),
        ),
        "TCP6" => (
            IpAddr::V6(
                src.parse::<Ipv6Addr>()
                    .map_err(|_| malformed(at(so), "bad IPv6 source"))?,
            ),
            IpAddr::V6(
                dst.parse::<Ipv6Addr>()
                    .map_err(|_| malformed(at(dso), "bad IPv6 destination"))?,
            ),
        ),
        _ => {
            return Err(malformed(
                at(0),
                "v1 protocol must be TCP4, TCP6 or UNKNOWN",
            ));
        }
    };
    let sport = v1_port(sport).ok_or_else(|| malformed(at(spo), "bad source port"))?;
    let dport = v1_port(dport).ok_or_else(|| malformed(at(dpo), "bad destination port"))?;
    Ok(Addresses::Tcp {
        source: SocketAddr::new(source, sport),
        destination: SocketAddr::new(destination, dport),
    })
}

/// A decimal port without sign or leading zero.
fn v1_port(s: &str) -> Option<u16> {
    let digits = s.bytes().all(|b| b.is_ascii_digit());
    let no_leading_zero = s == "0" || !s.starts_with('0');
    if !digits || !no_leading_zero || s.len() > 5 {
        return None;
    }
    s.parse().ok()
}

fn decode_v2(buf: &[u8]) -> Result<Decoded, Error> {
    let n = buf.len().min(V2_SIGNATURE.len());
    if let Some(i) = (0..n).find(|&i| buf[i] != V2_SIGNATURE[i]) {
        return Err(malformed(i, "not the v2 signature"));
    }
    if let Some(&ver_cmd) = buf.get(12) {
        if ver_cmd >> 4 != 2 {
            return Err(malformed(12, "v2 header with a version other than 2"));
        }
        if ver_cmd & 0x0f > 1 {
            return Err(malformed(12, "v2 command is neither LOCAL nor PROXY"));
        }
    }
    if let Some(&fam) = buf.get(13)
        && (fam >> 4 > 3 || fam & 0x0f > 2)
    {
        return Err(malformed(13, "unknown v2 address family or protocol"));
    }
    if buf.len() < V2_FIXED {
        return Ok(Decoded::Incomplete);
    }
    let command = if buf[12] & 0x0f == 0 {
        Command::Local
    } else {
        Command::Proxy
    };
    let fam = buf[13];
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    let total = V2_FIXED + len;
    if buf.len() < total {
        return Ok(Decoded::Incomplete);
    }
    let body = &buf[V2_FIXED..total];
    let block = match fam >> 4 {
        1 => INET_BLOCK,
        2 => INET6_BLOCK,
        3 => UNIX_BLOCK,
        _ => 0,
    };
    if body.len() < block {
        return Err(malformed(14, "v2 length shorter than the address block"));
    }
    let mut addresses = Addresses::Unknown;
    if command == Command::Proxy && block != 0 && fam >> 4 != 3 {
        match fam & 0x0f {
            1 => {}
            2 => return Err(malformed(13, "UDP is not served here")),
            _ => return Err(malformed(13, "an IP family needs protocol STREAM")),
        }
        addresses = v2_tcp(&body[..block]);
    }
    let tlvs = v2_tlvs(&body[block..], V2_FIXED + block)?;
    Ok(Decoded::Complete {
        header: ProxyHeader {
            version: Version::V2,
            command,
            addresses,
            tlvs,
        },
        consumed: total,
    })
}

/// An INET (12 bytes) or INET6 (36 bytes) address block.
fn v2_tcp(block: &[u8]) -> Addresses {
    let port = |i: usize| u16::from_be_bytes([block[i], block[i + 1]]);
    let (source, destination, ports): (IpAddr, IpAddr, usize) = if block.len() == INET_BLOCK {
        let ip = |i: usize| Ipv4Addr::new(block[i], block[i + 1], block[i + 2], block[i + 3]);
        (ip(0).into(), ip(4).into(), 8)
    } else {
        let ip = |i: usize| {
            let mut o = [0u8; 16];
            o.copy_from_slice(&block[i..i + 16]);
            Ipv6Addr::from(o)
        };
        (ip(0).into(), ip(16).into(), 32)
    };
    Addresses::Tcp {
        source: SocketAddr::new(source, port(ports)),
        destination: SocketAddr::new(destination, port(ports + 2)),
    }
}

/// The TLVs filling `rest` exactly; `base` is its offset in the header.
fn v2_tlvs(mut rest: &[u8], base: usize) -> Result<Vec<Tlv>, Error> {
    let mut tlvs = Vec::new();
    let mut pos = base;
    while !rest.is_empty() {
        let [kind, hi, lo, ref value @ ..] = *rest else {
            return Err(malformed(pos, "truncated TLV header"));
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        let Some(value) = value.get(..len) else {
            return Err(malformed(pos, "TLV longer than the header"));
        };
        tlvs.push(Tlv {
            kind,
            value: value.to_vec(),
        });
        rest = &rest[3 + len..];
        pos += 3 + len;
    }
    Ok(tlvs)
}

/// A header and the client data that came after it in the same reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// The header.
    pub header: ProxyHeader,
    /// Bytes after the header: the client's first data.
    pub rest: Vec<u8>,
}

/// An incremental decoder: push bytes as they arrive.
///
/// It buffers at most one header (107 bytes for v1, 16 + 65535 for v2) and
/// whatever the last push brought beyond it.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    /// An empty decoder.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `data`; `Some` once the header is complete (the decoder is then
    /// empty again).
    ///
    /// # Errors
    /// As [`decode`]; the decoder should then be dropped with the
    /// connection.
    pub fn push(&mut self, data: &[u8]) -> Result<Option<Finished>, Error> {
        self.buf.extend_from_slice(data);
        match decode(&self.buf)? {
            Decoded::Incomplete => Ok(None),
            Decoded::Complete { header, consumed } => {
                let rest = self.buf.split_off(consumed);
                self.buf.clear();
                Ok(Some(Finished { header, rest }))
            }
        }
    }
}

/// Reads one PROXY header from `stream`, allowing `timeout` for all of it.
///
/// # Errors
/// [`Error::ProxyHeaderTimeout`], [`Error::ProxyHeaderTruncated`] when
/// the peer closes first, [`Error::ProxyHeader`] for bad bytes, and
/// [`Error::Io`].
pub async fn read_header<S>(stream: &mut S, timeout: Duration) -> Result<Finished, Error>
where
    S: AsyncRead + Unpin + ?Sized,
{
    let read = async {
        let mut decoder = Decoder::new();
        let mut chunk = [0u8; 1024];
        loop {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(Error::ProxyHeaderTruncated);
            }
            if let Some(done) = decoder.push(&chunk[..n])? {
                return Ok(done);
            }
        }
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| Error::ProxyHeaderTimeout(timeout))?
}

/// Who must send a PROXY header, and how long they have.
#[derive(Debug, Clone)]
pub struct ProxyPolicy {
    trusted: NetworkList,
    timeout: Duration,
}

/// A connection after the PROXY step: the client as everything downstream
/// must see it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Accepted {
    /// The client: from the header, else the TCP peer.
    pub client: SocketAddr,
    /// The address the client connected to: from the header, else ours.
    pub local: SocketAddr,
    /// The TCP peer (the proxy, when there is a header).
    pub peer: SocketAddr,
    /// The header, when the peer is a trusted proxy.
    pub header: Option<ProxyHeader>,
    /// Client data read together with the header: feed it to the protocol
    /// before reading the stream again.
    pub buffered: Vec<u8>,
}

impl ProxyPolicy {
    /// Headers are required from `trusted` (and refused from others),
    /// within `timeout` of the connection.
    #[must_use]
    pub fn new(trusted: NetworkList, timeout: Duration) -> Self {
        Self { trusted, timeout }
    }

    /// From `mmp.trustedproxies` and `mmp.proxyheadertimeout`.
    ///
    /// # Errors
    /// [`Error::Config`] or [`Error::InvalidSetting`] for a bad list.
    pub fn from_config(config: &Config) -> Result<Self, Error> {
        let list = config.get(params::MMP_TRUSTEDPROXIES)?;
        let trusted = NetworkList::parse("mmp.trustedproxies", &list)?;
        let secs = config.get(params::MMP_PROXYHEADERTIMEOUT)?;
        Ok(Self::new(trusted, seconds(secs)))
    }

    /// Whether any proxy is trusted (an empty list turns the protocol off).
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        !self.trusted.is_empty()
    }

    /// Whether a connection from `peer` must start with a header.
    #[must_use]
    pub fn requires_header(&self, peer: IpAddr) -> bool {
        self.trusted.contains(peer)
    }

    /// The PROXY step of a new connection from `peer` to `local`: a
    /// trusted proxy's header is read (and required); anyone else's
    /// connection is taken as it is, and nothing it sends is read as a
    /// header.
    ///
    /// # Errors
    /// As [`read_header`], for a trusted peer only. Close the connection
    /// without a greeting.
    pub async fn accept<S>(
        &self,
        stream: &mut S,
        peer: SocketAddr,
        local: SocketAddr,
    ) -> Result<Accepted, Error>
    where
        S: AsyncRead + Unpin + ?Sized,
    {
        if !self.requires_header(peer.ip()) {
            return Ok(Accepted {
                client: peer,
                local,
                peer,
                header: None,
                buffered: Vec::new(),
            });
        }
        let done = match read_header(stream, self.timeout).await {
            Ok(done) => done,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "trusted proxy sent no valid PROXY header");
                return Err(e);
            }
        };
        let client = done.header.source().unwrap_or(peer);
        let to = done.header.destination().unwrap_or(local);
        tracing::debug!(%peer, %client, version = ?done.header.version, "PROXY header accepted");
        Ok(Accepted {
            client,
            local: to,
            peer,
            header: Some(done.header),
            buffered: done.rest,
        })
    }
}

/// A registry value in seconds (kinds keep it non-negative).
pub(crate) fn seconds(secs: i64) -> Duration {
    Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}
