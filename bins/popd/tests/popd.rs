//! popd end to end: the binary started with a configuration written for
//! the test, the slapd test directory as the user source, the Dovecot
//! fixture as the message store, Python's poplib as the client.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Command;

use portcullis_popbeforesmtp::{AuthCache, CacheSettings, Lookup, RedisStore, Timestamp};
use portcullis_test_support::daemon::LOG_WAIT;
use portcullis_test_support::dovecot::Dovecot;
use portcullis_test_support::free_port;
use portcullis_test_support::frontend::{
    self, Fields, FrontendDaemon, Protocol, Setup, assert_stored, run_client, store_login, unhex,
};
use portcullis_test_support::redis::Redis;
use portcullis_test_support::slapd::{DENYING_DOMAIN_LDIF, STORELESS_USER_LDIF, Slapd};

type Popd = FrontendDaemon;

/// Used only when a test sets `userfile`: bob with a password of its own,
/// which the directory does not know.
const USERS_FILE: (&str, &str) = (
    "users.passwd",
    "# users file (Dovecot passwd-file format)\n\
     bob:{PLAIN}bob-file-pw::::::allowedserviceaccess=+pop:ALL\n",
);

/// popd as `setup` says, always with the test CA trusted for client
/// certificates (EXTERNAL) and the users file beside the configuration.
fn start_setup(setup: Setup<'_>) -> Popd {
    let files: Vec<(&str, &str)> = setup.files.iter().copied().chain([USERS_FILE]).collect();
    FrontendDaemon::start(
        Path::new(env!("CARGO_BIN_EXE_popd")),
        Protocol::Pop,
        &Setup {
            client_certs: true,
            files: &files,
            ..setup
        },
    )
}

/// popd with `pop` and `mmp` added to the `[service.pop]` and `[mmp]`
/// tables.
fn start(pop: &str, mmp: &str) -> Popd {
    start_setup(Setup {
        protocol: pop,
        mmp,
        ..Setup::default()
    })
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pop3_client.py")
}

/// Runs a client scenario of `pop3_client.py` from `source`.
fn client(
    popd: &Popd,
    scenario: &str,
    port: u16,
    user: &str,
    password: &str,
    source: &str,
) -> Fields {
    run_client(&script(), popd, scenario, port, user, password, source)
}

fn field<'a>(fields: &'a Fields, key: &str) -> &'a str {
    fields.get(key)
}

/// Dovecot's POP3 login line for `user` from `rip`.
fn dovecot_login(user: &str, rip: &str) -> String {
    store_login(Dovecot::shared(), Protocol::Pop, user, rip)
}

