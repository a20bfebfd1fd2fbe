//! The log: events appended durably to a file, as leaves of a Merkle tree.
//!
//! [`AuditLog::open`] takes a directory, locks its log file against other
//! writers, recovers it ([`recover`]) and rebuilds the tree;
//! [`AuditLog::append`] returns an event's index only once `fdatasync`
//! covered it ([`group`] commit). The tree is a
//! [`StoredTree`]: every leaf hash plus cached
//! chunk heads (proofs at any size in O(n / 256 + 256 log n) hashes) and the
//! compact right border (the head after each append in O(log n)). The head,
//! inclusion proofs and consistency proofs describe durable entries only.

pub mod group;
pub mod recover;
mod signing;

use std::fs::{DirBuilder, File, OpenOptions};
use std::ops::Range;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{RwLock, RwLockReadGuard};

use seqshield_merkle::{leaf_hash, Hash, StoredTree};

pub use self::group::MAX_BATCH_BYTES;
use self::group::{Durable, GroupCommit, Pending};
pub use self::recover::{TornTail, MAX_TORN_TAIL};
use self::signing::Signing;
pub use self::signing::{HeadPolicy, HeadTimer};
use crate::error::Error;
use crate::event::Event;
use crate::record::{self, MAX_ENTRY_LEN, RECORD_OVERHEAD};

/// The log file's name inside the log directory.
pub const LOG_FILE: &str = "events.sqa";

/// A tree size and its head: what a signed tree head will sign.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeHead {
    /// Number of entries.
    pub size: u64,
    /// `MTH` of those entries (RFC 9162 §2.1.1).
    pub root: Hash,
}

#[derive(Debug)]
struct Tree {
    hashes: StoredTree,
    /// File offset of each record.
    offsets: Vec<u64>,
    /// File offset after the last durable record.
    end: u64,
}

/// A tamper-evident, append-only audit log in one directory.
///
/// One process at a time: opening takes an exclusive `flock` on the file.
/// Share it between threads with `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct AuditLog {
    dir: PathBuf,
    path: PathBuf,
    file: File,
    group: GroupCommit,
    tree: RwLock<Tree>,
    torn: Option<TornTail>,
    signing: Option<Signing>,
}

