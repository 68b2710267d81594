//! Secret handling, provisioning rules and the RFC 5929 certificate hash
//! (checked against OpenSSL's fingerprints).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use portcullis_sasl::{
    Error, MIN_ITERATIONS, Password, Request, ScramAlgorithm, ScramSecret, ServerContext,
    ServerSession, Service, Step, TlsState, TlsVersion, tls_server_end_point,
};

#[test]
fn secrets_are_redacted_from_debug() {
    let pw = Password::new("hunter2-secret");
    assert_eq!(format!("{pw:?}"), "Password(<redacted>)");
    let secret =
        ScramSecret::derive(ScramAlgorithm::Sha256, &pw, b"salt-salt", MIN_ITERATIONS).unwrap();
    let dbg = format!("{secret:?}");
    assert!(
        !dbg.contains(&format!("{:?}", secret.stored_key())),
        "{dbg}"
    );
    assert!(dbg.contains("<redacted>"));
    // A pending request prints no password either.
    let ctx = ServerContext::new(Service::Imap, "h");
    let mut s = ServerSession::new(portcullis_sasl::Mechanism::Plain, &ctx).unwrap();
    let Step::Verify(req @ Request::VerifyPassword(_)) =
        s.start(Some(b"\0bob\0hunter2-secret")).unwrap()
    else {
        panic!()
    };
    let dbg = format!("{req:?} {s:?}");
    assert!(!dbg.contains("hunter2"), "{dbg}");
    // Nor does a client session of any mechanism.
    for m in portcullis_sasl::Mechanism::ALL {
        let ctx = portcullis_sasl::ClientContext::new(Service::Imap, "h")
            .with_tls(TlsState::new(TlsVersion::Tls13, false).with_tls_exporter(vec![1; 32]));
        let creds = portcullis_sasl::Credentials::new("bob", "hunter2-secret");
        let client = portcullis_sasl::ClientSession::new(m, creds, &ctx).unwrap();
        assert!(!format!("{client:?}").contains("hunter2"), "{m}");
    }
    let tls =
        TlsState::new(TlsVersion::Tls13, false).with_tls_exporter(b"exporter-secret".to_vec());
    assert!(!format!("{tls:?}").contains("exporter-secret"));
}

#[test]
fn new_scram_secrets_need_4096_iterations() {
    let pw = Password::new("pencil");
    for alg in [ScramAlgorithm::Sha1, ScramAlgorithm::Sha256] {
        assert!(matches!(
            ScramSecret::derive(alg, &pw, b"salt", MIN_ITERATIONS - 1),
            Err(Error::ScramSecret(_))
        ));
        assert!(ScramSecret::generate(alg, &pw, 1).is_err());
        let s = ScramSecret::generate(alg, &pw, MIN_ITERATIONS).unwrap();
        assert_eq!(s.salt().len(), portcullis_sasl::SALT_LEN);
        // Two generations never share a salt.
        let t = ScramSecret::generate(alg, &pw, MIN_ITERATIONS).unwrap();
        assert_ne!(s.salt(), t.salt());
        assert_ne!(s.stored_key(), t.stored_key());
    }
    // Existing secrets with fewer iterations still parse (and log in).
    let legacy = ScramSecret::parse(
        "SCRAM-SHA-1$1024:QSXCR+Q6sek8bf92$HZbuOlKbWl+eR8AfIposuKbhX30=:0njsXc4tQRdI5cOz2cZXpDVvPyI=",
    )
    .unwrap();
    assert_eq!(legacy.iterations(), 1024);
    assert!(
        ScramSecret::derive(ScramAlgorithm::Sha1, &Password::new("a\u{7}b"), b"s", 4096).is_err()
    );
}

