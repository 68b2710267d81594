//! msgcert against a SoftHSM2 token: keys generated on the token, CSRs and
//! self-signed certificates signed there, certificates stored there,
//! `module:alias` addressing, PIN and token errors. One test function:
//! SoftHSM is driven step by step, never in parallel.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Output;

use common::{Env, Hsm, SOFTHSM_LIB, openssl_ca, openssl_sign, s, text, tool_ok};

struct TokEnv<'a> {
    env: &'a Env,
    hsm: &'a Hsm,
}

impl TokEnv<'_> {
    fn run(&self, args: &[&str]) -> Output {
        self.env
            .command(args)
            .env("SOFTHSM2_CONF", &self.hsm.conf)
            .output()
            .unwrap()
    }
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "msgcert {args:?}: {}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    }
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "msgcert {args:?} should fail: {}",
            text(&out)
        );
        String::from_utf8(out.stderr).unwrap()
    }
    fn p11tool(&self, args: &[&str]) -> String {
        let mut full = vec![
            "60",
            "pkcs11-tool",
            "--module",
            SOFTHSM_LIB,
            "--token-label",
            &self.hsm.label,
        ];
        full.extend_from_slice(args);
        let out = std::process::Command::new("timeout")
            .args(&full)
            .env("SOFTHSM2_CONF", &self.hsm.conf)
            .output()
            .unwrap();
        assert!(out.status.success(), "pkcs11-tool {args:?}: {}", text(&out));
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

#[test]
fn softhsm_token_end_to_end() {
    let env = Env::new();
    let hsm = Hsm::new("portcullis-test");
    let t = TokEnv {
        env: &env,
        hsm: &hsm,
    };
    let pin = env.write("pin", format!("{}\n", hsm.pin));
    t.ok(&["add-module", "--pin-file", s(&pin), "softhsm", SOFTHSM_LIB]);
    let conf = std::fs::read_to_string(env.db.join("sslpassword.conf")).unwrap();
    assert!(
        conf.contains("Internal (Software) Token:password22\n") && conf.contains("softhsm:5678\n"),
        "{conf}"
    );
    let tokens = t.ok(&["list-tokens"]);
    assert!(
        tokens.contains("softhsm: slot") && tokens.contains("token \"portcullis-test\""),
        "{tokens}"
    );

    // Self-signed, key generated on the token (EC and RSA).
    t.ok(&[
        "add-selfsign-cert",
        "--name",
        "tok.example.com",
        "softhsm:TokCert",
    ]);
    t.ok(&[
        "add-selfsign-cert",
        "--name",
        "tokrsa.example.com",
        "-k",
        "rsa-2048",
        "softhsm:TokRsa",
    ]);
    let list = t.ok(&["list-certs"]);
    assert!(
        list.contains("softhsm:TokCert")
            && list.contains("softhsm:TokRsa")
            && list.contains("Server-Cert"),
        "{list}"
    );
    assert!(list.contains("3 certificates found"), "{list}");
    let show = t.ok(&["show-cert", "softhsm:TokCert"]);
    assert!(
        show.contains("Certificate: softhsm:TokCert") && show.contains("(u,u,u)"),
        "{show}"
    );

    // The token holds the key (sensitive, never extractable) and the certificate.
    let objs = t.p11tool(&["--login", "--pin", &hsm.pin, "--list-objects"]);
    assert!(
        objs.contains("Private Key Object; EC") && objs.contains("label:      TokCert"),
        "{objs}"
    );
    assert!(
        objs.contains("Certificate Object; type = X.509 cert"),
        "{objs}"
    );
    assert!(objs.contains("never extractable"), "{objs}");
    for label in ["TokCert", "TokRsa"] {
        let der = env.path(&format!("{label}.der"));
        t.p11tool(&[
            "--read-object",
            "--type",
            "cert",
            "--label",
            label,
            "-o",
            s(&der),
        ]);
        let pem = env.path(&format!("{label}.pem"));
        tool_ok(
            "openssl",
            &["x509", "-inform", "DER", "-in", s(&der), "-out", s(&pem)],
        );
        let v = tool_ok("openssl", &["verify", "-CAfile", s(&pem), s(&pem)]);
        assert!(v.contains(": OK"), "{v}");
    }
    let p12pw = env.write("p12pw", "x\n");
    let err = t.fails(&[
        "export-cert",
        "--p12-password-file",
        s(&p12pw),
        "softhsm:TokCert",
    ]);
    assert!(err.contains("cannot be exported"), "{err}");

    // A request signed by a token key; the issued certificate goes onto the token.
    let csr = env.path("tok.csr");
    t.ok(&[
        "request-cert",
        "--token",
        "softhsm",
        "--label",
        "CsrKey",
        "--name",
        "csr.example.com",
        "-F",
        "ascii",
        "-o",
        s(&csr),
    ]);
    let v = tool_ok("openssl", &["req", "-in", s(&csr), "-verify", "-noout"]);
    assert!(v.contains("verify OK"), "{v}");
    let csr_bin = env.path("tok-rsa.csr");
    t.ok(&[
        "request-cert",
        "--token",
        "softhsm",
        "--label",
        "CsrRsa",
        "-k",
        "rsa-2048",
        "--name",
        "csr-rsa.example.com",
        "-o",
        s(&csr_bin),
    ]);
    let v = tool_ok(
        "openssl",
        &[
            "req",
            "-inform",
            "DER",
            "-in",
            s(&csr_bin),
            "-verify",
            "-noout",
        ],
    );
    assert!(v.contains("verify OK"), "{v}");
    let ca = openssl_ca(&env, "Token CA");
    let issued = openssl_sign(&env, &csr, "PEM", &ca, "issued.pem");
    t.ok(&["add-cert", "-C", "Token CA", s(&ca.0)]);
    t.ok(&["add-cert", "softhsm:CsrCert", s(&issued)]);
    let show = t.ok(&["show-cert", "softhsm:CsrCert"]);
    assert!(
        show.contains("(u,u,u)") && show.contains("Issuer: \"CN=Token CA\""),
        "{show}"
    );
    // renew-cert on the token: a new certificate for the same token key.
    let reissued = openssl_sign(&env, &csr, "PEM", &ca, "reissued.pem");
    let before = t.ok(&["show-cert", "softhsm:CsrCert"]);
    t.ok(&["renew-cert", "softhsm:CsrCert", s(&reissued)]);
    let after = t.ok(&["show-cert", "softhsm:CsrCert"]);
    assert_ne!(before, after);

    // renew-selfsign-cert with the token key.
    let before = t.ok(&["show-cert", "softhsm:TokCert"]);
    t.ok(&["renew-selfsign-cert", "softhsm:TokCert"]);
    let after = t.ok(&["show-cert", "softhsm:TokCert"]);
    assert_ne!(before, after);
    let pk = |x: &str| {
        x.split("Subject Public Key Info:")
            .nth(1)
            .unwrap()
            .split("Signed Extensions")
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(pk(&before), pk(&after));

    // generate-key on the token.
    let out = t.ok(&["generate-key", "--token", "softhsm", "--label", "Spare"]);
    assert!(out.contains("-----BEGIN PUBLIC KEY-----"), "{out}");
    assert!(
        t.p11tool(&[
            "--login",
            "--pin",
            &hsm.pin,
            "--list-objects",
            "--type",
            "privkey"
        ])
        .contains("Spare")
    );

    // list-keys: request-cert and generate-key keys show up without a
    // certificate until one is added; remove-key removes such a key (as
    // the token itself then shows) and refuses one a certificate uses.
    let keys = t.ok(&["list-keys"]);
    for line in [
        "softhsm:CsrKey  certificate\n",
        "softhsm:CsrRsa  no certificate\n",
        "softhsm:Spare  no certificate\n",
    ] {
        assert!(keys.contains(line), "{line:?} in {keys}");
    }
    let n = keys.lines().count() - 1;
    assert!(keys.ends_with(&format!("{n} keys found\n")), "{keys}");
    assert_eq!(t.ok(&["list-keys", "--token", "softhsm"]), keys);
    let err = t.fails(&["remove-key", "--token", "softhsm", "--label", "CsrKey"]);
    assert!(
        err.contains("a certificate uses key softhsm:CsrKey"),
        "{err}"
    );
    let out = t.ok(&["remove-key", "--token", "softhsm", "--label", "CsrRsa"]);
    assert_eq!(out, "Key softhsm:CsrRsa removed\n");
    let after = t.ok(&["list-keys"]);
    assert!(!after.contains("CsrRsa"), "{after}");
    assert!(
        after.ends_with(&format!("{} keys found\n", n - 1)),
        "{after}"
    );
    let objs = t.p11tool(&["--login", "--pin", &hsm.pin, "--list-objects"]);
    assert!(
        !objs.contains("CsrRsa") && objs.contains("CsrKey"),
        "{objs}"
    );
    let err = t.fails(&["remove-key", "--token", "softhsm", "--label", "CsrRsa"]);
    assert!(err.contains("softhsm:CsrRsa"), "{err}");
    let err = t.fails(&["list-keys", "--token", "nosuch"]);
    assert!(err.contains("nosuch"), "{err}");
    let err = t.fails(&["remove-key", "--token", "softhsm"]);
    assert!(err.contains("--label"), "{err}");

    // remove-cert on the token takes the key pair along.
    t.ok(&["remove-cert", "softhsm:CsrCert"]);
    assert!(!t.ok(&["list-certs"]).contains("softhsm:CsrCert"));
    let objs = t.p11tool(&["--login", "--pin", &hsm.pin, "--list-objects"]);
    assert!(!objs.contains("CsrKey"), "{objs}");
    let err = t.fails(&["show-cert", "softhsm:CsrCert"]);
    assert!(
        err.contains("no certificate with alias \"softhsm:CsrCert\""),
        "{err}"
    );

    // Wrong PIN: a clear error.
    std::fs::write(
        env.db.join("sslpassword.conf"),
        "Internal (Software) Token:password22\nsofthsm:0000\n",
    )
    .unwrap();
    let err = t.fails(&["add-selfsign-cert", "--name", "x", "softhsm:Nope"]);
    assert!(
        err.contains("wrong PIN for token in module \"softhsm\""),
        "{err}"
    );
    let out = t.run(&["list-certs"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("wrong PIN"),
        "{}",
        text(&out)
    );
    std::fs::write(
        env.db.join("sslpassword.conf"),
        "Internal (Software) Token:password22\nsofthsm:5678\n",
    )
    .unwrap();

    // Token not present.
    t.ok(&[
        "add-module",
        "--token-label",
        "no-such-token",
        "ghost",
        SOFTHSM_LIB,
    ]);
    let err = t.fails(&["add-selfsign-cert", "--name", "x", "ghost:X"]);
    assert!(
        err.contains("no token present in module \"ghost\""),
        "{err}"
    );
    // A library that is not there.
    t.ok(&["add-module", "missing", "/nonexistent/libpkcs11.so"]);
    let err = t.fails(&["add-selfsign-cert", "--name", "x", "missing:X"]);
    assert!(err.contains("cannot load the PKCS#11 library"), "{err}");
}
