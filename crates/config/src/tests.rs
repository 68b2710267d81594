use proptest::prelude::*;

use super::*;

const SAMPLE: &str = r#"# Portcullis configuration
# SASL settings
sasl.default.mech_list = "PLAIN SCRAM-SHA-256" # preferred first

[service.imap]
# anonymous access is for the public archive
allowanonymouslogin = true
domainallowed = "imap: .example.com"

[mmp]
PreAuth = "yes"
AuthServiceTTL = 1800
"#;

#[test]
fn parses_dotted_tables_and_case() {
    let c = Config::parse(SAMPLE).unwrap();
    assert_eq!(
        c.list("sasl.default.mech_list").unwrap(),
        vec!["PLAIN", "SCRAM-SHA-256"]
    );
    assert!(c.boolean("service.imap.allowanonymouslogin").unwrap());
    assert!(c.boolean("mmp.preauth").unwrap());
    assert_eq!(c.integer("mmp.authservicettl").unwrap(), Some(1800));
    assert_eq!(
        c.string("service.imap.domainallowed").unwrap(),
        "imap: .example.com"
    );
    // Defaults.
    assert_eq!(
        c.integer("service.http.sessiontimeout").unwrap(),
        Some(7200)
    );
    assert_eq!(
        c.integer("sasl.default.ldap.searchfordomain").unwrap(),
        Some(1)
    );
    assert_eq!(
        c.string("sasl.default.ldap.searchfilter").unwrap(),
        "(&(uid=%U)(objectclass=inetmailuser))"
    );
    assert_eq!(c.integer("service.imap.plaintextmincipher").unwrap(), None);
    assert!(!c.is_set("service.http.sessiontimeout"));
    assert!(c.is_set("MMP.PREAUTH"));
}

#[test]
fn service_filters_name_their_parameter_and_keep_each_rules_action() {
    use portcullis_accessfilter::Action;
    let c = Config::parse(
        r#"
[service.imap]
domainallowed = "+imap:ALL$-imap:bad.example"
domainnotallowed = "imap: 10.0.0.0/8"
[service.pop]
domainallowed = "pop: .example.com"
"#,
    )
    .unwrap();
    let imap = c.service_filters("imap").unwrap();
    let names: Vec<_> = imap.iter().map(|s| s.parameter.as_str()).collect();
    assert_eq!(
        names,
        [
            "service.imap.domainallowed",
            "service.imap.domainnotallowed"
        ]
    );
    let actions = |i: usize| -> Vec<Action> {
        imap[i]
            .filters
            .as_ref()
            .unwrap()
            .iter()
            .map(|f| f.action)
            .collect()
    };
    // The LDAP form keeps its own `-`; the file form takes the parameter's.
    assert_eq!(actions(0), [Action::Allow, Action::Deny]);
    assert_eq!(actions(1), [Action::Deny]);
    // Unset parameters hold no filters.
    let smtp = c.service_filters("smtp").unwrap();
    assert_eq!(smtp.len(), 2);
    assert!(smtp.iter().all(|s| s.filters.as_ref().unwrap().is_empty()));
    let pop = c.service_filters("pop").unwrap();
    assert_eq!(pop[0].parameter, "service.pop.domainallowed");
    assert_eq!(pop[0].filters.as_ref().unwrap().len(), 1);
}

