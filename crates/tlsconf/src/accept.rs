//! Accepting connections: implicit TLS, STARTTLS upgrades that need the
//! guard's proof, a handshake timeout, and what the handshake chose.
//!
//! ```text
//!  implicit TLS port:  tcp ──accept_with_info()──────────────▶ Accepted { stream, info }
//!  STARTTLS port:      MaybeTls::Plain(tcp)
//!                        │  StartTls::begin(.., &mut buffer) ──▶ Upgrade (buffer emptied)
//!                        └─ start_tls(&server, &upgrade) ────▶ Accepted ──▶ MaybeTls::Tls
//! ```
//!
//! Every handshake runs under a timeout ([`crate::ServerSettings::handshake_timeout`]
//! or the one given), so a client that connects and stalls ends with
//! [`io::ErrorKind::TimedOut`] instead of holding the connection.
//!
//! [`TlsInfo`] records the certificate the resolver chose for this very
//! connection (SNI, RSA or ECDSA), which is what `tls-server-end-point`
//! channel binding (RFC 5929 §4.1) must hash.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::server::{Acceptor, ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{HandshakeKind, ServerConfig, ServerConnection};
use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::client::TlsStream as ClientTlsStream;
use tokio_rustls::server::TlsStream;

use crate::TlsServer;
use crate::starttls::Upgrade;

/// Wraps the configured resolver for one handshake and keeps what it
/// returned, so the connection knows which certificate it presented.
#[derive(Debug)]
struct Recording {
    inner: Arc<dyn ResolvesServerCert>,
    chosen: Mutex<Option<Arc<CertifiedKey>>>,
}

impl Recording {
    fn take(&self) -> Option<Arc<CertifiedKey>> {
        self.chosen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

impl ResolvesServerCert for Recording {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let key = self.inner.resolve(hello);
        // After a HelloRetryRequest the resolver runs again; the last
        // answer is the one the handshake used.
        *self.chosen.lock().unwrap_or_else(PoisonError::into_inner) = key.clone();
        key
    }

    fn only_raw_public_keys(&self) -> bool {
        self.inner.only_raw_public_keys()
    }
}

/// What one handshake chose, beyond what [`ServerConnection`] reports.
#[derive(Debug, Clone)]
pub struct TlsInfo {
    certified_key: Option<Arc<CertifiedKey>>,
    resumed: bool,
    ems_required: bool,
}

impl TlsInfo {
    /// The certificate (leaf) this server sent in this handshake: the one
    /// its resolver chose for the client's server name and signature
    /// schemes, which for an RSA+ECDSA pair or an SNI map is not simply
    /// the first configured one.
    ///
    /// `None` on a resumed session: no certificate was sent, and the one
    /// of the original handshake is not known (it may have been replaced
    /// by a reload since). `tls-server-end-point` is then not offered;
    /// `tls-exporter` still is.
    pub fn server_certificate(&self) -> Option<&CertificateDer<'static>> {
        self.server_chain().and_then(<[_]>::first)
    }

    /// The whole chain sent, leaf first; `None` as for
    /// [`TlsInfo::server_certificate`].
    pub fn server_chain(&self) -> Option<&[CertificateDer<'static>]> {
        if self.resumed {
            return None;
        }
        self.certified_key.as_ref().map(|k| k.cert.as_slice())
    }

    /// Whether the session was resumed (no certificate sent).
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// Whether the configuration refused TLS 1.2 without the extended
    /// master secret (RFC 7627), so a TLS 1.2 session has it. Always true
    /// for configurations built by this crate.
    pub fn extended_master_secret_required(&self) -> bool {
        self.ems_required
    }

    /// What SASL needs of this connection (`portcullis_sasl::TlsState`):
    /// the version, `tls-exporter` (RFC 9266) and `tls-server-end-point`
    /// (RFC 5929) from the certificate actually sent. A certificate whose
    /// signature algorithm defines no `tls-server-end-point` hash leaves
    /// that binding out rather than failing.
    ///
    /// # Errors
    /// The sasl error while the handshake is still running or when the
    /// exporter fails.
    #[cfg(feature = "sasl")]
    pub fn sasl_tls_state(
        &self,
        conn: &ServerConnection,
    ) -> Result<portcullis_sasl::TlsState, portcullis_sasl::Error> {
        use portcullis_sasl::TlsState;
        let cert = self.server_certificate().map(AsRef::as_ref);
        match TlsState::from_rustls(conn, self.ems_required, cert) {
            Err(e) if cert.is_some() => {
                tracing::debug!(error = %e, "no tls-server-end-point for this certificate");
                TlsState::from_rustls(conn, self.ems_required, None)
            }
            other => other,
        }
    }
}

/// A finished server handshake with what it chose.
#[derive(Debug)]
#[non_exhaustive]
pub struct Accepted<IO> {
    /// The TLS stream.
    pub stream: TlsStream<IO>,
    /// What the handshake chose.
    pub info: TlsInfo,
}

impl<IO> Accepted<IO> {
    /// The rustls connection (version, suite, ALPN, client certificate).
    pub fn connection(&self) -> &ServerConnection {
        self.stream.get_ref().1
    }

