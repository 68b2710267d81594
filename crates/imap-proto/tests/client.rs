//! Client side toward the store: greeting capabilities, CAPABILITY when the
//! greeting has none, STARTTLS, ID, LOGIN (with literals) and AUTHENTICATE
//! PLAIN in the master-user form, post-login capabilities, refusals with
//! codes, split at every byte.

use portcullis_imap_proto::{
    ClientConfig, ClientEvent, ClientSession, Error, Login, Password, ProxyId, ResponseCode,
    StatusKind,
};

const GREETING: &[u8] =
    b"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN] Dovecot ready.\r\n";

fn master() -> ClientConfig {
    let mut c = ClientConfig::new(Login::Plain {
        authzid: "alice".into(),
        authcid: "admin".into(),
        password: Password::new("adminpw"),
    });
    c.id = vec![
        ("x-originating-ip".into(), "192.0.2.7".into()),
        ("x-originating-port".into(), "51000".into()),
        ("x-session-id".into(), "s1".into()),
    ];
    c
}

/// Feeds the store's replies in `pieces`, collecting what the client wrote.
fn run(config: ClientConfig, pieces: &[&[u8]]) -> (ClientEvent, String, ClientSession) {
    let mut s = ClientSession::new(config);
    let mut out = Vec::new();
    let mut last = ClientEvent::NeedMoreInput;
    for p in pieces {
        s.feed(p);
        last = s.poll();
        out.extend_from_slice(&s.take_output());
    }
    (last, String::from_utf8(out).expect("utf8"), s)
}

#[test]
fn id_then_authenticate_plain_master_user() {
    let replies: Vec<&[u8]> = vec![
        GREETING,
        b"* ID (\"name\" \"Dovecot\")\r\nP1 OK ID completed.\r\n",
        b"P2 OK [CAPABILITY IMAP4rev1 IDLE MOVE] Logged in\r\n* 3 EXISTS\r\n",
    ];
    let (event, out, mut s) = run(master(), &replies);
    assert_eq!(event, ClientEvent::LoggedIn);
    assert_eq!(
        out,
        "P1 ID (\"x-originating-ip\" \"192.0.2.7\" \"x-originating-port\" \"51000\" \"x-session-id\" \"s1\")\r\n\
         P2 AUTHENTICATE PLAIN YWxpY2UAYWRtaW4AYWRtaW5wdw==\r\n"
    );
    assert_eq!(s.capabilities(), ["IMAP4REV1", "IDLE", "MOVE"]);
    assert_eq!(&*s.take_pending_input(), b"* 3 EXISTS\r\n");

    // The same replies split at every byte give the same session.
    let whole: Vec<u8> = replies.concat();
    for at in 0..=whole.len() {
        let (a, b) = whole.split_at(at);
        let (e, o, _) = run(master(), &[a, b]);
        assert_eq!(e, ClientEvent::LoggedIn, "split at {at}");
        assert_eq!(o, out, "split at {at}");
    }
}

#[test]
fn capability_asked_when_the_greeting_has_none_and_after_login() {
    let config = ClientConfig::new(Login::Login {
        user: "bob".into(),
        password: Password::new("pw with \"quotes\""),
    });
    let replies: Vec<&[u8]> = vec![
        b"* OK ready\r\n",
        b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\nP1 OK done\r\n",
        b"P2 OK Logged in\r\n",
        b"* CAPABILITY IMAP4rev1 IDLE\r\nP3 OK done\r\n",
    ];
    let (event, out, s) = run(config, &replies);
    assert_eq!(event, ClientEvent::LoggedIn);
    assert_eq!(
        out,
        "P1 CAPABILITY\r\nP2 LOGIN bob \"pw with \\\"quotes\\\"\"\r\nP3 CAPABILITY\r\n"
    );
    assert_eq!(s.capabilities(), ["IMAP4REV1", "IDLE"]);
}

#[test]
fn login_uses_a_literal_when_needed() {
    let config = ClientConfig::new(Login::Login {
        user: "bob".into(),
        password: Password::new("line\r\nbreak"),
    });
    let mut s = ClientSession::new(config);
    s.feed(b"* OK [CAPABILITY IMAP4rev1] ready\r\n");
    assert_eq!(s.poll(), ClientEvent::NeedMoreInput);
    assert_eq!(&*s.take_output(), b"P1 LOGIN bob {11}\r\n");
    s.feed(b"+ go ahead\r\n");
    assert_eq!(s.poll(), ClientEvent::NeedMoreInput);
    assert_eq!(&*s.take_output(), b"line\r\nbreak\r\n");
    s.feed(b"P1 OK [CAPABILITY IMAP4rev1] in\r\n");
    assert_eq!(s.poll(), ClientEvent::LoggedIn);
}

