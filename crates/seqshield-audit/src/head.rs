//! Signed tree heads (STH): what the log commits to, signed.
//!
//! A head names the log (`origin`), a tree size, the RFC 9162 root of the
//! first `size` entries, and when it was signed. The signature is over a
//! text body in the shape of a C2SP transparency-log checkpoint:
//!
//! ```text
//! <origin>
//! <size>
//! <root, standard base64>
//! timestamp <milliseconds since the Unix epoch>
//! key <key id> <algorithm>
//! ```
//!
//! each line ending in `\n`. The signature is ECDSA P-384 over SHA-384 of
//! those bytes (ASN.1 DER), by a [`Signer`] from `seqshield-keys` (a
//! passphrase-protected file or a PKCS#11 token). Binding the key id into
//! the body means a head cannot be passed off as another key's.
//!
//! The log keeps its heads in [`HEADS_FILE`], one JSON object a line,
//! appended and synced; [`HeadFile`] reads and appends it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use seqshield_keys::sign::{Signer, VerifyingKey};
use seqshield_merkle::Hash;
use serde::{Deserialize, Serialize};

use crate::error::{Error, HeadError};
use crate::log::TreeHead;

/// The heads file's name inside the log directory.
pub const HEADS_FILE: &str = "heads.jsonl";

/// The public key of the log's head-signing key, PEM, beside the log (so
/// `verify` can run with nothing else; pin the key with a witness).
pub const KEY_FILE: &str = "sth-key.pub.pem";

/// The origin line when none is configured.
pub const DEFAULT_ORIGIN: &str = "seqshield-audit";

/// Longest origin, in bytes.
pub const MAX_ORIGIN_LEN: usize = 128;

/// Longest line of the heads file we read (a head is about 400 bytes).
pub const MAX_HEAD_LINE: usize = 4096;

/// A signed tree head.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedTreeHead {
    /// Which log.
    pub origin: String,
    /// Number of entries.
    pub size: u64,
    /// `MTH` of those entries, hex.
    #[serde(with = "hex_hash")]
    pub root: Hash,
    /// When it was signed, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// The signing key's id (`VerifyingKey::key_id`).
    pub key_id: String,
    /// The signature algorithm's name.
    pub algorithm: String,
    /// The signature over [`body`](Self::body), standard base64.
    #[serde(with = "b64")]
    pub signature: Vec<u8>,
}

impl SignedTreeHead {
    /// Signs `head` as of `timestamp_ms`.
    pub fn sign(origin: &str, head: TreeHead, timestamp_ms: u64, signer: &dyn Signer) -> Result<Self, Error> {
        check_origin(origin)?;
        let key = signer.verifying_key();
        let mut sth = Self {
            origin: origin.to_owned(),
            size: head.size,
            root: head.root,
            timestamp_ms,
            key_id: key.key_id().to_owned(),
            algorithm: key.algorithm().name().to_owned(),
            signature: Vec::new(),
        };
        sth.signature = signer.sign(sth.body().as_bytes()).map_err(|e| Error::Sign(e.to_string()))?;
        Ok(sth)
    }

    /// The signed text.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\ntimestamp {}\nkey {} {}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root),
            self.timestamp_ms,
            self.key_id,
            self.algorithm
        )
    }

    /// The tree head it signs.
    pub fn tree_head(&self) -> TreeHead {
        TreeHead { size: self.size, root: self.root }
    }

    /// Checks the signature with `key`, which must be the key the head
    /// names.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), HeadError> {
        check_origin(&self.origin).map_err(|_| HeadError::BadOrigin)?;
        if self.key_id != key.key_id() {
            return Err(HeadError::OtherKey { signed_by: self.key_id.clone(), expected: key.key_id().to_owned() });
        }
        if self.algorithm != key.algorithm().name() {
            return Err(HeadError::Algorithm(self.algorithm.clone()));
        }
        key.verify(self.body().as_bytes(), &self.signature).map_err(|_| HeadError::BadSignature)
    }

    /// One line of the heads file (no newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("a head serializes")
    }

    /// Parses one line of the heads file.
    pub fn from_line(line: &str) -> Result<Self, HeadError> {
        if line.len() > MAX_HEAD_LINE {
            return Err(HeadError::Malformed(format!("line of {} bytes", line.len())));
        }
        serde_json::from_str(line).map_err(|e| HeadError::Malformed(e.to_string()))
    }
}

