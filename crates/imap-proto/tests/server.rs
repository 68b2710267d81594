//! Server-side behaviour: STARTTLS injection, cleartext policy, literal and
//! line bounds, the bad-command limit, AUTHENTICATE through the sasl
//! crate's framing, and split-at-every-byte equivalence.

use portcullis_imap_proto::{Event, ResponseCode, ServerConfig, ServerSession};
use portcullis_sasl::framing::{AuthExchange, Event as AuthEvent, Protocol};
use portcullis_sasl::{MemoryBackend, Policy, ServerContext, Service, TlsState, TlsVersion};

fn session(f: impl FnOnce(&mut ServerConfig)) -> ServerSession {
    let mut c = ServerConfig::default();
    f(&mut c);
    let mut s = ServerSession::new(c).expect("session");
    s.take_output();
    s
}

fn out(s: &mut ServerSession) -> String {
    String::from_utf8(s.take_output()).expect("utf8")
}

#[test]
fn commands_pipelined_after_starttls_are_discarded() {
    let mut s = session(|c| {
        c.starttls_available = true;
        c.plaintext_allowed = true;
    });
    let injected = b"a2 LOGIN evil injected\r\na3 AUTHENTICATE PLAIN dGVzdAB0ZXN0AHRlc3Q=\r\n";
    let mut input = b"a1 STARTTLS\r\n".to_vec();
    input.extend_from_slice(injected);
    s.feed(&input);
    assert!(matches!(s.poll(), Event::StartTls { tag } if tag == "a1"));
    assert!(matches!(s.poll(), Event::Waiting));
    let dropped = s.starttls_ok().expect("starttls");
    assert_eq!(dropped, injected.len());
    assert_eq!(s.discarded_after_starttls(), dropped);
    assert_eq!(out(&mut s), "a1 OK Begin TLS negotiation now\r\n");
    // Nothing of the injected commands survives the upgrade.
    assert!(matches!(s.poll(), Event::NeedMoreInput));
    assert!(s.tls_active());
    assert_eq!(out(&mut s), "");
    // Over TLS the policy offers PLAIN.
    s.set_sasl_mechanisms(vec!["PLAIN".into(), "SCRAM-SHA-256".into()]);
    s.feed(b"a4 CAPABILITY\r\n");
    assert!(matches!(s.poll(), Event::NeedMoreInput));
    assert_eq!(
        out(&mut s),
        "* CAPABILITY IMAP4REV1 AUTH=PLAIN AUTH=SCRAM-SHA-256 SASL-IR LITERAL- ID\r\n\
         a4 OK CAPABILITY completed\r\n"
    );
}

#[test]
fn starttls_refused_twice_when_active_and_when_not_offered() {
    let mut s = session(|c| c.starttls_available = true);
    s.feed(b"a1 STARTTLS\r\n");
    assert!(matches!(s.poll(), Event::StartTls { .. }));
    s.starttls_ok().expect("starttls");
    s.take_output();
    s.feed(b"a2 STARTTLS\r\n");
    assert!(matches!(s.poll(), Event::NeedMoreInput));
    assert_eq!(out(&mut s), "a2 BAD TLS already active\r\n");

    let mut s = session(|c| {
        c.tls_active = true;
        c.starttls_available = true;
    });
    s.feed(b"a1 CAPABILITY\r\na2 STARTTLS\r\n");
    assert!(matches!(s.poll(), Event::NeedMoreInput));
    let o = out(&mut s);
    assert!(!o.contains("STARTTLS "), "{o}");
    assert!(o.ends_with("a2 BAD TLS already active\r\n"), "{o}");

    let mut s = session(|_| {});
    s.feed(b"a1 STARTTLS\r\n");
    assert!(matches!(s.poll(), Event::NeedMoreInput));
    assert_eq!(out(&mut s), "a1 BAD STARTTLS not available\r\n");
}

#[test]
fn starttls_after_login_goes_to_the_store() {
    let mut s = session(|c| {
        c.tls_active = true;
        c.starttls_available = true;
    });
    s.feed(b"a1 LOGIN a b\r\na2 STARTTLS\r\na3 SELECT INBOX\r\n");
    assert!(matches!(s.poll(), Event::Login { .. }));
    s.login_ok(&["IMAP4rev1".to_owned()]).expect("ok");
    assert!(matches!(s.poll(), Event::LoggedIn));
    assert_eq!(
        &*s.take_pending_input(),
        b"a2 STARTTLS\r\na3 SELECT INBOX\r\n"
    );
    assert!(s.starttls_ok().is_err());
    assert_eq!(out(&mut s), "a1 OK [CAPABILITY IMAP4REV1] Logged in\r\n");
}

