//! RFC 9162 Merkle trees, shared by the container format (a tree over
//! segments) and the audit log (a tree over events).
//!
//! - [`leaf_hash`], [`node_hash`], [`empty_root`]: the hashes of §2.1.1;
//! - [`CompactTree`]: an append-only tree held as its right border, giving
//!   the head after each append in O(log n) without storing nodes;
//! - [`root_of`]: `MTH` of any run of stored leaf hashes;
//! - [`StoredTree`]: every leaf hash plus cached chunk heads, for proofs at
//!   any size in O(n / 256 + 256 log n) hashes instead of O(n);
//! - [`inclusion_proof`] / [`verify_inclusion`]: §2.1.3;
//! - [`consistency_proof`] / [`verify_consistency`]: §2.1.4.
//!
//! Everything works on leaf hashes; the caller decides what a leaf's entry
//! bytes are. Proofs are at most `ceil(log2 n) + 1` hashes long.
//!
//! ```
//! use seqshield_merkle::*;
//!
//! let leaves: Vec<Hash> = [&b"a"[..], b"b", b"c"].iter().map(|e| leaf_hash(e)).collect();
//! let mut tree = CompactTree::new();
//! tree.push(leaves[0]);
//! tree.push(leaves[1]);
//! let old = tree.root();
//! tree.push(leaves[2]);
//! assert_eq!(tree.root(), root_of(&leaves));
//!
//! let path = inclusion_proof(&leaves, 1)?;
//! assert!(verify_inclusion(&leaves[1], 1, 3, &path, &tree.root()));
//! let proof = consistency_proof(&leaves, 2)?;
//! assert!(verify_consistency(2, 3, &old, &tree.root(), &proof));
//! # Ok::<(), ProofError>(())
//! ```

#![forbid(unsafe_code)]

pub mod compact;
pub mod consistency;
pub mod error;
pub mod hash;
pub mod inclusion;
pub mod range;
pub mod stored;

pub use compact::CompactTree;
pub use consistency::{consistency_proof, verify_consistency};
pub use error::ProofError;
pub use hash::{empty_root, leaf_hash, node_hash, Hash, LEAF_PREFIX, NODE_PREFIX};
pub use inclusion::{inclusion_proof, verify_inclusion};
pub use range::root_of;
pub use stored::{StoredTree, CHUNK_LEAVES};
