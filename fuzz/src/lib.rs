//! Bodies of the seqshield-format fuzz targets, shared by cargo-fuzz
//! (`fuzz/fuzz_targets/*.rs`, nightly) and by the stable smoke test
//! (`crates/seqshield-format/tests/fuzz_smoke.rs`, which includes this file
//! with `#[path]`). Keep it free of `libfuzzer-sys` and of `crate::` paths.
//!
//! Every body panics when, and only when, it finds a bug:
//!
//! - a parser or reader panics on attacker-controlled bytes;
//! - a reader releases a byte that is not the fixture's plaintext at that
//!   offset, or reports success on an object that differs from the fixture;
//! - the untouched fixture object fails to read;
//! - a header that [`Header::new`] accepted does not survive
//!   encode → parse → authenticate, or a parsed header does not re-encode to
//!   the same bytes.
//!
//! The reader targets decrypt one fixed object under one fixed key. The
//! fuzzer input either replaces the object outright or edits it (flip,
//! truncate, insert, delete, splice, swap or duplicate segments), so the
//! fuzzer reaches the segment and trailer code with a header that still
//! authenticates.

#![forbid(unsafe_code)]

use std::io::{Cursor, Read, Seek, SeekFrom, Write};
use std::sync::OnceLock;

use aws_lc_rs::digest;
use seqshield_format::limits::{
    HEADER_DIGEST_LEN, HEADER_PREFIX_LEN, MAX_ALGORITHM_LEN, MAX_CONTENT_TYPE_LEN, MAX_HEADER_BODY_LEN, MAX_KEY_ID_LEN,
    MAX_METADATA_ENTRIES, MAX_METADATA_KEY_LEN, MAX_METADATA_VALUE_LEN, MAX_RECIPIENTS, MAX_WRAPPED_KEY_LEN, TAG_LEN,
    TRAILER_LEN,
};
use seqshield_format::part::{part_leaves, split_object, wire_range, PartCodec};
use seqshield_format::{
    Classification, DataKey, FormatError, Header, Reader, SealedHeader, StreamReader, WrappedKey, Writer, WriterOptions,
};

/// The fuzz targets, by cargo-fuzz name.
pub const TARGETS: [&str; 5] = ["header", "header_build", "stream_reader", "seek_reader", "part"];

/// Plaintext bytes per segment of the fixture: the smallest allowed, so
/// the fixture has several segments in a few KiB of input.
pub const SEGMENT_SIZE: u32 = 1024;

/// Plaintext length of the fixture: three full segments and a short final one.
pub const PLAINTEXT_LEN: usize = 3 * SEGMENT_SIZE as usize + 500;

/// Bytes per sealed segment of the fixture.
pub const STRIDE: usize = SEGMENT_SIZE as usize + TAG_LEN;

/// How far past the plaintext a fuzzer-chosen seek or read may reach, and
/// the most bytes one edit inserts, deletes or copies.
const MAX_OP_LEN: usize = 2 * STRIDE;

/// One valid object and everything needed to check a reader's output.
pub struct Fixture {
    /// The fixed data key.
    pub key: DataKey,
    /// The header the object was written with.
    pub header: Header,
    /// The plaintext it holds.
    pub plaintext: Vec<u8>,
    /// The encrypted object.
    pub object: Vec<u8>,
}

/// The fixture, built once per process.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let key = fixed_key();
        let header = Header::new(
            Classification::Controlled,
            "application/x-fasta",
            vec![WrappedKey { key_id: "fuzz".into(), algorithm: "none".into(), wrapped: vec![0xa5; 32] }],
        )
        .and_then(|h| h.with_segment_size(SEGMENT_SIZE))
        .and_then(|h| h.with_metadata("sample", "NA12878"))
        .expect("fixture header is valid")
        .with_salt_for_tests([0x5a; 32]);
        let plaintext: Vec<u8> = (0..PLAINTEXT_LEN).map(|i| b"ACGT"[(i * 7 + i / 5) % 4]).collect();
        let mut w = Writer::new(Vec::new(), &header, &key).expect("writing to a Vec");
        for chunk in plaintext.chunks(333) {
            w.write_all(chunk).expect("writing to a Vec");
        }
        let object = w.finish().expect("writing to a Vec").inner;
        Fixture { key, header, plaintext, object }
    })
}

fn fixed_key() -> DataKey {
    DataKey::from_slice(&[0x42; 32]).expect("32 bytes")
}

