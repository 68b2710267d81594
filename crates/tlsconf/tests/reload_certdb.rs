//! Reload over the certificate database: keys decrypted once for all
//! services, one database generation per build, reload off the runtime's
//! workers, a refused reload that keeps the old configuration and says why,
//! and a hundred swaps under load.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Ca, Kind, Leaf, TestServer, add_to_db as add, rust_client_config, rust_handshake};
use portcullis_tlsconf::certdb::CertDbSource;
use portcullis_tlsconf::certdb::certdb::{CertDb, KdfParams, Password};
use portcullis_tlsconf::{
    CertificateSource, Credential, Error, MemorySource, Nickname, Resumption, ServerSettings,
    Service, TlsServer,
};

fn parameters(db: &str) -> impl Fn(&str) -> Option<String> {
    let db = db.to_owned();
    move |name| match name {
        "local.ssldbpath" => Some(db.clone()),
        "encryption.rsa.nssslpersonalityssl" => Some("Server-Cert".into()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn services_share_each_decrypted_key_and_reloads_reuse_it() {
    let dir = tempfile::tempdir().unwrap();
    let pw = Password::new("db-password");
    let mut db = CertDb::create(dir.path().join("db"), &pw, KdfParams::INSECURE_FAST).unwrap();
    let ca = Ca::new("Shared Root");
    let leaf = ca.issue(Leaf::server("shared", Kind::Ecdsa));
    add(&mut db, &pw, "Server-Cert", &leaf);

    let services = [Service::Imap, Service::Pop, Service::Smtp, Service::Http];
    let servers: Vec<Arc<TlsServer>> = services
        .iter()
        .map(|s| Arc::new(TlsServer::from_parameters(*s, parameters("db"), dir.path()).unwrap()))
        .collect();
    let source = CertDbSource::shared(dir.path().join("db"));
    // One scrypt run for four services...
    assert_eq!(source.key_decryptions(), 1);
    // ...and none for reloads that find the same key file.
    for _ in 0..3 {
        for s in &servers {
            s.reload_async().await.unwrap();
        }
    }
    assert_eq!(source.key_decryptions(), 1);

    // Every service serves the database's certificate with that key.
    let config = rust_client_config(&ca.cert_der);
    for s in &servers {
        let srv = TestServer::start(Arc::clone(s)).await;
        let seen = rust_handshake(srv.addr, Arc::clone(&config)).await.unwrap();
        assert_eq!(seen.leaf, leaf.cert_der);
    }

    // A new key (a renewal with another key pair) is decrypted once more.
    let next = ca.issue(Leaf::server("shared-2", Kind::Ecdsa));
    db.remove("Server-Cert").unwrap();
    add(&mut db, &pw, "Server-Cert", &next);
    for s in &servers {
        s.reload_async().await.unwrap();
    }
    assert_eq!(source.key_decryptions(), 2);
}

#[test]
fn a_build_sees_one_database_generation() {
    let dir = tempfile::tempdir().unwrap();
    let pw = Password::new("db-password");
    let mut db = CertDb::create(dir.path(), &pw, KdfParams::INSECURE_FAST).unwrap();
    let ca = Ca::new("Generation Root");
    let g1 = ca.issue(Leaf::server("g1", Kind::Ecdsa));
    add(&mut db, &pw, "Server-Cert", &g1);
    let source = CertDbSource::new(dir.path());
    let view = source
        .snapshot()
        .unwrap()
        .expect("the database gives a view");
    let nick: Nickname = "Server-Cert".parse().unwrap();
    assert_eq!(view.credential(&nick).unwrap().chain[0], g1.cert_der);
    assert!(view.is_current().unwrap());

    // A commit lands during the build: the view says it is no longer
    // current, so the build is made again from a fresh view.
    db.remove("Server-Cert").unwrap();
    let g2 = ca.issue(Leaf::server("g2", Kind::Ecdsa));
    add(&mut db, &pw, "Server-Cert", &g2);
    assert!(!view.is_current().unwrap());

    let fresh = source.snapshot().unwrap().unwrap();
    assert_eq!(fresh.credential(&nick).unwrap().chain[0], g2.cert_der);
    assert!(fresh.is_current().unwrap());
}

/// A source whose builds after the first wait until the test lets them go.
#[derive(Debug)]
struct Gated {
    inner: MemorySource,
    armed: AtomicBool,
    gate: Mutex<std::sync::mpsc::Receiver<()>>,
}

impl CertificateSource for Gated {
    fn credential(&self, nickname: &Nickname) -> Result<Credential, Error> {
        if self.armed.load(Ordering::SeqCst) {
            let gate = self.gate.lock().unwrap();
            // Bounded, so a reload that ran on the runtime's only worker
            // (and so kept the opening task from running) fails instead of
            // hanging.
            gate.recv_timeout(Duration::from_secs(60))
                .map_err(|_| Error::Source("the gate was never opened".into()))?;
        }
        self.inner.credential(nickname)
    }
    fn client_auth_roots(
        &self,
    ) -> Result<Vec<portcullis_tlsconf::pki_types::CertificateDer<'static>>, Error> {
        self.inner.client_auth_roots()
    }
    fn server_auth_roots(
        &self,
    ) -> Result<Vec<portcullis_tlsconf::pki_types::CertificateDer<'static>>, Error> {
        self.inner.server_auth_roots()
    }
}

#[test]
fn reload_async_keeps_a_current_thread_runtime_serving() {
    let ca = Ca::new("Gate Root");
    let leaf = ca.issue(Leaf::server("gated", Kind::Ecdsa));
    let (open, gate) = std::sync::mpsc::channel();
    let source = Arc::new(Gated {
        inner: MemorySource::new()
            .with_credential("Server-Cert".parse().unwrap(), leaf.credential()),
        armed: AtomicBool::new(false),
        gate: Mutex::new(gate),
    });
    let tls = Arc::new(
        TlsServer::new(
            Arc::clone(&source) as Arc<dyn CertificateSource>,
            ServerSettings::new(vec!["Server-Cert".parse().unwrap()]),
        )
        .unwrap(),
    );
    source.armed.store(true, Ordering::SeqCst);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let srv = TestServer::start(Arc::clone(&tls)).await;
        let reload = tokio::spawn({
            let tls = Arc::clone(&tls);
            async move { tls.reload_async().await }
        });
        // While the reload waits, the one worker still completes a
        // handshake, then opens the gate.
        let seen = rust_handshake(srv.addr, rust_client_config(&ca.cert_der))
            .await
            .unwrap();
        assert_eq!(seen.leaf, leaf.cert_der);
        open.send(()).unwrap();
        assert_eq!(reload.await.unwrap().unwrap(), 2);
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_reload_keeps_the_old_configuration_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let pw = Password::new("db-password");
    let mut db = CertDb::create(dir.path(), &pw, KdfParams::INSECURE_FAST).unwrap();
    let ca = Ca::new("Refusal Root");
    let leaf = ca.issue(Leaf::server("kept", Kind::Ecdsa));
    add(&mut db, &pw, "Server-Cert", &leaf);
    let tls = Arc::new(
        TlsServer::new(
            Arc::new(CertDbSource::new(dir.path())),
            ServerSettings::new(vec!["Server-Cert".parse().unwrap()]),
        )
        .unwrap(),
    );
    let srv = TestServer::start(Arc::clone(&tls)).await;
    db.remove("Server-Cert").unwrap();
    let err = tls.reload_async().await.unwrap_err();
    assert!(err.to_string().contains("Server-Cert"), "{err}");
    assert_eq!(tls.generation(), 1);
    assert_eq!(tls.refused_reloads(), 1);
    assert_eq!(tls.last_refusal(), Some(err.to_string()));
    let seen = rust_handshake(srv.addr, rust_client_config(&ca.cert_der))
        .await
        .unwrap();
    assert_eq!(seen.leaf, leaf.cert_der);

    add(&mut db, &pw, "Server-Cert", &leaf);
    assert_eq!(tls.reload_async().await.unwrap(), 2);
    assert_eq!(tls.last_refusal(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_database_swaps_under_load_without_a_failed_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let db_dir = dir.path().join("db");
    let pw = Password::new("db-password");
    let mut db = CertDb::create(&db_dir, &pw, KdfParams::INSECURE_FAST).unwrap();
    let ca = Ca::new("Swap Root");
    let a = ca.issue(Leaf::server("db-a", Kind::Ecdsa));
    let b = ca.issue(Leaf::server("db-b", Kind::Ecdsa));
    add(&mut db, &pw, "Server-Cert", &a);
    // No resumption: every handshake shows the certificate then served.
    let mut settings = ServerSettings::new(vec!["Server-Cert".parse().unwrap()]);
    settings.resumption = Resumption::disabled();
    let tls = Arc::new(TlsServer::new(CertDbSource::shared(&db_dir), settings).unwrap());
    let srv = TestServer::start(Arc::clone(&tls)).await;
    let config = rust_client_config(&ca.cert_der);
    let done = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..3 {
        let (config, addr) = (Arc::clone(&config), srv.addr);
        let (done, count) = (Arc::clone(&done), Arc::clone(&count));
        clients.push(tokio::spawn(async move {
            let mut leaves = Vec::new();
            // Bounded: stops when the swaps are done, or after 20 000 handshakes.
            while !done.load(Ordering::SeqCst) && leaves.len() < 20_000 {
                leaves.push(
                    rust_handshake(addr, Arc::clone(&config))
                        .await
                        .map(|h| h.leaf),
                );
                count.fetch_add(1, Ordering::SeqCst);
            }
            leaves
        }));
    }
    for i in 0..100 {
        let next = if i % 2 == 0 { &b } else { &a };
        // What msgcert does: remove the old certificate, add the new one.
        tokio::task::block_in_place(|| {
            db.remove("Server-Cert").unwrap();
            add(&mut db, &pw, "Server-Cert", next);
        });
        tls.reload_async().await.unwrap();
        // At least one handshake finishes between two swaps, so every
        // configuration serves (bounded).
        let before = count.load(Ordering::SeqCst);
        for _ in 0..30_000 {
            if count.load(Ordering::SeqCst) > before {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    done.store(true, Ordering::SeqCst);
    assert_eq!(tls.generation(), 101);
    let (mut total, mut seen_a, mut seen_b) = (0, 0, 0);
    for c in clients {
        for leaf in c.await.unwrap() {
            let leaf = leaf.expect("a handshake failed during reloads");
            total += 1;
            if leaf == a.cert_der {
                seen_a += 1;
            } else if leaf == b.cert_der {
                seen_b += 1;
            } else {
                panic!("a handshake got neither the old nor the new certificate");
            }
        }
    }
    eprintln!("{total} handshakes during 100 database reloads: {seen_a} with A, {seen_b} with B");
    assert!(
        total >= 100 && seen_a > 0 && seen_b > 0,
        "{total} {seen_a} {seen_b}"
    );
    assert_eq!(
        rust_handshake(srv.addr, config).await.unwrap().leaf,
        a.cert_der
    );
}

#[test]
fn a_daemon_reload_rereads_the_parameters_keeps_the_decrypted_key_and_names_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let pw = Password::new("db-password");
    let mut db = CertDb::create(dir.path().join("db"), &pw, KdfParams::INSECURE_FAST).unwrap();
    let ca = Ca::new("Reconfigure Root");
    let leaf = ca.issue(Leaf::server("reconfigured", Kind::Ecdsa));
    add(&mut db, &pw, "Server-Cert", &leaf);
    let server = TlsServer::from_parameters(Service::Imap, parameters("db"), dir.path()).unwrap();
    let source = CertDbSource::shared(dir.path().join("db"));
    let decrypted = source.key_decryptions();

    // New settings from the parameters (TLS 1.3 only): applied, the key
    // not decrypted again.
    let tls13 = |name: &str| match name {
        "local.sslminversion" => Some("TLSv1.3".to_owned()),
        other => parameters("db")(other),
    };
    let generation = server
        .reconfigure_from_parameters(Service::Imap, tls13, dir.path())
        .unwrap();
    assert_eq!(generation, 2);
    assert_eq!(source.key_decryptions(), decrypted);
    // A bad value of a parameter read here is refused by name too.
    let legacy = |name: &str| match name {
        "local.sslminversion" => Some("sslv3".to_owned()),
        other => parameters("db")(other),
    };
    let e = server
        .reconfigure_from_parameters(Service::Imap, legacy, dir.path())
        .unwrap_err()
        .to_string();
    assert!(e.contains("local.sslminversion"), "{e}");

    // A nickname the database does not hold: refused naming the
    // parameter, the running configuration stays.
    let unknown = |name: &str| match name {
        "local.imap.sslnicknames" => Some("No-Such-Cert".to_owned()),
        other => parameters("db")(other),
    };
    let e = server
        .reconfigure_from_parameters(Service::Imap, unknown, dir.path())
        .unwrap_err()
        .to_string();
    assert!(e.contains("local.imap.sslnicknames"), "{e}");
    assert_eq!(server.generation(), 2);
    assert_eq!(server.refused_reloads(), 1);
}
