//! Every mechanism ends with the account the backend returned: the
//! canonical name and the routing data (message store, filters) are there
//! after PLAIN as after SCRAM or EXTERNAL, without a second lookup.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use portcullis_sasl::{
    Account, ClientContext, Credentials, ExternalIdentity, Mechanism, MemoryBackend, Policy,
    PolicyConfig, Salt, ServerContext, ServerSession, Service,
};

const HOST: &str = "imap.example.com";

fn account(name: &str, store: &str) -> Account {
    let mut a = Account::new(name);
    a.mail_host = Some(store.into());
    a.domain = Some("example.com".into());
    a.allowed_service_access = Some("+imap:ALL".into());
    a.set_attribute("preferredLanguage", vec!["fr".into()]);
    a
}

fn backend() -> MemoryBackend {
    common::backend()
        .with_account("alice", account("alice@example.com", "store1.example.com"))
        .with_account("bob", account("bob@example.com", "store2.example.com"))
        .with_identity(ExternalIdentity::Name("cn=alice".into()), "alice")
}

#[test]
fn every_mechanism_ends_with_the_backends_account() {
    let backend = backend();
    let sctx = ServerContext::new(Service::Imap, HOST)
        .with_external(ExternalIdentity::Name("cn=alice".into()));
    let cctx = ClientContext::new(Service::Imap, HOST);
    let expected = account("alice@example.com", "store1.example.com");
    for m in [
        Mechanism::Plain,
        Mechanism::Login,
        Mechanism::CramMd5,
        Mechanism::DigestMd5,
        Mechanism::ScramSha1,
        Mechanism::ScramSha256,
    ] {
        let (r, _) = common::exchange(
            m,
            &sctx,
            &cctx,
            Credentials::new("alice", "alice-pw"),
            &backend,
        );
        let auth = r.unwrap_or_else(|e| panic!("{m}: {e}"));
        assert_eq!(auth.account(), Some(&expected), "{m}");
        // What the client typed is the authcid; the identity is canonical.
        assert_eq!(auth.authcid(), "alice", "{m}");
        assert_eq!(auth.identity(), "alice@example.com", "{m}");
    }
    let (r, _) = common::exchange(
        Mechanism::External,
        &sctx,
        &cctx,
        Credentials::external(None),
        &backend,
    );
    let auth = r.unwrap();
    assert_eq!(auth.account(), Some(&expected));
    assert_eq!(auth.identity(), "alice@example.com");
}

#[test]
fn apop_and_protocol_logins_end_with_the_account() {
    let backend = backend();
    let mut config = PolicyConfig::default();
    config.has_plain_passwords = true;
    config.plaintext_min_cipher = 0;
    let policy = Policy::new(&config).unwrap();
    let ctx = ServerContext::new(Service::Pop, HOST);
    let (mut s, step) = ServerSession::password_login(
        &policy,
        &ctx,
        "bob",
        &portcullis_sasl::Password::new("bob-pw"),
    )
    .unwrap();
    let auth = common::drive(&mut s, Ok(step), &backend, |_| panic!("no challenge")).unwrap();
    assert_eq!(auth.identity(), "bob@example.com");
    assert_eq!(
        auth.account().and_then(|a| a.mail_host.as_deref()),
        Some("store2.example.com")
    );

    let salt = Salt::given("<1896.697170952@dbc.mtview.ca.us>");
    let digest = {
        use md5::{Digest, Md5};
        let d = Md5::digest(format!("{}bob-pw", salt.as_str()).as_bytes());
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let (mut s, step) = ServerSession::salted_login(
        &policy,
        &ctx,
        Mechanism::Apop,
        &salt,
        format!("bob {digest}").as_bytes(),
    )
    .unwrap();
    let auth = common::drive(&mut s, Ok(step), &backend, |_| panic!("no challenge")).unwrap();
    assert_eq!(auth.identity(), "bob@example.com");
    assert_eq!(
        auth.account()
            .and_then(|a| a.attribute("PREFERREDLANGUAGE")),
        Some(&["fr".to_owned()][..])
    );
}

#[test]
fn a_proxied_login_acts_with_the_targets_account() {
    let backend = backend();
    let sctx = ServerContext::new(Service::Imap, HOST);
    let cctx = ClientContext::new(Service::Imap, HOST);
    let (r, _) = common::exchange(
        Mechanism::Plain,
        &sctx,
        &cctx,
        Credentials::new("admin", "admin-pw").with_authzid("bob"),
        &backend,
    );
    let auth = r.unwrap();
    assert_eq!(auth.authcid(), "admin");
    assert_eq!(auth.authzid(), Some("bob"));
    // The store and filters that apply are bob's, not the admin's.
    assert_eq!(auth.identity(), "bob@example.com");
    assert_eq!(
        auth.account().and_then(|a| a.mail_host.as_deref()),
        Some("store2.example.com")
    );
}

#[test]
fn anonymous_has_no_account() {
    let backend = backend();
    let sctx = ServerContext::new(Service::Imap, HOST);
    let cctx = ClientContext::new(Service::Imap, HOST);
    let (r, _) = common::exchange(
        Mechanism::Anonymous,
        &sctx,
        &cctx,
        Credentials::anonymous("trace"),
        &backend,
    );
    let auth = r.unwrap();
    assert!(auth.account().is_none());
    assert_eq!(auth.identity(), "");
}
