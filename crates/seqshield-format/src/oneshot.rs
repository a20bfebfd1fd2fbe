//! One-shot encryption of an in-memory plaintext into a caller's buffer.
//!
//! [`Writer`](crate::Writer) streams through a batch buffer, which costs a
//! copy on the way out. When the plaintext and the output both live in
//! memory, [`encrypt_into`] seals each segment straight from the plaintext
//! into its place in the output: every byte is read once and written once.
//! The bytes produced are identical to the writer's.

use rayon::prelude::*;

use crate::error::FormatError;
use crate::header::Header;
use crate::key::{DataKey, ObjectKeys};
use crate::limits::{MAX_SEGMENTS, TAG_LEN, TRAILER_LEN};
use crate::merkle::{segment_leaf, MerkleBuilder};
use crate::segment;
use crate::trailer::Trailer;
use crate::writer::{Summary, WriterOptions};

/// The encrypted size of a `plaintext_len`-byte object under `header`.
pub fn encrypted_len(header: &Header, plaintext_len: u64) -> u64 {
    let seg = u64::from(header.segment_size());
    let segments = plaintext_len.div_ceil(seg).max(1);
    header.encoded_len() as u64 + plaintext_len + segments * TAG_LEN as u64 + TRAILER_LEN as u64
}

/// Encrypts `plain` into `out`, which must be exactly
/// [`encrypted_len`]`(header, plain.len())` bytes long.
pub fn encrypt_into(
    header: &Header,
    data_key: &DataKey,
    plain: &[u8],
    out: &mut [u8],
    opts: WriterOptions,
) -> Result<Summary, FormatError> {
    let expected = encrypted_len(header, plain.len() as u64);
    if out.len() as u64 != expected {
        return Err(FormatError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("output buffer is {} bytes; the object needs {expected}", out.len()),
        )));
    }
    let keys = ObjectKeys::for_header(header, data_key);
    let seg = header.segment_size() as usize;
    let stride = seg + TAG_LEN;
    let n = plain.len().div_ceil(seg).max(1);
    if n as u64 > MAX_SEGMENTS {
        return Err(FormatError::TooManySegments);
    }
    let head = header.encode_with(&keys);
    let (out_header, rest) = out.split_at_mut(head.len());
    out_header.copy_from_slice(&head);
    let (body, out_trailer) = rest.split_at_mut(rest.len() - TRAILER_LEN);
    let key = &keys.payload;
    let seal = |(i, slot): (usize, &mut [u8])| {
        let start = i * seg;
        let end = (start + seg).min(plain.len());
        segment::seal_from(key, i as u64, i == n - 1, &plain[start..end], slot)
    };
    let tags: Vec<[u8; TAG_LEN]> = match opts.pool() {
        Some(pool) if n > 1 => pool.install(|| body.par_chunks_mut(stride).enumerate().map(seal).collect()),
        _ => body.chunks_mut(stride).enumerate().map(seal).collect(),
    };
    let mut merkle = MerkleBuilder::new();
    for (i, tag) in tags.iter().enumerate() {
        let len = (plain.len() - i * seg).min(seg);
        merkle.push(segment_leaf(i as u64, i == n - 1, (len + TAG_LEN) as u32, tag));
    }
    let summary = Summary { segment_count: n as u64, plaintext_len: plain.len() as u64, merkle_root: merkle.root() };
    let trailer =
        Trailer { segment_count: n as u64, plaintext_len: summary.plaintext_len, merkle_root: summary.merkle_root };
    out_trailer.copy_from_slice(&trailer.encode(&keys));
    Ok(summary)
}
