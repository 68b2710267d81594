//! RFC 1939, 2449, 5034, 2595 and 3206 examples, from `tests/data/`.

mod common;

use portcullis_pop3_proto::{Response, ResponseCode};

const TRANSCRIPTS: &[(&str, &str)] = &[
    ("rfc1939_apop", include_str!("data/rfc1939_apop.txt")),
    ("rfc1939_user", include_str!("data/rfc1939_user.txt")),
    ("rfc2449_capa", include_str!("data/rfc2449_capa.txt")),
    ("rfc5034_auth", include_str!("data/rfc5034_auth.txt")),
    ("rfc5034_auth_ir", include_str!("data/rfc5034_auth_ir.txt")),
    ("rfc2595_stls", include_str!("data/rfc2595_stls.txt")),
];

#[test]
fn transcripts_whole_lines() {
    for (name, text) in TRANSCRIPTS {
        eprintln!("{name}");
        common::run(text, usize::MAX);
    }
}

#[test]
fn transcripts_byte_by_byte() {
    for (name, text) in TRANSCRIPTS {
        eprintln!("{name}");
        for chunk in [1, 2, 3, 7] {
            common::run(text, chunk);
        }
    }
}

#[test]
fn rfc3206_codes() {
    for line in include_str!("data/rfc3206_codes.txt").lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (status, code) = line.split_once(" => ").expect("=>");
        let r = Response::parse(status.as_bytes()).expect("parse");
        let expected = (code != "-").then(|| ResponseCode::parse(code).expect("code"));
        assert_eq!(r.code, expected, "{line}");
        // Round trip.
        assert_eq!(Response::parse(&r.encode()).expect("reparse"), r);
        assert_eq!(r.encode(), format!("{status}\r\n").into_bytes());
    }
}
