//! A transcript runner: `S:` lines the session must write, `C:` lines fed
//! to it (CRLF added), `E:` the event expected, `D:` the daemon's answer.
#![allow(dead_code, unreachable_pub)]

use portcullis_imap_proto::{Event, ResponseCode, ServerConfig, ServerSession};

pub fn config_from(text: &str) -> ServerConfig {
    let mut c = ServerConfig::default();
    for line in text.lines() {
        let Some(opts) = line.strip_prefix("# config:") else {
            continue;
        };
        for o in opts.split_whitespace() {
            match o.split_once('=') {
                None if o == "tls" => c.tls_active = true,
                None if o == "starttls" => c.starttls_available = true,
                None if o == "plaintext" => c.plaintext_allowed = true,
                None if o == "literal+" => c.literal_plus = true,
                Some(("sasl", v)) => c.sasl_mechanisms = v.split(',').map(str::to_owned).collect(),
                Some(("greeting", v)) => c.greeting = v.replace('_', " "),
                Some(("id", v)) => {
                    c.id = v
                        .split(',')
                        .map(|kv| {
                            let (k, v) = kv.split_once(':').expect("id k:v");
                            (k.to_owned(), v.replace('_', " "))
                        })
                        .collect();
                }
                _ => panic!("unknown option {o}"),
            }
        }
    }
    c
}

pub fn describe(e: &Event) -> String {
    match e {
        Event::Login {
            tag,
            user,
            password,
        } => format!("Login {tag} {user} {}", password.expose()),
        Event::Authenticate {
            tag,
            mechanism,
            initial_response: None,
        } => format!("Authenticate {tag} {mechanism}"),
        Event::Authenticate {
            tag,
            mechanism,
            initial_response: Some(ir),
        } => format!(
            "Authenticate {tag} {mechanism} {}",
            String::from_utf8_lossy(ir)
        ),
        Event::AuthResponse { line } => format!("AuthResponse {}", String::from_utf8_lossy(line)),
        Event::StartTls { tag } => format!("StartTls {tag}"),
        Event::Id {
            tag,
            parameters: None,
        } => format!("Id {tag} NIL"),
        Event::Id {
            tag,
            parameters: Some(p),
        } => {
            let fields: Vec<String> = p
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("NIL")))
                .collect();
            format!("Id {tag} {}", fields.join(" "))
        }
        other => format!("{other:?}"),
    }
}

fn code(s: &str) -> Option<ResponseCode> {
    (s != "-").then(|| ResponseCode::parse(s).expect("code"))
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
        } else if let Some(e) = line.strip_prefix("E: ") {
            expected_events.push(e.to_owned());
        } else if let Some(d) = line.strip_prefix("D: ") {
            let (verb, rest) = d.split_once(' ').unwrap_or((d, ""));
            match verb {
                "login_ok" => {
                    let caps: Vec<String> = if rest.is_empty() {
                        Vec::new()
                    } else {
                        rest.split(' ').map(str::to_owned).collect()
                    };
                    s.login_ok(&caps).expect("login_ok");
                }
                "login_no" => {
                    let (c, t) = rest.split_once(' ').unwrap_or((rest, ""));
                    s.login_no(code(c), t).expect("login_no");
                }
                "reject" => {
                    let (c, t) = rest.split_once(' ').unwrap_or((rest, ""));
                    s.reject(code(c), t).expect("reject");
                }
                "auth_fail" => s
                    .auth_fail(format!("{rest}\r\n").as_bytes())
                    .expect("auth_fail"),
                "challenge" => s
                    .auth_challenge(&portcullis_sasl::framing::encode_challenge(
                        portcullis_sasl::framing::Protocol::Imap,
                        rest.as_bytes(),
                    ))
                    .expect("challenge"),
                "starttls_ok" => {
                    s.starttls_ok().expect("starttls_ok");
                }
                "bye" => s.bye(rest),
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
