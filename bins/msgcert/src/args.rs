//! msgcert's command line: subcommands and options, where passwords come
//! from (a file given with `-W` / `--p12-password-file`, else the
//! terminal), and where output goes. The operations themselves are
//! `portcullis-certdb`'s.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use portcullis_certdb::{
    CertDb, Error, KdfParams, KeyType, Password, Report, Subject, SubjectFields, TrustFlags,
    Validity, read_input, write_private_file,
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
pub(crate) fn resolve_dir(g: &Global) -> Result<PathBuf, String> {
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
pub(crate) struct Cli {
    /// Print help (GLOBAL_OPTS: -?, --help).
    #[arg(short = '?', long = "help", short_alias = 'h', global = true, action = clap::ArgAction::Help)]
    pub(crate) help: Option<bool>,
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) cmd: Cmd,
}

#[derive(Args)]
pub(crate) struct Global {
    /// Certificate database directory [default: the configuration's
    /// local.ssldbpath, else /etc/portcullis/certdb].
    #[arg(short = 'd', long = "dir", global = true, env = "MSGCERT_DIR")]
    pub(crate) dir_arg: Option<PathBuf>,
    /// The configuration file read for local.ssldbpath when -d is not given.
    #[arg(
        long = "config",
        global = true,
        env = "PORTCULLIS_CONFIG",
        value_name = "FILE",
        default_value = DEFAULT_CONFIG
    )]
    pub(crate) config: PathBuf,
    /// The database directory in use (from -d, the configuration or the
    /// default).
    #[arg(skip)]
    pub(crate) dir: PathBuf,
    /// File whose first line is the certificate database password (default: prompt).
    #[arg(
        short = 'W',
        long = "password-file",
        global = true,
        env = "CERT_PW_FILE",
        value_name = "CERT_PW_FILE"
    )]
    pub(crate) password_file: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum KeyArg {
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
pub(crate) struct KeyOpts {
    /// Key type.
    #[arg(short = 'k', long = "key-type", value_enum, default_value = "ec-p256")]
    pub(crate) key_type: KeyArg,
}

#[derive(Args)]
pub(crate) struct NameOpts {
    /// Subject distinguished name, e.g. "CN=mail.example.com,O=Example,C=US".
    #[arg(short = 'S', long = "subject", value_name = "DN", conflicts_with_all = ["name", "org", "org_unit", "city", "state", "country"])]
    pub(crate) dn: Option<String>,
    /// Common name (CN), usually the server's host name.
    #[arg(long, value_name = "NAME")]
    pub(crate) name: Option<String>,
    /// Organization (O).
    #[arg(long, value_name = "ORG")]
    pub(crate) org: Option<String>,
    /// Organizational unit (OU).
    #[arg(long = "org-unit", value_name = "ORG-UNIT")]
    pub(crate) org_unit: Option<String>,
    /// City or locality (L).
    #[arg(long, value_name = "CITY")]
    pub(crate) city: Option<String>,
    /// State or province (ST).
    #[arg(long, value_name = "STATE")]
    pub(crate) state: Option<String>,
    /// Two-letter country code (C).
    #[arg(long, value_name = "COUNTRY")]
    pub(crate) country: Option<String>,
}

impl NameOpts {
    pub(crate) fn subject(&self, default_cn: Option<String>) -> Result<Subject, Error> {
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
pub(crate) enum Format {
    /// DER.
    Binary,
    /// PEM ("NEW CERTIFICATE REQUEST").
    Ascii,
}

#[derive(Subcommand)]
pub(crate) enum Cmd {
    /// Adds a certificate to the certificate database.
    #[command(name = "add-cert")]
    AddCert(AddCertArgs),
    /// Creates and adds a selfsign certificate to the certificate database.
    #[command(name = "add-selfsign-cert")]
    AddSelfsignCert(AddSelfsignCertArgs),
    /// Exports a certificate and its keys from the database (PKCS#12).
    #[command(name = "export-cert")]
    ExportCert(ExportCertArgs),
    /// Creates the certificate database, its sslpassword.conf and a self-signed Server-Cert.
    #[command(name = "generate-certDB")]
    GenerateCertDb(GenerateCertDbArgs),
    /// Adds a new certificate and its keys to the cert database (PKCS#12).
    #[command(name = "import-cert")]
    ImportCert(ImportArgs),
    /// Adds a new selfsign certificate and its keys to the cert database (PKCS#12).
    #[command(name = "import-selfsign-cert")]
    ImportSelfsignCert(ImportArgs),
    /// Lists all certificates in the Certificate database.
    #[command(name = "list-certs")]
    ListCerts(ListCertsArgs),
    /// Removes a certificate from the database.
    #[command(name = "remove-cert")]
    RemoveCert(NicknameArgs),
    /// Renews a certificate.
    #[command(name = "renew-cert")]
    RenewCert(RenewCertArgs),
    /// Renews a selfsign certificate (same key, new serial, new validity).
    #[command(name = "renew-selfsign-cert")]
    RenewSelfsignCert(RenewSelfsignCertArgs),
    /// Generates a certificate request (PKCS#10).
    #[command(name = "request-cert")]
    RequestCert(RequestCertArgs),
    /// Displays a certificate.
    #[command(name = "show-cert")]
    ShowCert(NicknameArgs),
    /// Sets a certificate's trust flags (NSS syntax SSL,email,objsign with p P c C T u w).
    #[command(name = "modify-trust")]
    ModifyTrust(ModifyTrustArgs),
    /// Lists the PKCS#11 modules.
    #[command(name = "list-modules")]
    ListModules,
    /// Adds a PKCS#11 module.
    #[command(name = "add-module")]
    AddModule(AddModuleArgs),
    /// Lists the slots and tokens of the PKCS#11 modules.
    #[command(name = "list-tokens")]
    ListTokens(ListTokensArgs),
    /// Generates a key pair with no certificate yet.
    #[command(name = "generate-key")]
    GenerateKey(GenerateKeyArgs),
    /// Lists the key pairs on the PKCS#11 tokens, with or without a certificate.
    #[command(name = "list-keys")]
    ListKeys(ListKeysArgs),
    /// Removes a key pair that no certificate uses from a PKCS#11 token (e.g. a request-cert key).
    #[command(name = "remove-key")]
    RemoveKey(RemoveKeyArgs),
    /// Exits 1 when a certificate expires within N days (for monitoring).
    #[command(name = "check-expiry")]
    CheckExpiry(CheckExpiryArgs),
}

#[derive(Args)]
pub(crate) struct AddCertArgs {
    /// Mark it a trusted CA for SSL (trust flags CT,,).
    #[arg(short = 'C')]
    pub(crate) ca: bool,
    /// Explicit NSS trust flags (SSL,email,objsign), e.g. "C,,".
    #[arg(short = 't', long = "trust", conflicts_with = "ca")]
    pub(crate) trust: Option<String>,
    /// Alias (nickname); MODULE:ALIAS stores it on a PKCS#11 token.
    pub(crate) alias: String,
    /// Certificate file, PEM or DER.
    pub(crate) cert_file: PathBuf,
}

#[derive(Args)]
pub(crate) struct AddSelfsignCertArgs {
    #[command(flatten)]
    pub(crate) name: NameOpts,
    /// Validity in days, 1 to 36525 (default: three months).
    #[arg(long, value_name = "DAYS", value_parser = days_parser(1))]
    pub(crate) validity: Option<u32>,
    #[command(flatten)]
    pub(crate) key: KeyOpts,
    /// Alias; MODULE:ALIAS generates the key on a PKCS#11 token.
    pub(crate) alias: String,
}

#[derive(Args)]
pub(crate) struct ExportCertArgs {
    /// Output file (default: standard output).
    #[arg(short = 'o', value_name = "OUTPUT_FILE")]
    pub(crate) output: Option<PathBuf>,
    /// File holding the PKCS#12 password (default: prompt).
    #[arg(long = "p12-password-file", value_name = "FILE")]
    pub(crate) p12_password_file: Option<PathBuf>,
    /// Alias.
    pub(crate) alias: String,
}

#[derive(Args)]
pub(crate) struct GenerateCertDbArgs {
    #[command(flatten)]
    pub(crate) key: KeyOpts,
    /// Cheap key derivation for test databases. Never use in production.
    #[arg(long = "insecure-fast-kdf", hide = true)]
    pub(crate) insecure_fast_kdf: bool,
}

#[derive(Args)]
pub(crate) struct ImportArgs {
    /// File holding the PKCS#12 password (default: prompt).
    #[arg(long = "p12-password-file", value_name = "FILE")]
    pub(crate) p12_password_file: Option<PathBuf>,
    /// Alias for the certificate (default: the file's friendly name).
    #[arg(long)]
    pub(crate) alias: Option<String>,
    /// PKCS#12 file.
    pub(crate) cert_file: PathBuf,
}

#[derive(Args)]
pub(crate) struct ListCertsArgs {
    /// Only trusted CA certificates.
    #[arg(short = 'C')]
    pub(crate) ca: bool,
}

/// The operand of `remove-cert` and `show-cert`.
#[derive(Args)]
pub(crate) struct NicknameArgs {
    /// Alias or MODULE:ALIAS.
    pub(crate) alias: String,
}

#[derive(Args)]
pub(crate) struct RenewCertArgs {
    /// Alias or MODULE:ALIAS.
    pub(crate) alias: String,
    /// The renewed certificate, PEM or DER.
    pub(crate) cert_file: PathBuf,
}

#[derive(Args)]
pub(crate) struct RenewSelfsignCertArgs {
    /// Validity in days, 1 to 36525 (default: three months).
    #[arg(long, value_name = "DAYS", value_parser = days_parser(1))]
    pub(crate) validity: Option<u32>,
    /// Alias or MODULE:ALIAS.
    pub(crate) alias: String,
}

#[derive(Args)]
pub(crate) struct RequestCertArgs {
    #[command(flatten)]
    pub(crate) name: NameOpts,
    /// Output format.
    #[arg(
        short = 'F',
        value_enum,
        default_value = "binary",
        value_name = "FORMAT"
    )]
    pub(crate) format: Format,
    /// Output file (default: standard output).
    #[arg(short = 'o', value_name = "OUTPUT_FILE")]
    pub(crate) output: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) key: KeyOpts,
    /// Generate the key on this PKCS#11 module's token.
    #[arg(long, value_name = "MODULE")]
    pub(crate) token: Option<String>,
    /// Token label of the new key (with --token; default: the CN).
    #[arg(long, requires = "token")]
    pub(crate) label: Option<String>,
}

