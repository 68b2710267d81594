//! STARTTLS through a tiny loopback SMTP-like server built on the guard:
//! plaintext pipelined after STARTTLS (CVE-2011-0411) is never answered
//! inside TLS; `openssl s_client -starttls smtp` upgrades normally.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::{Ca, Kind, Leaf, rust_client_config, s_client_with, write};
use portcullis_tlsconf::pki_types::ServerName;
use portcullis_tlsconf::starttls::{PipelinedInput, StartTls, StartTlsRefusal};
use portcullis_tlsconf::{MemorySource, ServerSettings, TlsServer, tokio_rustls};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// `guarded: false` is the vulnerable server of CVE-2011-0411, kept to show
/// that the test detects the injection.
async fn serve(tls: Arc<TlsServer>, tcp: TcpStream, policy: PipelinedInput, guarded: bool) {
    let mut io: Box<dyn Io> = Box::new(tcp);
    let mut guard = StartTls::new(policy);
    let mut authenticated = false;
    let mut buf: Vec<u8> = Vec::new();
    let mut plain = Some(());
    io.write_all(b"220 test ESMTP\r\n").await.unwrap();
    loop {
        let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
            let mut chunk = [0u8; 1024];
            match tokio::time::timeout(Duration::from_secs(10), io.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => return,
            }
            continue;
        };
        let line: Vec<u8> = buf.drain(..end + 2).collect();
        let cmd = String::from_utf8_lossy(&line[..end]).to_ascii_uppercase();
        let reply: &[u8] = match cmd.as_str() {
            c if c.starts_with("EHLO") => b"250-test\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n",
            "NOOP" => b"250 2.0.0 NOOP answered\r\n",
            c if c.starts_with("AUTH") => {
                authenticated = true;
                b"235 2.7.0 ok\r\n"
            }
            "QUIT" => {
                io.write_all(b"221 2.0.0 bye\r\n").await.unwrap();
                let _ = io.shutdown().await;
                return;
            }
            "STARTTLS" => {
                let decision = if guarded {
                    guard.begin(authenticated, &mut buf)
                } else if plain.is_some() {
                    // The vulnerable server: keeps `buf` as it is.
                    guard.begin(authenticated, &mut Vec::new())
                } else {
                    Err(StartTlsRefusal::AlreadyActive)
                };
                match decision {
                    Ok(upgrade) => {
                        io.write_all(b"220 2.0.0 ready to start TLS\r\n")
                            .await
                            .unwrap();
                        let Ok(accepted) = tls.accept_starttls(io, &upgrade).await else {
                            return;
                        };
                        io = Box::new(accepted.stream);
                        guard.established(upgrade);
                        plain = None;
                        continue;
                    }
                    Err(StartTlsRefusal::PipelinedInput { .. }) => {
                        io.write_all(b"554 5.5.1 command pipelined after STARTTLS\r\n")
                            .await
                            .unwrap();
                        return;
                    }
                    Err(StartTlsRefusal::AlreadyActive) => b"454 4.7.0 TLS already active\r\n",
                    Err(StartTlsRefusal::AfterAuthentication) => {
                        b"503 5.5.1 already authenticated\r\n"
                    }
                    Err(_) => b"454 4.7.0 TLS not available\r\n",
                }
            }
            _ => b"500 5.5.2 unknown\r\n",
        };
        io.write_all(reply).await.unwrap();
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    ca: Ca,
    ca_path: std::path::PathBuf,
    tls: Arc<TlsServer>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("StartTLS Root");
    let ca_path = write(dir.path(), "ca.pem", &ca.cert_pem);
    let server = ca.issue(Leaf::server("smtp", Kind::Ecdsa));
    let source = MemorySource::new().with_credential("smtp".parse().unwrap(), server.credential());
    let tls = Arc::new(
        TlsServer::new(
            Arc::new(source),
            ServerSettings::new(vec!["smtp".parse().unwrap()]),
        )
        .unwrap(),
    );
    Fixture {
        _dir: dir,
        ca,
        ca_path,
        tls,
    }
}

