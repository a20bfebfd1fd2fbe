//! Errors of the Crypt4GH layer.

use std::io;

/// Why a Crypt4GH file or key file could not be read or written.
///
/// No variant ever carries key material or a passphrase; names read from a
/// key file are shortened and escaped before they are kept.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum C4ghError {
    /// The input does not start with the `crypt4gh` magic bytes.
    #[error("not a Crypt4GH file (bad magic bytes)")]
    NotCrypt4gh,
    /// The header names a version other than 1.
    #[error("unsupported Crypt4GH version {0} (this build reads version 1)")]
    UnsupportedVersion(u32),
    /// The header holds no packets, or more than
    /// [`MAX_HEADER_PACKETS`](super::MAX_HEADER_PACKETS).
    #[error("header packet count {count} is out of bounds (allowed 1..={max})")]
    PacketCount {
        /// The count found.
        count: u32,
        /// The largest count accepted.
        max: u32,
    },
    /// A header packet length is too small for its fields or larger than
    /// [`MAX_HEADER_PACKET_LEN`](super::MAX_HEADER_PACKET_LEN).
    #[error("header packet {index} has length {len} (allowed {min}..={max})")]
    PacketLength {
        /// Position of the packet in the header, from 0.
        index: u32,
        /// The length found.
        len: u32,
        /// The smallest length accepted.
        min: u32,
        /// The largest length accepted.
        max: u32,
    },
    /// The input ends inside the header.
    #[error("Crypt4GH header is truncated")]
    HeaderTruncated,
    /// No header packet could be decrypted with the given secret key: the
    /// file was encrypted for someone else.
    #[error("no header packet is addressed to this key (wrong secret key, or not a recipient)")]
    NoPacketForKey,
    /// A decrypted header packet is of a type this build does not know.
    #[error("unsupported header packet type {0}")]
    UnsupportedPacketType(u32),
    /// The data is encrypted with a method other than ChaCha20-IETF-Poly1305.
    #[error("unsupported data encryption method {0}")]
    UnsupportedDataEncryption(u32),
    /// A decrypted header packet is malformed.
    #[error("malformed header packet: {0}")]
    MalformedPacket(&'static str),
    /// The packets addressed to us hold an edit list but no session key.
    #[error("the header packets for this key hold no data encryption key")]
    NoSessionKey,
    /// The header holds more than one edit list for us (the spec allows at
    /// most one).
    #[error("the header holds more than one edit list")]
    DuplicateEditList,
    /// A data segment failed authentication: it was altered, or belongs to
    /// another file.
    #[error("data segment {index} failed authentication (altered, or from another file)")]
    SegmentAuthFailed {
        /// Position of the segment in the data, from 0.
        index: u64,
    },
    /// A data segment is too short to hold a nonce, a tag and one byte.
    #[error("data segment {index} is truncated ({len} bytes)")]
    SegmentTruncated {
        /// Position of the segment in the data, from 0.
        index: u64,
        /// Its length in bytes.
        len: usize,
    },
    /// A previous read failed; the stream cannot continue after an error.
    #[error("the stream already failed; it cannot be read further")]
    Poisoned,
    /// [`Encryptor::new`](super::Encryptor::new) was given no recipients.
    #[error("at least one recipient is required")]
    NoRecipients,
    /// More recipients than [`MAX_HEADER_PACKETS`](super::MAX_HEADER_PACKETS).
    #[error("too many recipients: {count} (at most {max})")]
    TooManyRecipients {
        /// The number given.
        count: usize,
        /// The largest number accepted.
        max: u32,
    },
    /// A public key is a low-order point: X25519 with it yields no secret.
    #[error("invalid X25519 public key (low-order point)")]
    WeakPublicKey,
    /// A key file is not in the expected PEM-like armour.
    #[error("not a Crypt4GH {expected} key file")]
    NotAKeyFile {
        /// `"public"` or `"private"`.
        expected: &'static str,
    },
    /// A key file holds a key format this build does not read.
    #[error("unsupported key format: {0}")]
    UnsupportedKeyFormat(&'static str),
    /// A key file is damaged or malformed.
    #[error("malformed key file: {0}")]
    MalformedKey(&'static str),
    /// The private key file names a key derivation function this build does
    /// not support.
    #[error("unsupported key derivation function {0:?} (supported: scrypt, bcrypt, pbkdf2_hmac_sha256)")]
    UnsupportedKdf(String),
    /// The private key file names a cipher this build does not support.
    #[error("unsupported private key cipher {0:?} (supported: chacha20_poly1305)")]
    UnsupportedCipher(String),
    /// The key file asks for more KDF work than the named bound allows.
    #[error("key file asks for {value} {kdf} rounds (allowed 1..={max}); refusing a possibly hostile key file")]
    KdfWorkFactor {
        /// The KDF's name.
        kdf: &'static str,
        /// The work factor found.
        value: u32,
        /// The largest work factor accepted.
        max: u32,
    },
    /// The private key is encrypted and no passphrase was given.
    #[error("the private key is encrypted: a passphrase is required")]
    PassphraseRequired,
    /// The passphrase does not decrypt the private key.
    #[error("wrong passphrase (or the private key file is damaged)")]
    WrongPassphrase,
    /// The underlying reader or writer failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

impl C4ghError {
    /// Finds a `C4ghError` inside an `io::Error` produced by
    /// [`Decryptor`](super::Decryptor) or [`Encryptor`](super::Encryptor).
    pub fn from_io(err: &io::Error) -> Option<&C4ghError> {
        err.get_ref().and_then(|inner| inner.downcast_ref::<C4ghError>())
    }

    /// Translates into an `io::Error` at a `Read`/`Write` boundary: parse and
    /// authentication failures become `InvalidData`, bad arguments
    /// `InvalidInput`, and I/O errors pass through unchanged.
    pub(crate) fn into_io(self) -> io::Error {
        match self {
            Self::Io(e) => e,
            e @ (Self::NoRecipients | Self::TooManyRecipients { .. } | Self::WeakPublicKey) => {
                io::Error::new(io::ErrorKind::InvalidInput, e)
            }
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }

    /// An `UnsupportedKdf` or `UnsupportedCipher` name, made safe to print:
    /// lossy UTF-8, control characters escaped, at most 32 characters.
    pub(crate) fn sanitize_name(raw: &[u8]) -> String {
        String::from_utf8_lossy(raw).chars().take(32).flat_map(char::escape_debug).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_round_trip_keeps_the_error() {
        let io = C4ghError::SegmentAuthFailed { index: 3 }.into_io();
        assert_eq!(io.kind(), io::ErrorKind::InvalidData);
        assert!(matches!(C4ghError::from_io(&io), Some(C4ghError::SegmentAuthFailed { index: 3 })));
    }

    #[test]
    fn io_errors_pass_through() {
        let io = C4ghError::Io(io::Error::new(io::ErrorKind::BrokenPipe, "x")).into_io();
        assert_eq!(io.kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn names_are_sanitized() {
        let shown = C4ghError::sanitize_name(b"evil\n\x1b[31mname-that-is-much-longer-than-thirty-two");
        assert!(!shown.contains('\n') && !shown.contains('\x1b'), "{shown}");
        assert!(shown.len() < 48, "{shown}");
    }
}
