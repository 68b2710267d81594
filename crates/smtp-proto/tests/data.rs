//! The message scanner: the end of data, dot-stuffing, the smuggling
//! sequences under both policies, limits, and cutting the input anywhere.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use portcullis_smtp_proto::{BareNewline, DataScanner, DotStuffer, Framing, Limits, Violation};

/// Scans `pieces` one after the other; returns (content, consumed, ended,
/// violation).
fn scan(
    policy: BareNewline,
    limits: Limits,
    pieces: &[&[u8]],
) -> (Vec<u8>, usize, bool, Option<Violation>) {
    let mut s = DataScanner::new(Framing::Dot, policy, limits);
    let mut out = Vec::new();
    let mut consumed = 0;
    for p in pieces {
        let n = s.scan(p, &mut out);
        consumed += n;
        if s.is_ended() {
            break;
        }
        assert_eq!(n, p.len(), "a piece is consumed whole until the end");
    }
    (out, consumed, s.is_ended(), s.violation())
}

fn whole(policy: BareNewline, input: &[u8]) -> (Vec<u8>, usize, bool, Option<Violation>) {
    scan(policy, Limits::default(), &[input])
}

#[test]
fn ends_only_at_crlf_dot_crlf() {
    type Case = (&'static [u8], &'static [u8], usize);
    let cases: &[Case] = &[
        (b".\r\n", b"", 3),
        (b"a\r\n.\r\nMAIL", b"a\r\n", 6),
        (b"..\r\n.\r\n", b".\r\n", 7),
        (b"..a\r\n.b\r\n.\r\n", b".a\r\nb\r\n", 12),
        (b"a\r\n..\r\n\r\n.\r\n", b"a\r\n.\r\n\r\n", 12),
    ];
    for (input, content, consumed) in cases {
        let (out, n, ended, v) = whole(BareNewline::Reject, input);
        assert!(ended, "{input:?}");
        assert_eq!(v, None, "{input:?}");
        assert_eq!(out, *content, "{input:?}");
        assert_eq!(n, *consumed, "{input:?}");
    }
}

/// The five sequences of the SMTP smuggling papers, each followed by a
/// second message's commands and the real end.
const SMUGGLING: [&[u8]; 5] = [b"\n.\n", b"\n.\r\n", b"\r.\r", b"\r\n.\n", b"\r\n.\r\r\n"];

fn smuggled(seq: &[u8]) -> Vec<u8> {
    let mut m = b"Subject: one\r\n\r\nfirst".to_vec();
    m.extend_from_slice(seq);
    m.extend_from_slice(
        b"MAIL FROM:<evil@example.org>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\nSubject: two\r\n",
    );
    m.extend_from_slice(b"\r\n.\r\nQUIT\r\n");
    m
}

#[test]
fn smuggling_sequences_never_end_the_data_and_are_refused() {
    for seq in SMUGGLING {
        let input = smuggled(seq);
        let (out, n, ended, v) = whole(BareNewline::Reject, &input);
        assert!(ended, "{seq:?}");
        assert_eq!(
            &input[n..],
            b"QUIT\r\n",
            "{seq:?}: ends at the real end only"
        );
        assert!(
            matches!(v, Some(Violation::BareLf | Violation::BareCr)),
            "{seq:?}: {v:?}"
        );
        assert!(
            !out.windows(4).any(|w| w == b"MAIL"),
            "{seq:?}: nothing after the violation"
        );
        assert_eq!(v.unwrap().reply().code(), 550);
        assert!(v.unwrap().reply().text().starts_with("5.5.2 "));
    }
}

#[test]
fn smuggling_sequences_normalized_stay_content() {
    for seq in SMUGGLING {
        let input = smuggled(seq);
        let (out, n, ended, v) = whole(BareNewline::Normalize, &input);
        assert!(ended, "{seq:?}");
        assert_eq!(v, None, "{seq:?}");
        assert_eq!(&input[n..], b"QUIT\r\n", "{seq:?}");
        // Every line of the content ends in CR LF, nothing else.
        for (i, &b) in out.iter().enumerate() {
            if b == b'\n' {
                assert_eq!(out[i - 1], b'\r', "{seq:?}: bare LF handed on");
            }
            if b == b'\r' {
                assert_eq!(out.get(i + 1), Some(&b'\n'), "{seq:?}: bare CR handed on");
            }
        }
        // The smuggled commands are message text, and re-encoded for a
        // relay the lone dot is stuffed, so the relay sees one message.
        let mut wire = Vec::new();
        let mut st = DotStuffer::new();
        st.stuff(&out, &mut wire);
        st.finish(&mut wire);
        let ends = wire.windows(5).filter(|w| w == b"\r\n.\r\n").count();
        assert_eq!(ends, 1, "{seq:?}: {:?}", String::from_utf8_lossy(&wire));
        assert!(wire.ends_with(b"\r\n.\r\n"));
        assert!(out.windows(4).any(|w| w == b"MAIL"));
    }
}

