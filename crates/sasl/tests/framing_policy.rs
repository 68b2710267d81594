//! Protocol framing (IMAP, POP3, SMTP) and mechanism policy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use portcullis_sasl::framing::{
    self, AuthExchange, ClientLine, Event, Failure, Protocol, decode_initial_response, decode_line,
};
use portcullis_sasl::{
    Authenticated, Error, ExternalIdentity, Mechanism, MemoryBackend, Policy, PolicyConfig,
    ServerContext, ServerSession, Service, Step, TlsState, TlsVersion,
};
use zeroize::Zeroizing;

fn backend() -> MemoryBackend {
    MemoryBackend::new()
        .with_user("alice", "alice-pw")
        .unwrap()
        .with_identity(ExternalIdentity::Name("cert".into()), "alice")
}

fn tls() -> TlsState {
    TlsState::new(TlsVersion::Tls13, false).with_tls_exporter(vec![1; 32])
}

fn policy(f: impl FnOnce(&mut PolicyConfig)) -> Policy {
    let mut c = PolicyConfig::default();
    f(&mut c);
    Policy::new(&c).unwrap()
}

/// Runs an exchange with scripted client lines; returns the bytes written
/// and the final event's outcome.
fn script(
    protocol: Protocol,
    mech: &[u8],
    initial: Option<&[u8]>,
    lines: &[&[u8]],
    policy: &Policy,
    ctx: &ServerContext,
    backend: &MemoryBackend,
) -> (Vec<u8>, Result<Authenticated, Error>) {
    let mut written = Vec::new();
    let (mut ex, mut event) = AuthExchange::start(protocol, Some("a1"), mech, initial, policy, ctx);
    let mut lines = lines.iter();
    loop {
        event = match event {
            Event::Send(bytes) => {
                written.extend_from_slice(&bytes);
                match lines.next() {
                    Some(l) => ex.line(l),
                    None => panic!("script ran out: {}", String::from_utf8_lossy(&written)),
                }
            }
            Event::Verify(r) => ex.answer(backend.answer(&r)),
            Event::Success { reply, auth } => {
                written.extend_from_slice(&reply);
                assert!(ex.is_finished());
                return (written, Ok(auth));
            }
            Event::Failure { reply, error } => {
                written.extend_from_slice(&reply);
                assert!(ex.is_finished());
                return (written, Err(error));
            }
            _ => panic!("unknown event"),
        };
    }
}

fn b64(s: &[u8]) -> Vec<u8> {
    STANDARD.encode(s).into_bytes()
}

