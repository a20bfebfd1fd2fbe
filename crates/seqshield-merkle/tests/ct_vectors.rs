//! The Certificate Transparency reference vectors (RFC 6962, carried over
//! unchanged by RFC 9162) through every function of the crate.
//!
//! The vectors live in `tests/vectors/merkle/ct.json`, each table with the
//! repository and file it was typed in from (github.com/transparency-dev/merkle:
//! `testonly/constants.go`, `proof/verify_test.go`, `proof/proof_test.go`).
//! `tests/vectors/merkle/check.py` recomputes all of them with hashlib from
//! RFC 9162 alone, so a vector mistyped into the file cannot pass just because
//! the Rust code has the same slip.

use std::path::PathBuf;

use seqshield_merkle::*;
use serde_json::Value;

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/merkle")
}

fn vectors() -> Value {
    serde_json::from_str(&std::fs::read_to_string(vectors_dir().join("ct.json")).unwrap()).unwrap()
}

fn h(v: &Value) -> Hash {
    hex::decode(v.as_str().unwrap()).unwrap().try_into().unwrap()
}

fn hashes(v: &Value) -> Vec<Hash> {
    v.as_array().unwrap().iter().map(h).collect()
}

fn n(v: &Value) -> usize {
    usize::try_from(v.as_u64().unwrap()).unwrap()
}

fn leaves() -> Vec<Hash> {
    vectors()["leaves"]["hex"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| leaf_hash(&hex::decode(x.as_str().unwrap()).unwrap()))
        .collect()
}

fn roots() -> Vec<Hash> {
    hashes(&vectors()["roots"]["hex"])
}

/// Leaves for the shape tables, as in check.py: leaf `i` is `i` as a u64, big-endian.
fn synthetic(count: u64) -> Vec<Hash> {
    (0..count).map(|i| leaf_hash(&i.to_be_bytes())).collect()
}

#[test]
fn roots_for_every_size() {
    let (d, roots) = (leaves(), roots());
    assert_eq!(roots.len(), 9);
    let mut tree = CompactTree::new();
    assert_eq!(tree.root(), roots[0]);
    assert_eq!(empty_root(), roots[0]);
    for (i, leaf) in d.iter().enumerate() {
        tree.push(*leaf);
        assert_eq!(tree.root(), roots[i + 1], "compact tree of size {}", i + 1);
        assert_eq!(StoredTree::from_leaves(d[..=i].to_vec()).root(), roots[i + 1]);
        assert_eq!(StoredTree::from_leaves(d.clone()).root_at(i as u64 + 1).unwrap(), roots[i + 1]);
        assert_eq!(root_of(&d[..=i]), roots[i + 1], "root_of size {}", i + 1);
    }
}

#[test]
fn node_hashes_are_heads_of_perfect_subtrees() {
    let (v, d) = (vectors(), leaves());
    for (level, row) in v["node_hashes"]["hex"].as_array().unwrap().iter().enumerate() {
        for (i, want) in hashes(row).iter().enumerate() {
            let w = 1 << level;
            assert_eq!(&root_of(&d[i * w..(i + 1) * w]), want, "level {level} node {i}");
        }
    }
}

#[test]
fn compact_tree_frontier_matches() {
    let (v, d) = (vectors(), leaves());
    let nodes: Vec<Vec<Hash>> = v["node_hashes"]["hex"].as_array().unwrap().iter().map(hashes).collect();
    for (size, frontier) in v["compact_trees"]["nodes"].as_array().unwrap().iter().enumerate() {
        let want: Vec<Hash> = frontier.as_array().unwrap().iter().map(|li| nodes[n(&li[0])][n(&li[1])]).collect();
        let tree = CompactTree::from_leaves(&d[..size]);
        assert_eq!(tree.frontier().copied().collect::<Vec<_>>(), want, "size {size}");
    }
}

