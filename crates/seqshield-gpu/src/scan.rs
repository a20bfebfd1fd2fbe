//! The remnant scanner's pure parts.
//!
//! A writer process fills device memory with a [`RemnantPattern`] (a 64-byte
//! marker followed by a synthetic DNA sequence) and exits, with or without
//! the secure allocator. A reader process then allocates as much memory as
//! it can, copies it to the host and runs [`find_remnants`] over it. Each
//! cycle is recorded in a [`ScanReport`], whose
//! [`rate`](ScanReport::rate) is the share of cycles where any marker
//! survived.

mod pattern;
mod report;
pub mod run;

pub use pattern::{RemnantPattern, MAGIC, MARKER_LEN, MAX_BODY_LEN};
pub use report::{AllocatorMode, ScanReport};
pub use run::{read_remnants, write_pattern, ReadOutcome, ReaderPlan, ScanError, WriterPlan};

/// The most remnants [`find_remnants`] records in detail; later ones are
/// only counted.
pub const MAX_SAMPLED_HITS: usize = 64;

/// One marker found in scanned memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Remnant {
    /// Byte offset of the marker in the scanned memory.
    pub offset: usize,
    /// The writer that left it.
    pub writer: u32,
    /// The cycle it was written in.
    pub cycle: u64,
    /// How many bytes of its DNA body follow intact.
    pub body_bytes_intact: usize,
}

/// What one scan of memory found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct ScanHits {
    /// Valid markers found.
    pub hits: u64,
    /// The first [`MAX_SAMPLED_HITS`] of them.
    pub sample: Vec<Remnant>,
}

impl ScanHits {
    /// Whether a marker from `cycle` is among the sampled hits.
    pub fn has_cycle(&self, cycle: u64) -> bool {
        self.sample.iter().any(|r| r.cycle == cycle)
    }

    /// Adds the hits of a later window that starts at byte `base` of the
    /// scanned memory.
    pub fn absorb(&mut self, other: ScanHits, base: usize) {
        self.hits = self.hits.saturating_add(other.hits);
        let room = MAX_SAMPLED_HITS.saturating_sub(self.sample.len());
        self.sample.extend(other.sample.into_iter().take(room).map(|mut r| {
            r.offset = r.offset.saturating_add(base);
            r
        }));
    }
}

/// Finds every valid marker of run `run_id` in `memory` (a host copy of
/// device memory). Markers of other runs, and byte strings that merely
/// contain [`MAGIC`] without a valid check word, are ignored.
pub fn find_remnants(memory: &[u8], run_id: u64) -> ScanHits {
    find_remnants_before(memory, run_id, memory.len())
}

/// [`find_remnants`], counting only markers that start before byte `end`
/// (the rest of `memory` is an overlap read so that a marker crossing the
/// end of a window is still parsed whole).
pub fn find_remnants_before(memory: &[u8], run_id: u64, end: usize) -> ScanHits {
    let mut found = ScanHits::default();
    for offset in memchr::memmem::find_iter(memory, &MAGIC).take_while(|&at| at < end) {
        let Some(pattern) = memory.get(offset..).and_then(|rest| RemnantPattern::parse_marker(rest, run_id)) else {
            continue;
        };
        found.hits += 1;
        if found.sample.len() < MAX_SAMPLED_HITS {
            let body = memory.get(offset + MARKER_LEN..).unwrap_or_default();
            found.sample.push(Remnant {
                offset,
                writer: pattern.writer(),
                cycle: pattern.cycle(),
                body_bytes_intact: pattern.intact_body_prefix(body),
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_marker_in_noise_and_identifies_writer_and_cycle() {
        let p = RemnantPattern::new(42, 7, 9, 1000).unwrap();
        let mut mem = vec![0u8; 1 << 16];
        crate::prng::fill(5, &mut mem);
        let bytes = p.to_bytes();
        mem[1234..1234 + bytes.len()].copy_from_slice(&bytes);
        let hits = find_remnants(&mem, 42);
        assert_eq!(hits.hits, 1);
        let r = hits.sample[0];
        assert_eq!((r.offset, r.writer, r.cycle), (1234, 9, 7));
        assert_eq!(r.body_bytes_intact, 1000);
        assert!(hits.has_cycle(7));
    }

    #[test]
    fn ignores_other_runs_and_zeroed_memory() {
        let p = RemnantPattern::new(1, 0, 0, 64).unwrap();
        let mut mem = p.to_bytes();
        assert_eq!(find_remnants(&mem, 2).hits, 0);
        mem.fill(0);
        assert_eq!(find_remnants(&mem, 1).hits, 0);
    }

    /// A marker whose check word was damaged must not count as a remnant.
    #[test]
    fn corrupted_marker_is_rejected() {
        let p = RemnantPattern::new(3, 4, 5, 64).unwrap();
        let mut mem = p.to_bytes();
        mem[30] ^= 1;
        assert_eq!(find_remnants(&mem, 3).hits, 0);
    }

    #[test]
    fn truncated_body_counts_intact_prefix() {
        let p = RemnantPattern::new(3, 4, 5, 256).unwrap();
        let mut mem = p.to_bytes();
        mem[MARKER_LEN + 100] = b'N';
        let hits = find_remnants(&mem, 3);
        assert_eq!(hits.sample[0].body_bytes_intact, 100);
    }

    #[test]
    fn repeated_fill_is_found_many_times() {
        let p = RemnantPattern::new(8, 1, 2, 192).unwrap();
        let mut mem = vec![0u8; 4096];
        p.fill_repeating(&mut mem);
        assert_eq!(find_remnants(&mem, 8).hits, 4096 / 256);
    }
}
