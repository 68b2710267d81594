//! The operations behind `msgcert`'s subcommands, spanning the directory
//! and PKCS#11 tokens.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::cert::CertInfo;
use crate::db::{CertDb, CertEntry, Nickname, check_alias};
use crate::error::{Error, Result};
use crate::key::{KdfParams, KeyType, PrivateKey};
use crate::keycache::KeyCache;
use crate::password::{INTERNAL_TOKEN, Password, PasswordFile};
#[cfg(feature = "pkcs11")]
use crate::pkcs11::Token;
use crate::pkcs12::{build_pkcs12, parse_pkcs12};
use crate::signer::{Identity, Signer, SoftwareSigner};
use crate::text::terminal_safe;
use crate::trust::TrustFlags;
use crate::x509gen::{
    Subject, SubjectFields, Validity, certificate_request, renew_self_signed, self_signed,
};

/// The alias of the certificate `generate-certDB` creates.
pub const DEFAULT_SERVER_CERT: &str = "Server-Cert";

/// Days before expiry from which `list-certs` marks a certificate.
pub const SOON_DAYS: i64 = 30;

/// This machine's host name, for the default certificate's CN.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

impl CertDb {
    /// `generate-certDB`: creates the database, `sslpassword.conf` and a
    /// self-signed `Server-Cert` for this host (three months).
    ///
    /// # Errors
    /// The database exists, I/O.
    pub fn generate(
        dir: impl Into<std::path::PathBuf>,
        password: &Password,
        kdf: KdfParams,
        key: KeyType,
    ) -> Result<CertDb> {
        let mut db = CertDb::create(dir, password, kdf)?;
        let subject = Subject::from_fields(&SubjectFields::new(host_name()))?;
        db.add_self_signed(
            password,
            DEFAULT_SERVER_CERT,
            &subject,
            Validity::months(OffsetDateTime::now_utc(), 3),
            key,
        )?;
        Ok(db)
    }

    #[cfg(feature = "pkcs11")]
    fn token(&self, module: &str) -> Result<Token> {
        let m = self.module(module)?;
        let pins = self.password_file()?;
        Token::open(&m, pins.get(module))
    }

    /// The certificate chain and signer for a nickname (`alias` or
    /// `module:alias`), with passwords from `sslpassword.conf`: what a TLS
    /// server loads for its `sslnicknames` parameter.
    ///
    /// # Errors
    /// Unknown nickname, no private key, wrong password or PIN, token
    /// failures.
    pub fn load_identity(&self, nickname: &str, passwords: &PasswordFile) -> Result<Identity> {
        self.load_identity_cached(nickname, passwords, &KeyCache::new())
    }

    /// [`CertDb::load_identity`], taking internal keys from `cache` when
    /// they were decrypted before (same key file, same password) and
    /// remembering the ones it decrypts: what a server that loads the same
    /// nickname for several services, and again on every reload, calls.
    ///
    /// # Errors
    /// As [`CertDb::load_identity`].
    pub fn load_identity_cached(
        &self,
        nickname: &str,
        passwords: &PasswordFile,
        cache: &KeyCache,
    ) -> Result<Identity> {
        match Nickname::parse(nickname) {
            Nickname::Internal(alias) => {
                let entry = self.certificate(&alias)?;
                let pw = passwords
                    .internal()
                    .ok_or_else(|| Error::NoPin(INTERNAL_TOKEN.into()))?;
                let key = self.cached_signer(&alias, pw, cache)?;
                if key.public_key_info() != entry.info.spki {
                    return Err(Error::Corrupt(format!(
                        "key of {alias:?} does not match its certificate"
                    )));
                }
                let signer: Arc<dyn Signer> = key;
                let mut chain = vec![entry.info.der.clone()];
                chain.extend(self.issuer_chain(&entry.info)?);
                Ok(Identity { chain, signer })
            }
            #[cfg(feature = "pkcs11")]
            Nickname::Token { module, alias } => {
                let m = self.module(&module)?;
                let tok = Token::open(&m, passwords.get(&m.name))?;
                let (der, signer) = tok.identity(&alias)?;
                let info = CertInfo::parse(&der)?;
                let mut chain = vec![der];
                chain.extend(self.issuer_chain(&info)?);
                Ok(Identity {
                    chain,
                    signer: Arc::new(signer),
                })
            }
            #[cfg(not(feature = "pkcs11"))]
            Nickname::Token { module, .. } => Err(no_pkcs11(&module)),
        }
    }

