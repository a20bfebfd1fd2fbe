//! Parallel encryption and decryption of objects in positional sources
//! (regular files), pipelined across threads.
//!
//! [`Writer`](crate::Writer) and [`StreamReader`](crate::StreamReader)
//! read their input on the calling thread, so reading and cryptography take
//! turns. Here each worker reads its own batch of segments at its offset
//! ([`ReadAt`]), seals or opens it, and hands it to the calling thread,
//! which writes batches in order and keeps the Merkle tree. Output bytes
//! are identical to the streaming writer's; plaintext is written only after
//! its segment has authenticated.
//!
//! Deadlock freedom: a worker takes a free buffer *before* it claims the
//! next batch number, so the lowest batch not yet written is always held by
//! a worker that is running, and the writer always makes progress. Memory
//! is bounded by `2 × threads + 2` batch buffers.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Mutex};

use crate::error::FormatError;
use crate::header::Header;
use crate::key::{DataKey, ObjectKeys};
use crate::limits::{MAX_SEGMENTS, TAG_LEN, TRAILER_LEN};
use crate::merkle::{segment_leaf, MerkleBuilder};
use crate::segment;
use crate::trailer::Trailer;
use crate::writer::{Summary, WriterOptions};

/// A source that several threads can read at any offset.
pub trait ReadAt: Sync {
    /// Fills `buf` from `offset`, or fails (an early end is `UnexpectedEof`).
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
}

#[cfg(unix)]
impl ReadAt for std::fs::File {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
    }
}

impl ReadAt for [u8] {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let start = usize::try_from(offset).map_err(|_| io::ErrorKind::UnexpectedEof)?;
        let src = self.get(start..start + buf.len()).ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

/// Segment geometry of one object.
#[derive(Clone, Copy)]
struct Layout {
    seg: usize,
    stride: usize,
    count: u64,
    plaintext_len: u64,
    batch: usize,
}

impl Layout {
    fn batches(&self) -> u64 {
        self.count.div_ceil(self.batch as u64)
    }
    /// Plaintext length of segment `i`.
    fn pt_len(&self, i: u64) -> usize {
        if i + 1 < self.count {
            self.seg
        } else {
            (self.plaintext_len - i * self.seg as u64) as usize
        }
    }
    /// Segments `first..end` of batch `k`.
    fn range(&self, k: u64) -> (u64, u64) {
        let first = k * self.batch as u64;
        (first, (first + self.batch as u64).min(self.count))
    }
}

struct Done {
    batch: u64,
    buf: Vec<u8>,
    /// The bytes of `buf` to write.
    out: std::ops::Range<usize>,
    tags: Vec<[u8; TAG_LEN]>,
}

/// Runs `work` on `threads` workers over every batch of `layout`; on the
/// calling thread, writes each batch's output range to `out` in order and
/// returns the Merkle root over all segment leaves.
fn pipeline<Work>(
    layout: Layout,
    threads: usize,
    buf_len: usize,
    work: Work,
    out: &mut dyn Write,
) -> Result<crate::merkle::Hash, FormatError>
where
    Work: Fn(u64, &mut Vec<u8>) -> Result<(std::ops::Range<usize>, Vec<[u8; TAG_LEN]>), FormatError> + Sync,
{
    let mut merkle = MerkleBuilder::new();
    let mut emit = |d: &Done| -> Result<(), FormatError> {
        let (first, _) = layout.range(d.batch);
        for (j, tag) in d.tags.iter().enumerate() {
            let i = first + j as u64;
            merkle.push(segment_leaf(i, i + 1 == layout.count, (layout.pt_len(i) + TAG_LEN) as u32, tag));
        }
        out.write_all(&d.buf[d.out.clone()])?;
        Ok(())
    };
    let batches = layout.batches();
    let next = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let (free_tx, free_rx) = mpsc::channel::<Vec<u8>>();
    for _ in 0..2 * threads + 2 {
        free_tx.send(vec![0u8; buf_len]).expect("receiver alive");
    }
    let free_rx = Mutex::new(free_rx);
    let (done_tx, done_rx) = mpsc::channel::<Result<Done, FormatError>>();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let done_tx = done_tx.clone();
            let (free_rx, next, stop, work) = (&free_rx, &next, &stop, &work);
            s.spawn(move || loop {
                let Ok(mut buf) = free_rx.lock().map_err(|_| ()).and_then(|rx| rx.recv().map_err(|_| ())) else {
                    return;
                };
                let k = next.fetch_add(1, Ordering::SeqCst);
                if k >= batches || stop.load(Ordering::SeqCst) {
                    return;
                }
                let r = work(k, &mut buf).map(|(out, tags)| Done { batch: k, buf, out, tags });
                let failed = r.is_err();
                if done_tx.send(r).is_err() || failed {
                    return;
                }
            });
        }
        drop(done_tx);
        let mut pending = BTreeMap::new();
        let mut expect = 0u64;
        let result = (|| -> Result<(), FormatError> {
            while expect < batches {
                let done = done_rx.recv().map_err(|_| io::Error::other("worker thread ended early"))??;
                pending.insert(done.batch, done);
                while let Some(d) = pending.remove(&expect) {
                    emit(&d)?;
                    expect += 1;
                    // The workers may have quit already; a lost buffer is fine then.
                    let _ = free_tx.send(d.buf);
                }
            }
            Ok(())
        })();
        // Release the workers: no new batch is claimed once `stop` is set,
        // and a worker waiting for a buffer wakes when the sender is gone.
        stop.store(true, Ordering::SeqCst);
        drop(free_tx);
        result
    })?;
    Ok(merkle.root())
}