#[test]
fn tls_and_alias_service_names_use_the_base_services_parameters() {
    let c = Config::parse(
        r#"
service.imap.domainnotallowed = "imap: 10.0.0.0/8"
service.pop.domainallowed = "pop: .example.com"
service.smtp.domainallowed = "smtp: 192.168.1."
service.http.domainnotallowed = "http: bad.example"
"#,
    )
    .unwrap();
    let cases = [
        ("imaps", "imap"),
        ("IMAPS", "imap"),
        ("pop3", "pop"),
        ("pops", "pop"),
        ("pop3s", "pop"),
        ("smtps", "smtp"),
        ("submissions", "smtp"),
        ("https", "http"),
    ];
    for (name, base) in cases {
        let got = c.service_filters(name).unwrap();
        let plain = c.service_filters(base).unwrap();
        let params: Vec<_> = got.iter().map(|s| s.parameter.clone()).collect();
        assert_eq!(
            params,
            [
                format!("service.{base}.domainallowed"),
                format!("service.{base}.domainnotallowed")
            ],
            "{name}"
        );
        let count = |v: &[ServiceFilters]| -> usize {
            v.iter().map(|s| s.filters.as_ref().unwrap().len()).sum()
        };
        assert_eq!(count(&got), 1, "{name}");
        assert_eq!(count(&got), count(&plain), "{name}");
    }
    // Every accepted name maps to parameters the registry has.
    for (name, _) in SERVICE_PARAMETER_NAMES {
        for sf in c.service_filters(name).unwrap() {
            assert!(registry::lookup(&sf.parameter).is_some(), "{name}");
        }
    }
}

#[test]
fn a_service_without_parameters_is_an_error_not_an_empty_list() {
    let c = Config::default();
    for name in ["ftp", "imap4", "", "service.imap", "smime"] {
        let e = c.service_filters(name).unwrap_err();
        assert!(
            matches!(&e, Error::UnknownService { service } if service == name),
            "{name}: {e:?}"
        );
        assert!(e.to_string().contains("imaps"), "{e}");
    }
}

#[test]
fn every_default_parses() {
    let c = Config::default();
    for p in PARAMETERS {
        let v = c.value(p.name).unwrap();
        assert_eq!(v.is_some(), p.default.is_some(), "{}", p.name);
    }
}

#[test]
fn set_keeps_comments_and_layout() {
    let mut c = Config::parse(SAMPLE).unwrap();
    c.set("sasl.default.mech_list", "SCRAM-SHA-256").unwrap();
    c.set("service.imap.allowanonymouslogin", "0").unwrap();
    c.set("mmp.authservicettl", "900").unwrap();
    let out = c.to_string();
    let expected = SAMPLE
        .replace("\"PLAIN SCRAM-SHA-256\"", "\"SCRAM-SHA-256\"")
        .replace("allowanonymouslogin = true", "allowanonymouslogin = false")
        .replace("AuthServiceTTL = 1800", "AuthServiceTTL = 900");
    assert_eq!(out, expected);
    // And the result still parses to the new values.
    let again = Config::parse(&out).unwrap();
    assert!(!again.boolean("service.imap.allowanonymouslogin").unwrap());
}

#[test]
fn set_new_parameter_adds_a_line() {
    let mut c = Config::parse(SAMPLE).unwrap();
    c.set(
        "local.ugldaphost",
        "ldap1.example.com ldap2.example.com:1389",
    )
    .unwrap();
    c.set("mmp.smtprelays", "relay1 relay2:2525").unwrap();
    let out = c.to_string();
    assert!(out.starts_with("# Portcullis configuration\n"), "{out}");
    assert!(out.contains("# anonymous access is for the public archive"));
    let again = Config::parse(&out).unwrap();
    assert_eq!(
        again.list("local.ugldaphost").unwrap(),
        vec!["ldap1.example.com", "ldap2.example.com:1389"]
    );
    assert_eq!(
        again.list("mmp.smtprelays").unwrap(),
        vec!["relay1", "relay2:2525"]
    );
}

#[test]
fn empty_value_unsets() {
    let mut c = Config::parse(SAMPLE).unwrap();
    c.set("service.imap.domainallowed", "").unwrap();
    assert!(!c.is_set("service.imap.domainallowed"));
    let again = Config::parse(&c.to_string()).unwrap();
    assert!(!again.is_set("service.imap.domainallowed"));
    assert!(again.is_set("service.imap.allowanonymouslogin"));
}

#[test]
fn unset_removes_empty_dotted_tables() {
    let mut c = Config::default();
    c.set("local.ugldapport", "636").unwrap();
    assert_eq!(c.to_string().trim(), "local.ugldapport = 636");
    c.set("local.ugldapport", "").unwrap();
    assert_eq!(c.to_string().trim(), "");
}

