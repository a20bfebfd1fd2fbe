//! How an object of a given size is cut into segments and parts, and how
//! part roots combine into the object's Merkle root.
//!
//! A part is `part_segments` consecutive segments, a power of two, so every
//! full part is a complete subtree of the object's RFC 9162 tree and the
//! last (possibly short) part is the right-most subtree. The object's root
//! is therefore the same "largest power of two below n" recursion applied
//! to the part roots as interior nodes: a receiver that has verified each
//! part's subtree root can check the whole object from `part_count` hashes.

use aws_lc_rs::digest;

/// Tag bytes after each segment.
pub const TAG_LEN: u64 = 16;

/// The segment and part layout of one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Plaintext bytes.
    pub size: u64,
    /// Plaintext bytes per segment.
    pub segment_size: u64,
    /// Segments per part (a power of two).
    pub part_segments: u64,
}

impl Geometry {
    /// The layout; `segment_size` ≥ 1 and `part_segments` a power of two.
    pub fn new(size: u64, segment_size: u32, part_segments: u32) -> Self {
        debug_assert!(segment_size > 0 && part_segments.is_power_of_two());
        Self { size, segment_size: u64::from(segment_size), part_segments: u64::from(part_segments) }
    }

    /// Segments in the object (an empty object has one empty segment).
    pub fn segments(&self) -> u64 {
        self.size.div_ceil(self.segment_size).max(1)
    }

    /// Parts in the object (≥ 1).
    pub fn parts(&self) -> u64 {
        self.segments().div_ceil(self.part_segments)
    }

    /// First segment of `part`, and how many it holds.
    pub fn part_segments_of(&self, part: u64) -> (u64, u64) {
        let first = part * self.part_segments;
        (first, self.part_segments.min(self.segments().saturating_sub(first)))
    }

    /// Plaintext bytes of `part`.
    pub fn part_plaintext_len(&self, part: u64) -> u64 {
        let start = part * self.part_segments * self.segment_size;
        let end = ((part + 1) * self.part_segments * self.segment_size).min(self.size);
        end.saturating_sub(start)
    }

    /// Stored bytes of `part` (plaintext or ciphertext, plus one tag per segment).
    pub fn part_wire_len(&self, part: u64) -> u64 {
        let (_, count) = self.part_segments_of(part);
        self.part_plaintext_len(part) + count * TAG_LEN
    }

    /// The largest a part can be.
    pub fn max_part_wire_len(&self) -> u64 {
        self.part_segments * (self.segment_size + TAG_LEN)
    }

    /// Plaintext offset where `part` starts.
    pub fn part_offset(&self, part: u64) -> u64 {
        part * self.part_segments * self.segment_size
    }

    /// Stored bytes of the whole segment run.
    pub fn wire_len(&self) -> u64 {
        self.size + self.segments() * TAG_LEN
    }
}

/// The object's Merkle root from its parts' subtree roots, in order.
pub fn combine_part_roots(roots: &[[u8; 32]]) -> [u8; 32] {
    match roots.len() {
        0 => digest::digest(&digest::SHA256, b"").as_ref().try_into().expect("32 bytes"),
        1 => roots[0],
        n => {
            let k = largest_power_of_two_below(n);
            let (l, r) = (combine_part_roots(&roots[..k]), combine_part_roots(&roots[k..]));
            let mut ctx = digest::Context::new(&digest::SHA256);
            ctx.update(&[1]);
            ctx.update(&l);
            ctx.update(&r);
            ctx.finish().as_ref().try_into().expect("32 bytes")
        }
    }
}

fn largest_power_of_two_below(n: usize) -> usize {
    debug_assert!(n > 1);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_the_object_exactly() {
        for size in [0u64, 1, 1023, 1024, 1025, 8191, 8192, 8193, 100_000] {
            let g = Geometry::new(size, 1024, 4);
            let total: u64 = (0..g.parts()).map(|p| g.part_plaintext_len(p)).sum();
            assert_eq!(total, size);
            let segs: u64 = (0..g.parts()).map(|p| g.part_segments_of(p).1).sum();
            assert_eq!(segs, g.segments());
            let wire: u64 = (0..g.parts()).map(|p| g.part_wire_len(p)).sum();
            assert_eq!(wire, g.wire_len());
            assert!((0..g.parts()).all(|p| g.part_wire_len(p) <= g.max_part_wire_len()));
        }
        assert_eq!(Geometry::new(0, 1024, 4).parts(), 1);
        assert_eq!(Geometry::new(0, 1024, 4).part_wire_len(0), 16);
    }

    #[test]
    fn powers_of_two() {
        assert_eq!(largest_power_of_two_below(2), 1);
        assert_eq!(largest_power_of_two_below(3), 2);
        assert_eq!(largest_power_of_two_below(4), 2);
        assert_eq!(largest_power_of_two_below(5), 4);
        assert_eq!(largest_power_of_two_below(1025), 1024);
    }
}
