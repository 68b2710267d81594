//! The users file: an embedded user source in Dovecot's passwd-file format,
//! for the quickstart and for sites too small for a directory.
//!
//! ```text
//! user:password:uid:gid:(gecos):home:(shell):extra_fields
//! ```
//!
//! One user a line; trailing fields may be left out (`user:password` is a
//! complete line). Blank lines and lines whose first non-blank character is
//! `#` are ignored. The extra fields are space-separated `key=value` pairs
//! (everything after the seventh `:`, so values may hold `:`); a bare `key`
//! has an empty value. Keys are case-insensitive.
//!
//! | extra field | meaning |
//! |---|---|
//! | `mailhost=` | the user's message store (`mailHost`) |
//! | `mail=` | the primary address (the directory's `mail`, *not* Dovecot's userdb mail location) |
//! | `mailalternateaddress=` | more addresses: the field may repeat, and each value may list several, separated by commas |
//! | `allowedserviceaccess=` | the user's access filter (`mailAllowedServiceAccess`) |
//! | `status=` | `active` (or `overquota`) lets the user in; anything else (`inactive`, `deleted`, `hold`, …) refuses every login, as `inetUserStatus` / `mailUserStatus` do |
//! | `nologin` | Dovecot's field: refuses every login (unless `nologin=no`) |
//! | `admin=yes` | the user may act as any other user of the file (proxy authorization); `no` or absent: not |
//! | anything else | kept as an attribute of the account, e.g. `userdb_quota_rule=*:storage=1G` |
//!
//! `mailhost`, `mail`, `allowedserviceaccess`, `status` and `admin` may
//! appear once a line. Dovecot's `nopassword` is *not* honoured: a user
//! always needs a password (or an external identity) to log in.
//!
//! # Passwords
//!
//! `{SCHEME}value` with Dovecot's scheme names, checked with the crate's
//! [`crate::scheme`] verifiers; a value without a scheme is `CRYPT`
//! (Dovecot's default), as are libpam-pwdfile's `value[13]`, and `value[34]`
//! is `MD5-CRYPT`. An empty value, or one starting with `*` or `!`, is a
//! locked account: no password matches it.
//!
//! | Dovecot scheme | checked as |
//! |---|---|
//! | `PLAIN`, `CLEARTEXT` | cleartext (also served to CRAM-MD5, DIGEST-MD5, APOP and SCRAM) |
//! | `CRYPT`, `SHA512-CRYPT`, `SHA256-CRYPT`, `MD5-CRYPT`, `BLF-CRYPT` | `{CRYPT}` (`$6$`, `$5$`, `$1$`, `$2a$`/`$2b$`/`$2y$`; traditional DES is refused) |
//! | `MD5` | md5-crypt when the value starts with `$1$` (Dovecot's meaning), else as `LDAP-MD5` |
//! | `ARGON2I`, `ARGON2ID` | `{ARGON2}` (PHC string) |
//! | `SHA`, `SHA1`, `SHA256`, `SHA512`, `LDAP-MD5`, `PLAIN-MD5` | `{SHA}`, `{SHA256}`, `{SHA512}`, `{MD5}` |
//! | `SSHA`, `SSHA256`, `SSHA512`, `SMD5` | the same salted schemes |
//! | `PBKDF2` | Dovecot's `$1$salt$rounds$hex` (PBKDF2-HMAC-SHA1), checked as `{PBKDF2-SHA1}` |
//! | `SCRAM-SHA-1`, `SCRAM-SHA-256` | Dovecot's `iterations,salt,StoredKey,ServerKey` (base64): the RFC 5803 secret for SCRAM, and checked as such for PLAIN/LOGIN |
//!
//! The digest schemes take Dovecot's encoding suffixes (`{SHA256.HEX}`,
//! `{PLAIN.B64}`, `.BASE64`); without one, `PLAIN-MD5` is hex and the others
//! base64 (or hex when the value has exactly the hex length). Any other
//! scheme (`CRAM-MD5`, `DIGEST-MD5`, `DES-CRYPT`, …) refuses the file.
//!
//! # Names
//!
//! User names are SASLprep-normalised and compared without regard to case
//! (as the directory's `uid` and `mail` match). A login `user@domain` finds
//! the line `user@domain`; with a default domain ([`UserFileOptions`]), a
//! login without a domain also finds `user@<default domain>`, and a login in
//! the default domain also finds a line `user` without a domain. The
//! canonical name of a line is its user name, with `@<default domain>`
//! appended when it has no domain (and a default domain is set). Two lines
//! with the same canonical name refuse the file.
//!
//! # Loading and reloading
//!
//! A file with any bad line is refused as a whole, with the line's number:
//! at start ([`UserFile::open`] fails) and on reload (the previous good
//! version stays in use and the refusal is logged). A missing or unreadable
//! file on reload also keeps the previous version.
//!
//! There is no watcher thread: every lookup first `stat`s the file. When its
//! device, inode, size, modification or change time differ from the version
//! in use, the file is read again; a content hash (SHA-256) decides whether
//! it really changed. Because a file rewritten in place within one tick of
//! the file system's clock keeps its stamp, a version whose modification
//! time is not safely older than the moment it was read is re-read (and
//! hashed) at each lookup until it is. Rewriting the file and renaming it
//! over the old one is the safe way to edit it.
//!
//! # Timing
//!
//! An unknown user, a locked account and a wrong password cost the same.
//! When there is no real value to check, the password is checked (and the
//! outcome ignored) against the stored value of another line, chosen from
//! the login's hash, so the work is that of one of the file's own schemes
//! and cost parameters, the same each time for the same login; a file with
//! no checkable line uses a decoy value in the default scheme
//! (sha512-crypt), as the directory does. Hashing and the file access run
//! on tokio's blocking pool, never on an async worker.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use portcullis_certmap::ClientCert;
use portcullis_sasl::{
    Account, Authorize, BoxFuture, CredentialVerifier, ExternalIdentity, FetchPassword,
    FetchScramSecret, IdentityMapper, MIN_ITERATIONS, MapIdentity, Password, ProxyAuthorizer,
    ScramAlgorithm, ScramSecret, Verdict, VerifyPassword, WithAccount,
};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use crate::scheme::{self, NewScheme};
use crate::{Error, Reject};

/// The largest users file read (bytes); a larger one is refused.
pub const MAX_FILE_SIZE: u64 = 16 * 1024 * 1024;

/// The longest line (bytes).
pub const MAX_LINE_LENGTH: usize = 64 * 1024;

/// The longest user name (bytes, after normalisation).
const MAX_NAME: usize = 1024;

/// How much older than the moment it was read a file's modification time
/// must be before its stamp alone is trusted (coarser than any file
/// system's timestamp granularity in use).
const SETTLE: Duration = Duration::from_secs(2);

/// The parameter naming the users file.
const PARAM_USERFILE: &str = "local.userfile";

/// A password as stored on a line, converted to what the crate's verifiers
/// take. Never printed.
#[derive(Clone, Default)]
struct Credential {
    /// Dovecot's scheme name, for logs.
    scheme: String,
    /// A value [`scheme::verify`] checks; `None` for a locked account.
    stored: Option<Zeroizing<Vec<u8>>>,
    /// The cleartext (PLAIN / CLEARTEXT lines).
    cleartext: Option<Password>,
    /// The stored SCRAM keys (SCRAM-SHA-* lines).
    scram: Option<ScramSecret>,
}