#[test]
fn errors() {
    let e = Config::parse("sasl.default.mech_lst = \"PLAIN\"").unwrap_err();
    assert!(
        e.to_string()
            .contains("did you mean `sasl.default.mech_list`"),
        "{e}"
    );
    let e = Config::parse("service.http.sessiontimeout = \"soon\"").unwrap_err();
    assert!(matches!(e, Error::InvalidValue { .. }), "{e}");
    let e = Config::parse("service.http.sessiontimeout = 0").unwrap_err();
    assert!(e.to_string().contains("out of range"), "{e}");
    let e = Config::parse("local.ugldapport = 70000").unwrap_err();
    assert!(e.to_string().contains("out of range"), "{e}");
    let e = Config::parse("a = [\n").unwrap_err();
    assert!(matches!(e, Error::Syntax { line: 1, .. }), "{e:?}");
    let e = Config::parse("mmp.preauth = true\n[mmp]\nPreAuth = false\n").unwrap_err();
    assert!(
        matches!(e, Error::Duplicate { .. } | Error::Syntax { .. }),
        "{e:?}"
    );

    let mut c = Config::parse(SAMPLE).unwrap();
    let before = c.to_string();
    assert!(c.set("service.imap.allowanonymouslogin", "maybe").is_err());
    assert!(c.set("no.such.parameter", "1").is_err());
    assert!(c.set("service.http.sessiontimeout", "-5").is_err());
    assert!(c.set("local.ugldapbasedn", "o=a\nb=c").is_err());
    assert_eq!(c.to_string(), before);
}

#[test]
fn secrets_are_redacted_in_debug() {
    let mut c = Config::default();
    c.set("local.ugldapbindcred", "hunter2").unwrap();
    assert!(!format!("{c:?}").contains("hunter2"));
    assert_eq!(c.string("local.ugldapbindcred").unwrap(), "hunter2");
}

#[test]
fn update_file_is_atomic_and_keeps_the_file_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("portcullis.toml");
    std::fs::write(&path, SAMPLE).unwrap();
    update_file(&path, |c| c.set("mmp.failovertimeout", "30")).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("# anonymous access is for the public archive"));
    assert_eq!(
        Config::load(&path)
            .unwrap()
            .integer("mmp.failovertimeout")
            .unwrap(),
        Some(30)
    );
    let err = update_file(&path, |c| c.set("mmp.failovertimeout", "x"));
    assert!(err.is_err());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    // No temporary files left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains(".tmp."))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn update_file_creates_private_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.toml");
    update_file(&path, |c| c.set("local.ugldapbindcred", "s3cret")).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

fn value_for(kind: Kind) -> BoxedStrategy<String> {
    match kind {
        Kind::Bool => prop_oneof![Just("true"), Just("false"), Just("1"), Just("no")]
            .prop_map(str::to_owned)
            .boxed(),
        Kind::Integer { min, max } => (min..=max.min(1 << 40)).prop_map(|i| i.to_string()).boxed(),
        Kind::List => proptest::collection::vec("[A-Za-z0-9:._-]{1,12}", 1..4)
            .prop_map(|v| v.join(" "))
            .boxed(),
        Kind::CommaList => proptest::collection::vec("[A-Za-z0-9:._-]{1,12}", 1..4)
            .prop_map(|v| v.join(","))
            .boxed(),
        Kind::Filter => prop_oneof![
            Just("imap: .example.com"),
            Just("imap: .example.com\nimap: 192.168.1.\n"),
            Just("+imap:ALL$-imap:bad.example"),
            Just("ALL: ALL\n# trailing 'quote'"),
        ]
        .prop_map(str::to_owned)
        .boxed(),
        _ => "[ -~]{1,40}".boxed(),
    }
}

