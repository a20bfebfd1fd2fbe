//! Timing normalisation: pad a step's completion time up to a bucket, so
//! its runtime says less about its input.
//!
//! # Trade-off
//!
//! * **Cost.** Every padded step waits up to one bucket width longer than it
//!   needed (for [`PaddingPolicy::PowerOfTwo`], up to twice its runtime).
//!   The GPU is held idle or released for that time; throughput drops.
//! * **What it hides.** Only runtime differences *within* one bucket: an
//!   observer still learns which bucket a step fell into, so coarse input
//!   size (e.g. exome vs. whole genome) still shows. Finer buckets leak more,
//!   coarser buckets cost more.
//! * **What it does not hide.** Anything besides completion time: memory
//!   use, utilisation and power visible through NVML or `nvidia-smi` to
//!   other tenants, PCIe traffic, the size of outputs, and timing of
//!   intermediate steps that are not padded. It is an option for steps that
//!   handle classified data, not a side-channel defence by itself.
//! * If a step runs past the largest bucket, it is padded to a multiple of
//!   that bucket, so very long runs still leak their length in those units.

use std::time::Duration;

use crate::error::TimingError;

/// At most this many fixed buckets: a bound on a policy read from
/// configuration.
pub const MAX_BUCKETS: usize = 64;

/// How completion times are padded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PaddingPolicy {
    /// No padding.
    Off,
    /// Round up to a multiple of `base`.
    Multiple {
        /// Bucket width; non-zero.
        base: Duration,
    },
    /// Round up to `base * 2^k`, the smallest that is not shorter.
    PowerOfTwo {
        /// Smallest bucket; non-zero.
        base: Duration,
    },
    /// Round up to the next of a fixed, increasing list of bucket bounds.
    Buckets(Buckets),
}

/// A validated, strictly increasing list of non-zero bucket bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buckets(Vec<Duration>);

impl Buckets {
    /// Validates `bounds`: 1 to [`MAX_BUCKETS`] non-zero, strictly increasing
    /// durations.
    pub fn new(bounds: Vec<Duration>) -> Result<Self, TimingError> {
        if bounds.is_empty() || bounds.len() > MAX_BUCKETS {
            return Err(TimingError::BucketCount(bounds.len()));
        }
        if bounds.first().is_some_and(Duration::is_zero) {
            return Err(TimingError::ZeroBucket);
        }
        if bounds.windows(2).any(|w| w[0] >= w[1]) {
            return Err(TimingError::NotIncreasing);
        }
        Ok(Self(bounds))
    }

    /// The bounds, increasing.
    pub fn bounds(&self) -> &[Duration] {
        &self.0
    }
}

impl PaddingPolicy {
    /// Checks that the policy's widths are non-zero.
    pub fn validate(&self) -> Result<(), TimingError> {
        match self {
            Self::Multiple { base } | Self::PowerOfTwo { base } if base.is_zero() => Err(TimingError::ZeroBucket),
            _ => Ok(()),
        }
    }
}

/// The completion time a step that took `elapsed` is padded to: never less
/// than `elapsed`. If the padded time would overflow, `elapsed` itself.
#[must_use]
pub fn padded(elapsed: Duration, policy: &PaddingPolicy) -> Duration {
    match policy {
        PaddingPolicy::Off => elapsed,
        PaddingPolicy::Multiple { base } => round_up_multiple(elapsed, *base),
        PaddingPolicy::PowerOfTwo { base } => {
            if base.is_zero() {
                return elapsed;
            }
            let mut bucket = *base;
            while bucket < elapsed {
                match bucket.checked_mul(2) {
                    Some(next) => bucket = next,
                    None => return elapsed,
                }
            }
            bucket
        }
        PaddingPolicy::Buckets(buckets) => match buckets.0.iter().find(|&&b| b >= elapsed) {
            Some(bound) => *bound,
            None => buckets.0.last().map_or(elapsed, |&last| round_up_multiple(elapsed, last)),
        },
    }
}

