//! smtpd end to end: the binary started with a configuration written for
//! the test, the slapd test directory as the user source, the Postfix
//! fixture as the relay (XCLIENT allowed from loopback), real clients
//! (Python's smtplib, swaks, curl, raw sockets). What counts is what
//! Postfix logged and delivered to its sink.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::path::{Path, PathBuf};
use std::process::Command;

use portcullis_test_support::daemon::{self, LOG_WAIT};
use portcullis_test_support::dovecot::Dovecot;
use portcullis_test_support::redis::Redis;
use portcullis_test_support::slapd::Slapd;
use portcullis_test_support::{field, free_port};

mod support;

use support::{
    Smtpd, alice, configure, postfix, postfix_client_line, postfix_line, smtplib, smtplib_with,
    start, start_in, start_with,
};

#[test]
fn smtplib_starttls_auth_plain_and_login_and_implicit_tls_arrive_with_the_client_and_user() {
    let smtpd = start("", "");
    for (scenario, port) in [
        ("starttls-plain", smtpd.port),
        ("starttls-login", smtpd.port),
        ("implicit-tls", smtpd.sslport),
    ] {
        let mark = format!("smtplib-{scenario}-7f1");
        let rcpt = format!("{mark}@elsewhere.example");
        let r = smtplib(&smtpd, &alice(scenario, port, &rcpt, &mark));
        assert!(field(&r, "auth").starts_with("ok"), "{scenario}: {r:?}");
        assert!(
            field(&r, "send").starts_with("ok"),
            "{scenario}: {r:?}\n{}",
            smtpd.log().text()
        );
        if scenario == "starttls-plain" {
            // AUTH only after STARTTLS (the default).
            let plain = field(&r, "features_plain");
            assert!(
                plain.contains("starttls") && !plain.contains("auth"),
                "{plain}"
            );
            let tls = field(&r, "features_tls");
            assert!(tls.contains("auth") && !tls.contains("starttls"), "{tls}");
            // The relay's XCLIENT is never shown.
            assert!(!tls.contains("xclient"), "{tls}");
        }
        // Postfix believed the hand-off: the real client and the user.
        let line = postfix_client_line(&rcpt);
        assert!(line.contains("[127.0.0.2]"), "{line}");
        assert!(line.contains("sasl_username=alice"), "{line}");
        assert!(postfix().wait_for_delivery(&format!("body of {mark}"), LOG_WAIT));
    }
    // One line per message with the relay's queue id.
    let log = smtpd.log().wait_for("message", 3);
    let line = log
        .lines()
        .find(|l| {
            l.contains("smtplib-implicit-tls-7f1")
                || (l.contains("portcullis::message") && l.contains("queue_id"))
        })
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains("user=alice"), "{line}");
    assert!(!log.contains("alice-pw"), "the password is never logged");
}

/// One scenario as alice from 127.0.0.2 with `extra`; its fields.
fn run(
    smtpd: &Smtpd,
    name: &str,
    port: u16,
    from: &str,
    rcpt: &str,
    extra: &str,
) -> Vec<(String, String)> {
    let mut s = alice(name, port, rcpt, rcpt);
    s.from = from;
    smtplib_with(smtpd, &s, extra)
}

