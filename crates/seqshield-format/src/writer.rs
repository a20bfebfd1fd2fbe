//! Streaming encryption: [`Writer`].

use std::io::{self, Write};

use rayon::prelude::*;

use crate::error::FormatError;
use crate::header::Header;
use crate::key::{DataKey, ObjectKeys};
use crate::limits::{MAX_SEGMENTS, TAG_LEN};
use crate::merkle::{segment_leaf, Hash, MerkleBuilder};
use crate::segment;
use crate::trailer::Trailer;

/// Most plaintext bytes in one batch (8 MiB). Bounds a reader's memory
/// whatever segment size a hostile object declares.
pub const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;

/// Tuning for [`Writer`] and [`StreamReader`](crate::StreamReader).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriterOptions {
    /// Worker threads for sealing or opening segments in parallel (1 = on the
    /// calling thread).
    pub threads: usize,
    /// Segments buffered per batch. Memory use is about
    /// `batch_segments × segment_size` (twice that for readers), whatever the
    /// object size.
    pub batch_segments: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self { threads: 1, batch_segments: 1 }
    }
}

impl WriterOptions {
    /// Uses every available core, with batches of 16 segments.
    pub fn parallel() -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self { threads, batch_segments: if threads > 1 { 16 } else { 1 } }
    }

    /// Segments per batch for `segment_size`-byte segments: at most
    /// `batch_segments`, and never more than [`MAX_BATCH_BYTES`] of
    /// plaintext, since the segment size of an object being read is chosen
    /// by whoever wrote it.
    pub fn effective_batch(&self, segment_size: usize) -> usize {
        self.batch_segments.clamp(1, (MAX_BATCH_BYTES / segment_size.max(1)).max(1))
    }

    pub(crate) fn pool(&self) -> Option<rayon::ThreadPool> {
        (self.threads > 1).then(|| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(self.threads)
                .thread_name(|i| format!("seqshield-crypt-{i}"))
                .build()
                .expect("spawning crypto worker threads")
        })
    }
}

/// What a finished object contains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Number of segments.
    pub segment_count: u64,
    /// Plaintext bytes.
    pub plaintext_len: u64,
    /// Merkle root over the segment leaves.
    pub merkle_root: Hash,
}

/// The result of [`Writer::finish`].
#[derive(Debug)]
pub struct Sealed<W> {
    /// The inner writer, flushed.
    pub inner: W,
    /// What was written.
    pub summary: Summary,
}

/// Encrypts a plaintext stream into a seqshield object.
///
/// The header is written at construction. **[`finish`](Writer::finish) MUST
/// be called** when all plaintext has been written: it seals the final
/// segment and writes the trailer. An object whose writer was dropped
/// without `finish` has no trailer and every reader rejects it as truncated.
pub struct Writer<W: Write> {
    inner: W,
    keys: ObjectKeys,
    seg: usize,
    stride: usize,
    /// `batch_segments` slots of `stride` bytes; slot `i` holds plaintext at
    /// `[i*stride, i*stride + seg)` and gets its tag right after it.
    batch: Vec<u8>,
    slots: usize,
    /// Plaintext bytes buffered in `batch`.
    pending: usize,
    next_index: u64,
    plaintext_len: u64,
    merkle: MerkleBuilder,
    pool: Option<rayon::ThreadPool>,
    tags: Vec<[u8; TAG_LEN]>,
}

impl<W: Write> Writer<W> {
    /// Starts an object on a single thread, writing the header to `inner`.
    pub fn new(inner: W, header: &Header, data_key: &DataKey) -> io::Result<Self> {
        Self::with_options(inner, header, data_key, WriterOptions::default())
    }

    /// Starts an object with explicit tuning.
    pub fn with_options(mut inner: W, header: &Header, data_key: &DataKey, opts: WriterOptions) -> io::Result<Self> {
        let keys = ObjectKeys::for_header(header, data_key);
        inner.write_all(&header.encode_with(&keys))?;
        let seg = header.segment_size() as usize;
        let slots = opts.effective_batch(seg);
        Ok(Self {
            inner,
            keys,
            seg,
            stride: seg + TAG_LEN,
            batch: vec![0u8; slots * (seg + TAG_LEN)],
            slots,
            pending: 0,
            next_index: 0,
            plaintext_len: 0,
            merkle: MerkleBuilder::new(),
            pool: opts.pool(),
            tags: Vec::with_capacity(slots),
        })
    }

