//! The database directory: index, certificate and key files, locking and
//! atomic commits. See the crate README for the on-disk format.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::cert::CertInfo;
use crate::error::{Error, Result};
use crate::fsutil::{self, WriteLock, atomic_write, hex, random_hex, read_capped, sync_dir, unhex};
use crate::key::{KdfParams, PrivateKey};
use crate::keycache::KeyCache;
use crate::password::{INTERNAL_TOKEN, Password, PasswordFile};
use crate::signer::SoftwareSigner;
use crate::trust::TrustFlags;

/// The index (manifest) file.
pub const INDEX_FILE: &str = "index.toml";
const CERTS_DIR: &str = "certs";
const KEYS_DIR: &str = "keys";
const FORMAT: &str = "portcullis-certdb";
const VERSION: u32 = 1;
/// How often a reader re-reads the index when a concurrent writer removed
/// a file its snapshot referred to.
const READ_RETRIES: usize = 8;
/// Longest alias accepted.
pub const MAX_ALIAS: usize = 200;
/// Longest issuer chain followed.
const MAX_CHAIN: usize = 8;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Verifier {
    kdf: String,
    log_n: u8,
    r: u32,
    p: u32,
    salt: String,
    hash: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CertRecord {
    alias: String,
    file: String,
    sha256: String,
    trust: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyRecord {
    id: String,
    file: String,
    sha256: String,
    spki_sha256: String,
    algorithm: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModuleRecord {
    name: String,
    library: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Index {
    format: String,
    version: u32,
    generation: u64,
    password: Verifier,
    #[serde(default, rename = "cert", skip_serializing_if = "Vec::is_empty")]
    certs: Vec<CertRecord>,
    #[serde(default, rename = "key", skip_serializing_if = "Vec::is_empty")]
    keys: Vec<KeyRecord>,
    #[serde(default, rename = "module", skip_serializing_if = "Vec::is_empty")]
    modules: Vec<ModuleRecord>,
}

impl Index {
    fn cert(&self, alias: &str) -> Option<&CertRecord> {
        self.certs.iter().find(|c| c.alias == alias)
    }
    /// The key record of an internal certificate.
    fn key_of(&self, alias: &str) -> Result<&KeyRecord> {
        let rec = self
            .cert(alias)
            .ok_or_else(|| Error::UnknownAlias(alias.to_owned()))?;
        let kid = rec
            .key
            .as_ref()
            .ok_or_else(|| Error::NoPrivateKey(alias.to_owned()))?;
        self.keys
            .iter()
            .find(|k| &k.id == kid)
            .ok_or_else(|| Error::Corrupt("missing key record".into()))
    }
    fn kdf(&self) -> KdfParams {
        KdfParams {
            log_n: self.password.log_n,
            r: self.password.r,
            p: self.password.p,
        }
    }
    fn validate(&self) -> Result<()> {
        if self.format != FORMAT {
            return Err(Error::Corrupt(format!("unknown format {:?}", self.format)));
        }
        if self.version != VERSION {
            return Err(Error::Corrupt(format!(
                "unsupported version {}",
                self.version
            )));
        }
        let mut seen = HashSet::new();
        for c in &self.certs {
            if !seen.insert(c.alias.as_str()) {
                return Err(Error::Corrupt(format!("alias {:?} listed twice", c.alias)));
            }
            check_rel(&c.file, CERTS_DIR)?;
            c.trust.parse::<TrustFlags>()?;
            if let Some(k) = &c.key
                && !self.keys.iter().any(|r| &r.id == k)
            {
                return Err(Error::Corrupt(format!(
                    "alias {:?} refers to a missing key",
                    c.alias
                )));
            }
        }
        for k in &self.keys {
            check_rel(&k.file, KEYS_DIR)?;
        }
        Ok(())
    }
}

/// File names in the index are `certs/<hex>.der` or `keys/<hex>.p8`: never
/// anything that leaves the directory.
fn check_rel(rel: &str, dir: &str) -> Result<()> {
    let ok = rel
        .strip_prefix(dir)
        .and_then(|r| r.strip_prefix('/'))
        .is_some_and(|name| {
            !name.is_empty()
                && name.len() < 100
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
                && !name.starts_with('.')
        });
    if ok {
        Ok(())
    } else {
        Err(Error::Corrupt(format!("bad file name {rel:?} in index")))
    }
}

/// Checks an alias for the internal token: 1–200 characters, no control
/// characters, no `:` (it separates `module:alias`), no surrounding blanks.
///
/// # Errors
/// [`Error::InvalidAlias`].
pub fn check_alias(alias: &str) -> Result<()> {
    let bad = |why| Err(Error::InvalidAlias(alias.to_owned(), why));
    if alias.is_empty() {
        return bad("empty");
    }
    if alias.chars().count() > MAX_ALIAS {
        return bad("longer than 200 characters");
    }
    if alias.chars().any(char::is_control) {
        return bad("control characters");
    }
    if alias.contains(':') {
        return bad("':' separates a PKCS#11 module name from an alias");
    }
    if alias.trim() != alias {
        return bad("leading or trailing blanks");
    }
    Ok(())
}

/// A certificate nickname: `alias` (internal token) or `module:alias`
/// (a PKCS#11 token).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Nickname {
    /// A certificate in the database directory.
    Internal(String),
    /// A certificate on a PKCS#11 token.
    Token {
        /// The module name (see `list-modules`).
        module: String,
        /// The certificate's label on the token.
        alias: String,
    },
}

impl Nickname {
    /// Splits at the first `:`. A prefix naming the internal token
    /// (`Internal (Software) Token:alias`) addresses the directory.
    pub fn parse(s: &str) -> Nickname {
        match s.split_once(':') {
            Some((m, a)) if m == INTERNAL_TOKEN => Nickname::Internal(a.to_owned()),
            Some((m, a)) => Nickname::Token {
                module: m.to_owned(),
                alias: a.to_owned(),
            },
            None => Nickname::Internal(s.to_owned()),
        }
    }
}

impl std::fmt::Display for Nickname {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Nickname::Internal(a) => f.write_str(a),
            Nickname::Token { module, alias } => write!(f, "{module}:{alias}"),
        }
    }
}

/// Which trusted CAs to list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CaUsage {
    /// `C` in the SSL field: trusted to issue server certificates.
    ServerAuth,
    /// `T` in the SSL field: trusted to issue client certificates.
    ClientAuth,
}