#[test]
fn refusals_unauthenticated_plaintext_auth_wrong_sender_impersonation_size_recipients() {
    // alice's second address, as the directory gives it.
    let slapd = Slapd::shared();
    let ldif = format!(
        "dn: uid=alice,ou=People,o=example.com,{}\nchangetype: modify\n\
         replace: mailAlternateAddress\nmailAlternateAddress: a.example@example.org\n",
        slapd.base_dn()
    );
    slapd.modify_ldif(&ldif).unwrap();
    let smtpd = start("maxmessagesize = 5000\nmaxrecipients = 2\n", "");
    let me = "alice@example.com";
    let r = run(
        &smtpd,
        "wrong-sender",
        smtpd.port,
        "a.example@example.org",
        "alternate-a0@elsewhere.example",
        "",
    );
    assert!(field(&r, "send").starts_with("ok"), "{r:?}");
    postfix_line(&["to=<alternate-a0@elsewhere.example>", "status=sent"]);
    // No AUTH, plain or after STARTTLS: 530 at MAIL FROM.
    for scenario in ["noauth", "noauth-tls"] {
        let r = run(
            &smtpd,
            scenario,
            smtpd.port,
            me,
            "unauth-a1@elsewhere.example",
            "",
        );
        assert!(
            field(&r, "send").starts_with("530 5.7.0"),
            "{scenario}: {r:?}"
        );
    }
    // AUTH without TLS: not offered, refused.
    let r = run(
        &smtpd,
        "auth-plaintext",
        smtpd.port,
        me,
        "x@elsewhere.example",
        "",
    );
    assert!(!field(&r, "features_plain").contains("auth"), "{r:?}");
    assert!(field(&r, "auth").starts_with("538 5.7.11"), "{r:?}");
    // Someone else's address.
    let r = run(
        &smtpd,
        "wrong-sender",
        smtpd.port,
        "bob@example.com",
        "wrongsender-b2@elsewhere.example",
        "",
    );
    assert!(field(&r, "send").starts_with("553 5.7.1"), "{r:?}");
    // XCLIENT, XFORWARD, PROXY from the client: refused, the session goes on.
    let r = run(
        &smtpd,
        "impersonation",
        smtpd.port,
        me,
        "imperson-c3@elsewhere.example",
        "",
    );
    for key in ["xclient", "xforward", "proxy"] {
        assert!(field(&r, key).starts_with("550 5.7.0"), "{key}: {r:?}");
    }
    assert!(field(&r, "send").starts_with("ok"), "{r:?}");
    let line = postfix_client_line("imperson-c3@elsewhere.example");
    assert!(
        line.contains("[127.0.0.2]") && !line.contains("192.0.2.66"),
        "{line}"
    );
    // Too big: declared with SIZE=, and sent without it.
    let r = run(
        &smtpd,
        "size",
        smtpd.port,
        me,
        "oversize-d4@elsewhere.example",
        "6000",
    );
    assert!(field(&r, "size_declared").starts_with("552"), "{r:?}");
    assert!(field(&r, "data").contains("(552, b'5.3.4"), "{r:?}");
    // Too many recipients: the third is refused, the message goes to two.
    let r = run(
        &smtpd,
        "recipients",
        smtpd.port,
        me,
        "rcpts-e5@elsewhere.example",
        "3",
    );
    assert_eq!(field(&r, "rcpts"), "250 250 452", "{r:?}");
    assert!(field(&r, "data").starts_with("ok"), "{r:?}");
    postfix_line(&["to=<rcpts-e5-1@elsewhere.example>", "status=sent"]);
    // STARTTLS injection: what followed STARTTLS in the packet is
    // dropped, and EHLO is needed again.
    let r = run(
        &smtpd,
        "starttls-injection",
        smtpd.port,
        me,
        "inject-f6@elsewhere.example",
        "",
    );
    assert!(field(&r, "starttls").starts_with("220"), "{r:?}");
    assert!(
        field(&r, "first_after_tls").starts_with("250 2.0.0"),
        "{r:?}"
    );
    assert!(field(&r, "mail_after_tls").starts_with("503"), "{r:?}");
    // The sync point above was delivered: nothing refused reached Postfix.
    let log = postfix().maillog();
    for refused in [
        "unauth-a1",
        "wrongsender-b2",
        "oversize-d4",
        "rcpts-e5-2",
        "inject-f6",
    ] {
        assert!(!log.contains(refused), "{refused} reached Postfix:\n{log}");
    }
}

const SEQUENCES: [&str; 5] = ["\n.\n", "\n.\r\n", "\r.\r", "\r\n.\n", "\r\n.\r\r\n"];

#[test]
fn smuggling_sequences_never_give_postfix_a_second_message() {
    let smtpd = start("", "");
    for (i, seq) in SEQUENCES.iter().enumerate() {
        let n = format!("smg{i}");
        let hex: String = seq.bytes().map(|b| format!("{b:02x}")).collect();
        let mut s = alice("smuggle", smtpd.port, "", &n);
        let rcpt = format!("bob-{n}@elsewhere.example");
        s.rcpt = &rcpt;
        let r = smtplib_with(&smtpd, &s, &hex);
        assert!(field(&r, "data").starts_with("354"), "{seq:?}: {r:?}");
        assert!(
            field(&r, "smuggled").starts_with("550 5.5.2"),
            "{seq:?}: {r:?}"
        );
        assert!(field(&r, "sync").starts_with("ok"), "{seq:?}: {r:?}");
        // The sync message arrived after everything before it.
        postfix_line(&[&format!("to=<sync-{n}@elsewhere.example>"), "status=sent"]);
        let log = postfix().maillog();
        assert!(
            !log.contains(&format!("victim-{n}@")),
            "{seq:?}: a second message\n{log}"
        );
        assert!(
            !log.contains(&format!("to=<bob-{n}@")),
            "{seq:?}: refused message delivered\n{log}"
        );
    }
    let dump = postfix().sink_dump();
    assert!(!dump.contains("Subject: evil"), "{dump}");
}

