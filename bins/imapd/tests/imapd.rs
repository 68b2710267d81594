//! imapd end to end: the binary started with a configuration written for
//! the test, the slapd test directory as the user source, the Dovecot
//! fixture as the message store; Python's imaplib, curl and openssl
//! s_client as the clients.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use portcullis_test_support::daemon::LOG_WAIT;
use portcullis_test_support::dovecot::{Dovecot, DovecotOptions};
use portcullis_test_support::free_port;
use portcullis_test_support::frontend::{
    self, Fields, FrontendDaemon, Protocol, Setup, assert_stored, run_client, store_login,
};
use portcullis_test_support::redis::Redis;
use portcullis_test_support::slapd::{DENYING_DOMAIN_LDIF, STORELESS_USER_LDIF, Slapd};

type Imapd = FrontendDaemon;

fn start(setup: Setup<'_>) -> Imapd {
    FrontendDaemon::start(
        Path::new(env!("CARGO_BIN_EXE_imapd")),
        Protocol::Imap,
        &setup,
    )
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/imap_client.py")
}

/// Runs a client scenario of `imap_client.py` from `source`.
fn client(
    imapd: &Imapd,
    scenario: &str,
    port: u16,
    user: &str,
    password: &str,
    source: &str,
) -> Fields {
    run_client(&script(), imapd, scenario, port, user, password, source)
}

/// STARTTLS, then LOGIN from `source`: the tagged result.
fn login(imapd: &Imapd, user: &str, password: &str, source: &str) -> String {
    client(imapd, "starttls-login", imapd.port, user, password, source)
        .get("login")
        .to_owned()
}

fn words(text: &str) -> Vec<String> {
    text.split([' ', '[', ']', '(', ')'])
        .map(str::to_ascii_uppercase)
        .collect()
}

/// Dovecot's login line for `user` from `rip`.
fn dovecot_login(user: &str, rip: &str) -> String {
    store_login(Dovecot::shared(), Protocol::Imap, user, rip)
}

#[test]
fn starttls_login_fetches_the_message_and_the_store_sees_the_real_client() {
    let imapd = start(Setup::default());
    let r = client(
        &imapd,
        "starttls-fetch",
        imapd.port,
        "alice",
        "alice-pw",
        "127.0.0.2",
    );
    assert!(
        r.get("greeting").starts_with("* OK"),
        "{}",
        r.get("greeting")
    );
    // No cleartext login before TLS (the default).
    let plain = words(r.get("caps_plain"));
    assert!(plain.contains(&"STARTTLS".into()), "{plain:?}");
    assert!(plain.contains(&"LOGINDISABLED".into()), "{plain:?}");
    assert!(
        r.get("plain_login").starts_with("NO [PRIVACYREQUIRED]"),
        "{}",
        r.get("plain_login")
    );
    let tls = words(r.get("caps_tls"));
    assert!(
        !tls.contains(&"LOGINDISABLED".into()) && !tls.contains(&"STARTTLS".into()),
        "{tls:?}"
    );
    assert!(tls.contains(&"AUTH=PLAIN".into()), "{tls:?}");
    // The tagged OK carries the store's post-login capabilities.
    let login = r.get("login");
    assert!(login.starts_with("OK [CAPABILITY "), "{login}");
    assert!(words(login).contains(&"IDLE".into()), "{login}");
    assert!(
        !words(login).iter().any(|w| w.starts_with("AUTH=")),
        "{login}"
    );
    // The message as the maildir holds it.
    let message = r.bytes("message");
    assert_stored("alice", &message);
    // STARTTLS after login: the session is the store's, which refuses.
    assert!(
        r.get("starttls_after_login").starts_with("BAD"),
        "{}",
        r.get("starttls_after_login")
    );
    // Dovecot believed the ID: the user, and the client's own address.
    dovecot_login("alice", "127.0.0.2");
    // One connection line, with the canonical user and the TLS version,
    // and never the password.
    let log = imapd.daemon.log().wait_for("connection closed", 1);
    let closed = log
        .lines()
        .find(|l| l.contains("connection closed") && l.contains("user=alice"))
        .unwrap_or_else(|| panic!("{log}"));
    for part in [
        "service=\"imap\"",
        "client=127.0.0.2:",
        "tls=TLSv1_3",
        "store=127.0.0.1:",
    ] {
        assert!(closed.contains(part), "{part}: {closed}");
    }
    assert!(!log.contains("alice-pw"), "{log}");
}

