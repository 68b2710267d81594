//! `filtercheck`: syntax errors and likely mistakes in client access
//! filters (like tcp_wrappers' `tcpdchk`).
//!
//! Reports syntax errors (with line:column and the offending token),
//! unknown service names, filters that can never match or are shadowed by
//! an earlier one, netgroups without a provider, and services where only
//! Allow filters apply (the implicit deny). Exits 0 when there is nothing
//! to report, 1 when there are warnings, 2 on syntax or usage errors.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use portcullis_accessfilter::SERVICE_NAMES;
use portcullis_accessfilter::lint::{Checker, EXIT_ERRORS};

/// Check client access filters for errors and likely mistakes.
#[derive(Debug, Parser)]
#[command(name = "filtercheck", version)]
struct Args {
    /// Allow filters, file form.
    #[arg(long, value_name = "FILE")]
    allow: Option<PathBuf>,
    /// Deny filters, file form.
    #[arg(long, value_name = "FILE")]
    deny: Option<PathBuf>,
    /// Check `service.<svc>.domainallowed` / `domainnotallowed` of every
    /// service in this Portcullis configuration file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Check an LDAP attribute value (`+imap:ALL$-pop:*`); may be repeated.
    #[arg(long, value_name = "VALUE")]
    ldap: Vec<String>,
    /// A netgroup provider is configured (do not warn about @netgroup).
    #[arg(long)]
    netgroups: bool,
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_ERRORS } else { 0 });
        }
    };
    ExitCode::from(run(&args))
}

/// A filter file's name and text; `None` (said on standard error, and
/// counted as an error) when it cannot be read.
fn read(path: Option<&Path>, checker: &mut Checker) -> Option<(String, String)> {
    let name = path?.display().to_string();
    match std::fs::read_to_string(path?) {
        Ok(text) => Some((name, text)),
        Err(e) => {
            eprintln!("filtercheck: {name}: {e}");
            checker.unreadable();
            None
        }
    }
}

fn run(args: &Args) -> u8 {
    if args.allow.is_none() && args.deny.is_none() && args.config.is_none() && args.ldap.is_empty()
    {
        eprintln!(
            "filtercheck: nothing to check: give --allow/--deny, --config or --ldap (see --help)"
        );
        return EXIT_ERRORS;
    }
    let mut checker = Checker::new(args.netgroups);
    if args.allow.is_some() || args.deny.is_some() {
        let allow = read(args.allow.as_deref(), &mut checker);
        let deny = read(args.deny.as_deref(), &mut checker);
        checker.files(
            allow.as_ref().map(|(n, t)| (n.as_str(), t.as_str())),
            deny.as_ref().map(|(n, t)| (n.as_str(), t.as_str())),
        );
    }
    if let Some(path) = &args.config {
        match portcullis_config::Config::load(path) {
            Err(e) => {
                eprintln!("filtercheck: {}: {e}", path.display());
                checker.unreadable();
            }
            // The parameters are per base service (IMAPS is governed by
            // service.imap.*).
            Ok(cfg) => {
                for service in SERVICE_NAMES.map(|(base, _)| base) {
                    let parameters = cfg.service_filters(service).unwrap_or_default();
                    checker.service(
                        service,
                        parameters
                            .into_iter()
                            .map(|sf| (sf.parameter, sf.filters))
                            .collect(),
                    );
                }
            }
        }
    }
    checker.ldap(&args.ldap);
    let (report, code) = checker.finish();
    print!("{report}");
    code
}
