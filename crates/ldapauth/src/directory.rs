//! The directory: finding users, verifying passwords, account state,
//! auto-transition, proxy rights and certificate mapping.

use std::collections::BTreeMap;
use std::sync::Arc;

use ldap3::{Scope, SearchEntry};
use portcullis_certmap::escape::filter_value;
use portcullis_certmap::{ClientCert, SearchBase};
use portcullis_sasl::{Account, Password, ScramAlgorithm, ScramSecret};
use subtle::ConstantTimeEq;

use crate::cache::Cache;
use crate::filter::FilterTemplate;
use crate::pool::{Found, Pool};
use crate::scheme::{self, Scheme, StoredPassword};
use crate::{Error, Reject, Settings, VerifyMode};

/// A user found in (and accepted by) the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct User {
    /// The entry's DN.
    pub dn: String,
    /// The login as typed (or, after certificate mapping, the address or
    /// uid it mapped to).
    pub login: String,
    /// `uid`.
    pub uid: Option<String>,
    /// `mail`.
    pub mail: Option<String>,
    /// The domain the user was found in (after domain lookup).
    pub domain: Option<String>,
    /// The user's `mailAllowedServiceAccess` (for accessfilter).
    pub allowed_service_access: Option<String>,
    /// The domain's `mailDomainAllowedServiceAccess` (for accessfilter).
    pub domain_allowed_service_access: Option<String>,
    /// `mailHost`: the user's message store.
    pub mail_host: Option<String>,
    /// The canonical identity (by default `uid@domain`): what logs, XCLIENT
    /// `LOGIN` and IMAP `ID` receive, whatever the client typed.
    pub canonical: String,
    /// The extra attributes the settings ask for, by lower-case name.
    pub attributes: BTreeMap<String, Vec<String>>,
    /// Whether this login rewrote the stored password (auto-transition).
    pub transitioned: bool,
}

impl User {
    /// The account the sasl exchange ends with.
    #[must_use]
    pub fn account(&self) -> Account {
        let mut a = Account::new(self.canonical.clone());
        a.dn = Some(self.dn.clone());
        a.domain.clone_from(&self.domain);
        a.mail_host.clone_from(&self.mail_host);
        a.allowed_service_access
            .clone_from(&self.allowed_service_access);
        a.domain_allowed_service_access
            .clone_from(&self.domain_allowed_service_access);
        for (k, v) in &self.attributes {
            a.set_attribute(k, v.clone());
        }
        a
    }
}

/// Expands a canonical-identity form ([`Settings::canonical_form`]): `%u`
/// is the entry's `uid` (else the login's local part), `%d` the domain in
/// lower case, `%m` the entry's `mail`, `%%` a `%`. Falls back to the uid
/// alone when the form names a part the entry lacks (a login without a
/// domain and no default domain, say).
///
/// ```
/// use portcullis_ldapauth::canonical_identity;
/// assert_eq!(canonical_identity("%u@%d", "alice", Some("Example.COM"), None), "alice@example.com");
/// assert_eq!(canonical_identity("%u@%d", "alice", None, None), "alice");
/// assert_eq!(canonical_identity("%m", "alice", None, Some("a@example.org")), "a@example.org");
/// ```
#[must_use]
pub fn canonical_identity(
    form: &str,
    uid: &str,
    domain: Option<&str>,
    mail: Option<&str>,
) -> String {
    let mut out = String::with_capacity(form.len() + uid.len() + 16);
    let mut chars = form.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('u') => out.push_str(uid),
            Some('d') => match domain {
                Some(d) if !d.is_empty() => out.push_str(&d.to_ascii_lowercase()),
                _ => return uid.to_owned(),
            },
            Some('m') => match mail {
                Some(m) if !m.is_empty() => out.push_str(m),
                _ => return uid.to_owned(),
            },
            Some('%') => out.push('%'),
            _ => return uid.to_owned(),
        }
    }
    if out.is_empty() { uid.to_owned() } else { out }
}

