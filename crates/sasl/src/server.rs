//! The server side of an exchange.

use crate::backend::{Answer, Authorize, Request};
use crate::mech::{self, Inner, ServerMech};
use crate::{Authenticated, Error, Mechanism, ServerContext};

/// What the server must do next.
#[derive(Debug)]
#[must_use]
#[non_exhaustive]
pub enum Step {
    /// Send this challenge to the client (the framing layer base64-encodes
    /// it) and feed its response to [`ServerSession::step`].
    Challenge(Vec<u8>),
    /// Look something up and pass the result to [`ServerSession::answer`].
    Verify(Request),
    /// The exchange succeeded.
    Done(Authenticated),
}

/// The largest client message any mechanism accepts (decoded bytes).
pub const MAX_CLIENT_MESSAGE: usize = 8192;

#[derive(Debug)]
enum State {
    New,
    /// The mechanism waits for a client response.
    Input,
    /// The mechanism waits for an answer.
    Answer,
    /// Waiting for the proxy-authorization answer.
    Authorize {
        auth: Authenticated,
        final_data: Option<Vec<u8>>,
    },
    /// Final data sent; waiting for the client's empty response.
    FinalAck(Authenticated),
    Finished,
}

/// One server-side authentication exchange.
///
/// Create a fresh session for every AUTH command. The session never does
/// I/O: feed it the client's decoded responses with [`ServerSession::step`]
/// and the caller's lookups with [`ServerSession::answer`]. Any error ends
/// the exchange; later calls return [`Error::ApiMisuse`].
///
/// ```text
///  client bytes ──► step() ──► Step::Challenge(bytes) ──► to the client
///                         └─► Step::Verify(request) ──► caller looks up
///  answer ────────► answer() ─┘                          (LDAP, async)
///                         └─► Step::Done(Authenticated)
/// ```
#[derive(Debug)]
pub struct ServerSession {
    mechanism: Mechanism,
    context: ServerContext,
    mech: Box<dyn ServerMech>,
    state: State,
}

impl ServerSession {
    /// Prepares an exchange of `mechanism` on a connection described by
    /// `context`. Policy (what is advertised or allowed) is checked by the
    /// caller, e.g. with [`crate::Policy::check`].
    ///
    /// # Errors
    ///
    /// [`Error::MechanismUnavailable`] when the connection cannot run the
    /// mechanism: EXTERNAL without an external identity, -PLUS without
    /// usable channel-binding data. [`Error::Random`] if no nonce could be
    /// drawn.
    pub fn new(mechanism: Mechanism, context: &ServerContext) -> Result<Self, Error> {
        let mech = mech::server(mechanism, context)?;
        Ok(Self {
            mechanism,
            context: context.clone(),
            mech,
            state: State::New,
        })
    }

    /// An exchange run by a mechanism the caller built (a salted login).
    pub(crate) fn with_mech(
        mechanism: Mechanism,
        context: &ServerContext,
        mech: Box<dyn ServerMech>,
    ) -> Self {
        Self {
            mechanism,
            context: context.clone(),
            mech,
            state: State::New,
        }
    }

    /// The mechanism of this exchange.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// For [`Mechanism::Apop`]: the banner timestamp (`<...@host>`) to put
    /// in the POP3 greeting. `None` for other mechanisms.
    pub fn apop_timestamp(&self) -> Option<String> {
        self.mech.apop_timestamp()
    }

    /// Starts the exchange with the client's initial response, if any
    /// (`Some(&[])` is an empty initial response, `=` on the wire).
    ///
    /// # Errors
    ///
    /// As for [`ServerSession::step`]. An initial response to a
    /// server-first mechanism (CRAM-MD5, DIGEST-MD5) is a protocol error.
    pub fn start(&mut self, initial_response: Option<&[u8]>) -> Result<Step, Error> {
        if !matches!(self.state, State::New) {
            return Err(self.misuse("start() called twice"));
        }
        if initial_response.is_some_and(|r| r.len() > MAX_CLIENT_MESSAGE) {
            self.state = State::Finished;
            return Err(Error::TooLong);
        }
        let r = self.mech.start(&self.context, initial_response);
        self.advance(r)
    }

