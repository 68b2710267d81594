//! Certificate mapping (certmap.conf) against a real slapd, with
//! certificates generated here.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{b64, directory, settings, unique};
use portcullis_ldapauth::certmap::{CertMapConfig, ClientCert};
use portcullis_ldapauth::{Error, Reject};
use portcullis_sasl::{
    Backends, ExternalIdentity, Mechanism, ServerContext, ServerSession, Service, Step,
    VerifiedCertificate,
};
use portcullis_test_support::ca::{Issued, TestCa};
use portcullis_test_support::slapd::Slapd;
use portcullis_test_support::tls::client_auth_handshake;
use rcgen::{CertificateParams, DistinguishedName, DnType, DnValue, SanType};

const UID: &[u64] = &[0, 9, 2342, 19_200_300, 100, 1, 1];
const EMAIL: &[u64] = &[1, 2, 840, 113_549, 1, 9, 1];

/// A client certificate whose subject is, in LDAP order, `rdns` reversed
/// (pass them least specific first, as DER stores them).
fn client(ca: &TestCa, rdns: &[(DnType, &str)], san_email: Option<&str>) -> Issued {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    for (t, v) in rdns {
        if *t == DnType::CustomDnType(EMAIL.to_vec()) {
            dn.push(t.clone(), DnValue::Ia5String((*v).try_into().unwrap()));
        } else {
            dn.push(t.clone(), *v);
        }
    }
    p.distinguished_name = dn;
    if let Some(e) = san_email {
        p.subject_alt_names = vec![SanType::Rfc822Name(e.try_into().unwrap())];
    }
    ca.issue(p).unwrap()
}

/// What a TLS handshake that verified `c` hands to certificate logins.
fn verified(c: &Issued) -> VerifiedCertificate {
    VerifiedCertificate::from_rustls(&client_auth_handshake(c).unwrap()).unwrap()
}

fn issuer_dn(ca: &TestCa) -> String {
    ClientCert::from_der(&ca.cert_der())
        .unwrap()
        .subject()
        .to_string()
}

/// Adds `ou=<ou>,o=example` and returns it.
fn add_ou(slapd: &Slapd) -> String {
    let ou = unique("certs");
    slapd
        .add_ldif(&format!(
            "dn: ou={ou},o=example\nobjectClass: organizationalUnit\nou: {ou}\n"
        ))
        .unwrap();
    ou
}

fn add_person(slapd: &Slapd, dn: &str, cn: &str, mail: &str, extra: &str) {
    slapd
        .add_ldif(&format!(
            "dn: {dn}\nobjectClass: inetOrgPerson\nobjectClass: inetMailUser\nobjectClass: inetUser\n\
             cn: {cn}\nsn: Cert\nmail: {mail}\n{extra}"
        ))
        .unwrap();
}

#[tokio::test]
async fn default_mapping_by_email() {
    let slapd = Slapd::shared();
    let ca = TestCa::new("Mail CA").unwrap();
    let d = directory(settings(slapd));
    // Subject E= and SAN rfc822Name.
    let c = ca.issue_client("Alice", Some("alice@example.com")).unwrap();
    let u = d.map_certificate(&verified(&c)).await.unwrap();
    assert_eq!(u.dn, "uid=alice,ou=People,o=example.com,o=example");
    assert_eq!(u.login, "alice@example.com");
    // SAN only.
    let c = client(&ca, &[(DnType::CommonName, "Bob")], Some("bob@example.com"));
    assert_eq!(
        d.map_certificate(&verified(&c)).await.unwrap().login,
        "bob@example.com"
    );
    // No e-mail, unknown e-mail, hostile e-mail.
    let c = client(&ca, &[(DnType::CommonName, "Nobody")], None);
    assert!(matches!(
        d.map_certificate(&verified(&c)).await,
        Err(Error::Rejected(Reject::Unmappable(_)))
    ));
    let c = client(
        &ca,
        &[(DnType::CommonName, "X")],
        Some("nobody@example.com"),
    );
    assert_eq!(
        d.map_certificate(&verified(&c)).await.unwrap_err(),
        Error::Rejected(Reject::UnknownUser)
    );
    let c = client(
        &ca,
        &[
            (DnType::CommonName, "X"),
            (DnType::CustomDnType(EMAIL.to_vec()), "*"),
        ],
        None,
    );
    assert_eq!(
        d.map_certificate(&verified(&c)).await.unwrap_err(),
        Error::Rejected(Reject::UnknownUser)
    );
    // dave is inactive: mapped, then refused for his state.
    let c = ca.issue_client("Dave", Some("dave@example.com")).unwrap();
    assert!(matches!(
        d.map_certificate(&verified(&c)).await,
        Err(Error::Rejected(Reject::AccountStatus { .. }))
    ));
    // Bytes that are not a verified certificate cannot be passed at all
    // (`VerifiedCertificate` has no constructor from bytes).
}

