//! Encrypted, signed model bundles.
//!
//! A bundle is one file:
//!
//! ```text
//! "SQSHMDL1"                      8 bytes
//! manifest length                 u32 big-endian, at most MAX_MANIFEST_BYTES
//! manifest                        JSON (Manifest)
//! signature length                u32 big-endian, at most MAX_SIGNATURE_LEN
//! signature                       ECDSA P-384 / SHA-384, ASN.1 DER, over
//!                                 SIGNING_CONTEXT || manifest
//! payload                         a seqshield container (docs/format.md):
//!                                 the model files, concatenated in manifest
//!                                 order, under a data key wrapped by a KEK
//! ```
//!
//! The manifest lists each file's name, size and SHA-256, the model's
//! `config.json`, a version, and the payload's Merkle root and length, so
//! the signature covers the encrypted payload as well as the plaintext.
//! [`SignedBundle::open`] checks, in order: the signature and signer, the
//! format, the version (when the operator pins one), then decrypts in
//! memory (locked pages, wiped on free) and checks the payload root, every
//! file's size and SHA-256 and the config. Each failure says which check
//! and which file. Plaintext never touches disk.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use aws_lc_rs::digest;
use seqshield_format::{Classification, DataKey, Header, SealedHeader, StreamReader, Writer, WriterOptions};
use seqshield_keys::sign::{Signer, VerifyingKey, MAX_SIGNATURE_LEN};
use seqshield_keys::{Kek, KeyError, Recipient};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::secmem::{self, Locked, WipeScope};

/// The file's first bytes.
pub const MAGIC: &[u8; 8] = b"SQSHMDL1";
/// The manifest's `format`.
pub const FORMAT: &str = "seqshield-model-bundle/1";
/// What the signature covers, before the manifest bytes (domain separation).
pub const SIGNING_CONTEXT: &[u8] = b"seqshield-model-bundle/1 manifest\n";
/// Largest manifest (bytes).
pub const MAX_MANIFEST_BYTES: usize = 1 << 20;
/// Most files in a bundle.
pub const MAX_FILES: usize = 64;
/// Largest model, all files together (bytes).
pub const MAX_MODEL_BYTES: u64 = 4 << 30;
/// Longest file name or version string.
pub const MAX_NAME_LEN: usize = 128;
/// The container's content type.
pub const CONTENT_TYPE: &str = "application/vnd.seqshield.model-bundle";

/// Why a bundle was refused. Each check has its own variant.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Not a bundle, or a damaged prefix.
    #[error("not a seqshield model bundle: {0}")]
    Malformed(String),
    /// The signature does not verify under the trusted key.
    #[error("the manifest signature does not verify under the trusted model-signing key {key_id}")]
    BadSignature {
        /// The trusted key.
        key_id: String,
    },
    /// Signed by another key than the trusted one.
    #[error("the bundle is signed by {found}, not by the trusted model-signing key {expected}")]
    UnknownSigner {
        /// The trusted key.
        expected: String,
        /// The key named in the manifest.
        found: String,
    },
    /// Another bundle format version.
    #[error("bundle format {found:?} is not supported (expected {FORMAT:?})")]
    Format {
        /// The manifest's format.
        found: String,
    },
    /// The version is not the one the operator pinned.
    #[error("model version {found:?} does not match the configured version {expected:?}")]
    Version {
        /// The configured version.
        expected: String,
        /// The manifest's version.
        found: String,
    },
    /// The encrypted payload is not the one the manifest was signed for.
    #[error("the encrypted payload does not match the signed manifest ({what})")]
    Payload {
        /// Which property differs.
        what: &'static str,
    },
    /// A file's SHA-256 differs from the manifest's.
    #[error("{file}: SHA-256 does not match the signed manifest")]
    Hash {
        /// The file.
        file: String,
    },
    /// A file's size differs from the manifest's.
    #[error("{file}: size does not match the signed manifest")]
    Size {
        /// The file.
        file: String,
    },
    /// `config.json` differs from the config in the manifest.
    #[error("config.json does not match the config in the signed manifest")]
    Config,
    /// A required file is missing (packing or in the manifest).
    #[error("the model has no {0}")]
    Missing(&'static str),
    /// Packing input is not acceptable.
    #[error("{0}")]
    Input(String),
    /// Key wrapping, unwrapping or signing failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The container could not be read or written.
    #[error("the encrypted payload: {0}")]
    Container(#[from] seqshield_format::FormatError),
}

/// One file in the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Name (no directory part).
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256, lower-case hex.
    pub sha256: String,
}

