//! Interop of `seqshield_format::c4gh` with the GA4GH reference
//! implementation, the python `crypt4gh` CLI that `scripts/setup` installs
//! in `.venv/`. Files and key files cross in both directions.
//!
//! `crypt4gh decrypt --range` is not used: it is buggy in the reference.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use seqshield_format::c4gh::{
    read_public_key, read_secret_key, write_public_key, write_secret_key, Decryptor, Encryptor, SecretKey,
};

const PASSPHRASE: &str = "interop passphrase";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The reference tool `name` (`crypt4gh`, `crypt4gh-keygen`) from `.venv/bin`.
///
/// Skip rule: when the tool is missing this returns `None` and the caller
/// returns early, so a developer without `scripts/setup` can still run the
/// suite; but when the `CI` environment variable is set, a missing tool is a
/// FAILURE, because an interop suite that silently skips proves nothing.
fn reference_tool(name: &str) -> Option<PathBuf> {
    let path = repo_root().join(".venv/bin").join(name);
    if path.is_file() {
        return Some(path);
    }
    if std::env::var_os("CI").is_some() {
        panic!("{} is missing and CI is set: run scripts/setup", path.display());
    }
    eprintln!("SKIPPED: {} not found; run scripts/setup to test interop with the reference crypt4gh", path.display());
    None
}

/// A fresh scratch folder for one test, under cargo's target tmp dir.
fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("c4gh_interop-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Deterministic pseudo-random DNA (xorshift), several segments long.
fn dna(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b"ACGT"[(x >> 7 & 3) as usize]
        })
        .collect()
}

