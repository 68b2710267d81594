//! The users file as a user source: loading, refusing bad files with the
//! line number, reloading after a rewrite, status, every password scheme
//! (including values made by Dovecot's own `doveadm pw`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use portcullis_ldapauth::{Error, Reject, UserFile, UserFileOptions};

/// A scratch directory holding `users`.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new(text: &str) -> Self {
        let s = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::write(s.path(), text).unwrap();
        s
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("users")
    }

    /// Writes a new version beside the file and renames it over, as an
    /// editor or provisioning script should.
    fn replace(&self, text: &str) {
        let tmp = self.dir.path().join("users.new");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.path()).unwrap();
    }

    fn open(&self) -> UserFile {
        UserFile::open(self.path(), UserFileOptions::default()).unwrap()
    }
}

async fn ok(file: &UserFile, login: &str, password: &str) -> bool {
    file.verify_password(login, &password.into()).await.is_ok()
}

#[tokio::test]
async fn a_bad_file_is_refused_with_its_line_number() {
    let s = Scratch::new("alice:{PLAIN}a\n# comment\nbob:{CRAM-MD5}0123\n");
    let err = UserFile::open(s.path(), UserFileOptions::default()).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    assert!(text.contains("line 3"), "{text}");
    assert!(text.contains("CRAM-MD5"), "{text}");
    // A missing file is an error too, naming the file.
    let missing = UserFile::open(s.dir.path().join("nope"), UserFileOptions::default())
        .unwrap_err()
        .to_string();
    assert!(missing.contains("nope"), "{missing}");
}

#[tokio::test]
async fn a_rewritten_file_is_used_at_the_next_lookup() {
    let s = Scratch::new("alice:{PLAIN}one\n");
    let file = s.open();
    assert!(ok(&file, "alice", "one").await);

    // Renamed over: a new inode.
    s.replace("alice:{PLAIN}two\nbob:{PLAIN}bob-pw\n");
    assert!(!ok(&file, "alice", "one").await);
    assert!(ok(&file, "alice", "two").await);
    assert!(ok(&file, "bob", "bob-pw").await);

    // Rewritten in place with the same length, at once: the stamp may not
    // change, the content hash does.
    std::fs::write(s.path(), "alice:{PLAIN}six\nbob:{PLAIN}bob-pw\n").unwrap();
    assert!(ok(&file, "alice", "six").await);
    assert!(!ok(&file, "alice", "two").await);

    // A user removed from the file is gone.
    s.replace("alice:{PLAIN}six\n");
    assert_eq!(
        file.verify_password("bob", &"bob-pw".into())
            .await
            .unwrap_err(),
        Error::Rejected(Reject::UnknownUser)
    );
}

#[tokio::test]
async fn a_bad_rewrite_keeps_the_previous_version() {
    let s = Scratch::new("alice:{PLAIN}one\n");
    let file = s.open();
    s.replace("alice:{PLAIN}two\nbroken line without a known scheme:{NOPE}x\n");
    // Refused: the first version stays in use.
    assert!(ok(&file, "alice", "one").await);
    assert!(!ok(&file, "alice", "two").await);
    assert!(ok(&file, "alice", "one").await);
    // A deleted file also keeps it.
    std::fs::remove_file(s.path()).unwrap();
    assert!(ok(&file, "alice", "one").await);
    // Fixed: taken.
    s.replace("alice:{PLAIN}three\n");
    assert!(ok(&file, "alice", "three").await);
}

#[tokio::test]
async fn status_and_locked_accounts_refuse_login() {
    let s = Scratch::new(
        "on:{PLAIN}pw::::::status=active\n\
         quota:{PLAIN}pw::::::status=overquota\n\
         off:{PLAIN}pw::::::status=inactive\n\
         gone:{PLAIN}pw::::::status=deleted\n\
         held:{PLAIN}pw::::::nologin=y\n\
         locked:!{PLAIN}pw\n\
         nopw:\n",
    );
    let file = s.open();
    assert!(ok(&file, "on", "pw").await);
    assert!(ok(&file, "quota", "pw").await);
    for (user, reason) in [
        (
            "off",
            Reject::AccountStatus {
                attribute: "status",
                value: "inactive".into(),
            },
        ),
        (
            "gone",
            Reject::AccountStatus {
                attribute: "status",
                value: "deleted".into(),
            },
        ),
        (
            "held",
            Reject::AccountStatus {
                attribute: "nologin",
                value: "yes".into(),
            },
        ),
        ("locked", Reject::NoUsablePassword),
        ("nopw", Reject::NoUsablePassword),
    ] {
        assert_eq!(
            file.verify_password(user, &"pw".into()).await.unwrap_err(),
            Error::Rejected(reason),
            "{user}"
        );
    }
    // Status is checked after the password: a wrong password is just that.
    assert_eq!(
        file.verify_password("off", &"wrong".into())
            .await
            .unwrap_err(),
        Error::Rejected(Reject::BadPassword)
    );
    assert!(file.lookup_active("off").await.is_err());
    assert!(file.lookup_active("on").await.is_ok());
    assert_eq!(
        file.verify_password("on", &"".into()).await.unwrap_err(),
        Error::Rejected(Reject::EmptyPassword)
    );
}