/// Fuzzer bytes read front to back; reads past the end give zeros.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.0.split_at(n.min(self.0.len()));
        self.0 = tail;
        head
    }
    fn u8(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

// ---------------------------------------------------------------- header

/// `SealedHeader::parse` on arbitrary bytes, and again with the checksum
/// made right (otherwise the checksum stops nearly every mutation before
/// the body parser sees it).
pub fn header(data: &[u8]) {
    check_header(data);
    if let Some(fixed) = with_fixed_checksum(data) {
        check_header(&fixed);
    }
}

/// `data` with the checksum its length field implies recomputed (and
/// zero-padded up to the full header length); `None` when that changes
/// nothing or the length is out of bounds.
fn with_fixed_checksum(data: &[u8]) -> Option<Vec<u8>> {
    let body_len = u32::from_be_bytes(data.get(10..HEADER_PREFIX_LEN)?.try_into().ok()?);
    if body_len > MAX_HEADER_BODY_LEN {
        return None;
    }
    let signed = HEADER_PREFIX_LEN + body_len as usize;
    let mut v = data.to_vec();
    v.resize(v.len().max(signed + 2 * HEADER_DIGEST_LEN), 0);
    let sum = digest::digest(&digest::SHA256, &v[..signed]);
    v[signed..signed + HEADER_DIGEST_LEN].copy_from_slice(sum.as_ref());
    (v != data).then_some(v)
}

/// A header that parses must agree with `read_from`, report its own
/// length, and re-encode to exactly the bytes it was parsed from (the
/// encoding is canonical).
fn check_header(data: &[u8]) {
    let parsed = SealedHeader::parse(data);
    let streamed = SealedHeader::read_from(&mut &data[..]);
    let (sealed, len) = match (parsed, streamed) {
        (Err(a), Err(b)) => {
            assert_eq!(a.code(), b.code(), "parse and read_from disagree");
            return;
        }
        (Ok((sealed, len)), Ok(other)) => {
            assert_eq!(sealed.unverified(), other.unverified());
            (sealed, len)
        }
        (a, b) => panic!("parse {a:?} and read_from {b:?} disagree"),
    };
    assert_eq!(len, sealed.encoded_len());
    let fields = sealed.unverified().clone();
    assert_eq!(len, fields.encoded_len());
    assert_eq!(sealed.recipients(), fields.recipients());
    // Everything but the MAC is a function of the fields.
    let key = fixed_key();
    let again = fields.encode(&key);
    assert_eq!(again.len(), len);
    assert_eq!(
        again[..len - HEADER_DIGEST_LEN],
        data[..len - HEADER_DIGEST_LEN],
        "parsed header does not re-encode to the same bytes"
    );
    let authentic = again[..] == data[..len];
    match sealed.authenticate(&key) {
        Ok(h) => {
            assert!(authentic, "MAC accepted over bytes the key did not sign");
            assert_eq!(h, fields);
        }
        Err(e) => {
            assert!(!authentic, "authentic header refused: {e}");
            assert!(matches!(e, FormatError::HeaderAuthFailed), "{e:?}");
        }
    }
}

// ---------------------------------------------------------- header_build

/// Builds a header from fuzzer-chosen field sizes (contents are
/// synthesised, so short inputs reach the largest headers). Whatever
/// [`Header::new`] and its builders accept must encode, parse and
/// authenticate back to the same header.
pub fn header_build(data: &[u8]) {
    // Past its end the input repeats, so a short input can describe a
    // header with 32 recipients and 32 metadata entries.
    let cycled: Vec<u8> = data.iter().copied().cycle().take(64 * 1024).collect();
    let mut i = Input(&cycled);
    let class = Classification::from_code(i.u8() % 4).expect("codes 0..4 exist");
    let content_type = text(&mut i, MAX_CONTENT_TYPE_LEN);
    let recipients = (0..sized(&mut i, MAX_RECIPIENTS))
        .map(|_| WrappedKey {
            key_id: text(&mut i, MAX_KEY_ID_LEN),
            algorithm: text(&mut i, MAX_ALGORITHM_LEN),
            wrapped: vec![0xa5; sized(&mut i, MAX_WRAPPED_KEY_LEN)],
        })
        .collect();
    let Ok(mut h) = Header::new(class, &content_type, recipients) else {
        return;
    };
    if i.u8() & 1 == 1 {
        if let Ok(sized) = h.clone().with_segment_size(i.u32() >> 7) {
            h = sized;
        }
    }
    for _ in 0..sized(&mut i, MAX_METADATA_ENTRIES) {
        let k = text(&mut i, MAX_METADATA_KEY_LEN);
        let v = text(&mut i, MAX_METADATA_VALUE_LEN);
        if let Ok(more) = h.clone().with_metadata(&k, &v) {
            h = more;
        }
    }
    let key = fixed_key();
    let bytes = h.encode(&key);
    assert_eq!(bytes.len(), h.encoded_len());
    let (sealed, len) = SealedHeader::parse(&bytes).expect("a header the builders accepted must parse");
    assert_eq!(len, bytes.len());
    assert_eq!(sealed.authenticate(&key).expect("own MAC verifies"), h);
}

/// A size from one byte, scaled to `limit`: `0xfe` is exactly `limit` and
/// `0xff` one more, so the fuzzer reaches both edges of every bound.
fn sized(i: &mut Input<'_>, limit: usize) -> usize {
    match i.u8() {
        0xff => limit + 1,
        b => usize::from(b) * limit / 0xfe,
    }
}

/// A string of [`sized`] length. Printable ASCII, except that a flag byte
/// of 1 mixes in `é` (valid only in metadata values) and 2 puts a newline
/// in the middle, so the validators' refusals are reached too.
fn text(i: &mut Input<'_>, limit: usize) -> String {
    let len = sized(i, limit);
    let (seed, flags) = (i.u8(), i.u8());
    let mut s = String::with_capacity(len + 1);
    let mut n = 0usize;
    while s.len() < len {
        let c = match flags {
            1 if n % 7 == 3 => 'é',
            2 if n == len / 2 => '\n',
            _ => char::from(0x20 + (usize::from(seed) + n * 31) as u8 % 95),
        };
        s.push(c);
        n += 1;
    }
    s
}

// ---------------------------------------------------------- the objects

/// The object a reader target works on: `flags & 1 == 0` takes the rest of
/// the input (or, with `len_prefixed`, a `u16`-length-prefixed part of it)
/// as the object; otherwise a count byte and that many edits of the
/// fixture follow.
fn object_from(i: &mut Input<'_>, flags: u8, len_prefixed: bool) -> Vec<u8> {
    if flags & 1 == 0 {
        let n = if len_prefixed { usize::from(i.u16()) } else { usize::MAX };
        return i.take(n).to_vec();
    }
    let mut object = fixture().object.clone();
    for _ in 0..i.u8() % 8 {
        edit(&mut object, i);
    }
    object
}

/// One edit of `object`: damage a real attacker could do.
fn edit(object: &mut Vec<u8>, i: &mut Input<'_>) {
    let len = object.len();
    let op = i.u8();
    let at = usize::from(i.u16()) % (len + 1);
    let n = usize::from(i.u16()) % MAX_OP_LEN;
    let b = i.u8();
    match op % 8 {
        // Flip bits (a zero mask leaves the object as it was).
        0 => {
            if at < len {
                object[at] ^= b;
            }
        }
        1 => object.truncate(at),
        2 => drop(object.splice(at..at, std::iter::repeat_n(b, n))),
        3 => drop(object.drain(at..(at + n).min(len))),
        // Copy a range of the object over another place, growing it if needed.
        4 => {
            let src = object[at..(at + n).min(len)].to_vec();
            let dst = usize::from(b) * 37 % (len + 1);
            let end = dst + src.len();
            if end > object.len() {
                object.resize(end, 0);
            }
            object[dst..end].copy_from_slice(&src);
        }
        // Append a copy of the object's tail (a second trailer, say).
        5 => {
            let tail = object[len - n.min(len)..].to_vec();
            object.extend_from_slice(&tail);
        }
        // Swap two segments, or duplicate one over another's slot.
        _ => {
            let start = fixture().header.encoded_len();
            let seg = |k: u8| {
                let s = start + usize::from(k % 5) * STRIDE;
                s.min(len)..(s + STRIDE).min(len)
            };
            let (a, c) = (seg(b), seg(b >> 4));
            if a.len() == STRIDE && c.len() == STRIDE {
                let copy = object[a.clone()].to_vec();
                if op % 8 == 6 {
                    object.copy_within(c.clone(), a.start);
                }
                object[c].copy_from_slice(&copy);
            }
        }
    }
}

/// The stable error code behind an `io::Error` from a reader.
fn code(e: &std::io::Error) -> &'static str {
    FormatError::from_io(e).map_or("io", FormatError::code)
}

