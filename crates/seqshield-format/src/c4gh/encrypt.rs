//! Streaming Crypt4GH writer.

use std::io::{self, Write};

use chacha20poly1305::{ChaCha20Poly1305, Key, KeyInit};
use zeroize::Zeroizing;

use super::header::NONCE_LEN;
use super::segment::{self, CIPHER_SEGMENT_SIZE};
use super::{header, C4ghError, PublicKey, SecretKey, MAX_HEADER_PACKETS, SEGMENT_SIZE};
use crate::key::fill_random;

/// Encrypts a stream into a Crypt4GH v1 file for one or more recipients.
///
/// The header is written by [`Encryptor::new`]; the plaintext is then
/// sealed in 64 KiB segments as it is written, holding one segment in
/// memory.
///
/// YOU MUST CALL [`Encryptor::finish`] AT THE END: it writes the last,
/// partial segment. Dropping an `Encryptor` without it silently loses up to
/// 64 KiB of data, and Crypt4GH has no end marker that would let a reader
/// notice.
pub struct Encryptor<W: Write> {
    inner: W,
    cipher: ChaCha20Poly1305,
    /// `nonce ‖ plaintext ‖ tag` of the segment being filled; wiped on drop.
    buf: Zeroizing<Vec<u8>>,
    /// Plaintext bytes in `buf`, after the nonce.
    filled: usize,
    /// Set when the inner writer failed: the output is unusable.
    poisoned: bool,
}

impl<W: Write> Encryptor<W> {
    /// Writes the header to `inner`: one packet per distinct recipient,
    /// encrypted from `sender` (recipients who know `sender`'s public key can
    /// check who wrote the file) and holding a fresh random session key.
    pub fn new(mut inner: W, sender: &SecretKey, recipients: &[PublicKey]) -> io::Result<Self> {
        let mut unique: Vec<PublicKey> = Vec::with_capacity(recipients.len());
        for pk in recipients {
            if !unique.contains(pk) {
                unique.push(*pk);
            }
        }
        if unique.is_empty() {
            return Err(C4ghError::NoRecipients.into_io());
        }
        if unique.len() > MAX_HEADER_PACKETS as usize {
            return Err(C4ghError::TooManyRecipients { count: unique.len(), max: MAX_HEADER_PACKETS }.into_io());
        }
        let mut session_key = Zeroizing::new([0u8; 32]);
        fill_random(session_key.as_mut());
        header::write(&mut inner, sender, &unique, &session_key).map_err(C4ghError::into_io)?;
        Ok(Self {
            inner,
            cipher: ChaCha20Poly1305::new(Key::from_slice(session_key.as_slice())),
            buf: Zeroizing::new(vec![0u8; CIPHER_SEGMENT_SIZE]),
            filled: 0,
            poisoned: false,
        })
    }

    /// Writes the last segment, flushes, and returns the inner writer.
    /// MUST be called; see the type's documentation.
    pub fn finish(mut self) -> io::Result<W> {
        self.check()?;
        if self.filled > 0 {
            self.seal_and_write()?;
        }
        self.inner.flush()?;
        Ok(self.inner)
    }

    fn check(&self) -> io::Result<()> {
        if self.poisoned {
            return Err(C4ghError::Poisoned.into_io());
        }
        Ok(())
    }

    fn seal_and_write(&mut self) -> io::Result<()> {
        segment::seal(&self.cipher, &mut self.buf, self.filled);
        let len = self.filled + segment::OVERHEAD;
        self.filled = 0;
        self.inner.write_all(&self.buf[..len]).inspect_err(|_| self.poisoned = true)
    }
}

impl<W: Write> Write for Encryptor<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.check()?;
        if self.filled == SEGMENT_SIZE {
            // Sealed lazily so that a stream of exactly n × 64 KiB ends
            // without an empty segment, as the reference writes it.
            self.seal_and_write()?;
        }
        let n = data.len().min(SEGMENT_SIZE - self.filled);
        let start = NONCE_LEN + self.filled;
        self.buf[start..start + n].copy_from_slice(&data[..n]);
        self.filled += n;
        Ok(n)
    }

    /// Flushes the inner writer. Buffered plaintext stays buffered until its
    /// segment is full or [`Encryptor::finish`] is called: sealing a short
    /// segment early would break the 64 KiB segment layout.
    fn flush(&mut self) -> io::Result<()> {
        self.check()?;
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_recipients_is_invalid_input() {
        let err = Encryptor::new(Vec::new(), &SecretKey::generate(), &[]).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(matches!(C4ghError::from_io(&err), Some(C4ghError::NoRecipients)));
    }

    #[test]
    fn weak_recipient_is_invalid_input() {
        let zero = PublicKey::from_bytes([0; 32]);
        let err = Encryptor::new(Vec::new(), &SecretKey::generate(), &[zero]).err().unwrap();
        assert!(matches!(C4ghError::from_io(&err), Some(C4ghError::WeakPublicKey)));
    }

    #[test]
    fn duplicate_recipients_get_one_packet() {
        let bob = SecretKey::generate().public_key();
        let enc = Encryptor::new(Vec::new(), &SecretKey::generate(), &[bob, bob]).unwrap();
        let out = enc.finish().unwrap();
        assert_eq!(out.len(), 16 + 108);
        assert_eq!(&out[12..16], &1u32.to_le_bytes());
    }

    #[test]
    fn segment_layout() {
        let bob = SecretKey::generate().public_key();
        for (len, want) in
            [(0, 0), (1, 1 + 28), (SEGMENT_SIZE, SEGMENT_SIZE + 28), (SEGMENT_SIZE + 1, SEGMENT_SIZE + 57)]
        {
            let mut enc = Encryptor::new(Vec::new(), &SecretKey::generate(), &[bob]).unwrap();
            enc.write_all(&vec![b'A'; len]).unwrap();
            assert_eq!(enc.finish().unwrap().len() - 124, want, "{len}");
        }
    }

    /// Accepts `0` more bytes, then fails.
    struct Budget(usize);
    impl Write for Budget {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            if data.len() > self.0 {
                return Err(io::Error::other("disk full"));
            }
            self.0 -= data.len();
            Ok(data.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    // After the inner writer fails, further writes must not pretend to work.
    #[test]
    fn inner_failure_poisons() {
        let sk = SecretKey::generate();
        let mut enc = Encryptor::new(Budget(124), &sk, &[sk.public_key()]).unwrap();
        enc.write_all(&vec![0; SEGMENT_SIZE]).unwrap();
        let err = enc.write(b"y").unwrap_err();
        assert_eq!(err.to_string(), "disk full");
        let err = enc.write(b"y").unwrap_err();
        assert!(matches!(C4ghError::from_io(&err), Some(C4ghError::Poisoned)));
        assert!(enc.finish().is_err());
    }
}
