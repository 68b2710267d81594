//! SMTP core: one whole 10 KB message through the server session (EHLO
//! once, then MAIL, RCPT, DATA, content, end) and the relay transaction,
//! and the DATA scanner alone, in octets per second.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use portcullis_smtp_proto::reply::{self};
use portcullis_smtp_proto::{
    BareNewline, DataScanner, Event, Framing, Limits, ServerConfig, ServerSession, Transaction,
};

fn message() -> Vec<u8> {
    let mut m = b"From: a@example.org\r\nTo: b@example.net\r\nSubject: bench\r\n\r\n".to_vec();
    while m.len() < 10 * 1024 {
        m.extend_from_slice(
            b"The quick brown fox jumps over the lazy dog. 0123456789 abcdefghij\r\n",
        );
        m.extend_from_slice(b"..a dot-stuffed line\r\n");
    }
    m.extend_from_slice(b".\r\n");
    m
}

fn scanner(c: &mut Criterion) {
    let m = message();
    let mut g = c.benchmark_group("smtp_data_scanner");
    g.throughput(Throughput::Bytes(m.len() as u64));
    g.bench_function("10k_message", |b| {
        let mut out = Vec::with_capacity(m.len());
        b.iter(|| {
            out.clear();
            let mut s = DataScanner::new(Framing::Dot, BareNewline::Reject, Limits::default());
            let n = s.scan(black_box(&m), &mut out);
            assert!(s.is_ended() && n == m.len());
        });
    });
    g.finish();
}

fn session(c: &mut Criterion) {
    let m = message();
    let ok = reply::standard(reply::OK);
    let mut g = c.benchmark_group("smtp_session");
    g.throughput(Throughput::Elements(1));
    g.bench_function("10k_message_relayed", |b| {
        let mut s = ServerSession::new(ServerConfig::default()).unwrap();
        s.feed(b"EHLO client.example\r\n");
        assert!(matches!(s.poll(), Event::Greeted { .. }));
        let mut relay = Transaction::with_options(true, false);
        b.iter(|| {
            s.feed(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n");
            s.feed(&m);
            loop {
                match s.poll() {
                    Event::Mail(f) => {
                        relay.mail(&f).unwrap();
                        s.answer(&ok).unwrap();
                    }
                    Event::Rcpt(r) => {
                        relay.rcpt(&r).unwrap();
                        s.answer(&ok).unwrap();
                    }
                    Event::Data { .. } => {
                        relay.data().unwrap();
                        relay.feed(b"250 ok\r\n250 ok\r\n354 go\r\n");
                        while relay.poll().unwrap().is_some() {}
                        s.data_ok().unwrap();
                    }
                    Event::Body(c) => relay.body(&c).unwrap(),
                    Event::EndOfData { .. } => {
                        relay.end().unwrap();
                        relay.feed(b"250 queued\r\n");
                        while relay.poll().unwrap().is_some() {}
                        s.answer(&ok).unwrap();
                    }
                    Event::NeedMoreInput => break,
                    other => panic!("{other:?}"),
                }
            }
            black_box(relay.take_output());
            black_box(s.take_output());
        });
    });
    g.finish();
}

criterion_group!(benches, scanner, session);
criterion_main!(benches);
