//! PLAIN (RFC 4616).
//!
//! ```text
//! message   = [authzid] UTF8NUL authcid UTF8NUL passwd
//! authcid   = 1*SAFE ; MUST accept up to 255 octets
//! authzid   = 1*SAFE ; MUST accept up to 255 octets
//! passwd    = 1*SAFE ; MUST accept up to 255 octets
//! ```
//!
//! The user name and password are prepared with SASLprep (RFC 4013).

use crate::Credentials;
use crate::backend::{Answer, Request, VerifyPassword};
use crate::mech::ClientMech;
use crate::mech::{Inner, ServerMech, reject_or_unavailable};
use crate::util::saslprep;
use crate::{Authenticated, Error, Mechanism, Password, ServerContext};

const M: Mechanism = Mechanism::Plain;

/// Largest accepted field (RFC 4616 requires at least 255 octets).
pub(crate) const MAX_FIELD: usize = 1024;

#[derive(Debug, Default)]
pub(crate) struct Server {
    pending: Option<Pending>,
}

/// A password check in flight: who asked, and the password to hand on in
/// [`Authenticated`] when it succeeds.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) authcid: String,
    pub(crate) authzid: Option<String>,
    pub(crate) password: Password,
}

/// Parses a PLAIN message into (authzid, authcid, password), all prepared.
pub(crate) fn parse(input: &[u8]) -> Result<(Option<String>, String, Password), Error> {
    let mut fields = input.split(|b| *b == 0);
    let (Some(authzid), Some(authcid), Some(passwd), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(Error::malformed(M, "expected exactly two NUL separators"));
    };
    if authzid.len() > MAX_FIELD || authcid.len() > MAX_FIELD || passwd.len() > MAX_FIELD {
        return Err(Error::TooLong);
    }
    let utf8 = |b: &[u8]| {
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| Error::malformed(M, "not UTF-8"))
    };
    let authzid = utf8(authzid)?;
    let authcid = saslprep(&utf8(authcid)?)?;
    let password = Password::new(utf8(passwd)?);
    let prepared = Password::new(saslprep(password.expose())?);
    if authcid.is_empty() {
        return Err(Error::malformed(M, "empty authentication identity"));
    }
    if prepared.is_empty() {
        return Err(Error::malformed(M, "empty password"));
    }
    let authzid = (!authzid.is_empty()).then_some(authzid);
    Ok((authzid, authcid, prepared))
}

impl Server {
    fn message(&mut self, ctx: &ServerContext, input: &[u8]) -> Result<Inner, Error> {
        let (authzid, authcid, password) = parse(input)?;
        self.pending = Some(Pending {
            authcid: authcid.clone(),
            authzid: authzid.clone(),
            password: password.clone(),
        });
        Ok(Inner::Verify(Request::VerifyPassword(VerifyPassword {
            service: ctx.service,
            mechanism: M,
            authcid,
            authzid,
            password,
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
        password_verdict(M, answer, self.pending.take())
    }
}

/// Turns the answer to a VerifyPassword request into the mechanism's result.
pub(crate) fn password_verdict(
    m: Mechanism,
    answer: Answer,
    pending: Option<Pending>,
) -> Result<Inner, Error> {
    if let Some(e) = reject_or_unavailable(&answer) {
        return Err(e);
    }
    match (answer, pending) {
        (Answer::Accept(account), Some(p)) => Ok(Inner::Success {
            auth: Authenticated::new(m, p.authcid, p.authzid)
                .with_account(account)
                .with_password(p.password),
            final_data: None,
        }),
        _ => Err(Error::ApiMisuse(
            "a password check needs Accept, Reject or Unavailable",
        )),
    }
}

pub(crate) struct Client {
    /// Holds the password: never printed, zeroized on drop.
    message: Option<Vec<u8>>,
    done: bool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("message", &"<redacted>")
            .field("done", &self.done)
            .finish()
    }
}

impl Client {
    pub(crate) fn new(creds: Credentials) -> Result<Self, Error> {
        let authcid = saslprep(&creds.authcid)?;
        let password = zeroize::Zeroizing::new(saslprep(creds.password.expose())?);
        let mut m = Vec::new();
        if let Some(z) = &creds.authzid {
            m.extend_from_slice(z.as_bytes());
        }
        m.push(0);
        m.extend_from_slice(authcid.as_bytes());
        m.push(0);
        m.extend_from_slice(password.as_bytes());
        Ok(Self {
            message: Some(m),
            done: false,
        })
    }

    fn take(&mut self) -> Result<Vec<u8>, Error> {
        self.done = true;
        self.message.take().ok_or(Error::protocol(
            M,
            "server sent a challenge after the message",
        ))
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Some(m) = &mut self.message {
            zeroize::Zeroize::zeroize(m);
        }
    }
}

impl ClientMech for Client {
    fn initial(&mut self) -> Result<Option<Vec<u8>>, Error> {
        self.take().map(Some)
    }

    fn step(&mut self, challenge: &[u8]) -> Result<Vec<u8>, Error> {
        if !challenge.is_empty() {
            return Err(Error::protocol(M, "unexpected non-empty challenge"));
        }
        self.take()
    }

    fn is_complete(&self) -> bool {
        self.done
    }
}
