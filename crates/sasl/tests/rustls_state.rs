//! `TlsState::from_rustls` over real rustls handshakes (in memory): both
//! ends see the same binding data, TLS 1.2 offers `tls-exporter` only when
//! the extended master secret was required.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use portcullis_sasl::{ChannelBindingType, TlsState, TlsVersion, tls_server_end_point};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ClientConnection, RootCertStore, ServerConnection};

struct Pair {
    client: ClientConnection,
    server: ServerConnection,
    cert: CertificateDer<'static>,
}

fn handshake(version: &'static rustls::SupportedProtocolVersion, require_ems: bool) -> Pair {
    let ck = rcgen::generate_simple_self_signed(vec!["mail.example".to_owned()]).unwrap();
    let cert = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server_config = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[version])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    server_config.require_ems = require_ems;
    let mut roots = RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let client_config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut client =
        ClientConnection::new(Arc::new(client_config), "mail.example".try_into().unwrap()).unwrap();
    let mut server = ServerConnection::new(Arc::new(server_config)).unwrap();
    // Shuttle records until neither side has anything to say.
    for _ in 0..20 {
        let mut buf = Vec::new();
        client.write_tls(&mut buf).unwrap();
        server.read_tls(&mut buf.as_slice()).unwrap();
        server.process_new_packets().unwrap();
        let mut buf = Vec::new();
        server.write_tls(&mut buf).unwrap();
        client.read_tls(&mut buf.as_slice()).unwrap();
        client.process_new_packets().unwrap();
        if !client.is_handshaking() && !server.is_handshaking() {
            break;
        }
    }
    assert!(!client.is_handshaking() && !server.is_handshaking());
    Pair {
        client,
        server,
        cert,
    }
}

#[test]
fn both_ends_see_the_same_binding() {
    for (version, want) in [
        (&rustls::version::TLS13, TlsVersion::Tls13),
        (&rustls::version::TLS12, TlsVersion::Tls12),
    ] {
        let p = handshake(version, true);
        let server = TlsState::from_rustls(&p.server, true, Some(&p.cert)).unwrap();
        let peer = p.client.peer_certificates().unwrap()[0].clone();
        let client = TlsState::from_rustls(&p.client, true, Some(&peer)).unwrap();
        assert_eq!(server.version, want);
        assert_eq!(
            server.preferred_channel_binding(),
            Some(ChannelBindingType::TlsExporter)
        );
        for kind in [
            ChannelBindingType::TlsExporter,
            ChannelBindingType::TlsServerEndPoint,
        ] {
            let s = server.channel_binding(kind).unwrap();
            assert_eq!(Some(s), client.channel_binding(kind), "{kind}");
        }
        assert_eq!(
            server.channel_binding(ChannelBindingType::TlsServerEndPoint),
            Some(tls_server_end_point(&p.cert).unwrap().as_slice())
        );
        assert_eq!(
            server
                .channel_binding(ChannelBindingType::TlsExporter)
                .unwrap()
                .len(),
            32
        );
    }
}

#[test]
fn tls12_without_required_ems_offers_only_the_end_point_binding() {
    let p = handshake(&rustls::version::TLS12, false);
    let state = TlsState::from_rustls(&p.server, false, Some(&p.cert)).unwrap();
    assert!(!state.extended_master_secret);
    assert_eq!(state.channel_binding(ChannelBindingType::TlsExporter), None);
    assert_eq!(
        state.preferred_channel_binding(),
        Some(ChannelBindingType::TlsServerEndPoint)
    );
    // TLS 1.3 needs no such setting.
    let p = handshake(&rustls::version::TLS13, false);
    let state = TlsState::from_rustls(&p.server, false, None).unwrap();
    assert_eq!(
        state.preferred_channel_binding(),
        Some(ChannelBindingType::TlsExporter)
    );
}

#[test]
fn a_running_handshake_is_refused() {
    let ck = rcgen::generate_simple_self_signed(vec!["mail.example".to_owned()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![ck.cert.der().clone()], key)
    .unwrap();
    let server = ServerConnection::new(Arc::new(config)).unwrap();
    assert!(TlsState::from_rustls(&server, true, None).is_err());
}
