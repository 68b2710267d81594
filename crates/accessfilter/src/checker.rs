//! [`Checker`]: what `filtercheck` reports over files, configuration
//! parameters and LDAP values, with its totals and exit status.

use std::sync::Arc;

use crate::ast::{Action, Filter};
use crate::error::Error;
use crate::eval::NetgroupProvider;
use crate::lint::{Diagnostic, check, check_parameter_actions};
use crate::parse::{parse_file, parse_ldap};
use crate::set::FilterSetBuilder;

/// Exit status when there are warnings and no errors.
pub const EXIT_WARNINGS: u8 = 1;
/// Exit status when there are syntax (or reading) errors.
pub const EXIT_ERRORS: u8 = 2;

/// A provider that only declares that netgroups are configured, so the
/// checks do not warn about `@netgroup` patterns; it answers no query.
#[derive(Debug)]
struct DeclaredNetgroups;

impl NetgroupProvider for DeclaredNetgroups {
    fn contains<'a>(
        &'a self,
        _netgroup: &'a str,
        _host: &'a str,
    ) -> crate::BoxFuture<'a, Option<bool>> {
        Box::pin(async { Some(false) })
    }
}

/// Collects the findings of every source checked, in order, as the lines
/// `filtercheck` prints: syntax errors (`source:line:column: …`) and
/// [`Diagnostic`]s, then a summary ([`Checker::finish`]).
#[derive(Debug, Default)]
pub struct Checker {
    netgroups: bool,
    errors: usize,
    warnings: usize,
    report: String,
}

impl Checker {
    /// A checker; `netgroups`: a netgroup provider is configured (no
    /// warning for `@netgroup`).
    pub fn new(netgroups: bool) -> Self {
        Self {
            netgroups,
            ..Self::default()
        }
    }

    fn builder(&self) -> FilterSetBuilder {
        let b = FilterSetBuilder::new();
        if self.netgroups {
            b.netgroups(Arc::new(DeclaredNetgroups))
        } else {
            b
        }
    }

    fn syntax(&mut self, source: &str, e: &Error) {
        self.errors += 1;
        self.report.push_str(&format!("{source}:{e}\n"));
    }

    fn diags(&mut self, diags: Vec<Diagnostic>) {
        for d in diags {
            self.warnings += 1;
            self.report.push_str(&format!("{d}\n"));
        }
    }

    /// Counts a source that could not be read (the caller says why).
    pub fn unreadable(&mut self) {
        self.errors += 1;
    }

    /// The file-form Allow and Deny filters, each as `(name, text)`,
    /// checked as one set (when both parse).
    pub fn files(&mut self, allow: Option<(&str, &str)>, deny: Option<(&str, &str)>) {
        let mut parsed: Vec<(String, Vec<Filter>)> = Vec::new();
        let mut failed = false;
        for (source, action) in [(allow, Action::Allow), (deny, Action::Deny)] {
            let Some((name, text)) = source else { continue };
            match parse_file(text, action) {
                Ok(f) => parsed.push((name.to_owned(), f)),
                Err(e) => {
                    self.syntax(name, &e);
                    failed = true;
                }
            }
        }
        if failed || self.errors > 0 {
            return;
        }
        let mut b = self.builder();
        for (name, f) in parsed {
            b = b.filters(&name, f);
        }
        self.diags(check(&b.build()));
    }

    /// The filter parameters of one (base) service, as the configuration
    /// parsed them: `(parameter, filters)`. Each parameter's rules are
    /// checked against the action its name promises; the implicit deny is
    /// reported only for `service`.
    pub fn service(
        &mut self,
        service: &str,
        parameters: Vec<(String, Result<Vec<Filter>, Error>)>,
    ) {
        let mut b = self.builder();
        let mut any = false;
        for (parameter, filters) in parameters {
            match filters {
                Ok(f) => {
                    any |= !f.is_empty();
                    let default = if parameter.ends_with("notallowed") {
                        Action::Deny
                    } else {
                        Action::Allow
                    };
                    self.diags(check_parameter_actions(&parameter, default, &f));
                    b = b.filters(&parameter, f);
                }
                Err(e) => self.syntax(&parameter, &e),
            }
        }
        if !any {
            return;
        }
        let set = b.build();
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
        self.diags(diags);
    }

    /// LDAP attribute values (`+imap:ALL$-pop:*`), named `ldap#1`, `ldap#2`, ….
    pub fn ldap(&mut self, values: &[String]) {
        for (i, value) in values.iter().enumerate() {
            let name = format!("ldap#{}", i + 1);
            match parse_ldap(value) {
                Ok(f) => {
                    let set = self.builder().filters(&name, f).build();
                    self.diags(check(&set));
                }
                Err(e) => self.syntax(&name, &e),
            }
        }
    }

    /// The report with its summary line, and the exit status: 0 nothing to
    /// report, [`EXIT_WARNINGS`], or [`EXIT_ERRORS`].
    pub fn finish(mut self) -> (String, u8) {
        let code = if self.errors > 0 {
            self.report.push_str(&format!(
                "{} error(s), {} warning(s)\n",
                self.errors, self.warnings
            ));
            EXIT_ERRORS
        } else if self.warnings > 0 {
            self.report
                .push_str(&format!("{} warning(s)\n", self.warnings));
            EXIT_WARNINGS
        } else {
            self.report.push_str("no problems found\n");
            0
        };
        (self.report, code)
    }
}
