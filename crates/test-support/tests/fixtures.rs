//! Each fixture starts, answers like the real service, and is gone after.
#![allow(clippy::unwrap_used)] // test helpers: a failure is a test failure

use std::sync::Arc;
use std::time::Duration;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use portcullis_test_support::pid_alive;
use portcullis_test_support::redis::Redis;
use portcullis_test_support::slapd::Slapd;
use portcullis_test_support::softhsm::SoftHsm;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

fn tls_config(ca_pem: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

async fn bind(
    url: &str,
    settings: LdapConnSettings,
    dn: &str,
    pw: &str,
) -> ldap3::result::Result<ldap3::Ldap> {
    let (conn, mut ldap) = LdapConnAsync::with_settings(settings, url).await?;
    ldap3::drive!(conn);
    ldap.simple_bind(dn, pw).await?.success()?;
    Ok(ldap)
}

fn settings(ca_pem: &str) -> LdapConnSettings {
    LdapConnSettings::new()
        .set_conn_timeout(Duration::from_secs(5))
        .set_config(tls_config(ca_pem))
}

#[tokio::test]
async fn slapd_answers_ldaps_starttls_and_the_test_directory() {
    let mut slapd = Slapd::start().unwrap();
    let pid = slapd.pid();
    assert!(pid_alive(pid));
    let ca = slapd.ca_pem().to_owned();

    // LDAPS bind as the service account.
    let mut ldap = bind(
        &slapd.ldaps_url(),
        settings(&ca),
        slapd.service_dn(),
        slapd.service_password(),
    )
    .await
    .unwrap();
    // The service account can read userPassword.
    let (entries, _) = ldap
        .search(
            "o=example.com,o=example",
            Scope::Subtree,
            "(&(uid=carol)(objectclass=inetmailuser))",
            vec!["userPassword", "mail", "mailUserStatus"],
        )
        .await
        .unwrap()
        .success()
        .unwrap();
    assert_eq!(entries.len(), 1);
    let carol = SearchEntry::construct(entries.into_iter().next().unwrap());
    assert_eq!(carol.attrs["mail"], vec!["carol@example.com"]);
    let pw = carol.bin_attrs.get("userPassword").cloned().or_else(|| {
        carol
            .attrs
            .get("userPassword")
            .map(|v| v.iter().map(|s| s.as_bytes().to_vec()).collect())
    });
    assert_eq!(pw.unwrap(), vec![b"carol-pw".to_vec()]);
    ldap.unbind().await.unwrap();

    // StartTLS, binding as users with each password scheme.
    for (dn, password) in [
        ("uid=alice,ou=People,o=example.com,o=example", "alice-pw"),
        ("uid=bob,ou=People,o=example.com,o=example", "bob-pw"),
        ("uid=carol,ou=People,o=example.com,o=example", "carol-pw"),
        ("uid=erin,ou=People,o=example.org,o=example", "erin-pw"),
    ] {
        let mut l = bind(
            &slapd.ldap_url(),
            settings(&ca).set_starttls(true),
            dn,
            password,
        )
        .await
        .unwrap_or_else(|e| panic!("{dn}: {e}"));
        l.unbind().await.unwrap();
        let wrong = bind(
            &slapd.ldap_url(),
            settings(&ca).set_starttls(true),
            dn,
            "wrong",
        )
        .await;
        assert!(wrong.is_err(), "{dn} with a wrong password");
    }

    // An ordinary user cannot read another user's password.
    let mut l = bind(
        &slapd.ldap_url(),
        settings(&ca),
        "uid=alice,ou=People,o=example.com,o=example",
        "alice-pw",
    )
    .await
    .unwrap();
    let (entries, _) = l
        .search(
            "uid=carol,ou=People,o=example.com,o=example",
            Scope::Base,
            "(objectclass=*)",
            vec!["userPassword"],
        )
        .await
        .unwrap()
        .success()
        .unwrap();
    let e = SearchEntry::construct(entries.into_iter().next().unwrap());
    assert!(!e.attrs.contains_key("userPassword") && !e.bin_attrs.contains_key("userPassword"));
    l.unbind().await.unwrap();

    // The domain entries and the administrators group.
    slapd
        .add_ldif("dn: uid=frank,ou=People,o=example.com,o=example\nobjectClass: inetOrgPerson\nobjectClass: inetMailUser\nuid: frank\ncn: Frank\nsn: F\nmail: frank@example.com\n")
        .unwrap();
    let mut l = bind(
        &slapd.ldap_url(),
        settings(&ca),
        slapd.admin_dn(),
        slapd.admin_password(),
    )
    .await
    .unwrap();
    let (entries, _) = l
        .search(slapd.base_dn(), Scope::Subtree, "(|(associatedDomain=example.org)(uid=frank)(member=uid=admin,ou=People,o=example.com,o=example))",
            vec!["inetDomainSearchFilter", "cn"])
        .await
        .unwrap()
        .success()
        .unwrap();
    let dns: Vec<String> = entries
        .into_iter()
        .map(|e| SearchEntry::construct(e).dn)
        .collect();
    assert!(
        dns.contains(&"o=example.org,o=example".to_owned()),
        "{dns:?}"
    );
    assert!(dns.contains(&slapd.admins_group_dn().to_owned()), "{dns:?}");
    assert!(dns.iter().any(|d| d.starts_with("uid=frank")), "{dns:?}");
    l.unbind().await.unwrap();

    // A client that does not trust the fixture's CA fails closed.
    let other = portcullis_test_support::ca::TestCa::new("someone else").unwrap();
    assert!(
        bind(
            &slapd.ldaps_url(),
            settings(&other.cert_pem()),
            slapd.service_dn(),
            slapd.service_password()
        )
        .await
        .is_err()
    );

    let dir = slapd.dir().to_owned();
    slapd.stop();
    assert!(!pid_alive(pid), "slapd {pid} still running after stop");
    drop(slapd);
    assert!(!dir.exists());
}

#[test]
fn slapd_shared_is_one_instance() {
    let a = Slapd::shared();
    let b = Slapd::shared();
    assert_eq!(a.pid(), b.pid());
    assert!(a.is_running());
}

#[test]
fn softhsm_token_logs_in() {
    let hsm = SoftHsm::shared();
    assert_eq!(
        std::env::var_os("SOFTHSM2_CONF").as_deref(),
        Some(hsm.conf_path().as_os_str())
    );
    let pkcs11 = Pkcs11::new(hsm.module_path()).unwrap();
    pkcs11
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let slot = pkcs11
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| pkcs11.get_token_info(*s).unwrap().label() == hsm.token_label())
        .expect("token found by label");
    let session = pkcs11.open_rw_session(slot).unwrap();
    let wrong = session.login(UserType::User, Some(&AuthPin::new("0000".into())));
    assert!(wrong.is_err());
    session
        .login(UserType::User, Some(&AuthPin::new(hsm.user_pin().into())))
        .unwrap();
    session.logout().unwrap();

    // A token of its own is visible to child processes through env().
    let own = SoftHsm::start().unwrap();
    let out = std::process::Command::new("softhsm2-util")
        .arg("--show-slots")
        .envs(own.env())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(own.token_label()), "{text}");
    let dir = own.dir().to_owned();
    drop(own);
    assert!(!dir.exists());
}