#[test]
fn a_dead_relay_is_skipped_and_all_dead_is_421() {
    let dead = free_port();
    let smtpd = start(
        "",
        &format!(
            "smtprelays = \"127.0.0.1:{dead} 127.0.0.1:{}\"\n",
            postfix().smtp_port()
        ),
    );
    for mark in ["failover-g7a", "failover-g7b"] {
        let rcpt = format!("{mark}@elsewhere.example");
        let r = run(
            &smtpd,
            "starttls-plain",
            smtpd.port,
            "alice@example.com",
            &rcpt,
            "",
        );
        assert!(
            field(&r, "send").starts_with("ok"),
            "{r:?}\n{}",
            smtpd.log().text()
        );
        postfix_line(&[&format!("to=<{rcpt}>"), "status=sent"]);
    }
    smtpd
        .log()
        .wait_for("SMTP relay failed; trying the next one", 1);
    let (dead1, dead2) = (free_port(), free_port());
    let none = start(
        "",
        &format!("smtprelays = \"127.0.0.1:{dead1} 127.0.0.1:{dead2}\"\n"),
    );
    let r = run(
        &none,
        "starttls-plain",
        none.port,
        "alice@example.com",
        "down-h8@elsewhere.example",
        "",
    );
    assert!(field(&r, "send").starts_with("421 4.3.0"), "{r:?}");
}

#[test]
fn hostile_greetings_never_take_the_relay_out_of_service() {
    // One relay: had it been marked failed, the last message would get 421.
    let smtpd = start("", "");
    let r = run(
        &smtpd,
        "hostile-helo",
        smtpd.port,
        "alice@example.com",
        "hostile-i9@elsewhere.example",
        "",
    );
    // Empty, overlong, control characters, a bad literal: refused by the
    // session, MAIL goes on with the last good name.
    for i in [0, 1, 2, 3, 5] {
        assert!(
            field(&r, &format!("helo{i}")).starts_with('5'),
            "{i}: {r:?}"
        );
    }
    assert!(
        field(&r, "send").starts_with("ok"),
        "{r:?}\n{}",
        smtpd.log().text()
    );
    postfix_line(&["to=<hostile-i9@elsewhere.example>", "status=sent"]);
    let log = smtpd.log().text();
    assert!(!log.contains("SMTP relay failed"), "{log}");
}

