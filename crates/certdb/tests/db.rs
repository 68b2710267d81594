//! The database directory through the library API: readers during writes,
//! leftovers of interrupted writers, refusals that write nothing.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use portcullis_certdb::{
    CaUsage, CertDb, Error, KdfParams, KeyType, Password, PrivateKey, SoftwareSigner, Subject,
    SubjectFields, TrustFlags, Validity, build_pkcs12, self_signed,
};

fn cert(cn: &str) -> (PrivateKey, Vec<u8>) {
    let k = PrivateKey::generate(KeyType::EcP256).unwrap();
    let der = self_signed(
        &SoftwareSigner::new(&k).unwrap(),
        &Subject::from_fields(&SubjectFields::new(cn)).unwrap(),
        Validity::days(time::OffsetDateTime::now_utc(), 30),
    )
    .unwrap();
    (k, der)
}

#[test]
fn readers_never_fail_while_a_writer_works() {
    let dir = tempfile::tempdir().unwrap();
    let pw = Password::new("pw");
    let mut db =
        CertDb::generate(dir.path(), &pw, KdfParams::INSECURE_FAST, KeyType::EcP256).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let path = dir.path().to_owned();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut reads = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    let db = CertDb::open(&path).unwrap();
                    let pins = db.password_file().unwrap();
                    let all = db.certificates().unwrap();
                    assert!(all.iter().any(|e| e.nickname == "Server-Cert"));
                    let id = db.load_identity("Server-Cert", &pins).unwrap();
                    assert_eq!(
                        portcullis_certdb::CertInfo::parse(&id.chain[0])
                            .unwrap()
                            .spki,
                        id.signer.public_key_info()
                    );
                    db.trusted_cas(CaUsage::ServerAuth).unwrap();
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    for i in 0..30 {
        let (k, der) = cert(&format!("c{i}.example"));
        db.add_with_key(&pw, &format!("C{i}"), &der, &k, TrustFlags::default(), &[])
            .unwrap();
        if i % 3 == 0 {
            db.set_trust(&format!("C{i}"), "CT,,".parse().unwrap())
                .unwrap();
        }
        if i % 2 == 1 {
            db.remove(&format!("C{}", i - 1)).unwrap();
        }
        db.renew_self_signed(
            &pw,
            "Server-Cert",
            Validity::days(time::OffsetDateTime::now_utc(), 9),
        )
        .unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    let rep = db.check_integrity().unwrap();
    assert_eq!(rep.orphans, 0);
    assert_eq!(rep.certificates, 16);
    // Odd aliases survive; CT was set on multiples of three: C3, C9, ..., C27.
    assert_eq!(db.trusted_cas(CaUsage::ClientAuth).unwrap().len(), 5);
}

#[test]
fn leftovers_are_ignored_by_readers_and_removed_by_the_next_writer() {
    let dir = tempfile::tempdir().unwrap();
    let pw = Password::new("pw");
    let mut db =
        CertDb::generate(dir.path(), &pw, KdfParams::INSECURE_FAST, KeyType::EcP256).unwrap();
    let gen0 = db.generation();
    std::fs::write(dir.path().join(".tmp-0123456789abcdef"), b"half a index").unwrap();
    std::fs::write(dir.path().join("certs/00ff.der"), b"half a certificate").unwrap();
    std::fs::write(dir.path().join("keys/.tmp-1"), b"half a key").unwrap();
    let reader = CertDb::open(dir.path()).unwrap();
    assert_eq!(reader.certificates().unwrap().len(), 1);
    assert_eq!(reader.check_integrity().unwrap().orphans, 2);
    let (_, der) = cert("plain.example");
    db.add_certificate("Plain", &der, TrustFlags::trusted_ca())
        .unwrap();
    assert_eq!(db.generation(), gen0 + 1);
    assert!(!dir.path().join(".tmp-0123456789abcdef").exists());
    assert!(!dir.path().join("certs/00ff.der").exists());
    assert!(!dir.path().join("keys/.tmp-1").exists());
    assert_eq!(db.check_integrity().unwrap().orphans, 0);
    assert_eq!(
        db.trusted_cas(CaUsage::ServerAuth).unwrap(),
        vec![der.clone()]
    );
    assert_eq!(db.trusted_cas(CaUsage::ClientAuth).unwrap(), vec![der]);

    // A damaged certificate file is reported, not silently used.
    let entry = std::fs::read_to_string(dir.path().join("index.toml")).unwrap();
    let file = entry
        .lines()
        .find(|l| l.starts_with("file = \"certs/"))
        .unwrap();
    let rel = file.trim_start_matches("file = \"").trim_end_matches('"');
    std::fs::write(dir.path().join(rel), b"tampered").unwrap();
    assert!(matches!(db.certificates(), Err(Error::Corrupt(_))));
}

#[test]
fn refusals_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let pw = Password::new("right");
    let mut db =
        CertDb::generate(dir.path(), &pw, KdfParams::INSECURE_FAST, KeyType::EcP256).unwrap();
    let index = std::fs::read(dir.path().join("index.toml")).unwrap();
    let wrong = Password::new("wrong");
    let (k, der) = cert("x.example");
    assert!(matches!(
        db.verify_password(&wrong),
        Err(Error::WrongPassword)
    ));
    assert!(matches!(
        db.add_with_key(&wrong, "X", &der, &k, TrustFlags::default(), &[]),
        Err(Error::WrongPassword)
    ));
    assert!(matches!(
        db.store_key(&wrong, &k),
        Err(Error::WrongPassword)
    ));
    assert!(matches!(
        db.private_key("Server-Cert", &wrong),
        Err(Error::WrongPassword)
    ));
    assert!(matches!(
        db.add_certificate("X", b"\x30\x03\x02\x01", TrustFlags::default()),
        Err(Error::BadCertificate(_))
    ));
    assert!(matches!(db.remove("Nope"), Err(Error::UnknownAlias(_))));
    assert!(matches!(
        db.set_trust("Nope", TrustFlags::default()),
        Err(Error::UnknownAlias(_))
    ));
    assert!(matches!(
        db.certificate("Nope"),
        Err(Error::UnknownAlias(_))
    ));
    let (other, _) = cert("y.example");
    assert!(matches!(
        db.add_with_key(&pw, "X", &der, &other, TrustFlags::default(), &[]),
        Err(Error::BadKey(_))
    ));
    for bad in ["", "a:b", " lead", "tab\there"] {
        assert!(
            matches!(
                db.add_certificate(bad, &der, TrustFlags::default()),
                Err(Error::InvalidAlias(..))
            ),
            "{bad:?}"
        );
    }
    // PKCS#12 with the wrong password.
    let p12 = build_pkcs12("X", &k, std::slice::from_ref(&der), &Password::new("p12")).unwrap();
    assert!(matches!(
        db.import_pkcs12(&pw, &p12, &Password::new("nope"), None, false),
        Err(Error::WrongFilePassword(_))
    ));
    assert!(matches!(
        db.import_pkcs12(
            &pw,
            &p12[..p12.len() / 2],
            &Password::new("p12"),
            None,
            false
        ),
        Err(Error::BadPkcs12(_))
    ));
    assert_eq!(index, std::fs::read(dir.path().join("index.toml")).unwrap());
    assert_eq!(db.check_integrity().unwrap().certificates, 1);
    // And the right one works, including a round trip through PKCS#12.
    assert_eq!(
        db.import_pkcs12(&pw, &p12, &Password::new("p12"), None, false)
            .unwrap(),
        ["X"]
    );
    let again = db.export_pkcs12(&pw, "X", &Password::new("p12b")).unwrap();
    let parsed = portcullis_certdb::parse_pkcs12(&again, &Password::new("p12b")).unwrap();
    assert_eq!(parsed[0].chain, vec![der]);
    assert_eq!(parsed[0].key.pkcs8_der(), k.pkcs8_der());
}

