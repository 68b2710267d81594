//! The Dovecot fixture: it greets, logs users and the master user in,
//! believes loopback proxies about the client address, serves the maildir
//! messages, and its log shows all of it.
#![allow(clippy::unwrap_used)] // a failure is a test failure

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use portcullis_test_support::dovecot::{Dovecot, DovecotOptions, MESSAGES_PER_USER};
use portcullis_test_support::pid_alive;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

const LOG_WAIT: Duration = Duration::from_secs(30);

/// A line-oriented client over any stream.
struct Client<S: Read + Write> {
    reader: BufReader<S>,
}

impl<S: Read + Write> Client<S> {
    fn new(stream: S) -> Self {
        Self {
            reader: BufReader::new(stream),
        }
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        line
    }

    fn send(&mut self, text: &str) {
        let s = self.reader.get_mut();
        s.write_all(text.as_bytes()).unwrap();
        s.write_all(b"\r\n").unwrap();
        s.flush().unwrap();
    }

    /// Sends a command and reads one reply line.
    fn ask(&mut self, text: &str) -> String {
        self.send(text);
        self.line()
    }

    /// Reads lines up to and including the one starting with `prefix`.
    fn until(&mut self, prefix: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let l = self.line();
            assert!(!l.is_empty(), "connection closed; got {lines:?}");
            let done = l.starts_with(prefix);
            lines.push(l);
            if done {
                return lines;
            }
        }
    }
}

