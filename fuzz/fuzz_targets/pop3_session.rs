//! Fuzz the POP3 server session: arbitrary client bytes in arbitrary
//! pieces, with arbitrary daemon answers. The session must never panic,
//! never log in without `login_ok`, and never read past STLS.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_pop3_proto::{Event, ResponseCode, ServerConfig, ServerSession};

fuzz_target!(|input: (u8, Vec<(Vec<u8>, u8)>)| {
    let (flags, pieces) = input;
    let mut config = ServerConfig::default();
    config.tls_active = flags & 1 != 0;
    config.stls_available = flags & 2 != 0;
    config.plaintext_allowed = flags & 4 != 0;
    if flags & 8 != 0 {
        config.apop_timestamp = Some("<1.2.3@fuzz>".to_owned());
    }
    config.sasl_mechanisms = vec!["PLAIN".to_owned()];
    let Ok(mut s) = ServerSession::new(config) else {
        return;
    };
    let mut granted = false;
    for (bytes, answer) in pieces {
        s.feed(&bytes);
        for _ in 0..64 {
            match s.poll() {
                Event::NeedMoreInput | Event::Quit | Event::Close => break,
                Event::LoggedIn => {
                    assert!(granted, "logged in without login_ok");
                    let _ = s.take_pending_input();
                    break;
                }
                Event::Waiting => {
                    let r = match answer % 6 {
                        0 => s.login_ok().map(|()| granted = true),
                        1 => s.login_err(Some(ResponseCode::Auth), "no"),
                        2 => s.stls_ok().map(|_| ()),
                        3 => s.auth_challenge(b"+ \r\n"),
                        4 => s.auth_fail(b"-ERR no\r\n"),
                        _ => s.reject(None, "no"),
                    };
                    if r.is_err() {
                        let _ = s.reject(None, "no");
                    }
                }
                _ => {}
            }
        }
        let out = s.take_output();
        assert!(out.is_empty() || out.ends_with(b"\r\n"));
    }
});
