//! The directory's login suite, run against a users file: every mechanism
//! through `portcullis_sasl::ServerSession` and `Backends::resolve`, with
//! the account (canonical name, mailHost) after each; unknown users and
//! wrong passwords refused alike; EXTERNAL by name and by certificate;
//! proxy authorization; `UserSource` choosing the file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use portcullis_ldapauth::{NewScheme, UserFile, UserFileOptions, UserSource};
use portcullis_sasl::{
    Answer, Authenticated, Backends, ClientContext, ClientSession, Credentials, ExternalIdentity,
    Mechanism, Password, ScramAlgorithm, ScramSecret, ServerContext, ServerSession, Service, Step,
};
use portcullis_test_support::ca::TestCa;

/// `carol`'s SCRAM-SHA-256 keys in Dovecot's `iterations,salt,stored,server`.
fn dovecot_scram(password: &str) -> String {
    let s = ScramSecret::derive(
        ScramAlgorithm::Sha256,
        &Password::new(password),
        b"carol-salt-16byt",
        4096,
    )
    .unwrap();
    format!(
        "{{SCRAM-SHA-256}}{},{},{},{}",
        s.iterations(),
        STANDARD.encode(s.salt()),
        STANDARD.encode(s.stored_key()),
        STANDARD.encode(s.server_key())
    )
}

/// A value made by the crate, under Dovecot's scheme name.
fn dovecot_crypt(password: &str) -> String {
    let v = NewScheme::Sha512Crypt { rounds: 5000 }
        .hash(password.as_bytes())
        .unwrap();
    v.replacen("{CRYPT}", "{SHA512-CRYPT}", 1)
}

struct Fixture {
    _dir: tempfile::TempDir,
    file: UserFile,
    backends: Backends,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "# the login suite's users\n\
         alice:{{PLAIN}}alice-pw:1000:1000::/home/alice::mailhost=store1.example.com \
         mail=alice@example.com mailalternateaddress=al@example.com\n\
         bob@example.com:{bob}::::::mailhost=store2.example.com\n\
         carol@example.com:{carol}::::::mailhost=store3.example.com\n\
         dave@example.com:{{PLAIN}}dave-pw::::::status=inactive mail=dave@example.com\n\
         admin@example.com:{{PLAIN}}admin-pw::::::admin=yes\n\
         other@example.org:{{PLAIN}}other-pw\n",
        bob = dovecot_crypt("bob-pw"),
        carol = dovecot_scram("carol-pw"),
    );
    std::fs::write(dir.path().join("users"), text).unwrap();
    let mut options = UserFileOptions::default();
    options.default_domain = Some("example.com".into());
    let file = UserFile::open(dir.path().join("users"), options).unwrap();
    let backends = UserSource::File(file.clone()).backends();
    Fixture {
        _dir: dir,
        file,
        backends,
    }
}

fn server_ctx() -> ServerContext {
    ServerContext::new(Service::Imap, "mail.example.com")
}

/// Runs one exchange between a portcullis-sasl client and server, answering
/// the server's requests from `backends`.
async fn exchange(
    backends: &Backends,
    mechanism: Mechanism,
    credentials: Credentials,
    sctx: &ServerContext,
) -> Option<Authenticated> {
    let cctx = ClientContext::new(Service::Imap, "mail.example.com");
    let mut client = ClientSession::new(mechanism, credentials, &cctx).unwrap();
    let mut server = ServerSession::new(mechanism, sctx).unwrap();
    let first = if mechanism == Mechanism::Apop {
        // The client answers the timestamp of the POP3 greeting.
        let timestamp = server.apop_timestamp().unwrap().to_owned();
        Some(client.step(timestamp.as_bytes()).unwrap())
    } else {
        client.initial_response().unwrap()
    };
    let mut step = server.start(first.as_deref()).ok()?;
    for _ in 0..10 {
        step = match step {
            Step::Verify(request) => server.answer(backends.resolve(&request).await).ok()?,
            Step::Challenge(c) => {
                let response = client.step(&c).ok()?;
                server.step(&response).ok()?
            }
            Step::Done(auth) => return Some(auth),
            _ => return None,
        };
    }
    None
}