fn connect(port: u16) -> Client<TcpStream> {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    Client::new(s)
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn imap_login_is_logged() {
    let dovecot = Dovecot::start().unwrap();
    let mut c = connect(dovecot.imap_port());
    let greeting = c.line();
    assert!(greeting.starts_with("* OK [CAPABILITY "), "{greeting}");
    assert!(greeting.contains("STARTTLS"), "{greeting}");
    let reply = c.ask("a1 LOGIN alice alice-pw");
    assert!(reply.starts_with("a1 OK"), "{reply}");
    let select = c.ask("a2 SELECT INBOX");
    let mut lines = vec![select];
    lines.extend(c.until("a2 "));
    assert!(
        lines
            .iter()
            .any(|l| l == &format!("* {MESSAGES_PER_USER} EXISTS\r\n")),
        "{lines:?}"
    );
    c.ask("a3 LOGOUT");

    let line = dovecot
        .wait_for_log("imap-login: Info: Login: user=<alice>", LOG_WAIT)
        .unwrap_or_else(|| panic!("no login line in:\n{}", dovecot.log()));
    assert!(line.contains("rip=127.0.0.1"), "{line}");

    let bad = {
        let mut c = connect(dovecot.imap_port());
        c.line();
        c.ask("b1 LOGIN alice wrong")
    };
    assert!(bad.starts_with("b1 NO [AUTHENTICATIONFAILED]"), "{bad}");

    let pid = dovecot.pid();
    drop(dovecot);
    assert!(!pid_alive(pid), "dovecot {pid} still runs after drop");
}

#[test]
fn master_user_and_trusted_client_address() {
    let dovecot = Dovecot::shared();
    let (master, master_pw) = dovecot.master_user();

    // POP3: XCLIENT (offered to loopback in the greeting), then the master
    // user with SASL PLAIN, alice as authorization identity.
    let mut c = connect(dovecot.pop3_port());
    let greeting = c.line();
    assert!(greeting.starts_with("+OK [XCLIENT]"), "{greeting}");
    let reply = c.ask("XCLIENT ADDR=192.0.2.41 PORT=40041");
    assert!(reply.starts_with("+OK"), "{reply}");
    let plain = base64(format!("bob\0{master}\0{master_pw}").as_bytes());
    let reply = c.ask(&format!("AUTH PLAIN {plain}"));
    assert!(reply.starts_with("+OK"), "{reply}");
    let stat = c.ask("STAT");
    assert!(
        stat.starts_with(&format!("+OK {MESSAGES_PER_USER} ")),
        "{stat}"
    );
    let retr = c.ask("RETR 1");
    assert!(retr.starts_with("+OK"), "{retr}");
    let body = c.until(".\r\n");
    let expected = String::from_utf8(dovecot.messages("bob")[0].to_vec()).unwrap();
    // POP3 dot-stuffs lines that start with a dot.
    let unstuffed: String = body[..body.len() - 1]
        .iter()
        .map(|l| l.strip_prefix('.').unwrap_or(l))
        .collect();
    assert_eq!(unstuffed, expected);
    c.ask("QUIT");
    let line = dovecot
        .wait_for_log("rip=192.0.2.41", LOG_WAIT)
        .unwrap_or_else(|| panic!("no XCLIENT address in:\n{}", dovecot.log()));
    assert!(line.contains("Login: user=<bob>"), "{line}");
    assert!(line.contains("rport=40041"), "{line}");

    // IMAP: the separator form, and ID x-originating-ip.
    let mut c = connect(dovecot.imap_port());
    c.line();
    let id = c.ask(r#"i1 ID ("x-originating-ip" "192.0.2.42" "x-originating-port" "40042")"#);
    let mut lines = vec![id];
    if !lines[0].starts_with("i1 ") {
        lines.extend(c.until("i1 "));
    }
    assert!(lines.last().unwrap().starts_with("i1 OK"), "{lines:?}");
    let sep = dovecot.master_separator();
    let reply = c.ask(&format!("i2 LOGIN carol{sep}{master} {master_pw}"));
    assert!(reply.starts_with("i2 OK"), "{reply}");
    c.ask("i3 LOGOUT");
    let line = dovecot
        .wait_for_log("rip=192.0.2.42", LOG_WAIT)
        .unwrap_or_else(|| panic!("no ID address in:\n{}", dovecot.log()));
    assert!(line.contains("Login: user=<carol>"), "{line}");
}

#[test]
fn added_message_and_implicit_tls() {
    let dovecot = Dovecot::start_with(&DovecotOptions::high_performance()).unwrap();
    let message = b"From: x@example.net\r\nSubject: added\r\n\r\nadded body\r\n";
    let path = dovecot.add_message("erin", message).unwrap();
    assert!(path.starts_with(dovecot.maildir("erin")));

    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(dovecot.ca_pem().as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let conn =
        rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("127.0.0.1").unwrap())
            .unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", dovecot.pop3s_port())).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut c = Client::new(rustls::StreamOwned::new(conn, tcp));
    let greeting = c.line();
    assert!(greeting.starts_with("+OK"), "{greeting}");
    assert!(c.ask("USER erin").starts_with("+OK"));
    assert!(c.ask("PASS erin-pw").starts_with("+OK"));
    let stat = c.ask("STAT");
    assert!(
        stat.starts_with(&format!("+OK {} ", MESSAGES_PER_USER + 1)),
        "{stat}"
    );
    let retr = c.ask(&format!("RETR {}", MESSAGES_PER_USER + 1));
    assert!(retr.starts_with("+OK"), "{retr}");
    let body: String = c.until(".\r\n").concat();
    assert_eq!(body, format!("{}.\r\n", String::from_utf8_lossy(message)));
    c.ask("QUIT");
    let line = dovecot
        .wait_for_log("pop3-login: Info: Login: user=<erin>", LOG_WAIT)
        .unwrap_or_else(|| panic!("no login line in:\n{}", dovecot.log()));
    assert!(line.contains("TLS"), "{line}");
}

#[test]
fn mail_host_for_the_directory_users() {
    let dovecot = Dovecot::shared();
    let slapd = portcullis_test_support::slapd::Slapd::start().unwrap();
    slapd.modify_ldif(&dovecot.mail_host_ldif()).unwrap();
    let out = std::process::Command::new("ldapsearch")
        .args(["-x", "-LLL", "-H", &slapd.ldap_url(), "-b", slapd.base_dn()])
        .args(["(mailHost=127.0.0.1)", "uid"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for (user, _) in dovecot.users() {
        assert!(text.contains(&format!("uid: {user}\n")), "{user} in {text}");
    }
}
