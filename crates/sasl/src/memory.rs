//! An in-memory backend, for tests, examples, fuzzing and benchmarks.

use std::collections::{BTreeMap, BTreeSet};

use crate::backend::{
    Answer, Authorize, BoxFuture, CredentialVerifier, FetchPassword, FetchScramSecret,
    IdentityMapper, MapIdentity, ProxyAuthorizer, Request, Verdict, VerifyPassword,
};
use crate::util::saslprep;
use crate::{Error, ExternalIdentity, MIN_ITERATIONS, Password, ScramAlgorithm, ScramSecret};

#[derive(Debug, Clone, Default)]
struct User {
    password: Option<Password>,
    scram: Vec<ScramSecret>,
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
        self.users.insert(
            saslprep(name)?,
            User {
                password: Some(password),
                scram,
            },
        );
        Ok(self)
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

    fn verify(&self, r: &VerifyPassword) -> Verdict {
        match self
            .users
            .get(r.authcid())
            .and_then(|u| u.password.as_ref())
        {
            Some(p) if p.ct_eq(r.password()) => Verdict::Accept(()),
            _ => Verdict::Reject,
        }
    }

    fn password(&self, r: &FetchPassword) -> Verdict<Password> {
        match self.users.get(r.authcid()).and_then(|u| u.password.clone()) {
            Some(p) => Verdict::Accept(p),
            None => Verdict::Reject,
        }
    }

    fn scram(&self, r: &FetchScramSecret) -> Verdict<ScramSecret> {
        let found = self
            .users
            .get(r.authcid())
            .and_then(|u| u.scram.iter().find(|s| s.algorithm() == r.algorithm()));
        match found {
            Some(s) => Verdict::Accept(s.clone()),
            None => Verdict::Reject,
        }
    }

    fn map(&self, r: &MapIdentity) -> Verdict<String> {
        match self.certificates.iter().find(|(i, _)| i == r.identity()) {
            Some((_, u)) => Verdict::Accept(u.clone()),
            None => Verdict::Reject,
        }
    }

    fn authorize(&self, r: &Authorize) -> Verdict {
        if self.proxies.contains(r.authcid()) {
            Verdict::Accept(())
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
            Request::MapIdentity(r) => self.map(r).into(),
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
    fn verify_password<'a>(&'a self, request: &'a VerifyPassword) -> BoxFuture<'a, Verdict> {
        Box::pin(std::future::ready(self.gate(self.verify(request))))
    }

    fn fetch_password<'a>(
        &'a self,
        request: &'a FetchPassword,
    ) -> BoxFuture<'a, Verdict<Password>> {
        Box::pin(std::future::ready(self.gate(self.password(request))))
    }

    fn fetch_scram_secret<'a>(
        &'a self,
        request: &'a FetchScramSecret,
    ) -> BoxFuture<'a, Verdict<ScramSecret>> {
        Box::pin(std::future::ready(self.gate(self.scram(request))))
    }
}

impl IdentityMapper for MemoryBackend {
    fn map_identity<'a>(&'a self, request: &'a MapIdentity) -> BoxFuture<'a, Verdict<String>> {
        Box::pin(std::future::ready(self.gate(self.map(request))))
    }
}

impl ProxyAuthorizer for MemoryBackend {
    fn authorize<'a>(&'a self, request: &'a Authorize) -> BoxFuture<'a, Verdict> {
        Box::pin(std::future::ready(self.gate(self.authorize(request))))
    }
}
