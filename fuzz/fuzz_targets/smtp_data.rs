//! Fuzz the DATA/BDAT scanner: the same result however the input is cut
//! (for a message with a violation, the same violation after the same
//! input, and content that is one stream's prefix: what is handed on
//! before the violation shows depends on where reads end, and the relay
//! discards it), never a bare CR or LF handed on, and DotStuffer's
//! encoding of the content scans back to the same content.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_smtp_proto::{BareNewline, DataScanner, DotStuffer, Framing, Limits};

fn run(
    framing: Framing,
    policy: BareNewline,
    data: &[u8],
    cuts: &[usize],
) -> (Vec<u8>, usize, bool) {
    let mut limits = Limits::default();
    limits.max_line = 200;
    limits.max_size = 4096;
    let mut s = DataScanner::new(framing, policy, limits);
    let mut out = Vec::new();
    let mut consumed = 0;
    let mut start = 0;
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    points.sort_unstable();
    points.push(data.len());
    for p in points {
        if p >= start && !s.is_ended() {
            consumed += s.scan(&data[start..p], &mut out);
            start = p;
        }
    }
    if framing == Framing::Chunked {
        s.finish(&mut out);
    }
    (out, consumed, s.violation().is_none())
}

fuzz_target!(|input: (u8, Vec<usize>, Vec<u8>)| {
    let (flags, cuts, data) = input;
    let framing = if flags & 1 != 0 {
        Framing::Chunked
    } else {
        Framing::Dot
    };
    let policy = if flags & 2 != 0 {
        BareNewline::Normalize
    } else {
        BareNewline::Reject
    };
    let whole = run(framing, policy, &data, &cuts[..0]);
    let cut = run(framing, policy, &data, &cuts);
    if whole.2 {
        assert_eq!(cut, whole);
    } else {
        assert_eq!((cut.1, cut.2), (whole.1, whole.2));
        let (short, long) = if cut.0.len() <= whole.0.len() {
            (&cut.0, &whole.0)
        } else {
            (&whole.0, &cut.0)
        };
        assert!(long.starts_with(short), "contents of one stream");
    }
    for out in [&whole.0, &cut.0] {
        for (i, &b) in out.iter().enumerate() {
            match b {
                b'\n' => assert!(i > 0 && out[i - 1] == b'\r'),
                b'\r' => assert_eq!(out.get(i + 1), Some(&b'\n')),
                _ => {}
            }
        }
    }
    let out = &whole.0;
    if whole.2 && out.ends_with(b"\r\n") {
        let mut wire = Vec::new();
        let mut st = DotStuffer::new();
        st.stuff(out, &mut wire);
        st.finish(&mut wire);
        let again = run(Framing::Dot, BareNewline::Reject, &wire, &[]);
        assert_eq!(&again.0, out);
        assert_eq!(again.1, wire.len());
    }
});
