//! Runs the `filtertest` binary: verdict words, explanations, exit codes,
//! batch mode, `--config`, and syntax errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn filtertest(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_filtertest"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run filtertest")
}

/// filtertest in batch mode over the `files()` policy, all pipes open.
fn batch_child(dir: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_filtertest"))
        .args([
            "--allow",
            "allow",
            "--deny",
            "deny",
            "--no-lookups",
            "--batch",
        ])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn files() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("allow"),
        "# site policy\nALL: LOCAL\nimap, pop: .siroe.com EXCEPT externalserver.siroe.com\nhttp: 192.0.2.0/24\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("deny"), "ALL: ALL\n").unwrap();
    dir
}

#[test]
fn granted_denied_and_explanations() {
    let dir = files();
    let o = filtertest(
        &[
            "--allow",
            "allow",
            "--deny",
            "deny",
            "imap",
            "a.siroe.com[198.51.100.1]",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = text(&o);
    assert!(out.starts_with("granted\n"), "{out}");
    assert!(out.contains("allow line 3 (rule 2)"), "{out}");
    assert!(out.contains("client pattern `.siroe.com`"), "{out}");

    let o = filtertest(
        &[
            "--allow",
            "allow",
            "--deny",
            "deny",
            "imap",
            "externalserver.siroe.com[198.51.100.2]",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o);
    assert!(out.starts_with("denied\n"), "{out}");
    assert!(out.contains("deny line 1"), "{out}");

    // An address-only decision needs no lookup at all.
    let o = filtertest(
        &["--allow", "allow", "--deny", "deny", "http", "192.0.2.77"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // --no-lookups: the missing name counts as unknown.
    let o = filtertest(
        &[
            "--allow",
            "allow",
            "--deny",
            "deny",
            "--no-lookups",
            "imap",
            "198.51.100.9",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("name unknown"), "{}", text(&o));
}

#[test]
fn users_and_servers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("allow"), "imap@192.0.2.1: alice@ALL\n").unwrap();
    std::fs::write(dir.path().join("deny"), "ALL: ALL\n").unwrap();
    let run = |svc: &str, client: &str| {
        filtertest(
            &[
                "--allow",
                "allow",
                "--deny",
                "deny",
                "--no-lookups",
                svc,
                client,
            ],
            dir.path(),
        )
        .status
        .code()
    };
    assert_eq!(
        run("imap@192.0.2.1", "alice@h.example[198.51.100.1]"),
        Some(0)
    );
    assert_eq!(
        run("imap@192.0.2.2", "alice@h.example[198.51.100.1]"),
        Some(1)
    );
    assert_eq!(
        run("imap@192.0.2.1", "bob@h.example[198.51.100.1]"),
        Some(1)
    );
}

#[test]
fn tempfail_is_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("deny"), "ALL: DNSSPOOFER\n").unwrap();
    // With lookups off, an unknown name is not a spoofer: granted.
    let o = filtertest(
        &["--deny", "deny", "--no-lookups", "imap", "192.0.2.1"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // A name server on loopback that never answers: the lookup fails
    // temporarily, and the verdict depends on it.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let server = silent.local_addr().unwrap().to_string();
    let against_silent_dns = |client: &str| {
        let args = [
            "--deny",
            "deny",
            "--dns-server",
            &server,
            "--dns-timeout",
            "1",
            "imap",
            client,
        ];
        filtertest(&args, dir.path())
    };
    // A client given by address (its name needed), then one given by name
    // only (its address needed): tempfail either way, never a guess.
    // `[2001:db8::1]` is an address (its name looked up like any other),
    // not a name.
    for (client, why) in [
        ("192.0.2.1", "client host name"),
        ("[2001:db8::1]", "client host name"),
        ("mail.example.com", "address could not be looked up"),
    ] {
        let o = against_silent_dns(client);
        assert_eq!(o.status.code(), Some(3), "{}", text(&o));
        assert!(text(&o).starts_with("tempfail\n"), "{}", text(&o));
        assert!(text(&o).contains(why), "{}", text(&o));
    }
    drop(silent);
}

#[test]
fn batch_mode_prints_one_word_per_query() {
    let dir = files();
    let mut child = batch_child(dir.path());
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"imap 198.51.100.1 a.siroe.com\n\
              imap 198.51.100.2 externalserver.siroe.com\n\
              # comment\n\
              http 192.0.2.5\n\
              pop 198.51.100.3 printer -\n\
              smtp not-an-address\n\
              imap 198.51.100.4\n",
        )
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        text(&o),
        "granted\ndenied\ngranted\ngranted\nerror\ndenied\n"
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("line 6"));
}

#[test]
fn config_file_filters() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("portcullis.toml"),
        "[service.imap]\ndomainallowed = \"imap: .example.com 10.\"\ndomainnotallowed = \"imap: ALL\"\n\n\
         [service.pop]\ndomainallowed = \"+pop:192.0.2.1\"\n\n\
         [service.http]\ndomainallowed = \"+http:ALL EXCEPT 203.0.113.$-http:203.0.113.7\"\n",
    )
    .unwrap();
    let run = |svc: &str, client: &str| {
        filtertest(
            &["--config", "portcullis.toml", "--no-lookups", svc, client],
            dir.path(),
        )
    };
    let o = run("imap", "mail.example.com[198.51.100.1]");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("service.imap.domainallowed line 1"),
        "{}",
        text(&o)
    );
    assert_eq!(run("imap", "10.1.1.1").status.code(), Some(0));
    assert_eq!(run("imap", "198.51.100.1").status.code(), Some(1));
    // pop: allow only -> implicit deny.
    assert_eq!(run("pop", "192.0.2.1").status.code(), Some(0));
    let o = run("pop", "192.0.2.2");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("only Allow filters apply"),
        "{}",
        text(&o)
    );
    // http: the LDAP form in domainallowed keeps its "-" rule a Deny.
    assert_eq!(run("http", "192.0.2.2").status.code(), Some(0));
    let o = run("http", "203.0.113.7");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // 203.0.113.8 matches neither rule; with a Deny filter present, no
    // match grants.
    assert_eq!(run("http", "203.0.113.8").status.code(), Some(0));
    // smtp: no filters -> granted.
    assert_eq!(run("smtp", "192.0.2.2").status.code(), Some(0));
}

