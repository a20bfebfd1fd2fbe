//! Sealing and opening one segment (STREAM nonces), and diagnosing a
//! segment that fails to open.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce};

use crate::error::FormatError;
use crate::limits::{TAG_LEN, TRAILER_LEN, TRAILER_MAGIC};

/// The STREAM nonce of segment `index` (Hoang et al., as in age and Tink):
/// `0x000000 ‖ index:u64 ‖ last:u8`. Each (key, index, last) is used once.
pub(crate) fn nonce(index: u64, last: bool) -> Nonce {
    let mut n = [0u8; 12];
    n[3..11].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(last);
    Nonce::assume_unique_for_key(n)
}

/// Encrypts `buf[..pt_len]` in place and writes the tag at
/// `buf[pt_len..pt_len + 16]`. Returns the tag.
pub(crate) fn seal(key: &LessSafeKey, index: u64, last: bool, buf: &mut [u8], pt_len: usize) -> [u8; TAG_LEN] {
    let tag = key
        .seal_in_place_separate_tag(nonce(index, last), Aad::empty(), &mut buf[..pt_len])
        .expect("AES-GCM sealing of at most 16 MiB cannot fail");
    let tag: [u8; TAG_LEN] = tag.as_ref().try_into().expect("GCM tags are 16 bytes");
    buf[pt_len..pt_len + TAG_LEN].copy_from_slice(&tag);
    tag
}

/// Encrypts `input` into `out[..input.len()]` and writes the tag right after
/// it, reading the plaintext where it lies (no copy). Returns the tag.
pub(crate) fn seal_from(key: &LessSafeKey, index: u64, last: bool, input: &[u8], out: &mut [u8]) -> [u8; TAG_LEN] {
    let (ct, rest) = out.split_at_mut(input.len());
    let tag = &mut rest[..TAG_LEN];
    key.seal_out_of_place_scatter(nonce(index, last), Aad::empty(), input, ct, &[], tag)
        .expect("AES-GCM sealing of at most 16 MiB cannot fail");
    tag.try_into().expect("16 bytes")
}

/// Authenticates and decrypts `ct` (ciphertext ‖ tag) into `out`, leaving
/// `ct` untouched. Returns the tag on success.
pub(crate) fn open(key: &LessSafeKey, index: u64, last: bool, ct: &[u8], out: &mut [u8]) -> Option<[u8; TAG_LEN]> {
    let body = ct.len().checked_sub(TAG_LEN)?;
    let (c, t) = ct.split_at(body);
    key.open_separate_gather(nonce(index, last), Aad::empty(), c, t, &mut out[..body]).ok()?;
    t.try_into().ok()
}

/// How far from its position a misplaced segment is searched for.
const SEARCH_WINDOW_BYTES: u64 = 64 * 1024 * 1024;

/// How many trailer-magic candidates are tried; each try costs one segment
/// of AES work, and an attacker can plant the magic bytes anywhere.
const MAX_TRAILER_CANDIDATES: usize = 4;

/// Explains why the segment at `position` failed to open.
///
/// `ct` is the ciphertext the reader assumed for the segment; `rest` is all
/// buffered bytes from the segment's start (it may include the trailer).
/// `count` is the authenticated segment count when the caller knows it.
/// Runs only on the error path, and its cost is bounded: at most
/// `2 + MAX_TRAILER_CANDIDATES` tries over `stride + TRAILER_LEN` bytes, plus
/// a search for the segment's original position over at most
/// `SEARCH_WINDOW_BYTES` of candidate positions.
pub(crate) fn diagnose(
    key: &LessSafeKey,
    position: u64,
    assumed_last: bool,
    ct: &[u8],
    rest: &[u8],
    count: Option<u64>,
    stride: usize,
) -> FormatError {
    let rest = &rest[..rest.len().min(stride + TRAILER_LEN + 1)];
    let mut scratch = vec![0u8; rest.len().max(ct.len())];
    // Authentic, but the final-segment flag disagrees with where it sits.
    if open(key, position, !assumed_last, ct, &mut scratch).is_some() {
        return if assumed_last {
            FormatError::Truncated { after_segment: Some(position) }
        } else {
            FormatError::Extended { index: position }
        };
    }
    // The reader took the end of this segment for the trailer: the trailer
    // is missing altogether.
    if rest.len() > ct.len() && [true, false].into_iter().any(|l| open(key, position, l, rest, &mut scratch).is_some())
    {
        return FormatError::Truncated { after_segment: Some(position) };
    }
    // The object's real final segment sits here, but the bytes after it are
    // not exactly one trailer: the trailer was cut short, or data was
    // appended after it. The real final segment is at most `stride` long,
    // so the trailer must start within the first `stride` bytes.
    let window = &rest[..rest.len().min(stride + TRAILER_MAGIC.len())];
    let candidates = (TAG_LEN..window.len().saturating_sub(TRAILER_MAGIC.len() - 1))
        .filter(|&o| window[o..].starts_with(&TRAILER_MAGIC))
        .take(MAX_TRAILER_CANDIDATES);
    for end in candidates {
        if open(key, position, true, &rest[..end], &mut scratch).is_some() {
            return if rest.len() - end < TRAILER_LEN {
                FormatError::Truncated { after_segment: Some(position) }
            } else {
                FormatError::Extended { index: position }
            };
        }
    }
    // The final segment fails and no trailer follows it: the object was
    // cut inside its last segment.
    if assumed_last && rest.len() >= ct.len() + TRAILER_LEN && !rest[ct.len()..].starts_with(&TRAILER_MAGIC) {
        return FormatError::Truncated { after_segment: position.checked_sub(1) };
    }
    // A segment of this object that belongs elsewhere.
    let window = (SEARCH_WINDOW_BYTES / (ct.len() as u64).max(1)).clamp(16, 4096);
    let lo = position.saturating_sub(window);
    let hi = count.unwrap_or(u64::MAX).min(position.saturating_add(window));
    for original in lo..hi {
        if original == position {
            continue;
        }
        for last in [false, true] {
            if open(key, original, last, ct, &mut scratch).is_some() {
                return FormatError::SegmentMisplaced { index: position, original };
            }
        }
    }
    FormatError::SegmentAuthFailed { index: position }
}
