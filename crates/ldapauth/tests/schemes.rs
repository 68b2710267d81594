//! Password schemes and auto-transition against a real slapd. Stored
//! values are made by slapd's own `slappasswd`, by `openssl kdf`, or (for
//! SCRAM keys) by portcullis-sasl — never by the code under test.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::{add_user, directory, read_passwords, settings, slapd_bind_ok, slappasswd, unique};
use portcullis_ldapauth::{Error, NewScheme, Reject, VerifyMode};
use portcullis_sasl::{Password, ScramAlgorithm, ScramSecret};
use portcullis_test_support::slapd::Slapd;

const SHA2: &str = "module-load=/usr/lib/ldap/pw-sha2.so";
const ARGON2: &str = "module-load=/usr/lib/ldap/argon2.so";

/// PBKDF2-HMAC-SHA256 by `openssl kdf`, hex.
fn openssl_pbkdf2(password: &str, salt_hex: &str, iter: u32, len: usize) -> Vec<u8> {
    let out = Command::new("timeout")
        .args([
            "20",
            "openssl",
            "kdf",
            "-keylen",
            &len.to_string(),
            "-kdfopt",
            "digest:SHA256",
        ])
        .arg("-kdfopt")
        .arg(format!("pass:{password}"))
        .arg("-kdfopt")
        .arg(format!("hexsalt:{salt_hex}"))
        .arg("-kdfopt")
        .arg(format!("iter:{iter}"))
        .arg("PBKDF2")
        .output()
        .expect("run openssl kdf");
    assert!(
        out.status.success(),
        "openssl kdf: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hex: String = String::from_utf8(out.stdout)
        .unwrap()
        .chars()
        .filter(char::is_ascii_hexdigit)
        .collect();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

fn ab64(b: &[u8]) -> String {
    common::b64(b).trim_end_matches('=').replace('+', ".")
}

/// (label, stored value) for `password`, each made by an outside tool.
fn stored_values(password: &str) -> Vec<(String, String)> {
    let mut v = Vec::new();
    for h in ["{SSHA}", "{SHA}", "{SMD5}", "{MD5}", "{CLEARTEXT}"] {
        v.push((h.to_owned(), slappasswd(&["-h", h], password)));
    }
    for h in ["{SHA256}", "{SSHA256}", "{SHA512}", "{SSHA512}"] {
        v.push((h.to_owned(), slappasswd(&["-o", SHA2, "-h", h], password)));
    }
    v.push((
        "{ARGON2}".into(),
        slappasswd(&["-o", ARGON2, "-h", "{ARGON2}"], password),
    ));
    for (label, fmt) in [
        ("sha512-crypt", "$6$%.16s"),
        ("sha256-crypt", "$5$%.16s"),
        ("sha512-crypt rounds", "$6$rounds=7000$%.16s"),
        ("md5-crypt", "$1$%.8s"),
        ("bcrypt", "$2b$05$%.22s"),
    ] {
        v.push((
            label.into(),
            slappasswd(&["-h", "{CRYPT}", "-c", fmt], password),
        ));
    }
    // 389-DS / pw-pbkdf2 form.
    let salt = "0123456789abcdef0123456789abcdef";
    let hash = openssl_pbkdf2(password, salt, 1000, 32);
    let salt_bytes: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&salt[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    v.push((
        "{PBKDF2-SHA256}".into(),
        format!(
            "{{PBKDF2-SHA256}}1000${}${}",
            ab64(&salt_bytes),
            ab64(&hash)
        ),
    ));
    // Older 389-DS binary form: iterations ‖ 64-byte salt ‖ 256-byte hash.
    let salt64 = "ab".repeat(64);
    let hash = openssl_pbkdf2(password, &salt64, 2000, 256);
    let mut raw = 2000u32.to_be_bytes().to_vec();
    raw.extend(std::iter::repeat_n(0xab, 64));
    raw.extend(hash);
    v.push((
        "{PBKDF2_SHA256}".into(),
        format!("{{PBKDF2_SHA256}}{}", common::b64(&raw)),
    ));
    // SCRAM stored keys.
    let s = ScramSecret::derive(
        ScramAlgorithm::Sha256,
        &Password::new(password),
        b"saltsaltsalt",
        4096,
    )
    .unwrap();
    let rfc = s.to_rfc5803();
    v.push((
        "{SCRAM-SHA-256}".into(),
        format!("{{SCRAM-SHA-256}}{}", rfc.split_once('$').unwrap().1),
    ));
    let s = ScramSecret::derive(
        ScramAlgorithm::Sha1,
        &Password::new(password),
        b"saltsaltsalt",
        4096,
    )
    .unwrap();
    let rfc = s.to_rfc5803();
    v.push((
        "{SCRAM-SHA-1}".into(),
        format!("{{SCRAM-SHA-1}}{}", rfc.split_once('$').unwrap().1),
    ));
    v
}

#[test]
fn every_scheme_verifies_locally() {
    let pw = "S3cret pass";
    for (label, value) in stored_values(pw) {
        assert_eq!(
            portcullis_ldapauth::scheme::verify(value.as_bytes(), pw.as_bytes()),
            Ok(true),
            "{label}: {value}"
        );
        assert_eq!(
            portcullis_ldapauth::scheme::verify(value.as_bytes(), b"S3cret pasS"),
            Ok(false),
            "{label}"
        );
    }
}

#[tokio::test]
async fn every_scheme_through_the_directory() {
    let slapd = Slapd::shared();
    let pw = "Dir-pw 1";
    let mut s = settings(slapd);
    s.verify = VerifyMode::LocalHash;
    let local = directory(s);
    let bind = directory(settings(slapd));
    for (label, value) in stored_values(pw) {
        let uid = unique("sch");
        add_user(slapd, &uid, &[&value], "");
        let login = format!("{uid}@example.com");
        assert!(
            local.verify_password(&login, &pw.into()).await.is_ok(),
            "{label}: {value}"
        );
        assert_eq!(
            local
                .verify_password(&login, &"Dir-pw 2".into())
                .await
                .unwrap_err(),
            Error::Rejected(Reject::BadPassword),
            "{label}"
        );
        // The schemes slapd checks natively also work by bind.
        if [
            "{SSHA}",
            "{SHA}",
            "{SMD5}",
            "{MD5}",
            "{CLEARTEXT}",
            "sha512-crypt",
            "sha256-crypt",
            "md5-crypt",
            "bcrypt",
        ]
        .contains(&label.as_str())
        {
            assert!(
                bind.verify_password(&login, &pw.into()).await.is_ok(),
                "bind {label}"
            );
            assert_eq!(
                bind.verify_password(&login, &"x".into()).await.unwrap_err(),
                Error::Rejected(Reject::BadPassword)
            );
        }
    }
    // SCRAM keys come back to sasl as stored.
    let s = ScramSecret::derive(
        ScramAlgorithm::Sha256,
        &Password::new(pw),
        b"0123456789",
        4096,
    )
    .unwrap();
    let uid = unique("scram");
    add_user(
        slapd,
        &uid,
        &[&format!(
            "{{SCRAM-SHA-256}}{}",
            s.to_rfc5803().split_once('$').unwrap().1
        )],
        "",
    );
    let (_, got) = local
        .fetch_scram(&format!("{uid}@example.com"), ScramAlgorithm::Sha256)
        .await
        .unwrap();
    assert_eq!(got, s);
    assert_eq!(
        local
            .fetch_scram(&format!("{uid}@example.com"), ScramAlgorithm::Sha1)
            .await
            .unwrap_err(),
        Error::Rejected(Reject::NoUsablePassword)
    );
    // Unknown / unusable schemes are refused, not accepted.
    let uid = unique("unk");
    add_user(slapd, &uid, &["{NOSUCH}abc", "{CRYPT}abJnggxhB/yWI"], "");
    assert_eq!(
        local
            .verify_password(&format!("{uid}@example.com"), &"abc".into())
            .await
            .unwrap_err(),
        Error::Rejected(Reject::NoUsablePassword)
    );
}

#[tokio::test]
async fn auto_transition_rewrites_and_the_new_value_verifies() {
    let slapd = Slapd::shared();
    let pw = "transit-pw";
    for (scheme, prefix) in [
        (NewScheme::default(), "{CRYPT}$6$"),
        (NewScheme::SaltedSha1, "{SSHA}"),
        (
            NewScheme::Pbkdf2Sha256 { iterations: 2000 },
            "{PBKDF2-SHA256}",
        ),
    ] {
        let uid = unique("tr");
        let dn = add_user(slapd, &uid, &[&slappasswd(&["-h", "{SMD5}"], pw)], "");
        let login = format!("{uid}@example.com");
        let mut s = settings(slapd);
        s.auto_transition = true;
        s.transition_scheme = scheme;
        s.transition_scram = true;
        // slapd has no PBKDF2 module loaded: a directory whose default
        // scheme slapd cannot check is verified locally.
        if prefix == "{PBKDF2-SHA256}" {
            s.verify = VerifyMode::LocalHash;
        }
        let d = directory(s);
        let u = d.verify_password(&login, &pw.into()).await.unwrap();
        assert!(u.transitioned, "{scheme:?}");
        let stored = read_passwords(slapd, &dn);
        assert_eq!(stored.len(), 2, "{stored:?}");
        assert!(stored.iter().any(|v| v.starts_with(prefix)), "{stored:?}");
        assert!(
            stored.iter().any(|v| v.starts_with("{SCRAM-SHA-256}")),
            "{stored:?}"
        );
        // Second login: nothing left to transition.
        assert!(
            !d.verify_password(&login, &pw.into())
                .await
                .unwrap()
                .transitioned
        );
        // The new value verifies locally, and by slapd's own bind when slapd
        // knows the scheme.
        let mut s = settings(slapd);
        s.verify = VerifyMode::LocalHash;
        let local = directory(s);
        assert!(local.verify_password(&login, &pw.into()).await.is_ok());
        assert_eq!(
            local
                .verify_password(&login, &"other".into())
                .await
                .unwrap_err(),
            Error::Rejected(Reject::BadPassword)
        );
        if prefix != "{PBKDF2-SHA256}" {
            assert!(slapd_bind_ok(slapd, &dn, pw), "slapd bind after {scheme:?}");
            assert!(!slapd_bind_ok(slapd, &dn, "other"));
        }
        // The SCRAM keys are what sasl derives from the password.
        let (_, secret) = local
            .fetch_scram(&login, ScramAlgorithm::Sha256)
            .await
            .unwrap();
        let again = ScramSecret::derive(
            ScramAlgorithm::Sha256,
            &Password::new(pw),
            secret.salt(),
            secret.iterations(),
        )
        .unwrap();
        assert_eq!(secret, again);
    }

    // A wrong password never transitions anything.
    let uid = unique("trw");
    let orig = slappasswd(&["-h", "{SSHA}"], pw);
    let dn = add_user(slapd, &uid, &[&orig], "");
    let mut s = settings(slapd);
    s.auto_transition = true;
    let d = directory(s);
    assert!(
        d.verify_password(&format!("{uid}@example.com"), &"bad".into())
            .await
            .is_err()
    );
    assert_eq!(read_passwords(slapd, &dn), std::slice::from_ref(&orig));

    // A write-back that cannot be made never fails the login.
    let mut s = settings(slapd);
    s.auto_transition = true;
    s.transition_scheme = NewScheme::Pbkdf2Sha256 { iterations: 0 };
    let d = directory(s);
    let u = d
        .verify_password(&format!("{uid}@example.com"), &pw.into())
        .await
        .unwrap();
    assert!(!u.transitioned);
    assert_eq!(read_passwords(slapd, &dn), [orig]);
}

#[tokio::test]
async fn auto_transition_with_a_read_only_account_still_logs_in() {
    let slapd = Slapd::shared();
    let reader = unique("reader");
    slapd
        .add_ldif(&format!(
            "dn: cn={reader},ou=services,o=example\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n\
             cn: {reader}\nuserPassword: reader-pw\n"
        ))
        .unwrap();
    let uid = unique("ro");
    let orig = slappasswd(&["-h", "{SSHA}"], "ro-pw");
    let dn = add_user(slapd, &uid, &[&orig], "");
    let mut s = settings(slapd);
    s.bind_dn = format!("cn={reader},ou=services,o=example");
    s.bind_password = "reader-pw".into();
    s.auto_transition = true;
    let d = directory(s);
    let u = d
        .verify_password(&format!("{uid}@example.com"), &"ro-pw".into())
        .await
        .unwrap();
    assert!(!u.transitioned);
    assert_eq!(read_passwords(slapd, &dn), [orig]);
}

#[tokio::test]
async fn cache_is_off_by_default_and_expires() {
    let slapd = Slapd::shared();
    let uid = unique("cache");
    let dn = add_user(slapd, &uid, &[&slappasswd(&["-h", "{SSHA}"], "old-pw")], "");
    let login = format!("{uid}@example.com");
    let change = |pw: &str| {
        slapd
            .modify_ldif(&format!(
                "dn: {dn}\nchangetype: modify\nreplace: userPassword\nuserPassword: {pw}\n"
            ))
            .unwrap();
    };

    // Off: a change is seen at once.
    let d = directory(settings(slapd));
    assert!(d.verify_password(&login, &"old-pw".into()).await.is_ok());
    change("new-pw");
    assert_eq!(
        d.verify_password(&login, &"old-pw".into())
            .await
            .unwrap_err(),
        Error::Rejected(Reject::BadPassword)
    );

    // On: the cached answer stands until the TTL ends. Two directories, so
    // nothing depends on how fast the machine runs: one whose TTL outlasts
    // the test (the cached answer must stand), one whose short TTL the test
    // waits out (the answer must be fresh afterwards; a slower machine only
    // waits longer).
    let long = Duration::from_secs(3600);
    let short = Duration::from_millis(300);
    let cached = directory({
        let mut s = settings(slapd);
        s.cache_ttl = Some(long);
        s
    });
    let expiring = directory({
        let mut s = settings(slapd);
        s.cache_ttl = Some(short);
        s
    });
    for d in [&cached, &expiring] {
        assert!(d.verify_password(&login, &"new-pw".into()).await.is_ok());
        assert_eq!(
            d.verify_password(&login, &"bad".into()).await.unwrap_err(),
            Error::Rejected(Reject::BadPassword)
        );
    }
    change("newer-pw");
    assert!(
        cached
            .verify_password(&login, &"new-pw".into())
            .await
            .is_ok(),
        "cached accept"
    );
    // Both entries were filled before the change, so once `short` has passed
    // since now, the expiring cache must ask the directory again.
    tokio::time::sleep(short + Duration::from_millis(50)).await;
    assert_eq!(
        expiring
            .verify_password(&login, &"new-pw".into())
            .await
            .unwrap_err(),
        Error::Rejected(Reject::BadPassword)
    );
    assert!(
        expiring
            .verify_password(&login, &"newer-pw".into())
            .await
            .is_ok()
    );
}

/// A full SCRAM-SHA-256 exchange (portcullis-sasl client and server) whose
/// stored keys come from the directory.
async fn scram_login(d: &portcullis_ldapauth::Directory, user: &str, pw: &str) -> bool {
    use portcullis_sasl::{
        Backends, ClientContext, ClientSession, Credentials, Mechanism, ServerContext,
        ServerSession, Service, Step,
    };
    let backends = Backends::new(std::sync::Arc::new(d.clone()));
    let sctx = ServerContext::new(Service::Imap, "mail.example.com");
    let cctx = ClientContext::new(Service::Imap, "mail.example.com");
    let mut client =
        ClientSession::new(Mechanism::ScramSha256, Credentials::new(user, pw), &cctx).unwrap();
    let mut server = ServerSession::new(Mechanism::ScramSha256, &sctx).unwrap();
    let first = client.initial_response().unwrap();
    let Ok(mut step) = server.start(first.as_deref()) else {
        return false;
    };
    for _ in 0..10 {
        step = match step {
            Step::Verify(req) => match server.answer(backends.resolve(&req).await) {
                Ok(s) => s,
                Err(_) => return false,
            },
            Step::Challenge(c) => {
                let Ok(r) = client.step(&c) else { return false };
                match server.step(&r) {
                    Ok(s) => s,
                    Err(_) => return false,
                }
            }
            Step::Done(a) => return a.authcid() == user,
            _ => return false,
        };
    }
    false
}

#[tokio::test]
async fn transitioned_users_can_move_to_scram() {
    let slapd = Slapd::shared();
    let uid = unique("toscram");
    add_user(
        slapd,
        &uid,
        &[&slappasswd(&["-h", "{SSHA}"], "move-pw")],
        "",
    );
    let login = format!("{uid}@example.com");
    let d = directory(settings(slapd));
    // No SCRAM keys yet.
    assert!(!scram_login(&d, &login, "move-pw").await);
    let mut s = settings(slapd);
    s.auto_transition = true;
    s.transition_scram = true;
    assert!(
        directory(s)
            .verify_password(&login, &"move-pw".into())
            .await
            .unwrap()
            .transitioned
    );
    assert!(scram_login(&d, &login, "move-pw").await);
    assert!(!scram_login(&d, &login, "wrong-pw").await);
}
