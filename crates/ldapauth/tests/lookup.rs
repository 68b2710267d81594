//! User lookup against a real slapd: every lookup mode and template token,
//! hostile user names, account state, proxy rights, the sasl traits.
#![allow(clippy::unwrap_used)]

mod common;

use common::{add_user, directory, settings, unique};
use portcullis_ldapauth::{Error, Reject, VerifyMode};
use portcullis_sasl::{Answer, Backends, Mechanism, ServerContext, ServerSession, Service, Step};
use portcullis_test_support::slapd::Slapd;

const ALICE: &str = "uid=alice,ou=People,o=example.com,o=example";

#[tokio::test]
async fn lookup_modes_and_tokens() {
    let slapd = Slapd::shared();

    // searchfordomain=1 (default), default filter, %U.
    let d = directory(settings(slapd));
    let e = d.lookup("alice@example.com").await.unwrap();
    assert_eq!(e.dn, ALICE);
    assert_eq!(e.domain_dn.as_deref(), Some("o=example.com,o=example"));
    assert_eq!(e.base, "o=example.com,o=example");
    assert_eq!(e.filter, "(&(uid=alice)(objectclass=inetmailuser))");

    // The domain's own inetDomainSearchFilter, with %o.
    let e = d.lookup("erin@example.org").await.unwrap();
    assert_eq!(e.dn, "uid=erin,ou=People,o=example.org,o=example");
    assert_eq!(
        e.filter,
        "(&(mail=erin@example.org)(objectclass=inetmailuser))"
    );
    // erin is not found in example.com, alice not in example.org.
    assert_eq!(
        d.lookup("erin@example.com").await.unwrap_err(),
        Error::Rejected(Reject::UnknownUser)
    );
    assert_eq!(
        d.lookup("alice@example.org").await.unwrap_err(),
        Error::Rejected(Reject::UnknownUser)
    );
    assert_eq!(
        d.lookup("alice@nowhere.test").await.unwrap_err(),
        Error::Rejected(Reject::UnknownDomain)
    );

    // A login without a domain: the default domain.
    let mut s = settings(slapd);
    s.default_domain = Some("example.com".into());
    let e = directory(s).lookup("bob").await.unwrap();
    assert_eq!(e.dn, "uid=bob,ou=People,o=example.com,o=example");
    assert_eq!(e.domain.as_deref(), Some("example.com"));

    // searchfordomain=0: straight under local.ugldapbasedn.
    let mut s = settings(slapd);
    s.search_for_domain = false;
    let d0 = directory(s);
    let e = d0.lookup("alice@example.com").await.unwrap();
    assert_eq!(e.dn, ALICE);
    assert_eq!(e.base, "o=example");
    assert_eq!(e.domain_dn, None);
    // Even a domain that does not exist: the domain is not looked up.
    assert_eq!(d0.lookup("alice@nowhere.test").await.unwrap().dn, ALICE);

    // %D and %o in the configured filter.
    let mut s = settings(slapd);
    s.search_filter = "(&(mail=%U@%D)(objectclass=inetmailuser))".into();
    assert_eq!(
        directory(s).lookup("bob@example.com").await.unwrap().filter,
        "(&(mail=bob@example.com)(objectclass=inetmailuser))"
    );
    let mut s = settings(slapd);
    s.search_for_domain = false;
    s.search_filter = "(&(mail=%o)(objectclass=inetmailuser))".into();
    assert_eq!(
        directory(s).lookup("carol@example.com").await.unwrap().dn,
        "uid=carol,ou=People,o=example.com,o=example"
    );

    // Two entries match: refused.
    let twin = unique("twin");
    add_user(slapd, &twin, &["x"], "");
    slapd
        .add_ldif(&format!(
            "dn: uid={twin},ou=People,o=example.org,o=example\nobjectClass: inetOrgPerson\nobjectClass: inetMailUser\n\
             objectClass: inetUser\nuid: {twin}\ncn: t\nsn: t\nmail: {twin}@example.org\n"
        ))
        .unwrap();
    assert_eq!(
        d0.lookup(&twin).await.unwrap_err(),
        Error::Rejected(Reject::Ambiguous)
    );
    assert!(d.lookup(&format!("{twin}@example.com")).await.is_ok());
}