/// Encrypts `plaintext_len` bytes of `src` into `out` with `opts.threads`
/// workers. Produces exactly the bytes [`Writer`](crate::Writer) would.
pub fn encrypt_from<R: ReadAt + ?Sized, W: Write>(
    src: &R,
    plaintext_len: u64,
    mut out: W,
    header: &Header,
    data_key: &DataKey,
    opts: WriterOptions,
) -> Result<(W, Summary), FormatError> {
    let keys = ObjectKeys::for_header(header, data_key);
    let seg = header.segment_size() as usize;
    let count = plaintext_len.div_ceil(seg as u64).max(1);
    if count > MAX_SEGMENTS {
        return Err(FormatError::TooManySegments);
    }
    let layout = Layout { seg, stride: seg + TAG_LEN, count, plaintext_len, batch: opts.effective_batch(seg) };
    out.write_all(&header.encode_with(&keys))?;
    let key = &keys.payload;
    let work = |k: u64, buf: &mut Vec<u8>| -> Result<(std::ops::Range<usize>, Vec<[u8; TAG_LEN]>), FormatError> {
        let (first, end) = layout.range(k);
        let mut tags = Vec::with_capacity((end - first) as usize);
        let mut used = 0;
        for i in first..end {
            let len = layout.pt_len(i);
            let slot = &mut buf[used..used + len + TAG_LEN];
            src.read_exact_at(&mut slot[..len], i * seg as u64)?;
            tags.push(segment::seal(key, i, i + 1 == count, slot, len));
            used += len + TAG_LEN;
        }
        Ok((0..used, tags))
    };
    let root = pipeline(layout, opts.threads.max(1), layout.batch * layout.stride, work, &mut out)?;
    let summary = Summary { segment_count: count, plaintext_len, merkle_root: root };
    let trailer = Trailer { segment_count: count, plaintext_len, merkle_root: summary.merkle_root };
    out.write_all(&trailer.encode(&keys))?;
    out.flush()?;
    Ok((out, summary))
}

