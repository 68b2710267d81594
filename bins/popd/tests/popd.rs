//! popd end to end: the binary started with a configuration written for
//! the test, the slapd test directory as the user source, the Dovecot
//! fixture as the message store, Python's poplib as the client.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Command;

use portcullis_popbeforesmtp::{AuthCache, CacheSettings, Lookup, RedisStore, Timestamp};
use portcullis_test_support::ca::TestCa;
use portcullis_test_support::daemon::{Daemon, LOG_WAIT};
use portcullis_test_support::dovecot::Dovecot;
use portcullis_test_support::free_port;
use portcullis_test_support::redis::Redis;
use portcullis_test_support::slapd::Slapd;
use portcullis_tlsconf::certdb::certdb::{CertDb, KdfParams, Password, PrivateKey, TrustFlags};

/// A running popd, stopped (by its PID) when dropped.
struct Popd {
    daemon: Daemon,
    port: u16,
    sslport: u16,
    ca: PathBuf,
    dir: tempfile::TempDir,
}

impl std::ops::Deref for Popd {
    type Target = Daemon;
    fn deref(&self) -> &Daemon {
        &self.daemon
    }
}

/// The configuration directory: a certificate database with the server
/// certificate, the CA files, the configuration file.
fn configure(dir: &Path, port: u16, sslport: u16, local: &str, pop: &str, extra: &str) -> PathBuf {
    let slapd = Slapd::shared();
    let dovecot = Dovecot::shared();
    let ca = TestCa::new("popd test CA").unwrap();
    let server = ca.issue_server(&["127.0.0.1", "localhost"]).unwrap();
    let pw = Password::new("db-password");
    let mut db = CertDb::create(dir.join("certdb"), &pw, KdfParams::INSECURE_FAST).unwrap();
    let key = PrivateKey::from_pkcs8_der(&server.key_der).unwrap();
    db.add_with_key(
        &pw,
        "Server-Cert",
        &server.cert_der,
        &key,
        TrustFlags::default(),
        &[],
    )
    .unwrap();
    // The CA is trusted for client authentication too (`CT,,`), so popd
    // asks for client certificates (encryption.nssslclientauth = auto)
    // and offers EXTERNAL to a client that sent one.
    db.add_certificate("Test-CA", &ca.cert_der(), TrustFlags::trusted_ca())
        .unwrap();
    let alice = ca.issue_client("Alice", Some("alice@example.com")).unwrap();
    std::fs::write(dir.join("alice-client.pem"), &alice.cert_pem).unwrap();
    std::fs::write(dir.join("alice-client.key"), &alice.key_pem).unwrap();
    // The same subject from a CA popd does not know.
    let stranger = TestCa::new("unknown CA")
        .unwrap()
        .issue_client("Alice", Some("alice@example.com"))
        .unwrap();
    std::fs::write(dir.join("stranger-client.pem"), &stranger.cert_pem).unwrap();
    std::fs::write(dir.join("stranger-client.key"), &stranger.key_pem).unwrap();
    std::fs::write(dir.join("client-ca.pem"), ca.cert_pem()).unwrap();
    std::fs::write(dir.join("ldap-ca.pem"), slapd.ca_pem()).unwrap();
    std::fs::write(dir.join("store-ca.pem"), dovecot.ca_pem()).unwrap();
    // Used only when `local` sets `userfile`: bob with a password of its
    // own, which the directory does not know.
    std::fs::write(
        dir.join("users.passwd"),
        "# users file (Dovecot passwd-file format)\n\
         bob:{PLAIN}bob-file-pw::::::allowedserviceaccess=+pop:ALL\n",
    )
    .unwrap();
    let (admin, admin_pw) = dovecot.master_user();
    let text = format!(
        "[local]\n\
         ugldaphost = \"127.0.0.1\"\n\
         ugldapport = {ldap}\n\
         ugldapstarttls = 1\n\
         ugldapcafile = \"ldap-ca.pem\"\n\
         ugldapbinddn = {bind_dn:?}\n\
         ugldapbindcred = {bind_pw:?}\n\
         ugldapbasedn = {base:?}\n\
         ugldapcanonicalform = \"%u\"\n\
         {local}\n\
         [service]\n\
         {defaultdomain}\n\
         listenaddr = \"127.0.0.1\"\n\
         [service.pop]\n\
         port = {port}\n\
         sslport = {sslport}\n\
         {pop}\n\
         [sasl.default.ldap]\n\
         has_plain_passwords = true\n\
         [mmp]\n\
         {stores}\
         backsidetls = \"starttls\"\n\
         backsidecafile = \"store-ca.pem\"\n\
         storeadmin = {admin:?}\n\
         storepassword = {admin_pw:?}\n\
         authfailuredelay = 1\n\
         {extra}",
        ldap = slapd.port(),
        bind_dn = slapd.service_dn(),
        bind_pw = slapd.service_password(),
        base = slapd.base_dn(),
        // The users file's names are the store's own (no domain added),
        // as the directory's are with `ugldapcanonicalform = "%u"`.
        defaultdomain = if local.contains("userfile") {
            ""
        } else {
            "defaultdomain = \"example.com\""
        },
        // `extra` may name its own stores.
        stores = if extra.contains("storehosts") {
            String::new()
        } else {
            format!("storehosts = [\"127.0.0.1:{}\"]\n", dovecot.pop3_port())
        },
    );
    let path = dir.join("portcullis.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn start(pop: &str, extra: &str) -> Popd {
    start_with("", pop, extra)
}

/// popd with `local`, `pop` and `extra` added to the `[local]`,
/// `[service.pop]` and `[mmp]` tables.
fn start_with(local: &str, pop: &str, extra: &str) -> Popd {
    start_notifying(local, pop, extra, None)
}

/// [`start_with`], with `NOTIFY_SOCKET` set when `notify` is given.
fn start_notifying(local: &str, pop: &str, extra: &str, notify: Option<&Path>) -> Popd {
    let dir = tempfile::tempdir().unwrap();
    let (port, sslport) = (free_port(), free_port());
    let config = configure(dir.path(), port, sslport, local, pop, extra);
    let envs: Vec<(&str, &std::ffi::OsStr)> = notify
        .map(|p| ("NOTIFY_SOCKET", p.as_os_str()))
        .into_iter()
        .collect();
    let daemon = Daemon::spawn(Path::new(env!("CARGO_BIN_EXE_popd")), &config, &envs).unwrap();
    let popd = Popd {
        daemon,
        port,
        sslport,
        ca: dir.path().join("client-ca.pem"),
        dir,
    };
    let text = popd.log().wait_for("listening on", 2);
    assert!(
        text.contains(&format!("listening on 127.0.0.1:{port} (pop, starttls)")),
        "{text}"
    );
    assert!(
        text.contains(&format!("listening on 127.0.0.1:{sslport} (pop, tls)")),
        "{text}"
    );
    popd
}

/// Runs a client scenario; its `key=value` lines.
fn client(
    popd: &Popd,
    scenario: &str,
    port: u16,
    user: &str,
    password: &str,
    source: &str,
) -> Vec<(String, String)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pop3_client.py");
    let out = Command::new("python3")
        .arg(script)
        .args([scenario, "127.0.0.1", &port.to_string()])
        .arg(&popd.ca)
        .args([user, password, source])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{scenario}: {stdout}\n{}\npopd:\n{}",
        String::from_utf8_lossy(&out.stderr),
        popd.log().text()
    );
    stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], key: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {key} in {fields:?}"))
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn stls_user_pass_fetches_the_message_from_the_store_with_the_real_client_address() {
    let popd = start("", "");
    let dovecot = Dovecot::shared();
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
    assert!(field(&r, "plain_user").starts_with("-ERR"), "{r:?}");
    let after: Vec<&str> = field(&r, "capa_tls").split(' ').collect();
    assert!(
        after.contains(&"USER") && !after.contains(&"STLS"),
        "{after:?}"
    );
    assert!(field(&r, "login").starts_with("+OK"), "{r:?}");
    // The message as the maildir holds it.
    let message = unhex(field(&r, "message"));
    assert!(
        dovecot.messages("alice").contains(&message.as_slice()),
        "{}",
        String::from_utf8_lossy(&message)
    );
    // Dovecot believed XCLIENT: the user, and the client's own address.
    let line = dovecot
        .wait_for_log("user=<alice>", LOG_WAIT)
        .expect("Dovecot logged alice's login");
    let line = dovecot
        .log()
        .lines()
        .find(|l| l.contains("user=<alice>") && l.contains("rip=127.0.0.2"))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no rip=127.0.0.2 for alice: {line}\n{}", dovecot.log()));
    assert!(line.contains("pop3-login"), "{line}");
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

/// The client certificate files popd's configuration directory holds.
fn cert_files(popd: &Popd, name: &str) -> (String, String) {
    let path = |ext: &str| {
        popd.dir
            .path()
            .join(format!("{name}-client.{ext}"))
            .to_string_lossy()
            .into_owned()
    };
    (path("pem"), path("key"))
}

#[test]
fn auth_external_with_a_client_certificate_reaches_the_store_and_an_unknown_ca_is_refused() {
    let popd = start("", "");
    let dovecot = Dovecot::shared();
    let (cert, key) = cert_files(&popd, "alice");
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
    let (cert, key) = cert_files(&popd, "stranger");
    let r = client(
        &popd,
        "ssl-external",
        popd.sslport,
        &cert,
        &key,
        "127.0.0.1",
    );
    assert!(r.iter().any(|(k, _)| k == "refused"), "{r:?}");
    assert!(!r.iter().any(|(k, _)| k == "login"), "{r:?}");
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
    let good = configure(dir.path(), free_port(), free_port(), "", "", "");
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
fn the_service_filter_refuses_before_the_greeting() {
    let popd = start("domainnotallowed = \"pop: 127.0.0.2\"", "");
    let denied = client(&popd, "greeting", popd.port, "-", "-", "127.0.0.2");
    let greeting = field(&denied, "greeting");
    assert!(greeting.starts_with("-ERR"), "{greeting}");
    let allowed = client(&popd, "greeting", popd.port, "-", "-", "127.0.0.3");
    assert!(
        field(&allowed, "greeting").starts_with("+OK"),
        "{allowed:?}"
    );
    let log = popd
        .log()
        .wait_for("denied by the service access filter", 1);
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
        .iter()
        .filter(|(k, v)| k == "attempt" && v.starts_with("-ERR [AUTH]"))
        .count();
    assert_eq!(refusals, 2, "{r:?}");
    assert_eq!(field(&r, "closed"), "yes", "{r:?}");
    assert!(!r.iter().any(|(_, v)| v == "accepted"), "{r:?}");
}

#[test]
fn with_mmp_preauth_a_login_is_recorded_in_redis_for_pop_before_smtp() {
    let redis = Redis::shared();
    let popd = start_with(
        &format!("redisurl = {:?}", redis.url()),
        "",
        "preauth = true\n",
    );
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
    let mut popd = start_notifying("", "", "", Some(&socket_path));
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
    let popd = start_with(
        "userfile = \"users.passwd\"\n",
        "",
        "storelogin = \"master\"\n",
    );
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
    assert!(
        dovecot.messages("bob").contains(&message.as_slice()),
        "{}",
        String::from_utf8_lossy(&message)
    );
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
