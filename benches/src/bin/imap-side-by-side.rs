//! imapd beside Dovecot (and nginx's mail proxy when it is installed), in
//! one run on one machine: TLS handshakes per second, memory per idle
//! connection and per idle proxied session, LOGIN + LOGOUT per second
//! against one slapd, and bulk FETCH throughput. Every figure comes with
//! the server's CPU time per operation and a ratio to the peer measured
//! in the same run.
//!
//! Started by `benches/scripts/imapd-vs-dovecot.sh`, which builds imapd
//! in release mode and raises the descriptor limit first. All traffic is
//! on 127.0.0.1; every server is stopped by its PID at the end.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use portcullis_benches::imapload::{self, Run, Target};
use portcullis_benches::procstat;
use portcullis_test_support::ca::TestCa;
use portcullis_test_support::dovecot::{Dovecot, DovecotOptions, LdapPassdb};
use portcullis_test_support::free_port;
use portcullis_test_support::slapd::Slapd;
use portcullis_tlsconf::certdb::certdb::{CertDb, KdfParams, Password, PrivateKey, TrustFlags};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Side-by-side IMAP benchmark: imapd, Dovecot, nginx mail.
#[derive(Debug, Parser)]
struct Args {
    /// The imapd binary (a release build).
    #[arg(long)]
    imapd: PathBuf,
    /// Seconds each timed run lasts.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Idle TLS connections held per server for the memory figure.
    #[arg(long, default_value_t = 10_000)]
    idle: usize,
    /// Idle logged-in (proxied) sessions held per proxy.
    #[arg(long, default_value_t = 1_000)]
    sessions: usize,
    /// Messages of the bulk mailbox (100 KB each).
    #[arg(long, default_value_t = 200)]
    messages: usize,
    /// Concurrency of the handshake runs (comma-separated).
    #[arg(long, default_value = "16,64", value_delimiter = ',')]
    concurrency: Vec<usize>,
    /// Leave nginx out even when it is installed.
    #[arg(long)]
    no_nginx: bool,
    /// Only the bulk FETCH run (for a long run of it alone).
    #[arg(long)]
    only_fetch: bool,
}

/// The user every run logs in as, and the one holding the bulk mailbox.
const USER: (&str, &str) = ("alice", "alice-pw");
const BULK_USER: (&str, &str) = ("carol", "carol-pw");

/// A server under test.
struct Server {
    name: &'static str,
    pid: u32,
    target: Target,
}

/// A process we started, stopped by its PID when dropped: SIGTERM (so
/// nginx's master takes its workers with it), SIGKILL after ten seconds.
struct Owned(Child);

impl Drop for Owned {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        for _ in 0..100 {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let scratch = tempfile::tempdir()?;
    let slapd = Slapd::start()?;
    eprintln!("slapd on {}", slapd.ldap_url());
    let dovecot = Dovecot::start_with(
        &DovecotOptions::high_performance()
            .with_ldap(LdapPassdb {
                uri: slapd.ldap_url(),
                base: slapd.base_dn().to_owned(),
                bind_dn: slapd.service_dn().to_owned(),
                bind_password: slapd.service_password().to_owned(),
            })
            .with_client_limit(u32::try_from(args.idle + args.sessions + 1_000)?),
    )?;
    eprintln!("dovecot on imaps {}", dovecot.imaps_port());
    fill_mailbox(&dovecot, args.messages)?;

    let ca = TestCa::new("side-by-side CA")?;
    let cert = ca.issue_server(&["localhost", "127.0.0.1"])?;
    let (imapd_child, imapd_port) = start_imapd(&args, scratch.path(), &slapd, &dovecot, &cert)?;
    let mut servers = vec![
        Server {
            name: "imapd",
            pid: imapd_child.0.id(),
            target: Target::new(loopback(imapd_port), &ca.cert_pem(), "localhost")?,
        },
        Server {
            name: "dovecot",
            pid: dovecot.pid(),
            target: Target::new(
                loopback(dovecot.imaps_port()),
                dovecot.ca_pem(),
                "localhost",
            )?,
        },
    ];
    let runtime = tokio::runtime::Runtime::new()?;
    let nginx = if args.no_nginx {
        None
    } else {
        runtime.block_on(start_nginx(scratch.path(), &dovecot, &cert))?
    };
    if let Some((child, port, _)) = &nginx {
        servers.push(Server {
            name: "nginx",
            pid: child.0.id(),
            target: Target::new(loopback(*port), &ca.cert_pem(), "localhost")?,
        });
    } else {
        eprintln!("nginx with its mail module is not installed: measured without it");
    }

