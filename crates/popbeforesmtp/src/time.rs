//! Time as the cache sees it: whole seconds, passed in by the caller.

use std::time::{SystemTime, UNIX_EPOCH};

/// A point in time in whole seconds since the Unix epoch.
///
/// The cache never reads the clock itself: callers pass `now`, so expiry is
/// exact to the second and testable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    /// A timestamp of `secs` seconds since the Unix epoch.
    #[must_use]
    pub const fn from_unix_secs(secs: u64) -> Self {
        Self(secs)
    }

    /// The current system time (truncated to the second).
    #[must_use]
    pub fn now() -> Self {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self(secs)
    }

    /// Seconds since the Unix epoch.
    #[must_use]
    pub const fn unix_secs(self) -> u64 {
        self.0
    }

    /// This timestamp plus `secs` seconds (saturating).
    #[must_use]
    pub const fn plus_secs(self, secs: u64) -> Self {
        Self(self.0.saturating_add(secs))
    }
}