/// Runs `program` with `args` (bounded by `timeout`); success and output.
fn tool(program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new("timeout")
        .arg("60")
        .arg(program)
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn swaks_and_curl_submit_through_smtpd_and_postfix_sees_the_user() {
    let smtpd = start("", "");
    let server = format!("127.0.0.1:{}", smtpd.port);
    let tls_server = format!("127.0.0.1:{}", smtpd.sslport);
    for (mark, server, mode) in [
        (
            "swaks-plain-pipe-j1",
            &server,
            vec!["--tls", "--auth", "PLAIN", "--pipeline"],
        ),
        ("swaks-login-j2", &server, vec!["--tls", "--auth", "LOGIN"]),
        (
            "swaks-tlsc-j3",
            &tls_server,
            vec!["--tls-on-connect", "--auth", "PLAIN", "--pipeline"],
        ),
    ] {
        let rcpt = format!("{mark}@elsewhere.example");
        let subject = format!("Subject: {mark}");
        let mut args = vec![
            "--server",
            server.as_str(),
            "--from",
            "alice@example.com",
            "--to",
            &rcpt,
        ];
        args.extend(["--auth-user", "alice", "--auth-password", "alice-pw"]);
        args.extend(["--header", &subject, "--body", "swaks body"]);
        args.extend(mode);
        let (ok, out) = tool("swaks", &args);
        assert!(ok, "{mark}: {out}\n{}", smtpd.log().text());
        let line = postfix_client_line(&rcpt);
        assert!(
            line.contains("[127.0.0.1]") && line.contains("sasl_username=alice"),
            "{line}"
        );
    }
    // Without TLS, AUTH is neither offered nor possible.
    let (ok, out) = tool(
        "swaks",
        &[
            "--server",
            &server,
            "--from",
            "alice@example.com",
            "--to",
            "notls-j4@elsewhere.example",
            "--auth",
            "PLAIN",
            "--auth-user",
            "alice",
            "--auth-password",
            "alice-pw",
        ],
    );
    assert!(!ok, "{out}");
    // curl: STARTTLS on 587, implicit TLS on 465.
    let ca = smtpd.ca.to_str().unwrap().to_owned();
    for (mark, url) in [
        (
            "curl-starttls-k1",
            format!("smtp://127.0.0.1:{}", smtpd.port),
        ),
        (
            "curl-smtps-k2",
            format!("smtps://127.0.0.1:{}", smtpd.sslport),
        ),
    ] {
        let rcpt = format!("{mark}@elsewhere.example");
        let file = smtpd.dir.path().join(format!("{mark}.eml"));
        std::fs::write(
            &file,
            format!("Subject: {mark}\r\n\r\ncurl body {mark}\r\n"),
        )
        .unwrap();
        let (ok, out) = tool(
            "curl",
            &[
                "-sS",
                "--url",
                &url,
                "--ssl-reqd",
                "--cacert",
                &ca,
                "--user",
                "alice:alice-pw",
                "--mail-from",
                "alice@example.com",
                "--mail-rcpt",
                &rcpt,
                "--upload-file",
                file.to_str().unwrap(),
            ],
        );
        assert!(ok, "{mark}: {out}\n{}", smtpd.log().text());
        let line = postfix_client_line(&rcpt);
        assert!(line.contains("sasl_username=alice"), "{line}");
        assert!(postfix().wait_for_delivery(&format!("curl body {mark}"), LOG_WAIT));
    }
}

/// popd's code (`portcullis_frontend::run` for POP3, what the popd binary
/// runs) in this process, with the configuration at `config`; stopped
/// when the sender is dropped.
fn popd(config: PathBuf) -> std::sync::mpsc::Sender<()> {
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let stopped = runtime.spawn_blocking(move || {
            let _ = stop_rx.recv();
        });
        let result = runtime.block_on(portcullis_frontend::run(
            portcullis_frontend::Service::Pop,
            &config,
            move || {
                let _ = ready_tx.send(());
            },
            async {
                let _ = stopped.await;
            },
            portcullis_frontend::Reloads::none(),
        ));
        result.unwrap();
    });
    ready_rx.recv_timeout(LOG_WAIT).expect("popd ready");
    stop_tx
}

/// A POP3 login (STLS, USER/PASS) from `source` through popd.
fn pop_login(port: u16, ca: &Path, source: &str) -> String {
    const SCRIPT: &str = r#"
import poplib, socket, ssl, sys
port, ca, source = int(sys.argv[1]), sys.argv[2], sys.argv[3]
class POP3(poplib.POP3):
    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, (source, 0))
p = POP3("127.0.0.1", port, timeout=30)
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
p.stls(context=ctx)
p.user("alice")
print(p.pass_("alice-pw").decode())
p.quit()
"#;
    let (ok, out) = tool(
        "python3",
        &[
            "-c",
            SCRIPT,
            &port.to_string(),
            ca.to_str().unwrap(),
            source,
        ],
    );
    assert!(ok, "{out}");
    out
}