#[derive(Args)]
pub(crate) struct ModifyTrustArgs {
    /// Alias.
    pub(crate) alias: String,
    /// Trust flags, e.g. "CT,," or "P,,".
    pub(crate) flags: String,
}

#[derive(Args)]
pub(crate) struct AddModuleArgs {
    /// Label of the token to use (default: the first initialised token).
    #[arg(long = "token-label")]
    pub(crate) token_label: Option<String>,
    /// File holding the token's user PIN, stored as NAME:PIN in sslpassword.conf.
    #[arg(long = "pin-file", value_name = "FILE")]
    pub(crate) pin_file: Option<PathBuf>,
    /// Module name (used as NAME:alias and in sslpassword.conf).
    pub(crate) name: String,
    /// Path of the PKCS#11 shared library.
    pub(crate) library: PathBuf,
}

#[derive(Args)]
pub(crate) struct ListTokensArgs {
    /// Only this module.
    pub(crate) module: Option<String>,
}

#[derive(Args)]
pub(crate) struct GenerateKeyArgs {
    /// Generate it on this PKCS#11 module's token.
    #[arg(long, value_name = "MODULE")]
    pub(crate) token: Option<String>,
    /// Token label of the key (with --token).
    #[arg(long, requires = "token", default_value = "key")]
    pub(crate) label: String,
    #[command(flatten)]
    pub(crate) key: KeyOpts,
}