#[test]
fn stls_user_pass_fetches_the_message_from_the_store_with_the_real_client_address() {
    let popd = start("", "");
    let r = client(
        &popd,
        "stls-retr",
        popd.port,
        "alice",
        "alice-pw",
        "127.0.0.2",
    );
    // Cleartext refused without TLS (the default): no USER before STLS.
    let before: Vec<&str> = field(&r, "capa_plain").split(' ').collect();
    assert!(!before.contains(&"USER"), "{before:?}");
    assert!(before.contains(&"STLS"), "{before:?}");
    assert!(field(&r, "plain_user").starts_with("-ERR [AUTH]"), "{r:?}");
    let after: Vec<&str> = field(&r, "capa_tls").split(' ').collect();
    assert!(
        after.contains(&"USER") && !after.contains(&"STLS"),
        "{after:?}"
    );
    assert!(field(&r, "login").starts_with("+OK"), "{r:?}");
    // The message as the maildir holds it.
    let message = unhex(field(&r, "message"));
    assert_stored("alice", &message);
    // Dovecot believed XCLIENT: the user, and the client's own address.
    dovecot_login("alice", "127.0.0.2");
    // One connection line, with the canonical user and the TLS version,
    // and never the password.
    let log = popd.log().wait_for("connection closed", 1);
    let closed = log
        .lines()
        .find(|l| l.contains("connection closed") && l.contains("user=alice"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(closed.contains("client=127.0.0.2:"), "{closed}");
    assert!(closed.contains("tls=TLSv1_3"), "{closed}");
    assert!(closed.contains("mechanism=PLAIN"), "{closed}");
    assert!(!log.contains("alice-pw"), "{log}");
}

#[test]
fn apop_over_implicit_tls_logs_in_as_the_master_user_form() {
    let popd = start("", "");
    let r = client(
        &popd,
        "ssl-apop",
        popd.sslport,
        "carol",
        "carol-pw",
        "127.0.0.1",
    );
    let greeting = field(&r, "greeting");
    assert!(
        greeting.starts_with("+OK") && greeting.contains('<'),
        "{greeting}"
    );
    assert!(field(&r, "login").starts_with("+OK"), "{r:?}");
    assert!(field(&r, "count").parse::<usize>().unwrap() >= 1, "{r:?}");
    let log = popd.log().wait_for("connection closed", 1);
    assert!(log.contains("mechanism=APOP"), "{log}");
    // APOP never saw the password: Dovecot saw the master user acting
    // for carol.
    let line = Dovecot::shared()
        .wait_for_log("user=<carol>", LOG_WAIT)
        .expect("Dovecot logged carol's login");
    let master = format!("auth_user=<{}>", Dovecot::shared().master_user().0);
    assert!(line.contains(&master), "{line}");
}

#[test]
fn auth_external_with_a_client_certificate_reaches_the_store_and_an_unknown_ca_is_refused() {
    let popd = start("", "");
    let dovecot = Dovecot::shared();
    let (cert, key) = popd.client_cert("alice");
    // Implicit TLS: the certificate maps (e-mail → mail=alice@example.com)
    // to alice, whose store login is the master-user form.
    let r = client(
        &popd,
        "ssl-external",
        popd.sslport,
        &cert,
        &key,
        "127.0.0.8",
    );
    assert!(
        field(&r, "sasl").split(' ').any(|m| m == "EXTERNAL"),
        "{r:?}"
    );
    assert!(field(&r, "login").starts_with("+OK"), "{r:?}");
    assert!(field(&r, "count").parse::<usize>().unwrap() >= 1, "{r:?}");
    let log = popd.log().wait_for("mechanism=EXTERNAL", 1);
    assert!(log.contains("user=alice"), "{log}");
    let line = dovecot
        .wait_for_log("rip=127.0.0.8", LOG_WAIT)
        .unwrap_or_else(|| panic!("no login of alice from 127.0.0.8:\n{}", dovecot.log()));
    assert!(line.contains("user=<alice>"), "{line}");
    let admin = format!("auth_user=<{}>", dovecot.master_user().0);
    assert!(line.contains(&admin), "{line}");
    // After STLS: no EXTERNAL before the handshake, EXTERNAL after it.
    let r = client(&popd, "stls-external", popd.port, &cert, &key, "127.0.0.1");
    assert!(!field(&r, "sasl_plain").contains("EXTERNAL"), "{r:?}");
    assert!(
        field(&r, "sasl").split(' ').any(|m| m == "EXTERNAL"),
        "{r:?}"
    );
    assert!(field(&r, "login").starts_with("+OK"), "{r:?}");
    // The same subject from an unknown CA: the handshake is refused.
    let (cert, key) = popd.client_cert("stranger");
    let r = client(
        &popd,
        "ssl-external",
        popd.sslport,
        &cert,
        &key,
        "127.0.0.1",
    );
    assert!(r.has("refused"), "{r:?}");
    assert!(!r.has("login"), "{r:?}");
    popd.log().wait_for("TLS handshake failed", 1);
}

#[test]
fn a_wrong_password_is_refused_after_the_penalty() {
    let popd = start("", "");
    let r = client(
        &popd,
        "stls-wrong",
        popd.port,
        "bob",
        "not-bobs-password",
        "127.0.0.1",
    );
    let refusal = field(&r, "wrong");
    assert!(refusal.starts_with("-ERR [AUTH]"), "{refusal}");
    let log = popd.log().wait_for("failed login penalised", 1);
    assert!(!log.contains("not-bobs-password"), "{log}");
}

#[test]
fn check_accepts_a_good_configuration_and_refuses_a_broken_one_with_2() {
    let dir = tempfile::tempdir().unwrap();
    let good = frontend::configure(
        dir.path(),
        Protocol::Pop,
        free_port(),
        free_port(),
        &Setup::default(),
    )
    .unwrap();
    let check = |config: &Path| {
        Command::new(env!("CARGO_BIN_EXE_popd"))
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
}

#[test]
fn the_service_filter_refuses_before_the_greeting_on_both_ports() {
    let popd = start("domainnotallowed = \"pop: 127.0.0.2\"", "");
    // Both ports, the implicit-TLS one included, follow service.pop.
    for greeting in popd.greetings("127.0.0.2") {
        assert!(greeting.starts_with("-ERR"), "{greeting}");
    }
    for greeting in popd.greetings("127.0.0.3") {
        assert!(greeting.starts_with("+OK"), "{greeting}");
    }
    let log = popd
        .log()
        .wait_for("denied by the service access filter", 2);
    assert!(log.contains("client=127.0.0.2:"), "{log}");
}

#[test]
fn auth_plain_after_stls_replays_the_password_and_inactive_accounts_are_refused() {
    let popd = start("", "");
    let dovecot = Dovecot::shared();
    let r = client(
        &popd,
        "stls-auth-plain",
        popd.port,
        "bob",
        "bob-pw",
        "127.0.0.7",
    );
    assert!(field(&r, "sasl").split(' ').any(|m| m == "PLAIN"), "{r:?}");
    assert!(field(&r, "login").starts_with("+OK"), "{r:?}");
    assert!(field(&r, "count").parse::<usize>().unwrap() >= 1, "{r:?}");
    // mmp.storelogin = auto: AUTH PLAIN carried bob's password, and the
    // proxy logged in to Dovecot with it: a normal login, not the master
    // user's.
    let line = dovecot
        .wait_for_log("rip=127.0.0.7", LOG_WAIT)
        .unwrap_or_else(|| panic!("no login from 127.0.0.7:\n{}", dovecot.log()));
    assert!(line.contains("user=<bob>"), "{line}");
    assert!(line.contains("auth_user=<bob>"), "{line}");
    // dave's mailUserStatus is inactive: refused like a wrong password.
    let r = client(
        &popd,
        "stls-wrong",
        popd.port,
        "dave",
        "dave-pw",
        "127.0.0.1",
    );
    assert!(field(&r, "wrong").starts_with("-ERR [AUTH]"), "{r:?}");
}

#[test]
fn the_connection_closes_after_mmp_maxauthattempts_failures() {
    // Trusted networks skip the penalty, so the test does not wait it out.
    let popd = start(
        "",
        "trustednetworks = \"127.0.0.0/8\"\nmaxauthattempts = 2\n",
    );
    let r = client(&popd, "attempts", popd.port, "erin", "wrong", "127.0.0.1");
    let refusals = r
        .all("attempt")
        .iter()
        .filter(|v| v.starts_with("-ERR [AUTH]"))
        .count();
    assert_eq!(refusals, 2, "{r:?}");
    assert_eq!(field(&r, "closed"), "yes", "{r:?}");
    assert!(!r.all("attempt").contains(&"accepted"), "{r:?}");
}

#[test]
fn with_mmp_preauth_a_login_is_recorded_in_redis_for_pop_before_smtp() {
    let redis = Redis::shared();
    let local = format!("redisurl = {:?}", redis.url());
    let popd = start_setup(Setup {
        local: &local,
        mmp: "preauth = true\n",
        ..Setup::default()
    });
    let r = client(
        &popd,
        "stls-retr",
        popd.port,
        "alice",
        "alice-pw",
        "127.0.0.4",
    );
    assert!(field(&r, "login").starts_with("+OK"), "{r:?}");
    // What smtpd will ask: the client's address is authorized, as alice;
    // another address is not.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _inside = runtime.enter();
    let cache = AuthCache::new(
        RedisStore::builder(redis.url()).build().unwrap(),
        CacheSettings::with_ttl(900),
    );
    let now = Timestamp::now();
    match runtime.block_on(cache.lookup("127.0.0.4".parse().unwrap(), now)) {
        Lookup::Authorize(a) => assert_eq!(&*a.user, "alice"),
        other => panic!("127.0.0.4 not authorized: {other:?}"),
    }
    assert_eq!(
        runtime.block_on(cache.lookup("127.0.0.5".parse().unwrap(), now)),
        Lookup::Deny
    );
}

#[test]
fn readiness_is_notified_and_sigterm_ends_unauthenticated_sessions_with_err() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    let mut popd = start_setup(Setup {
        notify: Some(&socket_path),
        ..Setup::default()
    });
    let mut ready = [0u8; 64];
    let n = notify.recv(&mut ready).unwrap();
    assert_eq!(&ready[..n], b"READY=1");

    let mut conn = std::net::TcpStream::connect(("127.0.0.1", popd.port)).unwrap();
    conn.set_read_timeout(Some(LOG_WAIT)).unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut greeting = String::new();
    reader.read_line(&mut greeting).unwrap();
    assert!(greeting.starts_with("+OK"), "{greeting}");
    conn.write_all(b"CAPA\r\n").unwrap();
    let mut line = String::new();
    while line.trim_end() != "." {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "CAPA cut short");
    }
    let status = Command::new("kill")
        .args(["-TERM", &popd.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    assert!(rest.starts_with("-ERR [SYS/TEMP]"), "{rest:?}");
    let exit = popd.daemon.wait().unwrap();
    assert!(exit.success(), "{exit:?}\n{}", popd.log().text());
    assert!(
        popd.log().text().contains("shutting down"),
        "{}",
        popd.log().text()
    );
}

#[test]
fn behind_a_trusted_proxy_the_header_names_the_client_the_store_sees() {
    let popd = start("", "trustedproxies = \"127.0.0.0/8\"\n");
    let dovecot = Dovecot::shared();
    let r = client(
        &popd,
        "proxy-ssl",
        popd.sslport,
        "alice",
        "alice-pw",
        "192.0.2.77",
    );
    assert!(field(&r, "login").starts_with("+OK"), "{r:?}");
    let line = dovecot
        .wait_for_log("rip=192.0.2.77", LOG_WAIT)
        .unwrap_or_else(|| panic!("no rip=192.0.2.77:\n{}", dovecot.log()));
    assert!(line.contains("user=<alice>"), "{line}");
    let log = popd.log().wait_for("connection closed", 1);
    assert!(log.contains("client=192.0.2.77:40077"), "{log}");
}

#[test]
fn a_dead_store_fails_over_and_no_live_store_is_a_temporary_refusal() {
    // Nothing listens on `dead`: its connection is refused at once.
    let dead = free_port();
    let live = Dovecot::shared().pop3_port();
    let popd = start(
        "",
        &format!("storehosts = [\"127.0.0.1:{dead}\", \"127.0.0.1:{live}\"]\n"),
    );
    let r = client(
        &popd,
        "stls-retr",
        popd.port,
        "alice",
        "alice-pw",
        "127.0.0.1",
    );
    assert!(field(&r, "login").starts_with("+OK"), "{r:?}");
    drop(popd);
    let popd = start("", &format!("storehosts = [\"127.0.0.1:{dead}\"]\n"));
    let r = client(
        &popd,
        "stls-wrong",
        popd.port,
        "alice",
        "alice-pw",
        "127.0.0.1",
    );
    assert!(field(&r, "wrong").starts_with("-ERR [SYS/TEMP]"), "{r:?}");
}

#[test]
fn a_users_file_replaces_the_directory() {
    // The file's bob has a password the store does not know, so the store
    // login is the master-user form.
    // The users file's names are the store's own (no domain added), as
    // the directory's are with `ugldapcanonicalform = "%u"`.
    let popd = start_setup(Setup {
        local: "userfile = \"users.passwd\"\n",
        service: "defaultdomain = \"\"\n",
        mmp: "storelogin = \"master\"\n",
        ..Setup::default()
    });
    let dovecot = Dovecot::shared();
    let r = client(
        &popd,
        "stls-retr",
        popd.port,
        "bob",
        "bob-file-pw",
        "127.0.0.4",
    );
    assert!(field(&r, "login").starts_with("+OK"), "{r:?}");
    let message = unhex(field(&r, "message"));
    assert_stored("bob", &message);
    dovecot
        .wait_for_log("rip=127.0.0.4", LOG_WAIT)
        .expect("Dovecot logged bob's login from the client's address");
    // The directory is not asked any more: neither bob's directory
    // password nor alice, who is only in the directory, logs in.
    for (user, password, source) in [
        ("bob", "bob-pw", "127.0.0.5"),
        ("alice", "alice-pw", "127.0.0.6"),
    ] {
        let r = client(&popd, "stls-wrong", popd.port, user, password, source);
        let refusal = field(&r, "wrong");
        assert!(refusal.starts_with("-ERR [AUTH]"), "{user}: {refusal}");
    }
}

#[test]
fn cleartext_is_refused_without_tls_by_default_and_accepted_when_configured() {
    let popd = start("", "");
    let r = client(
        &popd,
        "plain-auth-plain",
        popd.port,
        "alice",
        "alice-pw",
        "127.0.0.1",
    );
    assert!(
        !r.get("sasl_plain").split(' ').any(|m| m == "PLAIN"),
        "{r:?}"
    );
    assert!(r.get("auth_plain").starts_with("-ERR"), "{r:?}");
    drop(popd);

    let popd = start_setup(Setup {
        service: "plaintextmincipher = 0\n",
        ..Setup::default()
    });
    let r = client(
        &popd,
        "plain-retr",
        popd.port,
        "alice",
        "alice-pw",
        "127.0.0.9",
    );
    let capa: Vec<&str> = r.get("capa_plain").split(' ').collect();
    assert!(capa.contains(&"USER"), "{capa:?}");
    assert!(r.get("login").starts_with("+OK"), "{r:?}");
    let message = r.bytes("message");
    assert_stored("alice", &message);
    let line = dovecot_login("alice", "127.0.0.9");
    assert!(line.contains("auth_user=<alice>"), "{line}");
    let log = popd.log().wait_for("connection closed", 1);
    assert!(log.contains("tls=none"), "{log}");
}

#[test]
fn limits_answer_with_err_and_the_daemon_goes_on() {
    frontend::assert_connection_limits(
        Path::new(env!("CARGO_BIN_EXE_popd")),
        Protocol::Pop,
        "+OK",
        "-ERR [SYS/TEMP]",
    );
    let popd = start("", "preauthtimeout = 1\n");
    // No login within mmp.preauthtimeout: -ERR, then the close.
    let r = popd.line("idle", popd.port, "-", "-", "127.0.0.1");
    assert!(r.get("greeting").starts_with("+OK"), "{r:?}");
    let after = r.get("after");
    assert!(
        after.starts_with("-ERR") && after.ends_with("| closed"),
        "{after}"
    );
    popd.log().wait_for("pre-login timeout", 1);
    // An overlong line: -ERR, and the session goes on.
    drop(popd);
    let popd = start("", "");
    let r = popd.line("overlong", popd.port, "NOOP ", "CAPA", "127.0.0.1");
    assert!(r.get("overlong").starts_with("-ERR"), "{r:?}");
    assert!(r.get("next").starts_with("+OK"), "{r:?}");
    assert!(r.get("again").starts_with("+OK"), "{r:?}");
}

#[test]
fn filters_tempfail_on_dns_trouble_and_read_the_domain_entry() {
    frontend::assert_dns_failure_is_temporary(
        Path::new(env!("CARGO_BIN_EXE_popd")),
        Protocol::Pop,
        "-ERR [SYS/TEMP]",
    );

    // The domain entry denies POP to henry, whose own entry allows it.
    Slapd::shared().add_ldif(DENYING_DOMAIN_LDIF).unwrap();
    let popd = start("", "");
    let r = client(
        &popd,
        "stls-wrong",
        popd.port,
        "henry@example.net",
        "henry-pw",
        "127.0.0.1",
    );
    assert!(r.get("wrong").starts_with("-ERR [AUTH]"), "{r:?}");
    let log = popd
        .log()
        .wait_for("account-level access filter user=henry", 1);
    assert!(log.contains("domain level (decisive)"), "{log}");
}

#[test]
fn curl_and_openssl_s_client_work_through_the_proxy() {
    let popd = start("", "");
    // curl over implicit TLS fetches alice's first message.
    let message = popd.curl(
        "alice:alice-pw",
        &format!("pop3s://127.0.0.1:{}/1", popd.sslport),
    );
    assert_stored("alice", &message);
    // openssl s_client does STLS itself, then our commands run.
    let out = popd.s_client_starttls(b"CAPA\nUSER alice\nPASS alice-pw\nSTAT\nQUIT\n");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.contains(&"USER") && !lines.contains(&"STLS"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        lines.iter().filter(|l| l.starts_with("+OK")).count() >= 4,
        "{text}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with(&format!(
            "+OK {} ",
            Dovecot::shared().messages("alice").len()
        ))),
        "{text}"
    );
}

