//! An IMAP load generator over implicit TLS: full handshakes, logins,
//! bulk FETCH and idle connections, against any server (imapd, Dovecot,
//! nginx's mail proxy) so they can be compared in one run.
//!
//! Every connection makes a full TLS 1.3 handshake (no resumption); a
//! connection the client ends is reset (`SO_LINGER` 0) so that tens of
//! thousands of short connections do not run the client out of ports in
//! `TIME_WAIT`.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use portcullis_tlsconf::pki_types::pem::PemObject;
use portcullis_tlsconf::pki_types::{CertificateDer, ServerName};
use portcullis_tlsconf::rustls;
use portcullis_tlsconf::tokio_rustls::TlsConnector;
use portcullis_tlsconf::tokio_rustls::client::TlsStream;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The longest line a server may send before the client gives up.
const MAX_LINE: usize = 64 * 1024;

/// How long one connect or one command may take before the client calls
/// it failed (a stalled server must not hang the run).
const STALL: Duration = Duration::from_secs(60);

async fn bounded<T>(work: impl Future<Output = io::Result<T>>) -> io::Result<T> {
    tokio::time::timeout(STALL, work)
        .await
        .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "stalled")))
}

/// Where to connect and how to check the server's certificate.
#[derive(Clone)]
pub struct Target {
    /// The server's implicit-TLS address.
    pub addr: SocketAddr,
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target").field("addr", &self.addr).finish()
    }
}

impl Target {
    /// A target whose certificate for `name` is issued by the CA in
    /// `ca_pem`; TLS 1.3 only, no session resumption.
    ///
    /// # Errors
    /// A CA that does not parse, or a name that is not one.
    pub fn new(addr: SocketAddr, ca_pem: &str, name: &str) -> io::Result<Self> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots
                .add(cert.map_err(io::Error::other)?)
                .map_err(io::Error::other)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(io::Error::other)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.resumption = rustls::client::Resumption::disabled();
        Ok(Self {
            addr,
            connector: TlsConnector::from(Arc::new(config)),
            name: ServerName::try_from(name.to_owned()).map_err(io::Error::other)?,
        })
    }

    /// A TLS connection whose greeting (`* OK …`) has been read.
    ///
    /// # Errors
    /// Connection, handshake or greeting failures.
    pub async fn connect(&self) -> io::Result<Session> {
        bounded(self.connect_unbounded()).await
    }

    async fn connect_unbounded(&self) -> io::Result<Session> {
        let tcp = TcpStream::connect(self.addr).await?;
        tcp.set_nodelay(true)?;
        let tls = self.connector.connect(self.name.clone(), tcp).await?;
        let mut session = Session {
            io: BufReader::new(tls),
            tags: 0,
        };
        let greeting = session.line().await?;
        if !greeting.starts_with(b"* OK") {
            return Err(protocol("greeting", &greeting));
        }
        Ok(session)
    }
}

fn protocol(what: &str, line: &[u8]) -> io::Error {
    io::Error::other(format!(
        "unexpected {what}: {}",
        String::from_utf8_lossy(line).trim_end()
    ))
}

/// One IMAP connection.
#[derive(Debug)]
pub struct Session {
    io: BufReader<TlsStream<TcpStream>>,
    tags: u32,
}

/// The length of the literal a line announces (`… {123}\r\n`), if any.
fn literal(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\r\n")?.strip_suffix(b"}")?;
    let open = line.iter().rposition(|&b| b == b'{')?;
    let digits = &line[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    std::str::from_utf8(digits).ok()?.parse().ok()
}

impl Session {
    async fn line(&mut self) -> io::Result<Vec<u8>> {
        let mut line = Vec::new();
        let n = (&mut self.io)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(line)
    }

    /// Sends `command` under a new tag and reads to its tagged answer,
    /// which must be OK; returns the bytes read (literals included).
    ///
    /// # Errors
    /// I/O failures, or an answer other than OK.
    pub async fn command(&mut self, command: &str) -> io::Result<u64> {
        bounded(self.command_unbounded(command)).await
    }