/// Authenticates the object's header with the fixture key; `None` when the
/// object has no authentic header (then it must not be the fixture).
fn authentic_header(object: &[u8]) -> Option<(Header, usize)> {
    let f = fixture();
    match SealedHeader::parse(object).and_then(|(s, n)| Ok((s.authenticate(&f.key)?, n))) {
        Ok((h, n)) => {
            assert_eq!(h, f.header, "an authentic header must be the fixture's");
            Some((h, n))
        }
        Err(e) => {
            assert!(object != f.object, "fixture header refused: {e}");
            None
        }
    }
}

// --------------------------------------------------------- stream_reader

/// `StreamReader` over fuzzer-chosen or fuzzer-edited object bytes.
///
/// Input: `flags`, then the object (see [`object_from`]). `flags` bits
/// 1–2 pick the batch size, bit 3 `next_chunk` over `Read`, bits 4–7 the
/// `Read` buffer size.
pub fn stream_reader(data: &[u8]) {
    let mut i = Input(data);
    let flags = i.u8();
    let object = object_from(&mut i, flags, false);
    let opts = WriterOptions { threads: 1, batch_segments: 1 + usize::from((flags >> 1) & 3) };
    let read_size = 1 + usize::from(flags >> 4) * 331;
    check_stream(&object, opts, flags & 8 != 0, read_size);
}

