//! Client certificates from `openssl s_client` and `curl`: none, valid,
//! wrong CA, expired, revoked by CRL, expired CRL; optional and required.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::{Ca, Issued, Kind, Leaf, TestServer, curl, now, s_client, write};
use portcullis_tlsconf::{
    ClientAuth, ClientAuthMode, MemorySource, Nickname, ServerSettings, TlsServer,
};

struct Pki {
    dir: tempfile::TempDir,
    server_ca: std::path::PathBuf,
    source: Arc<MemorySource>,
    client_ca: Ca,
    server: Issued,
    valid: Issued,
    expired: Issued,
    revoked: Issued,
    rogue: Issued,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server_ca = Ca::new("Server Root");
        let client_ca = Ca::new("Client Root");
        let rogue_ca = Ca::new("Rogue Root");
        let server = server_ca.issue(Leaf::server("server", Kind::Ecdsa));
        let valid = client_ca.issue(Leaf::client("alice@example.com"));
        let mut exp = Leaf::client("expired@example.com");
        exp.not_before = now() - time::Duration::days(30);
        exp.not_after = now() - time::Duration::days(1);
        let expired = client_ca.issue(exp);
        let revoked = client_ca.issue(Leaf::client("revoked@example.com"));
        let rogue = rogue_ca.issue(Leaf::client("mallory@example.com"));
        let source = MemorySource::new()
            .with_credential("server".parse().unwrap(), server.credential())
            .with_client_auth_root(client_ca.cert_der.clone());
        let server_ca = write(dir.path(), "server-ca.pem", &server_ca.cert_pem);
        Self {
            dir,
            server_ca,
            source: Arc::new(source),
            client_ca,
            server,
            valid,
            expired,
            revoked,
            rogue,
        }
    }

    fn files(&self, name: &str, who: &Issued) -> (String, String) {
        let c = write(self.dir.path(), &format!("{name}.crt"), &who.cert_pem);
        let k = write(self.dir.path(), &format!("{name}.key"), &who.key_pem);
        (c.display().to_string(), k.display().to_string())
    }

    async fn server(&self, auth: ClientAuth) -> TestServer {
        let mut s = ServerSettings::new(vec!["server".parse::<Nickname>().unwrap()]);
        s.client_auth = auth;
        TestServer::start(Arc::new(TlsServer::new(self.source.clone(), s).unwrap())).await
    }
}

/// Whether an error message says `what`, ignoring case and spaces
/// (rustls writes some reasons as prose, others as variant names).
fn says(err: &str, what: &str) -> bool {
    let norm = |s: &str| s.to_lowercase().replace([' ', '_'], "");
    norm(err).contains(&norm(what))
}

fn auth(mode: ClientAuthMode, crls: Vec<std::path::PathBuf>) -> ClientAuth {
    let mut a = ClientAuth::default();
    a.mode = mode;
    a.crls = crls;
    a
}

