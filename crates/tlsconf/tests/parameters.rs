//! From configuration text to a listening TLS server: the parameters are
//! read through the configuration crate, the certificates come from the
//! certificate database named by `local.ssldbpath`, and real clients
//! (`openssl s_client`, rustls) connect.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{Ca, Kind, Leaf, TestServer, add_to_db, s_client, write};
use portcullis_config::Config;
use portcullis_tlsconf::certdb::certdb::{CertDb, KdfParams, Password};
use portcullis_tlsconf::{ClientAuthMode, Error, ServerSettings, Service, TlsServer, TlsVersion};

fn getter(config: &Config) -> impl Fn(&str) -> Option<String> + '_ {
    |name| config.string(name).ok()
}

fn settings(text: &str, service: Service) -> Result<ServerSettings, Error> {
    let config = Config::parse(text).unwrap();
    ServerSettings::from_parameters(service, getter(&config), Path::new("/srv/portcullis"))
}

#[test]
fn config_text_to_settings() {
    // Defaults: the registry's Server-Cert, TLS 1.2-1.3, strict ALPN,
    // client certificates by the chapter's rule, tickets on.
    let d = settings("", Service::Pop).unwrap();
    assert_eq!(d.nicknames, ["Server-Cert".parse().unwrap()]);
    assert_eq!(d.versions.min, TlsVersion::Tls12);
    assert_eq!(d.versions.max, TlsVersion::Tls13);
    assert_eq!(d.alpn.protocols, [b"pop3".to_vec()]);
    assert!(d.alpn.strict);
    assert_eq!(d.client_auth.mode, ClientAuthMode::Auto);
    assert!(d.client_auth.crls.is_empty());
    assert!(d.resumption.tickets);
    assert_eq!(d.resumption.ticket_key_lifetime, Duration::from_secs(21600));
    assert!(d.sni.is_empty() && !d.sni_strict);
    assert_eq!(d.handshake_timeout, Duration::from_secs(30));

    let text = r#"
encryption.rsa.nssslpersonalityssl = "Server-Cert"
local.imap.sslnicknames = "imap-ec, hsm:imap-rsa"
local.sslminversion = "TLSv1.3"
encryption.nsssl3ciphers = "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"
encryption.nssslclientauth = "required"
local.sslcrlfiles = "crl/ca.crl, /var/lib/crls"
local.sslstrictalpn = false
local.sslsessiontickets = false
local.sslticketlifetime = 600
local.sslsnimap = "mail.example.com, imap.example.com = ex-ec, ex-rsa; *.example.org = org"
local.sslsnistrict = true
local.sslhandshaketimeout = 7
"#;
    let s = settings(text, Service::Imap).unwrap();
    let nicks: Vec<String> = s.nicknames.iter().map(ToString::to_string).collect();
    assert_eq!(nicks, ["imap-ec", "hsm:imap-rsa"]);
    assert_eq!(s.versions.min, TlsVersion::Tls13);
    let suites: Vec<_> = s
        .cipher_suites
        .as_slice()
        .iter()
        .map(|c| portcullis_tlsconf::suites::iana_name(*c))
        .collect();
    assert_eq!(
        suites,
        ["TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256"]
    );
    assert_eq!(s.client_auth.mode, ClientAuthMode::Required);
    assert_eq!(
        s.client_auth.crls,
        [
            Path::new("/srv/portcullis/crl/ca.crl"),
            Path::new("/var/lib/crls")
        ]
    );
    assert!(!s.alpn.strict);
    assert_eq!(s.alpn.protocols, [b"imap".to_vec()]);
    assert!(!s.resumption.tickets);
    assert_eq!(s.resumption.ticket_key_lifetime, Duration::from_secs(600));
    assert_eq!(s.sni.len(), 2);
    assert_eq!(s.sni[0].names, ["mail.example.com", "imap.example.com"]);
    assert_eq!(s.sni[1].nicknames, ["org".parse().unwrap()]);
    assert!(s.sni_strict);
    assert_eq!(s.handshake_timeout, Duration::from_secs(7));

    // The per-service list wins only for its service.
    let smtp = settings(text, Service::Smtp).unwrap();
    assert_eq!(smtp.nicknames, ["Server-Cert".parse().unwrap()]);
    assert!(smtp.alpn.protocols.is_empty());
}

