//! End to end against a real Postfix (the test-support fixture, relaying
//! to its smtp-sink): real clients (Python's smtplib, and a raw socket
//! client for what smtplib will not send) talk to a minimal blocking front
//! end built from this crate's `ServerSession` and `Transaction`, which
//! relays to Postfix. What counts is what Postfix logged and delivered.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command as Process;
use std::thread::JoinHandle;
use std::time::Duration;

use portcullis_popbeforesmtp::relay::ehlo;
use portcullis_smtp_proto::client::Abort;
use portcullis_smtp_proto::{
    BareNewline, Event, Reply, ReplyParser, Sent, ServerConfig, ServerSession, Transaction,
};
use portcullis_test_support::postfix::Postfix;

const WAIT: Duration = Duration::from_secs(30);

struct Relay {
    stream: TcpStream,
    txn: Transaction,
}

fn read_some(s: &mut TcpStream) -> Vec<u8> {
    let mut buf = vec![0; 16 * 1024];
    let n = s
        .read(&mut buf)
        .expect("read (bounded by the socket timeout)");
    buf.truncate(n);
    buf
}

fn connect_relay(port: u16, force_data: bool) -> Relay {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to Postfix");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut p = ReplyParser::new();
    let next = |stream: &mut TcpStream, p: &mut ReplyParser| loop {
        if let Some(r) = p.next_reply().expect("reply") {
            return r;
        }
        let b = read_some(stream);
        assert!(!b.is_empty(), "Postfix closed");
        p.feed(&b);
    };
    assert_eq!(next(&mut stream, &mut p).code(), 220);
    stream.write_all(b"EHLO proxy.portcullis.test\r\n").unwrap();
    let e = next(&mut stream, &mut p);
    assert_eq!(e.code(), 250);
    let txn = if force_data {
        Transaction::with_options(ehlo::offers(&e, "PIPELINING"), false)
    } else {
        Transaction::new(&e)
    };
    Relay { stream, txn }
}

impl Relay {
    fn flush(&mut self) {
        let out = self.txn.take_output();
        if !out.is_empty() {
            self.stream.write_all(&out).unwrap();
        }
    }

    /// Reads until the reply to `target`; replies to chunks and RSET on
    /// the way are consumed.
    fn wait(&mut self, target: Sent) -> Reply {
        loop {
            while let Some(ev) = self.txn.poll().expect("relay reply") {
                self.flush();
                if ev.sent == target {
                    return ev.reply;
                }
            }
            self.flush();
            let b = read_some(&mut self.stream);
            assert!(!b.is_empty(), "Postfix closed");
            self.txn.feed(&b);
        }
    }
}

/// Serves `connections` clients one after the other; returns the events
/// seen (Body left out).
fn front_end(
    relay_port: u16,
    config: ServerConfig,
    force_data: bool,
    connections: usize,
) -> (u16, JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let mut log = Vec::new();
        for _ in 0..connections {
            let (mut client, _) = listener.accept().unwrap();
            client.set_read_timeout(Some(WAIT)).unwrap();
            serve(
                &mut client,
                relay_port,
                config.clone(),
                force_data,
                &mut log,
            );
        }
        log
    });
    (port, handle)
}

fn serve(
    client: &mut TcpStream,
    relay_port: u16,
    config: ServerConfig,
    force_data: bool,
    log: &mut Vec<String>,
) {
    let mut relay = connect_relay(relay_port, force_data);
    let mut s = ServerSession::new(config).unwrap();
    client.write_all(&s.take_output()).unwrap();
    loop {
        let e = s.poll();
        match &e {
            Event::Body(_) | Event::NeedMoreInput => {}
            other => log.push(format!("{other:?}")),
        }
        match e {
            Event::NeedMoreInput => {
                client.write_all(&s.take_output()).unwrap();
                let b = read_some(client);
                if b.is_empty() {
                    return;
                }
                s.feed(&b);
            }
            Event::Quit | Event::Close => {
                client.write_all(&s.take_output()).unwrap();
                return;
            }
            Event::Mail(m) => {
                relay.txn.mail(&m).unwrap();
                relay.flush();
                let r = relay.wait(Sent::Mail);
                s.answer(&r).unwrap();
            }
            Event::Rcpt(r) => {
                relay.txn.rcpt(&r).unwrap();
                relay.flush();
                let r = relay.wait(Sent::Rcpt);
                s.answer(&r).unwrap();
            }
            Event::Data { .. } => {
                relay.txn.data().unwrap();
                if relay.txn.chunking() {
                    s.data_ok().unwrap();
                } else {
                    relay.flush();
                    let r = relay.wait(Sent::Data);
                    if r.code() == 354 {
                        s.data_ok().unwrap();
                    } else {
                        s.answer(&r).unwrap();
                    }
                }
            }
            Event::Body(c) => {
                relay.txn.body(&c).unwrap();
                relay.flush();
            }
            Event::BodyAborted(_) => match relay.txn.abort() {
                Abort::Rset => {
                    relay.flush();
                    relay.wait(Sent::Rset);
                }
                _ => {
                    // DATA content is on its way: only closing drops it.
                    relay = connect_relay(relay_port, force_data);
                }
            },
            Event::EndOfData { .. } => {
                relay.txn.end().unwrap();
                relay.flush();
                let r = relay.wait(Sent::EndOfData);
                s.answer(&r).unwrap();
            }
            Event::Reset => match relay.txn.rset() {
                Abort::Rset => {
                    relay.flush();
                    relay.wait(Sent::Rset);
                }
                _ => relay = connect_relay(relay_port, force_data),
            },
            Event::Waiting => panic!("answer due"),
            _ => {}
        }
    }
}