/// One user of the file. `Debug` never shows the password.
#[derive(Clone)]
#[non_exhaustive]
pub struct FileUser {
    /// The canonical name (see the [module docs](self)).
    pub name: String,
    /// The user name as normalised from the line.
    pub user: String,
    /// The domain: the part of the canonical name after its last `@`.
    pub domain: Option<String>,
    /// The line number (from 1).
    pub line: usize,
    /// The uid field, if not empty.
    pub uid: Option<String>,
    /// The gid field, if not empty.
    pub gid: Option<String>,
    /// The home field, if not empty.
    pub home: Option<String>,
    /// `mailhost=`.
    pub mail_host: Option<String>,
    /// `mail=`.
    pub mail: Option<String>,
    /// Every `mailalternateaddress=` address, in order.
    pub alternate_addresses: Vec<String>,
    /// `allowedserviceaccess=`.
    pub allowed_service_access: Option<String>,
    /// `status=`, as written.
    pub status: Option<String>,
    /// Whether `nologin` is set.
    pub nologin: bool,
    /// `admin=yes`: may act as other users.
    pub admin: bool,
    /// Every other extra field (keys in lower case), values in order.
    pub attributes: BTreeMap<String, Vec<String>>,
    credential: Credential,
    /// SCRAM secrets derived from a cleartext password, made on first use
    /// (SHA-1, SHA-256).
    derived: [OnceLock<ScramSecret>; 2],
}

impl fmt::Debug for FileUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileUser")
            .field("name", &self.name)
            .field("line", &self.line)
            .field("scheme", &self.credential.scheme)
            .field("mail_host", &self.mail_host)
            .field("mail", &self.mail)
            .field("status", &self.status)
            .field("admin", &self.admin)
            .finish_non_exhaustive()
    }
}

impl FileUser {
    /// Why this account may not log in, if it may not: a `status` other
    /// than `active` / `overquota`, or `nologin`.
    ///
    /// # Errors
    /// [`Reject::AccountStatus`] naming the field.
    pub fn status_check(&self) -> Result<(), Reject> {
        if let Some(s) = &self.status
            && !(s.eq_ignore_ascii_case("active") || s.eq_ignore_ascii_case("overquota"))
        {
            return Err(Reject::AccountStatus {
                attribute: "status",
                value: s.clone(),
            });
        }
        if self.nologin {
            return Err(Reject::AccountStatus {
                attribute: "nologin",
                value: "yes".to_owned(),
            });
        }
        Ok(())
    }

    /// Whether the line has a password that can be checked.
    #[must_use]
    pub fn has_password(&self) -> bool {
        self.credential.stored.is_some()
    }

    /// Dovecot's name of the line's password scheme (`SHA512-CRYPT`, …;
    /// empty for a locked account).
    #[must_use]
    pub fn scheme(&self) -> &str {
        &self.credential.scheme
    }

    /// Every address of the user: `mail`, then the alternate addresses.
    pub fn addresses(&self) -> impl Iterator<Item = &str> {
        self.mail
            .iter()
            .chain(self.alternate_addresses.iter())
            .map(String::as_str)
    }
}

/// A parsed users file: every line checked, names unique.
#[derive(Debug, Clone, Default)]
pub struct Users {
    users: Vec<FileUser>,
    /// Normalised user name → index.
    by_user: HashMap<String, usize>,
}

fn line_error(line: usize, what: impl fmt::Display) -> Error {
    Error::Config(format!("users file line {line}: {what}"))
}

/// SASLprep, then lower case: how names are compared.
/// The key a name is stored and looked up under: SASLprep, then lower
/// case. A key must be its own key, so a name whose lower case SASLprep
/// refuses or changes (lower-case letters newer than SASLprep's Unicode
/// 3.2, such as Cherokee's) is not a name: otherwise a stored user could
/// not be found by the very name the file gave.
fn normalize(name: &str) -> Option<String> {
    let prepped = stringprep::saslprep(name).ok()?;
    let lower = prepped.to_lowercase();
    let stable = stringprep::saslprep(&lower).ok()? == lower.as_str();
    (stable && !lower.is_empty() && lower.len() <= MAX_NAME).then_some(lower)
}