/// The corruptions of `corruptInclusionProof` in transparency-dev/merkle
/// `proof/verify_test.go`: none may verify.
fn corrupted_inclusion_verifies(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> Vec<String> {
    let some = h(&Value::from("abacaba000000000000000000000000000000000000000000060061e00123456"));
    let mut probes: Vec<(String, Hash, u64, u64, Vec<Hash>, Hash)> = vec![
        ("index - 1".into(), *leaf, index.wrapping_sub(1), size, proof.to_vec(), *root),
        ("index + 1".into(), *leaf, index + 1, size, proof.to_vec(), *root),
        ("index ^ 2".into(), *leaf, index ^ 2, size, proof.to_vec(), *root),
        ("size * 2".into(), *leaf, index, size * 2, proof.to_vec(), *root),
        ("size / 2".into(), *leaf, index, size / 2, proof.to_vec(), *root),
        ("wrong leaf".into(), leaf_hash(b"WrongLeaf"), index, size, proof.to_vec(), *root),
        ("empty root".into(), *leaf, index, size, proof.to_vec(), empty_root()),
        ("random root".into(), *leaf, index, size, proof.to_vec(), some),
        ("trailing root".into(), *leaf, index, size, [proof, &[*root]].concat(), *root),
        ("preceding root".into(), *leaf, index, size, [&[*root], proof].concat(), *root),
    ];
    for i in 0..proof.len() {
        let mut p = proof.to_vec();
        p[i][0] ^= 8;
        probes.push((format!("modified proof[{i}] bit 3"), *leaf, index, size, p, *root));
    }
    if !proof.is_empty() {
        probes.push(("removed component".into(), *leaf, index, size, proof[..proof.len() - 1].to_vec(), *root));
    }
    if proof.len() > 1 {
        let p = [&[proof[0], some][..], &proof[1..]].concat();
        probes.push(("inserted component".into(), *leaf, index, size, p, *root));
    }
    probes.into_iter().filter(|(_, l, i, s, p, r)| verify_inclusion(l, *i, *s, p, r)).map(|(d, ..)| d).collect()
}

#[test]
fn inclusion_proofs() {
    let (v, d, roots) = (vectors(), leaves(), roots());
    for case in v["inclusion"]["cases"].as_array().unwrap() {
        let (index, size, want) = (n(&case["index"]), n(&case["size"]), hashes(&case["path"]));
        let got = inclusion_proof(&d[..size], index).unwrap();
        assert_eq!(got, want, "PATH({index}, D[{size}])");
        let stored = StoredTree::from_leaves(d.clone());
        assert_eq!(stored.inclusion_proof(index as u64, size as u64).unwrap(), want, "stored PATH({index}, D[{size}])");
        let (i, s) = (index as u64, size as u64);
        assert!(verify_inclusion(&d[index], i, s, &want, &roots[size]), "verify {index} in {size}");
        let wrong = corrupted_inclusion_verifies(&d[index], i, s, &want, &roots[size]);
        assert!(wrong.is_empty(), "{index} in {size} verified against: {wrong:?}");
    }
}

#[test]
fn inclusion_verification_refuses_impossible_positions() {
    // transparency-dev/merkle proof/verify_test.go TestVerifyInclusion probes.
    let some = leaf_hash(b"some");
    for (index, size) in [(0, 0), (1, 0), (2, 1)] {
        assert!(!verify_inclusion(&some, index, size, &[], &empty_root()), "{index} in {size}");
    }
    // TestVerifyInclusionSingleEntry: a one-leaf tree's root is its leaf.
    let one = leaf_hash(b"data");
    assert!(verify_inclusion(&one, 0, 1, &[], &one));
    assert!(!verify_inclusion(&one, 0, 1, &[], &some));
}

/// The corruptions of `corruptConsistencyProof` in transparency-dev/merkle
/// `proof/verify_test.go`: none may verify.
fn corrupted_consistency_verifies(first: u64, second: u64, r1: &Hash, r2: &Hash, proof: &[Hash]) -> Vec<String> {
    let wrong = leaf_hash(b"WrongRoot");
    let mut probes: Vec<(String, u64, u64, Hash, Hash, Vec<Hash>)> = vec![
        ("first - 1".into(), first - 1, second, *r1, *r2, proof.to_vec()),
        ("first + 1".into(), first + 1, second, *r1, *r2, proof.to_vec()),
        ("first ^ 2".into(), first ^ 2, second, *r1, *r2, proof.to_vec()),
        ("second * 2".into(), first, second * 2, *r1, *r2, proof.to_vec()),
        ("second / 2".into(), first, second / 2, *r1, *r2, proof.to_vec()),
        ("wrong root1".into(), first, second, wrong, *r2, proof.to_vec()),
        ("wrong root2".into(), first, second, *r1, wrong, proof.to_vec()),
        ("swapped roots".into(), first, second, *r2, *r1, proof.to_vec()),
        ("empty proof".into(), first, second, *r1, *r2, Vec::new()),
        ("trailing root1".into(), first, second, *r1, *r2, [proof, &[*r1]].concat()),
        ("trailing root2".into(), first, second, *r1, *r2, [proof, &[*r2]].concat()),
        ("preceding root1".into(), first, second, *r1, *r2, [&[*r1], proof].concat()),
        ("preceding root2".into(), first, second, *r1, *r2, [&[*r2], proof].concat()),
        ("preceding proof[0]".into(), first, second, *r1, *r2, [&[proof[0]], proof].concat()),
        ("truncated proof".into(), first, second, *r1, *r2, proof[..proof.len() - 1].to_vec()),
    ];
    for i in 0..proof.len() {
        let mut p = proof.to_vec();
        p[i][0] ^= 16;
        probes.push((format!("modified proof[{i}] bit 4"), first, second, *r1, *r2, p));
    }
    probes.into_iter().filter(|(_, m, n, a, b, p)| verify_consistency(*m, *n, a, b, p)).map(|(d, ..)| d).collect()
}

#[test]
fn consistency_proofs() {
    let (v, d, roots) = (vectors(), leaves(), roots());
    for case in v["consistency"]["cases"].as_array().unwrap() {
        let (first, second, want) = (n(&case["first"]), n(&case["second"]), hashes(&case["proof"]));
        let got = consistency_proof(&d[..second], first).unwrap();
        assert_eq!(got, want, "PROOF({first}, D[{second}])");
        let stored = StoredTree::from_leaves(d.clone());
        assert_eq!(
            stored.consistency_proof(first as u64, second as u64).unwrap(),
            want,
            "stored PROOF({first}, D[{second}])"
        );
        let (m, s) = (first as u64, second as u64);
        assert!(verify_consistency(m, s, &roots[first], &roots[second], &want), "verify {first} -> {second}");
        if !want.is_empty() {
            let wrong = corrupted_consistency_verifies(m, s, &roots[first], &roots[second], &want);
            assert!(wrong.is_empty(), "{first} -> {second} verified against: {wrong:?}");
        }
    }
}

#[test]
fn proof_shapes() {
    let v = vectors();
    let s = synthetic(128);
    let ranges = |c: &Value| -> Vec<Hash> {
        c["ranges"].as_array().unwrap().iter().map(|r| root_of(&s[n(&r[0])..n(&r[1])])).collect()
    };
    for c in v["inclusion_shapes"]["cases"].as_array().unwrap() {
        let (index, size) = (n(&c["index"]), n(&c["size"]));
        assert_eq!(inclusion_proof(&s[..size], index).unwrap(), ranges(c), "PATH({index}, D[{size}])");
    }
    for c in v["consistency_shapes"]["cases"].as_array().unwrap() {
        let (first, second) = (n(&c["first"]), n(&c["second"]));
        assert_eq!(consistency_proof(&s[..second], first).unwrap(), ranges(c), "PROOF({first}, D[{second}])");
    }
}

/// `python3`, or `None` (skip) outside CI. Under `CI` a missing reference
/// tool is a failure, never a skip.
fn python() -> Option<PathBuf> {
    for p in ["/usr/bin/python3", "/usr/local/bin/python3"] {
        if std::path::Path::new(p).exists() {
            return Some(p.into());
        }
    }
    assert!(std::env::var_os("CI").is_none(), "CI: python3 is missing");
    eprintln!("note: python3 missing; the independent vector check was not run");
    None
}

#[test]
fn vectors_agree_with_independent_python_check() {
    // Why: the vectors were typed in by hand; check.py recomputes every one
    // from RFC 9162 with hashlib, independently of this crate.
    let Some(py) = python() else { return };
    let out = std::process::Command::new(py)
        .arg(vectors_dir().join("check.py"))
        .arg(vectors_dir().join("ct.json"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(text.matches(": ok").count(), 6, "{text}");
}
