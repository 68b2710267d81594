//! EXTERNAL (RFC 4422 appendix A).
//!
//! ```text
//! external-initial-resp = authz-id-string   ; may be empty
//! ```
//!
//! The authentication identity comes from the lower layer (the TLS client
//! certificate), mapped by the caller ([`crate::Request::MapIdentity`]).
//! An empty authzid means "act as whoever the certificate maps to"; a
//! different authzid needs the proxy check.

use crate::Credentials;
use crate::backend::{Answer, MapIdentity, Request};
use crate::mech::ClientMech;
use crate::mech::{Inner, ServerMech, reject_or_unavailable};
use crate::{Authenticated, Error, ExternalIdentity, Mechanism, ServerContext};

const M: Mechanism = Mechanism::External;

#[derive(Debug)]
pub(crate) struct Server {
    identity: ExternalIdentity,
    authzid: Option<String>,
}

impl Server {
    pub(crate) fn new(ctx: &ServerContext) -> Result<Self, Error> {
        let identity = ctx.external.clone().ok_or(Error::MechanismUnavailable)?;
        Ok(Self {
            identity,
            authzid: None,
        })
    }

    fn message(&mut self, ctx: &ServerContext, input: &[u8]) -> Result<Inner, Error> {
        if input.len() > super::plain::MAX_FIELD {
            return Err(Error::TooLong);
        }
        let text = std::str::from_utf8(input).map_err(|_| Error::malformed(M, "not UTF-8"))?;
        if text.contains('\0') {
            return Err(Error::malformed(M, "NUL in authorization identity"));
        }
        self.authzid = (!text.is_empty()).then(|| text.to_owned());
        Ok(Inner::Verify(Request::MapIdentity(MapIdentity {
            service: ctx.service,
            identity: self.identity.clone(),
            authzid: self.authzid.clone(),
        })))
    }
}

impl ServerMech for Server {
    fn start(&mut self, ctx: &ServerContext, initial: Option<&[u8]>) -> Result<Inner, Error> {
        match initial {
            Some(i) => self.message(ctx, i),
            None => Ok(Inner::Challenge(Vec::new())),
        }
    }

    fn step(&mut self, ctx: &ServerContext, input: &[u8]) -> Result<Inner, Error> {
        self.message(ctx, input)
    }

    fn answer(&mut self, _ctx: &ServerContext, answer: Answer) -> Result<Inner, Error> {
        if let Some(e) = reject_or_unavailable(&answer) {
            return Err(e);
        }
        match answer {
            Answer::Identity(account) if !account.name.is_empty() => Ok(Inner::Success {
                auth: Authenticated::new(M, account.name.clone(), self.authzid.take())
                    .with_account(account),
                final_data: None,
            }),
            Answer::Identity(_) => Err(Error::BadCredentials),
            _ => Err(Error::ApiMisuse(
                "a mapping request needs Identity, Reject or Unavailable",
            )),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Client {
    message: Option<Vec<u8>>,
}

impl Client {
    pub(crate) fn new(creds: Credentials) -> Self {
        Self {
            message: Some(creds.authzid.unwrap_or_default().into_bytes()),
        }
    }
}

impl ClientMech for Client {
    fn initial(&mut self) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.message.take())
    }

    fn step(&mut self, _challenge: &[u8]) -> Result<Vec<u8>, Error> {
        self.message
            .take()
            .ok_or(Error::protocol(M, "unexpected challenge"))
    }

    fn is_complete(&self) -> bool {
        self.message.is_none()
    }
}
