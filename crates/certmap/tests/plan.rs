//! Mapping plans for certificates generated here with rcgen.
#![allow(clippy::unwrap_used)]

use portcullis_certmap::escape::filter_value;
use portcullis_certmap::{CertMapConfig, ClientCert, Error, Scope, SearchBase, default_plan, plan};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue, IsCa, Issuer, KeyPair,
    SanType,
};

const EMAIL_OID: &[u64] = &[1, 2, 840, 113_549, 1, 9, 1];
const UID_OID: &[u64] = &[0, 9, 2342, 19_200_300, 100, 1, 1];

struct Ca {
    issuer: Issuer<'static, KeyPair>,
}

fn validity(p: &mut CertificateParams) {
    p.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    p.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(30);
}

fn ca(cn: &str, o: &str) -> Ca {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, o);
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    validity(&mut p);
    let key = KeyPair::generate().unwrap();
    Ca {
        issuer: Issuer::new(p, key),
    }
}

/// `subject` in DER order (least specific first), as (type, value).
fn leaf(ca: &Ca, subject: &[(DnType, &str)], emails: &[&str]) -> ClientCert {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    for (t, v) in subject {
        if *t == DnType::CustomDnType(EMAIL_OID.to_vec()) {
            dn.push(t.clone(), DnValue::Ia5String((*v).try_into().unwrap()));
        } else {
            dn.push(t.clone(), *v);
        }
    }
    p.distinguished_name = dn;
    p.subject_alt_names = emails
        .iter()
        .map(|e| SanType::Rfc822Name((*e).try_into().unwrap()))
        .collect();
    validity(&mut p);
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, &ca.issuer).unwrap();
    let parsed = ClientCert::from_der(cert.der()).unwrap();
    let again = ClientCert::from_pem(cert.pem().as_bytes()).unwrap();
    assert_eq!(parsed.der(), again.der());
    parsed
}

fn email() -> DnType {
    DnType::CustomDnType(EMAIL_OID.to_vec())
}
fn uid() -> DnType {
    DnType::CustomDnType(UID_OID.to_vec())
}

#[test]
fn default_mapping_uses_subject_email_then_san() {
    let ca = ca("Test CA", "Example");
    let c = leaf(
        &ca,
        &[
            (DnType::OrganizationName, "example"),
            (DnType::CommonName, "Alice"),
            (email(), "alice@example.com"),
        ],
        &[],
    );
    let p = default_plan(&c).unwrap();
    assert_eq!(p.filter, "(mail=alice@example.com)");
    assert_eq!(p.base, SearchBase::Configured);
    assert_eq!(p.scope, Scope::Subtree);
    assert_eq!(p.verify_cert, None);

    let c = leaf(&ca, &[(DnType::CommonName, "Bob")], &["bob@example.com"]);
    assert_eq!(default_plan(&c).unwrap().filter, "(mail=bob@example.com)");
    assert_eq!(plan(None, &c).unwrap().filter, "(mail=bob@example.com)");

    // Both, and a duplicate differing in case only.
    let c = leaf(
        &ca,
        &[(DnType::CommonName, "Both"), (email(), "a@example.com")],
        &["A@example.com", "b@example.com"],
    );
    assert_eq!(
        default_plan(&c).unwrap().filter,
        "(|(mail=a@example.com)(mail=b@example.com))"
    );

    let c = leaf(&ca, &[(DnType::CommonName, "Nobody")], &[]);
    assert!(matches!(default_plan(&c), Err(Error::Unmappable { .. })));
}

#[test]
fn hostile_subject_values_are_escaped() {
    let ca = ca("Test CA", "Example");
    let c = leaf(
        &ca,
        &[(DnType::CommonName, "x"), (email(), "*)(uid=*")],
        &[],
    );
    assert_eq!(
        default_plan(&c).unwrap().filter,
        "(mail=\\2a\\29\\28uid=\\2a)"
    );
    let conf = CertMapConfig::parse(
        "certmap default default\ndefault:DNComps ou,o\ndefault:FilterComps cn\n",
    )
    .unwrap();
    let c = leaf(
        &ca,
        &[
            (DnType::OrganizationName, "a,b"),
            (DnType::OrganizationalUnitName, "c+d"),
            (DnType::CommonName, "*"),
        ],
        &[],
    );
    let p = conf.plan(&c).unwrap();
    assert_eq!(p.filter, "(cn=\\2a)");
    assert_eq!(p.base, SearchBase::Dn("ou=c\\+d,o=a\\,b".into()));
}

