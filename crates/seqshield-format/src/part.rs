//! Parts: runs of whole segments, sealed and checked on their own.
//!
//! An object store keeps an object as three pieces: the header and the
//! trailer (small, in a database) and the *wire bytes* (in blob storage):
//! every segment's `body ‖ tag`, back to back, i.e. the object file without
//! its header and trailer. The wire bytes move between client and store in
//! *parts*: a part is a run of consecutive whole segments, and only the
//! part that holds the object's final segment may end with a segment
//! shorter than the others.
//!
//! ```text
//! object file = header ‖ wire ‖ trailer          (docs/format.md §2)
//! wire        = segment_0 ‖ … ‖ segment_{n-1}    segment_i = body_i ‖ tag_i
//! part        = segment_f ‖ … ‖ segment_{f+k-1}  for any 0 ≤ f < f+k ≤ n
//! ```
//!
//! [`PartCodec`] seals a part from plaintext, or authenticates a part
//! at its claimed position, returning the segments' Merkle leaves;
//! [`merkle_root`] over all leaves, in order, is the root the trailer holds.
//! Nonces are deterministic (segment index and final flag), so sealing the
//! same plaintext under the same header and data key always gives the same
//! bytes: an interrupted upload resumes by sealing only the missing parts,
//! and the result is byte-identical to what [`Writer`](crate::Writer)
//! writes. `header ‖ wire ‖ trailer` ([`write_object`]) is a standard
//! object that [`StreamReader`](crate::StreamReader),
//! [`Reader`](crate::Reader) and every other reader of this crate accept.
//!
//! How many segments a part holds follows from its length. A part cut
//! *inside* a segment is refused ([`FormatError::PartLength`]), but a part
//! cut exactly *at* a segment boundary is a valid shorter part: compare the
//! number of leaves returned with the number expected, and the root of all
//! leaves with the trailer's before accepting an object as complete.
//!
//! ```
//! use std::io::Read;
//! use seqshield_format::part::{merkle_root, write_object, PartCodec};
//! use seqshield_format::trailer::Trailer;
//! use seqshield_format::{Classification, DataKey, Header, SealedHeader, StreamReader, WrappedKey};
//!
//! let key = DataKey::generate();
//! let recipient = WrappedKey { key_id: "demo".into(), algorithm: "none".into(), wrapped: vec![0] };
//! let header = Header::new(Classification::Public, "text/plain", vec![recipient])?
//!     .with_segment_size(1024)?
//!     .with_integrity_only(true);
//! let plain = vec![b'A'; 5000]; // 5 segments, the last one short
//! let codec = PartCodec::new(&header, &key);
//! let total = codec.segment_count(plain.len() as u64);
//!
//! // Client: seal parts of 2 segments (the last part ends with the final segment).
//! let (mut parts, mut leaves) = (Vec::new(), Vec::new());
//! for (k, pt) in plain.chunks(2 * 1024).enumerate() {
//!     let mut wire = Vec::new();
//!     leaves.extend(codec.seal_part(2 * k as u64, total, pt, &mut wire)?);
//!     parts.push(wire);
//! }
//! let root = merkle_root(&leaves);
//! let trailer = codec.seal_trailer(&Trailer { segment_count: total, plaintext_len: 5000, merkle_root: root });
//!
//! // Store: check each part at its position; the root must be the trailer's.
//! let mut checked = Vec::new();
//! for (k, wire) in parts.iter().enumerate() {
//!     checked.extend(codec.check_part(2 * k as u64, total, wire)?);
//! }
//! assert_eq!(merkle_root(&checked), codec.open_trailer(&trailer)?.merkle_root);
//!
//! // header ‖ wire ‖ trailer is a standard object.
//! let object = write_object(Vec::new(), &header.encode(&key), &parts, &trailer)?;
//! let mut input = object.as_slice();
//! let h = SealedHeader::read_from(&mut input)?.authenticate(&key)?;
//! let mut back = Vec::new();
//! StreamReader::new(input, &h, &key).read_to_end(&mut back)?;
//! assert_eq!(back, plain);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Each call works on one part on the calling thread, allocating only its
//! returned leaves (and, for encrypted parts checked without output, one
//! scratch segment per thread, kept for reuse); run parts in parallel across
//! threads for throughput. [`PartCodec`] is `Send + Sync`.

use std::cell::RefCell;
use std::io::{self, Write};
use std::ops::Range;

