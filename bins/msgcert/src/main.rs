//! `msgcert`: manages the Portcullis certificate database.
//!
//! Usage: `msgcert SUBCMD [GLOBAL_OPTS] [SUBCMD_OPTS] [SUBCMD_OPERANDS]`
#![forbid(unsafe_code)]

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use portcullis_certdb::{
    CertDb, Error, KdfParams, KeyType, Password, Subject, SubjectFields, TrustFlags, Validity,
    describe, expiring, format_list, list_tokens, request_pem, terminal_safe,
};
use time::OffsetDateTime;

/// Default database directory when neither `-d`, `MSGCERT_DIR` nor the
/// configuration's `local.ssldbpath` is given.
const DEFAULT_DIR: &str = "/etc/portcullis/certdb";
/// Default configuration file (as for `configutil`).
const DEFAULT_CONFIG: &str = "/etc/portcullis/portcullis.toml";

/// The database directory: `-d` / `MSGCERT_DIR`, else `local.ssldbpath`
/// from the configuration file when that file exists (relative to the
/// file's folder), else [`DEFAULT_DIR`].
fn resolve_dir(g: &Global) -> Result<PathBuf, String> {
    if let Some(d) = &g.dir_arg {
        return Ok(d.clone());
    }
    if !g.config.exists() {
        return Ok(PathBuf::from(DEFAULT_DIR));
    }
    let config = portcullis_config::Config::load(&g.config)
        .map_err(|e| format!("{}: {e}", g.config.display()))?;
    let path = config
        .string("local.ssldbpath")
        .map_err(|e| format!("{}: {e}", g.config.display()))?;
    let path = PathBuf::from(path);
    Ok(if path.is_relative() {
        g.config
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(path)
    } else {
        path
    })
}

#[derive(Parser)]
#[command(
    name = "msgcert",
    version,
    about = "Manages the Messaging Server's Certificate Database",
    override_usage = "msgcert SUBCMD [GLOBAL_OPTS] [SUBCMD_OPTS] [SUBCMD_OPERANDS]",
    after_help = "Exit status: 0 success, 1 (check-expiry) something expires soon, 2 error.\n\
                  NOTE: servers pick up changes on reload; every change is atomic.",
    disable_help_flag = true
)]
struct Cli {
    /// Print help (GLOBAL_OPTS: -?, --help).
    #[arg(short = '?', long = "help", short_alias = 'h', global = true, action = clap::ArgAction::Help)]
    help: Option<bool>,
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args)]
struct Global {
    /// Certificate database directory [default: the configuration's
    /// local.ssldbpath, else /etc/portcullis/certdb].
    #[arg(short = 'd', long = "dir", global = true, env = "MSGCERT_DIR")]
    dir_arg: Option<PathBuf>,
    /// The configuration file read for local.ssldbpath when -d is not given.
    #[arg(
        long = "config",
        global = true,
        env = "PORTCULLIS_CONFIG",
        value_name = "FILE",
        default_value = DEFAULT_CONFIG
    )]
    config: PathBuf,
    /// The database directory in use (from -d, the configuration or the
    /// default).
    #[arg(skip)]
    dir: PathBuf,
    /// File whose first line is the certificate database password (default: prompt).
    #[arg(
        short = 'W',
        long = "password-file",
        global = true,
        env = "CERT_PW_FILE",
        value_name = "CERT_PW_FILE"
    )]
    password_file: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum KeyArg {
    /// ECDSA P-256 (default).
    #[value(name = "ec-p256")]
    EcP256,
    /// RSA 2048 bits.
    #[value(name = "rsa-2048")]
    Rsa2048,
    /// RSA 3072 bits.
    #[value(name = "rsa-3072")]
    Rsa3072,
}

impl From<KeyArg> for KeyType {
    fn from(k: KeyArg) -> KeyType {
        match k {
            KeyArg::EcP256 => KeyType::EcP256,
            KeyArg::Rsa2048 => KeyType::Rsa2048,
            KeyArg::Rsa3072 => KeyType::Rsa3072,
        }
    }
}

#[derive(Args)]
struct KeyOpts {
    /// Key type.
    #[arg(short = 'k', long = "key-type", value_enum, default_value = "ec-p256")]
    key_type: KeyArg,
}

