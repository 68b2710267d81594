//! Which logins hand their cleartext password on in `Authenticated`, for a
//! proxy that replays it to the user's message store: PLAIN, LOGIN and the
//! protocols' password logins do; proxy authorization, challenge-response
//! mechanisms and EXTERNAL do not. The password never shows in `Debug`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{drive, exchange};
use portcullis_sasl::{
    ClientContext, ClientSession, Credentials, ExternalIdentity, Mechanism, MemoryBackend,
    Password, Policy, PolicyConfig, Salt, ServerContext, ServerSession, Service,
};

fn contexts() -> (ServerContext, ClientContext) {
    (
        ServerContext::new(Service::Imap, "mail.example"),
        ClientContext::new(Service::Imap, "mail.example"),
    )
}

#[test]
fn plain_and_login_carry_the_password_they_verified() {
    let backend = common::backend();
    let (server, client) = contexts();
    for m in [Mechanism::Plain, Mechanism::Login] {
        let (auth, _) = exchange(
            m,
            &server,
            &client,
            Credentials::new("alice", "alice-pw"),
            &backend,
        );
        let auth = auth.unwrap();
        assert_eq!(
            auth.password().map(Password::expose),
            Some("alice-pw"),
            "{m}"
        );
        let debug = format!("{auth:?}");
        assert!(!debug.contains("alice-pw"), "{m}: {debug}");
    }
}

#[test]
fn a_password_login_carries_the_prepared_password() {
    let backend = MemoryBackend::new()
        .with_user("alice", "pass word")
        .unwrap();
    let policy = Policy::new(&PolicyConfig::default()).unwrap();
    let (ctx, _) = contexts();
    // SASLprep maps the no-break space to a space: what was verified is
    // what is handed on.
    let (mut session, step) =
        ServerSession::password_login(&policy, &ctx, "alice", &Password::new("pass\u{a0}word"))
            .unwrap();
    let auth = drive(&mut session, Ok(step), &backend, |_| panic!("no challenge")).unwrap();
    assert_eq!(auth.password().map(Password::expose), Some("pass word"));
}

#[test]
fn a_proxy_authorization_carries_no_password() {
    // admin's password, acting as alice: replaying it as alice's would be
    // wrong, so there is none.
    let backend = common::backend();
    let (server, client) = contexts();
    let (auth, _) = exchange(
        Mechanism::Plain,
        &server,
        &client,
        Credentials::new("admin", "admin-pw").with_authzid("alice"),
        &backend,
    );
    let auth = auth.unwrap();
    assert_eq!(auth.identity(), "alice");
    assert!(auth.password().is_none());
    // An authzid equal to the authcid is no proxying.
    let (auth, _) = exchange(
        Mechanism::Plain,
        &server,
        &client,
        Credentials::new("alice", "alice-pw").with_authzid("alice"),
        &backend,
    );
    assert_eq!(
        auth.unwrap().password().map(Password::expose),
        Some("alice-pw")
    );
}

#[test]
fn challenge_response_mechanisms_and_external_carry_none() {
    let backend =
        common::backend().with_identity(ExternalIdentity::Name("cn=alice".into()), "alice");
    let (server, client) = contexts();
    for m in [
        Mechanism::CramMd5,
        Mechanism::DigestMd5,
        Mechanism::ScramSha1,
        Mechanism::ScramSha256,
    ] {
        let (auth, _) = exchange(
            m,
            &server,
            &client,
            Credentials::new("alice", "alice-pw"),
            &backend,
        );
        let auth = auth.unwrap_or_else(|e| panic!("{m}: {e}"));
        assert_eq!(auth.authcid(), "alice", "{m}");
        assert!(auth.password().is_none(), "{m}");
    }
    let external = server
        .clone()
        .with_external(ExternalIdentity::Name("cn=alice".into()));
    let (auth, _) = exchange(
        Mechanism::External,
        &external,
        &client,
        Credentials::external(None),
        &backend,
    );
    let auth = auth.unwrap();
    assert_eq!(auth.identity(), "alice");
    assert!(auth.password().is_none());
    // APOP against the connection's timestamp.
    let pop = ServerContext::new(Service::Pop, "mail.example");
    let mut config = PolicyConfig::default();
    config.has_plain_passwords = true;
    let policy = Policy::new(&config).unwrap();
    let salt = Salt::for_greeting(&pop).unwrap();
    let mut apop = ClientSession::new(
        Mechanism::Apop,
        Credentials::new("alice", "alice-pw"),
        &ClientContext::new(Service::Pop, "mail.example"),
    )
    .unwrap();
    let response = apop.step(salt.as_str().as_bytes()).unwrap();
    let (mut session, step) =
        ServerSession::salted_login(&policy, &pop, Mechanism::Apop, &salt, &response).unwrap();
    let auth = drive(&mut session, Ok(step), &backend, |_| panic!("no challenge")).unwrap();
    assert_eq!(auth.mechanism(), Mechanism::Apop);
    assert!(auth.password().is_none());
}