#[tokio::test]
async fn redis_pings_restarts_and_stops() {
    let mut redis = Redis::start().unwrap();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let pong: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
    assert_eq!(pong, "PONG");
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query_async(&mut conn)
        .await
        .unwrap();

    let old = redis.pid().unwrap();
    redis.restart().unwrap();
    assert!(!pid_alive(old));
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let gone: Option<String> = redis::cmd("GET")
        .arg("k")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(gone, None, "a restarted test Redis starts empty");

    let pid = redis.pid().unwrap();
    redis.stop();
    assert!(!pid_alive(pid));
    assert!(client.get_multiplexed_async_connection().await.is_err());
}

#[tokio::test]
async fn redis_with_password_requires_auth() {
    let redis = Redis::start_with_password("pw-for-tests").unwrap();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let pong: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
    assert_eq!(pong, "PONG");
    let anonymous = redis::Client::open(format!("redis://127.0.0.1:{}/", redis.port())).unwrap();
    let result: redis::RedisResult<String> =
        match anonymous.get_multiplexed_async_connection().await {
            Ok(mut c) => redis::cmd("GET").arg("x").query_async(&mut c).await,
            Err(e) => Err(e),
        };
    assert!(result.is_err());
}

#[test]
fn shared_fixtures_die_with_the_test_process() {
    // Run this very test binary as a child that starts shared fixtures and
    // exits; afterwards their processes must be gone.
    if std::env::var_os("PORTCULLIS_FIXTURE_CHILD").is_some() {
        let s = Slapd::shared();
        let r = Redis::shared();
        let h = SoftHsm::shared();
        println!("PIDS {} {}", s.pid(), r.pid().unwrap());
        println!("DIRS {} {}", s.dir().display(), h.dir().display());
        // A failing test: the fixtures must go all the same.
        panic!("the child test fails on purpose");
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "shared_fixtures_die_with_the_test_process",
            "--nocapture",
        ])
        .env("PORTCULLIS_FIXTURE_CHILD", "1")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the child test was meant to fail");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("fails on purpose")
            || stdout.contains("fails on purpose"),
        "{stdout}"
    );
    let dirs: Vec<std::path::PathBuf> = stdout
        .lines()
        .find_map(|l| l.strip_prefix("DIRS "))
        .expect("child printed its folders")
        .split(' ')
        .map(Into::into)
        .collect();
    let line = stdout
        .lines()
        .find(|l| l.starts_with("PIDS "))
        .expect("child printed PIDs");
    let pids: Vec<u32> = line[5..].split(' ').map(|p| p.parse().unwrap()).collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while pids.iter().any(|p| pid_alive(*p)) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for p in pids {
        assert!(
            !pid_alive(p),
            "fixture process {p} outlived its test process"
        );
    }
    // The guards also removed the scratch folders (slapd's, the token's).
    while dirs.iter().any(|d| d.exists()) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for d in &dirs {
        assert!(!d.exists(), "{} was left behind", d.display());
    }
}

