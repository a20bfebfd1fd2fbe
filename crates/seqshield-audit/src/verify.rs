//! Verifying a log from its files, read-only, without trusting the
//! operator: what `seqshield audit verify` runs.
//!
//! One pass over the log file checks every record's checksum and chain
//! value, recomputes every leaf hash and the tree, optionally decodes every
//! entry as a canonical event (in parallel), and compares the tree at each
//! signed head's size with that head's root. Heads are checked against a
//! trusted key: the one a witness checkpoint pins, else one given, else
//! (weakest: an operator who rewrites the log can replace it too) the key
//! file in the log directory. A witness checkpoint's tree must be a prefix
//! of the log's.
//!
//! Every problem becomes a [`Finding`] that names the first entry it
//! concerns; [`Report::first_bad`] is the earliest. Some evidence pins one
//! entry (a damaged record, a broken chain, an entry that is not an event);
//! a root that does not match a signed head only says that something in
//! the entries since the last matching head changed, and the finding gives
//! that range ([`Finding::until`]). Nothing is written; run it on a live
//! log too (a batch being written can show up as a torn tail).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use seqshield_keys::sign::VerifyingKey;
use seqshield_merkle::{empty_root, leaf_hash, CompactTree, Hash};

use crate::error::Error;
use crate::event::Event;
use crate::head::{read_heads, SignedTreeHead, HEADS_FILE, KEY_FILE};
use crate::log::LOG_FILE;
use crate::record::{chain_hash, Damage, Scanner, Step, GENESIS, MAGIC};
use crate::witness::Checkpoint;

/// Read buffer (4 MiB).
const BUFFER: usize = 4 * 1024 * 1024;

/// Entries decoded together, in parallel.
const DECODE_CHUNK: usize = 16 * 1024;

/// What a verified file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verified {
    /// Number of entries.
    pub size: u64,
    /// The tree head over all of them.
    pub root: Hash,
    /// File length.
    pub bytes: u64,
}

/// What is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// A record is cut short or its checksum fails; nothing after it can be
    /// read.
    Damaged(Damage),
    /// A record's chain value does not follow from the records before it.
    BrokenChain,
    /// An entry is not a canonical event.
    BadEvent(String),
    /// A line of the heads file is not a head, or its signature does not
    /// verify with the trusted key.
    BadHead {
        /// Which head (1-based line of the heads file).
        number: usize,
        /// Why.
        why: String,
    },
    /// A head has a smaller size or an earlier time than one before it.
    HeadOrder {
        /// Which head.
        number: usize,
    },
    /// The tree at a head's size has another root than the head signs.
    HeadMismatch {
        /// Which head.
        number: usize,
        /// Its size.
        size: u64,
    },
    /// A head or the witness covers more entries than the log has.
    Missing {
        /// The size it covers.
        size: u64,
    },
    /// The witness's key is not the key that signs the log's heads.
    WitnessKey {
        /// The key the log's latest head names.
        log_key: String,
    },
    /// The log's tree at the witness's size has another root.
    WitnessMismatch {
        /// The witness's size.
        size: u64,
    },
    /// No head signed by a trusted key covers these entries.
    Unsigned,
}

/// One problem, at the first entry it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The first bad entry, or the first entry the evidence cannot vouch
    /// for.
    pub index: u64,
    /// When the evidence only narrows it down: the bad entry is somewhere
    /// in `index..until`.
    pub until: Option<u64>,
    /// What is wrong.
    pub problem: Problem,
    /// In words, for people.
    pub message: String,
}

/// Where the trusted key came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// Pinned by the witness checkpoint.
    Witness,
    /// Given by the caller.
    Given,
    /// The key file in the log directory (an operator who rewrites the
    /// log can replace it too: pin a key or keep a witness).
    LogDirectory,
}

/// What to check beyond the file itself.
#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// Decode every entry as a canonical event.
    pub check_events: bool,
    /// The key heads must be signed with, when there is no witness.
    pub key: Option<VerifyingKey>,
    /// A witness checkpoint the log must extend.
    pub witness: Option<Checkpoint>,
    /// The heads file (default: `heads.jsonl` beside the log).
    pub heads: Option<PathBuf>,
}

