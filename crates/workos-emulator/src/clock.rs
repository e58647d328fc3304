//! The emulator's clock: real time plus an adjustable offset, or a pinned instant.
//!
//! Everything that expires (authorization codes, access tokens, refresh tokens, sessions, signing
//! keys) reads time from here, so tests move time with `POST /_emulate/clock` instead of sleeping.
//! Clones share state: a change through the control surface is seen by every handler.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use chrono::{DateTime, TimeDelta, Utc};

/// Injectable clock. `Clock::default()` is real time.
#[derive(Clone, Default, Debug)]
pub struct Clock {
    inner: Arc<ClockInner>,
}

#[derive(Default, Debug)]
struct ClockInner {
    /// Milliseconds added to real time (ignored while pinned).
    offset_ms: AtomicI64,
    /// When set, `now()` returns `pinned_ms` and time stands still.
    pinned: AtomicBool,
    pinned_ms: AtomicI64,
}

impl Clock {
    /// A clock that follows real time.
    pub fn real() -> Self {
        Self::default()
    }

    /// A clock frozen at `at`; it only moves when advanced or set.
    pub fn pinned(at: DateTime<Utc>) -> Self {
        let clock = Self::default();
        clock.pin(at);
        clock
    }

    /// The current emulated time.
    pub fn now(&self) -> DateTime<Utc> {
        let ms = if self.inner.pinned.load(Ordering::Acquire) {
            self.inner.pinned_ms.load(Ordering::Acquire)
        } else {
            Utc::now()
                .timestamp_millis()
                .saturating_add(self.inner.offset_ms.load(Ordering::Acquire))
        };
        DateTime::from_timestamp_millis(ms).unwrap_or_else(Utc::now)
    }

    /// The current emulated time in Unix seconds (JWT `iat`/`exp`).
    pub fn unix(&self) -> i64 {
        self.now().timestamp()
    }

    /// Moves time forward (or backward, with a negative delta). Works pinned or running.
    pub fn advance(&self, by: TimeDelta) {
        let ms = by.num_milliseconds();
        if self.inner.pinned.load(Ordering::Acquire) {
            self.inner.pinned_ms.fetch_add(ms, Ordering::AcqRel);
        } else {
            self.inner.offset_ms.fetch_add(ms, Ordering::AcqRel);
        }
    }

    /// Jumps to `at` and keeps running from there (an offset against real time).
    pub fn set(&self, at: DateTime<Utc>) {
        if self.inner.pinned.load(Ordering::Acquire) {
            self.inner
                .pinned_ms
                .store(at.timestamp_millis(), Ordering::Release);
        } else {
            let offset = at.timestamp_millis() - Utc::now().timestamp_millis();
            self.inner.offset_ms.store(offset, Ordering::Release);
        }
    }

    /// Freezes time at `at`.
    pub fn pin(&self, at: DateTime<Utc>) {
        self.inner
            .pinned_ms
            .store(at.timestamp_millis(), Ordering::Release);
        self.inner.pinned.store(true, Ordering::Release);
    }

    /// Back to real time with no offset.
    pub fn reset(&self) {
        self.inner.pinned.store(false, Ordering::Release);
        self.inner.offset_ms.store(0, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_clock_only_moves_when_advanced() {
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).expect("valid");
        let clock = Clock::pinned(t0);
        assert_eq!(clock.now(), t0);
        clock.advance(TimeDelta::seconds(601));
        assert_eq!(clock.unix(), 1_700_000_601);
    }

    #[test]
    fn advancing_a_running_clock_shifts_it_for_every_clone() {
        let clock = Clock::real();
        let other = clock.clone();
        clock.advance(TimeDelta::hours(2));
        let diff = other.now() - Utc::now();
        assert!(diff > TimeDelta::minutes(119));
    }

    #[test]
    fn set_jumps_to_the_given_instant() {
        let clock = Clock::real();
        let target = DateTime::from_timestamp(2_000_000_000, 0).expect("valid");
        clock.set(target);
        let diff = (clock.now() - target).num_seconds().abs();
        assert!(diff < 5);
    }
}
