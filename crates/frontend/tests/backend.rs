//! Store selection and login against a real Dovecot: replay and master-user
//! logins with XCLIENT (checked in Dovecot's own log), STLS and implicit
//! TLS with verification, failover, refusals.
#![allow(clippy::unwrap_used)] // a failure is a test failure

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use portcullis_frontend::Error;
use portcullis_frontend::backend::{Backend, ClientIdentity, Protocol, StoreAddress, StoreTls};
use portcullis_frontend::config::Config;
use portcullis_pop3_proto::Password;
use portcullis_test_support::ca::TestCa;
use portcullis_test_support::dovecot::Dovecot;
use portcullis_test_support::free_port;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const LOG_WAIT: Duration = Duration::from_secs(30);

fn backend(lines: &str) -> Backend {
    let config = Config::parse(lines).unwrap();
    Backend::from_config(&config, Path::new("/nonexistent")).unwrap()
}

fn plain_pop3(dovecot: &Dovecot, extra: &str) -> Backend {
    backend(&format!(
        "mmp.storehosts = \"127.0.0.1:{}\"\nmmp.backsidetls = \"none\"\n{extra}",
        dovecot.pop3_port()
    ))
}

fn master_settings(dovecot: &Dovecot) -> String {
    let (admin, password) = dovecot.master_user();
    format!("mmp.storeadmin = \"{admin}\"\nmmp.storepassword = \"{password}\"\n")
}

fn client(addr: &str) -> ClientIdentity {
    ClientIdentity::new(addr.parse::<SocketAddr>().unwrap())
}

/// Sends a POP3 command over the logged-in session and reads one line.
async fn ask(stream: &mut portcullis_frontend::backend::StoreStream, command: &str) -> String {
    stream
        .write_all(format!("{command}\r\n").as_bytes())
        .await
        .unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).await.unwrap();
    line
}

#[tokio::test]
async fn replay_login_passes_the_client_address() {
    let dovecot = Dovecot::shared();
    let backend = plain_pop3(dovecot, "");
    let mut session = backend
        .open_pop3(
            None,
            "alice",
            Some(&Password::new("alice-pw")),
            Some(&client("192.0.2.61:40061")),
        )
        .await
        .unwrap();
    assert!(!session.stream.is_tls());
    assert!(session.stream.transport().nodelay().unwrap());
    let stat = ask(&mut session.stream, "STAT").await;
    assert!(stat.starts_with("+OK "), "{stat}");
    // Dovecot's own log: the user, and the address XCLIENT passed.
    let line = dovecot
        .wait_for_log("rip=192.0.2.61", LOG_WAIT)
        .unwrap_or_else(|| panic!("no login from 192.0.2.61 in:\n{}", dovecot.log()));
    assert!(line.contains("Login: user=<alice>"), "{line}");
    assert!(line.contains("rport=40061"), "{line}");
}

#[tokio::test]
async fn master_user_login_for_a_login_without_password() {
    let dovecot = Dovecot::shared();
    // mmp.storelogin = auto (the default): no cleartext password, so the
    // master-user form.
    let backend = plain_pop3(dovecot, &master_settings(dovecot));
    let mut session = backend
        .open_pop3(None, "bob", None, Some(&client("192.0.2.62:40062")))
        .await
        .unwrap();
    let stat = ask(&mut session.stream, "STAT").await;
    assert!(stat.starts_with("+OK "), "{stat}");
    let line = dovecot
        .wait_for_log("rip=192.0.2.62", LOG_WAIT)
        .unwrap_or_else(|| panic!("no login from 192.0.2.62 in:\n{}", dovecot.log()));
    assert!(line.contains("Login: user=<bob>"), "{line}");
    assert!(
        dovecot
            .wait_for_log("Master user logging in as bob", LOG_WAIT)
            .is_some(),
        "{}",
        dovecot.log()
    );

    // mmp.storelogin = master uses it even when a password is there.
    let backend = plain_pop3(
        dovecot,
        &format!("{}mmp.storelogin = \"master\"\n", master_settings(dovecot)),
    );
    let creds = backend
        .credentials("carol", Some(&Password::new("carol-pw")))
        .unwrap();
    assert!(format!("{creds:?}").starts_with("Master"), "{creds:?}");
    assert!(!format!("{creds:?}").contains("mmpadmin-secret"));
    backend
        .open_pop3(
            None,
            "carol",
            Some(&Password::new("carol-pw")),
            Some(&client("192.0.2.63:40063")),
        )
        .await
        .unwrap();
    let line = dovecot
        .wait_for_log("rip=192.0.2.63", LOG_WAIT)
        .unwrap_or_else(|| panic!("no login from 192.0.2.63 in:\n{}", dovecot.log()));
    assert!(line.contains("Login: user=<carol>"), "{line}");
}

