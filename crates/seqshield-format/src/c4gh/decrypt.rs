//! Streaming Crypt4GH reader.

use std::io::{self, Read};

use chacha20poly1305::{ChaCha20Poly1305, Key, KeyInit};
use zeroize::Zeroizing;

use super::edit_list::{Action, EditList};
use super::header::{NONCE_LEN, TAG_LEN};
use super::segment::{self, CIPHER_SEGMENT_SIZE, OVERHEAD};
use super::{header, C4ghError, PublicKey, SecretKey};

/// Decrypts a Crypt4GH v1 file as a `Read`.
///
/// Each segment is authenticated before any of its bytes are returned, and
/// a data edit list in the header is applied. Errors surface as
/// `io::ErrorKind::InvalidData` wrapping a [`C4ghError`] (recover it with
/// [`C4ghError::from_io`]); after an error every further read fails.
///
/// Crypt4GH v1 does not protect segment order or the end of the file (see
/// the [module documentation](super)).
pub struct Decryptor<R: Read> {
    inner: R,
    /// One cipher per session key addressed to us.
    ciphers: Vec<ChaCha20Poly1305>,
    edits: Option<EditList>,
    sender: PublicKey,
    /// The current segment, decrypted in place; wiped on drop.
    buf: Zeroizing<Vec<u8>>,
    /// The plaintext not yet returned is `buf[pos..end]`.
    pos: usize,
    end: usize,
    /// Index of the next segment to read.
    index: u64,
    state: State,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Reading,
    Eof,
    Failed,
}

impl<R: Read> Decryptor<R> {
    /// Reads the header from `inner` and decrypts the packets addressed to
    /// `recipient`. Fails with [`C4ghError::NoPacketForKey`] when the file is
    /// not for this key.
    pub fn new(mut inner: R, recipient: &SecretKey) -> Result<Self, C4ghError> {
        let decoded = header::read(&mut inner, recipient)?;
        let ciphers =
            decoded.session_keys.iter().map(|k| ChaCha20Poly1305::new(Key::from_slice(k.as_slice()))).collect();
        Ok(Self {
            inner,
            ciphers,
            edits: decoded.edit_list.map(EditList::new),
            sender: decoded.sender,
            buf: Zeroizing::new(vec![0u8; CIPHER_SEGMENT_SIZE]),
            pos: 0,
            end: 0,
            index: 0,
            state: State::Reading,
        })
    }

    /// The public key the writer encrypted our session-key packet with.
    /// Compare it with a known sender key to check who wrote the file; the
    /// format authenticates nothing more about the writer.
    pub fn sender_public_key(&self) -> &PublicKey {
        &self.sender
    }

    /// Reads and authenticates the next segment into `buf`. `Ok(false)` at
    /// the end of the input.
    fn next_segment(&mut self) -> Result<bool, C4ghError> {
        let mut n = 0;
        while n < CIPHER_SEGMENT_SIZE {
            match self.inner.read(&mut self.buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(C4ghError::Io(e)),
            }
        }
        if n == 0 {
            return Ok(false);
        }
        let index = self.index;
        // The reference never writes an empty segment, and refuses one.
        if n <= OVERHEAD {
            return Err(C4ghError::SegmentTruncated { index, len: n });
        }
        if !segment::open(&self.ciphers, &mut self.buf[..n]) {
            return Err(C4ghError::SegmentAuthFailed { index });
        }
        self.index += 1;
        self.pos = NONCE_LEN;
        self.end = n - TAG_LEN;
        Ok(true)
    }
}