#[tokio::test(flavor = "multi_thread")]
async fn optional_client_certificates_with_crl() {
    let pki = Pki::new();
    let crl = write(
        pki.dir.path(),
        "client.crl",
        pki.client_ca.current_crl(&[&pki.revoked.serial]),
    );
    for version in ["-tls1_2", "-tls1_3"] {
        let mut srv = pki
            .server(auth(ClientAuthMode::Auto, vec![crl.clone()]))
            .await;

        // No certificate: the handshake succeeds, password login remains.
        let run = s_client(srv.addr, &pki.server_ca, &[version]).await;
        assert!(run.ok, "{version} none: {}", run.out);
        assert!(srv.next().await.result.unwrap().client.is_none());

        // Valid: the verified chain reaches the caller.
        let (c, k) = pki.files("valid", &pki.valid);
        let run = s_client(
            srv.addr,
            &pki.server_ca,
            &[version, "-cert", &c, "-key", &k],
        )
        .await;
        assert!(run.ok, "{version} valid: {}", run.out);
        let got = srv
            .next()
            .await
            .result
            .unwrap()
            .client
            .expect("client certificate");
        assert_eq!(got.end_entity(), pki.valid.cert_der.as_ref());

        // Refused: wrong CA, expired, revoked.
        for (name, who, server_says, client_says) in [
            ("rogue", &pki.rogue, "UnknownIssuer", "unknown ca"),
            (
                "expired",
                &pki.expired,
                "certificate expired",
                "certificate expired",
            ),
            ("revoked", &pki.revoked, "Revoked", "certificate revoked"),
        ] {
            let (c, k) = pki.files(name, who);
            let run = s_client(
                srv.addr,
                &pki.server_ca,
                &[version, "-cert", &c, "-key", &k],
            )
            .await;
            let err = srv.next().await.result.unwrap_err();
            assert!(
                says(&err, server_says),
                "{version} {name}: server said {err}"
            );
            assert!(
                run.out.contains(client_says),
                "{version} {name}: client said {}",
                run.out
            );
            assert!(
                !run.out.contains("HTTP/1.1 200"),
                "{version} {name}: served anyway"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn required_client_certificates() {
    let pki = Pki::new();
    let mut srv = pki.server(auth(ClientAuthMode::Required, vec![])).await;
    let run = s_client(srv.addr, &pki.server_ca, &[]).await;
    let err = srv.next().await.result.unwrap_err();
    assert!(says(&err, "peer sent no certificates"), "{err}");
    assert!(run.out.contains("certificate required"), "{}", run.out);

    let (c, k) = pki.files("valid", &pki.valid);
    let run = curl(srv.addr, &pki.server_ca, &["--cert", &c, "--key", &k]).await;
    assert!(run.ok, "{}", run.out);
    assert_eq!(
        srv.next()
            .await
            .result
            .unwrap()
            .client
            .unwrap()
            .end_entity(),
        pki.valid.cert_der.as_ref()
    );
    let run = curl(srv.addr, &pki.server_ca, &[]).await;
    assert!(!run.ok, "{}", run.out);
    srv.next().await.result.unwrap_err();

    // Required without any CA trusted for client authentication: an error.
    let source = Arc::new(
        MemorySource::new().with_credential("server".parse().unwrap(), pki.valid.credential()),
    );
    let mut s = ServerSettings::new(vec!["server".parse().unwrap()]);
    s.client_auth = auth(ClientAuthMode::Required, vec![]);
    let e = TlsServer::new(source, s).unwrap_err();
    assert!(
        e.to_string()
            .contains("no CA is trusted for client authentication"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn not_requested_without_client_ca_or_when_off() {
    let pki = Pki::new();
    let (c, k) = pki.files("valid", &pki.valid);
    // Off: a client offering a certificate is not asked for it.
    let mut srv = pki.server(auth(ClientAuthMode::Off, vec![])).await;
    let run = s_client(srv.addr, &pki.server_ca, &["-cert", &c, "-key", &k]).await;
    assert!(run.ok, "{}", run.out);
    assert!(srv.next().await.result.unwrap().client.is_none());
    // Auto with no CA flagged T: the same.
    let source = Arc::new(
        MemorySource::new().with_credential("server".parse().unwrap(), pki.server.credential()),
    );
    let tls = TlsServer::new(source, ServerSettings::new(vec!["server".parse().unwrap()])).unwrap();
    let mut srv = TestServer::start(Arc::new(tls)).await;
    let run = s_client(srv.addr, &pki.server_ca, &["-cert", &c, "-key", &k]).await;
    assert!(run.ok, "{}", run.out);
    assert!(srv.next().await.result.unwrap().client.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn crl_expiry_and_directories() {
    let pki = Pki::new();
    let (c, k) = pki.files("valid", &pki.valid);
    // A CRL past its nextUpdate: even a valid certificate is refused.
    let stale = write(
        pki.dir.path(),
        "stale.crl",
        pki.client_ca.crl(
            &[],
            now() - time::Duration::days(10),
            now() - time::Duration::days(1),
        ),
    );
    let mut srv = pki.server(auth(ClientAuthMode::Auto, vec![stale])).await;
    let run = s_client(srv.addr, &pki.server_ca, &["-cert", &c, "-key", &k]).await;
    let err = srv.next().await.result.unwrap_err();
    assert!(says(&err, "certificate revocation list expired"), "{err}");
    assert!(!run.out.contains("HTTP/1.1 200"), "{}", run.out);

    // A directory of CRLs (PEM and DER).
    let crl_dir = pki.dir.path().join("crls");
    std::fs::create_dir(&crl_dir).unwrap();
    let pem = pki.client_ca.current_crl(&[&pki.revoked.serial]);
    let der =
        portcullis_tlsconf::pki_types::CertificateRevocationListDer::from_pem_slice(pem.as_bytes())
            .unwrap();
    write(&crl_dir, "client.crl.der", der.as_ref());
    let mut srv = pki
        .server(auth(ClientAuthMode::Auto, vec![crl_dir.clone()]))
        .await;
    let run = s_client(srv.addr, &pki.server_ca, &["-cert", &c, "-key", &k]).await;
    assert!(run.ok, "{}", run.out);
    srv.next().await.result.unwrap().client.unwrap();
    let (c2, k2) = pki.files("revoked", &pki.revoked);
    s_client(srv.addr, &pki.server_ca, &["-cert", &c2, "-key", &k2]).await;
    let err = srv.next().await.result.unwrap_err();
    assert!(says(&err, "revoked"), "{err}");

    // A CA without a CRL while others have one: unknown status is refused
    // by default, accepted when allowed.
    let other_ca = Ca::new("Second Client Root");
    let other = other_ca.issue(Leaf::client("bob@example.com"));
    let source = Arc::new(
        MemorySource::new()
            .with_credential("server".parse().unwrap(), pki.server.credential())
            .with_client_auth_root(pki.client_ca.cert_der.clone())
            .with_client_auth_root(other_ca.cert_der.clone()),
    );
    let (c3, k3) = pki.files("other", &other);
    for allow in [false, true] {
        let mut s = ServerSettings::new(vec!["server".parse().unwrap()]);
        s.client_auth = auth(ClientAuthMode::Auto, vec![crl_dir.clone()]);
        s.client_auth.allow_unknown_revocation_status = allow;
        let mut srv = TestServer::start(Arc::new(TlsServer::new(source.clone(), s).unwrap())).await;
        s_client(srv.addr, &pki.server_ca, &["-cert", &c3, "-key", &k3]).await;
        let r = srv.next().await.result;
        if allow {
            r.unwrap().client.unwrap();
        } else {
            let err = r.unwrap_err();
            assert!(says(&err, "UnknownRevocationStatus"), "{err}");
        }
    }

    // A broken CRL file is a build error, not a silent pass.
    let junk = write(
        pki.dir.path(),
        "junk.crl",
        "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
    );
    let mut s = ServerSettings::new(vec!["server".parse().unwrap()]);
    s.client_auth = auth(ClientAuthMode::Auto, vec![junk]);
    assert!(TlsServer::new(pki.source.clone(), s).is_err());
}

use portcullis_tlsconf::pki_types::pem::PemObject;