#[tokio::test]
async fn stls_to_the_store_verified_against_the_test_ca() {
    let dovecot = Dovecot::shared();
    let backend = backend(&format!(
        "mmp.storehosts = \"127.0.0.1:{}\"\nmmp.backsidetls = \"starttls\"\n\
         mmp.backsidecafile = \"{}\"\n",
        dovecot.pop3_port(),
        dovecot.ca_pem_path().display()
    ));
    assert_eq!(backend.tls(), StoreTls::StartTls);
    let mut session = backend
        .open_pop3(
            None,
            "dave",
            Some(&Password::new("dave-pw")),
            Some(&client("192.0.2.64:40064")),
        )
        .await
        .unwrap();
    assert!(session.stream.is_tls());
    let stat = ask(&mut session.stream, "STAT").await;
    assert!(stat.starts_with("+OK "), "{stat}");
    let line = dovecot
        .wait_for_log("rip=192.0.2.64", LOG_WAIT)
        .unwrap_or_else(|| panic!("no login from 192.0.2.64 in:\n{}", dovecot.log()));
    assert!(line.contains("Login: user=<dave>"), "{line}");
    assert!(line.contains("TLS"), "{line}");
}

#[tokio::test]
async fn implicit_tls_to_the_store() {
    let dovecot = Dovecot::shared();
    let backend = backend(&format!(
        "mmp.storehosts = \"127.0.0.1\"\nmmp.pop.backsideport = {}\n\
         mmp.backsidetls = \"tls\"\nmmp.backsidecafile = \"{}\"\n",
        dovecot.pop3s_port(),
        dovecot.ca_pem_path().display()
    ));
    let session = backend
        .open_pop3(None, "erin", Some(&Password::new("erin-pw")), None)
        .await
        .unwrap();
    assert!(session.stream.is_tls());
    assert_eq!(session.address.port, dovecot.pop3s_port());
}

#[tokio::test]
async fn a_certificate_that_does_not_verify_is_refused() {
    let dovecot = Dovecot::shared();
    let other = TestCa::new("Some other CA").unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("other-ca.pem"), other.cert_pem()).unwrap();
    // Relative to the configuration's folder.
    let config = Config::parse(&format!(
        "mmp.storehosts = \"127.0.0.1:{}\"\nmmp.backsidetls = \"starttls\"\n\
         mmp.backsidecafile = \"other-ca.pem\"\n",
        dovecot.pop3_port()
    ))
    .unwrap();
    let backend = Backend::from_config(&config, dir.path()).unwrap();
    let err = backend
        .open_pop3(
            None,
            "alice",
            Some(&Password::new("alice-pw")),
            Some(&client("192.0.2.65:40065")),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::StoreTls { .. }), "{err}");
    assert!(err.to_string().contains("certificate"), "{err}");

    // Verification off: the same untrusted certificate is accepted.
    let backend = self::backend(&format!(
        "mmp.storehosts = \"127.0.0.1:{}\"\nmmp.backsidetls = \"starttls\"\n\
         mmp.backsideverify = 0\n",
        dovecot.pop3_port()
    ));
    let session = backend
        .open_pop3(None, "alice", Some(&Password::new("alice-pw")), None)
        .await
        .unwrap();
    assert!(session.stream.is_tls());
}

