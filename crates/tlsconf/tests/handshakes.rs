//! Server handshakes checked from real clients' side: `openssl s_client`
//! and `curl` report the protocol and suite each setting gives.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::{Ca, Issued, Kind, Leaf, TestServer, curl, s_client, write};
use portcullis_tlsconf::{
    Alpn, CipherSuites, Error, MemorySource, Nickname, ServerSettings, Service, SniEntry,
    TlsServer, TlsVersion, VersionRange,
};

struct Fixture {
    _dir: tempfile::TempDir,
    ca_path: std::path::PathBuf,
    source: Arc<MemorySource>,
    rsa: Issued,
    ecdsa: Issued,
}

fn nick(s: &str) -> Nickname {
    s.parse().unwrap()
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("Test Root");
    let ca_path = write(dir.path(), "ca.pem", &ca.cert_pem);
    let rsa = ca.issue(Leaf::server("rsa-server", Kind::Rsa));
    let ecdsa = ca.issue(Leaf::server("ecdsa-server", Kind::Ecdsa));
    let sni = ca.issue(Leaf::server("imap-sni", Kind::Ecdsa).names(&["imap.example.test"]));
    let wild = ca.issue(Leaf::server("wild-sni", Kind::Ecdsa).names(&["*.pop.example.test"]));
    let source = MemorySource::new()
        .with_credential(nick("rsa"), rsa.credential())
        .with_credential(nick("ecdsa"), ecdsa.credential())
        .with_credential(nick("sni"), sni.credential())
        .with_credential(nick("wild"), wild.credential());
    Fixture {
        _dir: dir,
        ca_path,
        source: Arc::new(source),
        rsa,
        ecdsa,
    }
}

fn pair() -> Vec<Nickname> {
    vec![nick("ecdsa"), nick("rsa")]
}

async fn server(f: &Fixture, settings: ServerSettings) -> TestServer {
    TestServer::start(Arc::new(
        TlsServer::new(f.source.clone(), settings).unwrap(),
    ))
    .await
}

fn settings(min: TlsVersion, max: TlsVersion, suites: &str) -> ServerSettings {
    let mut s = ServerSettings::new(pair());
    s.versions = VersionRange::new(min, max).unwrap();
    s.cipher_suites = CipherSuites::parse(suites).unwrap();
    s
}