#[test]
fn legacy_values_are_refused_naming_parameter_and_cipher() {
    for (text, parameter, reason) in [
        (
            "local.sslminversion = \"sslv3\"",
            "local.sslminversion",
            "SSL 2.0 and 3.0 are broken",
        ),
        (
            "local.sslminversion = \"tls1\"",
            "local.sslminversion",
            "TLS 1.0 and 1.1 are deprecated",
        ),
        (
            "encryption.nsssl3ciphers = \"TLS_AES_128_GCM_SHA256,rsa_rc4_128_md5\"",
            "encryption.nsssl3ciphers",
            "\"rsa_rc4_128_md5\": RC4",
        ),
        (
            "encryption.nsssl3ciphers = \"rsa_des_sha\"",
            "encryption.nsssl3ciphers",
            "\"rsa_des_sha\": single DES",
        ),
        (
            "encryption.nsssl3ciphers = \"rsa_rc2_40_md5\"",
            "encryption.nsssl3ciphers",
            "\"rsa_rc2_40_md5\": 40/56-bit export",
        ),
        (
            "encryption.nsssl3ciphers = \"rsa_null_md5\"",
            "encryption.nsssl3ciphers",
            "\"rsa_null_md5\": NULL",
        ),
        (
            "encryption.nsssl3ciphers = \"fips_3des_sha\"",
            "encryption.nsssl3ciphers",
            "\"fips_3des_sha\": triple DES",
        ),
        (
            "encryption.nsssl3ciphers = \"RC4-MD5\"",
            "encryption.nsssl3ciphers",
            "RC4",
        ),
        // TLS 1.3 enabled but only a TLS 1.2 suite listed.
        (
            "encryption.nsssl3ciphers = \"ECDHE-RSA-AES128-GCM-SHA256\"",
            "encryption.nsssl3ciphers",
            "TLSv1.3 is enabled",
        ),
        (
            "local.sslsnimap = \"mail.example.com\"",
            "local.sslsnimap",
            "expected host names = nicknames",
        ),
    ] {
        let e = settings(text, Service::Imap).unwrap_err();
        let message = e.to_string();
        assert!(
            message.starts_with(&format!("{parameter}: ")),
            "{text}: {message}"
        );
        assert!(message.contains(reason), "{text}: {message}");
    }
}

struct Db {
    dir: tempfile::TempDir,
    client_ca: Ca,
    ca_path: std::path::PathBuf,
}

/// A configuration directory with the database in `certdb` (the default
/// of `local.ssldbpath`): an ECDSA and an RSA certificate, one for
/// another host name, and a CA trusted for client certificates.
fn database() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let pw = Password::new("db-password");
    let mut db = CertDb::create(dir.path().join("certdb"), &pw, KdfParams::INSECURE_FAST).unwrap();
    let ca = Ca::new("Parameters Server CA");
    let client_ca = Ca::new("Parameters Client CA");
    db.add_certificate("client-ca", &client_ca.cert_der, "T,,".parse().unwrap())
        .unwrap();
    add_to_db(
        &mut db,
        &pw,
        "imap-ec",
        &ca.issue(Leaf::server("imap-ec", Kind::Ecdsa)),
    );
    add_to_db(
        &mut db,
        &pw,
        "imap-rsa",
        &ca.issue(Leaf::server("imap-rsa", Kind::Rsa)),
    );
    add_to_db(
        &mut db,
        &pw,
        "other",
        &ca.issue(Leaf::server("other", Kind::Ecdsa).names(&["other.example.net"])),
    );
    let ca_path = write(dir.path(), "ca.pem", &ca.cert_pem);
    Db {
        dir,
        client_ca,
        ca_path,
    }
}

fn server(db: &Db, text: &str) -> Result<TlsServer, Error> {
    let config = Config::parse(text).unwrap();
    TlsServer::from_parameters(Service::Imap, getter(&config), db.dir.path())
}

#[tokio::test(flavor = "multi_thread")]
async fn server_from_parameters_over_the_certificate_database() {
    let db = database();
    let text = r#"
local.imap.sslnicknames = "imap-ec, imap-rsa"
local.sslsnimap = "other.example.net = other"
local.sslmaxversion = "TLSv1.2"
"#;
    let tls = Arc::new(server(&db, text).unwrap());
    let mut srv = TestServer::start(Arc::clone(&tls)).await;

    // Both key types of the list, chosen by the client's schemes; TLS 1.2
    // only; ALPN `imap`.
    for (args, cn) in [
        (
            &["-sigalgs", "RSA-PSS+SHA256", "-alpn", "imap"][..],
            "imap-rsa",
        ),
        (
            &["-sigalgs", "ECDSA+SHA256", "-alpn", "imap"][..],
            "imap-ec",
        ),
    ] {
        let run = s_client(srv.addr, &db.ca_path, args).await;
        assert!(run.ok, "{args:?}: {}", run.out);
        assert_eq!(run.field("Peer certificate:"), Some(format!("CN = {cn}")));
        assert_eq!(run.field("Protocol version:").as_deref(), Some("TLSv1.2"));
        let info = srv.next().await.result.unwrap();
        assert_eq!(info.alpn.as_deref(), Some(&b"imap"[..]));
    }
    // The SNI map.
    let run = s_client(
        srv.addr,
        &db.ca_path,
        &[
            "-servername",
            "other.example.net",
            "-verify_hostname",
            "other.example.net",
        ],
    )
    .await;
    assert!(run.ok, "{}", run.out);
    assert_eq!(
        run.field("Peer certificate:").as_deref(),
        Some("CN = other")
    );
    srv.next().await.result.unwrap();
    // Strict ALPN: a client for another protocol is refused.
    let run = s_client(srv.addr, &db.ca_path, &["-alpn", "pop3"]).await;
    assert!(!run.ok, "{}", run.out);
    assert!(srv.next().await.result.is_err());
    // TLS 1.3 is off.
    let run = s_client(srv.addr, &db.ca_path, &["-tls1_3"]).await;
    assert!(!run.ok, "{}", run.out);
    assert!(srv.next().await.result.is_err());
    // The database's T CA: a client certificate is asked for (auto) and
    // handed on.
    let alice = db.client_ca.issue(Leaf::client("alice@example.com"));
    let (c, k) = (
        write(db.dir.path(), "a.crt", &alice.cert_pem),
        write(db.dir.path(), "a.key", &alice.key_pem),
    );
    let run = s_client(
        srv.addr,
        &db.ca_path,
        &["-cert", c.to_str().unwrap(), "-key", k.to_str().unwrap()],
    )
    .await;
    assert!(run.ok, "{}", run.out);
    let seen = srv.next().await.result.unwrap();
    assert_eq!(seen.client.unwrap().end_entity(), alice.cert_der.as_ref());
}

