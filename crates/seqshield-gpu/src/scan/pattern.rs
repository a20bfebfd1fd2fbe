//! The pattern a scanner writer leaves in device memory.
//!
//! Layout (little-endian):
//!
//! | bytes  | field                                        |
//! |--------|----------------------------------------------|
//! | 0..16  | [`MAGIC`]                                    |
//! | 16..20 | writer id                                    |
//! | 20..24 | reserved, zero                               |
//! | 24..32 | cycle                                        |
//! | 32..40 | run id                                       |
//! | 40..48 | body length                                  |
//! | 48..56 | check word over the fields above             |
//! | 56..64 | reserved, zero                               |
//! | 64..   | body: synthetic DNA (`ACGT`) seeded by the header |

use crate::prng;

/// Opens every marker. Contains bytes that never occur in DNA text, so it
/// cannot be mistaken for a sequence.
pub const MAGIC: [u8; 16] = *b"\x00SQSH-REMNANT\xfe\x01\xff";

/// Length of the marker (header) before the DNA body.
pub const MARKER_LEN: usize = 64;

/// The longest DNA body a pattern carries (16 MiB): a bound on what one
/// pattern allocates on the host.
pub const MAX_BODY_LEN: usize = 16 << 20;

const BASES: [u8; 4] = *b"ACGT";

/// A recognisable pattern: which run, cycle and writer left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemnantPattern {
    run_id: u64,
    cycle: u64,
    writer: u32,
    body_len: usize,
}

impl RemnantPattern {
    /// A pattern, or `None` if `body_len` exceeds [`MAX_BODY_LEN`].
    pub fn new(run_id: u64, cycle: u64, writer: u32, body_len: usize) -> Option<Self> {
        (body_len <= MAX_BODY_LEN).then_some(Self { run_id, cycle, writer, body_len })
    }

    /// The writer id.
    pub fn writer(&self) -> u32 {
        self.writer
    }

    /// The cycle.
    pub fn cycle(&self) -> u64 {
        self.cycle
    }

    /// Marker plus body length in bytes.
    pub fn len(&self) -> usize {
        MARKER_LEN + self.body_len
    }

    /// Always false: the marker alone is 64 bytes.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The marker followed by the DNA body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![0u8; self.len()];
        self.write_into(&mut out);
        out
    }

    /// Fills `buf` with back-to-back copies of the pattern (the last one
    /// truncated), as a writer does to cover a whole allocation.
    pub fn fill_repeating(&self, buf: &mut [u8]) {
        let one = self.to_bytes();
        for chunk in buf.chunks_mut(one.len()) {
            chunk.copy_from_slice(&one[..chunk.len()]);
        }
    }

    /// Parses a marker at the start of `bytes` and checks it belongs to
    /// `run_id` and its check word is valid.
    pub(super) fn parse_marker(bytes: &[u8], run_id: u64) -> Option<Self> {
        let marker = bytes.get(..MARKER_LEN)?;
        if marker[..16] != MAGIC {
            return None;
        }
        let u64_at = |at: usize| marker.get(at..at + 8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
        let writer = u32::from_le_bytes(marker.get(16..20)?.try_into().ok()?);
        let pattern = Self::new(u64_at(32)?, u64_at(24)?, writer, usize::try_from(u64_at(40)?).ok()?)?;
        (pattern.run_id == run_id && u64_at(48)? == pattern.check_word()).then_some(pattern)
    }

    /// How many leading bytes of `body` match this pattern's DNA body.
    pub(super) fn intact_body_prefix(&self, body: &[u8]) -> usize {
        let seed = self.body_seed();
        body.iter().take(self.body_len).enumerate().take_while(|&(i, &b)| b == base_at(seed, i)).count()
    }

    fn write_into(&self, out: &mut [u8]) {
        let (marker, body) = out.split_at_mut(MARKER_LEN);
        marker[..16].copy_from_slice(&MAGIC);
        marker[16..20].copy_from_slice(&self.writer.to_le_bytes());
        marker[24..32].copy_from_slice(&self.cycle.to_le_bytes());
        marker[32..40].copy_from_slice(&self.run_id.to_le_bytes());
        marker[40..48].copy_from_slice(&(self.body_len as u64).to_le_bytes());
        marker[48..56].copy_from_slice(&self.check_word().to_le_bytes());
        let seed = self.body_seed();
        for (i, b) in body.iter_mut().enumerate() {
            *b = base_at(seed, i);
        }
    }

    fn check_word(&self) -> u64 {
        let fields = self.cycle ^ (u64::from(self.writer) << 32).rotate_left(7) ^ self.body_len as u64;
        prng::word(self.run_id, fields)
    }

    fn body_seed(&self) -> u64 {
        prng::word(self.run_id ^ u64::from(self.writer), self.cycle)
    }
}

/// Base `i` of the body: two bits of the generator per base.
fn base_at(seed: u64, i: usize) -> u8 {
    let word = prng::word(seed, (i / 32) as u64);
    BASES[((word >> (2 * (i % 32))) & 3) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_dna() {
        let p = RemnantPattern::new(1, 2, 3, 500).unwrap();
        assert!(p.to_bytes()[MARKER_LEN..].iter().all(|b| b"ACGT".contains(b)));
    }

    #[test]
    fn round_trips_through_parse() {
        let p = RemnantPattern::new(11, 12, 13, 99).unwrap();
        assert_eq!(RemnantPattern::parse_marker(&p.to_bytes(), 11), Some(p));
    }

    #[test]
    fn body_length_is_bounded() {
        assert!(RemnantPattern::new(0, 0, 0, MAX_BODY_LEN + 1).is_none());
    }
}
