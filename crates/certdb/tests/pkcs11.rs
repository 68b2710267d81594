//! The library API against a SoftHSM2 token: `load_identity("module:alias")`,
//! token signatures for every scheme, a shared signer used from many
//! threads, idempotent login, wrong PIN and missing token.
//!
//! SoftHSM reads `SOFTHSM2_CONF` when the library is loaded, so the test
//! re-runs itself in a child process with that variable set (no unsafe
//! `set_var`). Steps run one after another: never parallel SoftHSM tests.
#![cfg(feature = "pkcs11")]
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use portcullis_certdb::{
    CertDb, Error, KdfParams, KeyLocation, KeyType, Password, PasswordFile, Signer, Subject,
    SubjectFields, Token, Validity, verify,
};

const LIB: &str = "/usr/lib/softhsm/libsofthsm2.so";
const CHILD: &str = "PORTCULLIS_CERTDB_PKCS11_CHILD";

fn init_token(conf_dir: &Path, label: &str) {
    let out = Command::new("timeout")
        .args([
            "60",
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            label,
            "--so-pin",
            "1234",
            "--pin",
            "5678",
        ])
        .env("SOFTHSM2_CONF", conf_dir.join("softhsm2.conf"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn token_identity_and_signing() {
    if std::env::var_os(CHILD).is_none() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tokens")).unwrap();
        std::fs::write(
            dir.path().join("softhsm2.conf"),
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.path().join("tokens").display()
            ),
        )
        .unwrap();
        init_token(dir.path(), "alpha");
        init_token(dir.path(), "beta");
        init_token(dir.path(), "delta");
        let out = Command::new("timeout")
            .arg("300")
            .arg(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "token_identity_and_signing",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, dir.path())
            .env("SOFTHSM2_CONF", dir.path().join("softhsm2.conf"))
            .output()
            .unwrap();
        let o = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "child failed:\n{o}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(o.contains("1 passed"), "{o}");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let pw = Password::new("db-pw");
    let mut db = CertDb::create(work.path(), &pw, KdfParams::INSECURE_FAST).unwrap();
    db.add_module("alpha", Path::new(LIB), Some("alpha"))
        .unwrap();
    db.add_module("beta", Path::new(LIB), Some("beta")).unwrap();
    db.add_module("gone", Path::new(LIB), Some("gamma"))
        .unwrap();
    db.add_module("delta", Path::new(LIB), Some("delta"))
        .unwrap();
    db.set_module_password("alpha", Password::new("5678"))
        .unwrap();
    db.set_module_password("beta", Password::new("0000"))
        .unwrap();
    db.set_module_password("delta", Password::new("5678"))
        .unwrap();

    let now = time::OffsetDateTime::now_utc();
    let subject = Subject::from_fields(&SubjectFields::new("hsm.example.com")).unwrap();
    db.add_self_signed(
        &pw,
        "alpha:ec",
        &subject,
        Validity::months(now, 3),
        KeyType::EcP256,
    )
    .unwrap();
    db.add_self_signed(
        &pw,
        "alpha:rsa",
        &subject,
        Validity::months(now, 3),
        KeyType::Rsa2048,
    )
    .unwrap();
    // An internal CA certificate that issued nothing: the chain stays the leaf.
    db.add_self_signed(
        &pw,
        "Internal-One",
        &subject,
        Validity::months(now, 3),
        KeyType::EcP256,
    )
    .unwrap();

    // What tlsconf does.
    let server = CertDb::open(work.path()).unwrap();
    let pins = PasswordFile::load(work.path()).unwrap();
    for nick in ["alpha:ec", "alpha:rsa"] {
        let id = server.load_identity(nick, &pins).unwrap();
        assert_eq!(id.chain.len(), 1);
        assert_eq!(
            id.signer.location(),
            KeyLocation::Token {
                module: "alpha".into(),
                label: nick[6..].into()
            }
        );
        let leaf = portcullis_certdb::CertInfo::parse(&id.chain[0]).unwrap();
        assert_eq!(leaf.spki, id.signer.public_key_info());
        for &scheme in id.signer.schemes() {
            let sig = id.signer.sign(scheme, b"transcript hash input").unwrap();
            verify(
                id.signer.public_key_info(),
                scheme,
                b"transcript hash input",
                &sig,
            )
            .unwrap();
        }
        // One signer, many threads: the session pool serves them all.
        let signer: Arc<dyn Signer> = id.signer.clone();
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let s = signer.clone();
                std::thread::spawn(move || {
                    for j in 0..10 {
                        let msg = format!("message {i} {j}");
                        let scheme = s.schemes()[0];
                        let sig = s.sign(scheme, msg.as_bytes()).unwrap();
                        verify(s.public_key_info(), scheme, msg.as_bytes(), &sig).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }
    // A failed add-selfsign-cert (the label is taken) leaves no key pair
    // behind; a request-cert key is listed and can be removed.
    {
        let tok = Token::open(&db.module("alpha").unwrap(), Some(&Password::new("5678"))).unwrap();
        let keys = tok.keys().unwrap();
        assert_eq!(keys, [("ec".to_owned(), true), ("rsa".to_owned(), true)]);
        let err = db
            .add_self_signed(
                &pw,
                "alpha:ec",
                &subject,
                Validity::months(now, 3),
                KeyType::EcP256,
            )
            .unwrap_err();
        assert!(matches!(err, Error::AliasInUse(_)), "{err}");
        assert_eq!(tok.keys().unwrap(), keys);
        db.request_certificate(&pw, &subject, KeyType::EcP256, Some(("alpha", "pending")))
            .unwrap();
        assert!(tok.keys().unwrap().contains(&("pending".to_owned(), false)));
        assert!(tok.remove_key("ec").is_err(), "a certificate uses it");
        tok.remove_key("pending").unwrap();
        assert_eq!(tok.keys().unwrap(), keys);

        // Renewals on the token keep one certificate under the label (a
        // reader running alongside is left out: SoftHSM's file store fails
        // writes under concurrent readers now and then).
        for i in 0..5 {
            db.renew_self_signed(&pw, "alpha:rsa", Validity::months(now, 4 + i))
                .unwrap();
        }
        let labels: Vec<String> = tok
            .certificates()
            .unwrap()
            .into_iter()
            .map(|c| c.0)
            .collect();
        assert_eq!(labels, ["ec", "rsa"]);
    }

    // The token's login is lost under us (as when the token is removed and
    // put back): the next signature logs in again and succeeds.
    let id = server.load_identity("alpha:ec", &pins).unwrap();
    let scheme = id.signer.schemes()[0];
    id.signer.sign(scheme, b"before").unwrap();
    log_out_behind_our_back("alpha");
    let sig = id.signer.sign(scheme, b"after").unwrap();
    verify(id.signer.public_key_info(), scheme, b"after", &sig).unwrap();
    // A token key pair without a certificate is reachable by its label.
    let tok = Token::open(&server.module("alpha").unwrap(), pins.get("alpha")).unwrap();
    let by_label = tok.signer("ec").unwrap();
    assert_eq!(by_label.public_key_info(), id.signer.public_key_info());
    assert!(matches!(tok.signer("nope"), Err(Error::NoPrivateKey(_))));

    let internal = server.load_identity("Internal-One", &pins).unwrap();
    assert_eq!(internal.signer.location(), KeyLocation::Internal);

    // Logging in again is fine (the process is already logged in).
    let alpha = server.module("alpha").unwrap();
    let tok = Token::open(&alpha, Some(&Password::new("5678"))).unwrap();
    tok.login().unwrap();
    tok.login().unwrap();
    assert_eq!(tok.label(), "alpha");
    let labels: Vec<String> = tok
        .certificates()
        .unwrap()
        .into_iter()
        .map(|c| c.0)
        .collect();
    assert_eq!(labels, ["ec", "rsa"]);

    // Wrong PIN (token beta, never logged in), missing PIN, missing token.
    match server.load_identity("beta:x", &pins) {
        Err(Error::WrongPin(m)) => assert_eq!(m, "beta"),
        other => panic!("expected WrongPin, got {other:?}"),
    }
    let beta = server.module("beta").unwrap();
    match Token::open(&beta, None).and_then(|t| t.login()) {
        Err(Error::NoPin(m)) => assert_eq!(m, "beta"),
        other => panic!("expected NoPin, got {other:?}"),
    }
    match server.load_identity("gone:x", &pins) {
        Err(Error::TokenNotPresent(m)) => assert_eq!(m, "gone"),
        other => panic!("expected TokenNotPresent, got {other:?}"),
    }
    match server.load_identity("nomodule:x", &pins) {
        Err(Error::UnknownModule(m)) => assert_eq!(m, "nomodule"),
        other => panic!("expected UnknownModule, got {other:?}"),
    }
    match server.load_identity("alpha:missing", &pins) {
        Err(Error::UnknownAlias(a)) => assert_eq!(a, "alpha:missing"),
        other => panic!("expected UnknownAlias, got {other:?}"),
    }

    // Someone else in this process logged in to token delta: first as the
    // security officer (a clear error for us), then as the user (fine: we
    // use that login).
    already_logged_in(&server.module("delta").unwrap());
}

fn already_logged_in(delta: &portcullis_certdb::Module) {
    use cryptoki::session::UserType;
    use cryptoki::types::AuthPin;
    let (other, slot) = second_handle("delta");
    let session = other.open_rw_session(slot).unwrap();
    session
        .login(UserType::So, Some(&AuthPin::from("1234".to_owned())))
        .unwrap();
    let tok = Token::open(delta, Some(&Password::new("5678"))).unwrap();
    match tok.login() {
        Err(e @ Error::Pkcs11 { .. }) => {
            assert!(e.to_string().contains("security officer"), "{e}");
        }
        other => panic!("expected the SO-logged-in error, got {other:?}"),
    }
    session.logout().unwrap();
    session
        .login(UserType::User, Some(&AuthPin::from("5678".to_owned())))
        .unwrap();
    tok.login().unwrap();
    assert!(tok.certificates().unwrap().is_empty());
    // The library stays initialised for the rest of the process: the
    // second handle must not finalise it when dropped.
    std::mem::forget(session);
    std::mem::forget(other);
}

/// Logs the process out of token `label` through a second handle on the
/// library, as a token removal would.
fn log_out_behind_our_back(label: &str) {
    let (other, slot) = second_handle(label);
    let session = other.open_ro_session(slot).unwrap();
    session.logout().unwrap();
    // The library stays initialised for the rest of the process.
    std::mem::forget(session);
    std::mem::forget(other);
}

/// A second handle on the library this process already initialised, and
/// the slot of token `label`. Callers forget the handle so that it does
/// not finalise the library when dropped.
fn second_handle(label: &str) -> (cryptoki::context::Pkcs11, cryptoki::slot::Slot) {
    use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
    let other = Pkcs11::new(LIB).unwrap();
    let _already = other.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK));
    let slot = other
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| other.get_token_info(*s).unwrap().label().trim() == label)
        .unwrap();
    (other, slot)
}
