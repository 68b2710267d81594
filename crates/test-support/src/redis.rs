//! A throwaway Redis server on loopback.

use std::path::PathBuf;
use std::sync::OnceLock;

use crate::{FixtureError, Guarded, free_port, require, wait_for_port_of};

/// A running (or stopped, restartable) redis-server.
#[derive(Debug)]
pub struct Redis {
    process: Option<Guarded>,
    port: u16,
    password: Option<String>,
    dir: PathBuf,
    shared: bool,
    /// The cluster bus port, for a node of a [`RedisCluster`].
    cluster_bus: Option<u16>,
    _tmp: Option<tempfile::TempDir>,
}

impl Redis {
    /// The server shared by every test of this test binary.
    ///
    /// # Panics
    /// When redis-server cannot start.
    pub fn shared() -> &'static Redis {
        static SHARED: OnceLock<Redis> = OnceLock::new();
        SHARED.get_or_init(|| {
            Self::launch(None, true)
                .unwrap_or_else(|e| panic!("the Redis test fixture cannot start: {e}"))
        })
    }

    /// A server of its own, stopped when dropped.
    ///
    /// # Errors
    /// When redis-server is not installed or does not start.
    pub fn start() -> Result<Self, FixtureError> {
        Self::launch(None, false)
    }

    /// A server of its own that requires `AUTH password`.
    ///
    /// # Errors
    /// As [`Redis::start`].
    pub fn start_with_password(password: &str) -> Result<Self, FixtureError> {
        Self::launch(Some(password.to_owned()), false)
    }

    fn launch(password: Option<String>, shared: bool) -> Result<Self, FixtureError> {
        Self::launch_node(password, shared, false)
    }

    fn launch_node(
        password: Option<String>,
        shared: bool,
        cluster: bool,
    ) -> Result<Self, FixtureError> {
        let tmp = tempfile::Builder::new()
            .prefix("portcullis-redis-")
            .tempdir()?;
        let mut last = None;
        for _ in 0..5 {
            let mut redis = Self {
                process: None,
                port: free_port(),
                password: password.clone(),
                dir: tmp.path().to_owned(),
                shared,
                cluster_bus: cluster.then(free_port),
                _tmp: None,
            };
            match redis.spawn() {
                Ok(()) => {
                    redis._tmp = if shared {
                        crate::process::arm_cleanup(tmp.path())?;
                        let _ = tmp.keep();
                        None
                    } else {
                        Some(tmp)
                    };
                    return Ok(redis);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| FixtureError::NotReady {
            what: "redis-server".to_owned(),
            secs: crate::START_WAIT.as_secs(),
            log: String::new(),
        }))
    }

    fn spawn(&mut self) -> Result<(), FixtureError> {
        let server = require("redis-server", "Debian package redis-server")?;
        let port = self.port.to_string();
        let dir = self.dir.to_string_lossy().into_owned();
        let mut args = vec![
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &dir,
            "--protected-mode",
            "yes",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ];
        if let Some(pw) = &self.password {
            args.extend(["--requirepass", pw.as_str()]);
        }
        let bus = self.cluster_bus.map(|p| p.to_string());
        if let Some(bus) = &bus {
            args.extend([
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                bus.as_str(),
                "--cluster-config-file",
                "nodes.conf",
            ]);
        }
        let cleanup: &[(&str, &str)] = if self.shared {
            &[("PORTCULLIS_FIXTURE_CLEANUP", dir.as_str())]
        } else {
            &[]
        };
        let process = Guarded::spawn(
            "redis-server",
            &server,
            &args,
            cleanup,
            &self.dir.join(format!("redis-{}.log", crate::unique())),
        )?;
        if wait_for_port_of(self.port, &process) {
            self.process = Some(process);
            Ok(())
        } else {
            Err(FixtureError::NotReady {
                what: "redis-server".to_owned(),
                secs: crate::START_WAIT.as_secs(),
                log: process.log_tail(),
            })
        }
    }

    /// `redis://127.0.0.1:PORT/` (with the password when there is one).
    #[must_use]
    pub fn url(&self) -> String {
        match &self.password {
            Some(pw) => format!("redis://:{pw}@127.0.0.1:{}/", self.port),
            None => format!("redis://127.0.0.1:{}/", self.port),
        }
    }

    /// The port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's PID, while it runs.
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Guarded::pid)
    }

    /// Whether the server is running.
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.process.as_ref().is_some_and(Guarded::is_running)
    }

    /// Stops the server (its data is lost: nothing is saved).
    pub fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.stop();
        }
    }

    /// Stops the server if it runs and starts it again on the same port.
    ///
    /// # Errors
    /// When it does not come back.
    pub fn restart(&mut self) -> Result<(), FixtureError> {
        self.stop();
        self.spawn()
    }
}

/// A throwaway Redis Cluster: `n` masters on loopback, no replicas, every
/// hash slot assigned (`redis-cli --cluster create`). Stopped on drop.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<Redis>,
}

impl RedisCluster {
    /// Starts `n` (at least 3, as `redis-cli --cluster create` requires)
    /// nodes and joins them; returns once every node reports
    /// `cluster_state:ok`.
    ///
    /// # Errors
    /// When redis-server or redis-cli is missing, or the cluster does not form.
    pub fn start(n: usize) -> Result<Self, FixtureError> {
        let cli = require("redis-cli", "Debian package redis-tools")?;
        let mut nodes = Vec::with_capacity(n);
        for _ in 0..n.max(3) {
            nodes.push(Redis::launch_node(None, false, true)?);
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|r| format!("127.0.0.1:{}", r.port))
            .collect();
        let mut create = std::process::Command::new("timeout");
        create
            .arg("60")
            .arg(&cli)
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"]);
        crate::run(&mut create, "redis-cli --cluster create")?;
        let deadline = std::time::Instant::now() + crate::START_WAIT;
        for node in &nodes {
            loop {
                let info = crate::run(
                    std::process::Command::new("timeout")
                        .arg("10")
                        .arg(&cli)
                        .args(["-p", &node.port.to_string(), "cluster", "info"]),
                    "redis-cli cluster info",
                )
                .unwrap_or_default();
                if info.contains("cluster_state:ok") {
                    break;
                }
                if std::time::Instant::now() >= deadline {
                    return Err(FixtureError::NotReady {
                        what: "redis cluster".to_owned(),
                        secs: crate::START_WAIT.as_secs(),
                        log: info,
                    });
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
        Ok(Self { nodes })
    }

    /// `redis://127.0.0.1:PORT/` of every node.
    #[must_use]
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(Redis::url).collect()
    }

    /// The nodes.
    #[must_use]
    pub fn nodes(&self) -> &[Redis] {
        &self.nodes
    }
}
