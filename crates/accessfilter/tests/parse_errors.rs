//! Bad input is an error with line, column and token — never a panic and
//! never "allow everything".
#![allow(clippy::unwrap_used, clippy::expect_used)]

use portcullis_accessfilter::{
    Action, Error, SyntaxErrorKind as K, parse_file, parse_filter_list, parse_ldap,
};

/// Input text and the expected (line, column, token, kind).
type Case = (&'static str, (u32, u32, &'static str, K));

fn err(r: Result<Vec<portcullis_accessfilter::Filter>, Error>) -> (u32, u32, String, K) {
    match r {
        Err(Error::Syntax {
            line,
            column,
            token,
            kind,
        }) => (line, column, token, kind),
        other => panic!("expected a syntax error, got {other:?}"),
    }
}

#[test]
fn file_form_errors_carry_position_and_token() {
    let cases: &[Case] = &[
        ("imap ALL\n", (1, 1, "imap", K::MissingColon)),
        (
            "# c\n\nimap: 1.2.3.4/40\n",
            (3, 7, "1.2.3.4/40", K::BadAddress),
        ),
        (
            "imap: ok.example,  [zz::g]\n",
            (1, 20, "[zz::g]", K::BadIpv6),
        ),
        ("imap: a \\\n   b$c\n", (2, 4, "b$c", K::BadCharacter)),
        ("imap: EXCEPT a\n", (1, 7, "EXCEPT", K::ExceptWithoutList)),
        ("imap: a EXCEPT\n", (1, 9, "EXCEPT", K::EmptyExceptList)),
        ("imap:\n", (1, 6, "", K::EmptyClientList)),
        (": ALL\n", (1, 1, ":", K::EmptyServiceList)),
        ("imap: ALL: spawn /bin/echo\n", (1, 10, ":", K::ExtraColon)),
        ("imap: /etc/hosts\n", (1, 7, "/etc/hosts", K::FilePattern)),
        ("LOCAL: ALL\n", (1, 1, "LOCAL", K::MisplacedWildcard)),
        ("imap: @group@host\n", (1, 7, "@group@host", K::BadNetgroup)),
        ("imap: .ex*ample.com\n", (1, 7, ".ex*ample.com", K::BadGlob)),
        ("imap: 1.2.3\n", (1, 7, "1.2.3", K::BadAddress)),
        (
            "  imap: ok\n\tpop: 300.1.1.1\n",
            (2, 7, "300.1.1.1", K::BadAddress),
        ),
        ("imap: h\u{e9}llo\n", (1, 7, "h\u{e9}llo", K::BadCharacter)),
    ];
    for (text, (line, col, tok, kind)) in cases {
        let got = err(parse_file(text, Action::Allow));
        assert_eq!(got, (*line, *col, (*tok).to_owned(), *kind), "{text:?}");
    }
}

#[test]
fn ldap_form_errors_carry_position_and_token() {
    let cases: &[Case] = &[
        ("imap:ALL", (1, 1, "imap:ALL", K::MissingSign)),
        ("+imap:ALL$pop:*", (1, 11, "pop:*", K::MissingSign)),
        ("+imap:ALL$$-pop:*", (1, 11, "$", K::EmptyRule)),
        (
            "+imap:ALL$-pop:10.0.0.0/99",
            (1, 16, "10.0.0.0/99", K::BadAddress),
        ),
        ("+imap ALL", (1, 2, "imap", K::MissingColon)),
    ];
    for (text, (line, col, tok, kind)) in cases {
        let got = err(parse_ldap(text));
        assert_eq!(got, (*line, *col, (*tok).to_owned(), *kind), "{text:?}");
    }
}

#[test]
fn errors_display_position_and_token() {
    let e = parse_file("imap: 1.2.3.4/40\n", Action::Allow).unwrap_err();
    assert_eq!(
        e.to_string(),
        "1:7: malformed IPv4 address, prefix or net/mask at `1.2.3.4/40`"
    );
    assert_eq!(e.position(), (1, 7));
    assert_eq!(e.token(), "1.2.3.4/40");
}

#[test]
fn deep_except_nesting_is_an_error_not_a_stack_overflow() {
    let mut s = String::from("imap: a");
    for i in 0..100_000 {
        s.push_str(&format!(" EXCEPT b{i}"));
    }
    let (_, _, tok, kind) = err(parse_file(&s, Action::Allow));
    assert_eq!((tok.as_str(), kind), ("EXCEPT", K::TooDeep));
}

#[test]
fn config_values_take_either_form() {
    let f = parse_filter_list("imap: ALL", Action::Deny).unwrap();
    assert_eq!(f[0].action, Action::Deny);
    let f = parse_filter_list("  +imap:ALL$-pop:*", Action::Deny).unwrap();
    assert_eq!((f[0].action, f[1].action), (Action::Allow, Action::Deny));
    assert!(parse_filter_list("", Action::Allow).unwrap().is_empty());
    assert!(portcullis_accessfilter::validate_filter_value("imap: 10.0.0.0/8").is_ok());
    assert!(portcullis_accessfilter::validate_filter_value("imap: 10.0.0.0/88").is_err());
}

#[test]
fn comments_and_continuations() {
    let text = "# comment line\n\
                imap, pop: a.example \\\n\
                \x20   b.example # trailing comment\n\
                \n\
                   # indented comment\n\
                http: ALL\n";
    let f = parse_file(text, Action::Allow).unwrap();
    assert_eq!(f.len(), 2);
    assert_eq!(f[0].to_string(), "imap, pop: a.example, b.example");
    assert_eq!((f[0].origin.line, f[0].origin.rule), (2, 1));
    assert_eq!((f[1].origin.line, f[1].origin.rule), (6, 2));
    // CRLF files.
    let f = parse_file("imap: a\r\npop: b \\\r\n c\r\n", Action::Allow).unwrap();
    assert_eq!(f[1].to_string(), "pop: b, c");
}
