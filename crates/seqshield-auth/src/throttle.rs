//! Brute-force slowing for logins (NIST SP 800-63B §5.2.2): per account and
//! per source address, a few free failures, then exponential backoff up to
//! a cap.
//!
//! Accounts are keyed by the *submitted* name whether or not it exists, so
//! the throttle says nothing about which names are real. IPv6 sources are
//! grouped by /64 (one customer network), IPv4-mapped addresses count as
//! IPv4. Memory is bounded by [`MAX_TRACKED`]: when full, quiet entries are
//! forgotten first, then the least recently seen.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;

use aws_lc_rs::digest;

/// Most (account + address) entries kept in memory.
pub const MAX_TRACKED: usize = 100_000;
/// Failures allowed per account before backoff starts.
pub const ACCOUNT_FREE_FAILURES: u32 = 5;
/// Failures allowed per source address before backoff starts.
pub const ADDRESS_FREE_FAILURES: u32 = 20;
/// Longest wait imposed, in seconds (15 minutes).
pub const MAX_DELAY_SECS: u64 = 900;

/// Tuning for a [`Throttle`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Failures allowed per account before backoff.
    pub account_free_failures: u32,
    /// Failures allowed per source address before backoff.
    pub address_free_failures: u32,
    /// First wait after the free failures, in seconds; doubles each failure.
    pub base_delay_secs: u64,
    /// Longest wait, in seconds.
    pub max_delay_secs: u64,
    /// An entry with no failure for this long is forgotten.
    pub forget_after_secs: u64,
    /// Most entries kept (at most [`MAX_TRACKED`]).
    pub max_tracked: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            account_free_failures: ACCOUNT_FREE_FAILURES,
            address_free_failures: ADDRESS_FREE_FAILURES,
            base_delay_secs: 1,
            max_delay_secs: MAX_DELAY_SECS,
            forget_after_secs: 3600,
            max_tracked: MAX_TRACKED,
        }
    }
}

/// Refusal: try again after this many seconds (for `Retry-After`, RFC 9110 §10.2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("too many failed attempts; retry after {0} s")]
pub struct RetryAfter(pub u64);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key {
    /// SHA-256 of the submitted account name: fixed size whatever is sent.
    Account([u8; 32]),
    Address(IpAddr),
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    failures: u32,
    blocked_until: u64,
    last_failure: u64,
}

/// Tracks failed attempts. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Throttle {
    cfg: ThrottleConfig,
    entries: Mutex<HashMap<Key, Entry>>,
}

fn account_key(account: &str) -> Key {
    let d = digest::digest(&digest::SHA256, account.as_bytes());
    let mut k = [0u8; 32];
    k.copy_from_slice(d.as_ref());
    Key::Account(k)
}

fn address_key(ip: IpAddr) -> Key {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            Key::Address(IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0)))
        }
        v4 => Key::Address(v4),
    }
}

impl Throttle {
    /// A throttle with `cfg` (`max_tracked` clamped to [`MAX_TRACKED`]).
    pub fn new(mut cfg: ThrottleConfig) -> Self {
        cfg.max_tracked = cfg.max_tracked.clamp(1, MAX_TRACKED);
        Self { cfg, entries: Mutex::new(HashMap::new()) }
    }

    /// Whether an attempt for `account` from `ip` may proceed at `now`.
    /// Call before checking the password, and refuse without checking on `Err`.
    pub fn check(&self, account: &str, ip: IpAddr, now: u64) -> Result<(), RetryAfter> {
        let entries = self.lock();
        let wait = [account_key(account), address_key(ip)]
            .iter()
            .filter_map(|k| entries.get(k))
            .map(|e| e.blocked_until.saturating_sub(now))
            .max()
            .unwrap_or(0);
        if wait > 0 {
            Err(RetryAfter(wait))
        } else {
            Ok(())
        }
    }

    /// Records a failed attempt (wrong password, wrong code, unknown name).
    pub fn failure(&self, account: &str, ip: IpAddr, now: u64) {
        let mut entries = self.lock();
        for (key, free) in
            [(account_key(account), self.cfg.account_free_failures), (address_key(ip), self.cfg.address_free_failures)]
        {
            if !entries.contains_key(&key) && entries.len() >= self.cfg.max_tracked {
                self.make_room(&mut entries, now);
            }
            let e = entries.entry(key).or_insert(Entry { failures: 0, blocked_until: 0, last_failure: now });
            if now.saturating_sub(e.last_failure) >= self.cfg.forget_after_secs && e.blocked_until <= now {
                e.failures = 0;
            }
            e.failures = e.failures.saturating_add(1);
            e.last_failure = now;
            if e.failures > free {
                e.blocked_until = now.saturating_add(self.delay(e.failures - free));
            }
        }
    }

    /// Records a successful login: clears the account's failures. The
    /// address's count is kept (`ip` is accepted for symmetry): one valid
    /// account must not let an address reset its budget for guessing others.
    pub fn success(&self, account: &str, _ip: IpAddr) {
        self.lock().remove(&account_key(account));
    }

    /// Entries currently tracked.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The wait after the `n`-th failure past the free ones (n ≥ 1):
    /// base × 2^(n-1), capped.
    fn delay(&self, n: u32) -> u64 {
        let shift = (n - 1).min(63);
        self.cfg.base_delay_secs.checked_shl(shift).unwrap_or(u64::MAX).min(self.cfg.max_delay_secs)
    }

