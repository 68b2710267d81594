//! What a server exchange asks of its caller, and how the caller answers.
//!
//! A mechanism never blocks on the directory. When it needs something it
//! returns [`crate::Step::Verify`] with a [`Request`]; the caller looks the
//! answer up (asynchronously, e.g. over LDAP) and passes an [`Answer`] to
//! [`crate::ServerSession::answer`]. The traits [`CredentialVerifier`],
//! [`IdentityMapper`] and [`ProxyAuthorizer`] are one way to produce those
//! answers ([`Backends::resolve`] dispatches a request to them).
//!
//! Every answer distinguishes *reject* (bad credentials, unknown user, no
//! mapping, not permitted) from *unavailable* (the directory is down): the
//! protocols reply differently (`NO [AUTHENTICATIONFAILED]` versus
//! `NO [UNAVAILABLE]`, `535 5.7.8` versus `454 4.7.0`).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::{Account, ExternalIdentity, Mechanism, Password, ScramAlgorithm, ScramSecret, Service};

/// A boxed, `Send` future, so the traits below can be used as `dyn` objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The answer to one question: accept (with a value), reject, or
/// temporarily unavailable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict<T = ()> {
    /// The check passed / the value was found.
    Accept(T),
    /// Bad credentials, unknown user, no mapping, or not permitted. Callers
    /// must not reveal which.
    Reject,
    /// The credential store could not be consulted (directory down,
    /// timeout). The client may retry later.
    Unavailable,
}

/// Asks the caller to check a cleartext password (PLAIN, LOGIN).
///
/// The user name and password are SASLprep-normalised (RFC 4013).
#[derive(Debug, Clone)]
pub struct VerifyPassword {
    pub(crate) service: Service,
    pub(crate) mechanism: Mechanism,
    pub(crate) authcid: String,
    pub(crate) authzid: Option<String>,
    pub(crate) password: Password,
}

impl VerifyPassword {
    /// The protocol service.
    pub fn service(&self) -> Service {
        self.service
    }
    /// The mechanism that carried the password.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }
    /// The authentication identity (user name).
    pub fn authcid(&self) -> &str {
        &self.authcid
    }
    /// The requested authorization identity, if any. Informational: the
    /// proxy check is a separate [`Authorize`] request.
    pub fn authzid(&self) -> Option<&str> {
        self.authzid.as_deref()
    }
    /// The password to check.
    pub fn password(&self) -> &Password {
        &self.password
    }
}

/// Asks the caller for the user's cleartext password (CRAM-MD5, DIGEST-MD5,
/// APOP; needs `sasl.default.ldap.has_plain_passwords`).
#[derive(Debug, Clone)]
pub struct FetchPassword {
    pub(crate) service: Service,
    pub(crate) mechanism: Mechanism,
    pub(crate) authcid: String,
    pub(crate) realm: Option<String>,
}

impl FetchPassword {
    /// The protocol service.
    pub fn service(&self) -> Service {
        self.service
    }
    /// The mechanism asking.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }
    /// The user name.
    pub fn authcid(&self) -> &str {
        &self.authcid
    }
    /// The DIGEST-MD5 realm the client chose, if any.
    pub fn realm(&self) -> Option<&str> {
        self.realm.as_deref()
    }
}

/// Asks the caller for the user's stored SCRAM secret (RFC 5803) for one
/// hash algorithm.
#[derive(Debug, Clone)]
pub struct FetchScramSecret {
    pub(crate) service: Service,
    pub(crate) mechanism: Mechanism,
    pub(crate) authcid: String,
    pub(crate) algorithm: ScramAlgorithm,
}

impl FetchScramSecret {
    /// The protocol service.
    pub fn service(&self) -> Service {
        self.service
    }
    /// The mechanism asking (with or without -PLUS).
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }
    /// The user name (SASLprep-normalised).
    pub fn authcid(&self) -> &str {
        &self.authcid
    }
    /// The hash algorithm whose secret is needed.
    pub fn algorithm(&self) -> ScramAlgorithm {
        self.algorithm
    }
}

