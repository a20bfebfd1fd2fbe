//! Adaptive per-caller limits for the annotation API, tightened on the
//! patterns of model extraction and reference enumeration.
//!
//! Each caller (token subject and client) has a bucket of variants:
//! `variants_per_minute` refill, `burst_variants` capacity. A request takes
//! one token per variant it holds; an empty bucket answers 429.
//!
//! Over a sliding window (`window_secs`) the guard watches three signals:
//!
//! | signal | what it counts | why |
//! |---|---|---|
//! | `sweep` | distinct positions queried | one sample's VCF is bounded; a sweep of the variant space is not |
//! | `saturation` | positions queried with two or more different ALT alleles | haploid pathogen samples seldom have them; an extractor asks every base at every site |
//! | `probing` | variants refused as not fitting the reference (unknown contig, position, REF mismatch) | guessing the reference through the validator |
//!
//! Each signal over its threshold divides the caller's rate and capacity by
//! `tighten_factor` (two signals: its square). The first request that finds
//! a signal newly raised is reported as a [`Verdict::Tightened`] (an audit
//! event); the first refusal of an episode as a [`Verdict::Refused`] with
//! `first = true`. Signals decay as the window slides.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The guard's settings (`[annotate.limits]`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Variants a caller may annotate per minute, sustained.
    pub variants_per_minute: u32,
    /// Variants a caller may send at once (bucket capacity).
    pub burst_variants: u32,
    /// Seconds of history the signals look at.
    pub window_secs: u64,
    /// Distinct positions in the window that count as a sweep.
    pub sweep_positions: u32,
    /// Positions with several ALT alleles in the window that count as saturation.
    pub saturation_sites: u32,
    /// Refused (not fitting the reference) variants in the window that count as probing.
    pub probe_errors: u32,
    /// What each raised signal divides the rate and capacity by.
    pub tighten_factor: u32,
    /// Most callers tracked; beyond, the least recently seen is forgotten.
    pub max_callers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            variants_per_minute: 30_000,
            burst_variants: 30_000,
            window_secs: 600,
            sweep_positions: 50_000,
            saturation_sites: 200,
            probe_errors: 50,
            tighten_factor: 10,
            max_callers: 10_000,
        }
    }
}

/// Most positions remembered per caller (bounds memory: the sweep
/// threshold must be below it).
pub const MAX_TRACKED_POSITIONS: usize = 200_000;

/// A raised signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// Many distinct positions.
    Sweep,
    /// Many positions with several ALT alleles.
    Saturation,
    /// Many variants that do not fit the reference.
    Probing,
}

/// What the guard decided for a request.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Go ahead.
    Allowed,
    /// Go ahead, but the caller's limits were just tightened (audit it).
    Tightened {
        /// The signals now raised.
        signals: Vec<Signal>,
        /// The variants-per-minute rate now in force.
        rate_per_minute: f64,
    },
    /// Refused: retry after this long.
    Refused {
        /// When a retry can succeed.
        retry_after: Duration,
        /// The signals raised (empty: plain volume).
        signals: Vec<Signal>,
        /// The first refusal of an episode (audit it).
        first: bool,
    },
}

#[derive(Debug)]
struct Caller {
    tokens: f64,
    refilled: Instant,
    last_seen: Instant,
    /// (time, contig-pos key) per variant, oldest first.
    seen: VecDeque<(Instant, u64)>,
    /// position key -> (count in window, distinct alts seen, as a small set)
    positions: HashMap<u64, (u32, HashSet<u64>)>,
    probes: VecDeque<Instant>,
    raised: HashSet<Signal>,
    in_episode: bool,
}

/// The per-caller state of the annotation API's limits.
#[derive(Debug)]
pub struct Guard {
    limits: Limits,
    callers: HashMap<String, Caller>,
}

fn hash_str(s: &str) -> u64 {
    // FNV-1a: cheap and stable; collisions only blur the counters.
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3))
}

impl Guard {
    /// A guard with `limits`.
    pub fn new(limits: Limits) -> Self {
        Self { limits, callers: HashMap::new() }
    }

