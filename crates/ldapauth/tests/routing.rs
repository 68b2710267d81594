//! The directory entry after every mechanism (issue: routing and policy
//! data, canonical identity): a login through the sasl exchange ends with
//! an `Authenticated` whose account carries `mailHost`, the configured extra
//! attributes, the user's and the domain's service-access filters and the
//! canonical `uid@domain` name, whatever the client typed — against a real
//! slapd.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::{add_user, directory, settings, unique};
use portcullis_sasl::{
    Authenticated, Backends, ClientContext, ClientSession, Credentials, ExternalIdentity,
    MIN_ITERATIONS, Mechanism, Password, Policy, PolicyConfig, Salt, ScramAlgorithm, ScramSecret,
    ServerContext, ServerSession, Service, Step,
};
use portcullis_test_support::slapd::Slapd;

const HOST: &str = "mail.example.com";

/// Runs our client against our server with the directory answering.
async fn login(
    backends: &Backends,
    m: Mechanism,
    sctx: &ServerContext,
    creds: Credentials,
) -> Result<Authenticated, portcullis_sasl::Error> {
    let cctx = ClientContext::new(Service::Imap, HOST);
    let mut client = ClientSession::new(m, creds, &cctx)?;
    let mut server = ServerSession::new(m, sctx)?;
    let first = client.initial_response()?;
    let step = server.start(first.as_deref());
    drive(backends, &mut server, step, |c| client.step(c)).await
}

async fn drive(
    backends: &Backends,
    server: &mut ServerSession,
    mut step: Result<Step, portcullis_sasl::Error>,
    mut respond: impl FnMut(&[u8]) -> Result<Vec<u8>, portcullis_sasl::Error>,
) -> Result<Authenticated, portcullis_sasl::Error> {
    for _ in 0..16 {
        step = match step? {
            Step::Verify(req) => server.answer(backends.resolve(&req).await),
            Step::Challenge(c) => {
                let r = respond(&c)?;
                server.step(&r)
            }
            Step::Done(a) => return Ok(a),
            _ => panic!("unknown step"),
        };
    }
    panic!("exchange did not end");
}

/// A user with a cleartext password (for CRAM-MD5, DIGEST-MD5, APOP), a
/// SCRAM-SHA-256 key, a message store and a preferred language.
fn routed_user(slapd: &Slapd) -> String {
    let uid = unique("route");
    let secret = ScramSecret::generate(
        ScramAlgorithm::Sha256,
        &Password::new("pw-1"),
        MIN_ITERATIONS,
    )
    .unwrap();
    let rfc5803 = secret.to_rfc5803();
    let (_, body) = rfc5803.split_once('$').unwrap();
    add_user(
        slapd,
        &uid,
        &["pw-1", &format!("{{SCRAM-SHA-256}}{body}")],
        "mailHost: store7.example.com\npreferredLanguage: fr\n\
         mailAllowedServiceAccess: +imap:ALL\n",
    );
    uid
}