/// The payload the manifest was signed for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayloadEntry {
    /// The container's Merkle root, hex.
    pub merkle_root: String,
    /// Plaintext bytes (all files).
    pub plaintext_len: u64,
}

/// The signed manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// Model name.
    pub name: String,
    /// Model version, chosen by whoever packs it.
    pub version: String,
    /// Unix seconds.
    pub created: u64,
    /// The signing key's id (`ec-…`).
    pub signer: String,
    /// `ecdsa-p384-sha384`.
    pub algorithm: String,
    /// The files, in payload order.
    pub files: Vec<FileEntry>,
    /// The model's `config.json`.
    pub config: serde_json::Value,
    /// The encrypted payload.
    pub payload: PayloadEntry,
}

/// What to write into a new bundle's manifest.
#[derive(Clone, Debug)]
pub struct PackOptions {
    /// Model name.
    pub name: String,
    /// Model version.
    pub version: String,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> BundleError + '_ {
    move |source| BundleError::Io { path: path.to_owned(), source }
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, b).as_ref())
}

fn check_name(s: &str, what: &str) -> Result<(), BundleError> {
    let ok = !s.is_empty()
        && s.len() <= MAX_NAME_LEN
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+'))
        && !s.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(BundleError::Input(format!(
            "{what} {s:?} must be 1 to {MAX_NAME_LEN} of A-Z a-z 0-9 . _ - + (not starting with '.')"
        )))
    }
}

