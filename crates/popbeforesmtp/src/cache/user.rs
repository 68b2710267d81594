//! User names as the cache holds them: short ones inline, long ones shared.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// Longest name kept inline (no heap allocation, copied on lookup).
pub(super) const INLINE_MAX: usize = 30;

/// The user a POP login was made as.
///
/// Names up to 30 bytes live inside the value (32 bytes in
/// all), so a cache entry needs no allocation of its own and a lookup
/// copies instead of touching a shared reference count; longer names are
/// one shared allocation.
#[derive(Clone)]
pub struct UserName(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, buf: [u8; INLINE_MAX] },
    Shared(Arc<str>),
}

impl UserName {
    /// The name as a string.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Built from a &str cut at its own length: always valid UTF-8.
            Repr::Inline { len, buf } => {
                std::str::from_utf8(&buf[..usize::from(*len)]).unwrap_or("")
            }
            Repr::Shared(s) => s,
        }
    }

    /// Heap bytes this name holds (0 when inline).
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        match &self.0 {
            Repr::Inline { .. } => 0,
            // Two reference counts and the bytes.
            Repr::Shared(s) => 2 * size_of::<usize>() + s.len(),
        }
    }
}

impl From<&str> for UserName {
    fn from(s: &str) -> Self {
        if s.len() <= INLINE_MAX {
            let mut buf = [0u8; INLINE_MAX];
            buf[..s.len()].copy_from_slice(s.as_bytes());
            // s.len() <= INLINE_MAX < 256.
            let len = u8::try_from(s.len()).unwrap_or(0);
            Self(Repr::Inline { len, buf })
        } else {
            Self(Repr::Shared(Arc::from(s)))
        }
    }
}

impl Deref for UserName {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for UserName {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for UserName {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for UserName {}

impl PartialEq<str> for UserName {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for UserName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Debug for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_and_shared() {
        assert_eq!(size_of::<UserName>(), 32);
        assert_eq!(size_of::<Option<UserName>>(), 32);
        for s in [
            "",
            "a",
            "alice@example.com",
            &"é".repeat(11),
            &"x".repeat(23),
            &"y".repeat(500),
        ] {
            let u = UserName::from(s);
            assert_eq!(u.as_str(), s);
            assert_eq!(u.heap_bytes() == 0, s.len() <= INLINE_MAX);
            assert_eq!(u.clone(), u);
        }
    }
}