/// Reads `object` to the end with a `StreamReader`; every released byte
/// must be the fixture's plaintext at that offset, and success is allowed
/// only for the fixture itself.
pub fn check_stream(object: &[u8], opts: WriterOptions, chunks: bool, read_size: usize) {
    let f = fixture();
    let Some((header, start)) = authentic_header(object) else {
        return;
    };
    let body = &object[start..];
    let mut r = StreamReader::with_options(body, &header, &f.key, opts);
    let mut out = Vec::new();
    let result = if chunks {
        loop {
            match r.next_chunk() {
                Ok(Some(c)) => out.extend_from_slice(c),
                Ok(None) => break Ok(()),
                Err(e) => break Err(e.code()),
            }
        }
    } else {
        let mut buf = vec![0u8; read_size];
        loop {
            match r.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => break Err(code(&e)),
            }
        }
    };
    assert!(f.plaintext.starts_with(&out), "released {} bytes that are not the original plaintext", out.len());
    match result {
        Ok(()) => {
            assert!(object == f.object, "altered object read without error");
            assert_eq!(out, f.plaintext);
            assert!(r.summary().is_some());
            assert!(matches!(r.next_chunk(), Ok(None)), "data after the end");
        }
        Err(e) => {
            assert!(object != f.object, "fixture refused: {e}");
            assert!(r.summary().is_none());
            // A failed reader stays failed; it must not look like a clean EOF.
            assert!(r.read(&mut [0u8; 1]).is_err(), "read after {e} succeeded");
            assert!(r.next_chunk().is_err(), "next_chunk after {e} succeeded");
        }
    }
    let verified = StreamReader::with_options(body, &header, &f.key, opts).verify_to_end();
    match (&result, verified) {
        (Ok(()), Ok(s)) => assert_eq!(s.plaintext_len, PLAINTEXT_LEN as u64),
        (Err(a), Err(b)) => assert_eq!(*a, b.code(), "read and verify_to_end disagree"),
        (a, b) => panic!("read {a:?} and verify_to_end {b:?} disagree"),
    }
}

// ----------------------------------------------------------- seek_reader

/// The seekable `Reader` over fuzzer-chosen or fuzzer-edited object bytes,
/// driven by fuzzer-chosen seeks and reads.
///
/// Input: `flags`, the object (see [`object_from`]; length-prefixed when
/// given outright), then operations: `0` seek from the start, `1` from the
/// end, `2` from the current position, `3` read.
pub fn seek_reader(data: &[u8]) {
    let mut i = Input(data);
    let flags = i.u8();
    let object = object_from(&mut i, flags, true);
    check_seek(&object, &mut i);
}