/// The outcome of [`verify_log`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Report {
    /// Entries read (up to the first damaged record).
    pub size: u64,
    /// The tree head over them.
    pub root: Hash,
    /// File length.
    pub bytes: u64,
    /// The trusted key's id and where it came from.
    pub key: Option<(String, KeySource)>,
    /// Heads in the heads file.
    pub heads: usize,
    /// Heads whose signature verified and whose root matched the log.
    pub heads_ok: usize,
    /// The latest head that verified and matched.
    pub latest_ok: Option<SignedTreeHead>,
    /// Entries after the latest good head (not yet signed).
    pub unsigned_tail: u64,
    /// Everything wrong, earliest first.
    pub findings: Vec<Finding>,
}

impl Report {
    /// Whether nothing is wrong.
    pub fn ok(&self) -> bool {
        self.findings.is_empty()
    }

    /// The earliest finding.
    pub fn first_bad(&self) -> Option<&Finding> {
        self.findings.first()
    }
}

/// Sorts findings so that the first names the first bad entry as exactly
/// as the evidence allows: a range finding (`index..until`) that holds an
/// exact finding is explained by it and sorts after it; otherwise findings
/// sort by index.
fn order(findings: &mut [Finding]) {
    let exact: Vec<u64> = findings.iter().filter(|f| f.until.is_none()).map(|f| f.index).collect();
    findings.sort_by_key(|f| match f.until {
        None => (f.index, 0),
        Some(until) => match exact.iter().filter(|&&e| e >= f.index && e < until).min() {
            Some(&e) => (e, 1),
            None => (f.index, 0),
        },
    });
}

/// The leaf hashes of the first `limit` entries of the log file at `path`
/// (all if fewer); any damaged record or broken chain is an error.
pub fn leaf_hashes(path: &Path, limit: u64) -> Result<Vec<Hash>, Error> {
    let file = File::open(path).map_err(|source| Error::Open { path: path.to_owned(), source })?;
    let mut reader = BufReader::with_capacity(BUFFER, file);
    let mut head = [0u8; MAGIC.len()];
    if reader.read_exact(&mut head).is_err() || head != MAGIC {
        return Err(Error::NotAuditLog { path: path.to_owned() });
    }
    let mut scanner = Scanner::new(reader, MAGIC.len() as u64);
    let (mut leaves, mut chain) = (Vec::new(), GENESIS);
    while (leaves.len() as u64) < limit {
        match scanner.next_record().map_err(|source| Error::Read { path: path.to_owned(), source })? {
            Step::Record { offset, entry, chain: stored } => {
                let leaf = leaf_hash(entry);
                chain = chain_hash(&chain, &leaf);
                if chain != stored {
                    return Err(Error::Corrupt { path: path.to_owned(), offset, tail: 0, damage: Damage::BrokenChain });
                }
                leaves.push(leaf);
            }
            Step::End => break,
            Step::Damaged { offset, damage } => {
                return Err(Error::Corrupt { path: path.to_owned(), offset, tail: 0, damage });
            }
        }
    }
    Ok(leaves)
}

/// A root the tree must have at some size, and who says so.
struct Target {
    size: u64,
    root: Hash,
    /// `Some(head number)` for a head, `None` for the witness.
    head: Option<usize>,
}

/// Scans the log file at `path` and recomputes its tree head; any damaged
/// record or broken chain is an error. With `check_events`, also decodes
/// every entry as a canonical event. No heads, no witness: see
/// [`verify_log`] for those.
pub fn verify_file(path: &Path, check_events: bool) -> Result<Verified, Error> {
    let mut scan = Scan::new(path, check_events)?;
    scan.run(&[], None)?;
    if let Some(f) = scan.findings.first() {
        return Err(match &f.problem {
            Problem::Damaged(damage) => Error::Corrupt {
                path: path.to_owned(),
                offset: scan.damage_offset,
                tail: scan.bytes - scan.damage_offset,
                damage: *damage,
            },
            Problem::BadEvent(_) => {
                let entry = scan.bad_entry.take().unwrap_or_default();
                match Event::from_entry(&entry) {
                    Err(source) => Error::BadEntry { index: f.index, source },
                    Ok(_) => unreachable!("the entry failed to decode during the scan"),
                }
            }
            _ => Error::Corrupt {
                path: path.to_owned(),
                offset: scan.chain_offset,
                tail: scan.bytes - scan.chain_offset,
                damage: Damage::BrokenChain,
            },
        });
    }
    Ok(Verified { size: scan.tree.len(), root: scan.tree.root(), bytes: scan.bytes })
}

