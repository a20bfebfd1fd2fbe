//! The append-only tree in O(log n) memory: its right border.
//!
//! A tree of `n` leaves is, left to right, a sequence of perfect subtrees
//! whose sizes are the binary digits of `n` (RFC 9162 §2.1.1 splits at the
//! largest power of two below `n`, so the left part is always perfect).
//! Keeping only the roots of those subtrees (the "frontier") is enough to
//! append a leaf and to compute the tree head, each in O(log n) hashes,
//! without storing any other node.

use crate::hash::{empty_root, node_hash, Hash};

/// A Merkle tree that can only grow, held as its frontier.
///
/// `push` costs one leaf plus, amortised, one node hash; `root` costs at most
/// `log2(n)` node hashes. Memory is at most 64 hashes for any `u64` size.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactTree {
    /// Roots of perfect subtrees, left to right, with strictly decreasing
    /// heights; the heights are the set bits of `count`.
    stack: Vec<(u32, Hash)>,
    count: u64,
}

impl CompactTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// A tree holding `leaves` (leaf hashes), in order.
    pub fn from_leaves<'a>(leaves: impl IntoIterator<Item = &'a Hash>) -> Self {
        let mut t = Self::new();
        for leaf in leaves {
            t.push(*leaf);
        }
        t
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut height = 0u32;
        let mut h = leaf;
        while let Some(&(top_height, top)) = self.stack.last() {
            if top_height != height {
                break;
            }
            self.stack.pop();
            h = node_hash(&top, &h);
            height += 1;
        }
        self.stack.push((height, h));
        self.count += 1;
    }

    /// Number of leaves pushed.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether no leaf was pushed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The tree head (RFC 9162 §2.1.1 `MTH`) of the leaves pushed so far.
    pub fn root(&self) -> Hash {
        let mut iter = self.stack.iter().rev();
        let Some(&(_, mut h)) = iter.next() else {
            return empty_root();
        };
        for (_, left) in iter {
            h = node_hash(left, &h);
        }
        h
    }

    /// The roots of the perfect subtrees that make up the tree, left to
    /// right (largest first). A witness can keep these instead of the tree.
    pub fn frontier(&self) -> impl ExactSizeIterator<Item = &Hash> + '_ {
        self.stack.iter().map(|(_, h)| h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;

    #[test]
    fn frontier_sizes_are_the_binary_digits_of_the_size() {
        let mut t = CompactTree::new();
        for n in 1u64..=300 {
            t.push(leaf_hash(&n.to_be_bytes()));
            assert_eq!(t.len(), n);
            assert_eq!(t.frontier().len(), n.count_ones() as usize, "size {n}");
        }
    }

    #[test]
    fn empty_tree_has_the_empty_root() {
        let t = CompactTree::new();
        assert!(t.is_empty());
        assert_eq!(t.root(), empty_root());
        assert_eq!(t.frontier().len(), 0);
    }
}
