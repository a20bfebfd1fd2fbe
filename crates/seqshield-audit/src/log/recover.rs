//! Opening: check the magic bytes, scan every record, cut a torn tail.
//!
//! A crash can only tear the batch that was being written, so a damaged
//! record within [`MAX_TORN_TAIL`] bytes of the end is cut off (after its
//! bytes are saved beside the log, so no evidence is destroyed) and the
//! tree is rebuilt from the intact records. Damage further back is not a
//! crash: opening fails with [`Error::Corrupt`] and a person must look.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use seqshield_merkle::{leaf_hash, Hash};

use super::group::MAX_BATCH_BYTES;
use crate::error::Error;
use crate::record::{chain_hash, Damage, Scanner, Step, GENESIS, MAGIC, MAX_ENTRY_LEN, RECORD_OVERHEAD};

/// Most bytes recovery cuts from the end of the file: one batch, plus one
/// record (a batch always takes at least one record, however large).
pub const MAX_TORN_TAIL: u64 = (MAX_BATCH_BYTES + MAX_ENTRY_LEN + RECORD_OVERHEAD) as u64;

/// Read buffer for scanning (1 MiB).
const SCAN_BUFFER: usize = 1024 * 1024;

/// What opening cut from the end of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TornTail {
    /// Where the cut tail started (the new end of the file).
    pub offset: u64,
    /// How many bytes were cut.
    pub len: u64,
    /// What was wrong with the first cut record.
    pub damage: Damage,
    /// Where the cut bytes were saved.
    pub saved_as: PathBuf,
}

/// The intact records of a log file.
pub(crate) struct Recovered {
    pub(crate) leaves: Vec<Hash>,
    pub(crate) offsets: Vec<u64>,
    pub(crate) end: u64,
    /// Chain value of the last intact record.
    pub(crate) chain: Hash,
    pub(crate) torn: Option<TornTail>,
}

/// Checks (or, for a new or torn-at-creation file, writes) the magic bytes,
/// scans the records and cuts a torn tail.
pub(crate) fn recover(file: &File, path: &Path, dir: &Path) -> Result<Recovered, Error> {
    let read_err = |source| Error::Read { path: path.to_owned(), source };
    let sync_err = |source| Error::Sync { path: path.to_owned(), source };
    let len = file.metadata().map_err(read_err)?.len();
    let magic_len = MAGIC.len() as u64;
    if len < magic_len {
        // A new file, or a crash while creating it: (re)write the magic.
        let mut head = vec![0u8; len as usize];
        file.read_exact_at(&mut head, 0).map_err(read_err)?;
        if !MAGIC.starts_with(&head) {
            return Err(Error::NotAuditLog { path: path.to_owned() });
        }
        file.write_all_at(&MAGIC, 0).map_err(|source| Error::Write { path: path.to_owned(), source })?;
        file.sync_all().map_err(sync_err)?;
        sync_dir(dir)?;
        return Ok(Recovered { leaves: Vec::new(), offsets: Vec::new(), end: magic_len, chain: GENESIS, torn: None });
    }
    let mut head = [0u8; MAGIC.len()];
    file.read_exact_at(&mut head, 0).map_err(read_err)?;
    if head != MAGIC {
        return Err(Error::NotAuditLog { path: path.to_owned() });
    }

    let mut reader = file;
    reader.seek(SeekFrom::Start(magic_len)).map_err(read_err)?;
    let mut scanner = Scanner::new(BufReader::with_capacity(SCAN_BUFFER, reader), magic_len);
    let (mut leaves, mut offsets, mut last) = (Vec::new(), Vec::new(), GENESIS);
    let damaged = loop {
        match scanner.next_record().map_err(read_err)? {
            Step::Record { offset, entry, chain } => {
                let leaf = leaf_hash(entry);
                last = chain_hash(&last, &leaf);
                if chain != last {
                    // Not a crash: someone changed the file. Refuse, cut nothing.
                    let tail = len - offset;
                    return Err(Error::Corrupt { path: path.to_owned(), offset, tail, damage: Damage::BrokenChain });
                }
                leaves.push(leaf);
                offsets.push(offset);
            }
            Step::End => break None,
            Step::Damaged { offset, damage } => break Some((offset, damage)),
        }
    };
    let Some((offset, damage)) = damaged else {
        return Ok(Recovered { leaves, offsets, end: len, chain: last, torn: None });
    };
    let tail = len - offset;
    if tail > MAX_TORN_TAIL {
        return Err(Error::Corrupt { path: path.to_owned(), offset, tail, damage });
    }
    let saved_as = save_tail(file, path, dir, offset, tail)?;
    file.set_len(offset).map_err(|source| Error::Truncate { path: path.to_owned(), source })?;
    file.sync_all().map_err(sync_err)?;
    let torn = Some(TornTail { offset, len: tail, damage, saved_as });
    Ok(Recovered { leaves, offsets, end: offset, chain: last, torn })
}

/// Copies the bytes from `offset` to the end into a new file beside the
/// log, `<log>.torn-<offset>[.<n>]`, synced before the log is cut.
fn save_tail(file: &File, path: &Path, dir: &Path, offset: u64, tail: u64) -> Result<PathBuf, Error> {
    let mut bytes = vec![0u8; tail as usize];
    file.read_exact_at(&mut bytes, offset).map_err(|source| Error::Read { path: path.to_owned(), source })?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("log");
    let mut n = 0;
    let (saved, mut out) = loop {
        let candidate = match n {
            0 => dir.join(format!("{name}.torn-{offset}")),
            _ => dir.join(format!("{name}.torn-{offset}.{n}")),
        };
        match OpenOptions::new().write(true).create_new(true).mode(0o600).open(&candidate) {
            Ok(f) => break (candidate, f),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
            Err(source) => return Err(Error::Open { path: candidate, source }),
        }
    };
    out.write_all(&bytes).map_err(|source| Error::Write { path: saved.clone(), source })?;
    out.sync_all().map_err(|source| Error::Sync { path: saved.clone(), source })?;
    sync_dir(dir)?;
    Ok(saved)
}

/// `fsync` on a directory, so a file created in it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|source| Error::Sync { path: dir.to_owned(), source })
}
