//! RFC 9162 Merkle tree hashing over segments.
//!
//! Leaf hash `SHA-256(0x00 ‖ d)`, node hash `SHA-256(0x01 ‖ l ‖ r)`, and the
//! tree shape of RFC 9162 §2.1.1 (split at the largest power of two smaller
//! than the leaf count). A segment's leaf data is its authentication tag plus
//! its position (see [`segment_leaf`] and `docs/format.md` §5 for why that is
//! enough).

use aws_lc_rs::digest;

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// Domain-separation prefix of leaf hashes (RFC 9162 §2.1.1).
pub const LEAF_PREFIX: u8 = 0x00;
/// Domain-separation prefix of interior node hashes (RFC 9162 §2.1.1).
pub const NODE_PREFIX: u8 = 0x01;

/// `SHA-256(0x00 ‖ data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(&[LEAF_PREFIX]);
    ctx.update(data);
    to_hash(ctx.finish())
}

/// `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut buf = [0u8; 65];
    buf[0] = NODE_PREFIX;
    buf[1..33].copy_from_slice(left);
    buf[33..].copy_from_slice(right);
    to_hash(digest::digest(&digest::SHA256, &buf))
}

/// The root of an empty tree: `SHA-256("")` (RFC 9162 §2.1.1).
pub fn empty_root() -> Hash {
    to_hash(digest::digest(&digest::SHA256, b""))
}

fn to_hash(d: digest::Digest) -> Hash {
    d.as_ref().try_into().expect("SHA-256 digests are 32 bytes")
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

/// Computes a Merkle tree head from leaf hashes pushed in order, in
/// O(log n) memory.
#[derive(Clone, Debug, Default)]
pub struct MerkleBuilder {
    /// Roots of perfect subtrees, left to right, with strictly decreasing
    /// sizes; the sizes are the binary digits of `count`.
    stack: Vec<(u32, Hash)>,
    count: u64,
}

impl MerkleBuilder {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut level = 0u32;
        let mut h = leaf;
        while let Some(&(top_level, top)) = self.stack.last() {
            if top_level != level {
                break;
            }
            self.stack.pop();
            h = node_hash(&top, &h);
            level += 1;
        }
        self.stack.push((level, h));
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

    /// The tree head (RFC 9162 `MTH`) of the leaves pushed so far.
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
}

/// The tree head of `leaves` by the recursive definition of RFC 9162
/// §2.1.1. Reference implementation for tests and small trees.
pub fn root_of(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = largest_power_of_two_below(n);
            node_hash(&root_of(&leaves[..k]), &root_of(&leaves[k..]))
        }
    }
}

fn largest_power_of_two_below(n: usize) -> usize {
    debug_assert!(n > 1);
    1 << (usize::BITS - (n - 1).leading_zeros() - 1)
}

/// An inclusion proof for leaf `index` (RFC 9162 §2.1.3.1 `PATH`).
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Vec<Hash> {
    assert!(index < leaves.len(), "leaf index out of range");
    let n = leaves.len();
    if n == 1 {
        return Vec::new();
    }
    let k = largest_power_of_two_below(n);
    if index < k {
        let mut p = inclusion_proof(&leaves[..k], index);
        p.push(root_of(&leaves[k..]));
        p
    } else {
        let mut p = inclusion_proof(&leaves[k..], index - k);
        p.push(root_of(&leaves[..k]));
        p
    }
}

/// Verifies an inclusion proof (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && &r == root
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
