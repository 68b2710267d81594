//! What the daemons' `main` shares once the arguments are parsed: the
//! runtime, `--check`, the run until SIGTERM or SIGINT, reloads on
//! SIGHUP, and the systemd readiness notification.
//!
//! ```text
//! main ─► args (clap, in the binary) ─► tracing subscriber (in the binary)
//!      ─► cli::daemon(name, service, config, check)
//!           --check: check() inside the runtime ─► exit 0, or 2 with the reason
//!           else:    run() ─► READY=1 to $NOTIFY_SOCKET ─► SIGHUP: reload
//!                          ─► SIGTERM/SIGINT ─► exit 0
//! ```

use std::path::Path;
use std::process::ExitCode;

use portcullis_tlsconf::Service;

/// Where the configuration is read from when neither `--config` nor
/// `$PORTCULLIS_CONFIG` names it.
pub const DEFAULT_CONFIG: &str = "/etc/portcullis/portcullis.toml";

/// The exit code of a configuration that cannot be used.
const EXIT_CONFIG: u8 = 2;

/// Tells systemd the service is ready, when it started us with
/// `NOTIFY_SOCKET` (sd_notify's `READY=1` datagram; an abstract socket
/// when the name starts with `@`).
pub fn notify_ready() {
    use std::os::unix::net::UnixDatagram;
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sent = UnixDatagram::unbound().and_then(|socket| {
        let bytes = path.as_encoded_bytes();
        if let Some(name) = bytes.strip_prefix(b"@") {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            socket.send_to_addr(b"READY=1", &addr)
        } else {
            socket.send_to(b"READY=1", &path)
        }
    });
    if let Err(e) = sent {
        tracing::warn!(error = %e, "systemd readiness notification failed");
    }
}

/// Installs the SIGTERM and SIGINT handlers now and returns a future that
/// completes on either. The handlers are in place when this returns, not
/// when the future is first polled, so a signal sent as soon as readiness
/// is announced is never taken by the default action (ending the process
/// without the goodbye to its clients).
///
/// Call it inside the runtime (the handlers need its reactor).
pub fn terminated() -> impl Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let handlers = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move {
        match handlers {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = int.recv() => {},
                }
            }
            _ => {
                tracing::warn!("no signal handlers; stop with SIGKILL");
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Installs the SIGHUP handler now (for the reason given at
/// [`terminated`]: a SIGHUP sent right after readiness must reload, not
/// end the process) and returns the reload requests it makes. Several
/// SIGHUPs during one reload ask for one more.
///
/// Call it inside the runtime (the handler needs its reactor).
pub fn hangups() -> crate::Reloads {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "no SIGHUP handler; configuration reload disabled");
            return crate::Reloads::none();
        }
    };
    let (requests, reloads) = crate::Reloads::channel();
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            if let Err(tokio::sync::mpsc::error::TrySendError::Closed(())) = requests.try_send(()) {
                break;
            }
        }
    });
    reloads
}

/// A daemon's life after argument parsing: with `check`, validates the
/// configuration (exit 0, or 2 with the reason on stderr); otherwise
/// runs `service` until SIGTERM or SIGINT, reloading on SIGHUP (exit 0; 2 when the
/// configuration or a listener cannot be used). `name` prefixes the
/// messages on stderr.
#[must_use]
pub fn daemon(name: &str, service: Service, config: &Path, check: bool) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{name}: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The check runs inside the runtime, as the daemon's setup does (a
    // Redis client needs one).
    if check {
        return match runtime.block_on(async { crate::check(service, config) }) {
            Ok(()) => {
                println!("{}: configuration OK", config.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{}: {e}", config.display());
                ExitCode::from(EXIT_CONFIG)
            }
        };
    }
    let result = runtime.block_on(async {
        // Before anything is bound or announced: see `terminated`.
        let shutdown = terminated();
        let reloads = hangups();
        crate::run(service, config, notify_ready, shutdown, reloads).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "{name} stopped");
            eprintln!("{name}: {e}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}
