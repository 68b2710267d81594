//! Passwords and `sslpassword.conf`.
//!
//! `sslpassword.conf` holds one `moduleName:password` line per PKCS#11
//! module; the database's own key store is the module
//! [`INTERNAL_TOKEN`] (`Internal (Software) Token`). The module name may
//! contain spaces and parentheses but no colon; the password is everything
//! after the first colon.

use std::fmt;
use std::path::Path;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};
use crate::fsutil;

/// The module name of the database's own key store.
pub const INTERNAL_TOKEN: &str = "Internal (Software) Token";

/// The password file's name inside the database directory.
pub const PASSWORD_FILE: &str = "sslpassword.conf";

/// A password or PIN: zeroed on drop, never printed by `Debug`.
#[derive(Clone, Zeroize)]
#[zeroize(drop)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(s: impl Into<String>) -> Self {
        Password(s.into())
    }

    /// Reads a password from the first line of a file (as `-W FILE` does),
    /// without its line ending.
    ///
    /// # Errors
    /// The file cannot be read, or its first line is empty.
    pub fn from_file(path: &Path) -> Result<Self> {
        let raw = Zeroizing::new(fsutil::read_capped(path)?);
        let text = std::str::from_utf8(&raw)
            .map_err(|_| Error::Corrupt(format!("{}: password is not UTF-8", path.display())))?;
        let line = text.lines().next().unwrap_or("");
        if line.is_empty() {
            return Err(Error::Corrupt(format!(
                "{}: empty password",
                path.display()
            )));
        }
        Ok(Password(line.to_owned()))
    }

    /// Generates a random 24-character password.
    ///
    /// # Errors
    /// The system random number generator failed.
    pub fn generate() -> Result<Self> {
        const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
        let mut raw = Zeroizing::new([0u8; 24]);
        getrandom::fill(raw.as_mut()).map_err(|e| Error::Crypto(format!("random: {e}")))?;
        let s = raw
            .iter()
            .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
            .collect();
        Ok(Password(s))
    }

    /// The password text.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison.
    pub fn ct_eq(&self, other: &Password) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// The parsed `sslpassword.conf`.
#[derive(Clone, Debug, Default)]
pub struct PasswordFile {
    entries: Vec<(String, Password)>,
}

impl PasswordFile {
    /// Parses the file's text. Blank lines and lines starting with `#` are
    /// skipped.
    ///
    /// # Errors
    /// A line without a colon, or with an empty module name.
    pub fn parse(text: &str) -> Result<Self> {
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let (module, pw) = line.split_once(':').ok_or(Error::BadPasswordFile {
                line: i + 1,
                reason: "expected moduleName:password",
            })?;
            if module.is_empty() {
                return Err(Error::BadPasswordFile {
                    line: i + 1,
                    reason: "empty module name",
                });
            }
            entries.push((module.to_owned(), Password::new(pw)));
        }
        Ok(PasswordFile { entries })
    }

    /// Reads `sslpassword.conf` from a database directory; a missing file
    /// gives an empty list.
    ///
    /// # Errors
    /// The file exists but cannot be read or parsed.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(PASSWORD_FILE);
        match fsutil::read_capped(&path) {
            Ok(raw) => {
                let raw = Zeroizing::new(raw);
                let text = std::str::from_utf8(&raw).map_err(|_| Error::BadPasswordFile {
                    line: 0,
                    reason: "not UTF-8",
                })?;
                Self::parse(text)
            }
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Ok(PasswordFile::default())
            }
            Err(e) => Err(e),
        }
    }

    /// The password for a module (or [`INTERNAL_TOKEN`]).
    pub fn get(&self, module: &str) -> Option<&Password> {
        self.entries
            .iter()
            .find(|(m, _)| m == module)
            .map(|(_, p)| p)
    }

    /// The database password (the [`INTERNAL_TOKEN`] line).
    pub fn internal(&self) -> Option<&Password> {
        self.get(INTERNAL_TOKEN)
    }

    /// Sets a module's password.
    ///
    /// # Errors
    /// The module name contains a colon or a line break, or the password a
    /// line break.
    pub fn set(&mut self, module: &str, password: Password) -> Result<()> {
        if module.is_empty() || module.contains([':', '\n', '\r']) {
            return Err(Error::BadPasswordFile {
                line: 0,
                reason: "module names must be non-empty, without ':' or line breaks",
            });
        }
        if password.expose().contains(['\n', '\r']) {
            return Err(Error::BadPasswordFile {
                line: 0,
                reason: "passwords cannot contain line breaks",
            });
        }
        if let Some(slot) = self.entries.iter_mut().find(|(m, _)| m == module) {
            slot.1 = password;
        } else {
            self.entries.push((module.to_owned(), password));
        }
        Ok(())
    }

    /// The file's text.
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut s = Zeroizing::new(String::new());
        for (m, p) in &self.entries {
            s.push_str(m);
            s.push(':');
            s.push_str(p.expose());
            s.push('\n');
        }
        s
    }

    /// Writes the file atomically (mode 0600) into the database directory
    /// whose writers' lock `lock` is: two writers never interleave their
    /// read-modify-write of the file.
    ///
    /// # Errors
    /// The file cannot be written.
    pub(crate) fn store(&self, lock: &fsutil::WriteLock) -> Result<()> {
        fsutil::atomic_write(
            &lock.dir().join(PASSWORD_FILE),
            self.to_text().as_bytes(),
            true,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_lines() {
        let f = PasswordFile::parse(
            "# comment\nInternal (Software) Token:netscape!\n\nsofthsm:12:34\r\n",
        )
        .unwrap();
        assert_eq!(f.internal().unwrap().expose(), "netscape!");
        assert_eq!(f.get("softhsm").unwrap().expose(), "12:34");
        assert!(f.get("other").is_none());
        assert!(PasswordFile::parse("no colon here").is_err());
        assert!(PasswordFile::parse(":pw").is_err());
    }

    #[test]
    fn roundtrip_and_redaction() {
        let mut f = PasswordFile::default();
        f.set(INTERNAL_TOKEN, Password::new("a b:c")).unwrap();
        f.set("hsm", Password::new("1234")).unwrap();
        f.set("hsm", Password::new("5678")).unwrap();
        let text = f.to_text();
        assert_eq!(&*text, "Internal (Software) Token:a b:c\nhsm:5678\n");
        let g = PasswordFile::parse(&text).unwrap();
        assert!(g.get("hsm").unwrap().ct_eq(&Password::new("5678")));
        assert!(!format!("{g:?}").contains("5678"));
        assert!(f.set("bad:name", Password::new("x")).is_err());
    }
}
