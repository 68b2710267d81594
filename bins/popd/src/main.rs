//! `popd`: the POP3 front end. Reads the configuration, binds the
//! listeners, serves until SIGTERM or SIGINT; everything else is
//! `portcullis_frontend`.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use portcullis_frontend::Service;

/// The POP3 security front end of Portcullis.
#[derive(Debug, Parser)]
#[command(name = "popd", version, about)]
struct Args {
    /// The configuration file.
    #[arg(
        long,
        value_name = "FILE",
        env = "PORTCULLIS_CONFIG",
        default_value = "/etc/portcullis/portcullis.toml"
    )]
    config: PathBuf,
    /// Validate the configuration and exit: 0 when usable, 2 otherwise.
    #[arg(long)]
    check: bool,
}

/// Tells systemd the service is ready, when it started us with
/// `NOTIFY_SOCKET` (sd_notify's `READY=1` datagram).
fn notify_ready() {
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

/// Completes on SIGTERM or SIGINT.
async fn terminated() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
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

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("popd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The check runs inside the runtime, as the daemon's setup does (a
    // Redis client needs one).
    if args.check {
        return match runtime
            .block_on(async { portcullis_frontend::check(Service::Pop, &args.config) })
        {
            Ok(()) => {
                println!("{}: configuration OK", args.config.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{}: {e}", args.config.display());
                ExitCode::from(2)
            }
        };
    }
    let result = runtime.block_on(portcullis_frontend::run(
        Service::Pop,
        &args.config,
        notify_ready,
        terminated(),
    ));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "popd stopped");
            eprintln!("popd: {e}");
            ExitCode::from(2)
        }
    }
}
