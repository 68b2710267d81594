//! The protocols' own logins on the SASL path: IMAP LOGIN / POP3 USER-PASS
//! / HTTP form / nginx plain, and APOP or CRAM-MD5 against a salt the
//! connection owns (retries allowed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::drive;
use portcullis_sasl::{
    Authenticated, ClientContext, ClientSession, Credentials, Error, Mechanism, MemoryBackend,
    Password, Policy, PolicyConfig, Salt, ServerContext, ServerSession, Service, Step, TlsState,
    TlsVersion,
};

fn policy(f: impl FnOnce(&mut PolicyConfig)) -> Policy {
    let mut c = PolicyConfig::default();
    f(&mut c);
    Policy::new(&c).unwrap()
}

fn tls() -> TlsState {
    TlsState::new(TlsVersion::Tls13, false)
}

/// Runs a login's first step to the end against the test backend.
fn finish(
    login: Result<(ServerSession, Step), Error>,
    backend: &MemoryBackend,
) -> Result<Authenticated, Error> {
    let (mut session, step) = login?;
    drive(&mut session, Ok(step), backend, |_| panic!("no challenge"))
}

#[test]
fn password_logins_take_the_plain_path() {
    let backend = common::backend();
    let open = policy(|_| {});
    for service in [Service::Imap, Service::Pop, Service::Http, Service::Smtp] {
        let ctx = ServerContext::new(service, "h");
        let pw = Password::new("alice-pw");
        let auth = finish(
            ServerSession::password_login(&open, &ctx, "alice", &pw),
            &backend,
        )
        .unwrap();
        assert_eq!(
            (auth.authcid(), auth.mechanism()),
            ("alice", Mechanism::Plain),
            "{service:?}"
        );
    }
    let ctx = ServerContext::new(Service::Imap, "h");
    // The same verifier: a wrong password and an unknown user fail alike.
    for (user, pw) in [("alice", "wrong"), ("nobody", "alice-pw")] {
        let r = finish(
            ServerSession::password_login(&open, &ctx, user, &Password::new(pw)),
            &backend,
        );
        assert_eq!(r.unwrap_err(), Error::BadCredentials, "{user}");
    }
    // The same preparation: SASLprep maps the soft hyphen away.
    let auth = finish(
        ServerSession::password_login(&open, &ctx, "ali\u{ad}ce", &Password::new("alice-pw")),
        &backend,
    )
    .unwrap();
    assert_eq!(auth.authcid(), "alice");
    // A NUL cannot smuggle an authorization identity in.
    assert!(matches!(
        ServerSession::password_login(&open, &ctx, "admin\0alice", &Password::new("x")),
        Err(Error::Malformed { .. })
    ));
    assert!(matches!(
        ServerSession::password_login(&open, &ctx, "alice", &Password::new("")),
        Err(Error::Malformed { .. })
    ));
}

#[test]
fn password_logins_follow_the_policy() {
    let tls_only = policy(|c| c.plaintext_min_cipher = 1);
    let plain = ServerContext::new(Service::Imap, "h");
    let pw = Password::new("alice-pw");
    assert_eq!(
        ServerSession::password_login(&tls_only, &plain, "alice", &pw).unwrap_err(),
        Error::EncryptionRequired
    );
    let secure = plain.clone().with_tls(tls());
    let auth = finish(
        ServerSession::password_login(&tls_only, &secure, "alice", &pw),
        &common::backend(),
    )
    .unwrap();
    assert_eq!(auth.authcid(), "alice");
    // Cleartext passwords refused altogether, or not among the mechanisms.
    let never = policy(|c| c.plaintext_min_cipher = -1);
    assert_eq!(
        ServerSession::password_login(&never, &secure, "alice", &pw).unwrap_err(),
        Error::MechanismUnavailable
    );
    let scram_only = policy(|c| *c = PolicyConfig::default().with_mech_list("SCRAM-SHA-256"));
    assert_eq!(
        ServerSession::password_login(&scram_only, &secure, "alice", &pw).unwrap_err(),
        Error::MechanismUnavailable
    );
}

