//! The user source a server authenticates against: the directory, or the
//! users file that replaces it.

use std::path::Path;
use std::sync::Arc;

use portcullis_sasl::{
    Account, Authorize, Backends, BoxFuture, CredentialVerifier, FetchPassword, FetchScramSecret,
    IdentityMapper, MapIdentity, Password, ProxyAuthorizer, ScramSecret, Verdict, VerifyPassword,
    WithAccount,
};

use crate::{Directory, Error, Settings, UserFile};

/// Where users come from. A closed set, chosen once from the
/// configuration: `local.userfile` set means the users file, otherwise the
/// LDAP directory. It answers the `portcullis-sasl` backend traits by
/// handing each request to the source it holds, so the daemons build their
/// [`Backends`] the same way whichever it is (see the crate README for why
/// an enum).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum UserSource {
    /// The LDAP directory (`local.ugldap*`, `sasl.default.ldap.*`).
    Directory(Directory),
    /// The users file (`local.userfile`).
    File(UserFile),
}

impl UserSource {
    /// The source the configuration names: the users file when
    /// `local.userfile` is set ([`UserFile::from_parameters`]), else the
    /// directory ([`Settings::from_parameters`]). `get` returns a
    /// parameter's value as text, e.g. `|name| config.string(name).ok()`;
    /// relative paths are taken from `config_dir`.
    ///
    /// # Errors
    /// [`Error::Config`] for an unusable users file or directory settings.
    pub fn from_parameters(
        get: impl Fn(&str) -> Option<String>,
        config_dir: &Path,
    ) -> Result<Self, Error> {
        if let Some(file) = UserFile::from_parameters(&get, config_dir)? {
            return Ok(Self::File(file));
        }
        Directory::new(Settings::from_parameters(get, config_dir)?).map(Self::Directory)
    }

    /// The account of `login` without a password check (what a login as
    /// that user would end with): for a user authorized some other way,
    /// such as a recent POP login (POP-before-SMTP), whose addresses are
    /// needed.
    ///
    /// # Errors
    /// [`Error::Rejected`] for an unknown or inactive user (users file),
    /// [`Error::Unavailable`] or [`Error::Directory`] when the directory
    /// cannot answer.
    pub async fn account(&self, login: &str) -> Result<Account, Error> {
        match self {
            Self::Directory(d) => {
                let entry = d.lookup(login).await?;
                Ok(d.user_of(&entry, login).account())
            }
            Self::File(f) => Ok(f.lookup_active(login).await?.account()),
        }
    }

    /// Backends answering every request from this source: passwords and
    /// secrets, external identities (EXTERNAL), and proxy authorization.
    #[must_use]
    pub fn backends(self) -> Backends {
        let source = Arc::new(self);
        let mut backends = Backends::new(source.clone());
        backends.identities = Some(source.clone());
        backends.proxy = source;
        backends
    }
}

impl From<Directory> for UserSource {
    fn from(d: Directory) -> Self {
        Self::Directory(d)
    }
}

impl From<UserFile> for UserSource {
    fn from(f: UserFile) -> Self {
        Self::File(f)
    }
}

impl CredentialVerifier for UserSource {
    fn verify_password<'a>(
        &'a self,
        request: &'a VerifyPassword,
    ) -> BoxFuture<'a, Verdict<Account>> {
        match self {
            Self::Directory(d) => CredentialVerifier::verify_password(d, request),
            Self::File(f) => CredentialVerifier::verify_password(f, request),
        }
    }

    fn fetch_password<'a>(
        &'a self,
        request: &'a FetchPassword,
    ) -> BoxFuture<'a, Verdict<WithAccount<Password>>> {
        match self {
            Self::Directory(d) => d.fetch_password(request),
            Self::File(f) => f.fetch_password(request),
        }
    }

    fn fetch_scram_secret<'a>(
        &'a self,
        request: &'a FetchScramSecret,
    ) -> BoxFuture<'a, Verdict<WithAccount<ScramSecret>>> {
        match self {
            Self::Directory(d) => d.fetch_scram_secret(request),
            Self::File(f) => f.fetch_scram_secret(request),
        }
    }
}

impl IdentityMapper for UserSource {
    fn map_identity<'a>(&'a self, request: &'a MapIdentity) -> BoxFuture<'a, Verdict<Account>> {
        match self {
            Self::Directory(d) => d.map_identity(request),
            Self::File(f) => f.map_identity(request),
        }
    }
}

impl ProxyAuthorizer for UserSource {
    fn authorize<'a>(&'a self, request: &'a Authorize) -> BoxFuture<'a, Verdict<Account>> {
        match self {
            Self::Directory(d) => d.authorize(request),
            Self::File(f) => f.authorize(request),
        }
    }
}
