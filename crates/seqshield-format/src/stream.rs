//! Sequential decryption of a stream that cannot seek: [`StreamReader`].

use std::io::{self, Read};

use rayon::prelude::*;

use crate::error::FormatError;
use crate::header::Header;
use crate::key::{DataKey, ObjectKeys};
use crate::limits::{MAX_SEGMENTS, TAG_LEN, TRAILER_LEN};
use crate::merkle::{segment_leaf, MerkleBuilder};
use crate::segment;
use crate::trailer::Trailer;
use crate::writer::{Summary, WriterOptions};

enum State {
    Running,
    Done(Summary),
    Failed,
}

/// Decrypts an object read front to back (a pipe, a socket, stdin).
///
/// Construct it on the reader positioned just after the header (as left by
/// [`SealedHeader::read_from`](crate::SealedHeader::read_from)). Plaintext
/// of a segment is released only after that segment has authenticated;
/// the trailer (count, length, Merkle root) is checked before the final
/// batch is released. The first failure is returned as an `io::Error` of
/// kind `InvalidData` carrying a [`FormatError`], and every later read
/// fails too.
pub struct StreamReader<R: Read> {
    inner: R,
    keys: ObjectKeys,
    seg: usize,
    stride: usize,
    batch: usize,
    /// Ciphertext: up to `batch` segments plus a trailer plus one byte of
    /// lookahead (to know whether the last full segment is final).
    cbuf: Vec<u8>,
    clen: usize,
    /// Plaintext of the current batch, contiguous.
    pbuf: Vec<u8>,
    ppos: usize,
    pend: usize,
    next_index: u64,
    plaintext_len: u64,
    merkle: MerkleBuilder,
    pool: Option<rayon::ThreadPool>,
    results: Vec<Option<[u8; TAG_LEN]>>,
    state: State,
}

impl<R: Read> StreamReader<R> {
    /// A single-threaded reader.
    pub fn new(inner: R, header: &Header, data_key: &DataKey) -> Self {
        Self::with_options(inner, header, data_key, WriterOptions::default())
    }

    /// A reader with explicit tuning (threads and batch size).
    pub fn with_options(inner: R, header: &Header, data_key: &DataKey, opts: WriterOptions) -> Self {
        let seg = header.segment_size() as usize;
        let stride = seg + TAG_LEN;
        let batch = opts.effective_batch(seg);
        Self {
            inner,
            keys: ObjectKeys::for_header(header, data_key),
            seg,
            stride,
            batch,
            cbuf: vec![0u8; batch * stride + TRAILER_LEN + 1],
            clen: 0,
            pbuf: vec![0u8; batch * seg],
            ppos: 0,
            pend: 0,
            next_index: 0,
            plaintext_len: 0,
            merkle: MerkleBuilder::new(),
            pool: opts.pool(),
            results: Vec::with_capacity(batch),
            state: State::Running,
        }
    }

    /// Reads and authenticates the rest of the object without keeping the
    /// plaintext; returns its summary or the first error.
    pub fn verify_to_end(mut self) -> Result<Summary, FormatError> {
        loop {
            match self.next_batch() {
                Ok(true) => continue,
                Ok(false) => break,
                Err(e) => return Err(e),
            }
        }
        match self.state {
            State::Done(s) => Ok(s),
            _ => unreachable!("next_batch returns false only when done"),
        }
    }

    /// The next authenticated plaintext chunk (one batch), or `None` at the
    /// end. Avoids the copy that `Read` makes.
    pub fn next_chunk(&mut self) -> Result<Option<&[u8]>, FormatError> {
        if self.ppos == self.pend && !self.next_batch()? {
            return Ok(None);
        }
        let chunk = &self.pbuf[self.ppos..self.pend];
        self.ppos = self.pend;
        Ok(Some(chunk))
    }

    /// The summary, once the whole object has been read and verified.
    pub fn summary(&self) -> Option<Summary> {
        match self.state {
            State::Done(s) => Some(s),
            _ => None,
        }
    }

    fn fill(&mut self) -> Result<bool, FormatError> {
        while self.clen < self.cbuf.len() {
            match self.inner.read(&mut self.cbuf[self.clen..]) {
                Ok(0) => return Ok(true),
                Ok(n) => self.clen += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(FormatError::Io(e)),
            }
        }
        Ok(false)
    }