    /// `add-selfsign-cert`: a new key (internal, or on the token for
    /// `module:alias`) and a self-signed certificate for it.
    ///
    /// # Errors
    /// Alias in use, wrong password, token errors.
    pub fn add_self_signed(
        &mut self,
        password: &Password,
        nickname: &str,
        subject: &Subject,
        validity: Validity,
        key: KeyType,
    ) -> Result<()> {
        match Nickname::parse(nickname) {
            Nickname::Internal(alias) => {
                check_alias(&alias)?;
                self.verify_password(password)?;
                if self.certificate(&alias).is_ok() {
                    return Err(Error::AliasInUse(alias));
                }
                let k = PrivateKey::generate(key)?;
                let signer = SoftwareSigner::new(&k)?;
                let der = self_signed(&signer, subject, validity)?;
                self.add_with_key(password, &alias, &der, &k, TrustFlags::default(), &[])?;
                Ok(())
            }
            #[cfg(feature = "pkcs11")]
            Nickname::Token { module, alias } => {
                let tok = self.token(&module)?;
                tok.login()?;
                if tok.has_certificate(&alias)? {
                    return Err(Error::AliasInUse(format!("{module}:{alias}")));
                }
                let signer = tok.generate_key(&alias, key)?;
                let stored = self_signed(&signer, subject, validity)
                    .and_then(|der| tok.store_certificate(&alias, &der));
                if let Err(e) = stored {
                    // No key pair is left behind without its certificate.
                    if let Err(cleanup) = tok.destroy_key_pair(signer.public_key_info()) {
                        tracing::warn!(error = %cleanup, "removing the new token key pair");
                    }
                    return Err(e);
                }
                Ok(())
            }
            #[cfg(not(feature = "pkcs11"))]
            Nickname::Token { module, .. } => Err(no_pkcs11(&module)),
        }
    }

    /// `generate-key [--token MODULE]`: a key pair with no certificate yet.
    /// Returns the public key (SPKI DER).
    ///
    /// # Errors
    /// Wrong password, token errors.
    pub fn generate_key(
        &mut self,
        password: &Password,
        token: Option<(&str, &str)>,
        key: KeyType,
    ) -> Result<Vec<u8>> {
        match token {
            None => {
                let k = PrivateKey::generate(key)?;
                self.store_key(password, &k)?;
                Ok(k.public_key_info().to_vec())
            }
            #[cfg(feature = "pkcs11")]
            Some((module, label)) => {
                let tok = self.token(module)?;
                Ok(tok.generate_key(label, key)?.public_key_info().to_vec())
            }
            #[cfg(not(feature = "pkcs11"))]
            Some((module, _)) => Err(no_pkcs11(module)),
        }
    }

    /// `request-cert`: a new key (internal, or on `token` as `(module,
    /// label)`) and a PKCS#10 request (DER) for it. Install the issued
    /// certificate with `add-cert`.
    ///
    /// # Errors
    /// Wrong password, token errors.
    pub fn request_certificate(
        &mut self,
        password: &Password,
        subject: &Subject,
        key: KeyType,
        token: Option<(&str, &str)>,
    ) -> Result<Vec<u8>> {
        match token {
            None => {
                self.verify_password(password)?;
                let k = PrivateKey::generate(key)?;
                let signer = SoftwareSigner::new(&k)?;
                let csr = certificate_request(&signer, subject)?;
                self.store_key(password, &k)?;
                Ok(csr)
            }
            #[cfg(feature = "pkcs11")]
            Some((module, label)) => {
                let tok = self.token(module)?;
                let signer = tok.generate_key(label, key)?;
                certificate_request(&signer, subject)
            }
            #[cfg(not(feature = "pkcs11"))]
            Some((module, _)) => Err(no_pkcs11(module)),
        }
    }

