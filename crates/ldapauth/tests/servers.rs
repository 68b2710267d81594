//! LDAPS, StartTLS, wrong trust roots, and failover between two real slapd
//! instances (one stopped mid-run, one hung with SIGSTOP).
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{directory, settings};
use portcullis_ldapauth::{Error, Reject, Settings};
use portcullis_test_support::ca::TestCa;
use portcullis_test_support::slapd::Slapd;

fn tls_settings(slapd: &Slapd, ldaps: bool, ca: &std::path::Path) -> Settings {
    let mut s = settings(slapd);
    if ldaps {
        s.hosts = "127.0.0.1".into();
        s.port = Some(slapd.ldaps_port());
        s.use_ssl = true;
    } else {
        s.starttls = true;
    }
    s.ca_file = Some(ca.to_owned());
    s
}

#[tokio::test]
async fn ldaps_and_starttls_work_and_a_wrong_ca_fails_closed() {
    let slapd = Slapd::shared();
    let other = TestCa::new("Some other CA").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("wrong.pem");
    std::fs::write(&wrong, other.cert_pem()).unwrap();

    for ldaps in [true, false] {
        let d = directory(tls_settings(slapd, ldaps, &slapd.ca_pem_path()));
        let u = d
            .verify_password("alice@example.com", &"alice-pw".into())
            .await
            .unwrap();
        assert_eq!(u.dn, "uid=alice,ou=People,o=example.com,o=example");
        assert_eq!(
            d.verify_password("alice@example.com", &"nope".into())
                .await
                .unwrap_err(),
            Error::Rejected(Reject::BadPassword)
        );

        // The wrong CA: the handshake fails, nothing is accepted, and the
        // failure is temporary (not "bad password").
        let d = directory(tls_settings(slapd, ldaps, &wrong));
        let e = d
            .verify_password("alice@example.com", &"alice-pw".into())
            .await
            .unwrap_err();
        assert!(e.is_temporary(), "ldaps={ldaps}: {e:?}");
        let e = d.lookup("alice@example.com").await.unwrap_err();
        assert!(e.is_temporary(), "ldaps={ldaps}: {e:?}");
    }

    // Trust roots from the certificate database: its `C` CAs (what
    // msgcert add-cert -C adds); a `T`-only CA does not count for servers.
    let dir = tempfile::tempdir().unwrap();
    let pw = portcullis_certdb::Password::new("db-pw");
    let mut db = portcullis_certdb::CertDb::create(
        dir.path().join("db"),
        &pw,
        portcullis_certdb::KdfParams::INSECURE_FAST,
    )
    .unwrap();
    let ca_der = portcullis_certdb::decode_certificates(slapd.ca_pem().as_bytes())
        .unwrap()
        .remove(0);
    db.add_certificate("ldap-ca", &ca_der, "T,,".parse().unwrap())
        .unwrap();
    let roots = |db: &portcullis_certdb::CertDb| {
        db.trusted_cas(portcullis_certdb::CaUsage::ServerAuth)
            .unwrap()
    };
    assert!(roots(&db).is_empty());
    db.set_trust("ldap-ca", "CT,,".parse().unwrap()).unwrap();
    for ldaps in [true, false] {
        let mut s = tls_settings(slapd, ldaps, &wrong);
        s.ca_file = None;
        s.ca_certs = roots(&db);
        let u = directory(s)
            .verify_password("alice@example.com", &"alice-pw".into())
            .await
            .unwrap();
        assert_eq!(u.dn, "uid=alice,ou=People,o=example.com,o=example");
    }

    // No trust roots at all: refused at configuration time.
    let mut s = settings(slapd);
    s.use_ssl = true;
    assert!(matches!(
        portcullis_ldapauth::Directory::new(s),
        Err(Error::Config(_))
    ));
}

fn pair_settings(a: &Slapd, b: &Slapd) -> Settings {
    let mut s = settings(a);
    s.hosts = format!("127.0.0.1:{} 127.0.0.1:{}", a.port(), b.port());
    s.connect_timeout = Duration::from_secs(2);
    s.operation_timeout = Duration::from_secs(3);
    s.failover_hold = Duration::from_secs(600);
    s.pool_size = 4;
    s
}