#[test]
fn rfc5803_parse_rejects_garbage() {
    for bad in [
        "",
        "SCRAM-SHA-1",
        "SCRAM-SHA-1$4096:QSXCR+Q6sek8bf92$HZbuOlKbWl+eR8AfIposuKbhX30=",
        "SCRAM-MD5$4096:QSXCR+Q6sek8bf92$HZbuOlKbWl+eR8AfIposuKbhX30=:0njsXc4tQRdI5cOz2cZXpDVvPyI=",
        "SCRAM-SHA-1$x:QSXCR+Q6sek8bf92$HZbuOlKbWl+eR8AfIposuKbhX30=:0njsXc4tQRdI5cOz2cZXpDVvPyI=",
        "SCRAM-SHA-1$0:QSXCR+Q6sek8bf92$HZbuOlKbWl+eR8AfIposuKbhX30=:0njsXc4tQRdI5cOz2cZXpDVvPyI=",
        "SCRAM-SHA-1$4096:$HZbuOlKbWl+eR8AfIposuKbhX30=:0njsXc4tQRdI5cOz2cZXpDVvPyI=",
        "SCRAM-SHA-1$4096:QSXCR+Q6sek8bf92$HZbu:0njsXc4tQRdI5cOz2cZXpDVvPyI=",
        "SCRAM-SHA-256$4096:QSXCR+Q6sek8bf92$HZbuOlKbWl+eR8AfIposuKbhX30=:0njsXc4tQRdI5cOz2cZXpDVvPyI=",
        "SCRAM-SHA-1$4096:QSXCR+Q6sek8bf92$HZbuOlKbWl+eR8AfIposuKbhX30=:0njsXc4tQRdI5cOz2cZXpDVvPyI=$x",
    ] {
        assert!(ScramSecret::parse(bad).is_err(), "{bad}");
    }
    // RFC 3112 allows blanks around '$'.
    assert!(
        ScramSecret::parse(
            "SCRAM-SHA-1 $ 4096:QSXCR+Q6sek8bf92 $ HZbuOlKbWl+eR8AfIposuKbhX30=:0njsXc4tQRdI5cOz2cZXpDVvPyI="
        )
        .is_ok()
    );
}

#[test]
fn derived_keys_match_gsasl_mkpasswd() {
    // GNU SASL derives the same stored keys (an independent PBKDF2/HMAC).
    for (alg, mech) in [
        (ScramAlgorithm::Sha1, "SCRAM-SHA-1"),
        (ScramAlgorithm::Sha256, "SCRAM-SHA-256"),
    ] {
        let out = Command::new("timeout")
            .args([
                "20",
                "gsasl",
                "--mkpasswd",
                "--mechanism",
                mech,
                "--password",
                "pencil",
            ])
            .args(["--iteration-count", "4096", "--salt", "QSXCR+Q6sek8bf92"])
            .output()
            .expect("gsasl installed");
        assert!(out.status.success());
        // "{mech}count,salt,stored-key,server-key"
        let text = String::from_utf8(out.stdout).unwrap();
        let fields: Vec<&str> = text.trim().rsplit('}').next().unwrap().split(',').collect();
        let ours = ScramSecret::derive(
            alg,
            &Password::new("pencil"),
            b"A%\xc2G\xe4:\xb1\xe9<m\xffv",
            4096,
        )
        .unwrap();
        let rfc5803 = ours.to_rfc5803();
        assert_eq!(
            rfc5803,
            format!(
                "{mech}${}:{}${}:{}",
                fields[0], fields[1], fields[2], fields[3]
            ),
            "gsasl said {text}"
        );
    }
}