#[test]
fn user_and_domain_levels_combine() {
    let dir = files();
    let o = filtertest(
        &[
            "--allow",
            "allow",
            "--deny",
            "deny",
            "--no-lookups",
            "--user-filter",
            "+imap,pop:ALL$-http:*",
            "http",
            "192.0.2.9",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("user level (decisive)"), "{}", text(&o));
}

#[test]
fn syntax_and_usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad"), "imap: ok\npop: 10.0.0.0/99\n").unwrap();
    let o = filtertest(&["--allow", "bad", "imap", "192.0.2.1"], dir.path());
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad:2:6:") && err.contains("`10.0.0.0/99`"),
        "{err}"
    );
    let o = filtertest(&["imap", "192.0.2.1"], dir.path());
    assert_eq!(o.status.code(), Some(2));
    let o = filtertest(&["--allow", "bad", "--bogus"], dir.path());
    assert_eq!(o.status.code(), Some(2));
    let o = filtertest(
        &["--user-filter", "imap:ALL", "imap", "192.0.2.1"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn implicit_tls_services_use_the_base_services_parameters() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("portcullis.toml"),
        "[service.imap]\ndomainnotallowed = \"ALL: ALL\"\n\n\
         [service.pop]\ndomainallowed = \"+pops:ALL$+pop:192.0.2.100\"\n",
    )
    .unwrap();
    let run = |svc: &str, client: &str| {
        filtertest(
            &["--config", "portcullis.toml", "--no-lookups", svc, client],
            dir.path(),
        )
    };
    for svc in ["imap", "imaps", "IMAPS"] {
        let o = run(svc, "10.1.2.3");
        assert_eq!(o.status.code(), Some(1), "{svc}: {}", text(&o));
        assert!(
            text(&o).contains("service.imap.domainnotallowed"),
            "{svc}: {}",
            text(&o)
        );
    }
    // TLS from anywhere, plain only from the proxy.
    assert_eq!(run("pops", "203.0.113.5").status.code(), Some(0));
    assert_eq!(run("pop3s", "203.0.113.5").status.code(), Some(0));
    assert_eq!(run("pop", "203.0.113.5").status.code(), Some(1));
    assert_eq!(run("pop", "192.0.2.100").status.code(), Some(0));
    // IPv6 clients in brackets.
    assert_eq!(run("imaps", "[2001:db8::1]").status.code(), Some(1));
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let dir = files();
    let mut child = batch_child(dir.path());
    // The reader goes away before anything is written (`| head -0`).
    drop(child.stdout.take());
    let mut input = String::new();
    for i in 0..5000 {
        input.push_str(&format!("imap 198.51.100.{} a.siroe.com\n", i % 250 + 1));
    }
    // filtertest may stop reading once its output is gone: a failed write
    // to its stdin is expected then.
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.is_empty(), "stderr: {err}");
    assert_eq!(o.status.code(), Some(0));
}
