//! `filtercheck`: syntax errors and likely mistakes in client access
//! filters (like tcp_wrappers' `tcpdchk`).
//!
//! Reports syntax errors (with line:column and the offending token),
//! unknown service names, filters that can never match or are shadowed by
//! an earlier one, netgroups without a provider, and services where only
//! Allow filters apply (the implicit deny). Exits 0 when there is nothing
//! to report, 1 when there are warnings, 2 on syntax or usage errors.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use portcullis_accessfilter::lint::{Diagnostic, check, check_parameter_actions};
use portcullis_accessfilter::{
    Action, Error, Filter, FilterSetBuilder, NetgroupProvider, SERVICE_NAMES, parse_file,
    parse_ldap,
};

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

#[derive(Debug)]
struct DeclaredNetgroups;

impl NetgroupProvider for DeclaredNetgroups {
    fn contains<'a>(
        &'a self,
        _netgroup: &'a str,
        _host: &'a str,
    ) -> portcullis_accessfilter::BoxFuture<'a, Option<bool>> {
        Box::pin(async { Some(false) })
    }
}

const EXIT_WARNINGS: u8 = 1;
const EXIT_ERRORS: u8 = 2;

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

struct Report {
    errors: usize,
    warnings: usize,
}

impl Report {
    fn syntax(&mut self, source: &str, e: &Error) {
        self.errors += 1;
        println!("{source}:{e}");
    }

    fn diags(&mut self, diags: Vec<Diagnostic>) {
        for d in diags {
            self.warnings += 1;
            println!("{d}");
        }
    }
}

fn builder(args: &Args) -> FilterSetBuilder {
    let b = FilterSetBuilder::new();
    if args.netgroups {
        b.netgroups(Arc::new(DeclaredNetgroups))
    } else {
        b
    }
}

fn file(path: &PathBuf, action: Action, report: &mut Report) -> Option<(String, Vec<Filter>)> {
    let name = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => match parse_file(&text, action) {
            Ok(f) => Some((name, f)),
            Err(e) => {
                report.syntax(&name, &e);
                None
            }
        },
        Err(e) => {
            eprintln!("filtercheck: {name}: {e}");
            report.errors += 1;
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
    let mut report = Report {
        errors: 0,
        warnings: 0,
    };
    if args.allow.is_some() || args.deny.is_some() {
        let allow = args
            .allow
            .as_ref()
            .and_then(|p| file(p, Action::Allow, &mut report));
        let deny = args
            .deny
            .as_ref()
            .and_then(|p| file(p, Action::Deny, &mut report));
        let mut b = builder(args);
        if let Some((n, f)) = allow {
            b = b.filters(&n, f);
        }
        if let Some((n, f)) = deny {
            b = b.filters(&n, f);
        }
        if report.errors == 0 {
            report.diags(check(&b.build()));
        }
    }
    if let Some(path) = &args.config {
        match portcullis_config::Config::load(path) {
            Err(e) => {
                eprintln!("filtercheck: {}: {e}", path.display());
                report.errors += 1;
            }
            Ok(cfg) => {
                // The parameters are per base service (IMAPS is governed by
                // service.imap.*).
                for service in SERVICE_NAMES.map(|(base, _)| base) {
                    let mut b = builder(args);
                    let mut any = false;
                    for sf in cfg.service_filters(service).unwrap_or_default() {
                        match sf.filters {
                            Ok(f) => {
                                any |= !f.is_empty();
                                let default = if sf.parameter.ends_with("notallowed") {
                                    Action::Deny
                                } else {
                                    Action::Allow
                                };
                                report.diags(check_parameter_actions(&sf.parameter, default, &f));
                                b = b.filters(&sf.parameter, f);
                            }
                            Err(e) => report.syntax(&sf.parameter, &e),
                        }
                    }
                    if any {
                        let set = b.build();
                        // Report the implicit deny only for this service.
                        let diags = check(&set)
                            .into_iter()
                            .filter(|d| d.line > 0 || set.is_allow_only_for(service))
                            .map(|mut d| {
                                if d.line == 0 {
                                    d.message = format!(
                                        "{}: only Allow filters apply to {service}: a client that matches none of them is denied (implicit deny)",
                                        d.source
                                    );
                                }
                                d
                            })
                            .collect();
                        report.diags(diags);
                    }
                }
            }
        }
    }
    for (i, value) in args.ldap.iter().enumerate() {
        let name = format!("ldap#{}", i + 1);
        match parse_ldap(value) {
            Ok(f) => report.diags(check(&builder(args).filters(&name, f).build())),
            Err(e) => report.syntax(&name, &e),
        }
    }
    if report.errors > 0 {
        println!("{} error(s), {} warning(s)", report.errors, report.warnings);
        EXIT_ERRORS
    } else if report.warnings > 0 {
        println!("{} warning(s)", report.warnings);
        EXIT_WARNINGS
    } else {
        println!("no problems found");
        0
    }
}