#[test]
fn issued_certificate_finds_the_requested_key_and_chain() {
    let dir = tempfile::tempdir().unwrap();
    let pw = Password::new("pw");
    let mut db = CertDb::create(dir.path(), &pw, KdfParams::INSECURE_FAST).unwrap();
    // A CA (its own key) issues a certificate for a key stored by request.
    let ca_key = PrivateKey::generate(KeyType::EcP256).unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.distinguished_name = rcgen::DistinguishedName::new();
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Unit CA");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_kp = rcgen::KeyPair::try_from(ca_key.pkcs8_der()).unwrap();
    let ca_cert = ca_params.self_signed(&ca_kp).unwrap();
    let leaf_key = PrivateKey::generate(KeyType::Rsa2048).unwrap();
    db.store_key(&pw, &leaf_key).unwrap();
    let leaf_kp = rcgen::KeyPair::try_from(leaf_key.pkcs8_der()).unwrap();
    let mut leaf_params = rcgen::CertificateParams::new(vec!["leaf.example".to_owned()]).unwrap();
    leaf_params.distinguished_name = rcgen::DistinguishedName::new();
    leaf_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "leaf.example");
    let issuer = rcgen::Issuer::new(ca_params, ca_kp);
    let leaf = leaf_params.signed_by(&leaf_kp, &issuer).unwrap();
    db.add_certificate("CA", ca_cert.der(), TrustFlags::trusted_ca())
        .unwrap();
    db.add_certificate("Leaf", leaf.der(), TrustFlags::default())
        .unwrap();
    let e = db.certificate("Leaf").unwrap();
    assert!(e.has_key);
    assert_eq!(e.trust.to_string(), "u,u,u");
    let id = db
        .load_identity("Leaf", &db.password_file().unwrap())
        .unwrap();
    assert_eq!(id.chain, vec![leaf.der().to_vec(), ca_cert.der().to_vec()]);
    assert_eq!(
        id.signer.algorithm(),
        portcullis_certdb::KeyAlgorithm::Rsa { bits: 2048 }
    );
}

#[cfg(unix)]
#[test]
fn create_never_changes_the_mode_of_a_directory_it_did_not_make() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let pw = Password::new("pw");
    let top = tempfile::tempdir().unwrap();

    // An existing folder (say a shared one) keeps its mode.
    let shared = top.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
    CertDb::create(&shared, &pw, KdfParams::INSECURE_FAST).unwrap();
    assert_eq!(mode(&shared), 0o755);
    // The database's own contents are private nevertheless.
    assert_eq!(mode(&shared.join("keys")), 0o700);
    assert_eq!(mode(&shared.join("sslpassword.conf")), 0o600);

    // A second create there is refused and changes nothing.
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o750)).unwrap();
    let err = CertDb::create(&shared, &pw, KdfParams::INSECURE_FAST).unwrap_err();
    assert!(matches!(err, Error::AlreadyExists(_)), "{err}");
    assert_eq!(mode(&shared), 0o750);

    // A folder create makes is private from the start.
    let fresh = top.path().join("a/b/certdb");
    CertDb::create(&fresh, &pw, KdfParams::INSECURE_FAST).unwrap();
    assert_eq!(mode(&fresh), 0o700);
}