#[test]
fn pop_before_smtp_through_redis_is_accepted_by_two_front_ends_within_the_ttl_and_refused_after() {
    let redis = Redis::shared();
    let dovecot = Dovecot::shared();
    let local = format!("redisurl = {:?}\n", redis.url());
    let mmp = "preauth = true\nauthservicettl = 2\n";
    let a = start_with(&local, "", mmp);
    let b = start_with(&local, "", mmp);
    // popd beside smtpd A (its certificate database), on the same Redis.
    let pop_port = free_port();
    let (admin, admin_pw) = dovecot.master_user();
    let dir = a.dir.path();
    std::fs::write(dir.join("store-ca.pem"), dovecot.ca_pem()).unwrap();
    let smtpd_config = std::fs::read_to_string(dir.join("portcullis.toml")).unwrap();
    let pop_config = smtpd_config
        .replace("[service.smtp]", &format!("[service.pop]\nport = {pop_port}\nsslport = 0\n[service.smtp]"))
        .replace(
            "[mmp]\n",
            &format!(
                "[mmp]\nstorehosts = [\"127.0.0.1:{}\"]\nbacksidetls = \"starttls\"\n\
                 backsidecafile = \"store-ca.pem\"\nstoreadmin = {admin:?}\nstorepassword = {admin_pw:?}\n",
                dovecot.pop3_port()
            ),
        );
    let pop_path = dir.join("pop.toml");
    std::fs::write(&pop_path, pop_config).unwrap();
    let _popd = popd(pop_path);
    // Before any POP login: refused.
    let source = "127.0.0.3";
    let noauth = |smtpd: &Smtpd, from: &str, rcpt: &str| {
        let mut s = alice("noauth", smtpd.port, rcpt, rcpt);
        s.from = from;
        s.source = source;
        smtplib(smtpd, &s)
    };
    let r = noauth(
        &a,
        "alice@example.com",
        "popsmtp-before-l0@elsewhere.example",
    );
    assert!(field(&r, "send").starts_with("530 5.7.0"), "{r:?}");
    assert!(pop_login(pop_port, &a.ca, source).starts_with("+OK"));
    // Within the TTL, both front ends take a message without AUTH, as
    // alice (Postfix's view), from alice's address only.
    for (smtpd, mark) in [(&a, "popsmtp-a-l1"), (&b, "popsmtp-b-l2")] {
        let rcpt = format!("{mark}@elsewhere.example");
        let r = noauth(smtpd, "alice@example.com", &rcpt);
        if field(&r, "send").starts_with("530") {
            // The 2-second TTL passed on a slow machine: log in again.
            assert!(pop_login(pop_port, &a.ca, source).starts_with("+OK"));
            let r = noauth(smtpd, "alice@example.com", &rcpt);
            assert!(field(&r, "send").starts_with("ok"), "{r:?}");
        } else {
            assert!(
                field(&r, "send").starts_with("ok"),
                "{r:?}\n{}",
                smtpd.log().text()
            );
        }
        let line = postfix_client_line(&rcpt);
        assert!(
            line.contains("[127.0.0.3]") && line.contains("sasl_username=alice"),
            "{line}"
        );
    }
    assert!(pop_login(pop_port, &a.ca, source).starts_with("+OK"));
    let r = noauth(&b, "bob@example.com", "popsmtp-wrong-l3@elsewhere.example");
    assert!(
        ["553 5.7.1", "530 5.7.0"]
            .iter()
            .any(|p| field(&r, "send").starts_with(p)),
        "{r:?}"
    );
    // After the TTL: refused again (polled, with a generous deadline).
    let deadline = std::time::Instant::now() + LOG_WAIT;
    loop {
        let r = noauth(
            &a,
            "alice@example.com",
            "popsmtp-after-l4@elsewhere.example",
        );
        let send = field(&r, "send").to_owned();
        if send.starts_with("530 5.7.0") {
            break;
        }
        assert!(send.starts_with("ok"), "{r:?}");
        assert!(
            std::time::Instant::now() < deadline,
            "still accepted after the TTL"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let r = noauth(
        &b,
        "alice@example.com",
        "popsmtp-after-l5@elsewhere.example",
    );
    assert!(field(&r, "send").starts_with("530 5.7.0"), "{r:?}");
}

#[test]
fn hostile_logins_are_refused_without_taking_the_relay_out_of_service() {
    // Users whose canonical names XCLIENT LOGIN may not be able to carry
    // (reserved, too long once xtext-encoded).
    let dir = tempfile::tempdir().unwrap();
    // 90 `+` are 270 characters of xtext (`+2B` each), over 255.
    let long = "+".repeat(90);
    std::fs::write(
        dir.path().join("users.passwd"),
        format!(
            "[UNAVAILABLE]:{{PLAIN}}pw-1::::::mail=r@example.com\n\
             {long}:{{PLAIN}}pw-2::::::mail=l@example.com\n\
             carl:{{PLAIN}}pw-4::::::mail=carl@example.com\n"
        ),
    )
    .unwrap();
    let smtpd = start_in(dir, "userfile = \"users.passwd\"", "", "");
    let send = |user: &str, password: &str, from: &str, mark: &str| -> (String, String) {
        let rcpt = format!("{mark}@elsewhere.example");
        let mut s = alice("starttls-plain", smtpd.port, &rcpt, mark);
        s.user = user;
        s.password = password;
        s.from = from;
        let r = smtplib(&smtpd, &s);
        (field(&r, "auth").to_owned(), field(&r, "send").to_owned())
    };
    for (user, pw, from, mark) in [
        (
            "[UNAVAILABLE]",
            "pw-1",
            "r@example.com",
            "login-reserved-m1",
        ),
        (long.as_str(), "pw-2", "l@example.com", "login-long-m2"),
    ] {
        let (auth, sent) = send(user, pw, from, mark);
        // Refused before any relay sees it, or (when the canonical form
        // adds a domain) carried as an ordinary login.
        if auth.starts_with("ok") {
            assert!(
                sent.starts_with("550 5.7.1") || sent.starts_with("ok"),
                "{user}: {sent}"
            );
        }
    }
    // The one relay is still in service.
    let (auth, sent) = send("carl", "pw-4", "carl@example.com", "login-after-m4");
    assert!(
        auth.starts_with("ok") && sent.starts_with("ok"),
        "{auth} {sent}\n{}",
        smtpd.log().text()
    );
    let line = postfix_client_line("login-after-m4@elsewhere.example");
    assert!(line.contains("sasl_username=carl"), "{line}");
    assert!(
        !smtpd.log().text().contains("SMTP relay failed"),
        "{}",
        smtpd.log().text()
    );
}

#[test]
fn check_accepts_a_good_configuration_and_refuses_one_without_relays_with_2() {
    let dir = tempfile::tempdir().unwrap();
    let good = configure(dir.path(), free_port(), free_port(), "", "", "");
    let check =
        |config: &Path| daemon::check(Path::new(env!("CARGO_BIN_EXE_smtpd")), config).unwrap();
    let ok = check(&good);
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");
    let text = std::fs::read_to_string(&good).unwrap();
    let broken = dir.path().join("broken.toml");
    let without = text
        .lines()
        .filter(|l| !l.starts_with("smtprelays"))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&broken, without).unwrap();
    let bad = check(&broken);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("mmp.smtprelays"),
        "{bad:?}"
    );
}