/// The client's `APOP name digest` (or CRAM-MD5 `name digest`) for `salt`.
fn digest_response(m: Mechanism, user: &str, password: &str, salt: &Salt) -> Vec<u8> {
    let cctx = ClientContext::new(Service::Pop, "h");
    let mut client = ClientSession::new(m, Credentials::new(user, password), &cctx).unwrap();
    client.step(salt.as_str().as_bytes()).unwrap()
}

#[test]
fn apop_is_checked_against_the_connections_timestamp_and_may_be_retried() {
    let backend = common::backend();
    let p = policy(|c| c.has_plain_passwords = true);
    let ctx = ServerContext::new(Service::Pop, "mail.example");
    // One timestamp for the connection, sent in the greeting.
    let salt = Salt::for_greeting(&ctx).unwrap();
    assert!(salt.as_str().starts_with('<') && salt.as_str().ends_with("@mail.example>"));
    assert_ne!(salt, Salt::for_greeting(&ctx).unwrap());
    // A wrong password first, then the right one on the same connection.
    let wrong = digest_response(Mechanism::Apop, "alice", "wrong", &salt);
    assert_eq!(
        finish(
            ServerSession::salted_login(&p, &ctx, Mechanism::Apop, &salt, &wrong),
            &backend
        )
        .unwrap_err(),
        Error::BadCredentials
    );
    let right = digest_response(Mechanism::Apop, "alice", "alice-pw", &salt);
    let auth = finish(
        ServerSession::salted_login(&p, &ctx, Mechanism::Apop, &salt, &right),
        &backend,
    )
    .unwrap();
    assert_eq!(
        (auth.authcid(), auth.mechanism()),
        ("alice", Mechanism::Apop)
    );
    // The digest of another timestamp does not pass.
    let other = Salt::for_greeting(&ctx).unwrap();
    assert_eq!(
        finish(
            ServerSession::salted_login(&p, &ctx, Mechanism::Apop, &other, &right),
            &backend
        )
        .unwrap_err(),
        Error::BadCredentials
    );
    // APOP needs cleartext passwords in the directory, and POP3.
    let no_plain = policy(|_| {});
    assert_eq!(
        ServerSession::salted_login(&no_plain, &ctx, Mechanism::Apop, &salt, &right).unwrap_err(),
        Error::MechanismUnavailable
    );
    let imap = ServerContext::new(Service::Imap, "h");
    assert_eq!(
        ServerSession::salted_login(&p, &imap, Mechanism::Apop, &salt, &right).unwrap_err(),
        Error::MechanismUnavailable
    );
    assert_eq!(
        ServerSession::salted_login(&p, &ctx, Mechanism::Plain, &salt, &right).unwrap_err(),
        Error::MechanismUnavailable
    );
}

#[test]
fn cram_md5_against_a_salt_the_caller_supplies() {
    // nginx `Auth-Method: cram-md5` with `Auth-Salt: <...>` from its own
    // challenge.
    let backend = common::backend();
    let p = policy(|c| c.has_plain_passwords = true);
    let ctx = ServerContext::new(Service::Imap, "h");
    let salt = Salt::given("<4711.1234567890@nginx.example>\r\n");
    assert_eq!(salt.as_str(), "<4711.1234567890@nginx.example>");
    let response = digest_response(Mechanism::CramMd5, "alice", "alice-pw", &salt);
    let auth = finish(
        ServerSession::salted_login(&p, &ctx, Mechanism::CramMd5, &salt, &response),
        &backend,
    )
    .unwrap();
    assert_eq!(auth.authcid(), "alice");
    let wrong = digest_response(Mechanism::CramMd5, "alice", "nope", &salt);
    assert_eq!(
        finish(
            ServerSession::salted_login(&p, &ctx, Mechanism::CramMd5, &salt, &wrong),
            &backend
        )
        .unwrap_err(),
        Error::BadCredentials
    );
    assert!(matches!(
        ServerSession::salted_login(&p, &ctx, Mechanism::CramMd5, &salt, b"alice"),
        Err(Error::Malformed { .. })
    ));
}
