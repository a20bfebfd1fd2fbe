//! The remnant rate over many scan cycles.

use super::ScanHits;

/// Whether the writer used the secure allocator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AllocatorMode {
    /// Plain `cuMemAlloc`/`cuMemFree`: whatever the driver guarantees.
    Plain,
    /// The [`crate::pool::SecurePool`]: wipe on free.
    Secure,
}

/// Remnants found over `cycles` writer/reader cycles in one mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct ScanReport {
    /// The writer's allocator.
    pub mode: AllocatorMode,
    /// Cycles run.
    pub cycles: u64,
    /// Cycles in which the reader found any marker of this run.
    pub cycles_with_remnants: u64,
    /// Cycles in which the reader found the marker written in that cycle.
    pub cycles_with_own_remnant: u64,
    /// Markers found over all cycles.
    pub total_hits: u64,
    /// Device bytes the reader searched over all cycles.
    pub bytes_scanned: u64,
}

impl ScanReport {
    /// An empty report for `mode`.
    pub fn new(mode: AllocatorMode) -> Self {
        Self { mode, cycles: 0, cycles_with_remnants: 0, cycles_with_own_remnant: 0, total_hits: 0, bytes_scanned: 0 }
    }

    /// Adds cycle `cycle`, whose reader searched `bytes` and found `hits`.
    pub fn record(&mut self, cycle: u64, bytes: u64, hits: &ScanHits) {
        self.cycles += 1;
        self.bytes_scanned = self.bytes_scanned.saturating_add(bytes);
        self.total_hits = self.total_hits.saturating_add(hits.hits);
        if hits.hits > 0 {
            self.cycles_with_remnants += 1;
        }
        if hits.has_cycle(cycle) {
            self.cycles_with_own_remnant += 1;
        }
    }

    /// The share of cycles with any remnant, 0.0 to 1.0 (0.0 with no cycles).
    pub fn rate(&self) -> f64 {
        if self.cycles == 0 {
            return 0.0;
        }
        self.cycles_with_remnants as f64 / self.cycles as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::{find_remnants, RemnantPattern};

    #[test]
    fn rate_counts_cycles_with_hits() {
        let mut report = ScanReport::new(AllocatorMode::Plain);
        let p = RemnantPattern::new(5, 0, 1, 64).unwrap();
        let dirty = p.to_bytes();
        let clean = vec![0u8; 128];
        report.record(0, 128, &find_remnants(&dirty, 5));
        report.record(1, 128, &find_remnants(&clean, 5));
        report.record(2, 128, &find_remnants(&dirty, 5));
        report.record(3, 128, &find_remnants(&clean, 5));
        assert_eq!(report.cycles_with_remnants, 2);
        assert_eq!(report.cycles_with_own_remnant, 1);
        assert!((report.rate() - 0.5).abs() < f64::EPSILON);
        assert_eq!(ScanReport::new(AllocatorMode::Secure).rate(), 0.0);
    }
}