#[test]
fn plain_without_sasl_ir_answers_the_continuation() {
    let mut s = ClientSession::new(master_without_id());
    s.feed(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n");
    assert_eq!(s.poll(), ClientEvent::NeedMoreInput);
    assert_eq!(&*s.take_output(), b"P1 AUTHENTICATE PLAIN\r\n");
    s.feed(b"+ \r\n");
    assert_eq!(s.poll(), ClientEvent::NeedMoreInput);
    assert_eq!(&*s.take_output(), b"YWxpY2UAYWRtaW4AYWRtaW5wdw==\r\n");
    s.feed(b"+ \r\n");
    assert!(matches!(s.poll(), ClientEvent::Failed(_)));
}

fn master_without_id() -> ClientConfig {
    let mut c = master();
    c.id.clear();
    c
}

#[test]
fn starttls_then_capability_again() {
    let mut c = master_without_id();
    c.starttls = true;
    let mut s = ClientSession::new(c);
    s.feed(b"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n");
    assert_eq!(s.poll(), ClientEvent::NeedMoreInput);
    assert_eq!(&*s.take_output(), b"P1 STARTTLS\r\n");
    s.feed(b"P1 OK Begin TLS\r\n* injected\r\n");
    assert_eq!(s.poll(), ClientEvent::StartTls { discarded: 12 });
    s.tls_established().expect("tls");
    assert_eq!(&*s.take_output(), b"P2 CAPABILITY\r\n");
    s.feed(b"* CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN\r\nP2 OK done\r\n");
    assert_eq!(s.poll(), ClientEvent::NeedMoreInput);
    assert_eq!(
        &*s.take_output(),
        b"P3 AUTHENTICATE PLAIN YWxpY2UAYWRtaW4AYWRtaW5wdw==\r\n"
    );
}

#[test]
fn never_falls_back_to_plaintext() {
    let mut c = master_without_id();
    c.starttls = true;
    let (event, out, _) = run(c, &[b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n"]);
    assert_eq!(
        event,
        ClientEvent::Failed(Error::UnexpectedReply("the store does not offer STARTTLS"))
    );
    assert_eq!(out, "");
    // ID configured but not offered: no login either.
    let (event, out, _) = run(master(), &[b"* OK [CAPABILITY IMAP4rev1] ready\r\n"]);
    assert!(matches!(event, ClientEvent::Failed(_)));
    assert_eq!(out, "");
}

#[test]
fn refusals_carry_the_store_code() {
    let (event, _, _) = run(
        master_without_id(),
        &[
            GREETING,
            b"P1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n",
        ],
    );
    let ClientEvent::Refused(status) = event else {
        panic!("{event:?}")
    };
    assert_eq!(status.kind, StatusKind::No);
    assert_eq!(status.code, Some(ResponseCode::AuthenticationFailed));
    assert_eq!(status.text, "Authentication failed.");

    let (event, _, _) = run(
        master_without_id(),
        &[b"* BYE [UNAVAILABLE] Server shutting down\r\n"],
    );
    assert!(matches!(event, ClientEvent::Refused(s)
        if s.kind == StatusKind::Bye && s.code == Some(ResponseCode::Unavailable)));

    let (event, _, _) = run(
        master_without_id(),
        &[GREETING, b"* BYE [CONTACTADMIN] Account locked\r\n"],
    );
    assert!(matches!(event, ClientEvent::Refused(s) if s.code == Some(ResponseCode::ContactAdmin)));
}

#[test]
fn out_of_protocol_replies_fail() {
    for reply in [
        &b"HTTP/1.1 400 Bad Request\r\n"[..],
        b"* PREAUTH [CAPABILITY IMAP4rev1] hi\r\n",
        b"* OK hi\n",
    ] {
        let (event, _, _) = run(master_without_id(), &[reply]);
        assert!(matches!(event, ClientEvent::Failed(_)), "{reply:?}");
    }
    let (event, _, _) = run(master_without_id(), &[GREETING, b"X9 OK wrong tag\r\n"]);
    assert!(matches!(event, ClientEvent::Failed(_)));
    // A huge literal from the store is not read.
    let (event, _, _) = run(
        master_without_id(),
        &[GREETING, b"* ID (\"name\" {1073741824}\r\n", &[b'x'; 4096]],
    );
    assert!(matches!(event, ClientEvent::Failed(Error::TooBig { .. })));
    // An untagged CAPABILITY with the login's OK is used as it is.
    let (event, out, s) = run(
        master_without_id(),
        &[
            GREETING,
            b"* CAPABILITY IMAP4rev1 MOVE\r\nP1 OK Logged in\r\n",
        ],
    );
    assert_eq!(event, ClientEvent::LoggedIn);
    assert!(!out.contains("CAPABILITY"), "{out}");
    assert_eq!(s.capabilities(), ["IMAP4REV1", "MOVE"]);
    let mut long = b"* OK ".to_vec();
    long.extend(std::iter::repeat_n(b'x', 70_000));
    let (event, _, _) = run(master_without_id(), &[&long]);
    assert!(matches!(
        event,
        ClientEvent::Failed(Error::LineTooLong { .. })
    ));
}

#[test]
fn proxy_id_fields() {
    let id = ProxyId {
        originating: "[2001:db8::7]:51000".parse().expect("addr"),
        connected: "192.0.2.1:993".parse().expect("addr"),
        session_id: "Kx3f".into(),
        ttl: 4,
    };
    let mut c = master();
    c.id = id.fields();
    let (_, out, _) = run(c, &[GREETING]);
    assert_eq!(
        out,
        "P1 ID (\"x-originating-ip\" \"2001:db8::7\" \"x-originating-port\" \"51000\" \
         \"x-connected-ip\" \"192.0.2.1\" \"x-connected-port\" \"993\" \
         \"x-session-id\" \"Kx3f\" \"x-proxy-ttl\" \"4\")\r\n"
    );
}

#[test]
fn store_input_ahead_of_the_login_is_bounded() {
    let mut s = ClientSession::new(master_without_id());
    s.feed(GREETING);
    let flood = b"* OK noise\r\n".repeat(50_000);
    s.feed(&flood);
    assert!(matches!(s.poll(), ClientEvent::Failed(_)));
}
