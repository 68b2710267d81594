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

use std::process::ExitCode;

use args::{
    Cli, Cmd, Format, open_for_write, open_read_only, p12_password, print, validity, write_output,
};
use clap::Parser as _;
use portcullis_certdb::{
    CertDb, DEFAULT_SERVER_CERT, Error, Password, TrustFlags, describe, public_key_pem, read_input,
    request_pem, terminal_safe,
};
use time::OffsetDateTime;

fn run(cli: Cli) -> Result<ExitCode, Error> {
    let g = &cli.global;
    let now = OffsetDateTime::now_utc();
    let self_signed = matches!(cli.cmd, Cmd::ImportSelfsignCert(_));
    match cli.cmd {
        Cmd::GenerateCertDb(a) => {
            if CertDb::exists(&g.dir) {
                return Err(Error::AlreadyExists(g.dir.clone()));
            }
            CertDb::generate(&g.dir, &a.password(g)?, a.kdf(), a.key.key_type.into())?;
            println!("Certificate database created in {}", g.dir.display());
            println!("Self-signed certificate {DEFAULT_SERVER_CERT} created");
        }
        Cmd::AddCert(a) => {
            let (mut db, _) = open_for_write(g)?;
            let input = read_input(&a.cert_file)?;
            for alias in db.add_certificates(&a.alias, &input, a.trust_flags()?)? {
                println!("Certificate {} added", terminal_safe(&alias));
            }
        }
        Cmd::AddSelfsignCert(a) => {
            let (mut db, pw) = open_for_write(g)?;
            let subject = a.name.subject(Some(portcullis_certdb::host_name()))?;
            let (alias, key) = (&a.alias, a.key.key_type.into());
            db.add_self_signed(&pw, alias, &subject, validity(a.validity), key)?;
            println!(
                "Self-signed certificate {alias} created for {}",
                subject.as_str()
            );
        }
        Cmd::ExportCert(a) => {
            let (db, pw) = open_for_write(g)?;
            let p12pw = p12_password(&a.p12_password_file, true)?;
            let data = db.export_pkcs12(&pw, &a.alias, &p12pw)?;
            write_output(a.output.as_deref(), &data)?;
            if let Some(o) = a.output {
                println!("Certificate {} exported to {}", a.alias, o.display());
            }
        }
        Cmd::ImportCert(a) | Cmd::ImportSelfsignCert(a) => {
            let (mut db, pw) = open_for_write(g)?;
            let data = read_input(&a.cert_file)?;
            let p12pw = p12_password(&a.p12_password_file, false)?;
            for alias in db.import_pkcs12(&pw, &data, &p12pw, a.alias.as_deref(), self_signed)? {
                println!("Certificate {} imported", terminal_safe(&alias));
            }
        }
        Cmd::ListCerts(a) => return Ok(print(open_read_only(g)?.list_report(a.ca, now)?)),
        Cmd::RemoveCert(a) => {
            open_for_write(g)?.0.remove_nickname(&a.alias)?;
            println!("Certificate {} removed", a.alias);
        }
        Cmd::RenewCert(a) => {
            let (mut db, _) = open_for_write(g)?;
            db.renew_certificate(&a.alias, &read_input(&a.cert_file)?)?;
            println!("Certificate {} renewed", a.alias);
        }
        Cmd::RenewSelfsignCert(a) => {
            let (mut db, pw) = open_for_write(g)?;
            db.renew_self_signed(&pw, &a.alias, validity(a.validity))?;
            println!("Self-signed certificate {} renewed", a.alias);
        }
        Cmd::RequestCert(a) => {
            let (mut db, pw) = open_for_write(g)?;
            let label = a.label();
            let tok = a.token.as_deref().map(|m| (m, label.as_str()));
            let der =
                db.request_certificate(&pw, &a.name.subject(None)?, a.key.key_type.into(), tok)?;
            let data = match a.format {
                Format::Binary => der,
                Format::Ascii => request_pem(&der).into_bytes(),
            };
            write_output(a.output.as_deref(), &data)?;
        }
        Cmd::ShowCert(a) => {
            let e = open_read_only(g)?.find(&a.alias)?;
            print!("{}", describe(&e.nickname, &e.info.der, e.trust)?);
        }
        Cmd::ModifyTrust(a) => {
            let trust: TrustFlags = a.flags.parse()?;
            let (mut db, _) = open_for_write(g)?;
            db.set_trust(&a.alias, trust)?;
            println!(
                "Trust flags of {} set to {}",
                a.alias,
                db.certificate(&a.alias)?.trust
            );
        }
        Cmd::ListModules => return Ok(print(CertDb::open(&g.dir)?.modules_report())),
        Cmd::AddModule(a) => {
            let (mut db, _) = open_for_write(g)?;
            db.add_module(&a.name, &a.library, a.token_label.as_deref())?;
            if let Some(f) = a.pin_file {
                db.set_module_password(&a.name, Password::from_file(&f)?)?;
            }
            println!("Module {} added", a.name);
        }
        Cmd::ListTokens(a) => {
            return Ok(print(
                CertDb::open(&g.dir)?.tokens_report(a.module.as_deref()),
            ));
        }
        Cmd::ListKeys(a) => return Ok(print(open_read_only(g)?.keys_report(a.token.as_deref())?)),
        Cmd::RemoveKey(a) => {
            open_for_write(g)?.0.remove_token_key(&a.token, &a.label)?;
            println!(
                "Key {}:{} removed",
                terminal_safe(&a.token),
                terminal_safe(&a.label)
            );
        }
        Cmd::GenerateKey(a) => {
            let tok = a.token.as_deref().map(|m| (m, a.label.as_str()));
            let (mut db, pw) = open_for_write(g)?;
            let spki = db.generate_key(&pw, tok, a.key.key_type.into())?;
            let where_ = a.token.as_ref().map_or_else(
                || "the database".to_owned(),
                |m| format!("token of module {m}, label {}", a.label),
            );
            println!("Key pair ({}) generated in {where_}", a.key.key_type_name());
            println!("{}", public_key_pem(&spki).trim_end());
        }
        Cmd::CheckExpiry(a) => return Ok(print(open_read_only(g)?.expiry_report(a.days, now)?)),
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