/// Verifies the log at `log` (a log directory or its `events.sqa`) with its
/// heads and, if given, a witness; see the module docs.
pub fn verify_log(log: &Path, opts: &VerifyOptions) -> Result<Report, Error> {
    let (dir, path) = if log.is_dir() {
        (log.to_owned(), log.join(LOG_FILE))
    } else {
        (log.parent().map(Path::to_owned).unwrap_or_default(), log.to_owned())
    };
    let heads_path = opts.heads.clone().unwrap_or_else(|| dir.join(HEADS_FILE));
    let key = if let Some(w) = &opts.witness {
        Some((w.key().clone(), KeySource::Witness))
    } else if let Some(k) = &opts.key {
        Some((k.clone(), KeySource::Given))
    } else {
        let key_path = dir.join(KEY_FILE);
        match VerifyingKey::read(&key_path) {
            Ok(k) => Some((k, KeySource::LogDirectory)),
            Err(_) if !key_path.exists() => None,
            Err(e) => return Err(Error::BadCheckpoint(format!("key file {}: {e}", key_path.display()))),
        }
    };

    let mut findings = Vec::new();
    let read = read_heads(&heads_path)?;
    let heads = read.heads.len();
    let mut targets = Vec::new();
    let mut good = Vec::new(); // (number, head) with a good signature
    let mut last: Option<(u64, u64)> = None; // (size, timestamp) of the previous good head
    let mut last_key_id = None;
    // Signatures in parallel (a million-entry log has a thousand heads).
    let verdicts: Vec<(Option<String>, Result<SignedTreeHead, String>)> = read
        .heads
        .into_par_iter()
        .map(|head| {
            let named = head.as_ref().ok().map(|h| h.key_id.clone());
            let verdict = head.map_err(|e| e.to_string()).and_then(|h| match &key {
                Some((k, _)) => h.verify(k).map(|()| h).map_err(|e| e.to_string()),
                None => Err("no key to check it with (give --key or --witness)".to_owned()),
            });
            (named, verdict)
        })
        .collect();
    for (i, (named, verdict)) in verdicts.into_iter().enumerate() {
        let number = i + 1;
        if named.is_some() {
            last_key_id = named;
        }
        match verdict {
            Ok(h) => {
                if let Some((size, ts)) = last {
                    if h.size < size || h.timestamp_ms < ts {
                        findings.push(Finding {
                            index: h.size.min(size),
                            until: None,
                            problem: Problem::HeadOrder { number },
                            message: format!(
                                "signed tree head {number} (size {}) goes back from size {size}: the log was rolled back or forked",
                                h.size
                            ),
                        });
                    }
                }
                last = Some((h.size, h.timestamp_ms));
                targets.push(Target { size: h.size, root: h.root, head: Some(number) });
                good.push((number, h));
            }
            Err(why) => {
                let index = good.last().map_or(0, |(_, h)| h.size);
                findings.push(Finding {
                    index,
                    until: None,
                    message: format!(
                        "signed tree head {number}: {why}; no entry from {index} on is vouched for by this head"
                    ),
                    problem: Problem::BadHead { number, why },
                });
            }
        }
    }
    if let Some(w) = &opts.witness {
        targets.push(Target { size: w.head().size, root: w.head().root, head: None });
        if let Some(log_key) = last_key_id.filter(|k| k != w.key().key_id()) {
            findings.push(Finding {
                index: 0,
                until: None,
                message: format!("the log is signed by key {log_key}, the witness pins key {}", w.key().key_id()),
                problem: Problem::WitnessKey { log_key },
            });
        }
    }
    targets.sort_by_key(|t| t.size);

    let mut scan = Scan::new(&path, opts.check_events)?;
    scan.witness = opts.witness.as_ref();
    let mut matched: Vec<usize> = Vec::new();
    scan.run(&targets, Some(&mut matched))?;
    findings.append(&mut scan.findings);
    let size = scan.tree.len();
    for t in targets.iter().filter(|t| t.size > size) {
        let who = t.head.map_or("the witness".to_owned(), |n| format!("signed tree head {n}"));
        findings.push(Finding {
            index: size,
            until: Some(t.size),
            problem: Problem::Missing { size: t.size },
            message: format!(
                "{who} covers {} entries but the log has {size}: entries {size}..{} are missing",
                t.size, t.size
            ),
        });
    }
    let latest_ok = good.iter().filter(|(n, _)| matched.contains(n)).map(|(_, h)| h.clone()).max_by_key(|h| h.size);
    let covered = latest_ok.as_ref().map_or(0, |h| h.size);
    if key.is_some() && heads > 0 && latest_ok.is_none() && size > 0 {
        findings.push(Finding {
            index: 0,
            until: None,
            problem: Problem::Unsigned,
            message: "no signed tree head by the trusted key matches the log".to_owned(),
        });
    }
    order(&mut findings);
    Ok(Report {
        size,
        root: scan.tree.root(),
        bytes: scan.bytes,
        key: key.map(|(k, s)| (k.key_id().to_owned(), s)),
        heads,
        heads_ok: matched.len(),
        latest_ok,
        unsigned_tail: size - covered.min(size),
        findings,
    })
}