    /// Decrypts the next batch into `pbuf`. Returns `false` at the end.
    fn next_batch(&mut self) -> Result<bool, FormatError> {
        match self.state {
            State::Running => {}
            State::Done(_) => return Ok(false),
            State::Failed => return Err(FormatError::Io(io::Error::other("object already failed to authenticate"))),
        }
        let r = self.decrypt_batch();
        if r.is_err() {
            self.state = State::Failed;
            self.ppos = 0;
            self.pend = 0;
        }
        r.map(|()| true)
    }

    fn decrypt_batch(&mut self) -> Result<(), FormatError> {
        let eof = self.fill()?;
        let last_ok = self.next_index.checked_sub(1);
        // Segment lengths (ciphertext with tag) in this batch.
        let (n, final_ct) = if !eof {
            (self.batch, self.stride)
        } else {
            let body = self.clen.checked_sub(TRAILER_LEN).ok_or(FormatError::Truncated { after_segment: last_ok })?;
            if body < TAG_LEN {
                return Err(FormatError::Truncated { after_segment: last_ok });
            }
            let full = (body - 1) / self.stride;
            let final_ct = body - full * self.stride;
            if final_ct < TAG_LEN {
                return Err(FormatError::Truncated { after_segment: Some(self.next_index + full as u64 - 1) });
            }
            (full + 1, final_ct)
        };
        if self.next_index + n as u64 > MAX_SEGMENTS {
            return Err(FormatError::TooManySegments);
        }
        let (first, stride, seg) = (self.next_index, self.stride, self.seg);
        let key = &self.keys.payload;
        let cbuf = &self.cbuf[..(n - 1) * stride + final_ct];
        let open_one = |(i, out): (usize, &mut [u8])| {
            let is_final = i == n - 1;
            let len = if is_final { final_ct } else { stride };
            let ct = &cbuf[i * stride..i * stride + len];
            segment::open(key, first + i as u64, eof && is_final, ct, out)
        };
        let pbuf = &mut self.pbuf[..n * seg];
        self.results.clear();
        match &self.pool {
            Some(pool) if n > 1 => {
                pool.install(|| pbuf.par_chunks_mut(seg).enumerate().map(open_one).collect_into_vec(&mut self.results))
            }
            _ => self.results.extend(pbuf.chunks_mut(seg).enumerate().map(open_one)),
        }
        for (i, tag) in self.results.iter().enumerate() {
            let index = first + i as u64;
            let is_final = i == n - 1;
            let len = if is_final { final_ct } else { stride };
            let Some(tag) = tag else {
                let start = i * stride;
                let rest = &self.cbuf[start..self.clen];
                return Err(segment::diagnose(
                    key,
                    index,
                    eof && is_final,
                    &rest[..len],
                    rest,
                    segment::Shape::reader(None, stride),
                ));
            };
            if len == TAG_LEN && index > 0 {
                return Err(FormatError::EmptySegment { index });
            }
            self.merkle.push(segment_leaf(index, eof && is_final, len as u32, tag));
        }
        let plain = (n - 1) * seg + final_ct - TAG_LEN;
        self.next_index += n as u64;
        self.plaintext_len += plain as u64;
        if eof {
            let body = self.clen - TRAILER_LEN;
            let trailer = Trailer::decode(&self.cbuf[body..self.clen], &self.keys)?;
            if trailer.segment_count != self.next_index {
                return Err(FormatError::TrailerMismatch("segment count differs"));
            }
            if trailer.plaintext_len != self.plaintext_len {
                return Err(FormatError::TrailerMismatch("plaintext length differs"));
            }
            let root = self.merkle.root();
            if trailer.merkle_root != root {
                return Err(FormatError::TrailerMismatch("Merkle root differs"));
            }
            self.state = State::Done(Summary {
                segment_count: self.next_index,
                plaintext_len: self.plaintext_len,
                merkle_root: root,
            });
            self.clen = 0;
        } else {
            let used = n * stride;
            self.cbuf.copy_within(used..self.clen, 0);
            self.clen -= used;
        }
        self.ppos = 0;
        self.pend = plain;
        Ok(())
    }
}

impl<R: Read> Read for StreamReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.ppos == self.pend {
            if !self.next_batch().map_err(FormatError::into_io)? {
                return Ok(0);
            }
        }
        let n = (self.pend - self.ppos).min(buf.len());
        buf[..n].copy_from_slice(&self.pbuf[self.ppos..self.ppos + n]);
        self.ppos += n;
        Ok(n)
    }
}