fn openssl(args: &[&str]) -> String {
    let out = Command::new("timeout")
        .arg("30")
        .arg("openssl")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn tls_server_end_point_matches_openssl_fingerprints() {
    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();
    // (key options, signature digest, the hash RFC 5929 prescribes)
    let cases: [(&[&str], &str, &str); 7] = [
        (&["-newkey", "rsa:2048"], "-sha256", "-sha256"),
        // RSASSA-PSS: the hash is in the algorithm's parameters.
        (
            &["-newkey", "rsa-pss", "-pkeyopt", "rsa_keygen_bits:2048"],
            "-sha384",
            "-sha384",
        ),
        (
            &["-newkey", "rsa:2048", "-sigopt", "rsa_padding_mode:pss"],
            "-sha512",
            "-sha512",
        ),
        (
            &["-newkey", "rsa:2048", "-sigopt", "rsa_padding_mode:pss"],
            "-sha1",
            "-sha256",
        ),
        (&["-newkey", "rsa:2048"], "-sha1", "-sha256"),
        (
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
            "-sha384",
            "-sha384",
        ),
        (
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            "-sha512",
            "-sha512",
        ),
    ];
    for (i, (key, sig, hash)) in cases.iter().enumerate() {
        let (k, c, d) = (
            path(&format!("{i}.key")),
            path(&format!("{i}.pem")),
            path(&format!("{i}.der")),
        );
        let mut args = vec![
            "req",
            "-x509",
            "-nodes",
            "-subj",
            "/CN=mail.example",
            "-days",
            "1",
        ];
        args.extend_from_slice(key);
        args.extend_from_slice(&[*sig, "-keyout", &k, "-out", &c]);
        openssl(&args);
        openssl(&["x509", "-in", &c, "-outform", "DER", "-out", &d]);
        let fp = openssl(&["x509", "-in", &c, "-noout", "-fingerprint", hash]);
        let hex: String = fp
            .trim()
            .rsplit('=')
            .next()
            .unwrap()
            .replace(':', "")
            .to_lowercase();
        let der = std::fs::read(&d).unwrap();
        let ours: String = tls_server_end_point(&der)
            .unwrap()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(ours, hex, "{sig}");
    }
    // Ed25519 has no defined hash for tls-server-end-point.
    let (k, c, d) = (path("ed.key"), path("ed.pem"), path("ed.der"));
    openssl(&[
        "req", "-x509", "-nodes", "-subj", "/CN=x", "-days", "1", "-newkey", "ed25519", "-keyout",
        &k, "-out", &c,
    ]);
    openssl(&["x509", "-in", &c, "-outform", "DER", "-out", &d]);
    assert!(tls_server_end_point(&std::fs::read(&d).unwrap()).is_err());
    assert!(tls_server_end_point(b"\x30\x03\x02\x01").is_err());
    assert!(tls_server_end_point(b"").is_err());
}

/// The server's first challenge of a fresh session.
fn first_challenge(m: portcullis_sasl::Mechanism, initial: Option<&[u8]>) -> Vec<u8> {
    let ctx = ServerContext::new(Service::Imap, "h");
    let mut s = ServerSession::new(m, &ctx).unwrap();
    match s.start(initial).unwrap() {
        Step::Challenge(c) => c,
        // SCRAM asks for the secret first: an unknown user.
        Step::Verify(_) => match s.answer(portcullis_sasl::Answer::Reject).unwrap() {
            Step::Challenge(c) => c,
            other => panic!("{m}: {other:?}"),
        },
        other => panic!("{m}: {other:?}"),
    }
}

#[test]
fn challenges_and_nonces_are_fresh_for_every_session() {
    use portcullis_sasl::Mechanism;
    for m in [Mechanism::CramMd5, Mechanism::DigestMd5] {
        let a = first_challenge(m, None);
        let b = first_challenge(m, None);
        assert_ne!(a, b, "{m}: two sessions got the same challenge");
    }
    let apop = |_: ()| {
        let ctx = ServerContext::new(Service::Pop, "h");
        ServerSession::new(Mechanism::Apop, &ctx)
            .unwrap()
            .apop_timestamp()
            .unwrap()
    };
    assert_ne!(apop(()), apop(()), "APOP banner timestamps repeat");

    // SCRAM: the server nonce is fresh; the made-up salt of an unknown user
    // is stable, so repeating the first message does not show that the
    // user does not exist; another unknown name gets another salt.
    let first = |user: &str| {
        let msg = format!("n,,n={user},r=clientnonce0123");
        let c = String::from_utf8(first_challenge(
            Mechanism::ScramSha256,
            Some(msg.as_bytes()),
        ))
        .unwrap();
        let part = |k: &str| {
            c.split(',')
                .find_map(|f| f.strip_prefix(k))
                .unwrap()
                .to_owned()
        };
        (part("r="), part("s="))
    };
    let (r1, s1) = first("nobody");
    let (r2, s2) = first("nobody");
    let (_, s3) = first("somebody-else");
    assert_ne!(r1, r2);
    assert!(r1.starts_with("clientnonce0123") && r1.len() > "clientnonce0123".len() + 16);
    assert_eq!(s1, s2, "an unknown user's salt changes between attempts");
    assert_ne!(s1, s3);
}

/// SCRAM's first reply for `user`, who does not exist, with `ctx`:
/// (salt, iteration count).
fn unknown_user_reply(ctx: &ServerContext, user: &str) -> (String, String) {
    let mut s = ServerSession::new(portcullis_sasl::Mechanism::ScramSha256, ctx).unwrap();
    let msg = format!("n,,n={user},r=clientnonce0123");
    let Step::Verify(_) = s.start(Some(msg.as_bytes())).unwrap() else {
        panic!("SCRAM asks for the secret first")
    };
    let Step::Challenge(c) = s.answer(portcullis_sasl::Answer::Reject).unwrap() else {
        panic!("a made-up challenge for an unknown user")
    };
    let c = String::from_utf8(c).unwrap();
    let part = |k: &str| {
        c.split(',')
            .find_map(|f| f.strip_prefix(k))
            .unwrap()
            .to_owned()
    };
    (part("s="), part("i="))
}

#[test]
fn unknown_users_get_a_persistent_made_up_secret() {
    use std::sync::Arc;

    use portcullis_sasl::UnknownUserSecret;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scram-unknown-user.secret");
    // First start: the secret is made and saved, readable by us only.
    let first = Arc::new(UnknownUserSecret::load_or_create(&path, 10_000).unwrap());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let ctx = ServerContext::new(Service::Imap, "h").with_unknown_user_secret(first);
    let (salt, iterations) = unknown_user_reply(&ctx, "nobody");
    // The directory's usual count, not a tell-tale default.
    assert_eq!(iterations, "10000");
    // After a restart, or on another front end with the same file: the
    // same salt for the same name, as a real user's would be.
    let again = Arc::new(UnknownUserSecret::load_or_create(&path, 10_000).unwrap());
    let other_front_end = ServerContext::new(Service::Pop, "h2").with_unknown_user_secret(again);
    assert_eq!(unknown_user_reply(&other_front_end, "nobody").0, salt);
    assert_ne!(unknown_user_reply(&other_front_end, "somebody").0, salt);
    // Another site's secret gives other salts.
    let elsewhere = ServerContext::new(Service::Imap, "h")
        .with_unknown_user_secret(Arc::new(UnknownUserSecret::random(10_000).unwrap()));
    assert_ne!(unknown_user_reply(&elsewhere, "nobody").0, salt);
    // A damaged file is a clear error, never a silent new secret.
    std::fs::write(&path, "not hex\n").unwrap();
    let e = UnknownUserSecret::load_or_create(&path, 10_000).unwrap_err();
    assert!(e.to_string().contains("scram-unknown-user.secret"), "{e}");
    assert!(UnknownUserSecret::new(&[7; 16], 10_000).is_err());
    assert!(UnknownUserSecret::new(&[7; 32], 100).is_err());
}

#[test]
fn the_unknown_user_secret_comes_from_the_configuration() {
    use portcullis_sasl::UnknownUserSecret;

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("state")).unwrap();
    let read = |text: &str| {
        let config = portcullis_config::Config::parse(text).unwrap();
        UnknownUserSecret::from_parameters(|n| config.string(n).ok(), dir.path())
    };
    // Unset: made in local.statedir on first start, 4096 iterations.
    let s = read("local.statedir = \"state\"\n").unwrap();
    assert_eq!(s.iterations(), MIN_ITERATIONS);
    let made = dir.path().join("state/scram-unknown-user.secret");
    assert!(made.is_file());
    let text = std::fs::read_to_string(&made).unwrap();
    // The same file on the next start.
    read("local.statedir = \"state\"\n").unwrap();
    assert_eq!(std::fs::read_to_string(&made).unwrap(), text);
    // A file of its own, and the directory's count.
    let s =
        read("[sasl.default.scram]\nunknownusersecret = \"shared.secret\"\niterations = 12000\n")
            .unwrap();
    assert_eq!(s.iterations(), 12_000);
    assert!(dir.path().join("shared.secret").is_file());
    // Neither set: the configuration's directory.
    read("").unwrap();
    assert!(dir.path().join("scram-unknown-user.secret").is_file());
}