#[test]
fn store_capabilities_that_are_not_atoms_are_left_out() {
    let mut s = session(|c| c.tls_active = true);
    s.feed(b"a1 LOGIN a b\r\n");
    assert!(matches!(s.poll(), Event::Login { .. }));
    let caps = ["IMAP4rev1", "bad]cap", "", "LITERAL+", "X\r\nY"].map(str::to_owned);
    s.login_ok(&caps).expect("ok");
    assert_eq!(
        out(&mut s),
        "a1 OK [CAPABILITY IMAP4REV1 LITERAL+] Logged in\r\n"
    );
}

#[test]
fn cleartext_refused_without_tls_by_default() {
    let mut s = session(|c| c.starttls_available = true);
    assert!(s.capabilities().contains(&"LOGINDISABLED".to_owned()));
    s.feed(b"a1 LOGIN alice secret\r\n");
    assert!(matches!(s.poll(), Event::NeedMoreInput));
    assert_eq!(
        out(&mut s),
        "a1 NO [PRIVACYREQUIRED] Plaintext authentication disallowed without TLS\r\n"
    );

    let mut s = session(|c| c.plaintext_allowed = true);
    assert!(!s.capabilities().contains(&"LOGINDISABLED".to_owned()));
    s.feed(b"a1 LOGIN alice secret\r\n");
    assert!(
        matches!(s.poll(), Event::Login { user, password, .. } if user == "alice" && password.expose() == "secret")
    );
}

#[test]
fn announced_gigabyte_literal_is_refused_unread() {
    // Synchronizing: NO [TOOBIG] instead of "+", the session goes on.
    let mut s = session(|c| c.tls_active = true);
    s.feed(b"a1 LOGIN {1073741824}\r\n");
    assert!(matches!(s.poll(), Event::NeedMoreInput));
    assert_eq!(out(&mut s), "a1 NO [TOOBIG] Literal too large\r\n");
    s.feed(b"a2 NOOP\r\n");
    assert!(matches!(s.poll(), Event::NeedMoreInput));
    assert_eq!(out(&mut s), "a2 OK NOOP completed\r\n");

    // Non-synchronizing: BAD [TOOBIG], then BYE; the octets are never read.
    let mut s = session(|c| {
        c.tls_active = true;
        c.literal_plus = true;
    });
    s.feed(b"a1 LOGIN {1073741824+}\r\n");
    s.feed(&[b'x'; 65536]);
    assert!(matches!(s.poll(), Event::Close));
    assert_eq!(
        out(&mut s),
        "a1 BAD [TOOBIG] Literal too large\r\n* BYE Literal too large, closing\r\n"
    );
    // Further input is ignored.
    s.feed(b"a2 LOGIN a b\r\n");
    assert!(matches!(s.poll(), Event::Close));
    assert_eq!(out(&mut s), "");
}

#[test]
fn literal_minus_bound_and_literal_cap() {
    // LITERAL-: 4096 octets non-synchronizing are fine, 4097 are not.
    let mut s = session(|c| {
        c.tls_active = true;
        c.max_literal = 8192;
        c.max_command = 32768;
    });
    let mut input = b"a1 LOGIN {4096+}\r\n".to_vec();
    input.extend_from_slice(&[b'u'; 4096]);
    input.extend_from_slice(b" pw\r\n");
    s.feed(&input);
    assert!(matches!(s.poll(), Event::Login { user, .. } if user.len() == 4096));
    s.login_no(None, "no").expect("no");
    s.take_output();
    s.feed(b"a2 LOGIN {4097+}\r\n");
    assert!(matches!(s.poll(), Event::Close));
    assert!(out(&mut s).starts_with("a2 BAD [TOOBIG]"));

    // A command grown over max_command that announces one more
    // non-synchronizing literal: refused, and its octets are not read.
    let mut s = session(|c| {
        c.tls_active = true;
        c.literal_plus = true;
        c.max_line = 100;
        c.max_literal = 130;
        c.max_command = 150;
    });
    // 19 + 120 + 12 octets: the second line takes the command over 150.
    let mut input = b"a1 ID (\"a\" {120+}\r\n".to_vec();
    input.extend_from_slice(&[b'v'; 120]);
    input.extend_from_slice(b" \"bb\" {9+}\r\n");
    input.extend_from_slice(b"a2 LOGIN injected pw\r\n");
    s.feed(&input);
    assert!(matches!(s.poll(), Event::Close));
    assert_eq!(
        out(&mut s),
        "a1 BAD [TOOBIG] Literal too large\r\n* BYE Literal too large, closing\r\n"
    );

    // A synchronizing literal over max_literal is refused.
    let mut s = session(|c| c.tls_active = true);
    s.feed(b"a1 LOGIN {4097}\r\n");
    assert!(matches!(s.poll(), Event::NeedMoreInput));
    assert_eq!(out(&mut s), "a1 NO [TOOBIG] Literal too large\r\n");
}