    /// `add-cert`: adds certificates from PEM or DER. For `module:alias`
    /// the (first) certificate goes onto the token. Further certificates in
    /// a PEM bundle are added under their subject CN.
    ///
    /// # Errors
    /// Bad input, alias in use, token errors.
    pub fn add_certificates(
        &mut self,
        nickname: &str,
        input: &[u8],
        trust: TrustFlags,
    ) -> Result<Vec<String>> {
        let ders = crate::cert::decode_certificates(input)?;
        match Nickname::parse(nickname) {
            Nickname::Internal(alias) => {
                check_alias(&alias)?;
                let (first, rest) = ders
                    .split_first()
                    .ok_or_else(|| Error::BadCertificate("empty".into()))?;
                if rest.is_empty() {
                    self.add_certificate(&alias, first, trust)?;
                    return Ok(vec![alias]);
                }
                // A bundle: the leaf with its alias, the rest under their
                // subject CN without trust, in one commit.
                let mut items = vec![(alias, first.clone(), trust)];
                let mut taken: Vec<String> = self
                    .certificates()?
                    .into_iter()
                    .map(|e| e.nickname)
                    .collect();
                taken.push(items[0].0.clone());
                for d in rest {
                    let base = crate::db::default_alias(&CertInfo::parse(d)?);
                    let mut a = base.clone();
                    let mut n = 2;
                    while taken.contains(&a) {
                        a = format!("{base} #{n}");
                        n += 1;
                    }
                    taken.push(a.clone());
                    items.push((a, d.clone(), TrustFlags::default()));
                }
                self.add_certificates_batch(&items)
            }
            #[cfg(feature = "pkcs11")]
            Nickname::Token { module, alias } => {
                let tok = self.token(&module)?;
                let first = ders
                    .first()
                    .ok_or_else(|| Error::BadCertificate("empty".into()))?;
                tok.store_certificate(&alias, first)?;
                Ok(vec![format!("{module}:{alias}")])
            }
            #[cfg(not(feature = "pkcs11"))]
            Nickname::Token { module, .. } => Err(no_pkcs11(&module)),
        }
    }

    /// `renew-cert ALIAS FILE`.
    ///
    /// # Errors
    /// Unknown alias, the new certificate has no key here, bad input.
    pub fn renew_certificate(&mut self, nickname: &str, input: &[u8]) -> Result<()> {
        let ders = crate::cert::decode_certificates(input)?;
        let first = ders
            .first()
            .ok_or_else(|| Error::BadCertificate("empty".into()))?;
        match Nickname::parse(nickname) {
            Nickname::Internal(alias) => self.replace_certificate(&alias, first),
            #[cfg(feature = "pkcs11")]
            Nickname::Token { module, alias } => {
                self.token(&module)?.replace_certificate(&alias, first)
            }
            #[cfg(not(feature = "pkcs11"))]
            Nickname::Token { module, .. } => Err(no_pkcs11(&module)),
        }
    }

    /// `renew-selfsign-cert ALIAS`: same key and subject, new serial and
    /// validity.
    ///
    /// # Errors
    /// Unknown alias, not self-signed, wrong password, token errors.
    pub fn renew_self_signed(
        &mut self,
        password: &Password,
        nickname: &str,
        validity: Validity,
    ) -> Result<()> {
        match Nickname::parse(nickname) {
            Nickname::Internal(alias) => {
                self.verify_password(password)?;
                let entry = self.certificate(&alias)?;
                let key = self.private_key(&alias, password)?;
                let signer = SoftwareSigner::new(&key)?;
                let der = renew_self_signed(&signer, &entry.info.der, validity)?;
                self.replace_certificate(&alias, &der)
            }
            #[cfg(feature = "pkcs11")]
            Nickname::Token { module, alias } => {
                let tok = self.token(&module)?;
                let (old, signer) = tok.identity(&alias)?;
                let der = renew_self_signed(&signer, &old, validity)?;
                tok.replace_certificate(&alias, &der)
            }
            #[cfg(not(feature = "pkcs11"))]
            Nickname::Token { module, .. } => Err(no_pkcs11(&module)),
        }
    }

    /// `remove-cert`.
    ///
    /// # Errors
    /// Unknown alias, token errors.
    pub fn remove_nickname(&mut self, nickname: &str) -> Result<()> {
        match Nickname::parse(nickname) {
            Nickname::Internal(alias) => self.remove(&alias),
            #[cfg(feature = "pkcs11")]
            Nickname::Token { module, alias } => self.token(&module)?.remove_certificate(&alias),
            #[cfg(not(feature = "pkcs11"))]
            Nickname::Token { module, .. } => Err(no_pkcs11(&module)),
        }
    }

    /// A certificate by nickname, from the directory or a token.
    ///
    /// # Errors
    /// Unknown nickname, token errors.
    pub fn find(&self, nickname: &str) -> Result<CertEntry> {
        match Nickname::parse(nickname) {
            Nickname::Internal(alias) => self.certificate(&alias),
            #[cfg(feature = "pkcs11")]
            Nickname::Token { module, alias } => {
                let tok = self.token(&module)?;
                let (label, der, has_key) = tok
                    .certificates()?
                    .into_iter()
                    .find(|(l, _, _)| *l == alias)
                    .ok_or_else(|| Error::UnknownAlias(nickname.to_owned()))?;
                token_entry(&module, &label, &der, has_key)
            }
            #[cfg(not(feature = "pkcs11"))]
            Nickname::Token { module, .. } => Err(no_pkcs11(&module)),
        }
    }

