//! CRAM-MD5 (RFC 2195).
//!
//! The server sends a unique challenge `<random.random@host>`; the client
//! answers `user SP hex(HMAC-MD5(password, challenge))`. The server needs
//! the cleartext password ([`crate::Request::FetchPassword`]).

use crate::Credentials;
use crate::backend::{Answer, FetchPassword, Request};
use crate::mech::ClientMech;
use crate::mech::{Inner, ServerMech, reject_or_unavailable};
use crate::mech::{msg_id_challenge, split_user_digest};
use crate::util::{ct_eq, hex, hmac_md5};
use crate::{Authenticated, Error, Mechanism, ServerContext};

const M: Mechanism = Mechanism::CramMd5;

#[derive(Debug)]
pub(crate) struct Server {
    challenge: String,
    pending: Option<(String, [u8; 32])>,
}

impl Server {
    pub(crate) fn new(ctx: &ServerContext) -> Result<Self, Error> {
        Ok(Self::with_challenge(msg_id_challenge(ctx)?))
    }

    /// With a challenge the caller chose (nginx's `Auth-Salt`).
    pub(crate) fn with_challenge(challenge: String) -> Self {
        Self {
            challenge,
            pending: None,
        }
    }
}

impl ServerMech for Server {
    fn start(&mut self, _ctx: &ServerContext, initial: Option<&[u8]>) -> Result<Inner, Error> {
        if initial.is_some() {
            return Err(Error::malformed(M, "initial response not allowed"));
        }
        Ok(Inner::Challenge(self.challenge.as_bytes().to_vec()))
    }

    fn step(&mut self, ctx: &ServerContext, input: &[u8]) -> Result<Inner, Error> {
        if self.pending.is_some() {
            return Err(Error::ApiMisuse("response already received"));
        }
        let (user, digest) = split_user_digest(M, input)?;
        self.pending = Some((user.clone(), digest));
        Ok(Inner::Verify(Request::FetchPassword(FetchPassword {
            service: ctx.service,
            mechanism: M,
            authcid: user,
            realm: None,
        })))
    }

    fn answer(&mut self, _ctx: &ServerContext, answer: Answer) -> Result<Inner, Error> {
        if let Some(e) = reject_or_unavailable(&answer) {
            return Err(e);
        }
        let (Answer::Password(password, account), Some((user, digest))) =
            (answer, self.pending.take())
        else {
            return Err(Error::ApiMisuse(
                "CRAM-MD5 needs Password, Reject or Unavailable",
            ));
        };
        let expected = zeroize::Zeroizing::new(hex(&hmac_md5(
            password.as_bytes(),
            self.challenge.as_bytes(),
        )));
        if ct_eq(expected.as_bytes(), &digest) {
            Ok(Inner::Success {
                auth: Authenticated::new(M, user, None).with_account(account),
                final_data: None,
            })
        } else {
            Err(Error::BadCredentials)
        }
    }
}

#[derive(Debug)]
pub(crate) struct Client {
    creds: Credentials,
    done: bool,
}

impl Client {
    pub(crate) fn new(creds: Credentials) -> Self {
        Self { creds, done: false }
    }
}

impl ClientMech for Client {
    fn initial(&mut self) -> Result<Option<Vec<u8>>, Error> {
        Ok(None)
    }

    fn step(&mut self, challenge: &[u8]) -> Result<Vec<u8>, Error> {
        if self.done {
            return Err(Error::protocol(M, "second challenge"));
        }
        if challenge.is_empty() {
            return Err(Error::malformed(M, "empty challenge"));
        }
        self.done = true;
        let digest = hex(&hmac_md5(self.creds.password.as_bytes(), challenge));
        Ok(format!("{} {digest}", self.creds.authcid).into_bytes())
    }

    fn is_complete(&self) -> bool {
        self.done
    }
}
