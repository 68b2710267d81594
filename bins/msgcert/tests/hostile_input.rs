//! Hostile input to msgcert: numbers out of every range are usage errors
//! (exit 2) and never a panic, and text taken from a certificate (subject,
//! issuer, SAN, alias) never puts a control character on the terminal.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Env, s};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};

/// Runs msgcert and checks it ended as a usage error, not a crash.
fn usage_error(env: &Env, args: &[&str]) {
    let out = env.run(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    assert!(!stderr.trim().is_empty(), "{args:?}: no message");
}

#[test]
fn numbers_out_of_range_are_usage_errors() {
    let env = Env::new();
    let before = env.ok(&["list-certs"]);
    for bad in [
        "0",
        "-1",
        "36526",
        "4294967295",
        "4294967296",
        "99999999999999999999999",
        "1e3",
        "abc",
        "",
        " 5",
    ] {
        usage_error(
            &env,
            &[
                "add-selfsign-cert",
                "--validity",
                bad,
                "--name",
                "x.example",
                "X",
            ],
        );
        usage_error(
            &env,
            &["renew-selfsign-cert", "--validity", bad, "Server-Cert"],
        );
        if bad != "0" {
            usage_error(&env, &["check-expiry", "--days", bad]);
        }
    }
    // Nothing was added by the refused commands.
    assert_eq!(env.ok(&["list-certs"]), before);
    // The limits themselves work.
    env.ok(&[
        "add-selfsign-cert",
        "--validity",
        "36525",
        "--name",
        "long.example",
        "Long",
    ]);
    let show = env.ok(&["show-cert", "Long"]);
    assert!(show.contains("Not After"), "{show}");
    env.ok(&["renew-selfsign-cert", "--validity", "1", "Long"]);
    let out = env.run(&["check-expiry", "--days", "36525"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "every certificate expires within a century"
    );
    let out = env.run(&["check-expiry", "--days", "0"]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn every_subcommand_refuses_malformed_arguments_without_a_panic() {
    let env = Env::new();
    for cmd in common::SUBCOMMANDS {
        usage_error(&env, &[cmd, "--no-such-option"]);
        usage_error(&env, &[cmd, "--validity", "-5", "a", "b", "c", "d"]);
    }
}

/// Bytes that must never reach a terminal from certificate text: C0
/// controls but newline, DEL, and C1 controls (UTF-8 `C2 80`–`C2 9F`).
fn assert_no_controls(what: &str, out: &[u8]) {
    for (i, w) in out.windows(2).enumerate() {
        let b = w[0];
        let bad =
            (b < 0x20 && b != b'\n') || b == 0x7f || (b == 0xc2 && (0x80..0xa0).contains(&w[1]));
        assert!(
            !bad,
            "{what}: control byte {b:#04x} at {i}: {}",
            String::from_utf8_lossy(out)
        );
    }
}

#[test]
fn certificate_text_is_escaped_for_the_terminal() {
    let env = Env::new();
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Evil\u{1b}]0;owned\u{7} Org");
    dn.push(
        DnType::CommonName,
        "evil\u{1b}[2J\u{9b}31m\u{202e}moc.elpmaxe",
    );
    p.distinguished_name = dn;
    p.subject_alt_names = vec![
        SanType::DnsName("a\u{1b}[31m.example".try_into().unwrap()),
        SanType::Rfc822Name("bell\u{7}@example.com".try_into().unwrap()),
        SanType::URI("http://\u{1b}[1mx/\r\n".try_into().unwrap()),
    ];
    let key = KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    let pem = env.write("evil.pem", cert.pem());
    env.ok(&["add-cert", "Evil", s(&pem)]);

    let show = env.run(&["show-cert", "Evil"]);
    assert!(show.status.success());
    assert_no_controls("show-cert", &show.stdout);
    let text = String::from_utf8(show.stdout).unwrap();
    // Escaped, not dropped: the operator still sees what is there.
    assert!(text.contains("\\x9b31m\\u{202e}moc.elpmaxe"), "{text}");
    assert!(text.contains("a\\x1b[31m.example"), "{text}");
    assert!(text.contains("bell\\x07@example.com"), "{text}");
    assert!(text.contains("\\x0d\\x0a"), "{text}");

    let list = env.run(&["list-certs"]);
    assert!(list.status.success());
    assert_no_controls("list-certs", &list.stdout);
    assert!(String::from_utf8_lossy(&list.stdout).contains("\\x9b31m"));
}