#[test]
fn line_decoding_is_strict() {
    assert_eq!(decode_line(b"*\r\n").unwrap(), ClientLine::Abort);
    let response = |b: &[u8]| ClientLine::Response(Zeroizing::new(b.to_vec()));
    assert_eq!(decode_line(b"\r\n").unwrap(), response(b""));
    assert_eq!(decode_line(b"YWJj\r\n").unwrap(), response(b"abc"));
    assert_eq!(decode_line(b"YWJj").unwrap(), response(b"abc"));
    // Decoded responses may hold passwords: their buffers are wiped on drop.
    fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>(_: &T) {}
    if let ClientLine::Response(r) = decode_line(b"AGFsaWNlAHNlY3JldA==").unwrap() {
        wiped_on_drop(&r);
        assert_eq!(&r[..], b"\0alice\0secret");
    }
    wiped_on_drop(&decode_initial_response(Some(b"YWJj")).unwrap().unwrap());
    for bad in [
        &b"YWJ"[..],   // missing padding
        b"YW Jj",      // space
        b"YWJj\r\r\n", // stray CR
        b"YW\nJj",     // embedded LF
        b"YWJj==",     // wrong padding
        b"YWJ=",       // non-canonical trailing bits
        b"YW_j",       // URL-safe alphabet
        b"**",
        b"= ",
    ] {
        assert_eq!(
            decode_line(bad),
            Err(Error::Base64),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    let long = vec![b'A'; framing::MAX_LINE + 4];
    assert_eq!(decode_line(&long), Err(Error::TooLong));
    assert_eq!(decode_initial_response(None).unwrap(), None);
    assert_eq!(
        decode_initial_response(Some(b"=")).unwrap(),
        Some(Zeroizing::new(vec![]))
    );
    assert_eq!(decode_initial_response(Some(b"")), Err(Error::Base64));
    assert_eq!(
        decode_initial_response(Some(b"YWJj")).unwrap(),
        Some(Zeroizing::new(b"abc".to_vec()))
    );
}

#[test]
fn imap_sasl_ir_plain_success() {
    let (out, r) = script(
        Protocol::Imap,
        b"plain",
        Some(&b64(b"\0alice\0alice-pw")),
        &[],
        &Policy::default(),
        &ServerContext::new(Service::Imap, "h"),
        &backend(),
    );
    assert_eq!(r.unwrap().authcid(), "alice");
    assert_eq!(out, b"a1 OK Authentication successful\r\n");
}

#[test]
fn challenges_and_replies_per_protocol() {
    let ctx = |s| ServerContext::new(s, "h");
    let p = policy(|c| c.mech_list = vec!["PLAIN".into(), "LOGIN".into()]);
    let cases: [(Protocol, Service, &[u8], &[u8]); 3] = [
        (
            Protocol::Imap,
            Service::Imap,
            b"+ \r\n",
            b"a1 NO [AUTHENTICATIONFAILED] Authentication failed\r\n",
        ),
        (
            Protocol::Pop3,
            Service::Pop,
            b"+ \r\n",
            b"-ERR [AUTH] Authentication failed\r\n",
        ),
        (
            Protocol::Smtp,
            Service::Smtp,
            b"334 \r\n",
            b"535 5.7.8 Authentication credentials invalid\r\n",
        ),
    ];
    for (proto, svc, challenge, fail) in cases {
        // No initial response: an empty challenge first, then the reply.
        let (out, r) = script(
            proto,
            b"PLAIN",
            None,
            &[&b64(b"\0alice\0wrong")],
            &p,
            &ctx(svc),
            &backend(),
        );
        assert_eq!(r.unwrap_err(), Error::BadCredentials);
        assert_eq!(out, [challenge, fail].concat(), "{proto:?}");
    }
    // LOGIN over SMTP with the user name as initial response.
    let (out, r) = script(
        Protocol::Smtp,
        b"LOGIN",
        Some(&b64(b"alice")),
        &[&b64(b"alice-pw")],
        &p,
        &ctx(Service::Smtp),
        &backend(),
    );
    assert!(r.is_ok());
    assert_eq!(
        out,
        b"334 UGFzc3dvcmQ6\r\n235 2.7.0 Authentication successful\r\n"
    );
}

#[test]
fn unavailable_is_distinct_from_bad_credentials() {
    let mut down = backend();
    down.set_unavailable(true);
    let expected: [(Protocol, Service, &[u8]); 3] = [
        (
            Protocol::Imap,
            Service::Imap,
            b"a1 NO [UNAVAILABLE] Authentication temporarily unavailable\r\n",
        ),
        (
            Protocol::Pop3,
            Service::Pop,
            b"-ERR [SYS/TEMP] Authentication temporarily unavailable\r\n",
        ),
        (
            Protocol::Smtp,
            Service::Smtp,
            b"454 4.7.0 Temporary authentication failure\r\n",
        ),
    ];
    for (proto, svc, reply) in expected {
        let (out, r) = script(
            proto,
            b"PLAIN",
            Some(&b64(b"\0alice\0alice-pw")),
            &[],
            &Policy::default(),
            &ServerContext::new(svc, "h"),
            &down,
        );
        assert_eq!(r.unwrap_err(), Error::Unavailable);
        assert_eq!(out, reply);
    }
}

#[test]
fn abort_mid_exchange_and_fresh_state_per_auth() {
    let p = policy(|c| c.has_scram_secrets = true);
    let ctx = ServerContext::new(Service::Imap, "h");
    let (out, r) = script(
        Protocol::Imap,
        b"SCRAM-SHA-256",
        None,
        &[&b64(b"n,,n=alice,r=abcdef"), b"*"],
        &p,
        &ctx,
        &backend(),
    );
    assert_eq!(r.unwrap_err(), Error::Aborted);
    assert!(out.ends_with(b"a1 BAD Authentication aborted\r\n"));
    let (out, _) = script(
        Protocol::Smtp,
        b"PLAIN",
        None,
        &[b"*"],
        &p,
        &ctx,
        &backend(),
    );
    assert_eq!(out, b"334 \r\n501 5.0.0 Authentication aborted\r\n");

    // A finished exchange refuses more input; a new AUTH starts afresh.
    let (mut ex, ev) = AuthExchange::start(
        Protocol::Imap,
        Some("a2"),
        b"PLAIN",
        Some(&b64(b"\0alice\0alice-pw")),
        &p,
        &ctx,
    );
    let Event::Verify(req) = ev else { panic!() };
    assert!(matches!(
        ex.answer(backend().answer(&req)),
        Event::Success { .. }
    ));
    assert!(matches!(
        ex.line(&b64(b"\0alice\0alice-pw")),
        Event::Failure { .. }
    ));
    let (_, ev) = AuthExchange::start(Protocol::Imap, Some("a3"), b"PLAIN", None, &p, &ctx);
    assert!(matches!(ev, Event::Send(ref b) if b == b"+ \r\n"));
}

#[test]
fn abort_mid_exchange_for_every_mechanism_and_protocol() {
    let p = policy(|c| {
        c.has_scram_secrets = true;
        c.has_plain_passwords = true;
        c.imap_allow_anonymous = true;
        c.mech_list = Mechanism::ALL.iter().map(|m| m.name().to_owned()).collect();
    });
    let ctx = ServerContext::new(Service::Imap, "h")
        .with_tls(tls())
        .with_external(ExternalIdentity::Name("cert".into()));
    let mut seen = 0;
    for m in Mechanism::ALL {
        if m == Mechanism::Apop {
            // POP3's own APOP command: no SASL exchange to abort.
            continue;
        }
        for (protocol, reply) in [
            (Protocol::Imap, &b"a1 BAD Authentication aborted\r\n"[..]),
            (Protocol::Pop3, b"-ERR Authentication aborted\r\n"),
            (Protocol::Smtp, b"501 5.0.0 Authentication aborted\r\n"),
        ] {
            let (out, r) = script(
                protocol,
                m.name().as_bytes(),
                None,
                &[b"*"],
                &p,
                &ctx,
                &backend(),
            );
            assert_eq!(r.unwrap_err(), Error::Aborted, "{m:?} {protocol:?}");
            assert!(
                out.ends_with(reply),
                "{m:?} {protocol:?}: {}",
                String::from_utf8_lossy(&out)
            );
        }
        seen += 1;
    }
    assert_eq!(seen, Mechanism::ALL.len() - 1);
}

#[test]
fn a_second_auth_has_its_own_reply() {
    assert_eq!(
        framing::failure_reply(Protocol::Smtp, None, Failure::AlreadyAuthenticated),
        b"503 5.5.1 Already authenticated\r\n"
    );
    assert_eq!(
        framing::failure_reply(Protocol::Imap, Some("a9"), Failure::AlreadyAuthenticated),
        b"a9 BAD Already authenticated\r\n"
    );
    assert_eq!(
        framing::failure_reply(Protocol::Pop3, None, Failure::AlreadyAuthenticated),
        b"-ERR Already authenticated\r\n"
    );
}

#[test]
fn an_initial_response_to_a_server_first_mechanism_is_a_syntax_error() {
    let p = policy(|c| c.has_plain_passwords = true);
    let ctx = ServerContext::new(Service::Smtp, "h");
    for mech in [&b"CRAM-MD5"[..], b"DIGEST-MD5"] {
        let (out, r) = script(
            Protocol::Smtp,
            mech,
            Some(b"eA=="),
            &[],
            &p,
            &ctx,
            &backend(),
        );
        assert!(matches!(r, Err(Error::Malformed { .. })), "{r:?}");
        assert!(
            out.starts_with(b"501 "),
            "{}",
            String::from_utf8_lossy(&out)
        );
    }
}

#[test]
fn malformed_and_oversized_lines() {
    let ctx = ServerContext::new(Service::Smtp, "h");
    let p = Policy::default();
    let (out, r) = script(
        Protocol::Smtp,
        b"PLAIN",
        None,
        &[b"not base64!"],
        &p,
        &ctx,
        &backend(),
    );
    assert_eq!(r.unwrap_err(), Error::Base64);
    assert!(out.ends_with(b"501 5.5.2 Cannot decode response\r\n"));
    let long = vec![b'A'; framing::MAX_LINE + 4];
    let (out, r) = script(
        Protocol::Smtp,
        b"PLAIN",
        None,
        &[&long],
        &p,
        &ctx,
        &backend(),
    );
    assert_eq!(r.unwrap_err(), Error::TooLong);
    assert!(out.ends_with(b"500 5.5.6 Authentication Exchange line is too long\r\n"));
    let ctx = ServerContext::new(Service::Imap, "h");
    let (out, _) = script(
        Protocol::Imap,
        b"PLAIN",
        Some(b"%%%"),
        &[],
        &p,
        &ctx,
        &backend(),
    );
    assert_eq!(out, b"a1 BAD Invalid authentication data\r\n");
    let (out, _) = script(
        Protocol::Imap,
        b"PLAIN",
        Some(&b64(b"alice")),
        &[],
        &p,
        &ctx,
        &backend(),
    );
    assert_eq!(out, b"a1 BAD Invalid authentication data\r\n");
}

#[test]
fn unknown_mechanism_is_never_reflected() {
    let evil = b"X-EVIL\r\na2 OK pwned";
    for (proto, svc, reply) in [
        (
            Protocol::Imap,
            Service::Imap,
            &b"a1 NO Unsupported authentication mechanism\r\n"[..],
        ),
        (
            Protocol::Pop3,
            Service::Pop,
            b"-ERR Unsupported authentication mechanism\r\n",
        ),
        (
            Protocol::Smtp,
            Service::Smtp,
            b"504 5.5.4 Unrecognized authentication type\r\n",
        ),
    ] {
        let ctx = ServerContext::new(svc, "h");
        let (out, r) = script(proto, evil, None, &[], &Policy::default(), &ctx, &backend());
        assert_eq!(r.unwrap_err(), Error::MechanismUnavailable);
        assert_eq!(out, reply);
        // A known but disabled mechanism gets the same answer.
        let (out, _) = script(
            proto,
            b"CRAM-MD5",
            None,
            &[],
            &Policy::default(),
            &ctx,
            &backend(),
        );
        assert_eq!(out, reply);
    }
    // APOP is not an AUTH mechanism.
    let ctx = ServerContext::new(Service::Pop, "h");
    let p = policy(|c| c.has_plain_passwords = true);
    let (_, r) = script(Protocol::Pop3, b"APOP", None, &[], &p, &ctx, &backend());
    assert_eq!(r.unwrap_err(), Error::MechanismUnavailable);
}

#[test]
fn imap_tag_is_never_an_injection_vector() {
    let reply = framing::failure_reply(Protocol::Imap, Some("a1\r\n* OK"), Failure::BadCredentials);
    assert!(reply.starts_with(b"* NO [AUTHENTICATIONFAILED]"));
    assert_eq!(reply.iter().filter(|b| **b == b'\n').count(), 1);
}

#[test]
fn encryption_required_replies() {
    let p = policy(|c| c.plaintext_min_cipher = 128);
    for (proto, svc, reply) in [
        (
            Protocol::Imap,
            Service::Imap,
            &b"a1 NO [PRIVACYREQUIRED] Encryption required for this mechanism\r\n"[..],
        ),
        (
            Protocol::Pop3,
            Service::Pop,
            b"-ERR [AUTH] Encryption required for this mechanism\r\n",
        ),
        (
            Protocol::Smtp,
            Service::Smtp,
            b"538 5.7.11 Encryption required for requested authentication mechanism\r\n",
        ),
    ] {
        let ctx = ServerContext::new(svc, "h");
        let (out, r) = script(
            proto,
            b"PLAIN",
            Some(&b64(b"\0alice\0alice-pw")),
            &[],
            &p,
            &ctx,
            &backend(),
        );
        assert_eq!(r.unwrap_err(), Error::EncryptionRequired);
        assert_eq!(out, reply);
        // Over TLS it works.
        let (_, r) = script(
            proto,
            b"PLAIN",
            Some(&b64(b"\0alice\0alice-pw")),
            &[],
            &p,
            &ctx.with_tls(tls()),
            &backend(),
        );
        assert!(r.is_ok());
    }
}

#[test]
fn authorization_failure_replies() {
    let ctx = ServerContext::new(Service::Imap, "h");
    let (out, r) = script(
        Protocol::Imap,
        b"PLAIN",
        Some(&b64(b"bob\0alice\0alice-pw")),
        &[],
        &Policy::default(),
        &ctx,
        &backend(),
    );
    assert_eq!(r.unwrap_err(), Error::AuthorizationFailed);
    assert_eq!(out, b"a1 NO [AUTHORIZATIONFAILED] Authorization failed\r\n");
}

#[test]
fn default_policy_advertisement() {
    let p = Policy::default();
    let plain = |s| ServerContext::new(s, "h");
    assert_eq!(p.advertised(&plain(Service::Imap)), [Mechanism::Plain]);
    assert_eq!(p.advertised(&plain(Service::Pop)), [Mechanism::Plain]);
    // LOGIN is enabled for SMTP only by default.
    assert_eq!(
        p.advertised(&plain(Service::Smtp)),
        [Mechanism::Plain, Mechanism::Login]
    );
    assert_eq!(p.advertised(&plain(Service::Http)), [Mechanism::Plain]);
    // EXTERNAL appears once a client certificate is present.
    let ca = portcullis_test_support::ca::TestCa::new("EXTERNAL CA").unwrap();
    let conn =
        portcullis_test_support::tls::client_auth_handshake(&ca.issue_client("c", None).unwrap())
            .unwrap();
    let verified = portcullis_sasl::VerifiedCertificate::from_rustls(&conn).unwrap();
    let cert = plain(Service::Imap).with_external(ExternalIdentity::Certificate(verified));
    assert_eq!(p.advertised(&cert), [Mechanism::External, Mechanism::Plain]);
    assert!(p.plaintext_login_allowed(&plain(Service::Imap)));
    assert!(!p.apop_enabled(&plain(Service::Pop)));
}

#[test]
fn has_plain_passwords_and_anonymous() {
    let p = policy(|c| {
        c.has_plain_passwords = true;
        c.imap_allow_anonymous = true;
    });
    let ctx = |s| ServerContext::new(s, "h");
    assert_eq!(
        p.advertised(&ctx(Service::Imap)),
        [
            Mechanism::DigestMd5,
            Mechanism::CramMd5,
            Mechanism::Plain,
            Mechanism::Anonymous
        ]
    );
    assert_eq!(
        p.advertised(&ctx(Service::Pop)),
        [Mechanism::DigestMd5, Mechanism::CramMd5, Mechanism::Plain]
    );
    assert!(p.apop_enabled(&ctx(Service::Pop)));
    assert!(!p.apop_enabled(&ctx(Service::Imap)));
    assert_eq!(
        p.check(Mechanism::Anonymous, &ctx(Service::Smtp)),
        Err(Error::MechanismUnavailable)
    );
}

#[test]
fn plaintext_min_cipher_global_and_per_service() {
    let p = policy(|c| {
        c.plaintext_min_cipher = 1;
        c.service_plaintext_min_cipher = BTreeMap::from([(Service::Smtp, 0)]);
    });
    let imap = ServerContext::new(Service::Imap, "h");
    assert!(p.advertised(&imap).is_empty());
    assert_eq!(
        p.check(Mechanism::Plain, &imap),
        Err(Error::EncryptionRequired)
    );
    assert!(!p.plaintext_login_allowed(&imap));
    let imaps = imap
        .clone()
        .with_tls(TlsState::new(TlsVersion::Tls12, true));
    assert_eq!(p.advertised(&imaps), [Mechanism::Plain]);
    assert!(p.plaintext_login_allowed(&imaps));
    // The per-service value wins.
    let smtp = ServerContext::new(Service::Smtp, "h");
    assert_eq!(p.advertised(&smtp), [Mechanism::Plain, Mechanism::Login]);
    // Legacy -1: never.
    let never = policy(|c| c.plaintext_min_cipher = -1);
    assert!(never.advertised(&imaps).is_empty());
    assert!(!never.plaintext_login_allowed(&imaps));
}

#[test]
fn mech_list_overrides_the_flags() {
    let p = policy(|c| {
        *c = PolicyConfig::default()
            .with_mech_list("scram-sha-256-plus SCRAM-SHA-256, PLAIN ANONYMOUS");
        c.has_plain_passwords = true;
        c.imap_allow_anonymous = false;
    });
    let smtp = ServerContext::new(Service::Smtp, "h");
    // No CRAM/DIGEST despite has_plain_passwords; ANONYMOUS never for SMTP,
    // whatever the list says.
    assert_eq!(
        p.advertised(&smtp),
        [Mechanism::ScramSha256, Mechanism::Plain]
    );
    assert_eq!(
        p.check(Mechanism::Anonymous, &smtp),
        Err(Error::MechanismUnavailable)
    );
    let tls_smtp = smtp.with_tls(tls());
    assert_eq!(p.advertised(&tls_smtp)[0], Mechanism::ScramSha256Plus);
    assert!(p.context(&tls_smtp).plus_advertised());
    // A policy that does not advertise -PLUS must not refuse "y".
    let no_plus = policy(|c| c.mech_list = vec!["SCRAM-SHA-256".into()]);
    assert!(!no_plus.context(&tls_smtp).plus_advertised());
    assert_eq!(
        p.advertised_names(&tls_smtp),
        "SCRAM-SHA-256-PLUS SCRAM-SHA-256 PLAIN"
    );
    // IMAP: only with service.imap.allowanonymouslogin, and the list can
    // still withhold it.
    let imap = ServerContext::new(Service::Imap, "h");
    assert!(!p.advertised(&imap).contains(&Mechanism::Anonymous));
    let allowed = policy(|c| {
        *c = PolicyConfig::default().with_mech_list("PLAIN ANONYMOUS");
        c.imap_allow_anonymous = true;
    });
    assert!(allowed.advertised(&imap).contains(&Mechanism::Anonymous));
    for service in [Service::Pop, Service::Smtp, Service::Http] {
        let ctx = ServerContext::new(service, "h");
        assert!(
            !allowed.advertised(&ctx).contains(&Mechanism::Anonymous),
            "{service:?}"
        );
    }
    let withheld = policy(|c| {
        *c = PolicyConfig::default().with_mech_list("PLAIN");
        c.imap_allow_anonymous = true;
    });
    assert!(!withheld.advertised(&imap).contains(&Mechanism::Anonymous));
    assert!(matches!(
        Policy::new(&PolicyConfig::default().with_mech_list("PLAIN X-UNKNOWN")),
        Err(Error::Policy(_))
    ));
}

#[test]
fn plus_needs_safe_channel_binding() {
    let p = policy(|c| c.has_scram_secrets = true);
    let no_ems = ServerContext::new(Service::Imap, "h")
        .with_tls(TlsState::new(TlsVersion::Tls12, false).with_tls_exporter(vec![1; 32]));
    assert!(!p.advertised(&no_ems).iter().any(|m| m.is_plus()));
    let ems = ServerContext::new(Service::Imap, "h")
        .with_tls(TlsState::new(TlsVersion::Tls12, true).with_tls_exporter(vec![1; 32]));
    assert!(p.advertised(&ems).contains(&Mechanism::ScramSha256Plus));
}

#[test]
fn policy_from_the_configuration_file() {
    // Every parameter the policy reads is one the registry knows.
    for name in portcullis_sasl::POLICY_PARAMETERS {
        assert!(
            portcullis_config::registry::lookup(name).is_some(),
            "{name} is not a configuration parameter"
        );
    }
    let cfg = portcullis_config::Config::parse(
        "[sasl.default]\nmech_list = \"SCRAM-SHA-256 PLAIN\"\n\
         [sasl.default.ldap]\nhas_plain_passwords = true\n\
         [service]\nplaintextmincipher = 1\n\
         [service.imap]\nallowanonymouslogin = \"yes\"\nplaintextmincipher = 0\n",
    )
    .unwrap();
    let c = PolicyConfig::from_parameters(|name| cfg.string(name).ok()).unwrap();
    assert_eq!(c.mech_list, ["SCRAM-SHA-256", "PLAIN"]);
    assert!(c.has_plain_passwords && c.imap_allow_anonymous);
    assert_eq!(c.plaintext_min_cipher, 1);
    assert_eq!(
        c.service_plaintext_min_cipher,
        BTreeMap::from([(Service::Imap, 0)])
    );
    // The per-service 0 wins for IMAP; POP needs TLS for PLAIN.
    let p = Policy::new(&c).unwrap();
    let imap = ServerContext::new(Service::Imap, "h");
    let pop = ServerContext::new(Service::Pop, "h");
    assert!(p.advertised(&imap).contains(&Mechanism::Plain));
    assert!(!p.advertised(&pop).contains(&Mechanism::Plain));

    // An empty file: the chapter's defaults, except that the registry's
    // service.plaintextmincipher is 1 (no cleartext password without TLS
    // unless the configuration says so; the original defaulted to 0).
    let empty = portcullis_config::Config::parse("").unwrap();
    let mut defaults = PolicyConfig::default();
    defaults.plaintext_min_cipher = 1;
    assert_eq!(
        PolicyConfig::from_parameters(|name| empty.string(name).ok()).unwrap(),
        defaults
    );
    // A value of the wrong type names its parameter.
    let e = PolicyConfig::from_parameters(|name| {
        (name == "service.plaintextmincipher").then(|| "lots".to_owned())
    })
    .unwrap_err();
    assert!(e.to_string().contains("service.plaintextmincipher"), "{e}");
}

/// An anonymous login is never a directory user, not even one named
/// `anonymous`.
#[test]
fn anonymous_is_a_principal_of_its_own() {
    let ctx = ServerContext::new(Service::Imap, "h");
    let mut server = ServerSession::new(Mechanism::Anonymous, &ctx).unwrap();
    let auth = match server.start(Some(b"anonymous")).unwrap() {
        Step::Done(auth) => auth,
        other => panic!("{other:?}"),
    };
    assert!(auth.is_anonymous());
    assert_eq!(auth.anonymous_trace(), Some("anonymous"));
    assert_ne!(auth.identity(), "anonymous");
    assert_eq!(auth.identity(), "");
}

#[test]
fn an_exchange_tells_the_mechanism_asked_for_and_none_for_an_unknown_name() {
    let p = policy(|c| c.has_plain_passwords = true);
    let ctx = ServerContext::new(Service::Imap, "h").with_tls(tls());
    let (ex, _) = AuthExchange::start(Protocol::Imap, Some("a"), b"plain", None, &p, &ctx);
    assert_eq!(ex.mechanism(), Some(Mechanism::Plain));
    // Known but refused by the policy (no SCRAM secrets): still named.
    let (ex, ev) = AuthExchange::start(Protocol::Imap, Some("b"), b"SCRAM-SHA-256", None, &p, &ctx);
    assert!(matches!(ev, Event::Failure { .. }));
    assert_eq!(ex.mechanism(), Some(Mechanism::ScramSha256));
    let (ex, ev) = AuthExchange::start(Protocol::Imap, Some("c"), b"X-NOPE", None, &p, &ctx);
    assert!(matches!(ev, Event::Failure { .. }));
    assert_eq!(ex.mechanism(), None);
}