fn domain_of(name: &str) -> Option<&str> {
    match name.rsplit_once('@') {
        Some((_, d)) if !d.is_empty() => Some(d),
        _ => None,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Base64,
    Hex,
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

fn decode_b64(s: &str) -> Option<Vec<u8>> {
    STANDARD
        .decode(s)
        .or_else(|_| STANDARD_NO_PAD.decode(s))
        .ok()
}

fn decode(body: &str, encoding: Encoding) -> Result<Vec<u8>, String> {
    match encoding {
        Encoding::Hex => decode_hex(body).ok_or_else(|| "password value is not hex".to_owned()),
        Encoding::Base64 => {
            decode_b64(body).ok_or_else(|| "password value is not base64".to_owned())
        }
    }
}

/// Adapted base64 (`.` for `+`, no padding), as `{PBKDF2-*}` values use.
fn ab64(bytes: &[u8]) -> String {
    STANDARD_NO_PAD.encode(bytes).replace('+', ".")
}

fn hashed(scheme: &str, value: String) -> Credential {
    Credential {
        scheme: scheme.to_owned(),
        stored: Some(Zeroizing::new(value.into_bytes())),
        ..Credential::default()
    }
}

/// A digest scheme: `len` bytes of hash (plus salt when `salted`), in the
/// encoding given, the scheme's default, or hex when the length says so.
fn digest(
    scheme: &str,
    tag: &str,
    len: usize,
    salted: bool,
    body: &str,
    explicit: Option<Encoding>,
    default: Encoding,
) -> Result<Credential, String> {
    let encoding = explicit.unwrap_or(
        if !salted && body.len() == 2 * len && decode_hex(body).is_some() {
            Encoding::Hex
        } else {
            default
        },
    );
    let raw = Zeroizing::new(decode(body, encoding)?);
    let fits = if salted {
        raw.len() > len
    } else {
        raw.len() == len
    };
    if !fits {
        return Err(format!("{scheme} value has the wrong length"));
    }
    Ok(hashed(
        scheme,
        format!("{{{tag}}}{}", STANDARD.encode(&*raw)),
    ))
}

/// A modular-crypt value the `{CRYPT}` verifier knows.
fn crypt(scheme: &str, body: &str) -> Result<Credential, String> {
    const IDS: [&str; 7] = ["$1$", "$5$", "$6$", "$2a$", "$2b$", "$2y$", "$2x$"];
    if !IDS.iter().any(|id| body.starts_with(id)) {
        return Err(if body.starts_with('$') {
            format!("{scheme} value with an unsupported $id$")
        } else {
            format!("{scheme} value in traditional DES crypt, which is not supported")
        });
    }
    Ok(hashed(scheme, format!("{{CRYPT}}{body}")))
}

/// `text` split at every `sep`, when that gives exactly `N` pieces.
fn split_exact<const N: usize>(text: &str, sep: char) -> Option<[&str; N]> {
    let mut out = [""; N];
    let mut pieces = text.split(sep);
    for slot in &mut out {
        *slot = pieces.next()?;
    }
    pieces.next().is_none().then_some(out)
}

/// Dovecot's `$1$salt$rounds$hex` PBKDF2-HMAC-SHA1 value, as the
/// `{PBKDF2-SHA1}rounds$salt$hash` value the crate checks.
fn pbkdf2(body: &str) -> Result<Credential, String> {
    let bad = || "PBKDF2 value is not $1$salt$rounds$hash".to_owned();
    let Some(["", "1", salt, rounds, hash]) = split_exact::<5>(body, '$') else {
        return Err(bad());
    };
    let rounds: u32 = rounds.parse().map_err(|_| bad())?;
    let hash = decode_hex(hash).ok_or_else(bad)?;
    if rounds == 0 || salt.is_empty() || hash.len() != 20 {
        return Err(bad());
    }
    if rounds > scheme::limits::MAX_PBKDF2_ITERATIONS {
        return Err(format!("PBKDF2 value asks for {rounds} rounds, too many"));
    }
    Ok(hashed(
        "PBKDF2",
        format!(
            "{{PBKDF2-SHA1}}{rounds}${}${}",
            ab64(salt.as_bytes()),
            ab64(&hash)
        ),
    ))
}

/// Dovecot's `iterations,salt,StoredKey,ServerKey` SCRAM value.
fn scram(scheme: &str, algorithm: ScramAlgorithm, body: &str) -> Result<Credential, String> {
    let bad = || format!("{scheme} value is not iterations,salt,StoredKey,ServerKey");
    let Some([iter, salt, stored, server]) = split_exact::<4>(body, ',') else {
        return Err(bad());
    };
    // The crate's own `{SCRAM-SHA-*}iterations:salt$StoredKey:ServerKey`.
    let body = format!("{iter}:{salt}${stored}:{server}");
    let parsed = scheme::parse_scram(body.as_bytes(), algorithm.output_len()).map_err(|_| bad())?;
    if parsed.iterations > scheme::limits::MAX_PBKDF2_ITERATIONS {
        return Err(format!(
            "{scheme} value asks for {} iterations, too many",
            parsed.iterations
        ));
    }
    let secret = ScramSecret::new(
        algorithm,
        parsed.iterations,
        parsed.salt,
        parsed.stored_key,
        parsed.server_key,
    )
    .map_err(|_| bad())?;
    let mut c = hashed(scheme, format!("{{{scheme}}}{body}"));
    c.scram = Some(secret);
    Ok(c)
}

/// The password field of a line.
fn credential(field: &str) -> Result<Credential, String> {
    let braced = field
        .strip_prefix('{')
        .and_then(|rest| rest.split_once('}'));
    let Some((tag, body)) = braced else {
        // libpam-pwdfile's suffixes, locked accounts, else CRYPT.
        if let Some(v) = field.strip_suffix("[13]") {
            return crypt("CRYPT", v);
        }
        if let Some(v) = field.strip_suffix("[34]") {
            return crypt("MD5-CRYPT", v);
        }
        if field.is_empty() || field.starts_with('*') || field.starts_with('!') {
            return Ok(Credential::default());
        }
        return crypt("CRYPT", field);
    };
    let tag = tag.to_ascii_uppercase();
    let (name, explicit) = match tag.rsplit_once('.') {
        Some((name, "HEX")) => (name, Some(Encoding::Hex)),
        Some((name, "B64" | "BASE64")) => (name, Some(Encoding::Base64)),
        Some((_, other)) => return Err(format!("unknown password encoding `.{other}`")),
        None => (tag.as_str(), None),
    };
    let b64 = Encoding::Base64;
    let encoded_only = |ok: bool| {
        if explicit.is_some() && !ok {
            Err(format!("scheme {name} takes no encoding suffix"))
        } else {
            Ok(())
        }
    };
    match name {
        "PLAIN" | "CLEARTEXT" => {
            let text = match explicit {
                None => Zeroizing::new(body.to_owned()),
                Some(e) => Zeroizing::new(
                    String::from_utf8(decode(body, e)?)
                        .map_err(|_| "PLAIN value is not UTF-8".to_owned())?,
                ),
            };
            let mut c = hashed(name, format!("{{CLEARTEXT}}{}", &*text));
            c.cleartext = Some(Password::new(text.as_str()));
            Ok(c)
        }
        "SHA" | "SHA1" => digest(name, "SHA", 20, false, body, explicit, b64),
        "SHA256" => digest(name, "SHA256", 32, false, body, explicit, b64),
        "SHA512" => digest(name, "SHA512", 64, false, body, explicit, b64),
        "SSHA" => digest(name, "SSHA", 20, true, body, explicit, b64),
        "SSHA256" => digest(name, "SSHA256", 32, true, body, explicit, b64),
        "SSHA512" => digest(name, "SSHA512", 64, true, body, explicit, b64),
        "SMD5" => digest(name, "SMD5", 16, true, body, explicit, b64),
        "LDAP-MD5" => digest(name, "MD5", 16, false, body, explicit, b64),
        "PLAIN-MD5" => digest(name, "MD5", 16, false, body, explicit, Encoding::Hex),
        "MD5" if body.starts_with("$1$") => {
            encoded_only(false)?;
            crypt(name, body)
        }
        "MD5" => digest(name, "MD5", 16, false, body, explicit, b64),
        "CRYPT" | "SHA512-CRYPT" | "SHA256-CRYPT" | "MD5-CRYPT" | "BLF-CRYPT" => {
            encoded_only(false)?;
            crypt(name, body)
        }
        "ARGON2I" | "ARGON2ID" => {
            encoded_only(false)?;
            let id = if name == "ARGON2I" {
                "$argon2i$"
            } else {
                "$argon2id$"
            };
            if !body.starts_with(id) {
                return Err(format!("{name} value does not start with {id}"));
            }
            Ok(hashed(name, format!("{{ARGON2}}{body}")))
        }
        "PBKDF2" => {
            encoded_only(false)?;
            pbkdf2(body)
        }
        "SCRAM-SHA-1" => {
            encoded_only(false)?;
            scram(name, ScramAlgorithm::Sha1, body)
        }
        "SCRAM-SHA-256" => {
            encoded_only(false)?;
            scram(name, ScramAlgorithm::Sha256, body)
        }
        other => Err(format!("unsupported password scheme `{other}`")),
    }
}

fn yes_no(key: &str, value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "" | "y" | "yes" | "true" | "1" if key == "nologin" => Ok(true),
        "y" | "yes" | "true" | "1" => Ok(true),
        "n" | "no" | "false" | "0" => Ok(false),
        _ => Err(format!("`{key}` takes yes or no, not `{value}`")),
    }
}

fn set_once(slot: &mut Option<String>, key: &str, value: &str) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!("`{key}` appears twice"));
    }
    if value.is_empty() {
        return Err(format!("`{key}` is empty"));
    }
    *slot = Some(value.to_owned());
    Ok(())
}

fn non_empty(field: Option<&str>) -> Option<String> {
    field.filter(|f| !f.is_empty()).map(str::to_owned)
}

