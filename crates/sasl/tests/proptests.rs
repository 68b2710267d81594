//! Property tests: our client against our server for random credentials,
//! and arbitrary input never panics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use portcullis_sasl::danger::FixedNonce as _;
use portcullis_sasl::framing::{self, AuthExchange, Event, Protocol};
use portcullis_sasl::{
    ClientContext, ClientSession, Credentials, Error, ExternalIdentity, Mechanism, MemoryBackend,
    Policy, PolicyConfig, ScramSecret, ServerContext, ServerSession, Service, Step, TlsState,
    TlsVersion,
};
use proptest::prelude::*;

const MECHS: [Mechanism; 9] = [
    Mechanism::Plain,
    Mechanism::Login,
    Mechanism::CramMd5,
    Mechanism::DigestMd5,
    Mechanism::ScramSha1,
    Mechanism::ScramSha256,
    Mechanism::ScramSha1Plus,
    Mechanism::ScramSha256Plus,
    Mechanism::Apop,
];

fn tls() -> TlsState {
    TlsState::new(TlsVersion::Tls13, false)
        .with_tls_exporter(vec![42; 32])
        .with_tls_server_end_point(vec![7; 32])
}

/// User names: letters (some non-ASCII), digits, and the characters that
/// need escaping somewhere (`,` `=` `"` `\` space).
fn user() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9éßЖ中,=\"\\\\. @_-]{0,12}[a-zA-Z0-9éßЖ中]"
}

fn password() -> impl Strategy<Value = String> {
    "[ -~éßЖ中]{0,24}[!-~]"
}

fn round_trip(
    m: Mechanism,
    user: &str,
    pw: &str,
    authzid: Option<&str>,
    try_pw: &str,
) -> Result<String, Error> {
    let backend = MemoryBackend::new()
        .with_user(user, pw)
        .unwrap()
        .with_proxy_admin(user);
    let sctx = ServerContext::new(Service::Pop, "mail.example").with_tls(tls());
    let mut cctx = ClientContext::new(Service::Pop, "mail.example").with_tls(tls());
    cctx.server_offers_plus = true;
    let mut creds = Credentials::new(user, try_pw);
    if let Some(z) = authzid {
        creds = creds.with_authzid(z);
    }
    if m == Mechanism::Apop {
        // APOP: the "challenge" is the greeting's timestamp.
        let mut server = ServerSession::new(m, &sctx)?;
        let mut client = ClientSession::new(m, creds, &cctx)?;
        let cmd = client.step(server.apop_timestamp().unwrap().as_bytes())?;
        let start = server.start(Some(&cmd));
        return common::drive(&mut server, start, &backend, |_| panic!("no challenge"))
            .map(|a| a.authcid().to_owned());
    }
    let (r, client) = common::exchange(m, &sctx, &cctx, creds, &backend);
    let auth = r?;
    let client = client.unwrap();
    assert!(
        client.is_complete(),
        "{m}: server done but client not complete"
    );
    if let Some(z) = authzid.filter(|z| *z != auth.authcid()) {
        assert_eq!(auth.authzid(), Some(z));
    }
    Ok(auth.authcid().to_owned())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn client_server_round_trip(user in user(), pw in password(), m in 0..MECHS.len()) {
        let m = MECHS[m];
        let got = round_trip(m, &user, &pw, None, &pw);
        prop_assert_eq!(got.as_deref(), Ok(user.as_str()), "{}", m);
    }

    #[test]
    fn wrong_password_fails(user in user(), pw in password(), m in 0..MECHS.len()) {
        let m = MECHS[m];
        let wrong = format!("{pw}x");
        prop_assert_eq!(round_trip(m, &user, &pw, None, &wrong), Err(Error::BadCredentials), "{}", m);
    }

    #[test]
    fn proxy_round_trip(user in user(), pw in password(), authzid in "[a-z]{1,8}") {
        for m in [Mechanism::Plain, Mechanism::DigestMd5, Mechanism::ScramSha256] {
            let got = round_trip(m, &user, &pw, Some(&authzid), &pw);
            prop_assert_eq!(got.as_deref(), Ok(user.as_str()), "{}", m);
        }
    }
}

/// Built once: deriving SCRAM secrets is deliberately slow.
static BACKEND: std::sync::LazyLock<MemoryBackend> = std::sync::LazyLock::new(|| {
    common::backend().with_identity(ExternalIdentity::Name("c".into()), "alice")
});