impl AuditLog {
    /// Opens the log in `dir`, creating the directory (mode 0700) and the
    /// file (mode 0600) if needed. A torn tail left by a crash is saved
    /// beside the log and cut ([`torn_tail`](Self::torn_tail) says so);
    /// damage further back fails with [`Error::Corrupt`].
    pub fn open(dir: &Path) -> Result<Self, Error> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| Error::CreateDir { path: dir.to_owned(), source })?;
        let path = dir.join(LOG_FILE);
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|source| Error::Open { path: path.clone(), source })?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive)
            .map_err(|e| Error::Locked { path: path.clone(), source: e.into() })?;
        if !existed {
            recover::sync_dir(dir)?;
        }
        let r = recover::recover(&file, &path, dir)?;
        let group = GroupCommit::new(r.leaves.len() as u64, r.end, r.chain);
        let tree = Tree { hashes: StoredTree::from_leaves(r.leaves), offsets: r.offsets, end: r.end };
        Ok(Self { dir: dir.to_owned(), path, file, group, tree: RwLock::new(tree), torn: r.torn, signing: None })
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What opening cut from the end of the file, if anything.
    pub fn torn_tail(&self) -> Option<&TornTail> {
        self.torn.as_ref()
    }

    fn read_tree(&self) -> RwLockReadGuard<'_, Tree> {
        self.tree.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends one event; returns its index once it is on disk.
    pub fn append(&self, event: &Event) -> Result<u64, Error> {
        self.append_entries(&[event.to_entry()]).map(|r| r.start)
    }

    /// Appends events in order; returns their indices once all are on
    /// disk. Large runs are written in several batches, so after an error
    /// a prefix of them may have been recorded.
    pub fn append_all(&self, events: &[Event]) -> Result<Range<u64>, Error> {
        let entries: Vec<Vec<u8>> = events.iter().map(Event::to_entry).collect();
        self.append_entries(&entries)
    }

    /// Appends raw entries. Private: every entry of the log is an event's
    /// canonical encoding (unit tests feed the CT vectors through here).
    fn append_entries(&self, entries: &[Vec<u8>]) -> Result<Range<u64>, Error> {
        let mut pending = Vec::with_capacity(entries.len());
        for entry in entries {
            if entry.len() > MAX_ENTRY_LEN {
                return Err(Error::EntryTooLarge { len: entry.len(), max: MAX_ENTRY_LEN });
            }
            let mut head = Vec::with_capacity(entry.len() + RECORD_OVERHEAD);
            let crc = record::encode_head(entry, &mut head);
            pending.push(Pending { head, crc, leaf: leaf_hash(entry) });
        }
        if pending.is_empty() {
            let len = self.len();
            return Ok(len..len);
        }
        let publish = |d: Durable<'_>| {
            let mut t = self.tree.write().unwrap_or_else(|p| p.into_inner());
            for leaf in d.leaves {
                t.hashes.push(*leaf);
            }
            t.offsets.extend_from_slice(d.offsets);
            t.end = d.end;
        };
        let range = self.group.commit(pending, &self.file, &self.path, &publish)?;
        if let Some(s) = &self.signing {
            s.appended(range.end);
        }
        Ok(range)
    }

    /// Number of durable entries.
    pub fn len(&self) -> u64 {
        self.read_tree().hashes.len()
    }

    /// Whether the log has no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The head of the tree of all durable entries, in O(log n).
    pub fn root(&self) -> Hash {
        self.tree_head().root
    }

    /// Size and head together (one consistent snapshot).
    pub fn tree_head(&self) -> TreeHead {
        let t = self.read_tree();
        TreeHead { size: t.hashes.len(), root: t.hashes.root() }
    }

    /// The head of the tree of the first `size` entries.
    pub fn root_at(&self, size: u64) -> Result<Hash, Error> {
        let t = self.read_tree();
        check_size(&t, size)?;
        Ok(t.hashes.root_at(size)?)
    }

    /// The leaf hash of entry `index`.
    pub fn leaf_hash(&self, index: u64) -> Result<Hash, Error> {
        let t = self.read_tree();
        let i = check_index(&t, index)?;
        Ok(t.hashes.leaves()[i])
    }

    /// The bytes of entry `index`, read back from the file and checked
    /// against its record checksum and its leaf hash.
    pub fn entry(&self, index: u64) -> Result<Vec<u8>, Error> {
        let (offset, end, leaf) = {
            let t = self.read_tree();
            let i = check_index(&t, index)?;
            (t.offsets[i], t.offsets.get(i + 1).copied().unwrap_or(t.end), t.hashes.leaves()[i])
        };
        let mut rec = vec![0u8; (end - offset) as usize];
        self.file.read_exact_at(&mut rec, offset).map_err(|source| Error::Read { path: self.path.clone(), source })?;
        let mut scanner = record::Scanner::new(rec.as_slice(), offset);
        match scanner.next_record().map_err(|source| Error::Read { path: self.path.clone(), source })? {
            record::Step::Record { entry, .. } if leaf_hash(entry) == leaf => Ok(entry.to_vec()),
            record::Step::Damaged { damage, .. } => {
                Err(Error::Corrupt { path: self.path.clone(), offset, tail: 0, damage })
            }
            _ => Err(Error::Corrupt { path: self.path.clone(), offset, tail: 0, damage: record::Damage::BadChecksum }),
        }
    }

    /// Entry `index`, decoded.
    pub fn event(&self, index: u64) -> Result<Event, Error> {
        Ok(Event::from_entry(&self.entry(index)?)?)
    }

    /// The inclusion proof of entry `index` in the tree of the first `size`
    /// entries (RFC 9162 §2.1.3.1).
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, Error> {
        let t = self.read_tree();
        check_size(&t, size)?;
        Ok(t.hashes.inclusion_proof(index, size)?)
    }

    /// The consistency proof from the tree of the first `first` entries to
    /// the tree of the first `second` (RFC 9162 §2.1.4.1).
    pub fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<Hash>, Error> {
        let t = self.read_tree();
        check_size(&t, second)?;
        Ok(t.hashes.consistency_proof(first, second)?)
    }
}

fn check_index(t: &Tree, index: u64) -> Result<usize, Error> {
    let len = t.hashes.len();
    if index >= len {
        return Err(Error::NoSuchEntry { index, len });
    }
    Ok(index as usize)
}