    let mut report = Report::default();
    let outcome = runtime.block_on(async {
        if !args.only_fetch {
        for &c in &args.concurrency {
            let mut row = Vec::new();
            for s in &servers {
                let target = s.target.clone();
                let (run, cpu) = measure(s.pid, async {
                    imapload::timed(c, Duration::from_secs(args.seconds), move || {
                        let t = target.clone();
                        async move { imapload::handshake(&t).await }
                    })
                    .await
                })
                .await;
                row.push((s.name, run, cpu));
            }
            report.rates(&format!("TLS handshakes + greeting, C={c}"), "handshakes", &row);
        }

        // Sessions first: memory a server freed after the larger idle run
        // would be handed out again and hide what a session costs.
        let mut mem = Vec::new();
        for s in servers.iter().filter(|s| s.name != "dovecot") {
            mem.push((s.name, idle_memory(s, args.sessions, Some(USER)).await?));
        }
        report.memory(
            &format!(
                "idle proxied session after LOGIN ({} each; the proxy's own memory)",
                args.sessions
            ),
            &mem,
        );

        let mut mem = Vec::new();
        for s in &servers {
            mem.push((s.name, idle_memory(s, args.idle, None).await?));
        }
        report.memory(
            &format!("idle TLS connection after handshake + greeting ({} each)", args.idle),
            &mem,
        );
        let mut row = Vec::new();
        for s in servers.iter().filter(|s| s.name != "nginx") {
            let target = s.target.clone();
            let (run, cpu) = measure(s.pid, async {
                imapload::timed(16, Duration::from_secs(args.seconds), move || {
                    let t = target.clone();
                    async move { imapload::login_logout(&t, USER.0, USER.1).await }
                })
                .await
            })
            .await;
            row.push((s.name, run, cpu));
        }
        report.rates(
            "LOGIN + LOGOUT over TLS, C=16, one slapd (imapd's figure includes its store login at Dovecot)",
            "logins",
            &row,
        );

        }
        let mut row = Vec::new();
        for s in servers.iter().filter(|s| s.name != "nginx") {
            let mut session = s.target.connect().await?;
            session.login(BULK_USER.0, BULK_USER.1).await?;
            session.command("SELECT INBOX").await?;
            // One pass to warm Dovecot's index and the page cache.
            session.command("FETCH 1:* BODY.PEEK[]").await?;
            let before = procstat::cpu_seconds(s.pid);
            let start = std::time::Instant::now();
            let mut bytes = 0u64;
            let mut passes = 0u64;
            let mut failed = 0;
            while start.elapsed() < Duration::from_secs(args.seconds) {
                match session.command("FETCH 1:* BODY.PEEK[]").await {
                    Ok(n) => bytes += n,
                    Err(e) => {
                        eprintln!("{}: FETCH pass {passes} failed: {e}", s.name);
                        failed = 1;
                        break;
                    }
                }
                passes += 1;
            }
            let run = Run {
                ok: bytes / (1 << 20),
                failed,
                elapsed: start.elapsed(),
            };
            let cpu = procstat::cpu_seconds(s.pid) - before;
            eprintln!("{}: {passes} FETCH passes", s.name);
            session.reset();
            row.push((s.name, run, cpu));
        }
        report.rates(
            &format!(
                "bulk FETCH 1:* BODY.PEEK[] of {} × 100 KB, one session",
                args.messages
            ),
            "MiB",
            &row,
        );
        Ok::<(), std::io::Error>(())
    });
    drop(nginx);
    drop(imapd_child);
    // What was measured is printed even when a later run failed.
    print!("{}", report.text);
    std::io::stdout().flush()?;
    Ok(outcome?)
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Runs `work` and returns it with the CPU seconds the server's process
/// tree used meanwhile.
async fn measure<T>(pid: u32, work: impl Future<Output = T>) -> (T, f64) {
    let before = procstat::cpu_seconds(pid);
    let out = work.await;
    (out, procstat::cpu_seconds(pid) - before)
}

/// KiB of PSS per connection: the server's PSS with `n` connections open
/// (logged in when `login` is given) minus its PSS before.
async fn idle_memory(
    server: &Server,
    n: usize,
    login: Option<(&str, &str)>,
) -> std::io::Result<f64> {
    let before = procstat::pss_kib(server.pid);
    let held = imapload::hold(&server.target, n, 64, login).await?;
    // Let the servers finish what the last connections started.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = procstat::pss_kib(server.pid);
    for s in held {
        s.reset();
    }
    #[allow(clippy::cast_precision_loss)]
    let per = after.saturating_sub(before) as f64 / n as f64;
    eprintln!(
        "{}: {n} connections, PSS {before} KiB → {after} KiB",
        server.name
    );
    // Give the server time to notice the resets before the next run.
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(per)
}

/// Adds `n` messages of 100 KB to the bulk user's mailbox.
fn fill_mailbox(dovecot: &Dovecot, n: usize) -> Result<(), Box<dyn std::error::Error>> {
    let line = format!("{}\r\n", "x".repeat(76));
    for i in 0..n {
        let mut m = format!(
            "From: sender@example.com\r\nTo: {}@example.com\r\nSubject: bulk {i}\r\n\
             Message-ID: <bulk-{i}@example.com>\r\n\r\n",
            BULK_USER.0
        );
        while m.len() < 100_000 {
            m.push_str(&line);
        }
        dovecot.add_message(BULK_USER.0, m.as_bytes())?;
    }
    Ok(())
}

/// imapd on an implicit-TLS port in front of `dovecot`, users from
/// `slapd`; limits opened up for the load.
fn start_imapd(
    args: &Args,
    dir: &Path,
    slapd: &Slapd,
    dovecot: &Dovecot,
    cert: &portcullis_test_support::ca::Issued,
) -> Result<(Owned, u16), Box<dyn std::error::Error>> {
    let pw = Password::new("db-password");
    let mut db = CertDb::create(dir.join("certdb"), &pw, KdfParams::INSECURE_FAST)?;
    let key = PrivateKey::from_pkcs8_der(&cert.key_der)?;
    db.add_with_key(
        &pw,
        "Server-Cert",
        &cert.cert_der,
        &key,
        TrustFlags::default(),
        &[],
    )?;
    let (port, sslport) = (free_port(), free_port());
    let (admin, admin_pw) = dovecot.master_user();
    let config = format!(
        "[local]\n\
         ugldaphost = \"127.0.0.1\"\n\
         ugldapport = {ldap}\n\
         ugldapbinddn = {bind_dn:?}\n\
         ugldapbindcred = {bind_pw:?}\n\
         ugldapbasedn = {base:?}\n\
         ugldapcanonicalform = \"%u\"\n\
         [service]\n\
         defaultdomain = \"example.com\"\n\
         listenaddr = \"127.0.0.1\"\n\
         [service.imap]\n\
         port = {port}\n\
         sslport = {sslport}\n\
         [mmp]\n\
         storehosts = [\"127.0.0.1:{store}\"]\n\
         backsidetls = \"none\"\n\
         storeadmin = {admin:?}\n\
         storepassword = {admin_pw:?}\n\
         maxclients = {max}\n\
         connlimits = []\n\
         preauthtimeout = 3600\n",
        ldap = slapd.port(),
        bind_dn = slapd.service_dn(),
        bind_pw = slapd.service_password(),
        base = slapd.base_dn(),
        store = dovecot.imap_port(),
        max = args.idle + args.sessions + 1_000,
    );
    let path = dir.join("portcullis.toml");
    std::fs::write(&path, config)?;
    let log = std::fs::File::create(dir.join("imapd.log"))?;
    let child = Owned(
        Command::new(&args.imapd)
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?,
    );
    wait_listening(sslport, &dir.join("imapd.log"))?;
    Ok((child, sslport))
}

/// Waits (up to a minute) until `port` accepts connections.
fn wait_listening(port: u16, log: &Path) -> Result<(), Box<dyn std::error::Error>> {
    for _ in 0..600 {
        if std::net::TcpStream::connect(loopback(port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "nothing listens on {port}:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    )
    .into())
}

/// nginx's mail proxy on an implicit-TLS port in front of `dovecot`, with
/// an `auth_http` answer that sends every login to the store; `None` when
/// nginx or its mail module is not installed.
async fn start_nginx(
    dir: &Path,
    dovecot: &Dovecot,
    cert: &portcullis_test_support::ca::Issued,
) -> Result<Option<(Owned, u16, tokio::task::JoinHandle<()>)>, Box<dyn std::error::Error>> {
    let nginx = Path::new("/usr/sbin/nginx");
    let module = Path::new("/usr/lib/nginx/modules/ngx_mail_module.so");
    if !nginx.exists() || !module.exists() {
        return Ok(None);
    }
    let auth = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let auth_port = auth.local_addr()?.port();
    let answer = Arc::new(format!(
        "HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: {}\r\n\r\n",
        dovecot.imap_port()
    ));
    let responder = tokio::spawn(async move {
        while let Ok((mut conn, _)) = auth.accept().await {
            let answer = Arc::clone(&answer);
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 2048];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 65_536 {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = conn.write_all(answer.as_bytes()).await;
            });
        }
    });
    let ndir = dir.join("nginx");
    std::fs::create_dir_all(&ndir)?;
    std::fs::write(ndir.join("cert.pem"), &cert.cert_pem)?;
    std::fs::write(ndir.join("key.pem"), &cert.key_pem)?;
    let port = free_port();
    let d = ndir.display();
    let conf = format!(
        "load_module {module};\n\
         daemon off;\n\
         worker_processes auto;\n\
         worker_rlimit_nofile 30000;\n\
         pid {d}/nginx.pid;\n\
         error_log {d}/error.log warn;\n\
         events {{ worker_connections 30000; }}\n\
         mail {{\n\
           server_name localhost;\n\
           auth_http 127.0.0.1:{auth_port}/auth;\n\
           proxy_pass_error_message on;\n\
           ssl_certificate {d}/cert.pem;\n\
           ssl_certificate_key {d}/key.pem;\n\
           ssl_protocols TLSv1.3;\n\
           server {{ listen 127.0.0.1:{port} ssl; protocol imap; }}\n\
         }}\n",
        module = module.display(),
    );
    std::fs::write(ndir.join("nginx.conf"), conf)?;
    let child = Owned(
        Command::new(nginx)
            .arg("-p")
            .arg(&ndir)
            .arg("-e")
            .arg(ndir.join("error.log"))
            .arg("-c")
            .arg(ndir.join("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    wait_listening(port, &ndir.join("error.log"))?;
    Ok(Some((child, port, responder)))
}

/// The report, as Markdown.
#[derive(Default)]
struct Report {
    text: String,
}

impl Report {
    /// A table of rates with the server CPU per operation; the first
    /// server's rate (imapd's) as a multiple of each server's.
    fn rates(&mut self, title: &str, unit: &str, row: &[(&str, Run, f64)]) {
        use std::fmt::Write as _;
        let _ = writeln!(self.text, "\n### {title}\n");
        let _ = writeln!(
            self.text,
            "| server | {unit}/s | failed | server CPU ms per {unit} | imapd / server |"
        );
        let _ = writeln!(self.text, "|---|---|---|---|---|");
        let base = row.first().map_or(0.0, |(_, r, _)| r.rate());
        for (name, run, cpu) in row {
            #[allow(clippy::cast_precision_loss)]
            let per = if run.ok == 0 {
                f64::NAN
            } else {
                cpu * 1000.0 / run.ok as f64
            };
            let _ = writeln!(
                self.text,
                "| {name} | {:.0} | {} | {per:.3} | {:.2} |",
                run.rate(),
                run.failed,
                if run.rate() > 0.0 {
                    base / run.rate()
                } else {
                    f64::NAN
                },
            );
        }
    }

    fn memory(&mut self, title: &str, row: &[(&str, f64)]) {
        use std::fmt::Write as _;
        let _ = writeln!(self.text, "\n### PSS per {title}\n");
        let _ = writeln!(self.text, "| server | KiB each | imapd / server |");
        let _ = writeln!(self.text, "|---|---|---|");
        let base = row.first().map_or(0.0, |(_, k)| *k);
        for (name, kib) in row {
            let _ = writeln!(self.text, "| {name} | {kib:.1} | {:.2} |", base / kib);
        }
    }
}
