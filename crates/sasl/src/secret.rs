//! Secrets that are wiped on drop and never printed.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// A password (or other secret string) as the client sent it or as the
/// directory returned it.
///
/// Zeroized on drop; `Debug` prints `Password(<redacted>)` in every build.
/// Compare with [`Password::ct_eq`], which runs in constant time.
#[derive(Clone, Zeroize, ZeroizeOnDrop, Default)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(password: impl Into<String>) -> Self {
        Self(password.into())
    }

    /// The password's text. Handle with care: do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The password's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Constant-time equality of the two passwords' bytes (the length is not
    /// hidden).
    pub fn ct_eq(&self, other: &Self) -> bool {
        crate::util::ct_eq(self.0.as_bytes(), other.0.as_bytes())
    }

    /// Whether the password is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Constant-time, as [`Password::ct_eq`].
impl PartialEq for Password {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other)
    }
}

impl Eq for Password {}

impl From<String> for Password {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for Password {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

/// Secret bytes (salted passwords, keys, proofs): zeroized on drop, redacted
/// from `Debug`.
#[derive(Clone, Zeroize, ZeroizeOnDrop, Default, PartialEq, Eq)]
pub(crate) struct SecretBytes(pub(crate) Vec<u8>);

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}
