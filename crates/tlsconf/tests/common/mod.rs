//! Shared test helpers: a small PKI (rcgen), a loopback TLS server, and
//! runners for the real clients (`openssl s_client`, `curl`).
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::missing_panics_doc
)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use portcullis_tlsconf::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use portcullis_tlsconf::{
    Credential, TlsServer, TlsVersion, VerifiedCertificate, rustls, suites, tokio_rustls,
};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SerialNumber,
};
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Key types for test certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ecdsa,
    Rsa,
}

/// One RSA 2048 key per test binary (ring cannot generate RSA keys; the
/// openssl command line can).
fn rsa_key() -> KeyPair {
    static PEM: OnceLock<String> = OnceLock::new();
    let pem = PEM.get_or_init(|| {
        let out = Command::new("timeout")
            .args([
                "30",
                "openssl",
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ])
            .output()
            .expect("openssl genpkey");
        assert!(out.status.success(), "openssl genpkey failed");
        String::from_utf8(out.stdout).unwrap()
    });
    KeyPair::from_pem(pem).unwrap()
}

fn key_for(kind: Kind) -> KeyPair {
    match kind {
        Kind::Ecdsa => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
        Kind::Rsa => rsa_key(),
    }
}

fn dn(cn: &str) -> DistinguishedName {
    let mut d = DistinguishedName::new();
    d.push(DnType::CommonName, cn);
    d
}

fn random_serial() -> SerialNumber {
    let mut b = [0u8; 16];
    getrandom(&mut b);
    b[0] &= 0x7f;
    SerialNumber::from_slice(&b)
}

fn getrandom(b: &mut [u8]) {
    use ring::rand::SecureRandom;
    ring::rand::SystemRandom::new().fill(b).unwrap();
}

pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// A test certificate authority.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pub cert_der: CertificateDer<'static>,
    pub cert_pem: String,
}

/// An issued certificate with its key.
#[derive(Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub cert_der: CertificateDer<'static>,
    pub key_pem: String,
    pub serial: SerialNumber,
}

impl Issued {
    pub fn credential(&self) -> Credential {
        Credential::from_pem("test", self.cert_pem.as_bytes(), self.key_pem.as_bytes()).unwrap()
    }
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).unwrap()
    }
}

pub struct Leaf<'a> {
    pub cn: &'a str,
    pub names: Vec<String>,
    pub kind: Kind,
    pub client: bool,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl<'a> Leaf<'a> {
    pub fn server(cn: &'a str, kind: Kind) -> Self {
        Self {
            cn,
            names: vec!["localhost".into(), "127.0.0.1".into()],
            kind,
            client: false,
            not_before: now() - time::Duration::days(1),
            not_after: now() + time::Duration::days(30),
        }
    }
    pub fn client(cn: &'a str) -> Self {
        Self {
            names: vec![],
            client: true,
            ..Self::server(cn, Kind::Ecdsa)
        }
    }
    pub fn names(mut self, names: &[&str]) -> Self {
        self.names = names.iter().map(|s| s.to_string()).collect();
        self
    }
}

