//! Spec test vectors (`tests/vectors/*.json` at the repository root), run
//! through every writer and reader path.
//!
//! Regenerate (only when the format version changes) with
//! `SEQSHIELD_REGEN_VECTORS=1 cargo test -p seqshield-format --test vectors`.
//! `tests/vectors/check.py` decodes the same vectors independently, from
//! `docs/format.md` alone.

mod common;

use std::path::PathBuf;

use aws_lc_rs::digest;
use common::{decrypt_all_paths, decrypt_stream};
use seqshield_format::{Classification, DataKey, Header, WrappedKey, Writer, WriterOptions};
use serde_json::{json, Value};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors")
}

/// Plaintext byte `i` of a vector is `(7 i + 3) mod 251`.
fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| ((7 * i + 3) % 251) as u8).collect()
}

struct Spec {
    name: &'static str,
    len: usize,
    segment_size: u32,
    classification: Classification,
    recipients: usize,
    metadata: &'static [(&'static str, &'static str)],
    integrity_only: bool,
}

const SPECS: &[Spec] = &[
    Spec {
        name: "empty",
        len: 0,
        segment_size: 1024,
        classification: Classification::Public,
        recipients: 1,
        metadata: &[],
        integrity_only: false,
    },
    Spec {
        name: "one-byte",
        len: 1,
        segment_size: 1024,
        classification: Classification::Internal,
        recipients: 1,
        metadata: &[],
        integrity_only: false,
    },
    Spec {
        name: "one-full-segment",
        len: 1024,
        segment_size: 1024,
        classification: Classification::Restricted,
        recipients: 1,
        metadata: &[],
        integrity_only: false,
    },
    Spec {
        name: "three-segments-and-a-bit",
        len: 3 * 1024 + 5,
        segment_size: 1024,
        classification: Classification::Controlled,
        recipients: 2,
        metadata: &[("sample", "S-0001"), ("pipeline", "bwa-mem 0.7.17")],
        integrity_only: false,
    },
    Spec {
        name: "default-segments",
        len: 150_000,
        segment_size: 65536,
        classification: Classification::Controlled,
        recipients: 1,
        metadata: &[],
        integrity_only: false,
    },
    Spec {
        name: "integrity-only",
        len: 3 * 1024 + 5,
        segment_size: 1024,
        classification: Classification::Public,
        recipients: 1,
        metadata: &[("license", "CC0-1.0")],
        integrity_only: true,
    },
];

/// The vectors whose negative cases are generated (same damage, same codes,
/// in both modes).
const WITH_NEGATIVE_CASES: [&str; 2] = ["three-segments-and-a-bit", "integrity-only"];

fn build(spec: &Spec, idx: u8) -> (Value, Vec<u8>) {
    let key_bytes: Vec<u8> = (0..32).map(|i| idx.wrapping_mul(31).wrapping_add(i)).collect();
    let salt: [u8; 32] = std::array::from_fn(|i| 0xA0 ^ (i as u8) ^ idx);
    let key = DataKey::from_slice(&key_bytes).unwrap();
    // Recipient entries are opaque to the format: fixed bytes suffice.
    let recipients: Vec<WrappedKey> = (0..spec.recipients)
        .map(|r| WrappedKey {
            key_id: format!("vector-kek-{r}"),
            algorithm: "aes256-kw".into(),
            wrapped: (0..40).map(|b| (b as u8) ^ (r as u8)).collect(),
        })
        .collect();
    let mut header = Header::new(spec.classification, "application/octet-stream", recipients)
        .unwrap()
        .with_segment_size(spec.segment_size)
        .unwrap()
        .with_salt_for_tests(salt)
        .with_integrity_only(spec.integrity_only);
    for (k, v) in spec.metadata {
        header = header.with_metadata(k, v).unwrap();
    }
    let mut w = Writer::new(Vec::new(), &header, &key).unwrap();
    std::io::Write::write_all(&mut w, &plaintext(spec.len)).unwrap();
    let sealed = w.finish().unwrap();
    let object = sealed.inner;
    let mut v = json!({
        "name": spec.name,
        "data_key": hex::encode(&key_bytes),
        "salt": hex::encode(salt),
        "segment_size": spec.segment_size,
        "classification": spec.classification,
        "integrity_only": spec.integrity_only,
        "plaintext_len": spec.len,
        "header_len": header.encoded_len(),
        "segment_count": sealed.summary.segment_count,
        "merkle_root": hex::encode(sealed.summary.merkle_root),
        "object_sha256": hex::encode(digest::digest(&digest::SHA256, &object)),
    });
    if object.len() <= 8192 {
        v["object_hex"] = json!(hex::encode(&object));
    }
    (v, object)
}

