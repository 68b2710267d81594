//! The read-only operations behind `msgcert`'s listing and monitoring
//! subcommands (`list-certs`, `check-expiry`, `list-modules`,
//! `list-tokens`, `list-keys`), as text a command line or an
//! administration task prints. Every string taken from a certificate or a
//! token is escaped ([`terminal_safe`]).

use std::fmt::Write as _;

use time::OffsetDateTime;

use crate::db::{CertDb, CertEntry, expiring};
use crate::ops::format_list;
use crate::password::INTERNAL_TOKEN;
use crate::text::terminal_safe;

/// What a listing or monitoring operation found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// The text for standard output (each line ends in `\n`).
    pub text: String,
    /// Problems that did not stop the operation (a token that could not
    /// be read), one message each.
    pub warnings: Vec<String>,
    /// Something needs the operator's attention (`check-expiry`: a
    /// certificate expires soon; `msgcert` exits 1).
    pub attention: bool,
}

impl Report {
    fn line(&mut self, l: impl AsRef<str>) {
        self.text.push_str(l.as_ref());
        self.text.push('\n');
    }
}

impl CertDb {
    /// The certificates in the directory and on every module's token (a
    /// token that cannot be read is a warning).
    fn all_certificates(&self, report: &mut Report) -> crate::Result<Vec<CertEntry>> {
        let mut all = self.certificates()?;
        let (tok, problems) = self.token_certificates();
        all.extend(tok);
        report.warnings.extend(problems);
        Ok(all)
    }

    /// `list-certs [-C]`: the table of certificates, or only the trusted
    /// CAs (server or client authentication).
    ///
    /// # Errors
    /// The index cannot be read.
    pub fn list_report(&self, ca_only: bool, now: OffsetDateTime) -> crate::Result<Report> {
        let mut r = Report::default();
        let mut all = self.all_certificates(&mut r)?;
        if ca_only {
            all.retain(|e| e.trust.is_trusted_server_ca() || e.trust.is_trusted_client_ca());
        }
        r.text = format_list(&all, now);
        Ok(r)
    }

    /// `check-expiry --days N`: the certificates that expire within `days`
    /// (or have expired); [`Report::attention`] when there is one.
    ///
    /// # Errors
    /// The index cannot be read.
    pub fn expiry_report(&self, days: u32, now: OffsetDateTime) -> crate::Result<Report> {
        let mut r = Report::default();
        let all = self.all_certificates(&mut r)?;
        let soon = expiring(&all, now, days);
        if soon.is_empty() {
            r.line(format!("No certificate expires within {days} days"));
            return Ok(r);
        }
        r.attention = true;
        let f = time::macros::format_description!("[year]/[month]/[day] [hour]:[minute] UTC");
        for e in soon {
            let when = e.info.not_after.format(&f).unwrap_or_default();
            let verb = if e.info.is_expired(now) {
                "expired"
            } else {
                "expires"
            };
            r.line(format!("{}: {verb} on {when}", terminal_safe(&e.nickname)));
        }
        Ok(r)
    }

    /// `list-modules`: the internal token, then each PKCS#11 module.
    pub fn modules_report(&self) -> Report {
        let mut r = Report::default();
        r.line(format!(
            "{INTERNAL_TOKEN}  (built in; the certificate database itself)"
        ));
        for m in self.modules() {
            let tok = m
                .token_label
                .as_deref()
                .map(|t| format!(", token {t:?}"))
                .unwrap_or_default();
            r.line(format!(
                "{}  library {}{tok}",
                terminal_safe(&m.name),
                terminal_safe(&m.library.display().to_string())
            ));
        }
        r
    }

    /// `list-tokens [MODULE]`: the slots and tokens of every module (or
    /// of `only`); a module that cannot be queried is a warning.
    pub fn tokens_report(&self, only: Option<&str>) -> Report {
        let mut r = Report::default();
        r.line(format!(
            "{INTERNAL_TOKEN}: the certificate database in {}",
            self.dir().display()
        ));
        for m in self.modules() {
            if only.is_some_and(|x| x != m.name) {
                continue;
            }
            self.describe_tokens(&m, &mut r);
        }
        r
    }

    #[cfg(feature = "pkcs11")]
    fn describe_tokens(&self, m: &crate::db::Module, r: &mut Report) {
        match crate::pkcs11::list_tokens(m) {
            Ok(tokens) => {
                for t in tokens {
                    let slot = format!(
                        "{}: slot {} ({})",
                        terminal_safe(&m.name),
                        t.slot,
                        terminal_safe(&t.slot_description)
                    );
                    match t.label {
                        Some(l) => r.line(format!(
                            "{slot}: token {l:?}, {}, serial {}",
                            terminal_safe(&t.model.unwrap_or_default()),
                            terminal_safe(&t.serial.unwrap_or_default())
                        )),
                        None => r.line(format!("{slot}: no token present")),
                    }
                }
            }
            Err(e) => r.warnings.push(e.to_string()),
        }
    }

    #[cfg(not(feature = "pkcs11"))]
    fn describe_tokens(&self, m: &crate::db::Module, r: &mut Report) {
        r.warnings.push(crate::ops::no_pkcs11(&m.name).to_string());
    }

    /// `list-keys [--token MODULE]`: the key pairs on every module's token
    /// (or on `only`'s), each marked with whether a certificate uses it;
    /// the keys `request-cert` made whose certificate has not been added
    /// yet are the ones without. A token that cannot be read is a warning.
    ///
    /// # Errors
    /// `only` names no configured module.
    pub fn keys_report(&self, only: Option<&str>) -> crate::Result<Report> {
        let modules = match only {
            Some(name) => vec![self.module(name)?],
            None => self.modules(),
        };
        let mut r = Report::default();
        let mut n = 0usize;
        for m in modules {
            match self.token_keys(&m.name) {
                Ok(keys) => {
                    for (label, has_cert) in keys {
                        n += 1;
                        let what = if has_cert {
                            "certificate"
                        } else {
                            "no certificate"
                        };
                        r.line(format!(
                            "{}:{}  {what}",
                            terminal_safe(&m.name),
                            terminal_safe(&label)
                        ));
                    }
                }
                Err(e) => r.warnings.push(e.to_string()),
            }
        }
        let _ = writeln!(r.text, "{n} key{} found", if n == 1 { "" } else { "s" });
        Ok(r)
    }
}
