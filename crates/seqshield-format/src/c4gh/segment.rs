//! One data segment (spec, "Encrypted data"): `nonce ‖ ChaCha20-IETF-Poly1305(plaintext)
//! ‖ tag`, no associated data.

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{ChaCha20Poly1305, Nonce, Tag};

use super::header::{NONCE_LEN, TAG_LEN};
use super::SEGMENT_SIZE;
use crate::key::fill_random;

/// Bytes a segment adds to its plaintext: nonce and tag.
pub(super) const OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// Largest encrypted segment.
pub(super) const CIPHER_SEGMENT_SIZE: usize = SEGMENT_SIZE + OVERHEAD;

/// Seals `buf[NONCE_LEN..NONCE_LEN + len]` in place under a fresh random
/// nonce: on return `buf[..len + OVERHEAD]` is the encrypted segment.
/// `buf` must be at least `len + OVERHEAD` long.
pub(super) fn seal(cipher: &ChaCha20Poly1305, buf: &mut [u8], len: usize) {
    let (nonce, rest) = buf.split_at_mut(NONCE_LEN);
    fill_random(nonce);
    let (plain, tail) = rest.split_at_mut(len);
    let tag = cipher
        .encrypt_in_place_detached(Nonce::from_slice(nonce), b"", plain)
        .expect("a 64 KiB segment is far below the ChaCha20 length limit");
    tail[..TAG_LEN].copy_from_slice(&tag);
}

/// Opens the encrypted segment `buf` in place, trying each key in turn (the
/// reference does the same when a header holds several session keys). On
/// success the plaintext is `buf[NONCE_LEN..buf.len() - TAG_LEN]`; on failure
/// `buf` is unchanged. `buf` must be at least `OVERHEAD` long.
pub(super) fn open(ciphers: &[ChaCha20Poly1305], buf: &mut [u8]) -> bool {
    let (nonce, rest) = buf.split_at_mut(NONCE_LEN);
    let (body, tag) = rest.split_at_mut(rest.len() - TAG_LEN);
    let (nonce, tag) = (Nonce::from_slice(nonce), Tag::from_slice(tag));
    // RustCrypto verifies the tag before decrypting, so a failed key leaves
    // `body` as it was for the next one.
    ciphers.iter().any(|c| c.decrypt_in_place_detached(nonce, b"", body, tag).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chacha20poly1305::KeyInit;

    #[test]
    fn seal_open_round_trip_and_tamper() {
        let cipher = ChaCha20Poly1305::new(&[3u8; 32].into());
        let other = ChaCha20Poly1305::new(&[4u8; 32].into());
        let mut buf = vec![0u8; 5 + OVERHEAD];
        buf[NONCE_LEN..NONCE_LEN + 5].copy_from_slice(b"ACGTN");
        seal(&cipher, &mut buf, 5);
        assert_ne!(&buf[NONCE_LEN..NONCE_LEN + 5], b"ACGTN");
        let sealed = buf.clone();
        assert!(open(&[other.clone(), cipher.clone()], &mut buf), "second key works");
        assert_eq!(&buf[NONCE_LEN..NONCE_LEN + 5], b"ACGTN");
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(!open(std::slice::from_ref(&cipher), &mut bad), "flip at {i} undetected");
        }
    }
}
