//! Helpers for the msgcert tests: a scratch database, running msgcert and
//! third-party tools with a timeout.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::missing_panics_doc
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Env {
    pub tmp: tempfile::TempDir,
    pub db: PathBuf,
    pub pw: PathBuf,
}

/// Every msgcert subcommand.
pub const SUBCOMMANDS: [&str; 18] = [
    "add-cert",
    "add-selfsign-cert",
    "export-cert",
    "generate-certDB",
    "import-cert",
    "import-selfsign-cert",
    "list-certs",
    "remove-cert",
    "renew-cert",
    "renew-selfsign-cert",
    "request-cert",
    "show-cert",
    "modify-trust",
    "list-modules",
    "add-module",
    "list-tokens",
    "generate-key",
    "check-expiry",
];

pub const DB_PASSWORD: &str = "password22";

impl Env {
    /// A fresh database (fast KDF) with its default Server-Cert.
    pub fn new() -> Env {
        let env = Env::empty();
        let out = env.run(&["generate-certDB", "--insecure-fast-kdf"]);
        assert!(out.status.success(), "{}", text(&out));
        env
    }

    pub fn empty() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("db");
        let pw = tmp.path().join("pw");
        std::fs::write(&pw, format!("{DB_PASSWORD}\n")).unwrap();
        Env { tmp, db, pw }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    pub fn write(&self, name: &str, data: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, data).unwrap();
        p
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_msgcert"));
        c.arg(args[0]);
        c.arg("-d").arg(&self.db).arg("-W").arg(&self.pw);
        c.args(&args[1..]);
        c.env_remove("CERT_PW_FILE")
            .env_remove("MSGCERT_DIR")
            .env_remove("PORTCULLIS_CONFIG");
        c
    }

    /// Runs msgcert with `-d DB -W PWFILE`.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs msgcert and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "msgcert {args:?} failed: {}",
            text(&out)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs msgcert and asserts failure with exit 2; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "msgcert {args:?} should fail: {}",
            text(&out)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// Every file of the database and its content (the lock file aside).
    pub fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut m = BTreeMap::new();
        walk(&self.db, &mut m);
        m.retain(|p, _| !p.ends_with("certdb.lock"));
        m
    }
}

fn walk(dir: &Path, m: &mut BTreeMap<PathBuf, Vec<u8>>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, m);
        } else {
            m.insert(p.clone(), std::fs::read(&p).unwrap());
        }
    }
}

pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs a third-party tool under `timeout 60`.
pub fn tool(cmd: &str, args: &[&str]) -> Output {
    Command::new("timeout")
        .arg("60")
        .arg(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {cmd}: {e}"))
}

/// Runs a tool and asserts success; returns stdout + stderr.
pub fn tool_ok(cmd: &str, args: &[&str]) -> String {
    let out = tool(cmd, args);
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        text(&out)
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A throwaway CA made with openssl: returns (cert path, key path).
pub fn openssl_ca(env: &Env, name: &str) -> (PathBuf, PathBuf) {
    let key = env.path(&format!("{name}.key"));
    let cert = env.path(&format!("{name}.pem"));
    tool_ok(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            s(&key),
            "-out",
            s(&cert),
            "-days",
            "30",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    (cert, key)
}

/// Signs a CSR (PEM or DER) with the openssl CA; returns the PEM path.
pub fn openssl_sign(
    env: &Env,
    csr: &Path,
    inform: &str,
    ca: &(PathBuf, PathBuf),
    out: &str,
) -> PathBuf {
    let o = env.path(out);
    tool_ok(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            s(csr),
            "-inform",
            inform,
            "-CA",
            s(&ca.0),
            "-CAkey",
            s(&ca.1),
            "-days",
            "20",
            "-out",
            s(&o),
            "-set_serial",
            &format!("{}", rand_u32()),
        ],
    );
    o
}

pub fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    getrandom_fill(&mut b);
    u32::from_le_bytes(b) & 0x7fff_ffff
}

fn getrandom_fill(b: &mut [u8]) {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(b)
        .unwrap();
}

/// A SoftHSM2 token in a scratch folder: (conf path, label, user PIN).
pub struct Hsm {
    pub dir: tempfile::TempDir,
    pub conf: PathBuf,
    pub label: String,
    pub pin: String,
}

pub const SOFTHSM_LIB: &str = "/usr/lib/softhsm/libsofthsm2.so";

impl Hsm {
    pub fn new(label: &str) -> Hsm {
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
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
            .env("SOFTHSM2_CONF", &conf)
            .output()
            .unwrap();
        assert!(out.status.success(), "softhsm2-util: {}", text(&out));
        Hsm {
            dir,
            conf,
            label: label.to_owned(),
            pin: "5678".to_owned(),
        }
    }
}