#[tokio::test]
async fn every_mechanism_ends_with_the_directory_entry() {
    let slapd = Slapd::shared();
    let uid = routed_user(slapd);
    let mut s = settings(slapd);
    s.has_plain_passwords = true;
    s.default_domain = Some("example.com".into());
    s.extra_attributes = vec!["preferredLanguage".into()];
    let d = directory(s);
    let mut backends = Backends::new(Arc::new(d.clone()));
    backends.identities = Some(Arc::new(d.clone()));
    let sctx = ServerContext::new(Service::Imap, HOST)
        .with_external(ExternalIdentity::Name(format!("{uid}@example.com")));
    let canonical = format!("{uid}@example.com");

    let check = |m: &str, auth: &Authenticated| {
        let a = auth.account().unwrap_or_else(|| panic!("{m}: no account"));
        assert_eq!(auth.identity(), canonical, "{m}");
        assert_eq!(a.name, canonical, "{m}");
        assert_eq!(a.mail_host.as_deref(), Some("store7.example.com"), "{m}");
        assert_eq!(a.domain.as_deref(), Some("example.com"), "{m}");
        assert_eq!(
            a.dn.as_deref(),
            Some(format!("uid={uid},ou=People,o=example.com,o=example").as_str()),
            "{m}"
        );
        assert_eq!(
            a.allowed_service_access.as_deref(),
            Some("+imap:ALL"),
            "{m}"
        );
        assert_eq!(
            a.domain_allowed_service_access.as_deref(),
            Some("+imap,pop,smtp,http:ALL"),
            "{m}"
        );
        assert_eq!(
            a.attribute("preferredlanguage"),
            Some(&["fr".to_owned()][..]),
            "{m}"
        );
    };

    // Typed without the domain and with it: the same canonical identity.
    for typed in [uid.clone(), canonical.clone()] {
        for m in [
            Mechanism::Plain,
            Mechanism::Login,
            Mechanism::CramMd5,
            Mechanism::DigestMd5,
            Mechanism::ScramSha256,
        ] {
            let auth = login(&backends, m, &sctx, Credentials::new(typed.clone(), "pw-1"))
                .await
                .unwrap_or_else(|e| panic!("{m} as {typed}: {e}"));
            assert_eq!(auth.authcid(), typed, "{m}");
            check(&format!("{m} as {typed}"), &auth);
        }
    }
    let auth = login(
        &backends,
        Mechanism::External,
        &sctx,
        Credentials::external(None),
    )
    .await
    .unwrap();
    check("EXTERNAL", &auth);

    // APOP and the protocol password login, through the policy.
    let mut config = PolicyConfig::default();
    config.has_plain_passwords = true;
    config.plaintext_min_cipher = 0;
    let policy = Policy::new(&config).unwrap();
    let pctx = ServerContext::new(Service::Pop, HOST);
    let (mut server, step) =
        ServerSession::password_login(&policy, &pctx, &uid, &Password::new("pw-1")).unwrap();
    let auth = drive(&backends, &mut server, Ok(step), |_| panic!("no challenge"))
        .await
        .unwrap();
    check("USER/PASS", &auth);
    let salt = Salt::given("<1896.697170952@dbc.mtview.ca.us>");
    let digest: String = {
        use md5::{Digest, Md5};
        Md5::digest(format!("{}pw-1", salt.as_str()).as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let (mut server, step) = ServerSession::salted_login(
        &policy,
        &pctx,
        Mechanism::Apop,
        &salt,
        format!("{uid} {digest}").as_bytes(),
    )
    .unwrap();
    let auth = drive(&backends, &mut server, Ok(step), |_| panic!("no challenge"))
        .await
        .unwrap();
    check("APOP", &auth);
}

#[tokio::test]
async fn the_canonical_form_is_configurable() {
    let slapd = Slapd::shared();
    let uid = routed_user(slapd);
    let mut s = settings(slapd);
    s.canonical_form = "%m".into();
    let backends = Backends::new(Arc::new(directory(s)));
    let sctx = ServerContext::new(Service::Imap, HOST);
    let auth = login(
        &backends,
        Mechanism::Plain,
        &sctx,
        Credentials::new(format!("{uid}@EXAMPLE.com"), "pw-1"),
    )
    .await
    .unwrap();
    // `mail` as the directory holds it, not as typed.
    assert_eq!(auth.identity(), format!("{uid}@example.com"));
}

#[tokio::test]
async fn a_proxied_login_routes_to_the_targets_store() {
    let slapd = Slapd::shared();
    let uid = routed_user(slapd);
    let d = directory(settings(slapd));
    let mut backends = Backends::new(Arc::new(d.clone()));
    backends.proxy = Arc::new(d);
    let sctx = ServerContext::new(Service::Imap, HOST);
    let auth = login(
        &backends,
        Mechanism::Plain,
        &sctx,
        Credentials::new("admin@example.com", "admin-pw")
            .with_authzid(format!("{uid}@example.com")),
    )
    .await
    .unwrap();
    assert_eq!(auth.authcid(), "admin@example.com");
    assert_eq!(auth.identity(), format!("{uid}@example.com"));
    assert_eq!(
        auth.account().and_then(|a| a.mail_host.as_deref()),
        Some("store7.example.com")
    );
}
