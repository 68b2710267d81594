//! Crash safety: msgcert is killed with SIGKILL at random moments while it
//! adds, removes and renews certificates, over a hundred times. After every
//! kill the database opens, every entry's files are present and match their
//! checksums, and no certificate that must have a key lacks it.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Env, s};
use portcullis_certdb::{
    CertDb, KeyType, PrivateKey, SoftwareSigner, Subject, SubjectFields, Validity, self_signed,
};

/// A small deterministic generator (xorshift) seeded from the clock.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn sigkill_at_random_moments_leaves_a_consistent_database() {
    let env = Env::new();
    // Certificates for add-cert, made in process.
    let now = time::OffsetDateTime::now_utc();
    let mut files = Vec::new();
    for i in 0..40 {
        let k = PrivateKey::generate(KeyType::EcP256).unwrap();
        let der = self_signed(
            &SoftwareSigner::new(&k).unwrap(),
            &Subject::from_fields(&SubjectFields::new(format!("crash{i}.example"))).unwrap(),
            Validity::days(now, 30),
        )
        .unwrap();
        files.push(env.write(&format!("c{i}.der"), der));
    }
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let mut rng = Rng(u64::try_from(seed % u128::from(u64::MAX)).unwrap() | 1);
    println!("seed {seed}");
    let (mut killed, mut finished) = (0, 0);
    // How long each kind of operation takes (measured on its first run,
    // then adjusted as runs go), so that kills land anywhere in it:
    // start-up, key generation, file writes, fsyncs, the index rename,
    // clean-up. A busy machine makes runs slower or faster at random: a run
    // that finished before its kill shrinks the estimate, a killed one
    // stretches it a little, so the kill rate stays high whatever the load.
    let mut duration = [None::<Duration>; 4];
    let mut i = 0;
    while killed < 100 && i < 600 {
        i += 1;
        let db = CertDb::open(&env.db).unwrap();
        let aliases: Vec<String> = db
            .certificates()
            .unwrap()
            .into_iter()
            .map(|e| e.nickname)
            .filter(|a| a != "Server-Cert")
            .collect();
        let pick = |r: u64| aliases[usize::try_from(r).unwrap() % aliases.len()].clone();
        let args: Vec<String> = match i % 4 {
            0 => vec![
                "add-selfsign-cert".into(),
                "--name".into(),
                format!("gen{i}"),
                format!("Gen-{i}"),
            ],
            1 if !aliases.is_empty() => vec!["remove-cert".into(), pick(rng.next())],
            2 => vec!["renew-selfsign-cert".into(), "Server-Cert".into()],
            _ => vec![
                "add-cert".into(),
                format!("Added-{i}"),
                s(&files[i % files.len()]).into(),
            ],
        };
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let kind = i % 4;
        let started = std::time::Instant::now();
        let mut child = env
            .command(&argv)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        if let Some(d) = duration[kind] {
            let span = u64::try_from(d.as_micros()).unwrap() * 6 / 5 + 1;
            std::thread::sleep(Duration::from_micros(rng.next() % span));
            match child.try_wait().unwrap() {
                Some(_) => {
                    finished += 1;
                    duration[kind] = Some(d * 3 / 4);
                }
                None => {
                    child.kill().unwrap(); // SIGKILL
                    killed += 1;
                    duration[kind] = Some(d * 21 / 20);
                }
            }
            child.wait().unwrap();
        } else {
            child.wait().unwrap();
            duration[kind] = Some(started.elapsed());
        }

        // The database opens and is whole.
        let db = CertDb::open(&env.db).unwrap_or_else(|e| panic!("iteration {i} ({args:?}): {e}"));
        let report = db
            .check_integrity()
            .unwrap_or_else(|e| panic!("iteration {i} ({args:?}): {e}"));
        let entries = db.certificates().unwrap();
        assert_eq!(report.certificates, entries.len());
        for e in &entries {
            if e.nickname.starts_with("Gen-") || e.nickname == "Server-Cert" {
                assert!(e.has_key, "iteration {i}: {} lost its key", e.nickname);
            }
        }
        assert!(
            entries.iter().any(|e| e.nickname == "Server-Cert"),
            "iteration {i}"
        );
        // The key of Server-Cert still decrypts and matches.
        let pw = portcullis_certdb::Password::new(common::DB_PASSWORD);
        let key = db.private_key("Server-Cert", &pw).unwrap();
        assert_eq!(
            key.public_key_info(),
            db.certificate("Server-Cert").unwrap().info.spki
        );
    }
    println!("killed {killed}, finished {finished}");
    assert!(killed >= 100, "only {killed} kills in {i} runs");
    // A writer after all that leaves no orphans behind.
    env.ok(&["add-selfsign-cert", "--name", "last", "Last"]);
    let db = CertDb::open(&env.db).unwrap();
    assert_eq!(db.check_integrity().unwrap().orphans, 0);
    let leftovers: Vec<_> = std::fs::read_dir(&env.db)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
        .collect();
    assert!(leftovers.is_empty());
}
