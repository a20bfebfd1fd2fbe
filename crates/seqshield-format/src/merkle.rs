//! RFC 9162 Merkle tree hashing over segments.
//!
//! Leaf hash `SHA-256(0x00 ‖ d)`, node hash `SHA-256(0x01 ‖ l ‖ r)`, and the
//! tree shape of RFC 9162 §2.1.1 (split at the largest power of two smaller
//! than the leaf count). A segment's leaf data is its authentication tag plus
//! its position (see [`segment_leaf`] and `docs/format.md` §5 for why that is
//! enough).
//!
//! The tree itself is `seqshield-merkle`, shared with the audit log; this
//! module re-exports it under the names the format has always used.

pub use seqshield_merkle::CompactTree as MerkleBuilder;
pub use seqshield_merkle::{
    empty_root, leaf_hash, node_hash, root_of, verify_inclusion, Hash, LEAF_PREFIX, NODE_PREFIX,
};

/// An inclusion proof for leaf `index` (RFC 9162 §2.1.3.1 `PATH`).
///
/// # Panics
///
/// If `index` is not below `leaves.len()`.
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Vec<Hash> {
    seqshield_merkle::inclusion_proof(leaves, index).expect("leaf index out of range")
}

/// Length of a segment's leaf data.
pub const SEGMENT_LEAF_LEN: usize = 8 + 1 + 4 + 16;

/// The leaf hash of a segment: `index:u64 ‖ last:u8 ‖ ciphertext_len:u32 ‖ tag[16]`.
pub fn segment_leaf(index: u64, last: bool, ciphertext_len: u32, tag: &[u8; 16]) -> Hash {
    let mut d = [0u8; SEGMENT_LEAF_LEN];
    d[..8].copy_from_slice(&index.to_be_bytes());
    d[8] = u8::from(last);
    d[9..13].copy_from_slice(&ciphertext_len.to_be_bytes());
    d[13..].copy_from_slice(tag);
    leaf_hash(&d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The leaves and roots of the Certificate Transparency reference test
    /// suite (`merkle_tree_test.cc`), which RFC 9162 inherits.
    const CT_LEAVES: [&str; 8] =
        ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"];
    const CT_ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    #[test]
    fn matches_certificate_transparency_vectors() {
        let leaves: Vec<Hash> = CT_LEAVES.iter().map(|l| leaf_hash(&hex::decode(l).unwrap())).collect();
        let mut b = MerkleBuilder::new();
        assert_eq!(hex::encode(b.root()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        for (i, leaf) in leaves.iter().enumerate() {
            b.push(*leaf);
            assert_eq!(hex::encode(b.root()), CT_ROOTS[i], "tree of size {}", i + 1);
            assert_eq!(hex::encode(root_of(&leaves[..=i])), CT_ROOTS[i]);
        }
    }

    #[test]
    fn builder_matches_recursive_definition_and_proofs_verify() {
        let leaves: Vec<Hash> = (0u32..70).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut b = MerkleBuilder::new();
        for n in 1..=leaves.len() {
            b.push(leaves[n - 1]);
            let root = root_of(&leaves[..n]);
            assert_eq!(b.root(), root, "size {n}");
            for i in 0..n {
                let proof = inclusion_proof(&leaves[..n], i);
                assert!(verify_inclusion(&leaves[i], i as u64, n as u64, &proof, &root), "leaf {i} of {n}");
                assert!(!verify_inclusion(&leaves[(i + 1) % n], i as u64, n as u64, &proof, &root) || n == 1);
            }
        }
    }
}