/// Damage applied to the "three-segments-and-a-bit" and "integrity-only"
/// vectors, with the error every reader must report.
fn negative_cases(header_len: usize, integrity_only: bool) -> Value {
    let seg = |i: usize| header_len + i * (1024 + 16);
    let other_mode = u8::from(!integrity_only);
    json!([
        {"what": "mode flag flipped, checksum fixed", "set": [19, other_mode], "fix_checksum": true, "code": "header_auth_failed"},
        {"what": "unknown flag bit, checksum fixed", "set": [19, 2], "fix_checksum": true, "code": "header_out_of_bounds"},
        {"what": "bit flip in header body", "xor": [20, 1], "code": "header_corrupt"},
        {"what": "bit flip in header MAC", "xor": [header_len - 1, 1], "code": "header_auth_failed"},
        {"what": "bit flip in segment 2 ciphertext", "xor": [seg(2) + 5, 128], "code": "segment_auth_failed", "segment": 2},
        {"what": "bit flip in segment 1 tag", "xor": [seg(1) + 1024 + 3, 1], "code": "segment_auth_failed", "segment": 1},
        {"what": "bit flip in trailer", "xor_from_end": [10, 1], "code": "trailer_auth_failed"},
        {"what": "segments 0 and 2 swapped", "swap": [seg(0), seg(2), 1040], "code": "segment_misplaced", "segment": 0},
        {"what": "trailer removed", "truncate_from_end": 88, "code": "truncated"},
        {"what": "cut after segment 1", "truncate_to": seg(2), "code": "truncated", "segment": 2},
        {"what": "bytes appended", "append_hex": "00112233", "code": "extended", "segment": 3},
        {"what": "unknown version", "set": [9, 2], "code": "unsupported_version"},
        {"what": "wrong data key", "wrong_key": true, "code": "header_auth_failed"}
    ])
}

fn apply(case: &Value, object: &[u8]) -> Vec<u8> {
    let mut o = object.to_vec();
    let idx = |v: &Value, i: usize| v[i].as_u64().unwrap() as usize;
    if let Some(x) = case.get("xor") {
        o[idx(x, 0)] ^= idx(x, 1) as u8;
    }
    if let Some(x) = case.get("xor_from_end") {
        let n = o.len();
        o[n - idx(x, 0)] ^= idx(x, 1) as u8;
    }
    if let Some(x) = case.get("set") {
        o[idx(x, 0)] = idx(x, 1) as u8;
    }
    if let Some(x) = case.get("swap") {
        let (a, b, n) = (idx(x, 0), idx(x, 1), idx(x, 2));
        let tmp = o[a..a + n].to_vec();
        o.copy_within(b..b + n, a);
        o[b..b + n].copy_from_slice(&tmp);
    }
    if let Some(n) = case.get("truncate_from_end") {
        o.truncate(o.len() - n.as_u64().unwrap() as usize);
    }
    if let Some(n) = case.get("truncate_to") {
        o.truncate(n.as_u64().unwrap() as usize);
    }
    if let Some(h) = case.get("append_hex") {
        o.extend(hex::decode(h.as_str().unwrap()).unwrap());
    }
    if case.get("fix_checksum").is_some() {
        // As an attacker would: the checksum is unkeyed.
        let signed = 14 + u32::from_be_bytes(o[10..14].try_into().unwrap()) as usize;
        let sum = digest::digest(&digest::SHA256, &o[..signed]);
        o[signed..signed + 32].copy_from_slice(sum.as_ref());
    }
    o
}

