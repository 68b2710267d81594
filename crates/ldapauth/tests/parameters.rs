//! `Settings::from_parameters` over configuration files parsed by
//! `portcullis-config`, and a directory built from them against slapd.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use portcullis_config::Config;
use portcullis_ldapauth::{Error, NewScheme, Reject, Settings, VerifyMode};
use portcullis_test_support::slapd::Slapd;

fn from_config(text: &str, dir: &Path) -> Result<Settings, Error> {
    let cfg = Config::parse(text).unwrap();
    Settings::from_parameters(|n| cfg.string(n).ok(), dir)
}

/// A getter over raw text values, for values the configuration file
/// would already refuse by type.
fn from_raw(pairs: &[(&str, &str)], dir: &Path) -> Result<Settings, Error> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Settings::from_parameters(|n| map.get(n).cloned(), dir)
}

const CERTMAP: &str = "certmap default default\ndefault:FilterComps e\n\
                       certmap corp o=Corp CA\ncorp:DNComps ou, o\n";

#[test]
fn every_parameter_reaches_its_field() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), "not read here").unwrap();
    std::fs::create_dir(dir.path().join("conf")).unwrap();
    std::fs::write(dir.path().join("conf/certmap.conf"), CERTMAP).unwrap();
    let text = r#"
[local]
ugldaphost = "ldap1.example.com ldap2.example.com:1389"
ugldapport = 1636
ugldapusessl = 1
ugldapstarttls = 1
ugldapcafile = "ca.pem"
ugldapbinddn = "cn=portcullis,ou=services,o=example"
ugldapbindcred = " service secret "
ugldapbasedn = "o=example"
ugldapconnecttimeout = 3
ugldapoperationtimeout = 7
ugldapfailoverhold = 0
ugldappoolsize = 2
ugldapidlecheck = 0
ugldapextraattrs = "mailHost preferredLanguage mailHost cn;lang-en"
ugldapcanonicalform = "%m"

[service]
defaultdomain = "Example.COM"
authcachettl = 300

[sasl.default]
auto_transition = true
transition_scheme = "{PBKDF2-SHA256}:200000"
transition_scram = true
scram.iterations = 8192

[sasl.default.ldap]
searchfilter = "(&(mail=%o)(objectclass=inetmailuser))"
searchfordomain = 0
domainfilter = "(&(associatedDomain=%D)(objectclass=sunManagedOrganization))"
has_plain_passwords = true
verify = "LocalHash"
admingroupdn = "cn=Service Administrators,ou=groups,o=example"
certmapfile = "conf/certmap.conf"
certmapbasedn = "ou=People,o=example"
"#;
    let s = from_config(text, dir.path()).unwrap();
    assert_eq!(
        s.servers().unwrap(),
        [
            "ldaps://ldap1.example.com:1636",
            "ldaps://ldap2.example.com:1389"
        ]
    );
    assert_eq!(s.port, Some(1636));
    assert!(s.use_ssl && s.starttls);
    assert_eq!(
        s.ca_file.as_deref(),
        Some(dir.path().join("ca.pem").as_path())
    );
    assert_eq!(s.bind_dn, "cn=portcullis,ou=services,o=example");
    assert_eq!(s.bind_password.expose(), " service secret ");
    assert_eq!(s.base_dn, "o=example");
    assert_eq!(s.connect_timeout, Duration::from_secs(3));
    assert_eq!(s.operation_timeout, Duration::from_secs(7));
    assert_eq!(s.failover_hold, Duration::ZERO);
    assert_eq!(s.pool_size, 2);
    assert_eq!(s.idle_check_after, Duration::ZERO);
    assert_eq!(
        s.extra_attributes,
        ["mailHost", "preferredLanguage", "cn;lang-en"]
    );
    assert_eq!(s.canonical_form, "%m");
    assert_eq!(s.default_domain.as_deref(), Some("example.com"));
    assert_eq!(s.cache_ttl, Some(Duration::from_secs(300)));
    assert!(s.auto_transition && s.transition_scram);
    assert_eq!(
        s.transition_scheme,
        NewScheme::Pbkdf2Sha256 {
            iterations: 200_000
        }
    );
    assert_eq!(s.scram_iterations, 8192);
    assert_eq!(s.search_filter, "(&(mail=%o)(objectclass=inetmailuser))");
    assert!(!s.search_for_domain);
    assert_eq!(
        s.domain_filter,
        "(&(associatedDomain=%D)(objectclass=sunManagedOrganization))"
    );
    assert!(s.has_plain_passwords);
    assert_eq!(s.verify, VerifyMode::LocalHash);
    assert_eq!(
        s.admin_group_dn.as_deref(),
        Some("cn=Service Administrators,ou=groups,o=example")
    );
    let maps = s.certmap.as_ref().unwrap().maps();
    assert_eq!(
        maps.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
        ["default", "corp"]
    );
    assert_eq!(s.certmap_base_dn.as_deref(), Some("ou=People,o=example"));
}

