#![no_main]
//! The relay reply parser on arbitrary bytes, fed in two pieces: it never
//! panics, stays bounded, and every reply it yields encodes and parses back
//! to itself, and the EHLO filter never shows XCLIENT.
use libfuzzer_sys::fuzz_target;
use portcullis_popbeforesmtp::relay::{EhloFilter, ReplyParser, reply::MAX_LINE};

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let cut = usize::from(cut).min(rest.len());
    let mut parser = ReplyParser::new();
    for piece in [&rest[..cut], &rest[cut..]] {
        parser.feed(piece);
        loop {
            match parser.next_reply() {
                Ok(Some(reply)) => {
                    let wire = reply.encode();
                    let mut again = ReplyParser::new();
                    again.feed(&wire);
                    let back = again.next_reply().expect("re-parse").expect("complete");
                    assert_eq!(back, reply);
                    assert_eq!(again.buffered(), 0);
                    // The EHLO filter never passes XCLIENT (or a line
                    // with CR/LF) on to a client.
                    let shown = EhloFilter::default().filter(&reply);
                    for line in &shown.lines()[1..] {
                        assert!(!line.to_ascii_uppercase().starts_with("XCLIENT"));
                    }
                    assert!(shown.lines().iter().all(|l| !l.contains(['\r', '\n'])));
                }
                Ok(None) => {
                    assert!(parser.buffered() < MAX_LINE + rest.len());
                    break;
                }
                Err(_) => return,
            }
        }
    }
});
