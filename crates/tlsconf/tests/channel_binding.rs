//! Channel-binding facts (RFC 5929, RFC 9266): TLS 1.2 without the
//! extended master secret is refused; each connection records the
//! certificate its resolver chose, so the SASL `tls-server-end-point` the
//! server computes is the one the client computes, with an RSA+ECDSA pair
//! and with SNI.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{Ca, Issued, Kind, Leaf, TestServer, s_client, write};
use portcullis_tlsconf::pki_types::{CertificateDer, ServerName};
use portcullis_tlsconf::rustls::crypto::WebPkiSupportedAlgorithms;
use portcullis_tlsconf::rustls::{
    self, ClientConfig, RootCertStore, SignatureScheme, SupportedProtocolVersion,
};
use portcullis_tlsconf::sasl::{self, TlsState};
use portcullis_tlsconf::{MemorySource, ServerSettings, SniEntry, TlsServer, tokio_rustls};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// `openssl s_client` with a configuration file that turns the extended
/// master secret off (OpenSSL 3 has no command-line switch for it).
async fn s_client_without_ems(dir: &Path, addr: SocketAddr, ca: &Path) -> common::ClientRun {
    let conf = write(
        dir,
        "no-ems.cnf",
        "openssl_conf = openssl_init\n[openssl_init]\nssl_conf = ssl_sect\n\
         [ssl_sect]\nsystem_default = system_default_sect\n\
         [system_default_sect]\nOptions = -ExtendedMasterSecret\n",
    );
    let out = tokio::process::Command::new("timeout")
        .args(["15", "openssl", "s_client", "-connect"])
        .arg(addr.to_string())
        .args(["-brief", "-tls1_2", "-servername", "localhost", "-CAfile"])
        .arg(ca)
        .env("OPENSSL_CONF", conf)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    common::ClientRun {
        ok: out.status.success(),
        out: text,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tls12_without_extended_master_secret_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("EMS Root");
    let ca_path = write(dir.path(), "ca.pem", &ca.cert_pem);
    let leaf = ca.issue(Leaf::server("ems", Kind::Ecdsa));
    let source = MemorySource::new().with_credential("ems".parse().unwrap(), leaf.credential());
    let tls = Arc::new(
        TlsServer::new(
            Arc::new(source),
            ServerSettings::new(vec!["ems".parse().unwrap()]),
        )
        .unwrap(),
    );
    assert!(tls.config().require_ems);
    let mut srv = TestServer::start(Arc::clone(&tls)).await;

    // A TLS 1.2 client without EMS: refused.
    let run = s_client_without_ems(dir.path(), srv.addr, &ca_path).await;
    assert!(!run.ok, "{}", run.out);
    assert!(srv.next().await.result.is_err());
    // The same client with EMS: served.
    let run = s_client(srv.addr, &ca_path, &["-tls1_2"]).await;
    assert!(run.ok, "{}", run.out);
    srv.next().await.result.unwrap();

    // Control: the same configuration without require_ems serves the
    // no-EMS client, so the refusal above is the EMS check (and the
    // client really left EMS out).
    let mut lenient = rustls::ServerConfig::clone(&tls.config());
    lenient.require_ems = false;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(lenient));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut stream = acceptor.accept(tcp).await.unwrap();
        stream.shutdown().await.unwrap();
    });
    let run = s_client_without_ems(dir.path(), addr, &ca_path).await;
    assert!(run.ok, "{}", run.out);
    task.await.unwrap();
}

/// A rustls client offering only the signature schemes `keep` allows.
fn client(
    ca: &CertificateDer<'static>,
    keep: fn(SignatureScheme) -> bool,
    version: &'static SupportedProtocolVersion,
) -> Arc<ClientConfig> {
    let mut provider = rustls::crypto::ring::default_provider();
    let algs = provider.signature_verification_algorithms;
    let mapping: Vec<_> = algs
        .mapping
        .iter()
        .filter(|(s, _)| keep(*s))
        .cloned()
        .collect();
    provider.signature_verification_algorithms = WebPkiSupportedAlgorithms {
        all: algs.all,
        mapping: Box::leak(mapping.into_boxed_slice()),
    };
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    Arc::new(
        ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[version])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

fn ecdsa_only(s: SignatureScheme) -> bool {
    matches!(
        s,
        SignatureScheme::ECDSA_NISTP256_SHA256 | SignatureScheme::ECDSA_NISTP384_SHA384
    )
}

fn rsa_only(s: SignatureScheme) -> bool {
    matches!(
        s,
        SignatureScheme::RSA_PSS_SHA256
            | SignatureScheme::RSA_PSS_SHA384
            | SignatureScheme::RSA_PSS_SHA512
            | SignatureScheme::RSA_PKCS1_SHA256
            | SignatureScheme::RSA_PKCS1_SHA384
            | SignatureScheme::RSA_PKCS1_SHA512
    )
}

/// What the server computed for one connection.
struct ServerSide {
    chosen: Option<CertificateDer<'static>>,
    resumed: bool,
    state: TlsState,
}

/// Accepts connections with `accept_with_info` and reports the SASL state.
async fn serve(tls: Arc<TlsServer>) -> (SocketAddr, mpsc::UnboundedReceiver<ServerSide>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let tls = Arc::clone(&tls);
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut accepted = tls.accept_with_info(tcp).await.unwrap();
                let side = ServerSide {
                    chosen: accepted.info.server_certificate().cloned(),
                    resumed: accepted.info.resumed(),
                    state: accepted.sasl_tls_state().unwrap(),
                };
                tx.send(side).unwrap();
                accepted.stream.write_all(b"ok\n").await.unwrap();
                accepted.stream.shutdown().await.unwrap();
            });
        }
    });
    (addr, rx)
}

