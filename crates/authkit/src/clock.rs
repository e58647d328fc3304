//! Time as an injected dependency.
//!
//! Every decision in this crate that depends on "now" (token expiry, `nbf`, JWKS cache
//! age and cooldowns, later the refresh window) reads the time through a [`Clock`]
//! instead of calling [`SystemTime::now`] directly. Production code uses
//! [`SystemClock`]; tests use a [`ManualClock`] and move time forward explicitly, so no
//! test ever sleeps waiting for time to pass.
//!
//! ```
//! use std::time::Duration;
//! use authkit::clock::{Clock, ManualClock};
//!
//! let clock = ManualClock::at_unix_seconds(1_757_144_304);
//! clock.advance(Duration::from_secs(10));
//! assert_eq!(clock.unix_seconds(), 1_757_144_314);
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time.
///
/// Implementations must be cheap to call: the verifier reads the clock on every request.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;

    /// The current time in whole seconds since the Unix epoch (0 for times before it).
    fn unix_seconds(&self) -> u64 {
        self.now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    /// The current time in milliseconds since the Unix epoch (0 for times before it).
    fn unix_millis(&self) -> u64 {
        self.now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// A shared, dynamically dispatched clock, the form the verifier and key store keep.
pub type SharedClock = Arc<dyn Clock>;

/// The real clock ([`SystemTime::now`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

impl SystemClock {
    /// The system clock as a [`SharedClock`], the default everywhere a clock is optional.
    pub fn shared() -> SharedClock {
        Arc::new(SystemClock)
    }
}

/// A clock that only moves when told to, for tests.
///
/// Clones share the same time, so a test can hand one clone to a verifier and keep
/// another to move time. Resolution is one millisecond.
#[derive(Clone)]
pub struct ManualClock {
    millis: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock stopped at `time` (times before the Unix epoch are clamped to it).
    pub fn new(time: SystemTime) -> Self {
        let clock = Self {
            millis: Arc::new(AtomicU64::new(0)),
        };
        clock.set(time);
        clock
    }

    /// A clock stopped at `secs` seconds after the Unix epoch.
    pub fn at_unix_seconds(secs: u64) -> Self {
        Self::new(UNIX_EPOCH + Duration::from_secs(secs))
    }

    /// A clock stopped at the current system time.
    pub fn starting_now() -> Self {
        Self::new(SystemTime::now())
    }

    /// Moves the clock to `time`, forwards or backwards.
    pub fn set(&self, time: SystemTime) {
        let ms = time
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.millis.store(ms, Ordering::SeqCst);
    }

    /// Moves the clock to `secs` seconds after the Unix epoch.
    pub fn set_unix_seconds(&self, secs: u64) {
        self.millis
            .store(secs.saturating_mul(1000), Ordering::SeqCst);
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let add = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        let _ = self
            .millis
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |ms| {
                Some(ms.saturating_add(add))
            });
    }

    /// This clock as a [`SharedClock`] (sharing the same time as `self`).
    pub fn shared(&self) -> SharedClock {
        Arc::new(self.clone())
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("unix_millis", &self.millis.load(Ordering::SeqCst))
            .finish()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.millis.load(Ordering::SeqCst))
    }

    fn unix_millis(&self) -> u64 {
        self.millis.load(Ordering::SeqCst)
    }

    fn unix_seconds(&self) -> u64 {
        self.millis.load(Ordering::SeqCst) / 1000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_clones_share_time() {
        let a = ManualClock::at_unix_seconds(100);
        let b = a.clone();
        a.advance(Duration::from_millis(1500));
        assert_eq!(b.unix_millis(), 101_500);
        assert_eq!(b.unix_seconds(), 101);
        b.set_unix_seconds(5);
        assert_eq!(a.now(), UNIX_EPOCH + Duration::from_secs(5));
    }

    #[test]
    fn manual_clock_clamps_pre_epoch_times() {
        let c = ManualClock::new(UNIX_EPOCH - Duration::from_secs(10));
        assert_eq!(c.unix_seconds(), 0);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.unix_seconds() > 1_577_836_800);
    }
}
