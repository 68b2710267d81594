//! A SoftHSM2 token in a scratch folder: a real PKCS#11 module for tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::{FixtureError, Guarded, require, run};

/// Where Debian installs the SoftHSM2 PKCS#11 module.
pub const MODULE_PATHS: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
];

/// An initialised SoftHSM2 token with its own configuration file.
#[derive(Debug)]
pub struct SoftHsm {
    dir: PathBuf,
    conf: PathBuf,
    module: PathBuf,
    label: String,
    // Keeps the shared instance's folder until the test process exits.
    _keeper: Option<Guarded>,
    _tmp: Option<tempfile::TempDir>,
}

/// The token's user PIN.
pub const USER_PIN: &str = "1234";
/// The token's security officer PIN.
pub const SO_PIN: &str = "12345678";

impl SoftHsm {
    /// The token shared by every test of this test binary. Also sets this
    /// process's `SOFTHSM2_CONF`, so a PKCS#11 context opened afterwards in
    /// this process sees the token.
    ///
    /// # Panics
    /// When SoftHSM2 is not installed or the token cannot be created.
    pub fn shared() -> &'static SoftHsm {
        static SHARED: OnceLock<SoftHsm> = OnceLock::new();
        SHARED.get_or_init(|| {
            let hsm = Self::create(true, "portcullis-shared")
                .unwrap_or_else(|e| panic!("the SoftHSM2 test fixture cannot start: {e}"));
            set_conf_env(&hsm.conf);
            hsm
        })
    }

    /// A token of its own (label `portcullis-<n>`), removed when dropped.
    /// The caller passes [`SoftHsm::env`] to child processes, or sets
    /// `SOFTHSM2_CONF` itself.
    ///
    /// # Errors
    /// When SoftHSM2 is not installed or `softhsm2-util` fails.
    pub fn start() -> Result<Self, FixtureError> {
        Self::create(false, &format!("portcullis-{}", crate::unique()))
    }

    fn create(shared: bool, label: &str) -> Result<Self, FixtureError> {
        let util = require("softhsm2-util", "Debian package softhsm2")?;
        let module = MODULE_PATHS
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .ok_or_else(|| FixtureError::Missing {
                program: "libsofthsm2.so".to_owned(),
                hint: "Debian package softhsm2",
            })?;
        let tmp = tempfile::Builder::new()
            .prefix("portcullis-softhsm-")
            .tempdir()?;
        let dir = tmp.path().to_owned();
        std::fs::create_dir(dir.join("tokens"))?;
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
                dir.join("tokens").display()
            ),
        )?;
        run(
            Command::new(&util).env("SOFTHSM2_CONF", &conf).args([
                "--init-token",
                "--free",
                "--label",
                label,
                "--so-pin",
                SO_PIN,
                "--pin",
                USER_PIN,
            ]),
            "softhsm2-util --init-token",
        )?;
        let (keeper, tmp) = if shared {
            // A do-nothing process whose guard removes the folder when the
            // test process exits.
            let tail = require("tail", "Debian package coreutils")?;
            let dir_arg = dir.to_string_lossy().into_owned();
            let keeper = Guarded::spawn(
                "softhsm-keeper",
                &tail,
                &["-f", "/dev/null"],
                &[("PORTCULLIS_FIXTURE_CLEANUP", dir_arg.as_str())],
                &std::env::temp_dir().join(format!(
                    "portcullis-softhsm-keeper-{}.log",
                    std::process::id()
                )),
            )?;
            crate::process::arm_cleanup(&dir)?;
            let _ = tmp.keep();
            (Some(keeper), None)
        } else {
            (None, Some(tmp))
        };
        Ok(Self {
            dir,
            conf,
            module,
            label: label.to_owned(),
            _keeper: keeper,
            _tmp: tmp,
        })
    }

    /// The PKCS#11 module (`libsofthsm2.so`).
    #[must_use]
    pub fn module_path(&self) -> &Path {
        &self.module
    }

    /// The configuration file to use as `SOFTHSM2_CONF`.
    #[must_use]
    pub fn conf_path(&self) -> &Path {
        &self.conf
    }

    /// The scratch folder.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The token's label (find its slot by label: SoftHSM moves it).
    #[must_use]
    pub fn token_label(&self) -> &str {
        &self.label
    }

    /// The user PIN.
    #[must_use]
    pub fn user_pin(&self) -> &'static str {
        USER_PIN
    }

    /// The security officer PIN.
    #[must_use]
    pub fn so_pin(&self) -> &'static str {
        SO_PIN
    }

    /// Environment for child processes that use this token.
    #[must_use]
    pub fn env(&self) -> Vec<(String, String)> {
        vec![(
            "SOFTHSM2_CONF".to_owned(),
            self.conf.to_string_lossy().into_owned(),
        )]
    }
}

#[allow(unsafe_code)]
fn set_conf_env(conf: &Path) {
    // SAFETY: called once, under the OnceLock, before this process opens any
    // PKCS#11 context; the test harness's other threads do not modify the
    // environment. SoftHSM2 reads SOFTHSM2_CONF when a context is opened.
    unsafe { std::env::set_var("SOFTHSM2_CONF", conf) };
}