async fn login(
    backends: &Backends,
    mechanism: Mechanism,
    user: &str,
    pw: &str,
) -> Option<Authenticated> {
    exchange(
        backends,
        mechanism,
        Credentials::new(user, pw),
        &server_ctx(),
    )
    .await
}

/// An EXTERNAL exchange on a connection whose lower layer gave `identity`.
async fn external(backends: &Backends, identity: ExternalIdentity) -> Option<Authenticated> {
    let ctx = server_ctx().with_external(identity);
    exchange(
        backends,
        Mechanism::External,
        Credentials::external(None),
        &ctx,
    )
    .await
}

const PASSWORD_MECHANISMS: [Mechanism; 7] = [
    Mechanism::Plain,
    Mechanism::Login,
    Mechanism::CramMd5,
    Mechanism::DigestMd5,
    Mechanism::Apop,
    Mechanism::ScramSha1,
    Mechanism::ScramSha256,
];

#[tokio::test]
async fn every_mechanism_logs_in_a_cleartext_user_with_the_account() {
    let f = fixture();
    for mechanism in PASSWORD_MECHANISMS {
        // Typed without the domain, typed in capitals: the identity is the
        // canonical one.
        for typed in ["alice", "ALICE@example.com"] {
            let auth = login(&f.backends, mechanism, typed, "alice-pw")
                .await
                .unwrap_or_else(|| panic!("{mechanism:?} {typed}"));
            assert_eq!(auth.identity(), "alice@example.com", "{mechanism:?}");
            let account = auth.account().unwrap();
            assert_eq!(account.mail_host.as_deref(), Some("store1.example.com"));
            assert_eq!(account.domain.as_deref(), Some("example.com"));
            assert_eq!(
                account.attribute("mailalternateaddress"),
                Some(&["al@example.com".to_owned()][..])
            );
            assert_eq!(
                account.attribute("home"),
                Some(&["/home/alice".to_owned()][..])
            );
        }
        assert!(
            login(&f.backends, mechanism, "alice", "wrong")
                .await
                .is_none(),
            "{mechanism:?} wrong password"
        );
        assert!(
            login(&f.backends, mechanism, "nobody", "alice-pw")
                .await
                .is_none(),
            "{mechanism:?} unknown user"
        );
        // dave's password is right, but the account is inactive.
        assert!(
            login(&f.backends, mechanism, "dave", "dave-pw")
                .await
                .is_none(),
            "{mechanism:?} inactive"
        );
    }
}

/// What each stored form allows: a hash serves PLAIN and LOGIN only; SCRAM
/// keys serve PLAIN, LOGIN and their own SCRAM algorithm.
#[tokio::test]
async fn hashed_and_scram_users_log_in_where_the_stored_form_allows() {
    let f = fixture();
    for (user, pw, host, works) in [
        (
            "bob",
            "bob-pw",
            "store2.example.com",
            &[Mechanism::Plain, Mechanism::Login][..],
        ),
        (
            "carol",
            "carol-pw",
            "store3.example.com",
            &[Mechanism::Plain, Mechanism::Login, Mechanism::ScramSha256][..],
        ),
    ] {
        for mechanism in PASSWORD_MECHANISMS {
            let auth = login(&f.backends, mechanism, user, pw).await;
            assert_eq!(
                auth.is_some(),
                works.contains(&mechanism),
                "{user} {mechanism:?}"
            );
            if let Some(auth) = auth {
                assert_eq!(auth.identity(), format!("{user}@example.com"));
                assert_eq!(auth.account().unwrap().mail_host.as_deref(), Some(host));
            }
            assert!(login(&f.backends, mechanism, user, "wrong").await.is_none());
        }
    }
}

/// The first answer of a PLAIN exchange for `user` / `pw`.
async fn plain_answer(backends: &Backends, user: &str, pw: &str) -> Answer {
    let mut server = ServerSession::new(Mechanism::Plain, &server_ctx()).unwrap();
    let Step::Verify(request) = server
        .start(Some(format!("\0{user}\0{pw}").as_bytes()))
        .unwrap()
    else {
        panic!("PLAIN asks for a password check");
    };
    backends.resolve(&request).await
}