/// Decrypts the object of `object_len` bytes in `src`, whose authenticated
/// header is `header`, into `out` with `opts.threads` workers.
///
/// The trailer is read and authenticated first, so the segment count and
/// the object's length are known (truncation and extension are caught
/// before any output). Each batch is written only after all its segments
/// authenticated; the Merkle root is compared at the end.
pub fn decrypt_to<R: ReadAt + ?Sized, W: Write>(
    src: &R,
    object_len: u64,
    header: &Header,
    data_key: &DataKey,
    mut out: W,
    opts: WriterOptions,
) -> Result<(W, Summary), FormatError> {
    let keys = ObjectKeys::for_header(header, data_key);
    let seg = header.segment_size() as usize;
    let stride = seg + TAG_LEN;
    let data_start = header.encoded_len() as u64;
    if object_len < data_start + (TAG_LEN + TRAILER_LEN) as u64 {
        return Err(FormatError::Truncated { after_segment: None });
    }
    let mut t = [0u8; TRAILER_LEN];
    src.read_exact_at(&mut t, object_len - TRAILER_LEN as u64)?;
    let trailer = match Trailer::decode(&t, &keys) {
        Ok(t) => t,
        Err(_) => {
            // Not an authentic trailer: let the streaming reader, which
            // walks the segments, say what is wrong.
            return Err(diagnose_stream(src, object_len, header, data_key));
        }
    };
    let (count, plaintext_len) = (trailer.segment_count, trailer.plaintext_len);
    let seg64 = seg as u64;
    let consistent = (1..=MAX_SEGMENTS).contains(&count)
        && plaintext_len <= count * seg64
        && (plaintext_len > (count - 1) * seg64 || (count == 1 && plaintext_len == 0));
    if !consistent {
        return Err(FormatError::TrailerMismatch("segment count and plaintext length disagree"));
    }
    let expected = data_start + plaintext_len + count * TAG_LEN as u64 + TRAILER_LEN as u64;
    if object_len != expected {
        return Err(diagnose_stream(src, object_len, header, data_key));
    }
    let layout = Layout { seg, stride, count, plaintext_len, batch: opts.effective_batch(seg) };
    let key = &keys.payload;
    // Each buffer: ciphertext of a batch, then room for its plaintext.
    let cipher_room = layout.batch * stride;
    let work = |k: u64, buf: &mut Vec<u8>| -> Result<(std::ops::Range<usize>, Vec<[u8; TAG_LEN]>), FormatError> {
        let (first, end) = layout.range(k);
        let ct_len: usize = (first..end).map(|i| layout.pt_len(i) + TAG_LEN).sum();
        let (cbuf, pbuf) = buf.split_at_mut(cipher_room);
        src.read_exact_at(&mut cbuf[..ct_len], data_start + first * stride as u64)?;
        let mut tags = Vec::with_capacity((end - first) as usize);
        let (mut c, mut p) = (0, 0);
        for i in first..end {
            let len = layout.pt_len(i);
            let ct = &cbuf[c..c + len + TAG_LEN];
            let Some(tag) = segment::open(key, i, i + 1 == count, ct, &mut pbuf[p..p + len]) else {
                return Err(segment::diagnose(
                    key,
                    i,
                    i + 1 == count,
                    ct,
                    ct,
                    segment::Shape::reader(Some(count), stride),
                ));
            };
            if len == 0 && i > 0 {
                return Err(FormatError::EmptySegment { index: i });
            }
            tags.push(tag);
            c += len + TAG_LEN;
            p += len;
        }
        Ok((cipher_room..cipher_room + p, tags))
    };
    let root = pipeline(layout, opts.threads.max(1), cipher_room + layout.batch * seg, work, &mut out)?;
    if root != trailer.merkle_root {
        return Err(FormatError::TrailerMismatch("Merkle root differs"));
    }
    out.flush()?;
    Ok((out, Summary { segment_count: count, plaintext_len, merkle_root: root }))
}

/// Runs the streaming reader over the object to name what is wrong with it.
fn diagnose_stream<R: ReadAt + ?Sized>(src: &R, object_len: u64, header: &Header, key: &DataKey) -> FormatError {
    struct At<'a, R: ?Sized>(&'a R, u64, u64);
    impl<R: ReadAt + ?Sized> io::Read for At<'_, R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = (buf.len() as u64).min(self.2 - self.1) as usize;
            self.0.read_exact_at(&mut buf[..n], self.1)?;
            self.1 += n as u64;
            Ok(n)
        }
    }
    let r = At(src, header.encoded_len() as u64, object_len);
    match crate::StreamReader::new(r, header, key).verify_to_end() {
        Err(e) => e,
        Ok(_) => FormatError::TrailerMismatch("object length disagrees with its trailer"),
    }
}