#[test]
fn vectors_hold_on_every_path() {
    if std::env::var_os("SEQSHIELD_REGEN_VECTORS").is_some() {
        std::fs::create_dir_all(dir()).unwrap();
        for (i, spec) in SPECS.iter().enumerate() {
            let (mut v, object) = build(spec, i as u8);
            if WITH_NEGATIVE_CASES.contains(&spec.name) {
                v["negative"] = negative_cases(v["header_len"].as_u64().unwrap() as usize, spec.integrity_only);
            }
            let _ = object;
            std::fs::write(dir().join(format!("{}.json", spec.name)), serde_json::to_string_pretty(&v).unwrap() + "\n")
                .unwrap();
        }
    }
    let mut seen = 0;
    for (i, spec) in SPECS.iter().enumerate() {
        let text = std::fs::read_to_string(dir().join(format!("{}.json", spec.name))).expect("vector file");
        let v: Value = serde_json::from_str(&text).unwrap();
        let (built, object) = build(spec, i as u8);
        // Writers (single and parallel) reproduce the vector byte for byte.
        for key in ["object_sha256", "merkle_root", "segment_count", "header_len"] {
            assert_eq!(built[key], v[key], "{}: {key}", spec.name);
        }
        if let Some(h) = v.get("object_hex") {
            assert_eq!(hex::encode(&object), h.as_str().unwrap(), "{}", spec.name);
        }
        let key = DataKey::from_slice(&hex::decode(v["data_key"].as_str().unwrap()).unwrap()).unwrap();
        let hdr = SealedHeaderExt::header(&object, &key);
        assert_eq!(hdr.integrity_only(), spec.integrity_only, "{}", spec.name);
        assert_eq!(v.get("negative").is_some(), WITH_NEGATIVE_CASES.contains(&spec.name), "{}", spec.name);
        let parallel = {
            let mut w =
                Writer::with_options(Vec::new(), &hdr, &key, WriterOptions { threads: 2, batch_segments: 3 }).unwrap();
            std::io::Write::write_all(&mut w, &plaintext(spec.len)).unwrap();
            w.finish().unwrap().inner
        };
        assert_eq!(parallel, object, "{}: parallel writer", spec.name);
        // Every reader returns the plaintext.
        assert_eq!(decrypt_all_paths(&key, &object).unwrap(), plaintext(spec.len), "{}", spec.name);
        for case in v.get("negative").and_then(Value::as_array).into_iter().flatten() {
            let damaged = apply(case, &object);
            let k = if case.get("wrong_key").is_some() { DataKey::generate() } else { key.clone() };
            let err = decrypt_all_paths(&k, &damaged).expect_err(case["what"].as_str().unwrap());
            assert_eq!(err.code(), case["code"].as_str().unwrap(), "{}: {err}", case["what"]);
            if let Some(s) = case.get("segment") {
                assert_eq!(err.segment(), s.as_u64(), "{}", case["what"]);
            }
            assert!(decrypt_stream(&k, &damaged, WriterOptions::default()).is_err());
        }
        seen += 1;
    }
    assert_eq!(seen, SPECS.len());
}

struct SealedHeaderExt;

impl SealedHeaderExt {
    fn header(object: &[u8], key: &DataKey) -> Header {
        seqshield_format::SealedHeader::parse(object).unwrap().0.authenticate(key).unwrap()
    }
}

/// Returns the repo's venv python, or `None` (skip) outside CI. Under `CI`
/// a missing reference tool is a failure, never a skip.
fn venv_python() -> Option<PathBuf> {
    let py = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    if py.exists() {
        return Some(py);
    }
    assert!(std::env::var_os("CI").is_none(), "CI: {} is missing; run scripts/setup", py.display());
    eprintln!("note: {} missing (run scripts/setup); independent decoder not run", py.display());
    None
}

#[test]
fn vectors_agree_with_independent_python_decoder() {
    // Why: the Rust code and docs/format.md must describe the same format;
    // check.py is written from the spec alone.
    let Some(py) = venv_python() else { return };
    let mut cmd = std::process::Command::new(py);
    cmd.arg(dir().join("check.py"));
    for spec in SPECS {
        cmd.arg(dir().join(format!("{}.json", spec.name)));
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(text.matches(": ok").count(), 5, "{text}");
}