#[test]
fn overlong_lines_are_refused_without_buffering_them() {
    let mut s = session(|c| {
        c.tls_active = true;
        c.max_line = 100;
        c.max_command = 200;
    });
    s.feed(b"a1 LOGIN ");
    for _ in 0..1000 {
        s.feed(&[b'x'; 1024]);
        assert!(matches!(s.poll(), Event::NeedMoreInput));
    }
    s.feed(b"\r\na2 NOOP\r\n");
    assert!(matches!(s.poll(), Event::NeedMoreInput));
    assert_eq!(
        out(&mut s),
        "a1 BAD Line too long\r\na2 OK NOOP completed\r\n"
    );

    // An overlong line that ends by announcing a non-synchronizing literal:
    // the literal's octets are never taken for commands.
    for split in [false, true] {
        let mut s = session(|c| {
            c.tls_active = true;
            c.literal_plus = true;
            c.max_line = 100;
            c.max_command = 200;
        });
        let mut line = b"a1 LOGIN ".to_vec();
        line.extend_from_slice(&[b'x'; 200]);
        line.extend_from_slice(b" {22+}\r\na2 LOGIN injected pw\r\n");
        if split {
            s.feed(&line[..150]);
            assert!(matches!(s.poll(), Event::NeedMoreInput));
            s.feed(&line[150..]);
        } else {
            s.feed(&line);
        }
        assert!(matches!(s.poll(), Event::Close));
        assert_eq!(
            out(&mut s),
            if split {
                "a1 BAD Line too long\r\n* BAD [TOOBIG] Literal too large\r\n\
                 * BYE Literal too large, closing\r\n"
            } else {
                "a1 BAD [TOOBIG] Literal too large\r\n* BYE Literal too large, closing\r\n"
            }
        );
    }
}

#[test]
fn bare_lf_and_syntax_errors_are_bad() {
    let mut s = session(|c| c.tls_active = true);
    s.feed(b"a1 NOOP\na2 LOGIN\r\na3 FOO BAR\r\n* NOOP\r\n");
    assert!(matches!(s.poll(), Event::NeedMoreInput));
    let o = out(&mut s);
    let lines: Vec<&str> = o.lines().collect();
    assert_eq!(lines[0], "a1 BAD Lines must end with CRLF");
    assert!(lines[1].starts_with("a2 BAD "), "{o}");
    assert!(lines[2].starts_with("a3 BAD "), "{o}");
    assert!(lines[3].starts_with("* BAD "), "{o}");
}

#[test]
fn too_many_bad_commands_end_the_session() {
    let mut s = session(|c| {
        c.tls_active = true;
        c.max_bad_commands = 3;
    });
    s.feed(b"a1 FOO\r\na2 LOGIN x y\r\n");
    assert!(matches!(s.poll(), Event::Login { .. }));
    s.login_no(
        Some(ResponseCode::AuthenticationFailed),
        "Authentication failed",
    )
    .expect("no");
    assert!(matches!(s.poll(), Event::NeedMoreInput));
    s.feed(b"a3 BAR\r\na4 NOOP\r\n");
    assert!(matches!(s.poll(), Event::Close));
    let o = out(&mut s);
    assert!(o.starts_with("a1 BAD "), "{o}");
    assert!(
        o.ends_with("a3 BAD Invalid command\r\n* BYE Too many invalid commands\r\n"),
        "{o}"
    );
}

#[test]
fn bye_ends_the_session() {
    let mut s = session(|_| {});
    s.feed(b"a1 NOOP\r\na2 NOOP\r\n");
    s.bye("Server shutting down");
    assert!(matches!(s.poll(), Event::Close));
    assert_eq!(out(&mut s), "* BYE Server shutting down\r\n");
    let mut s = session(|_| {});
    s.bye_with_code(Some(ResponseCode::Unavailable), "Try later");
    assert_eq!(out(&mut s), "* BYE [UNAVAILABLE] Try later\r\n");
    assert_eq!(
        portcullis_imap_proto::refusal_greeting(Some(&ResponseCode::ContactAdmin), "Access denied"),
        b"* BYE [CONTACTADMIN] Access denied\r\n"
    );
}

