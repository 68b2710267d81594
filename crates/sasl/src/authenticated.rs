//! The proof that an exchange succeeded.

use crate::{Account, ChannelBindingType, Mechanism, Password};

/// A successfully authenticated (and, for proxying, authorized) identity.
///
/// Only a completed exchange creates one: there is no public constructor, so
/// a session that requires an `Authenticated` to change state cannot skip a
/// step of the mechanism.
///
/// After a cleartext login (PLAIN, LOGIN, and the protocols' own password
/// logins, which run PLAIN) it also carries the password that was checked,
/// for a proxy that logs in to the user's store with it
/// ([`Authenticated::password`]). The password is zeroized on drop and
/// `Debug` prints it redacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub(crate) authcid: String,
    pub(crate) authzid: Option<String>,
    pub(crate) mechanism: Mechanism,
    pub(crate) trace: Option<String>,
    pub(crate) channel_binding: Option<ChannelBindingType>,
    pub(crate) account: Option<Account>,
    /// Boxed: most logins carry none, and the type travels in enums.
    pub(crate) password: Option<Box<Password>>,
}

impl Authenticated {
    pub(crate) fn new(mechanism: Mechanism, authcid: String, authzid: Option<String>) -> Self {
        // An authzid equal to the authcid is no proxying: keep it out.
        let authzid = authzid.filter(|z| !z.is_empty() && *z != authcid);
        Self {
            authcid,
            authzid,
            mechanism,
            trace: None,
            channel_binding: None,
            account: None,
            password: None,
        }
    }

    /// The same, carrying the cleartext password that was verified.
    pub(crate) fn with_password(mut self, password: Password) -> Self {
        self.password = Some(Box::new(password));
        self
    }

    /// The same, carrying the account the credential store returned.
    pub(crate) fn with_account(mut self, account: Account) -> Self {
        self.account = Some(account);
        self
    }

    /// The authentication identity: whose credentials were checked.
    pub fn authcid(&self) -> &str {
        &self.authcid
    }

    /// The authorization identity asked for and granted, when it differs
    /// from the authcid (a store administrator acting as a user).
    pub fn authzid(&self) -> Option<&str> {
        self.authzid.as_deref()
    }

    /// The identity the session acts as: the canonical name of the
    /// [`Authenticated::account`] (the directory's `uid@domain`, say, not
    /// what the client typed) when the credential store returned one, else
    /// the authzid if one was granted, else the authcid. This is what logs,
    /// XCLIENT `LOGIN` and IMAP `ID` should receive.
    ///
    /// Empty for an ANONYMOUS login, which has no user (no user login can
    /// have an empty identity, so an anonymous session can never act as a
    /// directory user, not even one named `anonymous`); see
    /// [`Authenticated::is_anonymous`] and
    /// [`Authenticated::anonymous_trace`].
    pub fn identity(&self) -> &str {
        match &self.account {
            Some(a) if !a.name.is_empty() => &a.name,
            _ => self.authzid.as_deref().unwrap_or(&self.authcid),
        }
    }

    /// The account of the user the session acts as (after proxy
    /// authorization, the authzid's), with its message store and access
    /// filters. `None` only for ANONYMOUS.
    pub fn account(&self) -> Option<&Account> {
        self.account.as_ref()
    }

    /// The mechanism used.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The ANONYMOUS trace string, kept for the log.
    pub fn anonymous_trace(&self) -> Option<&str> {
        self.trace.as_deref()
    }

    /// The channel binding verified by a -PLUS mechanism.
    pub fn channel_binding(&self) -> Option<ChannelBindingType> {
        self.channel_binding
    }

    /// The cleartext password the client logged in with, as it was verified
    /// (after SASLprep), for replaying it to the user's message store.
    ///
    /// `Some` only for PLAIN and LOGIN (and the protocol logins that run
    /// them: IMAP `LOGIN`, POP3 `USER`/`PASS`), and only when the session
    /// acts as the user whose password it is: a proxy authorization (an
    /// administrator's password with a user as authorization identity) has
    /// none, since the password is not the user's. Challenge-response
    /// mechanisms (CRAM-MD5, DIGEST-MD5, SCRAM, APOP) and EXTERNAL never
    /// see a password.
    ///
    /// Never log it: [`Password`]'s `Debug` is redacted, its memory is wiped
    /// on drop.
    pub fn password(&self) -> Option<&Password> {
        if self.authzid.is_some() {
            return None;
        }
        self.password.as_deref()
    }

    /// Whether this is an ANONYMOUS login.
    pub fn is_anonymous(&self) -> bool {
        self.mechanism == Mechanism::Anonymous
    }
}