#[derive(Args)]
pub(crate) struct ListKeysArgs {
    /// Only this module's token.
    #[arg(long, value_name = "MODULE")]
    pub(crate) token: Option<String>,
}

#[derive(Args)]
pub(crate) struct RemoveKeyArgs {
    /// The module whose token holds the key.
    #[arg(long, value_name = "MODULE")]
    pub(crate) token: String,
    /// Token label of the key.
    #[arg(long)]
    pub(crate) label: String,
}

#[derive(Args)]
pub(crate) struct CheckExpiryArgs {
    /// Days ahead, 0 to 36525.
    #[arg(long, value_name = "N", value_parser = days_parser(0))]
    pub(crate) days: u32,
}

impl KeyOpts {
    pub(crate) fn key_type_name(&self) -> String {
        KeyType::from(self.key_type).to_string()
    }
}

fn prompt(text: &str) -> Result<Password, Error> {
    rpassword::prompt_password(text)
        .map(Password::new)
        .map_err(|e| Error::Io {
            action: "reading password from",
            path: PathBuf::from("/dev/tty"),
            source: e,
        })
}

pub(crate) fn prompt_new(what: &str) -> Result<Password, Error> {
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

/// Opens the database for a command that only reads it, checking the
/// password when one was supplied with -W (read-only commands do not
/// prompt).
pub(crate) fn open_read_only(g: &Global) -> Result<CertDb, Error> {
    let db = CertDb::open(&g.dir)?;
    if let Some(f) = &g.password_file {
        db.verify_password(&Password::from_file(f)?)?;
    }
    Ok(db)
}

pub(crate) fn p12_password(file: &Option<PathBuf>, new: bool) -> Result<Password, Error> {
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
pub(crate) fn open_for_write(g: &Global) -> Result<(CertDb, Password), Error> {
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

pub(crate) fn validity(days: Option<u32>) -> Validity {
    let now = OffsetDateTime::now_utc();
    match days {
        Some(d) => Validity::days(now, d),
        None => Validity::months(now, 3),
    }
}

impl GenerateCertDbArgs {
    /// The new database's password: from `-W`, else asked twice on a
    /// terminal, else generated (and said so: it is in sslpassword.conf).
    pub(crate) fn password(&self, g: &Global) -> Result<Password, Error> {
        use std::io::IsTerminal as _;
        match &g.password_file {
            Some(f) => Password::from_file(f),
            None if std::io::stdin().is_terminal() => prompt_new("certificate database"),
            None => {
                println!("No terminal: generated a random password; it is in sslpassword.conf.");
                Password::generate()
            }
        }
    }

    pub(crate) fn kdf(&self) -> KdfParams {
        if self.insecure_fast_kdf {
            KdfParams::INSECURE_FAST
        } else {
            KdfParams::DEFAULT
        }
    }
}

impl AddCertArgs {
    /// `-C` (a trusted CA), `-t FLAGS`, or no trust.
    pub(crate) fn trust_flags(&self) -> Result<TrustFlags, Error> {
        match (self.ca, &self.trust) {
            (true, _) => Ok(TrustFlags::trusted_ca()),
            (false, Some(t)) => t.parse(),
            (false, None) => Ok(TrustFlags::default()),
        }
    }
}

impl RequestCertArgs {
    /// The token label of the new key: `--label`, else the CN.
    pub(crate) fn label(&self) -> String {
        self.label
            .clone()
            .unwrap_or_else(|| self.name.name.clone().unwrap_or_else(|| "request".into()))
    }
}

/// `data` to the file `path` (owner-only, atomically), else to standard
/// output.
pub(crate) fn write_output(path: Option<&Path>, data: &[u8]) -> Result<(), Error> {
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
pub(crate) fn print(r: Report) -> ExitCode {
    for w in &r.warnings {
        eprintln!("msgcert: warning: {w}");
    }
    print!("{}", r.text);
    ExitCode::from(u8::from(r.attention))
}
