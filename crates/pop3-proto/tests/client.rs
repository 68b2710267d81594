//! Client side toward the store: XCLIENT, STLS, USER/PASS, AUTH PLAIN,
//! refusals with codes, split at every byte.

use portcullis_pop3_proto::{
    ClientConfig, ClientEvent, ClientSession, Login, Password, ResponseCode,
};

const GREETING: &[u8] = b"+OK Dovecot ready. <123.456@store>\r\n";
const CAPA: &[u8] =
    b"+OK\r\nCAPA\r\nTOP\r\nUSER\r\nSASL PLAIN\r\nSTLS\r\nXCLIENT\r\n..odd\r\n.\r\n";

fn master() -> ClientConfig {
    let mut c = ClientConfig::new(Login::Plain {
        authzid: "alice".into(),
        authcid: "admin".into(),
        password: Password::new("adminpw"),
    });
    c.xclient = vec![
        ("ADDR".into(), "192.0.2.7".into()),
        ("PORT".into(), "51000".into()),
    ];
    c
}

/// Feeds the store's replies in `pieces`, collecting what the client wrote.
fn run(config: ClientConfig, pieces: &[&[u8]]) -> (ClientEvent, Vec<u8>) {
    let mut s = ClientSession::new(config);
    let mut out = Vec::new();
    let mut last = ClientEvent::NeedMoreInput;
    for p in pieces {
        s.feed(p);
        last = s.poll();
        out.extend_from_slice(&s.take_output());
    }
    (last, out)
}

#[test]
fn xclient_then_auth_plain_master_user() {
    let replies: Vec<&[u8]> = vec![GREETING, CAPA, b"+OK Updated\r\n", b"+OK Logged in.\r\n"];
    let (event, out) = run(master(), &replies);
    assert_eq!(event, ClientEvent::LoggedIn);
    assert_eq!(
        String::from_utf8(out).expect("utf8"),
        "CAPA\r\nXCLIENT ADDR=192.0.2.7 PORT=51000\r\n\
         AUTH PLAIN YWxpY2UAYWRtaW4AYWRtaW5wdw==\r\n"
    );
    let whole: Vec<u8> = replies.concat();
    for at in 0..=whole.len() {
        let (a, b) = whole.split_at(at);
        assert_eq!(
            run(master(), &[a, b]).0,
            ClientEvent::LoggedIn,
            "split at {at}"
        );
    }
    let bytes: Vec<&[u8]> = whole.chunks(1).collect();
    assert_eq!(run(master(), &bytes).0, ClientEvent::LoggedIn);
}

#[test]
fn user_pass_and_refusal_code_passed_on() {
    let config = || {
        ClientConfig::new(Login::UserPass {
            user: "alice".into(),
            password: Password::new("pw"),
        })
    };
    let (e, out) = run(config(), &[GREETING, CAPA, b"+OK\r\n", b"+OK\r\n"]);
    assert_eq!(e, ClientEvent::LoggedIn);
    assert_eq!(out, b"CAPA\r\nUSER alice\r\nPASS pw\r\n");
    let (e, _) = run(
        config(),
        &[
            GREETING,
            CAPA,
            b"+OK\r\n",
            b"-ERR [IN-USE] Mailbox locked\r\n",
        ],
    );
    let ClientEvent::Refused(r) = e else {
        panic!("{e:?}")
    };
    assert_eq!(r.code, Some(ResponseCode::InUse));
    assert_eq!(r.text, "Mailbox locked");
}

#[test]
fn stls_discards_and_recapa() {
    let mut c = master();
    c.stls = true;
    let mut s = ClientSession::new(c);
    s.feed(GREETING);
    s.feed(CAPA);
    assert_eq!(s.poll(), ClientEvent::NeedMoreInput);
    assert_eq!(&*s.take_output(), b"CAPA\r\nSTLS\r\n");
    s.feed(b"+OK Begin TLS\r\n+OK injected\r\n");
    assert_eq!(s.poll(), ClientEvent::StartTls { discarded: 14 });
    s.tls_established().expect("tls");
    assert_eq!(&*s.take_output(), b"CAPA\r\n");
    s.feed(b"+OK\r\nXCLIENT\r\n.\r\n+OK\r\n+OK\r\n");
    assert_eq!(s.poll(), ClientEvent::LoggedIn);
}

#[test]
fn missing_xclient_or_stls_fails_and_long_lines_bounded() {
    let (e, _) = run(master(), &[GREETING, b"+OK\r\nUSER\r\n.\r\n"]);
    assert!(matches!(e, ClientEvent::Failed(_)), "{e:?}");
    let mut c = master();
    c.stls = true;
    let (e, _) = run(c, &[GREETING, b"+OK\r\nXCLIENT\r\n.\r\n"]);
    assert!(matches!(e, ClientEvent::Failed(_)), "{e:?}");
    let long = vec![b'+'; 5000];
    let (e, _) = run(master(), &[&long]);
    assert!(matches!(e, ClientEvent::Failed(_)), "{e:?}");
    let (e, _) = run(master(), &[b"-ERR [SYS/TEMP] busy\r\n"]);
    assert!(matches!(e, ClientEvent::Refused(ref r) if r.code == Some(ResponseCode::SysTemp)));
}

#[test]
fn xclient_offered_in_the_greeting_as_dovecot_does() {
    // Dovecot 2.3 to a client of login_trusted_networks: `[XCLIENT]` in the
    // greeting, not in CAPA.
    let greeting: &[u8] = b"+OK [XCLIENT] Dovecot (Debian) ready.\r\n";
    let capa: &[u8] = b"+OK\r\nCAPA\r\nTOP\r\nUSER\r\nSASL PLAIN LOGIN\r\n.\r\n";
    let (event, out) = run(
        master(),
        &[greeting, capa, b"+OK Updated\r\n", b"+OK Logged in.\r\n"],
    );
    assert_eq!(event, ClientEvent::LoggedIn);
    assert!(
        String::from_utf8(out)
            .expect("utf8")
            .contains("XCLIENT ADDR=192.0.2.7 PORT=51000\r\n")
    );
    // Without the code and without CAPA's keyword: refused as before.
    let (event, _) = run(master(), &[b"+OK Dovecot ready.\r\n", capa]);
    assert!(matches!(event, ClientEvent::Failed(_)), "{event:?}");
}
