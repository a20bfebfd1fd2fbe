//! A tree that keeps every leaf hash, for proofs at any size.
//!
//! Proofs are made of `MTH(D[a:b])` over sub-ranges (RFC 9162 §2.1.3.1,
//! §2.1.4.1), which costs O(b − a) hashes from leaf hashes alone: O(n) per
//! proof. [`StoredTree`] also keeps the head of every complete, aligned
//! chunk of [`CHUNK_LEAVES`] leaves, so the head of a perfect aligned
//! subtree of `2^j ≥ CHUNK_LEAVES` leaves is computed from its
//! `2^j / CHUNK_LEAVES` chunk heads. A proof then costs
//! O(n / CHUNK_LEAVES + CHUNK_LEAVES · log n) hashes, for 32 bytes of
//! memory per chunk.

use crate::compact::CompactTree;
use crate::consistency::consistency_proof_with;
use crate::error::ProofError;
use crate::hash::{empty_root, node_hash, Hash};
use crate::inclusion::inclusion_proof_with;
use crate::range::{root_of, split_point};

/// Leaves per cached chunk head (a power of two).
pub const CHUNK_LEAVES: usize = 256;

/// Every leaf hash, the heads of complete chunks, and the compact tree for
/// the current head.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredTree {
    leaves: Vec<Hash>,
    chunk_heads: Vec<Hash>,
    compact: CompactTree,
}

impl StoredTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// A tree holding `leaves` (leaf hashes), in order.
    pub fn from_leaves(leaves: Vec<Hash>) -> Self {
        let compact = CompactTree::from_leaves(&leaves);
        let chunk_heads = leaves.chunks_exact(CHUNK_LEAVES).map(root_of).collect();
        Self { leaves, chunk_heads, compact }
    }

    /// Appends a leaf hash: O(log n), plus one chunk head every
    /// [`CHUNK_LEAVES`] leaves.
    pub fn push(&mut self, leaf: Hash) {
        self.leaves.push(leaf);
        self.compact.push(leaf);
        if self.leaves.len() % CHUNK_LEAVES == 0 {
            self.chunk_heads.push(root_of(&self.leaves[self.leaves.len() - CHUNK_LEAVES..]));
        }
    }

    /// Number of leaves.
    pub fn len(&self) -> u64 {
        self.leaves.len() as u64
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.leaves.is_empty()
    }

    /// The leaf hashes.
    pub fn leaves(&self) -> &[Hash] {
        &self.leaves
    }

    /// The head of the whole tree, in O(log n).
    pub fn root(&self) -> Hash {
        self.compact.root()
    }

    /// The head of the tree of the first `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Hash, ProofError> {
        let size = self.check_size(size)?;
        Ok(self.range_root(0, size))
    }

    /// `PATH(index, D[size])` (RFC 9162 §2.1.3.1).
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
        let size = self.check_size(size)?;
        let index = usize::try_from(index).unwrap_or(usize::MAX);
        inclusion_proof_with(size, index, &|a, b| self.range_root(a, b))
    }

    /// `PROOF(first, D[second])` (RFC 9162 §2.1.4.1).
    pub fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<Hash>, ProofError> {
        let second = self.check_size(second)?;
        let first = usize::try_from(first).unwrap_or(usize::MAX);
        consistency_proof_with(first, second, &|a, b| self.range_root(a, b))
    }

    fn check_size(&self, size: u64) -> Result<usize, ProofError> {
        match usize::try_from(size) {
            Ok(s) if s <= self.leaves.len() => Ok(s),
            _ => Err(ProofError::SizeBeyondTree { size, len: self.len() }),
        }
    }

    /// `MTH(D[a:b])`, using chunk heads for perfect aligned subtrees.
    fn range_root(&self, a: usize, b: usize) -> Hash {
        let n = b - a;
        match n {
            0 => empty_root(),
            1 => self.leaves[a],
            _ if n <= CHUNK_LEAVES => root_of(&self.leaves[a..b]),
            _ if n.is_power_of_two() && a % n == 0 => root_of(&self.chunk_heads[a / CHUNK_LEAVES..b / CHUNK_LEAVES]),
            _ => {
                let k = split_point(n);
                node_hash(&self.range_root(a, a + k), &self.range_root(a + k, b))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;
    use crate::{consistency_proof, inclusion_proof};

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n as u64).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn cached_proofs_equal_the_reference_on_trees_spanning_many_chunks() {
        let all = leaves(5 * CHUNK_LEAVES + 37);
        let mut tree = StoredTree::new();
        let sizes = [1, 2, 255, 256, 257, 511, 512, 513, 768, 1024, 1025, 1279, 5 * CHUNK_LEAVES + 37];
        for (n, leaf) in all.iter().enumerate() {
            tree.push(*leaf);
            let size = n + 1;
            assert_eq!(tree.root(), root_of(&all[..size]));
            if !sizes.contains(&size) {
                continue;
            }
            assert_eq!(tree, StoredTree::from_leaves(all[..size].to_vec()));
            for s in sizes.iter().copied().filter(|&s| s <= size) {
                let d = &all[..s];
                assert_eq!(tree.root_at(s as u64).unwrap(), root_of(d), "root at {s}");
                for i in [0, 1, s / 3, s / 2, s - 1, s.saturating_sub(CHUNK_LEAVES)] {
                    if i < s {
                        let want = inclusion_proof(d, i).unwrap();
                        assert_eq!(tree.inclusion_proof(i as u64, s as u64).unwrap(), want, "PATH({i}, D[{s}])");
                    }
                }
                for m in sizes.iter().copied().filter(|&m| m <= s).chain([0, s / 2]) {
                    let want = consistency_proof(d, m).unwrap();
                    assert_eq!(tree.consistency_proof(m as u64, s as u64).unwrap(), want, "PROOF({m}, D[{s}])");
                }
            }
        }
    }

    #[test]
    fn sizes_beyond_the_tree_are_refused() {
        let tree = StoredTree::from_leaves(leaves(10));
        assert_eq!(tree.root_at(11), Err(ProofError::SizeBeyondTree { size: 11, len: 10 }));
        assert!(tree.inclusion_proof(0, 11).is_err());
        assert!(tree.inclusion_proof(10, 10).is_err());
        assert!(tree.consistency_proof(11, 10).is_err());
        assert!(tree.consistency_proof(3, 11).is_err());
        assert_eq!(tree.root_at(0).unwrap(), empty_root());
    }
}
