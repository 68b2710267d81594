//! The conversions between tlsconf's types and their sasl / certdb
//! counterparts (one place: `src/convert.rs`).
#![allow(clippy::unwrap_used)]

use portcullis_tlsconf::{Nickname, Service, TlsVersion, sasl};

#[test]
fn services_map_one_to_one_onto_sasl() {
    let all = [Service::Smtp, Service::Imap, Service::Pop, Service::Http];
    let mapped: Vec<sasl::Service> = all.iter().map(|s| (*s).into()).collect();
    assert_eq!(
        mapped,
        [
            sasl::Service::Smtp,
            sasl::Service::Imap,
            sasl::Service::Pop,
            sasl::Service::Http
        ]
    );
    for s in all {
        assert_eq!(Service::try_from(sasl::Service::from(s)).unwrap(), s);
        // Both name the service the same way.
        assert!(s.nicknames_parameter().contains(
            match sasl::Service::from(s).digest_uri_service() {
                "smtp" => "imta",
                other => other,
            }
        ));
    }
}

#[test]
fn versions_round_trip_through_sasl() {
    for (v, want) in [
        (TlsVersion::Tls12, sasl::TlsVersion::Tls12),
        (TlsVersion::Tls13, sasl::TlsVersion::Tls13),
    ] {
        assert_eq!(sasl::TlsVersion::from(v), want);
        assert_eq!(TlsVersion::try_from(want).unwrap(), v);
    }
}

#[cfg(feature = "certdb")]
#[test]
fn nicknames_map_onto_the_database_and_back() {
    use portcullis_certdb::Nickname as DbNickname;
    let cases = [
        ("Server-Cert", DbNickname::Internal("Server-Cert".into())),
        (
            "Internal (Software) Token:Server-Cert",
            DbNickname::Internal("Server-Cert".into()),
        ),
        (
            " hsm : tls key ",
            DbNickname::Token {
                module: "hsm".into(),
                alias: "tls key".into(),
            },
        ),
    ];
    for (text, want) in cases {
        let n: Nickname = text.parse().unwrap();
        let db = DbNickname::from(&n);
        assert_eq!(db, want, "{text}");
        let back = Nickname::try_from(&db).unwrap();
        assert_eq!(DbNickname::from(&back), db);
    }
    // certdb's parser is infallible; what tlsconf refuses stays refused.
    assert!(Nickname::try_from(&DbNickname::parse("hsm:")).is_err());
    assert!(Nickname::try_from(&DbNickname::parse("a\u{7}b")).is_err());
    assert_eq!(
        Nickname::on_token("hsm", "k").unwrap(),
        "hsm:k".parse().unwrap()
    );
    assert_eq!(
        Nickname::internal("Server-Cert").unwrap().to_string(),
        "Server-Cert"
    );
}