    /// `list-keys`: the key pairs on `module`'s token as `(label, whether a
    /// certificate uses it)`, sorted by label (`Token::keys`).
    ///
    /// # Errors
    /// Unknown module, token errors.
    pub fn token_keys(&self, module: &str) -> Result<Vec<(String, bool)>> {
        #[cfg(feature = "pkcs11")]
        return self.token(module)?.keys();
        #[cfg(not(feature = "pkcs11"))]
        return self.module(module).and_then(|m| Err(no_pkcs11(&m.name)));
    }

    /// `remove-key`: removes the key pair labelled `label` from `module`'s
    /// token when no certificate uses it (a `request-cert` key whose
    /// certificate will not come; `Token::remove_key`).
    ///
    /// # Errors
    /// Unknown module or key, a certificate still uses it, token errors.
    pub fn remove_token_key(&mut self, module: &str, label: &str) -> Result<()> {
        #[cfg(feature = "pkcs11")]
        return self.token(module)?.remove_key(label);
        #[cfg(not(feature = "pkcs11"))]
        return self
            .module(module)
            .and_then(|m| Err(no_pkcs11(&format!("{}:{label}", m.name))));
    }

    /// Certificates on all configured tokens; a token that cannot be read
    /// gives a message instead.
    pub fn token_certificates(&self) -> (Vec<CertEntry>, Vec<String>) {
        let mut out = Vec::new();
        let mut problems = Vec::new();
        for m in self.modules() {
            #[cfg(not(feature = "pkcs11"))]
            let res: Result<Vec<CertEntry>> = Err(no_pkcs11(&m.name));
            #[cfg(feature = "pkcs11")]
            let res = self
                .token(&m.name)
                .and_then(|t| t.certificates())
                .and_then(|certs| {
                    certs
                        .iter()
                        .map(|(l, d, k)| token_entry(&m.name, l, d, *k))
                        .collect::<Result<Vec<_>>>()
                });
            match res {
                Ok(v) => out.extend(v),
                Err(e) => problems.push(e.to_string()),
            }
        }
        (out, problems)
    }

    /// `export-cert`: the certificate, its key and its issuers found in the
    /// database, as PKCS#12.
    ///
    /// # Errors
    /// Unknown alias, no key (or a token key, which never leaves the
    /// token), wrong password.
    pub fn export_pkcs12(
        &self,
        password: &Password,
        nickname: &str,
        p12_password: &Password,
    ) -> Result<Vec<u8>> {
        let alias = match Nickname::parse(nickname) {
            Nickname::Internal(a) => a,
            Nickname::Token { .. } => {
                return Err(Error::Unsupported(
                    "keys on a PKCS#11 token cannot be exported".into(),
                ));
            }
        };
        self.verify_password(password)?;
        let entry = self.certificate(&alias)?;
        let key = self.private_key(&alias, password)?;
        let mut chain = vec![entry.info.der.clone()];
        chain.extend(self.issuer_chain(&entry.info)?);
        build_pkcs12(&alias, &key, &chain, p12_password)
    }

    /// `import-cert` / `import-selfsign-cert`: every key with its
    /// certificate from a PKCS#12 file. The leaf is stored under `alias`,
    /// else the file's friendly name, else its subject CN; issuers under
    /// their CN. Returns the aliases added.
    ///
    /// # Errors
    /// Wrong PKCS#12 password, bad input, alias in use, wrong database
    /// password; `self_signed_only` refuses CA-issued certificates.
    pub fn import_pkcs12(
        &mut self,
        password: &Password,
        data: &[u8],
        p12_password: &Password,
        alias: Option<&str>,
        self_signed_only: bool,
    ) -> Result<Vec<String>> {
        self.verify_password(password)?;
        let entries = parse_pkcs12(data, p12_password)?;
        if alias.is_some() && entries.len() > 1 {
            return Err(Error::BadPkcs12(
                "--alias needs a file with a single key".into(),
            ));
        }
        // Every entry is checked before anything is written, and all are
        // committed together: an import adds the whole file or nothing.
        let mut names = Vec::with_capacity(entries.len());
        for e in &entries {
            let leaf = CertInfo::parse(&e.chain[0])?;
            if self_signed_only && !leaf.self_signed {
                return Err(Error::BadPkcs12(format!(
                    "{} is not self-signed (use import-cert)",
                    leaf.subject
                )));
            }
            let name = alias
                .map(str::to_owned)
                .or_else(|| {
                    e.friendly_name
                        .clone()
                        .filter(|f| check_alias(f).is_ok() && *f != leaf.subject)
                })
                .unwrap_or_else(|| crate::db::default_alias(&leaf));
            if names.contains(&name) {
                return Err(Error::BadPkcs12(format!(
                    "two keys in the file would both be stored as {name}"
                )));
            }
            names.push(name);
        }
        let items: Vec<_> = entries
            .iter()
            .zip(&names)
            .map(|(e, name)| {
                (
                    name.as_str(),
                    e.chain[0].as_slice(),
                    &e.key,
                    TrustFlags::default(),
                    &e.chain[1..],
                )
            })
            .collect();
        self.add_all_with_keys(password, &items)
    }
}

