use std::sync::OnceLock;

use seqshield_keys::file::FileKek;
use seqshield_keys::sign::FileSigner;

use super::*;

struct Keys {
    _dir: tempfile::TempDir,
    kek: FileKek,
    other_kek: FileKek,
    signer: FileSigner,
    other_signer: FileSigner,
}

/// RSA-4096 generation takes a second or two: one set of keys for all tests.
fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        Keys {
            kek: FileKek::init(&dir.path().join("kek"), b"bundle tests").unwrap(),
            other_kek: FileKek::init(&dir.path().join("kek2"), b"bundle tests").unwrap(),
            signer: FileSigner::init(&dir.path().join("sign.pem"), b"bundle tests").unwrap(),
            other_signer: FileSigner::init(&dir.path().join("sign2.pem"), b"bundle tests").unwrap(),
            _dir: dir,
        }
    })
}

fn model_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("config.json"), br#"{"model_type":"bert","hidden_size":8}"#).unwrap();
    std::fs::write(d.path().join("tokenizer.json"), br#"{"version":"1.0"}"#).unwrap();
    let weights: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(d.path().join("model.safetensors"), weights).unwrap();
    d
}

fn opts() -> PackOptions {
    PackOptions { name: "tiny-bert".into(), version: "3".into() }
}

fn packed() -> (tempfile::TempDir, PathBuf) {
    let k = keys();
    let d = model_dir();
    let out = d.path().join("m.bundle");
    pack(d.path(), &out, &opts(), &k.signer, &[&k.kek.public()]).unwrap();
    (d, out)
}

/// Rewrites the manifest with `f` and signs it again with `signer`.
fn resign(path: &Path, signer: &dyn Signer, f: impl FnOnce(&mut Manifest)) {
    let b = SignedBundle::read(path).unwrap();
    let mut m = b.unverified_manifest().unwrap();
    f(&mut m);
    let bytes = serde_json::to_vec(&m).unwrap();
    let sig = signer.sign(&signed_message(&bytes)).unwrap();
    let all = std::fs::read(path).unwrap();
    let payload = &all[b.payload_offset as usize..];
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(&bytes);
    out.extend_from_slice(&(sig.len() as u32).to_be_bytes());
    out.extend_from_slice(&sig);
    out.extend_from_slice(payload);
    std::fs::write(path, out).unwrap();
}

#[test]
fn a_packed_bundle_opens_to_the_same_files() {
    let k = keys();
    let (d, out) = packed();
    let b = SignedBundle::read(&out).unwrap();
    let files = b.open(k.signer.verifying_key(), &k.kek, Some("3")).unwrap();
    assert_eq!(files.manifest.name, "tiny-bert");
    assert_eq!(
        files.manifest.files.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
        ["config.json", "model.safetensors", "tokenizer.json"]
    );
    for name in ["config.json", "model.safetensors", "tokenizer.json"] {
        assert_eq!(files.get(name).unwrap(), std::fs::read(d.path().join(name)).unwrap(), "{name}");
    }
    assert_eq!(files.weights_name().as_deref(), Some("model.safetensors"));
    assert_eq!(files.manifest.config["model_type"], "bert");
    // No plaintext in the bundle file.
    let raw = std::fs::read(&out).unwrap();
    let weights = std::fs::read(d.path().join("model.safetensors")).unwrap();
    assert!(!raw.windows(64).any(|w| w == &weights[1000..1064]), "weights in the clear");
    // Debug shows names and sizes only.
    let dbg = format!("{files:?}");
    assert!(dbg.contains("model.safetensors") && dbg.len() < 400, "{dbg}");
}

#[test]
fn a_changed_manifest_fails_the_signature() {
    let k = keys();
    let (_d, out) = packed();
    let mut raw = std::fs::read(&out).unwrap();
    // Flip a byte inside the manifest's JSON (after magic and length).
    raw[8 + 4 + 20] ^= 0x01;
    std::fs::write(&out, raw).unwrap();
    let err = SignedBundle::read(&out).unwrap().open(k.signer.verifying_key(), &k.kek, None).unwrap_err();
    assert!(matches!(err, BundleError::BadSignature { .. }), "{err}");
}

#[test]
fn another_signer_is_refused() {
    let k = keys();
    let (_d, out) = packed();
    let err = SignedBundle::read(&out).unwrap().open(k.other_signer.verifying_key(), &k.kek, None).unwrap_err();
    assert!(matches!(err, BundleError::BadSignature { .. }), "{err}");
    // Signed by the trusted key but naming another signer: refused too.
    resign(&out, &k.signer, |m| m.signer = "ec-0000000000000000".into());
    let err = SignedBundle::read(&out).unwrap().open(k.signer.verifying_key(), &k.kek, None).unwrap_err();
    assert!(matches!(err, BundleError::UnknownSigner { .. }), "{err}");
}

