//! smtpd's metrics, scraped with curl: a bad AUTH, a good AUTH and one
//! message relayed through smtpd to the Postfix fixture move exactly the
//! counters they should (connections, TLS handshakes, logins by
//! mechanism, penalties, messages by result, relayed message bytes).
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

mod support;

use portcullis_test_support::daemon::LOG_WAIT;
use portcullis_test_support::field;
use portcullis_test_support::free_port;
use portcullis_test_support::frontend_config::{metric, scrape, scrape_until};
use support::{alice, postfix, postfix_client_line, smtplib, start_with};

#[test]
fn a_bad_auth_a_good_auth_and_one_relayed_message_are_counted_exactly() {
    let metrics_port = free_port();
    let smtpd = start_with(
        &format!("[local.smtp.metrics]\nlistenaddr = \"127.0.0.1:{metrics_port}\""),
        "",
        "",
    );
    smtpd.log().wait_for(
        &format!("metrics on http://127.0.0.1:{metrics_port}/metrics"),
        1,
    );

    let login = |result: &str| {
        format!(
            "portcullis_logins_total{{service=\"smtp\",mechanism=\"PLAIN\",result=\"{result}\"}}"
        )
    };
    let messages =
        |result: &str| format!("portcullis_messages_total{{service=\"smtp\",result=\"{result}\"}}");
    let accepted = "portcullis_connections_accepted_total{service=\"smtp\"}";
    let handshakes = "portcullis_tls_handshakes_total{service=\"smtp\",result=\"ok\"}";
    let penalties = "portcullis_penalties_total{service=\"smtp\"}";
    let bytes = "portcullis_message_bytes_total{service=\"smtp\"}";

    let before = scrape(metrics_port);
    for series in [
        &login("success"),
        &login("failure"),
        &messages("relayed"),
        accepted,
        handshakes,
        penalties,
        bytes,
    ] {
        assert_eq!(metric(&before, series), 0.0, "{series}:\n{before}");
    }

    // A bad AUTH PLAIN after STARTTLS: refused after the penalty delay
    // (mmp.authfailuredelay = 1), and MAIL FROM is refused with it.
    let mark = "metrics-bad-3c1";
    let rcpt = format!("{mark}@elsewhere.example");
    let mut bad = alice("starttls-plain", smtpd.port, &rcpt, mark);
    bad.password = "not-alices-password";
    let r = smtplib(&smtpd, &bad);
    assert!(field(&r, "auth").starts_with("535"), "{r:?}");
    assert!(field(&r, "send").starts_with("530"), "{r:?}");
    let after_bad = scrape_until(metrics_port, &login("failure"), 1.0);
    assert_eq!(metric(&after_bad, &login("failure")), 1.0, "{after_bad}");
    assert_eq!(metric(&after_bad, &login("success")), 0.0, "{after_bad}");
    assert_eq!(metric(&after_bad, penalties), 1.0, "{after_bad}");
    assert_eq!(metric(&after_bad, accepted), 1.0, "{after_bad}");
    assert_eq!(metric(&after_bad, handshakes), 1.0, "{after_bad}");
    assert_eq!(metric(&after_bad, &messages("relayed")), 0.0, "{after_bad}");

    // A good AUTH PLAIN and one message, which Postfix receives.
    let mark = "metrics-good-3c1";
    let rcpt = format!("{mark}@elsewhere.example");
    let good = alice("starttls-plain", smtpd.port, &rcpt, mark);
    let r = smtplib(&smtpd, &good);
    assert!(field(&r, "auth").starts_with("ok"), "{r:?}");
    assert!(field(&r, "send").starts_with("ok"), "{r:?}");
    let line = postfix_client_line(&rcpt);
    assert!(line.contains("sasl_username=alice"), "{line}");
    assert!(postfix().wait_for_delivery(&format!("body of {mark}"), LOG_WAIT));
    // What smtp_client.py sends (smtplib dot-stuffs the second line on
    // the wire; the count is of the content, unstuffed).
    let content = format!(
        "From: <{}>\r\nTo: <{rcpt}>\r\nSubject: {mark}\r\n\r\nbody of {mark}\r\n.leading dot line\r\n",
        good.from
    );

    let after = scrape_until(metrics_port, &messages("relayed"), 1.0);
    assert_eq!(metric(&after, &messages("relayed")), 1.0, "{after}");
    assert_eq!(metric(&after, &messages("refused")), 0.0, "{after}");
    assert_eq!(metric(&after, &messages("failed")), 0.0, "{after}");
    assert_eq!(metric(&after, bytes), content.len() as f64, "{after}");
    assert_eq!(metric(&after, &login("success")), 1.0, "{after}");
    assert_eq!(metric(&after, &login("failure")), 1.0, "{after}");
    assert_eq!(metric(&after, penalties), 1.0, "{after}");
    assert_eq!(metric(&after, accepted), 2.0, "{after}");
    assert_eq!(metric(&after, handshakes), 2.0, "{after}");
    assert_eq!(
        metric(
            &after,
            "portcullis_tls_handshakes_total{service=\"smtp\",result=\"failed\"}"
        ),
        0.0,
        "{after}"
    );
    // smtpd's own log line for the message agrees.
    let log = smtpd.log().wait_for("message", 1);
    assert!(log.contains(&format!("size={}", content.len())), "{log}");
}