/// Parses one (non-blank, non-comment) line.
fn parse_line(number: usize, text: &str) -> Result<FileUser, String> {
    let mut fields = text.splitn(8, ':');
    let raw_user = fields.next().unwrap_or_default();
    if raw_user.is_empty() {
        return Err("empty user name".to_owned());
    }
    if raw_user.chars().any(char::is_whitespace) {
        return Err("user name with blanks".to_owned());
    }
    let user = normalize(raw_user)
        .ok_or_else(|| "user name is not a valid SASLprep string, has a lower case that is not one, or is too long".to_owned())?;
    let credential = credential(fields.next().unwrap_or_default())?;
    let uid = non_empty(fields.next());
    let gid = non_empty(fields.next());
    let _gecos = fields.next();
    let home = non_empty(fields.next());
    let _shell = fields.next();
    let mut u = FileUser {
        name: user.clone(),
        domain: domain_of(&user).map(str::to_owned),
        user,
        line: number,
        uid,
        gid,
        home,
        mail_host: None,
        mail: None,
        alternate_addresses: Vec::new(),
        allowed_service_access: None,
        status: None,
        nologin: false,
        admin: false,
        attributes: BTreeMap::new(),
        credential,
        derived: Default::default(),
    };
    let mut admin_seen = false;
    for item in fields.next().unwrap_or_default().split_ascii_whitespace() {
        let (key, value) = item.split_once('=').unwrap_or((item, ""));
        if key.is_empty() {
            return Err(format!("extra field `{item}` has no name"));
        }
        let key = key.to_ascii_lowercase();
        match key.as_str() {
            "mailhost" => set_once(&mut u.mail_host, &key, value)?,
            "mail" => set_once(&mut u.mail, &key, value)?,
            "allowedserviceaccess" => set_once(&mut u.allowed_service_access, &key, value)?,
            "status" => set_once(&mut u.status, &key, value)?,
            "mailalternateaddress" => {
                for address in value.split(',') {
                    if address.is_empty() {
                        return Err("empty address in `mailalternateaddress`".to_owned());
                    }
                    u.alternate_addresses.push(address.to_owned());
                }
            }
            "admin" => {
                if admin_seen {
                    return Err("`admin` appears twice".to_owned());
                }
                admin_seen = true;
                u.admin = yes_no(&key, value)?;
            }
            "nologin" => u.nologin = yes_no(&key, value)?,
            _ => u.attributes.entry(key).or_default().push(value.to_owned()),
        }
    }
    Ok(u)
}

impl Users {
    /// Parses a whole users file. Never panics, whatever the bytes.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first bad line: not UTF-8, longer than
    /// [`MAX_LINE_LENGTH`], an empty or invalid user name, a password in an
    /// unsupported scheme or malformed, a repeated single-valued field, or a
    /// user already defined on an earlier line. A file larger than
    /// [`MAX_FILE_SIZE`] is refused.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() as u64 > MAX_FILE_SIZE {
            return Err(Error::Config(format!(
                "users file larger than {MAX_FILE_SIZE} bytes"
            )));
        }
        let mut out = Self::default();
        for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            let number = index + 1;
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            if raw.len() > MAX_LINE_LENGTH {
                return Err(line_error(number, "line too long"));
            }
            let text = std::str::from_utf8(raw).map_err(|_| line_error(number, "not UTF-8"))?;
            let trimmed = text.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let user = parse_line(number, text).map_err(|e| line_error(number, e))?;
            if let Some(&first) = out.by_user.get(&user.user) {
                return Err(line_error(
                    number,
                    format!(
                        "user `{}` is already defined on line {}",
                        user.user, out.users[first].line
                    ),
                ));
            }
            out.by_user.insert(user.user.clone(), out.users.len());
            out.users.push(user);
        }
        Ok(out)
    }

    /// Gives the lines without a domain the default domain: their
    /// canonical name becomes `user@domain`.
    ///
    /// # Errors
    /// [`Error::Config`] when a line `user` and a line `user@domain` would
    /// then be the same user.
    fn with_default_domain(mut self, domain: Option<&str>) -> Result<Self, Error> {
        let Some(domain) = domain.and_then(normalize) else {
            return Ok(self);
        };
        for i in 0..self.users.len() {
            if self.users[i].domain.is_some() {
                continue;
            }
            let full = format!("{}@{domain}", self.users[i].user);
            if let Some(&other) = self.by_user.get(&full) {
                return Err(line_error(
                    self.users[i].line.max(self.users[other].line),
                    format!(
                        "`{}` (line {}) is `{full}` (line {}) in the default domain",
                        self.users[i].user, self.users[i].line, self.users[other].line
                    ),
                ));
            }
            self.users[i].name = full;
            self.users[i].domain = Some(domain.clone());
        }
        Ok(self)
    }

    /// The stored value of the line that stands in for `login` when it has
    /// none to check: one of the lines with a password, picked by a hash of
    /// the login (the same line every time).
    fn stand_in(&self, login: &str) -> Option<&[u8]> {
        let checkable: Vec<&[u8]> = self
            .users
            .iter()
            .filter_map(|u| u.credential.stored.as_deref().map(Vec::as_slice))
            .collect();
        let digest = sha256(login.as_bytes());
        let pick = u64::from_be_bytes([
            digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
        ]);
        let count = u64::try_from(checkable.len()).ok().filter(|&n| n > 0)?;
        let index = usize::try_from(pick % count).ok()?;
        checkable.get(index).copied()
    }

    /// The number of users.
    #[must_use]
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether the file has no users.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Every user, in file order.
    pub fn iter(&self) -> impl Iterator<Item = &FileUser> {
        self.users.iter()
    }

    /// The user a login names (see the [module docs](self) for the rules
    /// on domains; `default_domain` as given to the file).
    #[must_use]
    pub fn find(&self, login: &str, default_domain: Option<&str>) -> Option<&FileUser> {
        let key = normalize(login)?;
        if let Some(&i) = self.by_user.get(&key) {
            return Some(&self.users[i]);
        }
        let default = default_domain.and_then(normalize)?;
        let other = match key.rsplit_once('@') {
            Some((local, d)) if d == default => local.to_owned(),
            Some(_) => return None,
            None => format!("{key}@{default}"),
        };
        self.by_user.get(&other).map(|&i| &self.users[i])
    }
}

/// Options of a [`UserFile`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UserFileOptions {
    /// The domain of lines and logins without one.
    pub default_domain: Option<String>,
    /// The iteration count of SCRAM secrets derived from cleartext
    /// passwords (at least [`MIN_ITERATIONS`]).
    pub scram_iterations: u32,
}

impl Default for UserFileOptions {
    fn default() -> Self {
        Self {
            default_domain: None,
            scram_iterations: MIN_ITERATIONS,
        }
    }
}

/// What identifies one version of the file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: Option<SystemTime>,
    ctime: (i64, i64),
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        let (dev, ino, ctime) = {
            use std::os::unix::fs::MetadataExt as _;
            (meta.dev(), meta.ino(), (meta.ctime(), meta.ctime_nsec()))
        };
        #[cfg(not(unix))]
        let (dev, ino, ctime) = (0, 0, (0, 0));
        Self {
            dev,
            ino,
            size: meta.len(),
            mtime: meta.modified().ok(),
            ctime,
        }
    }

    /// Whether the file was modified safely before `read_at`, so that a
    /// later change would show in the stamp.
    fn settled(&self, read_at: SystemTime) -> bool {
        self.mtime
            .and_then(|m| m.checked_add(SETTLE))
            .is_some_and(|m| m < read_at)
    }
}

/// The version in use and what is known of the file on disk.
struct State {
    users: Arc<Users>,
    stamp: Stamp,
    digest: [u8; 32],
    read_at: SystemTime,
    /// The last version refused (its stamp and digest), so a bad file is
    /// not parsed and reported again at every lookup.
    refused: Option<(Stamp, [u8; 32])>,
}

struct Inner {
    path: PathBuf,
    options: UserFileOptions,
    /// A value in the default scheme of a password nobody knows.
    decoy: Zeroizing<Vec<u8>>,
    /// Keys the salts of SCRAM secrets derived from cleartext passwords.
    salt_key: Zeroizing<Vec<u8>>,
    state: Mutex<State>,
}

/// The users file in use: parsed at [`UserFile::open`], re-read when it
/// changes (see the [module docs](self)). Cheap to clone; clones share the
/// loaded version.
#[derive(Clone)]
pub struct UserFile {
    inner: Arc<Inner>,
}

impl fmt::Debug for UserFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserFile")
            .field("path", &self.inner.path)
            .field("default_domain", &self.inner.options.default_domain)
            .finish_non_exhaustive()
    }
}