#[test]
fn sasl_logins_over_implicit_tls_fetch_from_the_store() {
    let imapd = start(Setup::default());
    // (scenario, user, password): PLAIN, CRAM-MD5 (SCRAM needs SCRAM
    // secrets, which the test directory does not hold: not offered; see
    // the users-file test for SCRAM-SHA-256).
    let cases = [
        ("ssl-auth-plain", "bob", "bob-pw"),
        ("ssl-cram-md5", "carol", "carol-pw"),
    ];
    for (scenario, user, password) in cases {
        let r = client(&imapd, scenario, imapd.sslport, user, password, "127.0.0.1");
        let caps = words(r.get("caps"));
        assert!(!caps.contains(&"STARTTLS".into()), "{scenario}: {caps:?}");
        assert!(
            !caps.iter().any(|c| c.starts_with("AUTH=SCRAM")),
            "{scenario}: {caps:?}"
        );
        assert!(
            r.get("login").starts_with("OK [CAPABILITY "),
            "{scenario}: {}",
            r.get("login")
        );
        let message = r.bytes("message");
        assert_stored(user, &message);
        if scenario == "ssl-auth-plain" {
            // STARTTLS on the implicit-TLS port.
            assert!(
                r.get("starttls").starts_with("BAD"),
                "{}",
                r.get("starttls")
            );
        }
    }
    // Neither AUTHENTICATE PLAIN nor CRAM-MD5 left a password to replay:
    // the store login was the master user's, acting for carol.
    let dovecot = Dovecot::shared();
    dovecot
        .wait_for_log("Master user logging in as carol", LOG_WAIT)
        .unwrap_or_else(|| panic!("no master-user login for carol:\n{}", dovecot.log()));
    let log = imapd.daemon.log().wait_for("connection closed", 2);
    for mechanism in ["mechanism=PLAIN", "mechanism=CRAM-MD5"] {
        assert!(log.contains(mechanism), "{mechanism}: {log}");
    }
}

