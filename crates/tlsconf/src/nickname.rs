//! Certificate nicknames and the per-service choice between them.
//!
//! Chapter 23.5.2: `local.imta.sslnicknames` (SMTP and submission),
//! `local.imap.sslnicknames`, `local.pop.sslnicknames` and
//! `local.http.sslnicknames` override `encryption.rsa.nssslpersonalityssl`.
//! Each is a comma list of nicknames, at most one per key type; a nickname is
//! either unqualified (the software token) or `module:alias` (a PKCS#11
//! token).

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// A certificate nickname: `alias` or `module:alias`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Nickname {
    module: Option<String>,
    alias: String,
}

impl Nickname {
    /// A nickname in the software token (the database directory).
    ///
    /// # Errors
    /// [`Error::InvalidNickname`] for an empty alias or a control character.
    pub fn internal(alias: &str) -> Result<Self, Error> {
        Self::checked(None, alias)
    }

    /// A nickname on the PKCS#11 token of `module`.
    ///
    /// # Errors
    /// [`Error::InvalidNickname`] for an empty part or a control character.
    pub fn on_token(module: &str, alias: &str) -> Result<Self, Error> {
        Self::checked(Some(module), alias)
    }

    fn checked(module: Option<&str>, alias: &str) -> Result<Self, Error> {
        let bad = || {
            Error::InvalidNickname(match module {
                Some(m) => format!("{m}:{alias}"),
                None => alias.to_owned(),
            })
        };
        let (module, alias) = (module.map(str::trim), alias.trim());
        if alias.is_empty()
            || module.is_some_and(str::is_empty)
            || alias
                .chars()
                .chain(module.unwrap_or("").chars())
                .any(char::is_control)
        {
            return Err(bad());
        }
        Ok(Self {
            module: module.map(str::to_owned),
            alias: alias.to_owned(),
        })
    }

    /// The security module (PKCS#11 token) part, if qualified.
    pub fn module(&self) -> Option<&str> {
        self.module.as_deref()
    }

    /// The alias within the module.
    pub fn alias(&self) -> &str {
        &self.alias
    }
}

impl FromStr for Nickname {
    type Err = Error;

    /// Splits at the first `:`. Both parts are trimmed and must not be empty.
    fn from_str(s: &str) -> Result<Self, Error> {
        let (module, alias) = match s.split_once(':') {
            Some((m, a)) => (Some(m), a),
            None => (None, s),
        };
        Self::checked(module, alias).map_err(|_| Error::InvalidNickname(s.to_owned()))
    }
}

impl fmt::Display for Nickname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.module {
            Some(m) => write!(f, "{m}:{}", self.alias),
            None => f.write_str(&self.alias),
        }
    }
}

/// Parses a comma list of nicknames (`local.*.sslnicknames`).
///
/// # Errors
/// [`Error::InvalidNickname`] for an empty or malformed entry.
pub fn parse_nickname_list(list: &str) -> Result<Vec<Nickname>, Error> {
    list.split(',').map(str::parse).collect()
}

/// A server whose certificate can be chosen on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Service {
    /// SMTP and submission (`local.imta.sslnicknames`).
    Smtp,
    /// IMAP (`local.imap.sslnicknames`).
    Imap,
    /// POP3 (`local.pop.sslnicknames`).
    Pop,
    /// Web mail (`local.http.sslnicknames`).
    Http,
}

impl Service {
    /// The configuration parameter holding this service's nicknames.
    pub fn nicknames_parameter(self) -> &'static str {
        match self {
            Self::Smtp => "local.imta.sslnicknames",
            Self::Imap => "local.imap.sslnicknames",
            Self::Pop => "local.pop.sslnicknames",
            Self::Http => "local.http.sslnicknames",
        }
    }

    /// The global parameter the per-service one overrides.
    pub const DEFAULT_PARAMETER: &'static str = "encryption.rsa.nssslpersonalityssl";

    /// The IANA-registered ALPN protocol IDs of this service (the ALPACA
    /// countermeasure). SMTP has none registered, so it is empty.
    pub fn alpn_ids(self) -> Vec<Vec<u8>> {
        match self {
            Self::Smtp => vec![],
            Self::Imap => vec![b"imap".to_vec()],
            Self::Pop => vec![b"pop3".to_vec()],
            Self::Http => vec![b"http/1.1".to_vec()],
        }
    }

    /// Chooses the nickname list: the per-service value when set and not
    /// blank, else the `encryption.rsa.nssslpersonalityssl` value.
    ///
    /// # Errors
    /// [`Error::Config`] when neither is set; [`Error::InvalidNickname`] for
    /// a malformed entry.
    pub fn nicknames(
        self,
        per_service: Option<&str>,
        personality: Option<&str>,
    ) -> Result<Vec<Nickname>, Error> {
        let chosen = per_service
            .filter(|v| !v.trim().is_empty())
            .or(personality.filter(|v| !v.trim().is_empty()));
        match chosen {
            Some(v) => parse_nickname_list(v),
            None => Err(Error::Config(format!(
                "no server certificate: set {} or {}",
                self.nicknames_parameter(),
                Self::DEFAULT_PARAMETER
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nicknames() {
        let n: Nickname = "Server-Cert".parse().unwrap();
        assert_eq!((n.module(), n.alias()), (None, "Server-Cert"));
        let n: Nickname = " hsm : my key ".parse().unwrap();
        assert_eq!((n.module(), n.alias()), (Some("hsm"), "my key"));
        assert_eq!(n.to_string(), "hsm:my key");
        for bad in ["", " ", ":x", "x:", "a\nb"] {
            assert!(bad.parse::<Nickname>().is_err(), "{bad:?}");
        }
        assert_eq!(parse_nickname_list("rsa, tok:ec").unwrap().len(), 2);
        assert!(parse_nickname_list("rsa,,ec").is_err());
    }

    #[test]
    fn per_service_overrides() {
        let n = Service::Imap
            .nicknames(Some("imap-cert"), Some("Server-Cert"))
            .unwrap();
        assert_eq!(n[0].alias(), "imap-cert");
        let n = Service::Pop
            .nicknames(Some("  "), Some("Server-Cert"))
            .unwrap();
        assert_eq!(n[0].alias(), "Server-Cert");
        let e = Service::Smtp.nicknames(None, None).unwrap_err();
        assert!(e.to_string().contains("local.imta.sslnicknames"));
    }
}
