//! LOGIN (draft-murchison-sasl-login): user name and password in two
//! challenges (`Username:`, `Password:`). Prepared with SASLprep like PLAIN.

use crate::Credentials;
use crate::backend::{Answer, Request, VerifyPassword};
use crate::mech::ClientMech;
use crate::mech::plain::{MAX_FIELD, Pending, password_verdict};
use crate::mech::{Inner, ServerMech};
use crate::util::saslprep;
use crate::{Error, Mechanism, Password, ServerContext};

const M: Mechanism = Mechanism::Login;

#[derive(Debug, Default)]
pub(crate) struct Server {
    user: Option<String>,
    pending: Option<Pending>,
}

fn field(input: &[u8]) -> Result<String, Error> {
    if input.len() > MAX_FIELD {
        return Err(Error::TooLong);
    }
    if input.contains(&0) {
        return Err(Error::malformed(M, "NUL in field"));
    }
    std::str::from_utf8(input)
        .map(str::to_owned)
        .map_err(|_| Error::malformed(M, "not UTF-8"))
}

impl Server {
    fn user(&mut self, input: &[u8]) -> Result<Inner, Error> {
        let user = saslprep(&field(input)?)?;
        if user.is_empty() {
            return Err(Error::malformed(M, "empty user name"));
        }
        self.user = Some(user);
        Ok(Inner::Challenge(b"Password:".to_vec()))
    }
}

impl ServerMech for Server {
    fn start(&mut self, _ctx: &ServerContext, initial: Option<&[u8]>) -> Result<Inner, Error> {
        match initial {
            Some(i) if !i.is_empty() => self.user(i),
            _ => Ok(Inner::Challenge(b"Username:".to_vec())),
        }
    }

    fn step(&mut self, ctx: &ServerContext, input: &[u8]) -> Result<Inner, Error> {
        let Some(authcid) = self.user.take() else {
            return self.user(input);
        };
        let password = Password::new(field(input)?);
        let password = Password::new(saslprep(password.expose())?);
        if password.is_empty() {
            return Err(Error::malformed(M, "empty password"));
        }
        self.pending = Some(Pending {
            authcid: authcid.clone(),
            authzid: None,
            password: password.clone(),
        });
        Ok(Inner::Verify(Request::VerifyPassword(VerifyPassword {
            service: ctx.service,
            mechanism: M,
            authcid,
            authzid: None,
            password,
        })))
    }

    fn answer(&mut self, _ctx: &ServerContext, answer: Answer) -> Result<Inner, Error> {
        password_verdict(M, answer, self.pending.take())
    }
}

#[derive(Debug)]
pub(crate) struct Client {
    creds: Credentials,
    sent: u8,
}

impl Client {
    pub(crate) fn new(creds: Credentials) -> Self {
        Self { creds, sent: 0 }
    }
}

impl ClientMech for Client {
    fn initial(&mut self) -> Result<Option<Vec<u8>>, Error> {
        Ok(None)
    }

    fn step(&mut self, _challenge: &[u8]) -> Result<Vec<u8>, Error> {
        // The challenges' text varies ("Username:", "User Name"): answer by
        // position.
        self.sent += 1;
        match self.sent {
            1 => Ok(self.creds.authcid.as_bytes().to_vec()),
            2 => Ok(self.creds.password.as_bytes().to_vec()),
            _ => Err(Error::protocol(M, "more than two challenges")),
        }
    }

    fn is_complete(&self) -> bool {
        self.sent >= 2
    }
}