#[test]
fn an_empty_file_gives_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let s = from_config("", dir.path()).unwrap();
    let d = Settings::new("localhost", "o=example");
    // The registry's defaults: local.ugldaphost localhost, port 389.
    assert_eq!(s.servers().unwrap(), ["ldap://localhost:389"]);
    // Every other field as Settings::new has it.
    macro_rules! as_new {
        ($($field:ident),* $(,)?) => {
            $(assert_eq!(s.$field, d.$field, stringify!($field));)*
        };
    }
    assert_eq!(s.port, Some(389));
    as_new!(
        use_ssl,
        starttls,
        ca_file,
        bind_dn,
        base_dn,
        search_filter,
        search_for_domain,
        default_domain,
        domain_filter,
        has_plain_passwords,
        auto_transition,
        transition_scheme,
        transition_scram,
        scram_iterations,
        verify,
        admin_group_dn,
        connect_timeout,
        operation_timeout,
        pool_size,
        failover_hold,
        cache_ttl,
        certmap,
        certmap_base_dn,
        idle_check_after,
        extra_attributes,
        canonical_form,
    );
    assert_eq!(s.bind_password.expose(), "");
    assert_eq!(s.canonical_form, "%u@%d");

    // A getter that knows nothing: no server and no base DN to use.
    let e = from_raw(&[], dir.path()).unwrap_err();
    assert!(e.to_string().contains("local.ugldaphost"), "{e}");
    let e = from_raw(&[("local.ugldaphost", "ldap.example.com")], dir.path()).unwrap_err();
    assert!(e.to_string().contains("local.ugldapbasedn"), "{e}");
    // Without local.ugldapport at all, LDAPS means 636.
    let s = from_raw(
        &[
            ("local.ugldaphost", "ldap.example.com"),
            ("local.ugldapbasedn", "o=example"),
            ("local.ugldapusessl", "1"),
        ],
        dir.path(),
    )
    .unwrap();
    assert_eq!(s.servers().unwrap(), ["ldaps://ldap.example.com:636"]);
}

