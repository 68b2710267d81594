//! The daemons' connection type: `MaybeTls` starts plain, upgrades only
//! with the STARTTLS guard's proof, and bytes the guard discarded never
//! reach a reader after the upgrade; a stalled handshake ends by the
//! handshake timeout.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::ErrorKind;
use std::sync::Arc;
use std::time::Duration;

use common::{Ca, Kind, Leaf, rust_client_config};
use portcullis_tlsconf::pki_types::ServerName;
use portcullis_tlsconf::starttls::{PendingInput, PipelinedInput, StartTls};
use portcullis_tlsconf::{MaybeTls, MemorySource, ServerSettings, TlsServer, tokio_rustls};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

struct Fixture {
    ca: Ca,
    tls: Arc<TlsServer>,
}

fn fixture(timeout: Duration) -> Fixture {
    let ca = Ca::new("MaybeTls Root");
    let leaf = ca.issue(Leaf::server("imap", Kind::Ecdsa));
    let source = MemorySource::new().with_credential("imap".parse().unwrap(), leaf.credential());
    let mut settings = ServerSettings::new(vec!["imap".parse().unwrap()]);
    settings.handshake_timeout = timeout;
    let tls = Arc::new(TlsServer::new(Arc::new(source), settings).unwrap());
    Fixture { ca, tls }
}

/// Reads from `buf`, then from `io`, up to and including the next CRLF:
/// how a daemon reads its next command.
async fn next_line(io: &mut MaybeTls<TcpStream>, buf: &mut Vec<u8>) -> Vec<u8> {
    loop {
        if let Some(end) = buf.windows(2).position(|w| w == b"\r\n") {
            return buf.drain(..end + 2).collect();
        }
        let mut chunk = [0u8; 512];
        let n = tokio::time::timeout(Duration::from_secs(20), io.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A server that reads `STARTTLS` with an injected line behind it,
/// upgrades, and returns the first line it reads afterwards. `discard`
/// false is a server that does not hand its buffer to the guard.
async fn starttls_server(tls: Arc<TlsServer>, listener: TcpListener, discard: bool) -> Vec<u8> {
    let (tcp, _) = listener.accept().await.unwrap();
    let mut io = MaybeTls::Plain(tcp);
    let mut buf = Vec::new();
    io.write_all(b"* OK ready\r\n").await.unwrap();
    // Read until the pipelined line has arrived too, so the guard always
    // has something to discard.
    while !buf.ends_with(b"INJECTED\r\n") {
        let mut chunk = [0u8; 512];
        let n = io.read(&mut chunk).await.unwrap();
        assert!(n > 0);
        buf.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(next_line(&mut io, &mut buf).await, b"a STARTTLS\r\n");
    assert!(!io.is_tls());
    let mut guard = StartTls::new(PipelinedInput::Discard);
    let proof = if discard {
        guard.begin(false, &mut buf).unwrap()
    } else {
        guard.begin(false, &mut Vec::new()).unwrap()
    };
    if discard {
        assert_eq!(proof.discarded(), b"INJECTED\r\n".len());
        assert_eq!(buf.pending(), 0);
    }
    io.write_all(b"a OK begin TLS\r\n").await.unwrap();
    let accepted = io.start_tls(&tls, &proof).await.unwrap();
    guard.established(proof);
    let mut io = MaybeTls::from(accepted);
    assert!(io.is_tls());
    assert!(io.tls_connection().is_some());
    let line = next_line(&mut io, &mut buf).await;
    io.write_all(b"b OK\r\n").await.unwrap();
    io.shutdown().await.unwrap();

    // A second upgrade of a TLS stream is refused even with a proof.
    let mut other = StartTls::new(PipelinedInput::Discard);
    let proof = other.begin(false, &mut Vec::new()).unwrap();
    let e = io.start_tls(&tls, &proof).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    line
}

async fn starttls_client(f: &Fixture, addr: std::net::SocketAddr) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let mut greeting = [0u8; 12];
    tcp.read_exact(&mut greeting).await.unwrap();
    assert_eq!(&greeting, b"* OK ready\r\n");
    tcp.write_all(b"a STARTTLS\r\nINJECTED\r\n").await.unwrap();
    let mut reply = [0u8; 16];
    tcp.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"a OK begin TLS\r\n");
    let connector = tokio_rustls::TlsConnector::from(rust_client_config(&f.ca.cert_der));
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(b"b INSIDE\r\n").await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), tls.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rest, b"b OK\r\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn discarded_plaintext_never_reaches_the_reader_after_starttls() {
    let f = fixture(Duration::from_secs(20));
    for (discard, expected) in [
        (true, &b"b INSIDE\r\n"[..]),
        // Control: a server that keeps its buffer reads the injected
        // plaintext as if it came through TLS, so the check above can fail.
        (false, &b"INJECTED\r\n"[..]),
    ] {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(starttls_server(Arc::clone(&f.tls), listener, discard));
        starttls_client(&f, addr).await;
        assert_eq!(server.await.unwrap(), expected, "discard: {discard}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_handshake_ends_by_the_timeout() {
    // Short timeouts: the clients below never finish, so only the timeout
    // can end these handshakes.
    let f = fixture(Duration::from_millis(200));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();

    // Silent after connecting: the settings' timeout.
    let silent = TcpStream::connect(addr).await.unwrap();
    let (tcp, _) = listener.accept().await.unwrap();
    let e = f.tls.accept(tcp).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    drop(silent);

    // Half a ClientHello record header, then nothing: an explicit timeout.
    let mut partial = TcpStream::connect(addr).await.unwrap();
    partial.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    let (tcp, _) = listener.accept().await.unwrap();
    let e = f
        .tls
        .accept_with_timeout(tcp, Duration::from_millis(100))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");

    // After STARTTLS, the same.
    let _stalled = TcpStream::connect(addr).await.unwrap();
    let (tcp, _) = listener.accept().await.unwrap();
    let mut guard = StartTls::new(PipelinedInput::Discard);
    let proof = guard.begin(false, &mut Vec::new()).unwrap();
    let e = MaybeTls::Plain(tcp)
        .start_tls(&f.tls, &proof)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    guard.failed(proof);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_type_carries_outgoing_connections() {
    let f = fixture(Duration::from_secs(20));
    let mut srv = common::TestServer::start(Arc::clone(&f.tls)).await;
    let tcp = TcpStream::connect(srv.addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(rust_client_config(&f.ca.cert_der));
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let mut io: MaybeTls<TcpStream, tokio_rustls::client::TlsStream<TcpStream>> = tls.into();
    assert!(io.is_tls());
    assert!(io.tls_connection().unwrap().peer_certificates().is_some());
    assert!(io.transport().peer_addr().is_ok());
    io.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), io.read_to_end(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert!(reply.ends_with(b"ok\n"));
    srv.next().await.result.unwrap();

    // Plain, the same type.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let echo = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut b = [0u8; 5];
        tcp.read_exact(&mut b).await.unwrap();
        tcp.write_all(&b).await.unwrap();
    });
    let mut io: MaybeTls<TcpStream, tokio_rustls::client::TlsStream<TcpStream>> =
        MaybeTls::Plain(TcpStream::connect(addr).await.unwrap());
    assert!(!io.is_tls() && io.tls_connection().is_none());
    io.write_all(b"hello").await.unwrap();
    let mut b = [0u8; 5];
    io.read_exact(&mut b).await.unwrap();
    assert_eq!(&b, b"hello");
    echo.await.unwrap();
}
