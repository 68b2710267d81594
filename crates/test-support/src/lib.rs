//! Test fixtures for Portcullis: real services on loopback.
//!
//! Each fixture starts a real program (OpenLDAP `slapd`, SoftHSM2, Redis) in
//! a scratch folder, on free `127.0.0.1` ports, and stops it by PID:
//!
//! * `Fixture::start()` gives an owned instance, stopped when dropped;
//! * `Fixture::shared()` gives one instance per test binary, started on first
//!   use and stopped when the test process exits, even after failed tests.
//!
//! [`frontend`] sets up one of our own mail front ends (imapd, popd)
//! against the shared slapd and Dovecot fixtures, with the client helpers
//! its end-to-end tests share; [`frontend_config`] writes such a front
//! end's configuration file for tests that start the daemon themselves
//! (reload and metrics), with the HTTP and metric helpers they use.
//!
//! A fixture whose program cannot start panics with a message that says why:
//! tests that need a service fail, they never skip silently.
//!
//! How the "stopped when the process exits" part works without unsafe code:
//! every service runs under a tiny `sh` guard whose standard input is a pipe
//! held by the test process. When the test process ends for any reason, the
//! pipe closes, the guard's `read` returns, and the guard kills the service
//! by its PID.

#![warn(missing_docs)]

pub mod ca;
pub mod daemon;
pub mod dovecot;
pub mod frontend;
pub mod frontend_config;
pub mod postfix;
mod process;
pub mod redis;
pub mod slapd;
pub mod softhsm;
pub mod tls;

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use crate::process::Guarded;

/// Why a fixture could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FixtureError {
    /// A program the fixture needs is not installed.
    #[error(
        "{program} is not installed ({hint}); run the README's test command, which installs it"
    )]
    Missing {
        /// The program.
        program: String,
        /// The Debian package that has it.
        hint: &'static str,
    },
    /// A command failed.
    #[error("{what} failed: {detail}")]
    Command {
        /// What was run.
        what: String,
        /// Its output or exit status.
        detail: String,
    },
    /// The service did not answer in time.
    #[error("{what} did not become ready within {secs} s; log:\n{log}")]
    NotReady {
        /// The service.
        what: String,
        /// How long we waited.
        secs: u64,
        /// The end of its log.
        log: String,
    },
    /// File system trouble in the scratch folder.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Certificate generation failed.
    #[error("certificate generation: {0}")]
    Cert(#[from] rcgen::Error),
}

/// The `key=value` lines of a client script's output, in order (other
/// lines are skipped).
#[must_use]
pub fn key_values(output: &str) -> Vec<(String, String)> {
    output
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The value of `key` in [`key_values`]' result.
///
/// # Panics
/// When there is no such key (the message shows every field).
#[must_use]
pub fn field<'a>(fields: &'a [(String, String)], key: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {key} in {fields:?}"))
}

/// A TCP port on 127.0.0.1 that was free a moment ago, and that this
/// process has not handed out before.
///
/// The port is released before the caller's program binds it, so another
/// process can still take it in between (the fixtures retry on a bind
/// failure). Within one test process, where tests run in parallel, no two
/// callers ever get the same port: otherwise a fixture whose bind failed
/// could mistake another fixture's listener for its own.
///
/// # Panics
/// When the operating system cannot bind any loopback port.
#[must_use]
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed = HANDED_OUT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    loop {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a loopback port");
        let port = l
            .local_addr()
            .expect("local address of a bound socket")
            .port();
        if !handed.contains(&port) {
            handed.push(port);
            return port;
        }
    }
}

/// Finds a program on `PATH` or in the usual system folders.
#[must_use]
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/usr/lib/cyrus/bin"].map(PathBuf::from))
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

pub(crate) fn require(program: &str, hint: &'static str) -> Result<PathBuf, FixtureError> {
    which(program).ok_or_else(|| FixtureError::Missing {
        program: program.to_owned(),
        hint,
    })
}

/// How long a fixture waits for its program to listen: a hang guard for a
/// busy machine, not a speed check (a program that exits ends the wait).
pub(crate) const START_WAIT: Duration = Duration::from_secs(90);

/// Waits until something accepts TCP connections on 127.0.0.1:`port`.
pub(crate) fn wait_for_port(port: u16, timeout: Duration) -> bool {
    wait_for_port_while(port, timeout, || true)
}

/// Waits until `process` accepts TCP connections on 127.0.0.1:`port`;
/// gives up at once when it has exited (a failed bind, a bad option).
pub(crate) fn wait_for_port_of(port: u16, process: &Guarded) -> bool {
    wait_for_port_while(port, START_WAIT, || process.is_running())
}

fn wait_for_port_while(port: u16, timeout: Duration, alive: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if !alive() {
            return false;
        }
        if std::net::TcpStream::connect_timeout(
            &(Ipv4Addr::LOCALHOST, port).into(),
            Duration::from_millis(200),
        )
        .is_ok()
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// Runs a command to completion, turning failure into [`FixtureError`].
pub(crate) fn run(cmd: &mut std::process::Command, what: &str) -> Result<String, FixtureError> {
    let out = cmd.output().map_err(|e| FixtureError::Command {
        what: what.to_owned(),
        detail: e.to_string(),
    })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(FixtureError::Command {
            what: what.to_owned(),
            detail: format!(
                "{}\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        })
    }
}

/// Whether a process with this PID exists (and is not a zombie).
#[must_use]
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // Field 3 is the state; Z = zombie, X = dead.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next());
            !matches!(state, Some("Z" | "X") | None)
        }
        Err(_) => false,
    }
}

/// A number unique within this process (for scratch file names).
pub(crate) fn unique() -> u64 {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}