#[test]
fn answers_only_when_due() {
    let mut s = session(|c| c.tls_active = true);
    assert!(s.login_ok(&[]).is_err());
    assert!(s.starttls_ok().is_err());
    assert!(s.auth_challenge(b"+ \r\n").is_err());
    s.feed(b"a1 LOGIN a b\r\n");
    assert!(matches!(s.poll(), Event::Login { .. }));
    assert!(s.auth_challenge(b"+ \r\n").is_err());
    assert!(s.starttls_ok().is_err());
    s.reject(Some(ResponseCode::Unavailable), "Store unreachable")
        .expect("reject");
    assert_eq!(out(&mut s), "a1 NO [UNAVAILABLE] Store unreachable\r\n");
}

/// AUTHENTICATE PLAIN through the sasl crate's framing and a backend.
fn authenticate(s: &mut ServerSession, backend: &MemoryBackend, lines: &[&[u8]]) -> bool {
    let policy = Policy::default();
    let ctx = ServerContext::new(Service::Imap, "imap.example")
        .with_tls(TlsState::new(TlsVersion::Tls13, false));
    let Event::Authenticate {
        tag,
        mechanism,
        initial_response,
    } = s.poll()
    else {
        panic!("no AUTHENTICATE")
    };
    let (mut ex, mut ev) = AuthExchange::start(
        Protocol::Imap,
        Some(&tag),
        mechanism.as_bytes(),
        initial_response.as_ref().map(|r| r.as_slice()),
        &policy,
        &ctx,
    );
    let mut lines = lines.iter();
    loop {
        ev = match ev {
            AuthEvent::Send(challenge) => {
                s.auth_challenge(&challenge).expect("challenge");
                s.feed(lines.next().expect("client line"));
                let Event::AuthResponse { line } = s.poll() else {
                    panic!("no response line")
                };
                ex.line(&line)
            }
            AuthEvent::Verify(r) => ex.answer(backend.answer(&r)),
            AuthEvent::Success { .. } => {
                s.login_ok(&["IMAP4rev1".to_owned()]).expect("ok");
                return true;
            }
            AuthEvent::Failure { reply, .. } => {
                s.auth_fail(&reply).expect("fail");
                return false;
            }
            _ => panic!("unknown sasl event"),
        };
    }
}

#[test]
fn authenticate_through_sasl_framing() {
    let backend = MemoryBackend::new()
        .with_user("alice", "alice-pw")
        .expect("user");
    let mut s = session(|c| {
        c.tls_active = true;
        c.sasl_mechanisms = vec!["PLAIN".into()];
    });
    // Wrong password, with continuation.
    s.feed(b"a1 AUTHENTICATE PLAIN\r\n");
    assert!(!authenticate(&mut s, &backend, &[b"AGFsaWNlAHdyb25n\r\n"]));
    assert_eq!(
        out(&mut s),
        "+ \r\na1 NO [AUTHENTICATIONFAILED] Authentication failed\r\n"
    );
    // Cancelled.
    s.feed(b"a2 AUTHENTICATE PLAIN\r\n");
    assert!(!authenticate(&mut s, &backend, &[b"*\r\n"]));
    assert_eq!(out(&mut s), "+ \r\na2 BAD Authentication aborted\r\n");
    // A literal announcement in a SASL line is not a literal.
    s.feed(b"a3 AUTHENTICATE PLAIN\r\n");
    assert!(!authenticate(&mut s, &backend, &[b"{5}\r\n"]));
    assert_eq!(out(&mut s), "+ \r\na3 BAD Invalid authentication data\r\n");
    // SASL-IR, right password; the pipelined command goes to the store.
    s.feed(b"a4 AUTHENTICATE PLAIN AGFsaWNlAGFsaWNlLXB3\r\na5 SELECT INBOX\r\n");
    assert!(authenticate(&mut s, &backend, &[]));
    assert_eq!(out(&mut s), "a4 OK [CAPABILITY IMAP4REV1] Logged in\r\n");
    assert!(matches!(s.poll(), Event::LoggedIn));
    assert_eq!(&*s.take_pending_input(), b"a5 SELECT INBOX\r\n");
}