fn check_size(t: &Tree, size: u64) -> Result<(), Error> {
    let len = t.hashes.len();
    if size > len {
        return Err(Error::SizeBeyondLog { size, len });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Arc;

    use seqshield_merkle::{verify_consistency, verify_inclusion};

    use super::*;
    use crate::event::{Decision, Timestamp};
    use crate::record::Damage;

    fn event(i: u64) -> Event {
        Event::builder(Timestamp::from_unix(1_700_000_000 + i).unwrap(), "token.issue", Decision::Allow)
            .subject(format!("user-{i}"))
            .detail("i", i)
            .build()
            .unwrap()
    }

    fn file_len(log: &AuditLog) -> u64 {
        std::fs::metadata(log.path()).unwrap().len()
    }

    /// The chain value of the last record of the file at `path`.
    fn chain_of(path: &Path) -> Hash {
        let bytes = std::fs::read(path).unwrap();
        bytes[bytes.len() - 36..bytes.len() - 4].try_into().unwrap()
    }

    fn append_bytes(path: &Path, bytes: &[u8]) {
        std::fs::OpenOptions::new().append(true).open(path).unwrap().write_all(bytes).unwrap();
    }

    /// `tests/vectors/merkle/ct.json`: the Certificate Transparency
    /// vectors (github.com/transparency-dev/merkle), each also recomputed
    /// by hashlib in `tests/vectors/merkle/check.py`.
    fn ct() -> serde_json::Value {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/merkle/ct.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn strings(v: &serde_json::Value) -> Vec<String> {
        v.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_owned()).collect()
    }

    #[test]
    fn ct_vectors_through_the_file() {
        // Why: the roots must come out right through the storage path too
        // (record framing, group commit, recovery), not only in memory.
        let v = ct();
        let (inputs, roots) = (strings(&v["leaves"]["hex"]), strings(&v["roots"]["hex"]));
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        assert_eq!(hex::encode(log.root()), roots[0]);
        for (i, input) in inputs.iter().enumerate() {
            let entry = hex::decode(input).unwrap();
            assert_eq!(log.append_entries(std::slice::from_ref(&entry)).unwrap(), i as u64..i as u64 + 1);
            assert_eq!(hex::encode(log.root()), roots[i + 1], "size {}", i + 1);
            assert_eq!(log.entry(i as u64).unwrap(), entry);
        }
        for case in v["inclusion"]["cases"].as_array().unwrap() {
            let (i, n) = (case["index"].as_u64().unwrap(), case["size"].as_u64().unwrap());
            let path: Vec<String> = log.inclusion_proof(i, n).unwrap().iter().map(hex::encode).collect();
            assert_eq!(path, strings(&case["path"]), "PATH({i}, D[{n}])");
        }
        for case in v["consistency"]["cases"].as_array().unwrap() {
            let (m, n) = (case["first"].as_u64().unwrap(), case["second"].as_u64().unwrap());
            let proof: Vec<String> = log.consistency_proof(m, n).unwrap().iter().map(hex::encode).collect();
            assert_eq!(proof, strings(&case["proof"]), "PROOF({m}, D[{n}])");
        }
        drop(log);
        let log = AuditLog::open(dir.path()).unwrap();
        assert_eq!(log.len(), 8);
        assert_eq!(hex::encode(log.root()), roots[8], "rebuilt on open");
        for (size, root) in roots.iter().enumerate() {
            assert_eq!(hex::encode(log.root_at(size as u64).unwrap()), *root);
        }
        assert_eq!(crate::verify_file(log.path(), false).unwrap().root, log.root());
    }

    #[test]
    fn proofs_for_every_pair_of_sizes_verify() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        let mut heads = vec![log.tree_head()];
        for i in 0..40 {
            assert_eq!(log.append(&event(i)).unwrap(), i);
            heads.push(log.tree_head());
        }
        for n in 1..=40u64 {
            let head = heads[n as usize];
            assert_eq!(head.size, n);
            for i in 0..n {
                let proof = log.inclusion_proof(i, n).unwrap();
                assert!(verify_inclusion(&log.leaf_hash(i).unwrap(), i, n, &proof, &head.root));
            }
            for m in 0..=n {
                let proof = log.consistency_proof(m, n).unwrap();
                assert!(verify_consistency(m, n, &heads[m as usize].root, &head.root, &proof), "{m} -> {n}");
            }
        }
        assert!(matches!(log.inclusion_proof(40, 40), Err(Error::Proof(_))));
        assert!(matches!(log.inclusion_proof(0, 41), Err(Error::SizeBeyondLog { size: 41, len: 40 })));
        assert!(matches!(log.consistency_proof(5, 41), Err(Error::SizeBeyondLog { .. })));
        assert!(matches!(log.consistency_proof(6, 5), Err(Error::Proof(_))));
        assert!(matches!(log.entry(40), Err(Error::NoSuchEntry { index: 40, len: 40 })));
        assert_eq!(log.event(7).unwrap(), event(7));
    }

    #[test]
    fn concurrent_appends_are_all_durable_whole_and_distinct() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(AuditLog::open(dir.path()).unwrap());
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    (0..50).map(|i| log.append(&event(t * 1000 + i)).unwrap()).collect::<Vec<_>>()
                })
            })
            .collect();
        let mut indices: Vec<u64> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
        indices.sort_unstable();
        assert_eq!(indices, (0..400).collect::<Vec<_>>(), "every index once");
        let mut seen: Vec<u64> = (0..400)
            .map(|i| match log.event(i).unwrap().details().get("i") {
                Some(crate::DetailValue::Int(v)) => *v as u64,
                other => panic!("{other:?}"),
            })
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..8u64).flat_map(|t| (0..50).map(move |i| t * 1000 + i)).collect::<Vec<_>>());
        let root = log.root();
        drop(log);
        let v = crate::verify_file(&dir.path().join(LOG_FILE), true).unwrap();
        assert_eq!((v.size, v.root), (400, root));
    }

    #[test]
    fn a_torn_last_record_is_saved_and_cut_at_every_length() {
        // Why: a crash can stop a write anywhere inside the last batch.
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        for i in 0..3 {
            log.append(&event(i)).unwrap();
        }
        let (root, end) = (log.root(), file_len(&log));
        drop(log);
        let mut last = Vec::new();
        let entry = event(3).to_entry();
        let chain = record::chain_hash(&chain_of(&dir.path().join(LOG_FILE)), &leaf_hash(&entry));
        record::encode(&entry, &chain, &mut last);
        for cut in 1..last.len() {
            append_bytes(&dir.path().join(LOG_FILE), &last[..cut]);
            let log = AuditLog::open(dir.path()).unwrap();
            let torn = log.torn_tail().expect("tail cut").clone();
            assert_eq!((torn.offset, torn.len, torn.damage), (end, cut as u64, Damage::Truncated), "cut {cut}");
            assert_eq!(std::fs::read(&torn.saved_as).unwrap(), &last[..cut], "saved, not destroyed");
            assert_eq!((log.len(), log.root(), file_len(&log)), (3, root, end));
        }
        let log = AuditLog::open(dir.path()).unwrap();
        assert!(log.torn_tail().is_none());
        assert_eq!(log.append(&event(3)).unwrap(), 3, "appends go on after recovery");
        assert_eq!(log.event(3).unwrap(), event(3));
    }

    #[test]
    fn a_damaged_tail_is_cut_but_damage_further_back_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        log.append(&event(0)).unwrap();
        let second = file_len(&log);
        log.append(&event(1)).unwrap();
        let root1 = log.root_at(1).unwrap();
        drop(log);
        let path = dir.path().join(LOG_FILE);

        // A flipped bit in the last record: cut, with the earlier one kept.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[second as usize + 10] ^= 4;
        std::fs::write(&path, &bytes).unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        assert_eq!(log.torn_tail().unwrap().damage, Damage::BadChecksum);
        assert_eq!((log.len(), log.root()), (1, root1));
        log.append(&event(1)).unwrap();
        drop(log);

        // The same flip followed by more than a batch of intact records is
        // not a crash: refuse, and change nothing.
        let big: Vec<Event> = (2..10_000).map(event).collect();
        AuditLog::open(dir.path()).unwrap().append_all(&big).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[second as usize + 10] ^= 4;
        std::fs::write(&path, &bytes).unwrap();
        match AuditLog::open(dir.path()) {
            Err(Error::Corrupt { offset, damage: Damage::BadChecksum, tail, .. }) => {
                assert_eq!(offset, second);
                assert!(tail > MAX_TORN_TAIL);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "nothing cut");
        assert!(matches!(crate::verify_file(&path, false), Err(Error::Corrupt { .. })));
    }

    #[test]
    fn open_refuses_a_second_writer_and_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        assert!(matches!(AuditLog::open(dir.path()), Err(Error::Locked { .. })));
        drop(log);
        AuditLog::open(dir.path()).unwrap();

        let other = tempfile::tempdir().unwrap();
        std::fs::write(other.path().join(LOG_FILE), b"{\"not\":\"a log\"}\n").unwrap();
        assert!(matches!(AuditLog::open(other.path()), Err(Error::NotAuditLog { .. })));
        std::fs::write(other.path().join(LOG_FILE), b"{").unwrap();
        assert!(matches!(AuditLog::open(other.path()), Err(Error::NotAuditLog { .. })));
    }

    #[test]
    fn a_crash_while_creating_the_file_is_recovered() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LOG_FILE), &record::MAGIC[..3]).unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        assert!(log.is_empty());
        log.append(&event(0)).unwrap();
        assert_eq!(crate::verify_file(log.path(), true).unwrap().size, 1);
    }

    #[test]
    fn files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(&dir.path().join("audit")).unwrap();
        assert_eq!(std::fs::metadata(log.dir()).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(std::fs::metadata(log.path()).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn appending_nothing_syncs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        assert_eq!(log.append_all(&[]).unwrap(), 0..0);
        assert_eq!(log.append_all(&[event(0), event(1)]).unwrap(), 0..2);
        assert_eq!(log.append_all(&[]).unwrap(), 2..2);
    }
}