/// Packs the model directory `dir` (its regular files, not recursing:
/// `config.json`, `tokenizer.json` and one `*.safetensors` at least) into
/// the bundle `out`, encrypted for `recipients` and signed by `signer`.
/// Writes atomically: `out` appears complete or not at all.
pub fn pack(
    dir: &Path,
    out: &Path,
    opts: &PackOptions,
    signer: &dyn Signer,
    recipients: &[&dyn Recipient],
) -> Result<Manifest, BundleError> {
    check_name(&opts.name, "model name")?;
    check_name(&opts.version, "model version")?;
    if recipients.is_empty() {
        return Err(BundleError::Input("at least one key-encryption key must be able to open the bundle".into()));
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let ty = entry.file_type().map_err(io_err(&entry.path()))?;
        if !ty.is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        check_name(&name, "file name")?;
        names.push(name);
    }
    names.sort();
    if names.len() > MAX_FILES {
        return Err(BundleError::Input(format!("a model has at most {MAX_FILES} files")));
    }
    for need in ["config.json", "tokenizer.json"] {
        if !names.iter().any(|n| n == need) {
            return Err(BundleError::Missing(if need == "config.json" { "config.json" } else { "tokenizer.json" }));
        }
    }
    if names.iter().filter(|n| n.ends_with(".safetensors")).count() != 1 {
        return Err(BundleError::Input("the model directory must hold exactly one *.safetensors file".into()));
    }
    // Plaintext is read, hashed and encrypted in memory under a wipe scope.
    let _wipe = WipeScope::enter();
    let mut files = Vec::new();
    let mut plain: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::new());
    let mut total = 0u64;
    let mut sizes = Vec::new();
    for name in &names {
        let p = dir.join(name);
        let len = std::fs::metadata(&p).map_err(io_err(&p))?.len();
        total += len;
        if total > MAX_MODEL_BYTES {
            return Err(BundleError::Input(format!("the model is larger than {MAX_MODEL_BYTES} bytes")));
        }
        sizes.push(len);
    }
    plain.reserve_exact(total as usize);
    for (name, &len) in names.iter().zip(&sizes) {
        let p = dir.join(name);
        let start = plain.len();
        File::open(&p).map_err(io_err(&p))?.take(len).read_to_end(&mut plain).map_err(io_err(&p))?;
        if plain.len() - start != len as usize {
            return Err(BundleError::Input(format!("{name} changed while it was read")));
        }
        files.push(FileEntry { name: name.clone(), size: len, sha256: sha256_hex(&plain[start..]) });
    }
    let _lock = secmem::lock(&plain);
    let config_bytes = slice_of(&plain, &files, "config.json").ok_or(BundleError::Missing("config.json"))?;
    let config: serde_json::Value = serde_json::from_slice(config_bytes)
        .map_err(|e| BundleError::Input(format!("config.json is not JSON: {e}")))?;
    if !config.is_object() {
        return Err(BundleError::Input("config.json must be a JSON object".into()));
    }

    let data_key = DataKey::generate();
    let wrapped = recipients.iter().map(|r| r.wrap(&data_key)).collect::<Result<Vec<_>, _>>()?;
    let header = Header::new(Classification::Restricted, CONTENT_TYPE, wrapped)?;
    let mut w = Writer::new(Vec::with_capacity(plain.len() + (1 << 20)), &header, &data_key)
        .map_err(seqshield_format::FormatError::Io)?;
    w.write_all(&plain).map_err(seqshield_format::FormatError::Io)?;
    let sealed = w.finish().map_err(seqshield_format::FormatError::Io)?;
    drop(plain);

    let manifest = Manifest {
        format: FORMAT.into(),
        name: opts.name.clone(),
        version: opts.version.clone(),
        created: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        signer: signer.verifying_key().key_id().to_owned(),
        algorithm: signer.verifying_key().algorithm().name().to_owned(),
        files,
        config,
        payload: PayloadEntry {
            merkle_root: hex::encode(sealed.summary.merkle_root),
            plaintext_len: sealed.summary.plaintext_len,
        },
    };
    let manifest_bytes = serde_json::to_vec_pretty(&manifest).expect("a manifest serialises");
    let signature = signer.sign(&signed_message(&manifest_bytes))?;

    let tmp = out.with_extension("bundle.partial");
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(MAGIC)?;
        f.write_all(&(manifest_bytes.len() as u32).to_be_bytes())?;
        f.write_all(&manifest_bytes)?;
        f.write_all(&(signature.len() as u32).to_be_bytes())?;
        f.write_all(&signature)?;
        f.write_all(&sealed.inner)?;
        f.sync_all()?;
        std::fs::rename(&tmp, out)?;
        if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            File::open(parent)?.sync_all()?;
        }
        Ok(())
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(BundleError::Io { path: out.to_owned(), source: e });
    }
    Ok(manifest)
}

fn signed_message(manifest: &[u8]) -> Vec<u8> {
    let mut m = SIGNING_CONTEXT.to_vec();
    m.extend_from_slice(manifest);
    m
}

fn slice_of<'a>(plain: &'a [u8], files: &[FileEntry], name: &str) -> Option<&'a [u8]> {
    let mut off = 0usize;
    for f in files {
        let end = off + f.size as usize;
        if f.name == name {
            return plain.get(off..end);
        }
        off = end;
    }
    None
}

/// A bundle whose prefix has been read but not yet trusted.
#[derive(Debug)]
pub struct SignedBundle {
    path: PathBuf,
    manifest_bytes: Vec<u8>,
    signature: Vec<u8>,
    payload_offset: u64,
}

impl SignedBundle {
    /// Reads the prefix of the bundle at `path` (magic, manifest,
    /// signature). Trusts nothing yet.
    pub fn read(path: &Path) -> Result<Self, BundleError> {
        let mut f = File::open(path).map_err(io_err(path))?;
        let mut magic = [0u8; 8];
        read_exact(&mut f, &mut magic, "the file is shorter than the magic")?;
        if &magic != MAGIC {
            return Err(BundleError::Malformed("wrong magic".into()));
        }
        let mlen = read_len(&mut f, MAX_MANIFEST_BYTES, "manifest")?;
        let mut manifest_bytes = vec![0u8; mlen];
        read_exact(&mut f, &mut manifest_bytes, "the manifest is truncated")?;
        let slen = read_len(&mut f, MAX_SIGNATURE_LEN, "signature")?;
        let mut signature = vec![0u8; slen];
        read_exact(&mut f, &mut signature, "the signature is truncated")?;
        let payload_offset = (8 + 4 + mlen + 4 + slen) as u64;
        Ok(Self { path: path.to_owned(), manifest_bytes, signature, payload_offset })
    }

