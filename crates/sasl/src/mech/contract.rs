//! The contract between a mechanism and the session drivers
//! ([`crate::ServerSession`], [`crate::ClientSession`]): the mechanisms
//! implement these traits, the drivers only call them, so neither side
//! imports the other.

use crate::backend::{Answer, Request};
use crate::{Authenticated, Error, ServerContext};

/// What a mechanism hands back to the session driver.
#[derive(Debug)]
pub(crate) enum Inner {
    Challenge(Vec<u8>),
    Verify(Request),
    /// The mechanism verified the credentials. `final_data` is additional
    /// data for the client (SCRAM `v=`, DIGEST-MD5 `rspauth=`), sent as a
    /// last challenge after the authorization check.
    Success {
        auth: Authenticated,
        final_data: Option<Vec<u8>>,
    },
}

/// The server half of one mechanism, driven by [`ServerSession`].
pub(crate) trait ServerMech: Send + Sync + std::fmt::Debug {
    /// The first call, with the initial response if the client sent one.
    fn start(&mut self, ctx: &ServerContext, initial: Option<&[u8]>) -> Result<Inner, Error>;
    /// A client response to the last challenge.
    fn step(&mut self, ctx: &ServerContext, input: &[u8]) -> Result<Inner, Error>;
    /// The caller's answer to the last request.
    fn answer(&mut self, ctx: &ServerContext, answer: Answer) -> Result<Inner, Error>;
    /// APOP's banner timestamp.
    fn apop_timestamp(&self) -> Option<String> {
        None
    }
}

/// Maps the generic answers that end an exchange.
pub(crate) fn reject_or_unavailable(answer: &Answer) -> Option<Error> {
    match answer {
        Answer::Reject => Some(Error::BadCredentials),
        Answer::Unavailable => Some(Error::Unavailable),
        _ => None,
    }
}

/// The client half of one mechanism.
pub(crate) trait ClientMech: Send + Sync + std::fmt::Debug {
    /// The initial response, `None` when the mechanism waits for the server.
    fn initial(&mut self) -> Result<Option<Vec<u8>>, Error>;
    /// The response to a server challenge.
    fn step(&mut self, challenge: &[u8]) -> Result<Vec<u8>, Error>;
    /// Whether the server has proved itself / nothing more is expected.
    fn is_complete(&self) -> bool;
}