fn all_mechanisms() -> Vec<Mechanism> {
    Mechanism::ALL.to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn server_never_panics(
        m in 0..Mechanism::ALL.len(),
        initial in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
        rest in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..4),
    ) {
        let m = all_mechanisms()[m];
        let backend = &*BACKEND;
        let ctx = ServerContext::new(Service::Imap, "h")
            .with_tls(tls())
            .with_external(ExternalIdentity::Name("c".into()));
        let Ok(mut server) = ServerSession::new(m, &ctx) else { return Ok(()) };
        let mut step = server.start(initial.as_deref());
        let mut rest = rest.into_iter();
        for _ in 0..8 {
            step = match step {
                Ok(Step::Challenge(_)) => match rest.next() {
                    Some(r) => server.step(&r),
                    None => break,
                },
                Ok(Step::Verify(r)) => server.answer(backend.answer(&r)),
                _ => break,
            };
        }
    }

    #[test]
    fn client_never_panics(
        m in 0..Mechanism::ALL.len(),
        challenges in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..4),
    ) {
        let m = all_mechanisms()[m];
        let ctx = ClientContext::new(Service::Imap, "h").with_tls(tls());
        let creds = Credentials::new("alice", "alice-pw");
        let Ok(mut client) = ClientSession::new(m, creds, &ctx) else { return Ok(()) };
        let _ = client.initial_response();
        for c in challenges {
            let _ = client.step(&c);
        }
    }

    #[test]
    fn scram_client_never_panics_on_server_first(
        salt in "[A-Za-z0-9+/]{0,12}={0,2}", iter in any::<u32>(), tail in "[ -~]{0,20}",
    ) {
        let ctx = ClientContext::new(Service::Imap, "h").dangerous_fixed_nonce("abc");
        let mut client = ClientSession::new(Mechanism::ScramSha256, Credentials::new("u", "p"), &ctx).unwrap();
        let _ = client.initial_response();
        let iter = iter % 100_000;
        let _ = client.step(format!("r=abcd,s={salt},i={iter}{tail}").as_bytes());
    }

    #[test]
    fn framing_never_panics(
        proto in 0..3usize,
        name in proptest::collection::vec(any::<u8>(), 0..20),
        initial in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..100)),
        lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..100), 0..4),
    ) {
        let proto = [Protocol::Imap, Protocol::Pop3, Protocol::Smtp][proto];
        let _ = framing::decode_line(&name);
        let mut config = PolicyConfig::default();
        config.has_plain_passwords = true;
        config.imap_allow_anonymous = true;
        config.has_scram_secrets = true;
        let policy = Policy::new(&config).unwrap();
        let ctx = ServerContext::new(Service::Imap, "h");
        let backend = &*BACKEND;
        let (mut ex, mut ev) = AuthExchange::start(proto, Some("t"), &name, initial.as_deref(), &policy, &ctx);
        let mut lines = lines.into_iter();
        for _ in 0..8 {
            ev = match ev {
                Event::Send(_) => match lines.next() {
                    Some(l) => ex.line(&l),
                    None => break,
                },
                Event::Verify(r) => ex.answer(backend.answer(&r)),
                Event::Success { reply, .. } | Event::Failure { reply, .. } => {
                    // Exactly one line, CRLF-terminated.
                    prop_assert!(reply.ends_with(b"\r\n"));
                    prop_assert_eq!(reply.iter().filter(|b| **b == b'\n').count(), 1);
                    break;
                }
                _ => break,
            };
        }
    }

    #[test]
    fn scram_secret_parse_never_panics(s in "\\PC{0,80}") {
        let _ = ScramSecret::parse(&s);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    #[test]
    fn scram_secret_rfc5803_round_trip(pw in password(), salt in proptest::collection::vec(any::<u8>(), 1..24)) {
        for alg in [portcullis_sasl::ScramAlgorithm::Sha1, portcullis_sasl::ScramAlgorithm::Sha256] {
            let s = ScramSecret::derive(alg, &pw.as_str().into(), &salt, 4096).unwrap();
            let text = s.to_rfc5803();
            prop_assert_eq!(ScramSecret::parse(&text).unwrap(), s);
        }
    }
}