#[test]
fn every_directive() {
    let corp = ca("Corp CA", "Corp");
    let other = ca("Other CA", "Other");
    let conf = CertMapConfig::parse(
        "# maps\n\
         certmap default default\n\
         certmap corp CN=Corp CA,   O=corp\n\
         corp:DNComps ou, o\n\
         corp:FilterComps uid e\n\
         corp:verifycert on\n\
         certmap mmp cn=Other CA,o=Other\n\
         mmp:DNComps\n\
         mmp:FilterComps ou=uid\n\
         mmp:CmapLdapAttr certSubjectDN\n",
    )
    .unwrap();
    // corp: DNComps list, FilterComps list (e → mail), verifycert.
    let c = leaf(
        &corp,
        &[
            (DnType::OrganizationName, "example"),
            (DnType::OrganizationalUnitName, "People"),
            (uid(), "alice"),
            (email(), "alice@example.com"),
        ],
        &[],
    );
    let p = conf.plan(&c).unwrap();
    assert_eq!(p.map, "corp");
    assert_eq!(p.base, SearchBase::Dn("ou=People,o=example".into()));
    assert_eq!(p.scope, Scope::Subtree);
    assert_eq!(p.filter, "(&(uid=alice)(mail=alice@example.com))");
    assert_eq!(p.verify_cert.as_deref(), Some(c.der()));

    // mmp: empty DNComps, FROM=TO FilterComps, CmapLdapAttr.
    let c = leaf(
        &other,
        &[
            (DnType::OrganizationName, "Other"),
            (DnType::OrganizationalUnitName, "pilar"),
        ],
        &[],
    );
    let p = conf.plan(&c).unwrap();
    assert_eq!(p.map, "mmp");
    assert_eq!(p.base, SearchBase::Configured);
    assert_eq!(
        p.filter,
        "(&(|(certSubjectDN=OU=pilar,O=Other)(certSubjectDN=OU=pilar, O=Other))(uid=pilar))"
    );
    let check = p.subject_attr.as_ref().unwrap();
    assert_eq!(check.attr, "certSubjectDN");
    assert_eq!(&check.subject, c.subject());
    assert_eq!(p.verify_cert, None);

    // default: DNComps absent → the subject DN is the entry; no FilterComps.
    let stranger = ca("Stranger CA", "Nowhere");
    let c = leaf(
        &stranger,
        &[(DnType::OrganizationName, "example"), (uid(), "bob")],
        &[],
    );
    let p = conf.plan(&c).unwrap();
    assert_eq!(p.map, "default");
    assert_eq!(p.base, SearchBase::Dn("UID=bob,O=example".into()));
    assert_eq!(p.scope, Scope::Base);
    assert_eq!(p.filter, "(objectclass=*)");

    // A PKCS#9 e-mail address in that subject is written `emailAddress`,
    // a name directories accept (`E=` is refused as an invalid DN), and
    // the subject DN is written the same way.
    let c = leaf(
        &stranger,
        &[
            (DnType::OrganizationName, "example"),
            (DnType::CustomDnType(EMAIL_OID.to_vec()), "bob@example.com"),
        ],
        &[],
    );
    let p = conf.plan(&c).unwrap();
    assert_eq!(
        p.base,
        SearchBase::Dn("emailAddress=bob@example.com,O=example".into())
    );
    assert_eq!(
        c.subject().to_string(),
        "emailAddress=bob@example.com,O=example"
    );

    // A FilterComps list the subject cannot satisfy is refused.
    let c = leaf(&corp, &[(DnType::OrganizationName, "example")], &[]);
    assert!(matches!(conf.plan(&c), Err(Error::Unmappable { .. })));
}

#[test]
fn garbage_certificates_are_errors() {
    assert!(matches!(
        ClientCert::from_der(b"\x30\x03\x02\x01\x00"),
        Err(Error::Certificate(_))
    ));
    assert!(matches!(
        ClientCert::from_pem(b"nope"),
        Err(Error::Certificate(_))
    ));
}

