//! The client side: `maytls`/`musttls`, trust roots, host names, client
//! certificates, against our server and against `openssl s_server`.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Ca, Kind, Leaf, TestServer, write};
use portcullis_tlsconf::{
    ClientAction, ClientAuth, ClientAuthMode, ClientSettings, Error, MemorySource, ServerSettings,
    TlsClient, TlsRequirement, TlsServer,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[test]
fn maytls_and_musttls() {
    let ca = Ca::new("Client Side Root");
    let source = MemorySource::new().with_server_auth_root(ca.cert_der.clone());
    let may = TlsClient::new(&source, &ClientSettings::new(TlsRequirement::May)).unwrap();
    assert_eq!(may.decide(true).unwrap(), ClientAction::Upgrade);
    assert_eq!(may.decide(false).unwrap(), ClientAction::Plain);
    let must = TlsClient::new(&source, &ClientSettings::new(TlsRequirement::Must)).unwrap();
    assert_eq!(must.decide(true).unwrap(), ClientAction::Upgrade);
    assert!(
        must.decide(false)
            .unwrap_err()
            .to_string()
            .contains("musttls")
    );
    // No CA trusted for server authentication: nothing could be verified.
    let e = TlsClient::new(
        &MemorySource::new(),
        &ClientSettings::new(TlsRequirement::May),
    )
    .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e}");
}

async fn talk(
    client: &TlsClient,
    addr: std::net::SocketAddr,
    host: &str,
) -> std::io::Result<Vec<u8>> {
    let tcp = TcpStream::connect(addr).await?;
    let mut tls = client.connect(host, tcp).await?;
    tls.write_all(b"GET / HTTP/1.0\r\n\r\n").await?;
    let mut body = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut body)).await??;
    Ok(body)
}

#[tokio::test(flavor = "multi_thread")]
async fn verifies_chain_and_host_name_and_presents_a_client_certificate() {
    let ca = Ca::new("Client Side Root");
    let rogue = Ca::new("Rogue Root");
    let server_cert =
        ca.issue(Leaf::server("relay", Kind::Rsa).names(&["relay.example.test", "localhost"]));
    let alice = ca.issue(Leaf::client("alice@example.com"));
    let server_source = MemorySource::new()
        .with_credential("relay".parse().unwrap(), server_cert.credential())
        .with_client_auth_root(ca.cert_der.clone());
    let mut s = ServerSettings::new(vec!["relay".parse().unwrap()]);
    s.client_auth = ClientAuth::default();
    s.client_auth.mode = ClientAuthMode::Required;
    let mut srv = TestServer::start(Arc::new(
        TlsServer::new(Arc::new(server_source), s).unwrap(),
    ))
    .await;

    let source = MemorySource::new()
        .with_server_auth_root(ca.cert_der.clone())
        .with_credential("me".parse().unwrap(), alice.credential());
    let mut settings = ClientSettings::new(TlsRequirement::Must);
    settings.client_certificate = Some("me".parse().unwrap());
    let client = TlsClient::new(&source, &settings).unwrap();

    // Right name, trusted chain, client certificate presented.
    assert!(
        talk(&client, srv.addr, "relay.example.test")
            .await
            .unwrap()
            .ends_with(b"ok\n")
    );
    let seen = srv.next().await.result.unwrap();
    assert_eq!(seen.client.unwrap().end_entity(), alice.cert_der.as_ref());

    // A name the certificate does not carry.
    let e = talk(&client, srv.addr, "mx.other.test").await.unwrap_err();
    assert!(e.to_string().contains("not valid for name"), "{e}");
    srv.next().await.result.unwrap_err();

    // A server from a CA not trusted for server authentication.
    let rogue_source = MemorySource::new().with_server_auth_root(rogue.cert_der.clone());
    let untrusting =
        TlsClient::new(&rogue_source, &ClientSettings::new(TlsRequirement::Must)).unwrap();
    let e = talk(&untrusting, srv.addr, "relay.example.test")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("UnknownIssuer"), "{e}");
    srv.next().await.result.unwrap_err();

    // Without a client certificate the server (requiring one) refuses.
    let anon = TlsClient::new(&source, &ClientSettings::new(TlsRequirement::Must)).unwrap();
    assert!(talk(&anon, srv.addr, "relay.example.test").await.is_err());
    srv.next().await.result.unwrap_err();
}

#[tokio::test(flavor = "multi_thread")]
async fn against_openssl_s_server() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("s_server Root");
    let server_cert = ca.issue(Leaf::server("s_server", Kind::Ecdsa));
    let alice = ca.issue(Leaf::client("alice@example.com"));
    let cert = write(dir.path(), "server.crt", &server_cert.cert_pem);
    let key = write(dir.path(), "server.key", &server_cert.key_pem);
    let ca_path = write(dir.path(), "ca.pem", &ca.cert_pem);
    let source = MemorySource::new()
        .with_server_auth_root(ca.cert_der.clone())
        .with_credential("me".parse().unwrap(), alice.credential());
    let mut settings = ClientSettings::new(TlsRequirement::Must);
    settings.client_certificate = Some("me".parse().unwrap());
    let client = TlsClient::new(&source, &settings).unwrap();

    for (flag, name, ok) in [
        ("-tls1_3", "localhost", true),
        ("-tls1_2", "localhost", true),
        ("-tls1_3", "wrong.test", false),
    ] {
        // A free port for s_server (bound and released; loopback only).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = tokio::process::Command::new("timeout")
            .args(["120", "openssl", "s_server", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .args([
                "-naccept",
                "1",
                "-www",
                flag,
                "-Verify",
                "1",
                "-verify_return_error",
            ])
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .arg("-CAfile")
            .arg(&ca_path)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut tries = 0;
        let tcp = loop {
            match TcpStream::connect(addr).await {
                Ok(t) => break t,
                // A hang guard of 60 s, not a speed check; an s_server
                // that exited (its port taken meanwhile) ends it at once.
                Err(_) if tries < 1200 && child.try_wait().unwrap().is_none() => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("s_server did not start: {e}"),
            }
        };
        let result = async {
            let mut tls = client.connect(name, tcp).await?;
            tls.write_all(b"GET / HTTP/1.0\r\n\r\n").await?;
            let mut body = Vec::new();
            tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut body)).await??;
            Ok::<_, std::io::Error>(String::from_utf8_lossy(&body).into_owned())
        }
        .await;
        let _ = child.kill().await;
        if ok {
            let page = result.unwrap();
            // s_server -www reports the session, including our certificate.
            assert!(page.contains("HTTP/1.0 200 ok"), "{page}");
            assert!(page.contains("Client certificate"), "{page}");
            assert!(page.contains("alice@example.com"), "{page}");
        } else {
            assert!(
                result
                    .unwrap_err()
                    .to_string()
                    .contains("not valid for name")
            );
        }
    }
}