proptest! {
    #[test]
    fn set_then_parse_round_trips(
        (idx, raw) in (0..PARAMETERS.len())
            .prop_flat_map(|i| (Just(i), value_for(PARAMETERS[i].kind)))
    ) {
        let param = &PARAMETERS[idx];
        let mut c = Config::parse(SAMPLE).unwrap();
        c.set(param.name, &raw).unwrap();
        let again = Config::parse(&c.to_string()).unwrap();
        prop_assert_eq!(again.value(param.name).unwrap(), c.value(param.name).unwrap());
        prop_assert_eq!(
            again.value(param.name).unwrap(),
            Some(Value::parse(param, &raw).unwrap())
        );
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = Config::parse(&text);
    }
}

#[test]
fn filter_values_must_parse() {
    let mut c = Config::default();
    c.set(
        "service.imap.domainallowed",
        "imap: .example.com EXCEPT bad.example.com",
    )
    .unwrap();
    c.set("service.pop.domainnotallowed", "+imap,pop:ALL$-http:*")
        .unwrap();
    let e = c
        .set("service.imap.domainnotallowed", "imap .example.com")
        .unwrap_err();
    assert!(matches!(e, Error::InvalidValue { .. }), "{e}");
    let e = c
        .set("service.http.domainallowed", "http: ALL EXCEPT")
        .unwrap_err();
    assert!(matches!(e, Error::InvalidValue { .. }), "{e}");
    let e = Config::parse("service.smtp.domainallowed = \"smtp: [::1\"").unwrap_err();
    assert!(matches!(e, Error::InvalidValue { .. }), "{e}");
}

/// The configuration, written out and parsed again, has these values.
fn assert_reads_back(c: &Config, expected: &[(&str, &str)]) {
    let again = Config::parse(&c.to_string()).unwrap();
    for (name, value) in expected {
        assert_eq!(again.string(name).unwrap(), *value, "{name}");
    }
}

#[test]
fn set_changes_a_quoted_dotted_key_in_place() {
    let text = "# site\n\"service.imap.domainallowed\" = \"imap: .example.com\" # who\n";
    let mut c = Config::parse(text).unwrap();
    c.set("service.imap.domainallowed", "imap: .example.org")
        .unwrap();
    assert_eq!(
        c.to_string(),
        "# site\n\"service.imap.domainallowed\" = \"imap: .example.org\" # who\n"
    );
    // A sibling is a new key of its own, and both read back.
    c.set("service.imap.domainnotallowed", "imap: 10.").unwrap();
    assert_reads_back(
        &c,
        &[
            ("service.imap.domainallowed", "imap: .example.org"),
            ("service.imap.domainnotallowed", "imap: 10."),
        ],
    );
    // Case does not matter either way.
    c.set("SERVICE.IMAP.DomainAllowed", "imap: .example.net")
        .unwrap();
    assert!(
        c.to_string()
            .contains("\"service.imap.domainallowed\" = \"imap: .example.net\" # who\n")
    );
    c.unset("service.imap.domainallowed").unwrap();
    assert!(!c.to_string().contains("domainallowed"), "{c}");
    assert!(c.to_string().starts_with("# site\n"), "{c}");
}

#[test]
fn inline_tables_keep_their_layout() {
    let text = "# site\nservice = { imap = { domainallowed = \"imap: a.example\" } }\nmmp.preauth = true\n";
    let mut c = Config::parse(text).unwrap();
    c.set("service.imap.domainallowed", "imap: b.example")
        .unwrap();
    assert_eq!(
        c.to_string(),
        text.replace("imap: a.example", "imap: b.example")
    );
    c.set("service.imap.domainnotallowed", "imap: 10.").unwrap();
    c.set("service.pop.domainallowed", "pop: c.example")
        .unwrap();
    let out = c.to_string();
    assert_eq!(
        out,
        "# site\nservice = { imap = { domainallowed = \"imap: b.example\", domainnotallowed = \"imap: 10.\" }, pop = { domainallowed = \"pop: c.example\" } }\nmmp.preauth = true\n"
    );
    assert!(out.starts_with("# site\nservice = { imap = { "), "{out}");
    assert!(out.ends_with("\nmmp.preauth = true\n"), "{out}");
    assert_reads_back(
        &c,
        &[
            ("service.imap.domainnotallowed", "imap: 10."),
            ("service.pop.domainallowed", "pop: c.example"),
        ],
    );
    // Unsetting everything in it removes the inline table too.
    for name in [
        "service.imap.domainallowed",
        "service.imap.domainnotallowed",
        "service.pop.domainallowed",
    ] {
        c.unset(name).unwrap();
    }
    assert_eq!(c.to_string(), "# site\nmmp.preauth = true\n");
}

