//! `smtpd`: the SMTP submission front end. Reads the configuration, binds the
//! listeners, serves until SIGTERM or SIGINT; everything else is
//! `portcullis_frontend` (its `cli` module runs the daemon).
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use portcullis_frontend::Service;
use portcullis_frontend::cli::{self, DEFAULT_CONFIG};

/// The SMTP submission security front end of Portcullis.
#[derive(Debug, Parser)]
#[command(name = "smtpd", version, about)]
struct Args {
    /// The configuration file.
    #[arg(long, value_name = "FILE", env = "PORTCULLIS_CONFIG", default_value = DEFAULT_CONFIG)]
    config: PathBuf,
    /// Validate the configuration and exit: 0 when usable, 2 otherwise.
    #[arg(long)]
    check: bool,
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
    cli::daemon("smtpd", Service::Smtp, &args.config, args.check)
}