/// Asks the caller to map an external identity (the TLS client
/// certificate) to a user name (EXTERNAL).
#[derive(Debug, Clone)]
pub struct MapIdentity {
    pub(crate) service: Service,
    pub(crate) identity: ExternalIdentity,
    pub(crate) authzid: Option<String>,
}

impl MapIdentity {
    /// The protocol service.
    pub fn service(&self) -> Service {
        self.service
    }
    /// The identity to map.
    pub fn identity(&self) -> &ExternalIdentity {
        &self.identity
    }
    /// The authorization identity the client asked for, if any (a hint:
    /// the proxy check is a separate [`Authorize`] request).
    pub fn authzid(&self) -> Option<&str> {
        self.authzid.as_deref()
    }
}

/// Asks whether `authcid` may act as `authzid` (proxy authorization). Only
/// issued when the two differ.
#[derive(Debug, Clone)]
pub struct Authorize {
    pub(crate) service: Service,
    pub(crate) mechanism: Mechanism,
    pub(crate) authcid: String,
    pub(crate) authzid: String,
}

impl Authorize {
    /// The protocol service.
    pub fn service(&self) -> Service {
        self.service
    }
    /// The mechanism that authenticated `authcid`.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }
    /// The authenticated identity.
    pub fn authcid(&self) -> &str {
        &self.authcid
    }
    /// The identity requested.
    pub fn authzid(&self) -> &str {
        &self.authzid
    }
}

/// What a server exchange needs from its caller before it can continue.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Request {
    /// Check a cleartext password. Answer [`Answer::Accept`].
    VerifyPassword(VerifyPassword),
    /// Fetch the cleartext password. Answer [`Answer::Password`].
    FetchPassword(FetchPassword),
    /// Fetch the stored SCRAM secret. Answer [`Answer::ScramSecret`].
    FetchScramSecret(FetchScramSecret),
    /// Map the client certificate to a user. Answer [`Answer::Identity`].
    MapIdentity(MapIdentity),
    /// Proxy authorization. Answer [`Answer::Accept`] with the account of
    /// the user acted as.
    Authorize(Authorize),
}

/// A value and the account it belongs to.
pub type WithAccount<T> = (T, Account);

/// The caller's answer to a [`Request`].
///
/// Every accepting answer carries the user's [`Account`], which ends up in
/// [`crate::Authenticated::account`]. [`Answer::Reject`] and
/// [`Answer::Unavailable`] answer any request. An answer of the wrong kind
/// is [`crate::Error::ApiMisuse`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Answer {
    /// The password is right / the proxy authorization is allowed (with
    /// the account of the user acted as).
    Accept(Account),
    /// The user's cleartext password.
    Password(Password, Account),
    /// The user's stored SCRAM secret for the requested algorithm.
    ScramSecret(ScramSecret, Account),
    /// The account the external identity maps to.
    Identity(Account),
    /// Bad credentials, unknown user, no mapping, or not allowed.
    Reject,
    /// Temporarily unavailable.
    Unavailable,
}

impl Answer {
    /// [`Answer::Accept`] with an account that has only a name.
    #[must_use]
    pub fn accept(name: impl Into<String>) -> Self {
        Self::Accept(Account::new(name))
    }
}

macro_rules! answer_from_verdict {
    ($t:ty, $v:pat => $answer:expr) => {
        impl From<Verdict<$t>> for Answer {
            fn from(v: Verdict<$t>) -> Self {
                match v {
                    Verdict::Accept($v) => $answer,
                    Verdict::Reject => Self::Reject,
                    Verdict::Unavailable => Self::Unavailable,
                }
            }
        }
    };
}

answer_from_verdict!(Account, a => Self::Accept(a));
answer_from_verdict!(WithAccount<Password>, (p, a) => Self::Password(p, a));
answer_from_verdict!(WithAccount<ScramSecret>, (s, a) => Self::ScramSecret(s, a));