#[test]
fn every_cut_gives_the_same_result() {
    let mut inputs: Vec<Vec<u8>> = SMUGGLING.iter().map(|s| smuggled(s)).collect();
    inputs.push(b"..a\r\n.b\r\nline\r\n\r\n.\r\nNOOP\r\n".to_vec());
    inputs.push(b"a\rb\nc\r\n.\r\n".to_vec());
    for policy in [BareNewline::Reject, BareNewline::Normalize] {
        for input in &inputs {
            let reference = whole(policy, input);
            for cut in 0..=input.len() {
                let got = scan(policy, Limits::default(), &[&input[..cut], &input[cut..]]);
                assert_eq!(got, reference, "{policy:?} {input:?} cut {cut}");
            }
            let bytes: Vec<&[u8]> = input.chunks(1).collect();
            assert_eq!(scan(policy, Limits::default(), &bytes), reference);
        }
    }
}

#[test]
fn line_and_size_limits() {
    let mut long = vec![b'x'; 998];
    long.extend_from_slice(b"\r\n.\r\n");
    assert_eq!(whole(BareNewline::Reject, &long).3, None, "998 + CRLF fits");
    let mut longer = vec![b'x'; 999];
    longer.extend_from_slice(b"\r\n.\r\n");
    let (out, _, ended, v) = whole(BareNewline::Reject, &longer);
    assert!(ended);
    assert_eq!(v, Some(Violation::LineTooLong));
    assert!(out.len() <= 998);

    let mut limits = Limits::default();
    limits.max_size = 10;
    let (out, _, ended, v) = scan(BareNewline::Reject, limits, &[b"0123456789\r\n.\r\n"]);
    assert!(ended);
    assert_eq!(v, Some(Violation::TooBig));
    assert!(out.len() <= 10);
    assert_eq!(v.unwrap().reply().code(), 552);
    let (_, _, _, v) = scan(BareNewline::Reject, limits, &[b"01234567\r\n.\r\n"]);
    assert_eq!(v, None, "exactly the limit");
}

#[test]
fn chunked_framing_has_no_dots_and_checks_across_chunks() {
    let mut s = DataScanner::new(Framing::Chunked, BareNewline::Reject, Limits::default());
    let mut out = Vec::new();
    assert_eq!(s.scan(b".leading\r", &mut out), 9);
    assert_eq!(s.scan(b"\n.\r\nlast", &mut out), 8);
    s.finish(&mut out);
    assert_eq!(s.violation(), None);
    assert_eq!(out, b".leading\r\n.\r\nlast\r\n");

    let mut s = DataScanner::new(Framing::Chunked, BareNewline::Reject, Limits::default());
    let mut out = Vec::new();
    s.scan(b"text\r", &mut out);
    s.finish(&mut out);
    assert_eq!(
        s.violation(),
        Some(Violation::BareCr),
        "a CR that ends the message is bare"
    );
}

#[test]
fn policy_words() {
    assert_eq!(
        "reject".parse::<BareNewline>().unwrap(),
        BareNewline::Reject
    );
    assert_eq!(
        "Normalize".parse::<BareNewline>().unwrap(),
        BareNewline::Normalize
    );
    assert!("allow".parse::<BareNewline>().is_err());
    assert_eq!(BareNewline::default(), BareNewline::Reject);
    assert_eq!(BareNewline::Normalize.as_str(), "normalize");
}

#[test]
fn dot_stuffer_round_trips_through_the_scanner() {
    let content = b"line\r\n.dot\r\n..two\r\n.\r\n\r\nend\r\n";
    let mut wire = Vec::new();
    let mut st = DotStuffer::new();
    st.stuff(&content[..7], &mut wire);
    st.stuff(&content[7..], &mut wire);
    st.finish(&mut wire);
    let (out, n, ended, v) = whole(BareNewline::Reject, &wire);
    assert!(ended);
    assert_eq!(v, None);
    assert_eq!(n, wire.len());
    assert_eq!(out, content);
    let mut wire = Vec::new();
    let mut st = DotStuffer::new();
    st.stuff(b"no final newline", &mut wire);
    st.finish(&mut wire);
    assert_eq!(wire, b"no final newline\r\n.\r\n");
}
