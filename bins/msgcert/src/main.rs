//! `msgcert`: manages the Portcullis certificate database.
//!
//! Usage: `msgcert SUBCMD [GLOBAL_OPTS] [SUBCMD_OPTS] [SUBCMD_OPERANDS]`
//!
//! Each subcommand is one operation of `portcullis-certdb`; this program
//! parses the arguments, finds the passwords and prints what the operation
//! returns. Exit status: 0 success, 1 (`check-expiry`) something expires
//! soon, 2 error.
#![forbid(unsafe_code)]

mod args;

use std::io::{IsTerminal as _, Write as _};
use std::path::Path;
use std::process::ExitCode;

use args::{Cli, Cmd, Format, open_for_write, open_read_only, p12_password, validity};
use clap::Parser as _;
use portcullis_certdb::{
    CertDb, Error, KdfParams, Password, Report, TrustFlags, describe, read_input, request_pem,
    terminal_safe, write_private_file,
};
use time::OffsetDateTime;

/// `data` to the file `path` (owner-only, atomically), else to standard
/// output.
fn write_output(path: Option<&Path>, data: &[u8]) -> Result<(), Error> {
    match path {
        Some(p) => write_private_file(p, data),
        None => std::io::stdout().write_all(data).map_err(|e| Error::Io {
            action: "writing",
            path: "standard output".into(),
            source: e,
        }),
    }
}

/// Prints a listing: warnings on standard error, exit 1 when it needs
/// attention.
fn print(r: Report) -> ExitCode {
    for w in &r.warnings {
        eprintln!("msgcert: warning: {w}");
    }
    print!("{}", r.text);
    ExitCode::from(u8::from(r.attention))
}

