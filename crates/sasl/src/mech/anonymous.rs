//! ANONYMOUS (RFC 4505). The trace string is kept for the log.
//!
//! ```text
//! message = [ email / token ]   ; up to 255 characters
//! ```

use crate::Credentials;
use crate::backend::Answer;
use crate::mech::ClientMech;
use crate::mech::{Inner, ServerMech};
use crate::{Authenticated, Error, Mechanism, ServerContext};

const M: Mechanism = Mechanism::Anonymous;

/// The authcid of anonymous sessions: the empty string, which no user login
/// can produce (every mechanism refuses an empty user name), so an
/// anonymous session is never taken for a directory user named
/// `anonymous`.
pub(crate) const ANONYMOUS_USER: &str = "";

#[derive(Debug)]
pub(crate) struct Server;

fn trace(input: &[u8]) -> Result<Inner, Error> {
    let text = std::str::from_utf8(input).map_err(|_| Error::malformed(M, "not UTF-8"))?;
    if text.chars().count() > 255 {
        return Err(Error::malformed(M, "trace longer than 255 characters"));
    }
    if text.chars().any(char::is_control) {
        return Err(Error::malformed(M, "control character in trace"));
    }
    let mut auth = Authenticated::new(M, ANONYMOUS_USER.to_owned(), None);
    auth.trace = Some(text.to_owned());
    Ok(Inner::Success {
        auth,
        final_data: None,
    })
}

impl ServerMech for Server {
    fn start(&mut self, _ctx: &ServerContext, initial: Option<&[u8]>) -> Result<Inner, Error> {
        match initial {
            Some(i) => trace(i),
            None => Ok(Inner::Challenge(Vec::new())),
        }
    }

    fn step(&mut self, _ctx: &ServerContext, input: &[u8]) -> Result<Inner, Error> {
        trace(input)
    }

    fn answer(&mut self, _ctx: &ServerContext, _answer: Answer) -> Result<Inner, Error> {
        Err(Error::ApiMisuse("ANONYMOUS asks nothing"))
    }
}

#[derive(Debug)]
pub(crate) struct Client {
    trace: Option<String>,
}

impl Client {
    pub(crate) fn new(creds: Credentials) -> Self {
        Self {
            trace: Some(creds.anonymous_trace.unwrap_or_default()),
        }
    }
}

impl ClientMech for Client {
    fn initial(&mut self) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.trace.take().map(String::into_bytes))
    }

    fn step(&mut self, _challenge: &[u8]) -> Result<Vec<u8>, Error> {
        self.trace
            .take()
            .map(String::into_bytes)
            .ok_or(Error::protocol(M, "unexpected challenge"))
    }

    fn is_complete(&self) -> bool {
        self.trace.is_none()
    }
}