#[tokio::test]
async fn unknown_users_and_wrong_passwords_get_the_same_reject() {
    let f = fixture();
    for (user, pw) in [
        ("bob", "wrong"),
        ("nobody", "bob-pw"),
        ("nobody@example.net", "x"),
        ("dave", "dave-pw"),
        ("dave", "wrong"),
    ] {
        assert!(
            matches!(plain_answer(&f.backends, user, pw).await, Answer::Reject),
            "{user}"
        );
    }
    assert!(matches!(
        plain_answer(&f.backends, "bob", "bob-pw").await,
        Answer::Accept(_)
    ));
}

#[tokio::test]
async fn external_names_must_be_active_users() {
    let f = fixture();
    for (name, want) in [
        ("alice", Some("alice@example.com")),
        ("bob@example.com", Some("bob@example.com")),
        ("dave@example.com", None),
        ("nobody@example.com", None),
    ] {
        let auth = external(&f.backends, ExternalIdentity::Name(name.to_owned())).await;
        assert_eq!(auth.as_ref().map(Authenticated::identity), want, "{name}");
    }
}

#[tokio::test]
async fn external_certificates_map_by_email() {
    let f = fixture();
    let ca = TestCa::new("Users File CA").unwrap();
    for (email, want) in [
        // mail= and mailalternateaddress= both map.
        (Some("alice@example.com"), Some("alice@example.com")),
        (Some("AL@example.com"), Some("alice@example.com")),
        // No address fields: the canonical name.
        (Some("other@example.org"), Some("other@example.org")),
        // An inactive account, an unknown address, no address at all.
        (Some("dave@example.com"), None),
        (Some("stranger@example.com"), None),
        (None, None),
    ] {
        let cert = ca.issue_client("Someone", email).unwrap();
        let conn = portcullis_test_support::tls::client_auth_handshake(&cert).unwrap();
        let verified = portcullis_sasl::VerifiedCertificate::from_rustls(&conn).unwrap();
        let auth = external(&f.backends, ExternalIdentity::Certificate(verified)).await;
        assert_eq!(
            auth.as_ref().map(Authenticated::identity),
            want,
            "{email:?}"
        );
        if let Some(auth) = auth {
            assert!(auth.account().is_some());
        }
    }
}

#[tokio::test]
async fn only_admins_act_as_other_users() {
    let f = fixture();
    let as_user =
        |authz: &str, user: &str, pw: &str| Credentials::new(user, pw).with_authzid(authz);
    let ctx = server_ctx();
    // admin=yes may act as alice, and the session has alice's account.
    let auth = exchange(
        &f.backends,
        Mechanism::Plain,
        as_user("alice", "admin", "admin-pw"),
        &ctx,
    )
    .await
    .unwrap();
    assert_eq!(auth.identity(), "alice@example.com");
    assert_eq!(
        auth.account().unwrap().mail_host.as_deref(),
        Some("store1.example.com")
    );
    for (authz, user, pw) in [
        // Not an admin.
        ("bob@example.com", "alice", "alice-pw"),
        // The target is inactive, or unknown.
        ("dave", "admin", "admin-pw"),
        ("nobody", "admin", "admin-pw"),
        // The admin's password is still checked.
        ("alice", "admin", "wrong"),
    ] {
        assert!(
            exchange(
                &f.backends,
                Mechanism::Plain,
                as_user(authz, user, pw),
                &ctx
            )
            .await
            .is_none(),
            "{user} as {authz}"
        );
    }
    // Naming oneself is no proxying.
    assert!(
        exchange(
            &f.backends,
            Mechanism::Plain,
            as_user("alice@example.com", "alice", "alice-pw"),
            &ctx,
        )
        .await
        .is_some()
    );
}