    /// Forgets quiet entries; if none are quiet, the least recently seen
    /// tenth (amortised: one sort per `max_tracked / 10` insertions).
    fn make_room(&self, entries: &mut HashMap<Key, Entry>, now: u64) {
        let forget = self.cfg.forget_after_secs;
        entries.retain(|_, e| e.blocked_until > now || now.saturating_sub(e.last_failure) < forget);
        if entries.len() < self.cfg.max_tracked {
            return;
        }
        let mut by_age: Vec<(u64, Key)> = entries.iter().map(|(k, e)| (e.last_failure, *k)).collect();
        by_age.sort_unstable_by_key(|(t, _)| *t);
        let evict = (self.cfg.max_tracked / 10).max(1);
        for (_, k) in by_age.into_iter().take(evict) {
            entries.remove(&k);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn account_backoff_is_exponential_and_capped() {
        let t = Throttle::new(ThrottleConfig::default());
        let a = ip("192.0.2.1");
        let now = 1_000;
        for _ in 0..ACCOUNT_FREE_FAILURES {
            assert_eq!(t.check("alice", a, now), Ok(()));
            t.failure("alice", a, now);
        }
        assert_eq!(t.check("alice", a, now), Ok(()), "the free failures cost nothing");
        t.failure("alice", a, now);
        assert_eq!(t.check("alice", a, now), Err(RetryAfter(1)));
        assert_eq!(t.check("alice", a, now + 1), Ok(()));
        t.failure("alice", a, now + 1);
        assert_eq!(t.check("alice", a, now + 1), Err(RetryAfter(2)));
        t.failure("alice", a, now + 3);
        assert_eq!(t.check("alice", a, now + 3), Err(RetryAfter(4)));
        for i in 0..20 {
            t.failure("alice", a, now + 10 + i);
        }
        assert_eq!(t.check("alice", a, now + 29), Err(RetryAfter(MAX_DELAY_SECS)));
        // Other accounts from another address are not affected.
        assert_eq!(t.check("bob", ip("192.0.2.99"), now + 29), Ok(()));
    }

    #[test]
    fn address_backoff_spans_accounts_and_ipv6_slash_64() {
        let t = Throttle::new(ThrottleConfig::default());
        let now = 50;
        for i in 0..ADDRESS_FREE_FAILURES {
            // A different name every time: only the address counter grows.
            t.failure(&format!("guess{i}"), ip(&format!("2001:db8:1:2::{i:x}")), now);
        }
        assert_eq!(t.check("someone", ip("2001:db8:1:2::ffff"), now), Ok(()));
        t.failure("another", ip("2001:db8:1:2:aaaa::1"), now);
        assert_eq!(t.check("someone", ip("2001:db8:1:2::ffff"), now), Err(RetryAfter(1)));
        assert_eq!(t.check("someone", ip("2001:db8:1:3::1"), now), Ok(()), "another /64");
    }

    #[test]
    fn ipv4_mapped_counts_as_ipv4() {
        let t = Throttle::new(ThrottleConfig { address_free_failures: 0, ..ThrottleConfig::default() });
        t.failure("x", ip("::ffff:198.51.100.7"), 10);
        assert_eq!(t.check("y", ip("198.51.100.7"), 10), Err(RetryAfter(1)));
    }

    #[test]
    fn success_clears_the_account_but_not_the_address() {
        let cfg = ThrottleConfig { account_free_failures: 0, address_free_failures: 0, ..ThrottleConfig::default() };
        let t = Throttle::new(cfg);
        let a = ip("203.0.113.9");
        t.failure("alice", a, 100);
        t.success("alice", a);
        assert_eq!(t.check("alice", ip("203.0.113.10"), 100), Ok(()));
        assert_eq!(t.check("alice", a, 100), Err(RetryAfter(1)));
    }

    #[test]
    fn failures_are_forgotten_after_a_quiet_period() {
        let cfg = ThrottleConfig { account_free_failures: 1, forget_after_secs: 60, ..ThrottleConfig::default() };
        let t = Throttle::new(cfg);
        let a = ip("192.0.2.1");
        t.failure("alice", a, 0);
        t.failure("alice", a, 1);
        assert_eq!(t.check("alice", a, 1), Err(RetryAfter(1)));
        // A long quiet time later, the count starts again from zero.
        t.failure("alice", a, 1_000);
        assert_eq!(t.check("alice", a, 1_000), Ok(()));
    }

    #[test]
    fn memory_is_bounded() {
        let cfg = ThrottleConfig { max_tracked: 100, ..ThrottleConfig::default() };
        let t = Throttle::new(cfg);
        for i in 0..1_000u32 {
            t.failure(&format!("name{i}"), IpAddr::from(i.to_be_bytes()), u64::from(i));
            assert!(t.len() <= 100, "{} entries", t.len());
        }
        // The most recent entries survive eviction.
        let cfg = ThrottleConfig { max_tracked: 100, account_free_failures: 0, ..ThrottleConfig::default() };
        let t = Throttle::new(cfg);
        t.failure("victim", ip("192.0.2.1"), 5_000);
        for i in 0..300u32 {
            t.failure(&format!("n{i}"), ip("192.0.2.2"), u64::from(i));
        }
        assert!(t.check("victim", ip("192.0.2.3"), 5_000).is_err());
    }
}