/// One pass over a log file.
struct Scan<'a> {
    path: PathBuf,
    reader: Scanner<BufReader<File>>,
    bytes: u64,
    check_events: bool,
    tree: CompactTree,
    findings: Vec<Finding>,
    damage_offset: u64,
    chain_offset: u64,
    bad_entry: Option<Vec<u8>>,
    witness: Option<&'a Checkpoint>,
}

impl<'a> Scan<'a> {
    fn new(path: &Path, check_events: bool) -> Result<Self, Error> {
        let read_err = |source| Error::Read { path: path.to_owned(), source };
        let file = File::open(path).map_err(|source| Error::Open { path: path.to_owned(), source })?;
        let bytes = file.metadata().map_err(read_err)?.len();
        let mut reader = BufReader::with_capacity(BUFFER, file);
        let mut head = [0u8; MAGIC.len()];
        if reader.read_exact(&mut head).is_err() || head != MAGIC {
            return Err(Error::NotAuditLog { path: path.to_owned() });
        }
        Ok(Self {
            path: path.to_owned(),
            reader: Scanner::new(reader, MAGIC.len() as u64),
            bytes,
            check_events,
            tree: CompactTree::new(),
            findings: Vec::new(),
            damage_offset: 0,
            chain_offset: 0,
            bad_entry: None,
            witness: None,
        })
    }

