//! Group commit: many appenders, one write and one `fdatasync` per batch.
//!
//! The leader/follower pattern of `seqshield_auth::audit::JsonlSink`, with
//! targeted wake-ups: an appender queues its records; if nobody is writing
//! it becomes the leader, otherwise it parks. The leader takes everything
//! queued so far (up to [`MAX_BATCH_BYTES`]), writes it at the end of the
//! file, syncs it, publishes the new leaves to the tree, and then wakes
//! exactly the appenders whose records that sync covered. If records are
//! still queued it hands leadership to the first of their appenders. An
//! append returns only once a sync covered its records.
//!
//! Waking only the covered appenders (instead of every waiter, as a
//! `Condvar::notify_all` would) keeps the cost at one wake-up per append,
//! which is what lets hundreds of concurrent appenders share one sync.
//!
//! After a failed write or sync every queued and later append is refused
//! (fail closed) until the log is reopened, which cuts whatever the failed
//! batch left.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, Thread};

use seqshield_merkle::Hash;

use crate::error::Error;
use crate::record::{self, CHAIN_LEN};

/// Most bytes one batch writes (1 MiB). Bounds what a crash can tear off
/// the end of the file: recovery refuses to cut more than one batch.
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;

/// Where batches go: the log file (tests put failures in between).
pub(crate) trait Storage {
    /// Writes all of `buf` at `offset`.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// `fdatasync`.
    fn sync_data(&self) -> io::Result<()>;
}

impl Storage for File {
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        FileExt::write_all_at(self, buf, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        File::sync_data(self)
    }
}

/// A record waiting to be written: its first part
/// ([`record::encode_head`]), the checksum so far, and its leaf hash. The
/// leader adds the chain value and checksum when the record has its place.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) head: Vec<u8>,
    pub(crate) crc: u32,
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

/// Where a parked appender stands.
const WAITING: u8 = 0;
const DONE: u8 = 1;
const FAILED: u8 = 2;
const LEAD: u8 = 3;

/// One parked appender.
#[derive(Debug)]
struct Waiter {
    thread: Thread,
    state: AtomicU8,
}

impl Waiter {
    fn wake(&self, state: u8) {
        self.state.store(state, Ordering::Release);
        self.thread.unpark();
    }
}

/// A queued record; the last record of each append call carries its
/// appender.
#[derive(Debug)]
struct Queued {
    pending: Pending,
    waiter: Option<Arc<Waiter>>,
}

#[derive(Debug)]
struct State {
    queue: VecDeque<Queued>,
    /// Entries given an index so far (durable, being written, queued).
    appended: u64,
    /// Entries a sync covered.
    durable: u64,
    /// File offset where the next batch goes.
    end: u64,
    /// Someone leads (writes, or was handed the lead and will).
    leading: bool,
    /// The first write or sync failure, for every later caller.
    poisoned: Option<io::ErrorKind>,
}

/// What only the leader touches.
#[derive(Debug)]
struct Writer {
    /// The batch buffer, reused.
    buf: Vec<u8>,
    /// Chain value of the last durable record.
    chain: Hash,
}

#[derive(Debug)]
pub(crate) struct GroupCommit {
    state: Mutex<State>,
    writer: Mutex<Writer>,
}