    /// [`TlsInfo::sasl_tls_state`] for this connection.
    ///
    /// # Errors
    /// As [`TlsInfo::sasl_tls_state`].
    #[cfg(feature = "sasl")]
    pub fn sasl_tls_state(&self) -> Result<portcullis_sasl::TlsState, portcullis_sasl::Error> {
        self.info.sasl_tls_state(self.connection())
    }

    /// The client certificate chain this handshake verified; `None` when
    /// the client sent none (the server only requests one when a CA is
    /// trusted for client authentication, see [`crate::ClientAuth`]).
    /// The verifier of every configuration this crate builds refuses an
    /// unverified chain, and [`crate::VerifiedCertificate`] has no other
    /// constructor, so certificate logins cannot be handed raw bytes.
    #[cfg(feature = "sasl")]
    pub fn client_certificate(&self) -> Option<crate::VerifiedCertificate> {
        crate::VerifiedCertificate::from_rustls(self.connection())
    }

    /// [`Accepted::client_certificate`] as the identity SASL EXTERNAL maps
    /// (through certmap, in the directory).
    #[cfg(feature = "sasl")]
    pub fn sasl_external(&self) -> Option<portcullis_sasl::ExternalIdentity> {
        self.client_certificate()
            .map(portcullis_sasl::ExternalIdentity::Certificate)
    }

    /// `ctx` for the SASL exchanges after this handshake: its TLS state
    /// ([`Accepted::sasl_tls_state`]; left out when it cannot be read, so
    /// channel binding is not offered) and, when the client sent a
    /// verified certificate, the EXTERNAL identity
    /// ([`Accepted::sasl_external`]).
    #[cfg(feature = "sasl")]
    #[must_use]
    pub fn sasl_context(
        &self,
        ctx: portcullis_sasl::ServerContext,
    ) -> portcullis_sasl::ServerContext {
        let mut ctx = match self.sasl_tls_state() {
            Ok(state) => ctx.with_tls(state),
            Err(e) => {
                tracing::debug!(error = %e, "no TLS state for SASL");
                ctx
            }
        };
        if let Some(identity) = self.sasl_external() {
            ctx = ctx.with_external(identity);
        }
        ctx
    }
}

fn timed_out(after: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("TLS handshake not finished within {} ms", after.as_millis()),
    )
}

impl TlsServer {
    /// Accepts a TLS connection on an implicit-TLS port (IMAPS, POP3S,
    /// SMTPS, HTTPS), with the configuration current when its ClientHello
    /// arrives, within the settings' handshake timeout. After STARTTLS use
    /// [`TlsServer::accept_starttls`] or [`MaybeTls::start_tls`].
    ///
    /// # Errors
    /// The I/O or TLS error (as `InvalidData`) of the handshake;
    /// `TimedOut` when it did not finish in time.
    pub async fn accept<IO>(&self, io: IO) -> io::Result<TlsStream<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        Ok(self.accept_with_info(io).await?.stream)
    }

    /// [`TlsServer::accept`], returning what the handshake chose.
    ///
    /// # Errors
    /// As [`TlsServer::accept`].
    pub async fn accept_with_info<IO>(&self, io: IO) -> io::Result<Accepted<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        self.accept_with_timeout(io, self.handshake_timeout()).await
    }

    /// [`TlsServer::accept_with_info`] with another handshake timeout.
    ///
    /// # Errors
    /// As [`TlsServer::accept`]; `TimedOut` after `timeout`.
    pub async fn accept_with_timeout<IO>(
        &self,
        io: IO,
        timeout: Duration,
    ) -> io::Result<Accepted<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        tokio::time::timeout(timeout, self.handshake(io))
            .await
            .map_err(|_| timed_out(timeout))?
    }

    /// Runs the TLS handshake of a STARTTLS upgrade. `upgrade` is the
    /// proof [`crate::starttls::StartTls::begin`] gives once the plaintext
    /// read after the command has been thrown away; without it this cannot
    /// be called, so no code path upgrades with injected plaintext still
    /// buffered (CVE-2011-0411). Pass the raw transport, not a reader that
    /// may still hold buffered bytes.
    ///
    /// ```
    /// use portcullis_tlsconf::TlsServer;
    /// use portcullis_tlsconf::starttls::{PipelinedInput, StartTls};
    ///
    /// async fn upgrade(tls: &TlsServer, tcp: tokio::net::TcpStream, buffer: &mut Vec<u8>)
    ///     -> std::io::Result<()>
    /// {
    ///     let mut guard = StartTls::new(PipelinedInput::Discard);
    ///     let proof = guard.begin(false, buffer).expect("first STARTTLS");
    ///     let _accepted = tls.accept_starttls(tcp, &proof).await?;
    ///     guard.established(proof);
    ///     Ok(())
    /// }
    /// ```
    ///
    /// The proof cannot be made any other way:
    ///
    /// ```compile_fail,E0451
    /// use portcullis_tlsconf::TlsServer;
    /// use portcullis_tlsconf::starttls::Upgrade;
    ///
    /// async fn upgrade(tls: &TlsServer, tcp: tokio::net::TcpStream) -> std::io::Result<()> {
    ///     let forged = Upgrade { discarded: 0 };
    ///     let _accepted = tls.accept_starttls(tcp, &forged).await?;
    ///     Ok(())
    /// }
    /// ```
    ///
    /// # Errors
    /// As [`TlsServer::accept`].
    pub async fn accept_starttls<IO>(&self, io: IO, upgrade: &Upgrade) -> io::Result<Accepted<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        tracing::debug!(discarded = upgrade.discarded(), "STARTTLS handshake");
        self.accept_with_info(io).await
    }

    async fn handshake<IO>(&self, io: IO) -> io::Result<Accepted<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let start = LazyConfigAcceptor::new(Acceptor::default(), io).await?;
        let base = self.config_for(&start.client_hello());
        let recording = Arc::new(Recording {
            inner: Arc::clone(&base.cert_resolver),
            chosen: Mutex::new(None),
        });
        let mut config = ServerConfig::clone(&base);
        config.cert_resolver = Arc::clone(&recording) as Arc<dyn ResolvesServerCert>;
        let ems_required = config.require_ems;
        let stream = start.into_stream(Arc::new(config)).await?;
        let resumed = stream.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed);
        Ok(Accepted {
            stream,
            info: TlsInfo {
                certified_key: recording.take(),
                resumed,
                ems_required,
            },
        })
    }
}