    /// Feeds the client's (decoded) response to the last challenge.
    ///
    /// # Errors
    ///
    /// A peer fault ([`Error::Malformed`], [`Error::Protocol`],
    /// [`Error::ChannelBinding`], [`Error::TooLong`], [`Error::Saslprep`]) or
    /// an outcome ([`Error::BadCredentials`], [`Error::AuthorizationFailed`],
    /// [`Error::Unavailable`]); [`Error::ApiMisuse`] when no response is
    /// expected.
    pub fn step(&mut self, response: &[u8]) -> Result<Step, Error> {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Input => {
                if response.len() > MAX_CLIENT_MESSAGE {
                    return Err(Error::TooLong);
                }
                let r = self.mech.step(&self.context, response);
                self.advance(r)
            }
            State::FinalAck(auth) => {
                if response.is_empty() {
                    trace_success(&auth);
                    Ok(Step::Done(auth))
                } else {
                    Err(Error::protocol(
                        self.mechanism,
                        "non-empty response after the final challenge",
                    ))
                }
            }
            State::New => Err(self.misuse("step() before start()")),
            _ => Err(self.misuse("no client response expected")),
        }
    }

    /// Passes the caller's answer to the last [`Step::Verify`] request.
    ///
    /// # Errors
    ///
    /// [`Error::BadCredentials`] or [`Error::AuthorizationFailed`] for
    /// [`Answer::Reject`], [`Error::Unavailable`] for
    /// [`Answer::Unavailable`], the mechanism's own errors, and
    /// [`Error::ApiMisuse`] for an answer of the wrong kind or when no
    /// request is pending.
    pub fn answer(&mut self, answer: Answer) -> Result<Step, Error> {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Answer => {
                let r = self.mech.answer(&self.context, answer);
                self.advance(r)
            }
            State::Authorize { auth, final_data } => match answer {
                // The session acts as the authzid: its account (store,
                // filters) is the one that applies.
                Answer::Accept(account) => self.finish(auth.with_account(account), final_data),
                Answer::Reject => Err(Error::AuthorizationFailed),
                Answer::Unavailable => Err(Error::Unavailable),
                _ => {
                    Err(self.misuse("an authorization request needs Accept, Reject or Unavailable"))
                }
            },
            _ => Err(self.misuse("no request pending")),
        }
    }

    /// Whether the exchange is over (success, failure or abort).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished)
    }

    /// Cancels the exchange (the client sent `*`).
    pub fn abort(&mut self) {
        self.state = State::Finished;
    }

    fn misuse(&mut self, what: &'static str) -> Error {
        self.state = State::Finished;
        Error::ApiMisuse(what)
    }

    fn advance(&mut self, r: Result<Inner, Error>) -> Result<Step, Error> {
        match r {
            Err(e) => {
                self.state = State::Finished;
                #[cfg(feature = "tracing")]
                tracing::debug!(mechanism = %self.mechanism, error = %e, "SASL exchange failed");
                Err(e)
            }
            Ok(Inner::Challenge(c)) => {
                self.state = State::Input;
                Ok(Step::Challenge(c))
            }
            Ok(Inner::Verify(r)) => {
                self.state = State::Answer;
                Ok(Step::Verify(r))
            }
            Ok(Inner::Success { auth, final_data }) => match auth.authzid.clone() {
                Some(authzid) => {
                    let request = Request::Authorize(Authorize {
                        service: self.context.service,
                        mechanism: self.mechanism,
                        authcid: auth.authcid.clone(),
                        authzid,
                    });
                    self.state = State::Authorize { auth, final_data };
                    Ok(Step::Verify(request))
                }
                None => self.finish(auth, final_data),
            },
        }
    }

    fn finish(&mut self, auth: Authenticated, final_data: Option<Vec<u8>>) -> Result<Step, Error> {
        match final_data {
            Some(data) => {
                self.state = State::FinalAck(auth);
                Ok(Step::Challenge(data))
            }
            None => {
                self.state = State::Finished;
                trace_success(&auth);
                Ok(Step::Done(auth))
            }
        }
    }
}

#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
fn trace_success(auth: &Authenticated) {
    #[cfg(feature = "tracing")]
    tracing::debug!(
        mechanism = %auth.mechanism,
        authcid = auth.authcid.as_str(),
        authzid = auth.authzid.as_deref(),
        trace = auth.trace.as_deref(),
        "SASL exchange succeeded"
    );
}
