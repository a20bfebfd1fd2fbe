//! Merkle consistency proofs: RFC 9162 §2.1.4.1 (`PROOF`) and §2.1.4.2.
//!
//! A consistency proof shows that the tree of the first `m` leaves is a
//! prefix of the tree of `n` leaves: the log only appended.

use crate::error::ProofError;
use crate::hash::{empty_root, node_hash, Hash};
use crate::range::{root_of, split_point};

/// The consistency proof between the tree of the first `first` leaves and
/// the tree of all of `leaves`: RFC 9162 §2.1.4.1 `PROOF(first, D[n])`.
///
/// The RFC defines it for `0 < first < n`; for `first == n` and for
/// `first == 0` the proof is empty (see [`verify_consistency`] for what
/// such a proof proves). It has at most `ceil(log2(n)) + 1` hashes.
pub fn consistency_proof(leaves: &[Hash], first: usize) -> Result<Vec<Hash>, ProofError> {
    consistency_proof_with(first, leaves.len(), &|a, b| root_of(&leaves[a..b]))
}

/// `PROOF(first, D[second])` where `mth(a, b)` is `MTH(D[a:b])`.
pub(crate) fn consistency_proof_with(
    first: usize,
    second: usize,
    mth: &dyn Fn(usize, usize) -> Hash,
) -> Result<Vec<Hash>, ProofError> {
    if first > second {
        return Err(ProofError::SizesOutOfOrder { first: first as u64, second: second as u64 });
    }
    let mut proof = Vec::new();
    if first > 0 && first < second {
        // PROOF(m, D[n]) = SUBPROOF(m, D[n], true)
        subproof_into(first, 0, second, true, mth, &mut proof);
    }
    Ok(proof)
}

/// `SUBPROOF(m, D[start:start+n], b)`, appending to `out`.
fn subproof_into(m: usize, start: usize, n: usize, b: bool, mth: &dyn Fn(usize, usize) -> Hash, out: &mut Vec<Hash>) {
    if m == n {
        // SUBPROOF(m, D[m], true) = {}; SUBPROOF(m, D[m], false) = {MTH(D[m])}
        if !b {
            out.push(mth(start, start + n));
        }
        return;
    }
    let k = split_point(n);
    if m <= k {
        // SUBPROOF(m, D[n], b) = SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
        subproof_into(m, start, k, b, mth, out);
        out.push(mth(start + k, start + n));
    } else {
        // SUBPROOF(m, D[n], b) = SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
        subproof_into(m - k, start + k, n - k, false, mth, out);
        out.push(mth(start, start + k));
    }
}

