//! GA4GH Crypt4GH v1 (<https://samtools.github.io/hts-specs/crypt4gh.pdf>),
//! byte-compatible with the reference python `crypt4gh` 1.8.
//!
//! A Crypt4GH file is a header followed by the data segments:
//!
//! * header (spec, "Header"): `"crypt4gh"`, version 1 and a packet count (both
//!   u32 little-endian), then packets. Each packet is `packet_length` (u32 LE,
//!   counting itself), `header_encryption_method` (0 = X25519 +
//!   ChaCha20-IETF-Poly1305), the writer's X25519 public key, a 12-byte nonce
//!   and the encrypted payload with its 16-byte tag. A payload holds either
//!   the data encryption parameters (the session key) or an edit list.
//!   Packets for other recipients cannot be decrypted and are skipped.
//! * data (spec, "Encrypted data"): the plaintext in 64 KiB segments, each sealed with
//!   ChaCha20-IETF-Poly1305 under the session key with a fresh random
//!   12-byte nonce written in front of it and the 16-byte tag after it.
//!
//! Crypt4GH v1 binds neither a segment's position nor the end of the stream
//! into the segments: a file cut at a segment boundary, or with segments
//! reordered, still decrypts without error. Use the seqshield container
//! format when that matters.
//!
//! ```
//! use std::io::{Read, Write};
//! use seqshield_format::c4gh::{Decryptor, Encryptor, SecretKey};
//!
//! let alice = SecretKey::generate();
//! let bob = SecretKey::generate();
//! let mut enc = Encryptor::new(Vec::new(), &alice, &[bob.public_key()])?;
//! enc.write_all(b"ACGTACGT")?;
//! let file = enc.finish()?; // finish() MUST be called
//!
//! let mut plain = Vec::new();
//! Decryptor::new(file.as_slice(), &bob)?.read_to_end(&mut plain)?;
//! assert_eq!(plain, b"ACGTACGT");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod decrypt;
mod edit_list;
mod encrypt;
mod error;
mod header;
mod keyfile;
mod keys;
mod segment;

pub use decrypt::Decryptor;
pub use encrypt::Encryptor;
pub use error::C4ghError;
pub use keyfile::{read_public_key, read_secret_key, write_public_key, write_secret_key};
pub use keys::{PublicKey, SecretKey};

/// Plaintext bytes per data segment (fixed at 64 KiB in Crypt4GH v1).
pub const SEGMENT_SIZE: usize = 64 * 1024;

/// Most header packets a reader accepts. The reference writes one packet per
/// recipient (two with an edit list); 256 leaves room for 128 recipients and
/// bounds the X25519 operations a hostile header can make us do.
pub const MAX_HEADER_PACKETS: u32 = 256;

/// Longest header packet a reader accepts, in bytes, including its length
/// field. A session-key packet is 108 bytes; 64 KiB leaves room for an edit
/// list of about 8000 entries and bounds the memory a hostile header costs.
pub const MAX_HEADER_PACKET_LEN: u32 = 64 * 1024;

/// Most bcrypt rounds a key file may ask for. The reference writes 100;
/// each round costs about a millisecond, so this caps a hostile key file at
/// about a second of work.
pub const MAX_BCRYPT_ROUNDS: u32 = 1024;

/// Most PBKDF2-HMAC-SHA256 iterations a key file may ask for. The reference
/// writes 100 000; this caps a hostile key file at a few seconds of work.
pub const MAX_PBKDF2_ITERATIONS: u32 = 5_000_000;
