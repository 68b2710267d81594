//! Testing aids that weaken security, behind the non-default `danger`
//! feature: a production build cannot call them by mistake.
//!
//! ```
//! use portcullis_sasl::danger::FixedNonce as _;
//! use portcullis_sasl::{ServerContext, Service};
//!
//! // The RFC 2195 CRAM-MD5 example challenge, for a test vector.
//! let ctx = ServerContext::new(Service::Imap, "postoffice.reston.mci.net")
//!     .dangerous_fixed_nonce("<1896.697170952@postoffice.reston.mci.net>");
//! # let _ = ctx;
//! ```

use crate::{ClientContext, ServerContext};

/// Replaces the random nonce or challenge of a context with a fixed value.
/// **Only for test vectors**: a fixed nonce destroys the security of every
/// challenge-response mechanism.
pub trait FixedNonce: Sized {
    /// Server side: the SCRAM server nonce part, the whole CRAM-MD5
    /// challenge, the DIGEST-MD5 nonce, the APOP timestamp. Client side:
    /// the SCRAM client nonce, the DIGEST-MD5 cnonce.
    #[must_use]
    fn dangerous_fixed_nonce(self, nonce: impl Into<String>) -> Self;
}

impl FixedNonce for ServerContext {
    fn dangerous_fixed_nonce(mut self, nonce: impl Into<String>) -> Self {
        self.fixed_nonce = Some(nonce.into());
        self
    }
}

impl FixedNonce for ClientContext {
    fn dangerous_fixed_nonce(mut self, nonce: impl Into<String>) -> Self {
        self.fixed_nonce = Some(nonce.into());
        self
    }
}