fn read_capped(path: &Path) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    Ok(bytes)
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn random(n: usize, what: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
    let mut v = Zeroizing::new(vec![0u8; n]);
    getrandom::fill(&mut v).map_err(|_| Error::Config(format!("no randomness for {what}")))?;
    Ok(v)
}

impl UserFile {
    /// Reads and parses the file at `path`.
    ///
    /// # Errors
    /// [`Error::Config`] when the file cannot be read or has a bad line
    /// (named by its number, see [`Users::parse`]), or `options` are
    /// unusable.
    pub fn open(path: impl Into<PathBuf>, options: UserFileOptions) -> Result<Self, Error> {
        let path = path.into();
        if options.scram_iterations < MIN_ITERATIONS {
            return Err(Error::Config(format!(
                "SCRAM iterations below {MIN_ITERATIONS}"
            )));
        }
        let shown = path.display().to_string();
        let fail = |e: &dyn fmt::Display| Error::Config(format!("{shown}: {e}"));
        let meta = std::fs::metadata(&path).map_err(|e| fail(&e))?;
        let read_at = SystemTime::now();
        let bytes = Zeroizing::new(read_capped(&path).map_err(|e| fail(&e))?);
        let users = Users::parse(&bytes)
            .and_then(|u| u.with_default_domain(options.default_domain.as_deref()))
            .map_err(|e| fail(&e))?;
        let secret = random(18, "the decoy password")?;
        let decoy = NewScheme::default()
            .hash(&secret)
            .map_err(|e| Error::Config(format!("default password scheme: {e}")))?;
        tracing::info!(path = %shown, users = users.len(), "users file loaded");
        Ok(Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    users: Arc::new(users),
                    stamp: Stamp::of(&meta),
                    digest: sha256(&bytes),
                    read_at,
                    refused: None,
                }),
                path,
                options,
                decoy: Zeroizing::new(decoy.into_bytes()),
                salt_key: random(32, "SCRAM salts")?,
            }),
        })
    }

    /// The users file the configuration names: `local.userfile` (relative
    /// to `config_dir`), or `None` when it is unset or empty. The default
    /// domain is `service.defaultdomain`; SCRAM secrets derived from
    /// cleartext passwords use `sasl.default.scram.iterations` (4096 when
    /// unset). `get` returns a parameter's value as text, e.g.
    /// `|name| config.string(name).ok()`.
    ///
    /// # Errors
    /// As [`UserFile::open`]; [`Error::Config`] for an iteration count that
    /// is not a number.
    pub fn from_parameters(
        get: impl Fn(&str) -> Option<String>,
        config_dir: &Path,
    ) -> Result<Option<Self>, Error> {
        let value = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let Some(file) = value(PARAM_USERFILE) else {
            return Ok(None);
        };
        let mut options = UserFileOptions {
            default_domain: value("service.defaultdomain").map(|d| d.trim().to_owned()),
            ..UserFileOptions::default()
        };
        if let Some(n) = value("sasl.default.scram.iterations") {
            options.scram_iterations = n.trim().parse().map_err(|_| {
                Error::Config("sasl.default.scram.iterations: not a number".to_owned())
            })?;
        }
        Self::open(config_dir.join(file.trim()), options).map(Some)
    }

    /// The file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The version in use, after re-reading the file if it changed.
    /// Blocking (file system access): call it off the async workers.
    #[must_use]
    pub fn current(&self) -> Arc<Users> {
        self.inner.refresh()
    }

    /// Runs `f` on the blocking pool with the current version.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner, &Users) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let users = inner.refresh();
            f(&inner, &users)
        })
        .await
        .map_err(|e| Error::Unavailable(format!("users file lookup did not finish: {e}")))?
    }

    /// The user `login` names, whatever its status.
    ///
    /// # Errors
    /// [`Reject::UnknownUser`].
    pub async fn lookup(&self, login: &str) -> Result<FileUser, Error> {
        let login = login.to_owned();
        self.blocking(move |inner, users| inner.find(users, &login).cloned())
            .await
    }

    /// The user `login` names, if it may log in (status checked): for
    /// EXTERNAL with a name from a lower layer.
    ///
    /// # Errors
    /// [`Reject::UnknownUser`], [`Reject::AccountStatus`].
    pub async fn lookup_active(&self, login: &str) -> Result<FileUser, Error> {
        let user = self.lookup(login).await?;
        user.status_check()?;
        Ok(user)
    }

    /// Checks `password` for `login`, then the account's status. An unknown
    /// user or a locked account costs a decoy check.
    ///
    /// # Errors
    /// [`Reject::EmptyPassword`], [`Reject::UnknownUser`],
    /// [`Reject::BadPassword`], [`Reject::NoUsablePassword`],
    /// [`Reject::AccountStatus`].
    pub async fn verify_password(
        &self,
        login: &str,
        password: &Password,
    ) -> Result<FileUser, Error> {
        if password.is_empty() {
            return Err(Reject::EmptyPassword.into());
        }
        let login = login.to_owned();
        let password = password.clone();
        self.blocking(move |inner, users| inner.verify(users, &login, &password))
            .await
    }

    /// The cleartext password of `login` (CRAM-MD5, DIGEST-MD5, APOP):
    /// only lines in `PLAIN` / `CLEARTEXT`. Status checked.
    ///
    /// # Errors
    /// [`Reject::UnknownUser`], [`Reject::NoUsablePassword`],
    /// [`Reject::AccountStatus`].
    pub async fn fetch_cleartext(&self, login: &str) -> Result<(FileUser, Password), Error> {
        let login = login.to_owned();
        self.blocking(move |inner, users| {
            let user = inner.find(users, &login)?;
            user.status_check()?;
            let password = user
                .credential
                .cleartext
                .clone()
                .ok_or(Reject::NoUsablePassword)?;
            Ok((user.clone(), password))
        })
        .await
    }

    /// The SCRAM secret of `login` for `algorithm`: the stored one of a
    /// `SCRAM-SHA-*` line, or one derived from a cleartext password (its
    /// salt keyed per process, so it stays the same while the server runs).
    /// Status checked.
    ///
    /// # Errors
    /// [`Reject::UnknownUser`], [`Reject::NoUsablePassword`] (another
    /// scheme, or the other SCRAM algorithm), [`Reject::AccountStatus`].
    pub async fn fetch_scram(
        &self,
        login: &str,
        algorithm: ScramAlgorithm,
    ) -> Result<(FileUser, ScramSecret), Error> {
        let login = login.to_owned();
        self.blocking(move |inner, users| {
            let user = inner.find(users, &login)?;
            user.status_check()?;
            let secret = inner.scram_of(user, algorithm)?;
            Ok((user.clone(), secret))
        })
        .await
    }

    /// Whether `login` may act as other users (`admin=yes`, and active).
    ///
    /// # Errors
    /// None in practice: an unknown user is `Ok(false)`.
    pub async fn may_proxy(&self, login: &str) -> Result<bool, Error> {
        match self.lookup_active(login).await {
            Ok(user) => Ok(user.admin),
            Err(Error::Rejected(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The one active user whose `mail` or alternate address (or, failing
    /// both, canonical name) is one of `emails` (a client certificate's
    /// addresses), compared without regard to case.
    ///
    /// # Errors
    /// [`Reject::UnknownUser`], [`Reject::Ambiguous`] when the addresses
    /// name more than one user, [`Reject::AccountStatus`].
    pub async fn find_by_email(&self, emails: &[String]) -> Result<FileUser, Error> {
        let wanted: Vec<String> = emails.iter().filter_map(|e| normalize(e)).collect();
        self.blocking(move |_, users| {
            let mut found: Option<&FileUser> = None;
            for user in users.iter() {
                let mut addresses = user.addresses().filter_map(normalize).peekable();
                let hit = if addresses.peek().is_some() {
                    addresses.any(|a| wanted.contains(&a))
                } else {
                    wanted.contains(&user.name)
                };
                if hit {
                    if found.is_some() {
                        return Err(Reject::Ambiguous.into());
                    }
                    found = Some(user);
                }
            }
            let user = found.ok_or(Reject::UnknownUser)?;
            user.status_check()?;
            Ok(user.clone())
        })
        .await
    }
}

impl Inner {
    fn find<'u>(&self, users: &'u Users, login: &str) -> Result<&'u FileUser, Error> {
        users
            .find(login, self.options.default_domain.as_deref())
            .ok_or_else(|| Reject::UnknownUser.into())
    }

    fn verify(&self, users: &Users, login: &str, password: &Password) -> Result<FileUser, Error> {
        let user = users.find(login, self.options.default_domain.as_deref());
        let Some((user, stored)) = user.and_then(|u| u.credential.stored.as_ref().map(|s| (u, s)))
        else {
            // The same work as a wrong password, so timing does not tell an
            // unknown user or a locked account from a real one.
            let decoy = users.stand_in(login).unwrap_or(&self.decoy);
            let _ = scheme::verify(decoy, password.as_bytes());
            return Err(match user {
                Some(_) => Reject::NoUsablePassword.into(),
                None => Reject::UnknownUser.into(),
            });
        };
        match scheme::verify(stored, password.as_bytes()) {
            Ok(true) => {}
            Ok(false) => return Err(Reject::BadPassword.into()),
            Err(e) => {
                tracing::warn!(user = %user.name, line = user.line, error = %e, "users file password not checkable");
                return Err(Reject::NoUsablePassword.into());
            }
        }
        user.status_check()?;
        Ok(user.clone())
    }

    fn scram_of(&self, user: &FileUser, algorithm: ScramAlgorithm) -> Result<ScramSecret, Error> {
        if let Some(s) = &user.credential.scram {
            return if s.algorithm() == algorithm {
                Ok(s.clone())
            } else {
                Err(Reject::NoUsablePassword.into())
            };
        }
        let password = user
            .credential
            .cleartext
            .as_ref()
            .ok_or(Reject::NoUsablePassword)?;
        let slot = match algorithm {
            ScramAlgorithm::Sha1 => &user.derived[0],
            _ => &user.derived[1],
        };
        if let Some(s) = slot.get() {
            return Ok(s.clone());
        }
        // The salt: an HMAC of the name under a per-process key, so every
        // exchange of the process sees the same salt for the same user.
        let mut mac = <hmac::Hmac<Sha256> as hmac::KeyInit>::new_from_slice(&self.salt_key)
            .map_err(|_| Error::Config("salt key".to_owned()))?;
        hmac::Mac::update(&mut mac, algorithm.name().as_bytes());
        hmac::Mac::update(&mut mac, b"\0");
        hmac::Mac::update(&mut mac, user.name.as_bytes());
        let salt = hmac::Mac::finalize(mac).into_bytes();
        let secret = ScramSecret::derive(
            algorithm,
            password,
            &salt[..portcullis_sasl::SALT_LEN],
            self.options.scram_iterations,
        )
        .map_err(|e| {
            tracing::warn!(user = %user.name, error = %e, "no SCRAM secret from the cleartext password");
            Error::Rejected(Reject::NoUsablePassword)
        })?;
        Ok(slot.get_or_init(|| secret).clone())
    }

    /// The version to use now, re-reading the file when it changed.
    fn refresh(&self) -> Arc<Users> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let shown = self.path.display();
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(path = %shown, error = %e, "users file unreadable; the loaded version stays in use");
                return Arc::clone(&state.users);
            }
        };
        let stamp = Stamp::of(&meta);
        let racy = !stamp.settled(state.read_at);
        if !racy && (stamp == state.stamp || state.refused.is_some_and(|(s, _)| s == stamp)) {
            return Arc::clone(&state.users);
        }
        let read_at = SystemTime::now();
        let bytes = match read_capped(&self.path) {
            Ok(b) => Zeroizing::new(b),
            Err(e) => {
                tracing::warn!(path = %shown, error = %e, "users file unreadable; the loaded version stays in use");
                return Arc::clone(&state.users);
            }
        };
        let digest = sha256(&bytes);
        if digest == state.digest {
            state.stamp = stamp;
            state.read_at = read_at;
            return Arc::clone(&state.users);
        }
        if state.refused.is_some_and(|(_, d)| d == digest) {
            state.refused = Some((stamp, digest));
            return Arc::clone(&state.users);
        }
        match Users::parse(&bytes)
            .and_then(|u| u.with_default_domain(self.options.default_domain.as_deref()))
        {
            Ok(users) => {
                tracing::info!(path = %shown, users = users.len(), "users file reloaded");
                state.users = Arc::new(users);
                state.stamp = stamp;
                state.digest = digest;
                state.read_at = read_at;
                state.refused = None;
            }
            Err(e) => {
                tracing::error!(path = %shown, error = %e, "users file refused; the loaded version stays in use");
                state.refused = Some((stamp, digest));
            }
        }
        Arc::clone(&state.users)
    }
}

