//! Fuzz the SMTP server session: arbitrary client bytes in arbitrary
//! pieces, with arbitrary daemon answers. The session must never panic,
//! never hand on content with a bare CR or LF, never raise MAIL before
//! EHLO/HELO, and always leave whole reply lines.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_smtp_proto::reply::{self, Reply};
use portcullis_smtp_proto::{BareNewline, Event, ServerConfig, ServerSession};

fn clean(out: &[u8]) -> bool {
    out.iter().enumerate().all(|(i, &b)| match b {
        b'\n' => i > 0 && out[i - 1] == b'\r',
        b'\r' => out.get(i + 1) == Some(&b'\n'),
        _ => true,
    })
}

fuzz_target!(|input: (u8, Vec<(Vec<u8>, u8)>)| {
    let (flags, pieces) = input;
    let mut config = ServerConfig::default();
    config.tls_active = flags & 1 != 0;
    config.starttls_available = flags & 2 != 0;
    config.auth_requires_tls = flags & 4 == 0;
    config.chunking = flags & 8 == 0;
    config.dsn = flags & 16 != 0;
    config.bare_newline = if flags & 32 != 0 {
        BareNewline::Normalize
    } else {
        BareNewline::Reject
    };
    config.max_message_size = if flags & 64 != 0 { 64 } else { 0 };
    config.max_recipients = 3;
    config.sasl_mechanisms = vec!["PLAIN".to_owned()];
    let Ok(mut s) = ServerSession::new(config) else {
        return;
    };
    let mut greeted = false;
    for (bytes, answer) in pieces {
        s.feed(&bytes);
        for _ in 0..256 {
            let e = s.poll();
            match &e {
                Event::NeedMoreInput | Event::Quit | Event::Close => break,
                Event::Greeted { .. } => greeted = true,
                Event::StartTls => greeted = false,
                Event::Mail(m) => {
                    assert!(greeted, "MAIL before EHLO");
                    assert!(!m.to_line().contains(['\r', '\n']));
                }
                Event::Rcpt(r) => assert!(!r.to_line().contains(['\r', '\n'])),
                Event::Body(c) => assert!(clean(c), "bare CR or LF handed on"),
                _ => {}
            }
            if matches!(e, Event::Waiting)
                || !matches!(
                    e,
                    Event::Greeted { .. } | Event::Body(_) | Event::BodyAborted(_) | Event::Reset
                )
            {
                let ok: Reply = reply::standard(reply::OK);
                let no: Reply = reply::line(550, "5.0.0 no");
                let r = match answer % 6 {
                    0 => s.answer(&ok),
                    1 => s.answer(&no),
                    2 => s.data_ok(),
                    3 => s.starttls_ok().map(|_| ()),
                    4 => s.auth_fail(b"535 5.7.8 no\r\n"),
                    _ => s.reject(&no),
                };
                if r.is_err() {
                    let _ = s.answer(&no);
                    let _ = s.reject(&no);
                }
            }
        }
        let out = s.take_output();
        assert!(out.is_empty() || out.ends_with(b"\r\n"));
    }
});