/// A certificate in the database.
#[derive(Clone, Debug)]
pub struct CertEntry {
    /// `alias`, or `module:alias` for a token certificate.
    pub nickname: String,
    /// Trust flags (`u` set when the private key is present).
    pub trust: TrustFlags,
    /// Whether the private key is in the database or on the token.
    pub has_key: bool,
    /// The parsed certificate.
    pub info: CertInfo,
}

/// One certificate with its key for a batch add: alias, certificate DER,
/// private key, trust flags, issuer certificates.
pub(crate) type KeyedCert<'a> = (&'a str, &'a [u8], &'a PrivateKey, TrustFlags, &'a [Vec<u8>]);

/// A configured PKCS#11 module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module {
    /// Its name (the `module` of `module:alias` and of `sslpassword.conf`).
    pub name: String,
    /// The shared library.
    pub library: PathBuf,
    /// The token label to use; the first token present when `None`.
    pub token_label: Option<String>,
}

/// What [`CertDb::check_integrity`] found.
#[derive(Clone, Debug, Default)]
pub struct IntegrityReport {
    /// Certificates checked.
    pub certificates: usize,
    /// Keys checked.
    pub keys: usize,
    /// Files no index entry refers to (left by an interrupted writer; the
    /// next writer removes them).
    pub orphans: usize,
}

/// A certificate database directory.
///
/// Opening reads a snapshot of the index; readers never take the lock and
/// never wait. Every change takes the writers' lock, re-reads the index,
/// writes new files, then atomically replaces the index.
#[derive(Debug)]
pub struct CertDb {
    dir: PathBuf,
    index: Index,
}

fn load_index(dir: &Path) -> Result<Index> {
    let path = dir.join(INDEX_FILE);
    let raw = match read_capped(&path) {
        Ok(r) => r,
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NoDatabase(dir.to_owned()));
        }
        Err(e) => return Err(e),
    };
    let text =
        std::str::from_utf8(&raw).map_err(|_| Error::Corrupt("index is not UTF-8".into()))?;
    let index: Index = toml::from_str(text).map_err(|e| Error::Corrupt(format!("index: {e}")))?;
    index.validate()?;
    Ok(index)
}

