//! Property tests: every proof verifies, and any single-bit change to a
//! proof, a head, a size or an index is detected.

use proptest::prelude::*;
use seqshield_merkle::*;

fn leaves(count: usize) -> Vec<Hash> {
    (0..count as u64).map(|i| leaf_hash(&i.to_le_bytes())).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn inclusion_any_bit_flip_is_detected(size in 1usize..600, index_seed: usize, bit_seed: usize) {
        let d = leaves(size);
        let index = index_seed % size;
        let root = root_of(&d);
        let proof = inclusion_proof(&d, index).unwrap();
        prop_assert!(verify_inclusion(&d[index], index as u64, size as u64, &proof, &root));
        if !proof.is_empty() {
            let bit = bit_seed % (proof.len() * 256);
            let mut bad = proof.clone();
            bad[bit / 256][(bit % 256) / 8] ^= 1 << (bit % 8);
            prop_assert!(!verify_inclusion(&d[index], index as u64, size as u64, &bad, &root));
        }
        let mut bad_root = root;
        bad_root[bit_seed % 32] ^= 1;
        prop_assert!(!verify_inclusion(&d[index], index as u64, size as u64, &proof, &bad_root));
    }

    #[test]
    fn consistency_any_bit_flip_is_detected(second in 2usize..600, first_seed: usize, bit_seed: usize) {
        let d = leaves(second);
        let first = 1 + first_seed % (second - 1);
        let (r1, r2) = (root_of(&d[..first]), root_of(&d));
        let proof = consistency_proof(&d, first).unwrap();
        let (m, n) = (first as u64, second as u64);
        prop_assert!(verify_consistency(m, n, &r1, &r2, &proof));
        let bit = bit_seed % (proof.len() * 256);
        let mut bad = proof.clone();
        bad[bit / 256][(bit % 256) / 8] ^= 1 << (bit % 8);
        prop_assert!(!verify_consistency(m, n, &r1, &r2, &bad));
        let mut bad_r1 = r1;
        bad_r1[bit_seed % 32] ^= 1;
        prop_assert!(!verify_consistency(m, n, &bad_r1, &r2, &proof));
        let mut bad_r2 = r2;
        bad_r2[bit_seed % 32] ^= 1;
        prop_assert!(!verify_consistency(m, n, &r1, &bad_r2, &proof));
    }

    #[test]
    fn a_tree_that_changed_an_old_leaf_is_not_consistent(second in 2usize..300, first_seed: usize, at_seed: usize) {
        // Why: this is what the audit log's consistency proofs are for: a
        // rewritten past entry must break consistency with the old head.
        let d = leaves(second);
        let first = 1 + first_seed % (second - 1);
        let r1 = root_of(&d[..first]);
        let mut forged = d.clone();
        forged[at_seed % first] = leaf_hash(b"rewritten");
        let proof = consistency_proof(&forged, first).unwrap();
        prop_assert!(!verify_consistency(first as u64, second as u64, &r1, &root_of(&forged), &proof));
    }

    #[test]
    fn stored_tree_proofs_equal_the_reference(size in 1usize..3000, index_seed: usize, first_seed: usize) {
        // Why: the chunk-head shortcut must never change a proof.
        let d = leaves(size);
        let tree = StoredTree::from_leaves(d.clone());
        let (index, first) = (index_seed % size, first_seed % (size + 1));
        prop_assert_eq!(tree.inclusion_proof(index as u64, size as u64).unwrap(), inclusion_proof(&d, index).unwrap());
        prop_assert_eq!(tree.consistency_proof(first as u64, size as u64).unwrap(), consistency_proof(&d, first).unwrap());
        prop_assert_eq!(tree.root_at(first as u64).unwrap(), root_of(&d[..first]));
    }
}