/// The local addresses `pid` listens on (TCP, from /proc).
fn listening_addresses(pid: u32) -> Vec<String> {
    // Socket inodes the process holds.
    let mut inodes = std::collections::HashSet::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        if let Ok(target) = std::fs::read_link(fd.unwrap().path()) {
            let t = target.to_string_lossy().into_owned();
            if let Some(n) = t.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')) {
                inodes.insert(n.to_owned());
            }
        }
    }
    let mut out = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address, state 0A = LISTEN, inode.
            if f.len() > 9 && f[3] == "0A" && inodes.contains(f[9]) {
                out.push(f[1].to_owned());
            }
        }
    }
    out
}

/// Whether a /proc/net/tcp{,6} address (hex, host byte order) is loopback.
fn is_loopback(hex: &str) -> bool {
    let addr = hex.split(':').next().unwrap();
    match addr.len() {
        // 127.x.x.x: the last byte of the little-endian word is 0x7F.
        8 => addr.ends_with("7F"),
        // ::1, stored as four little-endian words.
        32 => addr == "00000000000000000000000001000000",
        _ => false,
    }
}

#[test]
fn fixtures_listen_on_loopback_only() {
    let slapd = Slapd::shared();
    let redis = Redis::shared();
    for (name, pid) in [("slapd", slapd.pid()), ("redis", redis.pid().unwrap())] {
        let addrs = listening_addresses(pid);
        // slapd: LDAP and LDAPS; redis: its one port.
        assert!(!addrs.is_empty(), "{name} listens on nothing?");
        for a in &addrs {
            assert!(is_loopback(a), "{name} listens on {a}, not loopback");
        }
    }
    assert_eq!(listening_addresses(slapd.pid()).len(), 2);
}

/// Postfix too (it needs root, as the README's test section says): the
/// master holds the listening sockets of both smtpd services, and the
/// smtp-sink behind it its own.
#[test]
fn postfix_listens_on_loopback_only() {
    let postfix = portcullis_test_support::postfix::Postfix::start().expect("postfix");
    let master = listening_addresses(postfix.pid().expect("master runs"));
    let sink = listening_addresses(postfix.sink_pid().expect("sink runs"));
    assert_eq!(master.len(), 2, "smtp and proxy listeners: {master:?}");
    assert_eq!(sink.len(), 1, "{sink:?}");
    for a in master.iter().chain(&sink) {
        assert!(is_loopback(a), "postfix listens on {a}, not loopback");
    }
    let ports: Vec<u16> = master
        .iter()
        .chain(&sink)
        .map(|a| u16::from_str_radix(a.rsplit(':').next().unwrap(), 16).unwrap())
        .collect();
    for p in [
        postfix.smtp_port(),
        postfix.proxy_port(),
        postfix.sink_port(),
    ] {
        assert!(ports.contains(&p), "port {p} not among {ports:?}");
    }
}