    /// Seals the buffered segments; the last one is final if `last`.
    fn flush_batch(&mut self, last: bool) -> io::Result<()> {
        let n = if self.pending == 0 { 1 } else { self.pending.div_ceil(self.seg) };
        let final_len = self.pending - (n - 1) * self.seg;
        self.seal_batch(None, n, final_len, last)?;
        self.pending = 0;
        Ok(())
    }

    /// Seals `n` segments into the batch slots and writes them out. The
    /// plaintext is `src` (read in place, segment after segment) or, when
    /// `None`, what the slots already hold.
    fn seal_batch(&mut self, src: Option<&[u8]>, n: usize, final_len: usize, last: bool) -> io::Result<()> {
        if self.next_index + n as u64 > MAX_SEGMENTS {
            return Err(FormatError::TooManySegments.into_io());
        }
        let (seg, stride, first) = (self.seg, self.stride, self.next_index);
        let key = &self.keys.payload;
        let seal_slot = |(i, slot): (usize, &mut [u8])| {
            let is_final = i == n - 1;
            let len = if is_final { final_len } else { seg };
            let index = first + i as u64;
            match src {
                Some(src) => segment::seal_from(key, index, last && is_final, &src[i * seg..i * seg + len], slot),
                None => segment::seal(key, index, last && is_final, slot, len),
            }
        };
        let region = &mut self.batch[..n * stride];
        self.tags.clear();
        match &self.pool {
            Some(pool) if n > 1 => pool
                .install(|| region.par_chunks_mut(stride).enumerate().map(seal_slot).collect_into_vec(&mut self.tags)),
            _ => self.tags.extend(region.chunks_mut(stride).enumerate().map(seal_slot)),
        }
        for (i, tag) in self.tags.iter().enumerate() {
            let is_final = i == n - 1;
            let len = if is_final { final_len } else { seg };
            self.merkle.push(segment_leaf(first + i as u64, last && is_final, (len + TAG_LEN) as u32, tag));
        }
        self.inner.write_all(&self.batch[..(n - 1) * stride + final_len + TAG_LEN])?;
        self.next_index += n as u64;
        Ok(())
    }

    /// Seals the final segment, writes the trailer, flushes, and returns the
    /// inner writer with a summary. MUST be called.
    pub fn finish(mut self) -> io::Result<Sealed<W>> {
        self.flush_batch(true)?;
        let summary = Summary {
            segment_count: self.next_index,
            plaintext_len: self.plaintext_len,
            merkle_root: self.merkle.root(),
        };
        let trailer = Trailer {
            segment_count: summary.segment_count,
            plaintext_len: summary.plaintext_len,
            merkle_root: summary.merkle_root,
        };
        self.inner.write_all(&trailer.encode(&self.keys))?;
        self.inner.flush()?;
        Ok(Sealed { inner: self.inner, summary })
    }
}

impl<W: Write> Write for Writer<W> {
    fn write(&mut self, mut buf: &[u8]) -> io::Result<usize> {
        let total = buf.len();
        let capacity = self.slots * self.seg;
        while !buf.is_empty() {
            if self.pending == capacity {
                // More plaintext follows, so none of the buffered segments is final.
                self.flush_batch(false)?;
            }
            if self.pending == 0 && buf.len() > capacity {
                // A whole batch that is not the end: seal it straight from
                // the caller's buffer, saving a copy.
                self.seal_batch(Some(&buf[..capacity]), self.slots, self.seg, false)?;
                buf = &buf[capacity..];
                continue;
            }
            let slot = self.pending / self.seg;
            let off = self.pending % self.seg;
            let n = (self.seg - off).min(buf.len());
            let start = slot * self.stride + off;
            self.batch[start..start + n].copy_from_slice(&buf[..n]);
            self.pending += n;
            buf = &buf[n..];
        }
        self.plaintext_len += total as u64;
        Ok(total)
    }

    /// Flushes the inner writer. Buffered plaintext stays buffered: a segment
    /// can be sealed only once it is known whether it is the final one.
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