#[tokio::test]
async fn bad_filter_templates_are_refused() {
    let slapd = Slapd::shared();
    for bad in ["(uid=%X)", "(uid=%U", "uid=%U", "(&(uid=%U)(objectclass=*)"] {
        let mut s = settings(slapd);
        s.search_filter = bad.into();
        assert!(
            matches!(
                portcullis_ldapauth::Directory::new(s),
                Err(Error::Filter(_))
            ),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn hostile_user_names_match_nothing() {
    let slapd = Slapd::shared();
    let hostile = [
        "*",
        "a*",
        "*e",
        "(",
        ")",
        "\\",
        "\0",
        "alice\0",
        "alice)(uid=*",
        "*)(|(uid=*",
        "alice)(objectclass=*",
        "al\\2ace",
        "al\\*",
        "alice\\",
        "(uid=alice)",
        "*@example.com",
        "x)(mail=*@example.org",
    ];
    // Hostile domains: only meaningful when the domain is looked up (with
    // searchfordomain=0 the domain part plays no role in the default filter).
    let hostile_domains = [
        "alice@*",
        "alice@example.*",
        "alice@(example.com",
        "alice@example.com)(o=*",
        "alice@\\",
    ];
    for search_for_domain in [true, false] {
        let mut s = settings(slapd);
        s.search_for_domain = search_for_domain;
        let d = directory(s);
        for name in hostile {
            let r = d.lookup(name).await;
            assert!(
                matches!(
                    r,
                    Err(Error::Rejected(Reject::UnknownUser | Reject::UnknownDomain))
                ),
                "{name:?} (searchfordomain={search_for_domain}): {r:?}"
            );
            let r = d.verify_password(name, &"alice-pw".into()).await;
            assert!(matches!(r, Err(Error::Rejected(_))), "{name:?}: {r:?}");
        }
        if search_for_domain {
            for name in hostile_domains {
                let r = d.verify_password(name, &"alice-pw".into()).await;
                assert!(
                    matches!(r, Err(Error::Rejected(Reject::UnknownDomain))),
                    "{name:?}: {r:?}"
                );
            }
        }
        // The domain's %o template (example.org) sees the same values.
        for name in ["*@example.org", "erin*@example.org", "*)(uid=*@example.org"] {
            let r = d.lookup(name).await;
            assert!(matches!(r, Err(Error::Rejected(_))), "{name:?}: {r:?}");
        }
    }
}

#[tokio::test]
async fn verify_by_bind_and_locally() {
    let slapd = Slapd::shared();
    for mode in [VerifyMode::Bind, VerifyMode::LocalHash] {
        let mut s = settings(slapd);
        s.verify = mode;
        let d = directory(s);
        // alice {SSHA}, bob {CRYPT} sha512-crypt, carol cleartext, erin via
        // the example.org template.
        for (login, pw) in [
            ("alice@example.com", "alice-pw"),
            ("bob@example.com", "bob-pw"),
            ("carol@example.com", "carol-pw"),
            ("erin@example.org", "erin-pw"),
        ] {
            let u = d
                .verify_password(login, &pw.into())
                .await
                .unwrap_or_else(|e| panic!("{mode:?} {login}: {e}"));
            assert_eq!(u.login, login);
            let wrong = d
                .verify_password(login, &format!("{pw}x").into())
                .await
                .unwrap_err();
            assert_eq!(
                wrong,
                Error::Rejected(Reject::BadPassword),
                "{mode:?} {login}"
            );
        }
        let u = d
            .verify_password("alice@example.com", &"alice-pw".into())
            .await
            .unwrap();
        assert_eq!(u.dn, ALICE);
        assert_eq!(u.mail.as_deref(), Some("alice@example.com"));
        assert_eq!(
            u.allowed_service_access.as_deref(),
            Some("+imap,pop:ALL$-http:*")
        );
        assert_eq!(
            u.domain_allowed_service_access.as_deref(),
            Some("+imap,pop,smtp,http:ALL")
        );

        // Empty password: refused before any bind, whatever the user.
        for login in ["alice@example.com", "nobody@example.com"] {
            assert_eq!(
                d.verify_password(login, &"".into()).await.unwrap_err(),
                Error::Rejected(Reject::EmptyPassword)
            );
        }
        // Account state: dave is inactive. The right password gets the
        // specific reason; a wrong one only "bad password".
        assert_eq!(
            d.verify_password("dave@example.com", &"dave-pw".into())
                .await
                .unwrap_err(),
            Error::Rejected(Reject::AccountStatus {
                attribute: "mailUserStatus",
                value: "inactive".into()
            })
        );
        assert_eq!(
            d.verify_password("dave@example.com", &"nope".into())
                .await
                .unwrap_err(),
            Error::Rejected(Reject::BadPassword)
        );
    }
}

#[tokio::test]
async fn account_and_domain_status() {
    let slapd = Slapd::shared();
    let d = directory(settings(slapd));
    for (attr, value) in [
        ("inetUserStatus", "deleted"),
        ("inetUserStatus", "inactive"),
        ("mailUserStatus", "hold"),
        ("mailUserStatus", "removed"),
    ] {
        let uid = unique("st");
        let dn = add_user(slapd, &uid, &["pw-1"], "");
        slapd
            .modify_ldif(&format!(
                "dn: {dn}\nchangetype: modify\nreplace: {attr}\n{attr}: {value}\n"
            ))
            .unwrap();
        let login = format!("{uid}@example.com");
        let e = d.verify_password(&login, &"pw-1".into()).await.unwrap_err();
        assert!(
            matches!(&e, Error::Rejected(Reject::AccountStatus { value: v, .. }) if v == value),
            "{attr}={value}: {e:?}"
        );
    }
    // overquota still logs in.
    let uid = unique("oq");
    add_user(slapd, &uid, &["pw-1"], "");
    slapd
        .modify_ldif(&format!(
            "dn: uid={uid},ou=People,o=example.com,o=example\nchangetype: modify\nreplace: mailUserStatus\nmailUserStatus: overquota\n"
        ))
        .unwrap();
    assert!(
        d.verify_password(&format!("{uid}@example.com"), &"pw-1".into())
            .await
            .is_ok()
    );

    // A held domain refuses its users.
    let dom = format!("{}.test", unique("dom"));
    slapd
        .add_ldif(&format!(
            "dn: o={dom},o=example\nobjectClass: organization\nobjectClass: inetDomain\no: {dom}\n\
             associatedDomain: {dom}\ninetDomainStatus: hold\n\n\
             dn: uid=u,o={dom},o=example\nobjectClass: inetOrgPerson\nobjectClass: inetMailUser\n\
             objectClass: inetUser\nuid: u\ncn: u\nsn: u\nuserPassword: pw-2\n"
        ))
        .unwrap();
    assert_eq!(
        d.verify_password(&format!("u@{dom}"), &"pw-2".into())
            .await
            .unwrap_err(),
        Error::Rejected(Reject::DomainStatus {
            attribute: "inetDomainStatus",
            value: "hold".into()
        })
    );
}

#[tokio::test]
async fn proxy_rights_and_cleartext() {
    let slapd = Slapd::shared();
    let d = directory(settings(slapd));
    assert!(d.may_proxy("admin@example.com").await.unwrap());
    assert!(!d.may_proxy("alice@example.com").await.unwrap());
    assert!(!d.may_proxy("*@example.com").await.unwrap());
    assert!(!d.may_proxy("nobody@example.com").await.unwrap());

    // Cleartext only with has_plain_passwords, and only if stored so.
    assert_eq!(
        d.fetch_cleartext("carol@example.com").await.unwrap_err(),
        Error::Rejected(Reject::PlainPasswordsDisabled)
    );
    let mut s = settings(slapd);
    s.has_plain_passwords = true;
    let d = directory(s);
    assert_eq!(
        d.fetch_cleartext("carol@example.com")
            .await
            .unwrap()
            .1
            .expose(),
        "carol-pw"
    );
    assert_eq!(
        d.fetch_cleartext("alice@example.com").await.unwrap_err(),
        Error::Rejected(Reject::NoUsablePassword)
    );
}

async fn drive(
    session: &mut ServerSession,
    backends: &Backends,
    first: Step,
) -> Option<portcullis_sasl::Authenticated> {
    let mut step = first;
    loop {
        match step {
            Step::Verify(req) => {
                let answer: Answer = backends.resolve(&req).await;
                match session.answer(answer) {
                    Ok(s) => step = s,
                    Err(_) => return None,
                }
            }
            Step::Done(auth) => return Some(auth),
            _ => return None,
        }
    }
}

#[tokio::test]
async fn sasl_plain_through_the_traits() {
    let slapd = Slapd::shared();
    let d = std::sync::Arc::new(directory(settings(slapd)));
    let mut backends = Backends::new(d.clone());
    backends.proxy = d.clone();
    let ctx = ServerContext::new(Service::Imap, "mail.example.com");
    let plain = |authz: &str, user: &str, pw: &str| format!("{authz}\0{user}\0{pw}").into_bytes();

    let cases: [(&[u8], Option<&str>); 5] = [
        (
            &plain("", "alice@example.com", "alice-pw"),
            Some("alice@example.com"),
        ),
        (&plain("", "alice@example.com", "wrong"), None),
        (
            &plain("alice@example.com", "admin@example.com", "admin-pw"),
            Some("alice@example.com"),
        ),
        (
            &plain("bob@example.com", "alice@example.com", "alice-pw"),
            None,
        ),
        (&plain("", "*", "alice-pw"), None),
    ];
    for (msg, want) in cases {
        let mut session = ServerSession::new(Mechanism::Plain, &ctx).unwrap();
        let first = session.start(Some(msg)).unwrap();
        let got = drive(&mut session, &backends, first).await;
        assert_eq!(
            got.as_ref().map(|a| a.identity().to_owned()).as_deref(),
            want,
            "{:?}",
            String::from_utf8_lossy(msg)
        );
    }
}

#[tokio::test]
async fn sasl_cram_md5_needs_plain_passwords() {
    use hmac::{Hmac, KeyInit, Mac};
    let slapd = Slapd::shared();
    let ctx = ServerContext::new(Service::Imap, "mail.example.com");
    for (plain, user, pw, want) in [
        (true, "carol@example.com", "carol-pw", true),
        (true, "carol@example.com", "wrong", false),
        // alice's password is hashed: no cleartext to use.
        (true, "alice@example.com", "alice-pw", false),
        // has_plain_passwords off: never fetched.
        (false, "carol@example.com", "carol-pw", false),
    ] {
        let mut s = settings(slapd);
        s.has_plain_passwords = plain;
        let backends = Backends::new(std::sync::Arc::new(directory(s)));
        let mut session = ServerSession::new(Mechanism::CramMd5, &ctx).unwrap();
        let Step::Challenge(challenge) = session.start(None).unwrap() else {
            panic!("CRAM-MD5 starts with a challenge");
        };
        let mut mac = <Hmac<md5::Md5> as KeyInit>::new_from_slice(pw.as_bytes()).unwrap();
        mac.update(&challenge);
        let digest: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let first = session.step(format!("{user} {digest}").as_bytes()).unwrap();
        let got = drive(&mut session, &backends, first).await;
        assert_eq!(got.is_some(), want, "{plain} {user} {pw}");
    }
}

/// EXTERNAL with a name from a lower layer: the name must exist and its
/// account be active, as on the password paths.
#[tokio::test]
async fn external_names_check_account_status() {
    use portcullis_sasl::ExternalIdentity;

    let slapd = Slapd::shared();
    let d = std::sync::Arc::new(directory(settings(slapd)));
    let mut backends = Backends::new(d.clone());
    backends.identities = Some(d.clone());
    for (name, ok) in [
        ("alice@example.com", true),
        // dave is inactive.
        ("dave@example.com", false),
        ("nobody@example.com", false),
    ] {
        let ctx = ServerContext::new(Service::Imap, "mail.example.com")
            .with_external(ExternalIdentity::Name(name.to_owned()));
        let mut session = ServerSession::new(Mechanism::External, &ctx).unwrap();
        let first = session.start(Some(b"")).unwrap();
        let auth = drive(&mut session, &backends, first).await;
        assert_eq!(
            auth.map(|a| a.identity().to_owned()).as_deref(),
            ok.then_some(name),
            "{name}"
        );
    }
}