    /// Checks the signature under `trusted` and parses the manifest.
    pub fn verify_signature(&self, trusted: &VerifyingKey) -> Result<Manifest, BundleError> {
        trusted
            .verify(&signed_message(&self.manifest_bytes), &self.signature)
            .map_err(|_| BundleError::BadSignature { key_id: trusted.key_id().to_owned() })?;
        let m: Manifest = serde_json::from_slice(&self.manifest_bytes)
            .map_err(|e| BundleError::Malformed(format!("the signed manifest does not parse: {e}")))?;
        if m.signer != trusted.key_id() {
            return Err(BundleError::UnknownSigner { expected: trusted.key_id().to_owned(), found: m.signer });
        }
        if m.format != FORMAT {
            return Err(BundleError::Format { found: m.format });
        }
        if m.files.is_empty() || m.files.len() > MAX_FILES {
            return Err(BundleError::Malformed(format!("a bundle lists 1 to {MAX_FILES} files")));
        }
        let total: u64 = m.files.iter().map(|f| f.size).fold(0u64, u64::saturating_add);
        if total > MAX_MODEL_BYTES || total != m.payload.plaintext_len {
            return Err(BundleError::Malformed("the listed file sizes do not add up to the payload".into()));
        }
        Ok(m)
    }

    /// The manifest as signed, without checking anything (for display).
    pub fn unverified_manifest(&self) -> Result<Manifest, BundleError> {
        serde_json::from_slice(&self.manifest_bytes).map_err(|e| BundleError::Malformed(format!("manifest: {e}")))
    }

    /// Verifies everything and decrypts the files into locked memory.
    pub fn open(
        &self,
        trusted: &VerifyingKey,
        kek: &dyn Kek,
        expected_version: Option<&str>,
    ) -> Result<ModelFiles, BundleError> {
        let manifest = self.verify_signature(trusted)?;
        if let Some(v) = expected_version {
            if manifest.version != v {
                return Err(BundleError::Version { expected: v.to_owned(), found: manifest.version });
            }
        }
        let _wipe = WipeScope::enter();
        let mut f = File::open(&self.path).map_err(io_err(&self.path))?;
        std::io::copy(&mut (&mut f).take(self.payload_offset), &mut std::io::sink()).map_err(io_err(&self.path))?;
        let mut input = std::io::BufReader::new(f);
        let sealed = SealedHeader::read_from(&mut input)?;
        let (data_key, header) = seqshield_keys::unlock(sealed, &[kek])?;
        // Both cores decrypt; each file is hashed as its bytes arrive (still
        // in cache), so the model is read once.
        let mut reader = StreamReader::with_options(input, &header, &data_key, WriterOptions::parallel());
        let mut bufs: Vec<Zeroizing<Vec<u8>>> = Vec::with_capacity(manifest.files.len());
        let mut hashers: Vec<digest::Context> = Vec::with_capacity(manifest.files.len());
        let mut locks = Vec::with_capacity(manifest.files.len());
        for fe in &manifest.files {
            let mut v = Vec::new();
            v.try_reserve_exact(fe.size as usize)
                .map_err(|_| BundleError::Malformed(format!("{}: cannot allocate {} bytes", fe.name, fe.size)))?;
            bufs.push(Zeroizing::new(v));
            hashers.push(digest::Context::new(&digest::SHA256));
        }
        let mut i = 0usize;
        while let Some(mut chunk) = reader.next_chunk()? {
            while !chunk.is_empty() {
                while i < bufs.len() && bufs[i].len() as u64 == manifest.files[i].size {
                    i += 1;
                }
                let Some(buf) = bufs.get_mut(i) else {
                    return Err(BundleError::Payload { what: "it is longer than the listed files" });
                };
                let room = manifest.files[i].size as usize - buf.len();
                let take = room.min(chunk.len());
                buf.extend_from_slice(&chunk[..take]);
                hashers[i].update(&chunk[..take]);
                chunk = &chunk[take..];
            }
        }
        let summary = reader.summary().ok_or(BundleError::Payload { what: "it ended early" })?;
        if hex::encode(summary.merkle_root) != manifest.payload.merkle_root {
            return Err(BundleError::Payload { what: "Merkle root" });
        }
        if summary.plaintext_len != manifest.payload.plaintext_len {
            return Err(BundleError::Payload { what: "length" });
        }
        let mut digests = Vec::with_capacity(manifest.files.len());
        for ((fe, buf), h) in manifest.files.iter().zip(&bufs).zip(hashers) {
            if buf.len() as u64 != fe.size {
                return Err(BundleError::Size { file: fe.name.clone() });
            }
            let d = h.finish();
            if hex::encode(d.as_ref()) != fe.sha256 {
                return Err(BundleError::Hash { file: fe.name.clone() });
            }
            let mut out = [0u8; 32];
            out.copy_from_slice(d.as_ref());
            digests.push(out);
            locks.push(secmem::lock(buf));
        }
        let files: Vec<(String, Zeroizing<Vec<u8>>)> =
            manifest.files.iter().map(|f| f.name.clone()).zip(bufs).collect();
        let config = files.iter().find(|(n, _)| n == "config.json").ok_or(BundleError::Missing("config.json"))?;
        let parsed: serde_json::Value = serde_json::from_slice(&config.1).map_err(|_| BundleError::Config)?;
        if parsed != manifest.config {
            return Err(BundleError::Config);
        }
        Ok(ModelFiles { manifest, files, digests, _locks: locks })
    }
}

