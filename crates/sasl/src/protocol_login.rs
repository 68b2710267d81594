//! The protocols' own logins, on the same path as SASL: IMAP `LOGIN`,
//! POP3 `USER`/`PASS` and `APOP`, the HTTP login form, and nginx's
//! `auth_http` requests (`Auth-Method: plain`, `login`, `apop`,
//! `cram-md5` with `Auth-Salt`).
//!
//! Each runs the policy checks of the equivalent mechanism and then an
//! ordinary [`ServerSession`]: the same SASLprep, the same
//! [`crate::Request`]s to the same backend, the same [`crate::Authenticated`]
//! at the end. No daemon decides a password by itself.

use zeroize::Zeroizing;

use crate::mech::{apop, cram_md5, msg_id_challenge};
use crate::{Error, Mechanism, Password, Policy, ServerContext, ServerSession, Step};

/// A challenge owned by the connection rather than by one exchange: the
/// APOP timestamp a POP3 server puts in its greeting (every `APOP` on the
/// connection, retries after a failure included, is checked against it),
/// or the salt nginx passes in `Auth-Salt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Salt(String);

impl Salt {
    /// A fresh APOP timestamp (`<random.random@host>`, RFC 1939 §7) for a
    /// new connection's greeting.
    ///
    /// # Errors
    /// [`Error::Random`] when no random bytes could be drawn.
    pub fn for_greeting(ctx: &ServerContext) -> Result<Self, Error> {
        msg_id_challenge(ctx).map(Self)
    }

    /// A salt the caller received (nginx's `Auth-Salt`, its greeting's
    /// timestamp or challenge), trailing CR LF removed.
    pub fn given(salt: &str) -> Self {
        Self(salt.trim_end_matches(['\r', '\n']).to_owned())
    }

    /// The text, for the greeting.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl ServerSession {
    /// A cleartext password login (IMAP `LOGIN`, POP3 `USER`/`PASS`, the
    /// HTTP form, nginx `Auth-Method: plain` or `login`), checked as AUTH
    /// PLAIN is: refused without TLS when the policy requires it
    /// ([`Error::EncryptionRequired`]), refused when the policy disables
    /// cleartext passwords, then verified through the same
    /// [`crate::Request::VerifyPassword`].
    ///
    /// Returns the session and its first step (a `Verify` to answer with
    /// [`ServerSession::answer`]).
    ///
    /// # Errors
    /// The policy errors above; [`Error::Malformed`] for an empty name or
    /// password or one with a NUL; [`Error::Saslprep`] for names SASLprep
    /// refuses.
    pub fn password_login(
        policy: &Policy,
        ctx: &ServerContext,
        user: &str,
        password: &Password,
    ) -> Result<(Self, Step), Error> {
        policy.check(Mechanism::Plain, ctx)?;
        let ctx = policy.context(ctx);
        // The PLAIN message `NUL user NUL password`, wiped after use.
        let mut message = Zeroizing::new(Vec::with_capacity(
            user.len() + password.as_bytes().len() + 2,
        ));
        message.push(0);
        message.extend_from_slice(user.as_bytes());
        message.push(0);
        message.extend_from_slice(password.as_bytes());
        let mut session = ServerSession::new(Mechanism::Plain, &ctx)?;
        let step = session.start(Some(&message))?;
        Ok((session, step))
    }

    /// An `APOP name digest` command (POP3) or nginx's `Auth-Method: apop`
    /// / `cram-md5`: the digest is checked against `salt`, which the
    /// connection owns, so a client may try again after a failure.
    /// `mechanism` is [`Mechanism::Apop`] or [`Mechanism::CramMd5`], and
    /// must be enabled by the policy (they need cleartext passwords in the
    /// directory).
    ///
    /// # Errors
    /// [`Error::MechanismUnavailable`] for another mechanism or one the
    /// policy disables; [`Error::Malformed`] when `response` is not
    /// `name SP 32-hex-digits`.
    pub fn salted_login(
        policy: &Policy,
        ctx: &ServerContext,
        mechanism: Mechanism,
        salt: &Salt,
        response: &[u8],
    ) -> Result<(Self, Step), Error> {
        policy.check(mechanism, ctx)?;
        let ctx = policy.context(ctx);
        match mechanism {
            Mechanism::Apop => {
                let mech = Box::new(apop::Server::with_timestamp(salt.0.clone()));
                let mut session = ServerSession::with_mech(mechanism, &ctx, mech);
                let step = session.start(Some(response))?;
                Ok((session, step))
            }
            Mechanism::CramMd5 => {
                let mech = Box::new(cram_md5::Server::with_challenge(salt.0.clone()));
                let mut session = ServerSession::with_mech(mechanism, &ctx, mech);
                // The challenge was sent by whoever owns the salt.
                let Step::Challenge(_) = session.start(None)? else {
                    return Err(Error::ApiMisuse("CRAM-MD5 did not challenge"));
                };
                let step = session.step(response)?;
                Ok((session, step))
            }
            _ => Err(Error::MechanismUnavailable),
        }
    }
}