pub(crate) fn identity_answer(v: Verdict<Account>) -> Answer {
    match v {
        Verdict::Accept(a) => Answer::Identity(a),
        Verdict::Reject => Answer::Reject,
        Verdict::Unavailable => Answer::Unavailable,
    }
}

/// Checks passwords and hands out stored secrets (ldapauth implements it
/// against the directory).
pub trait CredentialVerifier: fmt::Debug + Send + Sync {
    /// Checks a cleartext password (PLAIN, LOGIN, protocol logins) and
    /// returns the user's account.
    fn verify_password<'a>(
        &'a self,
        request: &'a VerifyPassword,
    ) -> BoxFuture<'a, Verdict<Account>>;

    /// Returns the cleartext password (CRAM-MD5, DIGEST-MD5, APOP) and the
    /// account. The default rejects: the store holds no cleartext
    /// passwords.
    fn fetch_password<'a>(
        &'a self,
        request: &'a FetchPassword,
    ) -> BoxFuture<'a, Verdict<WithAccount<Password>>> {
        let _ = request;
        Box::pin(std::future::ready(Verdict::Reject))
    }

    /// Returns the stored SCRAM secret (RFC 5803) and the account. The
    /// default rejects.
    fn fetch_scram_secret<'a>(
        &'a self,
        request: &'a FetchScramSecret,
    ) -> BoxFuture<'a, Verdict<WithAccount<ScramSecret>>> {
        let _ = request;
        Box::pin(std::future::ready(Verdict::Reject))
    }
}

/// Maps an external identity (TLS client certificate) to a user name
/// (certmap / ldapauth implement it).
pub trait IdentityMapper: fmt::Debug + Send + Sync {
    /// Returns the account the identity maps to.
    fn map_identity<'a>(&'a self, request: &'a MapIdentity) -> BoxFuture<'a, Verdict<Account>>;
}

/// Decides whether an authenticated user may act as another (ldapauth
/// implements it with the store administrators' group).
pub trait ProxyAuthorizer: fmt::Debug + Send + Sync {
    /// Whether `request.authcid()` may act as `request.authzid()`; accepts
    /// with the account of `request.authzid()` (the user acted as, whose
    /// store and filters apply).
    fn authorize<'a>(&'a self, request: &'a Authorize) -> BoxFuture<'a, Verdict<Account>>;
}

/// A [`ProxyAuthorizer`] that allows nobody to proxy.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProxy;

impl ProxyAuthorizer for NoProxy {
    fn authorize<'a>(&'a self, _request: &'a Authorize) -> BoxFuture<'a, Verdict<Account>> {
        Box::pin(std::future::ready(Verdict::Reject))
    }
}

/// The set of backends that answer a server exchange's requests.
#[derive(Debug, Clone)]
pub struct Backends {
    /// Passwords and stored secrets.
    pub credentials: Arc<dyn CredentialVerifier>,
    /// Certificate mapping for EXTERNAL; `None` rejects EXTERNAL.
    pub identities: Option<Arc<dyn IdentityMapper>>,
    /// Proxy authorization.
    pub proxy: Arc<dyn ProxyAuthorizer>,
}

impl Backends {
    /// Backends with no certificate mapping and no proxying.
    pub fn new(credentials: Arc<dyn CredentialVerifier>) -> Self {
        Self {
            credentials,
            identities: None,
            proxy: Arc::new(NoProxy),
        }
    }

    /// Answers `request` with the matching backend.
    pub async fn resolve(&self, request: &Request) -> Answer {
        match request {
            Request::VerifyPassword(r) => self.credentials.verify_password(r).await.into(),
            Request::FetchPassword(r) => self.credentials.fetch_password(r).await.into(),
            Request::FetchScramSecret(r) => self.credentials.fetch_scram_secret(r).await.into(),
            Request::MapIdentity(r) => match &self.identities {
                Some(m) => identity_answer(m.map_identity(r).await),
                None => Answer::Reject,
            },
            Request::Authorize(r) => self.proxy.authorize(r).await.into(),
        }
    }
}
