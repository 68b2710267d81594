//! `configutil` as operators and scripts use it.

use std::path::Path;
use std::process::{Command, Output};

fn configutil(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_configutil"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("PORTCULLIS_CONFIG")
        .output()
        .expect("configutil runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const COMMENTED: &str = "# Site configuration -- keep this comment\n\
[service.imap]\n\
# who may use IMAP\n\
domainallowed = \"imap: .example.com\"  # trailing\n";

#[test]
fn round_trips_every_parameter_type() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("portcullis.toml");
    let cases = [
        ("service.imap.allowanonymouslogin", "yes", "true"),
        ("sasl.default.auto_transition", "0", "false"),
        ("service.http.sessiontimeout", "3600", "3600"),
        ("local.ugldapport", "636", "636"),
        (
            "local.ugldapbasedn",
            "o=example.com, o=isp",
            "o=example.com, o=isp",
        ),
        ("local.ugldapbindcred", "s3cr\"et'", "s3cr\"et'"),
        (
            "sasl.default.mech_list",
            "SCRAM-SHA-256   PLAIN",
            "SCRAM-SHA-256 PLAIN",
        ),
        (
            "local.imap.sslnicknames",
            "rsa-cert, token:ec-cert",
            "rsa-cert,token:ec-cert",
        ),
        (
            "service.pop.domainnotallowed",
            "pop: ALL EXCEPT .example.com",
            "pop: ALL EXCEPT .example.com",
        ),
        (
            "mmp.smtprelays",
            "relay1.example.com relay2.example.com:2525",
            "relay1.example.com relay2.example.com:2525",
        ),
        ("mmp.PreAuth", "on", "true"),
    ];
    for (name, value, shown) in cases {
        let o = configutil(&cfg, &["-o", name, "-v", value]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let o = configutil(&cfg, &["-o", name]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        assert_eq!(stdout(&o).trim_end_matches('\n'), shown, "{name}");
    }
    // The listing shows what is set, secrets masked.
    let list = stdout(&configutil(&cfg, &[]));
    assert!(list.contains("mmp.preauth = true\n"), "{list}");
    assert!(list.contains("local.ugldapbindcred = ********\n"), "{list}");
    assert!(!list.contains("s3cr"), "{list}");
    assert!(!list.contains("service.imap.port"), "{list}"); // not a parameter name
    // -p limits to a prefix.
    let p = stdout(&configutil(&cfg, &["-p", "local.ugldap"])); // not a parameter name: a prefix
    assert_eq!(p.lines().count(), 3, "{p}");
    // An unset parameter prints its default.
    let o = configutil(&cfg, &["-o", "mmp.authservicettl"]);
    assert_eq!(stdout(&o), "900\n");
    // -v "" removes the parameter again.
    assert!(
        configutil(&cfg, &["-o", "local.ugldapport", "-v", ""])
            .status
            .success()
    );
    assert_eq!(
        stdout(&configutil(&cfg, &["-o", "local.ugldapport"])),
        "389\n"
    );
    assert!(!stdout(&configutil(&cfg, &[])).contains("ugldapport"));
}

#[test]
fn keeps_comments_and_layout() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("portcullis.toml");
    std::fs::write(&cfg, COMMENTED).unwrap();
    let o = configutil(
        &cfg,
        &[
            "-o",
            "service.imap.domainallowed",
            "-v",
            "imap: .example.org",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = configutil(&cfg, &["-o", "mmp.failovertimeout", "-v", "20"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(
        text.starts_with("# Site configuration -- keep this comment\n"),
        "{text}"
    );
    assert!(
        text.contains("# who may use IMAP\ndomainallowed = \"imap: .example.org\"  # trailing\n"),
        "{text}"
    );
    assert!(text.contains("[mmp]\nfailovertimeout = 20\n"), "{text}");
}

#[test]
fn errors_leave_the_file_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("portcullis.toml");
    std::fs::write(&cfg, COMMENTED).unwrap();
    let before = std::fs::read(&cfg).unwrap();
    let o = configutil(&cfg, &["-o", "service.imap.domainalowed", "-v", "x"]); // not a parameter name
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("did you mean `service.imap.domainallowed`?"),
        "{}",
        stderr(&o)
    );
    let o = configutil(
        &cfg,
        &["-o", "service.http.sessiontimeout", "-v", "two hours"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("expected an integer"), "{}", stderr(&o));
    let o = configutil(&cfg, &["-o", "local.ugldapusessl", "-v", "2"]);
    assert_eq!(o.status.code(), Some(1));
    let o = configutil(
        &cfg,
        &["-o", "service.imap.allowanonymouslogin", "-v", "perhaps"],
    );
    assert_eq!(o.status.code(), Some(1));
    // An import with one bad line changes nothing either.
    let import = dir.path().join("import.txt");
    std::fs::write(&import, "mmp.preauth=yes\nmmp.failovertimeout=soon\n").unwrap();
    let o = configutil(&cfg, &["-i", import.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(std::fs::read(&cfg).unwrap(), before);
    // A file that does not parse is reported with its position and kept.
    std::fs::write(&cfg, "service.imap.domainallowed = \"unterminated\n").unwrap();
    let o = configutil(&cfg, &["-o", "mmp.preauth", "-v", "1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("line 1"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(&cfg).unwrap(),
        "service.imap.domainallowed = \"unterminated\n"
    );
    // Usage errors exit 2.
    let o = configutil(&cfg, &["-v", "1"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn import_sets_all_lines() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("portcullis.toml");
    let import = dir.path().join("import.txt");
    std::fs::write(
        &import,
        "# from the old server\nmmp.preauth = yes\nmmp.authservicettl=1800\n",
    )
    .unwrap();
    let o = configutil(&cfg, &["-i", import.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&configutil(&cfg, &["-o", "mmp.authservicettl"])),
        "1800\n"
    );
    assert_eq!(stdout(&configutil(&cfg, &["-o", "mmp.preauth"])), "true\n");
}

#[test]
fn help_shows_defaults_and_descriptions() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("none.toml");
    let o = configutil(&cfg, &["-H", "-o", "sasl.default.ldap.searchfilter"]);
    assert!(o.status.success());
    let s = stdout(&o);
    assert!(
        s.contains("default: \"(&(uid=%U)(objectclass=inetmailuser))\""),
        "{s}"
    );
    let o = configutil(&cfg, &["-H", "-o", "service.imap.domainallowed"]);
    assert!(
        stdout(&o).contains("or an array of such strings"),
        "{}",
        stdout(&o)
    );
    let all = stdout(&configutil(&cfg, &["-H"]));
    for p in portcullis_config::PARAMETERS {
        assert!(
            all.contains(&format!("{}\n    type: ", p.name)),
            "{}",
            p.name
        );
    }
}

#[test]
fn parallel_writers_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("portcullis.toml");
    std::fs::write(&cfg, COMMENTED).unwrap();
    // 20 distinct parameters that take an integer or a string.
    let names: Vec<&str> = portcullis_config::PARAMETERS
        .iter()
        .filter(|p| {
            matches!(
                p.kind,
                portcullis_config::Kind::String
                    | portcullis_config::Kind::Secret
                    | portcullis_config::Kind::List
                    | portcullis_config::Kind::CommaList
            ) || matches!(p.kind, portcullis_config::Kind::Integer { max, .. } if max > 100)
        })
        .map(|p| p.name)
        .take(20)
        .collect();
    assert_eq!(names.len(), 20);
    let children: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            Command::new(env!("CARGO_BIN_EXE_configutil"))
                .arg("--config")
                .arg(&cfg)
                .args(["-o", name, "-v", &(100 + i).to_string()])
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let config = portcullis_config::Config::load(&cfg).unwrap();
    for (i, name) in names.iter().enumerate() {
        assert_eq!(
            config.string(name).unwrap(),
            (100 + i).to_string(),
            "{name}"
        );
    }
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(
        text.starts_with("# Site configuration -- keep this comment\n"),
        "{text}"
    );
}

#[test]
fn unparsable_filters_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("portcullis.toml");
    std::fs::write(&cfg, COMMENTED).unwrap();
    let before = std::fs::read(&cfg).unwrap();
    let o = configutil(
        &cfg,
        &["-o", "service.imap.domainallowed", "-v", "imap: ALL EXCEPT"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("service.imap.domainallowed"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(&cfg).unwrap(), before);
}

#[test]
fn quoted_dotted_keys_and_inline_tables_are_changed_where_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("portcullis.toml");
    let text = "# Site configuration\n\
\"service.imap.domainallowed\" = \"imap: .example.com\"\n\
service = { pop = { domainallowed = \"pop: .example.com\" } }\n";
    std::fs::write(&cfg, text).unwrap();
    for (name, value) in [
        ("service.imap.domainallowed", "imap: .example.org"),
        ("service.pop.domainallowed", "pop: .example.org"),
    ] {
        let o = configutil(&cfg, &["-o", name, "-v", value]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        assert_eq!(
            stdout(&configutil(&cfg, &["-o", name])),
            format!("{value}\n")
        );
    }
    assert_eq!(
        std::fs::read_to_string(&cfg).unwrap(),
        text.replace(".example.com", ".example.org")
    );
    // Unsetting the first key keeps the header comment.
    let o = configutil(&cfg, &["-o", "service.imap.domainallowed", "-v", ""]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(&cfg).unwrap(),
        "# Site configuration\nservice = { pop = { domainallowed = \"pop: .example.org\" } }\n"
    );
}

#[test]
fn shows_filters_of_several_entries_one_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("portcullis.toml");
    std::fs::write(
        &cfg,
        "[service.imap]\n\
domainnotallowed = [\"ALL: ALL\"]\n\
domainallowed = [\"imap: .example.com\", \"imap: 192.168.1.\"]\n\
[service.pop]\n\
domainallowed = '''\npop: .example.com\npop: 10.\n'''\n",
    )
    .unwrap();
    let o = configutil(&cfg, &["-o", "service.imap.domainallowed"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "imap: .example.com\nimap: 192.168.1.\n");
    let o = configutil(&cfg, &["-o", "service.pop.domainallowed"]);
    assert_eq!(stdout(&o), "pop: .example.com\npop: 10.\n");
    let list = stdout(&configutil(&cfg, &["-p", "service.imap"]));
    assert_eq!(
        list,
        "service.imap.domainallowed = imap: .example.com\n    imap: 192.168.1.\n\
service.imap.domainnotallowed = ALL: ALL\n"
    );
    // A value of several lines is set as a multi-line string.
    let o = configutil(
        &cfg,
        &[
            "-o",
            "service.imap.domainallowed",
            "-v",
            "imap: a.example\nimap: b.example",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(
        text.contains("domainallowed = '''\nimap: a.example\nimap: b.example'''\n"),
        "{text}"
    );
}
