//! TLS handshakes per second, in memory (no sockets): full and resumed,
//! with an in-memory (file) key and with a key on a SoftHSM2 token.
//!
//! SoftHSM reads `SOFTHSM2_CONF` at initialisation; the bench makes a
//! scratch token and re-runs itself with the variable set.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use criterion::{Criterion, criterion_group};
use portcullis_tlsconf::pkcs11::token_key as open_token_key;
use portcullis_tlsconf::pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
use portcullis_tlsconf::rustls::{self, ClientConnection, RootCertStore, ServerConnection};
use portcullis_tlsconf::{Credential, MemorySource, ServerSettings, TlsServer};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

struct Pki {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    ca: CertificateDer<'static>,
}

fn params(cn: &str, names: Vec<String>) -> rcgen::CertificateParams {
    let mut p = rcgen::CertificateParams::new(names).expect("params");
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::days(1);
    p.not_after = now + time::Duration::days(30);
    p.serial_number = Some(rcgen::SerialNumber::from_slice(&rand_bytes()));
    p
}

fn rand_bytes() -> [u8; 16] {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("random");
    b[0] &= 0x7f;
    b
}

impl Pki {
    fn new() -> Self {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut p = params("Bench Root", vec![]);
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = p.self_signed(&key).expect("ca").der().clone();
        Self {
            issuer: rcgen::Issuer::new(p, key),
            ca,
        }
    }
    fn leaf(&self, public: &impl rcgen::PublicKeyData) -> CertificateDer<'static> {
        params("bench", vec!["localhost".into()])
            .signed_by(public, &self.issuer)
            .expect("leaf")
            .der()
            .clone()
    }
    fn client(&self, resume: bool) -> Arc<rustls::ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.clone()).expect("root");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        if !resume {
            config.resumption = rustls::client::Resumption::disabled();
        }
        Arc::new(config)
    }
}

fn server(credential: Credential) -> Arc<rustls::ServerConfig> {
    let source = MemorySource::new().with_credential("bench".parse().expect("nick"), credential);
    TlsServer::new(
        Arc::new(source),
        ServerSettings::new(vec!["bench".parse().expect("nick")]),
    )
    .expect("server")
    .config()
}

/// One handshake between two in-memory endpoints, plus the server's
/// post-handshake tickets; returns whether it was resumed.
fn handshake(client: &Arc<rustls::ClientConfig>, server: &Arc<rustls::ServerConfig>) -> bool {
    let name = ServerName::try_from("localhost").expect("name");
    let mut c = ClientConnection::new(Arc::clone(client), name).expect("client");
    let mut s = ServerConnection::new(Arc::clone(server)).expect("server");
    let mut buf = Vec::new();
    for _ in 0..10 {
        buf.clear();
        while c.wants_write() {
            c.write_tls(&mut buf).expect("c write");
        }
        let mut rd = buf.as_slice();
        while !rd.is_empty() {
            s.read_tls(&mut rd).expect("s read");
            s.process_new_packets().expect("server handshake");
        }
        buf.clear();
        while s.wants_write() {
            s.write_tls(&mut buf).expect("s write");
        }
        let mut rd = buf.as_slice();
        while !rd.is_empty() {
            c.read_tls(&mut rd).expect("c read");
            c.process_new_packets().expect("client handshake");
        }
        if !c.is_handshaking() && !s.is_handshaking() && !c.wants_write() && !s.wants_write() {
            break;
        }
    }
    assert!(
        !c.is_handshaking() && !s.is_handshaking(),
        "handshake did not finish"
    );
    c.handshake_kind() == Some(rustls::HandshakeKind::Resumed)
}

fn bench_pair(c: &mut Criterion, label: &str, pki: &Pki, server_cfg: &Arc<rustls::ServerConfig>) {
    let mut g = c.benchmark_group(format!("tlsconf/{label}"));
    // Built once, outside the timing; with resumption off every handshake
    // is a full one.
    let full = pki.client(false);
    g.bench_function("full_handshake", |b| {
        b.iter(|| assert!(!handshake(&full, server_cfg)))
    });
    let client = pki.client(true);
    handshake(&client, server_cfg);
    g.bench_function("resumed_handshake", |b| {
        b.iter(|| assert!(handshake(&client, server_cfg)))
    });
    g.finish();
}

fn file_key(c: &mut Criterion) {
    let pki = Pki::new();
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = pki.leaf(&key);
    let pkcs8 = PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).expect("pem");
    let server_cfg = server(Credential::from_der(vec![cert], &pkcs8).expect("credential"));
    bench_pair(c, "file_key_p256", &pki, &server_cfg);
}

struct Spki(Vec<u8>);
impl rcgen::PublicKeyData for Spki {
    fn der_bytes(&self) -> &[u8] {
        &self.0[self.0.len() - 65..]
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

fn token_key(c: &mut Criterion) {
    assert!(
        std::env::var_os("SOFTHSM2_CONF").is_some(),
        "the token bench needs SOFTHSM2_CONF (main() sets it up)"
    );
    let key =
        open_token_key(Path::new(MODULE), "tlsconf-bench", "5678", "bench-key").expect("token key");
    let pki = Pki::new();
    let cert = pki.leaf(&Spki(key.public_key().expect("spki").as_ref().to_vec()));
    let server_cfg = server(Credential {
        chain: vec![cert],
        key,
    });
    bench_pair(c, "token_key_p256_softhsm", &pki, &server_cfg);
}

criterion_group!(benches, file_key, token_key);

fn run(cmd: &str, args: &[&str], conf: &Path) -> bool {
    Command::new(cmd)
        .args(args)
        .env("SOFTHSM2_CONF", conf)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn main() {
    if std::env::var_os("SOFTHSM2_CONF").is_none() {
        assert!(
            Path::new(MODULE).exists(),
            "{MODULE} is missing: install softhsm2 (scripts/install-test-deps.sh)"
        );
        // Make a scratch token, then run the benches again in a child that
        // has SOFTHSM2_CONF set.
        let dir = tempfile::tempdir().expect("tempdir");
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).expect("tokens dir");
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .expect("conf");
        let ok = run(
            "softhsm2-util",
            &[
                "--init-token",
                "--free",
                "--label",
                "tlsconf-bench",
                "--so-pin",
                "1234",
                "--pin",
                "5678",
            ],
            &conf,
        ) && run(
            "pkcs11-tool",
            &[
                "--module",
                MODULE,
                "--token-label",
                "tlsconf-bench",
                "--login",
                "--pin",
                "5678",
                "--keypairgen",
                "--key-type",
                "EC:prime256v1",
                "--usage-sign",
                "--label",
                "bench-key",
            ],
            &conf,
        );
        assert!(ok, "could not make the SoftHSM bench token");
        let status = Command::new(std::env::current_exe().expect("exe"))
            .args(std::env::args_os().skip(1))
            .env("SOFTHSM2_CONF", &conf)
            .status()
            .expect("re-run");
        // exit() skips destructors: remove the scratch token first.
        drop(dir);
        std::process::exit(status.code().unwrap_or(1));
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
