//! The arithmetic of one limited party: a token bucket, a decaying
//! failure score, and the trip episode that keeps the audit log short.

use std::time::Duration;

/// A trip episode ends after this long without a rejection.
pub const EPISODE_QUIET: Duration = Duration::from_secs(10);
/// Highest penalty score kept (the rate floor applies long before).
pub(super) const MAX_PENALTY: f64 = 1e9;
/// A score below this counts as zero: the entry may be forgotten.
pub(super) const PENALTY_FORGET: f64 = 0.01;

/// A token bucket: `tokens` at time `at`, refilled at a rate up to a
/// burst. A request costs one token.
#[derive(Clone, Copy, Debug)]
pub(super) struct Bucket {
    tokens: f64,
    at: Duration,
}

impl Bucket {
    /// A full bucket at `now`.
    pub(super) fn full(burst: f64, now: Duration) -> Self {
        Self { tokens: burst, at: now }
    }

    /// Adds what `rate` earned since the last refill, up to `burst` (which
    /// also cuts a bucket whose burst shrank).
    pub(super) fn refill(&mut self, now: Duration, rate: f64, burst: f64) {
        let dt = now.saturating_sub(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * rate).min(burst);
        self.at = self.at.max(now);
    }

    /// True if a request may pass (at least one token).
    pub(super) fn has_token(&self) -> bool {
        self.tokens >= 1.0
    }

    /// Spends one token.
    pub(super) fn take(&mut self) {
        self.tokens -= 1.0;
    }

    /// True once the bucket is back to `burst`.
    pub(super) fn is_full(&self, burst: f64) -> bool {
        self.tokens >= burst - 1e-9
    }

    /// Time until one token is there at `rate`.
    pub(super) fn wait(&self, rate: f64) -> Duration {
        let missing = (1.0 - self.tokens).max(0.0);
        Duration::try_from_secs_f64(missing / rate).unwrap_or(Duration::MAX)
    }
}

/// A failure score that halves every half-life.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Penalty {
    score: f64,
    at: Duration,
}

impl Penalty {
    /// The score at `now`.
    pub(super) fn value(&self, now: Duration, half_life: f64) -> f64 {
        if self.score == 0.0 {
            return 0.0;
        }
        let dt = now.saturating_sub(self.at).as_secs_f64();
        self.score * 0.5f64.powf(dt / half_life)
    }

    /// Adds one failure at `now`.
    pub(super) fn add(&mut self, now: Duration, half_life: f64) {
        self.score = (self.value(now, half_life) + 1.0).min(MAX_PENALTY);
        self.at = self.at.max(now);
    }
}

/// An open trip episode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Open {
    /// When it tripped.
    pub(super) since: Duration,
    /// The latest rejection.
    pub(super) last: Duration,
    /// Rejections in it, the first included.
    pub(super) rejected: u64,
}

/// What a rejection means for the audit log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Rejection {
    /// Allowed to limited: one event, carrying the count of the previous
    /// episode if it ended unreported.
    Trip {
        /// The previous episode, closed by this trip.
        previous: Option<Open>,
    },
    /// Still limited: only counted.
    Counted,
}

/// The trip episode state of one party.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Episode {
    open: Option<Open>,
}

impl Episode {
    /// True while an episode is open.
    pub(super) fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// Closes the episode if it saw no rejection for [`EPISODE_QUIET`],
    /// returning it.
    pub(super) fn close_if_quiet(&mut self, now: Duration) -> Option<Open> {
        match self.open {
            Some(o) if now.saturating_sub(o.last) >= EPISODE_QUIET => self.open.take(),
            _ => None,
        }
    }

    /// Records a rejection at `now`.
    pub(super) fn reject(&mut self, now: Duration) -> Rejection {
        let previous = self.close_if_quiet(now);
        match &mut self.open {
            Some(o) => {
                o.rejected += 1;
                o.last = o.last.max(now);
                Rejection::Counted
            }
            None => {
                self.open = Some(Open { since: now, last: now, rejected: 1 });
                Rejection::Trip { previous }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn bucket_refills_at_rate_up_to_burst() {
        let mut b = Bucket::full(3.0, S(0));
        for _ in 0..3 {
            assert!(b.has_token());
            b.take();
        }
        assert!(!b.has_token());
        assert_eq!(b.wait(2.0), Duration::from_millis(500));
        b.refill(Duration::from_millis(500), 2.0, 3.0);
        assert!(b.has_token());
        b.refill(S(100), 2.0, 3.0);
        assert!(b.is_full(3.0));
        b.refill(S(100), 2.0, 1.0);
        assert!(b.is_full(1.0) && !b.is_full(3.0), "a shrunk burst cuts the bucket");
    }

    #[test]
    fn penalty_halves_every_half_life() {
        let mut p = Penalty::default();
        p.add(S(0), 60.0);
        p.add(S(0), 60.0);
        assert!((p.value(S(0), 60.0) - 2.0).abs() < 1e-9);
        assert!((p.value(S(60), 60.0) - 1.0).abs() < 1e-9);
        assert!((p.value(S(120), 60.0) - 0.5).abs() < 1e-9);
        p.add(S(60), 60.0);
        assert!((p.value(S(60), 60.0) - 2.0).abs() < 1e-9);
    }

    #[test]
    fn episode_trips_once_then_counts() {
        let mut e = Episode::default();
        assert_eq!(e.reject(S(0)), Rejection::Trip { previous: None });
        assert_eq!(e.reject(S(1)), Rejection::Counted);
        assert_eq!(e.reject(S(9)), Rejection::Counted);
        assert_eq!(e.close_if_quiet(S(18)), None, "9 s since the last rejection");
        assert!(e.is_open());
        let previous = Some(Open { since: S(0), last: S(9), rejected: 3 });
        assert_eq!(e.reject(S(19)), Rejection::Trip { previous }, "a new episode carries the old count");
        assert_eq!(e.close_if_quiet(S(29)), Some(Open { since: S(19), last: S(19), rejected: 1 }));
        assert!(!e.is_open());
    }
}