impl GroupCommit {
    /// Appends go at `end`; `len` entries are already in the file, the last
    /// with chain value `chain`.
    pub(crate) fn new(len: u64, end: u64, chain: Hash) -> Self {
        let state = State { queue: VecDeque::new(), appended: len, durable: len, end, leading: false, poisoned: None };
        Self { state: Mutex::new(state), writer: Mutex::new(Writer { buf: Vec::new(), chain }) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `records` (at least one) and returns their indices once a sync
    /// covered them. `publish` runs, on whichever thread leads, for each
    /// durable batch before its appenders are woken.
    pub(crate) fn commit(
        &self,
        records: Vec<Pending>,
        file: &dyn Storage,
        path: &Path,
        publish: &dyn Fn(Durable<'_>),
    ) -> Result<Range<u64>, Error> {
        debug_assert!(!records.is_empty(), "callers skip empty appends");
        let me = Arc::new(Waiter { thread: thread::current(), state: AtomicU8::new(WAITING) });
        let (range, lead) = {
            let mut st = self.lock();
            if let Some(kind) = st.poisoned {
                return Err(Error::Poisoned { path: path.to_owned(), kind });
            }
            let first = st.appended;
            st.appended += records.len() as u64;
            let last = records.len() - 1;
            for (i, pending) in records.into_iter().enumerate() {
                st.queue.push_back(Queued { pending, waiter: (i == last).then(|| me.clone()) });
            }
            let lead = !st.leading;
            st.leading = true;
            (first..st.appended, lead)
        };
        if !lead {
            loop {
                match me.state.load(Ordering::Acquire) {
                    DONE => return Ok(range),
                    FAILED => {
                        let kind = self.lock().poisoned.unwrap_or(io::ErrorKind::Other);
                        return Err(Error::Poisoned { path: path.to_owned(), kind });
                    }
                    LEAD => break,
                    _ => thread::park(),
                }
            }
        }
        self.lead(&me, file, path, publish).map(|()| range)
    }

    /// Writes batches until `me`'s records are durable, then hands the lead
    /// to the next queued appender, if any.
    fn lead(
        &self,
        me: &Arc<Waiter>,
        file: &dyn Storage,
        path: &Path,
        publish: &dyn Fn(Durable<'_>),
    ) -> Result<(), Error> {
        loop {
            let (batch, start) = {
                let mut st = self.lock();
                let mut batch = Vec::new();
                let mut bytes = 0;
                while let Some(q) = st.queue.front() {
                    let len = q.pending.head.len() + CHAIN_LEN + 4;
                    if !batch.is_empty() && bytes + len > MAX_BATCH_BYTES {
                        break;
                    }
                    bytes += len;
                    batch.push(st.queue.pop_front().expect("front exists"));
                }
                (batch, st.end)
            };
            let result = self.write_batch(&batch, start, file, path, publish);

            let mut st = self.lock();
            let end = match result {
                Ok(end) => end,
                Err(e) => {
                    st.poisoned = Some(match &e {
                        Error::Write { source, .. } | Error::Sync { source, .. } => source.kind(),
                        _ => io::ErrorKind::Other,
                    });
                    st.leading = false;
                    let queued: Vec<Queued> = st.queue.drain(..).collect();
                    drop(st);
                    for q in batch.iter().chain(&queued) {
                        if let Some(w) = q.waiter.as_ref().filter(|w| !Arc::ptr_eq(w, me)) {
                            w.wake(FAILED);
                        }
                    }
                    return Err(e);
                }
            };
            st.durable += batch.len() as u64;
            st.end = end;
            let mine_done = batch.iter().any(|q| q.waiter.as_ref().is_some_and(|w| Arc::ptr_eq(w, me)));
            let next = if mine_done {
                let next = st.queue.iter().find_map(|q| q.waiter.clone());
                st.leading = next.is_some();
                next
            } else {
                None
            };
            drop(st);
            for w in batch.iter().filter_map(|q| q.waiter.as_ref()) {
                if !Arc::ptr_eq(w, me) {
                    w.wake(DONE);
                }
            }
            if mine_done {
                if let Some(next) = next {
                    next.wake(LEAD);
                }
                return Ok(());
            }
        }
    }

    /// Writes and syncs one batch at `start`, then publishes it. Returns the
    /// new end of the file.
    fn write_batch(
        &self,
        batch: &[Queued],
        start: u64,
        file: &dyn Storage,
        path: &Path,
        publish: &dyn Fn(Durable<'_>),
    ) -> Result<u64, Error> {
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let Writer { buf, chain: last } = &mut *w;
        buf.clear();
        let mut offsets = Vec::with_capacity(batch.len());
        let mut leaves = Vec::with_capacity(batch.len());
        let mut chain = *last;
        for q in batch {
            offsets.push(start + buf.len() as u64);
            leaves.push(q.pending.leaf);
            chain = record::chain_hash(&chain, &q.pending.leaf);
            buf.extend_from_slice(&q.pending.head);
            record::encode_tail(q.pending.crc, &chain, buf);
        }
        file.write_all_at(buf, start).map_err(|source| Error::Write { path: path.to_owned(), source })?;
        file.sync_data().map_err(|source| Error::Sync { path: path.to_owned(), source })?;
        *last = chain;
        let end = start + buf.len() as u64;
        publish(Durable { leaves: &leaves, offsets: &offsets, end });
        Ok(end)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use super::*;

    /// In-memory storage whose syncs are slow (so appenders pile up) and
    /// whose `fail_at`-th sync fails.
    #[derive(Default)]
    struct Fake {
        bytes: Mutex<Vec<u8>>,
        syncs: AtomicUsize,
        fail_at: Option<usize>,
    }

    impl Storage for Fake {
        fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
            let mut b = self.bytes.lock().unwrap();
            assert_eq!(b.len() as u64, offset, "batches are written back to back");
            b.extend_from_slice(buf);
            Ok(())
        }

        fn sync_data(&self) -> io::Result<()> {
            std::thread::sleep(Duration::from_millis(2));
            let n = self.syncs.fetch_add(1, Ordering::SeqCst) + 1;
            if Some(n) == self.fail_at {
                return Err(io::Error::from(io::ErrorKind::StorageFull));
            }
            Ok(())
        }
    }

    fn pending(tag: u32) -> Pending {
        Pending { head: tag.to_be_bytes().to_vec(), crc: 0, leaf: [0; 32] }
    }

    fn run(fake: &Fake, threads: u32, per: u32) -> (Vec<Result<Range<u64>, Error>>, Vec<u64>) {
        let group = GroupCommit::new(0, 0, record::GENESIS);
        let published = Mutex::new(Vec::new());
        let publish = |d: Durable<'_>| published.lock().unwrap().extend_from_slice(d.offsets);
        let results = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (group, publish) = (&group, &publish);
                    s.spawn(move || {
                        (0..per)
                            .map(|i| {
                                let records = (0..=i % 3).map(|k| pending(t << 16 | i << 4 | k)).collect();
                                group.commit(records, fake, Path::new("fake"), publish)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        (results, published.into_inner().unwrap())
    }

    #[test]
    fn every_append_gets_its_own_durable_indices_in_file_order() {
        let fake = Fake::default();
        let (results, offsets) = run(&fake, 32, 20);
        let bytes = fake.bytes.into_inner().unwrap();
        let mut indices: Vec<u64> = results.into_iter().flat_map(|r| r.unwrap()).collect();
        indices.sort_unstable();
        assert_eq!(indices, (0..indices.len() as u64).collect::<Vec<_>>(), "each index once");
        // Each fake record: 4 tag bytes, the chain value, the checksum.
        let len = 4 + CHAIN_LEN as u64 + 4;
        assert_eq!(offsets, (0..indices.len() as u64).map(|i| i * len).collect::<Vec<_>>(), "published in order");
        assert_eq!(bytes.len() as u64, indices.len() as u64 * len);
        let mut chain = record::GENESIS;
        for rec in bytes.chunks(len as usize) {
            chain = record::chain_hash(&chain, &[0; 32]);
            assert_eq!(&rec[4..36], &chain, "chain values follow file order");
        }
        assert!(fake.syncs.load(Ordering::SeqCst) < indices.len() / 4, "syncs are shared");
    }

    #[test]
    fn a_failed_sync_fails_its_batch_and_refuses_everything_after() {
        // Why: a gap in an audit log must not be papered over; and no
        // appender may be left waiting forever.
        let fake = Fake { fail_at: Some(3), ..Fake::default() };
        let (results, offsets) = run(&fake, 16, 10);
        let ok = results.iter().filter(|r| r.is_ok()).count();
        let sync_errors = results.iter().filter(|r| matches!(r, Err(Error::Sync { .. }))).count();
        let poisoned = results
            .iter()
            .filter(|r| matches!(r, Err(Error::Poisoned { kind: io::ErrorKind::StorageFull, .. })))
            .count();
        assert!(ok > 0 && poisoned > 0);
        assert_eq!(sync_errors, 1, "the leader reports the failure itself");
        assert_eq!(ok + sync_errors + poisoned, results.len());
        assert_eq!(fake.syncs.load(Ordering::SeqCst), 3, "nothing written after the failure");
        let durable: usize = results.iter().filter_map(|r| r.as_ref().ok()).map(|r| r.clone().count()).sum();
        assert_eq!(offsets.len(), durable, "only durable batches were published");
    }
}