impl Ca {
    pub fn new(cn: &str) -> Self {
        let mut p = CertificateParams::default();
        p.distinguished_name = dn(cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        p.not_before = now() - time::Duration::days(2);
        p.not_after = now() + time::Duration::days(365);
        p.serial_number = Some(random_serial());
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = p.self_signed(&key).unwrap();
        Self {
            cert_der: cert.der().clone(),
            cert_pem: cert.pem(),
            issuer: Issuer::new(p, key),
        }
    }

    pub fn issue(&self, leaf: Leaf<'_>) -> Issued {
        let mut p = CertificateParams::new(leaf.names.clone()).unwrap();
        p.distinguished_name = dn(leaf.cn);
        p.not_before = leaf.not_before;
        p.not_after = leaf.not_after;
        let serial = random_serial();
        p.serial_number = Some(serial.clone());
        p.use_authority_key_identifier_extension = true;
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        p.extended_key_usages = vec![if leaf.client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        let key = key_for(leaf.kind);
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        Issued {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            key_pem: key.serialize_pem(),
            serial,
        }
    }

    /// A server certificate for `localhost` over a key held elsewhere.
    pub fn issue_for_key(
        &self,
        public: &impl rcgen::PublicKeyData,
        cn: &str,
    ) -> CertificateDer<'static> {
        let mut p = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        p.distinguished_name = dn(cn);
        p.not_before = now() - time::Duration::days(1);
        p.not_after = now() + time::Duration::days(30);
        p.serial_number = Some(random_serial());
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.signed_by(public, &self.issuer).unwrap().der().clone()
    }

    /// A CRL revoking `serials`, valid from `this_update` to `next_update`.
    pub fn crl(
        &self,
        serials: &[&SerialNumber],
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> String {
        let p = CertificateRevocationListParams {
            this_update,
            next_update,
            crl_number: random_serial(),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|s| RevokedCertParams {
                    serial_number: (*s).clone(),
                    revocation_time: this_update,
                    reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        p.signed_by(&self.issuer).unwrap().pem().unwrap()
    }

    /// A current CRL (valid for a day).
    pub fn current_crl(&self, serials: &[&SerialNumber]) -> String {
        self.crl(
            serials,
            now() - time::Duration::hours(1),
            now() + time::Duration::days(1),
        )
    }
}

pub fn write(dir: &Path, name: &str, data: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

/// Adds `who` (certificate and key) to the database under `alias`.
pub fn add_to_db(
    db: &mut portcullis_tlsconf::certdb::certdb::CertDb,
    pw: &portcullis_tlsconf::certdb::certdb::Password,
    alias: &str,
    who: &Issued,
) {
    use portcullis_tlsconf::certdb::certdb::{PrivateKey, TrustFlags};
    let key = PrivateKey::from_pkcs8_der(who.key_der().secret_der()).unwrap();
    db.add_with_key(pw, alias, &who.cert_der, &key, TrustFlags::default(), &[])
        .unwrap();
}

/// What the server saw of one connection.
#[derive(Debug)]
pub struct Seen {
    pub result: Result<Info, String>,
}

#[derive(Debug, Clone)]
pub struct Info {
    pub version: Option<TlsVersion>,
    pub suite: &'static str,
    pub alpn: Option<Vec<u8>>,
    pub client: Option<VerifiedCertificate>,
}

/// A loopback TLS server answering every connection with a small HTTP
/// response, reporting each handshake's outcome.
pub struct TestServer {
    pub addr: SocketAddr,
    pub seen: mpsc::UnboundedReceiver<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    pub async fn start(tls: Arc<TlsServer>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, seen) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let tls = Arc::clone(&tls);
                let tx = tx.clone();
                tokio::spawn(async move {
                    let result = match tokio::time::timeout(
                        Duration::from_secs(20),
                        tls.accept(tcp),
                    )
                    .await
                    {
                        Err(_) => Err("handshake timed out".to_string()),
                        Ok(Err(e)) => Err(e.to_string()),
                        Ok(Ok(mut stream)) => {
                            let (_, conn) = stream.get_ref();
                            let info = Info {
                                version: conn.protocol_version().and_then(TlsVersion::from_rustls),
                                suite: conn
                                    .negotiated_cipher_suite()
                                    .map_or("none", suites::iana_name),
                                alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
                                client: VerifiedCertificate::from_rustls(conn),
                            };
                            // Read whatever request comes (curl sends one,
                            // s_client none), answer, close.
                            let mut buf = [0u8; 4096];
                            let _ = tokio::time::timeout(
                                Duration::from_millis(300),
                                stream.read(&mut buf),
                            )
                            .await;
                            let _ = stream
                                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
                                .await;
                            let _ = stream.shutdown().await;
                            Ok(info)
                        }
                    };
                    let _ = tx.send(Seen { result });
                });
            }
        });
        Self { addr, seen, task }
    }

    pub async fn next(&mut self) -> Seen {
        tokio::time::timeout(Duration::from_secs(20), self.seen.recv())
            .await
            .expect("server outcome")
            .unwrap()
    }
}

/// What a command-line client printed.
#[derive(Debug)]
pub struct ClientRun {
    pub ok: bool,
    pub out: String,
}

impl ClientRun {
    /// The value after `key` on some line (`Protocol version: TLSv1.3`).
    pub fn field(&self, key: &str) -> Option<String> {
        self.out
            .lines()
            .find_map(|l| l.trim().strip_prefix(key).map(|v| v.trim().to_string()))
    }
}

/// `openssl s_client` against `addr`, trusting `ca`, waiting for the
/// server to close (so alerts after the handshake are seen).
pub async fn s_client(addr: SocketAddr, ca: &Path, extra: &[&str]) -> ClientRun {
    s_client_with(addr, ca, extra, true).await
}

/// `openssl s_client`; without `wait_for_close` it leaves right after the
/// handshake.
pub async fn s_client_with(
    addr: SocketAddr,
    ca: &Path,
    extra: &[&str],
    wait_for_close: bool,
) -> ClientRun {
    let mut args: Vec<String> = vec![
        "15".into(),
        "openssl".into(),
        "s_client".into(),
        "-connect".into(),
        addr.to_string(),
        "-brief".into(),
        "-verify_return_error".into(),
        "-CAfile".into(),
        ca.display().to_string(),
    ];
    if wait_for_close {
        args.push("-ign_eof".into());
    }
    if !extra.contains(&"-servername") && !extra.contains(&"-noservername") {
        args.extend(["-servername".into(), "localhost".into()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    run("timeout", args).await
}
/// `curl` over HTTPS to `localhost:port`, verbose, trusting `ca`.
pub async fn curl(addr: SocketAddr, ca: &Path, extra: &[&str]) -> ClientRun {
    let port = addr.port();
    let mut args: Vec<String> = vec![
        "15".into(),
        "curl".into(),
        "-sS".into(),
        "-v".into(),
        "--cacert".into(),
        ca.display().to_string(),
        "--resolve".into(),
        format!("localhost:{port}:127.0.0.1"),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(format!("https://localhost:{port}/"));
    run("timeout", args).await
}

async fn run(cmd: &str, args: Vec<String>) -> ClientRun {
    let out = tokio::process::Command::new(cmd)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    ClientRun {
        ok: out.status.success(),
        out: text,
    }
}

/// A rustls client configuration trusting `ca`.
pub fn rust_client_config(ca: &CertificateDer<'static>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// What a Rust client saw of one handshake.
#[derive(Debug)]
pub struct Handshake {
    pub leaf: CertificateDer<'static>,
    pub resumed: bool,
    pub version: Option<TlsVersion>,
}

/// One handshake from a rustls client, reading the server's reply.
pub async fn rust_handshake(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> Result<Handshake, String> {
    use portcullis_tlsconf::pki_types::ServerName;
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let mut tls = tokio::time::timeout(
        Duration::from_secs(20),
        connector.connect(ServerName::try_from("localhost").unwrap(), tcp),
    )
    .await
    .map_err(|_| "client handshake timed out".to_string())?
    .map_err(|e| e.to_string())?;
    tls.write_all(b"GET / HTTP/1.0\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut body = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), tls.read_to_end(&mut body))
        .await
        .map_err(|_| "read timed out".to_string())?
        .map_err(|e| e.to_string())?;
    if !body.ends_with(b"ok\n") {
        return Err(format!(
            "unexpected reply {:?}",
            String::from_utf8_lossy(&body)
        ));
    }
    let (_, conn) = tls.get_ref();
    Ok(Handshake {
        leaf: conn
            .peer_certificates()
            .and_then(|c| c.first())
            .ok_or("no peer certificate")?
            .clone()
            .into_owned(),
        resumed: conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
        version: conn.protocol_version().and_then(TlsVersion::from_rustls),
    })
}
