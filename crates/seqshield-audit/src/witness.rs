//! Witness checkpoints: a signed tree head kept somewhere the operator
//! cannot rewrite.
//!
//! A checkpoint file holds one [`SignedTreeHead`], the public key that
//! signed it (so the checkpoint pins the key), and the heads of the tree's
//! aligned spans of `span` leaves (a power of two, at most [`MAX_SPANS`]
//! spans). `seqshield audit verify --witness FILE` checks that the log
//! still has the checkpoint's tree as its prefix and is signed by its key.
//! The signed root decides; the span heads only say *where* a log that
//! fails went wrong: with up to 4,096 entries, to the entry, beyond that to
//! one span of `size / 4096` entries or fewer.
//!
//! ```json
//! {"format":"seqshield-audit-checkpoint/v1","head":{...},"public_key":"-----BEGIN PUBLIC KEY-----\n...","span":1,"span_heads":"<base64>"}
//! ```

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use seqshield_keys::sign::VerifyingKey;
use seqshield_merkle::{root_of, Hash};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::head::SignedTreeHead;

/// The `format` of a checkpoint file.
pub const CHECKPOINT_FORMAT: &str = "seqshield-audit-checkpoint/v1";

/// Most span heads a checkpoint holds (128 KiB of hashes).
pub const MAX_SPANS: u64 = 4096;

/// Largest checkpoint file read.
const MAX_FILE: u64 = 1024 * 1024;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    format: String,
    head: SignedTreeHead,
    public_key: String,
    span: u64,
    span_heads: String,
}

/// A witness checkpoint.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    head: SignedTreeHead,
    key: VerifyingKey,
    span: u64,
    span_heads: Vec<Hash>,
}

/// Leaves per span for a tree of `size`: the smallest power of two that
/// keeps the spans at or under [`MAX_SPANS`].
pub fn span_for(size: u64) -> u64 {
    let mut span = 1u64;
    while size / span > MAX_SPANS {
        span *= 2;
    }
    span
}

impl Checkpoint {
    /// A checkpoint of `head`, signed by `key`, over the tree whose first
    /// `head.size` leaf hashes are `leaves` (more are ignored). Checks the
    /// signature and that the leaves give the head's root.
    pub fn new(head: SignedTreeHead, key: VerifyingKey, leaves: &[Hash]) -> Result<Self, Error> {
        head.verify(&key).map_err(|problem| Error::BadCheckpoint(format!("its head: {problem}")))?;
        let size = usize::try_from(head.size).map_err(|_| Error::BadCheckpoint("size".into()))?;
        let leaves = leaves.get(..size).ok_or(Error::SizeBeyondLog { size: head.size, len: leaves.len() as u64 })?;
        if root_of(leaves) != head.root {
            return Err(Error::BadCheckpoint(format!(
                "the log's tree at size {} does not match the signed head",
                head.size
            )));
        }
        let span = span_for(head.size);
        let span_heads = leaves.chunks_exact(span as usize).map(root_of).collect();
        Ok(Self { head, key, span, span_heads })
    }

    /// A checkpoint of the latest head of the log at `log` (a directory or
    /// its file) that verifies: the log is verified first
    /// ([`verify_log`](crate::verify_log)) and a log with any finding is
    /// refused. Works on a live log (read-only).
    pub fn of_log(log: &Path, opts: &crate::VerifyOptions) -> Result<Self, Error> {
        let report = crate::verify_log(log, opts)?;
        if let Some(f) = report.first_bad() {
            return Err(Error::BadCheckpoint(format!(
                "the log does not verify: first bad index {}: {}",
                f.index, f.message
            )));
        }
        let head =
            report.latest_ok.ok_or_else(|| Error::BadCheckpoint("the log has no signed tree head yet".into()))?;
        let key = match (&opts.witness, &opts.key) {
            (Some(w), _) => w.key().clone(),
            (None, Some(k)) => k.clone(),
            (None, None) => {
                let dir =
                    if log.is_dir() { log.to_owned() } else { log.parent().map(Path::to_owned).unwrap_or_default() };
                let path = dir.join(crate::head::KEY_FILE);
                VerifyingKey::read(&path)
                    .map_err(|e| Error::BadCheckpoint(format!("key file {}: {e}", path.display())))?
            }
        };
        let path = if log.is_dir() { log.join(crate::log::LOG_FILE) } else { log.to_owned() };
        let leaves = crate::verify::leaf_hashes(&path, head.size)?;
        Self::new(head, key, &leaves)
    }