/// How long to wait after `elapsed` to reach the padded time.
#[must_use]
pub fn remaining(elapsed: Duration, policy: &PaddingPolicy) -> Duration {
    padded(elapsed, policy).saturating_sub(elapsed)
}

/// Runs `step`, then sleeps until its padded completion time.
pub fn run_padded<T>(policy: &PaddingPolicy, step: impl FnOnce() -> T) -> T {
    let start = std::time::Instant::now();
    let out = step();
    std::thread::sleep(remaining(start.elapsed(), policy));
    out
}

fn round_up_multiple(elapsed: Duration, base: Duration) -> Duration {
    let (e, b) = (elapsed.as_nanos(), base.as_nanos());
    if b == 0 {
        return elapsed;
    }
    let Some(n) = e.div_ceil(b).checked_mul(b) else {
        return elapsed;
    };
    let n = n.max(b);
    let secs = u64::try_from(n / 1_000_000_000);
    match secs {
        // `n % 1e9` is below 1e9, so it fits a u32.
        Ok(secs) => Duration::new(secs, (n % 1_000_000_000) as u32),
        Err(_) => elapsed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn multiple_rounds_up() {
        let p = PaddingPolicy::Multiple { base: 100 * MS };
        assert_eq!(padded(Duration::ZERO, &p), 100 * MS);
        assert_eq!(padded(100 * MS, &p), 100 * MS);
        assert_eq!(padded(101 * MS, &p), 200 * MS);
    }

    #[test]
    fn power_of_two_doubles() {
        let p = PaddingPolicy::PowerOfTwo { base: 10 * MS };
        assert_eq!(padded(3 * MS, &p), 10 * MS);
        assert_eq!(padded(11 * MS, &p), 20 * MS);
        assert_eq!(padded(41 * MS, &p), 80 * MS);
    }

    #[test]
    fn fixed_buckets_then_multiples_of_the_last() {
        let b = Buckets::new(vec![MS, 10 * MS, 100 * MS]).unwrap();
        let p = PaddingPolicy::Buckets(b);
        assert_eq!(padded(MS / 2, &p), MS);
        assert_eq!(padded(11 * MS, &p), 100 * MS);
        assert_eq!(padded(250 * MS, &p), 300 * MS);
    }

    #[test]
    fn rejects_bad_buckets() {
        assert!(Buckets::new(vec![]).is_err());
        assert!(Buckets::new(vec![Duration::ZERO]).is_err());
        assert!(Buckets::new(vec![2 * MS, MS]).is_err());
        assert!(PaddingPolicy::Multiple { base: Duration::ZERO }.validate().is_err());
    }

    /// Overflow must not panic: the step then keeps its real time.
    #[test]
    fn overflow_keeps_elapsed() {
        let p = PaddingPolicy::PowerOfTwo { base: Duration::MAX / 3 };
        assert_eq!(padded(Duration::MAX, &p), Duration::MAX);
    }

    proptest! {
        #[test]
        fn never_shorter_and_within_one_bucket(e in 0u64..10_000_000_000, base in 1u64..1_000_000_000) {
            let elapsed = Duration::from_nanos(e);
            let base = Duration::from_nanos(base);
            let m = padded(elapsed, &PaddingPolicy::Multiple { base });
            prop_assert!(m >= elapsed && m - elapsed <= base);
            let p = padded(elapsed, &PaddingPolicy::PowerOfTwo { base });
            prop_assert!(p >= elapsed && p <= (elapsed * 2).max(base));
        }

        /// Inputs in the same bucket are indistinguishable by completion time.
        #[test]
        fn same_bucket_same_time(a in 1u32..100, b in 1u32..100) {
            let p = PaddingPolicy::Multiple { base: 100 * MS };
            prop_assert_eq!(padded(a * MS, &p), padded(b * MS, &p));
        }
    }
}
