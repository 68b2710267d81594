//! An in-memory backend, for tests, examples, fuzzing and benchmarks.

use std::collections::{BTreeMap, BTreeSet};

use crate::backend::{
    Answer, Authorize, BoxFuture, CredentialVerifier, FetchPassword, FetchScramSecret,
    IdentityMapper, MapIdentity, ProxyAuthorizer, Request, Verdict, VerifyPassword, WithAccount,
};
use crate::util::saslprep;
use crate::{
    Account, Error, ExternalIdentity, MIN_ITERATIONS, Password, ScramAlgorithm, ScramSecret,
};

#[derive(Debug, Clone, Default)]
struct User {
    password: Option<Password>,
    scram: Vec<ScramSecret>,
    account: Option<Account>,
}

/// Users, certificates and proxy rights held in memory; answers every
/// [`Request`] synchronously ([`MemoryBackend::answer`]) or through the
/// backend traits.
///
/// Not meant for production: the cleartext passwords live in memory.
#[derive(Debug, Clone, Default)]
pub struct MemoryBackend {
    users: BTreeMap<String, User>,
    certificates: Vec<(ExternalIdentity, String)>,
    proxies: BTreeSet<String>,
    unavailable: bool,
}

impl MemoryBackend {
    /// An empty backend.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a user with a cleartext password (for PLAIN, LOGIN, CRAM-MD5,
    /// DIGEST-MD5, APOP) and SCRAM secrets derived from it with
    /// [`MIN_ITERATIONS`].
    ///
    /// # Errors
    ///
    /// [`Error::Saslprep`] if the password is not a valid SASLprep string;
    /// [`Error::Random`] if no salt could be drawn.
    pub fn with_user(mut self, name: &str, password: &str) -> Result<Self, Error> {
        let password = Password::new(password);
        let scram = [ScramAlgorithm::Sha1, ScramAlgorithm::Sha256]
            .into_iter()
            .map(|a| ScramSecret::generate(a, &password, MIN_ITERATIONS))
            .collect::<Result<Vec<_>, _>>()?;
        let name = saslprep(name)?;
        let user = self.users.entry(name).or_default();
        user.password = Some(password);
        user.scram = scram;
        Ok(self)
    }

    /// Sets the account a user's logins end with (by default one with
    /// only the user's name), e.g. to give it a canonical name or a
    /// message store.
    #[must_use]
    pub fn with_account(mut self, name: &str, account: Account) -> Self {
        self.users.entry(name.to_owned()).or_default().account = Some(account);
        self
    }

    /// The account of a user name (the default one if none was set).
    fn account(&self, name: &str) -> Account {
        self.users
            .get(name)
            .and_then(|u| u.account.clone())
            .unwrap_or_else(|| Account::new(name))
    }

    /// Adds (or replaces) a stored SCRAM secret for a user, without a
    /// cleartext password if the user is new.
    #[must_use]
    pub fn with_scram_secret(mut self, name: &str, secret: ScramSecret) -> Self {
        let user = self.users.entry(name.to_owned()).or_default();
        user.scram.retain(|s| s.algorithm() != secret.algorithm());
        user.scram.push(secret);
        self
    }

    /// Maps an external identity to a user name (EXTERNAL).
    #[must_use]
    pub fn with_identity(mut self, identity: ExternalIdentity, user: &str) -> Self {
        self.certificates.push((identity, user.to_owned()));
        self
    }

    /// Lets `user` act as anyone (a store administrator).
    #[must_use]
    pub fn with_proxy_admin(mut self, user: &str) -> Self {
        self.proxies.insert(user.to_owned());
        self
    }

    /// Simulates a directory outage: every request is answered
    /// [`Answer::Unavailable`].
    pub fn set_unavailable(&mut self, unavailable: bool) {
        self.unavailable = unavailable;
    }

    fn verify(&self, r: &VerifyPassword) -> Verdict<Account> {
        match self
            .users
            .get(r.authcid())
            .and_then(|u| u.password.as_ref())
        {
            Some(p) if p.ct_eq(r.password()) => Verdict::Accept(self.account(r.authcid())),
            _ => Verdict::Reject,
        }
    }

    fn password(&self, r: &FetchPassword) -> Verdict<WithAccount<Password>> {
        match self.users.get(r.authcid()).and_then(|u| u.password.clone()) {
            Some(p) => Verdict::Accept((p, self.account(r.authcid()))),
            None => Verdict::Reject,
        }
    }

    fn scram(&self, r: &FetchScramSecret) -> Verdict<WithAccount<ScramSecret>> {
        let found = self
            .users
            .get(r.authcid())
            .and_then(|u| u.scram.iter().find(|s| s.algorithm() == r.algorithm()));
        match found {
            Some(s) => Verdict::Accept((s.clone(), self.account(r.authcid()))),
            None => Verdict::Reject,
        }
    }

    fn map(&self, r: &MapIdentity) -> Verdict<Account> {
        match self.certificates.iter().find(|(i, _)| i == r.identity()) {
            Some((_, u)) => Verdict::Accept(self.account(u)),
            None => Verdict::Reject,
        }
    }

    fn authorize(&self, r: &Authorize) -> Verdict<Account> {
        if self.proxies.contains(r.authcid()) {
            Verdict::Accept(self.account(r.authzid()))
        } else {
            Verdict::Reject
        }
    }

    /// Answers a request at once.
    pub fn answer(&self, request: &Request) -> Answer {
        if self.unavailable {
            return Answer::Unavailable;
        }
        match request {
            Request::VerifyPassword(r) => self.verify(r).into(),
            Request::FetchPassword(r) => self.password(r).into(),
            Request::FetchScramSecret(r) => self.scram(r).into(),
            Request::MapIdentity(r) => crate::backend::identity_answer(self.map(r)),
            Request::Authorize(r) => self.authorize(r).into(),
        }
    }

    fn gate<T>(&self, v: Verdict<T>) -> Verdict<T> {
        if self.unavailable {
            Verdict::Unavailable
        } else {
            v
        }
    }
}

impl CredentialVerifier for MemoryBackend {
    fn verify_password<'a>(
        &'a self,
        request: &'a VerifyPassword,
    ) -> BoxFuture<'a, Verdict<Account>> {
        Box::pin(std::future::ready(self.gate(self.verify(request))))
    }

    fn fetch_password<'a>(
        &'a self,
        request: &'a FetchPassword,
    ) -> BoxFuture<'a, Verdict<WithAccount<Password>>> {
        Box::pin(std::future::ready(self.gate(self.password(request))))
    }

    fn fetch_scram_secret<'a>(
        &'a self,
        request: &'a FetchScramSecret,
    ) -> BoxFuture<'a, Verdict<WithAccount<ScramSecret>>> {
        Box::pin(std::future::ready(self.gate(self.scram(request))))
    }
}

impl IdentityMapper for MemoryBackend {
    fn map_identity<'a>(&'a self, request: &'a MapIdentity) -> BoxFuture<'a, Verdict<Account>> {
        Box::pin(std::future::ready(self.gate(self.map(request))))
    }
}

impl ProxyAuthorizer for MemoryBackend {
    fn authorize<'a>(&'a self, request: &'a Authorize) -> BoxFuture<'a, Verdict<Account>> {
        Box::pin(std::future::ready(self.gate(self.authorize(request))))
    }
}