#[test]
fn curl_and_openssl_s_client_work_through_the_proxy() {
    let imapd = start(Setup::default());
    // curl over implicit TLS fetches the first message of alice's INBOX.
    let message = imapd.curl(
        "alice:alice-pw",
        &format!("imaps://127.0.0.1:{}/INBOX;MAILINDEX=1", imapd.sslport),
    );
    assert_stored("alice", &message);
    // openssl s_client does STARTTLS itself, then our commands run.
    let out = imapd.s_client_starttls(b"a1 CAPABILITY\na2 LOGIN alice alice-pw\na3 LOGOUT\n");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("a1 OK"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let caps = text
        .lines()
        .find(|l| l.starts_with("* CAPABILITY"))
        .unwrap_or_default();
    assert!(
        !caps.contains("LOGINDISABLED") && caps.contains("AUTH=PLAIN"),
        "{caps}"
    );
    assert!(text.contains("a2 OK [CAPABILITY "), "{text}");
    assert!(text.contains("a3 OK"), "{text}");
}

#[test]
fn starttls_discards_pipelined_commands_and_is_refused_twice() {
    let imapd = start(Setup::default());
    let r = client(
        &imapd,
        "pipelined-starttls",
        imapd.port,
        "-",
        "-",
        "127.0.0.1",
    );
    assert!(
        r.get("starttls").starts_with("a OK"),
        "{}",
        r.get("starttls")
    );
    // `b CAPABILITY` came with STARTTLS in plaintext: never answered.
    let after = r.get("after_tls");
    assert!(
        after.contains("c OK") && !after.contains("b OK") && !after.contains("* CAPABILITY"),
        "{after}"
    );
    assert!(
        r.get("starttls_again").starts_with("d BAD"),
        "{}",
        r.get("starttls_again")
    );
}

#[test]
fn access_filters_refuse_at_connect_and_after_login() {
    // frank's own access list denies IMAP.
    let frank = "dn: uid=frank,ou=People,o=example.com,o=example\n\
                 objectClass: inetOrgPerson\nobjectClass: inetMailUser\nobjectClass: inetUser\n\
                 uid: frank\ncn: Frank Example\nsn: Example\nmail: frank@example.com\n\
                 mailUserStatus: active\nmailAllowedServiceAccess: -imap:ALL\n\
                 userPassword: frank-pw\n";
    Slapd::shared().add_ldif(frank).unwrap();
    let imapd = start(Setup {
        protocol: "domainnotallowed = \"imap: 127.0.0.2\"",
        ..Setup::default()
    });
    // Both ports, the implicit-TLS one included, follow service.imap.
    for greeting in imapd.greetings("127.0.0.2") {
        assert!(greeting.starts_with("* BYE"), "{greeting}");
    }
    for greeting in imapd.greetings("127.0.0.3") {
        assert!(greeting.starts_with("* OK"), "{greeting}");
    }
    let log = imapd
        .log()
        .wait_for("denied by the service access filter", 2);
    assert!(log.contains("client=127.0.0.2:"), "{log}");
    let login = login(&imapd, "frank", "frank-pw", "127.0.0.3");
    assert!(login.starts_with("NO [CONTACTADMIN]"), "{login}");
    imapd
        .daemon
        .log()
        .wait_for("account-level access filter user=frank", 1);
}

#[test]
fn a_dead_store_fails_over_and_no_live_store_is_unavailable() {
    // Nothing listens on `dead`: its connection is refused at once.
    let dead = free_port();
    let live = Dovecot::shared().imap_port();
    let both = format!("storehosts = [\"127.0.0.1:{dead}\", \"127.0.0.1:{live}\"]\n");
    let only_dead = format!("storehosts = [\"127.0.0.1:{dead}\"]\n");
    for (mmp, expected) in [
        (both.as_str(), "OK [CAPABILITY "),
        (only_dead.as_str(), "NO [UNAVAILABLE]"),
    ] {
        let imapd = start(Setup {
            mmp,
            ..Setup::default()
        });
        let r = client(
            &imapd,
            "starttls-login",
            imapd.port,
            "alice",
            "alice-pw",
            "127.0.0.1",
        );
        assert!(
            r.get("login").starts_with(expected),
            "{mmp}: {}",
            r.get("login")
        );
    }
}

#[test]
fn literals_over_the_bound_are_refused_without_reading_them() {
    let imapd = start(Setup::default());
    let r = client(&imapd, "huge-literal", imapd.sslport, "-", "-", "127.0.0.1");
    assert!(
        r.get("sync").starts_with("a NO [TOOBIG]"),
        "{}",
        r.get("sync")
    );
    assert!(
        r.get("nonsync").starts_with("b BAD [TOOBIG]"),
        "{}",
        r.get("nonsync")
    );
    let after = r.get("after");
    assert!(
        after.starts_with("* BYE") && after.ends_with("closed"),
        "{after}"
    );
}

#[test]
fn wrong_passwords_are_refused_and_the_connection_closes_after_mmp_maxauthattempts() {
    // Trusted networks skip the penalty, so the test does not wait it out.
    let imapd = start(Setup {
        mmp: "trustednetworks = \"127.0.0.0/8\"\nmaxauthattempts = 2\n",
        ..Setup::default()
    });
    let r = client(&imapd, "attempts", imapd.port, "erin", "wrong", "127.0.0.1");
    let refusals = r.all("attempt");
    assert_eq!(refusals.len(), 2, "{refusals:?}");
    assert!(
        refusals
            .iter()
            .all(|a| a.contains("[AUTHENTICATIONFAILED]")),
        "{refusals:?}"
    );
    assert_eq!(r.get("closed"), "yes");
    let log = imapd.daemon.log().wait_for("connection closed", 1);
    assert!(!log.contains("wrong\""), "{log}");
}

#[test]
fn check_accepts_a_good_configuration_and_refuses_a_broken_one_with_2() {
    let dir = tempfile::tempdir().unwrap();
    let good = frontend::configure(
        dir.path(),
        Protocol::Imap,
        free_port(),
        free_port(),
        &Setup::default(),
    )
    .unwrap();
    let check = |config: &Path| {
        Command::new(env!("CARGO_BIN_EXE_imapd"))
            .args(["--check", "--config"])
            .arg(config)
            .output()
            .unwrap()
    };
    let ok = check(&good);
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "[mmp]\nconnlimits = [\"not a limit\"]\n").unwrap();
    let bad = check(&broken);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("connlimits"),
        "{bad:?}"
    );
    let version = Command::new(env!("CARGO_BIN_EXE_imapd"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&version.stdout).starts_with("imapd "),
        "{version:?}"
    );
}

