//! Merkle inclusion proofs: RFC 9162 §2.1.3.1 (`PATH`) and §2.1.3.2.

use crate::error::ProofError;
use crate::hash::{node_hash, Hash};
use crate::range::{root_of, split_point};

/// The inclusion proof (audit path) of leaf `index` in the tree whose leaves
/// are `leaves`: RFC 9162 §2.1.3.1 `PATH(index, D[n])`, `n = leaves.len()`.
///
/// It has at most `ceil(log2(n))` hashes. Computing it costs O(n) node
/// hashes, since each element is the `MTH` of a sub-range.
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Result<Vec<Hash>, ProofError> {
    inclusion_proof_with(leaves.len(), index, &|a, b| root_of(&leaves[a..b]))
}

/// `PATH(index, D[size])` where `mth(a, b)` is `MTH(D[a:b])`: lets a
/// caller with cached subtree heads answer faster ([`StoredTree`](crate::StoredTree)).
pub(crate) fn inclusion_proof_with(
    size: usize,
    index: usize,
    mth: &dyn Fn(usize, usize) -> Hash,
) -> Result<Vec<Hash>, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index: index as u64, size: size as u64 });
    }
    let mut path = Vec::new();
    path_into(0, size, index, mth, &mut path);
    Ok(path)
}

/// `PATH(m, D[start:start+n])`, appending to `out` in the order of the RFC
/// (leaf level first).
fn path_into(start: usize, n: usize, m: usize, mth: &dyn Fn(usize, usize) -> Hash, out: &mut Vec<Hash>) {
    if n == 1 {
        // PATH(0, {d(0)}) = {}
        return;
    }
    let k = split_point(n);
    if m < k {
        // PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n])
        path_into(start, k, m, mth, out);
        out.push(mth(start + k, start + n));
    } else {
        // PATH(m, D[n]) = PATH(m - k, D[k:n]) : MTH(D[0:k])
        path_into(start + k, n - k, m - k, mth, out);
        out.push(mth(start, start + k));
    }
}

/// Verifies that `leaf` (a leaf hash) is leaf `index` of the tree of `size`
/// leaves whose head is `root`, given its inclusion proof: RFC 9162 §2.1.3.2,
/// step by step.
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
    // 1. leaf_index >= tree_size fails.
    if index >= size {
        return false;
    }
    // 2. fn = leaf_index, sn = tree_size - 1.
    let (mut fn_, mut sn) = (index, size - 1);
    // 3. r = hash.
    let mut r = *leaf;
    // 4. For each p in inclusion_path:
    for p in proof {
        // a. sn == 0: the path is too long.
        if sn == 0 {
            return false;
        }
        // b. LSB(fn) set, or fn == sn: p is a left sibling.
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
        // c. Shift once.
        fn_ >>= 1;
        sn >>= 1;
    }
    // 5. sn must be 0 and r the root.
    sn == 0 && &r == root
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;

    fn leaves(n: u32) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    /// The exact proof length: the bits below the point where the paths to
    /// `index` and `size - 1` diverge, plus the left siblings above it.
    fn expected_len(index: u64, size: u64) -> usize {
        let inner = 64 - (index ^ (size - 1)).leading_zeros();
        inner as usize + (index >> inner).count_ones() as usize
    }

    #[test]
    fn every_proof_verifies_has_the_expected_length_and_binds_its_position() {
        let all = leaves(130);
        for n in 1..=all.len() {
            let d = &all[..n];
            let root = root_of(d);
            let bound = (usize::BITS - (n - 1).leading_zeros()) as usize; // ceil(log2 n)
            for i in 0..n {
                let p = inclusion_proof(d, i).unwrap();
                assert_eq!(p.len(), expected_len(i as u64, n as u64), "leaf {i} of {n}");
                assert!(p.len() <= bound, "O(log n): leaf {i} of {n}");
                assert!(verify_inclusion(&d[i], i as u64, n as u64, &p, &root), "leaf {i} of {n}");
                if n > 1 {
                    let other = (i + 1) % n;
                    assert!(!verify_inclusion(&d[other], i as u64, n as u64, &p, &root));
                    assert!(!verify_inclusion(&d[i], other as u64, n as u64, &p, &root));
                }
            }
        }
    }

    #[test]
    fn out_of_range_leaves_have_no_proof() {
        assert_eq!(inclusion_proof(&[], 0), Err(ProofError::IndexOutOfRange { index: 0, size: 0 }));
        assert!(inclusion_proof(&leaves(3), 3).is_err());
        assert!(!verify_inclusion(&[0; 32], 0, 0, &[], &[0; 32]));
    }

    #[test]
    fn a_proof_with_an_extra_or_missing_hash_fails() {
        let d = leaves(11);
        let root = root_of(&d);
        let p = inclusion_proof(&d, 6).unwrap();
        let mut longer = p.clone();
        longer.push(root);
        assert!(!verify_inclusion(&d[6], 6, 11, &longer, &root));
        assert!(!verify_inclusion(&d[6], 6, 11, &p[..p.len() - 1], &root));
    }
}