/// Connects, reads the server's line, and returns the certificate the
/// client saw with the client's own SASL state.
async fn connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    name: &'static str,
) -> (CertificateDer<'static>, TlsState) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(config);
    let mut tls = connector
        .connect(ServerName::try_from(name).unwrap(), tcp)
        .await
        .unwrap();
    let mut line = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), tls.read_to_end(&mut line))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(line, b"ok\n");
    let (_, conn) = tls.get_ref();
    let leaf = conn.peer_certificates().unwrap()[0].clone().into_owned();
    let state = TlsState::from_rustls(conn, true, Some(leaf.as_ref())).unwrap();
    (leaf, state)
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_server_end_point_uses_the_certificate_actually_sent() {
    let ca = Ca::new("Channel Binding Root");
    let other_names = |l: Leaf<'static>| l.names(&["other.example.net"]);
    let certs: [(&str, Issued); 4] = [
        ("ec", ca.issue(Leaf::server("default-ec", Kind::Ecdsa))),
        ("rsa", ca.issue(Leaf::server("default-rsa", Kind::Rsa))),
        (
            "other-ec",
            ca.issue(other_names(Leaf::server("other-ec", Kind::Ecdsa))),
        ),
        (
            "other-rsa",
            ca.issue(other_names(Leaf::server("other-rsa", Kind::Rsa))),
        ),
    ];
    let mut source = MemorySource::new();
    for (nick, issued) in &certs {
        source = source.with_credential(nick.parse().unwrap(), issued.credential());
    }
    let mut settings = ServerSettings::new(vec!["ec".parse().unwrap(), "rsa".parse().unwrap()]);
    settings.sni = vec![SniEntry::new(
        vec!["other.example.net".into()],
        vec!["other-ec".parse().unwrap(), "other-rsa".parse().unwrap()],
    )];
    let tls = Arc::new(TlsServer::new(Arc::new(source), settings).unwrap());
    let (addr, mut seen) = serve(Arc::clone(&tls)).await;
    let der = |i: usize| certs[i].1.cert_der.clone();

    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        for (keep, name, expected) in [
            (ecdsa_only as fn(SignatureScheme) -> bool, "localhost", 0),
            (rsa_only, "localhost", 1),
            (ecdsa_only, "other.example.net", 2),
            (rsa_only, "other.example.net", 3),
        ] {
            let what = format!("{version:?} {name} cert #{expected}");
            let (leaf, client_state) =
                connect(addr, client(&ca.cert_der, keep, version), name).await;
            let server = seen.recv().await.unwrap();
            assert_eq!(
                leaf,
                der(expected),
                "{what}: the client got another certificate"
            );
            assert!(!server.resumed, "{what}");
            assert_eq!(server.chosen.as_ref(), Some(&leaf), "{what}");
            let end_point = sasl::tls_server_end_point(leaf.as_ref()).unwrap();
            assert_eq!(
                server.state.tls_server_end_point.as_deref(),
                Some(end_point.as_slice()),
                "{what}"
            );
            assert_eq!(
                server.state.tls_server_end_point, client_state.tls_server_end_point,
                "{what}"
            );
            assert_eq!(
                server.state.tls_exporter.as_deref(),
                client_state.tls_exporter.as_deref(),
                "{what}"
            );
            assert!(server.state.tls_exporter.is_some(), "{what}");
            if version.version == rustls::ProtocolVersion::TLSv1_2 {
                assert!(server.state.extended_master_secret, "{what}");
            }
        }
    }
    // The four certificates hash differently: hashing the first
    // configured certificate would have been wrong for three of them.
    let hashes: std::collections::BTreeSet<Vec<u8>> = (0..4)
        .map(|i| sasl::tls_server_end_point(der(i).as_ref()).unwrap())
        .collect();
    assert_eq!(hashes.len(), 4);

    // A resumed TLS 1.3 session sent no certificate: no
    // tls-server-end-point, tls-exporter still there.
    let config = client(&ca.cert_der, ecdsa_only, &rustls::version::TLS13);
    connect(addr, Arc::clone(&config), "localhost").await;
    assert!(!seen.recv().await.unwrap().resumed);
    connect(addr, config, "localhost").await;
    let resumed = seen.recv().await.unwrap();
    assert!(resumed.resumed);
    assert!(resumed.chosen.is_none());
    assert!(resumed.state.tls_server_end_point.is_none());
    assert!(resumed.state.tls_exporter.is_some());
}