fn check_seek(object: &[u8], ops: &mut Input<'_>) {
    let f = fixture();
    let Some((header, _)) = authentic_header(object) else {
        return;
    };
    let mut r = match Reader::new(Cursor::new(object), &header, &f.key) {
        Ok(r) => r,
        Err(e) => {
            assert!(object != f.object, "fixture refused: {e}");
            return;
        }
    };
    let len = f.plaintext.len() as u64;
    // The trailer authenticated, so its numbers are the fixture's.
    assert_eq!(r.plaintext_len(), len);
    assert_eq!(r.segment_count(), len.div_ceil(u64::from(SEGMENT_SIZE)));
    let span = (len + MAX_OP_LEN as u64) as i64;
    let mut pos = 0u64;
    while !ops.is_empty() {
        let op = ops.u8();
        let arg = i64::from(ops.u16() as i16) % span;
        let (to, want) = match op % 4 {
            0 => (SeekFrom::Start(arg.unsigned_abs()), Some(arg.unsigned_abs())),
            1 => (SeekFrom::End(arg), len.checked_add_signed(arg)),
            2 => (SeekFrom::Current(arg), pos.checked_add_signed(arg)),
            _ => {
                let mut buf = vec![0u8; arg.unsigned_abs() as usize];
                read_and_check(&mut r, &mut buf, &mut pos, object);
                continue;
            }
        };
        match (r.seek(to), want) {
            (Ok(got), Some(want)) => {
                assert_eq!(got, want, "{to:?} from {pos}");
                pos = got;
            }
            (Err(_), None) => {}
            (got, want) => panic!("{to:?} from {pos}: got {got:?}, want {want:?}"),
        }
    }
    // Then the whole plaintext, front to back.
    r.seek(SeekFrom::Start(0)).expect("seek to 0");
    let mut all = Vec::new();
    match r.read_to_end(&mut all) {
        Ok(_) => {
            assert!(object == f.object, "altered object read without error");
            assert_eq!(all, f.plaintext);
        }
        Err(e) => {
            assert!(object != f.object, "fixture refused: {e}");
            assert!(f.plaintext.starts_with(&all), "released altered bytes");
        }
    }
}

/// One `read` at `pos`: fewer bytes than asked is fine, other bytes than
/// the plaintext's are not.
fn read_and_check(r: &mut impl Read, buf: &mut [u8], pos: &mut u64, object: &[u8]) {
    let f = fixture();
    match r.read(buf) {
        Ok(n) => {
            let at = (*pos).min(f.plaintext.len() as u64) as usize;
            let left = f.plaintext.len() - at;
            if buf.is_empty() || left == 0 {
                assert_eq!(n, 0, "read past the end at {pos}");
            } else {
                assert!(n >= 1 && n <= buf.len().min(left), "read {n} at {pos}");
                assert_eq!(buf[..n], f.plaintext[at..at + n], "wrong plaintext at {pos}");
            }
            *pos += n as u64;
        }
        Err(e) => assert!(object != f.object, "fixture read failed at {pos}: {e}"),
    }
}

// ------------------------------------------------------------------ part

/// `PartCodec::check_part`, `open_part` and the keyless `part_leaves` over
/// fuzzer-chosen or fuzzer-edited wire bytes, at a fuzzer-chosen position.
///
/// Input: `flags`, `first` and `total` (one byte each, taken mod 8), then
/// the part: with `flags & 1 == 0` the rest of the input; otherwise a count
/// byte and that many edits of the fixture's wire bytes (header and trailer
/// cut off), of which segments `first..` are offered.
pub fn part(data: &[u8]) {
    let f = fixture();
    let mut i = Input(data);
    let flags = i.u8();
    let first = u64::from(i.u8() % 8);
    let total = u64::from(i.u8() % 8);
    let wire = split_object(&f.object).expect("the fixture splits").wire;
    let bytes = if flags & 1 == 0 {
        i.take(usize::MAX).to_vec()
    } else {
        let mut w = wire.to_vec();
        for _ in 0..i.u8() % 8 {
            edit(&mut w, &mut i);
        }
        let skip = (first as usize * STRIDE).min(w.len());
        w.split_off(skip)
    };
    check_part(first, total, &bytes);
}

