//! The tree head of any run of stored leaf hashes.
//!
//! Proofs (RFC 9162 §2.1.3.1, §2.1.4.1) are made of `MTH(D[a:b])` for
//! sub-ranges of the leaves; [`root_of`] computes one from the stored leaf
//! hashes in O(b − a) hashes and O(log(b − a)) memory.

use crate::compact::CompactTree;
use crate::hash::Hash;

/// `MTH(leaves)` (RFC 9162 §2.1.1) of a run of leaf hashes; pass a sub-slice
/// for `MTH(D[a:b])`.
pub fn root_of(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => crate::hash::empty_root(),
        [one] => *one,
        _ => CompactTree::from_leaves(leaves).root(),
    }
}

/// The largest power of two strictly smaller than `n` (`k` in RFC 9162
/// §2.1.1). Requires `n > 1`.
pub(crate) fn split_point(n: usize) -> usize {
    debug_assert!(n > 1);
    1 << (usize::BITS - (n - 1).leading_zeros() - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::{empty_root, leaf_hash, node_hash};

    /// RFC 9162 §2.1.1 as written: the recursive definition.
    fn mth_recursive(d: &[Hash]) -> Hash {
        match d.len() {
            0 => empty_root(),
            1 => d[0],
            n => {
                let k = split_point(n);
                node_hash(&mth_recursive(&d[..k]), &mth_recursive(&d[k..]))
            }
        }
    }

    #[test]
    fn split_point_is_the_largest_power_of_two_below() {
        for (n, k) in [(2, 1), (3, 2), (4, 2), (5, 4), (8, 4), (9, 8), (1 << 20, 1 << 19), ((1 << 20) + 1, 1 << 20)] {
            assert_eq!(split_point(n), k, "n = {n}");
        }
    }

    #[test]
    fn compact_root_matches_the_recursive_definition_on_every_range() {
        let leaves: Vec<Hash> = (0u32..40).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        for a in 0..leaves.len() {
            for b in a..=leaves.len() {
                assert_eq!(root_of(&leaves[a..b]), mth_recursive(&leaves[a..b]), "D[{a}:{b}]");
            }
        }
    }
}