/// A user entry as looked up, before any password check.
#[derive(Debug, Clone)]
pub struct Entry {
    /// DN of the entry.
    pub dn: String,
    /// The domain, when domain lookup found one.
    pub domain: Option<String>,
    /// The domain entry's DN.
    pub domain_dn: Option<String>,
    /// Filter that found the user.
    pub filter: String,
    /// Base the user was searched under.
    pub base: String,
    attrs: SearchEntry,
    domain_attrs: Option<SearchEntry>,
}

impl Entry {
    /// All values of attribute `name` (case-insensitive), as bytes.
    #[must_use]
    pub fn values(&self, name: &str) -> Vec<Vec<u8>> {
        values(&self.attrs, name)
    }

    /// The first value of `name` as text.
    #[must_use]
    pub fn first(&self, name: &str) -> Option<String> {
        first(&self.attrs, name)
    }
}

fn values(e: &SearchEntry, name: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (k, v) in &e.attrs {
        if k.eq_ignore_ascii_case(name) {
            out.extend(v.iter().map(|s| s.as_bytes().to_vec()));
        }
    }
    for (k, v) in &e.bin_attrs {
        if k.eq_ignore_ascii_case(name) {
            out.extend(v.iter().cloned());
        }
    }
    out
}

fn first(e: &SearchEntry, name: &str) -> Option<String> {
    values(e, name)
        .into_iter()
        .next()
        .map(|v| String::from_utf8_lossy(&v).into_owned())
}

/// Splits `login` at its last `@`.
fn split_login(login: &str) -> (&str, Option<&str>) {
    match login.rsplit_once('@') {
        Some((u, d)) if !d.is_empty() => (u, Some(d)),
        _ => (login, None),
    }
}

/// Longest login looked up; longer ones are unknown users.
const MAX_LOGIN: usize = 1024;

const USER_STATUS: [&str; 2] = ["inetUserStatus", "mailUserStatus"];
const DOMAIN_STATUS: [&str; 2] = ["inetDomainStatus", "mailDomainStatus"];

struct Inner {
    settings: Settings,
    pool: Pool,
    filter: FilterTemplate,
    domain_filter: FilterTemplate,
    cache: Option<Cache>,
    /// A stored value in the default scheme, of a password nobody knows:
    /// checked for unknown users so they cost what a wrong password does.
    decoy_hash: Vec<u8>,
}

/// A directory to authenticate against. Cheap to clone; all clones share
/// the connection pool and cache.
#[derive(Clone)]
pub struct Directory {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("hosts", &self.inner.settings.hosts)
            .field("base_dn", &self.inner.settings.base_dn)
            .finish_non_exhaustive()
    }
}