/// A part may authenticate only if it is the fixture's own segments at
/// their own positions, and then must give the fixture's leaves and
/// plaintext; every entry point must agree with the others.
pub fn check_part(first: u64, total: u64, bytes: &[u8]) {
    let f = fixture();
    let codec = PartCodec::new(&f.header, &f.key);
    let fixture_total = codec.segment_count(PLAINTEXT_LEN as u64);
    let wire = split_object(&f.object).expect("the fixture splits").wire;
    let all = codec.check_part(0, fixture_total, wire).expect("the fixture's wire bytes check");
    let checked = codec.check_part(first, total, bytes);
    let mut out = b"prefix".to_vec();
    let opened = codec.open_part(first, total, bytes, &mut out);
    let keyless = part_leaves(SEGMENT_SIZE as usize, first, total, PLAINTEXT_LEN as u64, bytes);
    match (&checked, &opened) {
        (Ok(leaves), Ok(again)) => {
            assert_eq!(leaves, again, "check_part and open_part disagree");
            let n = leaves.len() as u64;
            let r = wire_range(SEGMENT_SIZE as usize, PLAINTEXT_LEN as u64, first, n);
            assert_eq!(bytes, &wire[r.start as usize..r.end as usize], "altered part authenticated");
            assert_eq!(leaves[..], all[first as usize..(first + n) as usize], "leaves differ");
            if first + n == total {
                assert_eq!(total, fixture_total, "a final segment authenticated at another count");
            }
            let start = first as usize * SEGMENT_SIZE as usize;
            assert_eq!(out[6..], f.plaintext[start..(start + out.len() - 6)], "wrong plaintext");
            if total == fixture_total {
                assert_eq!(keyless.as_ref().ok(), Some(leaves), "keyless leaves differ");
            }
        }
        (Err(a), Err(b)) => {
            assert_eq!(a.code(), b.code(), "check_part and open_part disagree");
            assert_eq!(out, b"prefix", "open_part appended on error");
        }
        (a, b) => panic!("check_part {a:?} and open_part {b:?} disagree"),
    }
}

// ------------------------------------------------------------ corpora

/// Seed inputs for `target`: the fixture whole and lightly edited, in
/// every input mode. Written by the smoke test (see `scripts/fuzz-smoke`)
/// so no binary corpus is committed.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let f = fixture();
    let cat = |parts: &[&[u8]]| parts.concat();
    let object_len = (f.object.len() as u16).to_be_bytes();
    let header_len = f.header.encoded_len();
    // Edit-mode prefixes (flags, count, then op, at:u16, n:u16, byte):
    // the fixture untouched; a flip in segment 1; a cut inside the trailer;
    // segment 1 copied over segment 2; a second trailer appended.
    let u16_be = |v: usize| (v as u16).to_be_bytes();
    let flip_at = u16_be(header_len + STRIDE + 5);
    let cut_at = u16_be(f.object.len() - 10);
    let tail = u16_be(TRAILER_LEN);
    let edits: [Vec<u8>; 5] = [
        vec![1, 0],
        cat(&[&[1, 1, 0], &flip_at, &[0, 0, 0x10]]),
        cat(&[&[1, 1, 1], &cut_at, &[0, 0, 0]]),
        vec![1, 1, 7, 0, 0, 0, 0, 0x24],
        cat(&[&[1, 1, 5, 0, 0], &tail, &[0]]),
    ];
    match target {
        "header" => vec![f.object[..header_len].to_vec(), f.object.clone(), f.object[..header_len - 1].to_vec()],
        "header_build" => vec![
            // Layout: class, content type (size, seed, flags), recipient
            // count, per recipient key id, algorithm, wrapped size; segment
            // size flag and u32; metadata count, per entry key and value.
            vec![3, 40, 7, 0, 8, 20, 1, 0, 60, 2, 0, 64, 0, 0, 16, 100, 3, 0, 50, 4, 1],
            vec![0, 254, 0, 0, 16, 254, 9, 0, 254, 8, 0, 254, 1, 0, 128, 0, 0],
        ],
        "stream_reader" => [0u8, 0x08, 0x16, 0xf0]
            .iter()
            .map(|&flags| cat(&[&[flags], &f.object]))
            .chain(edits.iter().map(|e| cat(&[&[0x06 | e[0]], &e[1..]])))
            .collect(),
        "seek_reader" => {
            // Seek to 1000 and read 2000; seek 100 before the end and read 200.
            let ops: &[u8] = &[0, 0x03, 0xe8, 3, 0x07, 0xd0, 1, 0xff, 0x9c, 3, 0, 200];
            let mut v = vec![cat(&[&[0], &object_len, &f.object, ops])];
            v.extend(edits.iter().map(|e| cat(&[e, ops])));
            v
        }
        "part" => {
            // Flags, first, total: segments 1.. of the fixture as given, the
            // whole wire edited (a flip in segment 1), and segments 2.. at
            // a wrong position.
            let wire = &f.object[header_len..f.object.len() - TRAILER_LEN];
            vec![
                cat(&[&[0, 1, 4], &wire[STRIDE..]]),
                cat(&[&[1, 0, 4, 1, 0], &u16_be(STRIDE + 5), &[0, 0, 0x10]]),
                cat(&[&[0, 1, 4], &wire[2 * STRIDE..]]),
            ]
        }
        other => panic!("unknown fuzz target {other}"),
    }
}
