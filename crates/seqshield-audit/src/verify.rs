//! Recomputing a log's tree head from its file, read-only.
//!
//! What `seqshield audit verify` will build on: every record's checksum,
//! every leaf hash, the head (to compare with a signed tree head), and
//! optionally that every entry is a well-formed canonical event. Nothing is
//! cut or written: any damaged record is an error, at the end of the file
//! too. Run it on a closed log; a live log's in-flight batch can show up
//! as a torn tail.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use seqshield_merkle::{leaf_hash, CompactTree, Hash};

use crate::error::Error;
use crate::event::Event;
use crate::record::{Scanner, Step, MAGIC};

/// Read buffer (4 MiB).
const BUFFER: usize = 4 * 1024 * 1024;

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

/// Scans the log file at `path` and recomputes its tree head. With
/// `check_events`, also decodes every entry as a canonical event.
pub fn verify_file(path: &Path, check_events: bool) -> Result<Verified, Error> {
    let read_err = |source| Error::Read { path: path.to_owned(), source };
    let file = File::open(path).map_err(|source| Error::Open { path: path.to_owned(), source })?;
    let bytes = file.metadata().map_err(read_err)?.len();
    let mut reader = BufReader::with_capacity(BUFFER, file);
    let mut head = [0u8; MAGIC.len()];
    if reader.read_exact(&mut head).is_err() || head != MAGIC {
        return Err(Error::NotAuditLog { path: path.to_owned() });
    }
    let mut scanner = Scanner::new(reader, MAGIC.len() as u64);
    let mut tree = CompactTree::new();
    loop {
        match scanner.next_record().map_err(read_err)? {
            Step::Record { entry, .. } => {
                if check_events {
                    Event::from_entry(entry).map_err(|source| Error::BadEntry { index: tree.len(), source })?;
                }
                tree.push(leaf_hash(entry));
            }
            Step::End => break,
            Step::Damaged { offset, damage } => {
                return Err(Error::Corrupt { path: path.to_owned(), offset, tail: bytes - offset, damage });
            }
        }
    }
    Ok(Verified { size: tree.len(), root: tree.root(), bytes })
}