#[test]
fn unsetting_the_first_key_keeps_the_header_comment() {
    let text = "# Portcullis site configuration\n# maintained by ops\nlocal.ugldapport = 636\nmmp.preauth = true\n";
    let mut c = Config::parse(text).unwrap();
    c.unset("local.ugldapport").unwrap();
    assert_eq!(
        c.to_string(),
        "# Portcullis site configuration\n# maintained by ops\nmmp.preauth = true\n"
    );
    // Comments right above the line, after a blank line, were its own.
    let text = "# header\n\n# the port\nlocal.ugldapport = 636\nmmp.preauth = true\n";
    let mut c = Config::parse(text).unwrap();
    c.set("local.ugldapport", "").unwrap();
    assert_eq!(c.to_string(), "# header\n\nmmp.preauth = true\n");
    // The only key of the file.
    let mut c = Config::parse("# header\nlocal.ugldapport = 636\n").unwrap();
    c.unset("local.ugldapport").unwrap();
    assert_eq!(c.to_string(), "# header\n");
    // The first key inside a `[section]`: the header was never its own.
    let mut c = Config::parse("# header\n[mmp]\n# relay\npreauth = true\n").unwrap();
    c.unset("mmp.preauth").unwrap();
    assert_eq!(c.to_string(), "# header\n[mmp]\n");
}