#[derive(Args)]
struct NameOpts {
    /// Subject distinguished name, e.g. "CN=mail.example.com,O=Example,C=US".
    #[arg(short = 'S', long = "subject", value_name = "DN", conflicts_with_all = ["name", "org", "org_unit", "city", "state", "country"])]
    dn: Option<String>,
    /// Common name (CN), usually the server's host name.
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Organization (O).
    #[arg(long, value_name = "ORG")]
    org: Option<String>,
    /// Organizational unit (OU).
    #[arg(long = "org-unit", value_name = "ORG-UNIT")]
    org_unit: Option<String>,
    /// City or locality (L).
    #[arg(long, value_name = "CITY")]
    city: Option<String>,
    /// State or province (ST).
    #[arg(long, value_name = "STATE")]
    state: Option<String>,
    /// Two-letter country code (C).
    #[arg(long, value_name = "COUNTRY")]
    country: Option<String>,
}

impl NameOpts {
    fn subject(&self, default_cn: Option<String>) -> Result<Subject, Error> {
        if let Some(dn) = &self.dn {
            return Subject::from_dn(dn);
        }
        let name = self
            .name
            .clone()
            .or(default_cn)
            .ok_or_else(|| Error::BadName(String::new(), "give -S DN or --name NAME".into()))?;
        let mut f = SubjectFields::new(name);
        f.org = self.org.clone();
        f.org_unit = self.org_unit.clone();
        f.city = self.city.clone();
        f.state = self.state.clone();
        f.country = self.country.clone();
        Subject::from_fields(&f)
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// DER.
    Binary,
    /// PEM ("NEW CERTIFICATE REQUEST").
    Ascii,
}

#[derive(Subcommand)]
enum Cmd {
    /// Adds a certificate to the certificate database.
    #[command(name = "add-cert")]
    AddCert {
        /// Mark it a trusted CA for SSL (trust flags CT,,).
        #[arg(short = 'C')]
        ca: bool,
        /// Explicit NSS trust flags (SSL,email,objsign), e.g. "C,,".
        #[arg(short = 't', long = "trust", conflicts_with = "ca")]
        trust: Option<String>,
        /// Alias (nickname); MODULE:ALIAS stores it on a PKCS#11 token.
        alias: String,
        /// Certificate file, PEM or DER.
        cert_file: PathBuf,
    },
    /// Creates and adds a selfsign certificate to the certificate database.
    #[command(name = "add-selfsign-cert")]
    AddSelfsignCert {
        #[command(flatten)]
        name: NameOpts,
        /// Validity in days, 1 to 36525 (default: three months).
        #[arg(long, value_name = "DAYS", value_parser = days_parser(1))]
        validity: Option<u32>,
        #[command(flatten)]
        key: KeyOpts,
        /// Alias; MODULE:ALIAS generates the key on a PKCS#11 token.
        alias: String,
    },
    /// Exports a certificate and its keys from the database (PKCS#12).
    #[command(name = "export-cert")]
    ExportCert {
        /// Output file (default: standard output).
        #[arg(short = 'o', value_name = "OUTPUT_FILE")]
        output: Option<PathBuf>,
        /// File holding the PKCS#12 password (default: prompt).
        #[arg(long = "p12-password-file", value_name = "FILE")]
        p12_password_file: Option<PathBuf>,
        /// Alias.
        alias: String,
    },
    /// Creates the certificate database, its sslpassword.conf and a self-signed Server-Cert.
    #[command(name = "generate-certDB")]
    GenerateCertDb {
        #[command(flatten)]
        key: KeyOpts,
        /// Cheap key derivation for test databases. Never use in production.
        #[arg(long = "insecure-fast-kdf", hide = true)]
        insecure_fast_kdf: bool,
    },
    /// Adds a new certificate and its keys to the cert database (PKCS#12).
    #[command(name = "import-cert")]
    ImportCert {
        /// File holding the PKCS#12 password (default: prompt).
        #[arg(long = "p12-password-file", value_name = "FILE")]
        p12_password_file: Option<PathBuf>,
        /// Alias for the certificate (default: the file's friendly name).
        #[arg(long)]
        alias: Option<String>,
        /// PKCS#12 file.
        cert_file: PathBuf,
    },
    /// Adds a new selfsign certificate and its keys to the cert database (PKCS#12).
    #[command(name = "import-selfsign-cert")]
    ImportSelfsignCert {
        /// File holding the PKCS#12 password (default: prompt).
        #[arg(long = "p12-password-file", value_name = "FILE")]
        p12_password_file: Option<PathBuf>,
        /// Alias for the certificate (default: the file's friendly name).
        #[arg(long)]
        alias: Option<String>,
        /// PKCS#12 file.
        cert_file: PathBuf,
    },
    /// Lists all certificates in the Certificate database.
    #[command(name = "list-certs")]
    ListCerts {
        /// Only trusted CA certificates.
        #[arg(short = 'C')]
        ca: bool,
    },
    /// Removes a certificate from the database.
    #[command(name = "remove-cert")]
    RemoveCert {
        /// Alias or MODULE:ALIAS.
        alias: String,
    },
    /// Renews a certificate.
    #[command(name = "renew-cert")]
    RenewCert {
        /// Alias or MODULE:ALIAS.
        alias: String,
        /// The renewed certificate, PEM or DER.
        cert_file: PathBuf,
    },
    /// Renews a selfsign certificate (same key, new serial, new validity).
    #[command(name = "renew-selfsign-cert")]
    RenewSelfsignCert {
        /// Validity in days, 1 to 36525 (default: three months).
        #[arg(long, value_name = "DAYS", value_parser = days_parser(1))]
        validity: Option<u32>,
        /// Alias or MODULE:ALIAS.
        alias: String,
    },
    /// Generates a certificate request (PKCS#10).
    #[command(name = "request-cert")]
    RequestCert {
        #[command(flatten)]
        name: NameOpts,
        /// Output format.
        #[arg(
            short = 'F',
            value_enum,
            default_value = "binary",
            value_name = "FORMAT"
        )]
        format: Format,
        /// Output file (default: standard output).
        #[arg(short = 'o', value_name = "OUTPUT_FILE")]
        output: Option<PathBuf>,
        #[command(flatten)]
        key: KeyOpts,
        /// Generate the key on this PKCS#11 module's token.
        #[arg(long, value_name = "MODULE")]
        token: Option<String>,
        /// Token label of the new key (with --token; default: the CN).
        #[arg(long, requires = "token")]
        label: Option<String>,
    },
    /// Displays a certificate.
    #[command(name = "show-cert")]
    ShowCert {
        /// Alias or MODULE:ALIAS.
        alias: String,
    },
    /// Sets a certificate's trust flags (NSS syntax SSL,email,objsign with p P c C T u w).
    #[command(name = "modify-trust")]
    ModifyTrust {
        /// Alias.
        alias: String,
        /// Trust flags, e.g. "CT,," or "P,,".
        flags: String,
    },
    /// Lists the PKCS#11 modules.
    #[command(name = "list-modules")]
    ListModules,
    /// Adds a PKCS#11 module.
    #[command(name = "add-module")]
    AddModule {
        /// Label of the token to use (default: the first initialised token).
        #[arg(long = "token-label")]
        token_label: Option<String>,
        /// File holding the token's user PIN, stored as NAME:PIN in sslpassword.conf.
        #[arg(long = "pin-file", value_name = "FILE")]
        pin_file: Option<PathBuf>,
        /// Module name (used as NAME:alias and in sslpassword.conf).
        name: String,
        /// Path of the PKCS#11 shared library.
        library: PathBuf,
    },
    /// Lists the slots and tokens of the PKCS#11 modules.
    #[command(name = "list-tokens")]
    ListTokens {
        /// Only this module.
        module: Option<String>,
    },
    /// Generates a key pair with no certificate yet.
    #[command(name = "generate-key")]
    GenerateKey {
        /// Generate it on this PKCS#11 module's token.
        #[arg(long, value_name = "MODULE")]
        token: Option<String>,
        /// Token label of the key (with --token).
        #[arg(long, requires = "token", default_value = "key")]
        label: String,
        #[command(flatten)]
        key: KeyOpts,
    },
    /// Exits 1 when a certificate expires within N days (for monitoring).
    #[command(name = "check-expiry")]
    CheckExpiry {
        /// Days ahead, 0 to 36525.
        #[arg(long, value_name = "N", value_parser = days_parser(0))]
        days: u32,
    },
}