fn is_not_found(e: &Error) -> bool {
    matches!(e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
}

fn read_checked(dir: &Path, rel: &str, sha: &str) -> Result<Vec<u8>> {
    let data = read_capped(&dir.join(rel))?;
    if hex(&Sha256::digest(&data)) != sha {
        return Err(Error::Corrupt(format!("{rel} does not match its checksum")));
    }
    Ok(data)
}

fn sha_hex(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

impl CertDb {
    /// Whether `dir` holds a database.
    pub fn exists(dir: &Path) -> bool {
        dir.join(INDEX_FILE).is_file()
    }

    /// Opens a database for reading (and for changes through the `&mut self`
    /// methods, which lock).
    ///
    /// # Errors
    /// [`Error::NoDatabase`], [`Error::Corrupt`] or I/O errors.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        let index = load_index(&dir)?;
        Ok(CertDb { dir, index })
    }

    /// Creates a database protected by `password`, and `sslpassword.conf`
    /// holding `Internal (Software) Token:password`.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] or I/O errors.
    pub fn create(dir: impl Into<PathBuf>, password: &Password, kdf: KdfParams) -> Result<Self> {
        let dir = dir.into();
        // A directory made here is private from the start; one that exists
        // already keeps its mode (it may be a shared folder that is not
        // ours to restrict), as does a database that exists already. The
        // files and sub-directories inside are private either way.
        if !dir.is_dir() {
            let mut b = fs::DirBuilder::new();
            b.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
            b.create(&dir).map_err(|e| Error::io("creating", &dir, e))?;
        }
        if Self::exists(&dir) {
            return Err(Error::AlreadyExists(dir));
        }
        let lock = WriteLock::acquire(&dir)?;
        if Self::exists(&dir) {
            return Err(Error::AlreadyExists(dir));
        }
        for sub in [CERTS_DIR, KEYS_DIR] {
            let p = dir.join(sub);
            let mut b = fs::DirBuilder::new();
            b.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
            b.create(&p).map_err(|e| Error::io("creating", &p, e))?;
        }
        sync_dir(&dir)?;
        let salt = random_hex(16)?;
        let salt_bytes = unhex(&salt).unwrap_or_default();
        let hash = kdf.derive(password.expose().as_bytes(), &salt_bytes)?;
        let index = Index {
            format: FORMAT.into(),
            version: VERSION,
            generation: 1,
            password: Verifier {
                kdf: "scrypt".into(),
                log_n: kdf.log_n,
                r: kdf.r,
                p: kdf.p,
                salt,
                hash: hex(hash.as_ref()),
            },
            certs: Vec::new(),
            keys: Vec::new(),
            modules: Vec::new(),
        };
        let mut pwfile = PasswordFile::load(&dir)?;
        pwfile.set(INTERNAL_TOKEN, password.clone())?;
        pwfile.store(&lock)?;
        // The index goes last: until it exists there is no database.
        write_index(&dir, &index)?;
        Ok(CertDb { dir, index })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Counts commits; changes whenever the database changes.
    pub fn generation(&self) -> u64 {
        self.index.generation
    }

    /// Re-reads the index.
    ///
    /// # Errors
    /// As [`CertDb::open`].
    pub fn reload(&mut self) -> Result<()> {
        self.index = load_index(&self.dir)?;
        Ok(())
    }

    /// The key-derivation cost of this database.
    pub fn kdf(&self) -> KdfParams {
        self.index.kdf()
    }

    /// Checks the database password.
    ///
    /// # Errors
    /// [`Error::WrongPassword`].
    pub fn verify_password(&self, password: &Password) -> Result<()> {
        let v = &self.index.password;
        if v.kdf != "scrypt" {
            return Err(Error::Corrupt(format!("unknown password KDF {:?}", v.kdf)));
        }
        let salt = unhex(&v.salt).ok_or_else(|| Error::Corrupt("password salt".into()))?;
        let want = unhex(&v.hash).ok_or_else(|| Error::Corrupt("password hash".into()))?;
        let got = self
            .index
            .kdf()
            .derive(password.expose().as_bytes(), &salt)?;
        if bool::from(got.as_ref().ct_eq(want.as_slice())) {
            Ok(())
        } else {
            Err(Error::WrongPassword)
        }
    }

    /// The `sslpassword.conf` of this directory.
    ///
    /// # Errors
    /// The file is unreadable or malformed.
    pub fn password_file(&self) -> Result<PasswordFile> {
        PasswordFile::load(&self.dir)
    }

    /// Runs `f` on the current snapshot, re-reading the index when a
    /// concurrent writer has removed a file the snapshot referred to.
    fn with_snapshot<T>(&self, f: impl Fn(&Index) -> Result<T>) -> Result<T> {
        let mut fresh: Option<Index> = None;
        for _ in 0..READ_RETRIES {
            let idx = fresh.as_ref().unwrap_or(&self.index);
            match f(idx) {
                Err(e) if is_not_found(&e) => fresh = Some(load_index(&self.dir)?),
                other => return other,
            }
        }
        f(fresh.as_ref().unwrap_or(&self.index))
    }

    fn entry_of(&self, rec: &CertRecord) -> Result<CertEntry> {
        let der = read_checked(&self.dir, &rec.file, &rec.sha256)?;
        let info = CertInfo::parse(&der)?;
        let mut trust: TrustFlags = rec.trust.parse()?;
        trust.set_user(rec.key.is_some());
        Ok(CertEntry {
            nickname: rec.alias.clone(),
            trust,
            has_key: rec.key.is_some(),
            info,
        })
    }

    /// All certificates of the directory (not of tokens), sorted by alias.
    ///
    /// # Errors
    /// A file is unreadable or damaged.
    pub fn certificates(&self) -> Result<Vec<CertEntry>> {
        self.with_snapshot(|idx| {
            let mut v = idx
                .certs
                .iter()
                .map(|r| self.entry_of(r))
                .collect::<Result<Vec<_>>>()?;
            v.sort_by(|a, b| a.nickname.cmp(&b.nickname));
            Ok(v)
        })
    }

    /// One certificate of the directory.
    ///
    /// # Errors
    /// [`Error::UnknownAlias`], or a damaged file.
    pub fn certificate(&self, alias: &str) -> Result<CertEntry> {
        self.with_snapshot(|idx| {
            let rec = idx
                .cert(alias)
                .ok_or_else(|| Error::UnknownAlias(alias.to_owned()))?;
            self.entry_of(rec)
        })
    }

    /// DER certificates trusted as CAs for `usage` (`C` or `T` in the SSL
    /// trust field), sorted by alias.
    ///
    /// # Errors
    /// A file is unreadable or damaged.
    pub fn trusted_cas(&self, usage: CaUsage) -> Result<Vec<Vec<u8>>> {
        Ok(self
            .certificates()?
            .into_iter()
            .filter(|e| match usage {
                CaUsage::ServerAuth => e.trust.is_trusted_server_ca(),
                CaUsage::ClientAuth => e.trust.is_trusted_client_ca(),
            })
            .map(|e| e.info.der)
            .collect())
    }

    /// The decrypted private key of an internal certificate.
    ///
    /// # Errors
    /// [`Error::UnknownAlias`], [`Error::NoPrivateKey`],
    /// [`Error::WrongPassword`].
    pub fn private_key(&self, alias: &str, password: &Password) -> Result<PrivateKey> {
        self.with_snapshot(|idx| {
            let krec = idx.key_of(alias)?;
            let enc = read_checked(&self.dir, &krec.file, &krec.sha256)?;
            PrivateKey::decrypt(&enc, password.expose().as_bytes(), || Error::WrongPassword)
        })
    }

    /// The signer for an internal certificate's key, from `cache` when the
    /// same encrypted key file was opened with the same password before
    /// (no key derivation then), else decrypted and remembered there.
    pub(crate) fn cached_signer(
        &self,
        alias: &str,
        password: &Password,
        cache: &KeyCache,
    ) -> Result<Arc<SoftwareSigner>> {
        self.with_snapshot(|idx| {
            let krec = idx.key_of(alias)?;
            if let Some(signer) = cache.get(&krec.sha256, password) {
                return Ok(signer);
            }
            let enc = read_checked(&self.dir, &krec.file, &krec.sha256)?;
            let key =
                PrivateKey::decrypt(&enc, password.expose().as_bytes(), || Error::WrongPassword)?;
            let signer = Arc::new(SoftwareSigner::new(&key)?);
            cache.insert(&krec.sha256, password, Arc::clone(&signer));
            Ok(signer)
        })
    }

    /// Forgets the keys in `cache` this database no longer holds.
    pub fn prune_key_cache(&self, cache: &KeyCache) {
        let files: Vec<&str> = self.index.keys.iter().map(|k| k.sha256.as_str()).collect();
        cache.retain(&files);
    }

    /// The issuers of `leaf` found among the directory's certificates, in
    /// chain order (closest first).
    ///
    /// # Errors
    /// A file is unreadable or damaged.
    pub fn issuer_chain(&self, leaf: &CertInfo) -> Result<Vec<Vec<u8>>> {
        let all = self.certificates()?;
        let mut chain: Vec<Vec<u8>> = Vec::new();
        let mut cur = leaf.clone();
        while !cur.self_signed && chain.len() < MAX_CHAIN {
            let Some(next) = all.iter().find(|e| {
                e.info.subject_der == cur.issuer_der
                    && e.info.der != cur.der
                    && !chain.contains(&e.info.der)
            }) else {
                break;
            };
            chain.push(next.info.der.clone());
            cur = next.info.clone();
        }
        Ok(chain)
    }

    /// The configured PKCS#11 modules.
    pub fn modules(&self) -> Vec<Module> {
        self.index
            .modules
            .iter()
            .map(|m| Module {
                name: m.name.clone(),
                library: PathBuf::from(&m.library),
                token_label: m.token.clone(),
            })
            .collect()
    }

    /// One configured module.
    ///
    /// # Errors
    /// [`Error::UnknownModule`].
    pub fn module(&self, name: &str) -> Result<Module> {
        self.modules()
            .into_iter()
            .find(|m| m.name == name)
            .ok_or_else(|| Error::UnknownModule(name.to_owned()))
    }

    /// Checks that every entry's files are present, match their checksums
    /// and parse, and counts files no entry refers to.
    ///
    /// # Errors
    /// The first problem found.
    pub fn check_integrity(&self) -> Result<IntegrityReport> {
        let idx = &self.index;
        let mut rep = IntegrityReport::default();
        let mut referenced = HashSet::new();
        for c in &idx.certs {
            let der = read_checked(&self.dir, &c.file, &c.sha256)?;
            CertInfo::parse(&der)?;
            referenced.insert(c.file.clone());
            rep.certificates += 1;
        }
        for k in &idx.keys {
            let enc = read_checked(&self.dir, &k.file, &k.sha256)?;
            pkcs8::EncryptedPrivateKeyInfoRef::try_from(enc.as_slice())
                .map_err(|e| Error::Corrupt(format!("{}: {e}", k.file)))?;
            referenced.insert(k.file.clone());
            rep.keys += 1;
        }
        for sub in [CERTS_DIR, KEYS_DIR] {
            let d = self.dir.join(sub);
            let rd = fs::read_dir(&d).map_err(|e| Error::io("listing", &d, e))?;
            for ent in rd.flatten() {
                let rel = format!("{sub}/{}", ent.file_name().to_string_lossy());
                if !referenced.contains(&rel) {
                    rep.orphans += 1;
                }
            }
        }
        Ok(rep)
    }

    fn transact<T>(&mut self, f: impl FnOnce(&mut Txn<'_>) -> Result<T>) -> Result<T> {
        let _lock = WriteLock::acquire(&self.dir)?;
        // An earlier commit whose index rename could not be synced may still
        // be undone by a crash, bringing back the index before it: only
        // once the directory is synced are the files only that older index
        // names garbage.
        sync_dir(&self.dir)?;
        let index = load_index(&self.dir)?;
        sweep(&self.dir, &index);
        let mut txn = Txn {
            dir: &self.dir,
            index,
            written: Vec::new(),
        };
        match f(&mut txn) {
            Ok(v) => {
                txn.index.generation += 1;
                match write_index(&self.dir, &txn.index) {
                    Ok(()) => {}
                    Err(e @ Error::NotDurable { .. }) => {
                        // The new index is in place but a crash may bring
                        // the old one back: keep every file either names
                        // (no rollback, no sweep) and say so.
                        self.index = txn.index;
                        return Err(e);
                    }
                    Err(e) => {
                        txn.rollback();
                        return Err(e);
                    }
                }
                sweep(&self.dir, &txn.index);
                self.index = txn.index;
                Ok(v)
            }
            Err(e) => {
                txn.rollback();
                Err(e)
            }
        }
    }

    /// Adds a certificate. Its private key is linked (and `u` set) when a
    /// key in the directory matches its public key.
    ///
    /// # Errors
    /// Bad alias, alias in use, certificate already present, I/O.
    pub fn add_certificate(&mut self, alias: &str, der: &[u8], trust: TrustFlags) -> Result<()> {
        check_alias(alias)?;
        let info = CertInfo::parse(der)?;
        self.transact(|t| {
            t.add_cert(alias, &info, trust, None)?;
            Ok(())
        })
    }

    /// Adds many certificates in one commit (all or none). Certificates
    /// already present are skipped; returns the aliases added.
    ///
    /// # Errors
    /// Bad alias, alias in use, bad certificate, I/O.
    pub fn add_certificates_batch(
        &mut self,
        items: &[(String, Vec<u8>, TrustFlags)],
    ) -> Result<Vec<String>> {
        let mut parsed = Vec::with_capacity(items.len());
        for (alias, der, trust) in items {
            check_alias(alias)?;
            parsed.push((alias.as_str(), CertInfo::parse(der)?, *trust));
        }
        self.transact(|t| {
            let mut added = Vec::new();
            for (alias, info, trust) in &parsed {
                if t.index.certs.iter().any(|c| c.sha256 == hex(&info.sha256)) {
                    continue;
                }
                t.add_cert(alias, info, *trust, None)?;
                added.push((*alias).to_owned());
            }
            Ok(added)
        })
    }

    /// Stores a private key with no certificate yet (`request-cert`): a
    /// later `add-cert` of the issued certificate links it.
    ///
    /// # Errors
    /// Wrong password, I/O.
    pub fn store_key(&mut self, password: &Password, key: &PrivateKey) -> Result<()> {
        self.verify_password(password)?;
        let enc = key.encrypt(password.expose().as_bytes(), self.kdf())?;
        self.transact(|t| {
            t.put_key(key, &enc)?;
            Ok(())
        })
    }

    /// Adds a certificate with its private key (self-signed certificates,
    /// PKCS#12 import) and, optionally, issuer certificates under their own
    /// aliases (skipped when already present). Returns the aliases added.
    ///
    /// # Errors
    /// Wrong password, key does not match the certificate, alias in use.
    pub fn add_with_key(
        &mut self,
        password: &Password,
        alias: &str,
        der: &[u8],
        key: &PrivateKey,
        trust: TrustFlags,
        issuers: &[Vec<u8>],
    ) -> Result<Vec<String>> {
        self.add_all_with_keys(password, &[(alias, der, key, trust, issuers)])
    }

    /// [`CertDb::add_with_key`] for several certificates in one commit
    /// (alias, certificate DER, key, trust, issuer certificates):
    /// all of them are added, or none.
    pub(crate) fn add_all_with_keys(
        &mut self,
        password: &Password,
        items: &[KeyedCert<'_>],
    ) -> Result<Vec<String>> {
        self.verify_password(password)?;
        let mut prepared = Vec::with_capacity(items.len());
        for &(alias, der, key, trust, issuers) in items {
            check_alias(alias)?;
            let info = CertInfo::parse(der)?;
            if info.spki != key.public_key_info() {
                return Err(Error::BadKey(
                    "the private key does not match the certificate".into(),
                ));
            }
            let issuer_infos = issuers
                .iter()
                .map(|d| CertInfo::parse(d))
                .collect::<Result<Vec<_>>>()?;
            let enc = key.encrypt(password.expose().as_bytes(), self.kdf())?;
            prepared.push((alias, info, key, enc, trust, issuer_infos));
        }
        self.transact(|t| {
            let mut added = Vec::new();
            for (alias, info, key, enc, trust, issuer_infos) in &prepared {
                let kid = t.put_key(key, enc)?;
                t.add_cert(alias, info, *trust, Some(kid))?;
                added.push((*alias).to_owned());
                for ii in issuer_infos {
                    if t.index.certs.iter().any(|c| c.sha256 == hex(&ii.sha256)) {
                        continue;
                    }
                    let base = default_alias(ii);
                    let mut a = base.clone();
                    let mut n = 2;
                    while t.index.cert(&a).is_some() {
                        a = format!("{base} #{n}");
                        n += 1;
                    }
                    t.add_cert(&a, ii, TrustFlags::default(), None)?;
                    added.push(a);
                }
            }
            Ok(added)
        })
    }

    /// Removes a certificate and, unless another certificate uses it, its
    /// private key.
    ///
    /// # Errors
    /// [`Error::UnknownAlias`], I/O.
    pub fn remove(&mut self, alias: &str) -> Result<()> {
        self.transact(|t| {
            let pos = t
                .index
                .certs
                .iter()
                .position(|c| c.alias == alias)
                .ok_or_else(|| Error::UnknownAlias(alias.to_owned()))?;
            let rec = t.index.certs.remove(pos);
            if let Some(k) = rec.key
                && !t.index.certs.iter().any(|c| c.key.as_ref() == Some(&k))
            {
                t.index.keys.retain(|r| r.id != k);
            }
            Ok(())
        })
    }

    /// Sets trust flags (`u` follows the key, whatever is given).
    ///
    /// # Errors
    /// [`Error::UnknownAlias`], I/O.
    pub fn set_trust(&mut self, alias: &str, trust: TrustFlags) -> Result<()> {
        self.transact(|t| {
            let rec = t
                .index
                .certs
                .iter_mut()
                .find(|c| c.alias == alias)
                .ok_or_else(|| Error::UnknownAlias(alias.to_owned()))?;
            let mut tr = trust;
            tr.set_user(false);
            rec.trust = tr.to_string();
            Ok(())
        })
    }

    /// Replaces a certificate with its renewal, keeping alias and trust. When
    /// the old certificate had a private key, the new one must match a key
    /// in the directory: the same key, or one stored by `request-cert` that
    /// no other certificate uses.
    ///
    /// # Errors
    /// [`Error::UnknownAlias`], [`Error::RenewMismatch`], I/O.
    pub fn replace_certificate(&mut self, alias: &str, der: &[u8]) -> Result<()> {
        let info = CertInfo::parse(der)?;
        self.transact(|t| {
            let old = t
                .index
                .cert(alias)
                .cloned()
                .ok_or_else(|| Error::UnknownAlias(alias.to_owned()))?;
            let new_sha = hex(&info.sha256);
            if old.sha256 == new_sha {
                return Err(Error::RenewMismatch {
                    alias: alias.to_owned(),
                    reason: "the new certificate is the one already installed",
                });
            }
            if let Some(other) = t.index.certs.iter().find(|c| c.sha256 == new_sha) {
                return Err(Error::DuplicateCertificate(other.alias.clone()));
            }
            let key = t.matching_key(&info.spki);
            if let Some(k) = &key
                && old.key.as_ref() != Some(k)
                && t.index.certs.iter().any(|c| c.key.as_ref() == Some(k))
            {
                return Err(Error::RenewMismatch {
                    alias: alias.to_owned(),
                    reason: "the new certificate's key belongs to another certificate",
                });
            }
            if old.key.is_some() && key.is_none() {
                return Err(Error::RenewMismatch {
                    alias: alias.to_owned(),
                    reason: "no private key in the database matches the new certificate",
                });
            }
            let (file, sha) = t.put(CERTS_DIR, "der", &info.der)?;
            let rec = t
                .index
                .certs
                .iter_mut()
                .find(|c| c.alias == alias)
                .ok_or_else(|| Error::UnknownAlias(alias.to_owned()))?;
            rec.file = file;
            rec.sha256 = sha;
            rec.key = key;
            let still_used: HashSet<String> =
                t.index.certs.iter().filter_map(|c| c.key.clone()).collect();
            if let Some(k) = old.key
                && !still_used.contains(&k)
            {
                t.index.keys.retain(|r| r.id != k);
            }
            Ok(())
        })
    }

    /// Sets a module's line in `sslpassword.conf` (its token's user PIN),
    /// under the writers' lock.
    ///
    /// # Errors
    /// Unknown module, I/O.
    pub fn set_module_password(&mut self, module: &str, pin: Password) -> Result<()> {
        let lock = WriteLock::acquire(&self.dir)?;
        self.index = load_index(&self.dir)?;
        if module != INTERNAL_TOKEN && !self.index.modules.iter().any(|m| m.name == module) {
            return Err(Error::UnknownModule(module.to_owned()));
        }
        let mut pins = PasswordFile::load(&self.dir)?;
        pins.set(module, pin)?;
        pins.store(&lock)
    }

    /// Adds a PKCS#11 module (`add-module NAME LIBRARY`).
    ///
    /// # Errors
    /// The name is taken or invalid, I/O.
    pub fn add_module(
        &mut self,
        name: &str,
        library: &Path,
        token_label: Option<&str>,
    ) -> Result<()> {
        if name.is_empty() || name.contains([':', '\n', '\r']) || name == INTERNAL_TOKEN {
            return Err(Error::InvalidAlias(
                name.to_owned(),
                "module names are non-empty, without ':'",
            ));
        }
        let lib = library
            .to_str()
            .ok_or_else(|| Error::Unsupported("non-UTF-8 library path".into()))?
            .to_owned();
        self.transact(|t| {
            if t.index.modules.iter().any(|m| m.name == name) {
                return Err(Error::ModuleExists(name.to_owned()));
            }
            t.index.modules.push(ModuleRecord {
                name: name.to_owned(),
                library: lib.clone(),
                token: token_label.map(str::to_owned),
            });
            Ok(())
        })
    }
}

/// A default alias for a certificate: its subject CN, else the subject.
pub(crate) fn default_alias(info: &CertInfo) -> String {
    let cn = info
        .subject
        .split(',')
        .find_map(|p| p.strip_prefix("CN="))
        .map(str::to_owned)
        .unwrap_or_else(|| info.subject.clone());
    let mut a: String = cn
        .chars()
        .filter(|c| !c.is_control() && *c != ':')
        .collect();
    a = a.trim().chars().take(MAX_ALIAS).collect();
    if a.is_empty() {
        "CA certificate".into()
    } else {
        a
    }
}

struct Txn<'a> {
    dir: &'a Path,
    index: Index,
    written: Vec<PathBuf>,
}

impl Txn<'_> {
    /// Writes a content-addressed file (durably) and returns its name and
    /// checksum. Until the index refers to it, it is an orphan.
    fn put(&mut self, sub: &str, ext: &str, data: &[u8]) -> Result<(String, String)> {
        let sha = sha_hex(data);
        let rel = format!("{sub}/{sha}.{ext}");
        let path = self.dir.join(&rel);
        if !path.exists() {
            atomic_write(&path, data, true)?;
            self.written.push(path);
        }
        Ok((rel, sha))
    }

    fn matching_key(&self, spki: &[u8]) -> Option<String> {
        let want = sha_hex(spki);
        self.index
            .keys
            .iter()
            .find(|k| k.spki_sha256 == want)
            .map(|k| k.id.clone())
    }

    fn put_key(&mut self, key: &PrivateKey, encrypted: &[u8]) -> Result<String> {
        if let Some(id) = self.matching_key(key.public_key_info()) {
            return Ok(id);
        }
        let (file, sha) = self.put(KEYS_DIR, "p8", encrypted)?;
        let id = random_hex(8)?;
        self.index.keys.push(KeyRecord {
            id: id.clone(),
            file,
            sha256: sha,
            spki_sha256: sha_hex(key.public_key_info()),
            algorithm: key.algorithm().to_string(),
        });
        Ok(id)
    }

    fn add_cert(
        &mut self,
        alias: &str,
        info: &CertInfo,
        trust: TrustFlags,
        key: Option<String>,
    ) -> Result<()> {
        if self.index.cert(alias).is_some() {
            return Err(Error::AliasInUse(alias.to_owned()));
        }
        let sha = hex(&info.sha256);
        if let Some(other) = self.index.certs.iter().find(|c| c.sha256 == sha) {
            return Err(Error::DuplicateCertificate(other.alias.clone()));
        }
        let key = key.or_else(|| self.matching_key(&info.spki));
        let (file, sha) = self.put(CERTS_DIR, "der", &info.der)?;
        let mut tr = trust;
        tr.set_user(false);
        self.index.certs.push(CertRecord {
            alias: alias.to_owned(),
            file,
            sha256: sha,
            trust: tr.to_string(),
            key,
        });
        Ok(())
    }

    fn rollback(&mut self) {
        for p in self.written.drain(..) {
            let _ = fs::remove_file(p);
        }
    }
}

fn write_index(dir: &Path, index: &Index) -> Result<()> {
    let text =
        toml::to_string(index).map_err(|e| Error::Corrupt(format!("encoding index: {e}")))?;
    let mut out =
        String::from("# Portcullis certificate database index. Written by msgcert; do not edit.\n");
    out.push_str(&text);
    atomic_write(&dir.join(INDEX_FILE), out.as_bytes(), true)
}

/// Removes temporary files and files no index entry refers to. Only a
/// writer holding the lock calls this.
fn sweep(dir: &Path, index: &Index) {
    let referenced: HashSet<&str> = index
        .certs
        .iter()
        .map(|c| c.file.as_str())
        .chain(index.keys.iter().map(|k| k.file.as_str()))
        .collect();
    for sub in [".", CERTS_DIR, KEYS_DIR] {
        let d = dir.join(sub);
        let Ok(rd) = fs::read_dir(&d) else { continue };
        let mut removed = false;
        for ent in rd.flatten() {
            let name = ent.file_name().to_string_lossy().into_owned();
            let stale_tmp = name.starts_with(fsutil::TMP_PREFIX);
            let orphan = sub != "." && !referenced.contains(format!("{sub}/{name}").as_str());
            if stale_tmp || orphan {
                if let Err(e) = fs::remove_file(ent.path()) {
                    tracing::warn!(file = %ent.path().display(), error = %e, "removing unreferenced file");
                } else {
                    removed = true;
                }
            }
        }
        if removed {
            let _ = sync_dir(&d);
        }
    }
}

/// Expiry check: entries whose validity ends before `now + days`.
pub fn expiring(entries: &[CertEntry], now: OffsetDateTime, days: u32) -> Vec<&CertEntry> {
    let limit = crate::x509gen::add_days(now, days);
    entries
        .iter()
        .filter(|e| e.info.not_after < limit)
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::fsutil::{DIR_SYNC_ATTEMPTS, DIR_SYNC_FAULTS};
    use crate::key::KeyType;
    use crate::signer::SoftwareSigner;
    use crate::x509gen::{Subject, SubjectFields, Validity, self_signed};

    fn cert(cn: &str) -> Vec<u8> {
        let k = PrivateKey::generate(KeyType::EcP256).unwrap();
        self_signed(
            &SoftwareSigner::new(&k).unwrap(),
            &Subject::from_fields(&SubjectFields::new(cn)).unwrap(),
            Validity::days(OffsetDateTime::now_utc(), 30),
        )
        .unwrap()
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir.join(CERTS_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn an_unsynced_index_rename_fails_and_sweeps_nothing_the_old_index_names() {
        let dir = tempfile::tempdir().unwrap();
        let mut db =
            CertDb::create(dir.path(), &Password::new("pw"), KdfParams::INSECURE_FAST).unwrap();
        db.add_certificate("A", &cert("a.example"), TrustFlags::default())
            .unwrap();
        let before = files(dir.path());
        assert_eq!(before.len(), 1);

        // The sync before the transaction succeeds, every sync after the
        // index rename fails.
        DIR_SYNC_FAULTS.set((1, DIR_SYNC_ATTEMPTS));
        let err = db.remove("A").unwrap_err();
        assert!(matches!(err, Error::NotDurable { .. }), "{err}");
        assert!(err.to_string().contains("may not survive a crash"), "{err}");
        // The old index (should a crash bring it back) still finds A's file.
        assert_eq!(files(dir.path()), before);
        // The new index is the one in place.
        assert!(CertDb::open(dir.path()).unwrap().certificate("A").is_err());

        // The next writer syncs first, and only then sweeps.
        DIR_SYNC_FAULTS.set((0, 0));
        db.add_certificate("B", &cert("b.example"), TrustFlags::default())
            .unwrap();
        let after = files(dir.path());
        assert_eq!(after.len(), 1);
        assert_ne!(after, before);
    }

    #[test]
    fn a_directory_sync_that_fails_once_is_retried() {
        let dir = tempfile::tempdir().unwrap();
        let mut db =
            CertDb::create(dir.path(), &Password::new("pw"), KdfParams::INSECURE_FAST).unwrap();
        db.add_certificate("A", &cert("a.example"), TrustFlags::default())
            .unwrap();
        DIR_SYNC_FAULTS.set((1, 1));
        db.remove("A").unwrap();
        assert!(files(dir.path()).is_empty());
    }

    #[test]
    fn a_writer_that_cannot_sync_first_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut db =
            CertDb::create(dir.path(), &Password::new("pw"), KdfParams::INSECURE_FAST).unwrap();
        db.add_certificate("A", &cert("a.example"), TrustFlags::default())
            .unwrap();
        let generation = CertDb::open(dir.path()).unwrap().generation();
        DIR_SYNC_FAULTS.set((0, 1));
        assert!(db.remove("A").is_err());
        DIR_SYNC_FAULTS.set((0, 0));
        let db = CertDb::open(dir.path()).unwrap();
        assert_eq!(db.generation(), generation);
        assert!(db.certificate("A").is_ok());
    }

    #[test]
    fn the_password_file_is_written_under_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        CertDb::create(dir.path(), &Password::new("pw"), KdfParams::INSECURE_FAST).unwrap();
        db_add_modules(dir.path());
        // Many writers set their module's PIN at once: every line survives,
        // which a read-modify-write outside the lock would lose.
        let writers: Vec<_> = (0..8)
            .map(|i| {
                let path = dir.path().to_owned();
                std::thread::spawn(move || {
                    let mut db = CertDb::open(&path).unwrap();
                    db.set_module_password(&format!("m{i}"), Password::new(format!("pin{i}")))
                        .unwrap();
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        let pins = PasswordFile::load(dir.path()).unwrap();
        for i in 0..8 {
            assert_eq!(
                pins.get(&format!("m{i}")).unwrap().expose(),
                format!("pin{i}")
            );
        }
        assert_eq!(pins.internal().unwrap().expose(), "pw");
    }

    #[test]
    fn a_key_cache_decrypts_each_key_once() {
        let dir = tempfile::tempdir().unwrap();
        let pw = Password::new("pw");
        let db =
            CertDb::generate(dir.path(), &pw, KdfParams::INSECURE_FAST, KeyType::EcP256).unwrap();
        let pins = db.password_file().unwrap();
        let cache = KeyCache::new();
        let a = db
            .load_identity_cached("Server-Cert", &pins, &cache)
            .unwrap();
        let b = CertDb::open(dir.path())
            .unwrap()
            .load_identity_cached("Server-Cert", &pins, &cache)
            .unwrap();
        assert_eq!(cache.decryptions(), 1);
        assert_eq!(a.signer.public_key_info(), b.signer.public_key_info());
        let sig = b.signer.sign(b.signer.schemes()[0], b"m").unwrap();
        crate::signer::verify(
            a.signer.public_key_info(),
            b.signer.schemes()[0],
            b"m",
            &sig,
        )
        .unwrap();

        // Another password is not served from the cache.
        let mut wrong = PasswordFile::default();
        wrong.set(INTERNAL_TOKEN, Password::new("not-pw")).unwrap();
        let err = db
            .load_identity_cached("Server-Cert", &wrong, &cache)
            .unwrap_err();
        assert!(matches!(err, Error::WrongPassword), "{err}");

        // A fresh cache decrypts again.
        let fresh = KeyCache::new();
        db.load_identity_cached("Server-Cert", &pins, &fresh)
            .unwrap();
        assert_eq!(fresh.decryptions(), 1);

        // Keys the database no longer holds are dropped.
        let mut w = CertDb::open(dir.path()).unwrap();
        w.remove("Server-Cert").unwrap();
        w.prune_key_cache(&cache);
        assert!(cache.is_empty());
    }

    fn db_add_modules(dir: &Path) {
        let mut db = CertDb::open(dir).unwrap();
        for i in 0..8 {
            db.add_module(&format!("m{i}"), Path::new("/nonexistent/module.so"), None)
                .unwrap();
        }
    }
}