#[test]
fn readiness_is_notified_and_sigterm_ends_unauthenticated_sessions_with_bye() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    let mut imapd = start(Setup {
        notify: Some(&socket_path),
        ..Setup::default()
    });
    let mut ready = [0u8; 64];
    let n = notify.recv(&mut ready).unwrap();
    assert_eq!(&ready[..n], b"READY=1");

    let mut conn = std::net::TcpStream::connect(("127.0.0.1", imapd.port)).unwrap();
    conn.set_read_timeout(Some(LOG_WAIT)).unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("* OK"), "{line}");
    conn.write_all(b"a NOOP\r\n").unwrap();
    line.clear();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("a OK"), "{line}");
    let status = Command::new("kill")
        .args(["-TERM", &imapd.daemon.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    assert!(rest.starts_with("* BYE [UNAVAILABLE]"), "{rest:?}");
    let exit = imapd.daemon.wait().unwrap();
    assert!(exit.success(), "{exit:?}\n{}", imapd.daemon.log().text());
}

#[test]
fn cleartext_login_without_tls_is_accepted_when_configured() {
    let imapd = start(Setup {
        service: "plaintextmincipher = 0\n",
        ..Setup::default()
    });
    let r = client(
        &imapd,
        "plain-fetch",
        imapd.port,
        "alice",
        "alice-pw",
        "127.0.0.9",
    );
    let caps = words(r.get("caps_plain"));
    assert!(!caps.contains(&"LOGINDISABLED".into()), "{caps:?}");
    assert!(caps.contains(&"AUTH=PLAIN".into()), "{caps:?}");
    assert!(
        r.get("login").starts_with("OK [CAPABILITY "),
        "{}",
        r.get("login")
    );
    let message = r.bytes("message");
    assert_stored("alice", &message);
    // The store saw alice's own login from the client's address.
    let line = dovecot_login("alice", "127.0.0.9");
    assert!(line.contains("auth_user=<alice>"), "{line}");
    let log = imapd.log().wait_for("connection closed", 1);
    assert!(log.contains("client=127.0.0.9:"), "{log}");
    assert!(log.contains("tls=none"), "{log}");
}

/// Lines a child process prints, collected as they come.
struct Lines {
    child: std::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Lines {
    fn spawn(mut command: Command) -> Self {
        let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = std::sync::Arc::clone(&lines);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        Self {
            child,
            lines,
            reader: Some(reader),
        }
    }

    fn so_far(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    fn finish(mut self) -> Fields {
        let status = self.child.wait().unwrap();
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        let text = self.so_far().join("\n");
        assert!(status.success(), "{status:?}: {text}");
        Fields::parse(&text)
    }
}

fn attempts_in(lines: &[String]) -> usize {
    lines.iter().filter(|l| l.starts_with("attempt=")).count()
}

#[test]
fn bad_logins_wait_longer_each_time_while_another_client_logs_in_at_once() {
    let imapd = start(Setup {
        mmp: "authfailuredelay = 8\nauthfailuremaxdelay = 60\n",
        ..Setup::default()
    });
    let mut command = Command::new("timeout");
    command
        .args(["120", "python3"])
        .arg(script())
        .args(["wrong-logins", "127.0.0.1", &imapd.port.to_string()])
        .arg(imapd.ca())
        .args(["bob", "not-bobs", "127.0.0.2"]);
    let bad = Lines::spawn(command);
    // The second failure is counted: its reply waits twice the first's
    // delay (the log says how long; nothing here measures it).
    let log = imapd
        .log()
        .wait_for("failed login penalised client=127.0.0.2 failures=2", 1);
    assert!(
        log.contains("failed login penalised client=127.0.0.2 failures=1 delay=8s"),
        "{log}"
    );
    assert!(
        log.contains("failed login penalised client=127.0.0.2 failures=2 delay=16s"),
        "{log}"
    );
    let before = bad.so_far();
    assert_eq!(attempts_in(&before), 1, "{before:?}");
    // Meanwhile another address logs in and is done...
    let good = client(
        &imapd,
        "starttls-login",
        imapd.port,
        "alice",
        "alice-pw",
        "127.0.0.3",
    );
    assert!(
        good.get("login").starts_with("OK [CAPABILITY "),
        "{}",
        good.get("login")
    );
    // ...while the bad client still waits for its second refusal.
    let during = bad.so_far();
    assert_eq!(attempts_in(&during), 1, "{during:?}");
    let r = bad.finish();
    let refusals = r.all("attempt");
    assert_eq!(refusals.len(), 2, "{refusals:?}");
    assert!(
        refusals
            .iter()
            .all(|a| a.contains("[AUTHENTICATIONFAILED]")),
        "{refusals:?}"
    );
    let log = imapd.log().text();
    assert!(!log.contains("client=127.0.0.3 failures"), "{log}");
}

/// The value of a Redis key, read with `redis-cli`.
fn redis_get(redis: &Redis, key: &str) -> String {
    let out = Command::new("redis-cli")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &redis.port().to_string(),
            "GET",
            key,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn two_front_ends_share_the_failure_count_through_redis() {
    let redis = Redis::shared();
    let local = format!("redisurl = {:?}\n", redis.url());
    let setup = Setup {
        local: &local,
        mmp: "authfailuresecret = \"shared-penalty-key\"\n",
        ..Setup::default()
    };
    let first = start(setup);
    let second = start(setup);
    let key = "portcullis:penalty:127.0.0.6:n";
    assert_eq!(redis_get(redis, key), "");
    // The second front end has never seen 127.0.0.6 fail, yet counts its
    // first failure there as the address's second.
    for (n, daemon) in [(1, &first), (2, &second)] {
        let login = login(daemon, "bob", &format!("wrong-{n}"), "127.0.0.6");
        assert!(login.starts_with("NO [AUTHENTICATIONFAILED]"), "{login}");
        daemon.log().wait_for(
            &format!("failed login penalised client=127.0.0.6 failures={n} delay={n}s"),
            1,
        );
        assert_eq!(redis_get(redis, key), n.to_string());
    }
}

#[test]
fn per_address_and_global_connection_limits_refuse_with_bye() {
    frontend::assert_connection_limits(
        Path::new(env!("CARGO_BIN_EXE_imapd")),
        Protocol::Imap,
        "* OK",
        "* BYE [UNAVAILABLE]",
    );
}

#[test]
fn no_login_within_mmp_preauthtimeout_ends_with_bye() {
    let imapd = start(Setup {
        mmp: "preauthtimeout = 1\n",
        ..Setup::default()
    });
    let r = imapd.line("idle", imapd.port, "-", "-", "127.0.0.1");
    assert!(r.get("greeting").starts_with("* OK"), "{r:?}");
    let after = r.get("after");
    assert!(
        after.starts_with("* BYE") && after.ends_with("| closed"),
        "{after}"
    );
    imapd.log().wait_for("pre-login timeout", 1);
}

#[test]
fn an_overlong_line_is_refused_with_bad_and_the_daemon_goes_on() {
    let imapd = start(Setup::default());
    let r = imapd.line("overlong", imapd.port, "a NOOP ", "b NOOP", "127.0.0.1");
    let overlong = r.get("overlong");
    assert!(overlong.starts_with("a BAD"), "{overlong}");
    assert!(r.get("next").starts_with("b OK"), "{r:?}");
    assert!(r.get("again").starts_with("* OK"), "{r:?}");
}

#[test]
fn the_domain_entry_can_deny_the_service_after_login() {
    Slapd::shared().add_ldif(DENYING_DOMAIN_LDIF).unwrap();
    let imapd = start(Setup::default());
    let login = login(&imapd, "henry@example.net", "henry-pw", "127.0.0.12");
    assert!(login.starts_with("NO [CONTACTADMIN]"), "{login}");
    let log = imapd
        .log()
        .wait_for("account-level access filter user=henry", 1);
    // The domain's entry decided, not henry's own.
    assert!(log.contains("domain level (decisive)"), "{log}");
    // The store never heard of it.
    assert!(!Dovecot::shared().log().contains("rip=127.0.0.12,"));
}

#[test]
fn a_failed_name_lookup_at_connect_is_a_temporary_refusal() {
    frontend::assert_dns_failure_is_temporary(
        Path::new(env!("CARGO_BIN_EXE_imapd")),
        Protocol::Imap,
        "* BYE [UNAVAILABLE]",
    );
}

#[test]
fn the_users_mailhost_names_the_store_that_gets_the_session() {
    // A second Dovecot, named only by admin's mailHost (host:port).
    let other = Dovecot::start().unwrap();
    let ldif = format!(
        "dn: uid=admin,ou=People,o=example.com,o=example\nchangetype: modify\n\
         replace: mailHost\nmailHost: 127.0.0.1:{}\n",
        other.imap_port()
    );
    Slapd::shared().modify_ldif(&ldif).unwrap();
    // Both stores' CAs are trusted.
    let cas = format!("{}\n{}", Dovecot::shared().ca_pem(), other.ca_pem());
    let files = [("store-ca.pem", cas.as_str())];
    let imapd = start(Setup {
        files: &files,
        ..Setup::default()
    });
    let login = login(&imapd, "admin", "admin-pw", "127.0.0.10");
    assert!(login.starts_with("OK [CAPABILITY "), "{login}");
    let line = store_login(&other, Protocol::Imap, "admin", "127.0.0.10");
    assert!(line.contains("auth_user=<admin>"), "{line}");
    assert!(
        !Dovecot::shared().log().contains("rip=127.0.0.10,"),
        "{}",
        Dovecot::shared().log()
    );
    let log = imapd.log().wait_for("connection closed", 1);
    assert!(
        log.contains(&format!("store=127.0.0.1:{}", other.imap_port())),
        "{log}"
    );
}

#[test]
fn a_login_the_store_refuses_is_refused_with_the_stores_code() {
    // judy is in the directory, not in the store.
    Slapd::shared().add_ldif(STORELESS_USER_LDIF).unwrap();
    let imapd = start(Setup::default());
    let login = login(&imapd, "judy", "judy-pw", "127.0.0.13");
    assert!(login.starts_with("NO [AUTHENTICATIONFAILED]"), "{login}");
    let dovecot = Dovecot::shared();
    let line = dovecot
        .wait_for_log("user=<judy>", LOG_WAIT)
        .unwrap_or_else(|| panic!("Dovecot logged no judy:\n{}", dovecot.log()));
    assert!(line.contains("auth failed"), "{line}");
    imapd.log().wait_for("store login failed", 1);
}

#[test]
fn scram_sha_256_logs_in_to_the_store_as_the_master_user() {
    // The users file holds erin's password, from which SCRAM secrets are
    // derived; the mechanism list turns SCRAM-SHA-256 on.
    let files = [("users.passwd", "erin:{PLAIN}erin-pw\n")];
    let imapd = start(Setup {
        local: "userfile = \"users.passwd\"\n",
        service: "defaultdomain = \"\"\n",
        tail: "[sasl.default]\nmech_list = \"PLAIN SCRAM-SHA-256\"\n",
        files: &files,
        ..Setup::default()
    });
    let r = client(
        &imapd,
        "ssl-scram",
        imapd.sslport,
        "erin",
        "erin-pw",
        "127.0.0.1",
    );
    assert!(
        words(r.get("caps")).contains(&"AUTH=SCRAM-SHA-256".into()),
        "{r:?}"
    );
    assert!(r.get("login").starts_with("OK [CAPABILITY "), "{r:?}");
    assert_eq!(r.get("server_signature_ok"), "True", "{r:?}");
    let message = r.bytes("message");
    assert_stored("erin", &message);
    let dovecot = Dovecot::shared();
    let master = format!("auth_user=<{}>", dovecot.master_user().0);
    let line = dovecot
        .wait_for_log("user=<erin>", LOG_WAIT)
        .unwrap_or_else(|| panic!("Dovecot logged no erin:\n{}", dovecot.log()));
    assert!(line.contains(&master), "{line}");
    imapd.log().wait_for("mechanism=SCRAM-SHA-256", 1);
}

#[test]
fn the_clients_own_id_reaches_the_store_only_when_configured() {
    // A store of its own that logs the ID fields it is sent.
    let dovecot = &Dovecot::start_with(&DovecotOptions::log_client_id()).unwrap();
    let cas = format!("{}\n{}", Dovecot::shared().ca_pem(), dovecot.ca_pem());
    let files = [("store-ca.pem", cas.as_str())];
    for (forward, source) in [(false, "127.0.0.14"), (true, "127.0.0.15")] {
        let mmp = format!(
            "forwardclientid = {forward}\nstorehosts = [\"127.0.0.1:{}\"]\n",
            dovecot.imap_port()
        );
        let imapd = start(Setup {
            mmp: &mmp,
            files: &files,
            ..Setup::default()
        });
        let r = client(&imapd, "id-login", imapd.port, "bob", "bob-pw", source);
        assert!(r.get("id").starts_with("OK"), "{r:?}");
        assert!(r.get("login").starts_with("OK [CAPABILITY "), "{r:?}");
        // The client's forged x-originating-ip never wins over ours.
        let line = store_login(dovecot, Protocol::Imap, "bob", source);
        assert!(!line.contains("203.0.113.66"), "{line}");
        let id = dovecot
            .log()
            .lines()
            .filter(|l| l.contains("ID sent") && l.contains(&format!("rip={source},")))
            .map(str::to_owned)
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(
            id.contains("name=PortcullisTestClient"),
            forward,
            "{source}: {}",
            dovecot.log()
        );
        // Ours arrived, the client's forged one did not.
        assert!(id.contains(&format!("x-originating-ip={source}")), "{id}");
        assert!(!id.contains("203.0.113.66"), "{id}");
    }
}
