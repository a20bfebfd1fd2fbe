//! Group commit: many appenders, one write and one `fdatasync` per batch.
//!
//! The pattern of `seqshield_auth::audit::JsonlSink`: an appender queues its
//! records and, if nobody is writing, becomes the leader for everything
//! queued so far (up to [`MAX_BATCH_BYTES`]): it writes the batch at the end
//! of the file, syncs it, publishes the new leaves to the tree and wakes the
//! followers, whose records the batch covered. An append returns only once
//! a sync covered its record. After a failed write or sync every later
//! append is refused (fail closed) until the log is reopened, which cuts
//! whatever the failed batch left.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Condvar, Mutex, MutexGuard};

use seqshield_merkle::Hash;

use crate::error::Error;

/// Most bytes one batch writes (1 MiB). Bounds what a crash can tear off
/// the end of the file: recovery refuses to cut more than one batch.
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;

/// A record waiting to be written, and its leaf hash.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) record: Vec<u8>,
    pub(crate) leaf: Hash,
}

/// A batch that a sync covered, handed to the tree before anyone is told.
pub(crate) struct Durable<'a> {
    /// Leaf hashes, in index order.
    pub(crate) leaves: &'a [Hash],
    /// File offset of each record.
    pub(crate) offsets: &'a [u64],
    /// File offset after the batch.
    pub(crate) end: u64,
}

#[derive(Debug)]
struct State {
    queue: VecDeque<Pending>,
    /// Entries given an index so far (durable, being written, queued).
    appended: u64,
    /// Entries a sync covered.
    durable: u64,
    /// File offset where the next batch goes.
    end: u64,
    /// A leader is writing a batch.
    writing: bool,
    /// The first write or sync failure, for every later caller.
    poisoned: Option<io::ErrorKind>,
}

#[derive(Debug)]
pub(crate) struct GroupCommit {
    state: Mutex<State>,
    done: Condvar,
    /// The leader's batch buffer, reused.
    buf: Mutex<Vec<u8>>,
}

impl GroupCommit {
    /// Appends go at `end`; `len` entries are already in the file.
    pub(crate) fn new(len: u64, end: u64) -> Self {
        let state = State { queue: VecDeque::new(), appended: len, durable: len, end, writing: false, poisoned: None };
        Self { state: Mutex::new(state), done: Condvar::new(), buf: Mutex::new(Vec::new()) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `records` and returns their indices once a sync covered them.
    /// `publish` runs (by whichever thread leads) for each durable batch,
    /// before its appenders are woken.
    pub(crate) fn commit(
        &self,
        records: Vec<Pending>,
        file: &File,
        path: &Path,
        publish: &dyn Fn(Durable<'_>),
    ) -> Result<Range<u64>, Error> {
        let mut st = self.lock();
        if let Some(kind) = st.poisoned {
            return Err(Error::Poisoned { path: path.to_owned(), kind });
        }
        let first = st.appended;
        st.appended += records.len() as u64;
        let mine = st.appended;
        st.queue.extend(records);
        loop {
            if st.durable >= mine {
                return Ok(first..mine);
            }
            if let Some(kind) = st.poisoned {
                return Err(Error::Poisoned { path: path.to_owned(), kind });
            }
            if st.writing {
                st = self.done.wait(st).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            // Lead: take a batch from the front of the queue.
            st.writing = true;
            let mut batch = Vec::new();
            let mut bytes = 0;
            while let Some(p) = st.queue.front() {
                if !batch.is_empty() && bytes + p.record.len() > MAX_BATCH_BYTES {
                    break;
                }
                bytes += p.record.len();
                batch.push(st.queue.pop_front().expect("front exists"));
            }
            let start = st.end;
            drop(st);

            let result = self.write_batch(&batch, start, file, path, publish);

            st = self.lock();
            st.writing = false;
            match result {
                Ok(end) => {
                    st.durable += batch.len() as u64;
                    st.end = end;
                }
                Err(e) => {
                    st.poisoned = Some(match &e {
                        Error::Write { source, .. } | Error::Sync { source, .. } => source.kind(),
                        _ => io::ErrorKind::Other,
                    });
                    self.done.notify_all();
                    return Err(e);
                }
            }
            self.done.notify_all();
        }
    }

    /// Writes and syncs one batch at `start`, then publishes it. Returns the
    /// new end of the file.
    fn write_batch(
        &self,
        batch: &[Pending],
        start: u64,
        file: &File,
        path: &Path,
        publish: &dyn Fn(Durable<'_>),
    ) -> Result<u64, Error> {
        let mut buf = self.buf.lock().unwrap_or_else(|p| p.into_inner());
        buf.clear();
        let mut offsets = Vec::with_capacity(batch.len());
        let mut leaves = Vec::with_capacity(batch.len());
        for p in batch {
            offsets.push(start + buf.len() as u64);
            leaves.push(p.leaf);
            buf.extend_from_slice(&p.record);
        }
        file.write_all_at(&buf, start).map_err(|source| Error::Write { path: path.to_owned(), source })?;
        file.sync_data().map_err(|source| Error::Sync { path: path.to_owned(), source })?;
        let end = start + buf.len() as u64;
        publish(Durable { leaves: &leaves, offsets: &offsets, end });
        Ok(end)
    }
}