use crate::error::FormatError;
use crate::header::{Header, SealedHeader};
use crate::key::{DataKey, ObjectKeys};
use crate::limits::{MAX_SEGMENTS, MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE, TAG_LEN, TRAILER_LEN};
use crate::merkle::{root_of, segment_leaf, Hash};
use crate::segment;
use crate::trailer::Trailer;

/// How far from its claimed position a failing segment of a part is looked
/// for among this object's positions, to report it as misplaced. Smaller
/// than the object readers' window: a store checks parts it receives from
/// clients, and the search must stay a small multiple of an honest check
/// (at most 2 × 16 MiB of authentication work per refused part).
const PART_SEARCH_WINDOW_BYTES: u64 = 16 * 1024 * 1024;

/// Seals and authenticates the parts of one object.
///
/// Built from the object's authenticated [`Header`] and its data key; holds
/// the derived subkeys (never printed) and the segment size and mode.
pub struct PartCodec {
    keys: ObjectKeys,
    seg: usize,
}

impl std::fmt::Debug for PartCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartCodec")
            .field("segment_size", &self.seg)
            .field("integrity_only", &self.integrity_only())
            .field("keys", &"<redacted>")
            .finish()
    }
}

/// The segments a part of a given length holds.
#[derive(Clone, Copy, Debug)]
struct Run {
    first: u64,
    total: u64,
    count: usize,
    /// Body (plaintext) bytes of the run's last segment.
    last_len: usize,
    /// Whether the run's last segment is the object's final segment.
    ends_object: bool,
}

impl Run {
    /// Where `len` bytes starting at segment `first` of a `total`-segment
    /// object lie: full segments are `seg + overhead` bytes; only the
    /// object's final segment may be shorter, with at least `overhead`
    /// bytes (`overhead` is 16 for wire bytes, 0 for plaintext).
    fn of(seg: usize, overhead: usize, first: u64, total: u64, len: usize) -> Result<Self, FormatError> {
        if total > MAX_SEGMENTS {
            return Err(FormatError::TooManySegments);
        }
        if first >= total {
            return Err(FormatError::PartOutOfRange { first_index: first, total_segments: total });
        }
        let misfit = |index| FormatError::PartLength { first_index: first, len: len as u64, index };
        let unit = seg + overhead;
        let remaining = total - first;
        let full = (len / unit) as u64;
        let rem = len % unit;
        if rem == 0 {
            if full == 0 {
                // Plaintext of the empty object: its one, empty segment.
                return if overhead == 0 && total == 1 {
                    Ok(Self { first, total, count: 1, last_len: 0, ends_object: true })
                } else {
                    Err(misfit(first))
                };
            }
            if full > remaining {
                return Err(misfit(total));
            }
            return Ok(Self { first, total, count: full as usize, last_len: seg, ends_object: full == remaining });
        }
        // A short segment at `first + full`: only the final one may be short.
        let at = first + full;
        if at >= total {
            return Err(misfit(total));
        }
        if at + 1 < total || rem < overhead {
            return Err(misfit(at));
        }
        Ok(Self { first, total, count: full as usize + 1, last_len: rem - overhead, ends_object: true })
    }

    /// Body bytes of the run's `j`-th segment.
    fn body_len(&self, j: usize, seg: usize) -> usize {
        if j + 1 == self.count {
            self.last_len
        } else {
            seg
        }
    }

    /// Whether the run's `j`-th segment is the object's final segment.
    fn is_final(&self, j: usize) -> bool {
        self.ends_object && j + 1 == self.count
    }

    /// Plaintext bytes in the run.
    fn plaintext_len(&self, seg: usize) -> usize {
        (self.count - 1) * seg + self.last_len
    }

    /// Segment `j`'s index, final flag and its bytes in `bytes` (laid out
    /// in units of `seg + overhead`).
    fn segment<'a>(&self, j: usize, seg: usize, overhead: usize, bytes: &'a [u8]) -> (u64, bool, &'a [u8]) {
        let start = j * (seg + overhead);
        (self.first + j as u64, self.is_final(j), &bytes[start..start + self.body_len(j, seg) + overhead])
    }
}

/// Segments of a `plaintext_len`-byte object: at least 1.
fn segments_of(seg: u64, plaintext_len: u64) -> u64 {
    plaintext_len.div_ceil(seg.max(1)).max(1)
}

/// Wire bytes of a `plaintext_len`-byte object.
fn wire_len_of(seg: u64, plaintext_len: u64) -> u64 {
    plaintext_len.saturating_add(segments_of(seg, plaintext_len).saturating_mul(TAG_LEN as u64))
}

