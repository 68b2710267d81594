//! The certificate database as the source: nicknames, RSA+ECDSA pairs,
//! `C`/`T` trust flags, reload after `msgcert`-style changes.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{
    Ca, Kind, Leaf, TestServer, add_to_db as add, rust_client_config, rust_handshake, s_client,
    write,
};
use portcullis_tlsconf::certdb::CertDbSource;
use portcullis_tlsconf::certdb::certdb::{CertDb, KdfParams, Password};
use portcullis_tlsconf::{
    ClientSettings, Error, ServerSettings, Service, TlsClient, TlsRequirement, TlsServer,
};

#[tokio::test(flavor = "multi_thread")]
async fn certdb_nicknames_trust_flags_and_reload() {
    let dir = tempfile::tempdir().unwrap();
    let db_dir = dir.path().join("db");
    let pw = Password::new("db-password");
    let mut db = CertDb::create(&db_dir, &pw, KdfParams::INSECURE_FAST).unwrap();

    let server_ca = Ca::new("Server Issuing CA");
    let client_ca = Ca::new("Client Issuing CA");
    db.add_certificate("server-ca", &server_ca.cert_der, "C,,".parse().unwrap())
        .unwrap();
    db.add_certificate("client-ca", &client_ca.cert_der, "T,,".parse().unwrap())
        .unwrap();
    let ec = server_ca.issue(Leaf::server("db-ecdsa", Kind::Ecdsa));
    let rsa = server_ca.issue(Leaf::server("db-rsa", Kind::Rsa));
    add(&mut db, &pw, "Server-Cert", &ec);
    add(&mut db, &pw, "Server-RSA", &rsa);
    let ca_path = write(dir.path(), "server-ca.pem", &server_ca.cert_pem);

    let source = Arc::new(CertDbSource::new(&db_dir));
    let nicknames = Service::Imap
        .nicknames(Some("Server-Cert, Server-RSA"), Some("Other"))
        .unwrap();
    let tls = Arc::new(TlsServer::new(source.clone(), ServerSettings::new(nicknames)).unwrap());
    let mut srv = TestServer::start(Arc::clone(&tls)).await;

    // Both key types from the database, chosen by the client's schemes.
    for (args, cn) in [
        (&["-sigalgs", "RSA-PSS+SHA256"][..], "db-rsa"),
        (&["-sigalgs", "ECDSA+SHA256"][..], "db-ecdsa"),
    ] {
        let run = s_client(srv.addr, &ca_path, args).await;
        assert!(run.ok, "{args:?}: {}", run.out);
        assert_eq!(run.field("Peer certificate:"), Some(format!("CN = {cn}")));
        srv.next().await.result.unwrap();
    }

    // The `T` CA makes the server ask for client certificates; the `C` one
    // does not count for clients.
    let alice = client_ca.issue(Leaf::client("alice@example.com"));
    let (c, k) = (
        write(dir.path(), "a.crt", &alice.cert_pem),
        write(dir.path(), "a.key", &alice.key_pem),
    );
    let run = s_client(
        srv.addr,
        &ca_path,
        &["-cert", c.to_str().unwrap(), "-key", k.to_str().unwrap()],
    )
    .await;
    assert!(run.ok, "{}", run.out);
    assert_eq!(
        srv.next()
            .await
            .result
            .unwrap()
            .client
            .unwrap()
            .end_entity(),
        alice.cert_der.as_ref()
    );
    let wrong = server_ca.issue(Leaf::client("mallory@example.com"));
    let (c, k) = (
        write(dir.path(), "m.crt", &wrong.cert_pem),
        write(dir.path(), "m.key", &wrong.key_pem),
    );
    s_client(
        srv.addr,
        &ca_path,
        &["-cert", c.to_str().unwrap(), "-key", k.to_str().unwrap()],
    )
    .await;
    assert!(srv.next().await.result.is_err());

    // The client side trusts the `C` CA only.
    let client =
        TlsClient::new(source.as_ref(), &ClientSettings::new(TlsRequirement::Must)).unwrap();
    let tcp = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    drop(client.connect("localhost", tcp).await.unwrap());
    srv.next().await.result.unwrap();

    // Unknown nickname.
    let e = TlsServer::new(
        source.clone(),
        ServerSettings::new(vec!["Nope".parse().unwrap()]),
    )
    .unwrap_err();
    assert!(matches!(e, Error::UnknownNickname(_)), "{e}");

    // Renewal through the database, picked up by the file watch.
    let watch = tls.watch(Duration::from_millis(50));
    let renewed = server_ca.issue(Leaf::server("db-ecdsa-renewed", Kind::Ecdsa));
    db.remove("Server-Cert").unwrap();
    add(&mut db, &pw, "Server-Cert", &renewed);
    let mut waited = 0;
    loop {
        let config = rust_client_config(&server_ca.cert_der);
        let leaf = rust_handshake(srv.addr, config).await.unwrap().leaf;
        srv.next().await.result.unwrap();
        if leaf == renewed.cert_der {
            break;
        }
        assert!(waited < 100, "the renewed certificate was not picked up");
        waited += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(watch);
}