fn read_exact(f: &mut File, buf: &mut [u8], why: &str) -> Result<(), BundleError> {
    f.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => BundleError::Malformed(why.into()),
        _ => BundleError::Malformed(format!("{why}: {e}")),
    })
}

fn read_len(f: &mut File, max: usize, what: &str) -> Result<usize, BundleError> {
    let mut b = [0u8; 4];
    read_exact(f, &mut b, &format!("the {what} length is truncated"))?;
    let n = u32::from_be_bytes(b) as usize;
    if n == 0 || n > max {
        return Err(BundleError::Malformed(format!("the {what} length {n} is outside 1..={max}")));
    }
    Ok(n)
}

/// A verified model's files, decrypted into locked memory that is zeroed
/// when dropped.
pub struct ModelFiles {
    /// The verified manifest.
    pub manifest: Manifest,
    files: Vec<(String, Zeroizing<Vec<u8>>)>,
    /// Each file's SHA-256, in manifest order, as checked.
    digests: Vec<[u8; 32]>,
    _locks: Vec<Locked>,
}

impl std::fmt::Debug for ModelFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelFiles")
            .field("name", &self.manifest.name)
            .field("version", &self.manifest.version)
            .field("files", &self.files.iter().map(|(n, b)| (n, b.len())).collect::<Vec<_>>())
            .finish()
    }
}

impl ModelFiles {
    /// A file's bytes.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.files.iter().find(|(n, _)| n == name).map(|(_, b)| b.as_slice())
    }

    /// A file's SHA-256, as checked against the signed manifest.
    pub fn sha256(&self, name: &str) -> Option<[u8; 32]> {
        self.manifest.files.iter().position(|f| f.name == name).map(|i| self.digests[i])
    }

    /// Takes a file's buffer out (zeroed when the taker drops it).
    pub fn take(&mut self, name: &str) -> Option<Zeroizing<Vec<u8>>> {
        let i = self.files.iter().position(|(n, _)| n == name)?;
        Some(self.files.swap_remove(i).1)
    }

    /// The weights file's name (`*.safetensors`).
    pub fn weights_name(&self) -> Option<String> {
        self.files.iter().map(|(n, _)| n).find(|n| n.ends_with(".safetensors")).cloned()
    }

    /// Whether every file's pages are locked against swapping.
    pub fn all_locked(&self) -> bool {
        self._locks.iter().all(|l| l.is_locked() || l.is_empty())
    }
}

#[cfg(test)]
mod tests;