    async fn command_unbounded(&mut self, command: &str) -> io::Result<u64> {
        self.tags += 1;
        let tag = format!("t{}", self.tags);
        self.io
            .get_mut()
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .await?;
        let mut read = 0u64;
        loop {
            let line = self.line().await?;
            read += line.len() as u64;
            if line.starts_with(tag.as_bytes()) && line.get(tag.len()) == Some(&b' ') {
                return if line[tag.len() + 1..].starts_with(b"OK") {
                    Ok(read)
                } else {
                    Err(protocol("answer", &line))
                };
            }
            if let Some(n) = literal(&line) {
                read +=
                    tokio::io::copy(&mut (&mut self.io).take(n), &mut tokio::io::sink()).await?;
            }
        }
    }

    /// `LOGIN user password`.
    ///
    /// # Errors
    /// As [`Session::command`].
    pub async fn login(&mut self, user: &str, password: &str) -> io::Result<()> {
        self.command(&format!("LOGIN \"{user}\" \"{password}\""))
            .await
            .map(drop)
    }

    /// Ends the connection with a reset (no `TIME_WAIT` left behind).
    pub fn reset(self) {
        let (tcp, _) = self.io.into_inner().into_inner();
        let _ = tcp.set_zero_linger();
    }
}

/// What a timed run did.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    /// Operations that completed.
    pub ok: u64,
    /// Operations that failed.
    pub failed: u64,
    /// How long the run took.
    pub elapsed: Duration,
}

impl Run {
    /// Completed operations per second.
    #[must_use]
    pub fn rate(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let ok = self.ok as f64;
        ok / self.elapsed.as_secs_f64()
    }
}

/// Runs `op` in `concurrency` loops for `duration`.
pub async fn timed<F, Fut>(concurrency: usize, duration: Duration, op: F) -> Run
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = io::Result<()>> + Send,
{
    let op = Arc::new(op);
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut loops = Vec::new();
    for _ in 0..concurrency {
        let (op, ok, failed) = (Arc::clone(&op), Arc::clone(&ok), Arc::clone(&failed));
        loops.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                match op().await {
                    Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    for l in loops {
        let _ = l.await;
    }
    Run {
        ok: ok.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        elapsed: start.elapsed(),
    }
}

/// A full handshake and the greeting, then a reset.
///
/// # Errors
/// As [`Target::connect`].
pub async fn handshake(target: &Target) -> io::Result<()> {
    target.connect().await.map(Session::reset)
}

/// Handshake, LOGIN, LOGOUT.
///
/// # Errors
/// As [`Session::command`].
pub async fn login_logout(target: &Target, user: &str, password: &str) -> io::Result<()> {
    let mut s = target.connect().await?;
    s.login(user, password).await?;
    s.command("LOGOUT").await?;
    s.reset();
    Ok(())
}

/// Opens `n` connections (`parallel` at a time), each logged in as
/// `login` when given, and returns them open.
///
/// # Errors
/// The first connection that fails.
pub async fn hold(
    target: &Target,
    n: usize,
    parallel: usize,
    login: Option<(&str, &str)>,
) -> io::Result<Vec<Session>> {
    let login = login.map(|(u, p)| (u.to_owned(), p.to_owned()));
    let mut held = Vec::with_capacity(n);
    let mut pending = tokio::task::JoinSet::new();
    let mut started = 0;
    while held.len() < n {
        while started < n && pending.len() < parallel {
            let (target, login) = (target.clone(), login.clone());
            pending.spawn(async move {
                let mut s = target.connect().await?;
                if let Some((u, p)) = login {
                    s.login(&u, &p).await?;
                }
                io::Result::Ok(s)
            });
            started += 1;
        }
        match pending.join_next().await {
            Some(Ok(Ok(s))) => held.push(s),
            Some(Ok(Err(e))) => return Err(e),
            Some(Err(e)) => return Err(io::Error::other(e)),
            None => break,
        }
    }
    Ok(held)
}

#[cfg(test)]
mod tests {
    use super::literal;

    #[test]
    fn literals_are_found_at_the_end_of_a_line() {
        assert_eq!(literal(b"* 1 FETCH (BODY[] {1234}\r\n"), Some(1234));
        assert_eq!(literal(b"a LOGIN {5+}\r\n"), Some(5));
        assert_eq!(literal(b"* OK {not}\r\n"), None);
        assert_eq!(literal(b"* OK done\r\n"), None);
        assert_eq!(literal(b"{3}"), None);
    }
}
