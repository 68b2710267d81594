//! Reload without restart: atomic swaps under load, in-flight handshakes,
//! broken configurations refused, watched files, resumption across reloads.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{Ca, Issued, Kind, Leaf, TestServer, rust_client_config, rust_handshake, write};
use portcullis_tlsconf::{Nickname, PemFileSource, Resumption, ServerSettings, TlsServer};

struct Files {
    dir: tempfile::TempDir,
    ca: Ca,
    a: Issued,
    b: Issued,
    cert: PathBuf,
    key: PathBuf,
}

/// Replaces `dst` atomically, as an administrator's tool should.
fn replace(dst: &Path, data: &str) {
    let tmp = dst.with_extension("tmp");
    std::fs::write(&tmp, data).unwrap();
    std::fs::rename(&tmp, dst).unwrap();
}

impl Files {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("Reload Root");
        let a = ca.issue(Leaf::server("cert-a", Kind::Ecdsa));
        let b = ca.issue(Leaf::server("cert-b", Kind::Ecdsa));
        let cert = write(dir.path(), "server.crt", &a.cert_pem);
        let key = write(dir.path(), "server.key", &a.key_pem);
        Self {
            dir,
            ca,
            a,
            b,
            cert,
            key,
        }
    }
    fn serve(&self, which: &Issued) {
        replace(&self.cert, &which.cert_pem);
        replace(&self.key, &which.key_pem);
    }
    fn server(&self, resumption: Resumption) -> Arc<TlsServer> {
        let nick: Nickname = "Server-Cert".parse().unwrap();
        let source = PemFileSource::new().with_credential(nick.clone(), &self.cert, &self.key);
        let mut s = ServerSettings::new(vec![nick]);
        s.resumption = resumption;
        Arc::new(TlsServer::new(Arc::new(source), s).unwrap())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_swaps_under_load_without_a_failed_handshake() {
    let f = Files::new();
    let tls = f.server(Resumption::disabled());
    let srv = TestServer::start(Arc::clone(&tls)).await;
    let config = rust_client_config(&f.ca.cert_der);
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
                let leaf = rust_handshake(addr, Arc::clone(&config))
                    .await
                    .map(|h| h.leaf);
                leaves.push(leaf);
                count.fetch_add(1, Ordering::SeqCst);
            }
            leaves
        }));
    }
    let swapper = {
        let tls = Arc::clone(&tls);
        let (a, b, cert, key) = (f.a.clone(), f.b.clone(), f.cert.clone(), f.key.clone());
        let count = Arc::clone(&count);
        tokio::task::spawn_blocking(move || {
            for i in 0..100 {
                let next = if i % 2 == 0 { &b } else { &a };
                replace(&cert, &next.cert_pem);
                replace(&key, &next.key_pem);
                tls.reload().unwrap();
                // At least one handshake finishes between two swaps (so
                // every configuration serves), bounded to 30 s.
                let before = count.load(Ordering::SeqCst);
                for _ in 0..30_000 {
                    if count.load(Ordering::SeqCst) > before {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        })
    };
    swapper.await.unwrap();
    done.store(true, Ordering::SeqCst);
    assert_eq!(tls.generation(), 101);
    let (mut total, mut seen_a, mut seen_b) = (0, 0, 0);
    for c in clients {
        for leaf in c.await.unwrap() {
            let leaf = leaf.expect("a handshake failed during reloads");
            total += 1;
            if leaf == f.a.cert_der {
                seen_a += 1;
            } else if leaf == f.b.cert_der {
                seen_b += 1;
            } else {
                panic!("a handshake got neither the old nor the new certificate");
            }
        }
    }
    eprintln!("{total} handshakes during 100 reloads: {seen_a} with A, {seen_b} with B");
    assert!(
        total >= 100 && seen_a > 0 && seen_b > 0,
        "{total} {seen_a} {seen_b}"
    );
    // After an even number of swaps, A is served again.
    assert_eq!(
        rust_handshake(srv.addr, config).await.unwrap().leaf,
        f.a.cert_der
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_handshake_in_flight_finishes_with_the_old_certificate() {
    use portcullis_tlsconf::pki_types::ServerName;
    use portcullis_tlsconf::rustls::ClientConnection;
    let f = Files::new();
    let tls = f.server(Resumption::default());
    let mut srv = TestServer::start(Arc::clone(&tls)).await;
    let config = rust_client_config(&f.ca.cert_der);
    let (addr, cfg) = (srv.addr, Arc::clone(&config));
    let (to_test, mut from_client) = tokio::sync::mpsc::unbounded_channel::<()>();
    let (to_client, from_test) = std::sync::mpsc::channel::<()>();
    let client = tokio::task::spawn_blocking(move || {
        let mut sock = std::net::TcpStream::connect(addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut conn =
            ClientConnection::new(cfg, ServerName::try_from("localhost").unwrap()).unwrap();
        // ClientHello out, the server's first flight (with its certificate) in.
        conn.write_tls(&mut sock).unwrap();
        conn.read_tls(&mut sock).unwrap();
        // Mid-handshake: let the test reload, then finish.
        to_test.send(()).unwrap();
        from_test.recv().unwrap();
        conn.process_new_packets().unwrap();
        while conn.is_handshaking() {
            conn.complete_io(&mut sock).unwrap();
        }
        while conn.wants_write() {
            conn.write_tls(&mut sock).unwrap();
        }
        conn.send_close_notify();
        while conn.wants_write() {
            conn.write_tls(&mut sock).unwrap();
        }
        conn.peer_certificates().unwrap()[0].clone().into_owned()
    });
    from_client.recv().await.unwrap();
    f.serve(&f.b);
    tls.reload().unwrap();
    to_client.send(()).unwrap();
    assert_eq!(
        client.await.unwrap(),
        f.a.cert_der,
        "the in-flight handshake must keep the old certificate"
    );
    srv.next().await.result.unwrap();
    // The next handshake gets the new one.
    assert_eq!(
        rust_handshake(srv.addr, config).await.unwrap().leaf,
        f.b.cert_der
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_configuration_is_refused_and_the_old_one_stays() {
    let f = Files::new();
    let tls = f.server(Resumption::default());
    let srv = TestServer::start(Arc::clone(&tls)).await;
    let config = rust_client_config(&f.ca.cert_der);

    // Garbage certificate.
    replace(
        &f.cert,
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    );
    assert!(tls.reload().is_err());
    // Certificate and key that do not match.
    replace(&f.cert, &f.b.cert_pem);
    replace(&f.key, &f.a.key_pem);
    let e = tls.reload().unwrap_err();
    assert!(
        e.to_string().contains("key does not match certificate"),
        "{e}"
    );
    // Missing file.
    std::fs::remove_file(&f.key).unwrap();
    assert!(tls.reload().is_err());
    // Settings naming an unknown certificate.
    let e = tls
        .reconfigure(ServerSettings::new(vec!["nope".parse().unwrap()]))
        .unwrap_err();
    assert!(
        e.to_string().contains("no certificate with nickname"),
        "{e}"
    );

    assert_eq!(tls.generation(), 1);
    assert_eq!(
        rust_handshake(srv.addr, Arc::clone(&config))
            .await
            .unwrap()
            .leaf,
        f.a.cert_der
    );
    // Mended: the next reload takes.
    f.serve(&f.b);
    assert_eq!(tls.reload().unwrap(), 2);
    // A fresh client (a resumed session would report the certificate of
    // its original handshake).
    drop(config);
    let fresh = rust_client_config(&f.ca.cert_der);
    assert_eq!(
        rust_handshake(srv.addr, fresh).await.unwrap().leaf,
        f.b.cert_der
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn watched_files_reload_by_themselves() {
    let f = Files::new();
    let tls = f.server(Resumption::default());
    let srv = TestServer::start(Arc::clone(&tls)).await;
    let config = rust_client_config(&f.ca.cert_der);
    let watch = tls.watch(Duration::from_millis(50));
    f.serve(&f.b);
    let mut waited = 0;
    while tls.generation() < 2 {
        // A hang guard, not a speed check.
        assert!(waited < 2400, "the watch did not reload within 120 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    assert_eq!(
        rust_handshake(srv.addr, Arc::clone(&config))
            .await
            .unwrap()
            .leaf,
        f.b.cert_der
    );
    let generation = tls.generation();
    // A broken change is seen, refused, and the certificate stays.
    let refused = tls.refused_reloads();
    replace(&f.cert, "garbage");
    let mut waited = 0;
    while tls.refused_reloads() == refused {
        // A hang guard, not a speed check.
        assert!(
            waited < 2400,
            "the watch did not see the broken file within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    assert_eq!(tls.generation(), generation);
    assert_eq!(
        rust_handshake(srv.addr, Arc::clone(&config))
            .await
            .unwrap()
            .leaf,
        f.b.cert_der
    );
    // Dropping the guard joins the watch thread, so once it returns no
    // further change can be picked up.
    drop(watch);
    f.serve(&f.a);
    assert_eq!(tls.generation(), generation);
    let _ = &f.dir;
}

#[tokio::test(flavor = "multi_thread")]
async fn resumption_tickets_survive_reload_and_can_be_switched_off() {
    let f = Files::new();
    for (resumption, want_resumed) in [
        (Resumption::default(), true),
        (Resumption::disabled(), false),
    ] {
        let tls = f.server(resumption.clone());
        let srv = TestServer::start(Arc::clone(&tls)).await;
        let config = rust_client_config(&f.ca.cert_der);
        let first = rust_handshake(srv.addr, Arc::clone(&config)).await.unwrap();
        assert!(!first.resumed);
        let second = rust_handshake(srv.addr, Arc::clone(&config)).await.unwrap();
        assert_eq!(second.resumed, want_resumed, "{resumption:?}");
        // Ticket keys are kept across a reload.
        tls.reload().unwrap();
        let third = rust_handshake(srv.addr, Arc::clone(&config)).await.unwrap();
        assert_eq!(third.resumed, want_resumed, "after reload, {resumption:?}");
    }
    // Tickets off, cache on: TLS 1.3 resumes through the stateful cache.
    let mut r = Resumption::default();
    r.tickets = false;
    let tls = f.server(r);
    let srv = TestServer::start(Arc::clone(&tls)).await;
    let config = rust_client_config(&f.ca.cert_der);
    rust_handshake(srv.addr, Arc::clone(&config)).await.unwrap();
    assert!(rust_handshake(srv.addr, config).await.unwrap().resumed);
}

#[tokio::test(flavor = "multi_thread")]
async fn ticket_keys_rotate_and_old_tickets_are_refused() {
    let f = Files::new();
    let mut r = Resumption::default();
    // Tickets only (no stateful cache), with a short key lifetime: a key
    // encrypts new tickets for one lifetime and still decrypts for one more.
    r.cache_size = 0;
    let lifetime = Duration::from_secs(3);
    r.ticket_key_lifetime = lifetime;
    let tls = f.server(r);
    let srv = TestServer::start(Arc::clone(&tls)).await;

    let resumes = |config: &Arc<rustls::ClientConfig>| {
        let config = Arc::clone(config);
        async move { rust_handshake(srv.addr, config).await.unwrap().resumed }
    };

    // A fresh ticket resumes. "Fresh" is younger than one key lifetime,
    // which only guarantees decryption; a pair of handshakes that a busy
    // machine spread over more than that proves nothing, so it is retried
    // (the expiry below is checked by waiting, never by hurrying).
    let mut tried = 0;
    loop {
        let config = rust_client_config(&f.ca.cert_der);
        let started = std::time::Instant::now();
        assert!(!resumes(&config).await);
        let resumed = resumes(&config).await;
        if started.elapsed() < lifetime {
            assert!(
                resumed,
                "a ticket younger than one key lifetime did not resume"
            );
            break;
        }
        tried += 1;
        assert!(
            tried < 20,
            "no two handshakes within {lifetime:?} in 20 tries"
        );
    }

    // A ticket older than two key lifetimes is refused even on a quiet
    // server (where the rotator has switched keys only once since): the
    // client falls back to a full handshake.
    let config = rust_client_config(&f.ca.cert_der);
    assert!(!resumes(&config).await);
    tokio::time::sleep(Duration::from_millis(6_500)).await;
    assert!(
        !resumes(&config).await,
        "a ticket under a rotated-out key resumed"
    );
    // And the new ticket from that full handshake resumes again.
    assert!(resumes(&config).await);
}
