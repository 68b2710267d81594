//! The transaction toward the relay, against scripted relay replies:
//! what is released when, DATA vs BDAT, aborting, bad replies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use portcullis_smtp_proto::client::{Abort, queue_id};
use portcullis_smtp_proto::{Command, Error, Reply, ReplyParser, Sent, Transaction};

fn mail(line: &str) -> portcullis_smtp_proto::MailFrom {
    match Command::parse(line.as_bytes()) {
        Ok(Command::Mail(m)) => m,
        other => panic!("{other:?}"),
    }
}

fn rcpt(line: &str) -> portcullis_smtp_proto::RcptTo {
    match Command::parse(line.as_bytes()) {
        Ok(Command::Rcpt(r)) => r,
        other => panic!("{other:?}"),
    }
}

fn ehlo(wire: &[u8]) -> Reply {
    let mut p = ReplyParser::new();
    p.feed(wire);
    p.next_reply().unwrap().unwrap()
}

fn replies(t: &mut Transaction, wire: &[u8]) -> Vec<(Sent, u16)> {
    t.feed(wire);
    let mut v = Vec::new();
    while let Some(e) = t.poll().unwrap() {
        v.push((e.sent, e.reply.code()));
    }
    v
}

#[test]
fn pipelined_envelope_then_dot_stuffed_body() {
    let relay = ehlo(b"250-relay.example\r\n250-PIPELINING\r\n250 SIZE 1000\r\n");
    let mut t = Transaction::new(&relay);
    assert!(!t.chunking());
    t.mail(&mail("MAIL FROM:<a@example.org> BODY=8BITMIME"))
        .unwrap();
    t.rcpt(&rcpt("RCPT TO:<b@example.org>")).unwrap();
    t.rcpt(&rcpt("RCPT TO:<c@example.org>")).unwrap();
    t.data().unwrap();
    assert!(t.body(b"early").is_err(), "no content before the 354");
    // One write: the whole envelope and DATA.
    assert_eq!(
        t.take_output(),
        b"MAIL FROM:<a@example.org> BODY=8BITMIME\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n"
    );
    assert_eq!(
        replies(&mut t, b"250 ok\r\n250 ok\r\n550 no\r\n354 go\r\n"),
        [
            (Sent::Mail, 250),
            (Sent::Rcpt, 250),
            (Sent::Rcpt, 550),
            (Sent::Data, 354)
        ]
    );
    t.body(b".hidden\r\nline\r\n.").unwrap();
    t.end().unwrap();
    assert_eq!(t.take_output(), b"..hidden\r\nline\r\n..\r\n.\r\n");
    let r = {
        t.feed(b"250 2.0.0 Ok: queued as 4ZkQ1x0Y3Tz8\r\n");
        t.poll().unwrap().unwrap()
    };
    assert_eq!(r.sent, Sent::EndOfData);
    assert_eq!(queue_id(&r.reply).as_deref(), Some("4ZkQ1x0Y3Tz8"));
    assert_eq!(t.replies_due(), 0);
}

#[test]
fn without_pipelining_one_command_at_a_time() {
    let mut t = Transaction::with_options(false, false);
    t.mail(&mail("MAIL FROM:<a@example.org>")).unwrap();
    t.rcpt(&rcpt("RCPT TO:<b@example.org>")).unwrap();
    t.data().unwrap();
    assert_eq!(t.take_output(), b"MAIL FROM:<a@example.org>\r\n");
    assert_eq!(replies(&mut t, b"250 ok\r\n"), [(Sent::Mail, 250)]);
    assert_eq!(t.take_output(), b"RCPT TO:<b@example.org>\r\n");
    assert_eq!(replies(&mut t, b"250 ok\r\n"), [(Sent::Rcpt, 250)]);
    assert_eq!(t.take_output(), b"DATA\r\n");
    assert_eq!(
        replies(&mut t, b"554 no valid recipients\r\n"),
        [(Sent::Data, 554)]
    );
    assert!(t.body(b"x\r\n").is_err(), "refused DATA takes no content");
    assert_eq!(t.abort(), Abort::Rset);
}

