//! Properties: the scanner gives the same result however the input is
//! cut, never hands on a bare CR or LF, and round-trips what DotStuffer
//! encodes; the session and the command parser survive any input; checked
//! commands re-encode to lines that parse to the same values.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use portcullis_smtp_proto::{
    BareNewline, Command, DataScanner, DotStuffer, Framing, Limits, ServerConfig,
};
use proptest::prelude::*;

fn policy() -> impl Strategy<Value = BareNewline> {
    prop_oneof![Just(BareNewline::Reject), Just(BareNewline::Normalize)]
}

/// Bytes rich in CR, LF and dots.
fn smtp_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            Just(b'\r'),
            Just(b'\n'),
            Just(b'.'),
            Just(b'a'),
            any::<u8>()
        ],
        0..300,
    )
}

fn scan_pieces(
    framing: Framing,
    policy: BareNewline,
    input: &[u8],
    cuts: &[usize],
) -> (
    Vec<u8>,
    usize,
    bool,
    Option<portcullis_smtp_proto::Violation>,
) {
    let mut limits = Limits::default();
    limits.max_line = 100;
    let mut s = DataScanner::new(framing, policy, limits);
    let mut out = Vec::new();
    let mut consumed = 0;
    let mut start = 0;
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    points.sort_unstable();
    points.push(input.len());
    for p in points {
        if p < start || s.is_ended() {
            continue;
        }
        consumed += s.scan(&input[start..p], &mut out);
        start = p;
    }
    if framing == Framing::Chunked {
        s.finish(&mut out);
    }
    (out, consumed, s.is_ended(), s.violation())
}

fn assert_clean(out: &[u8]) {
    for (i, &b) in out.iter().enumerate() {
        if b == b'\n' {
            assert!(i > 0 && out[i - 1] == b'\r', "bare LF handed on");
        }
        if b == b'\r' {
            assert_eq!(out.get(i + 1), Some(&b'\n'), "bare CR handed on");
        }
    }
}

proptest! {
    #[test]
    fn cutting_never_changes_the_result(
        input in smtp_bytes(),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
        policy in policy(),
        chunked in any::<bool>(),
    ) {
        let framing = if chunked { Framing::Chunked } else { Framing::Dot };
        let whole = scan_pieces(framing, policy, &input, &[]);
        prop_assert_eq!(scan_pieces(framing, policy, &input, &cuts), whole.clone());
        assert_clean(&whole.0);
        if policy == BareNewline::Normalize {
            prop_assert!(!matches!(
                whole.3,
                Some(portcullis_smtp_proto::Violation::BareLf | portcullis_smtp_proto::Violation::BareCr)
            ));
        }
    }

    #[test]
    fn dot_stuffed_content_round_trips(
        lines in proptest::collection::vec("[ -~]{0,60}", 0..12),
        cut in any::<usize>(),
    ) {
        let content: Vec<u8> = lines.iter().flat_map(|l| format!("{l}\r\n").into_bytes()).collect();
        let mut wire = Vec::new();
        let mut st = DotStuffer::new();
        let c = cut % (content.len() + 1);
        st.stuff(&content[..c], &mut wire);
        st.stuff(&content[c..], &mut wire);
        st.finish(&mut wire);
        wire.extend_from_slice(b"NOOP\r\n");
        let (out, consumed, ended, violation) =
            scan_pieces(Framing::Dot, BareNewline::Reject, &wire, &[cut]);
        prop_assert!(ended);
        prop_assert_eq!(violation, None);
        prop_assert_eq!(&wire[consumed..], b"NOOP\r\n");
        prop_assert_eq!(out, content);
    }

    #[test]
    fn any_command_line_parses_or_gets_a_reply(line in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Err(r) = Command::parse(&line) {
            prop_assert!((500..=599).contains(&r.code()));
        }
    }

    #[test]
    fn mail_and_rcpt_re_encode_to_the_same_values(
        local in "[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]{1,20}(\\.[a-z0-9]{1,5}){0,2}",
        domain in "[a-z0-9]{1,10}(\\.[a-z0-9]{1,10}){0,3}",
        size in proptest::option::of(1u64..1_000_000_000),
        eight in any::<bool>(),
        envid in proptest::option::of("[!-~]{1,20}"),
    ) {
        let mut line = format!("MAIL FROM:<{local}@{domain}>");
        if let Some(n) = size { line.push_str(&format!(" SIZE={n}")); }
        if eight { line.push_str(" BODY=8BITMIME"); }
        if let Some(e) = &envid {
            line.push_str(" ENVID=");
            line.push_str(&portcullis_popbeforesmtp::relay::xclient::xtext_encode(e.as_bytes()));
        }
        let Ok(Command::Mail(m)) = Command::parse(line.as_bytes()) else {
            return Err(TestCaseError::fail(format!("{line} not parsed")));
        };
        prop_assert_eq!(m.envid.as_deref(), envid.as_deref());
        let again = Command::parse(m.to_line().as_bytes());
        prop_assert_eq!(again, Ok(Command::Mail(m)));
        let orcpt = portcullis_popbeforesmtp::relay::xclient::xtext_encode(format!("{local}@{domain}").as_bytes());
        let rline = format!("RCPT TO:<{local}@{domain}> NOTIFY=FAILURE ORCPT=rfc822;{orcpt}");
        let Ok(Command::Rcpt(r)) = Command::parse(rline.as_bytes()) else {
            return Err(TestCaseError::fail(format!("{rline} not parsed")));
        };
        prop_assert_eq!(r.orcpt.clone(), Some(format!("{local}@{domain}")));
        prop_assert_eq!(Command::parse(r.to_line().as_bytes()), Ok(Command::Rcpt(r)));
    }

    #[test]
    fn the_session_survives_any_input(
        pieces in proptest::collection::vec(smtp_bytes(), 0..8),
        prefix in any::<bool>(),
    ) {
        let mut d = common::Daemon::new(ServerConfig::default());
        d.drive();
        if prefix {
            d.feed(b"EHLO c.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n");
        }
        for p in &pieces {
            d.feed(p);
        }
        prop_assert!(d.out.ends_with(b"\r\n"));
        assert_clean(&d.body);
    }
}