#[test]
fn a_pinned_version_must_match() {
    let k = keys();
    let (_d, out) = packed();
    let err = SignedBundle::read(&out).unwrap().open(k.signer.verifying_key(), &k.kek, Some("4")).unwrap_err();
    assert_eq!(err.to_string(), "model version \"3\" does not match the configured version \"4\"");
}

#[test]
fn a_wrong_file_hash_names_the_file() {
    let k = keys();
    let (_d, out) = packed();
    resign(&out, &k.signer, |m| m.files[2].sha256 = "00".repeat(32));
    let err = SignedBundle::read(&out).unwrap().open(k.signer.verifying_key(), &k.kek, None).unwrap_err();
    assert_eq!(err.to_string(), "tokenizer.json: SHA-256 does not match the signed manifest");
}

#[test]
fn a_swapped_payload_is_refused() {
    let k = keys();
    let (_d, out) = packed();
    resign(&out, &k.signer, |m| m.payload.merkle_root = "11".repeat(32));
    let err = SignedBundle::read(&out).unwrap().open(k.signer.verifying_key(), &k.kek, None).unwrap_err();
    assert!(matches!(err, BundleError::Payload { what: "Merkle root" }), "{err}");
    // Sizes that move the boundary between files: size check per file.
    let (_d2, out2) = packed();
    resign(&out2, &k.signer, |m| {
        m.files[0].size += 1;
        m.files[1].size -= 1;
    });
    let err = SignedBundle::read(&out2).unwrap().open(k.signer.verifying_key(), &k.kek, None).unwrap_err();
    assert!(matches!(err, BundleError::Hash { .. }), "{err}");
}

#[test]
fn a_changed_ciphertext_byte_is_detected() {
    let k = keys();
    let (_d, out) = packed();
    let mut raw = std::fs::read(&out).unwrap();
    let at = raw.len() - 5000;
    raw[at] ^= 0x40;
    std::fs::write(&out, raw).unwrap();
    let err = SignedBundle::read(&out).unwrap().open(k.signer.verifying_key(), &k.kek, None).unwrap_err();
    assert!(matches!(err, BundleError::Container(_)), "{err}");
}

#[test]
fn another_kek_cannot_open_it() {
    let k = keys();
    let (_d, out) = packed();
    let err = SignedBundle::read(&out).unwrap().open(k.signer.verifying_key(), &k.other_kek, None).unwrap_err();
    assert!(matches!(err, BundleError::Key(_)), "{err}");
}

#[test]
fn truncated_and_foreign_files_are_malformed() {
    let (d, out) = packed();
    let raw = std::fs::read(&out).unwrap();
    for cut in [0, 4, 8, 11, 12, 100] {
        let p = d.path().join(format!("cut{cut}"));
        std::fs::write(&p, &raw[..cut]).unwrap();
        let err = SignedBundle::read(&p).unwrap_err();
        assert!(matches!(err, BundleError::Malformed(_)), "{cut}: {err}");
    }
    let p = d.path().join("huge-len");
    let mut bad = MAGIC.to_vec();
    bad.extend_from_slice(&u32::MAX.to_be_bytes());
    std::fs::write(&p, bad).unwrap();
    assert!(SignedBundle::read(&p).unwrap_err().to_string().contains("outside"));
}

#[test]
fn packing_needs_a_whole_model_and_leaves_nothing_on_failure() {
    let k = keys();
    let d = model_dir();
    std::fs::remove_file(d.path().join("tokenizer.json")).unwrap();
    let out = d.path().join("m.bundle");
    let err = pack(d.path(), &out, &opts(), &k.signer, &[&k.kek.public()]).unwrap_err();
    assert_eq!(err.to_string(), "the model has no tokenizer.json");
    assert!(!out.exists());
    let d = model_dir();
    let err =
        pack(d.path(), &out, &PackOptions { name: "x".into(), version: "../1".into() }, &k.signer, &[&k.kek.public()])
            .unwrap_err();
    assert!(err.to_string().contains("model version"), "{err}");
    let err = pack(d.path(), &out, &opts(), &k.signer, &[]).unwrap_err();
    assert!(err.to_string().contains("key-encryption key"), "{err}");
    assert!(!out.exists());
}