#[tokio::test]
async fn every_directive() {
    let slapd = Slapd::shared();
    let ou = add_ou(slapd);
    let corp = TestCa::new("Corp CA").unwrap();
    let mmp = TestCa::new("MMP CA").unwrap();
    let strict = TestCa::new("Strict CA").unwrap();
    let attr = TestCa::new("Attr CA").unwrap();
    let conf = format!(
        "# test certmap.conf\n\
         certmap default default\n\
         \n\
         certmap corp {corp}\n\
         corp:DNComps ou, o\n\
         corp:FilterComps cn\n\
         \n\
         certmap mmp {mmp}\n\
         mmp:DNComps\n\
         mmp:FilterComps uid=cn e=mail\n\
         \n\
         certmap strict {strict}\n\
         strict:DNComps ou,o\n\
         strict:FilterComps cn\n\
         strict:verifycert on\n\
         \n\
         certmap attr {attr}\n\
         attr:CmapLdapAttr certSubjectDN\n",
        corp = issuer_dn(&corp),
        mmp = issuer_dn(&mmp).to_lowercase().replace(',', ", "),
        strict = issuer_dn(&strict),
        attr = issuer_dn(&attr),
    );
    let mut s = settings(slapd);
    s.certmap = Some(CertMapConfig::parse(&conf).unwrap());
    let d = directory(s);

    // default: DNComps absent, the subject DN is the entry's DN.
    let other = TestCa::new("Unlisted CA").unwrap();
    let p1 = unique("p");
    let dn1 = format!("cn={p1},ou={ou},o=example");
    add_person(slapd, &dn1, &p1, &format!("{p1}@example.com"), "");
    let subj = [
        (DnType::OrganizationName, "example"),
        (DnType::OrganizationalUnitName, ou.as_str()),
        (DnType::CommonName, p1.as_str()),
    ];
    let c = client(&other, &subj, None);
    assert_eq!(d.map_certificate(&verified(&c)).await.unwrap().dn, dn1);
    // ... and a subject that is not an entry maps to nothing.
    let c = client(
        &other,
        &[
            (DnType::OrganizationName, "example"),
            (DnType::CommonName, "ghost"),
        ],
        None,
    );
    assert_eq!(
        d.map_certificate(&verified(&c)).await.unwrap_err(),
        Error::Rejected(Reject::UnknownUser)
    );

    // corp: base from ou,o of the subject; filter (cn=…).
    let c = client(&corp, &subj, None);
    assert_eq!(d.map_certificate(&verified(&c)).await.unwrap().dn, dn1);

    // mmp (issuer written in another case and spacing): whole tree,
    // FROM=TO components: subject CN → uid, E → mail.
    let c = client(
        &mmp,
        &[
            (DnType::OrganizationName, "Elsewhere"),
            (DnType::CommonName, "bob"),
            (DnType::CustomDnType(EMAIL.to_vec()), "bob@example.com"),
        ],
        None,
    );
    let u = d.map_certificate(&verified(&c)).await.unwrap();
    assert_eq!(u.dn, "uid=bob,ou=People,o=example.com,o=example");

    // strict: verifycert on — the entry must hold this very certificate.
    let p2 = unique("p");
    let dn2 = format!("cn={p2},ou={ou},o=example");
    let subj2 = [
        (DnType::OrganizationName, "example"),
        (DnType::OrganizationalUnitName, ou.as_str()),
        (DnType::CommonName, p2.as_str()),
    ];
    let held = client(&strict, &subj2, None);
    add_person(
        slapd,
        &dn2,
        &p2,
        &format!("{p2}@example.com"),
        &format!("userCertificate;binary:: {}\n", b64(&held.cert_der)),
    );
    assert_eq!(d.map_certificate(&verified(&held)).await.unwrap().dn, dn2);
    let same_subject_other_key = client(&strict, &subj2, None);
    assert_eq!(
        d.map_certificate(&verified(&same_subject_other_key))
            .await
            .unwrap_err(),
        Error::Rejected(Reject::CertificateMismatch)
    );
    // dn1 holds no certificate at all.
    let c = client(&strict, &subj, None);
    assert_eq!(
        d.map_certificate(&verified(&c)).await.unwrap_err(),
        Error::Rejected(Reject::CertificateMismatch)
    );

    // attr: CmapLdapAttr certSubjectDN holds the subject DN as an outside
    // tool writes it (OpenSSL: `emailAddress`, non-ASCII as \XX escapes,
    // `,` or `, ` between RDNs), not as this crate would.
    let p3 = unique("p");
    let subj3 = [
        (DnType::OrganizationName, "Anywhere"),
        (DnType::OrganizationalUnitName, "Zo\u{eb}'s unit"),
        (DnType::CustomDnType(UID.to_vec()), p3.as_str()),
        (DnType::CustomDnType(EMAIL.to_vec()), "p3@example.com"),
    ];
    let c = client(&attr, &subj3, None);
    let stored = openssl_subject(&c.cert_pem, "RFC2253");
    assert_eq!(
        stored,
        format!("emailAddress=p3@example.com,UID={p3},OU=Zo\\C3\\AB's unit,O=Anywhere")
    );
    let dn3 = add_subject_holder(slapd, &ou, &p3, &stored);
    assert_eq!(d.map_certificate(&verified(&c)).await.unwrap().dn, dn3);

    // Other spacing and case of the attribute names: the same DN. Another
    // value: another DN.
    for (nameopt, (from, to), maps) in [
        ("RFC2253,sep_comma_plus_space", ("UID=", "uid="), true),
        ("RFC2253", ("O=Anywhere", "O=Elsewhere"), false),
    ] {
        let p = unique("p");
        let subject = [
            (DnType::OrganizationName, "Anywhere"),
            (DnType::CustomDnType(UID.to_vec()), p.as_str()),
        ];
        let c = client(&attr, &subject, None);
        let stored = openssl_subject(&c.cert_pem, nameopt).replace(from, to);
        let dn = add_subject_holder(slapd, &ou, &p, &stored);
        match d.map_certificate(&verified(&c)).await {
            Ok(u) => assert!(maps && u.dn == dn, "{stored} mapped to {}", u.dn),
            Err(e) => assert!(
                !maps && e == Error::Rejected(Reject::UnknownUser),
                "{stored}: {e:?}"
            ),
        }
    }

    // Ambiguous: another entry claims the same subject, spelt otherwise.
    let spaced = openssl_subject(&c.cert_pem, "RFC2253,sep_comma_plus_space");
    assert_eq!(
        spaced,
        format!("emailAddress=p3@example.com, UID={p3}, OU=Zo\\C3\\AB's unit, O=Anywhere")
    );
    add_subject_holder(slapd, &ou, &format!("{p3}-twin"), &spaced);
    assert_eq!(
        d.map_certificate(&verified(&c)).await.unwrap_err(),
        Error::Rejected(Reject::Ambiguous)
    );
}

