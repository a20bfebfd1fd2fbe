//! The counter-based generator behind the random fill, on the CPU.
//!
//! Word `i` of a fill with `seed` is `splitmix64(seed + (i + 1) * GOLDEN)`,
//! stored little-endian at byte offset `8 * i`; a final partial word keeps
//! its low bytes. The PTX kernel in `cuda/fill_random.ptx` computes the same
//! function per thread, so a GPU test can compare its bytes with [`fill`].
//!
//! This is **not** a cryptographic generator. Its job is to overwrite memory
//! before use with bytes that carry nothing from earlier users; the seed is
//! drawn from the operating system per pool.

/// SplitMix64's increment (2^64 divided by the golden ratio).
pub const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function (Steele, Lea and Flood, "Fast splittable
/// pseudorandom number generators", OOPSLA 2014).
#[must_use]
pub const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Word `index` of the stream for `seed`.
#[must_use]
pub const fn word(seed: u64, index: u64) -> u64 {
    mix(seed.wrapping_add(index.wrapping_add(1).wrapping_mul(GOLDEN)))
}

/// Fills `buf` exactly as the GPU kernel fills a block with `seed`.
pub fn fill(seed: u64, buf: &mut [u8]) {
    for (i, chunk) in (0u64..).zip(buf.chunks_mut(8)) {
        let bytes = word(seed, i).to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guards the constants the PTX kernel repeats: the first SplitMix64
    /// outputs for state 0 (the published reference sequence).
    #[test]
    fn matches_reference_splitmix64_sequence() {
        assert_eq!(word(0, 0), 0xE220_A839_7B1D_CDAF);
        assert_eq!(word(0, 1), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(word(0, 2), 0x06C4_5D18_8009_454F);
    }

    #[test]
    fn tail_is_prefix_of_full_word() {
        let mut full = [0u8; 16];
        fill(7, &mut full);
        let mut short = [0u8; 13];
        fill(7, &mut short);
        assert_eq!(&full[..13], &short[..]);
    }

    #[test]
    fn different_seeds_differ() {
        let mut a = [0u8; 64];
        let mut b = [0u8; 64];
        fill(1, &mut a);
        fill(2, &mut b);
        assert_ne!(a, b);
    }
}