impl<R: Read> Read for Decryptor<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            match self.state {
                State::Failed => return Err(C4ghError::Poisoned.into_io()),
                State::Eof => return Ok(0),
                State::Reading => {}
            }
            let action = self.edits.as_mut().map_or(Action::Keep(u64::MAX), EditList::action);
            let avail = (self.end - self.pos) as u64;
            match action {
                Action::End => {
                    self.state = State::Eof;
                    return Ok(0);
                }
                _ if avail == 0 => match self.next_segment() {
                    Ok(true) => {}
                    Ok(false) => self.state = State::Eof,
                    Err(e) => {
                        self.state = State::Failed;
                        return Err(e.into_io());
                    }
                },
                Action::Skip(n) => {
                    let k = n.min(avail);
                    self.pos += k as usize;
                    if let Some(e) = self.edits.as_mut() {
                        e.advance(k);
                    }
                }
                Action::Keep(n) => {
                    let k = n.min(avail).min(out.len() as u64) as usize;
                    out[..k].copy_from_slice(&self.buf[self.pos..self.pos + k]);
                    self.pos += k;
                    if let Some(e) = self.edits.as_mut() {
                        e.advance(k as u64);
                    }
                    return Ok(k);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::super::header::{edit_list_payload, encrypt_packet, MAGIC, VERSION};
    use super::super::{Encryptor, SEGMENT_SIZE};
    use super::*;

    /// Deterministic pseudo-random DNA (xorshift), so failures reproduce.
    fn dna(len: usize) -> Vec<u8> {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b"ACGT"[(x & 3) as usize]
            })
            .collect()
    }

    fn encrypt(plain: &[u8], sender: &SecretKey, recipients: &[PublicKey]) -> Vec<u8> {
        let mut enc = Encryptor::new(Vec::new(), sender, recipients).unwrap();
        // Odd-sized writes cross segment boundaries at arbitrary points.
        for chunk in plain.chunks(10_007) {
            enc.write_all(chunk).unwrap();
        }
        enc.finish().unwrap()
    }

    fn decrypt(file: &[u8], sk: &SecretKey) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        Decryptor::new(file, sk).map_err(C4ghError::into_io)?.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn round_trips_at_segment_boundaries() {
        let (alice, bob) = (SecretKey::generate(), SecretKey::generate());
        for len in [0, 1, SEGMENT_SIZE - 1, SEGMENT_SIZE, SEGMENT_SIZE + 1, 3 * SEGMENT_SIZE + 5] {
            let plain = dna(len);
            let file = encrypt(&plain, &alice, &[bob.public_key()]);
            let segments = len.div_ceil(SEGMENT_SIZE);
            assert_eq!(file.len(), 16 + 108 + len + segments * OVERHEAD, "{len}");
            assert_eq!(decrypt(&file, &bob).unwrap(), plain, "{len}");
        }
    }

    #[test]
    fn every_recipient_can_decrypt() {
        let keys: Vec<SecretKey> = (0..3).map(|_| SecretKey::generate()).collect();
        let sender = SecretKey::generate();
        let pks: Vec<PublicKey> = keys.iter().map(SecretKey::public_key).collect();
        let plain = dna(70_000);
        let file = encrypt(&plain, &sender, &pks);
        for sk in &keys {
            let dec = Decryptor::new(file.as_slice(), sk).unwrap();
            assert_eq!(dec.sender_public_key(), &sender.public_key());
            assert_eq!(decrypt(&file, sk).unwrap(), plain);
        }
    }

    #[test]
    fn wrong_recipient_is_rejected() {
        let (alice, bob, eve) = (SecretKey::generate(), SecretKey::generate(), SecretKey::generate());
        let file = encrypt(b"ACGT", &alice, &[bob.public_key()]);
        assert!(matches!(Decryptor::new(file.as_slice(), &eve), Err(C4ghError::NoPacketForKey)));
        // Nor can the sender read it back: packets are for recipients only.
        assert!(matches!(Decryptor::new(file.as_slice(), &alice), Err(C4ghError::NoPacketForKey)));
    }

    #[test]
    fn tampered_segment_is_rejected_before_release() {
        let (alice, bob) = (SecretKey::generate(), SecretKey::generate());
        let plain = dna(2 * SEGMENT_SIZE + 10);
        let file = encrypt(&plain, &alice, &[bob.public_key()]);
        let seg1 = 124 + SEGMENT_SIZE + OVERHEAD;
        for at in [seg1, seg1 + NONCE_LEN + 5, seg1 + NONCE_LEN + SEGMENT_SIZE + 3] {
            let mut bad = file.clone();
            bad[at] ^= 0x01;
            let mut dec = Decryptor::new(bad.as_slice(), &bob).unwrap();
            let mut out = Vec::new();
            let err = dec.read_to_end(&mut out).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            assert!(matches!(C4ghError::from_io(&err), Some(C4ghError::SegmentAuthFailed { index: 1 })), "{err}");
            // Only the intact first segment was released.
            assert_eq!(out, &plain[..SEGMENT_SIZE]);
            let again = dec.read(&mut [0; 8]).unwrap_err();
            assert!(matches!(C4ghError::from_io(&again), Some(C4ghError::Poisoned)));
        }
    }

    #[test]
    fn truncated_segment_is_rejected() {
        let (alice, bob) = (SecretKey::generate(), SecretKey::generate());
        let file = encrypt(&dna(100), &alice, &[bob.public_key()]);
        for cut in [124 + 1, 124 + OVERHEAD, 124 + OVERHEAD + 50] {
            let err = decrypt(&file[..cut], &bob).unwrap_err();
            let inner = C4ghError::from_io(&err);
            assert!(
                matches!(
                    inner,
                    Some(C4ghError::SegmentTruncated { index: 0, .. } | C4ghError::SegmentAuthFailed { index: 0 })
                ),
                "{cut}: {err}"
            );
        }
    }

    #[test]
    fn segments_from_another_file_are_rejected() {
        let (alice, bob) = (SecretKey::generate(), SecretKey::generate());
        let a = encrypt(&dna(100), &alice, &[bob.public_key()]);
        let b = encrypt(&dna(100), &alice, &[bob.public_key()]);
        let spliced = [&a[..124], &b[124..]].concat();
        let err = decrypt(&spliced, &bob).unwrap_err();
        assert!(matches!(C4ghError::from_io(&err), Some(C4ghError::SegmentAuthFailed { index: 0 })));
    }

    /// A file for `bob` whose header also holds `edits`.
    fn with_edit_list(plain: &[u8], bob: &SecretKey, edits: &[u64]) -> Vec<u8> {
        let alice = SecretKey::generate();
        let file = encrypt(plain, &alice, &[bob.public_key()]);
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&2u32.to_le_bytes());
        out.extend_from_slice(&file[16..124]);
        encrypt_packet(&mut out, &alice, &bob.public_key(), &edit_list_payload(edits)).unwrap();
        out.extend_from_slice(&file[124..]);
        out
    }

    #[test]
    fn edit_list_is_honoured_across_segments() {
        let bob = SecretKey::generate();
        let plain = dna(3 * SEGMENT_SIZE + 5);
        let cases: [(&[u64], Vec<u8>); 3] = [
            (&[10, 20], plain[10..30].to_vec()),
            (
                &[SEGMENT_SIZE as u64 - 3, 10, 2 * SEGMENT_SIZE as u64 - 10],
                [&plain[SEGMENT_SIZE - 3..SEGMENT_SIZE + 7], &plain[3 * SEGMENT_SIZE - 3..]].concat(),
            ),
            (
                &[5, SEGMENT_SIZE as u64 * 2, 1],
                [&plain[5..2 * SEGMENT_SIZE + 5], &plain[2 * SEGMENT_SIZE + 6..]].concat(),
            ),
        ];
        for (edits, want) in cases {
            let file = with_edit_list(&plain, &bob, edits);
            assert_eq!(decrypt(&file, &bob).unwrap(), want, "{edits:?}");
        }
    }

    // Spec vectors from the reference (testdata/regenerate.sh): alice's
    // packet comes after bob's, and the edited file carries an edit list
    // written by `crypt4gh rearrange`.
    #[test]
    fn reference_files_decrypt() {
        let alice = super::super::read_secret_key(include_str!("testdata/alice.nocrypt.sec"), None).unwrap();
        let plain = include_bytes!("testdata/hello.txt");
        assert_eq!(decrypt(include_bytes!("testdata/hello.c4gh"), &alice).unwrap(), plain);
        let edited = decrypt(include_bytes!("testdata/hello.edited.c4gh"), &alice).unwrap();
        assert_eq!(edited, include_bytes!("testdata/hello.edited.txt"));
        assert_eq!(edited, &plain[10..499]);
    }

    #[test]
    fn two_edit_lists_are_rejected() {
        let (alice, bob) = (SecretKey::generate(), SecretKey::generate());
        let file = with_edit_list(b"ACGT", &bob, &[1, 2]);
        let mut out = file[..16].to_vec();
        out[12..16].copy_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&file[16..file.len() - 4 - OVERHEAD]);
        encrypt_packet(&mut out, &alice, &bob.public_key(), &edit_list_payload(&[0])).unwrap();
        assert!(matches!(Decryptor::new(out.as_slice(), &bob), Err(C4ghError::DuplicateEditList)));
    }
}
