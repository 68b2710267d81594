//! Server-side behaviour: STLS injection, cleartext policy, bounds, and
//! split-at-every-byte equivalence.

use portcullis_pop3_proto::{Event, ServerConfig, ServerSession};

fn session(f: impl FnOnce(&mut ServerConfig)) -> ServerSession {
    let mut c = ServerConfig::default();
    f(&mut c);
    let mut s = ServerSession::new(c).expect("session");
    s.take_output();
    s
}

#[test]
fn commands_pipelined_after_stls_are_discarded() {
    let mut s = session(|c| c.stls_available = true);
    s.feed(b"STLS\r\nUSER evil\r\nPASS injected\r\n");
    assert!(matches!(s.poll(), Event::Stls));
    assert!(matches!(s.poll(), Event::Waiting));
    let dropped = s.stls_ok().expect("stls");
    assert_eq!(dropped, b"USER evil\r\nPASS injected\r\n".len());
    assert_eq!(s.discarded_after_stls(), dropped);
    assert_eq!(s.take_output(), b"+OK Begin TLS negotiation\r\n");
    assert!(matches!(s.poll(), Event::NeedMoreInput));
    // PASS after TLS has no USER: the injected USER did not survive.
    s.feed(b"PASS x\r\n");
    assert!(matches!(s.poll(), Event::NeedMoreInput));
    assert_eq!(s.take_output(), b"-ERR No USER given\r\n");
}

#[test]
fn stls_twice_and_on_implicit_tls_refused() {
    let mut s = session(|c| c.stls_available = true);
    s.feed(b"STLS\r\n");
    assert!(matches!(s.poll(), Event::Stls));
    s.stls_ok().expect("stls");
    s.take_output();
    s.feed(b"STLS\r\n");
    assert!(matches!(s.poll(), Event::NeedMoreInput));
    assert_eq!(s.take_output(), b"-ERR TLS already active\r\n");

    let mut s = session(|c| {
        c.tls_active = true;
        c.stls_available = true;
    });
    s.feed(b"CAPA\r\nSTLS\r\n");
    assert!(matches!(s.poll(), Event::NeedMoreInput));
    let out = String::from_utf8(s.take_output()).expect("utf8");
    assert!(!out.contains("\r\nSTLS\r\n"), "{out}");
    assert!(out.ends_with("-ERR TLS already active\r\n"), "{out}");

    let mut s = session(|_| {});
    s.feed(b"STLS\r\n");
    assert!(matches!(s.poll(), Event::NeedMoreInput));
    assert_eq!(s.take_output(), b"-ERR STLS not available\r\n");
}

#[test]
fn stls_after_login_goes_to_the_store() {
    let mut s = session(|c| {
        c.tls_active = true;
        c.stls_available = true;
    });
    s.feed(b"USER a\r\nPASS b\r\nSTLS\r\n");
    assert!(matches!(s.poll(), Event::User { .. }));
    assert!(matches!(s.poll(), Event::Pass { .. }));
    s.login_ok().expect("ok");
    assert!(matches!(s.poll(), Event::LoggedIn));
    assert_eq!(&*s.take_pending_input(), b"STLS\r\n");
    assert!(s.stls_ok().is_err());
}

#[test]
fn cleartext_refused_without_tls_by_default() {
    let mut s = session(|c| c.stls_available = true);
    s.feed(b"CAPA\r\nUSER a\r\nPASS b\r\n");
    assert!(matches!(s.poll(), Event::NeedMoreInput));
    let out = String::from_utf8(s.take_output()).expect("utf8");
    assert!(!out.contains("\r\nUSER\r\n"), "{out}");
    assert!(out.contains("-ERR [AUTH] Plaintext authentication disallowed"));
    assert!(out.ends_with("-ERR No USER given\r\n"), "{out}");

    let mut s = session(|c| c.plaintext_allowed = true);
    s.feed(b"CAPA\r\nUSER a\r\nPASS b c\r\n");
    assert!(matches!(s.poll(), Event::User { .. }));
    let Event::Pass { user, password } = s.poll() else {
        panic!("no PASS")
    };
    assert_eq!((user.as_str(), password.expose()), ("a", "b c"));
    assert!(
        String::from_utf8(s.take_output())
            .expect("utf8")
            .contains("\r\nUSER\r\n")
    );
}

#[test]
fn apop_only_when_enabled_and_greeting_carries_timestamp() {
    let mut s = ServerSession::new(ServerConfig::default()).expect("s");
    assert_eq!(s.take_output(), b"+OK POP3 server ready\r\n");
    s.feed(b"APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n");
    assert!(matches!(s.poll(), Event::NeedMoreInput));
    assert_eq!(s.take_output(), b"-ERR APOP not available\r\n");
    let mut c = ServerConfig::default();
    c.apop_timestamp = Some("no brackets".into());
    assert!(ServerSession::new(c).is_err());
}

