//! The byte relay: a message fetched from a real Dovecot through it equals
//! the maildir file, bytes are counted each way, half-closes end it, the
//! idle timeout ends it, and large transfers arrive intact.
#![allow(clippy::unwrap_used)] // a failure is a test failure

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use portcullis_frontend::backend::{Backend, ClientIdentity, StoreSession};
use portcullis_frontend::config::Config;
use portcullis_frontend::relay::{RelayEnd, RelayOutcome, Side, relay};
use portcullis_pop3_proto::Password;
use portcullis_test_support::dovecot::Dovecot;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A connected loopback pair: (the test's client end, the proxy's end).
async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let proxy_end = accepted.unwrap().0;
    proxy_end.set_nodelay(true).unwrap();
    (client.unwrap(), proxy_end)
}

async fn store_session(dovecot: &Dovecot, user: &str, password: &str, tls: bool) -> StoreSession {
    let settings = if tls {
        format!(
            "mmp.storehosts = \"127.0.0.1:{}\"\nmmp.backsidetls = \"starttls\"\n\
             mmp.backsidecafile = \"{}\"\n",
            dovecot.pop3_port(),
            dovecot.ca_pem_path().display()
        )
    } else {
        format!(
            "mmp.storehosts = \"127.0.0.1:{}\"\nmmp.backsidetls = \"none\"\n",
            dovecot.pop3_port()
        )
    };
    let backend = Backend::from_config(
        &Config::parse(&settings).unwrap(),
        Path::new("/nonexistent"),
    )
    .unwrap();
    let identity = ClientIdentity::new("192.0.2.80:40080".parse::<SocketAddr>().unwrap());
    backend
        .open_pop3(None, user, Some(&Password::new(password)), Some(&identity))
        .await
        .unwrap()
}

fn spawn_relay(
    mut proxy_end: TcpStream,
    mut session: StoreSession,
    idle: Duration,
) -> JoinHandle<RelayOutcome> {
    tokio::spawn(
        async move { relay(&mut proxy_end, &mut session.stream, &session.pending, idle).await },
    )
}

/// Reads one POP3 multi-line answer (status line included) and the bytes
/// it took.
async fn read_multiline<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> (Vec<String>, usize) {
    let mut lines = Vec::new();
    let mut bytes = 0;
    loop {
        let mut line = String::new();
        let n = r.read_line(&mut line).await.unwrap();
        assert!(n > 0, "closed inside a multi-line answer: {lines:?}");
        bytes += n;
        let end = line == ".\r\n";
        lines.push(line);
        if end {
            return (lines, bytes);
        }
    }
}

#[tokio::test]
async fn retr_through_the_relay_matches_the_maildir() {
    for tls in [false, true] {
        let dovecot = Dovecot::shared();
        let (client, proxy_end) = pair().await;
        let session = store_session(dovecot, "alice", "alice-pw", tls).await;
        assert_eq!(session.stream.is_tls(), tls);
        let task = spawn_relay(proxy_end, session, Duration::from_secs(300));

        let (read, mut write) = client.into_split();
        let mut read = BufReader::new(read);
        let mut sent = 0;
        let mut received = 0;
        for command in ["RETR 1\r\n", "QUIT\r\n"] {
            write.write_all(command.as_bytes()).await.unwrap();
            sent += command.len();
            if command.starts_with("RETR") {
                let (lines, n) = read_multiline(&mut read).await;
                received += n;
                assert!(lines[0].starts_with("+OK"), "{lines:?}");
                let body: String = lines[1..lines.len() - 1]
                    .iter()
                    .map(|l| l.strip_prefix('.').unwrap_or(l))
                    .collect();
                let expected = dovecot.messages("alice")[0];
                assert_eq!(body.as_bytes(), expected, "tls={tls}");
            }
        }
        // The store answers QUIT and closes; the relay passes the close on.
        let mut rest = Vec::new();
        read.read_to_end(&mut rest).await.unwrap();
        assert!(
            rest.starts_with(b"+OK"),
            "{:?}",
            String::from_utf8_lossy(&rest)
        );
        received += rest.len();

        let outcome = task.await.unwrap();
        assert!(
            matches!(outcome.end, RelayEnd::Closed(Side::Store)),
            "{outcome:?}"
        );
        assert_eq!(outcome.client_to_store, sent as u64);
        assert_eq!(outcome.store_to_client, received as u64);
    }
}

