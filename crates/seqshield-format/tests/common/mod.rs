//! Helpers shared by the integration tests.
#![allow(dead_code, missing_docs, unreachable_pub)]

use std::io::{Cursor, Read, Seek, SeekFrom, Write};

use seqshield_format::{
    classify_io_error, Classification, DataKey, FormatError, Header, Reader, SealedHeader, StreamReader, WrappedKey,
    Writer, WriterOptions,
};

pub const SEG: u32 = 1024;

pub fn header(seg: u32) -> Header {
    Header::new(
        Classification::Controlled,
        "application/octet-stream",
        vec![WrappedKey { key_id: "test".into(), algorithm: "none".into(), wrapped: vec![0; 8] }],
    )
    .unwrap()
    .with_segment_size(seg)
    .unwrap()
}

/// Both object modes: encrypted, and integrity-only (plaintext ‖ GMAC tag).
pub const MODES: [bool; 2] = [false, true];

/// A header of `seg`-byte segments, integrity-only or encrypted.
pub fn header_mode(seg: u32, integrity_only: bool) -> Header {
    header(seg).with_integrity_only(integrity_only)
}

/// A name for a mode, for assertion messages.
pub fn mode_name(integrity_only: bool) -> &'static str {
    if integrity_only {
        "integrity-only"
    } else {
        "encrypted"
    }
}

pub fn encrypt(key: &DataKey, header: &Header, plain: &[u8], opts: WriterOptions) -> Vec<u8> {
    let mut w = Writer::with_options(Vec::new(), header, key, opts).unwrap();
    // Uneven writes exercise the buffering.
    for chunk in plain.chunks(777) {
        w.write_all(chunk).unwrap();
    }
    let object = w.finish().unwrap().inner;
    // The pipelined encryptor must produce the same bytes.
    let piped = seqshield_format::parallel::encrypt_from(
        plain,
        plain.len() as u64,
        Vec::new(),
        header,
        key,
        WriterOptions { threads: 3, batch_segments: 2 },
    )
    .unwrap()
    .0;
    assert_eq!(piped, object, "pipelined encryption differs from the writer");
    object
}

/// Decrypts through the streaming reader.
pub fn decrypt_stream(key: &DataKey, object: &[u8], opts: WriterOptions) -> Result<Vec<u8>, FormatError> {
    let mut input = object;
    let header = SealedHeader::read_from(&mut input)?.authenticate(key)?;
    let mut out = Vec::new();
    StreamReader::with_options(input, &header, key, opts).read_to_end(&mut out).map_err(classify_io_error)?;
    Ok(out)
}

/// Decrypts through the seekable reader, reading back to front in pieces.
pub fn decrypt_seek(key: &DataKey, object: &[u8]) -> Result<Vec<u8>, FormatError> {
    let mut input = object;
    let header = SealedHeader::read_from(&mut input)?.authenticate(key)?;
    let mut r = Reader::new(Cursor::new(object), &header, key)?;
    let len = r.plaintext_len() as usize;
    let mut out = vec![0u8; len];
    let step = 1000;
    let mut end = len;
    while end > 0 {
        let start = end.saturating_sub(step);
        r.seek(SeekFrom::Start(start as u64)).map_err(FormatError::Io)?;
        r.read_exact(&mut out[start..end]).map_err(classify_io_error)?;
        end = start;
    }
    r.seek(SeekFrom::End(0)).map_err(FormatError::Io)?;
    let mut extra = [0u8; 1];
    assert_eq!(r.read(&mut extra).unwrap(), 0, "read past the end");
    Ok(out)
}

/// Decrypts through the pipelined positional reader.
pub fn decrypt_pipelined(key: &DataKey, object: &[u8], opts: WriterOptions) -> Result<Vec<u8>, FormatError> {
    let header = SealedHeader::parse(object)?.0.authenticate(key)?;
    Ok(seqshield_format::parallel::decrypt_to(object, object.len() as u64, &header, key, Vec::new(), opts)?.0)
}

/// Every decryption path; all must agree.
pub fn decrypt_all_paths(key: &DataKey, object: &[u8]) -> Result<Vec<u8>, FormatError> {
    let single = decrypt_stream(key, object, WriterOptions::default());
    let parallel = decrypt_stream(key, object, WriterOptions { threads: 2, batch_segments: 3 });
    let seek = decrypt_seek(key, object);
    let piped = decrypt_pipelined(key, object, WriterOptions { threads: 3, batch_segments: 2 });
    match (&single, &parallel, &seek, &piped) {
        (Ok(a), Ok(b), Ok(c), Ok(d)) => {
            assert_eq!(a, b);
            assert_eq!(a, c);
            assert_eq!(a, d);
        }
        (Err(a), Err(b), Err(_), Err(d)) => {
            assert_eq!(a.code(), b.code(), "{a} vs {b}");
            assert_eq!(a.code(), d.code(), "stream: {a} vs pipelined: {d}");
        }
        _ => panic!("paths disagree: single {single:?} parallel {parallel:?} seek {seek:?} pipelined {piped:?}"),
    }
    single
}

pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b"ACGT"[(x & 3) as usize]
        })
        .collect()
}