impl FileUser {
    /// The account a login as this user ends with: the canonical name,
    /// domain, `mailhost`, `allowedserviceaccess`, and as attributes
    /// `mail`, `mailalternateaddress`, `status`, `home`, `uid`, `gid` and
    /// every other extra field. No DN, no domain-level filter: the file has
    /// no domain entries.
    #[must_use]
    pub fn account(&self) -> Account {
        let mut a = Account::new(self.name.clone());
        a.domain = self.domain.clone();
        a.mail_host = self.mail_host.clone();
        a.allowed_service_access = self.allowed_service_access.clone();
        for (key, value) in self.attributes.iter() {
            a.set_attribute(key, value.clone());
        }
        let known = [
            ("mail", self.mail.iter().cloned().collect::<Vec<_>>()),
            ("mailalternateaddress", self.alternate_addresses.clone()),
            ("status", self.status.iter().cloned().collect()),
            ("home", self.home.iter().cloned().collect()),
            ("uid", self.uid.iter().cloned().collect()),
            ("gid", self.gid.iter().cloned().collect()),
        ];
        for (key, values) in known {
            if !values.is_empty() {
                a.set_attribute(key, values);
            }
        }
        a
    }
}

/// The outcome of `work` as a [`Verdict`]; refusals and failures logged
/// (never with a password).
async fn settle<T>(
    operation: &'static str,
    user: &str,
    work: impl Future<Output = Result<T, Error>>,
) -> Verdict<T> {
    match work.await {
        Ok(value) => Verdict::Accept(value),
        Err(Error::Rejected(reason)) => {
            tracing::info!(operation, user, %reason, "users file: refused");
            Verdict::Reject
        }
        Err(e) => {
            tracing::warn!(operation, user, error = %e, "users file: lookup failed");
            Verdict::Unavailable
        }
    }
}