#[tokio::test]
async fn client_half_close_ends_the_relay() {
    let dovecot = Dovecot::shared();
    let (client, proxy_end) = pair().await;
    let session = store_session(dovecot, "bob", "bob-pw", false).await;
    let task = spawn_relay(proxy_end, session, Duration::from_secs(300));
    let (read, mut write) = client.into_split();
    let mut read = BufReader::new(read);
    write.write_all(b"STAT\r\n").await.unwrap();
    let mut line = String::new();
    read.read_line(&mut line).await.unwrap();
    assert!(line.starts_with("+OK "), "{line}");
    write.shutdown().await.unwrap();
    let outcome = task.await.unwrap();
    assert!(
        matches!(outcome.end, RelayEnd::Closed(Side::Client)),
        "{outcome:?}"
    );
    assert_eq!(outcome.client_to_store, 6);
    assert_eq!(outcome.store_to_client, line.len() as u64);
}

#[tokio::test]
async fn idle_timeout_ends_the_relay() {
    let dovecot = Dovecot::shared();
    let (client, proxy_end) = pair().await;
    let session = store_session(dovecot, "carol", "carol-pw", true).await;
    // A short real timeout; the test only checks that the relay ends, and
    // how.
    let task = spawn_relay(proxy_end, session, Duration::from_millis(300));
    let outcome = task.await.unwrap();
    assert!(matches!(outcome.end, RelayEnd::IdleTimeout), "{outcome:?}");
    assert_eq!(outcome.client_to_store, 0);
    assert_eq!(outcome.store_to_client, 0);
    drop(client);
}

#[tokio::test]
async fn large_transfers_both_ways_and_pending_bytes_first() {
    // Two loopback pairs stand for client and store: the relay sits between
    // the proxy ends.
    let (mut client, mut proxy_client) = pair().await;
    let (mut store, mut proxy_store) = pair().await;
    let up: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let down: Vec<u8> = (0..2_000_000u32).map(|i| (i % 241) as u8).collect();
    let pending = b"+OK leftover from the login\r\n".to_vec();
    let pending_len = pending.len();
    let task = tokio::spawn(async move {
        relay(
            &mut proxy_client,
            &mut proxy_store,
            &pending,
            Duration::from_secs(300),
        )
        .await
    });
    let (up2, down2) = (up.clone(), down.clone());
    let expected_len = pending_len + down.len();
    let client_side = tokio::spawn(async move {
        let (mut r, mut w) = client.split();
        let writer = async { w.write_all(&up2).await.unwrap() };
        let reader = async {
            let mut got = vec![0u8; expected_len];
            r.read_exact(&mut got).await.unwrap();
            // Then the store's close, passed on.
            let mut rest = Vec::new();
            r.read_to_end(&mut rest).await.unwrap();
            assert!(rest.is_empty());
            got
        };
        let ((), got) = tokio::join!(writer, reader);
        got
    });
    let store_side = tokio::spawn(async move {
        let (mut r, mut w) = store.split();
        let reader = async {
            let mut got = vec![0u8; up.len()];
            r.read_exact(&mut got).await.unwrap();
            got
        };
        let writer = async { w.write_all(&down2).await.unwrap() };
        let (got, ()) = tokio::join!(reader, writer);
        // Everything exchanged: the store closes.
        drop(store);
        got
    });
    let at_store = store_side.await.unwrap();
    let at_client = client_side.await.unwrap();
    let outcome = task.await.unwrap();
    assert!(
        matches!(outcome.end, RelayEnd::Closed(Side::Store)),
        "{outcome:?}"
    );
    let up: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(at_store, up);
    assert_eq!(
        &at_client[..pending_len],
        b"+OK leftover from the login\r\n"
    );
    assert_eq!(&at_client[pending_len..], &down[..]);
    assert_eq!(outcome.client_to_store, up.len() as u64);
    assert_eq!(outcome.store_to_client, expected_len as u64);
}