#[tokio::test]
async fn a_reloaded_file_is_what_the_mechanisms_see() {
    let f = fixture();
    assert!(
        login(&f.backends, Mechanism::ScramSha256, "alice", "alice-pw")
            .await
            .is_some()
    );
    let path = f.file.path().to_owned();
    let tmp = path.with_extension("new");
    std::fs::write(
        &tmp,
        "alice:{PLAIN}new-pw::::::mailhost=store9.example.com\n",
    )
    .unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    for mechanism in PASSWORD_MECHANISMS {
        assert!(
            login(&f.backends, mechanism, "alice", "alice-pw")
                .await
                .is_none()
        );
        let auth = login(&f.backends, mechanism, "alice", "new-pw")
            .await
            .unwrap();
        assert_eq!(
            auth.account().unwrap().mail_host.as_deref(),
            Some("store9.example.com"),
            "{mechanism:?}"
        );
    }
}

#[tokio::test]
async fn user_source_chooses_the_file_when_local_userfile_is_set() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users"), "alice:{PLAIN}alice-pw\n").unwrap();
    let params = |file: bool| {
        move |name: &str| match name {
            "local.userfile" if file => Some("users".to_owned()),
            "service.defaultdomain" => Some("example.com".to_owned()),
            "local.ugldaphost" => Some("127.0.0.1:9".to_owned()),
            "local.ugldapbasedn" => Some("o=example".to_owned()),
            _ => None,
        }
    };
    let source = UserSource::from_parameters(params(true), dir.path()).unwrap();
    assert!(matches!(source, UserSource::File(_)), "{source:?}");
    let auth = login(&source.backends(), Mechanism::Plain, "alice", "alice-pw")
        .await
        .unwrap();
    assert_eq!(auth.identity(), "alice@example.com");
    let source = UserSource::from_parameters(params(false), dir.path()).unwrap();
    assert!(matches!(source, UserSource::Directory(_)), "{source:?}");
    // A bad users file is an error, not a fallback to the directory.
    std::fs::write(dir.path().join("users"), "alice:{NOPE}x\n").unwrap();
    let err = UserSource::from_parameters(params(true), dir.path()).unwrap_err();
    assert!(err.to_string().contains("line 1"), "{err}");
}

/// Every scheme `doveadm pw` writes that the file accepts, through PLAIN.
#[tokio::test]
async fn doveadm_values_log_in_through_plain() {
    let Some(doveadm) = ["/usr/bin/doveadm", "/usr/sbin/doveadm"]
        .iter()
        .map(Path::new)
        .find(|p| p.exists())
    else {
        eprintln!("SKIPPED: doveadm (package dovecot-core) is not installed");
        return;
    };
    let schemes = [
        "SHA512-CRYPT",
        "SHA256-CRYPT",
        "MD5-CRYPT",
        "BLF-CRYPT",
        "ARGON2ID",
        "SSHA512",
        "SHA256",
        "PBKDF2",
        "SCRAM-SHA-1",
        "SCRAM-SHA-256",
        "PLAIN-MD5",
        "CLEARTEXT",
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for (i, scheme) in schemes.iter().enumerate() {
        let out = Command::new("timeout")
            .arg("30")
            .arg(doveadm)
            .args(["pw", "-s", scheme, "-p", &format!("pw{i}")])
            .output()
            .unwrap();
        assert!(out.status.success(), "doveadm pw -s {scheme}");
        let hash = String::from_utf8(out.stdout).unwrap();
        text.push_str(&format!("u{i}@example.com:{}\n", hash.trim()));
    }
    std::fs::write(dir.path().join("users"), text).unwrap();
    let file = UserFile::open(dir.path().join("users"), UserFileOptions::default()).unwrap();
    let backends = UserSource::File(file).backends();
    for (i, scheme) in schemes.iter().enumerate() {
        let user = format!("u{i}@example.com");
        assert!(
            login(&backends, Mechanism::Plain, &user, &format!("pw{i}"))
                .await
                .is_some(),
            "{scheme}"
        );
        assert!(
            login(&backends, Mechanism::Login, &user, "nope")
                .await
                .is_none(),
            "{scheme}"
        );
    }
}