impl CredentialVerifier for UserFile {
    fn verify_password<'a>(
        &'a self,
        request: &'a VerifyPassword,
    ) -> BoxFuture<'a, Verdict<Account>> {
        let user = request.authcid();
        Box::pin(settle("verify_password", user, async move {
            let found = UserFile::verify_password(self, user, request.password()).await?;
            Ok(found.account())
        }))
    }

    fn fetch_password<'a>(
        &'a self,
        request: &'a FetchPassword,
    ) -> BoxFuture<'a, Verdict<WithAccount<Password>>> {
        let user = request.authcid();
        Box::pin(settle("fetch_password", user, async move {
            let (found, password) = self.fetch_cleartext(user).await?;
            Ok((password, found.account()))
        }))
    }

    fn fetch_scram_secret<'a>(
        &'a self,
        request: &'a FetchScramSecret,
    ) -> BoxFuture<'a, Verdict<WithAccount<ScramSecret>>> {
        let user = request.authcid();
        Box::pin(settle("fetch_scram_secret", user, async move {
            let (found, secret) = self.fetch_scram(user, request.algorithm()).await?;
            Ok((secret, found.account()))
        }))
    }
}

impl IdentityMapper for UserFile {
    /// A name from a lower layer must be a user of the file and active. A
    /// certificate maps to the one active user holding one of its e-mail
    /// addresses (subject `E=` or SAN rfc822Name) as `mail` or alternate
    /// address (or, for a user with neither, as its canonical name).
    fn map_identity<'a>(&'a self, request: &'a MapIdentity) -> BoxFuture<'a, Verdict<Account>> {
        Box::pin(async move {
            match request.identity() {
                ExternalIdentity::Name(name) => {
                    settle("map_identity", name, async move {
                        Ok(self.lookup_active(name).await?.account())
                    })
                    .await
                }
                ExternalIdentity::Certificate(verified) => {
                    settle("map_identity", "(certificate)", async move {
                        let cert = ClientCert::from_verified(verified)
                            .map_err(|e| Reject::Unmappable(e.to_string()))?;
                        Ok(self.find_by_email(cert.emails()).await?.account())
                    })
                    .await
                }
                _ => Verdict::Reject,
            }
        })
    }
}