impl Directory {
    /// Checks the settings and prepares the pool. No connection is opened
    /// until the first request.
    ///
    /// # Errors
    /// [`Error::Config`] / [`Error::Filter`] for unusable settings.
    pub fn new(settings: Settings) -> Result<Self, Error> {
        let pool = Pool::new(&settings)?;
        let filter = FilterTemplate::parse(&settings.search_filter)?;
        let domain_filter = FilterTemplate::parse(&settings.domain_filter)?;
        let cache = settings.cache_ttl.map(Cache::new).transpose()?;
        let mut secret = [0u8; 18];
        getrandom::fill(&mut secret)
            .map_err(|_| Error::Config("no randomness available".into()))?;
        // In the default scheme (sha512-crypt unless configured), the
        // directory's usual cost; a scheme that cannot hash falls back to
        // the built-in default (auto-transition reports it when used).
        let decoy_hash = settings
            .transition_scheme
            .hash(&secret)
            .or_else(|_| scheme::NewScheme::default().hash(&secret))
            .map_err(|e| Error::Config(format!("default password scheme: {e}")))?
            .into_bytes();
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                pool,
                filter,
                domain_filter,
                cache,
                decoy_hash,
            }),
        })
    }

    /// The settings in use.
    #[must_use]
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// Each configured server's URL and whether it is currently in use
    /// (`false` while it is skipped after a failure).
    #[must_use]
    pub fn server_status(&self) -> Vec<(String, bool)> {
        self.inner.pool.status()
    }

    fn user_attrs(&self, with_password: bool) -> Vec<&str> {
        let mut a = vec![
            "uid",
            "mail",
            "mailHost",
            "inetUserStatus",
            "mailUserStatus",
            "mailAllowedServiceAccess",
            "mailAlternateAddress",
        ];
        a.extend(self.extra_attributes().iter().map(String::as_str));
        if with_password {
            a.push("userPassword");
        }
        a
    }

    fn one(found: Found) -> Result<SearchEntry, Reject> {
        if found.more {
            return Err(Reject::Ambiguous);
        }
        found.entries.into_iter().next().ok_or(Reject::UnknownUser)
    }

    /// Finds the entry for `login` as the chapter describes: domain lookup
    /// first (with `searchfordomain`), then the user under the domain with
    /// its `inetDomainSearchFilter` or the default filter. Exactly one
    /// entry, or a refusal.
    ///
    /// # Errors
    /// [`Error::Rejected`] (unknown / ambiguous user or domain),
    /// [`Error::Unavailable`], [`Error::Directory`].
    pub async fn lookup(&self, login: &str) -> Result<Entry, Error> {
        self.lookup_with(login, false).await
    }

    async fn lookup_with(&self, login: &str, with_password: bool) -> Result<Entry, Error> {
        if login.is_empty() || login.len() > MAX_LOGIN {
            return Err(Reject::UnknownUser.into());
        }
        let s = &self.inner.settings;
        let (user, domain) = split_login(login);
        let domain = domain.or(s.default_domain.as_deref());
        let mut base = s.base_dn.clone();
        let mut template = self.inner.filter.clone();
        let mut domain_attrs = None;
        let mut domain_dn = None;
        if s.search_for_domain
            && let Some(d) = domain
        {
            let entry = self.domain_entry(user, d, login).await?;
            if let Some(custom) = first(&entry, "inetDomainSearchFilter") {
                template = FilterTemplate::parse(&custom).map_err(|e| {
                    Error::Directory(format!("inetDomainSearchFilter of {}: {e}", entry.dn))
                })?;
            }
            base = first(&entry, "inetDomainBaseDN").unwrap_or_else(|| entry.dn.clone());
            domain_dn = Some(entry.dn.clone());
            domain_attrs = Some(entry);
        }
        let filter = template.expand(user, domain.unwrap_or(""), login);
        tracing::debug!(%base, %filter, "user search");
        let found = self
            .inner
            .pool
            .search(
                &base,
                Scope::Subtree,
                &filter,
                &self.user_attrs(with_password),
            )
            .await?;
        let entry = Self::one(found)?;
        Ok(Entry {
            dn: entry.dn.clone(),
            domain: domain.map(str::to_owned),
            domain_dn,
            filter,
            base,
            attrs: entry,
            domain_attrs,
        })
    }

    /// The domain's entry (exactly one, else [`Reject::UnknownDomain`]).
    async fn domain_entry(
        &self,
        user: &str,
        domain: &str,
        login: &str,
    ) -> Result<SearchEntry, Error> {
        let f = self.inner.domain_filter.expand(user, domain, login);
        let found = self
            .inner
            .pool
            .search(
                &self.inner.settings.base_dn,
                Scope::Subtree,
                &f,
                &[
                    "inetDomainSearchFilter",
                    "inetDomainBaseDN",
                    "mailDomainAllowedServiceAccess",
                    "inetDomainStatus",
                    "mailDomainStatus",
                ],
            )
            .await?;
        Self::one(found).map_err(|r| {
            if r == Reject::UnknownUser {
                Reject::UnknownDomain.into()
            } else {
                r.into()
            }
        })
    }

    pub(crate) fn status_check(entry: &Entry) -> Result<(), Reject> {
        for attr in USER_STATUS {
            if let Some(v) = entry.first(attr) {
                let ok = v.eq_ignore_ascii_case("active")
                    || (attr == "mailUserStatus" && v.eq_ignore_ascii_case("overquota"));
                if !ok {
                    return Err(Reject::AccountStatus {
                        attribute: attr,
                        value: v,
                    });
                }
            }
        }
        if let Some(d) = &entry.domain_attrs {
            for attr in DOMAIN_STATUS {
                if let Some(v) = first(d, attr)
                    && !v.eq_ignore_ascii_case("active")
                {
                    return Err(Reject::DomainStatus {
                        attribute: attr,
                        value: v,
                    });
                }
            }
        }
        Ok(())
    }

    pub(crate) fn user_of(&self, entry: &Entry, login: &str) -> User {
        let uid = entry.first("uid");
        let mail = entry.first("mail");
        let local = uid
            .clone()
            .unwrap_or_else(|| split_login(login).0.to_owned());
        let canonical = canonical_identity(
            self.canonical_form(),
            &local,
            entry.domain.as_deref(),
            mail.as_deref(),
        );
        // The user's addresses (`mail`, `mailAlternateAddress`) always
        // come along, under the names the users file gives them: smtpd's
        // sender check reads them.
        let attributes = ["mail", "mailAlternateAddress"]
            .iter()
            .copied()
            .chain(self.extra_attributes().iter().map(String::as_str))
            .filter_map(|name| {
                let v: Vec<String> = entry
                    .values(name)
                    .into_iter()
                    .filter_map(|b| String::from_utf8(b).ok())
                    .collect();
                (!v.is_empty()).then(|| (name.to_ascii_lowercase(), v))
            })
            .collect();
        User {
            dn: entry.dn.clone(),
            login: login.to_owned(),
            uid,
            mail,
            domain: entry.domain.clone(),
            allowed_service_access: entry.first("mailAllowedServiceAccess"),
            domain_allowed_service_access: entry
                .domain_attrs
                .as_ref()
                .and_then(|d| first(d, "mailDomainAllowedServiceAccess")),
            mail_host: entry.first("mailHost"),
            canonical,
            attributes,
            transitioned: false,
        }
    }

    /// The attributes returned with every user beyond the built-in ones.
    fn extra_attributes(&self) -> &[String] {
        &self.inner.settings.extra_attributes
    }

    /// The canonical identity's form.
    fn canonical_form(&self) -> &str {
        &self.inner.settings.canonical_form
    }

    /// Checks `password` locally against the entry's `userPassword`
    /// values (SCRAM keys included).
    ///
    /// The hashing (sha-crypt, bcrypt, Argon2, PBKDF2) runs on tokio's
    /// blocking pool, never on an async worker, and each value's cost is
    /// capped ([`scheme::limits`]).
    async fn local_check(entry: &Entry, password: &Password) -> Result<(), Error> {
        let stored = entry.values("userPassword");
        if stored.is_empty() {
            return Err(Reject::NoUsablePassword.into());
        }
        let dn = entry.dn.clone();
        let password = password.clone();
        let usable = tokio::task::spawn_blocking(move || {
            let mut usable = false;
            for v in &stored {
                match scheme::verify(v, password.as_bytes()) {
                    Ok(true) => return Ok(()),
                    Ok(false) => usable = true,
                    Err(e) => {
                        tracing::debug!(dn = %dn, error = %e, "stored password value skipped")
                    }
                }
            }
            Err(usable)
        })
        .await
        .map_err(|e| Error::Unavailable(format!("password check did not finish: {e}")))?;
        match usable {
            Ok(()) => Ok(()),
            Err(true) => Err(Reject::BadPassword.into()),
            Err(false) => Err(Reject::NoUsablePassword.into()),
        }
    }

    /// Verifies a plaintext password for `login` (PLAIN, LOGIN, HTTP…):
    /// lookup, bind (or local hash check), account state, then
    /// auto-transition. An empty password is refused before any network
    /// traffic.
    ///
    /// # Errors
    /// [`Error::Rejected`] with the reason, [`Error::Unavailable`] when no
    /// server answers (temporary), [`Error::Directory`].
    pub async fn verify_password(&self, login: &str, password: &Password) -> Result<User, Error> {
        if password.is_empty() {
            return Err(Reject::EmptyPassword.into());
        }
        if login.is_empty() {
            return Err(Reject::UnknownUser.into());
        }
        let key = self
            .inner
            .cache
            .as_ref()
            .map(|c| c.key(login, password.expose()));
        if let (Some(c), Some(k)) = (&self.inner.cache, &key)
            && let Some(hit) = c.get(k)
        {
            return hit;
        }
        let result = self.verify_uncached(login, password).await;
        if let (Some(c), Some(k)) = (&self.inner.cache, key) {
            c.put(k, result.clone());
        }
        result
    }

    async fn verify_uncached(&self, login: &str, password: &Password) -> Result<User, Error> {
        let s = &self.inner.settings;
        let need_pw = s.verify == VerifyMode::LocalHash || s.auto_transition;
        let entry = match self.lookup_with(login, need_pw).await {
            Ok(entry) => entry,
            Err(Error::Rejected(Reject::UnknownUser)) => {
                // The same work as for a wrong password, so the answer's
                // timing does not tell unknown users from real ones.
                self.decoy_check(password).await;
                return Err(Reject::UnknownUser.into());
            }
            Err(e) => return Err(e),
        };
        match s.verify {
            VerifyMode::Bind => {
                if !self
                    .inner
                    .pool
                    .check_bind(&entry.dn, password.expose())
                    .await?
                {
                    return Err(Reject::BadPassword.into());
                }
            }
            VerifyMode::LocalHash => Self::local_check(&entry, password).await?,
        }
        Self::status_check(&entry)?;
        let mut user = self.user_of(&entry, login);
        if s.auto_transition {
            user.transitioned = self.transition(&entry, password).await;
        }
        Ok(user)
    }

    /// What a wrong password costs, done for an unknown user: by bind, a
    /// bind that fails (to a DN that does not exist, so the same round
    /// trips) and then the hash the server would have computed; by local
    /// check, the check of the decoy value. Hashing runs on the blocking
    /// pool; the outcome is ignored.
    async fn decoy_check(&self, password: &Password) {
        if self.inner.settings.verify == VerifyMode::Bind {
            let dn = format!(
                "uid=portcullis-no-such-user,{}",
                self.inner.settings.base_dn
            );
            let _ = self.inner.pool.check_bind(&dn, password.expose()).await;
        }
        let stored = self.inner.decoy_hash.clone();
        let password = password.clone();
        let _ =
            tokio::task::spawn_blocking(move || scheme::verify(&stored, password.as_bytes())).await;
    }

    /// Rewrites `userPassword` in the default scheme (and SCRAM keys when
    /// configured) if it is stored otherwise. Never fails the login.
    async fn transition(&self, entry: &Entry, password: &Password) -> bool {
        let s = &self.inner.settings;
        let stored = entry.values("userPassword");
        if stored.is_empty() {
            tracing::warn!(dn = %entry.dn, "auto_transition: userPassword not readable by the service account");
            return false;
        }
        let (scram, primary): (Vec<&Vec<u8>>, Vec<&Vec<u8>>) = stored
            .iter()
            .partition(|v| StoredPassword::parse(v).scheme.is_ok_and(Scheme::is_scram));
        let has_scram256 = scram
            .iter()
            .any(|v| StoredPassword::parse(v).scheme == Ok(Scheme::ScramSha256));
        let primary_ok =
            !primary.is_empty() && primary.iter().all(|v| s.transition_scheme.is_current(v));
        if primary_ok && (!s.transition_scram || has_scram256) {
            return false;
        }
        // The new hashes are computed on the blocking pool too.
        let (scheme_to, with_scram, iterations) =
            (s.transition_scheme, s.transition_scram, s.scram_iterations);
        let pw = password.clone();
        let dn = entry.dn.clone();
        let hashed = tokio::task::spawn_blocking(move || {
            let primary = scheme_to.hash(pw.as_bytes());
            let scram = with_scram.then(|| {
                let prepped = match stringprep::saslprep(pw.expose()) {
                    Ok(p) => zeroize::Zeroizing::new(p.into_owned()),
                    Err(_) => zeroize::Zeroizing::new(pw.expose().to_owned()),
                };
                scheme::scram_sha256_value(prepped.as_bytes(), iterations)
            });
            (primary, scram)
        })
        .await;
        let Ok((primary, scram_value)) = hashed else {
            tracing::warn!(dn = %dn, "auto_transition: hashing did not finish");
            return false;
        };
        let mut new_values = Vec::new();
        match primary {
            Ok(v) => new_values.push(v),
            Err(e) => {
                tracing::warn!(dn = %entry.dn, error = %e, "auto_transition: cannot hash");
                return false;
            }
        }
        if let Some(scram_value) = scram_value {
            match scram_value {
                Ok(v) => new_values.push(v),
                Err(e) => {
                    tracing::warn!(dn = %entry.dn, error = %e, "auto_transition: no SCRAM keys")
                }
            }
        } else {
            new_values.extend(
                scram
                    .iter()
                    .map(|v| String::from_utf8_lossy(v).into_owned()),
            );
        }
        // A conditional modify: exactly the values read at login are
        // swapped, so a password changed meanwhile is never overwritten.
        let new_values = new_values.into_iter().map(String::into_bytes).collect();
        match self
            .inner
            .pool
            .swap_values(&entry.dn, "userPassword", stored.clone(), new_values)
            .await
        {
            Ok(true) => {
                tracing::info!(dn = %entry.dn, "auto_transition: userPassword rewritten");
                true
            }
            Ok(false) => {
                tracing::info!(dn = %entry.dn, "auto_transition: userPassword changed meanwhile; left as it is");
                false
            }
            Err(e) => {
                tracing::warn!(dn = %entry.dn, error = %e, "auto_transition: write-back failed; login unaffected");
                false
            }
        }
    }

    /// The user's cleartext password, for CRAM-MD5 / DIGEST-MD5 / APOP.
    /// Only with `has_plain_passwords`; values stored hashed are not
    /// usable. Account state is checked.
    ///
    /// # Errors
    /// As [`Directory::verify_password`].
    pub async fn fetch_cleartext(&self, login: &str) -> Result<(User, Password), Error> {
        if !self.inner.settings.has_plain_passwords {
            return Err(Reject::PlainPasswordsDisabled.into());
        }
        let entry = self.lookup_with(login, true).await?;
        Self::status_check(&entry)?;
        let pw = entry
            .values("userPassword")
            .into_iter()
            .find_map(|v| {
                let sp = StoredPassword::parse(&v);
                (sp.scheme == Ok(Scheme::Cleartext))
                    .then(|| String::from_utf8(sp.body.to_vec()).ok())
                    .flatten()
            })
            .ok_or(Reject::NoUsablePassword)?;
        Ok((self.user_of(&entry, login), Password::new(pw)))
    }

    /// The user's stored SCRAM keys for `algorithm` (a `{SCRAM-SHA-256}` /
    /// `{SCRAM-SHA-1}` `userPassword` value).
    ///
    /// # Errors
    /// As [`Directory::verify_password`].
    pub async fn fetch_scram(
        &self,
        login: &str,
        algorithm: ScramAlgorithm,
    ) -> Result<(User, ScramSecret), Error> {
        let entry = self.lookup_with(login, true).await?;
        Self::status_check(&entry)?;
        let want = match algorithm {
            ScramAlgorithm::Sha1 => Scheme::ScramSha1,
            _ => Scheme::ScramSha256,
        };
        let secret = entry
            .values("userPassword")
            .into_iter()
            .find_map(|v| {
                let sp = StoredPassword::parse(&v);
                if sp.scheme != Ok(want) {
                    return None;
                }
                let b = scheme::parse_scram(sp.body, algorithm.output_len()).ok()?;
                ScramSecret::new(algorithm, b.iterations, b.salt, b.stored_key, b.server_key).ok()
            })
            .ok_or(Reject::NoUsablePassword)?;
        Ok((self.user_of(&entry, login), secret))
    }

    /// Whether `login` belongs to the administrators group and so may act
    /// as another user ("may proxy").
    ///
    /// # Errors
    /// [`Error::Unavailable`] / [`Error::Directory`]; an unknown user is
    /// `Ok(false)`.
    pub async fn may_proxy(&self, login: &str) -> Result<bool, Error> {
        let Some(group) = &self.inner.settings.admin_group_dn else {
            return Ok(false);
        };
        let entry = match self.lookup(login).await {
            Ok(e) => e,
            Err(Error::Rejected(_)) => return Ok(false),
            Err(e) => return Err(e),
        };
        let dn = filter_value(&entry.dn);
        let f = format!("(|(member={dn})(uniqueMember={dn}))");
        let found = self
            .inner
            .pool
            .search(group, Scope::Base, &f, &["1.1"])
            .await?;
        Ok(!found.entries.is_empty())
    }

    /// Maps a client certificate the TLS handshake verified to exactly one
    /// entry with the configured `certmap.conf`, or the built-in e-mail
    /// mapping.
    ///
    /// # Errors
    /// [`Error::Rejected`] (unmappable, none / several entries,
    /// `verifycert` mismatch, account state), [`Error::Unavailable`].
    pub async fn map_certificate(
        &self,
        verified: &portcullis_sasl::VerifiedCertificate,
    ) -> Result<User, Error> {
        let s = &self.inner.settings;
        let cert =
            ClientCert::from_verified(verified).map_err(|e| Reject::Unmappable(e.to_string()))?;
        let plan = portcullis_certmap::plan(s.certmap.as_ref(), &cert)
            .map_err(|e| Reject::Unmappable(e.to_string()))?;
        let configured = s
            .certmap_base_dn
            .clone()
            .unwrap_or_else(|| s.base_dn.clone());
        let base = match &plan.base {
            SearchBase::Dn(dn) => dn.clone(),
            _ => configured,
        };
        let scope = match plan.scope {
            portcullis_certmap::Scope::Base => Scope::Base,
            _ => Scope::Subtree,
        };
        let mut attrs: Vec<&str> = self.user_attrs(false);
        if plan.verify_cert.is_some() {
            attrs.push("userCertificate;binary");
        }
        if let Some(subject) = &plan.subject_attr {
            attrs.push(&subject.attr);
        }
        tracing::debug!(map = %plan.map, %base, filter = %plan.filter, "certificate mapping search");
        let mut found = self
            .inner
            .pool
            .search(&base, scope, &plan.filter, &attrs)
            .await?;
        // CmapLdapAttr: the attribute must hold the subject as a DN, not
        // merely a string the directory's matching rule took for it. Two
        // entries found stay ambiguous (the size limit hides any others).
        if let Some(subject) = &plan.subject_attr {
            found
                .entries
                .retain(|e| values(e, &subject.attr).iter().any(|v| subject.matches(v)));
        }
        let e = Self::one(found)?;
        if let Some(want) = &plan.verify_cert {
            let held = values(&e, "userCertificate;binary")
                .into_iter()
                .chain(values(&e, "userCertificate"))
                .any(|c| c.len() == want.len() && bool::from(c.ct_eq(want)));
            if !held {
                return Err(Reject::CertificateMismatch.into());
            }
        }
        let login = first(&e, "mail")
            .or_else(|| first(&e, "uid"))
            .unwrap_or_default();
        let domain = login.rsplit_once('@').map(|(_, d)| d.to_owned());
        // The user's domain applies to certificate logins too: its status
        // (a held domain refuses them) and its service-access filters. A
        // mail domain without a domain entry adds nothing.
        let domain_attrs = match &domain {
            Some(d) if s.search_for_domain => {
                let (local, _) = split_login(&login);
                match self.domain_entry(local, d, &login).await {
                    Ok(entry) => Some(entry),
                    Err(Error::Rejected(Reject::UnknownDomain)) => None,
                    Err(e) => return Err(e),
                }
            }
            _ => None,
        };
        let entry = Entry {
            dn: e.dn.clone(),
            domain,
            domain_dn: domain_attrs.as_ref().map(|d| d.dn.clone()),
            filter: plan.filter.clone(),
            base,
            attrs: e,
            domain_attrs,
        };
        Self::status_check(&entry)?;
        Ok(self.user_of(&entry, &login))
    }
}

