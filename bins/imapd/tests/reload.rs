//! imapd reloads its configuration on SIGHUP: new connections see the
//! new filters and certificates, a session logged in through imapd to
//! the Dovecot fixture goes on, a broken configuration is refused and the
//! old one keeps serving. Python's imaplib and `openssl s_client` are the
//! clients.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

mod support;

use portcullis_test_support::ca::TestCa;
use portcullis_test_support::dovecot::Dovecot;
use support::{Imapd, fingerprint, install_server_certificate, served_fingerprint};

/// A filter that denies every IMAP client.
const DENY_ALL: &str = "domainnotallowed = \"imap: ALL\"";

fn assert_fetched(imapd: &Imapd, r: &support::Fields, user: &str) {
    assert_eq!(r.get("fetch"), "OK", "{}", imapd.daemon.log().text());
    let message = r.bytes("message");
    assert!(
        Dovecot::shared()
            .messages(user)
            .contains(&message.as_slice()),
        "{}",
        String::from_utf8_lossy(&message)
    );
}

#[test]
fn sighup_with_a_denying_filter_refuses_new_connections_while_a_proxied_session_goes_on() {
    let imapd = Imapd::start("", "");
    assert!(imapd.greeting().starts_with("* OK"));
    let held = imapd.hold("alice", "alice-pw");

    imapd.rewrite(DENY_ALL, "");
    let outcome = imapd.reload(1);
    assert!(outcome.contains("configuration reloaded"), "{outcome}");

    // New connections: refused by the new filter, on both ports.
    let greeting = imapd.greeting();
    assert!(
        greeting.starts_with("* BYE"),
        "{greeting}\n{}",
        imapd.daemon.log().text()
    );
    let refused = imapd.session("bad", "alice", "alice-pw");
    assert!(
        refused.get("greeting").starts_with("* BYE"),
        "{}",
        refused.get("greeting")
    );
    imapd
        .daemon
        .log()
        .wait_for("denied by the service access filter", 2);

    // The session that logged in before the reload goes on: FETCH
    // through imapd from Dovecot, then NOOP and LOGOUT.
    let r = held.finish();
    assert_eq!(r.get("login"), "OK");
    assert_fetched(&imapd, &r, "alice");
    assert_eq!(r.get("noop"), "OK");
    assert_eq!(r.get("logout"), "OK");

    // And back: the filter removed, new connections are served again.
    imapd.rewrite("", "");
    assert!(imapd.reload(2).contains("configuration reloaded"));
    let r = imapd.session("fetch", "bob", "bob-pw");
    assert_fetched(&imapd, &r, "bob");
}

#[test]
fn a_broken_configuration_on_sighup_is_refused_and_the_old_one_keeps_serving() {
    let imapd = Imapd::start("", "");
    // Each broken configuration ([service.imap], [mmp] and closing
    // lines), and the parameter the refusal must name.
    let cases: [(&str, &str, &str, &str); 4] = [
        // A filter without its `service:` part.
        (
            "domainallowed = \"imap 127.0.0.1\"",
            "",
            "",
            "service.imap.domainallowed",
        ),
        // Not a limit list.
        ("", "connlimits = \"everyone\"", "", "mmp.connlimits"),
        // Not a metrics address.
        (
            "",
            "",
            "[local.metrics]\nlistenaddr = \"here\"\n",
            "local.metrics.listenaddr",
        ),
        // A certificate nobody has: the TLS step (the last) refuses.
        (
            "",
            "",
            "[local.imap]\nsslnicknames = \"No-Such-Cert\"\n",
            "local.imap.sslnicknames",
        ),
    ];
    for (n, (service_lines, mmp, tail, parameter)) in cases.iter().enumerate() {
        // Each also denies everyone, which must not take effect.
        imapd.rewrite_with_mmp(&format!("{DENY_ALL}\n{service_lines}"), mmp, tail);
        let outcome = imapd.reload(n + 1);
        assert!(
            outcome.contains("configuration reload refused") && outcome.contains(parameter),
            "{parameter}: {outcome}"
        );
        // The old configuration (no filter) still serves: greeting, login,
        // FETCH from the store, over the old TLS configuration.
        assert!(imapd.greeting().starts_with("* OK"), "{parameter}");
        let r = imapd.session("fetch", "alice", "alice-pw");
        assert_eq!(r.get("login"), "OK", "{parameter}");
        assert_fetched(&imapd, &r, "alice");
    }
    // A configuration file that is not TOML at all.
    imapd.write_raw("[local\nnot toml");
    let outcome = imapd.reload(cases.len() + 1);
    assert!(
        outcome.contains("configuration reload refused"),
        "{outcome}"
    );
    assert!(imapd.greeting().starts_with("* OK"));
    // Still alive to a good one.
    imapd.rewrite(DENY_ALL, "");
    assert!(
        imapd
            .reload(cases.len() + 2)
            .contains("configuration reloaded")
    );
    assert!(imapd.greeting().starts_with("* BYE"));
}

#[test]
fn a_new_certificate_in_the_database_is_served_to_new_connections_after_sighup() {
    let imapd = Imapd::start("", "");
    let first = served_fingerprint(imapd.sslport, false);
    assert_eq!(served_fingerprint(imapd.port, true), first);
    // A session that is open through the old certificate.
    let held = imapd.hold("alice", "alice-pw");

    // A new key and certificate under the same nickname, from another CA.
    let other_ca = TestCa::new("imapd renewal CA").unwrap();
    let renewed = install_server_certificate(imapd.dir.path(), &other_ca);
    let expected = fingerprint(&renewed);
    assert_ne!(expected, first);
    // Nothing changes before the SIGHUP.
    assert_eq!(served_fingerprint(imapd.sslport, false), first);

    assert!(imapd.reload(1).contains("configuration reloaded"));
    assert_eq!(served_fingerprint(imapd.sslport, false), expected);
    assert_eq!(served_fingerprint(imapd.port, true), expected);
    let r = held.finish();
    assert_fetched(&imapd, &r, "alice");
}

#[test]
fn sighup_binds_a_new_listener_and_closes_a_removed_one() {
    let imapd = Imapd::start("", "");
    let mut ports = vec![imapd.port, imapd.sslport];
    ports.sort_unstable();
    assert_eq!(imapd.daemon.listening_ports().unwrap(), ports);
    let held = imapd.hold("alice", "alice-pw");

    // The STARTTLS listener off (port 0): closed; the session over the
    // implicit-TLS one goes on.
    let text = std::fs::read_to_string(imapd.rewrite("", ""))
        .unwrap()
        .replace(&format!("port = {}\n", imapd.port), "port = 0\n");
    imapd.write_raw(&text);
    assert!(imapd.reload(1).contains("configuration reloaded"));
    imapd.daemon.log().wait_for(
        &format!("no longer listening on 127.0.0.1:{}", imapd.port),
        1,
    );
    assert_eq!(imapd.daemon.listening_ports().unwrap(), vec![imapd.sslport]);
    assert!(std::net::TcpStream::connect(("127.0.0.1", imapd.port)).is_err());
    let r = held.finish();
    assert_fetched(&imapd, &r, "alice");

    // Back on: bound again and announced.
    imapd.rewrite("", "");
    assert!(imapd.reload(2).contains("configuration reloaded"));
    imapd.daemon.log().wait_for(
        &format!("listening on 127.0.0.1:{} (imap, starttls)", imapd.port),
        2,
    );
    assert_eq!(imapd.daemon.listening_ports().unwrap(), ports);
    assert!(imapd.greeting().starts_with("* OK"));
}
