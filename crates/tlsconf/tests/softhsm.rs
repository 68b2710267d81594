//! Handshakes signed by a key that never leaves a SoftHSM2 token.
//!
//! SoftHSM reads `SOFTHSM2_CONF` when the library initialises, and the test
//! process cannot set its own environment without `unsafe`; so the test
//! re-runs itself with the variable set for the child, pointing at a
//! scratch token folder.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use common::{Ca, TestServer, rust_client_config, rust_handshake, s_client, write};
use portcullis_tlsconf::pkcs11::token_key;
use portcullis_tlsconf::{Credential, MemorySource, ServerSettings, TlsServer};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const LABEL: &str = "tlsconf-test";
const PIN: &str = "5678";
const KEY: &str = "tls-key";

fn sh(cmd: &str, args: &[&str], conf: &Path) {
    let out = Command::new("timeout")
        .arg("30")
        .arg(cmd)
        .args(args)
        .env("SOFTHSM2_CONF", conf)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes a scratch token holding a P-256 signing key; returns the conf path.
fn make_token(dir: &Path) -> PathBuf {
    let tokens = dir.join("tokens");
    std::fs::create_dir(&tokens).unwrap();
    let conf = write(
        dir,
        "softhsm2.conf",
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    );
    sh(
        "softhsm2-util",
        &[
            "--init-token",
            "--free",
            "--label",
            LABEL,
            "--so-pin",
            "1234",
            "--pin",
            PIN,
        ],
        &conf,
    );
    sh(
        "pkcs11-tool",
        &[
            "--module",
            MODULE,
            "--token-label",
            LABEL,
            "--login",
            "--pin",
            PIN,
            "--keypairgen",
            "--key-type",
            "EC:prime256v1",
            "--usage-sign",
            "--label",
            KEY,
            "--id",
            "01",
        ],
        &conf,
    );
    conf
}

/// The token's public key for rcgen (the raw point of a P-256 SPKI).
struct TokenPublic(Vec<u8>);

impl rcgen::PublicKeyData for TokenPublic {
    fn der_bytes(&self) -> &[u8] {
        &self.0[self.0.len() - 65..]
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

/// Runs `body` in a child of this test binary whose `SOFTHSM2_CONF` points
/// at a fresh scratch token (the parent makes the token and waits), on a
/// multi-threaded runtime.
fn in_token_child(
    test: &str,
    body: impl FnOnce(&Path) -> std::pin::Pin<Box<dyn Future<Output = ()> + '_>>,
) {
    in_token_child_on(test, false, body);
}

/// [`in_token_child`] on a current-thread runtime when `current_thread`.
fn in_token_child_on(
    test: &str,
    current_thread: bool,
    body: impl FnOnce(&Path) -> std::pin::Pin<Box<dyn Future<Output = ()> + '_>>,
) {
    if std::env::var_os("SOFTHSM2_CONF").is_none() {
        let dir = tempfile::tempdir().unwrap();
        let conf = make_token(dir.path());
        let status = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", test, "--nocapture", "--test-threads", "1"])
            .env("SOFTHSM2_CONF", &conf)
            .env("TLSCONF_TEST_DIR", dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "the SoftHSM run of {test} failed");
        return;
    }
    let dir = PathBuf::from(std::env::var_os("TLSCONF_TEST_DIR").unwrap());
    let runtime = if current_thread {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    };
    runtime.unwrap().block_on(body(&dir));
}

#[test]
fn token_key_serves_handshakes() {
    in_token_child("token_key_serves_handshakes", |dir| {
        Box::pin(with_token(dir))
    });
}

/// A current-thread runtime has no other worker to hand tasks to: token
/// signatures run in place there, and handshakes still complete.
#[test]
fn token_key_serves_handshakes_on_a_current_thread_runtime() {
    in_token_child_on(
        "token_key_serves_handshakes_on_a_current_thread_runtime",
        true,
        |dir| Box::pin(with_token(dir)),
    );
}

async fn with_token(dir: &Path) {
    let module = Path::new(MODULE);
    // Wrong PIN and missing key are clear errors.
    let err = token_key(module, LABEL, "0000", KEY).unwrap_err();
    assert!(err.to_string().contains("wrong PIN"), "{err}");
    let key = token_key(module, LABEL, PIN, KEY).unwrap();
    let err = token_key(module, LABEL, PIN, "no-such-key").unwrap_err();
    assert!(err.to_string().contains("no private key"), "{err}");
    let err = token_key(module, "no-such-token", PIN, KEY).unwrap_err();
    assert!(err.to_string().contains("no token"), "{err}");

    // The private key is sensitive and not extractable (as pkcs11-tool
    // reports it).
    let conf = PathBuf::from(std::env::var_os("SOFTHSM2_CONF").unwrap());
    let out = Command::new("timeout")
        .args([
            "30",
            "pkcs11-tool",
            "--module",
            MODULE,
            "--token-label",
            LABEL,
        ])
        .args([
            "--login",
            "--pin",
            PIN,
            "--list-objects",
            "--type",
            "privkey",
        ])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{listing}");
    assert!(listing.contains("sensitive"), "{listing}");
    assert!(listing.contains("never extractable"), "{listing}");

    // A certificate for the token's public key, issued by a test CA.
    let ca = Ca::new("Token Root");
    let ca_path = write(dir, "ca.pem", &ca.cert_pem);
    let spki = key.public_key().unwrap().as_ref().to_vec();
    let cert = ca.issue_for_key(&TokenPublic(spki), "token-server");
    let credential = Credential {
        chain: vec![cert.clone()],
        key,
    };
    let source = MemorySource::new().with_credential("hsm:tls-key".parse().unwrap(), credential);
    let tls = Arc::new(
        TlsServer::new(
            Arc::new(source),
            ServerSettings::new(vec!["hsm:tls-key".parse().unwrap()]),
        )
        .unwrap(),
    );
    let mut srv = TestServer::start(Arc::clone(&tls)).await;

    // openssl, TLS 1.3 and TLS 1.2: the server's signature comes from the token.
    openssl_sees_token_signatures(&mut srv, &ca_path, "token-server").await;
    // Concurrent handshakes sign in parallel through the session pool.
    let config = rust_client_config(&ca.cert_der);
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (addr, config) = (srv.addr, Arc::clone(&config));
        tasks.push(tokio::spawn(
            async move { rust_handshake(addr, config).await },
        ));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().leaf, cert);
    }
}

/// The same token reached the way a deployment names it: the certificate
/// database lists the module, `sslpassword.conf` holds its PIN, and the
/// service's nickname is `module:alias`.
#[test]
fn certdb_module_nickname_serves_handshakes() {
    in_token_child("certdb_module_nickname_serves_handshakes", |dir| {
        Box::pin(with_certdb_token(dir))
    });
}

async fn with_certdb_token(dir: &Path) {
    use portcullis_tlsconf::certdb::CertDbSource;

    let (db_dir, _pw, db) = token_db(dir, "hsm:Server-Token", "token.example.test");
    let entry = db.find("hsm:Server-Token").unwrap();
    let der_path = write(dir, "token-cert.der", &entry.info.der);
    let ca_path = dir.join("token-cert.pem");
    let conv = Command::new("openssl")
        .args(["x509", "-inform", "DER", "-in"])
        .arg(&der_path)
        .arg("-out")
        .arg(&ca_path)
        .status()
        .unwrap();
    assert!(conv.success(), "openssl x509 read the token certificate");

    let nicknames = portcullis_tlsconf::Service::Imap
        .nicknames(Some("hsm:Server-Token"), None)
        .unwrap();
    let tls = Arc::new(
        TlsServer::new(
            Arc::new(CertDbSource::new(&db_dir)),
            ServerSettings::new(nicknames),
        )
        .unwrap(),
    );
    let mut srv = TestServer::start(Arc::clone(&tls)).await;
    openssl_sees_token_signatures(&mut srv, &ca_path, "token.example.test").await;
}

/// openssl over TLS 1.3 and TLS 1.2 gets the certificate `cn` and an ECDSA
/// signature (made on the token).
async fn openssl_sees_token_signatures(srv: &mut TestServer, ca_path: &Path, cn: &str) {
    for args in [
        &["-tls1_3"][..],
        &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"][..],
    ] {
        let run = s_client(srv.addr, ca_path, args).await;
        assert!(run.ok, "{args:?}: {}", run.out);
        assert_eq!(
            run.field("Peer certificate:").as_deref(),
            Some(format!("CN = {cn}").as_str())
        );
        assert_eq!(run.field("Signature type:").as_deref(), Some("ECDSA"));
        srv.next().await.result.unwrap();
    }
}

/// A certificate renewed on the token changes nothing in the database's
/// files; the watch sees the token and reloads.
#[test]
fn token_certificates_are_watched() {
    in_token_child("token_certificates_are_watched", |dir| {
        Box::pin(watch_token(dir))
    });
}

async fn watch_token(dir: &Path) {
    use portcullis_tlsconf::certdb::CertDbSource;
    use portcullis_tlsconf::certdb::certdb::Validity;

    let (db_dir, pw, mut db) = token_db(dir, "hsm:Watched", "localhost");
    let now = time::OffsetDateTime::now_utc();
    let first = db.find("hsm:Watched").unwrap().info.der;
    let tls = Arc::new(
        TlsServer::new(
            Arc::new(CertDbSource::new(&db_dir)),
            ServerSettings::new(vec!["hsm:Watched".parse().unwrap()]),
        )
        .unwrap(),
    );
    let srv = TestServer::start(Arc::clone(&tls)).await;
    let client = rust_client_config(&first.clone().into());
    assert_eq!(
        rust_handshake(srv.addr, Arc::clone(&client))
            .await
            .unwrap()
            .leaf
            .as_ref(),
        first.as_slice()
    );

    let index = std::fs::read(db_dir.join("index.toml")).unwrap();
    let _watch = tls.watch(std::time::Duration::from_millis(20));
    db.renew_self_signed(&pw, "hsm:Watched", Validity::days(now, 60))
        .unwrap();
    let renewed = db.find("hsm:Watched").unwrap().info.der;
    assert_ne!(renewed, first);
    assert_eq!(std::fs::read(db_dir.join("index.toml")).unwrap(), index);
    // Bounded wait until the watch's reload serves the renewed certificate
    // (a renewal on the token takes steps, so a watch may reload more than
    // once on the way).
    let mut served = Vec::new();
    for _ in 0..3000 {
        if tls.generation() >= 2 {
            // A fresh client each time: no session to resume.
            let client = rust_client_config(&renewed.clone().into());
            served = rust_handshake(srv.addr, client)
                .await
                .unwrap()
                .leaf
                .as_ref()
                .to_vec();
            if served == renewed {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(served, renewed, "{:?}", tls.last_refusal());
}

/// A certificate database with the test token as module `hsm` (its PIN in
/// `sslpassword.conf`) and a key generated on the token with a self-signed
/// certificate for `cn` stored there under `nickname`.
fn token_db(
    dir: &Path,
    nickname: &str,
    cn: &str,
) -> (
    PathBuf,
    portcullis_tlsconf::certdb::certdb::Password,
    portcullis_tlsconf::certdb::certdb::CertDb,
) {
    use portcullis_tlsconf::certdb::certdb::{
        CertDb, KdfParams, KeyType, Password, Subject, SubjectFields, Validity,
    };
    let db_dir = dir.join("db");
    let pw = Password::new("db-password");
    let mut db = CertDb::create(&db_dir, &pw, KdfParams::INSECURE_FAST).unwrap();
    db.add_module("hsm", Path::new(MODULE), Some(LABEL))
        .unwrap();
    db.set_module_password("hsm", Password::new(PIN)).unwrap();
    let subject = Subject::from_fields(&SubjectFields::new(cn)).unwrap();
    db.add_self_signed(
        &pw,
        nickname,
        &subject,
        Validity::days(time::OffsetDateTime::now_utc(), 30),
        KeyType::EcP256,
    )
    .unwrap();
    (db_dir, pw, db)
}