thread_local! {
    /// Where encrypted segments are decrypted when only their authenticity
    /// is wanted; grows to the largest segment seen on this thread.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl PartCodec {
    /// A codec for the object whose authenticated header is `header` (from
    /// [`SealedHeader::authenticate`], or the header being written) and
    /// whose data key is `data_key`.
    pub fn new(header: &Header, data_key: &DataKey) -> Self {
        Self { keys: ObjectKeys::for_header(header, data_key), seg: header.segment_size() as usize }
    }

    /// Plaintext bytes per segment.
    pub fn segment_size(&self) -> usize {
        self.seg
    }

    /// Whether the object's segments hold the plaintext in the clear (see
    /// [`Header::with_integrity_only`]).
    pub fn integrity_only(&self) -> bool {
        self.keys.payload.integrity_only()
    }

    /// Wire bytes of one segment holding `pt_len` plaintext bytes:
    /// `pt_len + 16`, in either mode.
    pub fn segment_wire_len(&self, pt_len: usize) -> usize {
        pt_len + TAG_LEN
    }

    /// Segments of an object of `plaintext_len` bytes: at least 1 (an empty
    /// object has one empty segment).
    pub fn segment_count(&self, plaintext_len: u64) -> u64 {
        segments_of(self.seg as u64, plaintext_len)
    }

    /// Wire bytes (all segments, without header and trailer) of an object
    /// of `plaintext_len` bytes.
    pub fn wire_len(&self, plaintext_len: u64) -> u64 {
        wire_len_of(self.seg as u64, plaintext_len)
    }

    /// Seals plaintext `pt` as segments `first_index..` of an object of
    /// `total_segments` segments, appends their wire bytes to `out` and
    /// returns one Merkle leaf per segment.
    ///
    /// `pt` must be whole segments, except that the part holding segment
    /// `total_segments - 1` ends with it, however long it is (the plaintext
    /// of an empty object is one empty part). The bytes are exactly those
    /// [`Writer`](crate::Writer) writes at these positions.
    ///
    /// # Errors
    ///
    /// [`FormatError::PartOutOfRange`] if `first_index` is not below
    /// `total_segments`; [`FormatError::PartLength`] if `pt` is not whole
    /// segments or runs past the final segment;
    /// [`FormatError::TooManySegments`] above
    /// [`MAX_SEGMENTS`]. Nothing is appended
    /// on error.
    pub fn seal_part(
        &self,
        first_index: u64,
        total_segments: u64,
        pt: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Vec<Hash>, FormatError> {
        let run = Run::of(self.seg, 0, first_index, total_segments, pt.len())?;
        out.reserve(pt.len() + run.count * TAG_LEN);
        let mut leaves = Vec::with_capacity(run.count);
        for j in 0..run.count {
            let (index, last, body) = run.segment(j, self.seg, 0, pt);
            let tag = segment::seal_append(&self.keys.payload, index, last, body, out);
            leaves.push(segment_leaf(index, last, (body.len() + TAG_LEN) as u32, &tag));
        }
        Ok(leaves)
    }

    /// Authenticates every segment of a part (wire bytes) at its claimed
    /// position — segments `first_index..` of an object of `total_segments`
    /// segments — and returns one Merkle leaf per segment. No plaintext is
    /// produced: an integrity-only part costs one GMAC check per segment,
    /// an encrypted one is decrypted into a reused scratch buffer.
    ///
    /// # Errors
    ///
    /// The first bad segment, named as the object readers name it:
    /// [`FormatError::SegmentAuthFailed`] (damaged, or from another
    /// object), [`FormatError::SegmentMisplaced`] (a segment of this object
    /// from another position nearby), [`FormatError::Extended`] (the
    /// object's final segment presented as non-final),
    /// [`FormatError::Truncated`] (a non-final segment presented as final),
    /// [`FormatError::EmptySegment`]; or, before any cryptography,
    /// [`FormatError::PartLength`] (a segment cut short, or the part runs
    /// past the final segment) and [`FormatError::PartOutOfRange`].
    pub fn check_part(&self, first_index: u64, total_segments: u64, wire: &[u8]) -> Result<Vec<Hash>, FormatError> {
        let run = Run::of(self.seg, TAG_LEN, first_index, total_segments, wire.len())?;
        let key = &self.keys.payload;
        if key.integrity_only() {
            let mut none = Vec::new();
            return self
                .authenticate(&run, wire, |index, last, ct| segment::authenticate(key, index, last, ct, &mut none));
        }
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            self.authenticate(&run, wire, |index, last, ct| segment::authenticate(key, index, last, ct, &mut scratch))
        })
    }

    /// Like [`check_part`](PartCodec::check_part), and appends the part's
    /// plaintext to `out`. Nothing is appended on error.
    ///
    /// # Errors
    ///
    /// As [`check_part`](PartCodec::check_part).
    pub fn open_part(
        &self,
        first_index: u64,
        total_segments: u64,
        wire: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Vec<Hash>, FormatError> {
        let run = Run::of(self.seg, TAG_LEN, first_index, total_segments, wire.len())?;
        let start = out.len();
        out.reserve(run.plaintext_len(self.seg));
        let key = &self.keys.payload;
        let r = self.authenticate(&run, wire, |index, last, ct| segment::open_append(key, index, last, ct, out));
        if r.is_err() {
            out.truncate(start);
        }
        r
    }

    /// Runs `auth` over every segment of `run` in `wire`, diagnosing the
    /// first failure, and collects the leaves.
    fn authenticate<F>(&self, run: &Run, wire: &[u8], mut auth: F) -> Result<Vec<Hash>, FormatError>
    where
        F: FnMut(u64, bool, &[u8]) -> Option<[u8; TAG_LEN]>,
    {
        let mut leaves = Vec::with_capacity(run.count);
        for j in 0..run.count {
            let (index, last, ct) = run.segment(j, self.seg, TAG_LEN, wire);
            let Some(tag) = auth(index, last, ct) else {
                return Err(segment::diagnose(
                    &self.keys.payload,
                    index,
                    last,
                    ct,
                    ct,
                    segment::Shape {
                        count: Some(run.total),
                        stride: self.seg + TAG_LEN,
                        search_bytes: PART_SEARCH_WINDOW_BYTES,
                    },
                ));
            };
            if ct.len() == TAG_LEN && index > 0 {
                return Err(FormatError::EmptySegment { index });
            }
            leaves.push(segment_leaf(index, last, ct.len() as u32, &tag));
        }
        Ok(leaves)
    }

    /// The 88-byte trailer of this object (segment count, plaintext length
    /// and Merkle root, MACed), as [`Writer::finish`](crate::Writer::finish)
    /// writes it.
    pub fn seal_trailer(&self, trailer: &Trailer) -> [u8; TRAILER_LEN] {
        trailer.encode(&self.keys)
    }

    /// Authenticates a trailer of this object. The caller still compares
    /// its fields with the segments it holds: the count and length with the
    /// wire length, the root with [`merkle_root`] of all leaves.
    ///
    /// # Errors
    ///
    /// [`FormatError::TrailerAuthFailed`] if the MAC does not verify (damaged,
    /// forged, or another object's trailer); [`FormatError::Truncated`] if
    /// `bytes` is not 88 bytes long.
    pub fn open_trailer(&self, bytes: &[u8]) -> Result<Trailer, FormatError> {
        Trailer::decode(bytes, &self.keys)
    }
}