    /// The signed head.
    pub fn head(&self) -> &SignedTreeHead {
        &self.head
    }

    /// The pinned key.
    pub fn key(&self) -> &VerifyingKey {
        &self.key
    }

    /// Leaves per span.
    pub fn span(&self) -> u64 {
        self.span
    }

    /// The head of each whole span, in order.
    pub fn span_heads(&self) -> &[Hash] {
        &self.span_heads
    }

    /// Writes the checkpoint to `path` (mode 0644: it is public), under a
    /// temporary name first, synced, then renamed into place.
    pub fn write(&self, path: &Path) -> Result<(), Error> {
        let mut heads = Vec::with_capacity(self.span_heads.len() * 32);
        for h in &self.span_heads {
            heads.extend_from_slice(h);
        }
        let file = File {
            format: CHECKPOINT_FORMAT.to_owned(),
            head: self.head.clone(),
            public_key: self.key.to_pem(),
            span: self.span,
            span_heads: STANDARD.encode(heads),
        };
        let mut json = serde_json::to_vec_pretty(&file).expect("a checkpoint serializes");
        json.push(b'\n');
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("checkpoint");
        let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
        let write = |tmp: &Path| -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o644).open(tmp)?;
            f.write_all(&json)?;
            f.sync_all()
        };
        if let Err(source) = write(&tmp) {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::Write { path: path.to_owned(), source });
        }
        std::fs::rename(&tmp, path).map_err(|source| {
            let _ = std::fs::remove_file(&tmp);
            Error::Write { path: path.to_owned(), source }
        })?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::log::recover::sync_dir(dir)?;
        }
        Ok(())
    }

    /// Reads and checks a checkpoint file: its format, its key, the head's
    /// signature by that key, and the number of span heads.
    pub fn read(path: &Path) -> Result<Self, Error> {
        let f = std::fs::File::open(path).map_err(|source| Error::Open { path: path.to_owned(), source })?;
        let mut bytes = Vec::new();
        f.take(MAX_FILE + 1).read_to_end(&mut bytes).map_err(|source| Error::Read { path: path.to_owned(), source })?;
        if bytes.len() as u64 > MAX_FILE {
            return Err(Error::BadCheckpoint(format!("{} is over {MAX_FILE} bytes", path.display())));
        }
        let bad = |why: String| Error::BadCheckpoint(format!("{}: {why}", path.display()));
        let file: File = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        if file.format != CHECKPOINT_FORMAT {
            return Err(bad(format!("format {:?}, expected {CHECKPOINT_FORMAT:?}", file.format)));
        }
        let key = VerifyingKey::from_pem(&file.public_key).map_err(|e| bad(format!("public key: {e}")))?;
        file.head.verify(&key).map_err(|e| bad(format!("head: {e}")))?;
        if file.span != span_for(file.head.size) {
            return Err(bad(format!(
                "span {} for size {}, expected {}",
                file.span,
                file.head.size,
                span_for(file.head.size)
            )));
        }
        let raw = STANDARD.decode(&file.span_heads).map_err(|e| bad(format!("span heads: {e}")))?;
        if raw.len() as u64 != file.head.size / file.span * 32 {
            return Err(bad("wrong number of span heads".into()));
        }
        let span_heads = raw.chunks_exact(32).map(|c| c.try_into().expect("32 bytes")).collect();
        Ok(Self { head: file.head, key, span: file.span, span_heads })
    }
}
