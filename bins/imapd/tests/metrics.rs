//! imapd's metrics, scraped with curl: the counters move with a good and
//! a bad login through imapd to the Dovecot fixture; only GET /metrics is
//! served; with no metrics address nothing but the IMAP listeners
//! listens.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

mod support;

use std::time::{Duration, Instant};

use portcullis_test_support::daemon::LOG_WAIT;
use portcullis_test_support::free_port;
use support::{Imapd, http, value};

fn scrape(port: u16) -> String {
    let (status, body) = http(port, "GET", "/metrics");
    assert_eq!(status, 200, "{body}");
    body
}

/// Scrapes until `series` reaches at least `min` (relay bytes are added
/// when a session's relay ends, just after the client saw its LOGOUT).
fn scrape_until(port: u16, series: &str, min: f64) -> String {
    let deadline = Instant::now() + LOG_WAIT;
    loop {
        let text = scrape(port);
        if value(&text, series) >= min {
            return text;
        }
        assert!(Instant::now() < deadline, "{series} below {min}:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn counters_move_with_a_good_and_a_bad_login() {
    let metrics_port = free_port();
    let imapd = Imapd::start(
        "",
        &format!("[local.imap.metrics]\nlistenaddr = \"127.0.0.1:{metrics_port}\"\n"),
    );
    imapd.daemon.log().wait_for(
        &format!("metrics on http://127.0.0.1:{metrics_port}/metrics"),
        1,
    );
    let mut ports = vec![imapd.port, imapd.sslport, metrics_port];
    ports.sort_unstable();
    assert_eq!(imapd.daemon.listening_ports().unwrap(), ports);

    let login = |result: &str| {
        format!(
            "portcullis_logins_total{{service=\"imap\",mechanism=\"PLAIN\",result=\"{result}\"}}"
        )
    };
    let accepted = "portcullis_connections_accepted_total{service=\"imap\"}";
    let handshakes = "portcullis_tls_handshakes_total{service=\"imap\",result=\"ok\"}";
    let penalties = "portcullis_penalties_total{service=\"imap\"}";
    let to_client = "portcullis_relay_bytes_total{service=\"imap\",direction=\"store_to_client\"}";
    let to_store = "portcullis_relay_bytes_total{service=\"imap\",direction=\"client_to_store\"}";

    let before = scrape(metrics_port);
    assert!(before.ends_with("# EOF\n"), "{before}");
    for series in [&login("success"), &login("failure"), accepted, penalties] {
        assert_eq!(value(&before, series), 0.0, "{series}:\n{before}");
    }

    let bad = imapd.session("bad", "alice", "not-alices-password");
    assert!(bad.get("login").starts_with("NO"), "{}", bad.get("login"));
    let after_bad = scrape(metrics_port);
    assert_eq!(value(&after_bad, &login("failure")), 1.0, "{after_bad}");
    assert_eq!(value(&after_bad, &login("success")), 0.0, "{after_bad}");
    // mmp.authfailuredelay = 1: the failure reply came after a penalty.
    assert_eq!(value(&after_bad, penalties), 1.0, "{after_bad}");
    assert_eq!(value(&after_bad, accepted), 1.0, "{after_bad}");
    assert_eq!(value(&after_bad, handshakes), 1.0, "{after_bad}");

    let good = imapd.session("fetch", "alice", "alice-pw");
    assert_eq!(good.get("login"), "OK");
    let message = good.bytes("message");
    let after_good = scrape_until(metrics_port, to_client, 1.0);
    assert_eq!(value(&after_good, &login("success")), 1.0, "{after_good}");
    assert_eq!(value(&after_good, &login("failure")), 1.0, "{after_good}");
    assert_eq!(value(&after_good, penalties), 1.0, "{after_good}");
    assert_eq!(value(&after_good, accepted), 2.0, "{after_good}");
    assert_eq!(value(&after_good, handshakes), 2.0, "{after_good}");
    // The store sent at least the message; the client at least its
    // SELECT, FETCH, NOOP and LOGOUT.
    assert!(
        value(&after_good, to_client) >= message.len() as f64,
        "{after_good}"
    );
    assert!(value(&after_good, to_store) > 0.0, "{after_good}");
    assert_eq!(
        value(
            &after_good,
            "portcullis_store_errors_total{service=\"imap\",kind=\"unavailable\"}"
        ),
        0.0
    );

    // Only GET /metrics.
    assert_eq!(http(metrics_port, "GET", "/").0, 404);
    assert_eq!(http(metrics_port, "GET", "/metrics/extra").0, 404);
    assert_eq!(http(metrics_port, "POST", "/metrics").0, 404);

    // A reload is counted, the counters survive it, and the metrics
    // listener moves to a new address.
    let moved = free_port();
    imapd.rewrite(
        "",
        &format!("[local.imap.metrics]\nlistenaddr = \"127.0.0.1:{moved}\"\n"),
    );
    assert!(imapd.reload(1).contains("configuration reloaded"));
    let mut ports = vec![imapd.port, imapd.sslport, moved];
    ports.sort_unstable();
    assert_eq!(imapd.daemon.listening_ports().unwrap(), ports);
    let after_reload = scrape(moved);
    assert_eq!(
        value(
            &after_reload,
            "portcullis_reloads_total{service=\"imap\",result=\"ok\"}"
        ),
        1.0,
        "{after_reload}"
    );
    assert_eq!(
        value(&after_reload, &login("success")),
        1.0,
        "{after_reload}"
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", metrics_port)).is_err());
    // Unset: closed.
    imapd.rewrite("", "");
    assert!(imapd.reload(2).contains("configuration reloaded"));
    let mut ports = vec![imapd.port, imapd.sslport];
    ports.sort_unstable();
    assert_eq!(imapd.daemon.listening_ports().unwrap(), ports);
}

#[test]
fn no_metrics_address_no_metrics_listener() {
    let imapd = Imapd::start("", "");
    let mut ports = vec![imapd.port, imapd.sslport];
    ports.sort_unstable();
    assert_eq!(imapd.daemon.listening_ports().unwrap(), ports);
    // Serving still works, and nothing more listens after it.
    let r = imapd.session("fetch", "alice", "alice-pw");
    assert_eq!(r.get("login"), "OK");
    assert_eq!(imapd.daemon.listening_ports().unwrap(), ports);
    assert!(!imapd.daemon.log().text().contains("metrics on"));
}