fn read_input(path: &Path) -> Result<Vec<u8>, Error> {
    let meta = std::fs::metadata(path).map_err(|e| io_err("reading", path, e))?;
    if meta.len() > 16 * 1024 * 1024 {
        return Err(Error::TooLarge(
            usize::try_from(meta.len()).unwrap_or(usize::MAX),
        ));
    }
    std::fs::read(path).map_err(|e| io_err("reading", path, e))
}

fn io_err(action: &'static str, path: &Path, e: std::io::Error) -> Error {
    Error::Io {
        action,
        path: path.to_owned(),
        source: e,
    }
}

fn prompt(text: &str) -> Result<Password, Error> {
    rpassword::prompt_password(text)
        .map(Password::new)
        .map_err(|e| io_err("reading password from", Path::new("/dev/tty"), e))
}

fn prompt_new(what: &str) -> Result<Password, Error> {
    let a = prompt(&format!("Choose the {what} password: "))?;
    let b = prompt(&format!("Confirm the {what} password: "))?;
    if !a.ct_eq(&b) {
        return Err(Error::Unsupported("the passwords do not match".into()));
    }
    Ok(a)
}

fn db_password(g: &Global) -> Result<Password, Error> {
    match &g.password_file {
        Some(f) => Password::from_file(f),
        None => prompt("Enter the certificate database password: "),
    }
}

