//! Fuzz the IMAP server session: arbitrary client bytes in arbitrary
//! pieces, with arbitrary daemon answers. The session must never panic,
//! never log in without `login_ok`, and never keep input across STARTTLS.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_imap_proto::{Event, ResponseCode, ServerConfig, ServerSession};

fuzz_target!(|input: (u8, Vec<(Vec<u8>, u8)>)| {
    let (flags, pieces) = input;
    let mut config = ServerConfig::default();
    config.tls_active = flags & 1 != 0;
    config.starttls_available = flags & 2 != 0;
    config.plaintext_allowed = flags & 4 != 0;
    config.literal_plus = flags & 8 != 0;
    if flags & 16 != 0 {
        config.max_line = 64;
        config.max_literal = 16;
        config.max_command = 128;
    }
    config.max_bad_commands = 1 + u32::from(flags >> 5);
    config.sasl_mechanisms = vec!["PLAIN".to_owned()];
    config.id = vec![("name".to_owned(), "fuzz".to_owned())];
    let Ok(mut s) = ServerSession::new(config) else {
        return;
    };
    let mut granted = false;
    for (bytes, answer) in pieces {
        s.feed(&bytes);
        for _ in 0..64 {
            match s.poll() {
                Event::NeedMoreInput | Event::Logout | Event::Close => break,
                Event::LoggedIn => {
                    assert!(granted, "logged in without login_ok");
                    let _ = s.take_pending_input();
                    break;
                }
                Event::Waiting => {
                    let r = match answer % 7 {
                        0 => s
                            .login_ok(&["IMAP4rev1".to_owned()])
                            .map(|()| granted = true),
                        1 => s.login_no(Some(ResponseCode::AuthenticationFailed), "no"),
                        2 => s.starttls_ok().map(|_| ()),
                        3 => s.auth_challenge(b"+ \r\n"),
                        4 => s.auth_fail(b"a BAD no\r\n"),
                        5 => {
                            s.bye("bye");
                            Ok(())
                        }
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