#[test]
fn overlong_lines_refused() {
    let mut s = session(|c| c.tls_active = true);
    let mut long = b"USER ".to_vec();
    long.extend(std::iter::repeat_n(b'a', 300));
    long.extend_from_slice(b"\r\nQUIT\r\n");
    s.feed(&long);
    assert!(matches!(s.poll(), Event::Quit));
    assert_eq!(s.take_output(), b"-ERR Line too long\r\n+OK Bye\r\n");
    // A line that never ends is refused once and skipped to its end.
    let mut s = session(|c| c.tls_active = true);
    for _ in 0..100 {
        s.feed(&[b'x'; 1000]);
        assert!(matches!(s.poll(), Event::NeedMoreInput));
    }
    s.feed(b"\r\nQUIT\r\n");
    assert!(matches!(s.poll(), Event::Quit));
    assert_eq!(s.take_output(), b"-ERR Line too long\r\n+OK Bye\r\n");
}

#[test]
fn too_many_bad_commands_close() {
    let mut s = session(|c| c.max_bad_commands = 3);
    s.feed(b"FOO\r\nNOOP\r\nSTAT\r\nQUIT\r\n");
    assert!(matches!(s.poll(), Event::Close));
    let out = String::from_utf8(s.take_output()).expect("utf8");
    assert_eq!(
        out,
        "-ERR Unknown command\r\n-ERR Not logged in\r\n-ERR Unknown command\r\n\
         -ERR Too many bad commands, closing connection\r\n"
    );
    assert!(matches!(s.poll(), Event::Close));
}

#[test]
fn auth_cancel_and_long_continuation() {
    let mut s = session(|c| c.tls_active = true);
    let mut cmd = b"AUTH PLAIN ".to_vec();
    cmd.extend(std::iter::repeat_n(b'A', 1000));
    cmd.extend_from_slice(b"\r\n*\r\n");
    s.feed(&cmd);
    let Event::Auth {
        initial_response: Some(ir),
        ..
    } = s.poll()
    else {
        panic!("no AUTH")
    };
    assert_eq!(ir.len(), 1000);
    s.auth_challenge(b"+ \r\n").expect("challenge");
    let Event::AuthResponse { line } = s.poll() else {
        panic!("no line")
    };
    assert_eq!(&line[..], b"*");
}

fn transcript(s: &mut ServerSession, input: &[&[u8]]) -> (Vec<String>, Vec<u8>) {
    let mut events = Vec::new();
    let mut out = s.take_output();
    for piece in input {
        s.feed(piece);
        loop {
            let e = s.poll();
            let done = matches!(
                e,
                Event::NeedMoreInput | Event::Close | Event::LoggedIn | Event::Quit
            );
            if let Event::Pass { .. } = e {
                s.login_err(None, "no").expect("err");
            }
            if let Event::Auth { .. } | Event::AuthResponse { .. } = e {
                s.auth_challenge(b"+ \r\n").expect("ch");
            }
            if let Event::Stls = e {
                s.stls_ok().expect("stls");
            }
            events.push(format!("{e:?}"));
            if done {
                break;
            }
        }
        out.extend(s.take_output());
    }
    events.retain(|e| e != "NeedMoreInput");
    (events, out)
}

#[test]
fn split_at_every_byte_same_events_and_output() {
    let input: &[u8] =
        b"CAPA\r\nUSER alice\r\nPASS pw\r\nAUTH PLAIN\r\nAAAA\r\n*\r\nNOOP\nAPOP x y\r\nQUIT\r\n";
    let config = |c: &mut ServerConfig| {
        c.tls_active = true;
        c.sasl_mechanisms = vec!["PLAIN".into()];
    };
    let whole = transcript(&mut session(config), &[input]);
    for at in 0..=input.len() {
        let (a, b) = input.split_at(at);
        assert_eq!(
            transcript(&mut session(config), &[a, b]),
            whole,
            "split at {at}"
        );
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(transcript(&mut session(config), &bytes), whole);
}

#[test]
fn sasl_mechanisms_can_change_after_stls() {
    let mut s = session(|c| {
        c.stls_available = true;
        c.sasl_mechanisms = vec!["SCRAM-SHA-256".to_owned()];
    });
    s.feed(b"STLS\r\n");
    assert!(matches!(s.poll(), Event::Stls));
    s.stls_ok().expect("stls");
    s.take_output();
    s.set_sasl_mechanisms(vec!["SCRAM-SHA-256".to_owned(), "PLAIN".to_owned()]);
    s.feed(b"CAPA\r\n");
    assert!(matches!(s.poll(), Event::NeedMoreInput));
    let out = String::from_utf8(s.take_output()).expect("utf8");
    assert!(out.contains("\r\nSASL SCRAM-SHA-256 PLAIN\r\n"), "{out}");
    assert!(out.contains("\r\nUSER\r\n"), "{out}");
}