/// Largest input file the operations read (a certificate, a bundle, a
/// PKCS#12 file, a password file).
pub const MAX_INPUT_FILE: u64 = 16 * 1024 * 1024;

/// Reads an input file of at most [`MAX_INPUT_FILE`] bytes.
///
/// # Errors
/// [`Error::Io`], [`Error::TooLarge`].
pub fn read_input(path: &Path) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io("reading", path, e))?;
    if meta.len() > MAX_INPUT_FILE {
        return Err(Error::TooLarge(
            usize::try_from(meta.len()).unwrap_or(usize::MAX),
        ));
    }
    std::fs::read(path).map_err(|e| Error::io("reading", path, e))
}

/// Writes `data` to `path`, readable by the owner only (a PKCS#12 file
/// holds a private key), through a temporary file beside it, a sync and a
/// rename, so a failure never leaves a truncated file.
///
/// # Errors
/// [`Error::Io`].
pub fn write_private_file(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let name = path
        .file_name()
        .ok_or_else(|| Error::io("writing", path, std::io::ErrorKind::InvalidInput.into()))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(|e| Error::io("writing", path, e))
}

/// The refusal of a `module:alias` operation in a build without the
/// `pkcs11` feature.
#[cfg(not(feature = "pkcs11"))]
pub(crate) fn no_pkcs11(module: &str) -> Error {
    Error::Unsupported(format!(
        "{module}: this build has no PKCS#11 support (cargo feature pkcs11)"
    ))
}

#[cfg_attr(not(feature = "pkcs11"), allow(dead_code))]
fn token_entry(module: &str, label: &str, der: &[u8], has_key: bool) -> Result<CertEntry> {
    let info = CertInfo::parse(der)?;
    let mut trust = TrustFlags::default();
    trust.set_user(has_key);
    Ok(CertEntry {
        nickname: format!("{module}:{label}"),
        trust,
        has_key,
        info,
    })
}

fn list_date(t: OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]/[month]/[day] [hour]:[minute]");
    t.format(&f).unwrap_or_else(|_| t.to_string())
}

/// The `list-certs` table: Alias, Valid from, Expires on, Self-signed,
/// Issued by, Issued to (or "Same as issuer"), expired and soon-to-expire
/// certificates marked, then "N certificates found".
pub fn format_list(entries: &[CertEntry], now: OffsetDateTime) -> String {
    let headers = [
        "Alias",
        "Valid from",
        "Expires on",
        "Self-signed",
        "Issued by",
        "Issued to",
    ];
    let rows: Vec<[String; 6]> = entries
        .iter()
        .map(|e| {
            [
                terminal_safe(&e.nickname).into_owned(),
                list_date(e.info.not_before),
                list_date(e.info.not_after),
                if e.info.self_signed { "y" } else { "n" }.to_owned(),
                terminal_safe(&e.info.issuer).into_owned(),
                if e.info.subject_der == e.info.issuer_der {
                    "Same as issuer".to_owned()
                } else {
                    terminal_safe(&e.info.subject).into_owned()
                },
            ]
        })
        .collect();
    let mut w = headers.map(|h| h.chars().count());
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let mut o = String::new();
    let line = |o: &mut String, cells: &[String; 6], note: &str| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i == 5 {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:<width$}  ", width = w[i]);
            }
        }
        if !note.is_empty() {
            let _ = write!(l, "  {note}");
        }
        o.push_str(l.trim_end());
        o.push('\n');
    };
    line(&mut o, &headers.map(str::to_owned), "");
    line(&mut o, &w.map(|n| "-".repeat(n)), "");
    for (r, e) in rows.iter().zip(entries) {
        let note = if e.info.is_expired(now) {
            "*EXPIRED*".to_owned()
        } else if e.info.not_after - now < time::Duration::days(SOON_DAYS) {
            format!(
                "*expires in {} days*",
                (e.info.not_after - now).whole_days()
            )
        } else {
            String::new()
        };
        line(&mut o, r, &note);
    }
    let n = entries.len();
    let _ = writeln!(o, "{n} certificate{} found", if n == 1 { "" } else { "s" });
    o
}