#[tokio::test(flavor = "multi_thread")]
async fn client_certificate_mode_from_parameters() {
    let db = database();
    // Forced off: no certificate requested even though the database
    // trusts a client CA.
    let off = Arc::new(
        server(
            &db,
            "local.imap.sslnicknames = \"imap-ec\"\nencryption.nssslclientauth = \"off\"\n",
        )
        .unwrap(),
    );
    let mut srv = TestServer::start(Arc::clone(&off)).await;
    let alice = db.client_ca.issue(Leaf::client("alice@example.com"));
    let (c, k) = (
        write(db.dir.path(), "a.crt", &alice.cert_pem),
        write(db.dir.path(), "a.key", &alice.key_pem),
    );
    let with_cert = ["-cert", c.to_str().unwrap(), "-key", k.to_str().unwrap()];
    let run = s_client(srv.addr, &db.ca_path, &with_cert).await;
    assert!(run.ok, "{}", run.out);
    assert!(srv.next().await.result.unwrap().client.is_none());

    // Required: a client without a certificate is refused, one with it
    // accepted.
    let required = Arc::new(
        server(
            &db,
            "local.imap.sslnicknames = \"imap-ec\"\nencryption.nssslclientauth = \"require\"\n",
        )
        .unwrap(),
    );
    let mut srv = TestServer::start(Arc::clone(&required)).await;
    let run = s_client(srv.addr, &db.ca_path, &[]).await;
    assert!(!run.ok, "{}", run.out);
    assert!(srv.next().await.result.is_err());
    let run = s_client(srv.addr, &db.ca_path, &with_cert).await;
    assert!(run.ok, "{}", run.out);
    assert!(srv.next().await.result.unwrap().client.is_some());

    // A CRL from local.sslcrlfiles (relative to the configuration
    // directory) revoking alice.
    write(
        db.dir.path(),
        "client.crl",
        db.client_ca.current_crl(&[&alice.serial]),
    );
    let revoking = Arc::new(
        server(
            &db,
            "local.imap.sslnicknames = \"imap-ec\"\nlocal.sslcrlfiles = \"client.crl\"\n",
        )
        .unwrap(),
    );
    let mut srv = TestServer::start(Arc::clone(&revoking)).await;
    let run = s_client(srv.addr, &db.ca_path, &with_cert).await;
    assert!(!run.ok, "{}", run.out);
    assert!(srv.next().await.result.is_err());
}

#[test]
fn build_errors_name_the_parameter() {
    let db = database();
    for (text, parameter, detail) in [
        // A nickname the database does not hold, in the service's list,
        // in the global one, in the SNI map.
        (
            "local.imap.sslnicknames = \"nope\"\n",
            "local.imap.sslnicknames",
            "\"nope\"",
        ),
        (
            "encryption.rsa.nssslpersonalityssl = \"gone\"\n",
            "encryption.rsa.nssslpersonalityssl",
            "\"gone\"",
        ),
        (
            "local.imap.sslnicknames = \"imap-ec\"\nlocal.sslsnimap = \"x.example.com = absent\"\n",
            "local.sslsnimap",
            "\"absent\"",
        ),
        // Two ECDSA certificates in one list.
        (
            "local.imap.sslnicknames = \"imap-ec, other\"\n",
            "local.imap.sslnicknames",
            "both hold a ECDSA key",
        ),
        // A missing CRL file names the file.
        (
            "local.imap.sslnicknames = \"imap-ec\"\nlocal.sslcrlfiles = \"missing.crl\"\n",
            "local.sslcrlfiles",
            "missing.crl",
        ),
        // Another database directory, which does not exist.
        (
            "local.imap.sslnicknames = \"imap-ec\"\nlocal.ssldbpath = \"elsewhere\"\n",
            "local.ssldbpath",
            "elsewhere",
        ),
    ] {
        let e = server(&db, text).unwrap_err();
        let message = e.to_string();
        assert!(
            matches!(&e, Error::Parameter { parameter: p, .. } if *p == parameter),
            "{text}: {message}"
        );
        assert!(message.contains(detail), "{text}: {message}");
    }
}