/// A connection that is plain or TLS, for daemons that start in plaintext
/// and may upgrade with STARTTLS. Reads and writes go to whichever it is.
///
/// `T` is the TLS stream: a server's by default; with
/// `tokio_rustls::client::TlsStream<IO>` the same type serves outgoing
/// connections (a store or relay reached with or without TLS).
#[derive(Debug)]
pub enum MaybeTls<IO, T = TlsStream<IO>> {
    /// Not (yet) encrypted.
    Plain(IO),
    /// TLS (boxed: a TLS stream is much larger than a socket).
    Tls(Box<T>),
}

impl<IO, T> MaybeTls<IO, T> {
    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self, Self::Tls(_))
    }
}

impl<IO> MaybeTls<IO> {
    /// The rustls connection, when TLS.
    pub fn tls_connection(&self) -> Option<&ServerConnection> {
        match self {
            Self::Plain(_) => None,
            Self::Tls(s) => Some(s.get_ref().1),
        }
    }

    /// The transport underneath (for its peer address and such).
    pub fn transport(&self) -> &IO {
        match self {
            Self::Plain(io) => io,
            Self::Tls(s) => s.get_ref().0,
        }
    }
}

impl<IO> MaybeTls<IO, ClientTlsStream<IO>> {
    /// The rustls connection, when TLS.
    pub fn tls_connection(&self) -> Option<&rustls::ClientConnection> {
        match self {
            Self::Plain(_) => None,
            Self::Tls(s) => Some(s.get_ref().1),
        }
    }

    /// The transport underneath.
    pub fn transport(&self) -> &IO {
        match self {
            Self::Plain(io) => io,
            Self::Tls(s) => s.get_ref().0,
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> MaybeTls<IO> {
    /// Upgrades a plain connection after STARTTLS, with the guard's proof
    /// (see [`TlsServer::accept_starttls`]); the result goes back into a
    /// `MaybeTls` with [`MaybeTls::from`].
    ///
    /// # Errors
    /// `InvalidInput` when the connection is TLS already; else as
    /// [`TlsServer::accept`]. The connection is gone either way: close it.
    pub async fn start_tls(
        self,
        server: &TlsServer,
        upgrade: &Upgrade,
    ) -> io::Result<Accepted<IO>> {
        match self {
            Self::Plain(io) => server.accept_starttls(io, upgrade).await,
            Self::Tls(_) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "STARTTLS on a connection that is TLS already",
            )),
        }
    }
}

impl<IO> From<TlsStream<IO>> for MaybeTls<IO> {
    fn from(stream: TlsStream<IO>) -> Self {
        Self::Tls(Box::new(stream))
    }
}

impl<IO> From<ClientTlsStream<IO>> for MaybeTls<IO, ClientTlsStream<IO>> {
    fn from(stream: ClientTlsStream<IO>) -> Self {
        Self::Tls(Box::new(stream))
    }
}

impl<IO> From<Accepted<IO>> for MaybeTls<IO> {
    fn from(accepted: Accepted<IO>) -> Self {
        accepted.stream.into()
    }
}

impl<IO, T> AsyncRead for MaybeTls<IO, T>
where
    IO: AsyncRead + Unpin,
    T: AsyncRead + Unpin,
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(io) => Pin::new(io).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<IO, T> AsyncWrite for MaybeTls<IO, T>
where
    IO: AsyncWrite + Unpin,
    T: AsyncWrite + Unpin,
{
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(io) => Pin::new(io).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(io) => io.is_write_vectored(),
            Self::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(io) => Pin::new(io).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(io) => Pin::new(io).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
