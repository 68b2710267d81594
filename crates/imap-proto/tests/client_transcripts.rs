//! Client-side transcripts from `tests/data/client_*.txt`: `S:` lines the
//! store sends (fed in pieces), `C:` lines the client must write, `E:` the
//! event expected, `D: tls` the finished TLS handshake.

use portcullis_imap_proto::{ClientConfig, ClientEvent, ClientSession, Login, Password};

const TRANSCRIPTS: &[(&str, &str)] = &[
    (
        "client_rfc3501_starttls",
        include_str!("data/client_rfc3501_starttls.txt"),
    ),
    (
        "client_rfc4959_master",
        include_str!("data/client_rfc4959_master.txt"),
    ),
    (
        "client_rfc9051_literal",
        include_str!("data/client_rfc9051_literal.txt"),
    ),
];

fn config_from(text: &str) -> ClientConfig {
    let mut login = None;
    let mut starttls = false;
    let mut id = Vec::new();
    for line in text.lines() {
        let Some(opts) = line.strip_prefix("# config:") else {
            continue;
        };
        for o in opts.split_whitespace() {
            match o.split_once('=') {
                None if o == "starttls" => starttls = true,
                Some(("login", v)) => {
                    let (u, p) = v.split_once(':').expect("user:password");
                    login = Some(Login::Login {
                        user: u.into(),
                        password: Password::new(p),
                    });
                }
                Some(("plain", v)) => {
                    let mut parts = v.splitn(3, ':');
                    let (z, c, p) = (parts.next(), parts.next(), parts.next());
                    login = Some(Login::Plain {
                        authzid: z.expect("authzid").into(),
                        authcid: c.expect("authcid").into(),
                        password: Password::new(p.expect("password")),
                    });
                }
                Some(("id", v)) => {
                    let (k, v) = v.split_once(':').expect("k:v");
                    id.push((k.to_owned(), v.to_owned()));
                }
                _ => panic!("unknown option {o}"),
            }
        }
    }
    let mut c = ClientConfig::new(login.expect("a login"));
    c.starttls = starttls;
    c.id = id;
    c
}

fn describe(e: &ClientEvent, s: &ClientSession) -> String {
    match e {
        ClientEvent::StartTls { .. } => "StartTls".into(),
        ClientEvent::LoggedIn => format!("LoggedIn {}", s.capabilities().join(" ")),
        ClientEvent::Refused(st) => format!(
            "Refused {:?} {} {}",
            st.kind,
            st.code.as_ref().map_or("-".into(), |c| c.to_text()),
            st.text
        ),
        other => format!("{other:?}"),
    }
}

fn run(text: &str, chunk: usize) {
    let mut s = ClientSession::new(config_from(text));
    let (mut out, mut expected_out) = (Vec::new(), Vec::new());
    let (mut events, mut expected_events) = (Vec::new(), Vec::new());
    for line in text.lines() {
        if let Some(l) = line.strip_prefix("S: ") {
            for piece in format!("{l}\r\n").as_bytes().chunks(chunk) {
                s.feed(piece);
                match s.poll() {
                    ClientEvent::NeedMoreInput => {}
                    e => {
                        let d = describe(&e, &s);
                        if events.last() != Some(&d) {
                            events.push(d);
                        }
                    }
                }
            }
        } else if let Some(l) = line.strip_prefix("C: ") {
            expected_out.extend_from_slice(l.as_bytes());
            expected_out.extend_from_slice(b"\r\n");
        } else if let Some(e) = line.strip_prefix("E: ") {
            expected_events.push(e.to_owned());
        } else if line == "D: tls" {
            s.tls_established().expect("tls");
        }
        out.extend_from_slice(&s.take_output());
    }
    assert_eq!(
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&expected_out)
    );
    assert_eq!(events, expected_events);
}

#[test]
fn client_transcripts_whole_and_byte_by_byte() {
    for (name, text) in TRANSCRIPTS {
        eprintln!("{name}");
        for chunk in [usize::MAX, 1, 2, 5] {
            run(text, chunk);
        }
    }
}