#[tokio::test(flavor = "multi_thread")]
async fn each_version_and_suite_as_the_clients_report_it() {
    use TlsVersion::{Tls12, Tls13};
    let f = fixture();
    // (server versions, server suites, what openssl/curl must report)
    let cases = [
        (
            Tls13,
            Tls13,
            "TLS_AES_128_GCM_SHA256",
            "TLSv1.3",
            "TLS_AES_128_GCM_SHA256",
        ),
        (
            Tls13,
            Tls13,
            "TLS_AES_256_GCM_SHA384",
            "TLSv1.3",
            "TLS_AES_256_GCM_SHA384",
        ),
        (
            Tls13,
            Tls13,
            "TLS13_CHACHA20_POLY1305_SHA256",
            "TLSv1.3",
            "TLS_CHACHA20_POLY1305_SHA256",
        ),
        (
            Tls12,
            Tls12,
            "ECDHE-RSA-AES128-GCM-SHA256",
            "TLSv1.2",
            "ECDHE-RSA-AES128-GCM-SHA256",
        ),
        (
            Tls12,
            Tls12,
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            "TLSv1.2",
            "ECDHE-RSA-AES256-GCM-SHA384",
        ),
        (
            Tls12,
            Tls12,
            "ECDHE-RSA-CHACHA20-POLY1305",
            "TLSv1.2",
            "ECDHE-RSA-CHACHA20-POLY1305",
        ),
        (
            Tls12,
            Tls12,
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            "TLSv1.2",
            "ECDHE-ECDSA-AES128-GCM-SHA256",
        ),
        (
            Tls12,
            Tls12,
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            "TLSv1.2",
            "ECDHE-ECDSA-AES256-GCM-SHA384",
        ),
        (
            Tls12,
            Tls12,
            "ECDHE-ECDSA-CHACHA20-POLY1305",
            "TLSv1.2",
            "ECDHE-ECDSA-CHACHA20-POLY1305",
        ),
    ];
    for (min, max, suites, want_version, want_suite) in cases {
        let mut srv = server(&f, settings(min, max, suites)).await;

        let run = s_client(srv.addr, &f.ca_path, &[]).await;
        assert!(run.ok, "s_client, {suites}: {}", run.out);
        assert_eq!(
            run.field("Protocol version:").as_deref(),
            Some(want_version),
            "{suites}: {}",
            run.out
        );
        assert_eq!(
            run.field("Ciphersuite:").as_deref(),
            Some(want_suite),
            "{suites}: {}",
            run.out
        );
        let seen = srv.next().await.result.unwrap();
        assert_eq!(
            seen.version.map(|v| v.to_string()).as_deref(),
            Some(want_version)
        );

        let run = curl(srv.addr, &f.ca_path, &[]).await;
        assert!(run.ok, "curl, {suites}: {}", run.out);
        let line = format!("SSL connection using {want_version} / {want_suite}");
        assert!(
            run.out.contains(&line),
            "curl, {suites}: want {line:?} in {}",
            run.out
        );
        assert!(run.out.starts_with("ok\n"), "curl body: {}", run.out);
        srv.next().await.result.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn version_bounds_are_enforced_against_clients() {
    let f = fixture();
    // Default server: both versions, chosen by the client's limits.
    let mut srv = server(&f, ServerSettings::new(pair())).await;
    for (flag, want) in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")] {
        let run = s_client(srv.addr, &f.ca_path, &[flag]).await;
        assert!(run.ok, "{flag}: {}", run.out);
        assert_eq!(run.field("Protocol version:").as_deref(), Some(want));
        srv.next().await.result.unwrap();
    }
    for (flags, want) in [
        (&["--tlsv1.2", "--tls-max", "1.2"][..], "TLSv1.2"),
        (&["--tlsv1.3"][..], "TLSv1.3"),
    ] {
        let run = curl(srv.addr, &f.ca_path, flags).await;
        assert!(
            run.ok && run.out.contains(&format!("SSL connection using {want}")),
            "{flags:?}: {}",
            run.out
        );
        srv.next().await.result.unwrap();
    }
    // A TLS 1.1 client (OpenSSL needs security level 0 to even try) is refused.
    let run = s_client(
        srv.addr,
        &f.ca_path,
        &["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"],
    )
    .await;
    assert!(!run.ok, "TLS 1.1 accepted: {}", run.out);
    assert!(srv.next().await.result.is_err());

    // TLS 1.3 only: a TLS 1.2 client is refused.
    let mut srv = server(
        &f,
        settings(
            TlsVersion::Tls13,
            TlsVersion::Tls13,
            "TLS_AES_128_GCM_SHA256",
        ),
    )
    .await;
    let run = s_client(srv.addr, &f.ca_path, &["-tls1_2"]).await;
    assert!(!run.ok, "{}", run.out);
    assert!(run.out.contains("protocol version"), "{}", run.out);
    assert!(srv.next().await.result.is_err());
    let run = curl(srv.addr, &f.ca_path, &["--tlsv1.2", "--tls-max", "1.2"]).await;
    assert!(!run.ok, "{}", run.out);
    srv.next().await.result.unwrap_err();

    // TLS 1.2 only: a TLS 1.3-only client is refused.
    let mut srv = server(
        &f,
        settings(
            TlsVersion::Tls12,
            TlsVersion::Tls12,
            "ECDHE-ECDSA-AES128-GCM-SHA256",
        ),
    )
    .await;
    let run = s_client(srv.addr, &f.ca_path, &["-tls1_3"]).await;
    assert!(!run.ok, "{}", run.out);
    srv.next().await.result.unwrap_err();
    // ...and a client without a common suite too.
    let run = s_client(
        srv.addr,
        &f.ca_path,
        &["-tls1_2", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384"],
    )
    .await;
    assert!(!run.ok, "{}", run.out);
    srv.next().await.result.unwrap_err();
}

#[test]
fn legacy_settings_are_a_clear_error() {
    for (name, want) in [
        ("SSLv3", "SSL 2.0 and 3.0 are broken"),
        ("SSLv2", "SSL 2.0 and 3.0 are broken"),
        ("TLSv1", "TLS 1.0 and 1.1 are deprecated"),
        ("TLSv1.1", "TLS 1.0 and 1.1 are deprecated"),
    ] {
        let e = name.parse::<TlsVersion>().unwrap_err();
        assert!(
            matches!(e, Error::Legacy { .. }) && e.to_string().contains(want),
            "{name}: {e}"
        );
        assert!(
            e.to_string().contains("use TLSv1.2 or TLSv1.3 instead"),
            "{e}"
        );
    }
    // The chapter's Table 23-2 ciphers, by NSS, OpenSSL and IANA names.
    for list in [
        "rsa_rc4_128_md5",
        "rsa_3des_sha",
        "rsa_des_sha",
        "rsa_rc4_40_md5",
        "rsa_rc2_40_md5",
        "rsa_null_md5",
        "ECDHE-RSA-AES128-GCM-SHA256:RC4-MD5",
        "TLS_AES_128_GCM_SHA256,DES-CBC3-SHA",
        "TLS_RSA_EXPORT_WITH_RC4_40_MD5",
    ] {
        let e = CipherSuites::parse(list).unwrap_err();
        let m = e.to_string();
        assert!(matches!(e, Error::Legacy { .. }), "{list}: {m}");
        assert!(
            m.starts_with("refused legacy TLS setting") && m.contains("; use "),
            "{list}: {m}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rsa_and_ecdsa_side_by_side() {
    let f = fixture();
    let mut srv = server(&f, ServerSettings::new(pair())).await;
    let cases: [(&[&str], &str); 6] = [
        (&["-sigalgs", "RSA-PSS+SHA256:RSA+SHA256"], "rsa-server"),
        (&["-sigalgs", "ECDSA+SHA256"], "ecdsa-server"),
        (&["-tls1_2", "-sigalgs", "RSA+SHA256"], "rsa-server"),
        (
            &["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"],
            "rsa-server",
        ),
        (
            &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"],
            "ecdsa-server",
        ),
        // Both acceptable: the first in the list wins.
        (&[], "ecdsa-server"),
    ];
    for (args, want) in cases {
        let run = s_client(srv.addr, &f.ca_path, args).await;
        assert!(run.ok, "{args:?}: {}", run.out);
        assert_eq!(
            run.field("Peer certificate:").as_deref(),
            Some(format!("CN = {want}").as_str()),
            "{args:?}: {}",
            run.out
        );
        srv.next().await.result.unwrap();
    }
    // The same through curl, by cipher choice under TLS 1.2.
    for (suite, want) in [
        ("ECDHE-RSA-AES256-GCM-SHA384", &f.rsa),
        ("ECDHE-ECDSA-AES256-GCM-SHA384", &f.ecdsa),
    ] {
        let run = curl(
            srv.addr,
            &f.ca_path,
            &["--tlsv1.2", "--tls-max", "1.2", "--ciphers", suite],
        )
        .await;
        assert!(run.ok, "{suite}: {}", run.out);
        let cn = if std::ptr::eq(want, &f.rsa) {
            "rsa-server"
        } else {
            "ecdsa-server"
        };
        assert!(
            run.out.contains(&format!("subject: CN={cn}")),
            "{suite}: {}",
            run.out
        );
        srv.next().await.result.unwrap();
    }
    // An ECDSA-only server refuses an RSA-only client.
    let mut only_ec = ServerSettings::new(vec![nick("ecdsa")]);
    only_ec.versions = VersionRange::new(TlsVersion::Tls12, TlsVersion::Tls13).unwrap();
    let mut srv = server(&f, only_ec).await;
    let run = s_client(srv.addr, &f.ca_path, &["-sigalgs", "RSA-PSS+SHA256"]).await;
    assert!(!run.ok, "{}", run.out);
    srv.next().await.result.unwrap_err();
}

#[test]
fn one_certificate_per_key_type() {
    let f = fixture();
    let s = ServerSettings::new(vec![nick("ecdsa"), nick("sni")]);
    let e = TlsServer::new(f.source.clone(), s).unwrap_err();
    assert!(matches!(e, Error::DuplicateKeyType { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("at most one certificate per key type"),
        "{e}"
    );
    let e = TlsServer::new(f.source.clone(), ServerSettings::new(vec![nick("nope")])).unwrap_err();
    assert!(matches!(e, Error::UnknownNickname(_)), "{e}");
    // A TLS 1.2-only server whose suites cannot use its only key.
    let mut s = settings(
        TlsVersion::Tls12,
        TlsVersion::Tls12,
        "ECDHE-RSA-AES128-GCM-SHA256",
    );
    s.nicknames = vec![nick("ecdsa")];
    let e = TlsServer::new(f.source.clone(), s).unwrap_err();
    assert!(
        e.to_string()
            .contains("no enabled TLS 1.2 suite can use certificate ecdsa (ECDSA)"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sni_map_and_strict_mode() {
    let f = fixture();
    for strict in [false, true] {
        let mut s = ServerSettings::new(pair());
        s.sni = vec![
            SniEntry::new(vec!["imap.example.test".into()], vec![nick("sni")]),
            SniEntry::new(vec!["*.pop.example.test".into()], vec![nick("wild")]),
        ];
        s.sni_strict = strict;
        let mut srv = server(&f, s).await;
        for (name, want) in [
            ("imap.example.test", "imap-sni"),
            ("IMAP.Example.Test", "imap-sni"),
            ("a.pop.example.test", "wild-sni"),
            ("localhost", "ecdsa-server"),
        ] {
            let run = s_client(srv.addr, &f.ca_path, &["-servername", name]).await;
            assert!(run.ok, "{name}: {}", run.out);
            assert_eq!(
                run.field("Peer certificate:"),
                Some(format!("CN = {want}")),
                "{name}"
            );
            srv.next().await.result.unwrap();
        }
        // No SNI at all: the default certificate.
        let run = s_client(srv.addr, &f.ca_path, &["-noservername"]).await;
        assert!(run.ok, "{}", run.out);
        srv.next().await.result.unwrap();
        // An unknown name: default when lenient, refused when strict.
        let run = s_client(srv.addr, &f.ca_path, &["-servername", "other.example.test"]).await;
        let seen = srv.next().await.result;
        if strict {
            assert!(!run.ok, "{}", run.out);
            assert!(seen.is_err());
        } else {
            assert!(run.ok, "{}", run.out);
            assert_eq!(
                run.field("Peer certificate:").as_deref(),
                Some("CN = ecdsa-server")
            );
            seen.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn alpn_strict_refuses_other_protocols() {
    let f = fixture();
    let mut srv = server(&f, ServerSettings::for_service(Service::Imap, pair())).await;
    let run = s_client(srv.addr, &f.ca_path, &["-alpn", "imap"]).await;
    assert!(run.ok, "{}", run.out);
    assert_eq!(
        srv.next().await.result.unwrap().alpn.as_deref(),
        Some(&b"imap"[..])
    );
    // ALPACA: an HTTP client sent to the IMAP port is refused.
    let run = s_client(srv.addr, &f.ca_path, &["-alpn", "http/1.1"]).await;
    assert!(!run.ok, "{}", run.out);
    assert!(run.out.contains("no application protocol"), "{}", run.out);
    let err = srv.next().await.result.unwrap_err();
    assert!(err.contains("doesn't support any known protocol"), "{err}");
    let run = curl(srv.addr, &f.ca_path, &[]).await;
    assert!(!run.ok, "{}", run.out);
    srv.next().await.result.unwrap_err();
    // A mail client that offers no ALPN is fine.
    let run = s_client(srv.addr, &f.ca_path, &[]).await;
    assert!(run.ok, "{}", run.out);
    assert_eq!(srv.next().await.result.unwrap().alpn, None);

    // SMTP has no registered ALPN ID: strict, any client that offers ALPN
    // (here an HTTP or IMAP one) is refused; one that offers none is fine.
    let mut srv = server(&f, ServerSettings::for_service(Service::Smtp, pair())).await;
    for offered in ["http/1.1", "imap"] {
        let run = s_client(srv.addr, &f.ca_path, &["-alpn", offered]).await;
        assert!(!run.ok, "{offered}: {}", run.out);
        assert!(run.out.contains("no application protocol"), "{}", run.out);
        srv.next().await.result.unwrap_err();
    }
    let run = s_client(srv.addr, &f.ca_path, &[]).await;
    assert!(run.ok, "{}", run.out);
    assert_eq!(srv.next().await.result.unwrap().alpn, None);

    // Lenient: the same client continues without ALPN.
    let mut s = ServerSettings::new(pair());
    s.alpn = Alpn::for_service(Service::Pop);
    s.alpn.strict = false;
    let mut srv = server(&f, s).await;
    let run = s_client(srv.addr, &f.ca_path, &["-alpn", "http/1.1"]).await;
    assert!(run.ok, "{}", run.out);
    assert_eq!(srv.next().await.result.unwrap().alpn, None);
    let run = s_client(srv.addr, &f.ca_path, &["-alpn", "pop3"]).await;
    assert!(run.ok, "{}", run.out);
    assert_eq!(
        srv.next().await.result.unwrap().alpn.as_deref(),
        Some(&b"pop3"[..])
    );
}
