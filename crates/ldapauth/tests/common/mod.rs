//! Helpers shared by the slapd-backed tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use portcullis_ldapauth::{Directory, Settings};
use portcullis_test_support::slapd::Slapd;

/// Settings for `slapd`'s plain LDAP port, service account bound.
pub fn settings(slapd: &Slapd) -> Settings {
    let mut s = Settings::new(format!("127.0.0.1:{}", slapd.port()), slapd.base_dn());
    s.bind_dn = slapd.service_dn().into();
    s.bind_password = slapd.service_password().into();
    s.admin_group_dn = Some(slapd.admins_group_dn().into());
    s.connect_timeout = Duration::from_secs(3);
    s.operation_timeout = Duration::from_secs(5);
    s
}

pub fn directory(s: Settings) -> Directory {
    Directory::new(s).expect("valid settings")
}

/// A name unique within this test process.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// `slappasswd -h SCHEME -s PASSWORD` (with extra arguments), trimmed.
pub fn slappasswd(args: &[&str], password: &str) -> String {
    let out = Command::new("timeout")
        .args(["20", "slappasswd"])
        .args(args)
        .args(["-s", password])
        .output()
        .expect("run slappasswd");
    assert!(
        out.status.success(),
        "slappasswd {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Adds a mail user `uid=<uid>,ou=People,o=example.com,o=example` with
/// the given `userPassword` values (and extra LDIF lines).
pub fn add_user(slapd: &Slapd, uid: &str, passwords: &[&str], extra: &str) -> String {
    let dn = format!("uid={uid},ou=People,o=example.com,{}", slapd.base_dn());
    let mut ldif = format!(
        "dn: {dn}\nobjectClass: inetOrgPerson\nobjectClass: inetMailUser\nobjectClass: inetUser\n\
         uid: {uid}\ncn: {uid}\nsn: Test\nmail: {uid}@example.com\nmailUserStatus: active\n"
    );
    for p in passwords {
        ldif.push_str(&format!("userPassword:: {}\n", b64(p.as_bytes())));
    }
    ldif.push_str(extra);
    slapd.add_ldif(&ldif).expect("add user");
    dn
}

pub fn b64(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// The `userPassword` values of `dn`, read as the root DN with
/// `ldapsearch` (base64-decoded).
pub fn read_passwords(slapd: &Slapd, dn: &str) -> Vec<String> {
    let out = Command::new("timeout")
        .args([
            "20",
            "ldapsearch",
            "-x",
            "-LLL",
            "-o",
            "ldif-wrap=no",
            "-H",
            &slapd.ldap_url(),
            "-D",
            slapd.admin_dn(),
            "-w",
            slapd.admin_password(),
            "-b",
            dn,
            "-s",
            "base",
            "(objectclass=*)",
            "userPassword",
        ])
        .output()
        .expect("run ldapsearch");
    assert!(
        out.status.success(),
        "ldapsearch: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines()
        .filter_map(|l| {
            if let Some(v) = l.strip_prefix("userPassword:: ") {
                Some(String::from_utf8(unb64(v)).unwrap())
            } else {
                l.strip_prefix("userPassword: ").map(str::to_owned)
            }
        })
        .collect()
}

pub fn unb64(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("base64")
}

/// Whether slapd itself accepts a simple bind (`ldapwhoami`).
pub fn slapd_bind_ok(slapd: &Slapd, dn: &str, password: &str) -> bool {
    Command::new("timeout")
        .args([
            "20",
            "ldapwhoami",
            "-x",
            "-H",
            &slapd.ldap_url(),
            "-D",
            dn,
            "-w",
            password,
        ])
        .output()
        .expect("run ldapwhoami")
        .status
        .success()
}