    /// The settings.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn caller(&mut self, who: &str, now: Instant) -> &mut Caller {
        if !self.callers.contains_key(who) && self.callers.len() >= self.limits.max_callers {
            if let Some(oldest) = self.callers.iter().min_by_key(|(_, c)| c.last_seen).map(|(k, _)| k.clone()) {
                self.callers.remove(&oldest);
            }
        }
        let cap = f64::from(self.limits.burst_variants);
        self.callers.entry(who.to_owned()).or_insert_with(|| Caller {
            tokens: cap,
            refilled: now,
            last_seen: now,
            seen: VecDeque::new(),
            positions: HashMap::new(),
            probes: VecDeque::new(),
            raised: HashSet::new(),
            in_episode: false,
        })
    }

    fn signals(limits: &Limits, c: &Caller) -> Vec<Signal> {
        let mut s = Vec::new();
        if c.positions.len() as u64 >= u64::from(limits.sweep_positions) {
            s.push(Signal::Sweep);
        }
        let saturated = c.positions.values().filter(|(_, alts)| alts.len() >= 2).count() as u64;
        if saturated >= u64::from(limits.saturation_sites) {
            s.push(Signal::Saturation);
        }
        if c.probes.len() as u64 >= u64::from(limits.probe_errors) {
            s.push(Signal::Probing);
        }
        s
    }

    fn expire(limits: &Limits, c: &mut Caller, now: Instant) {
        let window = Duration::from_secs(limits.window_secs);
        while let Some(&(t, key)) = c.seen.front() {
            if now.duration_since(t) < window && c.seen.len() <= MAX_TRACKED_POSITIONS {
                break;
            }
            c.seen.pop_front();
            if let Some(e) = c.positions.get_mut(&key) {
                e.0 -= 1;
                // The alt set stays while the site is still queried: it can
                // only over-count saturation for a site in use.
                if e.0 == 0 {
                    c.positions.remove(&key);
                }
            }
        }
        while c.probes.front().is_some_and(|&t| now.duration_since(t) >= window) {
            c.probes.pop_front();
        }
    }

    /// Records `n` refused variants that did not fit the reference.
    pub fn record_probes(&mut self, who: &str, n: usize, now: Instant) {
        let cap = self.limits.probe_errors as usize * 4;
        let c = self.caller(who, now);
        for _ in 0..n.min(cap) {
            c.probes.push_back(now);
        }
        while c.probes.len() > cap {
            c.probes.pop_front();
        }
    }

    /// Checks whether the caller may send anything at all right now (before
    /// parsing): refused only when its bucket is empty.
    pub fn precheck(&mut self, who: &str, now: Instant) -> Verdict {
        self.charge(who, std::iter::empty::<(&str, u64, &str)>(), 0, now)
    }

    /// Charges a request of `count` variants, `variants` giving (contig,
    /// position, alt) of each for the signals.
    pub fn charge<'a>(
        &mut self,
        who: &str,
        variants: impl Iterator<Item = (&'a str, u64, &'a str)>,
        count: usize,
        now: Instant,
    ) -> Verdict {
        let limits = self.limits.clone();
        let c = self.caller(who, now);
        c.last_seen = now;
        Self::expire(&limits, c, now);
        let before: HashSet<Signal> = c.raised.clone();
        for (contig, pos, alt) in variants {
            let key = hash_str(contig).rotate_left(32) ^ pos;
            let alt = hash_str(alt);
            c.seen.push_back((now, key));
            let e = c.positions.entry(key).or_insert_with(|| (0, HashSet::new()));
            e.0 += 1;
            if e.1.len() < 4 {
                e.1.insert(alt);
            }
        }
        Self::expire(&limits, c, now);
        let signals = Self::signals(&limits, c);
        c.raised = signals.iter().copied().collect();
        let divisor = f64::from(limits.tighten_factor.max(1)).powi(signals.len() as i32);
        let rate = f64::from(limits.variants_per_minute) / 60.0 / divisor;
        let cap = f64::from(limits.burst_variants) / divisor;
        let elapsed = now.duration_since(c.refilled).as_secs_f64();
        c.tokens = (c.tokens + elapsed * rate).min(cap);
        c.refilled = now;
        let need = count as f64;
        if c.tokens >= need.max(if count == 0 { 1.0 } else { 0.0 }) {
            c.tokens -= need;
            c.in_episode = false;
            let newly: Vec<Signal> = signals.iter().copied().filter(|s| !before.contains(s)).collect();
            if newly.is_empty() {
                Verdict::Allowed
            } else {
                Verdict::Tightened { signals, rate_per_minute: rate * 60.0 }
            }
        } else {
            let missing = if need > cap { cap.max(1.0) - c.tokens } else { need.max(1.0) - c.tokens };
            let secs = if rate > 0.0 { (missing / rate).ceil().max(1.0) } else { 3600.0 };
            let first = !c.in_episode;
            c.in_episode = true;
            Verdict::Refused { retry_after: Duration::from_secs(secs as u64), signals, first }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            variants_per_minute: 600,
            burst_variants: 1000,
            window_secs: 60,
            sweep_positions: 500,
            saturation_sites: 20,
            probe_errors: 10,
            tighten_factor: 10,
            max_callers: 3,
        }
    }

    fn vs(range: std::ops::Range<u64>, alts: &[&'static str]) -> Vec<(&'static str, u64, &'static str)> {
        range.flat_map(|p| alts.iter().map(move |a| ("chr", p, *a))).collect()
    }

    #[test]
    fn a_normal_vcf_passes_and_volume_alone_refuses_then_refills() {
        let mut g = Guard::new(limits());
        let t = Instant::now();
        let v = vs(0..400, &["A"]);
        assert_eq!(g.charge("u", v.iter().copied(), v.len(), t), Verdict::Allowed);
        let v = vs(10_000..10_400, &["A"]);
        // 600 left, 400 needed, but now 800 distinct positions: a sweep.
        match g.charge("u", v.iter().copied(), v.len(), t) {
            Verdict::Refused { signals, first: true, .. } => assert_eq!(signals, [Signal::Sweep]),
            other => panic!("{other:?}"),
        }
        // Another caller is not affected.
        assert_eq!(g.charge("other", vs(0..10, &["A"]).into_iter(), 10, t), Verdict::Allowed);
    }

    #[test]
    fn saturating_every_base_at_each_site_tightens() {
        let mut g = Guard::new(limits());
        let t = Instant::now();
        let v = vs(0..25, &["A", "C", "G"]);
        match g.charge("u", v.iter().copied(), v.len(), t) {
            Verdict::Tightened { signals, rate_per_minute } => {
                assert_eq!(signals, [Signal::Saturation]);
                assert!((rate_per_minute - 60.0).abs() < 1e-9);
            }
            other => panic!("{other:?}"),
        }
        // Capacity is now 100: a request of 200 is refused.
        let v = vs(100..200, &["A", "C"]);
        assert!(matches!(g.charge("u", v.iter().copied(), v.len(), t), Verdict::Refused { first: true, .. }));
        // Second refusal of the episode is not "first" (no second audit event).
        let big = vs(400..600, &["A"]);
        assert!(matches!(g.charge("u", big.iter().copied(), big.len(), t), Verdict::Refused { first: false, .. }));
    }

    #[test]
    fn probing_the_reference_tightens_and_the_window_forgets() {
        let mut g = Guard::new(limits());
        let t = Instant::now();
        g.record_probes("u", 12, t);
        match g.charge("u", vs(0..5, &["A"]).into_iter(), 5, t) {
            Verdict::Tightened { signals, .. } => assert_eq!(signals, [Signal::Probing]),
            other => panic!("{other:?}"),
        }
        let later = t + Duration::from_secs(61);
        assert_eq!(g.charge("u", vs(0..5, &["A"]).into_iter(), 5, later), Verdict::Allowed);
    }

    #[test]
    fn callers_are_bounded() {
        let mut g = Guard::new(limits());
        let t = Instant::now();
        for i in 0..10 {
            g.precheck(&format!("c{i}"), t + Duration::from_millis(i));
        }
        assert!(g.callers.len() <= 3);
    }
}
