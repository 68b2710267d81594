//! Logins per second against one throwaway slapd: verification by bind,
//! by local hash check ({SSHA} and sha512-crypt), and with the result
//! cache on. `ldapauth_failed_login/*` compares a wrong password with an
//! unknown user, by bind and by local check: a ratio near 1 means timing
//! does not tell unknown users from real ones.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use portcullis_ldapauth::{Directory, Settings, VerifyMode};
use portcullis_test_support::slapd::Slapd;

fn settings(slapd: &Slapd) -> Settings {
    let mut s = Settings::new(format!("127.0.0.1:{}", slapd.port()), slapd.base_dn());
    s.bind_dn = slapd.service_dn().into();
    s.bind_password = slapd.service_password().into();
    s.operation_timeout = Duration::from_secs(5);
    s
}

fn logins(c: &mut Criterion) {
    let slapd = Slapd::start().expect("slapd");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("ldapauth_login");
    g.throughput(Throughput::Elements(1));
    g.sample_size(30);

    let cases: Vec<(&str, &str, &str, Settings)> = vec![
        (
            "bind_ssha",
            "alice@example.com",
            "alice-pw",
            settings(&slapd),
        ),
        ("local_ssha", "alice@example.com", "alice-pw", {
            let mut s = settings(&slapd);
            s.verify = VerifyMode::LocalHash;
            s
        }),
        ("local_sha512crypt", "bob@example.com", "bob-pw", {
            let mut s = settings(&slapd);
            s.verify = VerifyMode::LocalHash;
            s
        }),
        ("bind_cache_on", "alice@example.com", "alice-pw", {
            let mut s = settings(&slapd);
            s.cache_ttl = Some(Duration::from_secs(600));
            s
        }),
    ];
    for (name, login, pw, s) in cases {
        let d = Directory::new(s).unwrap();
        let pw: portcullis_ldapauth::Password = pw.into();
        // Warm the pool (and the cache).
        rt.block_on(d.verify_password(login, &pw))
            .expect("login works");
        g.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(d.verify_password(login, &pw))
                    .expect("login works")
            });
        });
    }
    g.finish();

    let mut g = c.benchmark_group("ldapauth_failed_login");
    g.sample_size(30);
    for (mode, verify) in [("bind", VerifyMode::Bind), ("local", VerifyMode::LocalHash)] {
        let mut s = settings(&slapd);
        s.verify = verify;
        let d = Directory::new(s).unwrap();
        let pw: portcullis_ldapauth::Password = "wrong-pw".into();
        for (case, login) in [
            ("wrong_password", "bob@example.com"),
            ("unknown_user", "nobody@example.com"),
        ] {
            assert!(rt.block_on(d.verify_password(login, &pw)).is_err());
            g.bench_function(format!("{mode}/{case}"), |b| {
                b.iter(|| rt.block_on(d.verify_password(login, &pw)).is_err());
            });
        }
    }
    g.finish();
}

criterion_group!(benches, logins);
criterion_main!(benches);