#[test]
fn bad_values_are_refused_naming_the_parameter() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken-certmap.conf"), "certmap corp\n").unwrap();
    // Values the configuration file takes as text, refused here.
    let text_cases = [
        ("local.ugldaphost", r#""ldap.example.com:http""#),
        ("local.ugldaphost", r#""bad/host""#),
        ("local.ugldapcafile", r#""missing-ca.pem""#),
        ("local.ugldapextraattrs", r#""mailHost userPassword""#),
        ("local.ugldapextraattrs", r#""userPassword;binary""#),
        ("local.ugldapextraattrs", r#""*""#),
        ("local.ugldapextraattrs", r#""mail(host""#),
        ("local.ugldapcanonicalform", r#""%d""#),
        ("local.ugldapcanonicalform", r#""%u@%x""#),
        ("local.ugldapcanonicalform", r#""%u%""#),
        ("service.defaultdomain", r#""example .com""#),
        ("sasl.default.ldap.searchfilter", r#""(uid=%Q)""#),
        ("sasl.default.ldap.searchfilter", r#""(uid=%U""#),
        (
            "sasl.default.ldap.domainfilter",
            r#""associatedDomain=%D)""#,
        ),
        ("sasl.default.ldap.verify", r#""compare""#),
        ("sasl.default.ldap.certmapfile", r#""no-such-certmap.conf""#),
        ("sasl.default.ldap.certmapfile", r#""broken-certmap.conf""#),
        ("sasl.default.transition_scheme", r#""MD5""#),
        ("sasl.default.transition_scheme", r#""SHA512-CRYPT:10""#),
        ("sasl.default.transition_scheme", r#""SHA512-CRYPT:900000""#),
        ("sasl.default.transition_scheme", r#""SSHA:5""#),
        // More than this crate verifies (limits::MAX_PBKDF2_ITERATIONS).
        ("sasl.default.scram.iterations", "2000000"),
    ];
    for (name, value) in text_cases {
        let e = from_config(&format!("{name} = {value}\n"), dir.path()).unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{name} = {value}: {e:?}");
        assert!(e.to_string().contains(name), "{name} = {value}: {e}");
    }
    // Values another source (not type-checked) might hand over.
    let base = [
        ("local.ugldaphost", "ldap.example.com"),
        ("local.ugldapbasedn", "o=example"),
    ];
    let raw_cases = [
        ("local.ugldapport", "0"),
        ("local.ugldapport", "65536"),
        ("local.ugldapport", "ldap"),
        ("local.ugldapusessl", "maybe"),
        ("local.ugldapstarttls", "2"),
        ("local.ugldapconnecttimeout", "0"),
        ("local.ugldapconnecttimeout", "-1"),
        ("local.ugldapoperationtimeout", "1.5"),
        ("local.ugldapfailoverhold", "soon"),
        ("local.ugldappoolsize", "0"),
        ("local.ugldappoolsize", "1025"),
        ("local.ugldapidlecheck", "-5"),
        ("service.authcachettl", "forever"),
        ("sasl.default.ldap.searchfordomain", "yes please"),
        ("sasl.default.ldap.has_plain_passwords", "2"),
        ("sasl.default.auto_transition", "sometimes"),
        ("sasl.default.transition_scram", "x"),
        ("sasl.default.scram.iterations", "100"),
    ];
    for (name, value) in raw_cases {
        let mut pairs = base.to_vec();
        pairs.push((name, value));
        let e = from_raw(&pairs, dir.path()).unwrap_err();
        assert!(e.to_string().contains(name), "{name} = {value}: {e}");
    }
}

#[test]
fn relative_files_are_taken_from_the_configuration_directory() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("etc");
    std::fs::create_dir_all(conf.join("tls")).unwrap();
    std::fs::write(conf.join("tls/ldap-ca.pem"), "pem").unwrap();
    std::fs::write(conf.join("certmap.conf"), CERTMAP).unwrap();
    let text = "local.ugldapcafile = \"tls/ldap-ca.pem\"\n\
                sasl.default.ldap.certmapfile = \"certmap.conf\"\n";
    let s = from_config(text, &conf).unwrap();
    assert_eq!(s.ca_file.unwrap(), conf.join("tls/ldap-ca.pem"));
    assert_eq!(s.certmap.unwrap().maps().len(), 2);
    // Relative to config_dir, not to the working directory.
    let e = from_config(text, dir.path()).unwrap_err();
    assert!(e.to_string().contains("local.ugldapcafile"), "{e}");

    // Absolute paths stay as they are.
    let abs = conf.join("tls/ldap-ca.pem");
    let text = format!("local.ugldapcafile = {:?}\n", abs.display().to_string());
    let s = from_config(&text, Path::new("/nonexistent")).unwrap();
    assert_eq!(s.ca_file.unwrap(), abs);
}

#[test]
fn the_parameter_list_names_registry_parameters() {
    for name in Settings::PARAMETERS {
        assert!(
            portcullis_config::registry::lookup(name).is_some(),
            "{name} is not in the registry"
        );
    }
}

/// A directory built from a configuration file logs a user in over
/// StartTLS with the CA file named relative to the configuration.
#[tokio::test]
async fn a_directory_from_parameters_authenticates_against_slapd() {
    let slapd = Slapd::shared();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ldap-ca.pem"), slapd.ca_pem()).unwrap();
    let text = format!(
        "[local]\n\
         ugldaphost = \"127.0.0.1\"\n\
         ugldapport = {port}\n\
         ugldapstarttls = 1\n\
         ugldapcafile = \"ldap-ca.pem\"\n\
         ugldapbinddn = {bind_dn:?}\n\
         ugldapbindcred = {bind_pw:?}\n\
         ugldapbasedn = {base:?}\n\
         ugldapoperationtimeout = 20\n\
         [service]\n\
         defaultdomain = \"example.com\"\n",
        port = slapd.port(),
        bind_dn = slapd.service_dn(),
        bind_pw = slapd.service_password(),
        base = slapd.base_dn(),
    );
    let settings = from_config(&text, dir.path()).unwrap();
    let d = common::directory(settings);
    let alice = "uid=alice,ou=People,o=example.com,o=example";
    let u = d
        .verify_password("alice@example.com", &"alice-pw".into())
        .await
        .unwrap();
    assert_eq!(u.dn, alice);
    // service.defaultdomain: a login without a domain.
    let u = d
        .verify_password("alice", &"alice-pw".into())
        .await
        .unwrap();
    assert_eq!(u.dn, alice);
    assert_eq!(
        d.verify_password("alice@example.com", &"wrong".into())
            .await
            .unwrap_err(),
        Error::Rejected(Reject::BadPassword)
    );

    // The same with the wrong service password: the server is refused
    // (a temporary failure), which shows the credential was used.
    let text = text.replace(slapd.service_password(), "not-the-password");
    let d = common::directory(from_config(&text, dir.path()).unwrap());
    let e = d
        .verify_password("alice@example.com", &"alice-pw".into())
        .await
        .unwrap_err();
    assert!(e.is_temporary(), "{e:?}");
}