fn python(script: &str, args: &[&str]) -> String {
    let out = Process::new("timeout")
        .args(["60", "python3", "-c", script])
        .args(args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "client failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const SMTPLIB: &str = r#"
import smtplib, sys
port, mark = int(sys.argv[1]), sys.argv[2]
s = smtplib.SMTP("127.0.0.1", port, timeout=30)
s.ehlo("client.example")
msg = ("Subject: " + mark + "\r\n\r\n.leading dot " + mark + "\r\nbody\r\n").encode()
s.sendmail("alice@client.example", ["carol-" + mark + "@elsewhere.example"], msg)
print("sent")
s.quit()
"#;

/// Sends one message with `seq` inside (a smuggling attempt), then a
/// normal one as a sync point; prints the final reply to each.
const RAW: &str = r#"
import socket, sys
port, seq, n, bdat = int(sys.argv[1]), bytes.fromhex(sys.argv[2]), sys.argv[3], sys.argv[4] == "bdat"
s = socket.create_connection(("127.0.0.1", port), timeout=30)
f = s.makefile("rb")
def reply():
    out = b""
    while True:
        l = f.readline()
        if not l:
            raise SystemExit("closed: " + repr(out))
        out += l
        if l[3:4] == b" ":
            return out.decode().strip()
def cmd(c):
    s.sendall(c)
    return reply()
reply()
cmd(b"EHLO client.example\r\n")
def envelope(rcpt):
    assert cmd(b"MAIL FROM:<alice@client.example>\r\n").startswith("250")
    assert cmd(("RCPT TO:<" + rcpt + "@elsewhere.example>\r\n").encode()).startswith("250")
evil = (b"MAIL FROM:<evil@client.example>\r\nRCPT TO:<victim-" + n.encode()
        + b"@elsewhere.example>\r\nDATA\r\nSubject: evil\r\n\r\nevil\r\n")
envelope("bob-" + n)
if bdat:
    body = b"Subject: smuggle-" + n.encode() + b"\r\n\r\nA" + seq + evil
    print("smuggled:", cmd(b"BDAT " + str(len(body)).encode() + b" LAST\r\n" + body))
else:
    assert cmd(b"DATA\r\n").startswith("354")
    print("smuggled:", cmd(b"Subject: smuggle-" + n.encode() + b"\r\n\r\nA" + seq + evil + b"\r\n.\r\n"))
envelope("sync-" + n)
assert cmd(b"DATA\r\n").startswith("354")
print("sync:", cmd(b"Subject: sync\r\n\r\nsync\r\n.\r\n"))
cmd(b"QUIT\r\n")
"#;

const SEQUENCES: [&str; 5] = ["\n.\n", "\n.\r\n", "\r.\r", "\r\n.\n", "\r\n.\r\r\n"];

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn postfix() -> Postfix {
    Postfix::start().unwrap_or_else(|e| panic!("Postfix fixture: {e}"))
}

#[test]
fn smtplib_message_arrives_through_bdat_and_through_data() {
    let pf = postfix();
    for (force_data, mark) in [(false, "bdat-path-51c"), (true, "data-path-9e0")] {
        let (port, h) = front_end(pf.smtp_port(), ServerConfig::default(), force_data, 1);
        assert!(python(SMTPLIB, &[&port.to_string(), mark]).contains("sent"));
        let events = h.join().unwrap();
        assert!(
            events.iter().any(|e| e.starts_with("EndOfData")),
            "{events:?}"
        );
        assert!(
            pf.wait_for_log(
                &[
                    &format!("to=<carol-{mark}@elsewhere.example>"),
                    "status=sent"
                ],
                WAIT
            )
            .is_some(),
            "{}",
            pf.maillog()
        );
        let dump = pf.sink_dump();
        assert!(dump.contains(&format!(".leading dot {mark}")), "{dump}");
        assert!(
            !dump.contains(&format!("..leading dot {mark}")),
            "dot-stuffing undone once"
        );
    }
}

#[test]
fn smuggling_never_makes_postfix_see_a_second_message() {
    let pf = postfix();
    let mut n = 0;
    for policy in [BareNewline::Reject, BareNewline::Normalize] {
        for (force_data, bdat_client) in [(false, false), (true, false), (false, true)] {
            for seq in SEQUENCES {
                n += 1;
                let mut config = ServerConfig::default();
                config.bare_newline = policy;
                let (port, h) = front_end(pf.smtp_port(), config, force_data, 1);
                let id = format!("{n}");
                let out = python(
                    RAW,
                    &[
                        &port.to_string(),
                        &hex(seq),
                        &id,
                        if bdat_client { "bdat" } else { "data" },
                    ],
                );
                h.join().unwrap();
                let smuggled = out.lines().find(|l| l.starts_with("smuggled:")).unwrap();
                match policy {
                    BareNewline::Reject => {
                        assert!(smuggled.contains("550 5.5.2"), "{seq:?}: {out}");
                    }
                    _ => assert!(smuggled.contains(" 250"), "{seq:?}: {out}"),
                }
                assert!(out.contains("sync: 250"), "{seq:?}: {out}");
                // The sync message arrived, so everything before it has
                // been processed: no envelope for the smuggled recipient.
                assert!(
                    pf.wait_for_log(
                        &[&format!("to=<sync-{id}@elsewhere.example>"), "status=sent"],
                        WAIT
                    )
                    .is_some(),
                    "{}",
                    pf.maillog()
                );
                let log = pf.maillog();
                assert!(
                    !log.contains(&format!("victim-{id}@")),
                    "{policy:?} {seq:?} data={force_data} bdat={bdat_client}: Postfix saw a second message\n{log}"
                );
                if policy == BareNewline::Reject {
                    assert!(
                        !log.contains(&format!("to=<bob-{id}@")),
                        "refused message delivered"
                    );
                }
            }
        }
    }
}

#[test]
fn control_postfix_alone_is_smuggled_so_the_check_can_fail() {
    // Straight to Postfix (3.7 accepts bare LF unless told otherwise), at
    // least one sequence gives it a second message: the assertion above
    // would see it.
    let pf = postfix();
    let mut smuggled = Vec::new();
    for (i, seq) in SEQUENCES.iter().enumerate() {
        let id = format!("direct{i}");
        let out = python(RAW, &[&pf.smtp_port().to_string(), &hex(seq), &id, "data"]);
        assert!(out.contains("sync: 250"), "{out}");
        assert!(
            pf.wait_for_log(
                &[&format!("to=<sync-{id}@elsewhere.example>"), "status=sent"],
                WAIT
            )
            .is_some()
        );
        if pf.maillog().contains(&format!("victim-{id}@")) {
            smuggled.push(*seq);
        }
    }
    assert!(!smuggled.is_empty(), "{}", pf.maillog());
}

#[test]
fn swaks_pipelined_message_arrives() {
    let pf = postfix();
    let mark = "swaks-pipe-3b7";
    let (port, h) = front_end(pf.smtp_port(), ServerConfig::default(), false, 1);
    let out = Process::new("timeout")
        .args(["60", "swaks", "--server"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["--pipeline", "--from", "alice@client.example", "--to"])
        .arg(format!("dave-{mark}@elsewhere.example"))
        .args([
            "--header",
            &format!("Subject: {mark}"),
            "--body",
            "pipelined body",
        ])
        .output()
        .expect("swaks");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    h.join().unwrap();
    assert!(
        pf.wait_for_log(
            &[
                &format!("to=<dave-{mark}@elsewhere.example>"),
                "status=sent"
            ],
            WAIT
        )
        .is_some(),
        "{}",
        pf.maillog()
    );
    assert!(pf.wait_for_delivery(mark, WAIT));
}