#[test]
fn bdat_when_the_relay_offers_chunking_and_abort_is_a_rset() {
    let relay = ehlo(b"250-relay.example\r\n250-PIPELINING\r\n250 CHUNKING\r\n");
    let mut t = Transaction::new(&relay);
    assert!(t.chunking());
    t.mail(&mail("MAIL FROM:<a@example.org>")).unwrap();
    t.rcpt(&rcpt("RCPT TO:<b@example.org>")).unwrap();
    t.data().unwrap();
    t.body(b"Subject: x\r\n").unwrap();
    t.body(b".not stuffed\r\n").unwrap();
    assert_eq!(
        t.take_output(),
        b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nBDAT 12\r\nSubject: x\r\nBDAT 14\r\n.not stuffed\r\n"
    );
    // A violation at the client: RSET drops the chunks at the relay.
    assert_eq!(t.abort(), Abort::Rset);
    assert_eq!(t.take_output(), b"RSET\r\n");
    assert_eq!(
        replies(&mut t, b"250 a\r\n250 b\r\n250 c\r\n250 d\r\n250 e\r\n"),
        [
            (Sent::Mail, 250),
            (Sent::Rcpt, 250),
            (Sent::Chunk, 250),
            (Sent::Chunk, 250),
            (Sent::Rset, 250)
        ]
    );
    // The next transaction ends with BDAT 0 LAST.
    t.mail(&mail("MAIL FROM:<a@example.org>")).unwrap();
    t.rcpt(&rcpt("RCPT TO:<b@example.org>")).unwrap();
    t.data().unwrap();
    t.body(b"hi\r\n").unwrap();
    t.end().unwrap();
    assert!(
        t.take_output()
            .ends_with(b"BDAT 4\r\nhi\r\nBDAT 0 LAST\r\n")
    );
}

#[test]
fn abort_after_data_means_close() {
    let mut t = Transaction::with_options(true, false);
    t.mail(&mail("MAIL FROM:<a@example.org>")).unwrap();
    t.rcpt(&rcpt("RCPT TO:<b@example.org>")).unwrap();
    t.data().unwrap();
    // Even before the 354: whatever follows DATA may be read as content.
    assert_eq!(t.abort(), Abort::Close);
    // A client RSET (or MAIL) between BDAT chunks turned into relay DATA
    // content is never written as content.
    let mut t = Transaction::with_options(true, false);
    t.mail(&mail("MAIL FROM:<a@example.org>")).unwrap();
    t.rcpt(&rcpt("RCPT TO:<b@example.org>")).unwrap();
    t.data().unwrap();
    replies(&mut t, b"250 a\r\n250 b\r\n354 go\r\n");
    t.body(b"chunk one\r\n").unwrap();
    assert!(t.mail(&mail("MAIL FROM:<a@example.org>")).is_err());
    assert!(t.rcpt(&rcpt("RCPT TO:<b@example.org>")).is_err());
    assert_eq!(t.rset(), Abort::Close);
    assert!(
        t.take_output().ends_with(b"chunk one\r\n"),
        "no RSET in the content"
    );
}

#[test]
fn bad_and_unexpected_replies() {
    let mut t = Transaction::with_options(true, false);
    t.feed(b"250 surprise\r\n");
    assert_eq!(t.poll(), Err(Error::UnexpectedReply));
    let mut t = Transaction::with_options(true, false);
    t.mail(&mail("MAIL FROM:<a@example.org>")).unwrap();
    t.feed(b"25O broken\r\n");
    assert!(matches!(t.poll(), Err(Error::Reply(_))));
    assert!(t.end().is_err());
    assert_eq!(
        queue_id(&Reply::new(250, vec!["2.0.0 Ok".into()]).unwrap()),
        None
    );
}