#[test]
fn the_users_mailhost_is_honoured_and_a_store_refusal_is_err_auth() {
    // A second Dovecot, named only by admin's mailHost (host:port).
    let other = Dovecot::start().unwrap();
    let ldif = format!(
        "dn: uid=admin,ou=People,o=example.com,o=example\nchangetype: modify\n\
         replace: mailHost\nmailHost: 127.0.0.1:{}\n",
        other.pop3_port()
    );
    Slapd::shared().modify_ldif(&ldif).unwrap();
    // judy is in the directory, not in the store.
    Slapd::shared().add_ldif(STORELESS_USER_LDIF).unwrap();
    // Both stores' CAs are trusted.
    let cas = format!("{}\n{}", Dovecot::shared().ca_pem(), other.ca_pem());
    let files = [("store-ca.pem", cas.as_str())];
    let popd = start_setup(Setup {
        files: &files,
        ..Setup::default()
    });
    let r = client(
        &popd,
        "stls-retr",
        popd.port,
        "admin",
        "admin-pw",
        "127.0.0.10",
    );
    assert!(r.get("login").starts_with("+OK"), "{r:?}");
    let line = store_login(&other, Protocol::Pop, "admin", "127.0.0.10");
    assert!(line.contains("auth_user=<admin>"), "{line}");
    assert!(
        !Dovecot::shared().log().contains("rip=127.0.0.10,"),
        "{}",
        Dovecot::shared().log()
    );
    let r = client(
        &popd,
        "stls-wrong",
        popd.port,
        "judy",
        "judy-pw",
        "127.0.0.13",
    );
    assert!(
        r.get("wrong")
            .starts_with("-ERR [AUTH] The message store refused"),
        "{r:?}"
    );
    let dovecot = Dovecot::shared();
    let line = dovecot
        .wait_for_log("user=<judy>", LOG_WAIT)
        .unwrap_or_else(|| panic!("Dovecot logged no judy:\n{}", dovecot.log()));
    assert!(line.contains("auth failed"), "{line}");
}
