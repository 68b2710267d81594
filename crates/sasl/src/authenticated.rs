//! The proof that an exchange succeeded.

use crate::{ChannelBindingType, Mechanism};

/// A successfully authenticated (and, for proxying, authorized) identity.
///
/// Only a completed exchange creates one: there is no public constructor, so
/// a session that requires an `Authenticated` to change state cannot skip a
/// step of the mechanism.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub(crate) authcid: String,
    pub(crate) authzid: Option<String>,
    pub(crate) mechanism: Mechanism,
    pub(crate) trace: Option<String>,
    pub(crate) channel_binding: Option<ChannelBindingType>,
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
        }
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

    /// The identity the session acts as: the authzid if one was granted,
    /// else the authcid. Empty for an ANONYMOUS login, which has no user
    /// (no user login can have an empty identity, so an anonymous session
    /// can never act as a directory user, not even one named
    /// `anonymous`); see [`Authenticated::is_anonymous`] and
    /// [`Authenticated::anonymous_trace`].
    pub fn identity(&self) -> &str {
        self.authzid.as_deref().unwrap_or(&self.authcid)
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

    /// Whether this is an ANONYMOUS login.
    pub fn is_anonymous(&self) -> bool {
        self.mechanism == Mechanism::Anonymous
    }
}
