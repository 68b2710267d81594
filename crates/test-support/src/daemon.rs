//! One of our own daemons (popd, imapd, ...) under test: started from its
//! binary with a configuration file, its standard error collected, waited
//! on by log line (never by sleeping), killed by its PID when dropped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::FixtureError;

/// How long [`DaemonLog::wait_for`] waits: a hang guard, not a
/// synchronisation delay.
pub const LOG_WAIT: Duration = Duration::from_secs(60);

/// A daemon's standard error, collected by a reader thread.
#[derive(Debug, Default)]
pub struct DaemonLog {
    text: Mutex<String>,
    grew: Condvar,
}

impl DaemonLog {
    /// Waits until `needle` occurs `count` times; the log so far.
    ///
    /// # Panics
    /// When it does not within [`LOG_WAIT`] (the message shows the log).
    pub fn wait_for(&self, needle: &str, count: usize) -> String {
        let deadline = Instant::now() + LOG_WAIT;
        let mut text = self.text.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if text.matches(needle).count() >= count {
                return text.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no {needle:?} in the daemon's log:\n{text}"
            );
            text = self
                .grew
                .wait_timeout(text, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// The log so far.
    pub fn text(&self) -> String {
        self.text
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn push(&self, line: &str) {
        let mut text = self.text.lock().unwrap_or_else(PoisonError::into_inner);
        text.push_str(line);
        text.push('\n');
        self.grew.notify_all();
    }
}

/// Runs `program --check --config CONFIG` (the daemons' configuration
/// check) to its end.
///
/// # Errors
/// When the program cannot be started.
pub fn check(program: &Path, config: &Path) -> std::io::Result<std::process::Output> {
    Command::new(program)
        .args(["--check", "--config"])
        .arg(config)
        .output()
}

/// A running daemon, killed (by its PID) when dropped.
#[derive(Debug)]
pub struct Daemon {
    child: Child,
    log: Arc<DaemonLog>,
}

impl Daemon {
    /// Starts `program --config CONFIG` with `RUST_LOG=info` and `envs`,
    /// its standard error collected into [`Daemon::log`].
    ///
    /// # Errors
    /// When the program cannot be started.
    pub fn spawn(
        program: &Path,
        config: &Path,
        envs: &[(&str, &std::ffi::OsStr)],
    ) -> Result<Self, FixtureError> {
        let mut command = Command::new(program);
        for (k, v) in envs {
            command.env(k, v);
        }
        let mut child = command
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let log = Arc::new(DaemonLog::default());
        if let Some(stderr) = child.stderr.take() {
            let sink = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    sink.push(&line);
                }
            });
        }
        Ok(Self { child, log })
    }

    /// The daemon's standard error.
    pub fn log(&self) -> &DaemonLog {
        &self.log
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends it `signal` (`HUP`, `TERM`, …) with `kill`, by its PID.
    ///
    /// # Errors
    /// When `kill` cannot run or fails.
    pub fn signal(&self, signal: &str) -> Result<(), FixtureError> {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(FixtureError::Command {
                what: format!("kill -{signal} {}", self.pid()),
                detail: status.to_string(),
            })
        }
    }

    /// The TCP ports it listens on now (IPv4 and IPv6), sorted: its
    /// socket descriptors matched against the kernel's listening sockets.
    ///
    /// # Errors
    /// When `/proc` cannot be read.
    pub fn listening_ports(&self) -> Result<Vec<u16>, FixtureError> {
        let pid = self.pid();
        let mut inodes = Vec::new();
        for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))? {
            let Ok(target) = std::fs::read_link(entry?.path()) else {
                continue;
            };
            let target = target.to_string_lossy().into_owned();
            if let Some(inode) = target
                .strip_prefix("socket:[")
                .and_then(|t| t.strip_suffix(']'))
            {
                inodes.push(inode.to_owned());
            }
        }
        let mut ports = Vec::new();
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            let text = std::fs::read_to_string(table)?;
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            for line in text.lines().skip(1) {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let (Some(local), Some(state), Some(inode)) =
                    (fields.get(1), fields.get(3), fields.get(9))
                else {
                    continue;
                };
                // 0A: LISTEN.
                if *state != "0A" || !inodes.iter().any(|i| i == inode) {
                    continue;
                }
                if let Some(port) = local
                    .rsplit_once(':')
                    .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
                {
                    ports.push(port);
                }
            }
        }
        ports.sort_unstable();
        ports.dedup();
        Ok(ports)
    }

    /// Waits for it to exit.
    ///
    /// # Errors
    /// When waiting fails.
    pub fn wait(&mut self) -> std::io::Result<ExitStatus> {
        self.child.wait()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
