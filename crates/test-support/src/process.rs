//! Running a service under a guard that kills it when the test process ends.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{FixtureError, pid_alive};

/// A service process started under a guard.
///
/// Dropping it (or calling [`Guarded::stop`]) sends SIGTERM to the service,
/// then SIGKILL if it is still there after five seconds, and waits until it is
/// gone. If the test process ends first, the guard does the killing.
#[derive(Debug)]
pub struct Guarded {
    name: String,
    pid: u32,
    guard: Option<Child>,
    stdin: Option<ChildStdin>,
    log: PathBuf,
}

const GUARD: &str = r#"
"$@" </dev/null >>"$PORTCULLIS_FIXTURE_LOG" 2>&1 &
child=$!
echo "$child"
read -r _ignored
kill -TERM "$child" 2>/dev/null
i=0
while kill -0 "$child" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
kill -KILL "$child" 2>/dev/null
wait "$child" 2>/dev/null
c="${PORTCULLIS_FIXTURE_CLEANUP:-}"
if [ -n "$c" ] && [ -e "$c/.remove-on-exit" ]; then rm -rf "$c"; fi
"#;

/// Arms the guard's clean-up of `dir` (the `PORTCULLIS_FIXTURE_CLEANUP`
/// folder): until this is called, a guard leaves the folder alone, so a
/// failed start can be retried in the same folder and its log read.
///
/// # Errors
/// When the marker file cannot be written.
pub(crate) fn arm_cleanup(dir: &Path) -> Result<(), FixtureError> {
    File::create(dir.join(".remove-on-exit"))?;
    Ok(())
}

impl Guarded {
    /// Starts `program args...` with its output appended to `log`.
    ///
    /// # Errors
    /// When the guard shell cannot start or does not report the PID.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[&str],
        envs: &[(&str, &str)],
        log: &Path,
    ) -> Result<Self, FixtureError> {
        File::create(log)?;
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(GUARD)
            .arg("portcullis-fixture-guard")
            .arg(program)
            .args(args)
            .env("PORTCULLIS_FIXTURE_LOG", log)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut guard = cmd.spawn().map_err(|e| FixtureError::Command {
            what: format!("starting {name}"),
            detail: e.to_string(),
        })?;
        let stdout = guard.stdout.take().ok_or_else(|| FixtureError::Command {
            what: format!("starting {name}"),
            detail: "no stdout pipe".to_owned(),
        })?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let pid: u32 = line.trim().parse().map_err(|_| FixtureError::Command {
            what: format!("starting {name}"),
            detail: format!("guard printed {line:?} instead of a PID"),
        })?;
        Ok(Self {
            name: name.to_owned(),
            pid,
            stdin: guard.stdin.take(),
            guard: Some(guard),
            log: log.to_owned(),
        })
    }

    /// The service's PID.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the service is still running.
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.guard.is_some() && pid_alive(self.pid)
    }

    /// The last lines of the service's log.
    #[must_use]
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Stops the service and waits until it is gone. Idempotent.
    pub fn stop(&mut self) {
        // Closing the guard's stdin makes it kill the service by PID.
        drop(self.stdin.take());
        if let Some(mut guard) = self.guard.take() {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match guard.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    _ => {
                        let _ = Command::new("kill")
                            .args(["-KILL", &self.pid.to_string()])
                            .status();
                        let _ = guard.kill();
                        let _ = guard.wait();
                        break;
                    }
                }
            }
        }
        tracing_free_log(&self.name, self.pid);
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.stop();
    }
}

fn tracing_free_log(name: &str, pid: u32) {
    if pid_alive(pid) {
        eprintln!("warning: fixture {name} (pid {pid}) is still alive after stop");
    }
}
