//! The RFC examples in `tests/data/` (client lines from the RFCs, server
//! lines as this crate answers), fed whole, line by line, byte by byte and
//! split at every byte; the output and the events never depend on how the
//! input was cut.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Daemon, run_with, transcript};

fn check(name: &str, text: &str) -> Daemon {
    let (client, server) = transcript(text);
    let expected = String::from_utf8(server).unwrap();
    let whole = run_with(text, |l| vec![l.to_vec()]);
    assert_eq!(whole.out_str(), expected, "{name}: line by line");
    let bytes = run_with(text, |l| l.iter().map(|b| vec![*b]).collect());
    assert_eq!(bytes.out_str(), expected, "{name}: byte by byte");
    assert_eq!(bytes.events, whole.events, "{name}: byte by byte events");
    assert_eq!(bytes.body, whole.body, "{name}: byte by byte content");
    // Without STARTTLS (which discards what follows it) the whole
    // conversation may come pipelined, cut anywhere.
    if !text.contains("C: STARTTLS") {
        let all: Vec<u8> = client.concat();
        for cut in 0..=all.len() {
            let mut d = Daemon::from_text(text);
            d.drive();
            d.feed(&all[..cut]);
            d.feed(&all[cut..]);
            assert_eq!(d.out_str(), expected, "{name}: cut at {cut}");
            assert_eq!(d.events, whole.events, "{name}: cut at {cut}");
            assert_eq!(d.body, whole.body, "{name}: cut at {cut}");
        }
    }
    whole
}

#[test]
fn rfc5321_d1_transaction() {
    let d = check(
        "rfc5321_d1",
        include_str!("data/rfc5321_d1_transaction.txt"),
    );
    // "...etc. etc. etc." is dot-stuffed on the wire: one dot goes.
    assert_eq!(
        String::from_utf8_lossy(&d.body),
        "Blah blah blah...\r\n..etc. etc. etc.\r\n<END>"
    );
    assert_eq!(
        d.events,
        [
            "Ehlo bar.com",
            "Mail <Smith@bar.com>",
            "Rcpt <Jones@foo.com>",
            "Rcpt <Green@foo.com>",
            "Rcpt <Brown@foo.com>",
            "Data chunked=false",
            "EndOfData 37",
            "Quit"
        ]
    );
}

#[test]
fn rfc2920_pipelining() {
    let d = check("rfc2920", include_str!("data/rfc2920_pipelining.txt"));
    assert_eq!(
        String::from_utf8_lossy(&d.body),
        "Subject: pipelining\r\n\r\nbody\r\n<END>"
    );
}

#[test]
fn rfc3030_bdat() {
    let d = check("rfc3030", include_str!("data/rfc3030_bdat.txt"));
    assert_eq!(
        String::from_utf8_lossy(&d.body),
        "To: Susan@random.com\r\nFrom: Sam@random.com\r\nSubject: This is a bodyless test message\r\n<END>\
         Subject: two chunks\r\n\r\nfirst part\r\nsecond part\r\n.a line starting with a dot\r\n<END>"
    );
}

#[test]
fn rfc4954_auth() {
    let d = check("rfc4954", include_str!("data/rfc4954_auth.txt"));
    assert!(
        d.events.contains(&"Authenticated test".to_owned()),
        "{:?}",
        d.events
    );
}

#[test]
fn rfc3207_starttls() {
    check("rfc3207", include_str!("data/rfc3207_starttls.txt"));
}

#[test]
fn rfc1870_size() {
    check("rfc1870", include_str!("data/rfc1870_size.txt"));
}