async fn listen(f: &Fixture, policy: PipelinedInput, guarded: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tls = Arc::clone(&f.tls);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(serve(Arc::clone(&tls), tcp, policy, guarded));
        }
    });
    addr
}

/// Reads one CRLF line byte by byte (so no TLS byte is consumed).
async fn read_line(tcp: &mut TcpStream) -> String {
    let mut line = Vec::new();
    while !line.ends_with(b"\r\n") {
        let b = tokio::time::timeout(Duration::from_secs(10), tcp.read_u8())
            .await
            .unwrap()
            .unwrap();
        line.push(b);
    }
    String::from_utf8(line).unwrap()
}

/// The attack: `STARTTLS` and a command in one packet, then TLS, then
/// QUIT inside TLS. Returns everything the server said inside TLS.
async fn inject(f: &Fixture, addr: SocketAddr) -> Result<String, String> {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    assert!(read_line(&mut tcp).await.starts_with("220 "));
    tcp.write_all(b"STARTTLS\r\nNOOP\r\n").await.unwrap();
    let reply = read_line(&mut tcp).await;
    if !reply.starts_with("220 ") {
        return Err(reply);
    }
    let connector = tokio_rustls::TlsConnector::from(rust_client_config(&f.ca.cert_der));
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(b"QUIT\r\n").await.unwrap();
    let mut inside = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut inside))
        .await
        .unwrap();
    Ok(String::from_utf8(inside).unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn pipelined_plaintext_is_never_answered_inside_tls() {
    let f = fixture();
    // Guarded, discarding: the only reply inside TLS is QUIT's.
    let addr = listen(&f, PipelinedInput::Discard, true).await;
    assert_eq!(inject(&f, addr).await.unwrap(), "221 2.0.0 bye\r\n");

    // Guarded, refusing: STARTTLS itself is refused, in plaintext.
    let addr = listen(&f, PipelinedInput::Refuse, true).await;
    let refused = inject(&f, addr).await.unwrap_err();
    assert!(refused.starts_with("554 5.5.1"), "{refused}");

    // Control: without the guard the injected NOOP is answered inside TLS,
    // so the assertion above can fail.
    let addr = listen(&f, PipelinedInput::Discard, false).await;
    assert_eq!(
        inject(&f, addr).await.unwrap(),
        "250 2.0.0 NOOP answered\r\n221 2.0.0 bye\r\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn second_starttls_and_after_auth_are_refused() {
    let f = fixture();
    let addr = listen(&f, PipelinedInput::Discard, true).await;

    // After AUTH (in plaintext, as a test server allows): refused.
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    read_line(&mut tcp).await;
    tcp.write_all(b"AUTH PLAIN AGFAAGI=\r\n").await.unwrap();
    assert!(read_line(&mut tcp).await.starts_with("235"));
    tcp.write_all(b"STARTTLS\r\n").await.unwrap();
    assert!(read_line(&mut tcp).await.starts_with("503 "));

    // A second STARTTLS inside TLS: refused.
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    read_line(&mut tcp).await;
    tcp.write_all(b"STARTTLS\r\n").await.unwrap();
    assert!(read_line(&mut tcp).await.starts_with("220 "));
    let connector = tokio_rustls::TlsConnector::from(rust_client_config(&f.ca.cert_der));
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(b"STARTTLS\r\nQUIT\r\n").await.unwrap();
    let mut inside = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut inside))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        String::from_utf8(inside).unwrap(),
        "454 4.7.0 TLS already active\r\n221 2.0.0 bye\r\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn openssl_starttls_smtp_upgrades() {
    let f = fixture();
    let addr = listen(&f, PipelinedInput::Discard, true).await;
    let run = s_client_with(addr, &f.ca_path, &["-starttls", "smtp"], false).await;
    assert!(run.ok, "{}", run.out);
    assert_eq!(
        run.field("Protocol version:").as_deref(),
        Some("TLSv1.3"),
        "{}",
        run.out
    );
}