/// The Merkle leaves of a part's wire bytes, read from its tags, without a
/// key: segments `first_index..` of an object of `total_segments` segments
/// and `plaintext_len` bytes, with `segment_size`-byte segments.
///
/// With [`merkle_root`] over all parts' leaves this recomputes the root a
/// trailer holds, e.g. to confirm that a store holds every segment, in
/// order, with the tags it was given. It is **not** a content hash: the
/// leaves cover the tags, lengths and positions, not the bodies, so a
/// damaged body byte under an intact tag leaves the root unchanged. Only a
/// key holder ([`PartCodec::check_part`]) detects that; to compare two
/// copies of stored bytes without a key, hash the bytes themselves.
///
/// # Errors
///
/// [`FormatError::HeaderOutOfBounds`] for a segment size outside
/// [`MIN_SEGMENT_SIZE`]..=[`MAX_SEGMENT_SIZE`];
/// [`FormatError::TrailerMismatch`] if `total_segments` and
/// `plaintext_len` disagree; [`FormatError::PartOutOfRange`],
/// [`FormatError::PartLength`] (including a final segment whose length is
/// not the one `plaintext_len` implies) and
/// [`FormatError::TooManySegments`] as for [`PartCodec::check_part`].
pub fn part_leaves(
    segment_size: usize,
    first_index: u64,
    total_segments: u64,
    plaintext_len: u64,
    wire: &[u8],
) -> Result<Vec<Hash>, FormatError> {
    if !(MIN_SEGMENT_SIZE as usize..=MAX_SEGMENT_SIZE as usize).contains(&segment_size) {
        return Err(FormatError::HeaderOutOfBounds {
            field: "segment_size",
            value: segment_size as u64,
            min: MIN_SEGMENT_SIZE.into(),
            max: MAX_SEGMENT_SIZE.into(),
        });
    }
    if total_segments > MAX_SEGMENTS {
        return Err(FormatError::TooManySegments);
    }
    let seg = segment_size as u64;
    if segments_of(seg, plaintext_len) != total_segments {
        return Err(FormatError::TrailerMismatch("segment count and plaintext length disagree"));
    }
    let run = Run::of(segment_size, TAG_LEN, first_index, total_segments, wire.len())?;
    if run.ends_object && run.last_len as u64 != plaintext_len - (total_segments - 1) * seg {
        return Err(FormatError::PartLength { first_index, len: wire.len() as u64, index: total_segments - 1 });
    }
    Ok((0..run.count)
        .map(|j| {
            let (index, last, ct) = run.segment(j, segment_size, TAG_LEN, wire);
            let tag: &[u8; TAG_LEN] = ct[ct.len() - TAG_LEN..].try_into().expect("16 bytes");
            segment_leaf(index, last, ct.len() as u32, tag)
        })
        .collect())
}