#[tokio::test]
async fn dead_store_then_the_next_and_all_dead() {
    let dovecot = Dovecot::shared();
    let dead = free_port();
    let backend = backend(&format!(
        "mmp.storehosts = \"127.0.0.1:{dead} 127.0.0.1:{}\"\nmmp.backsidetls = \"none\"\n",
        dovecot.pop3_port()
    ));
    let session = backend
        .open_pop3(None, "alice", Some(&Password::new("alice-pw")), None)
        .await
        .unwrap();
    assert_eq!(session.address.port, dovecot.pop3_port());

    let dead2 = free_port();
    let backend = self::backend(&format!(
        "mmp.storehosts = \"127.0.0.1:{dead} [::1]:{dead2}\"\nmmp.backsidetls = \"none\"\n"
    ));
    let err = backend
        .open_pop3(None, "alice", Some(&Password::new("alice-pw")), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoStore { .. }), "{err}");
    assert!(err.is_temporary());
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{dead}")),
        "{err}"
    );
    assert!(err.to_string().contains(&format!("[::1]:{dead2}")), "{err}");

    // The user's mailHost comes first, instead of mmp.storehosts.
    let candidates = backend
        .candidates(
            Protocol::Pop3,
            Some(&format!("127.0.0.1:{}", dovecot.pop3_port())),
        )
        .unwrap();
    assert_eq!(
        candidates,
        vec![StoreAddress {
            host: "127.0.0.1".into(),
            port: dovecot.pop3_port()
        }]
    );
    backend
        .open_pop3(
            Some(&format!("127.0.0.1:{}", dovecot.pop3_port())),
            "alice",
            Some(&Password::new("alice-pw")),
            None,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn store_refusals() {
    let dovecot = Dovecot::shared();
    let backend = plain_pop3(dovecot, "");
    let err = backend
        .open_pop3(None, "alice", Some(&Password::new("wrong")), None)
        .await
        .unwrap_err();
    match &err {
        Error::StoreRefused { code, .. } => assert_eq!(code.as_deref(), Some("AUTH"), "{err}"),
        other => panic!("{other}"),
    }
    assert!(!err.is_temporary());

    // No password and no store administrator: nothing to log in with.
    let err = backend
        .open_pop3(None, "alice", None, None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::StoreCredentials(_)), "{err}");
    let replay = plain_pop3(
        dovecot,
        &format!("{}mmp.storelogin = \"replay\"\n", master_settings(dovecot)),
    );
    let err = replay.credentials("alice", None).unwrap_err();
    assert!(matches!(err, Error::StoreCredentials(_)), "{err}");

    // STLS asked for, TLS settings without trust roots.
    let no_roots = self::backend(&format!(
        "mmp.storehosts = \"127.0.0.1:{}\"\n",
        dovecot.pop3_port()
    ));
    let err = no_roots
        .open_pop3(None, "alice", Some(&Password::new("alice-pw")), None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidSetting {
                name: "mmp.backsidecafile",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn bad_settings_are_refused() {
    for (text, name) in [
        ("mmp.backsidetls = \"sometimes\"\n", "mmp.backsidetls"),
        ("mmp.storelogin = \"guess\"\n", "mmp.storelogin"),
        ("mmp.storehosts = \"store:0\"\n", "mmp.storehosts"),
        ("mmp.storehosts = \"[::1\"\n", "mmp.storehosts"),
        ("mmp.storehosts = \"store:http\"\n", "mmp.storehosts"),
    ] {
        let config = Config::parse(text).unwrap();
        match Backend::from_config(&config, Path::new("/nonexistent")) {
            Err(Error::InvalidSetting { name: n, .. }) => assert_eq!(n, name, "{text}"),
            other => panic!("{text}: {other:?}"),
        }
    }
    let config = Config::parse("mmp.backsidecafile = \"missing.pem\"\n").unwrap();
    assert!(Backend::from_config(&config, Path::new("/nonexistent")).is_err());
}

#[tokio::test]
async fn imap_logins_with_id() {
    let dovecot = Dovecot::shared();
    // Replay over plaintext, the client address by ID.
    let backend = backend(&format!(
        "mmp.storehosts = \"127.0.0.1\"\nmmp.imap.backsideport = {}\nmmp.backsidetls = \"none\"\n",
        dovecot.imap_port()
    ));
    let mut session = backend
        .open_imap(
            None,
            "alice",
            Some(&Password::new("alice-pw")),
            Some(&client("192.0.2.66:40066")),
        )
        .await
        .unwrap();
    let reply = ask(&mut session.stream, "x1 NOOP").await;
    assert!(reply.starts_with("x1 OK"), "{reply}");
    let line = dovecot
        .wait_for_log("rip=192.0.2.66", LOG_WAIT)
        .unwrap_or_else(|| panic!("no login from 192.0.2.66 in:\n{}", dovecot.log()));
    assert!(
        line.contains("imap-login: Info: Login: user=<alice>"),
        "{line}"
    );
    assert!(line.contains("rport=40066"), "{line}");

    // The master-user form (AUTHENTICATE PLAIN, bob as authzid) after
    // STARTTLS, verified.
    let backend = self::backend(&format!(
        "mmp.storehosts = \"127.0.0.1:{}\"\nmmp.backsidetls = \"starttls\"\n\
         mmp.backsidecafile = \"{}\"\n{}",
        dovecot.imap_port(),
        dovecot.ca_pem_path().display(),
        master_settings(dovecot)
    ));
    let mut session = backend
        .open_imap(None, "bob", None, Some(&client("192.0.2.67:40067")))
        .await
        .unwrap();
    assert!(session.stream.is_tls());
    let reply = ask(&mut session.stream, "x1 NOOP").await;
    assert!(reply.starts_with("x1 OK"), "{reply}");
    let line = dovecot
        .wait_for_log("rip=192.0.2.67", LOG_WAIT)
        .unwrap_or_else(|| panic!("no login from 192.0.2.67 in:\n{}", dovecot.log()));
    assert!(line.contains("Login: user=<bob>"), "{line}");
    assert!(line.contains("TLS"), "{line}");

    // A wrong password: the store's code comes back.
    let replay = self::backend(&format!(
        "mmp.storehosts = \"127.0.0.1:{}\"\nmmp.backsidetls = \"none\"\n",
        dovecot.imap_port()
    ));
    let err = replay
        .open_imap(None, "carol", Some(&Password::new("wrong")), None)
        .await
        .unwrap_err();
    match &err {
        Error::StoreRefused { code, .. } => {
            assert_eq!(code.as_deref(), Some("AUTHENTICATIONFAILED"), "{err}");
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn stores_that_hang_or_hang_up() {
    let dovecot = Dovecot::shared();
    // A store that never answers the connection (TEST-NET-1: dropped or
    // unreachable, depending on the network): the next one is tried.
    let backend = backend(&format!(
        "mmp.storehosts = \"192.0.2.1:110 127.0.0.1:{}\"\nmmp.backsidetls = \"none\"\n\
         mmp.storeconnecttimeout = 1\n",
        dovecot.pop3_port()
    ));
    let session = backend
        .open_pop3(None, "alice", Some(&Password::new("alice-pw")), None)
        .await
        .unwrap();
    assert_eq!(session.address.port, dovecot.pop3_port());

    let password = Password::new("alice-pw");
    // A store that accepts and says nothing: the login timeout.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let backend = self::backend(&format!(
        "mmp.storehosts = \"127.0.0.1:{port}\"\nmmp.backsidetls = \"none\"\n\
         mmp.storelogintimeout = 1\n"
    ));
    let (result, accepted) = tokio::join!(
        backend.open_pop3(None, "alice", Some(&password), None),
        silent.accept()
    );
    let _held = accepted.unwrap();
    let err = result.unwrap_err();
    assert!(matches!(err, Error::StoreTimeout { .. }), "{err}");
    assert!(err.is_temporary());

    // A store that hangs up before its greeting.
    let (result, accepted) = tokio::join!(
        backend.open_pop3(None, "alice", Some(&password), None),
        async { drop(silent.accept().await.unwrap()) }
    );
    let () = accepted;
    let err = result.unwrap_err();
    assert!(matches!(err, Error::StoreProtocol { .. }), "{err}");
    assert!(err.is_temporary());

    // A store that greets with nonsense.
    let (result, ()) = tokio::join!(
        backend.open_pop3(None, "alice", Some(&password), None),
        async {
            let (mut s, _) = silent.accept().await.unwrap();
            s.write_all(b"* OK this is IMAP\r\n").await.unwrap();
            // Keep the connection until the proxy gives up on it.
            let mut sink = Vec::new();
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut s, &mut sink).await;
        }
    );
    let err = result.unwrap_err();
    assert!(matches!(err, Error::StoreProtocol { .. }), "{err}");
}

#[tokio::test]
async fn proxy_protocol_header_to_the_store() {
    let dovecot = Dovecot::shared();
    // POP3 over STLS behind the header: the store sees the client as the
    // peer (no XCLIENT is sent: it would not be offered to that address).
    let backend = backend(&format!(
        "mmp.storehosts = \"127.0.0.1\"\nmmp.pop.backsideport = {}\n\
         mmp.imap.backsideport = {}\nmmp.backsideproxyprotocol = 1\n\
         mmp.backsidetls = \"starttls\"\nmmp.backsidecafile = \"{}\"\n",
        dovecot.pop3_haproxy_port(),
        dovecot.imap_haproxy_port(),
        dovecot.ca_pem_path().display()
    ));
    let mut session = backend
        .open_pop3(
            None,
            "alice",
            Some(&Password::new("alice-pw")),
            Some(&client("192.0.2.71:40071")),
        )
        .await
        .unwrap();
    let stat = ask(&mut session.stream, "STAT").await;
    assert!(stat.starts_with("+OK "), "{stat}");
    let line = dovecot
        .wait_for_log("rip=192.0.2.71", LOG_WAIT)
        .unwrap_or_else(|| panic!("no login from 192.0.2.71 in:\n{}", dovecot.log()));
    assert!(
        line.contains("pop3-login: Info: Login: user=<alice>"),
        "{line}"
    );
    assert!(line.contains("rport=40071"), "{line}");

    // IMAP likewise.
    backend
        .open_imap(
            None,
            "bob",
            Some(&Password::new("bob-pw")),
            Some(&client("192.0.2.72:40072")),
        )
        .await
        .unwrap();
    let line = dovecot
        .wait_for_log("rip=192.0.2.72", LOG_WAIT)
        .unwrap_or_else(|| panic!("no login from 192.0.2.72 in:\n{}", dovecot.log()));
    assert!(
        line.contains("imap-login: Info: Login: user=<bob>"),
        "{line}"
    );
}
