//! Differential test against libwrap (tcp_wrappers): a small C oracle calls
//! `hosts_ctl()` with `hosts_allow_table` / `hosts_deny_table` pointed at
//! temporary files; proptest generates rule sets and queries over the
//! language both share (names given with addresses, so no DNS), and every
//! answer must agree.
//!
//! The deny file is never empty and always has a filter for every service
//! (`ALL: ...`), because the two differ on purpose when only Allow filters
//! apply: libwrap grants, we deny.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use common::{WrapQuery, client_pattern, file, wrap_query};
use portcullis_accessfilter::{FilterSet, Verdict};
use proptest::prelude::*;

const ORACLE_C: &str = r#"
#include <stdio.h>
#include <string.h>
#include <tcpd.h>

int allow_severity = 0;
int deny_severity = 0;

/* Reads "allow\tdeny\tdaemon\tname\taddr\tuser" lines, answers 1 (granted)
   or 0 (denied) per line. */
int main(void) {
    static char line[65536];
    while (fgets(line, sizeof line, stdin)) {
        char *f[6];
        int n = 0;
        line[strcspn(line, "\n")] = 0;
        char *p = line;
        for (n = 0; n < 6; n++) {
            f[n] = p;
            p = strchr(p, '\t');
            if (!p) { n++; break; }
            *p++ = 0;
        }
        if (n != 6) { printf("E\n"); fflush(stdout); continue; }
        hosts_allow_table = f[0];
        hosts_deny_table = f[1];
        printf("%d\n", hosts_ctl(f[2], f[3], f[4], f[5]));
        fflush(stdout);
    }
    return 0;
}
"#;

struct Oracle {
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    dir: PathBuf,
}

fn oracle() -> &'static Mutex<Oracle> {
    static ORACLE: OnceLock<Mutex<Oracle>> = OnceLock::new();
    ORACLE.get_or_init(|| {
        let dir = tempfile::Builder::new().prefix("libwrap-oracle").tempdir().expect("temp dir").keep();
        let src = dir.join("oracle.c");
        std::fs::write(&src, ORACLE_C).expect("write oracle source");
        let bin = dir.join("oracle");
        let out = Command::new("cc")
            .arg("-O2")
            .arg("-o")
            .arg(&bin)
            .arg(&src)
            .arg("-lwrap")
            .output()
            .expect("run cc (the C compiler is needed for the libwrap oracle)");
        assert!(
            out.status.success(),
            "building the libwrap oracle failed (Debian packages tcpd and libwrap0-dev are needed): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut child = Command::new(&bin)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the libwrap oracle");
        let stdin = child.stdin.take().expect("oracle stdin");
        let stdout = BufReader::new(child.stdout.take().expect("oracle stdout"));
        Mutex::new(Oracle {
            _child: child,
            stdin,
            stdout,
            dir,
        })
    })
}

static CASE: AtomicU64 = AtomicU64::new(0);

/// libwrap's answers (true = granted) for the queries.
fn libwrap(allow: &str, deny: &str, queries: &[WrapQuery]) -> Vec<bool> {
    let mut o = oracle().lock().unwrap_or_else(|e| e.into_inner());
    let n = CASE.fetch_add(1, Ordering::Relaxed);
    let a = o.dir.join(format!("allow-{}", n % 4));
    let d = o.dir.join(format!("deny-{}", n % 4));
    std::fs::write(&a, allow).expect("write allow file");
    std::fs::write(&d, deny).expect("write deny file");
    let path = |p: &Path| p.to_str().expect("utf-8 temp path").to_owned();
    let mut batch = String::new();
    for q in queries {
        batch.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\n",
            path(&a),
            path(&d),
            q.service,
            q.name,
            q.addr,
            q.user
        ));
    }
    o.stdin
        .write_all(batch.as_bytes())
        .expect("write to oracle");
    o.stdin.flush().expect("flush oracle");
    let mut answers = Vec::with_capacity(queries.len());
    for _ in queries {
        let mut line = String::new();
        o.stdout.read_line(&mut line).expect("read oracle");
        match line.trim() {
            "1" => answers.push(true),
            "0" => answers.push(false),
            other => panic!("oracle answered {other:?}"),
        }
    }
    answers
}

fn case() -> impl Strategy<Value = (String, String, Vec<WrapQuery>)> {
    (
        file(false, 0, 6),
        file(false, 0, 4),
        common::list(client_pattern(false)),
        prop::collection::vec(wrap_query(), 1..9),
    )
        .prop_map(|(allow, mut deny, catch, queries)| {
            deny.push_str(&format!("ALL: {catch}\n"));
            (allow, deny, queries)
        })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 10_000,
        failure_persistence: None,
        .. ProptestConfig::default()
    })]

    #[test]
    fn agrees_with_libwrap((allow, deny, queries) in case()) {
        let set = FilterSet::from_files(Some(("allow", &allow)), Some(("deny", &deny)))
            .expect("generated rules parse");
        let expected = libwrap(&allow, &deny, &queries);
        for (q, granted) in queries.iter().zip(expected) {
            let d = set.decide_offline(&q.to_query());
            let ours = match d.verdict {
                Verdict::Allow => true,
                Verdict::Deny => false,
                Verdict::Tempfail => panic!("no lookup can fail here: {d}"),
            };
            prop_assert_eq!(ours, granted, "query {:?}\nallow:\n{}deny:\n{}ours: {}", q, allow, deny, d);
        }
    }
}

/// The oracle itself answers as tcp_wrappers documents (so agreement above
/// means something), including denials.
#[test]
fn oracle_sanity() {
    let q = |service: &str, name: &str, addr: &str, user: &str| WrapQuery {
        service: service.into(),
        name: name.into(),
        addr: addr.into(),
        user: user.into(),
    };
    let allow =
        "imap: .d0.test EXCEPT h1.d0.test\npop: 10.1.0.0/16, [2001:db8::]/32\nhttp: alice@ALL\n";
    let deny = "ALL: ALL\n";
    let cases = [
        (q("imap", "h0.d0.test", "10.0.0.1", "bob"), true),
        (q("imap", "h1.d0.test", "10.0.0.1", "bob"), false),
        (q("pop", "h1.d0.test", "10.1.2.3", "bob"), true),
        (q("pop", "h1.d0.test", "2001:db8::1", "bob"), true),
        (q("pop", "h1.d0.test", "10.2.2.3", "bob"), false),
        (q("http", "h1.d0.test", "10.2.2.3", "alice"), true),
        (q("http", "h1.d0.test", "10.2.2.3", "unknown"), false),
    ];
    let queries: Vec<WrapQuery> = cases.iter().map(|(q, _)| q.clone()).collect();
    let answers = libwrap(allow, deny, &queries);
    let set = FilterSet::from_files(Some(("allow", allow)), Some(("deny", deny))).unwrap();
    for ((q, expected), got) in cases.iter().zip(answers) {
        assert_eq!(got, *expected, "libwrap on {q:?}");
        assert_eq!(
            set.decide_offline(&q.to_query()).verdict == Verdict::Allow,
            *expected,
            "ours on {q:?}"
        );
    }
}
