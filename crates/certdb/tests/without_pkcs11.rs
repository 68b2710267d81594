//! A build without the `pkcs11` feature (`cargo test --no-default-features`):
//! the database works, and every `module:alias` operation is refused,
//! naming the feature, instead of reaching a token.
#![cfg(not(feature = "pkcs11"))]
#![allow(clippy::unwrap_used)]

use portcullis_certdb::{
    CertDb, Error, KdfParams, KeyType, Password, Subject, SubjectFields, Validity,
};

#[test]
fn token_nicknames_are_refused_naming_the_feature() {
    let dir = tempfile::tempdir().unwrap();
    let pw = Password::new("pw");
    let mut db =
        CertDb::generate(dir.path(), &pw, KdfParams::INSECURE_FAST, KeyType::EcP256).unwrap();
    db.add_module(
        "hsm",
        std::path::Path::new("/nonexistent/libpkcs11.so"),
        None,
    )
    .unwrap();
    let subject = Subject::from_fields(&SubjectFields::new("x.example.com")).unwrap();
    let validity = Validity::months(time::OffsetDateTime::now_utc(), 3);
    let refused = |e: Error| {
        assert!(
            matches!(e, Error::Unsupported(ref m) if m.contains("pkcs11")),
            "{e}"
        );
    };
    refused(
        db.add_self_signed(&pw, "hsm:k", &subject, validity, KeyType::EcP256)
            .unwrap_err(),
    );
    refused(
        db.load_identity("hsm:k", &db.password_file().unwrap())
            .unwrap_err(),
    );
    refused(db.token_keys("hsm").unwrap_err());
    refused(db.remove_token_key("hsm", "k").unwrap_err());
    assert!(matches!(
        db.token_keys("other"),
        Err(Error::UnknownModule(_))
    ));
    let (certs, problems) = db.token_certificates();
    assert!(certs.is_empty());
    assert!(problems[0].contains("pkcs11"), "{problems:?}");
    // The directory itself still works.
    assert!(
        db.load_identity("Server-Cert", &db.password_file().unwrap())
            .is_ok()
    );
}
