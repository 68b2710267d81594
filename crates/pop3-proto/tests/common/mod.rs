//! A transcript runner: `S:` lines the session must write, `C:` lines fed
//! to it, `E:` the event expected, `D:` the daemon's answer.
#![allow(dead_code, unreachable_pub)]

use portcullis_pop3_proto::{Event, ResponseCode, ServerConfig, ServerSession};

pub fn config_from(text: &str) -> ServerConfig {
    let mut c = ServerConfig::default();
    for line in text.lines() {
        let Some(opts) = line.strip_prefix("# config:") else {
            continue;
        };
        for o in opts.split_whitespace() {
            match o.split_once('=') {
                None if o == "tls" => c.tls_active = true,
                None if o == "stls" => c.stls_available = true,
                None if o == "plaintext" => c.plaintext_allowed = true,
                Some(("apop", v)) => c.apop_timestamp = Some(v.to_owned()),
                Some(("sasl", v)) => c.sasl_mechanisms = v.split(',').map(str::to_owned).collect(),
                Some(("implementation", v)) => c.implementation = Some(v.to_owned()),
                _ => panic!("unknown option {o}"),
            }
        }
    }
    c
}

pub fn describe(e: &Event) -> String {
    match e {
        Event::User { user } => format!("User {user}"),
        Event::Pass { user, .. } => format!("Pass {user}"),
        Event::Apop { user, digest } => format!("Apop {user} {digest}"),
        Event::Auth {
            mechanism,
            initial_response: None,
        } => format!("Auth {mechanism}"),
        Event::Auth {
            mechanism,
            initial_response: Some(ir),
        } => {
            format!("Auth {mechanism} {}", String::from_utf8_lossy(ir))
        }
        Event::AuthResponse { line } => format!("AuthResponse {}", String::from_utf8_lossy(line)),
        other => format!("{other:?}"),
    }
}

fn code(s: &str) -> Option<ResponseCode> {
    Some(ResponseCode::parse(s).expect("code"))
}

/// Runs a transcript, feeding each client line in pieces of `chunk` bytes.
pub fn run(text: &str, chunk: usize) {
    let mut s = ServerSession::new(config_from(text)).expect("session");
    let mut out = Vec::new();
    let mut expected_out = Vec::new();
    let mut events = Vec::new();
    let mut expected_events = Vec::new();
    let drain = |s: &mut ServerSession, events: &mut Vec<String>| loop {
        match s.poll() {
            Event::NeedMoreInput | Event::Waiting | Event::LoggedIn | Event::Close => break,
            e => events.push(describe(&e)),
        }
    };
    for line in text.lines() {
        if let Some(c) = line.strip_prefix("C: ") {
            let bytes = format!("{c}\r\n").into_bytes();
            for piece in bytes.chunks(chunk) {
                s.feed(piece);
                drain(&mut s, &mut events);
            }
        } else if let Some(sl) = line.strip_prefix("S: ") {
            expected_out.extend_from_slice(sl.as_bytes());
            expected_out.extend_from_slice(b"\r\n");
        } else if line == "S:" {
            expected_out.extend_from_slice(b"\r\n");
        } else if let Some(e) = line.strip_prefix("E: ") {
            expected_events.push(e.to_owned());
        } else if let Some(d) = line.strip_prefix("D: ") {
            let (verb, rest) = d.split_once(' ').unwrap_or((d, ""));
            match verb {
                "login_ok" => s.login_ok().expect("login_ok"),
                "login_err" => {
                    let (c, t) = rest.split_once(' ').unwrap_or((rest, ""));
                    s.login_err(code(c), t).expect("login_err");
                }
                "auth_fail" => s
                    .auth_fail(format!("{rest}\r\n").as_bytes())
                    .expect("auth_fail"),
                "challenge" => s
                    .auth_challenge(&portcullis_sasl::framing::encode_challenge(
                        portcullis_sasl::framing::Protocol::Pop3,
                        rest.as_bytes(),
                    ))
                    .expect("challenge"),
                "stls_ok" => {
                    s.stls_ok().expect("stls_ok");
                }
                _ => panic!("unknown daemon step {d}"),
            }
            drain(&mut s, &mut events);
        }
        out.extend_from_slice(&s.take_output());
    }
    assert_eq!(
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&expected_out)
    );
    assert_eq!(events, expected_events);
}