/// Adds `cn=NAME,ou=OU,o=example` whose certSubjectDN is `subject`, and
/// returns its DN.
fn add_subject_holder(slapd: &Slapd, ou: &str, name: &str, subject: &str) -> String {
    let dn = format!("cn={name},ou={ou},o=example");
    add_person(
        slapd,
        &dn,
        name,
        &format!("{name}@example.com"),
        &format!("certSubjectDN: {subject}\n"),
    );
    dn
}

/// The subject of a PEM certificate as `openssl x509 -noout -subject
/// -nameopt NAMEOPT` prints it.
fn openssl_subject(pem: &str, nameopt: &str) -> String {
    let mut child = Command::new("timeout")
        .args([
            "60", "openssl", "x509", "-noout", "-subject", "-nameopt", nameopt,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(pem.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim_end()
        .strip_prefix("subject=")
        .expect("openssl prints subject=")
        .to_owned()
}

#[tokio::test]
async fn ambiguous_default_mapping_is_refused() {
    let slapd = Slapd::shared();
    let ou = add_ou(slapd);
    let mail = format!("{}@example.com", unique("shared"));
    for i in 0..2 {
        add_person(
            slapd,
            &format!("cn=s{i},ou={ou},o=example"),
            &format!("s{i}"),
            &mail,
            "",
        );
    }
    let ca = TestCa::new("Mail CA 2").unwrap();
    let c = ca.issue_client("Shared", Some(&mail)).unwrap();
    let d = directory(settings(slapd));
    assert_eq!(
        d.map_certificate(&verified(&c)).await.unwrap_err(),
        Error::Rejected(Reject::Ambiguous)
    );
}

#[tokio::test]
async fn sasl_external_through_the_traits() {
    let slapd = Slapd::shared();
    let ca = TestCa::new("External CA").unwrap();
    let d = std::sync::Arc::new(directory(settings(slapd)));
    let mut backends = Backends::new(d.clone());
    backends.identities = Some(d.clone());
    for (cert, want) in [
        (
            ca.issue_client("Alice", Some("alice@example.com")).unwrap(),
            Some("alice@example.com"),
        ),
        (
            ca.issue_client("Nobody", Some("nobody@example.com"))
                .unwrap(),
            None,
        ),
    ] {
        let mut ctx = ServerContext::new(Service::Imap, "mail.example.com");
        ctx.external = Some(ExternalIdentity::Certificate(verified(&cert)));
        let mut session = ServerSession::new(Mechanism::External, &ctx).unwrap();
        let mut step = session.start(Some(b"")).unwrap();
        let got = loop {
            match step {
                Step::Verify(req) => match session.answer(backends.resolve(&req).await) {
                    Ok(s) => step = s,
                    Err(_) => break None,
                },
                Step::Done(a) => break Some(a.identity().to_owned()),
                _ => break None,
            }
        };
        assert_eq!(got.as_deref(), want);
    }
}

#[tokio::test]
async fn certificate_logins_see_their_domain() {
    let slapd = Slapd::shared();
    let ca = TestCa::new("Domain CA").unwrap();
    let d = directory(settings(slapd));
    let held = format!("{}.test", unique("held"));
    let open = format!("{}.test", unique("open"));
    slapd
        .add_ldif(&format!(
            "dn: o={held},o=example\nobjectClass: organization\nobjectClass: inetDomain\no: {held}\n\
             associatedDomain: {held}\ninetDomainStatus: hold\n\n\
             dn: uid=h,o={held},o=example\nobjectClass: inetOrgPerson\nobjectClass: inetMailUser\n\
             objectClass: inetUser\nuid: h\ncn: h\nsn: h\nmail: h@{held}\n\n\
             dn: o={open},o=example\nobjectClass: organization\nobjectClass: inetDomain\n\
             o: {open}\nassociatedDomain: {open}\ninetDomainStatus: active\n\
             mailDomainAllowedServiceAccess: +imap:ALL$-pop:ALL\n\n\
             dn: uid=o,o={open},o=example\nobjectClass: inetOrgPerson\nobjectClass: inetMailUser\n\
             objectClass: inetUser\nuid: o\ncn: o\nsn: o\nmail: o@{open}\n"
        ))
        .unwrap();
    // The held domain refuses certificate logins as it refuses passwords.
    let c = ca.issue_client("H", Some(&format!("h@{held}"))).unwrap();
    assert_eq!(
        d.map_certificate(&verified(&c)).await.unwrap_err(),
        Error::Rejected(Reject::DomainStatus {
            attribute: "inetDomainStatus",
            value: "hold".into()
        })
    );
    // The open one hands its service-access filters to the caller.
    let c = ca.issue_client("O", Some(&format!("o@{open}"))).unwrap();
    let u = d.map_certificate(&verified(&c)).await.unwrap();
    assert_eq!(u.dn, format!("uid=o,o={open},o=example"));
    assert_eq!(
        u.domain_allowed_service_access.as_deref(),
        Some("+imap:ALL$-pop:ALL")
    );
}
