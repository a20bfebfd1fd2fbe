//! Random access: [`Reader`] decrypts any byte range by reading only the
//! segments it spans.

use std::io::{self, Read, Seek, SeekFrom};

use crate::error::FormatError;
use crate::header::Header;
use crate::key::{DataKey, ObjectKeys};
use crate::limits::{MAX_SEGMENTS, TAG_LEN, TRAILER_LEN, TRAILER_MAGIC};
use crate::segment;
use crate::trailer::Trailer;

/// A seekable plaintext view of an object in a seekable source.
///
/// On open it reads and authenticates the trailer (segment count and
/// plaintext length) and checks the object's length against it, so
/// truncation and extension are caught before any byte is served. Each
/// segment is authenticated when first read; its position and finality are
/// bound into its nonce, so a segment served here is the one written at
/// that offset of this object. (Whole-object verification, including the
/// Merkle root, is [`StreamReader::verify_to_end`](crate::StreamReader::verify_to_end).)
pub struct Reader<R: Read + Seek> {
    inner: R,
    keys: ObjectKeys,
    seg: u64,
    stride: u64,
    data_start: u64,
    count: u64,
    plaintext_len: u64,
    pos: u64,
    /// Index of the segment in `plain`, if any.
    cached: Option<u64>,
    cbuf: Vec<u8>,
    plain: Vec<u8>,
    plain_len: usize,
}

impl<R: Read + Seek> Reader<R> {
    /// Opens an object whose authenticated header is `header`; `inner` may
    /// be positioned anywhere. The header must start at offset 0.
    pub fn new(mut inner: R, header: &Header, data_key: &DataKey) -> Result<Self, FormatError> {
        let keys = ObjectKeys::for_header(header, data_key);
        let seg = u64::from(header.segment_size());
        let stride = seg + TAG_LEN as u64;
        let data_start = header.encoded_len() as u64;
        let file_len = inner.seek(SeekFrom::End(0))?;
        if file_len < data_start + (TAG_LEN + TRAILER_LEN) as u64 {
            return Err(FormatError::Truncated { after_segment: None });
        }
        let mut t = [0u8; TRAILER_LEN];
        inner.seek(SeekFrom::Start(file_len - TRAILER_LEN as u64))?;
        inner.read_exact(&mut t)?;
        let trailer = Trailer::decode(&t, &keys).map_err(|e| match e {
            // A truncated or extended file has something else in its last bytes.
            FormatError::TrailerAuthFailed => locate_displaced_trailer(&mut inner, &keys, file_len, data_start, stride),
            other => other,
        })?;
        let count = trailer.segment_count;
        let len = trailer.plaintext_len;
        let consistent = (1..=MAX_SEGMENTS).contains(&count)
            && len <= count * seg
            && (len > (count - 1) * seg || (count == 1 && len == 0));
        if !consistent {
            return Err(FormatError::TrailerMismatch("segment count and plaintext length disagree"));
        }
        let expected = data_start + len + count * TAG_LEN as u64 + TRAILER_LEN as u64;
        if file_len < expected {
            return Err(FormatError::Truncated { after_segment: None });
        }
        if file_len > expected {
            return Err(FormatError::Extended { index: count - 1 });
        }
        Ok(Self {
            inner,
            keys,
            seg,
            stride,
            data_start,
            count,
            plaintext_len: len,
            pos: 0,
            cached: None,
            cbuf: vec![0u8; stride as usize],
            plain: vec![0u8; seg as usize],
            plain_len: 0,
        })
    }

    /// Plaintext length in bytes.
    pub fn plaintext_len(&self) -> u64 {
        self.plaintext_len
    }

    /// Number of segments.
    pub fn segment_count(&self) -> u64 {
        self.count
    }

    fn load(&mut self, index: u64) -> Result<(), FormatError> {
        if self.cached == Some(index) {
            return Ok(());
        }
        self.cached = None;
        let last = index == self.count - 1;
        let pt_len = if last { self.plaintext_len - index * self.seg } else { self.seg } as usize;
        let ct = &mut self.cbuf[..pt_len + TAG_LEN];
        self.inner.seek(SeekFrom::Start(self.data_start + index * self.stride))?;
        self.inner.read_exact(ct).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => FormatError::Truncated { after_segment: index.checked_sub(1) },
            _ => FormatError::Io(e),
        })?;
        if segment::open(&self.keys.payload, index, last, ct, &mut self.plain).is_none() {
            return Err(segment::diagnose(
                &self.keys.payload,
                index,
                last,
                ct,
                ct,
                segment::Shape::reader(Some(self.count), self.stride as usize),
            ));
        }
        self.plain_len = pt_len;
        self.cached = Some(index);
        Ok(())
    }
}

/// The last bytes are not an authentic trailer. Looks for the real one
/// near the end to tell truncation from extension from damage.
fn locate_displaced_trailer<R: Read + Seek>(
    inner: &mut R,
    keys: &ObjectKeys,
    file_len: u64,
    data_start: u64,
    stride: u64,
) -> FormatError {
    let window = (stride + 2 * TRAILER_LEN as u64).min(file_len - data_start);
    let mut tail = vec![0u8; window as usize];
    let read = inner.seek(SeekFrom::Start(file_len - window)).and_then(|_| inner.read_exact(&mut tail));
    if let Err(e) = read {
        return FormatError::Io(e);
    }
    for (off, _) in tail.windows(TRAILER_MAGIC.len()).enumerate().filter(|(_, w)| *w == TRAILER_MAGIC) {
        let candidate = &tail[off..];
        if candidate.len() >= TRAILER_LEN && Trailer::decode(&candidate[..TRAILER_LEN], keys).is_ok() {
            let count = Trailer::decode(&candidate[..TRAILER_LEN], keys).map(|t| t.segment_count).unwrap_or(1);
            return FormatError::Extended { index: count.saturating_sub(1) };
        }
        if candidate.len() < TRAILER_LEN {
            // A trailer cut short: the object ends inside it.
            return FormatError::Truncated { after_segment: None };
        }
    }
    // No trailer at all: most likely cut inside the segments.
    let body = file_len - data_start - TRAILER_LEN as u64;
    if body % stride == 0 {
        FormatError::Truncated { after_segment: (body / stride).checked_sub(1) }
    } else {
        FormatError::TrailerAuthFailed
    }
}

impl<R: Read + Seek> Read for Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.plaintext_len || buf.is_empty() {
            return Ok(0);
        }
        let index = self.pos / self.seg;
        self.load(index).map_err(FormatError::into_io)?;
        let off = (self.pos - index * self.seg) as usize;
        let n = (self.plain_len - off).min(buf.len());
        buf[..n].copy_from_slice(&self.plain[off..off + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for Reader<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.plaintext_len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let target = target.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before start"))?;
        self.pos = target;
        Ok(target)
    }
}