/// Verifies that the tree of `first` leaves with head `first_hash` is a
/// prefix of the tree of `second` leaves with head `second_hash`.
///
/// For `0 < first < second` this is RFC 9162 §2.1.4.2, step by step. The RFC
/// leaves the other cases open; here:
/// - `first > second` never verifies (a log cannot shrink);
/// - `first == second` verifies with an empty proof when the heads are equal;
/// - `first == 0` verifies with an empty proof when `first_hash` is the
///   empty-tree head (every tree extends the empty tree).
pub fn verify_consistency(first: u64, second: u64, first_hash: &Hash, second_hash: &Hash, proof: &[Hash]) -> bool {
    if first > second {
        return false;
    }
    if first == second {
        return proof.is_empty() && first_hash == second_hash;
    }
    if first == 0 {
        return proof.is_empty() && *first_hash == empty_root();
    }
    // 1. An empty consistency_path fails.
    if proof.is_empty() {
        return false;
    }
    // 2. If first is an exact power of 2, prepend first_hash to the path.
    let (seed, rest) = if first.is_power_of_two() { (first_hash, proof) } else { (&proof[0], &proof[1..]) };
    // 3. fn = first - 1, sn = second - 1.
    let (mut fn_, mut sn) = (first - 1, second - 1);
    // 4. While LSB(fn) is set, shift fn and sn right.
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    // 5. fr = sr = the first value of the path.
    let (mut fr, mut sr) = (*seed, *seed);
    // 6. For each subsequent value c:
    for c in rest {
        // a. sn == 0: the path is too long.
        if sn == 0 {
            return false;
        }
        // b. LSB(fn) set, or fn == sn: c is a left sibling in both trees.
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            // Otherwise c is a right sibling that only the second tree has.
            sr = node_hash(&sr, c);
        }
        // c. Shift once.
        fn_ >>= 1;
        sn >>= 1;
    }
    // 7. fr must be first_hash, sr second_hash, and sn 0.
    &fr == first_hash && &sr == second_hash && sn == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;

    fn leaves(n: u32) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    /// The exact proof length for `0 < m < n`: the path from leaf `m - 1` up
    /// to where it leaves the left border of the `m`-tree, plus the seed
    /// unless `m` is a power of two.
    fn expected_len(m: u64, n: u64) -> usize {
        let inner = 64 - ((m - 1) ^ (n - 1)).leading_zeros();
        let border = ((m - 1) >> inner).count_ones();
        let shift = m.trailing_zeros();
        (inner - shift + border) as usize + usize::from(!m.is_power_of_two())
    }

    #[test]
    fn every_proof_verifies_has_the_expected_length_and_binds_both_heads() {
        let all = leaves(100);
        let roots: Vec<Hash> = (0..=all.len()).map(|n| root_of(&all[..n])).collect();
        for n in 1..=all.len() {
            let bound = (usize::BITS - (n - 1).leading_zeros()) as usize + 1; // ceil(log2 n) + 1
            for m in 1..n {
                let p = consistency_proof(&all[..n], m).unwrap();
                let (m64, n64) = (m as u64, n as u64);
                assert_eq!(p.len(), expected_len(m64, n64), "{m} -> {n}");
                assert!(p.len() <= bound, "O(log n): {m} -> {n}");
                assert!(verify_consistency(m64, n64, &roots[m], &roots[n], &p), "{m} -> {n}");
                assert!(!verify_consistency(m64, n64, &roots[n], &roots[m], &p), "swapped {m} -> {n}");
                assert!(!verify_consistency(m64, n64, &roots[m - 1], &roots[n], &p), "wrong first {m} -> {n}");
                assert!(!verify_consistency(m64, n64, &roots[m], &roots[n - 1], &p), "wrong second {m} -> {n}");
                assert!(!verify_consistency(m64 + 1, n64, &roots[m], &roots[n], &p) || m + 1 == n);
                assert!(!verify_consistency(m64, n64, &roots[m], &roots[n], &p[..p.len() - 1]));
                let mut longer = p.clone();
                longer.push(roots[n]);
                assert!(!verify_consistency(m64, n64, &roots[m], &roots[n], &longer));
            }
        }
    }

    #[test]
    fn edge_sizes() {
        let d = leaves(5);
        let (r0, r5) = (empty_root(), root_of(&d));
        assert_eq!(consistency_proof(&d, 5).unwrap(), Vec::<Hash>::new());
        assert_eq!(consistency_proof(&d, 0).unwrap(), Vec::<Hash>::new());
        assert_eq!(consistency_proof(&d, 6), Err(ProofError::SizesOutOfOrder { first: 6, second: 5 }));
        assert!(verify_consistency(5, 5, &r5, &r5, &[]));
        assert!(!verify_consistency(5, 5, &r5, &r0, &[]));
        assert!(!verify_consistency(5, 5, &r5, &r5, &[r5]));
        assert!(verify_consistency(0, 5, &r0, &r5, &[]));
        assert!(!verify_consistency(0, 5, &r5, &r5, &[]), "the empty tree has one head");
        assert!(!verify_consistency(0, 5, &r0, &r5, &[r0]));
        assert!(!verify_consistency(5, 4, &r5, &r0, &[]), "a log cannot shrink");
        assert!(!verify_consistency(1, 5, &d[0], &r5, &[]), "RFC 9162 §2.1.4.2 step 1");
    }
}