#[cfg(test)]
mod transition_tests {
    use std::time::Duration;

    use portcullis_test_support::slapd::Slapd;

    use super::*;

    fn add_user(slapd: &Slapd, uid: &str, password: &str) -> String {
        let dn = format!("uid={uid},ou=People,o=example.com,{}", slapd.base_dn());
        slapd
            .add_ldif(&format!(
                "dn: {dn}\nobjectClass: inetOrgPerson\nobjectClass: inetMailUser\n\
                 objectClass: inetUser\nuid: {uid}\ncn: {uid}\nsn: Test\n\
                 mail: {uid}@example.com\nmailUserStatus: active\nuserPassword: {password}\n"
            ))
            .expect("add user");
        dn
    }

    fn directory(slapd: &Slapd) -> Directory {
        let mut s = Settings::new(format!("127.0.0.1:{}", slapd.port()), slapd.base_dn());
        s.bind_dn = slapd.service_dn().into();
        s.bind_password = slapd.service_password().into();
        s.connect_timeout = Duration::from_secs(3);
        s.operation_timeout = Duration::from_secs(5);
        s.auto_transition = true;
        Directory::new(s).expect("settings")
    }

    fn passwords(entry: &Entry) -> Vec<String> {
        entry
            .values("userPassword")
            .into_iter()
            .map(|v| String::from_utf8(v).unwrap())
            .collect()
    }

