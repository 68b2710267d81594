//! `VerifiedCertificate`: only a finished, verified handshake yields one.

use portcullis_sasl::{ExternalIdentity, VerifiedCertificate};
use portcullis_test_support::ca::TestCa;
use portcullis_test_support::tls::{client_auth_handshake, client_auth_handshake_trusting};

#[test]
fn a_verified_handshake_yields_the_client_certificate() {
    let ca = TestCa::new("Verified CA").unwrap();
    let client = ca.issue_client("alice", Some("alice@example.com")).unwrap();
    let conn = client_auth_handshake(&client).unwrap();
    let cert = VerifiedCertificate::from_rustls(&conn).unwrap();
    assert_eq!(cert.end_entity(), client.cert_der.as_slice());
    assert_eq!(cert.chain().len(), 1);
    // Debug names the sizes, never the bytes.
    let shown = format!("{:?}", ExternalIdentity::Certificate(cert.clone()));
    assert!(
        shown.starts_with("Certificate(VerifiedCertificate(1 certificates"),
        "{shown}"
    );
    assert!(!shown.contains("48, "), "{shown}");
}

#[test]
fn a_certificate_from_another_ca_is_refused_by_the_handshake() {
    let ca = TestCa::new("Trusted CA").unwrap();
    let stranger = TestCa::new("Other CA").unwrap();
    let client = stranger.issue_client("mallory", None).unwrap();
    let err = client_auth_handshake_trusting(&ca.cert_der(), &client).unwrap_err();
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
}