/// The password when one was supplied with -W; read-only commands do not
/// prompt.
fn optional_password(db: &CertDb, g: &Global) -> Result<(), Error> {
    if let Some(f) = &g.password_file {
        db.verify_password(&Password::from_file(f)?)?;
    }
    Ok(())
}

fn p12_password(file: &Option<PathBuf>, new: bool) -> Result<Password, Error> {
    match file {
        Some(f) => {
            let raw = read_input(f)?;
            let text = String::from_utf8(raw)
                .map_err(|_| Error::BadPkcs12("password file is not UTF-8".into()))?;
            Ok(Password::new(text.lines().next().unwrap_or("")))
        }
        None if new => prompt_new("PKCS#12 file"),
        None => prompt("Enter the PKCS#12 file password: "),
    }
}

/// Opens the database and checks the password: commands that change it.
fn open_for_write(g: &Global) -> Result<(CertDb, Password), Error> {
    let db = CertDb::open(&g.dir)?;
    let pw = db_password(g)?;
    db.verify_password(&pw)?;
    Ok((db, pw))
}

/// The longest span a day count may give: a hundred years.
const MAX_DAYS: u32 = 36_525;

/// A day count from `min` to [`MAX_DAYS`]; anything else is a usage error
/// (exit 2), never an overflow.
fn days_parser(min: u32) -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(i64::from(min)..=i64::from(MAX_DAYS))
}

fn validity(days: Option<u32>) -> Validity {
    let now = OffsetDateTime::now_utc();
    match days {
        Some(d) => Validity::days(now, d),
        None => Validity::months(now, 3),
    }
}

/// Writes `data` to `path` (owner-only, since a PKCS#12 file holds a
/// private key) through a temporary file and a rename, so a failure never
/// leaves a truncated file; no path: standard output.
fn write_output(path: Option<&Path>, data: &[u8]) -> Result<(), Error> {
    use std::os::unix::fs::OpenOptionsExt as _;
    match path {
        Some(p) => {
            let name = p
                .file_name()
                .ok_or_else(|| io_err("writing", p, std::io::ErrorKind::InvalidInput.into()))?;
            let mut tmp_name = std::ffi::OsString::from(".");
            tmp_name.push(name);
            tmp_name.push(format!(".tmp{}", std::process::id()));
            let tmp = p.with_file_name(tmp_name);
            let written = (|| {
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&tmp)?;
                f.write_all(data)?;
                f.sync_all()?;
                std::fs::rename(&tmp, p)
            })();
            if written.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            written.map_err(|e| io_err("writing", p, e))
        }
        None => std::io::stdout()
            .write_all(data)
            .map_err(|e| io_err("writing", Path::new("standard output"), e)),
    }
}