    /// A password changed between the login's lookup and the rewrite is
    /// never overwritten; without a change, the rewrite happens.
    #[tokio::test]
    async fn auto_transition_never_overwrites_a_concurrent_change() {
        let slapd = Slapd::shared();
        let d = directory(slapd);
        let pid = std::process::id();
        let (raced, calm) = (format!("race{pid}"), format!("calm{pid}"));
        let dn = add_user(slapd, &raced, "old-pw");
        add_user(slapd, &calm, "old-pw");

        // The login has read the entry; then someone sets a new password.
        let stale = d
            .lookup_with(&format!("{raced}@example.com"), true)
            .await
            .unwrap();
        assert_eq!(passwords(&stale), ["old-pw"]);
        slapd
            .modify_ldif(&format!(
                "dn: {dn}\nchangetype: modify\nreplace: userPassword\nuserPassword: new-pw\n"
            ))
            .unwrap();
        assert!(!d.transition(&stale, &Password::new("old-pw")).await);
        let now = d
            .lookup_with(&format!("{raced}@example.com"), true)
            .await
            .unwrap();
        assert_eq!(
            passwords(&now),
            ["new-pw"],
            "the concurrent change was overwritten"
        );

        // No change meanwhile: the value is rewritten in the default scheme.
        let entry = d
            .lookup_with(&format!("{calm}@example.com"), true)
            .await
            .unwrap();
        assert!(d.transition(&entry, &Password::new("old-pw")).await);
        let now = d
            .lookup_with(&format!("{calm}@example.com"), true)
            .await
            .unwrap();
        let values = passwords(&now);
        assert_eq!(values.len(), 1);
        assert_ne!(values[0], "old-pw");
        assert_eq!(scheme::verify(values[0].as_bytes(), b"old-pw"), Ok(true));
    }
}
