//! POP3 APOP (RFC 1939 section 7).
//!
//! The greeting carries a timestamp `<process-ID.clock@hostname>`
//! ([`crate::ServerSession::apop_timestamp`]); the client sends
//! `APOP name digest` with `digest = hex(MD5(timestamp || password))`. The
//! session's input is the command's arguments, `name SP digest`.

use crate::Credentials;
use crate::backend::{Answer, FetchPassword, Request};
use crate::mech::ClientMech;
use crate::mech::{Inner, ServerMech, reject_or_unavailable};
use crate::mech::{msg_id_challenge, split_user_digest};
use crate::util::{ct_eq, hex, md5};
use crate::{Authenticated, Error, Mechanism, ServerContext};

const M: Mechanism = Mechanism::Apop;

#[derive(Debug)]
pub(crate) struct Server {
    timestamp: String,
    pending: Option<(String, [u8; 32])>,
}

impl Server {
    pub(crate) fn new(ctx: &ServerContext) -> Result<Self, Error> {
        Ok(Self::with_timestamp(msg_id_challenge(ctx)?))
    }

    /// With the timestamp the connection sent in its greeting.
    pub(crate) fn with_timestamp(timestamp: String) -> Self {
        Self {
            timestamp,
            pending: None,
        }
    }

    fn command(&mut self, ctx: &ServerContext, input: &[u8]) -> Result<Inner, Error> {
        if self.pending.is_some() {
            return Err(Error::ApiMisuse("APOP already received"));
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
}

impl ServerMech for Server {
    fn start(&mut self, ctx: &ServerContext, initial: Option<&[u8]>) -> Result<Inner, Error> {
        match initial {
            Some(i) => self.command(ctx, i),
            None => Err(Error::malformed(M, "APOP needs name and digest")),
        }
    }

    fn step(&mut self, ctx: &ServerContext, input: &[u8]) -> Result<Inner, Error> {
        self.command(ctx, input)
    }

    fn answer(&mut self, _ctx: &ServerContext, answer: Answer) -> Result<Inner, Error> {
        if let Some(e) = reject_or_unavailable(&answer) {
            return Err(e);
        }
        let (Answer::Password(password, account), Some((user, digest))) =
            (answer, self.pending.take())
        else {
            return Err(Error::ApiMisuse(
                "APOP needs Password, Reject or Unavailable",
            ));
        };
        let expected = hex(&md5(&[self.timestamp.as_bytes(), password.as_bytes()]));
        if ct_eq(expected.as_bytes(), &digest) {
            Ok(Inner::Success {
                auth: Authenticated::new(M, user, None).with_account(account),
                final_data: None,
            })
        } else {
            Err(Error::BadCredentials)
        }
    }

    fn apop_timestamp(&self) -> Option<String> {
        Some(self.timestamp.clone())
    }
}

/// The APOP client: its one "challenge" is the greeting's timestamp.
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

    fn step(&mut self, timestamp: &[u8]) -> Result<Vec<u8>, Error> {
        if self.done {
            return Err(Error::protocol(M, "second challenge"));
        }
        if !(timestamp.starts_with(b"<") && timestamp.ends_with(b">")) {
            return Err(Error::malformed(M, "timestamp is not <...>"));
        }
        self.done = true;
        let digest = hex(&md5(&[timestamp, self.creds.password.as_bytes()]));
        Ok(format!("{} {digest}", self.creds.authcid).into_bytes())
    }

    fn is_complete(&self) -> bool {
        self.done
    }
}