#[test]
fn the_service_filter_refuses_before_the_greeting() {
    let smtpd = start("domainnotallowed = \"smtp: 127.0.0.2\"", "");
    const GREETING: &str = r#"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 30, (sys.argv[2], 0))
print(s.makefile("rb").readline().decode().strip())
"#;
    let port = smtpd.port.to_string();
    let (ok, denied) = tool("python3", &["-c", GREETING, &port, "127.0.0.2"]);
    assert!(ok && denied.starts_with("554 5.7.1"), "{denied}");
    let (ok, allowed) = tool("python3", &["-c", GREETING, &port, "127.0.0.3"]);
    assert!(ok && allowed.starts_with("220 "), "{allowed}");
    let log = smtpd
        .log()
        .wait_for("denied by the service access filter", 1);
    assert!(log.contains("client=127.0.0.2:"), "{log}");
}

#[test]
fn sigterm_ends_a_waiting_session_with_421() {
    use std::io::{BufRead, BufReader, Write};
    let mut smtpd = start("", "");
    let stream = std::net::TcpStream::connect(("127.0.0.1", smtpd.port)).unwrap();
    stream.set_read_timeout(Some(LOG_WAIT)).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("220 "), "{line}");
    (&stream).write_all(b"NOOP\r\n").unwrap();
    line.clear();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("250 "), "{line}");
    let status = Command::new("kill")
        .args(["-TERM", &smtpd.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    line.clear();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("421 4.3.2"), "{line}");
    assert!(smtpd.daemon.wait().unwrap().success());
}

#[test]
fn a_client_that_never_authenticates_is_closed_at_the_preauth_timeout_however_often_it_talks() {
    use std::io::{BufRead, BufReader, Write};
    let smtpd = start("", "preauthtimeout = 2");
    let stream = std::net::TcpStream::connect(("127.0.0.1", smtpd.port)).unwrap();
    stream.set_read_timeout(Some(LOG_WAIT)).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("220 "), "{line}");
    // Keep talking: every NOOP is answered, until the deadline closes it
    // (a bounded number of NOOPs, 50 ms apart: far more than two seconds).
    let mut answered = 0;
    let mut last = None;
    for _ in 0..1200 {
        if (&stream).write_all(b"NOOP\r\n").is_err() {
            last = Some(String::new());
            break;
        }
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            last = Some(String::new());
            break;
        }
        if !line.starts_with("250 ") {
            last = Some(line.clone());
            break;
        }
        answered += 1;
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let last = last.unwrap_or_else(|| panic!("never closed after {answered} NOOPs"));
    assert!(
        last.starts_with("421 4.4.2"),
        "{last:?} after {answered} NOOPs"
    );
    smtpd
        .log()
        .wait_for("no authentication within mmp.preauthtimeout", 1);
}