fn run(cli: Cli) -> Result<ExitCode, Error> {
    let g = &cli.global;
    let import_self_signed = matches!(cli.cmd, Cmd::ImportSelfsignCert { .. });
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
                None if std::io::stdin().is_terminal() => prompt_new("certificate database")?,
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
            let input = read_input(&cert_file)?;
            for a in db.add_certificates(&alias, &input, flags)? {
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
            let data = db.export_pkcs12(&pw, &alias, &p12pw)?;
            write_output(output.as_deref(), &data)?;
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
            let self_signed = import_self_signed;
            let (mut db, pw) = open_for_write(g)?;
            let data = read_input(&cert_file)?;
            let p12pw = p12_password(&p12_password_file, false)?;
            for a in db.import_pkcs12(&pw, &data, &p12pw, alias.as_deref(), self_signed)? {
                println!("Certificate {} imported", terminal_safe(&a));
            }
        }
        Cmd::ListCerts { ca } => {
            let db = CertDb::open(&g.dir)?;
            optional_password(&db, g)?;
            let mut all = db.certificates()?;
            let (tok, problems) = db.token_certificates();
            all.extend(tok);
            if ca {
                all.retain(|e| e.trust.is_trusted_server_ca() || e.trust.is_trusted_client_ca());
            }
            for p in problems {
                eprintln!("msgcert: warning: {p}");
            }
            print!("{}", format_list(&all, OffsetDateTime::now_utc()));
        }
        Cmd::RemoveCert { alias } => {
            let (mut db, _) = open_for_write(g)?;
            db.remove_nickname(&alias)?;
            println!("Certificate {alias} removed");
        }
        Cmd::RenewCert { alias, cert_file } => {
            let (mut db, _) = open_for_write(g)?;
            let input = read_input(&cert_file)?;
            db.renew_certificate(&alias, &input)?;
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
            let db = CertDb::open(&g.dir)?;
            optional_password(&db, g)?;
            let e = db.find(&alias)?;
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
        Cmd::ListModules => {
            let db = CertDb::open(&g.dir)?;
            println!(
                "{}  (built in; the certificate database itself)",
                portcullis_certdb::INTERNAL_TOKEN
            );
            for m in db.modules() {
                let tok = m
                    .token_label
                    .as_deref()
                    .map(|t| format!(", token {t:?}"))
                    .unwrap_or_default();
                println!("{}  library {}{tok}", m.name, m.library.display());
            }
        }
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
            let db = CertDb::open(&g.dir)?;
            println!(
                "{}: the certificate database in {}",
                portcullis_certdb::INTERNAL_TOKEN,
                g.dir.display()
            );
            for m in db.modules() {
                if module.as_ref().is_some_and(|x| *x != m.name) {
                    continue;
                }
                match list_tokens(&m) {
                    Ok(tokens) => {
                        for t in tokens {
                            match t.label {
                                Some(l) => println!(
                                    "{}: slot {} ({}): token {l:?}, {}, serial {}",
                                    m.name,
                                    t.slot,
                                    t.slot_description,
                                    t.model.unwrap_or_default(),
                                    t.serial.unwrap_or_default()
                                ),
                                None => println!(
                                    "{}: slot {} ({}): no token present",
                                    m.name, t.slot, t.slot_description
                                ),
                            }
                        }
                    }
                    Err(e) => eprintln!("msgcert: warning: {e}"),
                }
            }
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
            println!(
                "{}",
                pem::encode_config(
                    &pem::Pem::new("PUBLIC KEY", spki),
                    pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF)
                )
                .trim_end()
            );
        }
        Cmd::CheckExpiry { days } => {
            let db = CertDb::open(&g.dir)?;
            optional_password(&db, g)?;
            let mut all = db.certificates()?;
            let (tok, problems) = db.token_certificates();
            all.extend(tok);
            for p in problems {
                eprintln!("msgcert: warning: {p}");
            }
            let now = OffsetDateTime::now_utc();
            let soon = expiring(&all, now, days);
            if soon.is_empty() {
                println!("No certificate expires within {days} days");
                return Ok(ExitCode::SUCCESS);
            }
            let f = time::macros::format_description!("[year]/[month]/[day] [hour]:[minute] UTC");
            for e in soon {
                let when = e.info.not_after.format(&f).unwrap_or_default();
                if e.info.is_expired(now) {
                    println!("{}: expired on {when}", terminal_safe(&e.nickname));
                } else {
                    println!("{}: expires on {when}", terminal_safe(&e.nickname));
                }
            }
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}

impl KeyOpts {
    fn key_type_name(&self) -> String {
        KeyType::from(self.key_type).to_string()
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("MSGCERT_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let mut cli = Cli::parse();
    cli.global.dir = match resolve_dir(&cli.global) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("msgcert: error: {e}");
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("msgcert: error: {e}");
            ExitCode::from(2)
        }
    }
}