/// Runs the reference `crypt4gh` with `args`, `stdin` as input, and the
/// passphrase in `C4GH_PASSPHRASE`; returns stdout, failing on a non-zero
/// exit.
fn crypt4gh(tool: &Path, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let mut child = Command::new(tool)
        .args(args)
        .env("C4GH_PASSPHRASE", PASSPHRASE)
        .env_remove("C4GH_SECRET_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    let feeder = std::thread::spawn(move || input.write_all(&stdin));
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "crypt4gh {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Generates a passphrase-protected key pair with `crypt4gh-keygen`, which
/// ignores `C4GH_PASSPHRASE` and reads the passphrase twice with getpass.
/// getpass prefers the controlling terminal, so keygen runs under
/// `setsid` (when there is one) to make it read stdin instead of hanging on
/// a developer's tty.
fn keygen(tool: &Path, dir: &Path) -> (PathBuf, PathBuf) {
    let (sk, pk) = (dir.join("ref.sec"), dir.join("ref.pub"));
    let setsid = ["/usr/bin/setsid", "/bin/setsid"].into_iter().map(Path::new).find(|p| p.is_file());
    let mut cmd = match setsid {
        Some(setsid) => {
            let mut c = Command::new(setsid);
            c.arg("-w").arg(tool);
            c
        }
        None => Command::new(tool),
    };
    let mut child = cmd
        .args(["-f", "-C", "interop", "--sk"])
        .arg(&sk)
        .arg("--pk")
        .arg(&pk)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(format!("{PASSPHRASE}\n{PASSPHRASE}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "crypt4gh-keygen failed: {}", String::from_utf8_lossy(&out.stderr));
    (sk, pk)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

fn our_encrypt(plain: &[u8], sender: &SecretKey, recipients: &[seqshield_format::c4gh::PublicKey]) -> Vec<u8> {
    let mut enc = Encryptor::new(Vec::new(), sender, recipients).unwrap();
    for chunk in plain.chunks(30_001) {
        enc.write_all(chunk).unwrap();
    }
    enc.finish().unwrap()
}

fn our_decrypt(file: &[u8], sk: &SecretKey) -> Vec<u8> {
    let mut out = Vec::new();
    Decryptor::new(file, sk).unwrap().read_to_end(&mut out).unwrap();
    out
}

/// Our key files (secret key passphrase-protected) and our files are
/// accepted by `crypt4gh decrypt`.
#[test]
fn reference_decrypts_what_we_encrypt() {
    let Some(tool) = reference_tool("crypt4gh") else {
        return;
    };
    let dir = scratch("ours-to-ref");
    let recipient = SecretKey::generate();
    let sk_path = dir.join("ours.sec");
    std::fs::write(&sk_path, write_secret_key(&recipient, Some(PASSPHRASE.as_bytes()))).unwrap();

    // Exactly n segments, and a partial last one.
    for len in [3 * 65536, 200 * 1024 + 123] {
        let plain = dna(len);
        let file = our_encrypt(&plain, &SecretKey::generate(), &[recipient.public_key()]);
        let out = crypt4gh(&tool, &["decrypt", "--sk", sk_path.to_str().unwrap()], &file);
        assert!(out == plain, "reference decryption differs for {len} bytes");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Files `crypt4gh encrypt` writes for our key files (public key, and our
/// passphrase-protected secret key as the sender) decrypt with ours, also
/// when another recipient's packet comes first.
#[test]
fn we_decrypt_what_reference_encrypts() {
    let Some(tool) = reference_tool("crypt4gh") else {
        return;
    };
    let dir = scratch("ref-to-ours");
    let (sender, recipient, other) = (SecretKey::generate(), SecretKey::generate(), SecretKey::generate());
    let sender_path = dir.join("sender.sec");
    std::fs::write(&sender_path, write_secret_key(&sender, Some(PASSPHRASE.as_bytes()))).unwrap();
    let pk_path = dir.join("recipient.pub");
    std::fs::write(&pk_path, write_public_key(&recipient.public_key())).unwrap();
    let other_path = dir.join("other.pub");
    std::fs::write(&other_path, write_public_key(&other.public_key())).unwrap();

    let plain = dna(200 * 1024 + 7);
    let file = crypt4gh(
        &tool,
        &[
            "encrypt",
            "--sk",
            sender_path.to_str().unwrap(),
            "--recipient_pk",
            other_path.to_str().unwrap(),
            "--recipient_pk",
            pk_path.to_str().unwrap(),
        ],
        &plain,
    );
    for sk in [&recipient, &other] {
        let dec = Decryptor::new(file.as_slice(), sk).unwrap();
        assert_eq!(dec.sender_public_key(), &sender.public_key(), "the reference used our sender key");
        assert!(our_decrypt(&file, sk) == plain, "our decryption differs");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Key files from `crypt4gh-keygen` (scrypt-protected) load with our
/// readers, and the pair works end to end with the reference on the other
/// side of each direction.
#[test]
fn reference_keygen_files_load() {
    let (Some(keygen_tool), Some(tool)) = (reference_tool("crypt4gh-keygen"), reference_tool("crypt4gh")) else {
        return;
    };
    let dir = scratch("keygen");
    let (sk_path, pk_path) = keygen(&keygen_tool, &dir);
    let sk = read_secret_key(&read(&sk_path), Some(PASSPHRASE.as_bytes())).unwrap();
    let pk = read_public_key(&read(&pk_path)).unwrap();
    assert_eq!(sk.public_key(), pk, "secret and public key files disagree");
    assert!(read_secret_key(&read(&sk_path), Some(b"wrong")).is_err());
    assert_eq!(write_public_key(&pk), read(&pk_path), "public key file differs from keygen's");

    let plain = dna(150 * 1024);
    // Reference encrypts for the keygen public key; we decrypt with the
    // keygen secret key.
    let file = crypt4gh(&tool, &["encrypt", "--recipient_pk", pk_path.to_str().unwrap()], &plain);
    assert!(our_decrypt(&file, &sk) == plain);
    // We encrypt for the keygen public key; the reference decrypts with it.
    let file = our_encrypt(&plain, &SecretKey::generate(), &[pk]);
    assert!(crypt4gh(&tool, &["decrypt", "--sk", sk_path.to_str().unwrap()], &file) == plain);
    let _ = std::fs::remove_dir_all(dir);
}

/// An edit list written by `crypt4gh rearrange` (spanning segments) gives
/// the same plaintext through our reader as through `crypt4gh decrypt`.
#[test]
fn edit_list_from_reference_rearrange() {
    let Some(tool) = reference_tool("crypt4gh") else {
        return;
    };
    let dir = scratch("rearrange");
    let sk = SecretKey::generate();
    let sk_path = dir.join("ours.sec");
    std::fs::write(&sk_path, write_secret_key(&sk, Some(PASSPHRASE.as_bytes()))).unwrap();
    let plain = dna(200 * 1024);
    let file = our_encrypt(&plain, &SecretKey::generate(), &[sk.public_key()]);
    let sk_arg = sk_path.to_str().unwrap();
    for range in ["70000-140000", "100-70000", "65536-131072"] {
        let edited = crypt4gh(&tool, &["rearrange", "--sk", sk_arg, "--range", range], &file);
        let theirs = crypt4gh(&tool, &["decrypt", "--sk", sk_arg], &edited);
        let ours = our_decrypt(&edited, &sk);
        assert!(!ours.is_empty() && ours.len() < plain.len(), "{range}: the edit list was not applied");
        assert!(ours == theirs, "{range}: ours {} bytes, reference {} bytes", ours.len(), theirs.len());
    }
    let _ = std::fs::remove_dir_all(dir);
}