#[test]
fn update_file_refuses_text_that_would_not_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("portcullis.toml");
    std::fs::write(&path, SAMPLE).unwrap();
    let before = std::fs::read(&path).unwrap();
    // A key no parameter has.
    let e = update_file(&path, |c| {
        c.doc.insert("bogus", toml_edit::value(1));
        Ok(())
    })
    .unwrap_err();
    assert!(matches!(e, Error::EditRefused { .. }), "{e:?}");
    // One parameter under a second spelling (a quoted dotted key beside
    // the `[mmp]` table's `PreAuth`).
    let e = update_file(&path, |c| {
        c.doc.insert("mmp.preauth", toml_edit::value(true));
        Ok(())
    })
    .unwrap_err();
    assert!(matches!(e, Error::EditRefused { .. }), "{e:?}");
    // A value the model does not hold.
    let e = update_file(&path, |c| {
        c.doc["mmp"]["AuthServiceTTL"] = toml_edit::value(60);
        Ok(())
    })
    .unwrap_err();
    assert!(matches!(e, Error::EditRefused { .. }), "{e:?}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

/// The actions, rule numbers and lines of one parameter's filters.
fn actions_and_rules(sf: &ServiceFilters) -> Vec<(portcullis_accessfilter::Action, u32, u32)> {
    sf.filters
        .as_ref()
        .unwrap()
        .iter()
        .map(|f| (f.action, f.origin.rule, f.origin.line))
        .collect()
}

#[test]
fn filter_parameters_hold_several_filters_as_arrays_or_lines() {
    use portcullis_accessfilter::Action::{Allow, Deny};
    // The chapter's "mostly denying" example, written as it appears.
    let as_arrays = r#"
[service.imap]
domainnotallowed = ["ALL: ALL"]
domainallowed = ["imap: .example.com", "imap: 192.168.1."]
"#;
    let as_lines = r"
[service.imap]
domainnotallowed = 'ALL: ALL'
domainallowed = '''
imap: .example.com
imap: 192.168.1.
'''
";
    for (text, shown) in [
        (as_arrays, "imap: .example.com\nimap: 192.168.1."),
        (as_lines, "imap: .example.com\nimap: 192.168.1.\n"),
    ] {
        let c = Config::parse(text).unwrap();
        let imap = c.service_filters("imaps").unwrap();
        assert_eq!(imap[0].parameter, "service.imap.domainallowed");
        assert_eq!(
            actions_and_rules(&imap[0]),
            [(Allow, 1, 1), (Allow, 2, 2)],
            "{text}"
        );
        assert_eq!(actions_and_rules(&imap[1]), [(Deny, 1, 1)], "{text}");
        assert_eq!(c.string("service.imap.domainallowed").unwrap(), shown);
    }
    // Array items may be in the LDAP form, each rule keeping its sign.
    let c = Config::parse(
        r#"service.pop.domainnotallowed = ["+pop:ALL$-pop:bad.example", "pop: 10."]"#,
    )
    .unwrap();
    let pop = c.service_filters("pop3").unwrap();
    assert_eq!(
        actions_and_rules(&pop[1]),
        [(Allow, 1, 1), (Deny, 2, 1), (Deny, 3, 2)]
    );
    assert_eq!(
        c.filters("service.pop.domainnotallowed").unwrap().entries(),
        ["+pop:ALL$-pop:bad.example", "pop: 10."]
    );
    assert!(matches!(
        c.list("service.pop.domainnotallowed"),
        Err(Error::WrongType { .. })
    ));
    // Every item must parse; the error names it.
    let e = Config::parse(r#"service.pop.domainallowed = ["pop: ALL", "pop ALL"]"#).unwrap_err();
    assert!(e.to_string().contains("array item 2"), "{e}");
    let e = Config::parse(r#"service.pop.domainallowed = ["pop: ALL", 1]"#).unwrap_err();
    assert!(matches!(e, Error::InvalidValue { .. }), "{e}");
}

#[test]
fn a_filter_of_several_lines_is_written_as_a_multi_line_string() {
    let mut c = Config::parse("# site\n[service.imap]\ndomainallowed = \"imap: ALL\"\n").unwrap();
    c.set(
        "service.imap.domainallowed",
        "imap: .example.com\nimap: 192.168.1.",
    )
    .unwrap();
    assert_eq!(
        c.to_string(),
        "# site\n[service.imap]\ndomainallowed = '''\nimap: .example.com\nimap: 192.168.1.'''\n"
    );
    let again = Config::parse(&c.to_string()).unwrap();
    assert_eq!(
        again
            .filters("service.imap.domainallowed")
            .unwrap()
            .entries(),
        ["imap: .example.com\nimap: 192.168.1."]
    );
    // Other values stay one line.
    assert!(c.set("local.ugldapbasedn", "o=a\no=b").is_err());
}

#[test]
fn proxy_authentication_filters_are_not_access_filters() {
    use portcullis_accessfilter::Action::Allow;
    let c = Config::parse(
        "[service.http]\nproxydomainallowed = [\"http: 192.0.2.10\", \"http: portal.example\"]\n",
    )
    .unwrap();
    // HTTP's access filters stay empty (everyone may connect): the proxy
    // filters neither make HTTP allow-only nor let a host past a deny.
    let http = c.service_filters("https").unwrap();
    assert_eq!(http.len(), 2);
    assert!(http.iter().all(|s| s.filters.as_ref().unwrap().is_empty()));
    assert!(!http.iter().any(|s| s.parameter.contains("proxy")));
    // They are read on their own, as Allow rules.
    let proxy = c.proxy_auth_filters("https").unwrap().unwrap();
    assert_eq!(proxy.parameter, "service.http.proxydomainallowed");
    assert_eq!(actions_and_rules(&proxy), [(Allow, 1, 1), (Allow, 2, 2)]);
    assert!(c.proxy_auth_filters("imaps").unwrap().is_none());
    assert!(matches!(
        c.proxy_auth_filters("ftp"),
        Err(Error::UnknownService { .. })
    ));
}