/// The longest a single login may take: every server can cost a connect
/// timeout and a few operation timeouts (domain search, user search,
/// bind), plus scheduling slack.
fn bound(s: &Settings) -> Duration {
    (s.connect_timeout + s.operation_timeout * 4) * 2 + Duration::from_secs(3)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_when_the_first_server_stops_during_1000_logins() {
    // The stop is triggered by progress, not by a clock: the worker whose
    // login completes the 200th stops the first server while the other
    // workers go on. No worker runs more than 100 logins before the stop
    // has finished, so at least 600 logins start after it on any machine.
    // Every check below is relative to the observed stop.
    const WORKERS: usize = 4;
    const PER_WORKER: usize = 250;
    const STOP_AFTER: usize = 200;
    const BEFORE_STOP_AT_MOST: usize = 100;

    let first = Slapd::start().unwrap();
    let second = Slapd::start().unwrap();
    let s = pair_settings(&first, &second);
    // Not a speed check: a hang guard far above any real login (each may
    // cost a connect timeout and a few operation timeouts per server).
    let hang_guard = bound(&s) * 4;
    let d = directory(s);
    let first = Arc::new(std::sync::Mutex::new(Some(first)));

    let done = Arc::new(AtomicUsize::new(0));
    // 0: running, 1: stopping, 2: stopped.
    let (phase_tx, phase_rx) = tokio::sync::watch::channel(0u8);
    let phase_tx = Arc::new(phase_tx);

    struct Login {
        n: usize,
        right: bool,
        result: Result<String, Error>,
        /// The stop had finished before this login began.
        after_stop: bool,
        /// This login was running while the server was being stopped.
        overlapped_stop: bool,
    }

    let mut tasks = Vec::new();
    for worker in 0..WORKERS {
        let d = d.clone();
        let done = done.clone();
        let first = first.clone();
        let phase_tx = phase_tx.clone();
        let mut phase_rx = phase_rx.clone();
        tasks.push(tokio::spawn(async move {
            let mut results = Vec::new();
            for i in 0..PER_WORKER {
                if i == BEFORE_STOP_AT_MOST {
                    // Wait for the stop to finish before going on.
                    phase_rx.wait_for(|p| *p == 2).await.unwrap();
                }
                // Every third login uses a wrong password.
                let right = (i + worker) % 3 != 0;
                let pw = if right { "alice-pw" } else { "alice-wrong" };
                let began = *phase_rx.borrow();
                let r = tokio::time::timeout(
                    hang_guard,
                    d.verify_password("alice@example.com", &pw.into()),
                )
                .await
                .unwrap_or_else(|_| panic!("worker {worker} login {i} hung"));
                let ended = *phase_rx.borrow();
                let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                if n == STOP_AFTER {
                    phase_tx.send_replace(1);
                    let first = first.clone();
                    tokio::task::spawn_blocking(move || {
                        if let Some(mut f) = first.lock().unwrap().take() {
                            f.stop();
                        }
                    })
                    .await
                    .unwrap();
                    phase_tx.send_replace(2);
                }
                results.push(Login {
                    n,
                    right,
                    result: r.map(|u| u.dn),
                    after_stop: began == 2,
                    overlapped_stop: began < 2 && ended >= 1,
                });
            }
            results
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    assert_eq!(all.len(), WORKERS * PER_WORKER);
    assert_eq!(*phase_rx.borrow(), 2, "the first server was stopped");

    let mut late = 0;
    for l in &all {
        let n = l.n;
        match (l.right, &l.result) {
            (true, Ok(dn)) => assert_eq!(dn, "uid=alice,ou=People,o=example.com,o=example"),
            (false, Ok(_)) => panic!("login {n}: a wrong password was accepted"),
            (false, Err(Error::Rejected(Reject::BadPassword))) => {}
            // Only a login that was running while the server went away may
            // see it go; every other one is answered by a live server.
            (_, Err(e)) if e.is_temporary() && l.overlapped_stop => {}
            (right, Err(e)) => panic!("login {n} (right={right}): {e:?}"),
        }
        if l.after_stop {
            late += 1;
        }
    }
    // Logins went on through the second server.
    assert!(
        late >= WORKERS * (PER_WORKER - BEFORE_STOP_AT_MOST),
        "{late} logins after the stop"
    );
    let status = d.server_status();
    assert!(!status[0].1 && status[1].1, "{status:?}");

    // Both down: a temporary failure, never "bad password".
    let mut second = second;
    second.stop();
    let e = d
        .verify_password("alice@example.com", &"alice-pw".into())
        .await
        .unwrap_err();
    assert!(e.is_temporary(), "{e:?}");
    let d2 = directory({
        let mut s = settings(&second);
        s.connect_timeout = Duration::from_secs(1);
        s
    });
    let e = d2
        .verify_password("alice@example.com", &"alice-wrong".into())
        .await
        .unwrap_err();
    assert!(e.is_temporary(), "{e:?}");
}

fn signal(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success(), "kill {sig} {pid}");
    // kill(2) returns once the signal is queued, not once the process has
    // stopped: a slapd thread already running may still answer. Wait for
    // the kernel to report the process stopped before going on.
    if sig == "-STOP" {
        for _ in 0..10_000 {
            if every_thread_stopped(pid) {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("slapd {pid} did not stop");
    }
}

/// Whether every thread of `pid` is stopped (`T` in `/proc/PID/task/*/stat`,
/// where the state follows the command name's closing parenthesis).
fn every_thread_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    let mut any = false;
    for task in tasks.flatten() {
        let text = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        let state = text
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next());
        if !matches!(state, Some('T' | 't')) {
            return false;
        }
        any = true;
    }
    any
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_server_is_timed_out_and_skipped() {
    let mut first = Slapd::start().unwrap();
    let second = Slapd::start().unwrap();
    let s = pair_settings(&first, &second);
    let d = directory(s);
    // Warm the pool on the first server.
    assert!(
        d.verify_password("alice@example.com", &"alice-pw".into())
            .await
            .is_ok()
    );
    assert!(d.server_status().iter().all(|(_, up)| *up));

    signal(first.pid(), "-STOP");
    let result = async {
        // Pooled connection to the hung server: the operation times out,
        // the server is skipped, the second answers.
        let r = d.verify_password("bob@example.com", &"bob-pw".into()).await;
        assert!(r.is_ok(), "{r:?}");
        // From now on the hung server is skipped: no more waiting on it.
        let status = d.server_status();
        assert!(!status[0].1 && status[1].1, "{status:?}");
        for _ in 0..5 {
            assert!(
                d.verify_password("alice@example.com", &"alice-pw".into())
                    .await
                    .is_ok()
            );
            assert_eq!(
                d.verify_password("alice@example.com", &"bad".into())
                    .await
                    .unwrap_err(),
                Error::Rejected(Reject::BadPassword)
            );
        }
        assert_eq!(d.server_status(), status);
        // A fresh directory whose first connection goes to the hung server
        // (TCP accepts, nothing answers): timed out, then the second.
        let d2 = directory(pair_settings(&first, &second));
        let r = d2
            .verify_password("carol@example.com", &"carol-pw".into())
            .await;
        assert!(r.is_ok(), "{r:?}");
        assert!(!d2.server_status()[0].1);
    };
    // Resume the process whatever happened, before it is stopped. The
    // bound is a hang guard (the timeouts end every wait), not a speed check.
    let outcome = tokio::time::timeout(bound(&pair_settings(&first, &second)) * 4, result).await;
    signal(first.pid(), "-CONT");
    first.stop();
    outcome.expect("hung-server scenario finished");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_server_is_probed_again_after_a_failure() {
    let mut slapd = Slapd::start().unwrap();
    let mut s = settings(&slapd);
    s.connect_timeout = Duration::from_secs(1);
    s.operation_timeout = Duration::from_secs(1);
    // Far longer than the test: only a probe can bring it back.
    s.failover_hold = Duration::from_secs(3600);
    let d = directory(s);
    assert!(
        d.verify_password("alice@example.com", &"alice-pw".into())
            .await
            .is_ok()
    );

    signal(slapd.pid(), "-STOP");
    let hung = tokio::time::timeout(
        Duration::from_secs(60),
        d.verify_password("alice@example.com", &"alice-pw".into()),
    )
    .await;
    signal(slapd.pid(), "-CONT");
    let e = hung.expect("bounded by the timeouts").unwrap_err();
    assert!(e.is_temporary(), "{e:?}");
    assert!(!d.server_status()[0].1, "the hung server is marked down");

    // Back again: the only server is probed rather than refused for the
    // whole hold, and a wrong password is still a rejection.
    let r = tokio::time::timeout(
        Duration::from_secs(60),
        d.verify_password("alice@example.com", &"alice-pw".into()),
    )
    .await
    .expect("bounded");
    assert!(r.is_ok(), "{r:?}");
    assert!(d.server_status()[0].1, "a successful probe ends the hold");
    assert_eq!(
        d.verify_password("alice@example.com", &"nope".into())
            .await
            .unwrap_err(),
        Error::Rejected(Reject::BadPassword)
    );
    slapd.stop();
}
