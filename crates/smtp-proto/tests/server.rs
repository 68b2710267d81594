//! The server session: STARTTLS discard rules, AUTH, refusals, limits,
//! BDAT framing, smuggling through a whole session, pipelining.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Daemon, config_from};
use portcullis_smtp_proto::reply::{self};
use portcullis_smtp_proto::{Error, Event, ServerConfig, ServerSession};

fn daemon(config: &str) -> Daemon {
    let mut d = Daemon::new(config_from(&format!("# config: {config}")));
    d.drive();
    d.out.clear();
    d
}

fn replies(d: &Daemon) -> Vec<String> {
    d.out_str()
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn last_reply(d: &Daemon) -> String {
    replies(d).last().cloned().unwrap_or_default()
}

#[test]
fn commands_pipelined_after_starttls_are_discarded() {
    let mut d = daemon("starttls sasl=PLAIN");
    d.feed(b"EHLO client.example\r\n");
    d.out.clear();
    // CVE-2011-0411: the injected commands arrive with STARTTLS, in the
    // same plaintext packet.
    d.feed(b"STARTTLS\r\nMAIL FROM:<evil@example.org>\r\nRCPT TO:<v@example.org>\r\n");
    assert_eq!(d.out_str(), "220 2.0.0 Ready to start TLS\r\n");
    assert!(d.session.tls_active());
    assert_eq!(d.session.discarded_after_starttls(), 55);
    assert!(
        !d.events.iter().any(|e| e.starts_with("Mail")),
        "{:?}",
        d.events
    );
    // RFC 3207 §4.2: EHLO again before anything else.
    d.out.clear();
    d.feed(b"MAIL FROM:<a@example.org>\r\n");
    assert_eq!(last_reply(&d), "503 5.5.1 Send EHLO or HELO first");
    d.feed(b"EHLO client.example\r\n");
    assert!(
        d.out_str().contains("250-AUTH PLAIN\r\n"),
        "AUTH is offered over TLS"
    );
    assert!(!d.out_str().contains("STARTTLS"), "not offered twice");
    d.feed(b"STARTTLS\r\n");
    assert_eq!(last_reply(&d), "503 5.5.1 TLS already active");
}

#[test]
fn starttls_unavailable_and_with_arguments() {
    let mut d = daemon("");
    d.feed(b"EHLO c.example\r\n");
    assert!(!d.out_str().contains("STARTTLS"));
    d.feed(b"STARTTLS\r\n");
    assert_eq!(last_reply(&d), "454 4.7.0 TLS not available");
    let mut d = daemon("starttls");
    d.feed(b"STARTTLS now\r\n");
    assert!(last_reply(&d).starts_with("501 5.5.4"));
}

#[test]
fn starttls_forgets_transaction_and_auth() {
    let mut d = daemon("starttls");
    d.feed(b"EHLO c.example\r\nMAIL FROM:<a@example.org>\r\n");
    assert!(d.session.in_transaction());
    d.feed(b"STARTTLS\r\n");
    assert!(!d.session.in_transaction());
    assert!(d.events.contains(&"Reset".to_owned()));
    assert_eq!(d.session.helo(), None);
}

#[test]
fn auth_needs_tls_by_default() {
    let mut d = daemon("starttls sasl=PLAIN,LOGIN");
    d.feed(b"EHLO c.example\r\n");
    assert!(!d.out_str().contains("AUTH"), "not advertised without TLS");
    d.feed(b"AUTH PLAIN dGVzdAB0ZXN0ADEyMzQ=\r\n");
    assert_eq!(
        last_reply(&d),
        "538 5.7.11 Encryption required for requested authentication mechanism"
    );
    assert!(!d.session.is_authenticated());
    assert!(!d.events.iter().any(|e| e.starts_with("Auth")));
    // Configured off: AUTH in the clear works.
    let mut c = config_from("# config: sasl=PLAIN");
    c.auth_requires_tls = false;
    let mut d = Daemon::new(c);
    d.feed(b"EHLO c.example\r\nAUTH PLAIN AGFsaWNlAGFsaWNlLXB3\r\n");
    assert_eq!(last_reply(&d), "235 2.7.0 Authentication successful");
}

#[test]
fn auth_login_plain_empty_and_cancel() {
    let mut d = daemon("tls sasl=PLAIN,LOGIN");
    d.feed(b"EHLO c.example\r\n");
    assert!(d.out_str().contains("250-AUTH PLAIN LOGIN\r\n"));
    d.out.clear();
    // LOGIN: two challenges.
    d.feed(b"AUTH LOGIN\r\n");
    assert_eq!(d.out_str(), "334 VXNlcm5hbWU6\r\n");
    d.feed(b"YWxpY2U=\r\n");
    assert!(d.out_str().ends_with("334 UGFzc3dvcmQ6\r\n"));
    d.feed(b"YWxpY2UtcHc=\r\n");
    assert_eq!(last_reply(&d), "235 2.7.0 Authentication successful");
    assert!(d.session.is_authenticated());

    // "=" is an empty initial response, which PLAIN cannot use; without
    // one the server asks with an empty challenge.
    let mut d = daemon("tls sasl=PLAIN");
    d.feed(b"EHLO c.example\r\nAUTH PLAIN =\r\n");
    assert_eq!(last_reply(&d), "501 5.5.2 Cannot decode response");
    d.feed(b"AUTH PLAIN\r\n");
    assert_eq!(last_reply(&d), "334 ");
    d.feed(b"AGFsaWNlAGFsaWNlLXB3\r\n");
    assert_eq!(last_reply(&d), "235 2.7.0 Authentication successful");

    // "*" cancels; a wrong password fails; neither authenticates.
    let mut d = daemon("tls sasl=PLAIN");
    d.feed(b"EHLO c.example\r\nAUTH PLAIN\r\n*\r\n");
    assert_eq!(last_reply(&d), "501 5.0.0 Authentication aborted");
    d.feed(b"AUTH PLAIN AGFsaWNlAHdyb25n\r\n");
    assert_eq!(
        last_reply(&d),
        "535 5.7.8 Authentication credentials invalid"
    );
    d.feed(b"AUTH CRAM-MD5\r\n");
    assert_eq!(last_reply(&d), "504 5.5.4 Unrecognized authentication type");
    assert!(!d.session.is_authenticated());
    // AUTH inside a transaction is a sequence error.
    d.feed(b"MAIL FROM:<a@example.org>\r\nAUTH PLAIN =\r\n");
    assert!(last_reply(&d).starts_with("503 5.5.1"));
}

#[test]
fn impersonation_commands_are_refused() {
    let mut d = daemon("");
    d.feed(b"EHLO c.example\r\n");
    d.out.clear();
    d.feed(b"XCLIENT ADDR=192.0.2.1 LOGIN=root\r\nXFORWARD ADDR=192.0.2.1\r\nPROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n");
    assert_eq!(
        replies(&d),
        [
            "550 5.7.0 Command refused",
            "550 5.7.0 Command refused",
            "550 5.7.0 Command refused"
        ]
    );
}

#[test]
fn recipients_and_messages_are_limited() {
    let mut d = daemon("rcpts=2 messages=1");
    d.feed(b"EHLO c.example\r\nMAIL FROM:<a@example.org>\r\n");
    d.feed(b"RCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nRCPT TO:<d@example.org>\r\n");
    assert_eq!(last_reply(&d), "452 4.5.3 Too many recipients");
    d.feed(b"DATA\r\nhi\r\n.\r\n");
    assert!(last_reply(&d).starts_with("250 2.0.0 Ok: queued"));
    d.feed(b"MAIL FROM:<a@example.org>\r\n");
    assert_eq!(
        last_reply(&d),
        "421 4.7.0 Too many messages in this session, closing connection"
    );
    assert!(d.closed);
}

#[test]
fn oversize_declared_and_actual() {
    let mut d = daemon("size=100");
    d.feed(b"EHLO c.example\r\n");
    assert!(d.out_str().contains("250-SIZE 100\r\n"));
    d.feed(b"MAIL FROM:<a@example.org> SIZE=101\r\n");
    assert_eq!(
        last_reply(&d),
        "552 5.3.4 Message size exceeds fixed maximum message size"
    );
    d.feed(b"MAIL FROM:<a@example.org> SIZE=50\r\nRCPT TO:<b@example.org>\r\nDATA\r\n");
    let line = "x".repeat(60);
    d.feed(format!("{line}\r\n{line}\r\n.\r\n").as_bytes());
    assert_eq!(
        last_reply(&d),
        "552 5.3.4 Message size exceeds fixed maximum message size"
    );
    assert!(d.events.contains(&"BodyAborted TooBig".to_owned()));
    assert!(!d.events.iter().any(|e| e.starts_with("EndOfData")));
    // The session goes on: the transaction is gone.
    d.feed(b"RCPT TO:<b@example.org>\r\n");
    assert_eq!(last_reply(&d), "503 5.5.1 Need MAIL command");
}

#[test]
fn smuggling_in_a_session_never_starts_a_second_transaction() {
    const SEQ: [&[u8]; 5] = [b"\n.\n", b"\n.\r\n", b"\r.\r", b"\r\n.\n", b"\r\n.\r\r\n"];
    for seq in SEQ {
        let mut d = daemon("");
        d.feed(
            b"EHLO c.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n",
        );
        let mut m = b"Subject: x\r\n\r\nhello".to_vec();
        m.extend_from_slice(seq);
        m.extend_from_slice(b"MAIL FROM:<evil@example.org>\r\nRCPT TO:<v@example.org>\r\nDATA\r\nfake\r\n\r\n.\r\nNOOP\r\n");
        d.feed(&m);
        let mails = d.events.iter().filter(|e| e.starts_with("Mail")).count();
        assert_eq!(mails, 1, "{seq:?}: {:?}", d.events);
        assert!(
            !d.events.iter().any(|e| e.starts_with("EndOfData")),
            "{seq:?}"
        );
        let r = replies(&d);
        assert!(
            r.iter().any(|l| l.starts_with("550 5.5.2 Error: bare")),
            "{seq:?}: {r:?}"
        );
        assert_eq!(
            r.last().unwrap(),
            "250 2.0.0 Ok",
            "{seq:?}: in step after the real end"
        );
        assert!(
            !String::from_utf8_lossy(&d.body).contains("evil"),
            "{seq:?}"
        );
    }
}

#[test]
fn normalize_policy_accepts_and_converts() {
    let mut d = daemon("normalize");
    d.feed(b"EHLO c.example\nMAIL FROM:<a@example.org>\nRCPT TO:<b@example.org>\r\nDATA\r\n");
    d.feed(b"one\ntwo\rthree\r\n\n.\nMAIL FROM:<evil@example.org>\r\n.\r\n");
    assert_eq!(
        String::from_utf8_lossy(&d.body),
        "one\r\ntwo\r\nthree\r\n\r\n.\r\nMAIL FROM:<evil@example.org>\r\n<END>"
    );
    assert_eq!(d.events.iter().filter(|e| e.starts_with("Mail")).count(), 1);
}

#[test]
fn bare_newline_in_commands_closes_under_reject() {
    let mut d = daemon("");
    d.feed(b"EHLO c.example\n");
    assert_eq!(d.out_str(), "500 5.5.2 Error: bare <LF> received\r\n");
    assert!(d.closed);
    let mut d = daemon("");
    d.feed(b"NOOP\rRSET\r\n");
    assert_eq!(d.out_str(), "500 5.5.2 Error: bare <CR> received\r\n");
    assert!(d.closed);
}

#[test]
fn bdat_octets_are_never_read_as_commands() {
    // BDAT outside a transaction: the chunk is read and dropped, and the
    // commands inside it are not executed.
    let mut d = daemon("");
    d.feed(b"EHLO c.example\r\n");
    d.out.clear();
    let chunk = b"MAIL FROM:<evil@example.org>\r\n";
    d.feed(format!("BDAT {} LAST\r\n", chunk.len()).as_bytes());
    d.feed(chunk);
    d.feed(b"NOOP\r\n");
    assert_eq!(replies(&d), ["503 5.5.1 Need MAIL command", "250 2.0.0 Ok"]);
    assert!(!d.events.iter().any(|e| e.starts_with("Mail")));
    // Not offered: the same.
    let mut d = daemon("nochunking");
    d.feed(b"EHLO c.example\r\n");
    assert!(!d.out_str().contains("CHUNKING"));
    d.out.clear();
    d.feed(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nBDAT 6\r\nRSET\r\nNOOP\r\n");
    assert_eq!(
        replies(&d),
        [
            "250 2.1.0 Sender ok",
            "250 2.1.5 Recipient ok",
            "502 5.5.1 CHUNKING not offered",
            "250 2.0.0 Ok"
        ]
    );
    // Refused by the daemon (the relay said no): skipped, then answered.
    let mut d = daemon("");
    d.refuse_data = Some(reply::line(554, "5.3.0 Relay refused"));
    d.feed(b"EHLO c.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n");
    d.out.clear();
    d.feed(b"BDAT 6 LAST\r\nRSET\r\nNOOP\r\n");
    assert_eq!(replies(&d), ["554 5.3.0 Relay refused", "250 2.0.0 Ok"]);
}

#[test]
fn bdat_with_a_bare_lf_is_refused_and_data_after_bdat_is_a_sequence_error() {
    let mut d = daemon("");
    d.feed(b"EHLO c.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n");
    d.out.clear();
    d.feed(b"BDAT 5\r\nab\ncdBDAT 3 LAST\r\nxyzNOOP\r\n");
    assert_eq!(
        replies(&d),
        [
            "550 5.5.2 Error: bare <LF> received",
            "503 5.5.1 Need MAIL command",
            "250 2.0.0 Ok"
        ]
    );
    assert!(d.events.contains(&"BodyAborted BareLf".to_owned()));
    let mut d = daemon("");
    d.feed(
        b"EHLO c.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nBDAT 3\r\nabc",
    );
    d.out.clear();
    d.feed(b"DATA\r\n");
    assert_eq!(last_reply(&d), "503 5.5.1 DATA after BDAT");
}

#[test]
fn simple_commands_and_sequence_errors() {
    let mut d = daemon("");
    d.feed(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n");
    d.feed(b"VRFY bob\r\nEXPN list\r\nHELP\r\nNOOP\r\nFOO\r\nEHLO -bad-\r\n");
    assert_eq!(
        replies(&d),
        [
            "503 5.5.1 Send EHLO or HELO first",
            "503 5.5.1 Need MAIL command",
            "503 5.5.1 Need MAIL command",
            "252 2.1.5 Cannot VRFY user, but will accept message and attempt delivery",
            "502 5.5.1 EXPN not available",
            "214 2.0.0 See RFC 5321",
            "250 2.0.0 Ok",
            "500 5.5.2 Command unrecognized",
            "501 5.5.2 Syntax error, expected: EHLO domain or address literal",
        ]
    );
    d.out.clear();
    d.feed(b"HELO [192.0.2.1]\r\nMAIL FROM:<a@example.org>\r\nMAIL FROM:<a@example.org>\r\nDATA\r\nRSET\r\nQUIT\r\n");
    assert_eq!(
        replies(&d),
        [
            "250 localhost",
            "250 2.1.0 Sender ok",
            "503 5.5.1 Nested MAIL command",
            "554 5.5.1 No valid recipients",
            "250 2.0.0 Ok",
            "221 2.0.0 Bye",
        ]
    );
    assert!(d.events.contains(&"Helo [192.0.2.1]".to_owned()));
    assert!(d.events.contains(&"Reset".to_owned()));
}

#[test]
fn too_many_errors_close_the_connection() {
    let mut d = daemon("errors=3");
    d.feed(b"FOO\r\nBAR\r\nBAZ\r\nNOOP\r\n");
    assert_eq!(
        replies(&d),
        [
            "500 5.5.2 Command unrecognized",
            "500 5.5.2 Command unrecognized",
            "500 5.5.2 Command unrecognized",
            "421 4.7.0 Too many errors, closing connection",
        ]
    );
    assert!(d.closed);
}

#[test]
fn overlong_lines() {
    let mut d = daemon("");
    let long = format!("NOOP {}\r\n", "x".repeat(600));
    d.feed(long.as_bytes());
    assert_eq!(last_reply(&d), "500 5.5.6 Line too long");
    // A line beyond any buffer is skipped to its end, then the session is
    // in step again.
    d.feed(&vec![b'x'; 20_000]);
    d.feed(b"x\r\nNOOP\r\n");
    assert_eq!(
        replies(&d),
        [
            "500 5.5.6 Line too long",
            "500 5.5.6 Line too long",
            "250 2.0.0 Ok"
        ]
    );
    // Text lines: 1000 octets with CRLF at most.
    let mut d = daemon("");
    d.feed(b"EHLO c.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n");
    d.feed(format!("{}\r\n.\r\n", "y".repeat(999)).as_bytes());
    assert_eq!(
        last_reply(&d),
        "550 5.6.0 Message line longer than 1000 octets"
    );
}

#[test]
fn smtputf8_and_dsn_only_when_offered() {
    let mut d = daemon("");
    d.feed(b"EHLO c.example\r\nMAIL FROM:<a@example.org> RET=HDRS\r\n");
    assert_eq!(last_reply(&d), "555 5.5.4 DSN not offered");
    d.feed(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<j\xc3\xb6@example.org>\r\n");
    assert_eq!(
        last_reply(&d),
        "553 5.6.7 Non-ASCII address requires SMTPUTF8"
    );
    d.feed(b"RSET\r\nMAIL FROM:<a@example.org> SMTPUTF8\r\nRCPT TO:<j\xc3\xb6@example.org>\r\n");
    assert_eq!(last_reply(&d), "250 2.1.5 Recipient ok");
    let mut c = config_from("# config: dsn");
    c.smtputf8 = false;
    let mut d = Daemon::new(c);
    d.feed(b"EHLO c.example\r\nMAIL FROM:<a@example.org> SMTPUTF8\r\n");
    assert_eq!(last_reply(&d), "555 5.5.4 SMTPUTF8 not offered");
    d.feed(
        b"MAIL FROM:<a@example.org> RET=FULL ENVID=x1\r\nRCPT TO:<b@example.org> NOTIFY=NEVER\r\n",
    );
    assert_eq!(last_reply(&d), "250 2.1.5 Recipient ok");
}

#[test]
fn daemon_answers_are_checked_and_421_closes() {
    let mut s = ServerSession::new(ServerConfig::default()).unwrap();
    let ok = reply::standard(reply::OK);
    assert!(matches!(s.answer(&ok), Err(Error::ApiMisuse(_))));
    assert!(matches!(s.data_ok(), Err(Error::ApiMisuse(_))));
    assert!(matches!(s.starttls_ok(), Err(Error::ApiMisuse(_))));
    assert!(s.auth_challenge(b"334 \r\n").is_err());
    s.feed(b"EHLO c.example\r\nMAIL FROM:<a@example.org>\r\nNOOP\r\n");
    assert!(matches!(s.poll(), Event::Greeted { .. }));
    assert!(matches!(s.poll(), Event::Mail(_)));
    assert!(
        matches!(s.poll(), Event::Waiting),
        "nothing read while an answer is due"
    );
    assert!(s.reject(&ok).is_err(), "reject needs a negative reply");
    s.answer(&reply::standard(reply::AUTH_REQUIRED)).unwrap();
    assert!(matches!(s.poll(), Event::NeedMoreInput));
    assert!(!s.in_transaction());
    s.feed(b"MAIL FROM:<a@example.org>\r\n");
    assert!(matches!(s.poll(), Event::Mail(_)));
    s.answer(&reply::standard(reply::RELAY_UNAVAILABLE))
        .unwrap();
    assert!(matches!(s.poll(), Event::Close));
    let out = String::from_utf8(s.take_output()).unwrap();
    assert!(out.ends_with("530 5.7.0 Authentication required\r\n250 2.0.0 Ok\r\n421 4.3.0 Service not available, try again later\r\n"), "{out}");
    let mut bad = ServerConfig::default();
    bad.hostname = "bad host".into();
    assert!(ServerSession::new(bad).is_err());
}

#[test]
fn standard_replies_are_valid() {
    for r in [
        reply::OK,
        reply::SENDER_OK,
        reply::RECIPIENT_OK,
        reply::AUTH_REQUIRED,
        reply::SENDER_MISMATCH,
        reply::RELAY_UNAVAILABLE,
        reply::RELAY_FAILED,
        reply::TIMEOUT,
        reply::SHUTDOWN,
    ] {
        let rep = reply::standard(r);
        assert_eq!(rep.code(), r.0);
        // Every reply after the greeting carries an enhanced status code.
        let esc = rep.text().split(' ').next().unwrap();
        assert_eq!(esc.split('.').count(), 3, "{r:?}");
        assert!(esc.starts_with(char::from(b'0' + u8::try_from(r.0 / 100).unwrap())));
    }
}

#[test]
fn limits_from_the_configuration_file() {
    for name in portcullis_smtp_proto::SERVER_PARAMETERS {
        assert!(
            portcullis_config::registry::lookup(name).is_some(),
            "{name} is not a configuration parameter"
        );
    }
    let cfg = portcullis_config::Config::parse(
        "[service.smtp]\nbarenewline = \"normalize\"\nmaxmessagesize = 0\n\
         maxrecipients = 3\nmaxmessages = 4\nmaxerrors = 5\n",
    )
    .unwrap();
    let mut c = ServerConfig::default();
    c.apply_parameters(|name| cfg.string(name).ok()).unwrap();
    assert_eq!(
        c.bare_newline,
        portcullis_smtp_proto::BareNewline::Normalize
    );
    assert_eq!(
        (
            c.max_message_size,
            c.max_recipients,
            c.max_messages,
            c.max_errors
        ),
        (0, 3, 4, 5)
    );
    // Defaults come from the registry's defaults too.
    let empty = portcullis_config::Config::parse("").unwrap();
    let mut d = ServerConfig::default();
    d.apply_parameters(|name| empty.string(name).ok()).unwrap();
    assert_eq!(d.bare_newline, portcullis_smtp_proto::BareNewline::Reject);
    assert_eq!(d.max_message_size, 10_485_760);
    let bad =
        portcullis_config::Config::parse("[service.smtp]\nbarenewline = \"allow\"\n").unwrap();
    assert!(
        ServerConfig::default()
            .apply_parameters(|n| bad.string(n).ok())
            .is_err()
    );
}

#[test]
fn many_pipelined_commands_in_one_read() {
    // Taking a line does not copy the rest of the buffer, so a read full
    // of small commands costs what it holds; and every one is answered.
    let mut d = daemon("errors=100000");
    let n = 20_000;
    d.feed("NOOP\r\n".repeat(n).as_bytes());
    assert_eq!(replies(&d).len(), n);
    assert!(replies(&d).iter().all(|r| r == "250 2.0.0 Ok"));
}

#[test]
fn offers_follow_the_relay_and_the_keyword_filter() {
    use portcullis_popbeforesmtp::relay::EhloFilter;
    let mut p = portcullis_smtp_proto::ReplyParser::new();
    p.feed(b"250-relay.example\r\n250-PIPELINING\r\n250-SIZE 5000\r\n250-DSN\r\n250-SMTPUTF8\r\n250 XCLIENT NAME ADDR\r\n");
    let relay = p.next_reply().unwrap().unwrap();
    let mut c = ServerConfig::default();
    c.follow_relay(&relay, &EhloFilter::default());
    assert!(c.dsn, "DSN is in the default set");
    assert!(
        !c.smtputf8,
        "SMTPUTF8 only when configured as an extra keyword"
    );
    assert_eq!(c.max_message_size, 5000);
    let mut c = ServerConfig::default();
    c.follow_relay(&relay, &EhloFilter::new(["SMTPUTF8"]));
    assert!(c.smtputf8);
    let mut d = Daemon::new(c);
    d.feed(b"EHLO c.example\r\n");
    let out = d.out_str();
    assert!(
        out.contains("250-SIZE 5000\r\n") && out.contains("250-DSN\r\n"),
        "{out}"
    );
    assert!(!out.contains("XCLIENT"));
    let mut bare = portcullis_smtp_proto::ReplyParser::new();
    bare.feed(b"250 relay.example\r\n");
    let mut c = ServerConfig::default();
    c.follow_relay(&bare.next_reply().unwrap().unwrap(), &EhloFilter::default());
    assert!(!c.dsn && !c.smtputf8);
    assert_eq!(c.max_message_size, 10 * 1024 * 1024);
}