impl ProxyAuthorizer for UserFile {
    /// The target must be an active user of the file; the authenticated
    /// user must be the same user, or an active user with `admin=yes`.
    fn authorize<'a>(&'a self, request: &'a Authorize) -> BoxFuture<'a, Verdict<Account>> {
        Box::pin(async move {
            let target = match settle(
                "authorize (target)",
                request.authzid(),
                self.lookup_active(request.authzid()),
            )
            .await
            {
                Verdict::Accept(target) => target,
                Verdict::Reject => return Verdict::Reject,
                Verdict::Unavailable => return Verdict::Unavailable,
            };
            let allowed = match self.lookup_active(request.authcid()).await {
                Ok(me) => me.name == target.name || me.admin,
                Err(_) => false,
            };
            if allowed {
                Verdict::Accept(target.account())
            } else {
                tracing::info!(
                    user = request.authcid(),
                    target = request.authzid(),
                    "users file: proxy authorization refused"
                );
                Verdict::Reject
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> FileUser {
        let users = Users::parse(line.as_bytes()).unwrap();
        assert_eq!(users.len(), 1, "{line}");
        users.iter().next().unwrap().clone()
    }

    fn error(text: &str) -> String {
        Users::parse(text.as_bytes()).unwrap_err().to_string()
    }

    fn checks(line: &str, password: &str) -> bool {
        let u = one(line);
        let stored = u.credential.stored.as_ref().expect("a password");
        scheme::verify(stored, password.as_bytes()).unwrap()
    }

    #[test]
    fn fields_and_extra_fields() {
        let u = one(
            "Alice@Example.COM:{PLAIN}pw:1000:1000:Alice A:/home/alice:/bin/false:\
             mailhost=store1.example.com mail=alice@example.com \
             mailalternateaddress=a@example.com,al@example.com MAILALTERNATEADDRESS=x@example.org \
             allowedserviceaccess=+imap:ALL$+smtp:* status=active admin=yes \
             userdb_mail=maildir:~/Maildir nodelay",
        );
        assert_eq!(u.name, "alice@example.com");
        assert_eq!(u.domain.as_deref(), Some("example.com"));
        assert_eq!(u.uid.as_deref(), Some("1000"));
        assert_eq!(u.home.as_deref(), Some("/home/alice"));
        assert_eq!(u.mail_host.as_deref(), Some("store1.example.com"));
        assert_eq!(u.mail.as_deref(), Some("alice@example.com"));
        assert_eq!(
            u.alternate_addresses,
            ["a@example.com", "al@example.com", "x@example.org"]
        );
        assert_eq!(
            u.allowed_service_access.as_deref(),
            Some("+imap:ALL$+smtp:*")
        );
        assert!(u.admin);
        assert!(u.status_check().is_ok());
        // Values keep their colons; bare keys have empty values.
        assert_eq!(u.attributes["userdb_mail"], ["maildir:~/Maildir"]);
        assert_eq!(u.attributes["nodelay"], [""]);
        assert_eq!(u.credential.cleartext.as_ref().unwrap().expose(), "pw");
    }

    #[test]
    fn short_lines_comments_and_blank_lines() {
        let users =
            Users::parse(b"# users\n\n   \n  # indented comment\r\nbob:{PLAIN}x\r\ncarol\n")
                .unwrap();
        assert_eq!(users.len(), 2);
        let carol = users.find("carol", None).unwrap();
        assert!(!carol.has_password());
        assert_eq!(carol.line, 6);
    }

    #[test]
    fn status_refuses_login() {
        for (extra, ok) in [
            ("", true),
            ("status=active", true),
            ("status=Active", true),
            ("status=overquota", true),
            ("status=inactive", false),
            ("status=deleted", false),
            ("status=hold", false),
            ("nologin", false),
            ("nologin=y", false),
            ("nologin=no", true),
        ] {
            let u = one(&format!("u:{{PLAIN}}p::::::{extra}"));
            assert_eq!(u.status_check().is_ok(), ok, "{extra}");
        }
    }

    #[test]
    fn bad_lines_name_their_number() {
        for (text, want) in [
            (
                "ok:{PLAIN}a\nbad:{CRAM-MD5}abc\n",
                "line 2: unsupported password scheme `CRAM-MD5`",
            ),
            ("ok:{PLAIN}a\n\n:{PLAIN}b\n", "line 3: empty user name"),
            (
                "a:{PLAIN}x\nA:{PLAIN}y\n",
                "line 2: user `a` is already defined on line 1",
            ),
            (
                "a:{PLAIN}x::::::mail=a mail=b\n",
                "line 1: `mail` appears twice",
            ),
            ("a:{PLAIN}x::::::status=\n", "line 1: `status` is empty"),
            (
                "a:{PLAIN}x::::::admin=maybe\n",
                "line 1: `admin` takes yes or no",
            ),
            (
                "a:{PLAIN}x::::::=v\n",
                "line 1: extra field `=v` has no name",
            ),
            (
                "a:{PLAIN}x::::::mailalternateaddress=a,,b\n",
                "line 1: empty address",
            ),
            (
                "a:abJnggxhB/yWI\n",
                "line 1: CRYPT value in traditional DES crypt",
            ),
            (
                "a:{SHA256}AAAA\n",
                "line 1: SHA256 value has the wrong length",
            ),
            (
                "a:{SHA.ROT13}AAAA\n",
                "line 1: unknown password encoding `.ROT13`",
            ),
            (
                "a:{ARGON2ID}$argon2i$v=19$m=1,t=1,p=1$AA$AA\n",
                "does not start with $argon2id$",
            ),
            ("a:{PBKDF2}$1$salt$0$00\n", "line 1: PBKDF2 value is not"),
            (
                "a:{SCRAM-SHA-256}4096,AA==,AA==,AA==\n",
                "line 1: SCRAM-SHA-256 value is not",
            ),
            ("a b:{PLAIN}x\n", "line 1: user name with blanks"),
        ] {
            let got = error(text);
            assert!(got.contains(want), "{text:?}: {got}");
        }
        let not_utf8 = Users::parse(b"x\n\xff:{PLAIN}a\n").unwrap_err().to_string();
        assert!(not_utf8.contains("line 2: not UTF-8"), "{not_utf8}");
        let long = format!("a:{{PLAIN}}{}\n", "x".repeat(MAX_LINE_LENGTH));
        assert!(error(&long).contains("line 1: line too long"));
    }

    #[test]
    fn schemes_check_with_the_crate_verifiers() {
        // Values made with `doveadm pw -s SCHEME -p secret`.
        let cases = [
            "{SHA512-CRYPT}$6$3dZ/zvmSJciv5rdW$hUocWuaqNpaJx8cTsX1EVrnwXR7.7CJwv2/87DyrenctCZ0.EoW8NBU4cmiAik/JWie919OHoHpUNdgslcPov0",
            "{SHA256-CRYPT}$5$g84BiO29fd62FMr0$y9ILMAJbeYHd98OT1WIhalo/S7qJZIYoIw1dWYZyxR7",
            "{MD5-CRYPT}$1$e4w3rhU0$Ki.JRutH4rKFTeMv/MWYC1",
            "{MD5}$1$6MGLiuwy$wCMCr2N7IY/hc8/dxrj.a.",
            "{BLF-CRYPT}$2y$05$I5trPJhD6K/UXSTxwmXvAetvn6nQh4d3LofqPSngUcN3s7f.UGskS",
            "$6$3dZ/zvmSJciv5rdW$hUocWuaqNpaJx8cTsX1EVrnwXR7.7CJwv2/87DyrenctCZ0.EoW8NBU4cmiAik/JWie919OHoHpUNdgslcPov0",
            "$1$e4w3rhU0$Ki.JRutH4rKFTeMv/MWYC1[34]",
            "{SSHA}cuv/VGKfiWII14r4vLsj5dkhc2+LS7Jj",
            "{SSHA256}DkoEgXmPDGR4KG42+5VM+slKhkpY7rSSNCuhbxzvseu4/2nF",
            "{SSHA512}i0JGfwvk3TXY4kgKrVaFL3zYLHpvwhbUt8N1ikT6IUYeX029BT1CaO3AEqZnOagcxFsyHwVPVsjoQbYZldzyqz9cLJg=",
            "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=",
            "{SHA256}K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Unols=",
            "{SHA256.HEX}2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b",
            "{SHA512}vSsar3708Jvp9Szi2NWZZ02Bqp1qRCFpbcTZPdBhnWgs5WtNZKnvCXdhztmeD2cmW192CF5bDufKRpayrW/isg==",
            "{PLAIN-MD5}5ebe2294ecd0e0f08eab7690d2a6ee69",
            "{LDAP-MD5}Xr4ilOzQ4PCOq3aQ0qbuaQ==",
            "{SMD5}NNTixGvrDqIO2/jhH3o0aKT7ryc=",
            "{PBKDF2}$1$1jl3azaV43rSBPEk$5000$29ae05e35cfc3de0a936a672850280d038013cb6",
            "{SCRAM-SHA-1}4096,baQxvtgAROlvapJzj/+Veg==,yVmWGqJrC4SIk18zGZmqh1213uI=,Sa4SsiE8jf2c15lGyQog6Sx7Z64=",
            "{SCRAM-SHA-256}4096,6OJYcp6tIcvde5vfhE9tMg==,KmDIhhHgzQ5bLEzb/2jX3TWpHlc1/qiUKoqNAiXo6Ag=,6gvGpnlpdbHK+G0GQV6YMj7Jk0F9uQBGLz+QawbVM9c=",
            "{ARGON2I}$argon2i$v=19$m=32768,t=4,p=1$1DrkZBFDxDjsH5g7QxBYxg$TgQ/HrTvzNCpnhA6+pqFq4GLWiu9HWX2U+ULNdnyxSA",
            "{PLAIN}secret",
            "{CLEARTEXT}secret",
            "{PLAIN.B64}c2VjcmV0",
        ];
        for value in cases {
            let line = format!("user:{value}");
            assert!(checks(&line, "secret"), "{value}");
            assert!(!checks(&line, "Secret"), "{value}");
        }
    }

    #[test]
    fn unknown_logins_stand_in_a_line_with_a_password() {
        let users =
            Users::parse(b"locked:*\na:{SHA256.HEX}2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b\nb:{PLAIN}x\n")
                .unwrap();
        let stored: Vec<&[u8]> = users
            .iter()
            .filter_map(|u| u.credential.stored.as_deref().map(Vec::as_slice))
            .collect();
        assert_eq!(stored.len(), 2);
        let mut seen = std::collections::BTreeSet::new();
        for n in 0..64 {
            let login = format!("nobody{n}");
            let picked = users.stand_in(&login).unwrap();
            assert!(stored.contains(&picked));
            assert_eq!(
                users.stand_in(&login),
                Some(picked),
                "the same line each time"
            );
            seen.insert(picked.to_vec());
        }
        assert_eq!(seen.len(), 2, "every checkable line can stand in");
        assert!(Users::parse(b"locked:*\n").unwrap().stand_in("x").is_none());
    }

    #[test]
    fn locked_accounts_have_no_password() {
        for value in ["", "*", "!", "!$6$abc$def", "*LK*"] {
            assert!(!one(&format!("u:{value}")).has_password(), "{value}");
        }
    }

    #[test]
    fn scram_lines_give_their_secret() {
        let u = one(
            "u:{SCRAM-SHA-256}4096,6OJYcp6tIcvde5vfhE9tMg==,KmDIhhHgzQ5bLEzb/2jX3TWpHlc1/qiUKoqNAiXo6Ag=,6gvGpnlpdbHK+G0GQV6YMj7Jk0F9uQBGLz+QawbVM9c=",
        );
        let s = u.credential.scram.as_ref().unwrap();
        assert_eq!(s.algorithm(), ScramAlgorithm::Sha256);
        assert_eq!(s.iterations(), 4096);
        assert_eq!(s.salt().len(), 16);
    }

    #[test]
    fn names_and_default_domain() {
        let users = Users::parse(
            "alice:{PLAIN}a\nbob@example.org:{PLAIN}b\nStraße@example.com:{PLAIN}c\n".as_bytes(),
        )
        .unwrap();
        // Without a default domain: exact names only.
        assert_eq!(users.find("ALICE", None).unwrap().name, "alice");
        assert!(users.find("alice@example.com", None).is_none());
        assert!(users.find("bob", None).is_none());
        assert!(users.find("straße@EXAMPLE.com", None).is_some());
        let users = users.with_default_domain(Some("Example.com")).unwrap();
        let d = Some("example.com");
        assert_eq!(users.find("alice", d).unwrap().name, "alice@example.com");
        assert_eq!(
            users.find("alice@example.com", d).unwrap().name,
            "alice@example.com"
        );
        assert!(users.find("alice@example.org", d).is_none());
        assert_eq!(
            users.find("bob@example.org", d).unwrap().name,
            "bob@example.org"
        );
        assert!(users.find("bob", d).is_none());
        assert!(users.find("", d).is_none());
        // A bare line and a full one that would be the same user.
        let twice = Users::parse(b"carol:{PLAIN}a\ncarol@example.com:{PLAIN}b\n")
            .unwrap()
            .with_default_domain(Some("example.com"))
            .unwrap_err()
            .to_string();
        assert!(twice.contains("line 2"), "{twice}");
    }
}
