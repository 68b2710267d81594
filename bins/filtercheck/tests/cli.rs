//! Runs the `filtercheck` binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

fn filtercheck(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_filtercheck"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run filtercheck")
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn clean_files_pass() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("allow"),
        "imap, pop: .example.com 192.0.2.0/24\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("deny"), "ALL: ALL\n").unwrap();
    let o = filtercheck(&["--allow", "allow", "--deny", "deny"], dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("no problems found"));
}

#[test]
fn syntax_errors_with_position_and_token() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("allow"),
        "imap: ok\n\npop: [2001:db8::zz]\n",
    )
    .unwrap();
    let o = filtercheck(&["--allow", "allow"], dir.path());
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("allow:3:6: malformed [IPv6] address or [net]/len at `[2001:db8::zz]`"),
        "{}",
        text(&o)
    );
    let o = filtercheck(&["--ldap", "+imap:ALL$pop:ALL"], dir.path());
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("ldap#1:1:11:"), "{}", text(&o));
}

#[test]
fn warnings() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("allow"),
        "imapx: 192.0.2.1\n\
         ALL: @staff\n\
         imap: 10.1.2.3/8\n\
         pop: 192.0.2.0/24\n\
         pop: 192.0.2.7\n",
    )
    .unwrap();
    let o = filtercheck(&["--allow", "allow"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o);
    assert!(
        out.contains("allow:1:1: warning: unknown service name") && out.contains("`imapx`"),
        "{out}"
    );
    assert!(
        out.contains("allow:2:1: warning: netgroup without a netgroup provider"),
        "{out}"
    );
    assert!(
        out.contains("allow:3:1: warning: network has bits set outside its mask"),
        "{out}"
    );
    assert!(
        out.contains("allow:3:1: warning: filter can never match"),
        "{out}"
    );
    assert!(out.contains("allow:5:1: warning: filter is redundant: shadowed by the earlier allow filter at allow:4"), "{out}");
    assert!(out.contains("implicit deny"), "{out}");
    // With a provider declared, no netgroup warning.
    let o = filtercheck(&["--allow", "allow", "--netgroups"], dir.path());
    assert!(!text(&o).contains("netgroup without"), "{}", text(&o));
}

#[test]
fn deny_shadowed_by_allow() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("allow"), "ALL: .example.com\n").unwrap();
    std::fs::write(dir.path().join("deny"), "imap: bad.example.com\nALL: ALL\n").unwrap();
    let o = filtercheck(&["--allow", "allow", "--deny", "deny"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("deny:1:1: warning: filter never takes effect"),
        "{}",
        text(&o)
    );
}

#[test]
fn config_file_values() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.toml"),
        "[service.imap]\ndomainallowed = \"imap: 192.0.2.0/24\"\n[service.pop]\ndomainnotallowed = \"pop: ALL\"\n",
    )
    .unwrap();
    let o = filtercheck(&["--config", "p.toml"], dir.path());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("service.imap.domainallowed: only Allow filters apply to imap"),
        "{}",
        text(&o)
    );
}

#[test]
fn rules_against_their_parameters_action() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("portcullis.toml"),
        "[service.imap]\ndomainnotallowed = \"+imap:ALL$-imap:192.0.2.9\"\n\n\
         [service.pop]\ndomainallowed = \"+pop:ALL$-pop:192.0.2.9\"\n",
    )
    .unwrap();
    let o = filtercheck(&["--config", "portcullis.toml"], dir.path());
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("service.imap.domainnotallowed:1:1: warning: an Allow (`+`) rule in a parameter of Deny filters grants access"),
        "{out}"
    );
    assert!(
        out.contains("service.pop.domainallowed:1:")
            && out.contains("a Deny (`-`) rule in a parameter of Allow filters"),
        "{out}"
    );
    // A rule whose action matches its parameter is not reported.
    assert_eq!(out.matches("in a parameter of").count(), 2, "{out}");
}