/// Runs `input` fed in two pieces split at `at`, answering every login with
/// NO and every STARTTLS with OK; returns output and events.
fn run_split(input: &[u8], at: usize) -> (Vec<u8>, Vec<String>) {
    let mut s = session(|c| {
        c.plaintext_allowed = true;
        c.literal_plus = true;
        c.sasl_mechanisms = vec!["PLAIN".into()];
    });
    let mut events = Vec::new();
    let mut output = Vec::new();
    for piece in [&input[..at], &input[at..]] {
        s.feed(piece);
        loop {
            match s.poll() {
                Event::NeedMoreInput | Event::Close | Event::LoggedIn => break,
                Event::Waiting => {}
                Event::StartTls { tag } => {
                    events.push(format!("starttls {tag}"));
                    s.starttls_ok().expect("ok");
                }
                Event::Login {
                    tag,
                    user,
                    password,
                } => {
                    events.push(format!("login {tag} {user} {}", password.expose()));
                    s.login_no(None, "no").expect("no");
                }
                Event::Authenticate { tag, .. } => {
                    events.push(format!("auth {tag}"));
                    s.login_no(None, "no").expect("no");
                }
                e => events.push(format!("{e:?}")),
            }
        }
        output.extend_from_slice(&s.take_output());
    }
    (output, events)
}

#[test]
fn split_at_every_byte_gives_the_same_session() {
    let input: &[u8] = b"a0 CAPABILITY\r\na1 ID (\"name\" {3+}\r\nabc)\r\n\
        a2 LOGIN {5+}\r\nalice \"pw \\\"q\"\r\na3 NOOP\r\nbad line\r\n\
        a4 AUTHENTICATE PLAIN =\r\na5 STARTTLS\r\na6 LOGIN {3+}\r\nbob {2+}\r\npw\r\n\
        a7 LOGOUT\r\n";
    let (whole_out, whole_events) = run_split(input, input.len());
    assert_eq!(
        whole_events,
        vec![
            "Id { tag: \"a1\", parameters: Some([(\"name\", Some(\"abc\"))]) }",
            "login a2 alice pw \"q",
            "auth a4",
            "login a6 bob pw",
            "Logout",
        ]
    );
    for at in 0..input.len() {
        let (o, e) = run_split(input, at);
        assert_eq!(e, whole_events, "split at {at}");
        assert_eq!(
            String::from_utf8_lossy(&o),
            String::from_utf8_lossy(&whole_out),
            "split at {at}"
        );
    }
}

#[test]
fn input_ahead_of_the_answers_is_bounded() {
    let mut s = session(|c| c.tls_active = true);
    s.feed(b"a1 LOGIN a b\r\n");
    assert!(matches!(s.poll(), Event::Login { .. }));
    // The daemon is busy; the client keeps sending.
    let chunk = b"a2 NOOP\r\n".repeat(1000);
    let mut fed = 0;
    while fed <= s.max_unread() {
        s.feed(&chunk);
        fed += chunk.len();
    }
    assert!(matches!(s.poll(), Event::Close));
    assert_eq!(out(&mut s), "* BYE Too much input ahead of the answers\r\n");
    // After login, bytes are the relay's and not bounded here.
    let mut s = session(|c| c.tls_active = true);
    s.feed(b"a1 LOGIN a b\r\n");
    assert!(matches!(s.poll(), Event::Login { .. }));
    s.login_ok(&[]).expect("ok");
    let big = vec![b'x'; s.max_unread() + 1];
    s.feed(&big);
    assert!(matches!(s.poll(), Event::LoggedIn));
    assert_eq!(s.take_pending_input().len(), big.len());
}

#[test]
fn a_failed_login_is_answered_with_the_sasl_failure_reply() {
    use portcullis_sasl::framing::{Failure, failure_reply};
    let mut s = session(|c| c.tls_active = true);
    s.feed(b"a1 LOGIN alice wrong\r\na2 NOOP\r\n");
    let Event::Login { tag, .. } = s.poll() else {
        panic!("no login")
    };
    let reply = failure_reply(Protocol::Imap, Some(&tag), Failure::BadCredentials);
    s.login_fail(&reply).expect("fail");
    // Back in the not-authenticated state: the next command is answered.
    assert!(matches!(s.poll(), Event::NeedMoreInput));
    let text = out(&mut s);
    assert!(text.starts_with("a1 NO [AUTHENTICATIONFAILED]"), "{text}");
    assert!(text.contains("a2 OK"), "{text}");
    // Nothing pending any more.
    assert!(s.login_fail(&reply).is_err());
}