/// The RFC 9162 Merkle tree head over `leaves`, all of an object's leaves
/// in segment order: the root its trailer holds.
pub fn merkle_root(leaves: &[Hash]) -> Hash {
    root_of(leaves)
}

/// Byte range, within the wire bytes (offset 0 = first byte of segment 0,
/// i.e. just after the header), of segments `first..first + count` of an
/// object of `plaintext_len` bytes with `segment_size`-byte segments.
///
/// Segments past the object's end are left out: the range is clamped to
/// the wire length, so it is empty when `first` is beyond the last segment.
/// Never panics; `segment_size` 0 is taken as 1.
pub fn wire_range(segment_size: usize, plaintext_len: u64, first: u64, count: u64) -> Range<u64> {
    let seg = (segment_size as u64).max(1);
    let stride = seg + TAG_LEN as u64;
    let total = wire_len_of(seg, plaintext_len);
    let start = first.saturating_mul(stride).min(total);
    let end = first.saturating_add(count).saturating_mul(stride).min(total);
    start..end.max(start)
}

/// The three pieces of an object file, as a store keeps them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectParts<'a> {
    /// The encoded header (checksum and MAC included).
    pub header: &'a [u8],
    /// The wire bytes: every segment, header and trailer excluded.
    pub wire: &'a [u8],
    /// The trailer.
    pub trailer: &'a [u8; TRAILER_LEN],
}

/// Splits an object file into header, wire bytes and trailer.
///
/// The header is parsed (magic, version, bounds, checksum) to find its
/// length; nothing is authenticated here: authenticate the header with
/// [`SealedHeader::authenticate`], then the wire with
/// [`PartCodec::check_part`] and the trailer with
/// [`PartCodec::open_trailer`].
///
/// # Errors
///
/// The header's parse errors, and [`FormatError::Truncated`] when the file
/// is too short to hold one segment and a trailer after the header.
pub fn split_object(object: &[u8]) -> Result<ObjectParts<'_>, FormatError> {
    let (_, header_len) = SealedHeader::parse(object)?;
    if object.len() < header_len + TAG_LEN + TRAILER_LEN {
        return Err(FormatError::Truncated { after_segment: None });
    }
    let (header, rest) = object.split_at(header_len);
    let (wire, trailer) = rest.split_at(rest.len() - TRAILER_LEN);
    Ok(ObjectParts { header, wire, trailer: trailer.try_into().expect("88 bytes") })
}

/// Writes a complete object file, `header ‖ parts… ‖ trailer`, to `out`
/// and returns it.
///
/// This is plain concatenation: with the header bytes, the parts of the
/// wire bytes in order and the trailer, the result is a standard object
/// that [`StreamReader`](crate::StreamReader), [`Reader`](crate::Reader)
/// and the parallel readers accept, and that is byte-identical to the
/// [`Writer`](crate::Writer)'s output for the same header, key and
/// plaintext. Nothing is checked; the readers check everything.
///
/// # Errors
///
/// Those of `out`.
pub fn write_object<W, P>(mut out: W, header: &[u8], parts: P, trailer: &[u8]) -> io::Result<W>
where
    W: Write,
    P: IntoIterator,
    P::Item: AsRef<[u8]>,
{
    out.write_all(header)?;
    for part in parts {
        out.write_all(part.as_ref())?;
    }
    out.write_all(trailer)?;
    out.flush()?;
    Ok(out)
}
