//! msgcert end to end, checked with OpenSSL and NSS tools.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Env, openssl_ca, openssl_sign, s, text, tool, tool_ok};

#[test]
fn generate_list_show() {
    let env = Env::new();
    let list = env.ok(&["list-certs"]);
    assert!(list.starts_with("Alias"), "{list}");
    for word in [
        "Valid from",
        "Expires on",
        "Self-signed",
        "Issued by",
        "Issued to",
        "Server-Cert",
        "Same as issuer",
    ] {
        assert!(list.contains(word), "{word} missing in\n{list}");
    }
    assert!(list.trim_end().ends_with("1 certificate found"), "{list}");
    let show = env.ok(&["show-cert", "Server-Cert"]);
    for word in [
        "Version: 3 (0x2)",
        "Serial Number:",
        "Signature Algorithm: X9.62 ECDSA signature with SHA-256",
        "Issuer: \"CN=",
        "Not Before:",
        "Not After :",
        "Subject: \"CN=",
        "EC Public Key:",
        "Signed Extensions:",
        "Fingerprint (SHA-256):",
        "Fingerprint (SHA1):",
        "Certificate Trust Flags (u,u,u):",
    ] {
        assert!(show.contains(word), "{word} missing in\n{show}");
    }
    // generate-certDB wrote sslpassword.conf with the internal token line.
    let conf = std::fs::read_to_string(env.db.join("sslpassword.conf")).unwrap();
    assert_eq!(conf, "Internal (Software) Token:password22\n");
    // Keys at rest are PKCS#8 PBES2 (scrypt, AES-256-CBC) that openssl
    // decrypts with the database password.
    let keys: Vec<_> = std::fs::read_dir(env.db.join("keys"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(keys.len(), 1);
    let k = tool_ok(
        "openssl",
        &[
            "pkey",
            "-inform",
            "DER",
            "-in",
            s(&keys[0]),
            "-passin",
            "pass:password22",
            "-noout",
            "-text",
        ],
    );
    assert!(k.contains("Private-Key: (256 bit)"), "{k}");
    let asn1 = tool_ok(
        "openssl",
        &["asn1parse", "-inform", "DER", "-in", s(&keys[0])],
    );
    assert!(
        asn1.contains(":PBES2") && asn1.contains(":scrypt") && asn1.contains(":aes-256-cbc"),
        "{asn1}"
    );
    let wrong = tool(
        "openssl",
        &[
            "pkey",
            "-inform",
            "DER",
            "-in",
            s(&keys[0]),
            "-passin",
            "pass:nope",
            "-noout",
        ],
    );
    assert!(!wrong.status.success());
    // A second generate-certDB refuses to overwrite.
    let err = env.fails(&["generate-certDB", "--insecure-fast-kdf"]);
    assert!(err.contains("already exists"), "{err}");
    // --help for every subcommand.
    for sub in common::SUBCOMMANDS {
        // The seed's GLOBAL_OPTS: -?, --help.
        for flag in ["--help", "-?"] {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_msgcert"))
                .args([sub, flag])
                .output()
                .unwrap();
            assert!(out.status.success(), "{sub} {flag}: {}", text(&out));
            assert!(
                String::from_utf8_lossy(&out.stdout).contains("Usage:"),
                "{sub} {flag}"
            );
        }
    }
    for flag in ["--help", "-?"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_msgcert"))
            .arg(flag)
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(
            help.contains("Usage: msgcert SUBCMD [GLOBAL_OPTS] [SUBCMD_OPTS] [SUBCMD_OPERANDS]"),
            "{flag}: {help}"
        );
    }
}

#[test]
fn self_signed_certificates_verify_with_openssl() {
    let env = Env::new();
    env.ok(&[
        "add-selfsign-cert",
        "--name",
        "siroe",
        "--org",
        "comms",
        "--org-unit",
        "Messaging",
        "--city",
        "SantaClara",
        "--state",
        "ca",
        "--country",
        "us",
        "MySelfSigned-Cert",
    ]);
    env.ok(&[
        "add-selfsign-cert",
        "--name",
        "rsa.example.com",
        "-k",
        "rsa-2048",
        "--validity",
        "10",
        "Rsa-Cert",
    ]);
    let p12pw = env.write("p12pw", "export-pw\n");
    for alias in ["Server-Cert", "MySelfSigned-Cert", "Rsa-Cert"] {
        let p12 = env.path(&format!("{alias}.p12"));
        env.ok(&[
            "export-cert",
            "-o",
            s(&p12),
            "--p12-password-file",
            s(&p12pw),
            alias,
        ]);
        let pem = env.path(&format!("{alias}.pem"));
        tool_ok(
            "openssl",
            &[
                "pkcs12",
                "-in",
                s(&p12),
                "-passin",
                "pass:export-pw",
                "-nokeys",
                "-out",
                s(&pem),
            ],
        );
        let v = tool_ok("openssl", &["verify", "-CAfile", s(&pem), s(&pem)]);
        assert!(v.contains(": OK"), "{v}");
        // The key in the file is the certificate's key.
        let key = env.path(&format!("{alias}.key"));
        tool_ok(
            "openssl",
            &[
                "pkcs12",
                "-in",
                s(&p12),
                "-passin",
                "pass:export-pw",
                "-nocerts",
                "-nodes",
                "-out",
                s(&key),
            ],
        );
        let a = tool_ok("openssl", &["pkey", "-in", s(&key), "-pubout"]);
        let b = tool_ok("openssl", &["x509", "-in", s(&pem), "-noout", "-pubkey"]);
        assert_eq!(a, b, "{alias}");
    }
    let subj = tool_ok(
        "openssl",
        &[
            "x509",
            "-in",
            s(&env.path("MySelfSigned-Cert.pem")),
            "-noout",
            "-subject",
            "-dates",
        ],
    );
    assert!(
        subj.contains("C = us, ST = ca, L = SantaClara, O = comms, OU = Messaging, CN = siroe"),
        "{subj}"
    );
    let show = env.ok(&["show-cert", "Rsa-Cert"]);
    assert!(
        show.contains("Modulus (2048 bits)") && show.contains("Exponent: 65537 (0x10001)"),
        "{show}"
    );
    // Renewal: same key, new serial, new validity.
    let before = env.ok(&["show-cert", "MySelfSigned-Cert"]);
    env.ok(&[
        "renew-selfsign-cert",
        "--validity",
        "200",
        "MySelfSigned-Cert",
    ]);
    let after = env.ok(&["show-cert", "MySelfSigned-Cert"]);
    let serial = |t: &str| {
        t.lines()
            .skip_while(|l| !l.contains("Serial Number:"))
            .nth(1)
            .unwrap()
            .to_owned()
    };
    let pubkey = |t: &str| {
        t.split("Subject Public Key Info:")
            .nth(1)
            .unwrap()
            .split("Signed Extensions")
            .next()
            .unwrap()
            .to_owned()
    };
    assert_ne!(serial(&before), serial(&after));
    assert_eq!(pubkey(&before), pubkey(&after));
    let out = env.run(&["check-expiry", "--days", "150"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let o = String::from_utf8_lossy(&out.stdout);
    assert!(
        o.contains("Server-Cert: expires on")
            && o.contains("Rsa-Cert: expires on")
            && !o.contains("MySelfSigned-Cert"),
        "{o}"
    );
    let out = env.run(&["check-expiry", "--days", "5"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let list = env.ok(&["list-certs"]);
    assert!(
        list.contains("*expires in 9 days*") || list.contains("*expires in 10 days*"),
        "{list}"
    );
    assert!(list.contains("3 certificates found"), "{list}");
}

#[test]
fn rsa_3072_keys() {
    let env = Env::new();
    env.ok(&[
        "add-selfsign-cert",
        "--name",
        "big",
        "-k",
        "rsa-3072",
        "Big",
    ]);
    assert!(
        env.ok(&["show-cert", "Big"])
            .contains("Modulus (3072 bits)")
    );
}

#[test]
fn requests_verify_and_issued_certificates_install() {
    let env = Env::new();
    let bin = env.path("req.der");
    env.ok(&[
        "request-cert",
        "--name",
        "aqua.example.com",
        "--org",
        "siroe",
        "--org-unit",
        "Messaging",
        "-o",
        s(&bin),
    ]);
    let v = tool_ok(
        "openssl",
        &[
            "req",
            "-inform",
            "DER",
            "-in",
            s(&bin),
            "-verify",
            "-noout",
            "-subject",
        ],
    );
    assert!(
        v.contains("verify OK") && v.contains("O = siroe, OU = Messaging, CN = aqua.example.com"),
        "{v}"
    );
    let asc = env.path("req.pem");
    env.ok(&[
        "request-cert",
        "-S",
        "CN=aqua,O=siroe,C=us",
        "-F",
        "ascii",
        "-k",
        "rsa-2048",
        "-o",
        s(&asc),
    ]);
    let pem = std::fs::read_to_string(&asc).unwrap();
    assert!(
        pem.starts_with("-----BEGIN NEW CERTIFICATE REQUEST-----\n"),
        "{pem}"
    );
    let v = tool_ok(
        "openssl",
        &["req", "-in", s(&asc), "-verify", "-noout", "-subject"],
    );
    assert!(
        v.contains("verify OK") && v.contains("C = us, O = siroe, CN = aqua"),
        "{v}"
    );
    // Binary to standard output too.
    let out = env.run(&["request-cert", "--name", "stdout.example"]);
    assert!(
        out.status.success() && out.stdout.first() == Some(&0x30),
        "{}",
        text(&out)
    );

    // A CA signs both; the issued certificates find their keys.
    let ca = openssl_ca(&env, "Test CA");
    let leaf = openssl_sign(&env, &bin, "DER", &ca, "leaf.pem");
    let leaf2 = openssl_sign(&env, &asc, "PEM", &ca, "leaf2.pem");
    env.ok(&["add-cert", "-C", "CA-cert", s(&ca.0)]);
    env.ok(&["add-cert", "Aqua", s(&leaf)]);
    let der = env.path("leaf2.der");
    tool_ok(
        "openssl",
        &["x509", "-in", s(&leaf2), "-outform", "DER", "-out", s(&der)],
    );
    env.ok(&["add-cert", "Aqua-RSA", s(&der)]);
    let show = env.ok(&["show-cert", "Aqua"]);
    assert!(show.contains("Certificate Trust Flags (u,u,u)"), "{show}");
    let ca_show = env.ok(&["show-cert", "CA-cert"]);
    assert!(
        ca_show.contains("Certificate Trust Flags (CT,,)") && ca_show.contains("Trusted Client CA"),
        "{ca_show}"
    );
    let list = env.ok(&["list-certs", "-C"]);
    assert!(
        list.contains("CA-cert") && !list.contains("Aqua") && list.contains("1 certificate found"),
        "{list}"
    );
    let list = env.ok(&["list-certs"]);
    assert!(
        list.contains("CN=aqua.example.com,OU=Messaging,O=siroe") && list.contains("CN=Test CA"),
        "{list}"
    );

    // The exported chain verifies against the CA.
    let p12pw = env.write("p12pw", "x\n");
    let p12 = env.path("aqua.p12");
    env.ok(&[
        "export-cert",
        "-o",
        s(&p12),
        "--p12-password-file",
        s(&p12pw),
        "Aqua",
    ]);
    // It holds a private key: owner-only, and no temporary file left.
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&p12).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        let leftovers: Vec<_> = std::fs::read_dir(env.tmp.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
    let info = tool_ok(
        "openssl",
        &[
            "pkcs12",
            "-info",
            "-in",
            s(&p12),
            "-passin",
            "pass:x",
            "-noenc",
        ],
    );
    assert!(
        info.contains("subject=CN = Test CA") && info.contains("BEGIN PRIVATE KEY"),
        "{info}"
    );
    let chain = env.path("aqua-chain.pem");
    tool_ok(
        "openssl",
        &[
            "pkcs12",
            "-in",
            s(&p12),
            "-passin",
            "pass:x",
            "-nokeys",
            "-clcerts",
            "-out",
            s(&chain),
        ],
    );
    let v = tool_ok("openssl", &["verify", "-CAfile", s(&ca.0), s(&chain)]);
    assert!(v.contains(": OK"), "{v}");

    // renew-cert: a new certificate for the same key is accepted ...
    let renewed = openssl_sign(&env, &bin, "DER", &ca, "renewed.pem");
    env.ok(&["renew-cert", "Aqua", s(&renewed)]);
    assert!(env.ok(&["show-cert", "Aqua"]).contains("(u,u,u)"));
    // ... one for another key is refused, and nothing is written.
    let other = openssl_sign(&env, &asc, "PEM", &ca, "other.pem");
    let before = env.snapshot();
    let err = env.fails(&["renew-cert", "Aqua", s(&other)]);
    assert!(
        err.contains("the new certificate's key belongs to another certificate"),
        "{err}"
    );
    assert_eq!(before, env.snapshot());
    let stranger = env.path("stranger.csr");
    tool_ok(
        "openssl",
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            s(&env.path("stranger.key")),
            "-subj",
            "/CN=stranger",
            "-out",
            s(&stranger),
        ],
    );
    let foreign = openssl_sign(&env, &stranger, "PEM", &ca, "foreign.pem");
    let err = env.fails(&["renew-cert", "Aqua", s(&foreign)]);
    assert!(
        err.contains("no private key in the database matches"),
        "{err}"
    );
    assert_eq!(before, env.snapshot());

    // modify-trust, remove-cert.
    env.ok(&["modify-trust", "CA-cert", "C,,"]);
    assert!(
        env.ok(&["show-cert", "CA-cert"])
            .contains("Certificate Trust Flags (C,,)")
    );
    let err = env.fails(&["modify-trust", "CA-cert", "CX,,"]);
    assert!(err.contains("invalid trust flags"), "{err}");
    env.ok(&["remove-cert", "Aqua-RSA"]);
    assert!(!env.ok(&["list-certs"]).contains("Aqua-RSA"));
}

/// Makes a key and self-signed certificate with openssl and packs them.
fn openssl_p12(env: &Env, name: &str, legacy: bool, rsa: bool) -> std::path::PathBuf {
    let key = env.path(&format!("{name}.key"));
    let cert = env.path(&format!("{name}.crt"));
    let mut args = vec!["req", "-x509", "-nodes", "-days", "30", "-subj"];
    let subj = format!("/CN={name}.example.org/O=Imported");
    args.push(&subj);
    if rsa {
        args.extend(["-newkey", "rsa:2048"]);
    } else {
        args.extend(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    }
    args.extend(["-keyout", s(&key), "-out", s(&cert)]);
    tool_ok("openssl", &args);
    let p12 = env.path(&format!("{name}.p12"));
    let mut args = vec![
        "pkcs12",
        "-export",
        "-inkey",
        s(&key),
        "-in",
        s(&cert),
        "-name",
        name,
        "-passout",
        "pass:p12secret",
        "-out",
        s(&p12),
    ];
    if legacy {
        args.push("-legacy");
    }
    tool_ok("openssl", &args);
    p12
}

#[test]
fn imports_openssl_pkcs12_default_and_legacy() {
    let env = Env::new();
    let pwf = env.write("p12pw", "p12secret\n");
    for (name, legacy, rsa) in [
        ("modern", false, false),
        ("legacy", true, false),
        ("legacy-rsa", true, true),
    ] {
        let p12 = openssl_p12(&env, name, legacy, rsa);
        if legacy {
            let info = tool_ok(
                "openssl",
                &[
                    "pkcs12",
                    "-info",
                    "-legacy",
                    "-in",
                    s(&p12),
                    "-passin",
                    "pass:p12secret",
                    "-nokeys",
                    "-nocerts",
                ],
            );
            assert!(
                info.contains("RC2") || info.contains("3DES") || info.contains("pbeWithSHA1"),
                "{info}"
            );
        }
        let out = env.ok(&["import-cert", "--p12-password-file", s(&pwf), s(&p12)]);
        assert!(
            out.contains(&format!("Certificate {name} imported")),
            "{out}"
        );
        let show = env.ok(&["show-cert", name]);
        assert!(
            show.contains("(u,u,u)") && show.contains(&format!("CN={name}.example.org")),
            "{show}"
        );
    }
    // import-selfsign-cert, with an explicit alias.
    let p12 = openssl_p12(&env, "selfie", false, false);
    env.ok(&[
        "import-selfsign-cert",
        "--p12-password-file",
        s(&pwf),
        "--alias",
        "Selfie",
        s(&p12),
    ]);
    assert!(env.ok(&["list-certs"]).contains("Selfie"));
    // The imported key signs: export it again and compare with openssl.
    let out_p12 = env.path("again.p12");
    env.ok(&[
        "export-cert",
        "-o",
        s(&out_p12),
        "--p12-password-file",
        s(&pwf),
        "legacy-rsa",
    ]);
    let k1 = tool_ok(
        "openssl",
        &[
            "pkcs12",
            "-in",
            s(&out_p12),
            "-passin",
            "pass:p12secret",
            "-nocerts",
            "-nodes",
        ],
    );
    let k0 = std::fs::read_to_string(env.path("legacy-rsa.key")).unwrap();
    let pubkey = |pem: &str| {
        let f = env.write("k.pem", pem);
        tool_ok("openssl", &["pkey", "-in", s(&f), "-pubout"])
    };
    assert_eq!(pubkey(&k1), pubkey(&k0));
}

#[test]
fn adds_pem_and_der_certificates() {
    let env = Env::new();
    let ca = openssl_ca(&env, "Root One");
    env.ok(&["add-cert", "-C", "Root One", s(&ca.0)]);
    let der = env.path("root.der");
    let ca2 = openssl_ca(&env, "Root Two");
    tool_ok(
        "openssl",
        &["x509", "-in", s(&ca2.0), "-outform", "DER", "-out", s(&der)],
    );
    env.ok(&["add-cert", "--trust", "T,,", "Root Two", s(&der)]);
    let show = env.ok(&["show-cert", "Root Two"]);
    assert!(
        show.contains("(T,,)") && show.contains("Is a CA: Yes"),
        "{show}"
    );
    // The same certificate under a second alias is refused.
    let err = env.fails(&["add-cert", "Again", s(&ca.0)]);
    assert!(
        err.contains("already in the database as \"Root One\""),
        "{err}"
    );
    let err = env.fails(&["add-cert", "Root One", s(&der)]);
    assert!(err.contains("already in use"), "{err}");
    // A PEM bundle: the first under the alias, the rest under their CN, one commit.
    let b1 = openssl_ca(&env, "Bundle Root");
    let b2 = openssl_ca(&env, "Bundle Other");
    let mut bundle = std::fs::read(&b1.0).unwrap();
    bundle.extend(std::fs::read(&b2.0).unwrap());
    let bundle = env.write("bundle.pem", bundle);
    let out = env.ok(&["add-cert", "Bundle-1", s(&bundle)]);
    assert!(
        out.contains("Certificate Bundle-1 added")
            && out.contains("Certificate Bundle Other added"),
        "{out}"
    );
    assert!(env.ok(&["list-certs"]).contains("5 certificates found"));
    let err = env.fails(&["add-cert", "bad:alias", s(&der)]);
    assert!(err.contains("PKCS#11 module"), "{err}");
}

#[test]
fn bad_input_gives_clear_errors_and_writes_nothing() {
    let env = Env::new();
    let p12pw = env.write("p12pw", "p12secret\n");
    let good_p12 = openssl_p12(&env, "good", false, false);
    let p12 = std::fs::read(&good_p12).unwrap();
    let ca = openssl_ca(&env, "Some CA");
    let pem = std::fs::read(&ca.0).unwrap();
    let der = {
        let d = env.path("ca.der");
        tool_ok(
            "openssl",
            &["x509", "-in", s(&ca.0), "-outform", "DER", "-out", s(&d)],
        );
        std::fs::read(&d).unwrap()
    };
    let garbage = env.write("garbage", b"\x00\x01 this is not a certificate");
    let trunc_der = env.write("trunc.der", &der[..der.len() / 2]);
    let trunc_pem = env.write("trunc.pem", &pem[..pem.len() - 40]);
    let trunc_p12 = env.write("trunc.p12", &p12[..p12.len() / 2]);
    let mut corrupt = p12.clone();
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0xff;
    let corrupt_p12 = env.write("corrupt.p12", &corrupt);
    let wrong_db_pw = env.write("wrongpw", "not-the-password\n");
    let wrong_p12_pw = env.write("wrongp12", "nope\n");

    let before = env.snapshot();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["add-cert", "X", s(&garbage)],
            "not a valid certificate",
        ),
        (
            vec!["add-cert", "X", s(&trunc_der)],
            "not a valid certificate",
        ),
        (
            vec!["add-cert", "X", s(&trunc_pem)],
            "not a valid certificate",
        ),
        (vec!["add-cert", "X", "/nonexistent/file"], "No such file"),
        (
            vec![
                "import-cert",
                "--p12-password-file",
                s(&p12pw),
                s(&trunc_p12),
            ],
            "PKCS#12",
        ),
        (
            vec![
                "import-cert",
                "--p12-password-file",
                s(&p12pw),
                s(&corrupt_p12),
            ],
            "PKCS#12",
        ),
        (
            vec!["import-cert", "--p12-password-file", s(&p12pw), s(&garbage)],
            "not a valid PKCS#12",
        ),
        (
            vec![
                "import-cert",
                "--p12-password-file",
                s(&wrong_p12_pw),
                s(&good_p12),
            ],
            "wrong password for the PKCS#12 file",
        ),
        (
            vec![
                "import-selfsign-cert",
                "--p12-password-file",
                s(&wrong_p12_pw),
                s(&good_p12),
            ],
            "wrong password",
        ),
        (
            vec!["show-cert", "No-Such"],
            "no certificate with alias \"No-Such\"",
        ),
        (vec!["remove-cert", "No-Such"], "no certificate with alias"),
        (
            vec!["export-cert", "--p12-password-file", s(&p12pw), "No-Such"],
            "no certificate with alias",
        ),
        (
            vec!["renew-selfsign-cert", "No-Such"],
            "no certificate with alias",
        ),
        (
            vec!["renew-cert", "No-Such", s(&ca.0)],
            "no certificate with alias",
        ),
        (
            vec!["modify-trust", "No-Such", "C,,"],
            "no certificate with alias",
        ),
        (
            vec![
                "export-cert",
                "--p12-password-file",
                s(&p12pw),
                "nomod:alias",
            ],
            "cannot be exported",
        ),
        (
            vec!["add-cert", "nomod:alias", s(&ca.0)],
            "no PKCS#11 module named \"nomod\"",
        ),
    ];
    for (args, want) in &cases {
        let err = env.fails(args);
        assert!(err.contains(want), "{args:?}: want {want:?}, got {err}");
        assert_eq!(before, env.snapshot(), "{args:?} changed the database");
    }
    // Wrong database password: every writer refuses before writing.
    for args in [
        vec!["add-cert", "X", s(&ca.0)],
        vec!["add-selfsign-cert", "--name", "x", "X"],
        vec!["remove-cert", "Server-Cert"],
        vec!["renew-selfsign-cert", "Server-Cert"],
        vec![
            "import-cert",
            "--p12-password-file",
            s(&p12pw),
            s(&good_p12),
        ],
        vec![
            "export-cert",
            "--p12-password-file",
            s(&p12pw),
            "Server-Cert",
        ],
        vec!["request-cert", "--name", "x"],
        vec!["list-certs"],
    ] {
        let mut c = env.command(&args);
        c.env_remove("CERT_PW_FILE");
        let mut full: Vec<String> = vec![
            args[0].to_owned(),
            "-d".into(),
            s(&env.db).into(),
            "-W".into(),
            s(&wrong_db_pw).into(),
        ];
        full.extend(args[1..].iter().map(|a| (*a).to_owned()));
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_msgcert"))
            .args(&full)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("wrong certificate database password"),
            "{}",
            text(&out)
        );
        assert_eq!(before, env.snapshot(), "{args:?} changed the database");
    }
    // CERT_PW_FILE works like -W.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_msgcert"))
        .args(["list-certs", "-d", s(&env.db)])
        .env("CERT_PW_FILE", &wrong_db_pw)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    // No database.
    let err = std::process::Command::new(env!("CARGO_BIN_EXE_msgcert"))
        .args(["list-certs", "-d", s(&env.path("nothing"))])
        .env_remove("CERT_PW_FILE")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&err.stderr).contains("no certificate database"),
        "{}",
        text(&err)
    );
}

#[test]
fn nss_pk12util_imports_our_pkcs12() {
    let env = Env::new();
    env.ok(&[
        "add-selfsign-cert",
        "--name",
        "nss.example.com",
        "--org",
        "Portcullis",
        "NSS-Cert",
    ]);
    env.ok(&[
        "add-selfsign-cert",
        "--name",
        "nss-rsa.example.com",
        "-k",
        "rsa-2048",
        "NSS-RSA",
    ]);
    let p12pw = env.write("p12pw", "nss-export\n");
    let nssdb = env.path("nssdb");
    std::fs::create_dir(&nssdb).unwrap();
    let nss = format!("sql:{}", s(&nssdb));
    tool_ok("certutil", &["-N", "-d", &nss, "--empty-password"]);
    for alias in ["NSS-Cert", "NSS-RSA"] {
        let p12 = env.path(&format!("{alias}.p12"));
        env.ok(&[
            "export-cert",
            "-o",
            s(&p12),
            "--p12-password-file",
            s(&p12pw),
            alias,
        ]);
        let out = tool_ok("pk12util", &["-i", s(&p12), "-d", &nss, "-w", s(&p12pw)]);
        assert!(out.contains("PKCS12 IMPORT SUCCESSFUL"), "{out}");
    }
    let list = tool_ok("certutil", &["-L", "-d", &nss]);
    // p12-keystore names the certificate bag by its subject; NSS uses that
    // as the nickname.
    assert!(
        list.contains("CN=nss.example.com") && list.contains("CN=nss-rsa.example.com"),
        "{list}"
    );
    assert_eq!(list.matches("u,u,u").count(), 2, "{list}");
    let keys = tool_ok("certutil", &["-K", "-d", &nss]);
    assert!(keys.contains("ec") && keys.contains("rsa"), "{keys}");
}

#[test]
fn modules_are_listed_and_validated() {
    let env = Env::new();
    let out = env.ok(&["list-modules"]);
    assert!(out.contains("Internal (Software) Token"), "{out}");
    env.ok(&["add-module", "hsm", common::SOFTHSM_LIB]);
    let out = env.ok(&["list-modules"]);
    assert!(
        out.contains("hsm  library /usr/lib/softhsm/libsofthsm2.so"),
        "{out}"
    );
    let err = env.fails(&["add-module", "hsm", common::SOFTHSM_LIB]);
    assert!(err.contains("already configured"), "{err}");
    let bad = env.fails(&["add-module", "a:b", common::SOFTHSM_LIB]);
    assert!(bad.contains("module names"), "{bad}");
    let _ = tool("true", &[]);
}

#[test]
fn the_directory_comes_from_the_configuration_when_d_is_not_given() {
    let env = Env::empty();
    let cfg = env.write("portcullis.toml", "[local]\nssldbpath = \"certs/db\"\n");
    let msgcert = |args: &[&str], with_env: bool| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_msgcert"));
        c.args(args)
            .env_remove("MSGCERT_DIR")
            .env_remove("CERT_PW_FILE")
            .env_remove("PORTCULLIS_CONFIG");
        if with_env {
            c.env("PORTCULLIS_CONFIG", &cfg);
        }
        c.output().unwrap()
    };
    std::fs::create_dir(env.path("certs")).unwrap();
    let out = msgcert(
        &[
            "generate-certDB",
            "--config",
            s(&cfg),
            "-W",
            s(&env.pw),
            "--insecure-fast-kdf",
        ],
        false,
    );
    assert!(out.status.success(), "{}", text(&out));
    // Relative to the configuration file's folder.
    assert!(env.path("certs/db").is_dir());
    let out = msgcert(&["list-certs"], true);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Server-Cert"), "{}", text(&out));
    // -d wins over the configuration.
    let out = msgcert(&["list-certs", "-d", s(&env.path("nowhere"))], true);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    // A configuration that does not parse is an error, not the default.
    let bad = env.write("bad.toml", "[local\n");
    let out = msgcert(&["list-certs", "--config", s(&bad)], false);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("bad.toml"), "{}", text(&out));
}

#[test]
fn concurrent_writers_lose_no_update() {
    // Twelve msgcert processes change the database at once; the lock makes
    // them take turns, so every one of their certificates is there after.
    let env = Env::new();
    let children: Vec<_> = (0..12)
        .map(|i| {
            let alias = format!("Parallel-{i}");
            let name = format!("p{i}.example.com");
            env.command(&["add-selfsign-cert", "--name", &name, &alias])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
    }
    let list = env.ok(&["list-certs"]);
    for i in 0..12 {
        assert!(list.contains(&format!("Parallel-{i} ")), "{list}");
    }
    assert!(list.contains("13 certificates found"), "{list}");
    // Each entry is whole: its key matches (export needs both).
    let p12pw = env.write("p12pw", "x\n");
    for i in [0, 11] {
        let out = env.path(&format!("p{i}.p12"));
        env.ok(&[
            "export-cert",
            "-o",
            s(&out),
            "--p12-password-file",
            s(&p12pw),
            &format!("Parallel-{i}"),
        ]);
    }
}
