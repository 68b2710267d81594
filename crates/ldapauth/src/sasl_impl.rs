//! `portcullis-sasl`'s backend traits, answered from the directory.

use portcullis_sasl::{
    Account, Authorize, BoxFuture, CredentialVerifier, ExternalIdentity, FetchPassword,
    FetchScramSecret, IdentityMapper, MapIdentity, Password, ProxyAuthorizer, ScramSecret, Verdict,
    VerifyPassword, WithAccount,
};

use crate::{Directory, Error};

fn verdict<T>(r: Result<T, Error>, what: &str, who: &str) -> Verdict<T> {
    match r {
        Ok(v) => Verdict::Accept(v),
        Err(Error::Rejected(reason)) => {
            tracing::info!(operation = what, user = who, %reason, "refused");
            Verdict::Reject
        }
        Err(e) => {
            // Anything else (directory down, LDAP error, bad stored data)
            // fails closed as a temporary failure.
            tracing::warn!(operation = what, user = who, error = %e, "directory failure");
            Verdict::Unavailable
        }
    }
}

impl CredentialVerifier for Directory {
    fn verify_password<'a>(
        &'a self,
        request: &'a VerifyPassword,
    ) -> BoxFuture<'a, Verdict<Account>> {
        Box::pin(async move {
            let r = Directory::verify_password(self, request.authcid(), request.password()).await;
            verdict(r.map(|u| u.account()), "verify_password", request.authcid())
        })
    }

    fn fetch_password<'a>(
        &'a self,
        request: &'a FetchPassword,
    ) -> BoxFuture<'a, Verdict<WithAccount<Password>>> {
        Box::pin(async move {
            let r = self.fetch_cleartext(request.authcid()).await;
            verdict(
                r.map(|(u, p)| (p, u.account())),
                "fetch_password",
                request.authcid(),
            )
        })
    }

    fn fetch_scram_secret<'a>(
        &'a self,
        request: &'a FetchScramSecret,
    ) -> BoxFuture<'a, Verdict<WithAccount<ScramSecret>>> {
        Box::pin(async move {
            let r = self
                .fetch_scram(request.authcid(), request.algorithm())
                .await;
            verdict(
                r.map(|(u, s)| (s, u.account())),
                "fetch_scram_secret",
                request.authcid(),
            )
        })
    }
}

impl IdentityMapper for Directory {
    fn map_identity<'a>(&'a self, request: &'a MapIdentity) -> BoxFuture<'a, Verdict<Account>> {
        Box::pin(async move {
            match request.identity() {
                ExternalIdentity::Certificate(verified) => {
                    let r = self.map_certificate(verified).await;
                    verdict(r.map(|u| u.account()), "map_identity", "(certificate)")
                }
                // A name from a lower layer must still exist in the
                // directory, and its account (and domain) be active, as on
                // every other path.
                ExternalIdentity::Name(name) => {
                    let r = match self.lookup(name).await {
                        Ok(entry) => Directory::status_check(&entry)
                            .map(|()| self.user_of(&entry, name).account())
                            .map_err(Into::into),
                        Err(e) => Err(e),
                    };
                    verdict(r, "map_identity", name)
                }
                _ => Verdict::Reject,
            }
        })
    }
}

impl ProxyAuthorizer for Directory {
    fn authorize<'a>(&'a self, request: &'a Authorize) -> BoxFuture<'a, Verdict<Account>> {
        Box::pin(async move {
            // The target must exist and be active (its account is the one
            // the session acts as), and the authenticated user must be an
            // administrator (or the target itself).
            let target = match self.lookup(request.authzid()).await {
                Ok(entry) => match Directory::status_check(&entry) {
                    Ok(()) => self.user_of(&entry, request.authzid()).account(),
                    Err(r) => {
                        return verdict(Err(r.into()), "authorize (target)", request.authzid());
                    }
                },
                Err(e) => return verdict(Err(e), "authorize (target)", request.authzid()),
            };
            if request.authcid() == request.authzid() {
                return Verdict::Accept(target);
            }
            match self.may_proxy(request.authcid()).await {
                Ok(true) => Verdict::Accept(target),
                Ok(false) => {
                    tracing::info!(
                        user = request.authcid(),
                        target = request.authzid(),
                        "proxy authorization refused"
                    );
                    Verdict::Reject
                }
                Err(e) => verdict(Err(e), "authorize", request.authcid()),
            }
        })
    }
}