#[tokio::test]
async fn default_domain_and_case() {
    let s = Scratch::new("alice:{PLAIN}a::::::mailhost=store1\nBob@Example.ORG:{PLAIN}b\n");
    let mut options = UserFileOptions::default();
    options.default_domain = Some("example.com".into());
    let file = UserFile::open(s.path(), options).unwrap();
    for login in ["alice", "ALICE", "alice@example.com", "Alice@EXAMPLE.com"] {
        let user = file.verify_password(login, &"a".into()).await.unwrap();
        assert_eq!(user.name, "alice@example.com", "{login}");
        assert_eq!(user.mail_host.as_deref(), Some("store1"));
    }
    assert!(!ok(&file, "alice@example.org", "a").await);
    assert!(ok(&file, "bob@example.org", "b").await);
    assert!(!ok(&file, "bob", "b").await);
}

#[test]
fn from_parameters_reads_local_userfile() {
    let s = Scratch::new("alice:{PLAIN}a\n");
    let dir = s.dir.path();
    let none = UserFile::from_parameters(|_| None, dir).unwrap();
    assert!(none.is_none());
    let empty = UserFile::from_parameters(|_| Some(String::new()), dir).unwrap();
    assert!(empty.is_none());
    let file = UserFile::from_parameters(
        |name| (name == "local.userfile").then(|| "users".to_owned()),
        dir,
    )
    .unwrap()
    .unwrap();
    assert_eq!(file.path(), dir.join("users"));
    assert_eq!(file.current().len(), 1);
    assert_eq!(file.current().iter().next().unwrap().name, "alice");
    let in_domain = UserFile::from_parameters(
        |name| match name {
            "local.userfile" => Some("users".to_owned()),
            "service.defaultdomain" => Some("example.com".to_owned()),
            _ => None,
        },
        dir,
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        in_domain.current().iter().next().unwrap().name,
        "alice@example.com"
    );
    let bad = UserFile::from_parameters(
        |name| match name {
            "local.userfile" => Some("users".to_owned()),
            "sasl.default.scram.iterations" => Some("many".to_owned()),
            _ => None,
        },
        dir,
    );
    assert!(bad.is_err());
}

fn doveadm() -> Option<PathBuf> {
    [
        "/usr/bin/doveadm",
        "/usr/sbin/doveadm",
        "/usr/local/bin/doveadm",
    ]
    .iter()
    .map(Path::new)
    .find(|p| p.exists())
    .map(Path::to_path_buf)
}

/// `doveadm pw -s SCHEME -p PASSWORD -u USER`.
fn doveadm_pw(doveadm: &Path, scheme: &str, user: &str, password: &str) -> String {
    let out = Command::new("timeout")
        .arg("30")
        .arg(doveadm)
        .args(["pw", "-s", scheme, "-p", password, "-u", user])
        .output()
        .expect("run doveadm");
    assert!(
        out.status.success(),
        "doveadm pw -s {scheme}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Every scheme Dovecot writes that the file accepts, made by `doveadm pw`.
const DOVECOT_SCHEMES: &[&str] = &[
    "SHA512-CRYPT",
    "SHA256-CRYPT",
    "MD5-CRYPT",
    "BLF-CRYPT",
    "CRYPT",
    "ARGON2I",
    "ARGON2ID",
    "SSHA",
    "SSHA256",
    "SSHA512",
    "SHA",
    "SHA1",
    "SHA256",
    "SHA512",
    "SMD5",
    "LDAP-MD5",
    "PLAIN-MD5",
    "MD5",
    "PBKDF2",
    "SCRAM-SHA-1",
    "SCRAM-SHA-256",
    "PLAIN",
    "CLEARTEXT",
];

#[tokio::test]
async fn files_written_by_doveadm_are_accepted() {
    let Some(doveadm) = doveadm() else {
        eprintln!("SKIPPED: doveadm (package dovecot-core) is not installed");
        return;
    };
    let mut text = String::from("# written with doveadm pw\n");
    for (i, scheme) in DOVECOT_SCHEMES.iter().enumerate() {
        let user = format!("u{i}@example.com");
        let hash = doveadm_pw(&doveadm, scheme, &user, &format!("pw-{scheme}"));
        text.push_str(&format!(
            "{user}:{hash}:1000:1000::/home/u{i}::mailhost=store.example.com status=active\n"
        ));
    }
    let s = Scratch::new(&text);
    let file = s.open();
    for (i, scheme) in DOVECOT_SCHEMES.iter().enumerate() {
        let user = format!("u{i}@example.com");
        assert!(ok(&file, &user, &format!("pw-{scheme}")).await, "{scheme}");
        assert_eq!(
            file.verify_password(&user, &"wrong".into())
                .await
                .unwrap_err(),
            Error::Rejected(Reject::BadPassword),
            "{scheme}"
        );
    }
    // Schemes whose stored form cannot be checked refuse the file.
    for scheme in ["CRAM-MD5", "DIGEST-MD5"] {
        let hash = doveadm_pw(&doveadm, scheme, "x@example.com", "pw");
        std::fs::write(s.path(), format!("ok:{{PLAIN}}a\nx@example.com:{hash}\n")).unwrap();
        let err = UserFile::open(s.path(), UserFileOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2") && err.contains(scheme), "{err}");
    }
}