    /// Reads every record; compares the tree with `targets` (sorted by
    /// size) as it reaches their sizes, noting the heads that matched.
    fn run(&mut self, targets: &[Target], mut matched: Option<&mut Vec<usize>>) -> Result<(), Error> {
        let mut chain = GENESIS;
        let mut chain_broken = false;
        let mut next_target = 0;
        let mut vouched = 0u64; // size of the last target that matched
        let mut entries: Vec<u8> = Vec::new();
        let mut ends: Vec<usize> = Vec::new();
        let mut first_in_chunk = 0u64;
        let mut bad_event: Option<(u64, String)> = None;
        let mut span = SpanCheck::new(self.witness);
        let check = |tree: &CompactTree,
                     next_target: &mut usize,
                     vouched: &mut u64,
                     findings: &mut Vec<Finding>,
                     matched: &mut Option<&mut Vec<usize>>| {
            while let Some(t) = targets.get(*next_target).filter(|t| t.size == tree.len()) {
                let root = if t.size == 0 { empty_root() } else { tree.root() };
                if root == t.root {
                    *vouched = (*vouched).max(t.size);
                    if let (Some(n), Some(m)) = (t.head, matched.as_deref_mut()) {
                        m.push(n);
                    }
                } else {
                    let (problem, who) = match t.head {
                        Some(number) => {
                            (Problem::HeadMismatch { number, size: t.size }, format!("signed tree head {number}"))
                        }
                        None => (Problem::WitnessMismatch { size: t.size }, "the witness checkpoint".to_owned()),
                    };
                    findings.push(Finding {
                        index: *vouched,
                        until: Some(t.size),
                        problem,
                        message: format!(
                            "the log's tree at size {} does not match {who}: an entry in {}..{} was changed, removed, moved or inserted",
                            t.size, *vouched, t.size
                        ),
                    });
                }
                *next_target += 1;
            }
        };
        check(&self.tree, &mut next_target, &mut vouched, &mut self.findings, &mut matched);
        loop {
            let step = self.reader.next_record().map_err(|source| Error::Read { path: self.path.clone(), source })?;
            match step {
                Step::Record { offset, entry, chain: stored } => {
                    let index = self.tree.len();
                    let leaf = leaf_hash(entry);
                    let expected = chain_hash(&chain, &leaf);
                    if stored != expected && !chain_broken {
                        chain_broken = true;
                        self.chain_offset = offset;
                        self.findings.push(Finding {
                            index,
                            until: None,
                            problem: Problem::BrokenChain,
                            message: format!(
                                "entry {index} (byte {offset}) does not follow from the entries before it: it or its predecessor was edited, removed, moved or inserted"
                            ),
                        });
                    }
                    chain = stored;
                    if self.check_events && bad_event.is_none() {
                        entries.extend_from_slice(entry);
                        ends.push(entries.len());
                        if ends.len() == DECODE_CHUNK {
                            bad_event = decode_chunk(&entries, &ends, first_in_chunk);
                            if bad_event.is_some() {
                                self.bad_entry = bad_event
                                    .as_ref()
                                    .map(|(i, _)| nth(&entries, &ends, (i - first_in_chunk) as usize).to_vec());
                            }
                            entries.clear();
                            ends.clear();
                            first_in_chunk = index + 1;
                        }
                    }
                    self.tree.push(leaf);
                    span.push(index, leaf, &mut self.findings);
                    check(&self.tree, &mut next_target, &mut vouched, &mut self.findings, &mut matched);
                }
                Step::End => break,
                Step::Damaged { offset, damage } => {
                    let index = self.tree.len();
                    self.damage_offset = offset;
                    self.findings.push(Finding {
                        index,
                        until: None,
                        problem: Problem::Damaged(damage),
                        message: format!("entry {index} (byte {offset}): {damage}; nothing after it can be read"),
                    });
                    break;
                }
            }
        }
        if self.check_events && bad_event.is_none() && !ends.is_empty() {
            bad_event = decode_chunk(&entries, &ends, first_in_chunk);
            if bad_event.is_some() {
                self.bad_entry =
                    bad_event.as_ref().map(|(i, _)| nth(&entries, &ends, (i - first_in_chunk) as usize).to_vec());
            }
        }
        if let Some((index, why)) = bad_event {
            self.findings.push(Finding {
                index,
                until: None,
                message: format!("entry {index} is not a valid event: {why}"),
                problem: Problem::BadEvent(why),
            });
        }
        order(&mut self.findings);
        Ok(())
    }
}

/// The `i`th entry of a chunk.
fn nth<'e>(entries: &'e [u8], ends: &[usize], i: usize) -> &'e [u8] {
    let start = if i == 0 { 0 } else { ends[i - 1] };
    &entries[start..ends[i]]
}

/// Decodes a chunk of entries in parallel; the first that fails.
fn decode_chunk(entries: &[u8], ends: &[usize], first: u64) -> Option<(u64, String)> {
    (0..ends.len())
        .into_par_iter()
        .filter_map(|i| Event::from_entry(nth(entries, ends, i)).err().map(|e| (first + i as u64, e.to_string())))
        .min_by_key(|(i, _)| *i)
}

/// Compares the log's spans with a witness's span heads.
struct SpanCheck<'a> {
    witness: Option<&'a Checkpoint>,
    tree: CompactTree,
    done: bool,
}

impl<'a> SpanCheck<'a> {
    fn new(witness: Option<&'a Checkpoint>) -> Self {
        Self { witness, tree: CompactTree::new(), done: false }
    }

    fn push(&mut self, index: u64, leaf: Hash, findings: &mut Vec<Finding>) {
        let Some(w) = self.witness.filter(|_| !self.done) else { return };
        let span = w.span();
        let k = index / span;
        let Some(want) = w.span_heads().get(k as usize) else {
            self.done = true;
            return;
        };
        self.tree.push(leaf);
        if self.tree.len() == span {
            if self.tree.root() != *want {
                let start = k * span;
                let (until, what) = if span == 1 {
                    (None, format!("entry {start} differs from the one the witness saw"))
                } else {
                    (
                        Some(start + span),
                        format!("an entry in {start}..{} differs from what the witness saw", start + span),
                    )
                };
                findings.push(Finding {
                    index: start,
                    until,
                    problem: Problem::WitnessMismatch { size: w.head().size },
                    message: format!("{what} (witness checkpoint at size {})", w.head().size),
                });
                self.done = true;
            }
            self.tree = CompactTree::new();
        }
    }
}
