//! Fuzz the relay transaction with arbitrary relay bytes: never a panic,
//! and nothing the relay sends makes it write a command it was not given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_smtp_proto::{Command, Transaction};

fuzz_target!(|input: (bool, bool, Vec<Vec<u8>>)| {
    let (pipelining, chunking, pieces) = input;
    let mut t = Transaction::with_options(pipelining, chunking);
    let Ok(Command::Mail(m)) = Command::parse(b"MAIL FROM:<a@example.org>") else {
        return;
    };
    let Ok(Command::Rcpt(r)) = Command::parse(b"RCPT TO:<b@example.org>") else {
        return;
    };
    let _ = t.mail(&m);
    let _ = t.rcpt(&r);
    let _ = t.data();
    let mut written = t.take_output();
    for p in pieces {
        t.feed(&p);
        while let Ok(Some(_)) = t.poll() {}
        let _ = t.body(b"x\r\n");
        written.extend_from_slice(&t.take_output());
    }
    let allowed: &[&[u8]] = &[
        b"MAIL FROM:<a@example.org>\r\n",
        b"RCPT TO:<b@example.org>\r\n",
        b"DATA\r\n",
        b"x\r\n",
        b"BDAT 3\r\nx\r\n",
    ];
    let mut rest = written.as_slice();
    while !rest.is_empty() {
        let n = allowed
            .iter()
            .find(|a| rest.starts_with(a))
            .map(|a| a.len())
            .expect("unexpected bytes written to the relay");
        rest = &rest[n..];
    }
});