fn run(cli: Cli) -> Result<ExitCode, Error> {
    let g = &cli.global;
    let now = OffsetDateTime::now_utc();
    let self_signed = matches!(cli.cmd, Cmd::ImportSelfsignCert { .. });
    match cli.cmd {
        Cmd::GenerateCertDb {
            key,
            insecure_fast_kdf,
        } => {
            if CertDb::exists(&g.dir) {
                return Err(Error::AlreadyExists(g.dir.clone()));
            }
            let pw = match &g.password_file {
                Some(f) => Password::from_file(f)?,
                None if std::io::stdin().is_terminal() => args::prompt_new("certificate database")?,
                None => {
                    println!(
                        "No terminal: generated a random password; it is in sslpassword.conf."
                    );
                    Password::generate()?
                }
            };
            let kdf = if insecure_fast_kdf {
                KdfParams::INSECURE_FAST
            } else {
                KdfParams::DEFAULT
            };
            CertDb::generate(&g.dir, &pw, kdf, key.key_type.into())?;
            println!("Certificate database created in {}", g.dir.display());
            println!(
                "Self-signed certificate {} created",
                portcullis_certdb::DEFAULT_SERVER_CERT
            );
        }
        Cmd::AddCert {
            ca,
            trust,
            alias,
            cert_file,
        } => {
            let (mut db, _) = open_for_write(g)?;
            let flags = match (ca, trust) {
                (true, _) => TrustFlags::trusted_ca(),
                (false, Some(t)) => t.parse()?,
                (false, None) => TrustFlags::default(),
            };
            for a in db.add_certificates(&alias, &read_input(&cert_file)?, flags)? {
                println!("Certificate {} added", terminal_safe(&a));
            }
        }
        Cmd::AddSelfsignCert {
            name,
            validity: v,
            key,
            alias,
        } => {
            let (mut db, pw) = open_for_write(g)?;
            let subject = name.subject(Some(portcullis_certdb::host_name()))?;
            db.add_self_signed(&pw, &alias, &subject, validity(v), key.key_type.into())?;
            println!(
                "Self-signed certificate {alias} created for {}",
                subject.as_str()
            );
        }
        Cmd::ExportCert {
            output,
            p12_password_file,
            alias,
        } => {
            let (db, pw) = open_for_write(g)?;
            let p12pw = p12_password(&p12_password_file, true)?;
            write_output(output.as_deref(), &db.export_pkcs12(&pw, &alias, &p12pw)?)?;
            if let Some(o) = output {
                println!("Certificate {alias} exported to {}", o.display());
            }
        }
        Cmd::ImportCert {
            p12_password_file,
            alias,
            cert_file,
        }
        | Cmd::ImportSelfsignCert {
            p12_password_file,
            alias,
            cert_file,
        } => {
            let (mut db, pw) = open_for_write(g)?;
            let data = read_input(&cert_file)?;
            let p12pw = p12_password(&p12_password_file, false)?;
            for a in db.import_pkcs12(&pw, &data, &p12pw, alias.as_deref(), self_signed)? {
                println!("Certificate {} imported", terminal_safe(&a));
            }
        }
        Cmd::ListCerts { ca } => return Ok(print(open_read_only(g)?.list_report(ca, now)?)),
        Cmd::RemoveCert { alias } => {
            open_for_write(g)?.0.remove_nickname(&alias)?;
            println!("Certificate {alias} removed");
        }
        Cmd::RenewCert { alias, cert_file } => {
            let (mut db, _) = open_for_write(g)?;
            db.renew_certificate(&alias, &read_input(&cert_file)?)?;
            println!("Certificate {alias} renewed");
        }
        Cmd::RenewSelfsignCert { validity: v, alias } => {
            let (mut db, pw) = open_for_write(g)?;
            db.renew_self_signed(&pw, &alias, validity(v))?;
            println!("Self-signed certificate {alias} renewed");
        }
        Cmd::RequestCert {
            name,
            format,
            output,
            key,
            token,
            label,
        } => {
            let (mut db, pw) = open_for_write(g)?;
            let subject = name.subject(None)?;
            let label =
                label.unwrap_or_else(|| name.name.clone().unwrap_or_else(|| "request".into()));
            let tok = token.as_deref().map(|m| (m, label.as_str()));
            let der = db.request_certificate(&pw, &subject, key.key_type.into(), tok)?;
            let data = match format {
                Format::Binary => der,
                Format::Ascii => request_pem(&der).into_bytes(),
            };
            write_output(output.as_deref(), &data)?;
        }
        Cmd::ShowCert { alias } => {
            let e = open_read_only(g)?.find(&alias)?;
            print!("{}", describe(&e.nickname, &e.info.der, e.trust)?);
        }
        Cmd::ModifyTrust { alias, flags } => {
            let trust: TrustFlags = flags.parse()?;
            let (mut db, _) = open_for_write(g)?;
            db.set_trust(&alias, trust)?;
            println!(
                "Trust flags of {alias} set to {}",
                db.certificate(&alias)?.trust
            );
        }
        Cmd::ListModules => return Ok(print(CertDb::open(&g.dir)?.modules_report())),
        Cmd::AddModule {
            token_label,
            pin_file,
            name,
            library,
        } => {
            let (mut db, _) = open_for_write(g)?;
            db.add_module(&name, &library, token_label.as_deref())?;
            if let Some(f) = pin_file {
                db.set_module_password(&name, Password::from_file(&f)?)?;
            }
            println!("Module {name} added");
        }
        Cmd::ListTokens { module } => {
            return Ok(print(
                CertDb::open(&g.dir)?.tokens_report(module.as_deref()),
            ));
        }
        Cmd::ListKeys { token } => {
            return Ok(print(open_read_only(g)?.keys_report(token.as_deref())?));
        }
        Cmd::RemoveKey { token, label } => {
            open_for_write(g)?.0.remove_token_key(&token, &label)?;
            println!(
                "Key {}:{} removed",
                terminal_safe(&token),
                terminal_safe(&label)
            );
        }
        Cmd::GenerateKey { token, label, key } => {
            let (mut db, pw) = open_for_write(g)?;
            let tok = token.as_deref().map(|m| (m, label.as_str()));
            let spki = db.generate_key(&pw, tok, key.key_type.into())?;
            let where_ = token.map_or_else(
                || "the database".to_owned(),
                |m| format!("token of module {m}, label {label}"),
            );
            println!("Key pair ({}) generated in {where_}", key.key_type_name());
            let pem = pem::Pem::new("PUBLIC KEY", spki);
            let lf = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
            println!("{}", pem::encode_config(&pem, lf).trim_end());
        }
        Cmd::CheckExpiry { days } => {
            return Ok(print(open_read_only(g)?.expiry_report(days, now)?));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("MSGCERT_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let mut cli = Cli::parse();
    let result = args::resolve_dir(&cli.global)
        .map_err(|e| e.to_string())
        .and_then(|dir| {
            cli.global.dir = dir;
            run(cli).map_err(|e| e.to_string())
        });
    result.unwrap_or_else(|e| {
        eprintln!("msgcert: error: {e}");
        ExitCode::from(2)
    })
}