/// Origins are one line of printable ASCII.
pub(crate) fn check_origin(origin: &str) -> Result<(), Error> {
    if origin.is_empty() || origin.len() > MAX_ORIGIN_LEN || !origin.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(Error::BadOrigin(origin.chars().take(MAX_ORIGIN_LEN).collect()));
    }
    Ok(())
}

/// The heads file of one log directory: append-only JSON lines.
#[derive(Debug)]
pub struct HeadFile {
    path: PathBuf,
    file: File,
}

/// What reading a heads file found.
#[derive(Debug, Default)]
pub struct ReadHeads {
    /// Each complete line, in file order, parsed or not.
    pub heads: Vec<Result<SignedTreeHead, HeadError>>,
    /// Byte offset and length of an unterminated last line (a crash
    /// while appending), which readers ignore.
    pub torn: Option<(u64, u64)>,
}

impl HeadFile {
    /// Opens (creating, mode 0600) the heads file in `dir` for appending.
    /// An unterminated last line (a crash while appending) is saved
    /// beside the file and cut; complete lines are never touched.
    pub fn open(dir: &Path) -> Result<(Self, ReadHeads), Error> {
        let path = dir.join(HEADS_FILE);
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)
            .map_err(|source| Error::Open { path: path.clone(), source })?;
        let read = read_heads(&path)?;
        if let Some((offset, len)) = read.torn {
            let bytes = std::fs::read(&path).map_err(|source| Error::Read { path: path.clone(), source })?;
            let saved = dir.join(format!("{HEADS_FILE}.torn-{offset}"));
            std::fs::write(&saved, &bytes[offset as usize..(offset + len) as usize])
                .map_err(|source| Error::Write { path: saved.clone(), source })?;
            file.set_len(offset).map_err(|source| Error::Truncate { path: path.clone(), source })?;
            file.sync_all().map_err(|source| Error::Sync { path: path.clone(), source })?;
        }
        crate::log::recover::sync_dir(dir)?;
        Ok((Self { path, file }, read))
    }

    /// Appends `head` and syncs it.
    pub fn append(&mut self, head: &SignedTreeHead) -> Result<(), Error> {
        let mut line = head.to_line();
        line.push('\n');
        self.file.write_all(line.as_bytes()).map_err(|source| Error::Write { path: self.path.clone(), source })?;
        self.file.sync_data().map_err(|source| Error::Sync { path: self.path.clone(), source })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads the heads file at `path` without changing it. A missing file
/// reads as no heads.
pub fn read_heads(path: &Path) -> Result<ReadHeads, Error> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(f) => {
            f.take(64 * 1024 * 1024 * 1024)
                .read_to_end(&mut bytes)
                .map_err(|source| Error::Read { path: path.to_owned(), source })?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ReadHeads::default()),
        Err(source) => return Err(Error::Open { path: path.to_owned(), source }),
    }
    let mut out = ReadHeads::default();
    let mut start = 0usize;
    while start < bytes.len() {
        let Some(nl) = bytes[start..].iter().position(|&b| b == b'\n') else {
            out.torn = Some((start as u64, (bytes.len() - start) as u64));
            break;
        };
        let line = &bytes[start..start + nl];
        out.heads.push(
            std::str::from_utf8(line)
                .map_err(|_| HeadError::Malformed("not UTF-8".into()))
                .and_then(SignedTreeHead::from_line),
        );
        start += nl + 1;
    }
    Ok(out)
}

mod hex_hash {
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(h: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(h))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        let v = hex::decode(&s).map_err(D::Error::custom)?;
        v.try_into().map_err(|_| D::Error::custom("a root is 32 bytes"))
    }
}

mod b64 {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(b))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        if s.len() > 1024 {
            return Err(D::Error::custom("signature too long"));
        }
        STANDARD.decode(s).map_err(D::Error::custom)
    }
}