#[test]
fn cmap_ldap_attr_finds_the_subject_as_openssl_writes_it() {
    let ca = ca("Attr CA", "Example");
    let conf = CertMapConfig::parse(
        "certmap default default\n\
         certmap attr CN=Attr CA,O=Example\n\
         attr:CmapLdapAttr certSubjectDN\n",
    )
    .unwrap();
    let c = leaf(
        &ca,
        &[
            (DnType::OrganizationName, "Example Corp"),
            (DnType::OrganizationalUnitName, "Zo\u{eb}'s unit"),
            (uid(), "p3"),
            (DnType::CommonName, "#41, a+b"),
            (email(), "p3@example.com"),
        ],
        &[],
    );
    let p = conf.plan(&c).unwrap();
    assert_eq!(p.map, "attr");
    assert_eq!(p.base, SearchBase::Configured);
    let check = p.subject_attr.clone().unwrap();
    // As `openssl x509 -noout -subject -nameopt RFC2253` prints this
    // subject (portcullis-ldapauth's certmap test runs openssl itself), and
    // with `-nameopt RFC2253,sep_comma_plus_space`.
    let rfc2253 =
        "emailAddress=p3@example.com,CN=\\#41\\, a\\+b,UID=p3,OU=Zo\\C3\\AB's unit,O=Example Corp";
    let spaced = "emailAddress=p3@example.com, CN=\\#41\\, a\\+b, UID=p3, OU=Zo\\C3\\AB's unit, O=Example Corp";
    for stored in [rfc2253, spaced] {
        // The entry attribute written by the outside tool matches ...
        assert!(check.matches(stored.as_bytes()), "{stored}");
        // ... and the directory is asked for that very spelling (the
        // caseIgnoreMatch equality of such attributes ignores case).
        let assertion = format!("(certSubjectDN={})", filter_value(stored));
        assert!(
            p.filter.to_lowercase().contains(&assertion.to_lowercase()),
            "{} lacks {assertion}",
            p.filter
        );
    }
    // Other names for the same attribute types, other spacing: the same DN.
    let relabelled = rfc2253
        .replace("emailAddress=", "E=")
        .replace("UID=", "userid=")
        .replace("CN=", "cn=")
        .replace(",O=", ", 2.5.4.10=");
    assert!(check.matches(relabelled.as_bytes()), "{relabelled}");
    // The same spelling with another value is another DN.
    for other in [
        rfc2253.replace("UID=p3", "UID=p4"),
        rfc2253.replace("\\#41", "#41"),
        rfc2253.replace(",O=Example Corp", ""),
        "not a DN".to_owned(),
    ] {
        assert!(!check.matches(other.as_bytes()), "{other}");
    }
    assert!(!check.matches(b"\xff"));
    // The string `#41` is escaped for the DN (RFC 4514), then the DN for
    // the filter (RFC 4515).
    assert!(
        p.filter.contains(",CN=\\5c#41\\5c, a\\5c+b,"),
        "{}",
        p.filter
    );
}

#[test]
fn hash_string_values_stay_strings() {
    let ca = ca("Test CA", "Example");
    let c = leaf(
        &ca,
        &[(DnType::OrganizationName, "x"), (DnType::CommonName, "#41")],
        &[],
    );
    let conf = CertMapConfig::parse(
        "certmap default default\ndefault:DNComps cn,o\ndefault:FilterComps cn\n",
    )
    .unwrap();
    let p = conf.plan(&c).unwrap();
    assert_eq!(p.base, SearchBase::Dn("cn=\\#41,o=x".into()));
    assert_eq!(p.filter, "(cn=#41)");
    // DNComps absent: the subject DN itself is the base.
    let p = CertMapConfig::parse("certmap default default\n")
        .unwrap()
        .plan(&c)
        .unwrap();
    assert_eq!(p.base, SearchBase::Dn("CN=\\#41,O=x".into()));
}

#[test]
fn every_spelling_of_the_email_attribute_is_read() {
    let ca = ca("Test CA", "Example");
    let c = leaf(
        &ca,
        &[(DnType::CommonName, "a"), (email(), "a@example.com")],
        &[],
    );
    for name in ["e", "E", "email", "emailAddress", "1.2.840.113549.1.9.1"] {
        let conf = CertMapConfig::parse(&format!(
            "certmap default default\ndefault:DNComps\ndefault:FilterComps {name}\n"
        ))
        .unwrap();
        assert_eq!(
            conf.plan(&c).unwrap().filter,
            "(mail=a@example.com)",
            "{name}"
        );
    }
}

#[test]
fn a_verified_certificate_maps_as_its_end_entity() {
    let ca = portcullis_test_support::ca::TestCa::new("Verified CA").unwrap();
    let issued = ca.issue_client("Alice", Some("alice@example.com")).unwrap();
    let conn = portcullis_test_support::tls::client_auth_handshake(&issued).unwrap();
    let verified = portcullis_sasl::VerifiedCertificate::from_rustls(&conn).unwrap();
    let cert = ClientCert::from_verified(&verified).unwrap();
    assert_eq!(cert.der(), issued.cert_der.as_slice());
    assert_eq!(cert.emails(), ["alice@example.com"]);
    let p = default_plan(&cert).unwrap();
    assert_eq!(p.filter, "(mail=alice@example.com)");
}
